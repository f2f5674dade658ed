//! Typed access to the columns of a decoded event batch.

use arrow::array::{Array, AsArray, Int64Array, PrimitiveArray};
use arrow::datatypes::{TimestampMillisecondType, UInt8Type};
use arrow::record_batch::RecordBatch;

/// Borrowed, typed columns of a batch in [`crate::decode::event_batch_schema`].
pub struct Columns<'a> {
    /// Event ids.
    pub event_id: &'a Int64Array,
    /// Tenant ids.
    pub org_id: &'a Int64Array,
    /// Homeowner ids.
    pub contact_id: &'a Int64Array,
    /// Event type indices.
    pub kind: &'a PrimitiveArray<UInt8Type>,
    /// Event times, ms.
    pub ts: &'a PrimitiveArray<TimestampMillisecondType>,
    /// Session ids.
    pub session_id: &'a Int64Array,
    /// Document ids.
    pub document_id: &'a Int64Array,
    /// Listing ids.
    pub listing_id: &'a Int64Array,
    /// Source offsets.
    pub offset: &'a Int64Array,
}

impl<'a> Columns<'a> {
    /// Views `batch`; the runtime builds every batch with this schema.
    pub fn of(batch: &'a RecordBatch) -> Columns<'a> {
        let int = |name: &str| {
            batch
                .column_by_name(name)
                .expect("decoded batches have every column")
                .as_primitive()
        };
        Columns {
            event_id: int("event_id"),
            org_id: int("org_id"),
            contact_id: int("contact_id"),
            kind: batch
                .column_by_name("event_type")
                .expect("decoded batches have every column")
                .as_dictionary::<UInt8Type>()
                .keys(),
            ts: batch
                .column_by_name("ts")
                .expect("decoded batches have every column")
                .as_primitive(),
            session_id: int("session_id"),
            document_id: int("document_id"),
            listing_id: int("listing_id"),
            offset: int("offset"),
        }
    }

    /// Optional value of an Int64 column.
    pub fn opt(a: &Int64Array, row: usize) -> Option<i64> {
        (!a.is_null(row)).then(|| a.value(row))
    }
}
