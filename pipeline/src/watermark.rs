//! Event time: watermarks, lateness and which days are complete.
//!
//! The watermark trails the largest event time seen by `max_out_of_order`. An event whose
//! time is more than `allowed_lateness` behind the watermark is *late*: it is not applied
//! and goes to the dead letters with reason `late`. Day *D* is *closed* once its end is
//! behind `watermark − allowed_lateness`: no event of *D* can be accepted any more, so its
//! features are final and can be emitted. These are pure decisions, tested without I/O.

use roi_features::day::{Day, day_of};

/// Event-time settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EventTimeConfig {
    /// How far behind the newest event time the watermark trails, ms.
    pub max_out_of_order_ms: i64,
    /// How far behind the watermark an event may still be applied, ms.
    pub allowed_lateness_ms: i64,
}

impl Default for EventTimeConfig {
    fn default() -> Self {
        EventTimeConfig {
            max_out_of_order_ms: 10 * 60_000,
            allowed_lateness_ms: 6 * 3_600_000,
        }
    }
}

/// What to do with an arriving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Apply it.
    Accept,
    /// Too late: dead-letter it with reason `late`.
    Late,
}

/// The event-time clock of one stream (or one partition of it).
#[derive(Debug, Clone)]
pub struct EventClock {
    config: EventTimeConfig,
    max_ts: i64,
}

impl EventClock {
    /// A clock that has seen nothing.
    pub fn new(config: EventTimeConfig) -> EventClock {
        EventClock {
            config,
            max_ts: i64::MIN,
        }
    }

    /// The current watermark (ms), or `None` before the first event.
    pub fn watermark(&self) -> Option<i64> {
        (self.max_ts != i64::MIN).then(|| self.max_ts - self.config.max_out_of_order_ms)
    }

    /// Events older than this (ms) are late.
    fn horizon(&self) -> Option<i64> {
        self.watermark()
            .map(|w| w - self.config.allowed_lateness_ms)
    }

    /// Decides about an event at `ts_ms` and advances the clock when it is accepted.
    pub fn admit(&mut self, ts_ms: i64) -> Admission {
        if self.horizon().is_some_and(|h| ts_ms < h) {
            return Admission::Late;
        }
        self.max_ts = self.max_ts.max(ts_ms);
        Admission::Accept
    }

    /// The latest day that is closed, if any.
    pub fn closed_through(&self) -> Option<Day> {
        self.horizon().map(|h| day_of(h) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roi_features::day::DAY_MS;

    #[test]
    fn late_events_and_closed_days() {
        let cfg = EventTimeConfig {
            max_out_of_order_ms: 1_000,
            allowed_lateness_ms: 10_000,
        };
        let mut c = EventClock::new(cfg);
        assert_eq!(c.watermark(), None);
        assert_eq!(c.closed_through(), None);
        let day10 = 10 * DAY_MS;
        assert_eq!(c.admit(day10 + 50_000), Admission::Accept);
        assert_eq!(c.watermark(), Some(day10 + 49_000));
        // 11 s behind the newest event is within 1 s + 10 s: accepted.
        assert_eq!(c.admit(day10 + 39_000), Admission::Accept);
        assert_eq!(c.admit(day10 + 38_999), Admission::Late);
        // Day 9 is closed only once the horizon has passed midnight.
        assert_eq!(c.closed_through(), Some(9));
        let mut c = EventClock::new(cfg);
        c.admit(day10 + 5_000);
        assert_eq!(c.closed_through(), Some(8), "horizon still on day 9");
        // An event of day 9 is still accepted while day 9 is open.
        assert_eq!(c.admit(day10 - 1), Admission::Accept);
    }
}
