//! Virtual time for the sans-IO machines.
//!
//! The core never reads a clock. The driver chooses an origin (process start, say), measures
//! milliseconds from it with a monotonic clock, and passes the value in as an [`Instant`] with
//! every input. Tests and simulators pass whatever they like, which is what makes runs
//! reproducible. The one rule: `now` must never go backwards between two calls on the same
//! machine; the machines treat an earlier `now` as equal to the latest one they have seen
//! (all durations saturate at zero) rather than misbehave.

use std::fmt;
use std::ops::{Add, AddAssign};
use std::time::Duration;

/// A point in time: milliseconds since an origin chosen by the driver.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The driver's origin.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant; used as "never" for deadlines.
    pub const MAX: Instant = Instant(u64::MAX);

    /// The instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, or `None` if that is not representable.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let ms = u64::try_from(d.as_millis()).ok()?;
        self.0.checked_add(ms).map(Instant)
    }

    /// `self - d`, or `None` if that would precede the origin.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        let ms = u64::try_from(d.as_millis()).ok()?;
        self.0.checked_sub(ms).map(Instant)
    }

    /// `self + d`, clamped to [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant::MAX)
    }

    /// The time from `earlier` to `self`; zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at [`Instant::MAX`]: a deadline that far away never fires, which is what an
    /// overflowing one would mean.
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({}ms)", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Instant::from_millis(1_000);
        assert_eq!((t + Duration::from_millis(500)).as_millis(), 1_500);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::MAX.checked_add(Duration::from_millis(1)), None);
        assert_eq!(t.checked_sub(Duration::from_secs(2)), None);
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(400)),
            Duration::from_millis(600)
        );
        assert_eq!(
            Instant::from_millis(400).saturating_duration_since(t),
            Duration::ZERO
        );
    }

    #[test]
    fn sub_millisecond_durations_are_truncated() {
        let t = Instant::from_millis(10) + Duration::from_micros(1_999);
        assert_eq!(t.as_millis(), 11);
    }
}
