//! The automated valuation model: a gradient-boosted regression on index-adjusted log
//! price, with a split-conformal prediction interval.
//!
//! The target is `ln(price) - ln(index)`, the metro price index of the month before the
//! sale (the latest one published then), so the trees learn what a home is worth in
//! constant-index dollars and a valuation at any date multiplies back by that date's
//! index. The interval is split-conformal: the `coverage` quantile of absolute log
//! residuals on a calibration set the model never trained on (more recent than the
//! training rows), which gives the stated coverage on exchangeable data without
//! assuming a residual distribution.

use serde::{Deserialize, Serialize};

use crate::gbdt::{Gbdt, GbdtConfig, Loss};
use crate::{Error, Result};

/// Feature names, in the order of every row.
pub const FEATURES: [&str; 12] = [
    "log_sqft",
    "beds",
    "baths",
    "log_lot_sqft",
    "age_years",
    "condition",
    "property_type",
    "lat",
    "lon",
    "zip_log_median_12m",
    "cell_log_median_12m",
    "zip_turnover_12m",
];

/// A trained AVM.
#[derive(Debug)]
pub struct AvmModel {
    gbdt: Gbdt,
    /// Nominal coverage of the interval (e.g. 0.8).
    pub coverage: f64,
    /// Half-width of the interval on the log scale.
    pub half_width: f64,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    features: Vec<String>,
    coverage: f64,
    half_width: f64,
    gbdt: String,
}

/// A valuation on the natural scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Valuation {
    /// Point estimate.
    pub value: f64,
    /// Lower bound of the interval.
    pub low: f64,
    /// Upper bound of the interval.
    pub high: f64,
}

impl AvmModel {
    /// Trains on `train` rows (row-major, [`FEATURES`] order) against adjusted log
    /// prices, then calibrates the interval on `calibrate`.
    pub fn fit(
        train: (&[f64], &[f64]),
        calibrate: (&[f64], &[f64]),
        config: &GbdtConfig,
        coverage: f64,
    ) -> Result<AvmModel> {
        if !(0.0..1.0).contains(&coverage) || coverage <= 0.0 {
            return Err(Error::Data(format!(
                "coverage {coverage} must be within (0, 1)"
            )));
        }
        let gbdt = Gbdt::train(train.0, FEATURES.len(), train.1, Loss::Squared, config)?;
        let predicted = gbdt.predict(calibrate.0)?;
        if predicted.len() != calibrate.1.len() || predicted.is_empty() {
            return Err(Error::Data(format!(
                "{} calibration rows for {} targets",
                predicted.len(),
                calibrate.1.len()
            )));
        }
        let mut residuals: Vec<f64> = predicted
            .iter()
            .zip(calibrate.1)
            .map(|(p, y)| (y - p).abs())
            .collect();
        residuals.sort_by(f64::total_cmp);
        let n = residuals.len();
        // The ceil((n + 1) * coverage)-th smallest residual (1-based), capped at the largest.
        let k = (((n + 1) as f64) * coverage).ceil() as usize;
        let half_width = residuals[k.clamp(1, n) - 1];
        Ok(AvmModel {
            gbdt,
            coverage,
            half_width,
        })
    }

    /// Predicted adjusted log prices for row-major rows.
    pub fn predict_log(&self, rows: &[f64]) -> Result<Vec<f64>> {
        self.gbdt.predict(rows)
    }

    /// Valuations for rows, given each row's log index (`ln(index)` at the valuation date).
    pub fn value(&self, rows: &[f64], log_index: &[f64]) -> Result<Vec<Valuation>> {
        let p = self.predict_log(rows)?;
        Ok(p.iter()
            .zip(log_index)
            .map(|(p, i)| Valuation {
                value: (p + i).exp(),
                low: (p + i - self.half_width).exp(),
                high: (p + i + self.half_width).exp(),
            })
            .collect())
    }

    /// The model as JSON (feature list, interval and trees).
    pub fn to_json(&self) -> Result<String> {
        let saved = Saved {
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            coverage: self.coverage,
            half_width: self.half_width,
            gbdt: self.gbdt.to_json()?,
        };
        serde_json::to_string(&saved).map_err(|e| Error::Model(e.to_string()))
    }

    /// Reads [`AvmModel::to_json`]; refuses a model trained on other features.
    pub fn from_json(text: &str) -> Result<AvmModel> {
        let saved: Saved = serde_json::from_str(text).map_err(|e| Error::Model(e.to_string()))?;
        if saved.features != FEATURES {
            return Err(Error::Model(format!(
                "the model was trained on features {:?}, this build uses {:?}; retrain it (roi train avm)",
                saved.features, FEATURES
            )));
        }
        Ok(AvmModel {
            gbdt: Gbdt::from_json(&saved.gbdt)?,
            coverage: saved.coverage,
            half_width: saved.half_width,
        })
    }
}

/// Accuracy of valuations against sale prices.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Sales compared.
    pub n: usize,
    /// Median absolute percentage error.
    pub mdape: f64,
    /// Share of valuations within 10% of the price.
    pub ppe10: f64,
    /// Share within 20%.
    pub ppe20: f64,
    /// Share of prices inside the interval.
    pub coverage: f64,
}

/// Compares valuations with the prices they estimate.
pub fn accuracy(valuations: &[Valuation], prices: &[f64]) -> Option<Accuracy> {
    if valuations.is_empty() || valuations.len() != prices.len() {
        return None;
    }
    let n = prices.len();
    let mut ape: Vec<f64> = valuations
        .iter()
        .zip(prices)
        .map(|(v, p)| (v.value - p).abs() / p)
        .collect();
    ape.sort_by(f64::total_cmp);
    let mdape = if n % 2 == 1 {
        ape[n / 2]
    } else {
        (ape[n / 2 - 1] + ape[n / 2]) / 2.0
    };
    let share = |f: &dyn Fn(usize) -> bool| (0..n).filter(|&i| f(i)).count() as f64 / n as f64;
    Some(Accuracy {
        n,
        mdape,
        ppe10: share(&|i| ape[i] <= 0.10),
        ppe20: share(&|i| ape[i] <= 0.20),
        coverage: share(&|i| valuations[i].low <= prices[i] && prices[i] <= valuations[i].high),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn valuation(value: f64) -> Valuation {
        Valuation {
            value,
            low: value * 0.9,
            high: value * 1.1,
        }
    }

    #[test]
    fn accuracy_by_hand() {
        let v = [
            valuation(105.0),
            valuation(80.0),
            valuation(100.0),
            valuation(130.0),
        ];
        let prices = [100.0, 100.0, 100.0, 100.0];
        let a = accuracy(&v, &prices).unwrap();
        // APEs 0.05, 0.20, 0.00, 0.30 -> sorted 0, .05, .2, .3 -> median .125
        assert!((a.mdape - 0.125).abs() < 1e-12);
        assert_eq!(a.ppe10, 0.5);
        assert_eq!(a.ppe20, 0.75);
        assert_eq!(a.coverage, 0.5);
        assert_eq!(accuracy(&v, &prices[..3]), None);
    }

    #[test]
    fn conformal_interval_covers_as_promised_and_round_trips() {
        // y = 2*x0 + noise; the interval should cover about 80% of fresh rows.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let mut make = |n: usize| {
            let mut rows = Vec::new();
            let mut y = Vec::new();
            for _ in 0..n {
                let x0 = next();
                let mut row = vec![0.0; FEATURES.len()];
                row[0] = x0;
                rows.extend(row);
                y.push(2.0 * x0 + (next() - 0.5));
            }
            (rows, y)
        };
        let (tr, ytr) = make(800);
        let (ca, yca) = make(400);
        let (te, yte) = make(2000);
        let config = GbdtConfig {
            iterations: 60,
            learning_rate: 0.1,
            threads: Some(1),
            ..GbdtConfig::default()
        };
        let model = AvmModel::fit((&tr, &ytr), (&ca, &yca), &config, 0.8).unwrap();
        let p = model.predict_log(&te).unwrap();
        let covered = p
            .iter()
            .zip(&yte)
            .filter(|(p, y)| (*y - *p).abs() <= model.half_width)
            .count() as f64
            / yte.len() as f64;
        assert!((0.74..0.86).contains(&covered), "coverage {covered}");
        let back = AvmModel::from_json(&model.to_json().unwrap()).unwrap();
        assert_eq!(back.predict_log(&te[..24]).unwrap(), p[..2]);
        let err = AvmModel::fit((&tr, &ytr), (&ca, &yca), &config, 1.5).unwrap_err();
        assert!(err.to_string().contains("coverage 1.5"), "{err}");
    }

    #[test]
    fn a_model_for_other_features_is_refused() {
        let text = r#"{"features":["a"],"coverage":0.8,"half_width":0.1,"gbdt":"{}"}"#;
        let err = AvmModel::from_json(text).unwrap_err();
        assert!(err.to_string().contains("retrain"), "{err}");
    }
}
