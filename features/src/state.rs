//! The streaming job's per-homeowner state: compact, incremental, and exactly as
//! informative as [`crate::history::EventHistory`] for every query of the catalog.
//!
//! No raw events are kept. The state holds per-(day, type) counts, the (day, kind, id)
//! triples needed for distinct counts (documents, listings, sessions), and the latest day of each
//! type that has been evicted. Days older than the longest window before the oldest day
//! that may still be queried are evicted with [`ContactState::evict_before`].

use crate::day::{Day, day_of};
use crate::history::{Distinct, History, Touch, TypeSet};

const NONE: Day = Day::MIN;

/// Count of one event type on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    day: Day,
    kind: u8,
    count: u16,
}

/// Incremental window state of one homeowner.
#[derive(Debug, Clone)]
pub struct ContactState {
    buckets: Vec<Bucket>,
    ids: Vec<(Day, Distinct, i64)>,
    last_evicted: [Day; 15],
    first_day: Day,
}

impl Default for ContactState {
    fn default() -> Self {
        ContactState {
            buckets: Vec::new(),
            ids: Vec::new(),
            last_evicted: [NONE; 15],
            first_day: Day::MAX,
        }
    }
}

impl ContactState {
    /// Adds one event (events may arrive in any order).
    pub fn add(&mut self, e: &Touch) {
        let day = day_of(e.ts_ms);
        self.first_day = self.first_day.min(day);
        // Buckets stay sorted by (day, kind); events mostly arrive in day order, so the
        // search usually lands at the end.
        match self
            .buckets
            .binary_search_by(|b| (b.day, b.kind).cmp(&(day, e.kind)))
        {
            Ok(i) => self.buckets[i].count = self.buckets[i].count.saturating_add(1),
            Err(i) => self.buckets.insert(
                i,
                Bucket {
                    day,
                    kind: e.kind,
                    count: 1,
                },
            ),
        }
        for what in [Distinct::Documents, Distinct::Listings, Distinct::Sessions] {
            if let Some(id) = e.id(what)
                && !self
                    .ids
                    .iter()
                    .any(|&(d, w, i)| d == day && w == what && i == id)
            {
                self.ids.push((day, what, id));
            }
        }
    }

    /// Forgets everything about days before `day` (keeping what recency queries need).
    pub fn evict_before(&mut self, day: Day) {
        let n = self.buckets.partition_point(|b| b.day < day);
        for b in self.buckets.drain(..n) {
            let l = &mut self.last_evicted[b.kind as usize];
            *l = (*l).max(b.day);
        }
        self.ids.retain(|(d, _, _)| *d >= day);
    }

    /// Whether the state holds nothing that a future query could need.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.first_day == Day::MAX
    }

    /// Heap and inline bytes used by this state.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self.ids.capacity() * std::mem::size_of::<(Day, Distinct, i64)>()
    }

    /// Releases spare capacity (after eviction).
    pub fn shrink(&mut self) {
        self.buckets.shrink_to_fit();
        self.ids.shrink_to_fit();
    }
}

impl History for ContactState {
    fn count(&self, types: TypeSet, days: i32, at: Day) -> u32 {
        let end = self.buckets.partition_point(|b| b.day <= at);
        self.buckets[..end]
            .iter()
            .rev()
            .take_while(|b| b.day > at - days)
            .filter(|b| types.contains(b.kind))
            .map(|b| u32::from(b.count))
            .sum()
    }

    fn last_day(&self, types: TypeSet, at: Day) -> Option<Day> {
        let end = self.buckets.partition_point(|b| b.day <= at);
        let live = self.buckets[..end]
            .iter()
            .rev()
            .find(|b| types.contains(b.kind))
            .map(|b| b.day);
        let evicted = (0..15u8)
            .filter(|t| types.contains(*t))
            .map(|t| self.last_evicted[t as usize])
            .max()
            .filter(|d| *d != NONE);
        live.max(evicted)
    }

    fn first_day(&self, at: Day) -> Option<Day> {
        (self.first_day <= at).then_some(self.first_day)
    }

    fn distinct(&self, what: Distinct, days: i32, at: Day) -> u32 {
        let mut ids: Vec<i64> = self
            .ids
            .iter()
            .filter(|(d, w, _)| *w == what && *d <= at && *d > at - days)
            .map(|(_, _, i)| *i)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as u32
    }
}
