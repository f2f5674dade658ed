//! Latent intent: the hidden process that decides who sells, buys, refinances or invests.
//!
//! For every homeowner and each [`IntentKind`] a monthly Markov chain runs:
//!
//! ```text
//!   Idle --h--> Considering(age 0) --> Considering(age 1) --> ...
//!    |                 |  \__ abandon (r) __> Idle      (a false start)
//!    |                 \__ outcome (q[age]) __> Idle     (then dormant for a while)
//!    \__ spontaneous outcome (s) __> Idle                (nothing visible beforehand)
//! ```
//!
//! The entry hazard `h` depends on covariates (tenure, equity, rate spread, loan age,
//! market appreciation, life events, personal traits). While *considering*, a homeowner's
//! app behaviour shifts towards the kind's pages, unless the episode is *silent* (30%).
//! [`p90`] is the exact probability, under this chain with covariates held at their current
//! values, of at least one outcome within the next three months: the oracle score.

use roi_schemas::IntentKind;

use crate::housing::rate_refinance_hazard;
use crate::random::{WorldRng, chance};

/// The four intent kinds, in model order.
pub const KINDS: [IntentKind; 4] = [
    IntentKind::Sell,
    IntentKind::Buy,
    IntentKind::Refinance,
    IntentKind::Investment,
];
/// Outcome probability per month of considering, by episode age (last value repeats).
pub const COMPLETE: [f64; 3] = [0.12, 0.22, 0.30];
/// Probability per month that a considering homeowner gives up.
pub const ABANDON: f64 = 0.10;
/// Share of episodes that leave no trace in behaviour.
pub const SILENT_SHARE: f64 = 0.3;
/// Spontaneous outcomes (no episode) relative to the entry hazard.
pub const SPONTANEOUS: f64 = 0.2;
/// Months over which the oracle probability is computed (≈ 90 days).
pub const HORIZON_MONTHS: usize = 3;

/// State of one chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    /// Not thinking about it.
    Idle,
    /// Thinking about it for `age` months; `silent` episodes leave no behavioural trace.
    Considering {
        /// Months since the episode began.
        age: u8,
        /// Whether behaviour stays at baseline.
        silent: bool,
    },
}

impl Chain {
    /// Whether the episode shows in behaviour, and for how long it has run.
    pub fn visible_age(self) -> Option<u8> {
        match self {
            Chain::Considering { age, silent: false } => Some(age),
            _ => None,
        }
    }
}

fn completion(age: u8) -> f64 {
    COMPLETE[(age as usize).min(COMPLETE.len() - 1)]
}

/// What drives the entry hazards this month.
#[derive(Debug, Clone, Copy, Default)]
pub struct Covariates {
    /// Whether the homeowner still owns the home the organization knows.
    pub owns_home: bool,
    /// Years since purchase.
    pub tenure_years: f64,
    /// (value − balance) / value.
    pub equity_share: f64,
    /// Current loan rate minus market rate, points (0 without a loan).
    pub rate_spread: f64,
    /// Whether a mortgage is outstanding.
    pub has_loan: bool,
    /// Months since the current loan was originated.
    pub loan_age_months: i32,
    /// Metro price change over the last 12 months.
    pub appreciation: f64,
    /// Market 30-year rate, percent.
    pub market_rate: f64,
    /// A life event (job move, family change) in the last six months.
    pub life_event: bool,
    /// Whether the homeowner is considering selling (movers also buy).
    pub considering_sell: bool,
}

/// Stable personal traits that scale the hazards.
#[derive(Debug, Clone, Copy)]
pub struct Traits {
    /// Propensity to move (multiplier).
    pub mobility: f64,
    /// Propensity to invest (multiplier).
    pub investor: f64,
    /// Attention to rates (multiplier).
    pub rate_watcher: f64,
}

fn clamp1(x: f64) -> f64 {
    x.clamp(-1.0, 1.0)
}

/// Monthly entry hazard of `kind`.
pub fn entry_hazard(kind: IntentKind, c: &Covariates, t: &Traits) -> f64 {
    let equity = c.equity_share;
    let h = match kind {
        IntentKind::Sell => {
            if !c.owns_home {
                return 0.0;
            }
            let tenure = match c.tenure_years {
                y if y < 2.0 => 0.35,
                y if y < 5.0 => 0.9,
                y if y < 12.0 => 1.6,
                y if y < 20.0 => 1.2,
                _ => 0.9,
            };
            let lock_in = (-0.3 * (-c.rate_spread).max(0.0)).exp();
            0.0055
                * tenure
                * (0.6 * clamp1((equity - 0.3) / 0.4)).exp()
                * lock_in
                * if c.life_event { 4.0 } else { 1.0 }
                * (3.0 * c.appreciation).exp()
                * t.mobility
        }
        IntentKind::Buy => {
            0.0030
                * if c.life_event { 3.0 } else { 1.0 }
                * if c.considering_sell { 4.0 } else { 1.0 }
                * (0.3 * clamp1((equity - 0.3) / 0.4)).exp()
                * (-0.15 * (c.market_rate - 5.0)).exp()
                * t.mobility
        }
        IntentKind::Refinance => {
            if !c.owns_home {
                return 0.0;
            }
            if !c.has_loan {
                return 0.0004;
            }
            let seasoning = if c.loan_age_months < 6 { 0.1 } else { 1.0 };
            let cash_out = 0.0012 * (0.5 * clamp1((equity - 0.3) / 0.4)).exp();
            seasoning * (cash_out + rate_refinance_hazard(c.rate_spread) * t.rate_watcher)
        }
        IntentKind::Investment => {
            0.0011
                * (0.9 * clamp1((equity - 0.4) / 0.4)).exp()
                * t.investor
                * (2.0 * c.appreciation).exp()
                * if c.tenure_years > 5.0 { 1.3 } else { 1.0 }
        }
    };
    h.min(0.5)
}

/// Advances a chain by one month. Returns the new state and whether the outcome happened.
pub fn step(rng: &mut WorldRng, state: Chain, h: f64) -> (Chain, bool) {
    match state {
        Chain::Idle => {
            if chance(rng, SPONTANEOUS * h) {
                (Chain::Idle, true)
            } else if chance(rng, h) {
                (
                    Chain::Considering {
                        age: 0,
                        silent: chance(rng, SILENT_SHARE),
                    },
                    false,
                )
            } else {
                (Chain::Idle, false)
            }
        }
        Chain::Considering { age, silent } => {
            if chance(rng, completion(age)) {
                (Chain::Idle, true)
            } else if chance(rng, ABANDON) {
                (Chain::Idle, false)
            } else {
                (
                    Chain::Considering {
                        age: age.saturating_add(1).min(12),
                        silent,
                    },
                    false,
                )
            }
        }
    }
}

/// Probability of at least one outcome in the next [`HORIZON_MONTHS`] months, given the
/// current state and the entry hazard of each of those months (0 while dormant).
pub fn p90(state: Chain, hazards: [f64; HORIZON_MONTHS]) -> f64 {
    // none(state, k): P(no outcome in months k..HORIZON) from `state` at the start of month k.
    fn none(state: Chain, k: usize, h: &[f64; HORIZON_MONTHS]) -> f64 {
        if k == HORIZON_MONTHS {
            return 1.0;
        }
        match state {
            Chain::Idle => {
                let hk = h[k];
                (1.0 - SPONTANEOUS * hk)
                    * (hk
                        * none(
                            Chain::Considering {
                                age: 0,
                                silent: false,
                            },
                            k + 1,
                            h,
                        )
                        + (1.0 - hk) * none(Chain::Idle, k + 1, h))
            }
            Chain::Considering { age, .. } => {
                (1.0 - completion(age))
                    * (ABANDON * none(Chain::Idle, k + 1, h)
                        + (1.0 - ABANDON)
                            * none(
                                Chain::Considering {
                                    age: age.saturating_add(1),
                                    silent: false,
                                },
                                k + 1,
                                h,
                            ))
            }
        }
    }
    1.0 - none(state, 0, &hazards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{Stream, rng_for};

    /// The oracle formula agrees with simulating the chain.
    #[test]
    fn p90_matches_simulation() {
        let mut rng = rng_for(3, Stream::Contact, 0);
        for (state, h) in [
            (Chain::Idle, [0.02, 0.02, 0.02]),
            (Chain::Idle, [0.0, 0.1, 0.1]),
            (
                Chain::Considering {
                    age: 0,
                    silent: true,
                },
                [0.02; 3],
            ),
            (
                Chain::Considering {
                    age: 4,
                    silent: false,
                },
                [0.2; 3],
            ),
        ] {
            let n = 200_000;
            let mut hits = 0;
            for _ in 0..n {
                let mut s = state;
                for hk in h {
                    let (next, outcome) = step(&mut rng, s, hk);
                    if outcome {
                        hits += 1;
                        break;
                    }
                    s = next;
                }
            }
            let sim = f64::from(hits) / f64::from(n);
            let exact = p90(state, h);
            assert!(
                (sim - exact).abs() < 0.004,
                "{state:?} {h:?}: simulated {sim}, exact {exact}"
            );
        }
    }

    #[test]
    fn hazards_respond_to_their_drivers() {
        let t = Traits {
            mobility: 1.0,
            investor: 1.0,
            rate_watcher: 1.0,
        };
        let base = Covariates {
            owns_home: true,
            tenure_years: 8.0,
            equity_share: 0.4,
            rate_spread: 0.0,
            has_loan: true,
            loan_age_months: 60,
            appreciation: 0.03,
            market_rate: 6.5,
            ..Default::default()
        };
        let high_spread = Covariates {
            rate_spread: 1.5,
            ..base
        };
        assert!(
            entry_hazard(IntentKind::Refinance, &high_spread, &t)
                > 5.0 * entry_hazard(IntentKind::Refinance, &base, &t)
        );
        let life = Covariates {
            life_event: true,
            ..base
        };
        assert!(
            entry_hazard(IntentKind::Sell, &life, &t)
                > 3.0 * entry_hazard(IntentKind::Sell, &base, &t)
        );
        let sold = Covariates {
            owns_home: false,
            ..base
        };
        assert_eq!(entry_hazard(IntentKind::Sell, &sold, &t), 0.0);
    }
}
