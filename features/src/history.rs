//! The questions a feature may ask about a homeowner's behaviour, and the batch answer.
//!
//! [`History`] is the only door through which feature definitions see events. It has two
//! implementations that must answer identically: [`crate::state::ContactState`], the
//! streaming job's compact incremental state, and [`EventHistory`], the point-in-time
//! computation over a list of raw events used by the batch backfill. Every query is "as of
//! the end of day `at`" and counts whole days.

use roi_schemas::EventType;

use crate::day::{Day, day_of};

/// A set of event types (bit *i* = `EventType::ALL[i]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeSet(pub u16);

impl TypeSet {
    /// The set holding the given types.
    pub const fn of(types: &[EventType]) -> TypeSet {
        let mut bits = 0u16;
        let mut i = 0;
        while i < types.len() {
            bits |= 1 << (types[i] as u16);
            i += 1;
        }
        TypeSet(bits)
    }

    /// Every event type.
    pub const ALL: TypeSet = TypeSet(u16::MAX >> 1);

    /// Whether `t` is in the set.
    pub fn contains(self, t: u8) -> bool {
        self.0 & (1 << t) != 0
    }
}

/// Identifiers counted distinctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Distinct {
    /// Documents touched (`document_*`).
    Documents = 0,
    /// Listings touched (`listing_*`).
    Listings = 1,
    /// App sessions with activity.
    Sessions = 2,
}

/// A homeowner's behaviour, queried point-in-time.
pub trait History {
    /// Events of `types` on days `at − days + 1 ..= at`.
    fn count(&self, types: TypeSet, days: i32, at: Day) -> u32;
    /// The latest day `≤ at` with an event of `types`.
    fn last_day(&self, types: TypeSet, at: Day) -> Option<Day>;
    /// The earliest day `≤ at` with any event (start of observation).
    fn first_day(&self, at: Day) -> Option<Day>;
    /// Distinct ids of `what` seen on days `at − days + 1 ..= at`.
    fn distinct(&self, what: Distinct, days: i32, at: Day) -> u32;
}

/// One event as the feature layer needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Touch {
    /// Event time, Unix ms.
    pub ts_ms: i64,
    /// `EventType` index.
    pub kind: u8,
    /// Session id, if any.
    pub session: Option<i64>,
    /// Document id, if any.
    pub document: Option<i64>,
    /// Listing id, if any.
    pub listing: Option<i64>,
}

impl Touch {
    /// The distinct id of kind `what`, if this event carries one.
    pub fn id(&self, what: Distinct) -> Option<i64> {
        match what {
            Distinct::Documents => self.document,
            Distinct::Listings => self.listing,
            Distinct::Sessions => self.session,
        }
    }
}

/// Point-in-time answers from raw events (any order).
#[derive(Debug, Clone, Default)]
pub struct EventHistory {
    /// The events.
    pub events: Vec<Touch>,
}

impl EventHistory {
    fn visible(&self, at: Day) -> impl Iterator<Item = (&Touch, Day)> {
        self.events
            .iter()
            .map(|e| (e, day_of(e.ts_ms)))
            .filter(move |(_, d)| *d <= at)
    }
}

impl History for EventHistory {
    fn count(&self, types: TypeSet, days: i32, at: Day) -> u32 {
        self.visible(at)
            .filter(|(e, d)| *d > at - days && types.contains(e.kind))
            .count() as u32
    }

    fn last_day(&self, types: TypeSet, at: Day) -> Option<Day> {
        self.visible(at)
            .filter(|(e, _)| types.contains(e.kind))
            .map(|(_, d)| d)
            .max()
    }

    fn first_day(&self, at: Day) -> Option<Day> {
        self.visible(at).map(|(_, d)| d).min()
    }

    fn distinct(&self, what: Distinct, days: i32, at: Day) -> u32 {
        let mut ids: Vec<i64> = self
            .visible(at)
            .filter(|(_, d)| *d > at - days)
            .filter_map(|(e, _)| e.id(what))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u32
    }
}
