//! Training data and training for the four alert models.
//!
//! **The training set** (`features.alert_training`, job `alert-training-set`) holds one
//! row per homeowner and monthly snapshot date: every feature of the catalog as of the
//! end of the day before the snapshot, computed from the events and context known by
//! then, and one label per outcome kind (did it close within the 90 days from the
//! snapshot?). Features come from the catalog's own definitions, replayed per homeowner
//! through [`ContactState`] (the streaming state, which the parity tests hold equal to the
//! point-in-time computation), so training rows and live features are the same numbers.
//!
//! **Training** ([`train`]) reads that table, fits one calibrated model per kind (see
//! [`roi_models::propensity`]), and registers each in the model registry.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, RecordBatch,
};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Schema, SchemaRef};
use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;
use roi_features::catalog::{CATALOG_VERSION, FEATURES, FeatureVector, Inputs};
use roi_features::context::{ContextIndex, Facts};
use roi_features::day::{Day, day_of, day_of_date, month_index};
use roi_features::history::Touch;
use roi_features::snapshot::{self, Snapshot};
use roi_features::state::ContactState;
use roi_models::propensity::{PropensityConfig, PropensityModel, PropensityReport, TrainingSet};
use roi_models::registry::{ModelCard, NewModel, Registry, TrainingData};
use roi_schemas::{ContactId, IntentKind, IntentSnapshot, Outcome, StrEnum, parse_event_line};

use crate::{Error, Result};

/// The training table.
pub const TRAINING_TABLE: &str = "features.alert_training";
/// Label horizon: an outcome counts when it closes within this many days of a snapshot.
pub const HORIZON_DAYS: i32 = 90;
/// Homeowners backfilled and encoded together.
const BLOCK_CONTACTS: usize = 2048;
/// Snapshots start this many months after the first event, so that every window of the
/// first snapshot has history behind it.
pub const WARM_UP_MONTHS: u32 = 3;
/// The four outcome kinds, in the order of the training table's label columns.
pub const KINDS: [IntentKind; 4] = [
    IntentKind::Sell,
    IntentKind::Buy,
    IntentKind::Refinance,
    IntentKind::Investment,
];

/// One homeowner's events, as the features read them.
#[derive(Debug, Clone, Default)]
pub struct ContactEvents {
    /// Tenant.
    pub org: i64,
    /// Events, in any order.
    pub touches: Vec<Touch>,
}

/// What reading the event log found.
#[derive(Debug, Clone, Default)]
pub struct EventScan {
    /// Lines read.
    pub lines: u64,
    /// Valid, distinct events.
    pub events: u64,
    /// Lines refused, by dead-letter reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Repeated event ids (kept once).
    pub duplicates: u64,
    /// Day of the latest event.
    pub last_day: Option<Day>,
    /// Day of the earliest event.
    pub first_day: Option<Day>,
}

/// Reads every `*.ndjson` file under `dir` (the lake's `raw/events`), validating each line
/// exactly as the stream does and keeping each `(org, event id)` once.
pub fn read_events(dir: &Path) -> Result<(HashMap<i64, ContactEvents>, EventScan)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io("listing", dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "ndjson" || x == "jsonl")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(['.', '_']))
        })
        .collect();
    files.sort();
    // Decode files in parallel; merge in file order so duplicates resolve the same way.
    type Decoded = (Vec<(i64, i64, i64, Touch)>, u64, Vec<String>);
    let decoded: Vec<Decoded> = files
        .par_iter()
        .map(|path| {
            let file = std::fs::File::open(path).map_err(Error::io("opening", path))?;
            let mut out = Vec::new();
            let mut rejected = Vec::new();
            let mut lines = 0u64;
            for line in std::io::BufReader::with_capacity(1 << 20, file).lines() {
                let line = line.map_err(Error::io("reading", path))?;
                if line.trim().is_empty() {
                    continue;
                }
                lines += 1;
                match parse_event_line(&line, None) {
                    Ok(e) => out.push((
                        e.org_id.0,
                        e.event_id.0,
                        e.contact_id.0,
                        Touch {
                            ts_ms: e.ts.timestamp_millis(),
                            kind: e.event_type as u8,
                            session: e.session_id.map(|s| s.0),
                            document: e.document_id.map(|d| d.0),
                            listing: e.listing_id.map(|l| l.0),
                        },
                    )),
                    Err(r) => rejected.push(r.reason.as_str().to_owned()),
                }
            }
            Ok((out, lines, rejected))
        })
        .collect::<Result<_>>()?;
    let mut scan = EventScan::default();
    let mut seen: std::collections::HashSet<(i64, i64)> = std::collections::HashSet::new();
    let mut contacts: HashMap<i64, ContactEvents> = HashMap::new();
    for (events, lines, rejected) in decoded {
        scan.lines += lines;
        for reason in rejected {
            *scan.rejected.entry(reason).or_default() += 1;
        }
        for (org, id, contact, touch) in events {
            if !seen.insert((org, id)) {
                scan.duplicates += 1;
                continue;
            }
            scan.events += 1;
            let day = day_of(touch.ts_ms);
            scan.first_day = Some(scan.first_day.map_or(day, |d| d.min(day)));
            scan.last_day = Some(scan.last_day.map_or(day, |d| d.max(day)));
            let slot = contacts.entry(contact).or_default();
            slot.org = org;
            slot.touches.push(touch);
        }
    }
    Ok((contacts, scan))
}

/// Monthly snapshot dates: from [`WARM_UP_MONTHS`] after the first event's month to the
/// last first-of-month whose whole label horizon ends on or before `last_known`.
pub fn snapshot_dates(first_event: NaiveDate, last_known: NaiveDate) -> Vec<NaiveDate> {
    let month_start = |d: NaiveDate| d.with_day(1).expect("day 1 exists");
    let Some(mut s) = month_start(first_event).checked_add_months(chrono::Months::new(
        WARM_UP_MONTHS + u32::from(first_event.day() > 1),
    )) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while day_of_date(s) + HORIZON_DAYS - 1 <= day_of_date(last_known) {
        out.push(s);
        s = s
            .checked_add_months(chrono::Months::new(1))
            .expect("dates stay in range");
    }
    out
}

/// The feature rows of one homeowner at `snapshots` (sorted): features as of the end of
/// the day before each snapshot. `facts` gives the static context at a day. Only events
/// up to that day are visible to a row: the state is fed in time order and read before
/// anything later is added.
pub fn backfill_contact(
    contact: i64,
    org: i64,
    touches: &mut [Touch],
    snapshots: &[NaiveDate],
    facts: &dyn Fn(Day) -> Facts,
) -> Vec<Snapshot> {
    touches.sort_by_key(|t| t.ts_ms);
    let mut state = ContactState::default();
    let mut next = 0;
    let mut out = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let at = day_of_date(*s) - 1;
        while next < touches.len() && day_of(touches[next].ts_ms) <= at {
            state.add(&touches[next]);
            next += 1;
        }
        let f = facts(at);
        out.push(Snapshot {
            contact_id: contact,
            org_id: org,
            day: at,
            features: FeatureVector::compute(&Inputs {
                history: &state,
                facts: &f,
                at,
            }),
        });
    }
    out
}

/// Outcome days per homeowner and kind, sorted.
#[derive(Debug, Default)]
pub struct Labels {
    days: HashMap<(i64, IntentKind), Vec<Day>>,
}

impl Labels {
    /// Indexes the outcomes known by `known_until` (later ones do not exist yet).
    pub fn new(outcomes: &[Outcome], known_until: Day) -> Labels {
        let mut days: HashMap<(i64, IntentKind), Vec<Day>> = HashMap::new();
        for o in outcomes {
            let d = day_of(o.occurred_at.timestamp_millis());
            if d <= known_until {
                days.entry((o.contact_id.0, o.kind)).or_default().push(d);
            }
        }
        for v in days.values_mut() {
            v.sort_unstable();
        }
        Labels { days }
    }

    /// Whether `kind` happened on days `from .. from + HORIZON_DAYS`.
    pub fn within(&self, contact: i64, kind: IntentKind, from: Day) -> bool {
        self.days.get(&(contact, kind)).is_some_and(|v| {
            let i = v.partition_point(|d| *d < from);
            v.get(i).is_some_and(|d| *d < from + HORIZON_DAYS)
        })
    }

    /// The first day `kind` happened, if it did.
    pub fn first(&self, contact: i64, kind: IntentKind) -> Option<Day> {
        self.days
            .get(&(contact, kind))
            .and_then(|v| v.first().copied())
    }
}

/// The training table's schema: the feature snapshot columns, then `snapshot_on`, one
/// `label_<kind>` per kind and one nullable `oracle_<kind>` per kind.
pub fn training_schema() -> SchemaRef {
    let mut fields: Vec<Field> = snapshot::schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("snapshot_on", DataType::Date32, false));
    for k in KINDS {
        fields.push(Field::new(
            format!("label_{}", k.as_str()),
            DataType::Boolean,
            false,
        ));
    }
    for k in KINDS {
        fields.push(Field::new(
            format!("oracle_{}", k.as_str()),
            DataType::Float64,
            true,
        ));
    }
    Arc::new(Schema::new(fields))
}

/// One training row before encoding.
#[derive(Debug, Clone)]
pub struct TrainingRow {
    /// Features.
    pub snapshot: Snapshot,
    /// Labels in `KINDS` order.
    pub labels: [bool; 4],
    /// Oracle probabilities in `KINDS` order.
    pub oracle: [Option<f64>; 4],
}

fn encode(rows: &[TrainingRow]) -> Result<RecordBatch> {
    let snaps: Vec<Snapshot> = rows.iter().map(|r| r.snapshot.clone()).collect();
    let base = snapshot::to_batch(&snaps).map_err(|e| Error::Internal(e.to_string()))?;
    let mut columns: Vec<ArrayRef> = base.columns().to_vec();
    let mut on = Date32Builder::with_capacity(rows.len());
    for r in rows {
        on.append_value(r.snapshot.day + 1);
    }
    columns.push(Arc::new(on.finish()));
    for k in 0..4 {
        let mut b = BooleanBuilder::with_capacity(rows.len());
        for r in rows {
            b.append_value(r.labels[k]);
        }
        columns.push(Arc::new(b.finish()));
    }
    for k in 0..4 {
        let mut b = Float64Builder::with_capacity(rows.len());
        for r in rows {
            b.append_option(r.oracle[k]);
        }
        columns.push(Arc::new(b.finish()));
    }
    RecordBatch::try_new(training_schema(), columns).map_err(|e| Error::Internal(e.to_string()))
}

/// What the backfill produced.
#[derive(Debug, Clone, Default)]
pub struct BackfillReport {
    /// Rows.
    pub rows: usize,
    /// Homeowners with at least one row.
    pub contacts: usize,
    /// Snapshot dates.
    pub snapshots: Vec<NaiveDate>,
    /// Positive rows per kind (`KINDS` order).
    pub positives: [usize; 4],
}

/// Everything the backfill reads.
pub struct BackfillInputs {
    /// Homeowners.
    pub contacts: Vec<roi_schemas::Contact>,
    /// Events per homeowner.
    pub events: HashMap<i64, ContactEvents>,
    /// Static context.
    pub context: ContextIndex,
    /// Outcomes (labels).
    pub outcomes: Vec<Outcome>,
    /// The world's latent probabilities, when present.
    pub intent: Vec<IntentSnapshot>,
}

/// Builds the training rows at `snapshots`, labels known by `known_until`.
pub fn backfill(
    mut inputs: BackfillInputs,
    snapshots: &[NaiveDate],
    known_until: Day,
) -> (Vec<RecordBatch>, BackfillReport) {
    let labels = Labels::new(&inputs.outcomes, known_until);
    let oracle: HashMap<(i64, Day), [f64; 4]> = inputs
        .intent
        .iter()
        .map(|i| {
            (
                (i.contact_id.0, day_of_date(i.snapshot_on)),
                [i.p_sell, i.p_buy, i.p_refinance, i.p_investment],
            )
        })
        .collect();
    let context = &inputs.context;
    let mut work: Vec<(i64, i64, Day, Vec<Touch>)> = inputs
        .contacts
        .iter()
        .map(|c| {
            let events = inputs.events.remove(&c.contact_id.0).unwrap_or_default();
            (
                c.contact_id.0,
                c.org_id.0,
                day_of_date(c.closed_on),
                events.touches,
            )
        })
        .collect();
    work.sort_by_key(|w| w.0);
    let mut report = BackfillReport {
        snapshots: snapshots.to_vec(),
        ..BackfillReport::default()
    };
    // Homeowners are processed a block at a time (in parallel within a block) and each
    // block is encoded at once, so only one block's rows are ever held as structs. Rows
    // come out by homeowner, then snapshot.
    let mut batches = Vec::new();
    for block in work.chunks_mut(BLOCK_CONTACTS) {
        let per_contact: Vec<Vec<TrainingRow>> = block
            .par_iter_mut()
            .map(|(contact, org, closed, touches)| {
                // A homeowner is snapshotted from their closing until their home is sold.
                let sold = labels.first(*contact, IntentKind::Sell);
                let dates: Vec<NaiveDate> = snapshots
                    .iter()
                    .copied()
                    .filter(|s| {
                        let d = day_of_date(*s);
                        d > *closed && sold.is_none_or(|x| d <= x)
                    })
                    .collect();
                let id = ContactId(*contact);
                let facts = |at: Day| context.facts(id, at);
                let rows = backfill_contact(*contact, *org, touches, &dates, &facts)
                    .into_iter()
                    .map(|snapshot| {
                        let on = snapshot.day + 1;
                        let kinds = KINDS.map(|k| labels.within(*contact, k, on));
                        let o = oracle.get(&(*contact, on));
                        TrainingRow {
                            snapshot,
                            labels: kinds,
                            oracle: [0, 1, 2, 3].map(|k| o.map(|o| o[k])),
                        }
                    })
                    .collect();
                *touches = Vec::new();
                rows
            })
            .collect();
        let mut rows: Vec<TrainingRow> = Vec::new();
        for r in per_contact {
            report.contacts += usize::from(!r.is_empty());
            rows.extend(r);
        }
        report.rows += rows.len();
        for r in &rows {
            for k in 0..4 {
                report.positives[k] += usize::from(r.labels[k]);
            }
        }
        if !rows.is_empty() {
            batches.push(encode(&rows).expect("training rows always encode"));
        }
    }
    (batches, report)
}

fn registry_error(e: roi_models::Error) -> Error {
    Error::Output {
        what: "the model registry".into(),
        message: e.to_string(),
    }
}

/// One trained and registered model.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Its registry card.
    pub card: ModelCard,
    /// What training measured.
    pub report: PropensityReport,
    /// Whether it was promoted (the first version of its name is).
    pub promoted: bool,
}

/// The rows of the training table as one [`TrainingSet`] (labels of the first kind;
/// [`set_kind`] switches) plus all labels and oracle columns per kind.
struct Loaded {
    set: TrainingSet,
    labels: [Vec<bool>; 4],
    oracle: [Vec<Option<f64>>; 4],
    last_snapshot: Option<NaiveDate>,
}

fn load_training(batches: &[RecordBatch]) -> Result<Loaded> {
    let width = FEATURES.len();
    let mut loaded = Loaded {
        set: TrainingSet {
            features: FEATURES.iter().map(|f| f.name.to_owned()).collect(),
            ..TrainingSet::default()
        },
        labels: Default::default(),
        oracle: Default::default(),
        last_snapshot: None,
    };
    let stale = |what: &str| Error::Data {
        table: TRAINING_TABLE.into(),
        message: format!(
            "has no column {what}; it was built by another version of the feature catalog \
             (this build computes {CATALOG_VERSION}); rebuild it with roi jobs run alert-training-set --force"
        ),
    };
    for b in batches {
        let col = |name: &str| b.column_by_name(name).ok_or_else(|| stale(name));
        let features: Vec<&arrow::array::PrimitiveArray<Float64Type>> = FEATURES
            .iter()
            .map(|f| {
                col(f.name)?
                    .as_primitive_opt::<Float64Type>()
                    .ok_or_else(|| stale(f.name))
            })
            .collect::<Result<_>>()?;
        let on = col("snapshot_on")?
            .as_primitive_opt::<Date32Type>()
            .ok_or_else(|| stale("snapshot_on"))?;
        loaded.set.rows.reserve(b.num_rows() * width);
        for r in 0..b.num_rows() {
            for f in &features {
                loaded
                    .set
                    .rows
                    .push(if f.is_null(r) { f64::NAN } else { f.value(r) });
            }
            let day = on.value(r);
            loaded.set.months.push(month_index(day));
            let date = roi_features::day::date(day);
            loaded.last_snapshot = Some(loaded.last_snapshot.map_or(date, |d| d.max(date)));
        }
        for (k, kind) in KINDS.iter().enumerate() {
            let name = format!("label_{}", kind.as_str());
            let labels = col(&name)?.as_boolean_opt().ok_or_else(|| stale(&name))?;
            loaded.labels[k].extend((0..b.num_rows()).map(|r| labels.value(r)));
            let name = format!("oracle_{}", kind.as_str());
            let oracle = col(&name)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| stale(&name))?;
            loaded.oracle[k]
                .extend((0..b.num_rows()).map(|r| (!oracle.is_null(r)).then(|| oracle.value(r))));
        }
    }
    Ok(loaded)
}

impl Loaded {
    fn set_kind(&mut self, k: usize) {
        self.set.labels = self.labels[k].clone();
        // The oracle is compared only where the world knows it for every row.
        self.set.oracle = self.oracle[k].iter().copied().collect::<Option<Vec<f64>>>();
    }
}

/// The one line a listing shows for a model.
fn summary(r: &PropensityReport) -> String {
    let f = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    format!(
        "AUC {} · PR-AUC {} · precision {:.1}% · recall {:.1}% · {:.3} alerts/contact-year",
        f(r.model.auc),
        f(r.model.pr_auc),
        100.0 * r.model.precision,
        100.0 * r.model.recall,
        r.model.alerts_per_contact_year
    )
}

/// Trains the models of `kinds` on the lake's training table, registers each, and
/// promotes a model when its name has no promoted version yet. `created_at` stamps the
/// cards (RFC 3339).
pub async fn train(
    lake: &Path,
    kinds: &[IntentKind],
    config: &PropensityConfig,
    created_at: &str,
) -> Result<Vec<Trained>> {
    let session = crate::catalog::session_with(lake, &[TRAINING_TABLE]).await?;
    if !crate::job::has_table(&session, TRAINING_TABLE) {
        return Err(Error::Data {
            table: TRAINING_TABLE.into(),
            message: "is missing; run roi jobs run alert-training-set first".into(),
        });
    }
    let batches = crate::job::read_batches(&session, TRAINING_TABLE).await?;
    let mut loaded = tokio::task::spawn_blocking(move || load_training(&batches))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let registry = Registry::at(lake);
    let mut out = Vec::new();
    for kind in kinds {
        let k = KINDS
            .iter()
            .position(|x| x == kind)
            .expect("every kind is in KINDS");
        loaded.set_kind(k);
        let set = std::mem::take(&mut loaded.set);
        let cfg = config.clone();
        let (set, fitted) = tokio::task::spawn_blocking(move || {
            let fitted = PropensityModel::fit(&set, &cfg);
            (set, fitted)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let (model, report) = fitted.map_err(|e| Error::Data {
            table: TRAINING_TABLE.into(),
            message: format!("cannot train the {kind} model: {e}"),
        })?;
        let card = registry
            .register(NewModel {
                name: kind.as_str(),
                created_at: created_at.to_owned(),
                catalog_version: CATALOG_VERSION,
                features: model.features.clone(),
                training: TrainingData {
                    table: TRAINING_TABLE.into(),
                    rows: set.len(),
                    positives: set.labels.iter().filter(|l| **l).count(),
                    fingerprint: set.fingerprint(),
                    as_of: loaded.last_snapshot.map(|d| d.to_string()),
                },
                summary: summary(&report),
                model_json: model
                    .to_json()
                    .map_err(|e| Error::Internal(e.to_string()))?,
                metrics_json: serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            })
            .map_err(registry_error)?;
        let promoted = match registry.promoted(kind.as_str()).map_err(registry_error)? {
            Some(_) => false,
            None => {
                registry.promote(&card.id).map_err(registry_error)?;
                true
            }
        };
        loaded.set = set;
        out.push(Trained {
            card,
            report,
            promoted,
        });
    }
    Ok(out)
}

/// The snapshot dates of a lake's training run: from the event log's extent, ending where
/// outcomes known by `as_of` (default: the last event day) cover the whole horizon.
pub fn plan_snapshots(scan: &EventScan, as_of: Option<NaiveDate>) -> Result<(Vec<NaiveDate>, Day)> {
    let (Some(first), Some(last)) = (scan.first_day, scan.last_day) else {
        return Err(Error::Data {
            table: "raw.events".into(),
            message: "holds no valid event; nothing to backfill".into(),
        });
    };
    let known = as_of.map_or(last, day_of_date);
    let dates = snapshot_dates(
        roi_features::day::date(first),
        roi_features::day::date(known),
    );
    if dates.is_empty() {
        return Err(Error::Data {
            table: "raw.events".into(),
            message: format!(
                "covers {} to {}: too short for a {WARM_UP_MONTHS}-month warm-up and a {HORIZON_DAYS}-day label horizon",
                roi_features::day::date(first),
                roi_features::day::date(known)
            ),
        });
    }
    Ok((dates, known))
}

/// How the alerts of one kind turned out against the outcomes in the lake.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertOutcomes {
    /// The kind.
    pub kind: IntentKind,
    /// Alerts raised.
    pub alerts: usize,
    /// Alerts raised on or after the `since` date whose whole horizon is covered by the
    /// known outcomes.
    pub judged: usize,
    /// Judged alerts whose outcome happened within the horizon.
    pub came_true: usize,
}

impl AlertOutcomes {
    /// Share of judged alerts that came true.
    pub fn precision(&self) -> Option<f64> {
        (self.judged > 0).then(|| self.came_true as f64 / self.judged as f64)
    }
}

/// Judges the stream's alerts (`alerts.alerts`) against `raw.outcomes`: an alert came true
/// when its homeowner's outcome of its kind closed within [`HORIZON_DAYS`] after it. Only
/// alerts raised on or after `since` (e.g. the models' first test month, so that no judged
/// alert comes from months the models learned on) whose horizon ends by the last known
/// outcome are judged.
pub async fn judge_alerts(lake: &Path, since: Option<NaiveDate>) -> Result<Vec<AlertOutcomes>> {
    let since = since.map_or(Day::MIN, day_of_date);
    let session = crate::catalog::session_with(lake, &["alerts.alerts", "raw.outcomes"]).await?;
    let alerts: Vec<roi_schemas::Alert> = if crate::job::has_table(&session, "alerts.alerts") {
        crate::job::read_rows(&session, "alerts.alerts").await?
    } else {
        Vec::new()
    };
    let outcomes: Vec<Outcome> = crate::job::read_rows(&session, "raw.outcomes").await?;
    let known = outcomes
        .iter()
        .map(|o| day_of(o.occurred_at.timestamp_millis()))
        .max()
        .unwrap_or(Day::MIN);
    let labels = Labels::new(&outcomes, known);
    Ok(KINDS
        .iter()
        .map(|&kind| {
            let mut r = AlertOutcomes {
                kind,
                alerts: 0,
                judged: 0,
                came_true: 0,
            };
            for a in alerts.iter().filter(|a| a.kind == kind) {
                r.alerts += 1;
                // Alerts are raised at the end of their day; the horizon starts the next.
                let from = day_of(a.created_at.timestamp_millis()) + 1;
                if from > since && from + HORIZON_DAYS - 1 <= known {
                    r.judged += 1;
                    r.came_true += usize::from(labels.within(a.contact_id.0, kind, from));
                }
            }
            r
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use roi_features::day::DAY_MS;

    fn touch(day: Day, kind: u8, doc: Option<i64>) -> Touch {
        Touch {
            ts_ms: i64::from(day) * DAY_MS + 3_600_000,
            kind,
            session: Some(i64::from(day)),
            document: doc,
            listing: None,
        }
    }

    #[test]
    fn a_training_table_from_another_catalog_is_named() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "contact_id",
            DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow::array::Int64Array::from(vec![1]))],
        )
        .unwrap();
        let err = load_training(&[batch]).err().unwrap().to_string();
        assert!(
            err.contains("has no column events_1d") && err.contains(CATALOG_VERSION),
            "{err}"
        );
        assert!(
            err.contains("roi jobs run alert-training-set --force"),
            "{err}"
        );
    }

    #[test]
    fn snapshots_leave_room_for_warm_up_and_horizon() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let dates = snapshot_dates(d("2023-01-15"), d("2023-12-31"));
        assert_eq!(dates.first(), Some(&d("2023-05-01")));
        // 2023-10-01 + 90 days = 2023-12-30, the last start whose horizon fits.
        assert_eq!(dates.last(), Some(&d("2023-10-01")));
        assert!(snapshot_dates(d("2023-01-01"), d("2023-05-01")).is_empty());
    }

    #[test]
    fn kinds_follow_the_schema_order() {
        assert_eq!(KINDS.as_slice(), IntentKind::ALL);
    }

    #[test]
    fn training_without_the_training_table_says_what_to_run() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("raw")).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let err = rt
            .block_on(train(
                tmp.path(),
                &KINDS,
                &PropensityConfig::default(),
                "2026-01-01T00:00:00Z",
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "features.alert_training: is missing; run roi jobs run alert-training-set first"
            ),
            "{err}"
        );
        // Judging alerts needs the outcomes, and names the missing table.
        let err = rt
            .block_on(judge_alerts(tmp.path(), None))
            .unwrap_err()
            .to_string();
        assert!(err.contains("raw.outcomes"), "{err}");
    }

    #[test]
    fn a_log_too_short_or_empty_is_named() {
        let err = plan_snapshots(&EventScan::default(), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("raw.events: holds no valid event"), "{err}");
        let day = |s: &str| day_of_date(s.parse::<NaiveDate>().unwrap());
        let scan = EventScan {
            first_day: Some(day("2024-01-10")),
            last_day: Some(day("2024-05-20")),
            ..EventScan::default()
        };
        let err = plan_snapshots(&scan, None).unwrap_err().to_string();
        assert!(
            err.contains("covers 2024-01-10 to 2024-05-20: too short"),
            "{err}"
        );
        // A later --date makes room: labels known by then cover the horizon.
        let (dates, known) = plan_snapshots(&scan, Some("2024-12-31".parse().unwrap())).unwrap();
        assert_eq!(
            dates.first(),
            "2024-05-01".parse::<NaiveDate>().ok().as_ref()
        );
        assert_eq!(known, day("2024-12-31"));
    }

    #[test]
    fn labels_look_only_at_the_horizon() {
        let at = |day: Day| {
            chrono::DateTime::from_timestamp_millis(i64::from(day) * DAY_MS + 5).unwrap()
        };
        let outcome = |day: Day| Outcome {
            contact_id: ContactId(1),
            kind: IntentKind::Refinance,
            occurred_at: at(day),
            property_id: roi_schemas::PropertyId(1),
            sale_id: None,
            loan_id: None,
        };
        let labels = Labels::new(&[outcome(100), outcome(500)], 400);
        assert!(labels.within(1, IntentKind::Refinance, 11));
        assert!(labels.within(1, IntentKind::Refinance, 100));
        assert!(
            !labels.within(1, IntentKind::Refinance, 10),
            "day 100 is 90 days out"
        );
        assert!(!labels.within(1, IntentKind::Refinance, 101));
        assert!(!labels.within(1, IntentKind::Sell, 50));
        // Outcomes after what is known do not exist yet.
        assert!(!labels.within(1, IntentKind::Refinance, 450));
    }

    /// The leakage check: a row never changes when anything after its snapshot changes.
    #[test]
    fn rows_ignore_everything_after_their_snapshot() {
        let snapshots: Vec<NaiveDate> = (1..=12)
            .map(|m| NaiveDate::from_ymd_opt(2024, m, 1).unwrap())
            .collect();
        let start = day_of_date(NaiveDate::from_ymd_opt(2023, 10, 1).unwrap());
        let mut state = 99u64;
        let mut rand = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let events: Vec<Touch> = (0..600)
            .map(|_| {
                touch(
                    start + rand(460) as Day,
                    rand(15) as u8,
                    Some(rand(5) as i64),
                )
            })
            .collect();
        // Facts that change over time, as loans and sales do.
        let facts = |at: Day| Facts {
            tenure_years: Some(f64::from(at - start) / 365.25),
            market_rate: Some(6.0 + f64::from(at % 30) / 100.0),
            ..Facts::default()
        };
        let base = backfill_contact(1, 1, &mut events.clone(), &snapshots, &facts);
        assert_eq!(base.len(), 12);
        for (i, s) in snapshots.iter().enumerate() {
            let cut = day_of_date(*s) - 1;
            // Shift every later event by a month, drop half of them, add a burst.
            let mut changed: Vec<Touch> = events
                .iter()
                .filter(|t| day_of(t.ts_ms) <= cut || rand(2) == 0)
                .map(|t| {
                    let mut t = *t;
                    if day_of(t.ts_ms) > cut {
                        t.ts_ms += 30 * DAY_MS;
                    }
                    t
                })
                .collect();
            changed.extend((0..50).map(|j| touch(cut + 1 + j % 3, (j % 15) as u8, Some(j.into()))));
            let rows = backfill_contact(1, 1, &mut changed, &snapshots, &facts);
            assert_eq!(rows[i], base[i], "row at {s} saw the future");
            // Later rows do see the changes (the check above is not vacuous).
            if i + 1 < snapshots.len() {
                assert_ne!(rows[i + 1], base[i + 1], "row after {s} should differ");
            }
        }
    }
}
