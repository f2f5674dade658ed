//! One homeowner through time: latent intent, outcomes and behaviour, month by month.

use rand::Rng;
use roi_schemas::{
    Contact, ContactId, IntentKind, IntentSnapshot, Loan, LoanId, LoanPurpose, PropertyId, SaleId,
};

use crate::behaviour::{CURIOSITY, EventDraft, IdCounters, Mood, Profile, ZipBook, month_events};
use crate::calendar::{DAY_MS, Month, day_in_month, days_in_month, month_start, month_start_ms};
use crate::housing::PropertySim;
use crate::intent::{Chain, Covariates, HORIZON_MONTHS, KINDS, Traits, entry_hazard, p90, step};
use crate::market::Market;
use crate::random::{WorldRng, chance, lognormal, normal};

/// Ids of sales and loans created during the simulation start here (history ids are
/// sequential below it), in a block of [`ID_BLOCK`] per homeowner.
pub const SIM_ID_BASE: i64 = 1_000_000_000;
/// Ids reserved per homeowner.
pub const ID_BLOCK: i64 = 64;
/// Months a kind stays dormant after its outcome.
const DORMANT_MONTHS: [Month; 4] = [Month::MAX, 24, 12, 18];

/// A homeowner's simulation state.
#[derive(Debug, Clone)]
pub struct HomeownerSim {
    /// Contact id.
    pub contact: ContactId,
    /// Index of their home in the world's property list.
    pub home: usize,
    /// Tenant id.
    pub org: i64,
    /// Month of purchase.
    pub purchased: Month,
    /// Loans of this homeowner, with ids; the current mortgage is `current_loan`.
    pub loans: Vec<Loan>,
    /// Index into `loans` of the mortgage on the home.
    pub current_loan: Option<usize>,
    /// Whether they still own the home.
    pub owns_home: bool,
    /// Last month of the current life event.
    pub life_event_until: Month,
    /// Per-kind chain state.
    pub chains: [Chain; 4],
    /// Per-kind first month the kind is active again after an outcome.
    pub dormant_until: [Month; 4],
    /// Traits.
    pub traits: Traits,
    /// Behaviour profile (value and balance refreshed monthly).
    pub profile: Profile,
    /// Own random generator.
    pub rng: WorldRng,
    ids: IdCounters,
    next_id: i64,
}

/// An outcome realised this month, before the world writes it.
#[derive(Debug, Clone)]
pub struct OutcomeDraft {
    /// Homeowner.
    pub contact: ContactId,
    /// Kind.
    pub kind: IntentKind,
    /// Event time of closing.
    pub at_ms: i64,
    /// Property index concerned.
    pub property: usize,
    /// Sale realising it.
    pub sale: Option<(SaleId, f64, Option<i32>)>,
    /// Loan realising it.
    pub loan: Option<LoanId>,
}

/// What one homeowner produced in a month.
#[derive(Debug, Default)]
pub struct MonthOutput {
    /// Behaviour events.
    pub events: Vec<EventDraft>,
    /// Oracle snapshots.
    pub snapshots: Vec<IntentSnapshot>,
    /// Outcomes.
    pub outcomes: Vec<OutcomeDraft>,
}

/// Shared, read-only context of a month.
pub struct WorldView<'a> {
    /// Market series.
    pub market: &'a Market,
    /// Every property.
    pub properties: &'a [PropertySim],
    /// Market (non-client) property indices per metro.
    pub for_sale_by_metro: &'a [Vec<usize>],
    /// Zip codes by metro.
    pub zips: &'a ZipBook,
}

impl HomeownerSim {
    /// Starts a homeowner who bought `home` in `purchased` with `loans` (their current
    /// mortgage is the open one, if any).
    pub fn new(
        mut rng: WorldRng,
        contact: &Contact,
        home: usize,
        metro: usize,
        loans: Vec<Loan>,
    ) -> Self {
        let purchased = crate::calendar::month_of(contact.closed_on);
        let email_opt_in = contact.email_opt_in;
        let org = contact.org_id.0;
        let dormant = chance(&mut rng, 0.15);
        let activity = lognormal(&mut rng, 0.75, 0.8) * if dormant { 0.1 } else { 1.0 };
        let email_engagement = (lognormal(&mut rng, 0.22, 0.6)).min(0.9);
        let traits = Traits {
            mobility: lognormal(&mut rng, 1.0, 0.5),
            investor: lognormal(&mut rng, 1.0, 0.8),
            rate_watcher: lognormal(&mut rng, 1.0, 0.4),
        };
        let documents = rng.random_range(3..9);
        let current_loan = loans.iter().position(|l| l.closed_on.is_none());
        HomeownerSim {
            contact: contact.contact_id,
            home,
            org,
            purchased,
            loans,
            current_loan,
            owns_home: true,
            life_event_until: -1,
            chains: [Chain::Idle; 4],
            dormant_until: [0; 4],
            traits,
            profile: Profile {
                contact: contact.contact_id.0,
                org,
                property: home as i64 + 1,
                metro,
                activity,
                email_engagement,
                email_opt_in,
                documents,
                home_value: 0.0,
                balance: 0.0,
            },
            rng,
            ids: IdCounters::default(),
            next_id: 0,
        }
    }

    fn next_sim_id(&mut self) -> i64 {
        self.next_id += 1;
        SIM_ID_BASE + (self.contact.0 - 1) * ID_BLOCK + self.next_id
    }

    fn covariates(&self, m: Month, view: &WorldView<'_>) -> Covariates {
        let home = &view.properties[self.home];
        let value = home.value_at(view.market, m);
        let loan = self.current_loan.map(|i| &self.loans[i]);
        let balance = loan.map_or(0.0, |l| {
            l.balance_after(m - crate::calendar::month_of(l.originated_on))
        });
        let market_rate = view.market.rate_at(m);
        Covariates {
            owns_home: self.owns_home,
            tenure_years: f64::from(m - self.purchased) / 12.0,
            equity_share: ((value - balance) / value).clamp(-1.0, 1.0),
            rate_spread: loan.map_or(0.0, |l| l.rate_pct - market_rate),
            has_loan: loan.is_some(),
            loan_age_months: loan.map_or(0, |l| m - crate::calendar::month_of(l.originated_on)),
            appreciation: view.market.yoy(home.metro, m),
            market_rate,
            life_event: m <= self.life_event_until,
            considering_sell: matches!(self.chains[0], Chain::Considering { .. }),
        }
    }

    fn hazards(&self, m: Month, cov: &Covariates) -> [f64; 4] {
        let mut h = [0.0; 4];
        for (k, kind) in KINDS.iter().enumerate() {
            if m >= self.dormant_until[k] {
                h[k] = entry_hazard(*kind, cov, &self.traits);
            }
        }
        h
    }

    /// Simulates month `m`. When `observe` is set, also emits behaviour and a snapshot.
    pub fn month(&mut self, m: Month, view: &WorldView<'_>, observe: bool, out: &mut MonthOutput) {
        if chance(&mut self.rng, 0.007) {
            self.life_event_until = m + 6;
        }
        let cov = self.covariates(m, view);
        let h = self.hazards(m, &cov);
        if observe {
            let p: Vec<f64> = (0..4)
                .map(|k| {
                    let mut hs = [0.0; HORIZON_MONTHS];
                    for (j, hj) in hs.iter_mut().enumerate() {
                        if m + j as Month >= self.dormant_until[k] {
                            *hj = h[k];
                        }
                    }
                    p90(self.chains[k], hs)
                })
                .collect();
            out.snapshots.push(IntentSnapshot {
                contact_id: self.contact,
                snapshot_on: month_start(m),
                p_sell: p[0],
                p_buy: p[1],
                p_refinance: p[2],
                p_investment: p[3],
            });
            let home = &view.properties[self.home];
            self.profile.home_value = home.value_at(view.market, m);
            self.profile.balance = self.current_loan.map_or(0.0, |i| {
                let l = &self.loans[i];
                l.balance_after(m - crate::calendar::month_of(l.originated_on))
            });
            let mood = Mood {
                visible: [0, 1, 2, 3].map(|k| self.chains[k].visible_age()),
                curiosity: chance(&mut self.rng, CURIOSITY).then(|| self.rng.random_range(0..4)),
            };
            month_events(
                &mut self.rng,
                m,
                &self.profile,
                &mood,
                view.zips,
                &mut self.ids,
                &mut out.events,
            );
        }
        for k in 0..4 {
            let (next, outcome) = step(&mut self.rng, self.chains[k], h[k]);
            self.chains[k] = next;
            if outcome {
                self.dormant_until[k] = m.saturating_add(DORMANT_MONTHS[k]);
                self.realise(KINDS[k], m, view, out);
            }
        }
    }

    fn realise(&mut self, kind: IntentKind, m: Month, view: &WorldView<'_>, out: &mut MonthOutput) {
        let day = self.rng.random_range(0..days_in_month(m));
        let at_ms = month_start_ms(m) + day * DAY_MS + self.rng.random_range(9..17) * 3_600_000;
        let on = day_in_month(m, day);
        let market_rate = view.market.rate_at(m);
        let mut draft = OutcomeDraft {
            contact: self.contact,
            kind,
            at_ms,
            property: self.home,
            sale: None,
            loan: None,
        };
        match kind {
            IntentKind::Sell => {
                let home = &view.properties[self.home];
                let price = (home.value_at(view.market, m)
                    * normal(&mut self.rng, 0.0, 0.07).exp()
                    / 100.0)
                    .round()
                    * 100.0;
                let dom = lognormal(&mut self.rng, 30.0, 0.6).clamp(1.0, 365.0) as i32;
                draft.sale = Some((SaleId(self.next_sim_id()), price, Some(dom)));
                if let Some(i) = self.current_loan.take() {
                    self.loans[i].closed_on = Some(on);
                }
                self.owns_home = false;
                self.dormant_until[2] = Month::MAX;
            }
            IntentKind::Buy | IntentKind::Investment => {
                let metro = view.properties[self.home].metro;
                let pool = if kind == IntentKind::Buy || view.for_sale_by_metro.len() < 2 {
                    &view.for_sale_by_metro[metro]
                } else {
                    &view.for_sale_by_metro[self.rng.random_range(0..view.for_sale_by_metro.len())]
                };
                let Some(&target) =
                    (!pool.is_empty()).then(|| &pool[self.rng.random_range(0..pool.len())])
                else {
                    return;
                };
                let p = &view.properties[target];
                let price = (p.value_at(view.market, m) * normal(&mut self.rng, 0.0, 0.07).exp()
                    / 100.0)
                    .round()
                    * 100.0;
                let dom = lognormal(&mut self.rng, 30.0, 0.6).clamp(1.0, 365.0) as i32;
                draft.property = target;
                draft.sale = Some((SaleId(self.next_sim_id()), price, Some(dom)));
                let down = if kind == IntentKind::Investment {
                    0.25
                } else {
                    0.15
                };
                let loan = Loan {
                    loan_id: LoanId(self.next_sim_id()),
                    property_id: PropertyId(target as i64 + 1),
                    contact_id: Some(self.contact),
                    purpose: LoanPurpose::Purchase,
                    originated_on: on,
                    amount: (price * (1.0 - down)).round(),
                    rate_pct: ((market_rate + normal(&mut self.rng, 0.2, 0.25)).max(2.0) * 8.0)
                        .round()
                        / 8.0,
                    term_months: 360,
                    closed_on: None,
                };
                self.loans.push(loan);
            }
            IntentKind::Refinance => {
                let home = &view.properties[self.home];
                let value = home.value_at(view.market, m);
                let balance = self.current_loan.map_or(0.0, |i| {
                    let l = &self.loans[i];
                    l.balance_after(m - crate::calendar::month_of(l.originated_on))
                });
                let cash_out = if chance(&mut self.rng, 0.3) {
                    0.15 * (value - balance).max(0.0)
                } else {
                    0.0
                };
                if let Some(i) = self.current_loan {
                    self.loans[i].closed_on = Some(on);
                }
                let id = LoanId(self.next_sim_id());
                self.loans.push(Loan {
                    loan_id: id,
                    property_id: PropertyId(self.home as i64 + 1),
                    contact_id: Some(self.contact),
                    purpose: LoanPurpose::Refinance,
                    originated_on: on,
                    amount: (balance + cash_out).max(0.3 * value).round(),
                    rate_pct: ((market_rate + normal(&mut self.rng, 0.05, 0.2)).max(2.0) * 8.0)
                        .round()
                        / 8.0,
                    term_months: 360,
                    closed_on: None,
                });
                self.current_loan = Some(self.loans.len() - 1);
                draft.loan = Some(id);
            }
        }
        out.outcomes.push(draft);
    }
}
