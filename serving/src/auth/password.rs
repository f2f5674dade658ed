//! Password hashing with argon2id (RFC 9106) at OWASP's recommended cost: 19 MiB of
//! memory, 2 passes, 1 lane. Hashing is CPU-bound: call it from `spawn_blocking`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::problem::Problem;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted, in characters (bounds the work an attacker can ask for).
pub const MAX_LENGTH: usize = 256;

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    /// Verified against when the user does not exist, so that an unknown e-mail costs
    /// the same time as a wrong password.
    decoy: String,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// argon2id, m = 19456 KiB, t = 2, p = 1.
    pub fn new() -> Self {
        let params = Params::new(19 * 1024, 2, 1, None).expect("argon2 parameters are in range");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut p = Passwords {
            argon,
            decoy: String::new(),
        };
        p.decoy = p.hash_unchecked(&super::secret::new_secret("decoy"));
        p
    }

    fn hash_unchecked(&self, password: &str) -> String {
        let salt = SaltString::encode_b64(&super::secret::random_bytes::<16>())
            .expect("16 bytes is a valid salt length");
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2id hashing cannot fail with valid parameters and salt")
            .to_string()
    }

    /// Checks the policy, then hashes; the result is a PHC string.
    pub fn hash(&self, password: &str) -> Result<String, Problem> {
        check_policy(password)?;
        Ok(self.hash_unchecked(password))
    }

    /// Whether `password` matches `phc`; with `None` (no such user) it spends the same
    /// time and answers false.
    pub fn verify(&self, password: &str, phc: Option<&str>) -> bool {
        let (phc, real) = match phc {
            Some(p) => (p, true),
            None => (self.decoy.as_str(), false),
        };
        if password.chars().count() > MAX_LENGTH {
            return false;
        }
        let Ok(parsed) = PasswordHash::new(phc) else {
            tracing::error!("a stored password hash is not a PHC string");
            return false;
        };
        self.argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && real
    }
}

/// Length bounds; the message says which was broken.
pub fn check_policy(password: &str) -> Result<(), Problem> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(Problem::invalid(format!(
            "password: too short ({n} characters; at least {MIN_LENGTH})"
        )));
    }
    if n > MAX_LENGTH {
        return Err(Problem::invalid(format!(
            "password: too long ({n} characters; at most {MAX_LENGTH})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id_with_owasp_cost() {
        let p = Passwords::new();
        let h = p.hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse battery", Some(&h)));
        assert!(!p.verify("correct horse battery!", Some(&h)));
        assert!(!p.verify("correct horse battery", None));
        assert_ne!(h, p.hash("correct horse battery").expect("hash"), "salted");
    }

    #[test]
    fn policy_names_the_problem() {
        let e = check_policy("short").expect_err("short").to_string();
        assert!(e.contains("too short"), "{e}");
        let e = check_policy(&"x".repeat(300))
            .expect_err("long")
            .to_string();
        assert!(e.contains("too long"), "{e}");
    }
}
