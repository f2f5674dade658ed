//! `roi sql` over a generated and streamed lake: every zone is queryable by name, results
//! render in every format, and errors say what is wrong.

mod common;
use common::roi;

use roi_datasets::{Scale, WorldConfig, generate};

fn lake() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let lake = tmp.path().join("data/lake");
    generate(&WorldConfig {
        scale: Scale::Tiny,
        seed: 3,
        dirty: true,
        out: lake.join("raw"),
        progress: false,
    })
    .expect("world");
    roi_pipeline::run(&roi_pipeline::StreamConfig::new(
        format!("file:{}", lake.join("raw/events").display()),
        &lake,
    ))
    .expect("stream");
    tmp
}

#[test]
fn every_zone_is_queryable_and_formats_render() {
    let tmp = lake();
    let dir = tmp.path();
    let (ok, out, err) = roi(dir, &["sql", "SHOW TABLES"]);
    assert!(ok, "{err}");
    for t in [
        "sales",
        "property_records",
        "events",
        "contact_features",
        "signal_firings",
    ] {
        assert!(out.contains(t), "SHOW TABLES lacks {t}:\n{out}");
    }

    let (ok, out, err) = roi(dir, &["sql", "SELECT count(*) AS n FROM raw.contacts"]);
    assert!(ok, "{err}");
    assert!(out.contains("| 400 |") && out.contains("1 row"), "{out}");

    // Partitioned tables: property records by source, features by month.
    let (ok, out, err) = roi(
        dir,
        &[
            "sql",
            "SELECT source, count(*) AS n FROM raw.property_records GROUP BY source ORDER BY source",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "source,n");
    assert!(lines[1].starts_with("assessor,800"), "{out}");
    assert_eq!(lines.len(), 4, "{out}");

    let (ok, out, err) = roi(
        dir,
        &[
            "sql",
            "SELECT reason, count(*) AS n FROM dead_letter.events GROUP BY reason ORDER BY reason",
            "--format",
            "json",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.lines().all(|l| l.starts_with("{\"reason\":")), "{out}");
    assert!(out.contains("malformed_json"), "{out}");

    let (ok, _, err) = roi(
        dir,
        &[
            "sql",
            "SELECT contact_id, as_of_date, events_7d FROM features.contact_features",
            "--format",
            "parquet",
            "--out",
            "f.parquet",
        ],
    );
    assert!(ok, "{err}");
    let file = std::fs::File::open(dir.join("f.parquet")).expect("parquet written");
    let rows = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(file).expect("parquet"),
    )
    .file_metadata()
    .num_rows();
    assert!(rows > 1000, "{rows} feature rows");

    std::fs::write(dir.join("q.sql"), "SELECT max(price) AS top FROM raw.sales").expect("write");
    let (ok, out, err) = roi(dir, &["sql", "--file", "q.sql"]);
    assert!(ok && out.contains("top"), "{out}{err}");
}

#[test]
fn errors_name_the_problem() {
    let tmp = lake();
    let dir = tmp.path();
    let (ok, _, err) = roi(dir, &["sql", "SELECT * FROM raw.nope"]);
    assert!(!ok);
    assert!(
        err.contains("nope") && err.contains("available tables: raw.agents"),
        "{err}"
    );
    let (ok, _, err) = roi(dir, &["sql", "SELEC 1"]);
    assert!(!ok && err.to_lowercase().contains("sql"), "{err}");
    let (ok, _, err) = roi(dir, &["sql", "SELECT 1", "--format", "parquet"]);
    assert!(!ok && err.contains("--out"), "{err}");
    let (ok, _, err) = roi(dir, &["sql", "SELECT 1", "--format", "xml"]);
    assert!(!ok && err.contains("xml"), "{err}");
    let empty = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = roi(empty.path(), &["sql", "SELECT 1"]);
    assert!(!ok && err.contains("roi demo"), "{err}");
}
