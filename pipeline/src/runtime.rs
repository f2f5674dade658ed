//! The streaming job: source → decode → `dedupe` → `event_time` → `features`, with
//! dead letters, feature snapshots, signal firings and run metrics written to the lake.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use roi_features::context::ContextIndex;
use roi_features::day::{Day, date};
use roi_features::snapshot::{self, Snapshot};
use roi_schemas::{Alert, DeadLetter, SignalFiring, StrEnum, Table};
use serde::Serialize;

use crate::context::{self, ContextReport};
use crate::decode::decode;
use crate::dedupe::Dedupe;
use crate::event_time::{EventTime, fmt_ms};
use crate::lake::PartitionedTable;
use crate::operator::{Operator, Output};
use crate::scoring::{AlertSink, Scorer};
use crate::source::{self, Poll, Source};
use crate::watermark::EventTimeConfig;
use crate::window::PartitionedWindow;
use crate::{Error, Result};

/// How to run the stream.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// `file:PATH`, `stdin` or `-`.
    pub source: String,
    /// Stop when the source has no more data instead of waiting for more.
    pub until_idle: bool,
    /// Lake root.
    pub lake: PathBuf,
    /// Watermark settings.
    pub event_time: EventTimeConfig,
    /// Threads: the decoder splits chunks this many ways and the feature window runs
    /// this many key partitions (1 = everything on the job's thread).
    pub threads: usize,
    /// Lines per source poll.
    pub chunk_lines: usize,
    /// Reference time for the future-timestamp check (default: now).
    pub now: Option<DateTime<Utc>>,
    /// Print a live progress line on stderr.
    pub progress: bool,
    /// Score snapshots with the registry's promoted alert models and raise alerts.
    pub score: bool,
    /// Days within which a homeowner gets at most one alert of a kind.
    pub cooldown_days: i32,
}

impl StreamConfig {
    /// Defaults for `source` into `lake`.
    pub fn new(source: impl Into<String>, lake: impl Into<PathBuf>) -> StreamConfig {
        StreamConfig {
            source: source.into(),
            until_idle: true,
            lake: lake.into(),
            event_time: EventTimeConfig::default(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            chunk_lines: 64 * 1024,
            now: None,
            progress: false,
            score: true,
            cooldown_days: crate::scoring::DEFAULT_COOLDOWN_DAYS,
        }
    }
}

/// What a run did (also written to `_runs/stream/`).
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// Source description.
    pub source: String,
    /// Lines read.
    pub lines: u64,
    /// Events applied to the windows.
    pub accepted: u64,
    /// Dead letters per reason.
    pub dead_letters: BTreeMap<String, u64>,
    /// Homeowners with window state.
    pub contacts: usize,
    /// Average window-state bytes per homeowner at the end of input.
    pub state_bytes_per_contact: f64,
    /// Feature snapshot rows written.
    pub snapshots: u64,
    /// Signal firings written.
    pub signals: u64,
    /// Signal firings per signal.
    pub signals_by_name: BTreeMap<String, u64>,
    /// Alerts raised.
    pub alerts: u64,
    /// Alerts per kind.
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Alert models used (registry ids).
    pub models: Vec<String>,
    /// Kinds not scored because no model of theirs is promoted.
    pub unscored: Vec<String>,
    /// Final watermark.
    pub watermark: Option<String>,
    /// Days closed (snapshot days).
    pub first_day: Option<String>,
    /// Last snapshot day.
    pub last_day: Option<String>,
    /// Context used.
    pub context: ContextReport,
    /// Event-time settings.
    pub event_time: EventTimeConfig,
    /// Decoder threads and window partitions.
    pub threads: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Lines per second.
    pub lines_per_second: f64,
}

struct Sinks {
    features: PartitionedTable,
    signals: PartitionedTable,
    dead: PartitionedTable,
    alerts: PartitionedTable,
    pending_snapshots: Vec<Snapshot>,
    pending_signals: Vec<SignalFiring>,
    pending_dead: Vec<DeadLetter>,
    pending_alerts: Vec<Alert>,
    dead_by_reason: BTreeMap<String, u64>,
    signals_by_name: BTreeMap<String, u64>,
    alerts_by_kind: BTreeMap<String, u64>,
    first_day: Option<Day>,
    last_day: Option<Day>,
}

const FLUSH_ROWS: usize = 200_000;

/// Month partition of a day, as a sortable number (months since 2000-01).
fn month_of(day: Day) -> i32 {
    roi_features::day::month_index(day)
}

/// Partition directory name of a month number.
fn partition(month: i32) -> String {
    format!(
        "month={:04}-{:02}",
        2000 + month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

impl Sinks {
    fn take(&mut self, out: &mut Output) {
        for d in &out.dead {
            *self
                .dead_by_reason
                .entry(d.reason.as_str().to_owned())
                .or_default() += 1;
        }
        for s in &out.signals {
            *self.signals_by_name.entry(s.signal.clone()).or_default() += 1;
        }
        for a in &out.alerts {
            *self
                .alerts_by_kind
                .entry(a.kind.as_str().to_owned())
                .or_default() += 1;
        }
        self.pending_alerts.append(&mut out.alerts);
        for s in &out.snapshots {
            self.first_day = Some(self.first_day.map_or(s.day, |d| d.min(s.day)));
            self.last_day = Some(self.last_day.map_or(s.day, |d| d.max(s.day)));
        }
        self.pending_dead.append(&mut out.dead);
        self.pending_snapshots.append(&mut out.snapshots);
        self.pending_signals.append(&mut out.signals);
    }

    /// Writes complete months (before `closed_through`'s month), everything when a buffer
    /// is large, or everything when `all`. Rows arrive in day order, so the rows to write
    /// are always a prefix of the buffers.
    fn flush(&mut self, closed_through: Option<Day>, all: bool) -> Result<()> {
        let big =
            self.pending_snapshots.len() >= FLUSH_ROWS || self.pending_signals.len() >= FLUSH_ROWS;
        let open = if all || big {
            i32::MAX
        } else {
            closed_through.map_or(i32::MIN, month_of)
        };
        let n = self
            .pending_snapshots
            .partition_point(|s| month_of(s.day) < open);
        let rows: Vec<Snapshot> = self.pending_snapshots.drain(..n).collect();
        for group in rows.chunk_by(|a, b| month_of(a.day) == month_of(b.day)) {
            self.features.write(
                &partition(month_of(group[0].day)),
                &snapshot::to_batch(group)?,
            )?;
        }
        let sig_month = |s: &SignalFiring| month_of(roi_features::day::day_of_date(s.as_of_date));
        let n = self
            .pending_signals
            .partition_point(|s| sig_month(s) < open);
        let rows: Vec<SignalFiring> = self.pending_signals.drain(..n).collect();
        for group in rows.chunk_by(|a, b| sig_month(a) == sig_month(b)) {
            let batch =
                SignalFiring::to_batch(group).map_err(|e| Error::Config(format!("bug: {e}")))?;
            self.signals
                .write(&partition(sig_month(&group[0])), &batch)?;
        }
        let alert_month =
            |a: &Alert| month_of(roi_features::day::day_of(a.created_at.timestamp_millis()));
        let n = self
            .pending_alerts
            .partition_point(|a| alert_month(a) < open);
        let rows: Vec<Alert> = self.pending_alerts.drain(..n).collect();
        for group in rows.chunk_by(|a, b| alert_month(a) == alert_month(b)) {
            let batch = Alert::to_batch(group).map_err(|e| Error::Config(format!("bug: {e}")))?;
            self.alerts
                .write(&partition(alert_month(&group[0])), &batch)?;
        }
        if all || self.pending_dead.len() >= FLUSH_ROWS {
            let rows = std::mem::take(&mut self.pending_dead);
            if !rows.is_empty() {
                self.dead.write(
                    "all",
                    &DeadLetter::to_batch(&rows).map_err(|e| Error::Config(format!("bug: {e}")))?,
                )?;
            }
        }
        Ok(())
    }
}

/// Runs the stream to the end of its source (or forever when following).
pub fn run(config: &StreamConfig) -> Result<StreamReport> {
    run_with_sink(config, None)
}

/// Runs the stream, also handing every alert to `sink`.
pub fn run_with_sink(
    config: &StreamConfig,
    mut sink: Option<&mut dyn AlertSink>,
) -> Result<StreamReport> {
    let started = Instant::now();
    let mut src: Box<dyn Source> = source::from_spec(&config.source, !config.until_idle)?;
    let (index, context_report) = context::load(&config.lake)?;
    tracing::info!(contacts = context_report.contacts, from = ?context_report.properties_from, "context loaded");
    let index = Arc::new(index);
    let mut scorer = if config.score {
        Some(Scorer::load(&config.lake, config.cooldown_days)?)
    } else {
        None
    };
    let mut dedupe = Dedupe::default();
    let mut event_time = EventTime::new(config.event_time);
    let mut window = PartitionedWindow::new(index.clone(), config.threads);
    let mut sinks = Sinks {
        features: PartitionedTable::create(
            &config.lake,
            "features",
            "contact_features",
            snapshot::schema(),
        )?,
        signals: PartitionedTable::create(
            &config.lake,
            "signals",
            "signal_firings",
            SignalFiring::schema(),
        )?,
        dead: PartitionedTable::create(
            &config.lake,
            "dead_letter",
            "events",
            DeadLetter::schema(),
        )?,
        alerts: PartitionedTable::create(&config.lake, "alerts", "alerts", Alert::schema())?,
        pending_snapshots: Vec::new(),
        pending_signals: Vec::new(),
        pending_dead: Vec::new(),
        pending_alerts: Vec::new(),
        dead_by_reason: BTreeMap::new(),
        signals_by_name: BTreeMap::new(),
        alerts_by_kind: BTreeMap::new(),
        first_day: None,
        last_day: None,
    };
    let now = config.now.unwrap_or_else(Utc::now);
    let mut out = Output::default();
    let (mut lines, mut accepted) = (0u64, 0u64);
    let mut closed: Option<Day> = None;
    let mut last_progress = Instant::now();
    let live = config.progress && std::io::stderr().is_terminal();
    for op in [
        &mut dedupe as &mut dyn Operator,
        &mut event_time,
        &mut window,
    ] {
        op.on_start(&mut out)?;
    }
    loop {
        match src.poll(config.chunk_lines)? {
            Poll::Lines(chunk) => {
                lines += chunk.lines.len() as u64;
                let decoded = decode(&chunk, config.threads, now)?;
                out.dead.extend(decoded.dead);
                for batch in decoded.batches {
                    let Some(b) = dedupe.process(batch, &mut out)? else {
                        continue;
                    };
                    let Some(b) = event_time.process(b, &mut out)? else {
                        continue;
                    };
                    accepted += b.batch.num_rows() as u64;
                    window.process(b, &mut out)?;
                }
                if out.closed_through > closed
                    && let Some(d) = out.closed_through
                {
                    closed = Some(d);
                    dedupe.on_watermark(d, &mut out)?;
                    window.on_watermark(d, &mut out)?;
                }
                raise_alerts(scorer.as_mut(), &index, &mut out, &mut sink)?;
                sinks.take(&mut out);
                sinks.flush(closed, false)?;
            }
            Poll::Idle => std::thread::sleep(Duration::from_millis(200)),
            Poll::Done => break,
        }
        if live && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let dead: u64 = sinks.dead_by_reason.values().sum();
            eprint!(
                "\r{:>10} events  {:>8.0}/s  watermark {}  dead-lettered {}  late {}   ",
                lines,
                lines as f64 / secs,
                event_time
                    .watermark()
                    .map(fmt_ms)
                    .unwrap_or_else(|| "-".into()),
                dead,
                event_time.late
            );
            let _ = std::io::stderr().flush();
        }
    }
    if live {
        eprintln!();
    }
    let bytes = window.bytes_per_contact();
    let contacts = window.contacts();
    for op in [
        &mut dedupe as &mut dyn Operator,
        &mut event_time,
        &mut window,
    ] {
        op.close(&mut out)?;
    }
    raise_alerts(scorer.as_mut(), &index, &mut out, &mut sink)?;
    sinks.take(&mut out);
    sinks.flush(closed, true)?;
    let seconds = started.elapsed().as_secs_f64();
    let report = StreamReport {
        source: src.describe(),
        lines,
        accepted,
        dead_letters: sinks.dead_by_reason.clone(),
        contacts,
        state_bytes_per_contact: bytes,
        snapshots: sinks.features.rows(),
        signals: sinks.signals.rows(),
        signals_by_name: sinks.signals_by_name.clone(),
        alerts: sinks.alerts.rows(),
        alerts_by_kind: sinks.alerts_by_kind.clone(),
        models: scorer.as_ref().map(Scorer::model_ids).unwrap_or_default(),
        unscored: scorer
            .as_ref()
            .map(|s| s.missing.iter().map(|k| k.as_str().to_owned()).collect())
            .unwrap_or_default(),
        watermark: event_time.watermark().map(fmt_ms),
        first_day: sinks.first_day.map(|d| date(d).to_string()),
        last_day: sinks.last_day.map(|d| date(d).to_string()),
        context: context_report,
        event_time: config.event_time,
        threads: config.threads,
        seconds,
        lines_per_second: lines as f64 / seconds.max(1e-9),
    };
    let about = serde_json::json!({"catalog_version": roi_features::catalog::CATALOG_VERSION, "source": report.source});
    sinks.features.finish(about.clone())?;
    sinks.signals.finish(about.clone())?;
    sinks.dead.finish(about.clone())?;
    sinks.alerts.finish(about)?;
    write_run_log(config, &report)?;
    Ok(report)
}

/// Scores the step's snapshots and moves the alerts they raise into `out`.
fn raise_alerts(
    scorer: Option<&mut Scorer>,
    context: &ContextIndex,
    out: &mut Output,
    sink: &mut Option<&mut dyn AlertSink>,
) -> Result<()> {
    let Some(scorer) = scorer else {
        return Ok(());
    };
    let alerts = scorer.score(&out.snapshots, &out.signals, context)?;
    if let Some(sink) = sink.as_deref_mut()
        && !alerts.is_empty()
    {
        sink.send(&alerts)?;
    }
    out.alerts.extend(alerts);
    Ok(())
}

fn write_run_log(config: &StreamConfig, report: &StreamReport) -> Result<()> {
    let dir = config.lake.join("_runs").join("stream");
    std::fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
    let path = dir.join(format!(
        "run-{}.json",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    ));
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Config(format!("bug: run log: {e}")))?;
    std::fs::write(&path, text + "\n").map_err(Error::io("writing", &path))
}
