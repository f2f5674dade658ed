//! Seeding and the few distributions the world draws from.
//!
//! Every entity draws from its own generator, seeded from the world seed and the entity's
//! identity, so the output does not depend on thread scheduling or on the order in which
//! entities are visited.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};
use rand_pcg::Pcg64Mcg;

/// The generator type used everywhere in the world.
pub type WorldRng = Pcg64Mcg;

/// Streams that keep the draws of different stages independent.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    /// Metros, neighbourhoods, spatial field, market series.
    Geography = 1,
    /// One property's attributes and history.
    Property = 2,
    /// One contact's traits, intent and behaviour.
    Contact = 3,
    /// Organizations, territories, agents.
    People = 4,
    /// Property records of the three sources.
    Records = 5,
    /// Malformed lines for `--dirty`.
    Dirt = 6,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A generator for entity `id` in `stream` of the world seeded with `seed`.
pub fn rng_for(seed: u64, stream: Stream, id: u64) -> WorldRng {
    let a = splitmix64(seed ^ splitmix64(stream as u64));
    let b = splitmix64(a ^ splitmix64(id.wrapping_add(0x5151)));
    WorldRng::seed_from_u64(b)
}

/// Standard normal draw times `sd` plus `mean`.
pub fn normal(rng: &mut WorldRng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    mean + sd * z
}

/// Log-normal draw with the given median and log-scale sd.
pub fn lognormal(rng: &mut WorldRng, median: f64, sigma: f64) -> f64 {
    median * normal(rng, 0.0, sigma).exp()
}

/// Poisson count with mean `lambda` (0 when `lambda` is not positive).
pub fn poisson(rng: &mut WorldRng, lambda: f64) -> u32 {
    if lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda < 12.0 {
        // Knuth's multiplication method: fast and exact for the small means used per month.
        let limit = (-lambda).exp();
        let mut k = 0u32;
        let mut p: f64 = rng.random();
        while p > limit {
            k += 1;
            p *= rng.random::<f64>();
        }
        return k;
    }
    Poisson::new(lambda)
        .map(|d| d.sample(rng) as u32)
        .unwrap_or(0)
}

/// Exponential draw with the given mean.
pub fn exponential(rng: &mut WorldRng, mean: f64) -> f64 {
    let u: f64 = rng.random();
    -mean * (1.0 - u).ln()
}

/// Bernoulli trial.
pub fn chance(rng: &mut WorldRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Index drawn with probability proportional to `weights` (which need not sum to 1).
pub fn weighted_index(rng: &mut WorldRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = rng_for(7, Stream::Contact, 1).random();
        let b: u64 = rng_for(7, Stream::Contact, 1).random();
        let c: u64 = rng_for(7, Stream::Contact, 2).random();
        let d: u64 = rng_for(7, Stream::Property, 1).random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn poisson_mean_is_right() {
        let mut rng = rng_for(1, Stream::Dirt, 0);
        for lambda in [0.3, 2.5, 30.0] {
            let n = 20_000;
            let mean = (0..n)
                .map(|_| f64::from(poisson(&mut rng, lambda)))
                .sum::<f64>()
                / n as f64;
            assert!(
                (mean - lambda).abs() < 0.05 * lambda + 0.02,
                "lambda {lambda}: mean {mean}"
            );
        }
    }
}
