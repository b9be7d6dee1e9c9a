//! How long a push waits on a registry: the limits the transport puts on
//! every exchange, from one number, `--timeout`.
//!
//! A registry that accepts a connection and then says nothing, or answers
//! a byte at a time, must not hold a push forever; a slow link that is
//! still moving a big layer must not be cut off. So the limits are of two
//! kinds:
//!
//! * idle limits, `--timeout` (60 s by default): connecting (at most
//!   [`CONNECT_MAX`]), and each wait for the registry to send a byte or
//!   to take one more of an upload. They end a stalled exchange whatever
//!   its size;
//! * whole-request limits, retries included: `--timeout` for a request
//!   with no body, plus a second per [`MIN_UPLOAD_RATE`] bytes for one
//!   that uploads. They end a registry that trickles (one header byte a
//!   second never trips an idle limit), while a legitimate upload, however
//!   big, only has to average [`MIN_UPLOAD_RATE`].
//!
//! After the last byte of a blob the registry verifies and stores it
//! before it answers, which takes time in proportion to its size (on S3
//! storage, a server-side copy): the wait for that answer is `--timeout`
//! plus a second per [`MIN_VERIFY_RATE`] bytes.

use std::time::Duration;

/// The default `--timeout`: a registry that sends nothing for a minute,
/// not even the start of an answer, is stuck rather than busy.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// Connecting takes well under a second on a working network; past 30 s
/// the host is down or filtered (30 s is also the dial timeout of Go's
/// `http.DefaultTransport`, which docker, podman and skopeo build on). A
/// longer `--timeout` does not stretch it.
pub const CONNECT_MAX: Duration = Duration::from_secs(30);

/// The slowest average an upload may have, in bytes a second: 16 KiB/s is
/// 128 kbit/s, below any broadband or mobile uplink, so only a registry
/// that drains an upload on purpose falls under it.
pub const MIN_UPLOAD_RATE: u64 = 16 * 1024;

/// The slowest a registry may verify and store a blob it was sent, in
/// bytes a second: hashing runs at hundreds of MB/s, an S3 copy at tens.
pub const MIN_VERIFY_RATE: u64 = 1024 * 1024;

/// The longest `--timeout` taken: beyond a day it is no limit at all.
pub const MAX_IDLE: Duration = Duration::from_secs(24 * 60 * 60);

/// The limits of one push, derived from its `--timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { idle: DEFAULT_IDLE }
    }
}

impl Timeouts {
    /// Limits for `--timeout idle`, kept between a millisecond and
    /// [`MAX_IDLE`].
    pub fn new(idle: Duration) -> Timeouts {
        Timeouts {
            idle: idle.clamp(Duration::from_millis(1), MAX_IDLE),
        }
    }

    /// `--timeout`: the longest the registry may leave us waiting.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// Connecting, the TLS handshake included.
    pub fn connect(&self) -> Duration {
        self.idle.min(CONNECT_MAX)
    }

    /// The whole of one request that sends `body` bytes, from its first
    /// try to the end of its last.
    pub fn request(&self, body: u64) -> Duration {
        self.idle + Duration::from_secs(body / MIN_UPLOAD_RATE)
    }

    /// The wait for the registry's answer once `body` bytes are sent.
    pub fn answer(&self, body: u64) -> Duration {
        self.idle + Duration::from_secs(body / MIN_VERIFY_RATE)
    }
}

/// `2 s`, `1.5 s`, `90 s`: how limits appear in messages.
pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn limits_scale_with_the_body() {
        let t = Timeouts::default();
        assert_eq!((t.idle(), t.connect()), (S(60), S(30)));
        assert_eq!(t.request(0), S(60));
        assert_eq!(t.answer(0), S(60));
        // 1 GiB: 65536 s to upload at the slowest, 1024 s to verify.
        assert_eq!(t.request(1 << 30), S(60 + 65536));
        assert_eq!(t.answer(1 << 30), S(60 + 1024));
        // A short --timeout shortens connecting too; a long one does not
        // stretch it.
        assert_eq!(Timeouts::new(S(2)).connect(), S(2));
        assert_eq!(Timeouts::new(S(600)).connect(), S(30));
        assert_eq!(Timeouts::new(S(u64::MAX)).idle(), MAX_IDLE);
        assert_eq!(Timeouts::new(S(0)).idle(), Duration::from_millis(1));
        // The largest body there can be still has a finite limit.
        assert!(Timeouts::new(MAX_IDLE).request(u64::MAX) > MAX_IDLE);
    }

    #[test]
    fn shown_in_seconds() {
        assert_eq!(show(S(2)), "2 s");
        assert_eq!(show(Duration::from_millis(1500)), "1.5 s");
    }
}
