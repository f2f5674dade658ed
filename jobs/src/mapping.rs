//! Sales data brought by users (MLS exports, public sales files), read through a column
//! mapping, so that the AVM trainer runs on it unchanged.
//!
//! A mapping is a TOML file naming, for each fact the AVM uses, the CSV column that holds
//! it. Every key except `price`, `sqft` and a sale date is optional:
//!
//! ```toml
//! price = "Sale_Price"            # sale price, dollars
//! sold_year = "Year_Sold"         # or: sold_on = "Close_Date" (YYYY-MM-DD)
//! sold_month = "Mo_Sold"          # 1-12, with sold_year
//! sqft = "Gr_Liv_Area"            # living area, square feet
//! beds = "Bedroom_AbvGr"
//! baths = ["Full_Bath", "Half_Bath*0.5"]   # summed; "*w" weights a column
//! lot_sqft = "Lot_Area"
//! year_built = "Year_Built"
//! lat = "Latitude"
//! lon = "Longitude"
//! area = "Neighborhood"           # plays the zip's part in the area statistics
//! condition = "Overall_Cond"      # numbers 1-5, or text mapped below
//! [condition_values]
//! Average = 3
//! [property_type]                 # column and its values -> single_family | townhouse | condo | multi_family
//! column = "Bldg_Type"
//! values = { OneFam = "single_family", TwnhsE = "townhouse" }
//! ```
//!
//! Each row is one sale of one property. Rows whose price, area or date cannot be read
//! are counted and reported, not guessed.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use roi_schemas::{PropertyId, PropertyMaster, PropertyType, Sale, SaleId, StrEnum};
use serde::Deserialize;

use crate::market::{self, Home, SaleFact};
use crate::valuation::FeatureTables;
use crate::{Error, Result};

/// How the CSV's columns map to the AVM's facts (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesMapping {
    /// Sale price column.
    pub price: String,
    /// Sale date column (`YYYY-MM-DD`).
    pub sold_on: Option<String>,
    /// Sale year column (with `sold_month`).
    pub sold_year: Option<String>,
    /// Sale month column, 1-12.
    pub sold_month: Option<String>,
    /// Living area column.
    pub sqft: String,
    /// Bedrooms column.
    pub beds: Option<String>,
    /// Bathroom columns, summed; `"Col*0.5"` weights a column.
    #[serde(default)]
    pub baths: Vec<String>,
    /// Lot area column.
    pub lot_sqft: Option<String>,
    /// Year built column.
    pub year_built: Option<String>,
    /// Latitude column.
    pub lat: Option<String>,
    /// Longitude column.
    pub lon: Option<String>,
    /// Area column (neighbourhood or zip).
    pub area: Option<String>,
    /// Condition column.
    pub condition: Option<String>,
    /// Text condition values -> 1-5.
    #[serde(default)]
    pub condition_values: BTreeMap<String, i32>,
    /// Property type column and value map.
    pub property_type: Option<TypeMapping>,
}

/// The property-type column and how its values map to ROI's types.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeMapping {
    /// Column.
    pub column: String,
    /// Value -> `single_family`, `townhouse`, `condo` or `multi_family`.
    pub values: BTreeMap<String, String>,
}

/// Sales read through a mapping, as the AVM's inputs.
#[derive(Debug, Default)]
pub struct MappedSales {
    /// One sale per usable row.
    pub sales: Vec<Sale>,
    /// The tables the features come from (homes and area statistics; no price index).
    pub tables: FeatureTables,
    /// Rows left out, with the reason.
    pub skipped: Vec<(String, usize)>,
}

fn bad(message: String) -> Error {
    Error::Data {
        table: "CSV".into(),
        message,
    }
}

pub(crate) fn column(batch: &RecordBatch, name: &str, to: &DataType) -> Result<ArrayRef> {
    let index = batch.schema().index_of(name).map_err(|_| {
        let names: Vec<String> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        bad(format!(
            "the mapping names column {name:?}, which the CSV does not have (it has: {})",
            names.join(", ")
        ))
    })?;
    cast(batch.column(index), to).map_err(|e| bad(format!("column {name}: {e}")))
}

pub(crate) fn numbers(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    let a = column(batch, name, &DataType::Float64)?;
    let a = a
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| Error::Internal("cast to Float64 gave another type".into()))?;
    Ok((0..a.len())
        .map(|i| (a.is_valid(i) && a.value(i).is_finite()).then(|| a.value(i)))
        .collect())
}

pub(crate) fn texts(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let a = column(batch, name, &DataType::Utf8)?;
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("cast to Utf8 gave another type".into()))?;
    Ok((0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).trim().to_owned()))
        .collect())
}

fn optional_numbers(
    batch: &RecordBatch,
    name: Option<&String>,
    n: usize,
) -> Result<Vec<Option<f64>>> {
    match name {
        Some(name) => numbers(batch, name),
        None => Ok(vec![None; n]),
    }
}

/// A CSV with a header row as record batches, with column types inferred from the first
/// 10,000 rows.
pub(crate) fn csv_batches(
    csv: &str,
) -> Result<(
    arrow::datatypes::SchemaRef,
    impl Iterator<Item = Result<RecordBatch>> + '_,
)> {
    let mut reader = std::io::Cursor::new(csv.as_bytes());
    let format = arrow::csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(&mut reader, Some(10_000))
        .map_err(|e| bad(format!("cannot read the CSV: {e}")))?;
    reader.set_position(0);
    let schema = Arc::new(schema);
    let csv_reader = arrow::csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .build(reader)
        .map_err(|e| bad(format!("cannot read the CSV: {e}")))?;
    Ok((
        schema,
        csv_reader.map(|b| b.map_err(|e| bad(format!("cannot read the CSV: {e}")))),
    ))
}

/// Reads `csv` (with a header row) through `mapping`.
pub fn read(csv: &str, mapping: &SalesMapping) -> Result<MappedSales> {
    let (_, csv_reader) = csv_batches(csv)?;
    let mut out = MappedSales::default();
    let mut skipped: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut facts = Vec::new();
    for batch in csv_reader {
        let batch = batch?;
        let n = batch.num_rows();
        let price = numbers(&batch, &mapping.price)?;
        let sqft = numbers(&batch, &mapping.sqft)?;
        let dates: Vec<Option<NaiveDate>> =
            match (&mapping.sold_on, &mapping.sold_year, &mapping.sold_month) {
                (Some(col), _, _) => texts(&batch, col)?
                    .into_iter()
                    .map(|t| {
                        t.and_then(|t| {
                            NaiveDate::parse_from_str(t.get(..10).unwrap_or(&t), "%Y-%m-%d").ok()
                        })
                    })
                    .collect(),
                (None, Some(y), Some(m)) => numbers(&batch, y)?
                    .into_iter()
                    .zip(numbers(&batch, m)?)
                    .map(|(y, m)| match (y, m) {
                        (Some(y), Some(m)) => NaiveDate::from_ymd_opt(y as i32, m as u32, 1),
                        _ => None,
                    })
                    .collect(),
                _ => {
                    return Err(bad(
                        "the mapping needs a sale date: sold_on, or sold_year and sold_month"
                            .into(),
                    ));
                }
            };
        let beds = optional_numbers(&batch, mapping.beds.as_ref(), n)?;
        let lot = optional_numbers(&batch, mapping.lot_sqft.as_ref(), n)?;
        let built = optional_numbers(&batch, mapping.year_built.as_ref(), n)?;
        let lat = optional_numbers(&batch, mapping.lat.as_ref(), n)?;
        let lon = optional_numbers(&batch, mapping.lon.as_ref(), n)?;
        let area = match &mapping.area {
            Some(c) => texts(&batch, c)?,
            None => vec![None; n],
        };
        let mut baths: Vec<Option<f64>> = vec![None; n];
        for spec in &mapping.baths {
            let (col, weight) = match spec.split_once('*') {
                Some((c, w)) => (
                    c.trim(),
                    w.trim().parse::<f64>().map_err(|_| {
                        bad(format!("baths entry {spec:?}: weight is not a number"))
                    })?,
                ),
                None => (spec.trim(), 1.0),
            };
            for (b, v) in baths.iter_mut().zip(numbers(&batch, col)?) {
                if let Some(v) = v {
                    *b = Some(b.unwrap_or(0.0) + weight * v);
                }
            }
        }
        let condition: Vec<Option<i32>> = match &mapping.condition {
            Some(c) => texts(&batch, c)?
                .into_iter()
                .map(|t| {
                    t.and_then(|t| {
                        mapping
                            .condition_values
                            .get(&t)
                            .copied()
                            .or_else(|| t.parse::<i32>().ok())
                    })
                    .filter(|c| (1..=5).contains(c))
                })
                .collect(),
            None => vec![None; n],
        };
        let kind: Vec<Option<PropertyType>> = match &mapping.property_type {
            Some(m) => texts(&batch, &m.column)?
                .into_iter()
                .map(|t| t.and_then(|t| m.values.get(&t).and_then(|v| PropertyType::parse(v))))
                .collect(),
            None => vec![None; n],
        };
        for i in 0..n {
            let (Some(p), Some(s), Some(d)) = (price[i], sqft[i], dates[i]) else {
                *skipped
                    .entry("no readable price, living area or sale date")
                    .or_default() += 1;
                continue;
            };
            if p <= 0.0 || s <= 0.0 {
                *skipped
                    .entry("price or living area not positive")
                    .or_default() += 1;
                continue;
            }
            let id = PropertyId(out.sales.len() as i64 + 1);
            out.sales.push(Sale {
                sale_id: SaleId(id.0),
                property_id: id,
                sold_on: d,
                price: p,
                days_on_market: None,
                seller_contact_id: None,
                buyer_contact_id: None,
            });
            let home = PropertyMaster {
                zip: area[i].clone(),
                lat: lat[i],
                lon: lon[i],
                property_type: kind[i],
                sqft: Some(s.round() as i32),
                beds: beds[i].map(|b| b.round() as i32),
                baths: baths[i],
                lot_sqft: lot[i].map(|l| l.round() as i32),
                year_built: built[i].map(|y| y.round() as i32),
                condition: condition[i],
                record_count: 1,
                ..PropertyMaster::unknown(id, format!("row-{}", id.0))
            };
            facts.push(SaleFact::of(
                out.sales.last().expect("just pushed"),
                Some(&home),
            ));
            out.tables.master.push(home);
        }
    }
    if let Some(through) = facts.iter().map(|f| f.sold_on).max() {
        let homes: Vec<Home> = out.tables.master.iter().map(Home::of).collect();
        out.tables.market = market::area_stats(&facts, &homes, through);
    }
    out.skipped = skipped
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Ok(out)
}

/// Parses a mapping file.
pub fn parse_mapping(text: &str) -> Result<SalesMapping> {
    toml::from_str(text).map_err(|e| Error::Usage(format!("column mapping: {e}")))
}

/// Trains and evaluates the AVM on a sales CSV read through `mapping` (the same trainer
/// and time split as `avm-train`; without a price index, prices are not time-adjusted),
/// optionally writing the split's examples to `export`. Returns lines for people.
pub fn train_avm(
    csv: &str,
    mapping: &SalesMapping,
    as_of: Option<NaiveDate>,
    export: Option<&std::path::Path>,
) -> Result<Vec<String>> {
    use crate::valuation;
    let mapped = read(csv, mapping)?;
    let as_of = match as_of.or_else(|| mapped.sales.iter().map(|s| s.sold_on).max()) {
        Some(d) => d,
        None => return Err(bad("no usable sales rows".into())),
    };
    let coverage = crate::registry::AVM_COVERAGE;
    let (model, report) = valuation::train(
        &mapped.sales,
        &mapped.tables,
        as_of,
        &roi_models::gbdt::GbdtConfig::default(),
        coverage,
        "csv",
    )?;
    let mut lines = vec![format!(
        "{} sales read; {} training and {} calibration sales before the holdout, trained in {:.1} s; interval ±{:.1}%",
        mapped.sales.len(),
        report.train_rows,
        report.calibration_rows,
        report.train_seconds,
        100.0 * (model.half_width.exp() - 1.0)
    )];
    if let Some(a) = &report.holdout {
        lines.push(valuation::describe(a, coverage));
    }
    for (why, n) in mapped.skipped.iter().chain(&report.skipped) {
        lines.push(format!("left out: {n} rows: {why}"));
    }
    if let Some(path) = export {
        let split = valuation::split(&mapped.sales, &mapped.tables, as_of)?;
        let rows = valuation::write_examples(&split, path)?;
        lines.push(format!("wrote {rows} examples to {}", path.display()));
    }
    Ok(lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_through_the_mapping_and_names_bad_columns() {
        let csv = "Price,Yr,Mo,Area,Full,Half,Cond,Type,Hood\n\
                   200000,2009,6,1500,2,1,Good,OneFam,A\n\
                   0,2009,7,1500,2,1,Good,OneFam,A\n\
                   150000,2009,,1200,1,0,3,Twnhs,B\n\
                   180000,2010,1,1400,1,1,2,Duplex,B\n";
        let mapping = parse_mapping(
            r#"
            price = "Price"
            sold_year = "Yr"
            sold_month = "Mo"
            sqft = "Area"
            baths = ["Full", "Half*0.5"]
            area = "Hood"
            condition = "Cond"
            [condition_values]
            Good = 4
            [property_type]
            column = "Type"
            values = { OneFam = "single_family", Twnhs = "townhouse", Duplex = "multi_family" }
            "#,
        )
        .unwrap();
        let m = read(csv, &mapping).unwrap();
        assert_eq!(m.sales.len(), 2);
        assert_eq!(
            m.skipped,
            [
                ("no readable price, living area or sale date".to_owned(), 1),
                ("price or living area not positive".to_owned(), 1)
            ]
        );
        let h = &m.tables.master[0];
        assert_eq!(
            (h.baths, h.condition, h.property_type),
            (Some(2.5), Some(4), Some(PropertyType::SingleFamily))
        );
        assert_eq!(
            m.tables.master[1].property_type,
            Some(PropertyType::MultiFamily)
        );
        assert_eq!(
            m.sales[1].sold_on,
            NaiveDate::from_ymd_opt(2010, 1, 1).unwrap()
        );
        assert!(m.tables.market.iter().any(|s| s.area == "A"));

        let wrong = SalesMapping {
            sqft: "Living".into(),
            ..mapping.clone()
        };
        let err = read(csv, &wrong).unwrap_err().to_string();
        assert!(
            err.contains("column \"Living\"") && err.contains("Price, Yr"),
            "{err}"
        );
        let err = parse_mapping("price = \"P\"\nsqft = \"S\"\ncolour = \"x\"").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
