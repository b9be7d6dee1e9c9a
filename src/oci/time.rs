//! The image's one clock: SOURCE_DATE_EPOCH rendered as the RFC 3339
//! timestamps the config's `created` fields need.
//!
//! Written here rather than pulling in chrono: it is twenty lines, and the
//! input is always a non-negative whole number of seconds in UTC.

use super::OciError;

const SECONDS_PER_DAY: u64 = 86_400;

/// 9999-12-31T23:59:59Z: RFC 3339's `date-fullyear` is exactly four digits.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// `epoch` seconds after 1970-01-01T00:00:00Z as RFC 3339 UTC
/// (`YYYY-MM-DDTHH:MM:SSZ`), as the image spec asks for `created`.
pub fn rfc3339_utc(epoch: u64) -> Result<String, OciError> {
    if epoch > MAX_EPOCH {
        return Err(OciError::EpochOutOfRange { epoch });
    }
    let (days, secs) = (epoch / SECONDS_PER_DAY, epoch % SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    Ok(format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"))
}

/// The proleptic Gregorian (year, month, day) of `days` after 1970-01-01.
///
/// Howard Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date
/// Algorithms"), restricted to non-negative days: it counts in 400-year
/// eras (146097 days each, the leap-year cycle) of years starting on
/// March 1st, so that the leap day is the last day of its year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // 719468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year, [0, 365]
    let mp = (5 * doy + 2) / 153; // March-based month, [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        // Expected values from GNU `date -u -d @EPOCH +%Y-%m-%dT%H:%M:%SZ`.
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (68_169_600, "1972-02-29T00:00:00Z"),
            (946_684_799, "1999-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"), // divisible by 400: leap
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_234_567_890, "2009-02-13T23:31:30Z"),
            (1_582_934_400, "2020-02-29T00:00:00Z"),
            (1_709_164_799, "2024-02-28T23:59:59Z"),
            (1_709_164_800, "2024-02-29T00:00:00Z"),
            (2_147_483_647, "2038-01-19T03:14:07Z"), // i32 max
            (2_147_483_648, "2038-01-19T03:14:08Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (4_107_456_000, "2100-02-28T00:00:00Z"), // 2100 is not leap:
            (4_107_542_400, "2100-03-01T00:00:00Z"), // Feb 28th → Mar 1st
            (4_294_967_295, "2106-02-07T06:28:15Z"), // u32 max
            (MAX_EPOCH, "9999-12-31T23:59:59Z"),
        ];
        for (epoch, want) in cases {
            assert_eq!(rfc3339_utc(epoch).expect("in range"), want, "{epoch}");
        }
    }

    #[test]
    fn beyond_year_9999_is_an_error() {
        for epoch in [MAX_EPOCH + 1, u64::MAX] {
            assert!(matches!(
                rfc3339_utc(epoch),
                Err(OciError::EpochOutOfRange { epoch: e }) if e == epoch
            ));
        }
    }

    /// Every day from 1970 to 2500 against a naive day-by-day calendar.
    #[test]
    fn agrees_with_naive_calendar() {
        let is_leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        let month_len = |y: u64, m: u64| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970, 1, 1);
        for days in 0..(530 * 366) {
            if y == 2500 {
                return;
            }
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        panic!("loop ended before reaching 2500");
    }
}
