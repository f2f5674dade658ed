//! Every batch job, registered in one place, each a thin adapter from lake tables to the
//! domain logic of its module.

use std::collections::HashMap;

use chrono::NaiveDate;
use roi_features::context::{ContextIndex, ContextTables, home_from_master};
use roi_models::avm::AvmModel;
use roi_models::gbdt::GbdtConfig;
use roi_schemas::{
    AreaKind, Contact, IntentSnapshot, Neighbourhood, Outcome, Parcel, Property, PropertyMaster,
    PropertyRecord, QualityKind, RecordLink, Sale,
};

use crate::valuation::{self, AvmReport, FeatureTables};

use crate::job::{Job, JobContext, JobFuture, JobReport};
use crate::market::{self, Home, SaleFact};
use crate::propensity;
use crate::property_master::{self, MasterInputs};
use crate::{Error, Result};

/// The jobs of the DAG, in registry order (the tie-break of the run order).
pub fn jobs() -> Vec<Box<dyn Job>> {
    vec![
        Box::new(PropertyMasterJob),
        Box::new(MarketStatsJob),
        Box::new(ComparablesJob),
        Box::new(AvmTrainJob),
        Box::new(AvmScoreJob),
        Box::new(FinancialsJob),
        Box::new(MaintenanceJob),
        Box::new(AlertTrainingSetJob),
    ]
}

/// Runs CPU-heavy work off the async runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("job worker panicked: {e}")))
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// `property-master`: one row per property from the three record sources.
struct PropertyMasterJob;

impl Job for PropertyMasterJob {
    fn name(&self) -> &'static str {
        "property-master"
    }
    fn description(&self) -> &'static str {
        "merge assessor, MLS and owner records into one row per property, with provenance and a quality report"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[
            "raw.property_records",
            "raw.parcels",
            "raw.contacts",
            "raw.neighbourhoods",
        ]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        &["raw.truth_record_links", "raw.truth_properties"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &[
            "curated.property_master",
            "curated.property_provenance",
            "curated.property_record_matches",
            "curated.property_quality",
        ]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let records: Vec<PropertyRecord> = cx.read("raw.property_records").await?;
            let parcels: Vec<Parcel> = cx.read("raw.parcels").await?;
            let contacts: Vec<Contact> = cx.read("raw.contacts").await?;
            let neighbourhoods: Vec<Neighbourhood> = cx.read("raw.neighbourhoods").await?;
            let truth =
                if cx.has_table("raw.truth_record_links") && cx.has_table("raw.truth_properties") {
                    let links: Vec<RecordLink> = cx.read("raw.truth_record_links").await?;
                    let props: Vec<Property> = cx.read("raw.truth_properties").await?;
                    Some((links, props))
                } else {
                    None
                };
            let (output, notes) = blocking(move || {
                let output = property_master::build(&MasterInputs {
                    records: &records,
                    parcels: &parcels,
                    contacts: &contacts,
                    neighbourhoods: &neighbourhoods,
                });
                let notes = master_notes(&output, records.len(), truth.as_ref());
                (output, notes)
            })
            .await?;
            cx.write("curated.property_master", &output.properties)?;
            cx.write("curated.property_provenance", &output.provenance)?;
            cx.write("curated.property_record_matches", &output.matches)?;
            cx.write("curated.property_quality", &output.quality)?;
            Ok(JobReport { notes })
        })
    }
}

fn master_notes(
    output: &property_master::MasterOutput,
    records: usize,
    truth: Option<&(Vec<RecordLink>, Vec<Property>)>,
) -> Vec<String> {
    let count = |kind: QualityKind| output.quality.iter().filter(|q| q.kind == kind).count();
    let unmatched = count(QualityKind::Unmatched);
    let with_records = output
        .properties
        .iter()
        .filter(|p: &&PropertyMaster| p.record_count > 0)
        .count();
    let mut notes = vec![
        format!(
            "{} properties ({} described by at least one record) from {} records; {} unmatched ({:.2}%)",
            output.properties.len(),
            with_records,
            records,
            unmatched,
            percent(unmatched, records)
        ),
        format!(
            "quality: {} conflicts, {} missing fields",
            count(QualityKind::Conflict),
            count(QualityKind::Missing)
        ),
    ];
    if let Some((links, props)) = truth {
        let s = property_master::score(output, links, props);
        notes.push(format!(
            "against the world's truth: match precision {:.2}%, recall {:.2}%",
            percent(s.correct, s.matched),
            percent(s.correct, s.records)
        ));
        let fields: Vec<String> = s
            .field_accuracy
            .iter()
            .map(|(field, share, _)| format!("{field} {:.1}%", 100.0 * share))
            .collect();
        notes.push(format!("field accuracy: {}", fields.join(", ")));
    }
    notes
}

/// Sales joined to the property master, and the master's homes.
async fn sales_and_homes(cx: &JobContext) -> Result<(Vec<SaleFact>, Vec<Home>)> {
    let sales: Vec<Sale> = cx.read("raw.sales").await?;
    let master: Vec<PropertyMaster> = cx.read("curated.property_master").await?;
    let by_id: HashMap<_, _> = master.iter().map(|p| (p.property_id, p)).collect();
    let facts = sales
        .iter()
        .map(|s| SaleFact::of(s, by_id.get(&s.property_id).copied()))
        .collect();
    let homes = master.iter().map(Home::of).collect();
    Ok((facts, homes))
}

/// `--date`, or the day of the latest sale.
fn as_of_or_latest(cx: &JobContext, sales: &[SaleFact]) -> Result<NaiveDate> {
    crate::job::as_of_or_latest_sale(cx.as_of(), sales.iter().map(|s| s.sold_on))
}

/// `market-stats`: monthly statistics per zip and H3 cell.
struct MarketStatsJob;

impl Job for MarketStatsJob {
    fn name(&self) -> &'static str {
        "market-stats"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "monthly sales, median price and $/sqft, days on market, appreciation and turnover per zip and H3 cell"
    }
    fn version(&self) -> u32 {
        2
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["raw.sales", "curated.property_master"]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        &["raw.city_market_monthly"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.market_stats"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let (sales, homes) = sales_and_homes(cx).await?;
            let through = as_of_or_latest(cx, &sales)?;
            let impossible = sales
                .iter()
                .filter(|s| !(s.price.is_finite() && s.price > 0.0))
                .count();
            let unplaced = sales
                .iter()
                .filter(|s| s.zip.is_none() && s.lat.is_none())
                .count();
            let cities: Vec<market::CityMonth> = if cx.has_table("raw.city_market_monthly") {
                cx.read("raw.city_market_monthly").await?
            } else {
                Vec::new()
            };
            let stats = blocking(move || {
                let mut stats = market::area_stats(&sales, &homes, through);
                stats.extend(market::city_stats(&cities));
                stats
            })
            .await?;
            let areas = |kind: AreaKind| {
                let mut a: Vec<&str> = stats
                    .iter()
                    .filter(|s| s.area_kind == kind)
                    .map(|s| s.area.as_str())
                    .collect();
                a.dedup();
                a.len()
            };
            let mut notes = vec![format!(
                "{} zips and {} H3 cells (resolution {}) through {through}",
                areas(AreaKind::Zip),
                areas(AreaKind::H3),
                u8::from(market::STATS_RESOLUTION)
            )];
            if areas(AreaKind::City) > 0 {
                notes.push(format!(
                    "{} cities from raw.city_market_monthly",
                    areas(AreaKind::City)
                ));
            }
            let left_out: Vec<String> = [
                (impossible, "without a positive price"),
                (unplaced, "of properties with neither zip nor coordinates"),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, why)| format!("{n} sales {why}"))
            .collect();
            if !left_out.is_empty() {
                notes.push(format!("left out: {}", left_out.join(", ")));
            }
            cx.write("curated.market_stats", &stats)?;
            Ok(JobReport { notes })
        })
    }
}

/// `comparables`: every property's sales within 0.5 miles over 6 and 12 months.
struct ComparablesJob;

impl Job for ComparablesJob {
    fn name(&self) -> &'static str {
        "comparables"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "for every property, sales within 0.5 miles in the last 6 and 12 months (H3 pre-filter, exact distance)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["raw.sales", "curated.property_master"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.comparables"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let (sales, homes) = sales_and_homes(cx).await?;
            let as_of = as_of_or_latest(cx, &sales)?;
            let comps = blocking(move || market::comparables(&sales, &homes, as_of)).await?;
            let with_12m = comps
                .iter()
                .filter(|c| c.window_months == 12 && c.count > 0)
                .count();
            let homes_12m = comps.iter().filter(|c| c.window_months == 12).count();
            let notes = vec![format!(
                "as of {as_of}: {with_12m} of {homes_12m} properties ({:.1}%) have a comparable sale within {} miles in 12 months",
                percent(with_12m, homes_12m),
                market::RADIUS_MILES
            )];
            cx.write("curated.comparables", &comps)?;
            Ok(JobReport { notes })
        })
    }
}

/// Nominal coverage of the AVM's prediction interval.
pub const AVM_COVERAGE: f64 = 0.8;

async fn feature_tables(cx: &JobContext) -> Result<FeatureTables> {
    Ok(FeatureTables {
        master: cx.read("curated.property_master").await?,
        market: cx.read("curated.market_stats").await?,
        index: cx.read("raw.price_index").await?,
    })
}

fn skipped_note(what: &str, skipped: &[(String, usize)]) -> Option<String> {
    (!skipped.is_empty()).then(|| {
        let parts: Vec<String> = skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        format!("{what} left out: {}", parts.join(", "))
    })
}

/// `avm-train`: the automated valuation model, evaluated on a time-split holdout.
struct AvmTrainJob;

impl Job for AvmTrainJob {
    fn name(&self) -> &'static str {
        "avm-train"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "train the AVM (gradient-boosted trees on index-adjusted log price, conformal interval); holdout = the 12 months to --date"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[
            "raw.sales",
            "curated.property_master",
            "curated.market_stats",
            "raw.price_index",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["models.avm"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let sales: Vec<Sale> = cx.read("raw.sales").await?;
            let tables = feature_tables(cx).await?;
            let as_of =
                crate::job::as_of_or_latest_sale(cx.as_of(), sales.iter().map(|s| s.sold_on))?;
            let model_id = format!("avm-{}", cx.run_id());
            let id = model_id.clone();
            let (model, report) = blocking(move || {
                valuation::train(
                    &sales,
                    &tables,
                    as_of,
                    &GbdtConfig::default(),
                    AVM_COVERAGE,
                    &id,
                )
            })
            .await??;
            let model_json = model
                .to_json()
                .map_err(|e| Error::Internal(e.to_string()))?;
            let metrics =
                serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
            cx.write_files(
                "models.avm",
                &[
                    ("model.json", model_json.into_bytes()),
                    ("metrics.json", metrics),
                ],
            )?;
            let mut notes = vec![format!(
                "model {model_id}: {} training and {} calibration sales in {:.1} s; interval ±{:.1}% (log {:.3})",
                report.train_rows,
                report.calibration_rows,
                report.train_seconds,
                100.0 * (model.half_width.exp() - 1.0),
                model.half_width
            )];
            if let Some(a) = &report.holdout {
                notes.push(valuation::describe(a, AVM_COVERAGE));
            }
            notes.extend(skipped_note("sales", &report.skipped));
            Ok(JobReport { notes })
        })
    }
}

/// `avm-score`: values every property with the trained AVM.
struct AvmScoreJob;

impl Job for AvmScoreJob {
    fn name(&self) -> &'static str {
        "avm-score"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "value every property with the AVM, with its interval, as of --date (default: the model's date)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[
            "curated.property_master",
            "curated.market_stats",
            "raw.price_index",
            "models.avm",
        ]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.valuations"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let dir = cx.lake().join("models").join("avm");
            let read = |name: &str| {
                let path = dir.join(name);
                std::fs::read_to_string(&path).map_err(Error::io("reading", path))
            };
            let model = AvmModel::from_json(&read("model.json")?).map_err(|e| Error::Data {
                table: "models.avm".into(),
                message: e.to_string(),
            })?;
            let trained: AvmReport =
                serde_json::from_str(&read("metrics.json")?).map_err(|e| Error::Data {
                    table: "models.avm".into(),
                    message: format!("metrics.json: {e}"),
                })?;
            let tables = feature_tables(cx).await?;
            let as_of = cx.as_of().unwrap_or(trained.as_of);
            let model_id = trained.model_id.clone();
            let (rows, skipped) =
                blocking(move || valuation::score(&model, &tables, as_of, &model_id)).await??;
            let mut widths: Vec<f64> = rows.iter().map(|v| (v.high - v.low) / v.value).collect();
            widths.sort_by(f64::total_cmp);
            let mut notes = vec![format!(
                "valued {} properties as of {as_of} with {}; median interval width {:.1}% of value",
                rows.len(),
                trained.model_id,
                100.0 * widths.get(widths.len() / 2).copied().unwrap_or(0.0)
            )];
            notes.extend(skipped_note("properties", &skipped));
            cx.write("curated.valuations", &rows)?;
            Ok(JobReport { notes })
        })
    }
}

/// `financials`: balance, equity, LTV, refinance saving and cash-out per valued property.
struct FinancialsJob;

impl Job for FinancialsJob {
    fn name(&self) -> &'static str {
        "financials"
    }
    fn description(&self) -> &'static str {
        "per valued property: mortgage balance, equity, LTV, refinance saving and break-even at the market rate, cash-out potential"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["curated.valuations", "raw.loans", "raw.mortgage_rates"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.financials"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let valuations: Vec<roi_schemas::PropertyValuation> =
                cx.read("curated.valuations").await?;
            let loans: Vec<roi_schemas::Loan> = cx.read("raw.loans").await?;
            let rates: Vec<roi_schemas::MortgageRate> = cx.read("raw.mortgage_rates").await?;
            let rows =
                blocking(move || crate::financials::positions(&valuations, &loans, &rates)).await?;
            let mortgaged = rows.iter().filter(|r| r.balance > 0.0).count();
            let in_the_money = rows
                .iter()
                .filter(|r| r.break_even_months.is_some_and(|m| m <= 36.0))
                .count();
            let notes = vec![format!(
                "{} properties, {mortgaged} with a mortgage; {in_the_money} would recoup a refinance within 3 years",
                rows.len()
            )];
            cx.write("curated.financials", &rows)?;
            Ok(JobReport { notes })
        })
    }
}

/// `maintenance`: each home's component replacement schedule.
struct MaintenanceJob;

impl Job for MaintenanceJob {
    fn name(&self) -> &'static str {
        "maintenance"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "per property: roof, HVAC, water heater, paint, windows and appliances with estimated age and due date"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["curated.property_master", "raw.sales"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.maintenance"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let master: Vec<PropertyMaster> = cx.read("curated.property_master").await?;
            let as_of = match cx.as_of() {
                Some(d) => d,
                None => {
                    let sales: Vec<Sale> = cx.read("raw.sales").await?;
                    crate::job::as_of_or_latest_sale(None, sales.iter().map(|s| s.sold_on))?
                }
            };
            let rows = blocking(move || {
                master
                    .iter()
                    .flat_map(|h| crate::maintenance::schedule(h, as_of))
                    .collect::<Vec<_>>()
            })
            .await?;
            let soon = rows.iter().filter(|r| r.due_soon).count();
            let notes = vec![format!(
                "{} component schedules as of {as_of}; {soon} due within a year",
                rows.len()
            )];
            cx.write("curated.maintenance", &rows)?;
            Ok(JobReport { notes })
        })
    }
}

/// `alert-training-set`: point-in-time features and 90-day outcome labels per homeowner
/// and month, for the alert models.
struct AlertTrainingSetJob;

impl Job for AlertTrainingSetJob {
    fn name(&self) -> &'static str {
        "alert-training-set"
    }
    fn uses_date(&self) -> bool {
        true
    }
    fn description(&self) -> &'static str {
        "per homeowner and month: every catalog feature as of the day before, and whether each outcome closed within 90 days (labels known by --date)"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[
            "raw.events",
            "raw.contacts",
            "raw.outcomes",
            "raw.sales",
            "raw.loans",
            "raw.price_index",
            "raw.mortgage_rates",
            "curated.property_master",
        ]
    }
    fn optional_inputs(&self) -> &'static [&'static str] {
        &["raw.truth_intent"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &[propensity::TRAINING_TABLE]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let contacts: Vec<Contact> = cx.read("raw.contacts").await?;
            let master: Vec<PropertyMaster> = cx.read("curated.property_master").await?;
            let context = ContextTables {
                contacts: contacts.clone(),
                properties: master.iter().filter_map(home_from_master).collect(),
                sales: cx.read("raw.sales").await?,
                loans: cx.read("raw.loans").await?,
                price_index: cx.read("raw.price_index").await?,
                mortgage_rates: cx.read("raw.mortgage_rates").await?,
            };
            let outcomes: Vec<Outcome> = cx.read("raw.outcomes").await?;
            let intent: Vec<IntentSnapshot> = if cx.has_table("raw.truth_intent") {
                cx.read("raw.truth_intent").await?
            } else {
                Vec::new()
            };
            let events_dir = cx.lake().join("raw").join("events");
            let as_of = cx.as_of();
            let (batches, report, scan) = blocking(move || -> Result<_> {
                let (events, scan) = propensity::read_events(&events_dir)?;
                let (dates, known) = propensity::plan_snapshots(&scan, as_of)?;
                let inputs = propensity::BackfillInputs {
                    contacts,
                    events,
                    context: ContextIndex::build(context),
                    outcomes,
                    intent,
                };
                let (batches, report) = propensity::backfill(inputs, &dates, known);
                Ok((batches, report, scan))
            })
            .await??;
            cx.write_batches(
                propensity::TRAINING_TABLE,
                propensity::training_schema(),
                &batches,
            )?;
            let mut notes = vec![format!(
                "{} rows: {} homeowners at {} monthly snapshots ({} to {}); {} events read",
                report.rows,
                report.contacts,
                report.snapshots.len(),
                report
                    .snapshots
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                report
                    .snapshots
                    .last()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                scan.events
            )];
            let positives: Vec<String> = propensity::KINDS
                .iter()
                .zip(report.positives)
                .map(|(k, n)| format!("{k} {n} ({:.2}%)", percent(n, report.rows)))
                .collect();
            notes.push(format!("positive labels: {}", positives.join(", ")));
            if scan.duplicates > 0 || !scan.rejected.is_empty() {
                let rejected: Vec<String> = scan
                    .rejected
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                notes.push(format!(
                    "event lines left out: {} duplicate ids{}{}",
                    scan.duplicates,
                    if rejected.is_empty() { "" } else { ", " },
                    rejected.join(", ")
                ));
            }
            Ok(JobReport { notes })
        })
    }
}
