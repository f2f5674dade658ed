//! Every kind of bad input is dead-lettered with its reason, and the good events around
//! it are all processed.

use std::path::Path;

use roi_pipeline::lake::read_table;
use roi_pipeline::{StreamConfig, run};
use roi_schemas::{DeadLetter, RejectReason};

fn good(id: i64, contact: i64, ts: &str) -> String {
    format!(
        r#"{{"event_id":{id},"org_id":1,"contact_id":{contact},"event_type":"valuation_viewed","ts":"{ts}","property_id":5}}"#
    )
}

fn stream(dir: &Path, lines: &[String]) -> (roi_pipeline::StreamReport, Vec<DeadLetter>) {
    let events = dir.join("events");
    std::fs::create_dir_all(&events).expect("dir");
    std::fs::write(events.join("part-1.ndjson"), lines.join("\n") + "\n").expect("write");
    let lake = dir.join("lake");
    let mut cfg = StreamConfig::new(format!("file:{}", events.display()), &lake);
    cfg.now = Some(
        chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z")
            .expect("ts")
            .to_utc(),
    );
    cfg.threads = 2;
    let report = run(&cfg).expect("stream runs");
    let dead = read_table::<DeadLetter>(&lake.join("dead_letter/events")).expect("dead letters");
    (report, dead)
}

#[test]
fn each_bad_record_is_dead_lettered_with_its_reason() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad: Vec<(String, RejectReason)> = vec![
        (r#"{"event_id":90,"org_id":1,"contact_id":"#.into(), RejectReason::MalformedJson),
        (r#"{"event_id":91,"org_id":1,"contact_id":1,"event_type":"teleported","ts":"2024-05-01T10:00:00Z"}"#.into(), RejectReason::UnknownEventType),
        (r#"{"event_id":92,"org_id":1,"event_type":"login","ts":"2024-05-01T10:00:00Z"}"#.into(), RejectReason::MissingField),
        (r#"{"event_id":93,"org_id":1,"contact_id":"seven","event_type":"login","ts":"2024-05-01T10:00:00Z"}"#.into(), RejectReason::InvalidField),
        (r#"{"event_id":94,"org_id":1,"contact_id":1,"event_type":"login","ts":"2031-05-01T10:00:00Z"}"#.into(), RejectReason::FutureTimestamp),
        (r#"{"event_id":95,"org_id":1,"contact_id":1,"event_type":"login","ts":"1969-12-31T23:59:59Z"}"#.into(), RejectReason::InvalidTimestamp),
        (r#"{"event_id":96,"org_id":1,"contact_id":1,"event_type":"login","ts":"2024-05-01T10:00:00Z","event_id":97}"#.into(), RejectReason::MalformedJson),
        (good(3, 2, "2024-05-01T10:00:02.000Z"), RejectReason::DuplicateEvent),
        (good(98, 2, "2024-04-01T10:00:00.000Z"), RejectReason::Late),
    ];
    let mut lines = Vec::new();
    for (i, (line, _)) in bad.iter().enumerate() {
        lines.push(good(
            i as i64 * 2 + 1,
            1 + i as i64 % 3,
            &format!("2024-05-01T10:00:{:02}.000Z", i),
        ));
        lines.push(line.clone());
    }
    lines.push(good(1001, 3, "2024-05-02T09:00:00.000Z"));
    let (report, dead) = stream(tmp.path(), &lines);
    assert_eq!(
        report.accepted,
        bad.len() as u64 + 1,
        "every good event is applied"
    );
    assert_eq!(dead.len(), bad.len());
    for (d, (line, reason)) in dead.iter().zip(&bad) {
        assert_eq!(d.reason, *reason, "line {}: {line}", d.offset);
        assert!(d.source.ends_with("part-1.ndjson"));
        assert!(!d.message.is_empty());
        if *reason != RejectReason::DuplicateEvent && *reason != RejectReason::Late {
            assert_eq!(&d.raw, line);
        }
    }
    let offsets: Vec<i64> = dead.iter().map(|d| d.offset).collect();
    assert_eq!(
        offsets,
        (1..=bad.len() as i64).map(|i| i * 2).collect::<Vec<_>>()
    );
    // Every homeowner with a good event got a snapshot for 2024-05-01.
    assert!(report.snapshots >= 3, "{report:?}");
}

#[test]
fn an_empty_or_all_bad_source_still_completes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (report, dead) = stream(tmp.path(), &["not json at all".to_owned(), "[]".to_owned()]);
    assert_eq!(report.accepted, 0);
    assert_eq!(dead.len(), 2);
    assert!(dead.iter().all(|d| d.reason == RejectReason::MalformedJson));
}

#[test]
fn a_missing_source_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = StreamConfig::new("file:/no/such/dir", tmp.path());
    let err = run(&cfg).expect_err("missing source");
    assert!(err.to_string().contains("/no/such/dir"), "{err}");
    let cfg = StreamConfig::new("ftp://x", tmp.path());
    assert!(
        run(&cfg)
            .expect_err("bad spec")
            .to_string()
            .contains("expected file:PATH")
    );
}
