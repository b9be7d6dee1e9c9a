//! When to try a request again, and how long to wait first.

use std::time::{Duration, Instant};

/// The longest `Retry-After` we wait for on a 429; the backoff's bounds
/// would be meaningless if a server could ask for an hour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// Tries and waits: up to `delays.len() + 1` tries, waiting `delays[i]`
/// after the i-th failure, while the request's budget lasts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
    /// How to wait; tests record instead of sleeping.
    pub sleep: fn(Duration),
    /// The clock the request budget ([`Timeouts::request`](crate::registry::Timeouts::request)) is kept by;
    /// tests advance their own.
    pub now: fn() -> Instant,
}

impl Default for RetryPolicy {
    /// Four tries over 3.5 s: enough to ride out a registry restart or a
    /// load balancer's hiccup, short enough that a dead registry is
    /// reported promptly.
    fn default() -> Self {
        RetryPolicy {
            delays: vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
            sleep: std::thread::sleep,
            now: Instant::now,
        }
    }
}

/// Statuses worth another try: rate limiting and server trouble. 501 and
/// 505 are 5xx but say the request will never work.
pub(super) fn is_transient_status(status: u16) -> bool {
    status == 429 || ((500..600).contains(&status) && status != 501 && status != 505)
}

/// `Retry-After` in seconds (the HTTP-date form is not worth a date
/// parser), capped.
pub(super) fn retry_after(value: Option<&str>) -> Option<Duration> {
    let secs: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}
