//! The operator contract of the streaming runtime.
//!
//! An operator sees decoded event batches in arrival order and may forward a subset of
//! each to the next operator. Lifecycle hooks default to doing nothing, so an operator
//! implements only what it needs: `on_start`, `process`, `on_watermark` (a day closed),
//! `on_checkpoint`, `close`.

use roi_features::day::Day;
use roi_features::snapshot::Snapshot;
use roi_schemas::{Alert, DeadLetter, SignalFiring};

use crate::Result;
use crate::decode::EventBatch;

/// What operators emit besides forwarded events.
#[derive(Debug, Default)]
pub struct Output {
    /// Rejected records.
    pub dead: Vec<DeadLetter>,
    /// Feature snapshots of closed days.
    pub snapshots: Vec<Snapshot>,
    /// Signals of closed days.
    pub signals: Vec<SignalFiring>,
    /// Alerts raised by scoring the snapshots.
    pub alerts: Vec<Alert>,
    /// Latest closed day, as decided by the event-time operator.
    pub closed_through: Option<Day>,
}

/// A streaming operator.
pub trait Operator: Send {
    /// Name for metrics and logs.
    fn name(&self) -> &'static str;
    /// Called once before the first batch.
    fn on_start(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }
    /// Processes a batch; returns the rows to pass on (`None` drops the batch).
    fn process(&mut self, batch: EventBatch, out: &mut Output) -> Result<Option<EventBatch>>;
    /// Called when every day up to `closed_through` is complete.
    fn on_watermark(&mut self, _closed_through: Day, _out: &mut Output) -> Result<()> {
        Ok(())
    }
    /// Called before a checkpoint is taken (state must then be consistent).
    fn on_checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called at the end of the stream.
    fn close(&mut self, _out: &mut Output) -> Result<()> {
        Ok(())
    }
}

/// Renders row `row` of a decoded batch back to its NDJSON form (for dead letters of
/// records rejected after decoding).
pub fn row_json(batch: &arrow::record_batch::RecordBatch, row: usize) -> String {
    use roi_schemas::{Event, Table};
    let one = batch.slice(row, 1);
    let Some(idx) = one.schema().index_of("event_type").ok() else {
        return String::new();
    };
    let mut columns = one.columns().to_vec();
    let Ok(utf8) = arrow::compute::cast(&columns[idx], &arrow::datatypes::DataType::Utf8) else {
        return String::new();
    };
    columns[idx] = utf8;
    let fields: Vec<arrow::datatypes::Field> = one
        .schema()
        .fields()
        .iter()
        .map(|f| {
            if f.name() == "event_type" {
                arrow::datatypes::Field::new("event_type", arrow::datatypes::DataType::Utf8, false)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    arrow::record_batch::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )
    .ok()
    .and_then(|b| Event::from_batch(&b).ok())
    .and_then(|mut events| events.pop())
    .and_then(|e| serde_json::to_string(&e).ok())
    .unwrap_or_default()
}

/// Keeps the rows of `batch` where `keep` is true.
pub fn filter(batch: EventBatch, keep: Vec<bool>) -> Result<Option<EventBatch>> {
    if keep.iter().all(|k| *k) {
        return Ok(Some(batch));
    }
    let mask = arrow::array::BooleanArray::from(keep);
    let rows = arrow::compute::filter_record_batch(&batch.batch, &mask)?;
    Ok((rows.num_rows() > 0).then(|| EventBatch {
        origin: batch.origin,
        batch: rows,
    }))
}
