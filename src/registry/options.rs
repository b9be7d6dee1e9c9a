//! How to reach a registry, for a push and a pull alike: credentials,
//! plain-HTTP registries, extra CAs, retries and time limits, and the one
//! function that turns them into a [`Client`] for a reference.

use std::path::PathBuf;

use super::RegistryError;
use super::auth::{AuthEnv, Credential};
use super::reference::{Reference, check_registry};
use super::timeouts::Timeouts;
use super::transport::{Client, CredentialSource, RetryPolicy, UreqHttp};

/// How to reach the registry and prove who we are.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--creds`; when `None`, saved logins in `auth` are used.
    pub credentials: Option<Credential>,
    /// Where saved logins are looked up (see [`AuthEnv::from_env`]).
    pub auth: AuthEnv,
    /// PEM files of extra CAs to trust, besides the system's.
    pub ca_certs: Vec<PathBuf>,
    /// `HOST[:PORT]`s reached over plain HTTP; a bare HOST covers any port.
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    /// How long the registry may keep us waiting (`--timeout`).
    pub timeouts: Timeouts,
}

impl RegistryOptions {
    /// Checks every `--insecure-registry`, before anything is sent.
    pub fn check(&self) -> Result<(), RegistryError> {
        for host in &self.insecure_registries {
            check_registry(host)?;
        }
        Ok(())
    }

    /// A client for `reference`'s registry: HTTPS unless it is one of the
    /// insecure registries, with `--creds` or the saved logins.
    pub fn connect(&self, reference: &Reference) -> Result<Client<UreqHttp>, RegistryError> {
        self.check()?;
        let scheme = if is_insecure(reference.registry(), &self.insecure_registries) {
            "http"
        } else {
            "https"
        };
        let credentials = match &self.credentials {
            Some(c) => CredentialSource::Given(c.clone()),
            None => CredentialSource::Lookup(self.auth.clone()),
        };
        Ok(Client::new(
            UreqHttp::new(&self.ca_certs, self.timeouts)?,
            reference.registry(),
            &format!("{scheme}://{}", reference.api_host()),
            credentials,
            self.retry.clone(),
            self.timeouts,
        ))
    }
}

/// Whether `registry` is one of `insecure` (`HOST[:PORT]`, or a bare HOST
/// for any port).
pub(super) fn is_insecure(registry: &str, insecure: &[String]) -> bool {
    let host = if registry.starts_with('[') {
        registry.split_inclusive(']').next().unwrap_or(registry)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    insecure.iter().any(|i| i == registry || i == host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries() {
        let list = vec![
            "localhost:5000".to_owned(),
            "10.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ];
        assert!(is_insecure("localhost:5000", &list));
        assert!(!is_insecure("localhost:5001", &list));
        assert!(!is_insecure("localhost", &list));
        assert!(is_insecure("10.0.0.1:443", &list));
        assert!(is_insecure("[::1]:5000", &list));
    }
}
