//! Time-based one-time passwords (RFC 6238, the authenticator-app standard): HMAC-SHA1,
//! 6 digits, 30-second steps, one step of clock skew either way. Also the base32 secret
//! encoding, the `otpauth://` URI that authenticator apps read, its QR code as SVG, and
//! one-time recovery codes.
//!
//! Replay prevention is the caller's half: [`matching_step`] returns the step a code
//! belongs to, and the store accepts it only if it is later than the last step accepted
//! for that user, in one atomic update.

use ring::hmac;

/// Digits per code.
pub const DIGITS: u32 = 6;
/// Seconds per step.
pub const PERIOD: i64 = 30;
/// Steps of clock skew accepted either side of now.
pub const SKEW_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// The step `now` falls in.
pub fn step_of(now: i64) -> i64 {
    now.div_euclid(PERIOD)
}

/// The code of `secret` at `step` (RFC 4226 HOTP with the step as the counter).
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &(step as u64).to_be_bytes());
    let mac = tag.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The code at `step`, zero-padded as an app shows it.
pub fn format_code(secret: &[u8], step: i64) -> String {
    format!("{:0width$}", code_at(secret, step), width = DIGITS as usize)
}

/// The step within the skew window around `now` whose code is `code`, if any, among
/// steps later than `after_step` (the last one accepted: a code works once, and never
/// after a later one). Spaces in `code` are ignored; every candidate is compared in
/// constant time.
pub fn matching_step(secret: &[u8], code: &str, now: i64, after_step: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_of(now);
    let mut found = None;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let expected = format_code(secret, step);
        let equal = super::secret::same(expected.as_bytes(), code.as_bytes());
        if equal && step > after_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Whether `code` looks like a TOTP code rather than a recovery code.
pub fn looks_like_totp(code: &str) -> bool {
    let digits: Vec<u8> = code.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.len() == DIGITS as usize && digits.iter().all(u8::is_ascii_digit)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps expect).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored); None when a character
/// is outside the alphabet.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
    {
        let value = BASE32.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

/// The `otpauth://totp/…` URI an authenticator app enrols from.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        percent(issuer),
        percent(account),
        base32_encode(secret),
        percent(issuer),
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters (spaces become `%20`,
/// as authenticator apps expect in labels).
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URI as a QR code, an SVG document.
pub fn qr_svg(uri: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("the enrolment URI does not fit a QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// A fresh recovery code: 80 random bits as four groups of four base32 characters,
/// lower-case (`k3m9-q2xw-7hpa-d4rt`).
pub fn new_recovery_code() -> String {
    let encoded = base32_encode(&super::secret::random_bytes::<10>()).to_lowercase();
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as typed, in the form that is hashed: lower-case, without dashes or
/// spaces.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 secret; the 8-digit values end in these 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_vectors() {
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(format_code(RFC_SECRET, step_of(time)), code, "t = {time}");
        }
    }

    #[test]
    fn the_skew_window_is_one_step_each_way() {
        let now = 1_000_000;
        let step = step_of(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = format_code(RFC_SECRET, step + offset);
            assert_eq!(
                matching_step(RFC_SECRET, &code, now, 0).is_some(),
                accepted,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_code_is_refused_at_or_before_the_last_accepted_step() {
        let now = 1_000_000;
        let step = step_of(now);
        let code = format_code(RFC_SECRET, step);
        assert_eq!(matching_step(RFC_SECRET, &code, now, step - 1), Some(step));
        assert_eq!(matching_step(RFC_SECRET, &code, now, step), None, "replay");
        let earlier = format_code(RFC_SECRET, step - 1);
        assert_eq!(matching_step(RFC_SECRET, &earlier, now, step), None);
        assert_eq!(matching_step(RFC_SECRET, "12345", now, 0), None);
        assert_eq!(matching_step(RFC_SECRET, "abcdef", now, 0), None);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(RFC_SECRET, &spaced, now, 0), Some(step));
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(
            base32_decode("mzxw6ytboi======").as_deref(),
            Some(&b"foobar"[..])
        );
        assert_eq!(base32_decode("MZ1"), None);
        let secret = super::super::secret::random_bytes::<SECRET_BYTES>();
        assert_eq!(
            base32_decode(&base32_encode(&secret)).as_deref(),
            Some(&secret[..])
        );
    }

    #[test]
    fn the_uri_and_qr_code_carry_the_secret() {
        let uri = otpauth_uri("ROI Acme Realty", "ann@example.com", RFC_SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/ROI%20Acme%20Realty:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=ROI%20Acme%20Realty&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri).expect("fits");
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{svg:.80}"
        );
    }

    #[test]
    fn recovery_codes_are_grouped_and_normalise() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.matches('-').count(), 3);
        assert_eq!(
            normalise_recovery_code(&code.to_uppercase().replace('-', " ")),
            code.replace('-', "")
        );
        assert!(!looks_like_totp(&code));
        assert!(looks_like_totp("123 456"));
    }
}
