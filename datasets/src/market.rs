//! Market time series: a monthly price index per metro and mortgage rates.

use roi_schemas::{MortgageRate, PriceIndex};

use crate::calendar::{Month, WORLD_END, month_start};
use crate::geography::MetroSim;
use crate::random::{WorldRng, normal};
use rand::Rng;

/// 30-year rate anchors (year as a fraction, percent); the path interpolates them and adds
/// a seeded wobble. The shape follows the broad history: high in 2000, lows in 2012 and
/// 2021, a sharp rise in 2022–23.
const RATE_ANCHORS: [(f64, f64); 14] = [
    (2000.0, 8.2),
    (2001.5, 7.0),
    (2003.5, 5.7),
    (2006.5, 6.7),
    (2009.0, 5.0),
    (2012.8, 3.4),
    (2014.0, 4.4),
    (2016.6, 3.5),
    (2018.9, 4.8),
    (2021.0, 2.8),
    (2022.4, 5.2),
    (2023.8, 7.6),
    (2024.7, 6.1),
    (2026.0, 6.5),
];

/// The market series of a world.
#[derive(Debug, Clone)]
pub struct Market {
    /// `index[metro][month]`, 1.0 at 2020-01.
    pub index: Vec<Vec<f64>>,
    /// 30-year fixed rate per month, percent.
    pub rate_30y: Vec<f64>,
}

impl Market {
    /// Generates the series for every month before [`WORLD_END`].
    pub fn build(rng: &mut WorldRng, metros: &[MetroSim]) -> Market {
        let months = WORLD_END as usize;
        let base = 20 * 12;
        let index = metros
            .iter()
            .map(|_| {
                let trend = rng.random_range(0.02..0.045);
                let amp = rng.random_range(0.06..0.14);
                let period = rng.random_range(7.0..11.0);
                let phase = rng.random_range(0.0..std::f64::consts::TAU);
                let mut walk = 0.0;
                let log: Vec<f64> = (0..months)
                    .map(|m| {
                        let t = m as f64 / 12.0;
                        walk = 0.97 * walk + normal(rng, 0.0, 0.006);
                        trend * t + amp * (std::f64::consts::TAU * t / period + phase).sin() + walk
                    })
                    .collect();
                log.iter().map(|l| (l - log[base]).exp()).collect()
            })
            .collect();
        let mut wobble = 0.0;
        let rate_30y = (0..months)
            .map(|m| {
                let t = 2000.0 + m as f64 / 12.0;
                let i = RATE_ANCHORS.iter().rposition(|(y, _)| *y <= t).unwrap_or(0);
                let j = (i + 1).min(RATE_ANCHORS.len() - 1);
                let (y0, r0) = RATE_ANCHORS[i];
                let (y1, r1) = RATE_ANCHORS[j];
                let f = if y1 > y0 { (t - y0) / (y1 - y0) } else { 0.0 };
                wobble = 0.85 * wobble + normal(rng, 0.0, 0.06);
                round2(((r0 + f * (r1 - r0)) + wobble).max(2.5))
            })
            .collect();
        Market { index, rate_30y }
    }

    /// Price index of `metro` in `m` (clamped to the world's months).
    pub fn index_at(&self, metro: usize, m: Month) -> f64 {
        self.index[metro][m.clamp(0, WORLD_END - 1) as usize]
    }

    /// Year-over-year appreciation of `metro` at `m`.
    pub fn yoy(&self, metro: usize, m: Month) -> f64 {
        self.index_at(metro, m) / self.index_at(metro, m - 12) - 1.0
    }

    /// 30-year rate at `m`, percent.
    pub fn rate_at(&self, m: Month) -> f64 {
        self.rate_30y[m.clamp(0, WORLD_END - 1) as usize]
    }

    /// Price-index rows.
    pub fn index_rows(&self, metros: &[MetroSim]) -> Vec<PriceIndex> {
        metros
            .iter()
            .enumerate()
            .flat_map(|(i, metro)| {
                (0..WORLD_END).map(move |m| PriceIndex {
                    metro_id: metro.row.metro_id,
                    month: month_start(m),
                    index: self.index[i][m as usize],
                })
            })
            .collect()
    }

    /// Mortgage-rate rows.
    pub fn rate_rows(&self) -> Vec<MortgageRate> {
        (0..WORLD_END)
            .map(|m| {
                let r = self.rate_30y[m as usize];
                MortgageRate {
                    month: month_start(m),
                    rate_30y_pct: r,
                    rate_15y_pct: round2(r - 0.7),
                }
            })
            .collect()
    }
}

/// Rounds to cents / hundredths.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
