//! The image's health check and stop signal: the config fields Docker and
//! podman read to probe a running container (`HEALTHCHECK`) and to stop it
//! (`STOPSIGNAL`), with the parsers for the values users give.
//!
//! `StopSignal` is part of the OCI image config (config.md). `Healthcheck`
//! is not: it is Docker's extension of the same `config` object
//! (moby `api/types/container.HealthConfig`; Docker image spec v1.2,
//! "Healthcheck"), durations in nanoseconds. Docker reads it from any
//! image; podman reads it from images with Docker (schema 2) manifests
//! (containers/common libimage `Inspect`), so a build for podman health
//! checks is written or pushed as a docker-archive.

use serde::Serialize;

/// What the health check runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthTest {
    /// `--healthcheck none`: turn off a check the image would inherit
    /// (Docker's `["NONE"]`).
    Disabled,
    /// A program and its arguments, run directly (Docker's `["CMD", ...]`):
    /// no shell is needed in the image.
    Exec(Vec<String>),
}

/// Docker's `HealthConfig`, durations in nanoseconds; `None` leaves the
/// runtime's default (interval and timeout 30 s, start period 0, 3
/// retries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: HealthTest,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub retries: Option<u32>,
}

impl Healthcheck {
    /// The `config.Healthcheck` object, with Docker's field names; unset
    /// fields are left out, as Docker leaves out zero values.
    pub fn to_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Wire<'a> {
            test: Vec<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            interval: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            timeout: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            start_period: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            retries: Option<u32>,
        }
        let test = match &self.test {
            HealthTest::Disabled => vec!["NONE"],
            HealthTest::Exec(argv) => std::iter::once("CMD")
                .chain(argv.iter().map(String::as_str))
                .collect(),
        };
        let wire = Wire {
            test,
            interval: self.interval,
            timeout: self.timeout,
            start_period: self.start_period,
            retries: self.retries,
        };
        // A struct of strings and integers always serialises.
        serde_json::to_value(wire).unwrap_or(serde_json::Value::Null)
    }
}

/// Why a duration or signal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    #[error(
        "duration {value:?}: expected a number and a unit (ns, us, ms, s, m, h), e.g. 30s or 1m30s"
    )]
    Duration { value: String },
    #[error("duration {value:?}: must be at least 1ms (Docker's minimum), and at most 292 years")]
    DurationRange { value: String },
    #[error(
        "stop signal {value:?}: not a Linux signal; give a name such as SIGTERM, SIGINT, SIGQUIT, or a number 1-64"
    )]
    Signal { value: String },
}

/// The least duration Docker accepts for a health check's interval,
/// timeout and start period (moby daemon/container.go, `MinimumDuration`).
const MINIMUM_NANOS: u64 = 1_000_000;

/// A duration as Go's `time.ParseDuration` writes it (`30s`, `1m30s`,
/// `500ms`), the syntax of `docker run --health-interval`; whole numbers
/// only. Returns nanoseconds, at least 1 ms and within Go's int64.
pub fn parse_duration(value: &str) -> Result<u64, HealthError> {
    let bad = || HealthError::Duration {
        value: value.to_owned(),
    };
    let range = || HealthError::DurationRange {
        value: value.to_owned(),
    };
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| range())?;
        rest = &rest[digits..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let scale: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = number
            .checked_mul(scale)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(range)?;
    }
    // Docker keeps durations as Go's int64 nanoseconds.
    if total < MINIMUM_NANOS || total > i64::MAX as u64 {
        return Err(range());
    }
    Ok(total)
}

/// Linux's signal names (signal(7)), in number order from 1, as podman
/// and Docker accept them in `STOPSIGNAL`.
const SIGNALS: [&str; 31] = [
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// The real-time signals' range on Linux (signal(7); glibc reserves 32
/// and 33, so SIGRTMIN is 34).
const SIGRTMIN: u32 = 34;
const SIGRTMAX: u32 = 64;

/// `--stop-signal`: a name (`SIGTERM`, `term`, `SIGRTMIN+3`) or a number
/// 1–64, written as the runtimes print it: `SIGTERM`, or the number.
pub fn parse_signal(value: &str) -> Result<String, HealthError> {
    let bad = || HealthError::Signal {
        value: value.to_owned(),
    };
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return match v.parse::<u32>() {
            Ok(n) if (1..=SIGRTMAX).contains(&n) => Ok(n.to_string()),
            _ => Err(bad()),
        };
    }
    let upper = v.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&name) {
        return Ok(format!("SIG{name}"));
    }
    // SIGRTMIN+n and SIGRTMAX-n, as podman's ParseSignal takes them.
    let rt = |base: &str, sign: i64| -> Option<String> {
        let offset = name.strip_prefix(base)?;
        let n: i64 = if offset.is_empty() {
            0
        } else {
            let digits = offset.strip_prefix(if sign > 0 { '+' } else { '-' })?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            digits.parse().ok()?
        };
        let number = if sign > 0 {
            i64::from(SIGRTMIN) + n
        } else {
            i64::from(SIGRTMAX) - n
        };
        (i64::from(SIGRTMIN)..=i64::from(SIGRTMAX))
            .contains(&number)
            .then(|| format!("SIG{name}"))
    };
    rt("RTMIN", 1).or_else(|| rt("RTMAX", -1)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("1ms", 1_000_000),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("2h", 7_200_000_000_000),
            ("1500us", 1_500_000),
            ("1000000ns", 1_000_000),
            (" 5s ", 5_000_000_000),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        for s in ["", "30", "s", "1.5s", "-1s", "10x", "1m 30s", "1s2", "+1s"] {
            assert!(
                matches!(parse_duration(s), Err(HealthError::Duration { .. })),
                "{s:?}: {:?}",
                parse_duration(s)
            );
        }
        for s in [
            "0s",
            "999us",
            "999999999999999999999s",
            "9223372036854775808ns",
            "5124096h",
        ] {
            assert!(
                matches!(parse_duration(s), Err(HealthError::DurationRange { .. })),
                "{s:?}: {:?}",
                parse_duration(s)
            );
        }
    }

    #[test]
    fn signals() {
        for (s, want) in [
            ("SIGTERM", "SIGTERM"),
            ("term", "SIGTERM"),
            ("sigquit", "SIGQUIT"),
            ("SIGRTMIN+3", "SIGRTMIN+3"),
            ("RTMAX", "SIGRTMAX"),
            ("SIGRTMAX-30", "SIGRTMAX-30"),
            ("9", "9"),
            ("64", "64"),
            (" SIGINT ", "SIGINT"),
        ] {
            assert_eq!(parse_signal(s).as_deref(), Ok(want), "{s}");
        }
        for s in [
            "",
            "0",
            "65",
            "SIGFOO",
            "SIG",
            "SIGRTMIN+31",
            "SIGRTMAX-31",
            "SIGRTMIN-1",
            "RTMIN+",
            "-9",
            "SIG TERM",
        ] {
            assert!(parse_signal(s).is_err(), "{s:?}: {:?}", parse_signal(s));
        }
    }

    #[test]
    fn docker_json() {
        let check = Healthcheck {
            test: HealthTest::Exec(vec!["/app".into(), "--health".into()]),
            interval: Some(5_000_000_000),
            timeout: None,
            start_period: Some(1_000_000),
            retries: Some(2),
        };
        let json = crate::oci::canonical_json(&check.to_json()).expect("json");
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"Interval":5000000000,"Retries":2,"StartPeriod":1000000,"Test":["CMD","/app","--health"]}"#
        );
        let off = Healthcheck {
            test: HealthTest::Disabled,
            interval: None,
            timeout: None,
            start_period: None,
            retries: None,
        };
        assert_eq!(off.to_json(), serde_json::json!({"Test": ["NONE"]}));
    }
}
