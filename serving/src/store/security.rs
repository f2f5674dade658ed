//! Second factors, login challenges, the organization's MFA policy and API keys. Like
//! every tenant query, each statement names the organization; the two lookups by secret
//! hash ([`Store::challenge_by_hash`], [`Store::api_key_by_hash`]) find the organization
//! from the record itself.

use sqlx::any::AnyRow;

use super::{
    ORGANIZATION_COLUMNS, Organization, Result, Store, StoreError, Tenant, USER_COLUMNS, failed,
    get, organization_from, unique,
};
use crate::role::Role;

/// A user's TOTP factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The shared secret, base32.
    pub secret: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the user proved their app works; until then the factor is not used at login.
    pub confirmed_at: Option<i64>,
    /// The highest time step accepted.
    pub last_step: i64,
}

/// Whether a user must, and does, sign in with a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaState {
    /// The organization requires a second factor.
    pub required: bool,
    /// The user has a confirmed factor.
    pub enrolled: bool,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallenge {
    /// Server-made id.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// The user whose password was right.
    pub user_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Wrong codes tried so far.
    pub failures: i64,
    /// When it was completed.
    pub used_at: Option<i64>,
}

/// An API key as stored (only its hash; the key itself is shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Server-made id (`key_…`).
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// What it is for, in the maker's words.
    pub name: String,
    /// The role it acts with.
    pub role: Role,
    /// What it may reach (`resource:read` / `resource:write`).
    pub scopes: Vec<String>,
    /// The user it acts for.
    pub created_by: String,
    /// That user's role now: a key never acts above its maker's current role.
    pub creator_role: Role,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if it expires.
    pub expires_at: Option<i64>,
    /// Unix seconds, to the minute.
    pub last_used_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// An API key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    /// What it is for.
    pub name: &'a str,
    /// The role it acts with.
    pub role: Role,
    /// Its scopes.
    pub scopes: &'a [String],
    /// The user it acts for.
    pub created_by: &'a str,
    /// SHA-256 of the key.
    pub key_hash: &'a str,
    /// Unix seconds, if it expires.
    pub expires_at: Option<i64>,
}

/// An OpenID Connect sign-in in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcState {
    /// The organization signing in.
    pub org_id: String,
    /// The provider's name.
    pub provider: String,
    /// Must come back in the ID token.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
    /// `bearer` or `cookie`.
    pub session_kind: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A sign-in to remember until the provider answers.
#[derive(Debug, Clone)]
pub struct NewOidcState<'a> {
    /// SHA-256 of the `state` parameter.
    pub state_hash: &'a str,
    /// The provider's name.
    pub provider: &'a str,
    /// The nonce sent.
    pub nonce: &'a str,
    /// The PKCE verifier.
    pub pkce_verifier: &'a str,
    /// `bearer` or `cookie`.
    pub session_kind: &'a str,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A password-reset token as stored (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Server-made id.
    pub id: String,
    /// The organization.
    pub org_id: String,
    /// Whose password it resets.
    pub user_id: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was used.
    pub used_at: Option<i64>,
}

const CHALLENGE_COLUMNS: &str = "id, org_id, user_id, expires_at, failures, used_at";
const API_KEY_SELECT: &str = "SELECT k.id, k.org_id, k.name, k.role, k.scopes, k.created_by, \
     u.role AS creator_role, k.created_at, k.expires_at, k.last_used_at, k.revoked_at \
     FROM api_keys k JOIN users u ON u.id = k.created_by AND u.org_id = k.org_id";

impl Store {
    /// The login challenge with this token hash, in whichever organization it belongs to.
    pub async fn challenge_by_hash(&self, token_hash: &str) -> Result<Option<MfaChallenge>> {
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM mfa_challenges WHERE token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("looking up a login challenge"))?;
        row.map(|r| challenge_from(&r)).transpose()
    }

    /// The API key with this hash, in whichever organization it belongs to.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!("{API_KEY_SELECT} WHERE k.key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(self.pool())
            .await
            .map_err(failed("looking up an API key"))?;
        row.map(|r| api_key_from(&r)).transpose()
    }
}

impl Store {
    /// Takes the sign-in with this state hash: each state is answered once. None when it
    /// is unknown or was taken before; the caller checks expiry.
    pub async fn take_oidc_state(&self, state_hash: &str, now: i64) -> Result<Option<OidcState>> {
        let row = sqlx::query(
            "UPDATE oidc_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL
             RETURNING org_id, provider, nonce, pkce_verifier, session_kind, expires_at",
        )
        .bind(now)
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("taking an OpenID Connect state"))?;
        row.map(|r| {
            Ok(OidcState {
                org_id: get(&r, "org_id")?,
                provider: get(&r, "provider")?,
                nonce: get(&r, "nonce")?,
                pkce_verifier: get(&r, "pkce_verifier")?,
                session_kind: get(&r, "session_kind")?,
                expires_at: get(&r, "expires_at")?,
            })
        })
        .transpose()
    }
}

impl Store {
    /// The password reset with this token hash, in whichever organization it belongs to.
    pub async fn password_reset_by_hash(&self, token_hash: &str) -> Result<Option<PasswordReset>> {
        let row = sqlx::query(
            "SELECT id, org_id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await
        .map_err(failed("looking up a password reset"))?;
        row.map(|r| {
            Ok(PasswordReset {
                id: get(&r, "id")?,
                org_id: get(&r, "org_id")?,
                user_id: get(&r, "user_id")?,
                expires_at: get(&r, "expires_at")?,
                used_at: get(&r, "used_at")?,
            })
        })
        .transpose()
    }
}

impl Tenant<'_> {
    /// Stores a password-reset token's hash for `user_id`.
    pub async fn create_password_reset(
        &self,
        user_id: &str,
        token_hash: &str,
        created_by: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO password_resets (id, org_id, user_id, token_hash, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::auth::secret::new_id("pwr"))
        .bind(&self.org)
        .bind(user_id)
        .bind(token_hash)
        .bind(created_by)
        .bind(now)
        .bind(expires_at)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing a password reset"))?;
        Ok(())
    }

    /// Sets a user's password and signs out every session they have, atomically; with
    /// `reset`, also uses that reset token (false, and nothing changes, when it was used
    /// already) and every other open reset of the user. Returns how many live sessions
    /// ended, or None when the reset token was already used.
    pub async fn replace_password(
        &self,
        user_id: &str,
        password_hash: &str,
        reset: Option<&str>,
        now: i64,
    ) -> Result<Option<u64>> {
        let mut tx = self.store.begin().await?;
        if let Some(reset_id) = reset {
            let done = sqlx::query(
                "UPDATE password_resets SET used_at = $1 WHERE org_id = $2 AND id = $3 AND used_at IS NULL",
            )
            .bind(now)
            .bind(&self.org)
            .bind(reset_id)
            .execute(&mut *tx)
            .await
            .map_err(failed("using a password reset"))?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
        }
        sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE org_id = $2 AND user_id = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("closing open password resets"))?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE org_id = $2 AND id = $3")
            .bind(password_hash)
            .bind(&self.org)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(failed("changing a password"))?;
        let rows = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1
             WHERE org_id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING used_at",
        )
        .bind(now)
        .bind(&self.org)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed("signing out a user's sessions"))?;
        let live = super::tenant::live_sessions(&rows)?;
        tx.commit()
            .await
            .map_err(failed("committing a password change"))?;
        Ok(Some(live))
    }

    /// Remembers a sign-in sent to a provider (and forgets ones a day past expiry).
    pub async fn create_oidc_state(&self, s: NewOidcState<'_>, now: i64) -> Result<()> {
        sqlx::query("DELETE FROM oidc_states WHERE expires_at < $1")
            .bind(now - 86_400)
            .execute(self.store.pool())
            .await
            .map_err(failed("forgetting old OpenID Connect states"))?;
        sqlx::query(
            "INSERT INTO oidc_states (state_hash, org_id, provider, nonce, pkce_verifier, session_kind, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.state_hash)
        .bind(&self.org)
        .bind(s.provider)
        .bind(s.nonce)
        .bind(s.pkce_verifier)
        .bind(s.session_kind)
        .bind(now)
        .bind(s.expires_at)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing an OpenID Connect state"))?;
        Ok(())
    }

    /// The user linked to a provider's subject.
    pub async fn user_by_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<super::User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE org_id = $1 AND id =
                 (SELECT user_id FROM oidc_identities
                  WHERE org_id = $1 AND provider = $2 AND subject = $3)"
        ))
        .bind(&self.org)
        .bind(provider)
        .bind(subject)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("looking up a linked identity"))?;
        row.map(|r| super::user_from(&r)).transpose()
    }

    /// Links a provider's subject to a user.
    pub async fn link_identity(
        &self,
        provider: &str,
        subject: &str,
        user_id: &str,
        email: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO oidc_identities (org_id, provider, subject, user_id, email, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.org)
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .bind(email)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(unique(
            format!("a link of this {provider} identity"),
            "linking an identity",
        ))?;
        Ok(())
    }

    /// The organization itself.
    pub async fn organization(&self) -> Result<Organization> {
        let row = sqlx::query(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1"
        ))
        .bind(&self.org)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("reading the organization"))?;
        organization_from(&row)
    }

    /// Requires (or stops requiring) a second factor of every user.
    pub async fn set_mfa_required(&self, required: bool) -> Result<()> {
        sqlx::query("UPDATE organizations SET mfa_policy = $1 WHERE id = $2")
            .bind(if required { "required" } else { "optional" })
            .bind(&self.org)
            .execute(self.store.pool())
            .await
            .map_err(failed("changing the MFA policy"))?;
        Ok(())
    }

    /// Whether `user_id` must, and does, use a second factor.
    pub async fn mfa_state(&self, user_id: &str) -> Result<MfaState> {
        let row = sqlx::query(
            "SELECT o.mfa_policy, f.confirmed_at FROM organizations o
             LEFT JOIN totp_factors f ON f.org_id = o.id AND f.user_id = $2
             WHERE o.id = $1",
        )
        .bind(&self.org)
        .bind(user_id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("reading the MFA state"))?;
        let policy: String = get(&row, "mfa_policy")?;
        let confirmed: Option<i64> = get(&row, "confirmed_at")?;
        Ok(MfaState {
            required: policy == "required",
            enrolled: confirmed.is_some(),
        })
    }

    /// The user's TOTP factor, confirmed or not.
    pub async fn totp_factor(&self, user_id: &str) -> Result<Option<TotpFactor>> {
        let row = sqlx::query(
            "SELECT secret, created_at, confirmed_at, last_step FROM totp_factors
             WHERE org_id = $1 AND user_id = $2",
        )
        .bind(&self.org)
        .bind(user_id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a TOTP factor"))?;
        row.map(|r| {
            Ok(TotpFactor {
                secret: get(&r, "secret")?,
                created_at: get(&r, "created_at")?,
                confirmed_at: get(&r, "confirmed_at")?,
                last_step: get(&r, "last_step")?,
            })
        })
        .transpose()
    }

    /// Starts an enrolment with a new secret, replacing an unconfirmed one. A confirmed
    /// factor is never replaced here ([`StoreError::Conflict`]): it must be removed first.
    pub async fn begin_totp(&self, user_id: &str, secret: &str, now: i64) -> Result<()> {
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "DELETE FROM totp_factors WHERE org_id = $1 AND user_id = $2 AND confirmed_at IS NULL",
        )
        .bind(&self.org)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("discarding an unconfirmed TOTP factor"))?;
        sqlx::query(
            "INSERT INTO totp_factors (user_id, org_id, secret, created_at, last_step)
             VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(user_id)
        .bind(&self.org)
        .bind(secret)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(unique(
            "a confirmed second factor".to_owned(),
            "storing a TOTP factor",
        ))?;
        tx.commit()
            .await
            .map_err(failed("committing a TOTP enrolment"))?;
        Ok(())
    }

    /// Confirms a pending factor with the step of a valid code and stores the recovery
    /// codes' hashes (replacing any), atomically. False when there was no pending factor
    /// or the step was already used.
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[String],
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query(
            "UPDATE totp_factors SET confirmed_at = $1, last_step = $2
             WHERE org_id = $3 AND user_id = $4 AND confirmed_at IS NULL AND last_step < $2",
        )
        .bind(now)
        .bind(step)
        .bind(&self.org)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("confirming a TOTP factor"))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        replace_codes(&mut tx, &self.org, user_id, recovery_hashes, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing a TOTP confirmation"))?;
        Ok(true)
    }

    /// Accepts a code's time step for a confirmed factor if it is later than every step
    /// accepted before: the atomic half of replay prevention. False means a replay (or no
    /// confirmed factor).
    pub async fn accept_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE totp_factors SET last_step = $1
             WHERE org_id = $2 AND user_id = $3 AND confirmed_at IS NOT NULL AND last_step < $1",
        )
        .bind(step)
        .bind(&self.org)
        .bind(user_id)
        .execute(self.store.pool())
        .await
        .map_err(failed("accepting a TOTP code"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user's factor, recovery codes and open challenges; false when they had
    /// no factor.
    pub async fn remove_totp(&self, user_id: &str) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let done = sqlx::query("DELETE FROM totp_factors WHERE org_id = $1 AND user_id = $2")
            .bind(&self.org)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(failed("removing a TOTP factor"))?;
        for table in ["recovery_codes", "mfa_challenges"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE org_id = $1 AND user_id = $2"
            ))
            .bind(&self.org)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(failed("removing a user's recovery codes and challenges"))?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a factor removal"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces a user's recovery codes with these hashes.
    pub async fn replace_recovery_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: i64,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        replace_codes(&mut tx, &self.org, user_id, hashes, now).await?;
        tx.commit()
            .await
            .map_err(failed("committing new recovery codes"))?;
        Ok(())
    }

    /// Uses a recovery code once; false when it is unknown or already used.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1
             WHERE org_id = $2 AND user_id = $3 AND code_hash = $4 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(user_id)
        .bind(hash)
        .execute(self.store.pool())
        .await
        .map_err(failed("using a recovery code"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Unused recovery codes of a user.
    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes
             WHERE org_id = $1 AND user_id = $2 AND used_at IS NULL",
        )
        .bind(&self.org)
        .bind(user_id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("counting recovery codes"))?;
        get(&row, "n")
    }

    /// Opens a login challenge for a user whose password was right.
    pub async fn create_challenge(
        &self,
        user_id: &str,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO mfa_challenges (id, org_id, user_id, token_hash, created_at, expires_at, failures)
             VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(crate::auth::secret::new_id("mfa"))
        .bind(&self.org)
        .bind(user_id)
        .bind(token_hash)
        .bind(now)
        .bind(expires_at)
        .execute(self.store.pool())
        .await
        .map_err(failed("opening a login challenge"))?;
        Ok(())
    }

    /// Counts a wrong code against a challenge; returns the failures so far.
    pub async fn challenge_failed(&self, id: &str) -> Result<i64> {
        let row = sqlx::query(
            "UPDATE mfa_challenges SET failures = failures + 1
             WHERE org_id = $1 AND id = $2 RETURNING failures",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_one(self.store.pool())
        .await
        .map_err(failed("counting a wrong code"))?;
        get(&row, "failures")
    }

    /// Completes a challenge once; false when it was completed already.
    pub async fn finish_challenge(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE mfa_challenges SET used_at = $1 WHERE org_id = $2 AND id = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("completing a login challenge"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores an API key's hash.
    pub async fn create_api_key(&self, key: NewApiKey<'_>, now: i64) -> Result<String> {
        let id = crate::auth::secret::new_id("key");
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, name, key_hash, role, scopes, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&self.org)
        .bind(key.name)
        .bind(key.key_hash)
        .bind(key.role.as_str())
        .bind(key.scopes.join(" "))
        .bind(key.created_by)
        .bind(now)
        .bind(key.expires_at)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing an API key"))?;
        Ok(id)
    }

    /// One API key.
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "{API_KEY_SELECT} WHERE k.org_id = $1 AND k.id = $2"
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading an API key"))?;
        row.map(|r| api_key_from(&r)).transpose()
    }

    /// Every API key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!(
            "{API_KEY_SELECT} WHERE k.org_id = $1 ORDER BY k.created_at DESC, k.id"
        ))
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing API keys"))?;
        rows.iter().map(api_key_from).collect()
    }

    /// Revokes a key; false when there is no such live key.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(failed("revoking an API key"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that a key was used (callers do this at most once a minute per key).
    pub async fn touch_api_key(&self, id: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now)
            .bind(&self.org)
            .bind(id)
            .execute(self.store.pool())
            .await
            .map_err(failed("recording an API key's use"))?;
        Ok(())
    }
}

async fn replace_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org: &str,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user_id)
        .execute(&mut **tx)
        .await
        .map_err(failed("discarding old recovery codes"))?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (id, org_id, user_id, code_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::auth::secret::new_id("rc"))
        .bind(org)
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(failed("storing a recovery code"))?;
    }
    Ok(())
}

fn challenge_from(r: &AnyRow) -> Result<MfaChallenge> {
    Ok(MfaChallenge {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        user_id: get(r, "user_id")?,
        expires_at: get(r, "expires_at")?,
        failures: get(r, "failures")?,
        used_at: get(r, "used_at")?,
    })
}

fn api_key_from(r: &AnyRow) -> Result<ApiKey> {
    let role = |column: &str| -> Result<Role> {
        let text: String = get(r, column)?;
        text.parse().map_err(StoreError::Corrupt)
    };
    let scopes: String = get(r, "scopes")?;
    Ok(ApiKey {
        id: get(r, "id")?,
        org_id: get(r, "org_id")?,
        name: get(r, "name")?,
        role: role("role")?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        created_by: get(r, "created_by")?,
        creator_role: role("creator_role")?,
        created_at: get(r, "created_at")?,
        expires_at: get(r, "expires_at")?,
        last_used_at: get(r, "last_used_at")?,
        revoked_at: get(r, "revoked_at")?,
    })
}
