//! The job runner on a small DAG of test jobs: order, skipping, atomic commits, retries,
//! failures that block only their downstream, and the run log.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use roi_jobs::job::{Job, JobContext, JobFuture, JobReport};
use roi_jobs::runner::{self, Freshness, JobRecord, Outcome, OutputRecord, RunOptions};
use roi_jobs::{Error, fingerprint};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]))
}

fn batch(values: &[i64]) -> RecordBatch {
    RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(values.to_vec()))])
        .expect("batch")
}

fn write_raw(lake: &Path, name: &str, values: &[i64]) {
    let dir = lake.join("raw").join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let file = std::fs::File::create(dir.join("part-00000.parquet")).expect("file");
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema(), None).expect("writer");
    w.write(&batch(values)).expect("write");
    w.close().expect("close");
}

fn values(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64");
            (0..a.len()).map(|i| a.value(i)).collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

/// Reads `input`, adds `add` to every value, writes `output`. Fails while `fail` > 0
/// (decrementing it), transiently or not.
struct AddJob {
    name: &'static str,
    input: &'static [&'static str],
    output: &'static [&'static str],
    add: i64,
    version: u32,
    runs: Arc<AtomicU32>,
    fail: Arc<AtomicU32>,
    transient: bool,
}

impl AddJob {
    fn new(
        name: &'static str,
        input: &'static [&'static str],
        output: &'static [&'static str],
    ) -> AddJob {
        AddJob {
            name,
            input,
            output,
            add: 1,
            version: 1,
            runs: Arc::new(AtomicU32::new(0)),
            fail: Arc::new(AtomicU32::new(0)),
            transient: false,
        }
    }
}

impl Job for AddJob {
    fn name(&self) -> &'static str {
        self.name
    }
    fn description(&self) -> &'static str {
        "adds a constant"
    }
    fn version(&self) -> u32 {
        self.version
    }
    fn inputs(&self) -> &'static [&'static str] {
        self.input
    }
    fn outputs(&self) -> &'static [&'static str] {
        self.output
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            let input = values(&cx.read_batches(self.input[0]).await?);
            let out: Vec<i64> = input.iter().map(|v| v + self.add).collect();
            // Stage the output first, so a failure below proves staging is discarded.
            cx.write_batches(self.output[0], schema(), &[batch(&out)])?;
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                .is_ok()
            {
                let kind = if self.transient {
                    std::io::ErrorKind::Interrupted
                } else {
                    std::io::ErrorKind::InvalidData
                };
                return Err(Error::Io {
                    action: "reading",
                    path: cx.lake().join("somewhere"),
                    source: std::io::Error::new(kind, "simulated"),
                });
            }
            Ok(JobReport {
                notes: vec![format!("{} rows", out.len())],
            })
        })
    }
}

fn options() -> RunOptions {
    RunOptions {
        backoff: Duration::from_millis(1),
        ..RunOptions::default()
    }
}

fn run(
    lake: &Path,
    jobs: &[Box<dyn Job>],
    selection: &[&str],
    options: &RunOptions,
) -> Result<runner::RunLog, Error> {
    let selection: Vec<String> = selection.iter().map(|s| (*s).to_owned()).collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(runner::run(lake, jobs, &selection, options, &mut |_| {}))
}

fn read(lake: &Path, table: &str) -> Vec<i64> {
    let (zone, name) = table.split_once('.').expect("zone.table");
    let dir = lake.join(zone).join(name);
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("table dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "parquet") {
            let file = std::fs::File::open(&path).expect("open");
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .expect("reader")
                    .build()
                    .expect("build");
            let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
            all.extend(values(&batches));
        }
    }
    all.sort();
    all
}

fn outcomes(log: &runner::RunLog) -> Vec<(String, Outcome)> {
    log.records
        .iter()
        .map(|r| (r.job.clone(), r.outcome))
        .collect()
}

fn hidden_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// raw.seed -> a -> curated.a -> b -> curated.b ; raw.seed -> c -> curated.c
fn dag() -> (Vec<Box<dyn Job>>, Vec<Arc<AtomicU32>>) {
    let a = AddJob::new("a", &["raw.seed"], &["curated.a"]);
    let b = AddJob::new("b", &["curated.a"], &["curated.b"]);
    let c = AddJob::new("c", &["raw.seed"], &["curated.c"]);
    let runs = vec![a.runs.clone(), b.runs.clone(), c.runs.clone()];
    (vec![Box::new(b), Box::new(c), Box::new(a)], runs)
}

#[test]
fn plans_in_dependency_order_and_pulls_in_upstream_jobs() {
    let (jobs, _) = dag();
    let names =
        |order: Vec<usize>| -> Vec<&str> { order.iter().map(|&i| jobs[i].name()).collect() };
    assert_eq!(
        names(runner::plan(&jobs, &["all".into()]).expect("plan")),
        ["c", "a", "b"]
    );
    assert_eq!(
        names(runner::plan(&jobs, &["b".into()]).expect("plan")),
        ["a", "b"]
    );
    let err = runner::plan(&jobs, &["nope".into()]).expect_err("unknown job");
    assert!(
        err.to_string()
            .contains("no job named \"nope\"; jobs are: b, c, a (or all)"),
        "{err}"
    );
}

#[test]
fn a_cycle_is_reported_as_a_bug() {
    let x = AddJob::new("x", &["curated.y"], &["curated.x"]);
    let y = AddJob::new("y", &["curated.x"], &["curated.y"]);
    let jobs: Vec<Box<dyn Job>> = vec![Box::new(x), Box::new(y)];
    let err = runner::plan(&jobs, &["all".into()]).expect_err("cycle");
    assert!(err.to_string().contains("cycle among x, y"), "{err}");
}

#[test]
fn runs_commits_skips_and_reruns_what_changed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lake = tmp.path();
    write_raw(lake, "seed", &[1, 2, 3]);
    let (jobs, runs) = dag();

    let log = run(lake, &jobs, &["all"], &options()).expect("first run");
    assert_eq!(
        outcomes(&log),
        [
            ("c".into(), Outcome::Succeeded),
            ("a".into(), Outcome::Succeeded),
            ("b".into(), Outcome::Succeeded)
        ]
    );
    assert_eq!(read(lake, "curated.a"), [2, 3, 4]);
    assert_eq!(read(lake, "curated.b"), [3, 4, 5]);
    assert_eq!(log.records[2].outputs["curated.b"].rows, 3);
    assert_eq!(log.records[2].notes, ["3 rows"]);
    assert!(
        hidden_entries(&lake.join("curated")).is_empty(),
        "no staging left"
    );
    assert!(lake.join("curated/a/_manifest.json").is_file());

    // Nothing changed: everything is skipped.
    let log = run(lake, &jobs, &["all"], &options()).expect("second run");
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Skipped));
    let counts: Vec<u32> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 1, 1]);

    // An input changes: a and b (downstream) run, c too (same input).
    write_raw(lake, "seed", &[10]);
    let log = run(lake, &jobs, &["b"], &options()).expect("third run");
    assert_eq!(
        outcomes(&log),
        [
            ("a".into(), Outcome::Succeeded),
            ("b".into(), Outcome::Succeeded)
        ]
    );
    assert_eq!(log.records[0].reason, "input raw.seed changed");
    assert_eq!(read(lake, "curated.b"), [12]);

    // An output removed behind the runner's back is rebuilt.
    std::fs::remove_dir_all(lake.join("curated/b")).expect("rm");
    let log = run(lake, &jobs, &["all"], &options()).expect("fourth run");
    let by_job: BTreeMap<_, _> = log.records.iter().map(|r| (r.job.as_str(), r)).collect();
    assert_eq!(by_job["a"].outcome, Outcome::Skipped);
    assert_eq!(by_job["b"].outcome, Outcome::Succeeded);
    assert_eq!(
        by_job["b"].reason,
        "output curated.b changed outside the runner"
    );
    assert_eq!(
        by_job["c"].outcome,
        Outcome::Succeeded,
        "c had not seen the new seed"
    );

    // --force runs everything.
    let forced = RunOptions {
        force: true,
        ..options()
    };
    let log = run(lake, &jobs, &["all"], &forced).expect("forced run");
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Succeeded));

    // The run log keeps every run; status agrees that all is up to date.
    assert_eq!(runner::history(lake).expect("history").len(), 5);
    let status = runner::status(lake, &jobs).expect("status");
    assert!(status.iter().all(|s| s.freshness == Freshness::UpToDate));
}

#[test]
fn a_failure_keeps_the_old_output_blocks_downstream_and_names_the_job() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lake = tmp.path();
    write_raw(lake, "seed", &[1]);
    let (jobs, _) = dag();
    run(lake, &jobs, &["all"], &options()).expect("first run");

    write_raw(lake, "seed", &[5]);
    let mut a = AddJob::new("a", &["raw.seed"], &["curated.a"]);
    a.fail = Arc::new(AtomicU32::new(10));
    let jobs: Vec<Box<dyn Job>> = vec![
        Box::new(AddJob::new("b", &["curated.a"], &["curated.b"])),
        Box::new(AddJob::new("c", &["raw.seed"], &["curated.c"])),
        Box::new(a),
    ];
    let err = run(lake, &jobs, &["all"], &options()).expect_err("a fails");
    let text = err.to_string();
    assert!(
        text.starts_with("job a failed: reading") && text.contains("simulated"),
        "{text}"
    );
    assert_eq!(read(lake, "curated.a"), [2], "old output intact");
    assert_eq!(read(lake, "curated.c"), [6], "unrelated job ran");
    assert!(
        hidden_entries(&lake.join("curated")).is_empty(),
        "staging discarded"
    );
    let log = runner::history(lake).expect("history").pop().expect("log");
    let by_job: BTreeMap<_, _> = log.records.iter().map(|r| (r.job.as_str(), r)).collect();
    assert_eq!(by_job["a"].outcome, Outcome::Failed);
    assert_eq!(by_job["a"].attempts, 1, "not transient: no retry");
    assert_eq!(by_job["b"].outcome, Outcome::Blocked);
    assert!(
        by_job["b"]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("a failed to build")),
        "{:?}",
        by_job["b"].error
    );
}

#[test]
fn transient_failures_are_retried() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lake = tmp.path();
    write_raw(lake, "seed", &[1]);
    let mut a = AddJob::new("a", &["raw.seed"], &["curated.a"]);
    a.fail = Arc::new(AtomicU32::new(2));
    a.transient = true;
    let jobs: Vec<Box<dyn Job>> = vec![Box::new(a)];
    let log = run(lake, &jobs, &["a"], &options()).expect("succeeds on the third attempt");
    assert_eq!(log.records[0].attempts, 3);
    assert_eq!(read(lake, "curated.a"), [2]);

    let mut a = AddJob::new("a", &["raw.seed"], &["curated.a"]);
    a.fail = Arc::new(AtomicU32::new(5));
    a.transient = true;
    let jobs: Vec<Box<dyn Job>> = vec![Box::new(a)];
    let forced = RunOptions {
        force: true,
        ..options()
    };
    let err = run(lake, &jobs, &["a"], &forced).expect_err("retries exhausted");
    assert!(err.to_string().starts_with("job a failed"), "{err}");
}

#[test]
fn a_missing_input_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (jobs, _) = dag();
    let err = run(tmp.path(), &jobs, &["c"], &options()).expect_err("no seed");
    let text = err.to_string();
    assert!(
        text.contains("job c failed: raw.seed: missing from the lake"),
        "{text}"
    );
}

fn record(version: u32, inputs: &[(&str, &str)], outputs: &[(&str, &str)]) -> JobRecord {
    JobRecord {
        job: "j".into(),
        version,
        run_id: "r".into(),
        started_at: chrono::Utc::now(),
        duration_ms: 1,
        outcome: Outcome::Succeeded,
        attempts: 1,
        as_of: None,
        inputs: inputs
            .iter()
            .map(|(t, f)| ((*t).to_owned(), Some((*f).to_owned())))
            .collect(),
        outputs: outputs
            .iter()
            .map(|(t, f)| {
                (
                    (*t).to_owned(),
                    OutputRecord {
                        rows: 1,
                        fingerprint: (*f).to_owned(),
                    },
                )
            })
            .collect(),
        reason: String::new(),
        notes: vec![],
        error: None,
    }
}

#[test]
fn freshness_rules() {
    let fp = |pairs: &[(&str, Option<&str>)]| -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(t, f)| ((*t).to_owned(), f.map(str::to_owned)))
            .collect()
    };
    let last = record(2, &[("raw.x", "1")], &[("curated.y", "9")]);
    let inputs = fp(&[("raw.x", Some("1"))]);
    let outputs = fp(&[("curated.y", Some("9"))]);
    assert_eq!(
        runner::freshness(2, None, Some(&last), &inputs, &outputs),
        Freshness::UpToDate
    );
    assert_eq!(
        runner::freshness(2, None, None, &inputs, &outputs),
        Freshness::NeverRun
    );
    assert_eq!(
        runner::freshness(3, None, Some(&last), &inputs, &outputs),
        Freshness::VersionChanged { from: 2, to: 3 }
    );
    let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
    assert_eq!(
        runner::freshness(2, date, Some(&last), &inputs, &outputs),
        Freshness::DateChanged
    );
    assert_eq!(
        runner::freshness(2, None, Some(&last), &fp(&[("raw.x", Some("2"))]), &outputs),
        Freshness::InputChanged("raw.x".into())
    );
    assert_eq!(
        runner::freshness(2, None, Some(&last), &fp(&[("raw.x", None)]), &outputs),
        Freshness::InputChanged("raw.x".into())
    );
    assert_eq!(
        runner::freshness(2, None, Some(&last), &inputs, &fp(&[("curated.y", None)])),
        Freshness::OutputChanged("curated.y".into())
    );
}

#[test]
fn fingerprints_ignore_staging() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_raw(tmp.path(), "seed", &[1]);
    let dir = tmp.path().join("raw/seed");
    let before = fingerprint::table(&dir).expect("fp");
    std::fs::create_dir_all(dir.join(".staging")).expect("dir");
    assert_eq!(fingerprint::table(&dir).expect("fp"), before);
}

/// Writes `write` (which may not be its declared output) or nothing at all.
struct SloppyJob {
    write: Option<&'static str>,
}

impl Job for SloppyJob {
    fn name(&self) -> &'static str {
        "sloppy"
    }
    fn description(&self) -> &'static str {
        "breaks the output contract"
    }
    fn version(&self) -> u32 {
        1
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["raw.seed"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["curated.declared"]
    }
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            if let Some(table) = self.write {
                cx.write_batches(table, schema(), &[batch(&[1])])?;
            }
            Ok(JobReport::default())
        })
    }
}

#[test]
fn a_job_that_breaks_its_output_contract_is_reported_as_a_bug() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_raw(tmp.path(), "seed", &[1]);
    let undeclared: Vec<Box<dyn Job>> = vec![Box::new(SloppyJob {
        write: Some("curated.other"),
    })];
    let err = run(tmp.path(), &undeclared, &["all"], &options()).expect_err("undeclared");
    assert!(
        err.to_string()
            .contains("bug: job wrote curated.other, which it does not declare as an output"),
        "{err}"
    );
    let silent: Vec<Box<dyn Job>> = vec![Box::new(SloppyJob { write: None })];
    let err = run(tmp.path(), &silent, &["all"], &options()).expect_err("nothing written");
    assert!(
        err.to_string()
            .contains("bug: sloppy did not write curated.declared"),
        "{err}"
    );
    assert!(!tmp.path().join("curated/other").exists());
}
