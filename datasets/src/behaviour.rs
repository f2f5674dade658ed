//! Behaviour: the app sessions and e-mail engagement a homeowner produces in a month.
//!
//! Everyone has a baseline (heavy-tailed activity; some are nearly dormant). A visible
//! intent episode adds sessions whose pages lean towards the kind (valuations and equity
//! for selling, listings and calculators for buying, the refinance calculator for
//! refinancing, rental analyses for investing), more so as the episode ages, and lifts
//! e-mail engagement. Random curiosity bursts add the same pattern with no intent behind
//! it, so behaviour alone cannot be a perfect predictor.

use rand::Rng;
use roi_schemas::{EventType, IntentKind, StrEnum};

use crate::calendar::{DAY_MS, Month, WORLD_END, days_in_month, month_start_ms};
use crate::random::{WorldRng, chance, exponential, poisson, weighted_index};

/// In-session page mix at baseline, indexed like [`EventType::ALL`].
const BASELINE_MIX: [f64; 15] = [
    0.08, 0.02, 0.01, 0.08, 0.04, 0.0, 0.0, 0.14, 0.02, 0.02, 0.03, 0.02, 0.01, 0.0, 0.40,
];
/// Page mix of sessions driven by each intent kind (order of `intent::KINDS`).
const INTENT_MIX: [[f64; 15]; 4] = [
    [
        0.12, 0.08, 0.05, 0.25, 0.15, 0.0, 0.0, 0.20, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.15,
    ],
    [
        0.0, 0.0, 0.0, 0.06, 0.02, 0.0, 0.0, 0.35, 0.15, 0.12, 0.15, 0.0, 0.02, 0.0, 0.15,
    ],
    [
        0.15, 0.06, 0.0, 0.15, 0.20, 0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.30, 0.0, 0.0, 0.15,
    ],
    [
        0.0, 0.0, 0.0, 0.05, 0.10, 0.0, 0.0, 0.20, 0.05, 0.10, 0.10, 0.0, 0.30, 0.0, 0.15,
    ],
];
/// Probability that a session starts with an explicit login.
const LOGIN_SHARE: f64 = 0.35;
/// Monthly probability of a curiosity burst.
pub const CURIOSITY: f64 = 0.03;

/// A generated event before formatting. Compact: one is built per output line.
#[derive(Debug, Clone)]
pub struct EventDraft {
    /// When it reaches the log (sort key of the NDJSON files).
    pub arrival_ms: i64,
    /// Event time.
    pub ts_ms: i64,
    /// Event id.
    pub event_id: i64,
    /// Homeowner id.
    pub contact: i64,
    /// Tenant id.
    pub org: i64,
    /// Event type.
    pub kind: EventType,
    /// Session id.
    pub session: Option<i64>,
    /// Property id.
    pub property: Option<i64>,
    /// Document id.
    pub document: Option<i64>,
    /// Listing id.
    pub listing: Option<i64>,
    /// Index of the searched zip in the world's zip list.
    pub zip: Option<u32>,
    /// Campaign id.
    pub campaign: Option<i64>,
    /// Calculator amount.
    pub amount: Option<f64>,
}

/// What a homeowner's behaviour depends on this month.
#[derive(Debug, Clone, Copy)]
pub struct Mood {
    /// Visible episodes: `Some(age)` per kind.
    pub visible: [Option<u8>; 4],
    /// A curiosity burst about this kind, if any.
    pub curiosity: Option<usize>,
}

/// Static facts the generator needs to fill event fields.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Homeowner id.
    pub contact: i64,
    /// Tenant id.
    pub org: i64,
    /// Home property id.
    pub property: i64,
    /// Metro index of the home.
    pub metro: usize,
    /// Baseline activity multiplier.
    pub activity: f64,
    /// Baseline e-mail open probability.
    pub email_engagement: f64,
    /// Whether they receive campaigns.
    pub email_opt_in: bool,
    /// Documents stored for them.
    pub documents: u8,
    /// Current home value (calculator amounts).
    pub home_value: f64,
    /// Current loan balance.
    pub balance: f64,
}

/// Zip codes of the world, grouped by metro (indices into one flat list).
#[derive(Debug, Clone)]
pub struct ZipBook {
    /// Zip indices per metro.
    pub by_metro: Vec<Vec<u32>>,
}

impl ZipBook {
    fn local(&self, rng: &mut WorldRng, metro: usize) -> u32 {
        let z = &self.by_metro[metro];
        z[rng.random_range(0..z.len())]
    }

    fn elsewhere(&self, rng: &mut WorldRng, metro: usize) -> u32 {
        if self.by_metro.len() < 2 {
            return self.local(rng, metro);
        }
        let mut other = rng.random_range(0..self.by_metro.len() - 1);
        if other >= metro {
            other += 1;
        }
        self.local(rng, other)
    }
}

/// Draws a delay between event time and arrival: mostly seconds, sometimes minutes
/// (mobile batching), rarely hours to days (offline devices).
fn arrival_delay_ms(rng: &mut WorldRng) -> i64 {
    let u: f64 = rng.random();
    let secs = if u < 0.95 {
        exponential(rng, 1.5)
    } else if u < 0.995 {
        exponential(rng, 240.0)
    } else {
        rng.random_range(2.0 * 3600.0..72.0 * 3600.0)
    };
    (secs * 1000.0) as i64
}

/// A homeowner's own id counters, so event and session ids do not depend on anyone else.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdCounters {
    /// Events emitted so far.
    pub events: i64,
    /// Sessions started so far.
    pub sessions: i64,
}

/// Generates month `m`'s events for one homeowner into `out`.
pub fn month_events(
    rng: &mut WorldRng,
    m: Month,
    p: &Profile,
    mood: &Mood,
    zips: &ZipBook,
    ids: &mut IdCounters,
    out: &mut Vec<EventDraft>,
) {
    let start = month_start_ms(m);
    let span = days_in_month(m) * DAY_MS;
    let end = month_start_ms(WORLD_END);
    let mut sessions: Vec<Option<usize>> = Vec::new();
    for _ in 0..poisson(rng, 0.7 * p.activity) {
        sessions.push(None);
    }
    for (k, age) in mood.visible.iter().enumerate() {
        if let Some(age) = age {
            let lam = (0.5 + 0.5 * p.activity) * (1.0 + 0.6 * f64::from((*age).min(3)));
            for _ in 0..poisson(rng, lam) {
                sessions.push(Some(k));
            }
        }
    }
    if let Some(k) = mood.curiosity {
        for _ in 0..poisson(rng, 1.0 + 0.5 * p.activity) {
            sessions.push(Some(k));
        }
    }
    let mut emit = |rng: &mut WorldRng,
                    kind: EventType,
                    ts: i64,
                    session: Option<i64>,
                    campaign: Option<i64>,
                    driver: Option<usize>| {
        if ts >= end {
            return;
        }
        ids.events += 1;
        let mut e = EventDraft {
            arrival_ms: ts + arrival_delay_ms(rng),
            ts_ms: ts,
            event_id: p.contact * (1 << 24) + ids.events,
            contact: p.contact,
            org: p.org,
            kind,
            session,
            property: None,
            document: None,
            listing: None,
            zip: None,
            campaign,
            amount: None,
        };
        let away = matches!(driver, Some(1) | Some(3));
        match kind {
            EventType::DocumentViewed
            | EventType::DocumentDownloaded
            | EventType::DocumentShared => {
                e.document =
                    Some(p.contact * 16 + rng.random_range(0..i64::from(p.documents.max(1))));
            }
            EventType::ValuationViewed | EventType::EquityReportOpened => {
                e.property = Some(p.property)
            }
            EventType::ListingViewed | EventType::ListingSaved => {
                let zip = if away && chance(rng, 0.3) {
                    zips.elsewhere(rng, p.metro)
                } else {
                    zips.local(rng, p.metro)
                };
                e.zip = Some(zip);
                e.listing = Some(i64::from(zip) * 100_000 + rng.random_range(0..5_000));
            }
            EventType::OutOfAreaSearch => e.zip = Some(zips.elsewhere(rng, p.metro)),
            EventType::MortgageCalcUsed => {
                e.amount =
                    Some((p.home_value * rng.random_range(0.7..1.6) / 1000.0).round() * 1000.0)
            }
            EventType::RefinanceCalcUsed => {
                e.property = Some(p.property);
                let base = if p.balance > 0.0 {
                    p.balance
                } else {
                    0.6 * p.home_value
                };
                e.amount = Some((base * rng.random_range(0.95..1.3) / 1000.0).round() * 1000.0);
            }
            EventType::RentalAnalysisViewed => e.zip = Some(zips.local(rng, p.metro)),
            _ => {}
        }
        out.push(e);
    };
    for driver in sessions {
        ids.sessions += 1;
        let session = p.contact * (1 << 20) + ids.sessions;
        let mut t = start + rng.random_range(0..span);
        if chance(rng, LOGIN_SHARE) {
            emit(rng, EventType::Login, t, Some(session), None, driver);
            t += (exponential(rng, 20.0) * 1000.0) as i64 + 500;
        }
        let mix = match driver {
            Some(k) => &INTENT_MIX[k],
            None => &BASELINE_MIX,
        };
        for _ in 0..1 + poisson(rng, 1.6) {
            let kind = EventType::ALL[weighted_index(rng, mix)];
            emit(rng, kind, t, Some(session), None, driver);
            t += (exponential(rng, 45.0) * 1000.0) as i64 + 1000;
        }
    }
    if p.email_opt_in {
        let visible = mood.visible.iter().filter(|v| v.is_some()).count() as f64;
        let open_p = (p.email_engagement * (1.0 + 0.7 * visible)).min(0.95);
        for j in 0..2 {
            let campaign = p.org * 10_000 + i64::from(m) * 2 + j;
            let sent = start + (3 + 14 * j) * DAY_MS + 15 * 3_600_000 + p.org * 60_000;
            if chance(rng, open_p) {
                let opened = sent + (exponential(rng, 8.0 * 3600.0) * 1000.0) as i64;
                emit(
                    rng,
                    EventType::EmailOpened,
                    opened,
                    None,
                    Some(campaign),
                    None,
                );
                if chance(rng, 0.15 + 0.2 * visible.min(1.0)) {
                    let clicked = opened + (exponential(rng, 180.0) * 1000.0) as i64;
                    emit(
                        rng,
                        EventType::EmailClicked,
                        clicked,
                        None,
                        Some(campaign),
                        None,
                    );
                }
            }
        }
    }
}

/// Which intent kinds each event type is characteristic of (for signal checks).
pub fn characteristic_of(kind: IntentKind) -> Vec<EventType> {
    let k = crate::intent::KINDS
        .iter()
        .position(|x| *x == kind)
        .unwrap_or(0);
    EventType::ALL
        .iter()
        .copied()
        .filter(|t| {
            INTENT_MIX[k][t.index()] >= 2.0 * BASELINE_MIX[t.index()]
                && INTENT_MIX[k][t.index()] >= 0.1
        })
        .collect()
}
