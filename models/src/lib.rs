//! # roi-models: training, evaluation and scoring of ROI's models
//!
//! ROI scores homeowners with four calibrated propensity models (`sell`, `buy`,
//! `refinance`, `investment`, 90-day horizon) and values homes with an AVM. This crate
//! holds the models and what they share: [`gbdt`], the gradient-boosted trees engine;
//! [`avm`], the valuation model with its conformal interval and accuracy measures; and
//! [`metrics`], the evaluation measures used for every classifier and for the synthetic
//! world's oracle (AUC, average precision, precision and recall at an alert budget,
//! calibration error); [`propensity`], the calibrated alert models with their time split
//! and operating point; and [`registry`], the versioned model artefacts in the lake.
//!
//! ```
//! use roi_models::metrics::{roc_auc, precision_at_budget};
//! let scores = [0.9, 0.8, 0.3, 0.1];
//! let labels = [true, false, true, false];
//! assert_eq!(roc_auc(&scores, &labels), Some(0.75));
//! let at = precision_at_budget(&scores, &labels, 0.25).unwrap();
//! assert_eq!(at.precision, 1.0);
//! ```

pub mod avm;
mod error;
pub mod gbdt;
pub mod metrics;
pub mod propensity;
pub mod registry;

pub use error::{Error, Result};
