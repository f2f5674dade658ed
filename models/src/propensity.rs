//! Propensity models: the calibrated probability that a homeowner sells, buys,
//! refinances or buys an investment property within the next 90 days.
//!
//! Training is time-based. Snapshot months are split, oldest first, into a training
//! part, a calibration part and a test part, with a purge gap of one label horizon
//! between neighbours so that no training label looks into the months used to judge the
//! model. Gradient-boosted trees learn log-odds on the training part; Platt scaling on
//! the calibration part turns them into probabilities; the **operating point** (the
//! score above which an alert is raised) is chosen on the calibration part for an alert
//! budget; the test part, untouched until then, gives every reported number.

use serde::{Deserialize, Serialize};

use crate::gbdt::{Gbdt, GbdtConfig, Loss};
use crate::metrics::{
    AtBudget, at_threshold, average_precision, budget_share, expected_calibration_error,
    precision_at_budget, roc_auc,
};
use crate::{Error, Result};

/// Point-in-time feature rows with their outcome labels.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    /// Feature names, in row order.
    pub features: Vec<String>,
    /// Row-major values (`features.len()` per row), `NaN` when unknown.
    pub rows: Vec<f64>,
    /// Whether the outcome happened within the horizon after the snapshot.
    pub labels: Vec<bool>,
    /// Snapshot month of each row (months since 2000-01).
    pub months: Vec<i32>,
    /// The world's latent probability for each row, when known (synthetic worlds only).
    pub oracle: Option<Vec<f64>>,
}

impl TrainingSet {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn check(&self) -> Result<()> {
        let width = self.features.len();
        if width == 0 {
            return Err(Error::Data("the training set has no features".into()));
        }
        let n = self.labels.len();
        if self.rows.len() != n * width || self.months.len() != n {
            return Err(Error::Data(format!(
                "{n} labels, {} months and {} values do not form rows of {width} features",
                self.months.len(),
                self.rows.len()
            )));
        }
        if let Some(i) = self.rows.iter().position(|v| v.is_infinite()) {
            return Err(Error::Data(format!(
                "row {} has {} = {}; features must be finite numbers, or NaN where unknown",
                i / width + 1,
                self.features[i % width],
                self.rows[i]
            )));
        }
        let positives = self.labels.iter().filter(|l| **l).count();
        if n > 0 && (positives == 0 || positives == n) {
            return Err(Error::Data(format!(
                "all {n} labels are {}; a model needs both outcomes to learn from",
                if positives == 0 {
                    "negative"
                } else {
                    "positive"
                }
            )));
        }
        if let Some(o) = &self.oracle
            && o.len() != n
        {
            return Err(Error::Data(format!(
                "{} oracle scores for {n} rows",
                o.len()
            )));
        }
        Ok(())
    }

    /// The rows whose snapshot month is in `lo..=hi`, column by column (`[c * n + r]`),
    /// with their labels.
    fn columns(&self, lo: i32, hi: i32) -> (Vec<f64>, Vec<bool>) {
        let width = self.features.len();
        let rows: Vec<usize> = (0..self.months.len())
            .filter(|&i| (lo..=hi).contains(&self.months[i]))
            .collect();
        let mut data = Vec::with_capacity(rows.len() * width);
        for c in 0..width {
            data.extend(rows.iter().map(|&i| self.rows[i * width + c]));
        }
        (data, rows.iter().map(|&i| self.labels[i]).collect())
    }

    /// The rows whose snapshot month is in `lo..=hi`.
    fn subset(&self, lo: i32, hi: i32) -> TrainingSet {
        let width = self.features.len();
        let mut out = TrainingSet {
            features: self.features.clone(),
            oracle: self.oracle.as_ref().map(|_| Vec::new()),
            ..TrainingSet::default()
        };
        for (i, &m) in self.months.iter().enumerate() {
            if m < lo || m > hi {
                continue;
            }
            out.rows
                .extend_from_slice(&self.rows[i * width..(i + 1) * width]);
            out.labels.push(self.labels[i]);
            out.months.push(m);
            if let (Some(dst), Some(src)) = (out.oracle.as_mut(), self.oracle.as_ref()) {
                dst.push(src[i]);
            }
        }
        out
    }

    /// A content-based fingerprint (FNV-1a over every name, value, label and month, in
    /// row order): two training sets with the same rows give the same fingerprint
    /// wherever they are stored.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for f in &self.features {
            eat(f.as_bytes());
            eat(&[0]);
        }
        for v in &self.rows {
            eat(&v.to_bits().to_le_bytes());
        }
        for (l, m) in self.labels.iter().zip(&self.months) {
            eat(&[u8::from(*l)]);
            eat(&m.to_le_bytes());
        }
        format!("{h:016x}")
    }
}

/// How to train and where to operate.
#[derive(Debug, Clone)]
pub struct PropensityConfig {
    /// The trees.
    pub gbdt: GbdtConfig,
    /// Alert budget: alerts per contact and year (0.1 = one contact in ten a year).
    pub alerts_per_contact_year: f64,
    /// An alert is never raised where fewer than this share of alerts as strong came true
    /// (its confidence; see [`ConfidenceCurve`]).
    pub min_confidence: f64,
    /// Label horizon in months: the purge gap between the parts of the split.
    pub horizon_months: i32,
    /// Snapshot months in the test part.
    pub test_months: i32,
    /// Snapshot months in the calibration part.
    pub calibration_months: i32,
}

impl Default for PropensityConfig {
    fn default() -> Self {
        PropensityConfig {
            gbdt: GbdtConfig {
                iterations: 250,
                learning_rate: 0.04,
                max_depth: 4,
                min_leaf_weight: 2.0,
                l2: 5.0,
                subsample: 0.8,
                seed: 7,
                threads: None,
            },
            alerts_per_contact_year: 0.10,
            min_confidence: 0.5,
            horizon_months: 3,
            test_months: 6,
            calibration_months: 6,
        }
    }
}

/// Which months went where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training months (inclusive).
    pub train: (i32, i32),
    /// Calibration months (inclusive).
    pub calibration: (i32, i32),
    /// Test months (inclusive).
    pub test: (i32, i32),
}

impl Split {
    /// Splits `first..=last` from the end: test, gap, calibration, gap, training.
    /// Fails when fewer than `min_train` months would be left to train on.
    pub fn plan(first: i32, last: i32, config: &PropensityConfig) -> Result<Split> {
        let test = (last - config.test_months + 1, last);
        let cal_hi = test.0 - config.horizon_months;
        let calibration = (cal_hi - config.calibration_months + 1, cal_hi);
        let train = (first, calibration.0 - config.horizon_months);
        let need = config.test_months + config.calibration_months + 2 * config.horizon_months + 3;
        if train.1 - train.0 + 1 < 3 {
            return Err(Error::Data(format!(
                "{} months of snapshots are too few for a time split (need at least {need}: \
                 {} test, {} calibration, 3 training, and a {}-month gap between parts)",
                last - first + 1,
                config.test_months,
                config.calibration_months,
                config.horizon_months
            )));
        }
        Ok(Split {
            train,
            calibration,
            test,
        })
    }
}

/// Platt scaling: `p = 1 / (1 + exp(-(a·z + b)))` over the trees' log-odds `z`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Slope.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Platt {
    /// Fits by Newton's method with step halving on log loss, with Platt's smoothed
    /// targets so that a separable calibration set does not drive the slope to infinity.
    pub fn fit(z: &[f64], labels: &[bool]) -> Platt {
        let pos = labels.iter().filter(|l| **l).count() as f64;
        let neg = labels.len() as f64 - pos;
        let hi = (pos + 1.0) / (pos + 2.0);
        let lo = 1.0 / (neg + 2.0);
        let t: Vec<f64> = labels.iter().map(|l| if *l { hi } else { lo }).collect();
        let loss = |a: f64, b: f64| -> f64 {
            z.iter()
                .zip(&t)
                .map(|(zi, ti)| {
                    // log(1 + e^x) − t·x, computed without overflow.
                    let x = a * zi + b;
                    x.max(0.0) + (-x.abs()).exp().ln_1p() - ti * x
                })
                .sum()
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
            for (zi, ti) in z.iter().zip(&t) {
                let p = sigmoid(a * zi + b);
                let d = p - ti;
                let w = p * (1.0 - p);
                ga += d * zi;
                gb += d;
                haa += w * zi * zi;
                hab += w * zi;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut moved = false;
            while step > 1e-6 {
                let next = loss(a - step * da, b - step * db);
                if next <= current {
                    a -= step * da;
                    b -= step * db;
                    moved = current - next > 1e-12 * current.abs().max(1.0);
                    current = next;
                    break;
                }
                step /= 2.0;
            }
            if !moved {
                break;
            }
        }
        Platt { a, b }
    }

    /// The calibrated probability of log-odds `z`.
    pub fn apply(&self, z: f64) -> f64 {
        sigmoid(self.a * z + self.b)
    }
}

/// How often alerts at least this strong came true: `(score, precision)` points over the
/// calibration part, strongest first. An alert's **confidence** is the precision of the
/// calibration rows scoring at least as high as it did (read at the nearest point whose
/// set contains them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceCurve {
    /// `(threshold, precision of rows scoring >= threshold)`, thresholds descending.
    pub points: Vec<(f64, f64)>,
}

/// Fewest rows a curve point stands on.
const CURVE_MIN_ROWS: usize = 10;

impl ConfidenceCurve {
    /// Builds the curve from calibrated scores and labels.
    pub fn fit(scores: &[f64], labels: &[bool]) -> ConfidenceCurve {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut points = Vec::new();
        let mut tp = 0usize;
        let mut next = CURVE_MIN_ROWS;
        for (k, &i) in order.iter().enumerate() {
            tp += usize::from(labels[i]);
            let n = k + 1;
            // A point where the score drops (ties stay together), at geometric spacing.
            let boundary = order.get(n).is_none_or(|&j| scores[j] < scores[i]);
            // Every row ends the curve, so that any score has a point covering it.
            if (n >= next || n == order.len()) && boundary {
                points.push((scores[i], tp as f64 / n as f64));
                next = (n as f64 * 1.15).ceil() as usize;
            }
        }
        ConfidenceCurve { points }
    }

    /// The confidence of an alert scoring `score`: the precision at the strongest point
    /// whose rows include every row scoring at least `score`.
    pub fn confidence(&self, score: f64) -> f64 {
        self.points
            .iter()
            .find(|(t, _)| *t <= score)
            .or(self.points.last())
            .map_or(0.0, |p| p.1)
    }

    /// The lowest threshold above which every point keeps precision `>= floor`
    /// (`None` when even the strongest rows fall short).
    pub fn threshold_for(&self, floor: f64) -> Option<f64> {
        let mut threshold = None;
        for (t, p) in &self.points {
            if *p < floor {
                break;
            }
            threshold = Some(*t);
        }
        threshold
    }
}

/// Where alerts are raised, and why there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    /// Calibrated probability at or above which an alert is raised (`None`: no score
    /// reaches the confidence floor, so no alert is raised).
    pub threshold: Option<f64>,
    /// The threshold the alert budget alone would give (on the calibration part).
    pub budget_threshold: f64,
    /// The lowest threshold whose alerts reach the confidence floor (on the calibration
    /// part); `None` when none does.
    pub confidence_threshold: Option<f64>,
    /// `budget` or `min_confidence`: which of the two set the threshold.
    pub bound_by: String,
    /// The budget, alerts per contact and year.
    pub alerts_per_contact_year: f64,
    /// The confidence floor.
    pub min_confidence: f64,
}

/// Measures of one scorer on the test part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Rows.
    pub rows: usize,
    /// Positive rows.
    pub positives: usize,
    /// Area under the ROC curve.
    pub auc: Option<f64>,
    /// Area under the precision–recall curve (average precision).
    pub pr_auc: Option<f64>,
    /// Precision at the operating point.
    pub precision: f64,
    /// Recall at the operating point.
    pub recall: f64,
    /// Alerts per contact and year at the operating point (monthly snapshots, one alert
    /// per contact and type per 30 days).
    pub alerts_per_contact_year: f64,
    /// Expected calibration error, 10 bins.
    pub ece: f64,
}

fn evaluate(scores: &[f64], labels: &[bool], at: AtBudget) -> Evaluation {
    Evaluation {
        rows: labels.len(),
        positives: labels.iter().filter(|l| **l).count(),
        auc: roc_auc(scores, labels),
        pr_auc: average_precision(scores, labels),
        precision: at.precision,
        recall: at.recall,
        alerts_per_contact_year: at.flagged_share * 12.0,
        ece: expected_calibration_error(scores, labels, 10),
    }
}

/// What training measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropensityReport {
    /// Which months went where.
    pub split: Split,
    /// Rows and positives in the training part.
    pub train_rows: usize,
    /// Positives in the training part.
    pub train_positives: usize,
    /// Rows in the calibration part.
    pub calibration_rows: usize,
    /// Where alerts are raised.
    pub operating_point: OperatingPoint,
    /// The model on the test part.
    pub model: Evaluation,
    /// The world's latent probabilities on the same rows, at the same budget (synthetic
    /// worlds only): the best any model could do.
    pub oracle: Option<Evaluation>,
    /// Seconds spent training the trees.
    pub train_seconds: f64,
}

/// A trained, calibrated propensity model.
#[derive(Debug)]
pub struct PropensityModel {
    /// Feature names the rows must follow.
    pub features: Vec<String>,
    /// The trees (log-odds).
    pub trees: Gbdt,
    /// Calibration.
    pub platt: Platt,
    /// Where alerts are raised.
    pub operating_point: OperatingPoint,
    /// Confidence of an alert by its score.
    pub curve: ConfidenceCurve,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    features: Vec<String>,
    platt: Platt,
    operating_point: OperatingPoint,
    curve: ConfidenceCurve,
    trees: String,
}

impl PropensityModel {
    /// Trains, calibrates and evaluates on `set` as described in the module docs.
    pub fn fit(
        set: &TrainingSet,
        config: &PropensityConfig,
    ) -> Result<(PropensityModel, PropensityReport)> {
        set.check()?;
        let (Some(&first), Some(&last)) = (set.months.iter().min(), set.months.iter().max()) else {
            return Err(Error::Data("the training set is empty".into()));
        };
        let split = Split::plan(first, last, config)?;
        // The training part, the largest, goes straight into the trees' column layout.
        let (train_columns, train_labels) = set.columns(split.train.0, split.train.1);
        let cal = set.subset(split.calibration.0, split.calibration.1);
        let test = set.subset(split.test.0, split.test.1);
        for (part, labels, (lo, hi)) in [
            ("training", &train_labels, split.train),
            ("calibration", &cal.labels, split.calibration),
            ("test", &test.labels, split.test),
        ] {
            if !labels.iter().any(|l| *l) || labels.iter().all(|l| *l) {
                return Err(Error::Data(format!(
                    "the {part} part ({} rows, months {lo} to {hi}) has only one outcome; more rows or a longer history are needed",
                    labels.len(),
                )));
            }
        }
        let width = set.features.len();
        let targets: Vec<f64> = train_labels
            .iter()
            .map(|l| f64::from(u8::from(*l)))
            .collect();
        let started = std::time::Instant::now();
        let trees = Gbdt::train_column_major(
            &train_columns,
            targets.len(),
            width,
            &targets,
            Loss::Logistic,
            &config.gbdt,
        )?;
        drop(train_columns);
        let train_seconds = started.elapsed().as_secs_f64();
        let cal_z = trees.predict(&cal.rows)?;
        let platt = Platt::fit(&cal_z, &cal.labels);
        let cal_scores: Vec<f64> = cal_z.into_iter().map(|z| platt.apply(z)).collect();
        let share = budget_share(config.alerts_per_contact_year, 12.0);
        let budget_threshold =
            precision_at_budget(&cal_scores, &cal.labels, share).map_or(1.0, |a| a.threshold);
        let curve = ConfidenceCurve::fit(&cal_scores, &cal.labels);
        let confidence_threshold = curve.threshold_for(config.min_confidence);
        let (threshold, bound_by) = match confidence_threshold {
            Some(c) if c <= budget_threshold => (Some(budget_threshold), "budget"),
            other => (other, "min_confidence"),
        };
        let operating_point = OperatingPoint {
            threshold,
            budget_threshold,
            confidence_threshold,
            bound_by: bound_by.to_owned(),
            alerts_per_contact_year: config.alerts_per_contact_year,
            min_confidence: config.min_confidence,
        };
        let model = PropensityModel {
            features: set.features.clone(),
            trees,
            platt,
            operating_point,
            curve,
        };
        let test_scores = model.score(&test.rows)?;
        let evaluation = evaluate(
            &test_scores,
            &test.labels,
            at_threshold(
                &test_scores,
                &test.labels,
                threshold.unwrap_or(f64::INFINITY),
            ),
        );
        // The oracle is held to the same alert volume as the model on the same rows.
        let oracle = test.oracle.as_ref().and_then(|o| {
            let flagged = evaluation.alerts_per_contact_year / 12.0;
            let at = if flagged > 0.0 {
                precision_at_budget(o, &test.labels, flagged)?
            } else {
                at_threshold(o, &test.labels, f64::INFINITY)
            };
            Some(evaluate(o, &test.labels, at))
        });
        let report = PropensityReport {
            split,
            train_rows: train_labels.len(),
            train_positives: train_labels.iter().filter(|l| **l).count(),
            calibration_rows: cal.len(),
            operating_point: model.operating_point.clone(),
            model: evaluation,
            oracle,
            train_seconds,
        };
        Ok((model, report))
    }

    /// Calibrated probabilities for row-major `rows` in [`PropensityModel::features`] order.
    pub fn score(&self, rows: &[f64]) -> Result<Vec<f64>> {
        Ok(self
            .trees
            .predict(rows)?
            .into_iter()
            .map(|z| self.platt.apply(z))
            .collect())
    }

    /// For each row, the features that pushed its score up the most, strongest first:
    /// `(feature index, log-odds contribution)`, at most `top` of them, positive only.
    pub fn explain(&self, rows: &[f64], top: usize) -> Result<Vec<Vec<(usize, f64)>>> {
        let width = self.features.len();
        let contributions = self.trees.contributions(rows)?;
        Ok(contributions
            .chunks_exact(width + 1)
            .map(|row| {
                let mut pushed: Vec<(usize, f64)> = row[..width]
                    .iter()
                    .copied()
                    .enumerate()
                    .filter(|(_, c)| *c > 0.0)
                    .collect();
                pushed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                pushed.truncate(top);
                pushed
            })
            .collect())
    }

    /// The model as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(&Saved {
            features: self.features.clone(),
            platt: self.platt,
            operating_point: self.operating_point.clone(),
            curve: self.curve.clone(),
            trees: self.trees.to_json()?,
        })
        .map_err(|e| Error::Model(e.to_string()))
    }

    /// Reads a model written by [`PropensityModel::to_json`].
    pub fn from_json(text: &str) -> Result<PropensityModel> {
        let saved: Saved = serde_json::from_str(text).map_err(|e| Error::Model(e.to_string()))?;
        let trees = Gbdt::from_json(&saved.trees)?;
        if trees.features() != saved.features.len() {
            return Err(Error::Model(format!(
                "the trees read {} features but the model lists {}",
                trees.features(),
                saved.features.len()
            )));
        }
        Ok(PropensityModel {
            features: saved.features,
            trees,
            platt: saved.platt,
            operating_point: saved.operating_point,
            curve: saved.curve,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Rows whose label follows the first feature, over `months` months.
    fn synthetic(months: i32, per_month: usize) -> TrainingSet {
        let mut set = TrainingSet {
            features: vec!["x".into(), "noise".into()],
            oracle: Some(Vec::new()),
            ..TrainingSet::default()
        };
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for m in 0..months {
            for _ in 0..per_month {
                let x = next();
                let p = sigmoid(8.0 * x - 6.0);
                set.rows.extend([x, next()]);
                set.labels.push(next() < p);
                set.months.push(m);
                set.oracle.as_mut().unwrap().push(p);
            }
        }
        set
    }

    #[test]
    fn split_leaves_a_horizon_between_parts() {
        let c = PropensityConfig::default();
        let s = Split::plan(0, 29, &c).unwrap();
        assert_eq!(s.test, (24, 29));
        assert_eq!(s.calibration, (16, 21));
        assert_eq!(s.train, (0, 13));
        assert!(s.calibration.0 - s.train.1 >= c.horizon_months);
        assert!(s.test.0 - s.calibration.1 >= c.horizon_months);
        let err = Split::plan(0, 15, &c).unwrap_err().to_string();
        assert!(err.contains("too few"), "{err}");
    }

    #[test]
    fn platt_recovers_a_known_calibration() {
        // Log-odds z with true probability sigmoid(0.5 z - 1).
        let mut z = Vec::new();
        let mut y = Vec::new();
        for i in 0..20_000 {
            let zi = (i % 200) as f64 / 20.0 - 5.0;
            let p = sigmoid(0.5 * zi - 1.0);
            z.push(zi);
            // Deterministic labels with the right frequency per z value.
            y.push(((i / 200) as f64 + 0.5) / 100.0 < p);
        }
        let platt = Platt::fit(&z, &y);
        assert!((platt.a - 0.5).abs() < 0.05, "{platt:?}");
        assert!((platt.b + 1.0).abs() < 0.1, "{platt:?}");
    }

    #[test]
    fn learns_a_signal_calibrates_and_round_trips() {
        let set = synthetic(30, 400);
        let config = PropensityConfig {
            alerts_per_contact_year: 1.2,
            min_confidence: 0.0,
            ..PropensityConfig::default()
        };
        let (model, report) = PropensityModel::fit(&set, &config).unwrap();
        assert!(report.model.auc.unwrap() > 0.8, "{report:?}");
        assert!(report.model.ece < 0.05, "{report:?}");
        let oracle = report.oracle.as_ref().unwrap();
        assert!(oracle.auc.unwrap() >= report.model.auc.unwrap() - 0.02);
        assert_eq!(report.operating_point.bound_by, "budget");
        // About 10% of rows flagged on the test part too.
        assert!(
            (report.model.alerts_per_contact_year - 1.2).abs() < 0.4,
            "{report:?}"
        );
        let back = PropensityModel::from_json(&model.to_json().unwrap()).unwrap();
        let rows = &set.rows[..20];
        assert_eq!(model.score(rows).unwrap(), back.score(rows).unwrap());
        // A high-x row is explained by x, not by the noise feature.
        let why = model.explain(&[0.95, 0.5], 2).unwrap();
        assert_eq!(why[0].first().map(|w| w.0), Some(0), "{why:?}");
    }

    #[test]
    fn a_confidence_floor_above_the_budget_sets_the_threshold() {
        let set = synthetic(30, 300);
        let config = PropensityConfig {
            alerts_per_contact_year: 1.2,
            min_confidence: 0.99,
            ..PropensityConfig::default()
        };
        let (model, report) = PropensityModel::fit(&set, &config).unwrap();
        let op = &report.operating_point;
        assert_eq!(op.bound_by, "min_confidence");
        assert!(
            op.threshold.is_none_or(|t| t > op.budget_threshold),
            "{op:?}"
        );
        assert_eq!(op.threshold, op.confidence_threshold);
        // Alerts at the threshold are as confident as the floor asks (or none are raised).
        if let Some(t) = op.threshold {
            assert!(model.curve.confidence(t) >= 0.99);
        }
    }

    #[test]
    fn confidence_is_the_precision_of_stronger_rows() {
        // Scores 1..=100; the top 20 are all positive, then one in four.
        let scores: Vec<f64> = (1..=100).map(f64::from).collect();
        let labels: Vec<bool> = (1..=100).map(|i| i > 80 || i % 4 == 0).collect();
        let curve = ConfidenceCurve::fit(&scores, &labels);
        assert_eq!(curve.points[0], (91.0, 1.0));
        assert_eq!(curve.confidence(100.0), 1.0);
        assert_eq!(curve.confidence(85.0), 1.0);
        assert!(curve.confidence(1.0) < 0.5);
        assert_eq!(curve.threshold_for(0.99), Some(81.0));
        assert_eq!(curve.threshold_for(1.01), None);
        let points = &curve.points;
        assert!(points.windows(2).all(|w| w[0].0 > w[1].0), "{points:?}");
    }

    #[test]
    fn fingerprint_follows_content() {
        let a = synthetic(3, 10);
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.rows[0] += 1.0;
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn bad_training_sets_say_what_and_where() {
        let config = PropensityConfig::default();
        let fail = |set: &TrainingSet| PropensityModel::fit(set, &config).unwrap_err().to_string();
        let mut set = synthetic(30, 50);
        set.labels.iter_mut().for_each(|l| *l = false);
        assert!(
            fail(&set).contains("all 1500 labels are negative"),
            "{}",
            fail(&set)
        );
        set.labels.iter_mut().for_each(|l| *l = true);
        assert!(fail(&set).contains("all 1500 labels are positive"));

        let mut set = synthetic(30, 50);
        set.rows[7] = f64::INFINITY;
        let err = fail(&set);
        assert!(err.contains("row 4 has noise = inf"), "{err}");
        // NaN is a missing value, not an error.
        set.rows[7] = f64::NAN;
        assert!(PropensityModel::fit(&set, &config).is_ok());

        // Positives only in the early months: the test part has one outcome.
        let mut set = synthetic(30, 50);
        for (l, m) in set.labels.iter_mut().zip(&set.months) {
            *l = *l && *m < 20;
        }
        let err = fail(&set);
        assert!(
            err.contains("the test part") && err.contains("only one outcome"),
            "{err}"
        );

        let mut set = synthetic(30, 50);
        set.rows.pop();
        assert!(fail(&set).contains("do not form rows of 2 features"));
    }
}
