//! Random ids and bearer secrets, and the one-way hash under which secrets are stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// `N` bytes from the operating system's secure random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source is available");
    bytes
}

/// A server-made id such as `usr_5f0c…` (96 random bits, hex).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", hex(&random_bytes::<12>()))
}

/// An id that sorts by creation time: microseconds since the epoch (16 hex digits)
/// then 32 random bits, e.g. `evt_00062f1c9a3b4c5d1f2e3a4b`.
pub fn new_sortable_id(prefix: &str) -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    format!("{prefix}_{micros:016x}{}", hex(&random_bytes::<4>()))
}

/// A bearer secret such as `rt_…` (256 random bits, base64url). The prefix lets secret
/// scanners recognise a leaked one.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()))
}

/// The stored form of a bearer secret: SHA-256, hex. Secrets carry 256 random bits, so a
/// fast hash is enough; a stolen database yields no usable token.
pub fn hash_secret(secret: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref())
}

/// Whether two byte strings are equal, in time that depends only on their lengths (for
/// comparing secrets a client sent with the expected ones).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_are_prefixed_and_distinct() {
        let a = new_id("usr");
        assert!(a.starts_with("usr_") && a.len() == 4 + 24, "{a}");
        assert_ne!(a, new_id("usr"));
        let (e1, e2) = (new_sortable_id("evt"), new_sortable_id("evt"));
        assert!(e1.len() == 4 + 24 && e1[..20] <= e2[..20], "{e1} {e2}");
        let s = new_secret("rt");
        assert!(s.starts_with("rt_") && s.len() == 3 + 43, "{s}");
        assert_ne!(s, new_secret("rt"));
    }

    #[test]
    fn same_compares_whole_strings() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }

    #[test]
    fn secret_hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
