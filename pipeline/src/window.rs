//! `features`: keyed window state per homeowner, and the features and signals of every
//! closed day for the homeowners active on it.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use roi_features::catalog::{FeatureVector, Inputs};
use roi_features::context::ContextIndex;
use roi_features::day::{Day, date, day_of};
use roi_features::history::Touch;
use roi_features::signal::{SIGNALS, SignalInputs, fire};
use roi_features::snapshot::Snapshot;
use roi_features::state::ContactState;
use roi_schemas::{ContactId, OrgId, SignalFiring};

use crate::Result;
use crate::columns::Columns;
use crate::decode::EventBatch;
use crate::operator::{Operator, Output};

/// Longest window of the catalog, days.
const LONGEST_WINDOW: i32 = 90;
/// How often (in closed days) idle homeowners' state is compacted.
const SWEEP_EVERY_DAYS: i32 = 30;

struct Slot {
    org: i64,
    state: ContactState,
}

/// The window operator.
pub struct FeatureWindow {
    context: Arc<ContextIndex>,
    slots: HashMap<i64, Slot>,
    touched: BTreeMap<Day, Vec<i64>>,
    last_sweep: Option<Day>,
}

impl FeatureWindow {
    /// An operator joining `context` into every snapshot.
    pub fn new(context: Arc<ContextIndex>) -> FeatureWindow {
        FeatureWindow {
            context,
            slots: HashMap::default(),
            touched: BTreeMap::new(),
            last_sweep: None,
        }
    }

    /// Homeowners with state.
    pub fn contacts(&self) -> usize {
        self.slots.len()
    }

    /// Bytes of window state per homeowner, on average.
    pub fn bytes_per_contact(&self) -> f64 {
        let total: usize = self
            .slots
            .values()
            .map(|s| s.state.bytes() + std::mem::size_of::<Slot>() + 16)
            .sum();
        total as f64 / self.slots.len().max(1) as f64
    }

    fn close_day(&mut self, day: Day, mut contacts: Vec<i64>, out: &mut Output) {
        contacts.sort_unstable();
        contacts.dedup();
        for contact in contacts {
            let Some(slot) = self.slots.get_mut(&contact) else {
                continue;
            };
            slot.state.evict_before(day - LONGEST_WINDOW + 1);
            let facts = self.context.facts(ContactId(contact), day);
            let before = self.context.facts(ContactId(contact), day - 30);
            let features = FeatureVector::compute(&Inputs {
                history: &slot.state,
                facts: &facts,
                at: day,
            });
            for (i, r) in fire(&SignalInputs {
                features: &features,
                history: &slot.state,
                facts_before: &before,
                at: day,
            }) {
                let s = &SIGNALS[i];
                out.signals.push(SignalFiring {
                    contact_id: ContactId(contact),
                    org_id: OrgId(slot.org),
                    as_of_date: date(day),
                    signal: s.name.to_owned(),
                    category: s.category.as_str().to_owned(),
                    pattern: s.pattern.as_str().to_owned(),
                    strength: r.strength,
                    confidence: r.confidence,
                    reason: r.reason,
                });
            }
            out.snapshots.push(Snapshot {
                contact_id: contact,
                org_id: slot.org,
                day,
                features,
            });
        }
    }

    fn sweep(&mut self, closed_through: Day) {
        if self
            .last_sweep
            .is_some_and(|d| closed_through - d < SWEEP_EVERY_DAYS)
        {
            return;
        }
        for slot in self.slots.values_mut() {
            slot.state.evict_before(closed_through - LONGEST_WINDOW - 7);
            slot.state.shrink();
        }
        self.last_sweep = Some(closed_through);
    }
}

impl Operator for FeatureWindow {
    fn name(&self) -> &'static str {
        "features"
    }

    fn process(&mut self, batch: EventBatch, _out: &mut Output) -> Result<Option<EventBatch>> {
        let c = Columns::of(&batch.batch);
        for row in 0..batch.batch.num_rows() {
            let contact = c.contact_id.value(row);
            let touch = Touch {
                ts_ms: c.ts.value(row),
                kind: c.kind.value(row),
                session: Columns::opt(c.session_id, row),
                document: Columns::opt(c.document_id, row),
                listing: Columns::opt(c.listing_id, row),
            };
            let slot = self.slots.entry(contact).or_insert_with(|| Slot {
                org: c.org_id.value(row),
                state: ContactState::default(),
            });
            slot.state.add(&touch);
            self.touched
                .entry(day_of(touch.ts_ms))
                .or_default()
                .push(contact);
        }
        Ok(None)
    }

    fn on_watermark(&mut self, closed_through: Day, out: &mut Output) -> Result<()> {
        while let Some(entry) = self.touched.first_entry() {
            if *entry.key() > closed_through {
                break;
            }
            let (day, contacts) = entry.remove_entry();
            self.close_day(day, contacts, out);
        }
        self.sweep(closed_through);
        Ok(())
    }

    fn close(&mut self, out: &mut Output) -> Result<()> {
        self.on_watermark(Day::MAX, out)
    }
}

/// The window operator split by homeowner into key partitions that close their days in
/// parallel. Outputs are merged in (day, homeowner) order, so they are identical for any
/// number of partitions.
pub struct PartitionedWindow {
    parts: Vec<FeatureWindow>,
}

impl PartitionedWindow {
    /// `partitions` windows sharing `context`.
    pub fn new(context: Arc<ContextIndex>, partitions: usize) -> PartitionedWindow {
        PartitionedWindow {
            parts: (0..partitions.max(1))
                .map(|_| FeatureWindow::new(context.clone()))
                .collect(),
        }
    }

    /// Homeowners with state.
    pub fn contacts(&self) -> usize {
        self.parts.iter().map(FeatureWindow::contacts).sum()
    }

    /// Bytes of window state per homeowner, on average.
    pub fn bytes_per_contact(&self) -> f64 {
        let (bytes, n) = self.parts.iter().fold((0.0, 0usize), |(b, n), p| {
            (
                b + p.bytes_per_contact() * p.contacts() as f64,
                n + p.contacts(),
            )
        });
        bytes / n.max(1) as f64
    }

    fn each(
        &mut self,
        f: impl Fn(&mut FeatureWindow, &mut Output) -> Result<()> + Sync,
        out: &mut Output,
    ) -> Result<()> {
        use rayon::prelude::*;
        let outputs: Vec<Output> = self
            .parts
            .par_iter_mut()
            .map(|w| {
                let mut o = Output::default();
                f(w, &mut o).map(|_| o)
            })
            .collect::<Result<_>>()?;
        let mut snapshots = Vec::new();
        let mut signals = Vec::new();
        for mut o in outputs {
            snapshots.append(&mut o.snapshots);
            signals.append(&mut o.signals);
        }
        snapshots.sort_by_key(|s| (s.day, s.contact_id));
        signals.sort_by_key(|s| (s.as_of_date, s.contact_id));
        out.snapshots.append(&mut snapshots);
        out.signals.append(&mut signals);
        Ok(())
    }
}

impl Operator for PartitionedWindow {
    fn name(&self) -> &'static str {
        "features"
    }

    fn process(&mut self, batch: EventBatch, out: &mut Output) -> Result<Option<EventBatch>> {
        let n = self.parts.len();
        if n == 1 {
            return self.parts[0].process(batch, out);
        }
        let c = Columns::of(&batch.batch);
        let part: Vec<usize> = (0..batch.batch.num_rows())
            .map(|r| c.contact_id.value(r).rem_euclid(n as i64) as usize)
            .collect();
        for (p, window) in self.parts.iter_mut().enumerate() {
            let keep: Vec<bool> = part.iter().map(|x| *x == p).collect();
            if let Some(rows) = crate::operator::filter(batch.clone(), keep)? {
                window.process(rows, out)?;
            }
        }
        Ok(None)
    }

    fn on_watermark(&mut self, closed_through: Day, out: &mut Output) -> Result<()> {
        self.each(|w, o| w.on_watermark(closed_through, o), out)
    }

    fn close(&mut self, out: &mut Output) -> Result<()> {
        self.each(|w, o| w.close(o), out)
    }
}
