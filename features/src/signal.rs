//! Signals: human-readable patterns in a homeowner's features, each with a strength and a
//! confidence in [0, 1] and a one-line reason.
//!
//! Three patterns: a **spike** compares a recent count with the homeowner's own baseline
//! over the rest of the last 90 days (a Poisson z-score); a **trend** is a sustained rise of
//! the 7-day over the 30-day rate; a **threshold** crossing fires when a value is above its
//! threshold now but was not 30 days ago (counts: 7 days ago).

use roi_schemas::EventType as E;

use crate::catalog::{F, FeatureVector};
use crate::context::Facts;
use crate::day::Day;
use crate::history::{History, TypeSet};

/// Signals at or above this strength are reported.
pub const FIRE_AT: f64 = 0.5;

/// Signal families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalCategory {
    /// Behaviour in the app and e-mail.
    Engagement,
    /// Loan, equity, rates.
    Financial,
    /// Life events and the market.
    LifeEventMarket,
}

impl SignalCategory {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalCategory::Engagement => "engagement",
            SignalCategory::Financial => "financial",
            SignalCategory::LifeEventMarket => "life_event_market",
        }
    }
}

/// How a signal detects its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Against the homeowner's own baseline.
    Spike,
    /// Sustained rise.
    Trend,
    /// Crossing a fixed threshold.
    Threshold,
}

impl Pattern {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Spike => "spike",
            Pattern::Trend => "trend",
            Pattern::Threshold => "threshold",
        }
    }
}

/// What a signal may look at.
pub struct SignalInputs<'a> {
    /// Today's features.
    pub features: &'a FeatureVector,
    /// Behaviour (for "was it already above threshold a week ago?").
    pub history: &'a dyn History,
    /// Context 30 days ago.
    pub facts_before: &'a Facts,
    /// The day.
    pub at: Day,
}

/// A signal's reading.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// How pronounced the pattern is, in [0, 1].
    pub strength: f64,
    /// How much to trust it (history length, amount of evidence), in [0, 1].
    pub confidence: f64,
    /// One line a person understands.
    pub reason: String,
}

/// One signal of the catalog.
#[derive(Clone, Copy)]
pub struct SignalDef {
    /// Name.
    pub name: &'static str,
    /// Family.
    pub category: SignalCategory,
    /// Pattern.
    pub pattern: Pattern,
    /// What it means.
    pub description: &'static str,
    /// The definition; `None` when the pattern is absent.
    pub evaluate: fn(&SignalInputs<'_>) -> Option<Reading>,
}

impl std::fmt::Debug for SignalDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalDef")
            .field("name", &self.name)
            .finish()
    }
}

fn clamp01(x: f64) -> f64 {
    x.clamp(0.0, 1.0)
}

/// A spike of `recent` events over `w` days against the rest of the last 90 days.
/// Returns the reading and the usual count per `w` days.
fn spike(s: &SignalInputs<'_>, recent: F, last90: F, w: f64) -> Option<(f64, f64, f64)> {
    let x = s.features.or0(recent);
    if x < 2.0 {
        return None;
    }
    let observed = s.features.or0(F::ObservedDays).min(90.0);
    let base_days = (observed - w).max(7.0);
    let usual = (s.features.or0(last90) - x).max(0.0) / base_days * w;
    let z = (x - usual) / (usual + 0.25).sqrt();
    let strength = clamp01((z - 1.0) / 4.0);
    let confidence = clamp01((observed - w) / 60.0).max(0.1) * (1.0 - (-x / 2.0).exp());
    (strength > 0.0).then_some((strength, confidence, usual))
}

fn times(x: f64) -> String {
    format!("{x:.0}\u{d7}")
}

/// Count-threshold crossing: at least `k` events of `types` in `days` now, fewer a week ago.
fn crossing(s: &SignalInputs<'_>, types: TypeSet, days: i32, k: u32) -> Option<u32> {
    let now = s.history.count(types, days, s.at);
    let before = s.history.count(types, days, s.at - 7);
    (now >= k && before < k).then_some(now)
}

/// The signal catalog.
pub const SIGNALS: &[SignalDef] = &[
    SignalDef {
        name: "valuation_spike",
        category: SignalCategory::Engagement,
        pattern: Pattern::Spike,
        description: "Checking the home's value far more than usual",
        evaluate: |s| {
            let (strength, confidence, usual) =
                spike(s, F::ValuationViews7d, F::ValuationViews90d, 7.0)?;
            let x = s.features.or0(F::ValuationViews7d);
            Some(Reading {
                strength,
                confidence,
                reason: format!(
                    "viewed valuation {} this week vs {usual:.1}/week usual",
                    times(x)
                ),
            })
        },
    },
    SignalDef {
        name: "listing_spike",
        category: SignalCategory::Engagement,
        pattern: Pattern::Spike,
        description: "Browsing for-sale listings far more than usual",
        evaluate: |s| {
            let (strength, confidence, usual) =
                spike(s, F::ListingViews7d, F::ListingViews90d, 7.0)?;
            let x = s.features.or0(F::ListingViews7d);
            Some(Reading {
                strength,
                confidence,
                reason: format!("viewed {x:.0} listings this week vs {usual:.1}/week usual"),
            })
        },
    },
    SignalDef {
        name: "document_revisit",
        category: SignalCategory::Engagement,
        pattern: Pattern::Spike,
        description: "Going back to closing documents (deed, disclosure) unusually often",
        evaluate: |s| {
            let (strength, confidence, usual) =
                spike(s, F::DocumentViews30d, F::DocumentViews90d, 30.0)?;
            let x = s.features.or0(F::DocumentViews30d);
            Some(Reading {
                strength,
                confidence,
                reason: format!(
                    "opened documents {} in 30 days vs {usual:.1} usual",
                    times(x)
                ),
            })
        },
    },
    SignalDef {
        name: "email_reengagement",
        category: SignalCategory::Engagement,
        pattern: Pattern::Spike,
        description: "Opening campaign e-mails much more than usual",
        evaluate: |s| {
            let (strength, confidence, usual) = spike(s, F::EmailOpens30d, F::EmailOpens90d, 30.0)?;
            let x = s.features.or0(F::EmailOpens30d);
            Some(Reading {
                strength,
                confidence,
                reason: format!("opened {x:.0} e-mails in 30 days vs {usual:.1} usual"),
            })
        },
    },
    SignalDef {
        name: "engagement_trend",
        category: SignalCategory::Engagement,
        pattern: Pattern::Trend,
        description: "Overall activity rising over the last weeks",
        evaluate: |s| {
            let week = s.features.or0(F::Events7d);
            let trend = s.features.or0(F::EventsTrend);
            if week < 5.0 {
                return None;
            }
            let strength = clamp01((trend - 1.0) / 3.0);
            let confidence = clamp01(s.features.or0(F::ObservedDays) / 60.0) * clamp01(week / 10.0);
            (strength > 0.0).then(|| Reading {
                strength,
                confidence,
                reason: format!("{week:.0} events this week, {trend:.1}\u{d7} the 30-day pace"),
            })
        },
    },
    SignalDef {
        name: "refinance_opportunity",
        category: SignalCategory::Financial,
        pattern: Pattern::Threshold,
        description: "Loan rate now well above the market rate",
        evaluate: |s| {
            let spread = s.features.get(F::RateSpread)?;
            let before = s
                .facts_before
                .loan_rate
                .zip(s.facts_before.market_rate)
                .map(|(l, m)| l - m);
            if spread < 0.75
                || before.is_some_and(|b| b >= 0.75)
                || s.features.or0(F::LoanAgeMonths) < 6.0
            {
                return None;
            }
            Some(Reading {
                strength: clamp01((spread - 0.5) / 1.0),
                confidence: 0.9,
                reason: format!("loan rate {spread:.2} points above the market rate"),
            })
        },
    },
    SignalDef {
        name: "refinance_research",
        category: SignalCategory::Financial,
        pattern: Pattern::Spike,
        description: "Using the refinance calculator more than usual",
        evaluate: |s| {
            let (strength, confidence, usual) =
                spike(s, F::RefinanceCalc30d, F::RefinanceCalc90d, 30.0)?;
            let x = s.features.or0(F::RefinanceCalc30d);
            Some(Reading {
                strength,
                confidence,
                reason: format!(
                    "ran the refinance calculator {} in 30 days vs {usual:.1} usual",
                    times(x)
                ),
            })
        },
    },
    SignalDef {
        name: "equity_milestone",
        category: SignalCategory::Financial,
        pattern: Pattern::Threshold,
        description: "Equity crossed 50% of the home's value",
        evaluate: |s| {
            let eq = s.features.get(F::EquityPct)?;
            let before = s
                .facts_before
                .value
                .map(|v| 100.0 * (v - s.facts_before.balance.unwrap_or(0.0)) / v);
            if eq < 50.0 || before.is_none_or(|b| b >= 50.0) {
                return None;
            }
            Some(Reading {
                strength: clamp01(0.5 + (eq - 50.0) / 40.0),
                confidence: 0.7,
                reason: format!("equity reached {eq:.0}% of the estimated value"),
            })
        },
    },
    SignalDef {
        name: "purchase_calculator",
        category: SignalCategory::Financial,
        pattern: Pattern::Threshold,
        description: "Started running purchase-mortgage numbers",
        evaluate: |s| {
            let k = crossing(s, TypeSet::of(&[E::MortgageCalcUsed]), 30, 2)?;
            Some(Reading {
                strength: clamp01(0.4 + 0.15 * f64::from(k)),
                confidence: clamp01(f64::from(k) / 4.0),
                reason: format!("ran the mortgage calculator {k} times in 30 days"),
            })
        },
    },
    SignalDef {
        name: "out_of_area_interest",
        category: SignalCategory::LifeEventMarket,
        pattern: Pattern::Threshold,
        description: "Searching homes in other areas (possible relocation)",
        evaluate: |s| {
            let k = crossing(s, TypeSet::of(&[E::OutOfAreaSearch]), 30, 2)?;
            let share = s.features.or0(F::OutOfAreaShare30d);
            Some(Reading {
                strength: clamp01(0.3 + 0.15 * f64::from(k) + 0.3 * share),
                confidence: clamp01(f64::from(k) / 4.0),
                reason: format!(
                    "{k} searches outside the home's area in 30 days ({:.0}% of searching)",
                    share * 100.0
                ),
            })
        },
    },
    SignalDef {
        name: "investment_research",
        category: SignalCategory::LifeEventMarket,
        pattern: Pattern::Threshold,
        description: "Studying rental returns",
        evaluate: |s| {
            let k = crossing(s, TypeSet::of(&[E::RentalAnalysisViewed]), 30, 2)?;
            Some(Reading {
                strength: clamp01(0.4 + 0.15 * f64::from(k)),
                confidence: clamp01(f64::from(k) / 4.0),
                reason: format!("viewed {k} rental analyses in 30 days"),
            })
        },
    },
    SignalDef {
        name: "move_window",
        category: SignalCategory::LifeEventMarket,
        pattern: Pattern::Threshold,
        description: "Ownership reached the years when owners most often move",
        evaluate: |s| {
            let years = s.features.get(F::TenureYears)?;
            let before = s.facts_before.tenure_years.unwrap_or(0.0);
            if !(7.0..=7.0 + 30.0 / 365.25).contains(&years) || before >= 7.0 {
                return None;
            }
            Some(Reading {
                strength: 0.5,
                confidence: 0.5,
                reason: format!("has owned the home {years:.1} years"),
            })
        },
    },
    SignalDef {
        name: "hot_market",
        category: SignalCategory::LifeEventMarket,
        pattern: Pattern::Threshold,
        description: "The home's market turned hot (fast appreciation)",
        evaluate: |s| {
            let a = s.features.get(F::Appreciation12m)?;
            if a < 0.06 || s.facts_before.appreciation_12m.is_none_or(|b| b >= 0.06) {
                return None;
            }
            Some(Reading {
                strength: clamp01(0.5 + (a - 0.06) * 5.0),
                confidence: 0.8,
                reason: format!("local prices up {:.1}% in a year", a * 100.0),
            })
        },
    },
];

/// Evaluates every signal; returns `(index into SIGNALS, reading)` for those that fire.
pub fn fire(inputs: &SignalInputs<'_>) -> Vec<(usize, Reading)> {
    SIGNALS
        .iter()
        .enumerate()
        .filter_map(|(i, s)| (s.evaluate)(inputs).map(|r| (i, r)))
        .filter(|(_, r)| r.strength >= FIRE_AT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Inputs;
    use crate::history::{EventHistory, Touch};

    #[test]
    fn catalog_has_eleven_plus_signals_in_three_categories() {
        assert!(SIGNALS.len() >= 11);
        for c in [
            SignalCategory::Engagement,
            SignalCategory::Financial,
            SignalCategory::LifeEventMarket,
        ] {
            assert!(SIGNALS.iter().any(|s| s.category == c), "{c:?}");
        }
        for p in [Pattern::Spike, Pattern::Trend, Pattern::Threshold] {
            assert!(SIGNALS.iter().any(|s| s.pattern == p), "{p:?}");
        }
    }

    #[test]
    fn valuation_spike_fires_with_a_human_reason() {
        let day = 20_000;
        let ms = |d: i32, k: i64| i64::from(d) * 86_400_000 + k * 1000;
        let mut events: Vec<Touch> = (0..12)
            .map(|k| Touch {
                ts_ms: ms(day - 80 + k * 6, 0),
                kind: E::PageView as u8,
                session: None,
                document: None,
                listing: None,
            })
            .collect();
        events.push(Touch {
            ts_ms: ms(day - 40, 0),
            kind: E::ValuationViewed as u8,
            session: None,
            document: None,
            listing: None,
        });
        for k in 0..6 {
            events.push(Touch {
                ts_ms: ms(day - 1, k),
                kind: E::ValuationViewed as u8,
                session: None,
                document: None,
                listing: None,
            });
        }
        let h = EventHistory { events };
        let facts = Facts::default();
        let fv = FeatureVector::compute(&Inputs {
            history: &h,
            facts: &facts,
            at: day,
        });
        let fired = fire(&SignalInputs {
            features: &fv,
            history: &h,
            facts_before: &facts,
            at: day,
        });
        let (i, r) = fired
            .iter()
            .find(|(i, _)| SIGNALS[*i].name == "valuation_spike")
            .expect("fires");
        assert_eq!(SIGNALS[*i].pattern, Pattern::Spike);
        assert!(
            r.reason
                .starts_with("viewed valuation 6\u{d7} this week vs 0.1/week usual"),
            "{}",
            r.reason
        );
        assert!((0.5..=1.0).contains(&r.strength) && (0.0..=1.0).contains(&r.confidence));
    }
}
