//! Scoring speed of the four promoted alert models, on the feature rows of a lake's
//! training table: batch throughput (contact-scores per second, all four models per
//! contact) on one core and on all cores, and single-contact latency (p50, p99).
//!
//! Usage: `cargo bench --bench scoring -- LAKE` after `roi train alerts` on that lake
//! (`benches/alerts.sh` does both).

use std::time::Instant;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Float64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use roi_features::catalog::{CATALOG_VERSION, FEATURES};
use roi_models::propensity::PropensityModel;
use roi_models::registry::Registry;

fn rows(lake: &std::path::Path) -> Vec<f64> {
    let dir = lake.join("features/alert_training");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run roi train alerts first", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    for path in files {
        let file = std::fs::File::open(&path).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let cols: Vec<_> = FEATURES
                .iter()
                .map(|f| {
                    batch
                        .column_by_name(f.name)
                        .expect("feature column")
                        .as_primitive::<Float64Type>()
                        .clone()
                })
                .collect();
            for r in 0..batch.num_rows() {
                out.extend(
                    cols.iter()
                        .map(|c| if c.is_null(r) { f64::NAN } else { c.value(r) }),
                );
            }
        }
    }
    out
}

fn score_all(models: &[PropensityModel], rows: &[f64]) -> f64 {
    let mut sum = 0.0;
    for m in models {
        sum += m.score(rows).expect("score").iter().sum::<f64>();
    }
    sum
}

fn main() {
    let lake = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .expect("usage: cargo bench --bench scoring -- LAKE");
    let lake = std::path::PathBuf::from(lake);
    let registry = Registry::at(&lake);
    let models: Vec<PropensityModel> = ["sell", "buy", "refinance", "investment"]
        .iter()
        .map(|name| {
            let card = registry
                .promoted(name)
                .expect("registry")
                .unwrap_or_else(|| panic!("no promoted {name} model; run roi train alerts"));
            registry
                .load_propensity(&card.id, CATALOG_VERSION)
                .expect("model")
                .1
        })
        .collect();
    let trees: usize = models.len();
    let rows = rows(&lake);
    let width = FEATURES.len();
    let n = rows.len() / width;
    println!("scoring {n} contacts with {trees} models ({width} features each)");

    for threads in [
        1,
        std::thread::available_parallelism().map_or(1, |t| t.get()),
    ] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let mut best = f64::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let checksum = pool.install(|| score_all(&models, &rows));
            let seconds = started.elapsed().as_secs_f64();
            assert!(checksum.is_finite());
            best = best.min(seconds);
        }
        println!(
            "  batch, {threads} thread(s): {:.3} s for {n} contacts -> {:.0} contact-scores/s ({:.0} per core)",
            best,
            n as f64 / best,
            n as f64 / best / threads as f64
        );
    }

    let sample = 20_000.min(n);
    let mut latencies: Vec<f64> = Vec::with_capacity(sample);
    for i in 0..sample {
        let row = &rows[(i * (n / sample)) * width..(i * (n / sample) + 1) * width];
        let started = Instant::now();
        let s = score_all(&models, row);
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(s.is_finite());
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "  single contact, all four models: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({sample} contacts)",
        q(0.50),
        q(0.99),
        latencies.last().copied().unwrap_or_default()
    );
}
