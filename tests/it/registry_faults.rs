//! `mkimage push` against servers that misbehave, each a few lines on
//! 127.0.0.1 in the test: one that accepts and never answers, one that
//! trickles its answer, ones that answer anything with success. The push
//! must fail, promptly and saying why, and never report "Pushed"; a
//! registry it must not reach (an out-of-range port) is never connected to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::registry::{build_image, push_command};
use crate::util::{mkimage, run_within, tempdir};

/// Longer than any of these pushes may take: past it the push hangs, which
/// is the bug, and the watchdog kills it.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(60);

/// How long a fake server holds a connection it does not answer.
const HOLD: Duration = Duration::from_secs(90);

/// The `--timeout` of these tests, and what a push may take beyond it on
/// two cores shared with other tests (start-up, reading the layout).
const TIMEOUT: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(6);

/// How a fake server treats each connection.
pub(crate) type Handler = fn(TcpStream);

/// A fake server: its port, and how many connections it has accepted.
pub(crate) struct Server {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// Serves each connection with `handle`, on a thread of its own, until
    /// the test process ends.
    pub(crate) fn start(handle: Handler) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || handle(stream));
            }
        });
        Server { port, connections }
    }

    /// `127.0.0.1:PORT`
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Accepts, then neither reads nor answers.
pub(crate) fn silent(stream: TcpStream) {
    std::thread::sleep(HOLD);
    drop(stream);
}

/// Reads the request, then sends a status line and a header a byte every
/// 200 ms: never idle long enough for an idle limit.
fn trickle(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let _ = read_request(&mut BufReader::new(stream));
    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ");
    let start = Instant::now();
    while start.elapsed() < HOLD {
        std::thread::sleep(Duration::from_millis(200));
        if writer.write_all(b"a").is_err() {
            return;
        }
    }
}

/// One HTTP/1.1 request off the connection: its method and path; its body
/// is read and dropped.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut length = 0;
    loop {
        let mut header = String::new();
        r.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    std::io::copy(&mut r.by_ref().take(length), &mut std::io::sink()).ok()?;
    Some((method, path))
}

/// Answers each request on the connection with `answer(method, path)`.
pub(crate) fn answering(stream: TcpStream, answer: fn(&str, &str) -> String) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some((method, path)) = read_request(&mut reader) {
        if writer.write_all(answer(&method, &path).as_bytes()).is_err() {
            return;
        }
    }
}

/// What a catch-all web server does: 200 and its page, to anything.
fn ok_to_everything(method: &str, _: &str) -> String {
    let body = if method == "HEAD" { "" } else { "garbage" };
    format!("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{body}")
}

/// Every step of a push "succeeds", but with nothing to show for the
/// manifest: 200, with no digest, where a registry says 201 Created.
fn stores_nothing(method: &str, path: &str) -> String {
    let (status, headers) = match method {
        "GET" => ("200 OK", ""),
        "HEAD" => ("404 Not Found", ""),
        "POST" => ("202 Accepted", "Location: /v2/app/blobs/uploads/1\r\n"),
        "PUT" if path.contains("/blobs/uploads/") => ("201 Created", ""),
        _ => ("200 OK", ""),
    };
    format!("HTTP/1.1 {status}\r\n{headers}Content-Length: 0\r\n\r\n")
}

#[test]
fn a_registry_that_never_answers_or_trickles_times_out() {
    let tmp = tempdir();
    build_image(tmp.path());
    let cases: [(&str, Handler, bool); 3] = [
        ("silent, plain HTTP", silent, true),
        // The TLS handshake waits for a ServerHello that never comes.
        ("silent, TLS", silent, false),
        // A byte every 200 ms trips no idle limit: the request's does.
        ("trickling", trickle, true),
    ];
    for (name, handle, insecure) in cases {
        let server = Server::start(handle);
        let host = server.host();
        let reference = format!("{host}/app");
        let mut args = vec!["app.oci", &reference, "--timeout", "2"];
        if insecure {
            args.extend(["--insecure-registry", &host]);
        }
        let start = Instant::now();
        let out = run_within(&mut push_command(tmp.path(), &args), WATCHDOG);
        let took = start.elapsed();
        assert_eq!(out.status.code(), Some(2), "{name}: {out}");
        assert!(
            out.stderr.contains(&format!("registry {host} timed out: "))
                && out
                    .stderr
                    .contains("(--timeout 2 s; raise it if the registry is only slow)"),
            "{name}: {out}"
        );
        assert!(!out.stdout.contains("Pushed"), "{name}: {out}");
        assert!(
            took >= TIMEOUT && took < TIMEOUT + SLACK,
            "{name}: took {took:?} with --timeout 2"
        );
        assert_eq!(
            server.connections(),
            1,
            "{name}: the first try used the whole budget, so there is no retry"
        );
    }

    // `--push` takes --timeout too; the image is built before the push
    // fails.
    let server = Server::start(silent);
    let host = server.host();
    let out = run_within(
        mkimage()
            .current_dir(tmp.path())
            .env("HOME", tmp.path())
            .arg("--from-binary")
            .arg(tmp.path().join("hello"))
            .args(["-o", "pushed.oci", "-q"])
            .args([
                "--push",
                &format!("{host}/app"),
                "--insecure-registry",
                &host,
            ])
            .args(["--timeout", "1"]),
        WATCHDOG,
    );
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!("registry {host} timed out: "))
            && out.stderr.contains("(--timeout 1 s;"),
        "{out}"
    );
    assert!(tmp.path().join("pushed.oci/index.json").is_file());
}

#[test]
fn an_out_of_range_port_is_refused_before_any_connection() {
    let tmp = tempdir();
    build_image(tmp.path());
    // http::Uri reads port 99999 as none: this went to port 80, with the
    // credentials.
    let start = Instant::now();
    let out = run_within(
        &mut push_command(
            tmp.path(),
            &[
                "app.oci",
                "127.0.0.1:99999/x:1",
                "--insecure-registry",
                "127.0.0.1:99999",
                "--creds",
                "u:p",
            ],
        ),
        WATCHDOG,
    );
    assert_eq!(out.status.code(), Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "invalid reference \"127.0.0.1:99999/x:1\": \"127.0.0.1:99999\" is not a valid \
             registry host: port 99999 is out of range (1 to 65535)"
        ),
        "{out}"
    );
    assert!(!out.stderr.contains("cannot reach"), "{out}");
    assert!(start.elapsed() < SLACK, "took {:?}", start.elapsed());

    // A bad --insecure-registry is refused too, before the registry of the
    // (good) reference is connected to.
    let server = Server::start(silent);
    let reference = format!("{}/x:1", server.host());
    for (flag, reason) in [
        ("127.0.0.1:99999", "port 99999 is out of range (1 to 65535)"),
        ("127.0.0.1:", "the port after ':' is empty"),
        ("127.0.0.1:http", "port \"http\" is not a number"),
    ] {
        let out = run_within(
            &mut push_command(
                tmp.path(),
                &[
                    "app.oci",
                    &reference,
                    "--insecure-registry",
                    flag,
                    "--creds",
                    "u:p",
                ],
            ),
            WATCHDOG,
        );
        assert_eq!(out.status.code(), Some(2), "{flag}: {out}");
        assert!(
            out.stderr.contains(&format!(
                "--insecure-registry: invalid registry {flag:?}: {reason}"
            )),
            "{flag}: {out}"
        );
    }
    assert_eq!(server.connections(), 0, "nothing was sent anywhere");
}

#[test]
fn a_server_that_answers_anything_with_success_fails_the_push() {
    let tmp = tempdir();
    build_image(tmp.path());
    let cases: [(&str, Handler, &str); 2] = [
        (
            "200 and a page to everything",
            |s| answering(s, ok_to_everything),
            "says the blob is there with Content-Length \"7\"",
        ),
        (
            "a manifest PUT answered 200 with no digest",
            |s| answering(s, stores_nothing),
            "answered HTTP 200 with no Docker-Content-Digest, so nothing shows the manifest \
             was stored",
        ),
    ];
    for (name, handle, reason) in cases {
        let server = Server::start(handle);
        let host = server.host();
        let out = run_within(
            &mut push_command(
                tmp.path(),
                &[
                    "app.oci",
                    &format!("{host}/app:v1"),
                    "--insecure-registry",
                    &host,
                ],
            ),
            WATCHDOG,
        );
        assert_eq!(out.status.code(), Some(2), "{name}: {out}");
        assert!(
            out.stderr.contains(&format!("registry {host}: ")) && out.stderr.contains(reason),
            "{name}: {out}"
        );
        assert!(!out.stdout.contains("Pushed"), "{name}: {out}");
    }
}
