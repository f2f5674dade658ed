//! Alerts as the API serves them: what kind, where in its life cycle, and which moves
//! between states are allowed ([`check_transition`], a pure function).
//!
//! The life cycle: `new → assigned → contacted → converted`, and from any open state to
//! `dismissed` or `expired`. An assigned alert can be reassigned (it stays `assigned`);
//! `converted`, `dismissed` and `expired` are final.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the homeowner is likely to do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// Sell their home.
    Sell,
    /// Buy a home.
    Buy,
    /// Refinance their mortgage.
    Refinance,
    /// Buy an investment property.
    Investment,
}

/// Where an alert is in its life cycle.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Raised, not yet routed.
    New,
    /// An agent owns it.
    Assigned,
    /// The agent reached the homeowner.
    Contacted,
    /// It became business (final).
    Converted,
    /// Not worth pursuing (final).
    Dismissed,
    /// Timed out (final).
    Expired,
}

macro_rules! names {
    ($ty:ident { $($variant:ident = $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The stored and serialised name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),* }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $ty::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $ty::ALL.iter().map(|v| v.as_str()).collect();
                        format!("{s:?} is not one of {}", names.join(", "))
                    })
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

names!(AlertKind { Sell = "sell", Buy = "buy", Refinance = "refinance", Investment = "investment" });
names!(AlertStatus {
    New = "new",
    Assigned = "assigned",
    Contacted = "contacted",
    Converted = "converted",
    Dismissed = "dismissed",
    Expired = "expired",
});

impl AlertStatus {
    /// Whether the alert can still move.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            AlertStatus::Converted | AlertStatus::Dismissed | AlertStatus::Expired
        )
    }
}

/// Whether an alert may go from `from` to `to`; the error says why not in words a
/// client can show.
pub fn check_transition(from: AlertStatus, to: AlertStatus) -> Result<(), String> {
    use AlertStatus::*;
    let allowed = match from {
        New => matches!(to, Assigned | Dismissed | Expired),
        Assigned => matches!(to, Assigned | Contacted | Dismissed | Expired),
        Contacted => matches!(to, Converted | Dismissed | Expired),
        Converted | Dismissed | Expired => false,
    };
    if allowed {
        Ok(())
    } else if !from.is_open() {
        Err(format!("the alert is {from}, which is final"))
    } else if to == New {
        Err("an alert cannot go back to new".to_owned())
    } else {
        Err(format!("an alert that is {from} cannot become {to}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_life_cycle_moves_forward_only() {
        use AlertStatus::*;
        for (from, to) in [
            (New, Assigned),
            (Assigned, Assigned),
            (Assigned, Contacted),
            (Contacted, Converted),
            (New, Dismissed),
            (Contacted, Expired),
        ] {
            assert!(check_transition(from, to).is_ok(), "{from} -> {to}");
        }
        for (from, to, why) in [
            (New, Contacted, "cannot become contacted"),
            (New, Converted, "cannot become converted"),
            (Assigned, New, "back to new"),
            (Converted, Dismissed, "final"),
            (Expired, Assigned, "final"),
        ] {
            let e = check_transition(from, to).expect_err("refused");
            assert!(e.contains(why), "{from} -> {to}: {e}");
        }
        // Every pair is decided, and final states never move.
        for &from in AlertStatus::ALL {
            for &to in AlertStatus::ALL {
                if !from.is_open() {
                    assert!(check_transition(from, to).is_err());
                }
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for &k in AlertKind::ALL {
            assert_eq!(k.as_str().parse::<AlertKind>(), Ok(k));
        }
        for &s in AlertStatus::ALL {
            assert_eq!(s.as_str().parse::<AlertStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).expect("json"), format!("\"{s}\""));
        }
        assert!(
            "maybe"
                .parse::<AlertStatus>()
                .expect_err("bad")
                .contains("new, assigned")
        );
    }
}
