//! Valuations: AVM features from the curated zone, training with a time-split holdout,
//! and scoring every property.
//!
//! Every feature is point-in-time. A sale in month `m` (or a valuation dated in month
//! `m`) sees the metro price index and the area statistics of month `m - 1`, the latest
//! published then, and the home's attributes from the property master. The training
//! target is the sale's log price minus that log index (see [`roi_models::avm`]).
//!
//! The time split: sales in the 12 months up to the as-of date are the holdout; of the
//! sales in the ten years before it, the most recent 20% calibrate the interval and the
//! rest train the trees.

use std::collections::HashMap;

use chrono::{Datelike, Months, NaiveDate};
use roi_models::avm::{self, Accuracy, AvmModel, FEATURES};
use roi_models::gbdt::GbdtConfig;
use roi_schemas::{
    AreaKind, MarketStat, MetroId, PriceIndex, PropertyId, PropertyMaster, PropertyType, Sale,
};
use serde::{Deserialize, Serialize};

use crate::market::area_keys;
use crate::{Error, Result};

/// Lake tables the features come from.
#[derive(Debug, Default)]
pub struct FeatureTables {
    /// `curated.property_master`.
    pub master: Vec<PropertyMaster>,
    /// `curated.market_stats`.
    pub market: Vec<MarketStat>,
    /// `raw.price_index`.
    pub index: Vec<PriceIndex>,
}

/// Point-in-time lookups over [`FeatureTables`].
pub struct FeatureIndex<'a> {
    homes: HashMap<PropertyId, &'a PropertyMaster>,
    index: HashMap<(MetroId, NaiveDate), f64>,
    market: HashMap<(AreaKind, &'a str, NaiveDate), &'a MarketStat>,
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn previous_month(d: NaiveDate) -> NaiveDate {
    month_start(d)
        .checked_sub_months(Months::new(1))
        .unwrap_or(d)
}

fn type_code(t: PropertyType) -> f64 {
    match t {
        PropertyType::SingleFamily => 0.0,
        PropertyType::Townhouse => 1.0,
        PropertyType::Condo => 2.0,
        PropertyType::MultiFamily => 3.0,
    }
}

fn or_nan<T: Into<f64>>(v: Option<T>) -> f64 {
    v.map_or(f64::NAN, Into::into)
}

/// Why a home could not be featurised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skip {
    /// Not in the property master.
    UnknownProperty,
    /// Living area, coordinates or zip (hence metro) unknown.
    MissingAttributes,
    /// No price index for the month before.
    NoIndex,
}

impl Skip {
    /// Human name.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::UnknownProperty => "not in the property master",
            Skip::MissingAttributes => "no living area, coordinates or zip",
            Skip::NoIndex => "no price index for the month before",
        }
    }
}

impl<'a> FeatureIndex<'a> {
    /// Indexes the tables.
    pub fn new(t: &'a FeatureTables) -> FeatureIndex<'a> {
        FeatureIndex {
            homes: t.master.iter().map(|p| (p.property_id, p)).collect(),
            index: t
                .index
                .iter()
                .map(|i| ((i.metro_id, month_start(i.month)), i.index))
                .collect(),
            market: t
                .market
                .iter()
                .map(|m| ((m.area_kind, m.area.as_str(), month_start(m.month)), m))
                .collect(),
        }
    }

    /// The feature row of `property` valued at `date`, and the log index it is relative to.
    pub fn row(&self, property: PropertyId, date: NaiveDate) -> Result<([f64; 12], f64), Skip> {
        let home = self.homes.get(&property).ok_or(Skip::UnknownProperty)?;
        let (Some(sqft), Some(lat), Some(lon)) = (home.sqft, home.lat, home.lon) else {
            return Err(Skip::MissingAttributes);
        };
        if sqft <= 0 {
            return Err(Skip::MissingAttributes);
        }
        let prev = previous_month(date);
        // Without any price index (sales data brought by a user), prices are taken as
        // they are: the log index is 0.
        let log_index = if self.index.is_empty() {
            0.0
        } else {
            let metro = home.metro_id.ok_or(Skip::MissingAttributes)?;
            let index = *self.index.get(&(metro, prev)).ok_or(Skip::NoIndex)?;
            if index <= 0.0 {
                return Err(Skip::NoIndex);
            }
            index.ln()
        };
        let mut zip_median = f64::NAN;
        let mut cell_median = f64::NAN;
        let mut turnover = f64::NAN;
        for (kind, key) in area_keys(home.zip.as_deref(), home.lat, home.lon) {
            if let Some(stat) = self.market.get(&(kind, key.as_str(), prev)) {
                let median = stat
                    .median_price_12m
                    .filter(|m| *m > 0.0)
                    .map_or(f64::NAN, |m| m.ln() - log_index);
                match kind {
                    AreaKind::Zip => {
                        zip_median = median;
                        turnover = or_nan(stat.turnover_12m);
                    }
                    AreaKind::H3 => cell_median = median,
                    AreaKind::City => {}
                }
            }
        }
        let row = [
            f64::from(sqft).ln(),
            or_nan(home.beds),
            or_nan(home.baths),
            home.lot_sqft
                .filter(|l| *l > 0)
                .map_or(f64::NAN, |l| f64::from(l).ln()),
            home.year_built
                .map_or(f64::NAN, |y| f64::from(date.year() - y)),
            or_nan(home.condition),
            home.property_type.map_or(f64::NAN, type_code),
            lat,
            lon,
            zip_median,
            cell_median,
            turnover,
        ];
        debug_assert_eq!(row.len(), FEATURES.len());
        Ok((row, log_index))
    }
}

/// Rows left out, by reason, with counts.
pub type Skipped = Vec<(String, usize)>;

/// What training measured, saved beside the model as `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AvmReport {
    /// Model id (the training run's id).
    pub model_id: String,
    /// Holdout ends here.
    pub as_of: NaiveDate,
    /// Training rows.
    pub train_rows: usize,
    /// Calibration rows.
    pub calibration_rows: usize,
    /// Holdout accuracy (sales in the 12 months to `as_of`).
    pub holdout: Option<Accuracy>,
    /// Training seconds.
    pub train_seconds: f64,
    /// Sales left out, by reason.
    pub skipped: Vec<(String, usize)>,
    /// Features, in row order.
    pub features: Vec<String>,
}

/// One sale as an example: features, the log index they are relative to, the price.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Features in [`FEATURES`] order.
    pub row: [f64; 12],
    /// `ln(index)` of the month before the sale.
    pub log_index: f64,
    /// Sale price.
    pub price: f64,
}

impl Example {
    /// The training target: index-adjusted log price.
    pub fn target(&self) -> f64 {
        self.price.ln() - self.log_index
    }
}

/// The time split of the sales up to an as-of date.
#[derive(Debug, Default)]
pub struct Split {
    /// Oldest 80% of the ten years before the holdout.
    pub train: Vec<Example>,
    /// Newest 20% of those ten years.
    pub calibration: Vec<Example>,
    /// Sales in the 12 months to the as-of date.
    pub holdout: Vec<Example>,
    /// Sales left out, by reason.
    pub skipped: Skipped,
}

/// Splits `sales` by time as described in the module docs.
pub fn split(sales: &[Sale], tables: &FeatureTables, as_of: NaiveDate) -> Result<Split> {
    let features = FeatureIndex::new(tables);
    let holdout_start = as_of
        .checked_sub_months(Months::new(12))
        .ok_or_else(|| Error::Usage(format!("as-of date {as_of} is too early")))?;
    let history_start = holdout_start
        .checked_sub_months(Months::new(120))
        .unwrap_or(NaiveDate::MIN);
    let mut skipped: HashMap<Skip, usize> = HashMap::new();
    let mut pool = Vec::new();
    let mut holdout = Vec::new();
    let mut sorted: Vec<&Sale> = sales
        .iter()
        .filter(|s| s.price > 0.0 && s.price.is_finite() && s.sold_on <= as_of)
        .filter(|s| s.sold_on > history_start)
        .collect();
    sorted.sort_by_key(|s| (s.sold_on, s.sale_id));
    for sale in sorted {
        match features.row(sale.property_id, sale.sold_on) {
            Ok((row, log_index)) => {
                let example = Example {
                    row,
                    log_index,
                    price: sale.price,
                };
                if sale.sold_on > holdout_start {
                    holdout.push(example);
                } else {
                    pool.push(example);
                }
            }
            Err(why) => *skipped.entry(why).or_default() += 1,
        }
    }
    if pool.len() < 50 {
        return Err(Error::Data {
            table: "raw.sales".into(),
            message: format!(
                "only {} usable sales before {holdout_start} to train on (need 50); is the property master built?",
                pool.len()
            ),
        });
    }
    let calibration = pool.split_off(pool.len() - pool.len() / 5);
    let mut skipped: Skipped = skipped
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    skipped.sort();
    Ok(Split {
        train: pool,
        calibration,
        holdout,
        skipped,
    })
}

fn flat(examples: &[Example]) -> (Vec<f64>, Vec<f64>) {
    (
        examples.iter().flat_map(|e| e.row).collect(),
        examples.iter().map(Example::target).collect(),
    )
}

/// Trains the AVM on `sales` with the time split described in the module docs.
pub fn train(
    sales: &[Sale],
    tables: &FeatureTables,
    as_of: NaiveDate,
    config: &GbdtConfig,
    coverage: f64,
    model_id: &str,
) -> Result<(AvmModel, AvmReport)> {
    let split = split(sales, tables, as_of)?;
    let (train_x, train_y) = flat(&split.train);
    let (cal_x, cal_y) = flat(&split.calibration);
    let clock = std::time::Instant::now();
    let model =
        AvmModel::fit((&train_x, &train_y), (&cal_x, &cal_y), config, coverage).map_err(|e| {
            Error::Data {
                table: "raw.sales".into(),
                message: e.to_string(),
            }
        })?;
    let train_seconds = clock.elapsed().as_secs_f64();
    let accuracy = if split.holdout.is_empty() {
        None
    } else {
        let (x, _) = flat(&split.holdout);
        let idx: Vec<f64> = split.holdout.iter().map(|e| e.log_index).collect();
        let prices: Vec<f64> = split.holdout.iter().map(|e| e.price).collect();
        let values = model
            .value(&x, &idx)
            .map_err(|e| Error::Internal(e.to_string()))?;
        avm::accuracy(&values, &prices)
    };
    let report = AvmReport {
        model_id: model_id.to_owned(),
        as_of,
        train_rows: split.train.len(),
        calibration_rows: split.calibration.len(),
        holdout: accuracy,
        train_seconds,
        skipped: split.skipped,
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
    };
    Ok((model, report))
}

/// Values every property of the master at `as_of`; returns the valuations and how many
/// properties could not be valued, by reason.
pub fn score(
    model: &AvmModel,
    tables: &FeatureTables,
    as_of: NaiveDate,
    model_id: &str,
) -> Result<(Vec<roi_schemas::PropertyValuation>, Skipped)> {
    let features = FeatureIndex::new(tables);
    let mut ids = Vec::new();
    let mut x = Vec::new();
    let mut idx = Vec::new();
    let mut skipped: HashMap<Skip, usize> = HashMap::new();
    for home in &tables.master {
        match features.row(home.property_id, as_of) {
            Ok((row, log_index)) => {
                ids.push(home.property_id);
                x.extend(row);
                idx.push(log_index);
            }
            Err(why) => *skipped.entry(why).or_default() += 1,
        }
    }
    let values = if ids.is_empty() {
        Vec::new()
    } else {
        model
            .value(&x, &idx)
            .map_err(|e| Error::Internal(e.to_string()))?
    };
    let rows = ids
        .into_iter()
        .zip(values)
        .map(|(property_id, v)| roi_schemas::PropertyValuation {
            property_id,
            as_of,
            value: v.value.round(),
            low: v.low.round(),
            high: v.high.round(),
            coverage: model.coverage,
            model_id: model_id.to_owned(),
        })
        .collect();
    let mut skipped: Vec<(String, usize)> = skipped
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    skipped.sort();
    Ok((rows, skipped))
}

/// Writes the AVM's time split (features, target, log index, price and `part`: train,
/// calibration or holdout) to one Parquet file, so that other tools can train on exactly
/// the same examples (`benches/batch.sh` runs LightGBM on it). Returns the rows written.
pub async fn export_examples(
    lake: &std::path::Path,
    as_of: Option<NaiveDate>,
    out: &std::path::Path,
) -> Result<usize> {
    let tables = [
        "raw.sales",
        "curated.property_master",
        "curated.market_stats",
        "raw.price_index",
    ];
    let session = crate::catalog::session_with(lake, &tables).await?;
    use crate::job::read_rows;
    for table in tables {
        if !session
            .table_exist(table)
            .map_err(|e| Error::Internal(e.to_string()))?
        {
            return Err(Error::Data {
                table: table.to_owned(),
                message: "missing from the lake; run roi jobs run all first".into(),
            });
        }
    }
    let sales: Vec<Sale> = read_rows(&session, "raw.sales").await?;
    let tables = FeatureTables {
        master: read_rows(&session, "curated.property_master").await?,
        market: read_rows(&session, "curated.market_stats").await?,
        index: read_rows(&session, "raw.price_index").await?,
    };
    let as_of = crate::job::as_of_or_latest_sale(as_of, sales.iter().map(|s| s.sold_on))?;
    let split = split(&sales, &tables, as_of)?;
    write_examples(&split, out)
}

/// Writes a time split as one Parquet file (see [`export_examples`]).
pub fn write_examples(split: &Split, out: &std::path::Path) -> Result<usize> {
    use arrow::array::{ArrayRef, Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    let parts = [
        ("train", &split.train),
        ("calibration", &split.calibration),
        ("holdout", &split.holdout),
    ];
    let all: Vec<(&str, &Example)> = parts
        .iter()
        .flat_map(|(name, examples)| examples.iter().map(move |e| (*name, e)))
        .collect();
    let mut fields: Vec<Field> = FEATURES
        .iter()
        .map(|f| Field::new(*f, DataType::Float64, true))
        .collect();
    let mut columns: Vec<ArrayRef> = (0..FEATURES.len())
        .map(|c| {
            std::sync::Arc::new(Float64Array::from_iter_values(
                all.iter().map(|(_, e)| e.row[c]),
            )) as ArrayRef
        })
        .collect();
    for (name, value) in [
        ("target", Example::target as fn(&Example) -> f64),
        ("log_index", |e: &Example| e.log_index),
        ("price", |e: &Example| e.price),
    ] {
        fields.push(Field::new(name, DataType::Float64, false));
        columns.push(std::sync::Arc::new(Float64Array::from_iter_values(
            all.iter().map(|(_, e)| value(e)),
        )));
    }
    fields.push(Field::new("part", DataType::Utf8, false));
    columns.push(std::sync::Arc::new(StringArray::from_iter_values(
        all.iter().map(|(p, _)| *p),
    )));
    let schema = std::sync::Arc::new(Schema::new(fields));
    let batch = arrow::record_batch::RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(e.to_string()))?;
    crate::job::write_parquet(out, schema, &[batch])?;
    Ok(all.len())
}

/// Formats holdout accuracy for people.
pub fn describe(a: &Accuracy, coverage: f64) -> String {
    format!(
        "holdout ({} sales): MdAPE {:.1}%, PPE10 {:.1}%, PPE20 {:.1}%, {:.0}% interval coverage {:.1}%",
        a.n,
        100.0 * a.mdape,
        100.0 * a.ppe10,
        100.0 * a.ppe20,
        100.0 * coverage,
        100.0 * a.coverage
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn home() -> PropertyMaster {
        PropertyMaster {
            zip: Some("50010".into()),
            metro_id: Some(MetroId(1)),
            lat: Some(42.0),
            lon: Some(-93.6),
            property_type: Some(PropertyType::Condo),
            sqft: Some(1000),
            beds: Some(2),
            baths: Some(1.5),
            year_built: Some(2000),
            condition: Some(3),
            record_count: 1,
            ..PropertyMaster::unknown(PropertyId(1), "p".into())
        }
    }

    #[test]
    fn exporting_from_a_lake_without_the_curated_zone_says_what_to_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("raw")).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt
            .block_on(export_examples(
                tmp.path(),
                None,
                &tmp.path().join("x.parquet"),
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("raw.sales: missing from the lake; run roi jobs run all first"),
            "{err}"
        );
    }

    #[test]
    fn too_few_sales_to_train_on_is_named() {
        let err = train(
            &[],
            &FeatureTables::default(),
            date(2025, 1, 1),
            &GbdtConfig::default(),
            0.8,
            "m",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("only 0 usable sales before 2024-01-01"),
            "{err}"
        );
    }

    #[test]
    fn features_are_point_in_time() {
        let tables = FeatureTables {
            master: vec![home()],
            market: vec![MarketStat {
                area_kind: AreaKind::Zip,
                area: "50010".into(),
                month: date(2024, 5, 1),
                sales: 3,
                median_price: None,
                median_price_per_sqft: None,
                median_days_on_market: None,
                sales_12m: 30,
                median_price_12m: Some(200_000.0),
                yoy_appreciation: None,
                properties: Some(300),
                turnover_12m: Some(0.1),
            }],
            index: vec![
                PriceIndex {
                    metro_id: MetroId(1),
                    month: date(2024, 5, 1),
                    index: 2.0,
                },
                PriceIndex {
                    metro_id: MetroId(1),
                    month: date(2024, 6, 1),
                    index: 9.0,
                },
            ],
        };
        let f = FeatureIndex::new(&tables);
        // A June sale sees May's index and statistics, never June's.
        let (row, log_index) = f.row(PropertyId(1), date(2024, 6, 20)).unwrap();
        assert!((log_index - 2f64.ln()).abs() < 1e-12);
        assert!((row[0] - 1000f64.ln()).abs() < 1e-12);
        assert!(row[3].is_nan(), "condo without lot");
        assert_eq!(row[4], 24.0);
        assert_eq!(row[6], 2.0);
        assert!((row[9] - (200_000f64.ln() - 2f64.ln())).abs() < 1e-12);
        assert!(row[10].is_nan(), "no cell statistics");
        assert_eq!(row[11], 0.1);
        assert_eq!(
            f.row(PropertyId(1), date(2024, 8, 1)).unwrap_err(),
            Skip::NoIndex
        );
        assert_eq!(
            f.row(PropertyId(9), date(2024, 6, 1)).unwrap_err(),
            Skip::UnknownProperty
        );
    }
}
