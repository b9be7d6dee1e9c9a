//! The seam where the network enters: one HTTP exchange ([`Http`]), no
//! auth, no retry, and the request and answer types the client and its
//! fakes share.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::registry::timeouts::show;

/// Bodies we read are errors, tokens and pings; anything bigger is not one.
pub(super) const MAX_RESPONSE_BODY: u64 = 4 * 1024 * 1024;

/// Error messages quote at most this much of a response body.
const MAX_MESSAGE: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// A request body. Files are opened afresh for every try, so a retried
/// upload streams from the start again and never sits in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    Bytes(Vec<u8>),
    File { path: PathBuf, size: u64 },
}

impl Body {
    /// How many bytes it sends.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File { size, .. } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Clone)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    /// The value of header `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Shows everything but the value of `Authorization`.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("authorization") {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// Names in lowercase; a header sent twice appears twice.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_all(name).next()
    }

    pub fn headers_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// What the registry said went wrong: the first entry of the
    /// distribution spec's `{"errors": [{"code", "message"}]}`, else the
    /// start of the body, else the status.
    pub fn message(&self) -> String {
        #[derive(Deserialize)]
        struct Errors {
            errors: Vec<ErrorEntry>,
        }
        #[derive(Deserialize)]
        struct ErrorEntry {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        if let Ok(e) = serde_json::from_slice::<Errors>(&self.body)
            && let Some(first) = e.errors.first()
        {
            return match (first.code.as_str(), first.message.as_str()) {
                ("", m) => m.to_owned(),
                (c, "") => c.to_owned(),
                (c, m) => format!("{c}: {m}"),
            };
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            printable(text, MAX_MESSAGE)
        }
    }
}

/// An answer whose body is read as a stream (a blob), not whole.
pub struct Streamed {
    pub status: u16,
    /// Names in lowercase, as in [`Response`].
    pub headers: Vec<(String, String)>,
    pub body: Box<dyn io::Read + Send>,
}

impl fmt::Debug for Streamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Streamed")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Streamed {
    /// The answer with its body read whole (at most
    /// `MAX_RESPONSE_BODY`): for errors and challenges, which are small.
    pub fn into_response(self) -> Response {
        let mut body = Vec::new();
        // A body that fails midway still says what it said so far.
        let _ = io::Read::read_to_end(&mut io::Read::take(self.body, MAX_RESPONSE_BODY), &mut body);
        Response {
            status: self.status,
            headers: self.headers,
            body,
        }
    }
}

/// What the client needs of an answer, whole or streamed, to retry and
/// authenticate.
pub trait Answer {
    fn status(&self) -> u16;
    fn header(&self, name: &str) -> Option<&str>;
    fn into_response(self) -> Response;
}

impl Answer for Response {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &str) -> Option<&str> {
        Response::header(self, name)
    }
    fn into_response(self) -> Response {
        self
    }
}

impl Answer for Streamed {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn into_response(self) -> Response {
        Streamed::into_response(self)
    }
}

/// At most `max` characters of what a server sent, control characters
/// escaped (`\u{1b}`), so a hostile answer cannot drive the terminal.
pub fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// How one exchange failed, before we know which registry it was for.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect")]
    Connect { source: io::Error },
    #[error("the connection failed")]
    Io { source: io::Error },
    #[error("{message}")]
    HostNotFound { message: String },
    #[error("{}", limit.describe(*after))]
    Timeout { limit: Limit, after: Duration },
    #[error("TLS: {message}")]
    Tls { message: String },
    #[error("cannot read {}", path.display())]
    Body { path: PathBuf, source: io::Error },
    #[error("{message}")]
    Other { message: String },
}

impl HttpError {
    /// Whether trying again may help: the network, not the request.
    pub(super) fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::Io { .. } | HttpError::Timeout { .. }
        )
    }
}

/// Which of the [`Timeouts`](crate::registry::Timeouts) ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Connecting, the TLS handshake included.
    Connect,
    /// The registry sent nothing (no answer, or it stopped mid-answer).
    Silent,
    /// The registry took none of what we sent.
    NotReading,
    /// The whole request ([`Timeouts::request`](crate::registry::Timeouts::request)), which the registry
    /// answered too slowly.
    Request,
    /// The kernel gave up on the connection (ETIMEDOUT).
    System,
}

impl Limit {
    pub(super) fn describe(self, after: Duration) -> String {
        let after = show(after);
        match self {
            Limit::Connect => format!("no connection (TCP and TLS) within {after}"),
            Limit::Silent => format!("it sent nothing for {after}"),
            Limit::NotReading => format!("it took none of the request for {after}"),
            Limit::Request => format!("no complete answer within {after}"),
            Limit::System => "the kernel gave up on the connection (ETIMEDOUT)".into(),
        }
    }
}

/// One HTTP exchange: send `req`, return whatever status came back, all
/// within `limit`.
pub trait Http {
    fn send(&self, req: &Request, limit: Duration) -> Result<Response, HttpError>;

    /// [`Http::send`], the answer's body left to stream (a blob being
    /// pulled): `limit` covers reading it too. By default, the body read
    /// whole and handed out from memory (enough for the tests' fakes).
    fn open(&self, req: &Request, limit: Duration) -> Result<Streamed, HttpError> {
        let r = self.send(req, limit)?;
        Ok(Streamed {
            status: r.status,
            headers: r.headers,
            body: Box::new(io::Cursor::new(r.body)),
        })
    }
}
