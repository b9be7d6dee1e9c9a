//! The transport's parts together: challenges, queries, retries within
//! the budget, Basic and Bearer flows, on a scripted [`Http`].

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use super::*;
use crate::registry::RegistryError;
use crate::registry::auth::{AuthEnv, Credential};
use crate::registry::timeouts::Timeouts;

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
        body:
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match"}]}"#
                .to_vec(),
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
