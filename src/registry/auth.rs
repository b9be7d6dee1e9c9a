//! Registry credentials: `--creds USER:PASS`, or what `podman login` and
//! `docker login` saved, found the way containers/image and the docker CLI
//! look: auth files (`auths`), then credential helpers (`credHelpers`,
//! `credsStore`, speaking docker-credential-helpers' `get` protocol).
//!
//! Not the docker_credential crate: it reads docker's config.json only,
//! not podman's auth.json (`$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR`),
//! which containers/image looks at first and so do we.
//!
//! Secrets never reach a message: `Debug` redacts them, and errors name
//! files, keys and helpers, never values (not even a JSON parser's excerpt).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::reference::{DEFAULT_REGISTRY, DOCKER_HUB_API_HOST, LEGACY_DEFAULT_REGISTRY};

/// Docker Hub's credentials are stored under its v1 index URL, a key kept
/// from the days of the v1 API; `docker login` still writes it.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Names Docker Hub's credentials may be stored under.
const DOCKER_HUB_HOSTS: [&str; 3] = [
    DEFAULT_REGISTRY,
    LEGACY_DEFAULT_REGISTRY,
    DOCKER_HUB_API_HOST,
];

/// The username a credential helper returns for an identity token
/// (docker-credential-helpers' convention, from `docker login` with a
/// token server that issues refresh tokens).
const TOKEN_USERNAME: &str = "<token>";

/// What helpers print when they hold nothing for the server
/// (docker-credential-helpers' `credentials.errCredentialsNotFound`).
const HELPER_NOT_FOUND: &str = "credentials not found";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A username and password (or an access token used as a password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (docker's `identitytoken`), exchanged at the
    /// registry's token server for access tokens.
    IdentityToken(String),
}

impl Credential {
    /// `USER:PASS` as given to `--creds`. The password may contain ':'.
    pub fn from_user_pass(s: &str) -> Result<Credential, AuthError> {
        match s.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => Ok(Credential::Basic {
                username: user.to_owned(),
                password: pass.to_owned(),
            }),
            _ => Err(AuthError::CredsFormat),
        }
    }

    /// The username, if it is not a secret itself.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } => Some(username),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// Redacts the secret: a credential may end up in a `{:?}` of something
/// bigger (options, a panic message).
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// A credential and where it was found, for messages ("rejected the
/// credentials from /root/.docker/config.json").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub credential: Credential,
    pub origin: String,
}

/// Where to look for saved credentials, resolved from the environment once
/// so that lookups (and their tests) do not read it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthEnv {
    /// Auth files in the order they are consulted; missing ones are skipped.
    pub files: Vec<PathBuf>,
    /// `PATH` for finding `docker-credential-*` helpers; `None` inherits ours.
    pub helper_path: Option<OsString>,
}

impl AuthEnv {
    /// The files podman and docker use, from this process's environment.
    pub fn from_env() -> AuthEnv {
        AuthEnv::from_vars(|name| std::env::var_os(name))
    }

    /// As containers-auth.json(5) and docker's config describe:
    /// `$REGISTRY_AUTH_FILE` if set, else podman's
    /// `${XDG_RUNTIME_DIR}/containers/auth.json`; then docker's
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> AuthEnv {
        let set = |name| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let mut files = Vec::new();
        if let Some(f) = set("REGISTRY_AUTH_FILE") {
            files.push(f);
        } else if let Some(dir) = set("XDG_RUNTIME_DIR") {
            files.push(dir.join("containers/auth.json"));
        }
        if let Some(dir) = set("DOCKER_CONFIG") {
            files.push(dir.join("config.json"));
        } else if let Some(home) = set("HOME") {
            files.push(home.join(".docker/config.json"));
        }
        AuthEnv {
            files,
            helper_path: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("--creds must be USER:PASS, with a non-empty user and password")]
    CredsFormat,
    #[error("cannot read auth file {}", path.display())]
    Read { path: PathBuf, source: io::Error },
    // serde_json's message can quote the offending value, which may be a
    // secret: keep only the position.
    #[error(
        "auth file {} is not valid JSON of the expected shape (line {line}, column {column})",
        path.display()
    )]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    #[error(
        "auth file {}: the \"auth\" entry for {key:?} is not base64 of USER:PASS",
        path.display()
    )]
    BadAuthEntry { path: PathBuf, key: String },
    #[error(
        "auth file {}: credential helper name {helper:?} is not a plain name",
        path.display()
    )]
    HelperName { path: PathBuf, helper: String },
    #[error("cannot run credential helper {program} (configured in {})", path.display())]
    HelperSpawn {
        program: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("credential helper {program} failed ({status}): {message}")]
    HelperFailed {
        program: String,
        status: String,
        message: String,
    },
    #[error(
        "credential helper {program} printed something other than {{\"Username\", \"Secret\"}} JSON"
    )]
    HelperOutput { program: String },
}

/// The credential for `registry` (`HOST[:PORT]`, as in a reference) from the
/// first auth file that has one, or `None`.
///
/// Within a file: `credHelpers[registry]`, else `credsStore`, asked first
/// (docker keeps only empty placeholders in `auths` when a store is set);
/// then the `auths` entry.
pub fn lookup(env: &AuthEnv, registry: &str) -> Result<Option<Found>, AuthError> {
    let hosts = hosts_of(registry);
    let server_url = if hosts.len() > 1 {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    };
    for path in &env.files {
        let bytes = match crate::bounded::read(path, crate::bounded::TEXT_LIMIT) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(AuthError::Read {
                    path: path.clone(),
                    source,
                });
            }
        };
        let file = AuthFile::parse(&bytes, path)?;
        if let Some(program) = file.helper_for(&hosts, path)?
            && let Some(credential) = run_helper(&program, server_url, env, path)?
        {
            return Ok(Some(Found {
                credential,
                origin: format!("credential helper {program}"),
            }));
        }
        if let Some(credential) = file.entry_for(&hosts, path)? {
            return Ok(Some(Found {
                credential,
                origin: path.display().to_string(),
            }));
        }
    }
    Ok(None)
}

/// The names `registry`'s credentials may be stored under.
pub fn hosts_of(registry: &str) -> Vec<&str> {
    if DOCKER_HUB_HOSTS.contains(&registry) {
        DOCKER_HUB_HOSTS.to_vec()
    } else {
        vec![registry]
    }
}

/// The parts of docker's config.json and containers-auth.json(5) we use;
/// every other key is ignored. No `Debug`: the entries hold secrets.
#[derive(Deserialize, Default)]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// Parses an auth file's bytes; `path` is for messages. Pure: [`lookup`]
    /// reads the file (and the fuzz targets in fuzz/ hand bytes in).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<AuthFile, AuthError> {
        serde_json::from_slice(bytes).map_err(|e| AuthError::Parse {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
        })
    }

    /// The credential helper program to ask first for `hosts`, if any:
    /// `credHelpers[host]`, else `credsStore`.
    pub fn helper_for(&self, hosts: &[&str], path: &Path) -> Result<Option<String>, AuthError> {
        hosts
            .iter()
            .find_map(|h| self.cred_helpers.get(*h))
            .or(self.creds_store.as_ref())
            .filter(|h| !h.is_empty())
            .map(|h| helper_program(h, path))
            .transpose()
    }

    /// The `auths` entry whose key names one of `hosts`. Keys may be bare
    /// hosts or URLs (`https://host/v1/`, as old docker versions wrote).
    /// An entry with nothing in it (a placeholder) counts as none.
    pub fn entry_for(&self, hosts: &[&str], path: &Path) -> Result<Option<Credential>, AuthError> {
        for (key, entry) in &self.auths {
            if !hosts.contains(&key_host(key)) {
                continue;
            }
            if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
                return Ok(Some(Credential::IdentityToken(token.to_owned())));
            }
            if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
                let bad = || AuthError::BadAuthEntry {
                    path: path.to_path_buf(),
                    key: key.clone(),
                };
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad())?;
                let text = String::from_utf8(decoded).map_err(|_| bad())?;
                return Credential::from_user_pass(&text)
                    .map(Some)
                    .map_err(|_| bad());
            }
            if let (Some(u), Some(p)) = (&entry.username, &entry.password)
                && !u.is_empty()
                && !p.is_empty()
            {
                return Ok(Some(Credential::Basic {
                    username: u.clone(),
                    password: p.clone(),
                }));
            }
        }
        Ok(None)
    }
}

/// The host an `auths` key names: `https://host:5000/v1/` → `host:5000`.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// `docker-credential-<name>`, refusing names that would make it a path.
fn helper_program(name: &str, path: &Path) -> Result<String, AuthError> {
    if name.contains('/') || name.contains(char::is_whitespace) {
        return Err(AuthError::HelperName {
            path: path.to_path_buf(),
            helper: name.to_owned(),
        });
    }
    Ok(format!("docker-credential-{name}"))
}

/// Runs `program get` with `server_url` on stdin, as the docker CLI does.
/// A helper that holds nothing for the server gives `None`.
fn run_helper(
    program: &str,
    server_url: &str,
    env: &AuthEnv,
    config: &Path,
) -> Result<Option<Credential>, AuthError> {
    let mut cmd = Command::new(program);
    cmd.arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(path) = &env.helper_path {
        cmd.env("PATH", path);
    }
    let spawn_err = |source| AuthError::HelperSpawn {
        program: program.to_owned(),
        path: config.to_path_buf(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading closes the pipe: its exit
        // status and output tell what happened, not this write.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout.contains(HELPER_NOT_FOUND) || stderr.contains(HELPER_NOT_FOUND) {
            return Ok(None);
        }
        let message = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        return Err(AuthError::HelperFailed {
            program: program.to_owned(),
            status: out.status.to_string(),
            message,
        });
    }
    parse_helper_reply(&out.stdout, program)
}

/// A helper's answer to `get` (`{"Username", "Secret"}`); `None` when it
/// holds nothing usable. Pure, apart from `run_helper` for the fuzz
/// targets in fuzz/.
pub fn parse_helper_reply(stdout: &[u8], program: &str) -> Result<Option<Credential>, AuthError> {
    #[derive(Deserialize)]
    struct HelperReply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let reply: HelperReply =
        serde_json::from_slice(stdout).map_err(|_| AuthError::HelperOutput {
            program: program.to_owned(),
        })?;
    Ok(match (reply.username.as_str(), reply.secret) {
        (_, s) if s.is_empty() => None,
        (TOKEN_USERNAME, s) => Some(Credential::IdentityToken(s)),
        ("", _) => None,
        (u, s) => Some(Credential::Basic {
            username: u.to_owned(),
            password: s,
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    fn env(files: &[&PathBuf]) -> AuthEnv {
        AuthEnv {
            files: files.iter().map(|p| (*p).clone()).collect(),
            helper_path: None,
        }
    }

    fn credential(env: &AuthEnv, registry: &str) -> Option<Credential> {
        lookup(env, registry).unwrap().map(|f| f.credential)
    }

    #[test]
    fn creds_flag() {
        assert_eq!(
            Credential::from_user_pass("user:pa:ss").unwrap(),
            basic("user", "pa:ss")
        );
        for bad in ["", "user", ":pass", "user:", ":"] {
            assert!(
                matches!(Credential::from_user_pass(bad), Err(AuthError::CredsFormat)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = format!(
            "{:?} {:?}",
            basic("alice", "hunter2"),
            Credential::IdentityToken("tok123".into())
        );
        assert!(s.contains("alice"), "{s}");
        assert!(!s.contains("hunter2") && !s.contains("tok123"), "{s}");
    }

    #[test]
    fn env_order() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let files = |e: AuthEnv| e.files;
        assert_eq!(
            files(AuthEnv::from_vars(vars(&[
                ("REGISTRY_AUTH_FILE", "/a.json"),
                ("XDG_RUNTIME_DIR", "/run/user/0"),
                ("DOCKER_CONFIG", "/dc"),
                ("HOME", "/home/u"),
            ]))),
            [PathBuf::from("/a.json"), PathBuf::from("/dc/config.json")]
        );
        assert_eq!(
            files(AuthEnv::from_vars(vars(&[
                ("XDG_RUNTIME_DIR", "/run/user/0"),
                ("HOME", "/home/u"),
            ]))),
            [
                PathBuf::from("/run/user/0/containers/auth.json"),
                PathBuf::from("/home/u/.docker/config.json")
            ]
        );
        assert_eq!(
            files(AuthEnv::from_vars(vars(&[("REGISTRY_AUTH_FILE", "")]))),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn auths_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let config = write(
            tmp.path(),
            "config.json",
            &format!(
                r#"{{
                  "auths": {{
                    "registry.example.com": {{"auth": "{}"}},
                    "http://old.example.com/v1/": {{"auth": "{}"}},
                    "fields.example.com:5000": {{"username": "bob", "password": "pw"}},
                    "tok.example.com": {{"auth": "", "identitytoken": "refresh-me"}},
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "empty.example.com": {{}}
                  }},
                  "psFormat": "ignored"
                }}"#,
                b64("alice:se:cret"),
                b64("old:pw"),
                b64("hub:pw")
            ),
        );
        let e = env(&[&config]);
        assert_eq!(
            credential(&e, "registry.example.com"),
            Some(basic("alice", "se:cret"))
        );
        assert_eq!(credential(&e, "old.example.com"), Some(basic("old", "pw")));
        assert_eq!(
            credential(&e, "fields.example.com:5000"),
            Some(basic("bob", "pw"))
        );
        assert_eq!(credential(&e, "fields.example.com"), None, "port matters");
        assert_eq!(
            credential(&e, "tok.example.com"),
            Some(Credential::IdentityToken("refresh-me".into()))
        );
        assert_eq!(credential(&e, "docker.io"), Some(basic("hub", "pw")));
        assert_eq!(credential(&e, "empty.example.com"), None);
        assert_eq!(credential(&e, "other.example.com"), None);
        assert_eq!(
            lookup(&e, "registry.example.com").unwrap().unwrap().origin,
            config.display().to_string()
        );
    }

    #[test]
    fn files_in_order_and_missing_ones_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = write(
            tmp.path(),
            "run/containers/auth.json",
            &format!(
                r#"{{"auths": {{"a.example.com": {{"auth": "{}"}}}}}}"#,
                b64("podman:1")
            ),
        );
        let second = write(
            tmp.path(),
            ".docker/config.json",
            &format!(
                r#"{{"auths": {{"a.example.com": {{"auth": "{}"}}, "b.example.com": {{"auth": "{}"}}}}}}"#,
                b64("docker:2"),
                b64("docker:3")
            ),
        );
        let missing = tmp.path().join("nope.json");
        let e = env(&[&missing, &first, &second]);
        assert_eq!(credential(&e, "a.example.com"), Some(basic("podman", "1")));
        assert_eq!(credential(&e, "b.example.com"), Some(basic("docker", "3")));
    }

    #[test]
    fn bad_files_are_errors_that_quote_no_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let garbage = write(
            tmp.path(),
            "garbage.json",
            r#"{"auths": {"a.example.com": {"auth": 12345678}}}"#,
        );
        let err = lookup(&env(&[&garbage]), "a.example.com").unwrap_err();
        assert!(
            matches!(&err, AuthError::Parse { path, line: 1, .. } if *path == garbage),
            "{err:?}"
        );
        assert!(!err.to_string().contains("12345678"), "{err}");

        let bad = write(
            tmp.path(),
            "bad.json",
            r#"{"auths": {"a.example.com": {"auth": "not base64!"}}}"#,
        );
        let err = lookup(&env(&[&bad]), "a.example.com").unwrap_err();
        assert!(
            matches!(&err, AuthError::BadAuthEntry { key, .. } if key == "a.example.com"),
            "{err:?}"
        );
        let no_colon = write(
            tmp.path(),
            "nocolon.json",
            &format!(
                r#"{{"auths": {{"a.example.com": {{"auth": "{}"}}}}}}"#,
                b64("secretonly")
            ),
        );
        let err = lookup(&env(&[&no_colon]), "a.example.com").unwrap_err();
        assert!(matches!(&err, AuthError::BadAuthEntry { .. }), "{err:?}");
        assert!(!err.to_string().contains("secretonly"), "{err}");

        let dir = tmp.path().join("a-dir.json");
        std::fs::create_dir(&dir).unwrap();
        assert!(matches!(
            lookup(&env(&[&dir]), "a.example.com"),
            Err(AuthError::Read { .. })
        ));
    }

    /// A fake `docker-credential-test` speaking the helper protocol: it
    /// answers for two servers and logs each query.
    fn fake_helper(dir: &Path) -> AuthEnv {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = bin.join("docker-credential-test");
        let log = dir.join("helper.log");
        std::fs::write(
            &script,
            format!(
                r#"#!/bin/sh
[ "$1" = get ] || {{ echo "unexpected action $1" >&2; exit 2; }}
read -r url
echo "$url" >> '{}'
case "$url" in
  registry.example.com) echo '{{"ServerURL":"registry.example.com","Username":"helper-user","Secret":"helper-pass"}}' ;;
  tok.example.com) echo '{{"ServerURL":"tok.example.com","Username":"<token>","Secret":"refresh"}}' ;;
  https://index.docker.io/v1/) echo '{{"Username":"hub","Secret":"hubpw"}}' ;;
  broken.example.com) echo 'not json' ;;
  fail.example.com) echo 'keychain locked' >&2; exit 1 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#,
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut path = OsString::from(&bin);
        path.push(":/usr/bin:/bin");
        AuthEnv {
            files: Vec::new(),
            helper_path: Some(path),
        }
    }

    #[test]
    fn credential_helpers() {
        let tmp = tempfile::tempdir().unwrap();
        let mut e = fake_helper(tmp.path());
        let config = write(
            tmp.path(),
            "config.json",
            &format!(
                r#"{{
                  "auths": {{"plain.example.com": {{"auth": "{}"}}}},
                  "credHelpers": {{
                    "registry.example.com": "test",
                    "tok.example.com": "test",
                    "docker.io": "test",
                    "broken.example.com": "test",
                    "fail.example.com": "test",
                    "unknown.example.com": "test",
                    "missing.example.com": "absent"
                  }}
                }}"#,
                b64("file:pw")
            ),
        );
        e.files.push(config.clone());
        assert_eq!(
            credential(&e, "registry.example.com"),
            Some(basic("helper-user", "helper-pass"))
        );
        assert_eq!(
            lookup(&e, "registry.example.com").unwrap().unwrap().origin,
            "credential helper docker-credential-test"
        );
        assert_eq!(
            credential(&e, "tok.example.com"),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(credential(&e, "docker.io"), Some(basic("hub", "hubpw")));
        assert_eq!(credential(&e, "unknown.example.com"), None);
        assert_eq!(
            credential(&e, "plain.example.com"),
            Some(basic("file", "pw")),
            "no helper for this host: the auths entry"
        );
        assert!(matches!(
            lookup(&e, "broken.example.com"),
            Err(AuthError::HelperOutput { program }) if program == "docker-credential-test"
        ));
        let err = lookup(&e, "fail.example.com").unwrap_err();
        assert!(
            matches!(&err, AuthError::HelperFailed { message, .. } if message == "keychain locked"),
            "{err:?}"
        );
        assert!(matches!(
            lookup(&e, "missing.example.com"),
            Err(AuthError::HelperSpawn { program, .. }) if program == "docker-credential-absent"
        ));
        // The server URL went to the helper on stdin.
        let log = std::fs::read_to_string(tmp.path().join("helper.log")).unwrap();
        assert!(
            log.lines().any(|l| l == "https://index.docker.io/v1/"),
            "{log}"
        );
        assert!(log.lines().any(|l| l == "registry.example.com"), "{log}");
    }

    #[test]
    fn creds_store_then_auths() {
        let tmp = tempfile::tempdir().unwrap();
        let mut e = fake_helper(tmp.path());
        let config = write(
            tmp.path(),
            "config.json",
            &format!(
                r#"{{
                  "credsStore": "test",
                  "auths": {{
                    "registry.example.com": {{}},
                    "stored.example.com": {{"auth": "{}"}}
                  }}
                }}"#,
                b64("file:pw")
            ),
        );
        e.files.push(config);
        assert_eq!(
            credential(&e, "registry.example.com"),
            Some(basic("helper-user", "helper-pass"))
        );
        // The store has nothing for this host; the file does.
        assert_eq!(
            credential(&e, "stored.example.com"),
            Some(basic("file", "pw"))
        );

        let bad = write(tmp.path(), "bad.json", r#"{"credsStore": "../../bin/sh"}"#);
        assert!(matches!(
            lookup(&env(&[&bad]), "x.example.com"),
            Err(AuthError::HelperName { .. })
        ));
    }
}
