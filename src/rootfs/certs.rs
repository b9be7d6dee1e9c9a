//! The CA certificate bundle: the root's (or a given file), plus extra
//! CAs appended, installed where OpenSSL, Go, rustls-native-certs and
//! curl look (SSL_CERT_FILE points there too).

use std::path::{Path, PathBuf};

use crate::resolve::Root;

use super::RootfsError;

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
) -> Result<Option<Vec<u8>>, RootfsError> {
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
            found.ok_or_else(|| RootfsError::NoCaBundle {
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

fn read_pem(p: &Path) -> Result<Vec<u8>, RootfsError> {
    let bytes = std::fs::read(p).map_err(|e| RootfsError::io(p, e))?;
    if !bytes.windows(PEM_BEGIN.len()).any(|w| w == PEM_BEGIN) {
        return Err(RootfsError::NotPem {
            path: p.to_path_buf(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn bundle_choices() {
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
