//! HTTP to a registry. [`Http`] is the seam where the network enters: one
//! exchange, no auth, no retry ([`UreqHttp`] in production, an in-memory
//! registry in the unit tests). [`Client`] sits on it and does what the
//! distribution spec and docker's token spec ask of a client: answer
//! `WWW-Authenticate` challenges (Basic, or Bearer tokens from the realm),
//! and retry what may succeed a moment later.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryError;
use super::auth::{self, AuthEnv, Credential, Found};
use super::timeouts::{Timeouts, show};

/// Bodies we read are errors, tokens and pings; anything bigger is not one.
const MAX_RESPONSE_BODY: u64 = 4 * 1024 * 1024;

/// Redirects followed for GET and HEAD (a registry may send blob reads to
/// storage). Never for POST or PUT: a streamed body cannot be replayed, and
/// the protocol moves uploads with `Location`, not redirects.
const MAX_REDIRECTS: u32 = 5;

/// The longest `Retry-After` we wait for on a 429; the backoff's bounds
/// would be meaningless if a server could ask for an hour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Error messages quote at most this much of a response body.
const MAX_MESSAGE: usize = 300;

/// What this client calls itself to OAuth2 token servers (docker's token
/// spec requires a `client_id` on the refresh-token grant).
const CLIENT_ID: &str = "mkimage";

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
    /// [`MAX_RESPONSE_BODY`]): for errors and challenges, which are small.
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
    fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. } | HttpError::Io { .. } | HttpError::Timeout { .. }
        )
    }
}

/// Which of the [`Timeouts`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Connecting, the TLS handshake included.
    Connect,
    /// The registry sent nothing (no answer, or it stopped mid-answer).
    Silent,
    /// The registry took none of what we sent.
    NotReading,
    /// The whole request ([`Timeouts::request`]), which the registry
    /// answered too slowly.
    Request,
    /// The kernel gave up on the connection (ETIMEDOUT).
    System,
}

impl Limit {
    fn describe(self, after: Duration) -> String {
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

/// [`Http`] over ureq, with rustls verifying against the system's CA store
/// plus any `--ca-cert`, as docker and podman do, and ureq's timeouts set
/// from [`Timeouts`].
pub struct UreqHttp {
    agent: ureq::Agent,
    timeouts: Timeouts,
}

impl UreqHttp {
    /// An agent trusting the system CAs (`/etc/ssl/certs`, or
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR`) and the certificates in `ca_certs`.
    pub fn new(ca_certs: &[PathBuf], timeouts: Timeouts) -> Result<UreqHttp, RegistryError> {
        use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
        // Certificates that fail to load are skipped, as every TLS client
        // does with a system bundle; an empty store shows up as an
        // "UnknownIssuer" error naming the registry, with the --ca-cert hint.
        let native = rustls_native_certs::load_native_certs();
        let mut roots: Vec<Certificate<'static>> = native
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        for path in ca_certs {
            let pem = crate::bounded::read(path, crate::bounded::PEM_LIMIT).map_err(|source| {
                RegistryError::CaCertRead {
                    path: path.clone(),
                    source,
                }
            })?;
            let before = roots.len();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => roots.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(RegistryError::CaCert {
                            path: path.clone(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            if roots.len() == before {
                return Err(RegistryError::CaCert {
                    path: path.clone(),
                    reason: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
                });
            }
        }
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("mkimage/", env!("CARGO_PKG_VERSION")))
            // Idle limits for every exchange; `run` adds the per-request ones.
            .timeout_connect(Some(timeouts.connect()))
            .timeout_per_write(Some(timeouts.idle()))
            .timeout_per_read(Some(timeouts.idle()))
            .tls_config(tls)
            .build();
        Ok(UreqHttp {
            agent: ureq::Agent::new_with_config(config),
            timeouts,
        })
    }

    /// One exchange within `limit` (ureq's global timeout: connecting,
    /// redirects and reading the answer's body included). Once `sent`
    /// bytes of body are out, the registry may take [`Timeouts::answer`]
    /// to start answering.
    fn run<S: ureq::AsSendBody>(
        &self,
        req: ureq::http::Request<S>,
        follow: bool,
        sent: u64,
        limit: Duration,
    ) -> Result<Response, HttpError> {
        let answer = self.timeouts.answer(sent);
        let config = self
            .agent
            .configure_request(req)
            .timeout_global(Some(limit))
            .timeout_per_read(Some(answer));
        let req = if follow {
            config.max_redirects(MAX_REDIRECTS)
        } else {
            config
        }
        .build();
        let timeout_error = |e| self.http_error(e, answer, limit);
        let mut resp = self.agent.run(req).map_err(timeout_error)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BODY)
            .read_to_vec()
            .map_err(timeout_error)?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// A GET whose answer's body streams, within `limit` (ureq's global
    /// timeout bounds the body's reading too), redirects followed.
    fn run_streamed(
        &self,
        req: ureq::http::Request<()>,
        limit: Duration,
    ) -> Result<Streamed, HttpError> {
        let answer = self.timeouts.answer(0);
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(limit))
            .timeout_per_read(Some(answer))
            .max_redirects(MAX_REDIRECTS)
            .build();
        let resp = self
            .agent
            .run(req)
            .map_err(|e| self.http_error(e, answer, limit))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.into_body().into_reader();
        Ok(Streamed {
            status,
            headers,
            body: Box::new(body),
        })
    }

    /// `e` as an [`HttpError`]; a timeout says which limit it was, and how
    /// long (`answer` and `limit` are this exchange's).
    fn http_error(&self, e: ureq::Error, answer: Duration, limit: Duration) -> HttpError {
        use ureq::Timeout as T;
        let timeout = |limit, after| HttpError::Timeout { limit, after };
        match e {
            ureq::Error::Timeout(which) => match which {
                T::Connect | T::Resolve => timeout(Limit::Connect, self.timeouts.connect()),
                T::PerRead | T::RecvResponse | T::RecvBody => timeout(Limit::Silent, answer),
                T::PerWrite | T::SendRequest | T::SendBody => {
                    timeout(Limit::NotReading, self.timeouts.idle())
                }
                _ => timeout(Limit::Request, limit),
            },
            e => http_error(e),
        }
    }
}

impl Http for UreqHttp {
    fn open(&self, req: &Request, limit: Duration) -> Result<Streamed, HttpError> {
        if req.method != Method::Get || !req.body.is_empty() {
            return self.send(req, limit).map(|r| Streamed {
                status: r.status,
                headers: r.headers,
                body: Box::new(io::Cursor::new(r.body)),
            });
        }
        let mut builder = ureq::http::Request::builder().method("GET").uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let req = builder.body(()).map_err(|e| HttpError::Other {
            message: format!("cannot build request for {}: {e}", req.url),
        })?;
        self.run_streamed(req, limit)
    }

    fn send(&self, req: &Request, limit: Duration) -> Result<Response, HttpError> {
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let follow = matches!(req.method, Method::Get | Method::Head);
        let bad = |e: ureq::http::Error| HttpError::Other {
            message: format!("cannot build request for {}: {e}", req.url),
        };
        match &req.body {
            // An empty slice, not (): POST and PUT then carry
            // `Content-Length: 0`, which some servers insist on.
            Body::Empty if !follow => {
                self.run(builder.body(&[][..]).map_err(bad)?, follow, 0, limit)
            }
            Body::Empty => self.run(builder.body(()).map_err(bad)?, follow, 0, limit),
            Body::Bytes(b) => self.run(
                builder.body(b.as_slice()).map_err(bad)?,
                follow,
                req.body.len(),
                limit,
            ),
            Body::File { path, size } => {
                let file = open_sized(path, *size)?;
                // A plain, non-chunked PUT: the distribution spec's
                // monolithic upload asks for Content-Length.
                let builder = builder.header("Content-Length", size.to_string());
                self.run(builder.body(file).map_err(bad)?, follow, *size, limit)
            }
        }
    }
}

/// Opens a blob to stream, checking it still has the size we announce.
fn open_sized(path: &Path, size: u64) -> Result<File, HttpError> {
    let body_err = |source| HttpError::Body {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(body_err)?;
    let len = file.metadata().map_err(body_err)?.len();
    if len != size {
        return Err(body_err(io::Error::other(format!(
            "it is {len} bytes, expected {size}"
        ))));
    }
    Ok(file)
}

/// What std prints for a failed getaddrinfo(3); the io::Error kind is
/// uncategorized, so the text is all there is to tell it by.
const RESOLVE_FAILED: &str = "failed to lookup address information";

fn http_error(e: ureq::Error) -> HttpError {
    use io::ErrorKind as K;
    match e {
        ureq::Error::Io(source) => {
            // rustls reports handshake failures (an unknown CA, a server
            // that speaks plain HTTP) as io errors wrapping its own.
            if let Some(tls) = source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                return HttpError::Tls {
                    message: tls.to_string(),
                };
            }
            match source.kind() {
                K::ConnectionRefused
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::AddrNotAvailable => HttpError::Connect { source },
                K::TimedOut => HttpError::Timeout {
                    limit: Limit::System,
                    after: Duration::ZERO,
                },
                _ if source.to_string().starts_with(RESOLVE_FAILED) => HttpError::HostNotFound {
                    message: source.to_string(),
                },
                _ => HttpError::Io { source },
            }
        }
        ureq::Error::ConnectionFailed => HttpError::Connect {
            source: io::Error::other("connection failed"),
        },
        ureq::Error::HostNotFound => HttpError::HostNotFound {
            message: "no address found".into(),
        },
        ureq::Error::Rustls(e) => HttpError::Tls {
            message: e.to_string(),
        },
        ureq::Error::Tls(m) => HttpError::Tls { message: m.into() },
        other => HttpError::Other {
            message: other.to_string(),
        },
    }
}

/// Tries and waits: up to `delays.len() + 1` tries, waiting `delays[i]`
/// after the i-th failure, while the request's budget lasts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    /// How to wait; tests record instead of sleeping.
    pub sleep: fn(Duration),
    /// The clock the request budget ([`Timeouts::request`]) is kept by;
    /// tests advance their own.
    pub now: fn() -> Instant,
}

impl Default for RetryPolicy {
    /// Four tries over 3.5 s: enough to ride out a registry restart or a
    /// load balancer's hiccup, short enough that a dead registry is
    /// reported promptly.
    fn default() -> Self {
        RetryPolicy {
            delays: vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
            sleep: std::thread::sleep,
            now: Instant::now,
        }
    }
}

/// Statuses worth another try: rate limiting and server trouble. 501 and
/// 505 are 5xx but say the request will never work.
fn is_transient_status(status: u16) -> bool {
    status == 429 || ((500..600).contains(&status) && status != 501 && status != 505)
}

/// Where a client's credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// `--creds`.
    Given(Credential),
    /// Saved logins, looked up only when the registry asks for credentials.
    Lookup(AuthEnv),
    None,
}

/// A parsed `WWW-Authenticate` challenge (RFC 7235), for the schemes
/// registries use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// docker's token spec: get a token from `realm` for `service` and
    /// `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges
/// (`Basic realm="x", Bearer realm="y",service="z"`); unknown schemes are
/// skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Cursor { s: header, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip(|c| c == ',' || c.is_whitespace());
        let scheme = p.token();
        if scheme.is_empty() {
            // Garbage: skip a character so we always move on.
            if p.next().is_none() {
                break;
            }
            continue;
        }
        let mut params: HashMap<String, String> = HashMap::new();
        loop {
            p.skip(|c| c == ',' || c.is_whitespace());
            let save = p.i;
            let key = p.token();
            p.skip(char::is_whitespace);
            if key.is_empty() || !p.eat('=') {
                // A token not followed by '=' starts the next challenge.
                p.i = save;
                break;
            }
            p.skip(char::is_whitespace);
            let value = p.value();
            params.insert(key.to_ascii_lowercase(), value);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = params.remove("realm")
        {
            out.push(Challenge::Bearer {
                realm,
                service: params.remove("service"),
                scope: params.remove("scope"),
            });
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.i += want.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip(&mut self, f: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&f) {
            self.next();
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| !(c.is_whitespace() || matches!(c, ',' | '=' | '"')));
        self.s[start..self.i].to_owned()
    }

    /// A token or a quoted-string with backslash escapes.
    fn value(&mut self) -> String {
        if !self.eat('"') {
            return self.token();
        }
        let mut out = String::new();
        while let Some(c) = self.next() {
            match c {
                '"' => break,
                '\\' => out.extend(self.next()),
                c => out.push(c),
            }
        }
        out
    }
}

/// Percent-encodes a query or form value (RFC 3986 unreserved characters
/// pass through).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Appends `key=value` pairs to a URL's query.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (k, v) in pairs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode_component(v));
    }
    out
}

/// A registry API client: base URL, credentials, the registry's challenge
/// and the tokens it has issued, and the retry policy.
pub struct Client<H> {
    http: H,
    registry: String,
    base: String,
    credentials: CredentialSource,
    /// The lookup's answer, once made.
    found: Option<Option<Found>>,
    challenge: Option<Challenge>,
    /// Bearer tokens by scope (the space-joined scopes they were issued for).
    tokens: HashMap<String, String>,
    retry: RetryPolicy,
    timeouts: Timeouts,
}

impl<H: Http> Client<H> {
    /// A client for `registry` (`HOST[:PORT]`, named in errors and used to
    /// look up credentials) whose API is at `base` (`https://host:port`).
    /// `timeouts` bounds each request, its retries included.
    pub fn new(
        http: H,
        registry: &str,
        base: &str,
        credentials: CredentialSource,
        retry: RetryPolicy,
        timeouts: Timeouts,
    ) -> Self {
        Client {
            http,
            registry: registry.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            found: None,
            challenge: None,
            tokens: HashMap::new(),
            retry,
            timeouts,
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `path` (starting with `/v2/`) on this registry.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A `Location` header as a URL: registries may answer with a path.
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("https://") || location.starts_with("http://") {
            location.to_owned()
        } else if let Some(rest) = location.strip_prefix("//") {
            let scheme = self.base.split("://").next().unwrap_or("https");
            format!("{scheme}://{rest}")
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// `GET /v2/`: checks the registry is there and speaks the API, and
    /// learns how it wants us to authenticate before we send anything big.
    pub fn ping(&mut self) -> Result<(), RegistryError> {
        let req = Request::new(Method::Get, self.url("/v2/"));
        let resp = self.send_retrying(&req)?;
        match resp.status {
            200..=299 => Ok(()),
            401 => {
                self.challenge = challenge_of(&resp);
                Ok(())
            }
            status => Err(RegistryError::NotARegistry {
                registry: self.registry.clone(),
                status,
                message: resp.message(),
            }),
        }
    }

    /// Sends `req` with credentials for `scope` (token scopes such as
    /// `repository:app:pull,push`), retrying transient failures. A 401
    /// gets one more try with a fresh token (it may have expired, or the
    /// registry may want other scopes); then it is an error, as is a 403.
    pub fn send(&mut self, req: &Request, scope: &[String]) -> Result<Response, RegistryError> {
        let budget = self.timeouts.request(req.body.len());
        self.authorized(req, scope, |c, r| {
            c.retrying(r, budget, |r, left| c.http.send(r, left))
        })
    }

    /// [`Client::send`] for a GET whose answer's body streams: a blob of
    /// `size` bytes, which gets the time a body of that size gets to
    /// upload ([`Timeouts::request`]). Only the start of the exchange is
    /// retried; a stream cut midway is an error for its reader.
    pub fn open(
        &mut self,
        req: &Request,
        scope: &[String],
        size: u64,
    ) -> Result<Streamed, RegistryError> {
        let budget = self.timeouts.request(size);
        self.authorized(req, scope, |c, r| {
            c.retrying(r, budget, |r, left| c.http.open(r, left))
        })
    }

    /// Runs `go` with credentials for `scope`; see [`Client::send`].
    fn authorized<T: Answer>(
        &mut self,
        req: &Request,
        scope: &[String],
        go: impl Fn(&Self, &Request) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut scope = scope.to_vec();
        let mut renewed = false;
        loop {
            let mut authed = req.clone();
            if req.url.starts_with(&format!("{}/", self.base))
                && let Some(value) = self.authorization(&scope)?
            {
                authed = authed.header("Authorization", value);
            }
            let resp = go(self, &authed)?;
            match resp.status() {
                401 if !renewed => {
                    let resp = resp.into_response();
                    renewed = true;
                    self.tokens.remove(&scope.join(" "));
                    if let Some(ch) = challenge_of(&resp) {
                        if let Challenge::Bearer { scope: Some(s), .. } = &ch {
                            for extra in s.split(' ') {
                                if !extra.is_empty() && !scope.iter().any(|x| x == extra) {
                                    scope.push(extra.to_owned());
                                }
                            }
                        }
                        self.challenge = Some(ch);
                    }
                }
                401 => return Err(self.unauthorized(&resp.into_response())?),
                403 => {
                    return Err(RegistryError::Denied {
                        registry: self.registry.clone(),
                        message: resp.into_response().message(),
                    });
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The `Authorization` value the current challenge calls for, if we
    /// have (or can get) one.
    fn authorization(&mut self, scope: &[String]) -> Result<Option<String>, RegistryError> {
        match self.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match self.credentials()? {
                Some(Found {
                    credential: Credential::Basic { username, password },
                    ..
                }) => Some(basic_auth(&username, &password)),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let token = self.token(&realm, service.as_deref(), scope)?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// A token for `scope` from the realm, cached. With a password: GET with
    /// Basic auth; with an identity token: the OAuth2 refresh-token POST;
    /// with nothing: an anonymous GET (enough for public pulls).
    fn token(
        &mut self,
        realm: &str,
        service: Option<&str>,
        scope: &[String],
    ) -> Result<String, RegistryError> {
        let key = scope.join(" ");
        if let Some(t) = self.tokens.get(&key) {
            return Ok(t.clone());
        }
        let found = self.credentials()?;
        let req = match found.as_ref().map(|f| &f.credential) {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                    ("client_id", CLIENT_ID),
                ];
                if let Some(s) = service {
                    form.push(("service", s));
                }
                // OAuth2 scopes are space-separated in one parameter.
                form.push(("scope", &key));
                let body = with_query("", &form)
                    .trim_start_matches('?')
                    .as_bytes()
                    .to_vec();
                Request::new(Method::Post, realm)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(Body::Bytes(body))
            }
            other => {
                let mut pairs: Vec<(&str, &str)> = Vec::new();
                if let Some(s) = service {
                    pairs.push(("service", s));
                }
                pairs.extend(scope.iter().map(|s| ("scope", s.as_str())));
                let req = Request::new(Method::Get, with_query(realm, &pairs));
                match other {
                    Some(Credential::Basic { username, password }) => {
                        req.header("Authorization", basic_auth(username, password))
                    }
                    _ => req,
                }
            }
        };
        let resp = self.send_retrying(&req)?;
        match resp.status {
            200..=299 => {}
            401 | 403 => return Err(self.unauthorized(&resp)?),
            status => {
                return Err(RegistryError::Token {
                    registry: self.registry.clone(),
                    realm: realm.to_owned(),
                    message: format!("HTTP {status}: {}", resp.message()),
                });
            }
        }
        #[derive(Deserialize)]
        struct TokenReply {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let reply: TokenReply =
            serde_json::from_slice(&resp.body).map_err(|_| RegistryError::Token {
                registry: self.registry.clone(),
                realm: realm.to_owned(),
                message: "the answer is not token JSON".into(),
            })?;
        let token = if reply.token.is_empty() {
            reply.access_token
        } else {
            reply.token
        };
        if token.is_empty() {
            return Err(RegistryError::Token {
                registry: self.registry.clone(),
                realm: realm.to_owned(),
                message: "the answer has no token".into(),
            });
        }
        self.tokens.insert(key, token.clone());
        Ok(token)
    }

    /// Our credentials, looked up the first time they are needed.
    fn credentials(&mut self) -> Result<Option<Found>, RegistryError> {
        if let Some(found) = &self.found {
            return Ok(found.clone());
        }
        let found = match &self.credentials {
            CredentialSource::Given(c) => Some(Found {
                credential: c.clone(),
                origin: "--creds".into(),
            }),
            CredentialSource::Lookup(env) => auth::lookup(env, &self.registry)?,
            CredentialSource::None => None,
        };
        self.found = Some(found.clone());
        Ok(found)
    }

    /// The error for a final 401: rejected if we sent credentials, else
    /// missing.
    fn unauthorized(&mut self, resp: &Response) -> Result<RegistryError, RegistryError> {
        Ok(match self.credentials()? {
            Some(found) => RegistryError::CredentialsRejected {
                registry: self.registry.clone(),
                origin: found.origin,
                username: found.credential.username().map(str::to_owned),
                message: resp.message(),
            },
            None => RegistryError::CredentialsMissing {
                registry: self.registry.clone(),
            },
        })
    }

    /// One exchange, tried again after the policy's delays while it fails
    /// in a way that may pass, all within the request's budget
    /// ([`Timeouts::request`]): each try gets what is left of it, and no
    /// try starts that would have to wait past it.
    fn send_retrying(&self, req: &Request) -> Result<Response, RegistryError> {
        let budget = self.timeouts.request(req.body.len());
        self.retrying(req, budget, |r, left| self.http.send(r, left))
    }

    /// [`Client::send_retrying`] for any kind of exchange.
    fn retrying<T: Answer>(
        &self,
        req: &Request,
        budget: Duration,
        exchange: impl Fn(&Request, Duration) -> Result<T, HttpError>,
    ) -> Result<T, RegistryError> {
        let start = (self.retry.now)();
        let spent = || (self.retry.now)().saturating_duration_since(start);
        let mut tries = 0;
        loop {
            let result = exchange(req, budget.saturating_sub(spent()));
            let transient = match &result {
                Ok(r) => is_transient_status(r.status()),
                Err(e) => e.is_transient(),
            };
            let delay = self.retry.delays.get(tries).filter(|_| transient);
            let wait = match (&result, delay) {
                (Ok(r), Some(&d)) if r.status() == 429 => {
                    retry_after(r.header("retry-after")).map_or(d, |a| a.max(d))
                }
                (_, Some(&d)) => d,
                (_, None) => return result.map_err(|e| self.registry_error(e, budget)),
            };
            if spent() + wait >= budget {
                return result.map_err(|e| self.registry_error(e, budget));
            }
            (self.retry.sleep)(wait);
            tries += 1;
        }
    }

    /// `e` as the error of a request whose budget was `budget`.
    fn registry_error(&self, e: HttpError, budget: Duration) -> RegistryError {
        let registry = self.registry.clone();
        match e {
            HttpError::Connect { source } => RegistryError::Unreachable { registry, source },
            HttpError::Io { source } => RegistryError::Connection { registry, source },
            HttpError::HostNotFound { message } => {
                RegistryError::HostNotFound { registry, message }
            }
            HttpError::Timeout { limit, after } => RegistryError::Timeout {
                registry,
                // The last try was given what was left of the budget: the
                // message names the budget.
                what: limit.describe(if limit == Limit::Request {
                    budget
                } else {
                    after
                }),
                timeout: self.timeouts.idle(),
            },
            HttpError::Tls { message } => RegistryError::Tls { registry, message },
            HttpError::Body { path, source } => RegistryError::Io {
                action: "read",
                path,
                source,
            },
            HttpError::Other { message } => RegistryError::Http { registry, message },
        }
    }
}

/// The challenge we can answer best among a response's: Bearer over Basic.
fn challenge_of(resp: &Response) -> Option<Challenge> {
    let all: Vec<Challenge> = resp
        .headers_all("www-authenticate")
        .flat_map(parse_challenges)
        .collect();
    all.iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(all.first())
        .cloned()
}

/// `Retry-After` in seconds (the HTTP-date form is not worth a date
/// parser), capped.
fn retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn basic_auth(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn challenges() {
        let cases: &[(&str, Vec<Challenge>)] = &[
            ("Basic realm=\"Registry Realm\"", vec![Challenge::Basic]),
            ("basic", vec![Challenge::Basic]),
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
                vec![Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:samalba/my-app:pull,push".into()),
                }],
            ),
            (
                r#"Bearer realm=https://a/t, error="insufficient_scope", Basic realm="x\"y""#,
                vec![
                    Challenge::Bearer {
                        realm: "https://a/t".into(),
                        service: None,
                        scope: None,
                    },
                    Challenge::Basic,
                ],
            ),
            (
                r#"Negotiate abc==, BEARER Realm = "r" , Service="s""#,
                vec![Challenge::Bearer {
                    realm: "r".into(),
                    service: Some("s".into()),
                    scope: None,
                }],
            ),
            ("Bearer service=\"no realm\"", vec![]),
            ("", vec![]),
            ("=,=\"", vec![]),
        ];
        for (header, want) in cases {
            assert_eq!(&parse_challenges(header), want, "{header:?}");
        }
    }

    #[test]
    fn queries_and_statuses() {
        assert_eq!(
            with_query(
                "https://a/t",
                &[("service", "r s"), ("scope", "repository:a/b:pull,push")]
            ),
            "https://a/t?service=r%20s&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            with_query("https://a/t?x=1", &[("d", "y")]),
            "https://a/t?x=1&d=y"
        );
        for s in [429, 500, 502, 503, 504, 599] {
            assert!(is_transient_status(s), "{s}");
        }
        for s in [200, 201, 400, 401, 403, 404, 409, 501, 505] {
            assert!(!is_transient_status(s), "{s}");
        }
        let msg = Response {
            status: 400,
            body: br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#.to_vec(),
            ..Response::default()
        };
        assert_eq!(
            msg.message(),
            "DIGEST_INVALID: provided digest did not match"
        );
        assert_eq!(
            Response {
                status: 502,
                ..Response::default()
            }
            .message(),
            "HTTP 502"
        );
    }

    #[test]
    fn request_debug_redacts_authorization() {
        let r = Request::new(Method::Get, "https://r/v2/")
            .header("Authorization", "Basic c2VjcmV0")
            .header("Accept", "x");
        let s = format!("{r:?}");
        assert!(!s.contains("c2VjcmV0"), "{s}");
        assert!(s.contains("<redacted>") && s.contains("Accept"), "{s}");
    }

    /// Scripted responses (and how long each takes to come), and the
    /// requests that got them with their time limits.
    struct Script {
        answers: RefCell<Vec<(Result<Response, HttpError>, Duration)>>,
        seen: RefCell<Vec<Request>>,
        limits: RefCell<Vec<Duration>>,
    }

    impl Http for &Script {
        fn send(&self, req: &Request, limit: Duration) -> Result<Response, HttpError> {
            self.seen.borrow_mut().push(req.clone());
            self.limits.borrow_mut().push(limit);
            let (answer, takes) = self.answers.borrow_mut().remove(0);
            // A try never outlasts its limit: the transport stops it there.
            advance(takes.min(limit));
            answer
        }
    }

    /// Answers that come at once.
    fn script(answers: Vec<Result<Response, HttpError>>) -> Script {
        timed(answers.into_iter().map(|a| (a, Duration::ZERO)).collect())
    }

    fn timed(answers: Vec<(Result<Response, HttpError>, Duration)>) -> Script {
        Script {
            answers: RefCell::new(answers),
            seen: RefCell::new(Vec::new()),
            limits: RefCell::new(Vec::new()),
        }
    }

    fn status(s: u16) -> Result<Response, HttpError> {
        Ok(Response {
            status: s,
            ..Response::default()
        })
    }

    fn with_header(s: u16, k: &str, v: &str) -> Result<Response, HttpError> {
        Ok(Response {
            status: s,
            headers: vec![(k.into(), v.into())],
            body: Vec::new(),
        })
    }

    fn refused() -> Result<Response, HttpError> {
        Err(HttpError::Connect {
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        })
    }

    thread_local! {
        static SLEPT: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
        /// The tests' clock: when this thread's first test began, and how
        /// far sleeps and answers have moved it since.
        static EPOCH: Instant = Instant::now();
        static ELAPSED: std::cell::Cell<Duration> = const { std::cell::Cell::new(Duration::ZERO) };
    }

    fn record(d: Duration) {
        SLEPT.with(|s| s.borrow_mut().push(d));
        advance(d);
    }

    fn advance(d: Duration) {
        ELAPSED.with(|e| e.set(e.get() + d));
    }

    fn now() -> Instant {
        EPOCH.with(|t| *t) + ELAPSED.with(|e| e.get())
    }

    fn slept() -> Vec<Duration> {
        SLEPT.with(|s| s.take())
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            sleep: record,
            now,
            ..RetryPolicy::default()
        }
    }

    fn client(s: &Script, creds: CredentialSource) -> Client<&Script> {
        client_with(s, creds, Timeouts::default())
    }

    fn client_with(s: &Script, creds: CredentialSource, t: Timeouts) -> Client<&Script> {
        Client::new(s, "reg.example", "https://reg.example", creds, policy(), t)
    }

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn retries_transient_failures_with_backoff() {
        slept();
        let s = script(vec![refused(), status(503), status(502), status(200)]);
        let mut c = client(&s, CredentialSource::None);
        let req = Request::new(Method::Get, c.url("/v2/x"));
        assert_eq!(c.send(&req, &[]).unwrap().status, 200);
        assert_eq!(slept(), ms(&[500, 1000, 2000]));

        // Four tries, then the last failure is the answer.
        let s = script(vec![
            refused(),
            refused(),
            refused(),
            refused(),
            status(200),
        ]);
        let mut c = client(&s, CredentialSource::None);
        let err = c.send(&req, &[]).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Unreachable { registry, .. } if registry == "reg.example"),
            "{err:?}"
        );
        assert_eq!(s.seen.borrow().len(), 4);
        assert_eq!(slept().len(), 3);

        let s = script(vec![status(500), status(500), status(500), status(500)]);
        let mut c = client(&s, CredentialSource::None);
        assert_eq!(c.send(&req, &[]).unwrap().status, 500);
        slept();

        // Rate limiting: Retry-After is honoured, within bounds.
        let s = script(vec![
            with_header(429, "retry-after", "3"),
            with_header(429, "retry-after", "3600"),
            status(201),
        ]);
        let mut c = client(&s, CredentialSource::None);
        assert_eq!(c.send(&req, &[]).unwrap().status, 201);
        assert_eq!(slept(), ms(&[3000, 10_000]));
    }

    #[test]
    fn never_retries_client_errors_or_tls() {
        slept();
        for answer in [
            status(400),
            status(404),
            status(501),
            Err(HttpError::Tls {
                message: "invalid peer certificate: UnknownIssuer".into(),
            }),
            Err(HttpError::HostNotFound {
                message: "failed to lookup address information: Name or service not known".into(),
            }),
        ] {
            let s = script(vec![answer, status(200)]);
            let mut c = client(&s, CredentialSource::None);
            let _ = c.send(&Request::new(Method::Get, c.url("/v2/")), &[]);
            assert_eq!(s.seen.borrow().len(), 1);
        }
        assert!(slept().is_empty());
    }

    fn secs(s: &[f64]) -> Vec<Duration> {
        s.iter().map(|&x| Duration::from_secs_f64(x)).collect()
    }

    fn timed_out() -> Result<Response, HttpError> {
        Err(HttpError::Timeout {
            limit: Limit::Silent,
            after: Duration::from_secs(10),
        })
    }

    #[test]
    fn retries_stay_within_the_request_budget() {
        let t = Timeouts::new(Duration::from_secs(10));
        let req = Request::new(Method::Get, "https://reg.example/v2/");
        slept();

        // A registry that never answers uses the whole budget on the first
        // try: there is no second.
        let s = timed(vec![
            (timed_out(), Duration::from_secs(10)),
            (status(200), Duration::ZERO),
        ]);
        let mut c = client_with(&s, CredentialSource::None, t);
        let err = c.send(&req, &[]).unwrap_err();
        assert!(
            matches!(&err, RegistryError::Timeout { registry, timeout, .. }
                if registry == "reg.example" && *timeout == Duration::from_secs(10)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "registry reg.example timed out: it sent nothing for 10 s \
             (--timeout 10 s; raise it if the registry is only slow)"
        );
        assert_eq!(*s.limits.borrow(), secs(&[10.0]));
        assert!(slept().is_empty());

        // Quick failures are retried, each try getting what is left.
        let second = Duration::from_secs(1);
        let s = timed(vec![
            (refused(), second),
            (refused(), second),
            (refused(), second),
            (status(200), second),
        ]);
        let mut c = client_with(&s, CredentialSource::None, t);
        assert_eq!(c.send(&req, &[]).unwrap().status, 200);
        assert_eq!(*s.limits.borrow(), secs(&[10.0, 8.5, 6.5, 3.5]));
        assert_eq!(slept(), ms(&[500, 1000, 2000]));

        // Slow failures: the third try ends at the budget, and no fourth
        // starts. 3 + 0.5 + 3 + 1 + 2.5 = 10 s in all.
        let three = Duration::from_secs(3);
        let s = timed(vec![
            (refused(), three),
            (status(503), three),
            (timed_out(), three),
            (status(200), Duration::ZERO),
        ]);
        let mut c = client_with(&s, CredentialSource::None, t);
        assert!(matches!(
            c.send(&req, &[]),
            Err(RegistryError::Timeout { .. })
        ));
        assert_eq!(*s.limits.borrow(), secs(&[10.0, 6.5, 2.5]));
        assert_eq!(slept(), ms(&[500, 1000]));

        // A try stopped by the request's limit had only what was left of
        // it; the message names the whole budget.
        let s = timed(vec![
            (refused(), three),
            (
                Err(HttpError::Timeout {
                    limit: Limit::Request,
                    after: Duration::from_millis(6500),
                }),
                Duration::from_millis(6500),
            ),
        ]);
        let mut c = client_with(&s, CredentialSource::None, t);
        let err = c.send(&req, &[]).unwrap_err().to_string();
        assert!(
            err.contains("timed out: no complete answer within 10 s"),
            "{err}"
        );
        slept();

        // A wait the budget cannot cover is not started: the 429 is the
        // answer.
        let s = timed(vec![
            (with_header(429, "retry-after", "9"), Duration::from_secs(2)),
            (status(200), Duration::ZERO),
        ]);
        let mut c = client_with(&s, CredentialSource::None, t);
        assert_eq!(c.send(&req, &[]).unwrap().status, 429);
        assert!(slept().is_empty());

        // An upload's budget grows with its size: 10 s + 1 s per 16 KiB.
        let s = script(vec![status(201)]);
        let mut c = client_with(&s, CredentialSource::None, t);
        let upload = Request::new(Method::Put, "https://reg.example/v2/a/blobs/uploads/u")
            .body(Body::Bytes(vec![0; 5 * 16 * 1024]));
        c.send(&upload, &[]).unwrap();
        assert_eq!(*s.limits.borrow(), secs(&[15.0]));
    }

    #[test]
    fn basic_challenge() {
        let s = script(vec![
            with_header(401, "www-authenticate", "Basic realm=\"r\""),
            status(200),
            status(401),
            status(401),
        ]);
        let creds = Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let mut c = client(&s, CredentialSource::Given(creds));
        c.ping().unwrap();
        let req = Request::new(Method::Head, c.url("/v2/a/blobs/x"));
        assert_eq!(c.send(&req, &[]).unwrap().status, 200);
        let err = c.send(&req, &[]).unwrap_err();
        assert!(
            matches!(&err, RegistryError::CredentialsRejected { origin, username: Some(u), .. }
                if origin == "--creds" && u == "u"),
            "{err:?}"
        );
        let seen = s.seen.borrow();
        assert_eq!(
            seen[0].header_value("authorization"),
            None,
            "ping is anonymous"
        );
        for r in &seen[1..] {
            assert_eq!(r.header_value("authorization"), Some("Basic dTpw"));
        }
        let msg = err.to_string();
        assert!(msg.contains("rejected") && !msg.contains("dTpw"), "{msg}");
    }

    #[test]
    fn missing_credentials() {
        let s = script(vec![
            with_header(401, "www-authenticate", "Basic realm=\"r\""),
            status(401),
            status(401),
        ]);
        let mut c = client(&s, CredentialSource::Lookup(AuthEnv::default()));
        c.ping().unwrap();
        let err = c
            .send(&Request::new(Method::Head, c.url("/v2/a/blobs/x")), &[])
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::CredentialsMissing { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bearer_tokens_per_scope_and_renewal() {
        let bearer = r#"Bearer realm="https://auth.example/token",service="reg""#;
        let token = |t: &str| {
            Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: format!(r#"{{"token":"{t}","expires_in":300}}"#).into_bytes(),
            })
        };
        let s = script(vec![
            with_header(401, "www-authenticate", bearer), // ping
            token("t1"),                                  // scope a
            status(200),                                  // request 1
            status(200),                                  // request 2, cached token
            token("t2"),                                  // scope b
            status(201),                                  // request 3
            with_header(
                401,
                "www-authenticate",
                &format!("{bearer},scope=\"repository:a:pull,push\",error=\"invalid_token\""),
            ),
            token("t3"), // renewed
            status(200),
        ]);
        let creds = Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let mut c = client(&s, CredentialSource::Given(creds));
        c.ping().unwrap();
        let a = vec!["repository:a:pull,push".to_owned()];
        let b = vec![
            "repository:b:pull,push".to_owned(),
            "repository:a:pull".to_owned(),
        ];
        let req = Request::new(Method::Head, c.url("/v2/a/blobs/x"));
        c.send(&req, &a).unwrap();
        c.send(&req, &a).unwrap();
        c.send(&req, &b).unwrap();
        c.send(&req, &a).unwrap();
        let seen = s.seen.borrow();
        let auth: Vec<Option<&str>> = seen
            .iter()
            .map(|r| r.header_value("authorization"))
            .collect();
        assert_eq!(
            auth,
            [
                None,
                Some("Basic dTpw"),
                Some("Bearer t1"),
                Some("Bearer t1"),
                Some("Basic dTpw"),
                Some("Bearer t2"),
                Some("Bearer t1"),
                Some("Basic dTpw"),
                Some("Bearer t3"),
            ]
        );
        assert_eq!(
            seen[1].url,
            "https://auth.example/token?service=reg&scope=repository%3Aa%3Apull%2Cpush"
        );
        assert_eq!(
            seen[4].url,
            "https://auth.example/token?service=reg&scope=repository%3Ab%3Apull%2Cpush&scope=repository%3Aa%3Apull"
        );
    }

    #[test]
    fn identity_token_uses_the_oauth2_refresh_grant() {
        let s = script(vec![
            with_header(
                401,
                "www-authenticate",
                r#"Bearer realm="https://auth.example/token",service="reg""#,
            ),
            Ok(Response {
                status: 200,
                headers: Vec::new(),
                body: br#"{"access_token":"acc"}"#.to_vec(),
            }),
            status(200),
        ]);
        let mut c = client(
            &s,
            CredentialSource::Given(Credential::IdentityToken("refresh me".into())),
        );
        c.ping().unwrap();
        let req = Request::new(Method::Head, c.url("/v2/a/blobs/x"));
        c.send(&req, &["repository:a:pull,push".to_owned()])
            .unwrap();
        let seen = s.seen.borrow();
        assert_eq!(seen[1].method, Method::Post);
        assert_eq!(seen[1].url, "https://auth.example/token");
        assert_eq!(
            seen[1].header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            seen[1].body,
            Body::Bytes(
                b"grant_type=refresh_token&refresh_token=refresh%20me&client_id=mkimage&service=reg&scope=repository%3Aa%3Apull%2Cpush".to_vec()
            )
        );
        assert_eq!(seen[2].header_value("authorization"), Some("Bearer acc"));
    }

    #[test]
    fn token_server_rejection_and_foreign_hosts() {
        let s = script(vec![
            with_header(
                401,
                "www-authenticate",
                r#"Bearer realm="https://auth.example/token""#,
            ),
            status(401),
        ]);
        let creds = Credential::Basic {
            username: "u".into(),
            password: "wrong".into(),
        };
        let mut c = client(&s, CredentialSource::Given(creds.clone()));
        c.ping().unwrap();
        let err = c
            .send(&Request::new(Method::Head, c.url("/v2/a/blobs/x")), &[])
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::CredentialsRejected { .. }),
            "{err:?}"
        );

        // Upload locations on another host get no credentials.
        let s = script(vec![
            with_header(401, "www-authenticate", "Basic realm=\"r\""),
            status(201),
        ]);
        let mut c = client(&s, CredentialSource::Given(creds));
        c.ping().unwrap();
        c.send(
            &Request::new(Method::Put, "https://storage.example/up?x"),
            &[],
        )
        .unwrap();
        assert_eq!(s.seen.borrow()[1].header_value("authorization"), None);
    }

    #[test]
    fn locations() {
        let s = script(vec![]);
        let c = client(&s, CredentialSource::None);
        assert_eq!(
            c.resolve("/v2/a/blobs/uploads/u?_state=x"),
            "https://reg.example/v2/a/blobs/uploads/u?_state=x"
        );
        assert_eq!(c.resolve("http://other:5000/u"), "http://other:5000/u");
        assert_eq!(c.resolve("//cdn.example/u"), "https://cdn.example/u");
    }
}
