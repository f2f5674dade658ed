//! The streaming job on a generated world: its feature snapshots equal the point-in-time
//! batch computation from the same accepted events, row for row and feature for feature.
//!
//! Runs on the `tiny` world; `ROI_PARITY_SCALE=small cargo test --release --test stream`
//! runs the same check on the `small` world.

use std::collections::{HashMap, HashSet};
use std::fs;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Date32Type, Float64Type, Int64Type};
use roi_datasets::{Scale, WorldConfig, generate};
use roi_features::catalog::{FEATURES, FeatureVector, Inputs};
use roi_features::history::{EventHistory, Touch};
use roi_pipeline::lake::read_table;
use roi_pipeline::{StreamConfig, run};
use roi_schemas::{ContactId, DeadLetter, parse_event_line};

#[test]
fn stream_snapshots_equal_point_in_time_batch_features() {
    let scale: Scale = std::env::var("ROI_PARITY_SCALE")
        .ok()
        .map(|s| s.parse().expect("scale"))
        .unwrap_or(Scale::Tiny);
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("lake");
    let world = generate(&WorldConfig {
        scale,
        seed: 5,
        dirty: true,
        out: lake.join("raw"),
        progress: false,
    })
    .expect("world");
    let report = run(&StreamConfig::new(
        format!("file:{}", lake.join("raw/events").display()),
        &lake,
    ))
    .expect("stream");
    assert!(
        report.snapshots > 1000 && report.signals > 100,
        "{report:?}"
    );
    assert!(
        report.state_bytes_per_contact < 2048.0,
        "{} bytes per homeowner",
        report.state_bytes_per_contact
    );
    let malformed: u64 = world.manifest.events.malformed.values().sum();
    let dead: Vec<DeadLetter> = read_table(&lake.join("dead_letter/events")).expect("dead letters");
    assert_eq!(dead.len() as u64, report.dead_letters.values().sum::<u64>());
    assert!(
        dead.len() as u64 >= malformed,
        "every malformed line is dead-lettered"
    );

    // Accepted events = every valid line not dead-lettered downstream (late, duplicate).
    let rejected: HashSet<(String, i64)> =
        dead.iter().map(|d| (d.source.clone(), d.offset)).collect();
    let mut history: HashMap<i64, EventHistory> = HashMap::new();
    let mut accepted = 0u64;
    for f in &world.manifest.events.files {
        let path = lake.join("raw/events").join(&f.path);
        let source = path.display().to_string();
        for (i, line) in fs::read_to_string(&path)
            .expect("events")
            .lines()
            .enumerate()
        {
            if rejected.contains(&(source.clone(), i as i64 + 1)) {
                continue;
            }
            let e = parse_event_line(line, None).expect("not dead-lettered, so valid");
            accepted += 1;
            history
                .entry(e.contact_id.0)
                .or_default()
                .events
                .push(Touch {
                    ts_ms: e.ts.timestamp_millis(),
                    kind: e.event_type.index() as u8,
                    session: e.session_id.map(|s| s.0),
                    document: e.document_id.map(|s| s.0),
                    listing: e.listing_id.map(|s| s.0),
                });
        }
    }
    assert_eq!(accepted, report.accepted);

    let (context, _) = roi_pipeline::context::load(&lake).expect("context");
    let mut rows = 0;
    let dir = lake.join("features/contact_features");
    let mut files = Vec::new();
    for month in fs::read_dir(&dir).expect("partitions") {
        let month = month.expect("entry").path();
        if month.is_dir() {
            for f in fs::read_dir(&month).expect("files") {
                files.push(f.expect("entry").path());
            }
        }
    }
    for path in files {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            fs::File::open(&path).expect("open"),
        )
        .expect("parquet")
        .build()
        .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let contacts = batch.column(0).as_primitive::<Int64Type>();
            let days = batch.column(2).as_primitive::<Date32Type>();
            for r in 0..batch.num_rows() {
                let contact = contacts.value(r);
                let day = days.value(r);
                let facts = context.facts(ContactId(contact), day);
                let expected = FeatureVector::compute(&Inputs {
                    history: &history[&contact],
                    facts: &facts,
                    at: day,
                });
                for (k, f) in FEATURES.iter().enumerate() {
                    let col = batch.column(3 + k).as_primitive::<Float64Type>();
                    let got = (!col.is_null(r)).then(|| col.value(r));
                    assert_eq!(
                        got, expected.0[k],
                        "contact {contact} day {day} feature {}",
                        f.name
                    );
                }
                rows += 1;
            }
        }
    }
    assert_eq!(rows, report.snapshots);
}
