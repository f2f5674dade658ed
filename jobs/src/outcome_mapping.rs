//! Outcome data brought by users (a CRM export, a public buy/no-buy set), read through a
//! column mapping, so that the alert-model trainer runs on it unchanged and reports how
//! well it separates buyers from the rest.
//!
//! ```toml
//! label = "Purchase"          # the outcome column
//! positive = ["Yes"]          # its values that mean "it happened" [default: 1, true, yes]
//! exclude = ["rownames"]      # columns that are not features (ids, leaks)
//! # features = ["A", "B"]     # [default: every other numeric column]
//! # period = "Month"          # numeric time column for the time split
//! ```
//!
//! Without a `period`, rows are taken in file order and cut into 30 equal blocks that
//! play the part of months: the trainer's split then trains on the first 60%, calibrates
//! on the next 20% and tests on the last 20%, with no gap (a gap guards a label horizon,
//! which cross-sectional data has not). With a `period`, its distinct values are the
//! months, oldest first, and the usual 3-period gap applies.

use arrow::datatypes::DataType;
use roi_models::metrics::{precision_at_budget, roc_auc};
use roi_models::propensity::{PropensityConfig, PropensityModel, TrainingSet};
use serde::Deserialize;

use crate::mapping::{csv_batches, numbers, texts};
use crate::{Error, Result};

/// Row blocks standing in for months when the data has no time column.
const BLOCKS: usize = 30;
/// Share of test rows flagged for the headline precision.
pub const TOP_SHARE: f64 = 0.20;

/// Which columns hold the outcome and the features.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeMapping {
    /// Outcome column.
    pub label: String,
    /// Values of the outcome column that mean it happened.
    #[serde(default)]
    pub positive: Vec<String>,
    /// Columns never used as features.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Feature columns (default: every other numeric column).
    pub features: Option<Vec<String>>,
    /// Numeric time column for the split (default: file order).
    pub period: Option<String>,
}

fn bad(message: String) -> Error {
    Error::Data {
        table: "outcome CSV".into(),
        message,
    }
}

/// Parses a mapping file.
pub fn parse(text: &str) -> Result<OutcomeMapping> {
    toml::from_str(text).map_err(|e| Error::Usage(format!("outcome mapping: {e}")))
}

/// Reads `csv` through `mapping` into a training set.
pub fn read(csv: &str, mapping: &OutcomeMapping) -> Result<TrainingSet> {
    let (schema, csv_reader) = csv_batches(csv)?;
    if schema.index_of(&mapping.label).is_err() {
        return Err(bad(format!(
            "the mapping's label column {:?} is not in the CSV",
            mapping.label
        )));
    }
    let features: Vec<String> = match &mapping.features {
        Some(f) => f.clone(),
        None => schema
            .fields()
            .iter()
            .filter(|f| {
                f.name() != &mapping.label
                    && Some(f.name()) != mapping.period.as_ref()
                    && !mapping.exclude.contains(f.name())
                    && (f.data_type().is_numeric() || f.data_type() == &DataType::Boolean)
            })
            .map(|f| f.name().clone())
            .collect(),
    };
    if features.is_empty() {
        return Err(bad(
            "no feature column (numeric, not the label, not excluded)".into(),
        ));
    }
    let positive: Vec<String> = if mapping.positive.is_empty() {
        vec!["1".into(), "true".into(), "yes".into()]
    } else {
        mapping.positive.iter().map(|p| p.to_lowercase()).collect()
    };
    let mut set = TrainingSet {
        features: features.clone(),
        ..TrainingSet::default()
    };
    let mut periods: Vec<f64> = Vec::new();
    for batch in csv_reader {
        let batch = batch?;
        let columns: Vec<Vec<Option<f64>>> = features
            .iter()
            .map(|f| numbers(&batch, f))
            .collect::<Result<_>>()?;
        let labels = texts(&batch, &mapping.label)?;
        let period = match &mapping.period {
            Some(p) => Some(numbers(&batch, p)?),
            None => None,
        };
        for r in 0..batch.num_rows() {
            let Some(label) = &labels[r] else {
                return Err(bad(format!(
                    "row {} has no {} value",
                    set.labels.len() + 1,
                    mapping.label
                )));
            };
            set.labels.push(positive.contains(&label.to_lowercase()));
            set.rows
                .extend(columns.iter().map(|c| c[r].unwrap_or(f64::NAN)));
            if let Some(p) = &period {
                periods.push(
                    p[r].ok_or_else(|| bad(format!("row {} has no period", set.labels.len())))?,
                );
            }
        }
    }
    let n = set.labels.len();
    set.months = if mapping.period.is_some() {
        let mut values = periods.clone();
        values.sort_by(f64::total_cmp);
        values.dedup();
        periods
            .iter()
            .map(|p| values.partition_point(|v| v < p) as i32)
            .collect()
    } else {
        (0..n).map(|i| (i * BLOCKS / n.max(1)) as i32).collect()
    };
    Ok(set)
}

/// Trains and evaluates the alert-model trainer on `csv`; the lines to print.
pub fn train(csv: &str, mapping: &OutcomeMapping) -> Result<Vec<String>> {
    let set = read(csv, mapping)?;
    let config = PropensityConfig {
        horizon_months: if mapping.period.is_some() { 3 } else { 0 },
        min_confidence: 0.0,
        ..PropensityConfig::default()
    };
    let (model, report) =
        PropensityModel::fit(&set, &config).map_err(|e| bad(format!("cannot train: {e}")))?;
    let width = set.features.len();
    let (lo, hi) = report.split.test;
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (i, m) in set.months.iter().enumerate() {
        if (lo..=hi).contains(m) {
            rows.extend_from_slice(&set.rows[i * width..(i + 1) * width]);
            labels.push(set.labels[i]);
        }
    }
    let scores = model
        .score(&rows)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let top = precision_at_budget(&scores, &labels, TOP_SHARE)
        .ok_or_else(|| bad("the test part is empty".into()))?;
    let base = labels.iter().filter(|l| **l).count() as f64 / labels.len().max(1) as f64;
    let f = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    Ok(vec![
        format!(
            "{} rows, {} features, {} positive ({:.1}%); trained on {} rows in {:.1} s, calibrated on {}",
            set.len(),
            width,
            set.labels.iter().filter(|l| **l).count(),
            100.0 * set.labels.iter().filter(|l| **l).count() as f64 / set.len().max(1) as f64,
            report.train_rows,
            report.train_seconds,
            report.calibration_rows
        ),
        format!(
            "test part ({} rows, base rate {:.1}%): AUC {}, PR-AUC {}, precision in the top {:.0}% {:.1}% (lift {:.2}), recall {:.1}%",
            labels.len(),
            100.0 * base,
            f(roc_auc(&scores, &labels)),
            f(report.model.pr_auc),
            100.0 * TOP_SHARE,
            100.0 * top.precision,
            if base > 0.0 {
                top.precision / base
            } else {
                0.0
            },
            100.0 * top.recall
        ),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_labels_features_and_blocks() {
        let mut csv = String::from("id,x,noise,name,Bought\n");
        for i in 0..600 {
            let x = f64::from(i % 10);
            let bought = if i % 10 >= 7 && i % 3 != 0 {
                "Yes"
            } else {
                "No"
            };
            csv.push_str(&format!("{i},{x},{},n{i},{bought}\n", (i * 13) % 7));
        }
        let mapping =
            parse("label = \"Bought\"\npositive = [\"yes\"]\nexclude = [\"id\"]\n").unwrap();
        let set = read(&csv, &mapping).unwrap();
        assert_eq!(
            set.features,
            ["x", "noise"],
            "text columns are not features"
        );
        assert_eq!(set.len(), 600);
        assert_eq!(set.months[0], 0);
        assert_eq!(set.months[599], 29);
        assert!(set.labels.iter().any(|l| *l) && !set.labels.iter().all(|l| *l));
        let lines = train(&csv, &mapping).unwrap();
        assert!(lines[1].contains("AUC"), "{lines:?}");
    }

    #[test]
    fn mistakes_are_named() {
        let csv = "a,b\n1,2\n";
        let err = read(csv, &parse("label = \"c\"").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"c\" is not in the CSV"), "{err}");
        let err = parse("label = \"a\"\ncolour = 1").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        let mapping = parse("label = \"b\"\nfeatures = [\"a\", \"size\"]").unwrap();
        let err = read(csv, &mapping).unwrap_err().to_string();
        assert!(
            err.contains("\"size\", which the CSV does not have"),
            "{err}"
        );
        let err = read("a,b\n1,2\n3,\n", &parse("label = \"b\"").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("row 2 has no b value"), "{err}");
    }
}
