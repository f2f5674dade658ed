//! `dedupe`: drops events whose (organization, event id) was already accepted.
//!
//! Ids are remembered per event day and forgotten once the day is closed (a duplicate of
//! a closed day's event is late anyway and is dead-lettered as such upstream of here).

use std::collections::{BTreeMap, HashSet};

use roi_features::day::{Day, day_of};
use roi_schemas::{DeadLetter, RejectReason};

use crate::Result;
use crate::columns::Columns;
use crate::decode::EventBatch;
use crate::operator::{Operator, Output, filter, row_json};

/// Duplicate filter.
#[derive(Debug, Default)]
pub struct Dedupe {
    seen: BTreeMap<Day, HashSet<(i64, i64)>>,
}

impl Operator for Dedupe {
    fn name(&self) -> &'static str {
        "dedupe"
    }

    fn process(&mut self, batch: EventBatch, out: &mut Output) -> Result<Option<EventBatch>> {
        let c = Columns::of(&batch.batch);
        let mut keep = Vec::with_capacity(batch.batch.num_rows());
        for row in 0..batch.batch.num_rows() {
            let key = (c.org_id.value(row), c.event_id.value(row));
            let fresh = self
                .seen
                .entry(day_of(c.ts.value(row)))
                .or_default()
                .insert(key);
            if !fresh {
                out.dead.push(DeadLetter {
                    source: batch.origin.to_string(),
                    offset: c.offset.value(row),
                    reason: RejectReason::DuplicateEvent,
                    field: Some("event_id".into()),
                    message: format!("event_id {} of org {} was already accepted", key.1, key.0),
                    raw: row_json(&batch.batch, row),
                });
            }
            keep.push(fresh);
        }
        filter(batch, keep)
    }

    fn on_watermark(&mut self, closed_through: Day, _out: &mut Output) -> Result<()> {
        self.seen = self.seen.split_off(&(closed_through.saturating_add(1)));
        Ok(())
    }
}
