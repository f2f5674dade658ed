//! `event_time`: applies the watermark policy, dead-letters late events with reason
//! `late`, and reports which days are closed.

use roi_schemas::{DeadLetter, RejectReason};

use crate::Result;
use crate::columns::Columns;
use crate::decode::EventBatch;
use crate::operator::{Operator, Output, filter, row_json};
use crate::watermark::{Admission, EventClock, EventTimeConfig};

/// The event-time gate.
#[derive(Debug)]
pub struct EventTime {
    clock: EventClock,
    /// Events dead-lettered as late so far.
    pub late: u64,
}

impl EventTime {
    /// A gate with the given settings.
    pub fn new(config: EventTimeConfig) -> EventTime {
        EventTime {
            clock: EventClock::new(config),
            late: 0,
        }
    }

    /// Current watermark, ms.
    pub fn watermark(&self) -> Option<i64> {
        self.clock.watermark()
    }
}

impl Operator for EventTime {
    fn name(&self) -> &'static str {
        "event_time"
    }

    fn process(&mut self, batch: EventBatch, out: &mut Output) -> Result<Option<EventBatch>> {
        let c = Columns::of(&batch.batch);
        let mut keep = Vec::with_capacity(batch.batch.num_rows());
        for row in 0..batch.batch.num_rows() {
            let ts = c.ts.value(row);
            let ok = self.clock.admit(ts) == Admission::Accept;
            if !ok {
                self.late += 1;
                let wm = self.clock.watermark().unwrap_or_default();
                out.dead.push(DeadLetter {
                    source: batch.origin.to_string(),
                    offset: c.offset.value(row),
                    reason: RejectReason::Late,
                    field: Some("ts".into()),
                    message: format!(
                        "event time {} is {} s behind the watermark {}, beyond the allowed lateness",
                        fmt_ms(ts),
                        (wm - ts) / 1000,
                        fmt_ms(wm)
                    ),
                    raw: row_json(&batch.batch, row),
                });
            }
            keep.push(ok);
        }
        out.closed_through = self.clock.closed_through();
        filter(batch, keep)
    }
}

/// Formats Unix ms as RFC 3339.
pub fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}
