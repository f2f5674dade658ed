//! The role hierarchy. A higher role holds every permission of the lower ones, so a
//! permission check is one comparison: `principal.role >= needed`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role in their organization, lowest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A client of the organization: sees only their own documents, homes and messages.
    Homeowner,
    /// Works alerts and clients assigned to them.
    Agent,
    /// Leads agents: sees the team's users and alerts, invites agents and homeowners.
    Manager,
    /// Administers the organization: users, roles, settings.
    Admin,
    /// Owns the organization; the only role that can make or unmake owners.
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 5] = [
        Role::Homeowner,
        Role::Agent,
        Role::Manager,
        Role::Admin,
        Role::Owner,
    ];

    /// The name stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Homeowner => "homeowner",
            Role::Agent => "agent",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether this role holds every permission of `other`.
    pub fn includes(self, other: Role) -> bool {
        self >= other
    }

    /// Whether a user of this role may give `target` to someone (by invitation or a role
    /// change): managers and admins up to their own role, owners anything.
    pub fn may_grant(self, target: Role) -> bool {
        self == Role::Owner || (self >= Role::Manager && target <= self)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (one of homeowner, agent, manager, admin, owner)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_roles_include_lower_ones() {
        for (i, a) in Role::ALL.iter().enumerate() {
            for (j, b) in Role::ALL.iter().enumerate() {
                assert_eq!(a.includes(*b), i >= j, "{a} includes {b}");
            }
        }
    }

    #[test]
    fn granting_is_bounded_by_own_role() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Manager.may_grant(Role::Agent));
        assert!(!Role::Manager.may_grant(Role::Admin));
        assert!(!Role::Agent.may_grant(Role::Homeowner));
        assert!(!Role::Homeowner.may_grant(Role::Homeowner));
    }

    #[test]
    fn names_round_trip_and_unknown_is_named() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let e = "boss".parse::<Role>().expect_err("unknown");
        assert!(e.contains("boss"), "{e}");
    }
}
