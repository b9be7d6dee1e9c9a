//! HTTP to a registry, one job a file (as go-containerregistry's
//! `remote/transport`). [`Http`] is the seam where the network enters: one
//! exchange, no auth, no retry ([`UreqHttp`] in production, an in-memory
//! registry in the unit tests). [`Client`] sits on it and does what the
//! distribution spec and docker's token spec ask of a client: answer
//! `WWW-Authenticate` challenges (Basic, or Bearer tokens from the realm),
//! and retry what may succeed a moment later.
//!
//! * `http`: the seam, and the request and answer types;
//! * `adapter`: the seam over ureq and rustls;
//! * `retry`: what is tried again, and when;
//! * `challenge`: `WWW-Authenticate` parsing;
//! * `client`: the client, auth and retries on top.

mod adapter;
mod challenge;
mod client;
mod http;
mod retry;

pub use adapter::UreqHttp;
pub use challenge::{Challenge, parse_challenges};
pub use client::{Client, CredentialSource, with_query};
pub use http::{
    Answer, Body, Http, HttpError, Limit, Method, Request, Response, Streamed, printable,
};
pub use retry::RetryPolicy;

#[cfg(test)]
use retry::is_transient_status;

#[cfg(test)]
mod tests;
