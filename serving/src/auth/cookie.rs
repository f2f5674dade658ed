//! Browser sessions in cookies, and the CSRF check that goes with them.
//!
//! A browser that signs in with `"session": "cookie"` gets three cookies, all
//! `Secure; SameSite=Lax; Path=/` with the `__Host-` prefix (so no subdomain can set or
//! shadow them):
//! - [`ACCESS`], the access token, `HttpOnly`;
//! - [`REFRESH`], the refresh token, `HttpOnly`;
//! - [`CSRF`], a random token that page scripts can read.
//!
//! Every state-changing request authenticated by cookie must echo the CSRF cookie in the
//! [`CSRF_HEADER`] header (double submit): another site can make the browser send the
//! cookies but cannot read them, so it cannot set the header.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method};

use crate::problem::Problem;

/// The access-token cookie.
pub const ACCESS: &str = "__Host-roi_access";
/// The refresh-token cookie.
pub const REFRESH: &str = "__Host-roi_refresh";
/// The CSRF cookie, readable by page scripts.
pub const CSRF: &str = "__Host-roi_csrf";
/// The header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn get<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Refuses a state-changing request whose CSRF header is missing or differs from the
/// CSRF cookie. Safe methods (GET, HEAD, OPTIONS) pass.
pub fn check_csrf(method: &Method, headers: &HeaderMap) -> Result<(), Problem> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let cookie = get(headers, CSRF);
    let header = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    match (cookie, header) {
        (Some(c), Some(h)) if super::secret::same(c.as_bytes(), h.as_bytes()) => Ok(()),
        (None, _) => Err(Problem::forbidden(format!(
            "cookie-authenticated requests that change state need the {CSRF} cookie; sign in again"
        ))),
        _ => Err(Problem::forbidden(format!(
            "CSRF check failed: send the {CSRF} cookie's value in the {CSRF_HEADER} header"
        ))),
    }
}

/// A `Set-Cookie` value for one of the session cookies; `max_age` 0 deletes it.
pub fn set(name: &str, value: &str, max_age: i64, http_only: bool) -> HeaderValue {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; Secure; SameSite=Lax{http_only}"
    ))
    .expect("cookie values are base64url and JWTs, valid in a header")
}

/// Appends the three session cookies to `headers`.
pub fn set_session(
    headers: &mut HeaderMap,
    access: &str,
    access_ttl: i64,
    refresh: &str,
    refresh_ttl: i64,
    csrf: &str,
) {
    headers.append(SET_COOKIE, set(ACCESS, access, access_ttl, true));
    headers.append(SET_COOKIE, set(REFRESH, refresh, refresh_ttl, true));
    headers.append(SET_COOKIE, set(CSRF, csrf, refresh_ttl, false));
}

/// Appends headers that delete the three session cookies.
pub fn clear_session(headers: &mut HeaderMap) {
    for (name, http_only) in [(ACCESS, true), (REFRESH, true), (CSRF, false)] {
        headers.append(SET_COOKIE, set(name, "", 0, http_only));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = headers(&[
            ("cookie", "a=1; __Host-roi_csrf=xyz ; b=2"),
            ("cookie", "c=3"),
        ]);
        assert_eq!(get(&h, CSRF), Some("xyz"));
        assert_eq!(get(&h, "c"), Some("3"));
        assert_eq!(get(&h, ACCESS), None);
    }

    #[test]
    fn csrf_needs_a_matching_header_on_unsafe_methods() {
        let with = |header: Option<&str>| {
            let mut pairs = vec![("cookie", "__Host-roi_csrf=tok")];
            if let Some(v) = header {
                pairs.push(("x-csrf-token", v));
            }
            headers(&pairs)
        };
        assert!(check_csrf(&Method::GET, &with(None)).is_ok());
        assert!(check_csrf(&Method::POST, &with(Some("tok"))).is_ok());
        assert!(check_csrf(&Method::POST, &with(None)).is_err());
        assert!(check_csrf(&Method::DELETE, &with(Some("other"))).is_err());
        assert!(check_csrf(&Method::POST, &headers(&[("x-csrf-token", "tok")])).is_err());
    }

    #[test]
    fn set_cookie_carries_the_safety_attributes() {
        let v = set(ACCESS, "jwt", 600, true);
        assert_eq!(
            v.to_str().expect("ascii"),
            "__Host-roi_access=jwt; Path=/; Max-Age=600; Secure; SameSite=Lax; HttpOnly"
        );
    }
}
