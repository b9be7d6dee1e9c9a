//! [`Http`] over ureq: TLS by rustls with the system's CAs and
//! `--ca-cert`, the time limits of [`Timeouts`], redirects for reads, and
//! ureq's and the OS's failures sorted into [`HttpError`]s.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::http::{
    Body, Http, HttpError, Limit, MAX_RESPONSE_BODY, Method, Request, Response, Streamed,
};
use crate::registry::RegistryError;
use crate::registry::timeouts::Timeouts;

/// Redirects followed for GET and HEAD (a registry may send blob reads to
/// storage). Never for POST or PUT: a streamed body cannot be replayed, and
/// the protocol moves uploads with `Location`, not redirects.
const MAX_REDIRECTS: u32 = 5;

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
/// uncategorised, so the text is all there is to tell it by.
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
