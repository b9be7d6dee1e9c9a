//! Image references, `[HOST[:PORT]/]NAME[:TAG][@DIGEST]`, parsed as docker
//! does (distribution/reference's grammar and its "normalized" rules): the
//! names a build tags its image with (plan → layout, docker-archive), and
//! the registry, repository and tag or digest a push goes to.
//!
//! Not oci-spec's `distribution::Reference` (its `distribution` feature):
//! that one parses the same grammar, but answers a bad name with one
//! opaque error where this says which part is wrong (uppercase, a bad
//! host, a too-long name, a digest given as a tag), keeps the host as
//! written for credentials, and is fuzzed (fuzz/ reference) with the
//! round trip `parse(r.to_string()) == r`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry a reference with no host names (docker's default).
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// `docker.io` is a name, not a host: Docker Hub serves the registry API
/// from this host (docker's `DefaultV2Registry`).
pub(crate) const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Docker's legacy name for its registry, normalised to `docker.io`.
pub(crate) const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";

/// Single-component names on Docker Hub live here (`alpine` is
/// `docker.io/library/alpine`).
const OFFICIAL_NAMESPACE: &str = "library";

/// distribution/reference's `NameTotalLengthMax`: the registry and path
/// together, as most registries store them.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// The tag grammar allows one word character plus 127 more.
const TAG_MAX: usize = 128;

/// The tag an image name with none gets, as in docker and podman.
pub const DEFAULT_TAG: &str = "latest";

/// RFC 1035 §2.3.4: a label is at most 63 octets, a name at most 255 on
/// the wire, which is 253 characters written with dots.
const LABEL_MAX: usize = 63;
const HOST_MAX: usize = 253;

/// A parsed, normalised reference: `alpine` becomes
/// `docker.io/library/alpine`, and `index.docker.io` becomes `docker.io`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a string is not a reference. Each variant keeps the whole input so
/// the message stands on its own.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {input:?}: it is empty")]
    Empty { input: String },
    #[error("invalid reference {input:?}: the repository name {repository:?} must be lowercase")]
    Uppercase { input: String, repository: String },
    #[error(
        "invalid reference {input:?}: {component:?} is not a valid repository path component \
         (lowercase letters and digits, joined by '.', '_', '__' or dashes)"
    )]
    Repository { input: String, component: String },
    #[error("invalid reference {input:?}: {host:?} is not a valid registry host: {reason}")]
    Host {
        input: String,
        host: String,
        reason: String,
    },
    /// A registry named alone, as `--insecure-registry` takes it.
    #[error("invalid registry {host:?}: {reason}")]
    Registry { host: String, reason: String },
    #[error(
        "invalid image name {input:?}: a digest names content, it cannot be given as a tag \
         (use NAME[:TAG])"
    )]
    DigestInName { input: String },
    #[error(
        "invalid reference {input:?}: tag {tag:?} must be 1 to 128 of A-Za-z0-9_.- \
         and not start with '.' or '-'"
    )]
    Tag { input: String, tag: String },
    #[error("invalid reference {input:?}: bad digest")]
    Digest { input: String, source: DigestError },
    #[error(
        "invalid reference {input:?}: the name is {len} characters, \
         more than the {max} registries accept",
        max = NAME_TOTAL_LENGTH_MAX
    )]
    TooLong { input: String, len: usize },
    #[error(
        "invalid reference {input:?}: a 64-digit hex string looks like an image id, \
         not a repository name"
    )]
    HexName { input: String },
}

impl Reference {
    /// Parses `[HOST[:PORT]/]NAME[:TAG][@DIGEST]`.
    ///
    /// The first path component is a registry host only if it contains a
    /// `.` or a `:`, is `localhost`, or has an uppercase letter (which a
    /// repository may not); otherwise the whole name is a Docker Hub
    /// repository. This is distribution/reference's `splitDockerDomain`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.into(),
            });
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(ReferenceError::HexName {
                input: input.into(),
            });
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => {
                let digest = d.parse().map_err(|source| ReferenceError::Digest {
                    input: input.into(),
                    source,
                })?;
                (n, Some(digest))
            }
            None => (input, None),
        };

        let (registry, rest) = match name_tag.split_once('/') {
            Some((first, rest)) if is_registry_component(first) => (first, rest),
            _ => (DEFAULT_REGISTRY, name_tag),
        };
        // With the host split off, any ':' left separates the tag.
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };

        check_host(registry).map_err(|reason| ReferenceError::Host {
            input: input.into(),
            host: registry.into(),
            reason,
        })?;
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.into(),
                repository: path.into(),
            });
        }
        for component in path.split('/') {
            if !is_path_component(component) {
                return Err(ReferenceError::Repository {
                    input: input.into(),
                    component: component.into(),
                });
            }
        }
        if let Some(t) = tag
            && !is_tag(t)
        {
            return Err(ReferenceError::Tag {
                input: input.into(),
                tag: t.into(),
            });
        }
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_NAMESPACE}/{path}")
        } else {
            path.to_owned()
        };
        // Of the normalised name, as distribution/reference measures it
        // (ParseNormalizedNamed parses `docker.io/library/NAME`), so that
        // what we print parses back.
        let len = registry.len() + 1 + repository.len();
        if len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong {
                input: input.into(),
                len,
            });
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// `HOST[:PORT]` as written (normalised for Docker Hub): the name used
    /// for credentials and in messages.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path on the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        }
    }

    /// This reference pinned to `digest`, keeping its tag.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// The full form, `HOST/REPOSITORY[:TAG][@DIGEST]`, which any tool parses
/// back to the same reference.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// An image name to tag a build with, `NAME[:TAG]`, as `docker tag` and a
/// docker-archive's `RepoTags` take it: checked by the same grammar as a
/// [`Reference`] (a `repo:tag/x` is refused, not read as a name with a
/// `:` in it), kept as written (no `docker.io/library/` added), with
/// [`DEFAULT_TAG`] when none is given. No digest: a build names the image
/// before its digest exists.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Tagged {
    name: String,
    tag: String,
}

impl Tagged {
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let reference = Reference::parse(input)?;
        if reference.digest().is_some() {
            return Err(ReferenceError::DigestInName {
                input: input.into(),
            });
        }
        // The parser took the tag from the end of the input.
        let (name, tag) = match reference.tag() {
            Some(t) => (&input[..input.len() - t.len() - 1], t),
            None => (input, DEFAULT_TAG),
        };
        Ok(Tagged {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The repository as written, with its host if it has one.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl FromStr for Tagged {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tagged::parse(s)
    }
}

/// `NAME:TAG`.
impl fmt::Display for Tagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// Whether the first component of a name is a registry host rather than
/// part of a Docker Hub repository path.
fn is_registry_component(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// Checks `HOST[:PORT]` as a registry named alone (`--insecure-registry`):
/// the same rules as the host part of a reference.
pub fn check_registry(host: &str) -> Result<(), ReferenceError> {
    check_host(host).map_err(|reason| ReferenceError::Registry {
        host: host.into(),
        reason,
    })
}

/// `host[:port]`, exactly: host is a domain name (labels of letters, digits
/// and inner dashes joined by dots, as distribution/reference's grammar
/// has it), a dotted-quad IPv4 address or a bracketed IPv6 address; port is
/// 1 to 65535. Stricter than docker, which takes any digits as a port:
/// `http::Uri` turns a port over 65535 into none at all, so
/// `host:99999` would be reached (and sent credentials) on port 80.
fn check_host(s: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address needs its closing ']'")?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("[{v6}] is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("only :PORT may follow an IPv6 address's ']'")?,
            ),
        };
        (None, port)
    } else if s.matches(':').count() > 1 {
        return Err(
            "it has more than one ':' (an IPv6 address goes in brackets, as in [::1]:5000)".into(),
        );
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(port) = port {
        check_port(port)?;
    }
    match host {
        Some(host) => check_domain(host),
        None => Ok(()),
    }
}

/// A TCP port as one spelling of 1 to 65535: no sign, no leading zero (the
/// registry's name is also the key its saved logins are found by).
fn check_port(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the port after ':' is empty".into());
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "port {p:?} is not a number (a tag goes after the last '/': NAME[:TAG])"
        ));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("port {p} is out of range (1 to 65535)")),
        Ok(_) if p.starts_with('0') => Err(format!("port {p} has a leading zero")),
        Ok(_) => Ok(()),
    }
}

/// A domain name or a dotted-quad IPv4 address. A name whose last label is
/// a number (decimal, or `0x` hex) must be an exact dotted quad:
/// getaddrinfo(3) would read `127.1` or `0x7f000001` as 127.0.0.1
/// (inet_aton's forms), and no real domain's last label is a number
/// (RFC 1123 §2.1).
fn check_domain(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host name is empty".into());
    }
    if host.len() > HOST_MAX {
        return Err(format!(
            "the host name is {} characters, more than DNS allows ({HOST_MAX})",
            host.len()
        ));
    }
    for label in host.split('.') {
        let b = label.as_bytes();
        if b.is_empty() {
            return Err("the host name has an empty label (a '.' at an end, or two)".into());
        }
        if b.len() > LABEL_MAX {
            return Err(format!(
                "the host name's label {label:?} is longer than {LABEL_MAX} characters"
            ));
        }
        if !b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
            || b[0] == b'-'
            || b[b.len() - 1] == b'-'
        {
            return Err(format!(
                "the host name's label {label:?} may hold only letters, digits and inner '-'"
            ));
        }
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!(
            "{host:?} is not an IPv4 address: write four numbers from 0 to 255 \
             with no leading zeros, as in 192.168.0.10"
        ));
    }
    Ok(())
}

/// `[a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = &b[i..];
        i += if sep.starts_with(b"__") {
            2
        } else if sep[0] == b'.' || sep[0] == b'_' {
            1
        } else if sep[0] == b'-' {
            sep.iter().take_while(|&&x| x == b'-').count()
        } else {
            return false;
        };
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(t: &str) -> bool {
    let word = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(&b[0])
        && b.iter().all(|x| word(x) || *x == b'.' || *x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
    );
    type Check = fn(&ReferenceError) -> bool;

    const HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn parses_and_normalises() {
        let d = format!("sha256:{HEX}");
        // input, registry, repository, tag, api host
        let cases: &[Case] = &[
            (
                "alpine",
                "docker.io",
                "library/alpine",
                None,
                "registry-1.docker.io",
            ),
            (
                "alpine:3.20",
                "docker.io",
                "library/alpine",
                Some("3.20"),
                "registry-1.docker.io",
            ),
            (
                "user/app",
                "docker.io",
                "user/app",
                None,
                "registry-1.docker.io",
            ),
            (
                "docker.io/app",
                "docker.io",
                "library/app",
                None,
                "registry-1.docker.io",
            ),
            (
                "index.docker.io/user/app:v1",
                "docker.io",
                "user/app",
                Some("v1"),
                "registry-1.docker.io",
            ),
            ("localhost/app", "localhost", "app", None, "localhost"),
            (
                "localhost:5000/app:latest",
                "localhost:5000",
                "app",
                Some("latest"),
                "localhost:5000",
            ),
            (
                "127.0.0.1:5000/team/sub/app:v1.2-rc_3",
                "127.0.0.1:5000",
                "team/sub/app",
                Some("v1.2-rc_3"),
                "127.0.0.1:5000",
            ),
            ("[::1]:5000/app", "[::1]:5000", "app", None, "[::1]:5000"),
            ("[fe80::1]/app", "[fe80::1]", "app", None, "[fe80::1]"),
            (
                "ghcr.io/o/a__b.c---d_e:_x",
                "ghcr.io",
                "o/a__b.c---d_e",
                Some("_x"),
                "ghcr.io",
            ),
            (
                "Registry.Example.COM/app",
                "Registry.Example.COM",
                "app",
                None,
                "Registry.Example.COM",
            ),
            // A host with no port and no dot is a Docker Hub namespace.
            (
                "myhost/app",
                "docker.io",
                "myhost/app",
                None,
                "registry-1.docker.io",
            ),
            // With no '/', "host:5000" is a name and a tag, as in docker.
            (
                "myhost:5000",
                "docker.io",
                "library/myhost",
                Some("5000"),
                "registry-1.docker.io",
            ),
        ];
        for &(input, registry, repository, tag, api) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest(), None, "{input}");
            assert_eq!(r.api_host(), api, "{input}");
            // Display is the full form, and parses back to the same thing.
            assert_eq!(Reference::parse(&r.to_string()), Ok(r.clone()), "{input}");
        }

        let r = Reference::parse(&format!("localhost:5000/app:v1@{d}")).unwrap();
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.digest().map(ToString::to_string), Some(d.clone()));
        assert_eq!(r.to_string(), format!("localhost:5000/app:v1@{d}"));
        let r = Reference::parse(&format!("app@{d}")).unwrap();
        assert_eq!((r.repository(), r.tag()), ("library/app", None));
        assert_eq!(r.to_string(), format!("docker.io/library/app@{d}"));
        assert_eq!(
            r.with_tag("t").to_string(),
            "docker.io/library/app:t",
            "with_tag drops the digest"
        );
    }

    #[test]
    fn rejects_bad_references() {
        let long = format!("example.com/{}", "a".repeat(250));
        let cases: Vec<(String, Check)> = vec![
            ("".into(), |e| matches!(e, ReferenceError::Empty { .. })),
            (
                "App".into(),
                |e| matches!(e, ReferenceError::Uppercase { repository, .. } if repository == "App"),
            ),
            ("example.com/Team/app".into(), |e| {
                matches!(e, ReferenceError::Uppercase { .. })
            }),
            (
                "a b".into(),
                |e| matches!(e, ReferenceError::Repository { component, .. } if component == "a b"),
            ),
            (
                "example.com/".into(),
                |e| matches!(e, ReferenceError::Repository { component, .. } if component.is_empty()),
            ),
            ("example.com/a//b".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("example.com/-a".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("example.com/a-".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("example.com/a..b".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("example.com/a___b".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("example.com/a._b".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            (
                "-bad.com/app".into(),
                |e| matches!(e, ReferenceError::Host { host, .. } if host == "-bad.com"),
            ),
            ("host..com/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            ("host:/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            ("host:50a/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            ("host_x.com/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            ("[::g]/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            ("[::1]x/app".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
            (
                "app:".into(),
                |e| matches!(e, ReferenceError::Tag { tag, .. } if tag.is_empty()),
            ),
            ("app:-x".into(), |e| matches!(e, ReferenceError::Tag { .. })),
            ("app:.x".into(), |e| matches!(e, ReferenceError::Tag { .. })),
            ("app:a+b".into(), |e| {
                matches!(e, ReferenceError::Tag { .. })
            }),
            (format!("app:{}", "t".repeat(129)), |e| {
                matches!(e, ReferenceError::Tag { .. })
            }),
            (
                "localhost:5000/app:v1:v2".into(),
                |e| matches!(e, ReferenceError::Repository { component, .. } if component == "app:v1"),
            ),
            ("app@sha256:abc".into(), |e| {
                matches!(e, ReferenceError::Digest { .. })
            }),
            (format!("app@sha512:{HEX}"), |e| {
                matches!(e, ReferenceError::Digest { .. })
            }),
            (format!("app@{HEX}"), |e| {
                matches!(e, ReferenceError::Digest { .. })
            }),
            (long, |e| {
                matches!(e, ReferenceError::TooLong { len: 262, .. })
            }),
            (HEX.into(), |e| matches!(e, ReferenceError::HexName { .. })),
        ];
        for (input, check) in cases {
            match Reference::parse(&input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => {
                    assert!(check(&e), "{input:?}: wrong error {e:?}");
                    assert!(
                        e.to_string().contains(&format!("{input:?}")),
                        "{input:?}: message names the input: {e}"
                    );
                }
            }
        }
        // A tag of exactly 128 characters is fine.
        assert!(Reference::parse(&format!("app:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn registry_hosts_parse_exactly() {
        let good = [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "127.0.0.1:65535",
            "0.0.0.0:5000",
            "[::1]",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:443",
            "Registry.Example.COM:443",
            "a.b-c.d",
            "xn--bcher-kva.example",
            "1.example.com",
            "10.0.0.1",
        ];
        for host in good {
            let input = format!("{host}/app:v1");
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), host, "{input}");
            check_registry(host).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        let label = "a".repeat(64);
        let long = vec!["a".repeat(60); 5].join(".");
        // host, what the reason says
        let bad: Vec<(String, &str)> = vec![
            (
                "127.0.0.1:99999".into(),
                "port 99999 is out of range (1 to 65535)",
            ),
            ("127.0.0.1:65536".into(), "port 65536 is out of range"),
            ("127.0.0.1:0".into(), "port 0 is out of range"),
            ("127.0.0.1:18446744073709551617".into(), "out of range"),
            ("localhost:05000".into(), "port 05000 has a leading zero"),
            ("host:".into(), "the port after ':' is empty"),
            ("host:abc".into(), "port \"abc\" is not a number"),
            ("host:+80".into(), "is not a number"),
            ("host:-1".into(), "is not a number"),
            ("host:8 0".into(), "is not a number"),
            ("a.b:5000:6000".into(), "more than one ':'"),
            ("::1:5000".into(), "in brackets, as in [::1]:5000"),
            ("[::1".into(), "closing ']'"),
            ("[::1]x".into(), "only :PORT may follow"),
            ("[::1]:".into(), "the port after ':' is empty"),
            ("[::1]:99999".into(), "out of range"),
            ("[::g]".into(), "[::g] is not an IPv6 address"),
            ("[fe80::1%eth0]".into(), "not an IPv6 address"),
            ("[127.0.0.1]".into(), "not an IPv6 address"),
            (":5000".into(), "the host name is empty"),
            ("127.1:5000".into(), "\"127.1\" is not an IPv4 address"),
            ("0x7f000001:5000".into(), "not an IPv4 address"),
            ("2130706433:5000".into(), "not an IPv4 address"),
            ("1.2.3.4.5".into(), "not an IPv4 address"),
            ("256.0.0.1".into(), "not an IPv4 address"),
            ("01.2.3.4".into(), "not an IPv4 address"),
            ("-bad.com".into(), "label \"-bad\" may hold only"),
            ("bad-.com".into(), "may hold only"),
            ("host_x.com".into(), "may hold only"),
            ("h\u{e9}te.com".into(), "may hold only"),
            ("host..com".into(), "an empty label"),
            (".host.com".into(), "an empty label"),
            ("host.com.".into(), "an empty label"),
            (format!("{label}.com"), "longer than 63 characters"),
            (format!("{long}.com"), "more than DNS allows (253)"),
        ];
        for (host, reason) in &bad {
            let input = format!("{host}/app:1");
            match Reference::parse(&input) {
                Err(ReferenceError::Host {
                    host: h, reason: r, ..
                }) => {
                    assert_eq!(&h, host, "{input}");
                    assert!(r.contains(reason), "{input}: {r:?} lacks {reason:?}");
                }
                other => panic!("{input}: {other:?}"),
            }
            let err = check_registry(host).unwrap_err();
            assert!(
                matches!(&err, ReferenceError::Registry { host: h, .. } if h == host),
                "{host}: {err:?}"
            );
            assert!(err.to_string().contains(reason), "{host}: {err}");
        }
        assert!(check_registry("").is_err());
    }

    #[test]
    fn tagged_names_are_kept_as_written() {
        let cases = [
            ("app", "app", "latest"),
            ("app:1.2", "app", "1.2"),
            ("team/app", "team/app", "latest"),
            ("host:5000/team/app", "host:5000/team/app", "latest"),
            ("host:5000/team/app:v1", "host:5000/team/app", "v1"),
            ("docker.io/library/app:v1", "docker.io/library/app", "v1"),
            ("[::1]:5000/app:v1", "[::1]:5000/app", "v1"),
            // As in docker: with no '/', the ':' starts a tag.
            ("localhost:5000", "localhost", "5000"),
        ];
        for (input, name, tag) in cases {
            let t = Tagged::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((t.name(), t.tag()), (name, tag), "{input}");
            assert_eq!(t.to_string(), format!("{name}:{tag}"));
            assert_eq!(Tagged::parse(&t.to_string()), Ok(t.clone()), "{input}");
        }
        let bad: Vec<(String, Check)> = vec![
            ("repo:tag/with/slash".into(), |e| {
                matches!(e, ReferenceError::Host { host, reason, .. }
                    if host == "repo:tag" && reason.contains("a tag goes after the last '/'"))
            }),
            ("App:1".into(), |e| {
                matches!(e, ReferenceError::Uppercase { .. })
            }),
            (format!("app@sha256:{HEX}"), |e| {
                matches!(e, ReferenceError::DigestInName { .. })
            }),
            (format!("app:v1@sha256:{HEX}"), |e| {
                matches!(e, ReferenceError::DigestInName { .. })
            }),
            (":x".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("app:".into(), |e| matches!(e, ReferenceError::Tag { .. })),
            ("app:a+b".into(), |e| {
                matches!(e, ReferenceError::Tag { .. })
            }),
            ("app:.x".into(), |e| matches!(e, ReferenceError::Tag { .. })),
            ("a___b".into(), |e| {
                matches!(e, ReferenceError::Repository { .. })
            }),
            ("127.0.0.1:99999/x:1".into(), |e| {
                matches!(e, ReferenceError::Host { .. })
            }),
        ];
        for (input, check) in bad {
            let err = Tagged::parse(&input).unwrap_err();
            assert!(check(&err), "{input:?}: {err:?}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
    }

    /// Found by fuzz/ (reference): a Docker Hub name of 240 characters was
    /// accepted, and printed as `docker.io/library/NAME`, which is too long
    /// to parse back. The limit is on the normalised name, as docker's.
    #[test]
    fn the_length_limit_counts_the_normalised_name() {
        let name = "a".repeat(240);
        for input in [name.clone(), format!("index.docker.io/{name}")] {
            assert!(
                matches!(
                    Reference::parse(&input),
                    Err(ReferenceError::TooLong { len: 258, .. })
                ),
                "{input}"
            );
        }
        // The longest that fits, printed, parses back to itself.
        let r = Reference::parse(&"a".repeat(237)).unwrap();
        assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
    }
}
