//! Scoring: the promoted alert models applied to every feature snapshot the stream
//! emits, and the alerts that result.
//!
//! Snapshots of one step are scored together (one matrix per model, vectorised). A
//! snapshot whose calibrated score reaches the model's operating point raises an alert
//! unless the same homeowner had an alert of the same kind within the cooldown. Each
//! alert names its top reasons: the features that pushed its score up the most, in plain
//! words, followed by the signals that fired for the homeowner that day. The alert id is
//! derived from kind, tenant, homeowner and day, so processing the same events again
//! yields the same ids and a sink can ignore repeats.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use roi_features::catalog::{CATALOG_VERSION, FEATURES};
use roi_features::context::ContextIndex;
use roi_features::day::{Day, day_of_date, end_of_day_ms};
use roi_features::snapshot::Snapshot;
use roi_models::propensity::PropensityModel;
use roi_models::registry::Registry;
use roi_schemas::{Alert, AlertStatus, ContactId, IntentKind, OrgId, SignalFiring, StrEnum};

use crate::{Error, Result};

/// Days within which a homeowner gets at most one alert of a kind.
pub const DEFAULT_COOLDOWN_DAYS: i32 = 30;
/// Feature reasons per alert.
const TOP_FEATURES: usize = 3;
/// Features examined for reasons (zeros are skipped, so more are looked at than kept).
const EXAMINED_FEATURES: usize = 8;

/// Where alerts go besides the lake (the serving layer's store, a Kafka topic).
///
/// Contract: `send` may see an alert id again after a restart; it must then leave the
/// alert as it was (idempotent by id).
pub trait AlertSink: Send {
    /// Delivers a step's alerts, in (day, homeowner, kind) order.
    fn send(&mut self, alerts: &[Alert]) -> Result<()>;
}

/// One promoted model, ready to score.
struct Live {
    kind: IntentKind,
    id: String,
    model: PropensityModel,
}

/// The promoted models and the alert cooldown state.
pub struct Scorer {
    models: Vec<Live>,
    cooldown_days: i32,
    last: HashMap<(i64, usize), Day>,
    /// Kinds without a promoted model (not scored).
    pub missing: Vec<IntentKind>,
}

/// A feature value in words: integers plainly, fractions with two decimals.
fn value_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// A feature that pushed a score, in words: its description, window and value. A zero
/// (nothing happened) is not given as a reason, since it reads as none.
fn reason(feature: usize, value: f64) -> Option<String> {
    let def = &FEATURES[feature];
    if value == 0.0 {
        return None;
    }
    let window = match def.window {
        "point-in-time" | "lifetime" => String::new(),
        w => format!(", {w}"),
    };
    Some(format!(
        "{}{window}: {} {}",
        def.description,
        value_text(value),
        def.unit
    ))
}

impl Scorer {
    /// Loads the promoted version of each alert model from the lake's registry. A
    /// promoted model trained on another feature catalog is an error (retrain it); a kind
    /// without a promoted model is left out and listed in [`Scorer::missing`].
    pub fn load(lake: &Path, cooldown_days: i32) -> Result<Scorer> {
        let registry = Registry::at(lake);
        let mut models = Vec::new();
        let mut missing = Vec::new();
        for &kind in IntentKind::ALL {
            let promoted = registry
                .promoted(kind.as_str())
                .map_err(|e| Error::Config(e.to_string()))?;
            let Some(card) = promoted else {
                missing.push(kind);
                continue;
            };
            let (card, model) = registry
                .load_propensity(&card.id, CATALOG_VERSION)
                .map_err(|e| Error::Config(e.to_string()))?;
            let catalog: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
            if model.features != catalog {
                return Err(Error::Config(format!(
                    "model {} reads other features than this build's catalog {CATALOG_VERSION} lists \
                     (was the catalog changed without a new version?); retrain it \
                     (roi train alerts --model {})",
                    card.id, card.name
                )));
            }
            models.push(Live {
                kind,
                id: card.id,
                model,
            });
        }
        Ok(Scorer {
            models,
            cooldown_days,
            last: HashMap::new(),
            missing,
        })
    }

    /// Ids of the models in use.
    pub fn model_ids(&self) -> Vec<String> {
        self.models.iter().map(|m| m.id.clone()).collect()
    }

    /// Each promoted model's calibrated probability for every snapshot, in snapshot
    /// order (no cooldown, no threshold: what campaigns segment on).
    pub fn probabilities(&self, snapshots: &[Snapshot]) -> Result<Vec<(IntentKind, Vec<f64>)>> {
        let mut rows = Vec::with_capacity(snapshots.len() * FEATURES.len());
        for s in snapshots {
            rows.extend(s.features.0.iter().map(|v| v.unwrap_or(f64::NAN)));
        }
        self.models
            .iter()
            .map(|live| {
                let scores = if snapshots.is_empty() {
                    Vec::new()
                } else {
                    live.model
                        .score(&rows)
                        .map_err(|e| Error::Config(format!("scoring with {}: {e}", live.id)))?
                };
                Ok((live.kind, scores))
            })
            .collect()
    }

    /// Whether any model is loaded.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Scores `snapshots` (sorted by day, then homeowner) and returns the alerts they
    /// raise, in (day, homeowner, kind) order. `signals` are the firings of the same step,
    /// quoted as reasons.
    pub fn score(
        &mut self,
        snapshots: &[Snapshot],
        signals: &[SignalFiring],
        context: &ContextIndex,
    ) -> Result<Vec<Alert>> {
        if snapshots.is_empty() || self.models.is_empty() {
            return Ok(Vec::new());
        }
        let width = FEATURES.len();
        let mut rows = Vec::with_capacity(snapshots.len() * width);
        for s in snapshots {
            rows.extend(s.features.0.iter().map(|v| v.unwrap_or(f64::NAN)));
        }
        let mut fired: HashMap<(i64, Day), Vec<&str>> = HashMap::new();
        for f in signals {
            fired
                .entry((f.contact_id.0, day_of_date(f.as_of_date)))
                .or_default()
                .push(&f.reason);
        }
        let mut alerts = Vec::new();
        for (k, live) in self.models.iter().enumerate() {
            let Some(threshold) = live.model.operating_point.threshold else {
                continue;
            };
            let scores = live
                .model
                .score(&rows)
                .map_err(|e| Error::Config(format!("scoring with {}: {e}", live.id)))?;
            let hits: Vec<usize> = (0..snapshots.len())
                .filter(|&i| scores[i] >= threshold)
                .collect();
            if hits.is_empty() {
                continue;
            }
            let hit_rows: Vec<f64> = hits
                .iter()
                .flat_map(|&i| rows[i * width..(i + 1) * width].iter().copied())
                .collect();
            let why = live
                .model
                .explain(&hit_rows, EXAMINED_FEATURES)
                .map_err(|e| Error::Config(format!("explaining with {}: {e}", live.id)))?;
            for (&i, pushed) in hits.iter().zip(why) {
                let s = &snapshots[i];
                let key = (s.contact_id, k);
                if self
                    .last
                    .get(&key)
                    .is_some_and(|d| s.day - d < self.cooldown_days)
                {
                    continue;
                }
                self.last.insert(key, s.day);
                let mut reasons: Vec<String> = pushed
                    .iter()
                    .filter_map(|(f, _)| reason(*f, s.features.0[*f]?))
                    .take(TOP_FEATURES)
                    .collect();
                if let Some(sig) = fired.get(&(s.contact_id, s.day)) {
                    reasons.extend(sig.iter().map(|r| (*r).to_owned()));
                }
                let mut seen = std::collections::HashSet::new();
                reasons.retain(|r| seen.insert(r.clone()));
                if reasons.is_empty() {
                    reasons.push(format!(
                        "score {:.2} at or above the operating point {threshold:.2}, from many small factors",
                        scores[i]
                    ));
                }
                let created_at = DateTime::<Utc>::from_timestamp_millis(end_of_day_ms(s.day))
                    .expect("a stream day is a valid time");
                alerts.push(Alert {
                    alert_id: format!(
                        "{}-{}-{}-{}",
                        live.kind.as_str(),
                        s.org_id,
                        s.contact_id,
                        created_at.format("%Y%m%d")
                    ),
                    org_id: OrgId(s.org_id),
                    contact_id: ContactId(s.contact_id),
                    property_id: context.property_of(ContactId(s.contact_id)),
                    kind: live.kind,
                    score: scores[i].clamp(0.0, 1.0),
                    confidence: live.model.curve.confidence(scores[i]).clamp(0.0, 1.0),
                    reasons,
                    model_version: live.id.clone(),
                    created_at,
                    status: AlertStatus::New,
                    assignee: None,
                });
            }
        }
        alerts.sort_by(|a, b| {
            (a.created_at, a.contact_id, a.kind.as_str()).cmp(&(
                b.created_at,
                b.contact_id,
                b.kind.as_str(),
            ))
        });
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roi_features::catalog::F;
    use roi_models::propensity::{PropensityConfig, TrainingSet};
    use roi_models::registry::{NewModel, TrainingData};

    #[test]
    fn a_model_whose_features_differ_from_the_catalog_is_refused() {
        // A small model on two made-up features, registered under the current catalog
        // version, as if the catalog had changed without a new version.
        let mut set = TrainingSet {
            features: vec!["x".into(), "y".into()],
            ..TrainingSet::default()
        };
        for i in 0..30 * 40 {
            let x = f64::from(i % 10);
            set.rows.extend([x, f64::from(i % 7)]);
            set.labels.push(i % 10 >= 7 && i % 3 != 0);
            set.months.push(i / 40);
        }
        let (model, _) = PropensityModel::fit(&set, &PropensityConfig::default()).expect("fit");
        let lake = tempfile::tempdir().expect("tempdir");
        let registry = Registry::at(lake.path());
        let card = registry
            .register(NewModel {
                name: "sell",
                created_at: "2026-01-01T00:00:00Z".into(),
                catalog_version: CATALOG_VERSION,
                features: model.features.clone(),
                training: TrainingData {
                    table: "test".into(),
                    rows: set.len(),
                    positives: 0,
                    fingerprint: set.fingerprint(),
                    as_of: None,
                },
                summary: String::new(),
                model_json: model.to_json().expect("json"),
                metrics_json: "{}".into(),
            })
            .expect("register");
        registry.promote(&card.id).expect("promote");
        let err = Scorer::load(lake.path(), DEFAULT_COOLDOWN_DAYS)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("sell-v1 reads other features") && err.contains("--model sell"),
            "{err}"
        );
        // Without promoted models nothing is scored, and every kind is listed as missing.
        let empty = tempfile::tempdir().expect("tempdir");
        let scorer = Scorer::load(empty.path(), DEFAULT_COOLDOWN_DAYS).expect("load");
        assert!(scorer.is_empty());
        assert_eq!(scorer.missing.len(), 4);
    }

    #[test]
    fn reasons_name_the_window_and_skip_zeros() {
        assert_eq!(
            reason(F::RefinanceCalc30d as usize, 3.0).as_deref(),
            Some("Refinance calculator uses, 30d: 3 events")
        );
        assert_eq!(reason(F::RefinanceCalc90d as usize, 0.0), None);
        let text = reason(F::EquityPct as usize, 41.257).unwrap_or_default();
        assert!(text.ends_with(": 41.26 percent"), "{text}");
    }
}
