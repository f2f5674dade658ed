//! World sizes.

use std::str::FromStr;

use crate::Error;

/// How big a world to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// ~400 homeowners, ~50k events: unit tests, seconds.
    Tiny,
    /// ~10k homeowners, ~1M events.
    Small,
    /// ~100k homeowners, ~10M events.
    Medium,
    /// ~1M homeowners, ~100M events, streamed to disk with bounded memory.
    Large,
}

/// Size parameters derived from a [`Scale`].
#[derive(Debug, Clone, Copy)]
pub struct ScaleParams {
    /// Homeowners (closed clients).
    pub contacts: usize,
    /// Properties that are not clients' homes (the rest of the market).
    pub market_properties: usize,
    /// Metro areas.
    pub metros: usize,
    /// Tenant organizations.
    pub orgs: usize,
    /// Neighbourhoods (zip codes) per metro.
    pub zips_per_metro: usize,
    /// Homeowners per agent.
    pub contacts_per_agent: usize,
}

impl Scale {
    /// All scales, smallest first.
    pub const ALL: [Scale; 4] = [Scale::Tiny, Scale::Small, Scale::Medium, Scale::Large];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Tiny => "tiny",
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Large => "large",
        }
    }

    /// Size parameters.
    pub fn params(self) -> ScaleParams {
        let (contacts, metros, orgs, zips) = match self {
            Scale::Tiny => (400, 2, 2, 4),
            Scale::Small => (10_000, 3, 4, 12),
            Scale::Medium => (100_000, 4, 8, 30),
            Scale::Large => (1_000_000, 6, 20, 60),
        };
        ScaleParams {
            contacts,
            market_properties: contacts,
            metros,
            orgs,
            zips_per_metro: zips,
            contacts_per_agent: 150,
        }
    }
}

impl std::fmt::Display for Scale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Scale::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown scale {s:?}; expected one of: tiny, small, medium, large"
                ))
            })
    }
}
