//! Refresh-token rotation with reuse detection (OAuth 2.0 Security BCP, §4.14).
//!
//! A login starts a *family*. Each refresh marks the presented token used and issues its
//! successor in the same family. A token presented after it was used means a copy
//! exists (stolen, or replayed): the whole family is revoked, so thief and victim are
//! both signed out and the victim's next login starts clean.

use crate::store::RefreshRecord;

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: mark it used and issue its successor.
    Rotate,
    /// Used before: revoke its family.
    Reused,
    /// Its family was revoked (logout or earlier reuse).
    Revoked,
    /// Past its lifetime.
    Expired,
}

/// Judges a stored token at `now`.
pub fn judge(token: &RefreshRecord, now: i64) -> Verdict {
    if token.revoked_at.is_some() {
        Verdict::Revoked
    } else if token.used_at.is_some() {
        Verdict::Reused
    } else if now >= token.expires_at {
        Verdict::Expired
    } else {
        Verdict::Rotate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(used: Option<i64>, revoked: Option<i64>) -> RefreshRecord {
        RefreshRecord {
            id: "rt_1".into(),
            org_id: "org_1".into(),
            user_id: "usr_1".into(),
            family_id: "fam_1".into(),
            created_at: 0,
            expires_at: 100,
            used_at: used,
            revoked_at: revoked,
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&token(None, None), 50), Verdict::Rotate);
        assert_eq!(judge(&token(Some(10), None), 50), Verdict::Reused);
        assert_eq!(judge(&token(Some(10), Some(20)), 50), Verdict::Revoked);
        assert_eq!(judge(&token(None, Some(20)), 50), Verdict::Revoked);
        assert_eq!(judge(&token(None, None), 100), Verdict::Expired);
        assert_eq!(
            judge(&token(Some(10), None), 100),
            Verdict::Reused,
            "reuse wins over expiry"
        );
    }
}
