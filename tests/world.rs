//! End-to-end checks of the synthetic world: determinism, manifests, dirty lines, and that
//! its ground truth is informative but not trivially so.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use roi_datasets::behaviour::characteristic_of;
use roi_datasets::{GenerationReport, Scale, WorldConfig, generate};
use roi_models::metrics::roc_auc;
use roi_schemas::{Event, IntentKind, Outcome, RejectReason, StrEnum, Table, parse_event_line};

fn world(dir: &Path, seed: u64, dirty: bool) -> GenerationReport {
    generate(&WorldConfig {
        scale: Scale::Tiny,
        seed,
        dirty,
        out: dir.to_path_buf(),
        progress: false,
    })
    .expect("generate tiny world")
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
                out.insert(rel, fs::read(&path).expect("read file"));
            }
        }
    }
    out
}

fn read_parquet<T: Table>(dir: &Path) -> Vec<T> {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&d)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                let reader =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                        fs::File::open(&p).expect("open"),
                    )
                    .expect("parquet")
                    .build()
                    .expect("reader");
                for batch in reader {
                    rows.extend(T::from_batch(&batch.expect("batch")).expect("decode"));
                }
            }
        }
    }
    rows
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seeds_differ() {
    let tmp = tempfile::tempdir().expect("tempdir");
    world(&tmp.path().join("a"), 7, false);
    world(&tmp.path().join("b"), 7, false);
    world(&tmp.path().join("c"), 8, false);
    let a = files(&tmp.path().join("a"));
    let b = files(&tmp.path().join("b"));
    assert!(a.len() > 30, "expected many files, got {}", a.len());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(
            bytes == &b[path],
            "{} differs between two runs with seed 7",
            path.display()
        );
    }
    let c = files(&tmp.path().join("c"));
    assert_ne!(
        a.get(Path::new("sales/part-00000.parquet")),
        c.get(Path::new("sales/part-00000.parquet"))
    );
}

#[test]
fn manifests_match_the_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let report = world(&dir, 3, false);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["scale"], "tiny");
    for (table, rows) in manifest["tables"].as_object().expect("tables") {
        let table_dir = dir.join(table);
        let tm: serde_json::Value = serde_json::from_slice(
            &fs::read(table_dir.join("_manifest.json")).expect("table manifest"),
        )
        .expect("json");
        assert_eq!(
            &tm["rows"], rows,
            "{table}: table manifest vs world manifest"
        );
        let mut counted = 0u64;
        for f in tm["files"].as_array().expect("files") {
            let path = table_dir.join(f["path"].as_str().expect("path"));
            let meta = parquet::file::reader::SerializedFileReader::new(
                fs::File::open(&path).expect("open"),
            )
            .map(|r| {
                parquet::file::reader::FileReader::metadata(&r)
                    .file_metadata()
                    .num_rows()
            })
            .expect("parquet footer");
            assert_eq!(
                meta as u64,
                f["rows"].as_u64().expect("rows"),
                "{}",
                path.display()
            );
            counted += meta as u64;
        }
        assert_eq!(counted, rows.as_u64().expect("rows"), "{table}");
        assert!(counted > 0, "{table} is empty");
    }
    let mut lines = 0u64;
    for f in &report.manifest.events.files {
        let text = fs::read_to_string(dir.join("events").join(&f.path)).expect("ndjson");
        assert_eq!(text.lines().count() as u64, f.rows, "{}", f.path);
        lines += f.rows;
    }
    assert_eq!(
        lines, report.manifest.events.events,
        "clean world: every line is an event"
    );
    assert!(report.manifest.events.out_of_order > 0 && report.manifest.events.late_over_1h > 0);
}

#[test]
fn dirty_world_has_every_malformed_kind_and_nothing_else_breaks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let report = world(&dir, 7, true);
    let now = Some(chrono::Utc::now());
    let mut seen: HashMap<RejectReason, u64> = HashMap::new();
    let mut valid = 0u64;
    for f in &report.manifest.events.files {
        for line in fs::read_to_string(dir.join("events").join(&f.path))
            .expect("ndjson")
            .lines()
        {
            match parse_event_line(line, now) {
                Ok(_) => valid += 1,
                Err(r) => *seen.entry(r.reason).or_default() += 1,
            }
        }
    }
    assert_eq!(valid, report.manifest.events.events);
    let declared = &report.manifest.events.malformed;
    for reason in [
        RejectReason::MalformedJson,
        RejectReason::UnknownEventType,
        RejectReason::MissingField,
        RejectReason::FutureTimestamp,
    ] {
        let n = seen.get(&reason).copied().unwrap_or(0);
        assert!(n > 0, "no {reason} lines");
        assert_eq!(declared.get(reason.as_str()).copied(), Some(n), "{reason}");
    }
    let share = declared.values().sum::<u64>() as f64 / valid as f64;
    assert!((0.003..0.008).contains(&share), "malformed share {share}");
}

#[test]
fn oracle_is_informative_but_far_from_perfect_and_behaviour_carries_signal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let report = world(&dir, 11, false);
    for s in &report.oracle {
        let auc = roc_auc(&s.scores, &s.labels).expect("both classes present");
        assert!((0.7..0.97).contains(&auc), "{}: oracle AUC {auc}", s.kind);
    }

    // Characteristic events per homeowner-day in the 60 days before an outcome, against
    // the same rate over all homeowner-days of the event period.
    let outcomes: Vec<Outcome> = read_parquet(&dir.join("outcomes"));
    let mut by_contact: HashMap<i64, Vec<(i64, IntentKind)>> = HashMap::new();
    for o in &outcomes {
        by_contact
            .entry(o.contact_id.0)
            .or_default()
            .push((o.occurred_at.timestamp_millis(), o.kind));
    }
    let mut events: Vec<Event> = Vec::new();
    for f in &report.manifest.events.files {
        for line in fs::read_to_string(dir.join("events").join(&f.path))
            .expect("ndjson")
            .lines()
        {
            events.push(parse_event_line(line, None).expect("clean world"));
        }
    }
    let day = 86_400_000i64;
    let contacts = 400.0;
    let period_days = 42.0 * 30.44;
    for kind in [
        IntentKind::Sell,
        IntentKind::Buy,
        IntentKind::Refinance,
        IntentKind::Investment,
    ] {
        let types = characteristic_of(kind);
        assert!(!types.is_empty(), "{kind} has characteristic event types");
        let relevant: Vec<&Event> = events
            .iter()
            .filter(|e| types.contains(&e.event_type))
            .collect();
        let baseline = relevant.len() as f64 / (contacts * period_days);
        let windows: Vec<(i64, i64)> = outcomes
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| (o.contact_id.0, o.occurred_at.timestamp_millis()))
            .collect();
        let before: usize = windows
            .iter()
            .map(|(c, t)| {
                relevant
                    .iter()
                    .filter(|e| {
                        e.contact_id.0 == *c
                            && e.ts.timestamp_millis() < *t
                            && e.ts.timestamp_millis() >= t - 60 * day
                    })
                    .count()
            })
            .sum();
        let rate_before = before as f64 / (windows.len() as f64 * 60.0);
        assert!(
            rate_before > 2.0 * baseline,
            "{kind}: {rate_before:.4}/day before outcomes vs {baseline:.4}/day baseline"
        );
    }
}
