//! Gradient-boosted decision trees: the one engine behind the AVM (and, next, the
//! propensity models), wrapped so that the rest of ROI never names the library.
//!
//! Rows are row-major `f64` slices with `NaN` for missing values; each split learns
//! which side missing values go. The engine is `forust-ml` (pure Rust, histogram
//! splits, squared and logistic losses, JSON model files).

use forust_ml::gradientbooster::ContributionsMethod;
use forust_ml::objective::ObjectiveType;
use forust_ml::sampler::SampleMethod;
use forust_ml::{GradientBooster, Matrix};

use crate::{Error, Result};

/// The loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Squared error (regression).
    Squared,
    /// Log loss (binary classification; predictions are log-odds).
    Logistic,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct GbdtConfig {
    /// Boosting rounds.
    pub iterations: usize,
    /// Shrinkage per round.
    pub learning_rate: f32,
    /// Maximum tree depth.
    pub max_depth: usize,
    /// Minimum hessian sum in a leaf.
    pub min_leaf_weight: f32,
    /// L2 regularisation of leaf weights.
    pub l2: f32,
    /// Row subsample per tree.
    pub subsample: f32,
    /// Seed of the row sampling.
    pub seed: u64,
    /// Threads (`None`: all cores).
    pub threads: Option<usize>,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        GbdtConfig {
            iterations: 600,
            learning_rate: 0.05,
            max_depth: 6,
            min_leaf_weight: 5.0,
            l2: 1.0,
            subsample: 0.8,
            seed: 7,
            threads: None,
        }
    }
}

/// Rows from which prediction runs on all cores.
const PARALLEL_ROWS: usize = 2048;

/// A trained model.
pub struct Gbdt {
    booster: GradientBooster,
    features: usize,
}

impl std::fmt::Debug for Gbdt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gbdt")
            .field("features", &self.features)
            .field("trees", &self.booster.trees.len())
            .finish()
    }
}

/// Row-major rows to the column-major layout the engine reads.
fn column_major(rows: &[f64], features: usize) -> Result<(Vec<f64>, usize)> {
    if features == 0 || !rows.len().is_multiple_of(features) {
        return Err(Error::Data(format!(
            "{} values do not form rows of {features} features",
            rows.len()
        )));
    }
    let n = rows.len() / features;
    let mut out = vec![0.0; rows.len()];
    for (r, row) in rows.chunks_exact(features).enumerate() {
        for (c, v) in row.iter().enumerate() {
            out[c * n + r] = *v;
        }
    }
    Ok((out, n))
}

impl Gbdt {
    /// Trains on row-major `rows` (`features` values each) against `targets`.
    pub fn train(
        rows: &[f64],
        features: usize,
        targets: &[f64],
        loss: Loss,
        config: &GbdtConfig,
    ) -> Result<Gbdt> {
        let (data, n) = column_major(rows, features)?;
        Gbdt::train_column_major(&data, n, features, targets, loss, config)
    }

    /// Trains on `n` rows given column by column (`data[c * n + r]`): the layout the
    /// engine reads, so large training sets need not be held twice.
    pub fn train_column_major(
        data: &[f64],
        n: usize,
        features: usize,
        targets: &[f64],
        loss: Loss,
        config: &GbdtConfig,
    ) -> Result<Gbdt> {
        if features == 0 || data.len() != n * features {
            return Err(Error::Data(format!(
                "{} values do not form {n} rows of {features} features",
                data.len()
            )));
        }
        if n != targets.len() {
            return Err(Error::Data(format!(
                "{n} rows but {} targets",
                targets.len()
            )));
        }
        if n < 10 {
            return Err(Error::Data(format!(
                "{n} rows are too few to train on (need at least 10)"
            )));
        }
        if let Some(bad) = targets.iter().find(|t| !t.is_finite()) {
            return Err(Error::Data(format!("target {bad} is not a finite number")));
        }
        let objective = match loss {
            Loss::Squared => ObjectiveType::SquaredLoss,
            Loss::Logistic => ObjectiveType::LogLoss,
        };
        let mut booster = GradientBooster::default()
            .set_objective_type(objective)
            .set_iterations(config.iterations)
            .set_learning_rate(config.learning_rate)
            .set_max_depth(config.max_depth)
            .set_min_leaf_weight(config.min_leaf_weight)
            .set_l2(config.l2)
            .set_subsample(config.subsample)
            // The engine samples rows only when told how; without this, `subsample` is
            // silently ignored.
            .set_sample_method(if config.subsample < 1.0 {
                SampleMethod::Random
            } else {
                SampleMethod::None
            })
            .set_seed(config.seed)
            .set_num_threads(config.threads);
        let matrix = Matrix::new(data, n, features);
        booster
            .fit_unweighted(&matrix, targets, None)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Gbdt { booster, features })
    }

    /// Number of features a row must have.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Predictions (log-odds for [`Loss::Logistic`]) for row-major `rows`. Large
    /// batches are spread over the cores; small ones (a single homeowner) stay on the
    /// caller's thread, where handing work out would cost more than it saves.
    pub fn predict(&self, rows: &[f64]) -> Result<Vec<f64>> {
        let (data, n) = column_major(rows, self.features)?;
        Ok(self
            .booster
            .predict(&Matrix::new(&data, n, self.features), n >= PARALLEL_ROWS))
    }

    /// How much each feature moved each prediction (in the prediction's units: log-odds
    /// for [`Loss::Logistic`]), by the path-average method: row-major, `features + 1`
    /// values per row, the last being the bias, each row summing to its prediction.
    pub fn contributions(&self, rows: &[f64]) -> Result<Vec<f64>> {
        let (data, n) = column_major(rows, self.features)?;
        Ok(self.booster.predict_contributions(
            &Matrix::new(&data, n, self.features),
            ContributionsMethod::Average,
            n >= PARALLEL_ROWS,
        ))
    }

    /// The model as JSON.
    pub fn to_json(&self) -> Result<String> {
        let trees = self
            .booster
            .json_dump()
            .map_err(|e| Error::Model(e.to_string()))?;
        serde_json::to_string(&serde_json::json!({"features": self.features, "booster": trees}))
            .map_err(|e| Error::Model(e.to_string()))
    }

    /// Reads a model written by [`Gbdt::to_json`].
    pub fn from_json(text: &str) -> Result<Gbdt> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::Model(e.to_string()))?;
        let features = value
            .get("features")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| Error::Model("no feature count".into()))?;
        let trees = value
            .get("booster")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Error::Model("no booster".into()))?;
        let booster = GradientBooster::from_json(trees).map_err(|e| Error::Model(e.to_string()))?;
        Ok(Gbdt {
            booster,
            features: usize::try_from(features).map_err(|e| Error::Model(e.to_string()))?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_step_and_survives_a_json_round_trip() {
        // y = 10 when x0 > 0.5 else 0; x1 is noise, sometimes missing.
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..400 {
            let x0 = f64::from(i % 100) / 100.0;
            let x1 = if i % 7 == 0 {
                f64::NAN
            } else {
                f64::from(i % 13)
            };
            rows.extend([x0, x1]);
            y.push(if x0 > 0.5 { 10.0 } else { 0.0 });
        }
        let config = GbdtConfig {
            iterations: 100,
            learning_rate: 0.3,
            threads: Some(1),
            ..GbdtConfig::default()
        };
        let model = Gbdt::train(&rows, 2, &y, Loss::Squared, &config).unwrap();
        let p = model.predict(&[0.9, f64::NAN, 0.1, 3.0]).unwrap();
        assert!((p[0] - 10.0).abs() < 0.5 && p[1].abs() < 0.5, "{p:?}");
        let back = Gbdt::from_json(&model.to_json().unwrap()).unwrap();
        assert_eq!(back.predict(&[0.9, f64::NAN, 0.1, 3.0]).unwrap(), p);
        // Contributions sum to the prediction, and the step feature carries the weight.
        for m in [&model, &back] {
            let c = m.contributions(&[0.9, f64::NAN, 0.1, 3.0]).unwrap();
            assert_eq!(c.len(), 6);
            for (row, pred) in c.chunks(3).zip(&p) {
                assert!((row.iter().sum::<f64>() - pred).abs() < 1e-6, "{c:?}");
                assert!(row[0].abs() > row[1].abs(), "{c:?}");
            }
        }
    }

    #[test]
    fn bad_shapes_are_named() {
        let config = GbdtConfig::default();
        let err = Gbdt::train(&[1.0, 2.0, 3.0], 2, &[1.0], Loss::Squared, &config).unwrap_err();
        assert!(err.to_string().contains("rows of 2 features"), "{err}");
        let err = Gbdt::train(&[1.0; 4], 2, &[1.0, 2.0], Loss::Squared, &config).unwrap_err();
        assert!(err.to_string().contains("too few"), "{err}");
    }
}
