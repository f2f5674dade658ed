//! Metros, neighbourhoods and the smooth spatial value field.

use roi_schemas::{Metro, MetroId, Neighbourhood};

use crate::random::{WorldRng, normal};
use rand::Rng;

/// Metro templates: name, state, centre, zip prefix, value of a typical home in 2020.
const METROS: [(&str, &str, f64, f64, u32, f64); 6] = [
    ("Ames", "IA", 42.0308, -93.6319, 500, 215_000.0),
    ("Austin", "TX", 30.2672, -97.7431, 787, 390_000.0),
    ("Columbus", "OH", 39.9612, -82.9988, 432, 235_000.0),
    ("Raleigh", "NC", 35.7796, -78.6382, 276, 320_000.0),
    ("Boise", "ID", 43.6150, -116.2023, 837, 340_000.0),
    ("Tampa", "FL", 27.9506, -82.4572, 336, 300_000.0),
];

const NEIGHBOURHOOD_WORDS: [&str; 16] = [
    "North",
    "South",
    "East",
    "West",
    "Old Town",
    "Riverside",
    "Oak Park",
    "Lakeview",
    "Hillcrest",
    "Meadowbrook",
    "Cedar Heights",
    "Westgate",
    "Brookside",
    "Fairview",
    "Sunset",
    "Highland",
];

/// Kilometres per degree of latitude.
pub const KM_PER_DEG_LAT: f64 = 111.2;

/// A Gaussian bump of the spatial field.
#[derive(Debug, Clone)]
struct Bump {
    lat: f64,
    lon: f64,
    amplitude: f64,
    width_km: f64,
}

/// One metro as the generator sees it.
#[derive(Debug, Clone)]
pub struct MetroSim {
    /// The published row.
    pub row: Metro,
    /// Value of a typical home at index 1.0.
    pub base_value: f64,
    /// Hidden smooth log-value field over the metro's area.
    bumps: Vec<Bump>,
}

impl MetroSim {
    /// Log-value offset of the spatial field at a point.
    pub fn spatial_effect(&self, lat: f64, lon: f64) -> f64 {
        let km_per_deg_lon = KM_PER_DEG_LAT * self.row.lat.to_radians().cos();
        self.bumps
            .iter()
            .map(|b| {
                let dy = (lat - b.lat) * KM_PER_DEG_LAT;
                let dx = (lon - b.lon) * km_per_deg_lon;
                b.amplitude * (-(dx * dx + dy * dy) / (2.0 * b.width_km * b.width_km)).exp()
            })
            .sum()
    }
}

/// One neighbourhood as the generator sees it.
#[derive(Debug, Clone)]
pub struct NeighbourhoodSim {
    /// The published row.
    pub row: Neighbourhood,
    /// Index of its metro.
    pub metro: usize,
    /// Hidden log-value effect.
    pub effect: f64,
    /// Typical construction year.
    pub era: f64,
    /// Spread of the homes around the centre, km.
    pub radius_km: f64,
}

/// Builds the metros and their neighbourhoods.
pub fn build(
    rng: &mut WorldRng,
    metros: usize,
    zips_per_metro: usize,
) -> (Vec<MetroSim>, Vec<NeighbourhoodSim>) {
    let mut ms = Vec::new();
    let mut ns = Vec::new();
    for (i, &(name, state, lat, lon, prefix, base)) in METROS.iter().take(metros).enumerate() {
        let bumps = (0..8)
            .map(|_| Bump {
                lat: lat + normal(rng, 0.0, 0.09),
                lon: lon + normal(rng, 0.0, 0.11),
                amplitude: normal(rng, 0.0, 0.12),
                width_km: rng.random_range(1.5..5.0),
            })
            .collect();
        let metro = MetroSim {
            row: Metro {
                metro_id: MetroId(i as i64 + 1),
                name: name.into(),
                state: state.into(),
                lat,
                lon,
            },
            base_value: base,
            bumps,
        };
        for z in 0..zips_per_metro {
            // Neighbourhoods spread over a ~25 km wide area around the centre.
            let r = 12.0 * rng.random::<f64>().sqrt();
            let theta = rng.random::<f64>() * std::f64::consts::TAU;
            let nlat = lat + r * theta.sin() / KM_PER_DEG_LAT;
            let nlon = lon + r * theta.cos() / (KM_PER_DEG_LAT * lat.to_radians().cos());
            let word = NEIGHBOURHOOD_WORDS[z % NEIGHBOURHOOD_WORDS.len()];
            let name = if z < NEIGHBOURHOOD_WORDS.len() {
                format!("{word} {name}")
            } else {
                format!("{word} {name} {}", z / NEIGHBOURHOOD_WORDS.len() + 1)
            };
            ns.push(NeighbourhoodSim {
                row: Neighbourhood {
                    zip: format!("{:05}", prefix * 100 + 1 + z as u32),
                    metro_id: metro.row.metro_id,
                    name,
                    lat: nlat,
                    lon: nlon,
                },
                metro: i,
                effect: normal(rng, 0.0, 0.15),
                era: rng.random_range(1930.0..2018.0),
                radius_km: rng.random_range(0.8..2.0),
            });
        }
        ms.push(metro);
    }
    (ms, ns)
}
