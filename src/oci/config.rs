//! The image configuration (image-spec config.md): what the runtime runs,
//! and the list of layer diff IDs, built from the plan's plain values.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use oci_spec::image::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder, MediaType,
    Os, RootFsBuilder,
};

use super::OciError;
use super::healthcheck::Healthcheck;
use super::time::rfc3339_utc;
use crate::digest::Digest;

/// What the image runs and on which platform: the plan's view of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// GOARCH name, e.g. `amd64`, `arm64` (the resolver's `Arch::oci` names it).
    pub architecture: String,
    /// GOOS name, e.g. `linux`.
    pub os: String,
    /// e.g. `v8` for arm64, `v7` for arm.
    pub variant: Option<String>,
    /// `NAME=value` entries, in order.
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group`, …; empty means unset (the runtime's
    /// default, root).
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// `8080/tcp`, `53/udp`, or a bare port (tcp).
    pub exposed_ports: BTreeSet<String>,
    /// Docker's `Healthcheck` (see [`super::healthcheck`]); `None` writes
    /// none.
    pub healthcheck: Option<Healthcheck>,
    /// `StopSignal`, e.g. `SIGTERM`, as [`super::healthcheck::parse_signal`]
    /// writes it.
    pub stop_signal: Option<String>,
    /// SOURCE_DATE_EPOCH: the `created` time of the image and every layer.
    pub created_epoch: u64,
}

impl Default for ImageSpec {
    fn default() -> Self {
        ImageSpec {
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            variant: None,
            env: Vec::new(),
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            workdir: None,
            user: String::new(),
            labels: BTreeMap::new(),
            exposed_ports: BTreeSet::new(),
            healthcheck: None,
            stop_signal: None,
            created_epoch: 0,
        }
    }
}

/// One layer as the config and manifest see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the uncompressed tar (config `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Digest of the compressed blob (manifest `layers[].digest`).
    pub digest: Digest,
    /// Size of the compressed blob in bytes.
    pub size: u64,
    /// How the blob is compressed (manifest `layers[].mediaType`).
    pub media_type: MediaType,
    /// History text, e.g. `mkimage: system libraries`.
    pub created_by: String,
    /// Annotations on the layer's manifest descriptor.
    pub annotations: BTreeMap<String, String>,
}

/// Builds the image configuration: `spec`'s runtime settings, one diff ID and
/// one history entry per layer, in order, all stamped with `created_epoch`.
pub fn build_config(
    spec: &ImageSpec,
    layers: &[LayerInfo],
) -> Result<ImageConfiguration, OciError> {
    let architecture = Arch::from(spec.architecture.as_str());
    check_platform_name("architecture", &spec.architecture, architecture.to_string())?;
    let os = Os::from(spec.os.as_str());
    check_platform_name("os", &spec.os, os.to_string())?;
    for entry in &spec.env {
        // An empty name would be `=value`; the spec asks for VARNAME=VARVALUE.
        if !matches!(entry.find('='), Some(i) if i > 0) {
            return Err(OciError::InvalidEnv {
                entry: entry.clone(),
            });
        }
    }
    for port in &spec.exposed_ports {
        if !valid_port(port) {
            return Err(OciError::InvalidPort { port: port.clone() });
        }
    }
    let created = rfc3339_utc(spec.created_epoch)?;
    let spec_err = |what| move |source| OciError::Spec { what, source };

    // Empty lists are left out rather than written as `[]`: an absent
    // Entrypoint/Cmd is what runtimes expect for "none", and it keeps the
    // config minimal.
    let mut config = ConfigBuilder::default();
    if !spec.user.is_empty() {
        config = config.user(spec.user.clone());
    }
    if !spec.env.is_empty() {
        config = config.env(spec.env.clone());
    }
    if !spec.entrypoint.is_empty() {
        config = config.entrypoint(spec.entrypoint.clone());
    }
    if !spec.cmd.is_empty() {
        config = config.cmd(spec.cmd.clone());
    }
    if let Some(dir) = &spec.workdir {
        config = config.working_dir(dir.clone());
    }
    if !spec.labels.is_empty() {
        // oci-spec holds a HashMap; canonical_json restores the order.
        config = config.labels(spec.labels.clone().into_iter().collect::<HashMap<_, _>>());
    }
    if !spec.exposed_ports.is_empty() {
        config = config.exposed_ports(spec.exposed_ports.iter().cloned().collect::<Vec<_>>());
    }
    if let Some(signal) = &spec.stop_signal {
        config = config.stop_signal(signal.clone());
    }
    let config = config.build().map_err(spec_err("config"))?;

    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(spec_err("rootfs"))?;

    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.created_by.clone())
                .build()
                .map_err(spec_err("history"))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut image = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(architecture)
        .os(os)
        .config(config)
        .rootfs(rootfs);
    if !history.is_empty() {
        image = image.history(history);
    }
    if let Some(variant) = &spec.variant {
        if variant.is_empty() {
            return Err(OciError::InvalidPlatform {
                field: "variant",
                value: variant.clone(),
                reason: "must not be empty (use None)",
            });
        }
        image = image.variant(variant.clone());
    }
    image.build().map_err(spec_err("configuration"))
}

/// The config blob as written: [`build_config`] plus the Docker extension
/// fields oci-spec has no place for (`config.Healthcheck`).
pub fn config_json(spec: &ImageSpec, layers: &[LayerInfo]) -> Result<serde_json::Value, OciError> {
    let image = build_config(spec, layers)?;
    let mut value =
        serde_json::to_value(&image).map_err(|source| OciError::Serialize { source })?;
    if let Some(check) = &spec.healthcheck
        && let Some(config) = value.get_mut("config").and_then(|c| c.as_object_mut())
    {
        config.insert("Healthcheck".to_owned(), check.to_json());
    }
    Ok(value)
}

/// Checks that oci-spec will write `value` back unchanged: it parses
/// architectures and OSes into enums, and at least one name ("armbe")
/// comes back as a different one ("arm64be").
fn check_platform_name(field: &'static str, value: &str, written: String) -> Result<(), OciError> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if written != value {
        "oci-spec would write it as a different name"
    } else {
        return Ok(());
    };
    Err(OciError::InvalidPlatform {
        field,
        value: value.to_owned(),
        reason,
    })
}

/// `<port>` or `<port>/<proto>`, port 1–65535 in plain decimal, proto one
/// the runtimes know.
fn valid_port(s: &str) -> bool {
    let (port, proto) = match s.split_once('/') {
        Some((port, proto)) => (port, Some(proto)),
        None => (s, None),
    };
    let number_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && !port.starts_with('0')
        && port.parse::<u16>().is_ok();
    number_ok && matches!(proto, None | Some("tcp" | "udp" | "sctp"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::canonical_json;

    fn layer(n: u8, created_by: &str) -> LayerInfo {
        LayerInfo {
            diff_id: Digest::from_bytes([n; 32]),
            digest: Digest::from_bytes([n + 0x10; 32]),
            size: 100 + u64::from(n),
            media_type: MediaType::ImageLayerGzip,
            created_by: created_by.to_owned(),
            annotations: BTreeMap::new(),
        }
    }

    fn small_spec() -> ImageSpec {
        ImageSpec {
            architecture: "arm64".to_owned(),
            os: "linux".to_owned(),
            variant: Some("v8".to_owned()),
            env: vec!["PATH=/usr/bin:/bin".to_owned(), "LANG=C.UTF-8".to_owned()],
            entrypoint: vec!["/app/server".to_owned()],
            cmd: vec!["--port".to_owned(), "8080".to_owned()],
            workdir: Some("/app".to_owned()),
            user: "65532:65532".to_owned(),
            labels: [
                ("org.opencontainers.image.title", "server"),
                ("a.first", "1"),
                ("z.last", "2"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            exposed_ports: ["9090/udp", "8080/tcp"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            healthcheck: None,
            stop_signal: None,
            created_epoch: 1_709_164_800,
        }
    }

    #[test]
    fn golden_config() {
        let layers = [
            layer(1, "mkimage: system libraries"),
            layer(2, "mkimage: application"),
        ];
        let config = build_config(&small_spec(), &layers).expect("config");
        let json = canonical_json(&config).expect("json");
        let d1 = format!("sha256:{}", "01".repeat(32));
        let d2 = format!("sha256:{}", "02".repeat(32));
        let want = format!(
            concat!(
                r#"{{"architecture":"arm64","#,
                r#""config":{{"Cmd":["--port","8080"],"Entrypoint":["/app/server"],"#,
                r#""Env":["PATH=/usr/bin:/bin","LANG=C.UTF-8"],"#,
                r#""ExposedPorts":{{"8080/tcp":{{}},"9090/udp":{{}}}},"#,
                r#""Labels":{{"a.first":"1","org.opencontainers.image.title":"server","z.last":"2"}},"#,
                r#""User":"65532:65532","WorkingDir":"/app"}},"#,
                r#""created":"2024-02-29T00:00:00Z","#,
                r#""history":[{{"created":"2024-02-29T00:00:00Z","created_by":"mkimage: system libraries"}},"#,
                r#"{{"created":"2024-02-29T00:00:00Z","created_by":"mkimage: application"}}],"#,
                r#""os":"linux","#,
                r#""rootfs":{{"diff_ids":["{d1}","{d2}"],"type":"layers"}},"#,
                r#""variant":"v8"}}"#
            ),
            d1 = d1,
            d2 = d2
        );
        assert_eq!(std::str::from_utf8(&json).expect("utf-8"), want);
    }

    #[test]
    fn same_input_same_bytes() {
        let layers: Vec<_> = (1..=5).map(|n| layer(n, "x")).collect();
        let mut spec = small_spec();
        spec.labels = (0..64).map(|i| (format!("l{i}"), format!("{i}"))).collect();
        spec.exposed_ports = (1..64).map(|p| format!("{p}/tcp")).collect();
        let a = canonical_json(&build_config(&spec, &layers).expect("a")).expect("json a");
        let b = canonical_json(&build_config(&spec, &layers).expect("b")).expect("json b");
        assert_eq!(a, b);
    }

    #[test]
    fn minimal_config_and_epoch_zero() {
        let config = build_config(&ImageSpec::default(), &[]).expect("config");
        assert_eq!(
            String::from_utf8(canonical_json(&config).expect("json")).expect("utf-8"),
            r#"{"architecture":"amd64","config":{},"created":"1970-01-01T00:00:00Z","os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }

    #[test]
    fn rejects_bad_values() {
        let with = |f: fn(&mut ImageSpec)| {
            let mut s = ImageSpec::default();
            f(&mut s);
            build_config(&s, &[]).expect_err("invalid").to_string()
        };
        assert_eq!(
            with(|s| s.env = vec!["NOEQUALS".into()]),
            r#"invalid environment entry "NOEQUALS": expected NAME=value"#
        );
        assert!(with(|s| s.env = vec!["=v".into()]).contains(r#""=v""#));
        for port in [
            "", "0", "65536", "080", "+80", "80/tcpx", "80/", "/tcp", "http",
        ] {
            let mut s = ImageSpec::default();
            s.exposed_ports.insert(port.to_owned());
            assert!(
                matches!(build_config(&s, &[]), Err(OciError::InvalidPort { port: p }) if p == port),
                "{port:?}"
            );
        }
        assert_eq!(
            with(|s| s.architecture = "armbe".into()),
            r#"invalid architecture "armbe": oci-spec would write it as a different name"#
        );
        assert!(with(|s| s.os = String::new()).starts_with("invalid os \"\""));
        assert!(with(|s| s.variant = Some(String::new())).starts_with("invalid variant"));
        assert!(matches!(
            build_config(
                &ImageSpec {
                    created_epoch: u64::MAX,
                    ..ImageSpec::default()
                },
                &[]
            ),
            Err(OciError::EpochOutOfRange { .. })
        ));
    }

    #[test]
    fn healthcheck_and_stop_signal() {
        let spec = ImageSpec {
            healthcheck: Some(Healthcheck {
                test: super::super::HealthTest::Exec(vec!["/app".into(), "ping".into()]),
                interval: Some(2_000_000_000),
                timeout: Some(1_000_000_000),
                start_period: None,
                retries: Some(5),
            }),
            stop_signal: Some("SIGINT".into()),
            ..ImageSpec::default()
        };
        let json = canonical_json(&config_json(&spec, &[]).expect("config")).expect("json");
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            concat!(
                r#"{"architecture":"amd64","config":{"Healthcheck":{"Interval":2000000000,"#,
                r#""Retries":5,"Test":["CMD","/app","ping"],"Timeout":1000000000},"#,
                r#""StopSignal":"SIGINT"},"created":"1970-01-01T00:00:00Z","os":"linux","#,
                r#""rootfs":{"diff_ids":[],"type":"layers"}}"#
            )
        );
        // Without either, the blob is build_config's.
        assert_eq!(
            canonical_json(&config_json(&ImageSpec::default(), &[]).expect("plain")).expect("a"),
            canonical_json(&build_config(&ImageSpec::default(), &[]).expect("b")).expect("b")
        );
    }

    #[test]
    fn accepts_valid_ports() {
        let s = ImageSpec {
            exposed_ports: ["1", "65535/tcp", "53/udp", "9/sctp"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            ..ImageSpec::default()
        };
        build_config(&s, &[]).expect("valid ports");
    }
}
