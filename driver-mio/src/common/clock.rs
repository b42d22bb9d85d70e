//! Time for the core: a monotonic millisecond count from the driver's start, and the wall clock
//! in unix seconds (data for discovery's packet expirations and the node database only).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devp2p_core::Instant;

/// How far ahead a deadline is slept towards at most. The core uses [`Instant::MAX`] for
/// "never"; a driver still wakes once in a while rather than computing an unrepresentable
/// `std::time::Instant` (our choice; nothing is due then, so waking is harmless).
pub const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// The driver's clock: its origin is the moment it was created.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// Milliseconds since the origin, as the core's [`Instant`]. Never goes backwards.
    pub fn now(&self) -> Instant {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(ms)
    }

    /// Wall-clock seconds since the unix epoch (0 if the system clock is before 1970).
    pub fn unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The std instant of a core deadline, at most [`MAX_SLEEP`] from now.
    pub fn to_std(&self, deadline: Instant) -> std::time::Instant {
        let latest = std::time::Instant::now() + MAX_SLEEP;
        self.origin
            .checked_add(Duration::from_millis(deadline.as_millis()))
            .map_or(latest, |t| t.min(latest))
    }

    /// How long from now until `deadline` (zero if it has passed), at most [`MAX_SLEEP`].
    pub fn until(&self, deadline: Instant) -> Duration {
        self.to_std(deadline)
            .saturating_duration_since(std::time::Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_is_slept_towards_for_at_most_max_sleep() {
        let c = Clock::new();
        assert!(c.until(Instant::MAX) <= MAX_SLEEP);
        assert_eq!(c.until(Instant::ZERO), Duration::ZERO);
        assert!(c.now() <= c.now());
    }
}
