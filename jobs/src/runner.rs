//! The job DAG runner: plans, skips what is up to date, runs, commits, logs.
//!
//! - **Plan**: the selected jobs plus every job upstream of them (a job is upstream of
//!   another when it writes one of its inputs), in dependency order.
//! - **Skip**: a job whose version, `--date`, input fingerprints and output fingerprints
//!   all equal those of its last successful run is up to date ([`freshness`], a pure
//!   decision).
//! - **Commit**: outputs are staged by the job and moved into place only after it
//!   succeeded (the previous version is renamed aside first, then removed), so a reader
//!   never sees a half-written table.
//! - **Retry**: transient I/O failures are retried with back-off; other failures are not.
//! - **Log**: every run writes `_runs/jobs/run-<time>-<pid>-<n>.json` with one record per
//!   planned job (inputs, outputs, rows, duration, outcome); `roi jobs status` reads them.
//!   A failed job blocks its downstream jobs; unrelated jobs still run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{Job, JobContext, StagedTable, split};
use crate::{Error, Result, fingerprint};

/// How a planned job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran and committed its outputs.
    Succeeded,
    /// Up to date: nothing it depends on changed since its last success.
    Skipped,
    /// Ran and failed (after retries); its outputs are unchanged.
    Failed,
    /// Not run because a job upstream of it failed.
    Blocked,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::Blocked => "blocked",
        })
    }
}

/// One output table of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Rows written.
    pub rows: u64,
    /// Fingerprint after commit.
    pub fingerprint: String,
}

/// What happened to one job in one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job name.
    pub job: String,
    /// Job version.
    pub version: u32,
    /// Run id.
    pub run_id: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
    /// Outcome.
    pub outcome: Outcome,
    /// Attempts made (0 when skipped or blocked).
    pub attempts: u32,
    /// The `--date` of the run.
    pub as_of: Option<NaiveDate>,
    /// Input fingerprints (null: an optional input that is absent).
    pub inputs: BTreeMap<String, Option<String>>,
    /// Outputs committed (or, when skipped, as found).
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Why the job ran or was skipped.
    pub reason: String,
    /// Notes the job reported.
    pub notes: Vec<String>,
    /// Error, when failed or blocked.
    pub error: Option<String>,
}

/// The run log file of one `roi jobs run`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLog {
    /// Run id (also the file name).
    pub run_id: String,
    /// Jobs asked for.
    pub selection: Vec<String>,
    /// One record per planned job, in run order.
    pub records: Vec<JobRecord>,
}

/// Whether a job must run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Nothing changed since the last success.
    UpToDate,
    /// The job never succeeded in this lake.
    NeverRun,
    /// The job's code changed.
    VersionChanged {
        /// Version of the last success.
        from: u32,
        /// Current version.
        to: u32,
    },
    /// A different `--date` was asked for.
    DateChanged,
    /// An input table changed (or appeared, or disappeared).
    InputChanged(String),
    /// An output table was changed or removed outside the runner.
    OutputChanged(String),
}

impl std::fmt::Display for Freshness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Freshness::UpToDate => write!(f, "up to date"),
            Freshness::NeverRun => write!(f, "never run"),
            Freshness::VersionChanged { from, to } => {
                write!(f, "job changed (version {from} -> {to})")
            }
            Freshness::DateChanged => write!(f, "--date changed"),
            Freshness::InputChanged(t) => write!(f, "input {t} changed"),
            Freshness::OutputChanged(t) => write!(f, "output {t} changed outside the runner"),
        }
    }
}

/// Decides whether a job is up to date: pure, so every rule is unit-tested.
pub fn freshness(
    version: u32,
    as_of: Option<NaiveDate>,
    last_success: Option<&JobRecord>,
    inputs: &BTreeMap<String, Option<String>>,
    outputs: &BTreeMap<String, Option<String>>,
) -> Freshness {
    let Some(last) = last_success else {
        return Freshness::NeverRun;
    };
    if last.version != version {
        return Freshness::VersionChanged {
            from: last.version,
            to: version,
        };
    }
    if last.as_of != as_of {
        return Freshness::DateChanged;
    }
    for (table, now) in inputs {
        if last.inputs.get(table) != Some(now) {
            return Freshness::InputChanged(table.clone());
        }
    }
    for (table, now) in outputs {
        let recorded = last.outputs.get(table).map(|o| &o.fingerprint);
        if recorded.is_none() || now.as_ref() != recorded {
            return Freshness::OutputChanged(table.clone());
        }
    }
    Freshness::UpToDate
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// As-of date handed to the jobs (`--date`).
    pub as_of: Option<NaiveDate>,
    /// Run jobs even when they are up to date.
    pub force: bool,
    /// With `force`, force only these jobs (`all` for every one); `None` forces every
    /// planned job.
    pub force_jobs: Option<Vec<String>>,
    /// Retries of a transient failure.
    pub retries: u32,
    /// Back-off before the first retry (doubled each time).
    pub backoff: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            as_of: None,
            force: false,
            force_jobs: None,
            retries: 2,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Progress of a run, for display.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The plan, in order.
    Planned(&'a [String]),
    /// A job starts (index from 1).
    Started {
        /// Position in the plan.
        index: usize,
        /// Planned jobs.
        total: usize,
        /// Job name.
        job: &'a str,
        /// Why it runs.
        reason: &'a str,
    },
    /// A transient failure will be retried.
    Retrying {
        /// Job name.
        job: &'a str,
        /// Attempt that failed.
        attempt: u32,
        /// The error.
        error: &'a str,
    },
    /// A job ended.
    Finished {
        /// Position in the plan.
        index: usize,
        /// Planned jobs.
        total: usize,
        /// Its record.
        record: &'a JobRecord,
    },
}

/// The jobs to run for `selection` (names or `all`), upstream jobs included, in
/// dependency order (ties keep registry order).
pub fn plan(jobs: &[Box<dyn Job>], selection: &[String]) -> Result<Vec<usize>> {
    let mut producer: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, job) in jobs.iter().enumerate() {
        for out in job.outputs() {
            if let Some(other) = producer.insert(out, i) {
                return Err(Error::Internal(format!(
                    "{out} is written by both {} and {}",
                    jobs[other].name(),
                    job.name()
                )));
            }
        }
    }
    let upstream = |i: usize| -> BTreeSet<usize> {
        jobs[i]
            .inputs()
            .iter()
            .chain(jobs[i].optional_inputs())
            .filter_map(|t| producer.get(t).copied())
            .filter(|&p| p != i)
            .collect()
    };
    let mut wanted = BTreeSet::new();
    let mut stack = Vec::new();
    for name in selection {
        if name == "all" {
            stack.extend(0..jobs.len());
            continue;
        }
        match jobs.iter().position(|j| j.name() == name) {
            Some(i) => stack.push(i),
            None => {
                let known: Vec<&str> = jobs.iter().map(|j| j.name()).collect();
                return Err(Error::Usage(format!(
                    "no job named {name:?}; jobs are: {} (or all)",
                    known.join(", ")
                )));
            }
        }
    }
    while let Some(i) = stack.pop() {
        if wanted.insert(i) {
            stack.extend(upstream(i));
        }
    }
    let mut order = Vec::with_capacity(wanted.len());
    let mut done = BTreeSet::new();
    while order.len() < wanted.len() {
        let next = wanted
            .iter()
            .copied()
            .find(|&i| !done.contains(&i) && upstream(i).iter().all(|u| done.contains(u)));
        match next {
            Some(i) => {
                done.insert(i);
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = wanted
                    .iter()
                    .filter(|i| !done.contains(*i))
                    .map(|&i| jobs[i].name())
                    .collect();
                return Err(Error::Internal(format!(
                    "the job graph has a cycle among {}",
                    stuck.join(", ")
                )));
            }
        }
    }
    Ok(order)
}

fn table_dir(lake: &Path, table: &str) -> Result<PathBuf> {
    let (zone, name) = split(table)?;
    Ok(lake.join(zone).join(name))
}

fn runs_dir(lake: &Path) -> PathBuf {
    lake.join("_runs").join("jobs")
}

/// Every run log of the lake, oldest first.
pub fn history(lake: &Path) -> Result<Vec<RunLog>> {
    let dir = runs_dir(lake);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut logs = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
        let log: RunLog = serde_json::from_str(&text).map_err(|e| Error::Lake {
            path: path.clone(),
            message: format!("not a run log: {e}"),
        })?;
        logs.push(log);
    }
    Ok(logs)
}

fn last_records(logs: &[RunLog]) -> BTreeMap<String, (JobRecord, Option<JobRecord>)> {
    let mut out: BTreeMap<String, (JobRecord, Option<JobRecord>)> = BTreeMap::new();
    for record in logs.iter().flat_map(|l| &l.records) {
        let entry = out
            .entry(record.job.clone())
            .or_insert_with(|| (record.clone(), None));
        entry.0 = record.clone();
        if record.outcome == Outcome::Succeeded {
            entry.1 = Some(record.clone());
        }
    }
    out
}

fn fingerprints(
    lake: &Path,
    tables: impl IntoIterator<Item = &'static str>,
) -> Result<BTreeMap<String, Option<String>>> {
    let mut out = BTreeMap::new();
    for t in tables {
        out.insert(t.to_owned(), fingerprint::table(&table_dir(lake, t)?)?);
    }
    Ok(out)
}

/// Status of one job.
#[derive(Debug, Clone)]
pub struct JobStatus {
    /// Job name.
    pub job: &'static str,
    /// Its latest record, whatever the outcome.
    pub last: Option<JobRecord>,
    /// Its latest success.
    pub last_success: Option<JobRecord>,
    /// Whether a run now would redo it (judged for the last success's `--date`).
    pub freshness: Freshness,
}

/// The status of every job.
pub fn status(lake: &Path, jobs: &[Box<dyn Job>]) -> Result<Vec<JobStatus>> {
    let last = last_records(&history(lake)?);
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (latest, success) = match last.get(job.name()) {
            Some((l, s)) => (Some(l.clone()), s.clone()),
            None => (None, None),
        };
        let inputs = fingerprints(
            lake,
            job.inputs().iter().chain(job.optional_inputs()).copied(),
        )?;
        let outputs = fingerprints(lake, job.outputs().iter().copied())?;
        let as_of = success.as_ref().and_then(|s| s.as_of);
        let fresh = freshness(job.version(), as_of, success.as_ref(), &inputs, &outputs);
        out.push(JobStatus {
            job: job.name(),
            last: latest,
            last_success: success,
            freshness: fresh,
        });
    }
    Ok(out)
}

fn commit(lake: &Path, staged: &StagedTable, run_id: &str) -> Result<()> {
    let dest = table_dir(lake, &staged.table)?;
    let (zone, name) = split(&staged.table)?;
    let aside = lake.join(zone).join(format!(".{name}.old-{run_id}"));
    if dest.exists() {
        std::fs::rename(&dest, &aside).map_err(Error::io("moving aside", &dest))?;
    }
    if let Err(e) = std::fs::rename(&staged.dir, &dest) {
        // Put the previous version back so the table never disappears.
        if aside.exists() {
            let _ = std::fs::rename(&aside, &dest);
        }
        return Err(Error::io("committing", &dest)(e));
    }
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(Error::io("removing", &aside))?;
    }
    Ok(())
}

fn discard(staged: &[StagedTable]) {
    for s in staged {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}

/// Runs `selection` (job names or `all`) from `jobs` against the lake at `lake`.
///
/// Returns the run log (also written to `_runs/jobs/`); if a job failed, returns
/// [`Error::JobFailed`] naming the first failure after every runnable job has run.
pub async fn run(
    lake: &Path,
    jobs: &[Box<dyn Job>],
    selection: &[String],
    options: &RunOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<RunLog> {
    if !lake.is_dir() {
        return Err(Error::Lake {
            path: lake.to_path_buf(),
            message:
                "no such directory; generate a world first (roi demo or roi datasets generate)"
                    .into(),
        });
    }
    let order = plan(jobs, selection)?;
    let names: Vec<String> = order.iter().map(|&i| jobs[i].name().to_owned()).collect();
    progress(Progress::Planned(&names));
    // Time first so that file names sort by start; the process id and a per-process
    // sequence keep ids unique when runs start within the same millisecond.
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let run_id = format!(
        "{}-{}-{:04}",
        Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    );
    let mut last = last_records(&history(lake)?);
    let mut log = RunLog {
        run_id: run_id.clone(),
        selection: selection.to_vec(),
        records: Vec::with_capacity(order.len()),
    };
    let mut failed_tables: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut first_failure: Option<(String, Error)> = None;
    let total = order.len();
    for (n, &i) in order.iter().enumerate() {
        let job = jobs[i].as_ref();
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut record = JobRecord {
            job: job.name().to_owned(),
            version: job.version(),
            run_id: run_id.clone(),
            started_at,
            duration_ms: 0,
            outcome: Outcome::Failed,
            attempts: 0,
            as_of: options.as_of,
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            reason: String::new(),
            notes: Vec::new(),
            error: None,
        };
        let result = run_one(
            lake,
            job,
            options,
            &run_id,
            &failed_tables,
            last.get(job.name()).and_then(|(_, s)| s.as_ref()),
            &mut record,
            &mut *progress,
            (n + 1, total),
        )
        .await;
        record.duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = result {
            record.error = Some(e.to_string());
            if record.outcome != Outcome::Blocked {
                record.outcome = Outcome::Failed;
                record.outputs.clear();
            }
            for out in job.outputs() {
                failed_tables.insert(out, job.name().to_owned());
            }
            if first_failure.is_none() && record.outcome == Outcome::Failed {
                first_failure = Some((job.name().to_owned(), e));
            }
        }
        progress(Progress::Finished {
            index: n + 1,
            total,
            record: &record,
        });
        let entry = last
            .entry(record.job.clone())
            .or_insert_with(|| (record.clone(), None));
        entry.0 = record.clone();
        if record.outcome == Outcome::Succeeded {
            entry.1 = Some(record.clone());
        }
        log.records.push(record);
    }
    write_log(lake, &log)?;
    match first_failure {
        Some((job, source)) => Err(Error::JobFailed {
            job,
            source: Box::new(source),
        }),
        None => Ok(log),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_one(
    lake: &Path,
    job: &dyn Job,
    options: &RunOptions,
    run_id: &str,
    failed_tables: &BTreeMap<&'static str, String>,
    last_success: Option<&JobRecord>,
    record: &mut JobRecord,
    progress: &mut dyn FnMut(Progress<'_>),
    (index, total): (usize, usize),
) -> Result<()> {
    for input in job.inputs().iter().chain(job.optional_inputs()) {
        if let Some(upstream) = failed_tables.get(input) {
            record.outcome = Outcome::Blocked;
            record.reason = format!("upstream job {upstream} failed");
            return Err(Error::Usage(format!(
                "not run: it reads {input}, which {upstream} failed to build"
            )));
        }
    }
    record.inputs = fingerprints(
        lake,
        job.inputs().iter().chain(job.optional_inputs()).copied(),
    )?;
    for input in job.inputs() {
        if record.inputs.get(*input).is_some_and(Option::is_none) {
            return Err(Error::Data {
                table: (*input).to_owned(),
                message: format!(
                    "missing from the lake {}; generate a world (roi datasets generate) or run the job that writes it",
                    lake.display()
                ),
            });
        }
    }
    let outputs_now = fingerprints(lake, job.outputs().iter().copied())?;
    let as_of = options.as_of.filter(|_| job.uses_date());
    record.as_of = as_of;
    let fresh = freshness(
        job.version(),
        as_of,
        last_success,
        &record.inputs,
        &outputs_now,
    );
    let forced = options.force
        && options
            .force_jobs
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == job.name() || n == "all"));
    if fresh == Freshness::UpToDate && !forced {
        record.outcome = Outcome::Skipped;
        record.reason = fresh.to_string();
        if let Some(last) = last_success {
            record.outputs = last.outputs.clone();
        }
        return Ok(());
    }
    record.reason = if forced {
        format!("forced ({fresh})")
    } else {
        fresh.to_string()
    };
    progress(Progress::Started {
        index,
        total,
        job: job.name(),
        reason: &record.reason,
    });
    let mut backoff = options.backoff;
    loop {
        record.attempts += 1;
        let wanted: Vec<&str> = job
            .inputs()
            .iter()
            .chain(job.optional_inputs())
            .copied()
            .collect();
        let session = crate::catalog::session_with(lake, &wanted).await?;
        let cx = JobContext::new(lake, as_of, session, job.outputs(), run_id);
        let result = job.run(&cx).await;
        let staged = cx.take_staged();
        match result {
            Ok(report) => {
                let missing: Vec<&str> = job
                    .outputs()
                    .iter()
                    .copied()
                    .filter(|o| !staged.iter().any(|s| s.table == *o))
                    .collect();
                if !missing.is_empty() {
                    discard(&staged);
                    return Err(Error::Internal(format!(
                        "{} did not write {}",
                        job.name(),
                        missing.join(", ")
                    )));
                }
                for s in &staged {
                    commit(lake, s, run_id)?;
                    let fp = fingerprint::table(&table_dir(lake, &s.table)?)?.unwrap_or_default();
                    record.outputs.insert(
                        s.table.clone(),
                        OutputRecord {
                            rows: s.rows,
                            fingerprint: fp,
                        },
                    );
                }
                record.notes = report.notes;
                record.outcome = Outcome::Succeeded;
                return Ok(());
            }
            Err(e) => {
                discard(&staged);
                if e.is_transient() && record.attempts <= options.retries {
                    let text = e.to_string();
                    progress(Progress::Retrying {
                        job: job.name(),
                        attempt: record.attempts,
                        error: &text,
                    });
                    let pause = backoff;
                    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(pause)).await;
                    backoff *= 2;
                    continue;
                }
                return Err(e);
            }
        }
    }
}

fn write_log(lake: &Path, log: &RunLog) -> Result<()> {
    let dir = runs_dir(lake);
    std::fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
    let path = dir.join(format!("run-{}.json", log.run_id));
    let text = serde_json::to_string_pretty(log)
        .map_err(|e| Error::Internal(format!("run log does not serialise: {e}")))?;
    let tmp = dir.join(format!(".run-{}.json.tmp", log.run_id));
    std::fs::write(&tmp, text + "\n").map_err(Error::io("writing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(Error::io("writing", &path))
}
