//! The CA certificate bundle: the root's (or a given file), plus extra
//! CAs appended, installed where OpenSSL, Go, rustls-native-certs and
//! curl look (SSL_CERT_FILE points there too).

use std::path::{Path, PathBuf};

use crate::resolve::Root;

use super::BaseFilesError;
use crate::rootfs::RootfsError;

pub const BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where distributions keep their bundle (Debian, Fedora, openSUSE,
/// Alpine/macOS-style), tried in order in the root.
const DEFAULT_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaCerts {
    /// The root's bundle from the usual paths.
    Default,
    None,
    File(PathBuf),
}

/// The bundle's bytes, or `None` when the image gets no bundle.
pub fn bundle(
    root: &mut Root,
    choice: &CaCerts,
    extra: &[PathBuf],
) -> Result<Option<Vec<u8>>, BaseFilesError> {
    let mut out = match choice {
        CaCerts::None => Vec::new(),
        CaCerts::File(p) => read_pem(p)?,
        CaCerts::Default => {
            let mut found = None;
            for path in DEFAULT_BUNDLES {
                if let Some(bytes) = root.read(Path::new(path))? {
                    found = Some(bytes);
                    break;
                }
            }
            found.ok_or_else(|| BaseFilesError::NoCaBundle {
                root: root.dir().to_path_buf(),
                tried: DEFAULT_BUNDLES.join(", "),
            })?
        }
    };
    for p in extra {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(&read_pem(p)?);
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(out))
}

/// A file of PEM certificates the user gave, each one parsed: a bundle
/// with one bad block fails to load as a whole in OpenSSL and Python, so
/// a block that is not an X.509 certificate is refused here, by number
/// and line.
fn read_pem(p: &Path) -> Result<Vec<u8>, BaseFilesError> {
    let bytes =
        crate::bounded::read(p, crate::bounded::PEM_LIMIT).map_err(|e| RootfsError::io(p, e))?;
    if !bytes.windows(PEM_BEGIN.len()).any(|w| w == PEM_BEGIN) {
        return Err(BaseFilesError::NotPem {
            path: p.to_path_buf(),
        });
    }
    check_certificates(&bytes).map_err(|(block, line, why)| BaseFilesError::BadCert {
        path: p.to_path_buf(),
        block,
        line,
        why,
    })?;
    Ok(bytes)
}

/// Checks every `-----BEGIN …-----` block of a PEM file: each must be a
/// `CERTIFICATE` whose base64 body is a DER X.509 certificate (RFC 7468
/// §5, RFC 5280). On failure: the block's number (from 1), its first
/// line, and why.
pub fn check_certificates(pem: &[u8]) -> Result<usize, (usize, usize, String)> {
    use base64::Engine as _;
    let text = String::from_utf8_lossy(pem);
    let mut count = 0;
    let mut open: Option<(usize, String, String)> = None; // (line, label, body)
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim_end();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            if let Some((start, ..)) = open {
                return Err((count + 1, start, "has no -----END line".into()));
            }
            open = Some((line_no, label.to_owned(), String::new()));
            continue;
        }
        if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let Some((start, begin, body)) = open.take() else {
                return Err((
                    count + 1,
                    line_no,
                    "an -----END line without -----BEGIN".into(),
                ));
            };
            count += 1;
            let fail = |why: String| Err((count, start, why));
            if begin != label {
                return fail(format!("BEGIN {begin} ends with END {label}"));
            }
            if begin != "CERTIFICATE" {
                return fail(format!("is a {begin}, not a CERTIFICATE"));
            }
            let der = match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
                Ok(der) => der,
                Err(e) => return fail(format!("its body is not base64 ({e})")),
            };
            match x509_parser::parse_x509_certificate(&der) {
                Ok((&[], _)) => {}
                Ok(_) => return fail("has bytes after its certificate".into()),
                Err(e) => return fail(format!("is not an X.509 certificate ({e})")),
            }
            continue;
        }
        if let Some((_, _, body)) = open.as_mut() {
            body.push_str(line.trim());
        }
    }
    if let Some((start, ..)) = open {
        return Err((count + 1, start, "has no -----END line".into()));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first certificate of the host's bundle: a real one.
    fn real_pem() -> String {
        let bundle = std::fs::read_to_string(BUNDLE_PATH).unwrap();
        let end = "-----END CERTIFICATE-----";
        let start = bundle.find("-----BEGIN CERTIFICATE-----").unwrap();
        let stop = bundle[start..].find(end).unwrap() + start + end.len();
        bundle[start..stop].to_owned()
    }

    #[test]
    fn every_block_must_be_a_certificate() {
        let good = real_pem();
        assert_eq!(check_certificates(good.as_bytes()), Ok(1));
        let two = format!("# a comment\n{good}\n\n{good}\n");
        assert_eq!(check_certificates(two.as_bytes()), Ok(2));
        let body_start = good.find('\n').unwrap() + 1;
        let mut flipped = good.clone().into_bytes();
        // A valid base64 body that is not DER any more.
        flipped[body_start] = if flipped[body_start] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let flipped = String::from_utf8(flipped).unwrap();
        let cases = [
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_owned(),
                (1, 1, "is not an X.509 certificate"),
            ),
            (
                format!(
                    "{good}\n-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n"
                ),
                (2, good.lines().count() + 1, "is not an X.509 certificate"),
            ),
            (
                format!("{good}\n{flipped}\n"),
                (2, good.lines().count() + 1, ""),
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
                (1, 1, "is a PRIVATE KEY, not a CERTIFICATE"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".to_owned(),
                (1, 1, "not base64"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n".to_owned(),
                (1, 1, "no -----END"),
            ),
        ];
        for (pem, (block, line, why)) in cases {
            let (b, l, w) = check_certificates(pem.as_bytes()).unwrap_err();
            assert_eq!((b, l), (block, line), "{pem}: {w}");
            assert!(w.contains(why), "{w}");
        }
    }

    #[test]
    fn bundle_choices() {
        let pem = real_pem();
        #[allow(non_snake_case)]
        let PEM = pem.as_str();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/pki/tls/certs")).unwrap();
        std::fs::write(root.path().join("etc/pki/tls/certs/ca-bundle.crt"), PEM).unwrap();
        let extra = root.path().join("corp.pem");
        std::fs::write(&extra, PEM).unwrap();
        let bad = root.path().join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let mut r = Root::new(root.path());

        let b = bundle(&mut r, &CaCerts::Default, std::slice::from_ref(&extra))
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8(b).unwrap(), format!("{PEM}\n{PEM}"));
        assert_eq!(bundle(&mut r, &CaCerts::None, &[]).unwrap(), None);
        let err = bundle(&mut r, &CaCerts::File(bad.clone()), &[]).unwrap_err();
        assert!(err.to_string().contains("bad.pem"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = bundle(&mut Root::new(empty.path()), &CaCerts::Default, &[]).unwrap_err();
        assert!(err.to_string().contains("--ca-certs none"), "{err}");
    }
}
