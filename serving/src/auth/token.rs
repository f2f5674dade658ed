//! Access tokens: short-lived JWTs signed with Ed25519 keys that rotate.
//!
//! Keys live in the store so every replica signs and verifies with the same set. A new
//! key is made [`PUBLISH_LEAD_SECS`] before it starts signing, so replicas (which reload
//! the set every minute) already know it when its first token reaches them. A key that
//! no longer signs still verifies until every token it signed has expired, then it is
//! deleted. Which key does what is decided by the pure function [`plan`].

use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::role::Role;
use crate::store::{Store, StoredKey};

/// The `aud` of every access token.
pub const AUDIENCE: &str = "roi-api";
/// How long a new key is published before it signs.
pub const PUBLISH_LEAD_SECS: i64 = 120;
/// Clock skew tolerated when checking `exp`.
pub const LEEWAY_SECS: u64 = 5;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The organization id.
    pub org: String,
    /// The user's role when the token was issued.
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience ([`AUDIENCE`]).
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Set when the organization requires a second factor the user has not enrolled: the
    /// token reaches only the enrolment endpoints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_pending: bool,
}

/// Why a token was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or its header cannot be read (this includes `alg: none`).
    #[error("the access token is malformed")]
    Malformed,
    /// Signed with another algorithm than EdDSA.
    #[error("the access token's algorithm {0} is not accepted")]
    Algorithm(String),
    /// No `kid` in the header.
    #[error("the access token names no signing key")]
    MissingKid,
    /// A `kid` this server does not (or no longer) accept.
    #[error("the access token's signing key is unknown or retired")]
    UnknownKid,
    /// The signature does not match.
    #[error("the access token's signature is invalid")]
    Signature,
    /// Past `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Wrong issuer, audience or a missing claim.
    #[error("the access token is not valid here: {0}")]
    Claims(String),
}

/// What to do with the stored keys at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    /// Make a new key now.
    pub create: bool,
    /// The key to sign with (None only when there are no keys).
    pub signing: Option<String>,
    /// Keys that verify tokens (includes the signing key).
    pub verifying: Vec<String>,
    /// Keys that verify nothing any more and can be deleted.
    pub expired: Vec<String>,
}

/// Decides the key set at `now` from `(kid, created_at)` pairs.
///
/// - Create when there is no key or the newest is older than `rotate_after - lead`.
/// - Sign with the newest key published at least `lead` ago, or the newest if none is.
/// - A key verifies until `lead + token_ttl + leeway` after its successor was made
///   (the successor signs from `lead` after it was made; tokens last `token_ttl`).
pub fn plan(keys: &[(String, i64)], now: i64, rotate_after: i64, token_ttl: i64) -> RotationPlan {
    let lead = PUBLISH_LEAD_SECS.min(rotate_after / 2);
    let mut sorted: Vec<&(String, i64)> = keys.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let create = sorted
        .last()
        .is_none_or(|(_, made)| now - made >= rotate_after - lead);
    let signing = sorted
        .iter()
        .rev()
        .find(|(_, made)| now - made >= lead)
        .or(sorted.last())
        .map(|(kid, _)| kid.clone());
    let mut verifying = Vec::new();
    let mut expired = Vec::new();
    for (i, (kid, _)) in sorted.iter().enumerate() {
        let live = match sorted.get(i + 1) {
            None => true,
            Some((_, next_made)) => now < next_made + lead + token_ttl + LEEWAY_SECS as i64,
        };
        if live || Some(kid) == signing.as_ref() {
            verifying.push(kid.clone());
        } else {
            expired.push(kid.clone());
        }
    }
    RotationPlan {
        create,
        signing,
        verifying,
        expired,
    }
}

struct LoadedKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
}

#[derive(Default)]
struct KeySet {
    keys: Vec<LoadedKey>,
    signing: Option<String>,
}

/// The signing keys in use, kept in step with the store by [`KeyRing::sync`].
pub struct KeyRing {
    set: RwLock<KeySet>,
    issuer: String,
    token_ttl: i64,
    rotate_after: i64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// One key of the JWKS document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// The JWKS document (`/.well-known/jwks.json`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// Every key that verifies tokens now.
    pub keys: Vec<Jwk>,
}

impl KeyRing {
    /// An empty ring; call [`KeyRing::sync`] before use.
    pub fn new(issuer: &str, token_ttl_secs: u64, rotate_after_secs: u64) -> Self {
        KeyRing {
            set: RwLock::new(KeySet::default()),
            issuer: issuer.to_owned(),
            token_ttl: token_ttl_secs as i64,
            rotate_after: rotate_after_secs as i64,
        }
    }

    /// Access-token lifetime, seconds.
    pub fn token_ttl(&self) -> i64 {
        self.token_ttl
    }

    /// Reloads the keys from the store, makes a new one when due and deletes dead ones.
    pub async fn sync(&self, store: &Store, now: i64) -> crate::Result<()> {
        let mut stored = store.signing_keys().await?;
        let pairs = |s: &[StoredKey]| -> Vec<(String, i64)> {
            s.iter().map(|k| (k.kid.clone(), k.created_at)).collect()
        };
        let mut decision = plan(&pairs(&stored), now, self.rotate_after, self.token_ttl);
        if decision.create {
            store.insert_signing_key(&generate(now)).await?;
            stored = store.signing_keys().await?;
            decision = plan(&pairs(&stored), now, self.rotate_after, self.token_ttl);
        }
        let mut keys = Vec::new();
        for key in stored
            .iter()
            .filter(|k| decision.verifying.contains(&k.kid))
        {
            keys.push(load(key)?);
        }
        if let Some(oldest_live) = stored
            .iter()
            .filter(|k| decision.verifying.contains(&k.kid))
            .map(|k| k.created_at)
            .min()
            && !decision.expired.is_empty()
            && let Some(signing) = &decision.signing
        {
            store
                .delete_signing_keys_before(oldest_live, signing)
                .await?;
        }
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        *set = KeySet {
            keys,
            signing: decision.signing,
        };
        Ok(())
    }

    /// Signs an access token for a user. `mfa_pending` limits it to MFA enrolment.
    pub fn issue(
        &self,
        user_id: &str,
        org_id: &str,
        role: Role,
        mfa_pending: bool,
        now: i64,
    ) -> crate::Result<String> {
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        let signing = set.signing.as_deref().unwrap_or("");
        let key = set
            .keys
            .iter()
            .find(|k| k.kid == signing)
            .ok_or_else(|| crate::Error::Key {
                kid: signing.to_owned(),
                detail: "bug: no signing key is loaded".to_owned(),
            })?;
        let claims = Claims {
            sub: user_id.to_owned(),
            org: org_id.to_owned(),
            role,
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + self.token_ttl,
            jti: super::secret::new_id("at"),
            mfa_pending,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| crate::Error::Key {
            kid: key.kid.clone(),
            detail: format!("signing failed: {e}"),
        })
    }

    /// Checks a token's header, key, signature, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        let key = set
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) => {
                    TokenError::Malformed
                }
                other => TokenError::Claims(format!("{other:?}")),
            })
    }

    /// The public keys that verify tokens now.
    pub fn jwks(&self) -> Jwks {
        let set = self.set.read().unwrap_or_else(|p| p.into_inner());
        Jwks {
            keys: set
                .keys
                .iter()
                .map(|k| Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    x: k.public_x.clone(),
                    kid: k.kid.clone(),
                    alg: "EdDSA".into(),
                    use_: "sig".into(),
                })
                .collect(),
        }
    }
}

/// A fresh Ed25519 key made at `now`.
pub fn generate(now: i64) -> StoredKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system random source works");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a key ring just made parses");
    StoredKey {
        kid: super::secret::new_id("key"),
        private_pkcs8: STANDARD.encode(pkcs8.as_ref()),
        public_key: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        created_at: now,
    }
}

fn load(key: &StoredKey) -> crate::Result<LoadedKey> {
    let bad = |detail: String| crate::Error::Key {
        kid: key.kid.clone(),
        detail,
    };
    let der = STANDARD
        .decode(&key.private_pkcs8)
        .map_err(|e| bad(format!("private key is not base64: {e}")))?;
    Ed25519KeyPair::from_pkcs8(&der).map_err(|e| bad(format!("not an Ed25519 PKCS#8 key: {e}")))?;
    let decoding = DecodingKey::from_ed_components(&key.public_key)
        .map_err(|e| bad(format!("public key is not base64url: {e}")))?;
    Ok(LoadedKey {
        kid: key.kid.clone(),
        encoding: EncodingKey::from_ed_der(&der),
        decoding,
        public_x: key.public_key.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const TTL: i64 = 600;

    fn keys(made: &[(&str, i64)]) -> Vec<(String, i64)> {
        made.iter().map(|(k, t)| (k.to_string(), *t)).collect()
    }

    #[test]
    fn first_key_is_made_and_signs_at_once() {
        let p = plan(&[], 1000, DAY, TTL);
        assert!(p.create);
        assert_eq!(p.signing, None);
        let p = plan(&keys(&[("a", 1000)]), 1000, DAY, TTL);
        assert!(!p.create);
        assert_eq!(p.signing.as_deref(), Some("a"));
        assert_eq!(p.verifying, vec!["a"]);
    }

    #[test]
    fn successor_is_published_before_it_signs() {
        let t0 = 0;
        let due = t0 + DAY - PUBLISH_LEAD_SECS;
        assert!(!plan(&keys(&[("a", t0)]), due - 1, DAY, TTL).create);
        assert!(plan(&keys(&[("a", t0)]), due, DAY, TTL).create);
        let both = keys(&[("a", t0), ("b", due)]);
        let p = plan(&both, due + 1, DAY, TTL);
        assert_eq!(
            p.signing.as_deref(),
            Some("a"),
            "b is not published long enough"
        );
        assert_eq!(p.verifying, vec!["a", "b"], "but it already verifies");
        let p = plan(&both, due + PUBLISH_LEAD_SECS, DAY, TTL);
        assert_eq!(p.signing.as_deref(), Some("b"));
    }

    #[test]
    fn old_key_verifies_until_its_last_token_expires() {
        let both = keys(&[("a", 0), ("b", 5000)]);
        let last_signed_by_a = 5000 + PUBLISH_LEAD_SECS;
        let deadline = last_signed_by_a + TTL + LEEWAY_SECS as i64;
        let p = plan(&both, deadline - 1, DAY, TTL);
        assert_eq!(p.verifying, vec!["a", "b"]);
        let p = plan(&both, deadline, DAY, TTL);
        assert_eq!(p.verifying, vec!["b"]);
        assert_eq!(p.expired, vec!["a"]);
    }
}
