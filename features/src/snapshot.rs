//! Feature snapshots as Arrow: one row per homeowner and day, one column per feature.
//!
//! The same layout is written by the streaming job (`features.contact_features`) and by
//! the batch backfill, so training data and live features are interchangeable.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Date32Builder, Float64Array, Float64Builder, Int64Array,
    Int64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::catalog::{FEATURES, FeatureVector};
use crate::day::Day;

/// One homeowner's features as of the end of a day.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Homeowner id.
    pub contact_id: i64,
    /// Tenant id.
    pub org_id: i64,
    /// The day.
    pub day: Day,
    /// Values in catalog order.
    pub features: FeatureVector,
}

/// `contact_id`, `org_id`, `as_of_date`, then every feature as a nullable `Float64`.
pub fn schema() -> SchemaRef {
    static SCHEMA: std::sync::OnceLock<SchemaRef> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let mut fields = vec![
                Field::new("contact_id", DataType::Int64, false),
                Field::new("org_id", DataType::Int64, false),
                Field::new("as_of_date", DataType::Date32, false),
            ];
            fields.extend(
                FEATURES
                    .iter()
                    .map(|f| Field::new(f.name, DataType::Float64, true)),
            );
            Arc::new(Schema::new(fields))
        })
        .clone()
}

/// Decodes a batch of the [`schema`] layout, finding columns by name. A feature column
/// the batch lacks reads as missing (a table written before the feature existed).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<Snapshot>, ArrowError> {
    fn column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, ArrowError> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| {
                ArrowError::SchemaError(format!(
                    "feature snapshots: column {name} missing or mistyped"
                ))
            })
    }
    let contact: &Int64Array = column(batch, "contact_id")?;
    let org: &Int64Array = column(batch, "org_id")?;
    let day: &Date32Array = column(batch, "as_of_date")?;
    let features: Vec<Option<&Float64Array>> = FEATURES
        .iter()
        .map(|f| column::<Float64Array>(batch, f.name).ok())
        .collect();
    Ok((0..batch.num_rows())
        .map(|i| Snapshot {
            contact_id: contact.value(i),
            org_id: org.value(i),
            day: day.value(i),
            features: FeatureVector(
                features
                    .iter()
                    .map(|c| c.and_then(|c| c.is_valid(i).then(|| c.value(i))))
                    .collect(),
            ),
        })
        .collect())
}

/// Encodes snapshots column by column.
pub fn to_batch(rows: &[Snapshot]) -> Result<RecordBatch, ArrowError> {
    let mut contact = Int64Builder::with_capacity(rows.len());
    let mut org = Int64Builder::with_capacity(rows.len());
    let mut day = Date32Builder::with_capacity(rows.len());
    let mut cols: Vec<Float64Builder> = FEATURES
        .iter()
        .map(|_| Float64Builder::with_capacity(rows.len()))
        .collect();
    for r in rows {
        contact.append_value(r.contact_id);
        org.append_value(r.org_id);
        day.append_value(r.day);
        for (b, v) in cols.iter_mut().zip(&r.features.0) {
            b.append_option(*v);
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(contact.finish()),
        Arc::new(org.finish()),
        Arc::new(day.finish()),
    ];
    columns.extend(
        cols.into_iter()
            .map(|mut b| Arc::new(b.finish()) as ArrayRef),
    );
    RecordBatch::try_new(schema(), columns)
}
