//! Capture timestamps and their RFC 3339 rendering.

use std::fmt;

/// Nanoseconds since the Unix epoch, as recorded by the capture. Saturating: a hostile file
/// cannot overflow it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub fn from_secs_nanos(secs: u64, nanos: u64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    pub fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }

    pub fn subsec_nanos(self) -> u32 {
        (self.0 % 1_000_000_000) as u32
    }

    pub fn saturating_sub(self, other: Timestamp) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.saturating_sub(other.0))
    }

    /// Whether at least `d` has passed from `since` to `self` (never, when `since` is later).
    /// The same answer as `self.saturating_sub(since) >= d`, in integer nanoseconds: the flow
    /// table asks it for every packet, and building a `Duration` divides by 10⁹.
    #[inline]
    pub fn has_passed(self, since: Timestamp, d: std::time::Duration) -> bool {
        u128::from(self.0.saturating_sub(since.0)) >= d.as_nanos()
    }

    pub fn saturating_add(self, d: std::time::Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// RFC 3339 in UTC with microseconds, e.g. `2026-11-29T07:40:20.123456Z`.
    pub fn rfc3339_micros(self) -> Rfc3339Micros {
        Rfc3339Micros(self)
    }
}

/// Display adapter for [`Timestamp::rfc3339_micros`].
pub struct Rfc3339Micros(Timestamp);

impl fmt::Display for Rfc3339Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.secs();
        let micros = self.0.subsec_nanos() / 1_000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_passed_agrees_with_the_duration_comparison() {
        use std::time::Duration;
        let stamps = [
            0,
            1,
            999_999_999,
            1_000_000_000,
            5_000_000_001,
            u64::MAX - 1,
            u64::MAX,
        ];
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::new(5, 1),
            Duration::from_secs(60),
            Duration::MAX,
        ];
        for &now in &stamps {
            for &since in &stamps {
                for &d in &durations {
                    let (now, since) = (Timestamp(now), Timestamp(since));
                    assert_eq!(
                        now.has_passed(since, d),
                        now.saturating_sub(since) >= d,
                        "{now:?} {since:?} {d:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn renders_epoch() {
        assert_eq!(
            Timestamp(0).rfc3339_micros().to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn renders_leap_day_with_micros() {
        // 2024-02-29T12:34:56.789012Z
        let ts = Timestamp::from_secs_nanos(1_709_210_096, 789_012_345);
        assert_eq!(
            ts.rfc3339_micros().to_string(),
            "2024-02-29T12:34:56.789012Z"
        );
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let ts = Timestamp::from_secs_nanos(u64::MAX, u64::MAX);
        assert_eq!(ts, Timestamp(u64::MAX));
        // Still renders (year far in the future) without panicking.
        let _ = ts.rfc3339_micros().to_string();
    }
}
