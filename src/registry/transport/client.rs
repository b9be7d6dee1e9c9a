//! The registry API client: what the distribution spec and docker's token
//! spec ask of one. It answers `WWW-Authenticate` challenges (Basic, or
//! Bearer tokens from the realm, per scope), retries what may pass a
//! moment later within each request's budget, and names the registry in
//! every error.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::challenge::{Challenge, challenge_of};
use super::http::{Answer, Body, Http, HttpError, Limit, Method, Request, Response, Streamed};
use super::retry::{RetryPolicy, is_transient_status, retry_after};
use crate::registry::RegistryError;
use crate::registry::auth::{self, AuthEnv, Credential, Found};
use crate::registry::timeouts::Timeouts;

/// What this client calls itself to OAuth2 token servers (docker's token
/// spec requires a `client_id` on the refresh-token grant).
const CLIENT_ID: &str = "mkimage";

/// Where a client's credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// `--creds`.
    Given(Credential),
    /// Saved logins, looked up only when the registry asks for credentials.
    Lookup(AuthEnv),
    None,
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
        self.authorised(req, scope, |c, r| {
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
        self.authorised(req, scope, |c, r| {
            c.retrying(r, budget, |r, left| c.http.open(r, left))
        })
    }

    /// Runs `go` with credentials for `scope`; see [`Client::send`].
    fn authorised<T: Answer>(
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
                401 => return Err(self.unauthorised(&resp.into_response())?),
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
            401 | 403 => return Err(self.unauthorised(&resp)?),
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
    fn unauthorised(&mut self, resp: &Response) -> Result<RegistryError, RegistryError> {
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

fn basic_auth(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}
