//! `roi jobs` over a generated world: the DAG builds the curated zone, reruns skip, the
//! stream then reads homes from the property master, and failures name the job.

mod common;
use common::{number_after, roi};

use roi_datasets::{Scale, WorldConfig, generate};

fn world() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    generate(&WorldConfig {
        scale: Scale::Tiny,
        seed: 11,
        dirty: false,
        out: tmp.path().join("data/lake/raw"),
        progress: false,
    })
    .expect("world");
    tmp
}

#[test]
fn the_dag_builds_the_curated_zone_then_skips_until_inputs_change() {
    let tmp = world();
    let dir = tmp.path();

    let (ok, out, err) = roi(dir, &["jobs", "list"]);
    assert!(ok, "{err}");
    for job in ["property-master", "market-stats", "comparables"] {
        assert!(out.contains(job), "{out}");
    }

    let (ok, out, err) = roi(dir, &["jobs", "run", "all"]);
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(
            "plan: property-master -> market-stats -> comparables -> avm-train -> avm-score -> financials -> maintenance -> alert-training-set"
        ),
        "{out}"
    );
    for job in [
        "property-master",
        "market-stats",
        "comparables",
        "avm-train",
        "avm-score",
        "financials",
        "maintenance",
        "alert-training-set",
    ] {
        assert!(out.contains(&format!("{job}: succeeded")), "{out}");
    }
    let mdape = number_after(&out, "MdAPE");
    let coverage = number_after(&out, "interval coverage");
    assert!(mdape > 1.0 && mdape < 25.0, "{out}");
    assert!(coverage > 50.0 && coverage <= 100.0, "{out}");
    assert!(
        out.contains("valued 800 properties") || out.contains("valued 79"),
        "{out}"
    );
    let precision = number_after(&out, "match precision");
    let recall = number_after(&out, "recall");
    assert!(precision > 99.0 && recall > 95.0, "{out}");

    let (ok, out, err) = roi(
        dir,
        &[
            "sql",
            "SELECT (SELECT count(*) FROM curated.property_master) AS homes, \
             (SELECT count(*) FROM raw.parcels) AS parcels, \
             (SELECT count(*) FROM curated.property_master WHERE lat IS NOT NULL) AS located, \
             (SELECT count(*) FROM curated.comparables) AS comps, \
             (SELECT count(DISTINCT area) FROM curated.market_stats WHERE area_kind = 'zip') AS zips",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    let row: Vec<f64> = out
        .lines()
        .nth(1)
        .expect("one row")
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect();
    assert_eq!(row[0], row[1], "one master row per parcel: {out}");
    assert!(
        row[2] > 0.99 * row[0],
        "nearly every home is located: {out}"
    );
    assert_eq!(row[3], 2.0 * row[2], "two windows per located home: {out}");
    assert!(row[4] >= 2.0, "{out}");

    // Nothing changed: every job is skipped, and status agrees.
    let (ok, out, err) = roi(dir, &["jobs", "run", "all"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("skipped (up to date)").count(), 8, "{out}");
    let (ok, out, err) = roi(dir, &["jobs", "status"]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("up to date").count(), 8, "{out}");

    // roi train avm retrains even though nothing changed.
    let (ok, out, err) = roi(dir, &["train", "avm"]);
    assert!(ok, "{err}");
    assert!(out.contains("avm-train: running (forced"), "{out}");
    assert!(out.contains("MdAPE"), "{out}");

    // A new --date reruns the date-dependent work.
    let (ok, out, err) = roi(dir, &["jobs", "run", "comparables", "--date", "2024-06-30"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("comparables: running (--date changed)"),
        "{out}"
    );
    assert!(out.contains("property-master: skipped"), "{out}");

    // The stream now takes homes from the property master.
    let (ok, out, err) = roi(
        dir,
        &[
            "stream",
            "--source",
            "file:data/lake/raw/events",
            "--until-idle",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("homes from curated.property_master"), "{out}");
}

#[test]
fn failures_name_the_job_and_block_only_its_downstream() {
    let tmp = world();
    let dir = tmp.path();
    let (ok, _, err) = roi(dir, &["jobs", "run", "nope"]);
    assert!(!ok && err.contains("no job named \"nope\""), "{err}");

    // Corrupt an input of the property master.
    let parcels = dir.join("data/lake/raw/parcels");
    for entry in std::fs::read_dir(&parcels).expect("parcels") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "parquet") {
            std::fs::write(&path, b"not parquet").expect("corrupt");
        }
    }
    let (ok, out, err) = roi(dir, &["jobs", "run", "all"]);
    assert!(!ok, "{out}");
    assert!(err.contains("job property-master failed"), "{err}");
    assert!(err.contains("raw.parcels"), "{err}");
    assert!(out.contains("market-stats: blocked"), "{out}");
    assert!(!dir.join("data/lake/curated/property_master").exists());
    let (ok, out, _) = roi(dir, &["jobs", "status"]);
    assert!(ok && out.contains("failed"), "{out}");
}

#[test]
fn real_city_market_data_lands_and_gets_statistics() {
    let tmp = world();
    let dir = tmp.path();
    let (ok, out, err) = roi(dir, &["datasets", "import", "txhousing"]);
    assert!(ok, "{err}");
    assert!(out.contains("landed 8602 city-months"), "{out}");
    let (ok, out, err) = roi(dir, &["jobs", "run", "market-stats"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("46 cities from raw.city_market_monthly"),
        "{out}"
    );
    let (ok, out, err) = roi(
        dir,
        &[
            "sql",
            "SELECT round(avg(yoy_appreciation), 3) AS yoy FROM curated.market_stats \
             WHERE area_kind = 'city' AND area = 'Austin' AND month >= DATE '2013-01-01' \
             AND month < DATE '2014-01-01'",
            "--format",
            "csv",
        ],
    );
    assert!(ok, "{err}");
    let yoy: f64 = out
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        (0.05..0.12).contains(&yoy),
        "Austin 2013 appreciation {yoy}"
    );

    std::fs::write(
        dir.join("bad.csv"),
        "city,year,month,sales,median\nAustin,2013,13,1,2\n",
    )
    .expect("write");
    let (ok, _, err) = roi(
        dir,
        &["datasets", "import", "txhousing", "--file", "bad.csv"],
    );
    assert!(!ok && err.contains("line 2"), "{err}");
}

#[test]
fn the_avm_trains_on_real_sales_through_a_column_mapping() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/real");
    let csv = format!("{real}/ames.csv");
    let mapping = format!("{real}/ames.mapping.toml");
    let (ok, out, err) = roi(
        tmp.path(),
        &["train", "avm", "--sales-csv", &csv, "--mapping", &mapping],
    );
    assert!(ok, "{err}");
    assert!(out.contains("2930 sales read"), "{out}");
    let mdape = number_after(&out, "MdAPE");
    assert!(mdape > 3.0 && mdape < 15.0, "{out}");

    let (ok, _, err) = roi(tmp.path(), &["train", "avm", "--sales-csv", &csv]);
    assert!(!ok && err.contains("--mapping"), "{err}");
    std::fs::write(
        tmp.path().join("m.toml"),
        "price = \"Sale_Price\"\nsqft = \"Area\"\nsold_on = \"x\"\n",
    )
    .expect("write");
    let (ok, _, err) = roi(
        tmp.path(),
        &["train", "avm", "--sales-csv", &csv, "--mapping", "m.toml"],
    );
    assert!(!ok && err.contains("column \"Area\""), "{err}");
}

#[test]
fn a_missing_lake_is_explained() {
    let empty = tempfile::tempdir().expect("tempdir");
    let (ok, _, err) = roi(empty.path(), &["jobs", "run", "all"]);
    assert!(!ok && err.contains("roi demo"), "{err}");
}
