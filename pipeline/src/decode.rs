//! Decoding: raw lines → validated events as Arrow record batches, plus dead letters.
//!
//! Each line goes through [`roi_schemas::parse_event_line`] (a borrowing fast path; only bad
//! lines pay for a diagnosis) and is appended column by column to builders of the
//! [`roi_schemas::Event`] schema. Large chunks are split and decoded on all cores; the
//! pieces keep their order, so output does not depend on the number of threads.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt8Type};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use roi_schemas::{DeadLetter, Event, StrEnum, parse_event_line};

use crate::Result;
use crate::source::Chunk;

/// The schema of decoded event batches: the `events` table with `event_type`
/// dictionary-encoded (keys are `EventType` indices) and the source offset of each row.
pub fn event_batch_schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let base = <Event as roi_schemas::Table>::schema();
            let mut fields: Vec<Field> = base
                .fields()
                .iter()
                .map(|f| {
                    if f.name() == "event_type" {
                        Field::new(
                            "event_type",
                            DataType::Dictionary(
                                Box::new(DataType::UInt8),
                                Box::new(DataType::Utf8),
                            ),
                            false,
                        )
                    } else {
                        f.as_ref().clone()
                    }
                })
                .collect();
            fields.push(Field::new("offset", DataType::Int64, false));
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Decoded events of one piece of one chunk.
#[derive(Debug, Clone)]
pub struct EventBatch {
    /// Where the rows came from.
    pub origin: Arc<str>,
    /// Rows, in [`event_batch_schema`].
    pub batch: RecordBatch,
}

/// What decoding a chunk produced.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Valid events, in line order.
    pub batches: Vec<EventBatch>,
    /// Rejected lines, in line order.
    pub dead: Vec<DeadLetter>,
}

struct Builders {
    event_id: Int64Builder,
    org_id: Int64Builder,
    contact_id: Int64Builder,
    event_type: StringDictionaryBuilder<UInt8Type>,
    ts: TimestampMillisecondBuilder,
    session_id: Int64Builder,
    property_id: Int64Builder,
    document_id: Int64Builder,
    listing_id: Int64Builder,
    search_zip: StringBuilder,
    campaign_id: Int64Builder,
    amount: Float64Builder,
    offset: Int64Builder,
}

impl Builders {
    fn new(n: usize) -> Builders {
        // Seed the dictionary with every type in catalog order so keys equal type indices.
        let values = arrow::array::StringArray::from_iter_values(
            roi_schemas::EventType::ALL.iter().map(|t| t.as_str()),
        );
        let event_type = StringDictionaryBuilder::<UInt8Type>::new_with_dictionary(n, &values)
            .expect("15 event types fit a u8 dictionary");
        Builders {
            event_id: Int64Builder::with_capacity(n),
            org_id: Int64Builder::with_capacity(n),
            contact_id: Int64Builder::with_capacity(n),
            event_type,
            ts: TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC"),
            session_id: Int64Builder::with_capacity(n),
            property_id: Int64Builder::with_capacity(n),
            document_id: Int64Builder::with_capacity(n),
            listing_id: Int64Builder::with_capacity(n),
            search_zip: StringBuilder::new(),
            campaign_id: Int64Builder::with_capacity(n),
            amount: Float64Builder::with_capacity(n),
            offset: Int64Builder::with_capacity(n),
        }
    }

    fn push(&mut self, e: &Event, offset: i64) {
        self.event_id.append_value(e.event_id.0);
        self.org_id.append_value(e.org_id.0);
        self.contact_id.append_value(e.contact_id.0);
        self.event_type.append_value(e.event_type.as_str());
        self.ts.append_value(e.ts.timestamp_millis());
        self.session_id.append_option(e.session_id.map(|v| v.0));
        self.property_id.append_option(e.property_id.map(|v| v.0));
        self.document_id.append_option(e.document_id.map(|v| v.0));
        self.listing_id.append_option(e.listing_id.map(|v| v.0));
        self.search_zip.append_option(e.search_zip.as_deref());
        self.campaign_id.append_option(e.campaign_id.map(|v| v.0));
        self.amount.append_option(e.amount);
        self.offset.append_value(offset);
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.org_id.finish()),
            Arc::new(self.contact_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.session_id.finish()),
            Arc::new(self.property_id.finish()),
            Arc::new(self.document_id.finish()),
            Arc::new(self.listing_id.finish()),
            Arc::new(self.search_zip.finish()),
            Arc::new(self.campaign_id.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.offset.finish()),
        ];
        Ok(RecordBatch::try_new(event_batch_schema(), columns)?)
    }
}

fn decode_piece(
    origin: &Arc<str>,
    lines: &[String],
    offsets: &[i64],
    now: DateTime<Utc>,
) -> Result<(EventBatch, Vec<DeadLetter>)> {
    let mut b = Builders::new(lines.len());
    let mut dead = Vec::new();
    for (line, &offset) in lines.iter().zip(offsets) {
        match parse_event_line(line, Some(now)) {
            Ok(e) => b.push(&e, offset),
            Err(r) => dead.push(DeadLetter {
                source: origin.to_string(),
                offset,
                reason: r.reason,
                field: r.field.map(str::to_owned),
                message: r.message,
                raw: line.clone(),
            }),
        }
    }
    Ok((
        EventBatch {
            origin: origin.clone(),
            batch: b.finish()?,
        },
        dead,
    ))
}

/// Decodes a chunk, splitting it into `pieces` decoded in parallel.
/// `now` is the reference time for the future-timestamp check.
pub fn decode(chunk: &Chunk, pieces: usize, now: DateTime<Utc>) -> Result<Decoded> {
    let n = chunk.lines.len();
    let size = n.div_ceil(pieces.max(1)).max(1);
    let parts: Vec<(EventBatch, Vec<DeadLetter>)> = chunk
        .lines
        .par_chunks(size)
        .zip(chunk.offsets.par_chunks(size))
        .map(|(lines, offsets)| decode_piece(&chunk.origin, lines, offsets, now))
        .collect::<Result<_>>()?;
    let mut out = Decoded::default();
    for (batch, mut dead) in parts {
        if batch.batch.num_rows() > 0 {
            out.batches.push(batch);
        }
        out.dead.append(&mut dead);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use roi_schemas::RejectReason;

    #[test]
    fn good_lines_become_rows_and_bad_ones_dead_letters_in_order() {
        let chunk = Chunk {
            origin: Arc::from("test.ndjson"),
            lines: vec![
                r#"{"event_id":1,"org_id":1,"contact_id":7,"event_type":"listing_viewed","ts":"2024-01-02T03:04:05.006Z","listing_id":9,"search_zip":"50010"}"#.into(),
                "{not json".into(),
                r#"{"event_id":2,"org_id":1,"contact_id":7,"event_type":"login","ts":"2024-01-02T03:04:06Z"}"#.into(),
            ],
            offsets: vec![1, 2, 3],
        };
        let d = decode(&chunk, 2, Utc::now()).expect("decode");
        let rows: usize = d.batches.iter().map(|b| b.batch.num_rows()).sum();
        assert_eq!(rows, 2);
        assert_eq!(d.dead.len(), 1);
        assert_eq!(d.dead[0].offset, 2);
        assert_eq!(d.dead[0].reason, RejectReason::MalformedJson);
        assert_eq!(d.dead[0].raw, "{not json");
        let first = &d.batches[0].batch;
        let types = first
            .column_by_name("event_type")
            .expect("column")
            .as_dictionary::<UInt8Type>();
        assert_eq!(
            types.keys().value(0),
            roi_schemas::EventType::ListingViewed.index() as u8
        );
        assert_eq!(
            first
                .column_by_name("search_zip")
                .expect("column")
                .as_string::<i32>()
                .value(0),
            "50010"
        );
        assert!(first.column_by_name("amount").expect("column").is_null(0));
    }
}
