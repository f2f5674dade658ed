//! The audit log: security events of an organization, written where they happen and
//! read by its admins (`GET /audit`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AuditAction {
    /// An organization was created with its owner.
    #[serde(rename = "organization.created")]
    OrganizationCreated,
    /// A user signed in.
    #[serde(rename = "login.succeeded")]
    LoginSucceeded,
    /// A sign-in with a known organization failed (wrong e-mail or password).
    #[serde(rename = "login.failed")]
    LoginFailed,
    /// Sign-in refused because the account had too many failures.
    #[serde(rename = "login.locked")]
    LoginLocked,
    /// A used refresh token was presented again; its family was revoked.
    #[serde(rename = "refresh.reused")]
    RefreshReused,
    /// A session was ended.
    #[serde(rename = "logout")]
    Logout,
    /// Every session of a user was ended.
    #[serde(rename = "logout.everywhere")]
    LogoutEverywhere,
    /// A user's role was changed.
    #[serde(rename = "role.changed")]
    RoleChanged,
    /// Someone was invited.
    #[serde(rename = "invitation.created")]
    InvitationCreated,
    /// An invitation was accepted and its user created.
    #[serde(rename = "invitation.accepted")]
    InvitationAccepted,
    /// An organization's settings (such as its MFA policy) were changed.
    #[serde(rename = "organization.updated")]
    OrganizationUpdated,
    /// A user confirmed a TOTP factor.
    #[serde(rename = "mfa.enrolled")]
    MfaEnrolled,
    /// A user removed their TOTP factor.
    #[serde(rename = "mfa.disabled")]
    MfaDisabled,
    /// An admin removed a user's TOTP factor.
    #[serde(rename = "mfa.reset")]
    MfaReset,
    /// A wrong or replayed second-factor code was presented.
    #[serde(rename = "mfa.failed")]
    MfaFailed,
    /// A recovery code was used to sign in.
    #[serde(rename = "mfa.recovery_used")]
    MfaRecoveryUsed,
    /// A user replaced their recovery codes.
    #[serde(rename = "mfa.recovery_regenerated")]
    MfaRecoveryRegenerated,
    /// An API key was made.
    #[serde(rename = "api_key.created")]
    ApiKeyCreated,
    /// An API key was revoked.
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked,
    /// A sign-in provider's identity was linked to a user by its verified e-mail.
    #[serde(rename = "oidc.linked")]
    OidcLinked,
    /// A user changed their password.
    #[serde(rename = "password.changed")]
    PasswordChanged,
    /// An admin issued a password-reset token for a user.
    #[serde(rename = "password.reset_issued")]
    PasswordResetIssued,
    /// A password was set with a reset token.
    #[serde(rename = "password.reset")]
    PasswordReset,
    /// A webhook endpoint was added.
    #[serde(rename = "webhook.created")]
    WebhookCreated,
    /// A webhook endpoint was removed.
    #[serde(rename = "webhook.deleted")]
    WebhookDeleted,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 25] = [
        AuditAction::OrganizationCreated,
        AuditAction::LoginSucceeded,
        AuditAction::LoginFailed,
        AuditAction::LoginLocked,
        AuditAction::RefreshReused,
        AuditAction::Logout,
        AuditAction::LogoutEverywhere,
        AuditAction::RoleChanged,
        AuditAction::InvitationCreated,
        AuditAction::InvitationAccepted,
        AuditAction::OrganizationUpdated,
        AuditAction::MfaEnrolled,
        AuditAction::MfaDisabled,
        AuditAction::MfaReset,
        AuditAction::MfaFailed,
        AuditAction::MfaRecoveryUsed,
        AuditAction::MfaRecoveryRegenerated,
        AuditAction::ApiKeyCreated,
        AuditAction::ApiKeyRevoked,
        AuditAction::OidcLinked,
        AuditAction::PasswordChanged,
        AuditAction::PasswordResetIssued,
        AuditAction::PasswordReset,
        AuditAction::WebhookCreated,
        AuditAction::WebhookDeleted,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::OrganizationCreated => "organization.created",
            AuditAction::LoginSucceeded => "login.succeeded",
            AuditAction::LoginFailed => "login.failed",
            AuditAction::LoginLocked => "login.locked",
            AuditAction::RefreshReused => "refresh.reused",
            AuditAction::Logout => "logout",
            AuditAction::LogoutEverywhere => "logout.everywhere",
            AuditAction::RoleChanged => "role.changed",
            AuditAction::InvitationCreated => "invitation.created",
            AuditAction::InvitationAccepted => "invitation.accepted",
            AuditAction::OrganizationUpdated => "organization.updated",
            AuditAction::MfaEnrolled => "mfa.enrolled",
            AuditAction::MfaDisabled => "mfa.disabled",
            AuditAction::MfaReset => "mfa.reset",
            AuditAction::MfaFailed => "mfa.failed",
            AuditAction::MfaRecoveryUsed => "mfa.recovery_used",
            AuditAction::MfaRecoveryRegenerated => "mfa.recovery_regenerated",
            AuditAction::ApiKeyCreated => "api_key.created",
            AuditAction::ApiKeyRevoked => "api_key.revoked",
            AuditAction::OidcLinked => "oidc.linked",
            AuditAction::PasswordChanged => "password.changed",
            AuditAction::PasswordResetIssued => "password.reset_issued",
            AuditAction::PasswordReset => "password.reset",
            AuditAction::WebhookCreated => "webhook.created",
            AuditAction::WebhookDeleted => "webhook.deleted",
        }
    }
}

impl std::str::FromStr for AuditAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown audit action {s:?}"))
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// Event id.
    pub id: String,
    /// Unix seconds.
    pub at: i64,
    /// What happened.
    pub action: AuditAction,
    /// The user who acted, when known.
    pub actor_id: Option<String>,
    /// What it was done to (a user id, an e-mail tried at login, a token family).
    pub subject: Option<String>,
    /// The client's address.
    pub client: Option<String>,
    /// Human-readable detail.
    pub detail: String,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    /// What happened.
    pub action: AuditAction,
    /// The user who acted.
    pub actor_id: Option<&'a str>,
    /// What it was done to.
    pub subject: Option<&'a str>,
    /// The client's address.
    pub client: Option<&'a str>,
    /// Human-readable detail.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
            assert_eq!(
                serde_json::to_string(&a).expect("json"),
                format!("\"{}\"", a.as_str())
            );
        }
        assert!("nope".parse::<AuditAction>().is_err());
    }
}
