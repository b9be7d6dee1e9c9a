//! The registry client (src/registry/transport.rs) against a registry
//! whose answers are the input: `WWW-Authenticate` challenges, token JSON,
//! error bodies, `Retry-After`, `Location`. The input is a script: a first
//! line naming the credentials (`basic`, `token` or anything else for
//! none), then answers separated by `\n---\n`, each `STATUS\nheader:
//! value\n...\n\nBODY` (a STATUS of `timeout`, `refused` or `reset` is that
//! network failure instead).
#![no_main]

use std::cell::RefCell;
use std::io;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mkimage::Credential;
use mkimage::Timeouts;
use mkimage::transport::{
    Client, CredentialSource, Http, HttpError, Limit, Method, Request, Response, RetryPolicy,
};

/// Answers past this many are ignored: a push takes a few dozen.
const MAX_ANSWERS: usize = 64;

struct Script(RefCell<Vec<Result<Response, HttpError>>>);

impl Http for &Script {
    fn send(&self, _req: &Request, _limit: Duration) -> Result<Response, HttpError> {
        let mut answers = self.0.borrow_mut();
        if answers.is_empty() {
            return Err(HttpError::Other {
                message: "the script has ended".into(),
            });
        }
        answers.remove(0)
    }
}

fn answer(text: &str) -> Result<Response, HttpError> {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").trim();
    let status = match status {
        "timeout" => {
            return Err(HttpError::Timeout {
                limit: Limit::Silent,
                after: Duration::from_secs(1),
            });
        }
        "refused" => {
            return Err(HttpError::Connect {
                source: io::ErrorKind::ConnectionRefused.into(),
            });
        }
        "reset" => {
            return Err(HttpError::Io {
                source: io::ErrorKind::ConnectionReset.into(),
            });
        }
        s => s.parse().unwrap_or(500),
    };
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    })
}

fn no_sleep(_: Duration) {}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (creds, script) = text.split_once('\n').unwrap_or((&text, ""));
    let credentials = match creds.trim() {
        "basic" => CredentialSource::Given(Credential::Basic {
            username: "user".into(),
            password: "secret".into(),
        }),
        "token" => CredentialSource::Given(Credential::IdentityToken("refresh".into())),
        _ => CredentialSource::None,
    };
    let answers = script
        .split("\n---\n")
        .take(MAX_ANSWERS)
        .map(answer)
        .collect();
    let script = Script(RefCell::new(answers));
    let retry = RetryPolicy {
        delays: vec![Duration::ZERO, Duration::ZERO],
        sleep: no_sleep,
        now: Instant::now,
    };
    let mut client = Client::new(
        &script,
        "reg.example",
        "https://reg.example",
        credentials,
        retry,
        Timeouts::default(),
    );
    if let Err(e) = client.ping() {
        let _ = mkimage_fuzz::show_chain(&e);
        return;
    }
    // A blob check, an upload start and a manifest put, as push sends them.
    let requests = [
        (
            Method::Head,
            "/v2/app/blobs/sha256:0",
            "repository:app:pull,push",
        ),
        (
            Method::Post,
            "/v2/app/blobs/uploads/",
            "repository:app:pull,push",
        ),
        (
            Method::Put,
            "/v2/app/manifests/latest",
            "repository:app:push",
        ),
    ];
    for (method, path, scope) in requests {
        let req = Request::new(method, client.url(path));
        match client.send(&req, &[scope.to_owned()]) {
            Ok(resp) => {
                let _ = resp.message();
                if let Some(location) = resp.header("location") {
                    let _ = client.resolve(location);
                }
            }
            Err(e) => {
                let _ = mkimage_fuzz::show_chain(&e);
            }
        }
    }
});
