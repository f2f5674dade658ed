//! What an API key may reach. A scope is `RESOURCE:read` (GET and HEAD) or
//! `RESOURCE:write` (every other method), where the resource is the first segment of the
//! route (`/users/{id}` is `users`; `/me` counts as `users`, `/ws` as `alerts`). Routes that manage
//! sessions, factors and keys (`/auth/…`, `/api-keys…`) are closed to keys whatever
//! their scopes. The check runs in the one authentication extractor, so a new route is
//! covered without its handler doing anything.

use axum::http::Method;

/// Resources a key can be scoped to.
pub const RESOURCES: &[&str] = &[
    "agents",
    "alerts",
    "audit",
    "campaigns",
    "contacts",
    "documents",
    "invitations",
    "notifications",
    "organization",
    "routing",
    "segments",
    "templates",
    "users",
    "webhooks",
];

/// Every valid scope, sorted.
pub fn catalog() -> Vec<String> {
    let mut all: Vec<String> = RESOURCES
        .iter()
        .flat_map(|r| [format!("{r}:read"), format!("{r}:write")])
        .collect();
    all.sort();
    all
}

/// The scope a call of `method` on the route template `route` needs; None when keys may
/// not call it at all.
pub fn needed(method: &Method, route: &str) -> Option<String> {
    let first = route.trim_start_matches('/').split('/').next()?;
    let resource = match first {
        "me" => "users",
        // The alert event socket.
        "ws" => "alerts",
        other => RESOURCES.iter().copied().find(|r| *r == other)?,
    };
    let access = if method == Method::GET || method == Method::HEAD {
        "read"
    } else {
        "write"
    };
    Some(format!("{resource}:{access}"))
}

/// Checks requested scopes against the catalog; the error names the first unknown one.
pub fn validate(scopes: &[String]) -> Result<(), String> {
    let known = catalog();
    if scopes.is_empty() {
        return Err("scopes: give at least one".to_owned());
    }
    match scopes.iter().find(|s| !known.contains(s)) {
        Some(bad) => Err(format!(
            "scopes: {bad:?} is not a scope; choose from {}",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_resource_scopes() {
        assert_eq!(
            needed(&Method::GET, "/users/{id}").as_deref(),
            Some("users:read")
        );
        assert_eq!(
            needed(&Method::PUT, "/users/{id}/role").as_deref(),
            Some("users:write")
        );
        assert_eq!(needed(&Method::GET, "/me").as_deref(), Some("users:read"));
        assert_eq!(
            needed(&Method::POST, "/invitations").as_deref(),
            Some("invitations:write")
        );
        assert_eq!(
            needed(&Method::GET, "/audit").as_deref(),
            Some("audit:read")
        );
        assert_eq!(needed(&Method::POST, "/auth/logout-all"), None);
        assert_eq!(needed(&Method::GET, "/api-keys"), None);
    }

    #[test]
    fn unknown_scopes_are_named() {
        assert!(validate(&["users:read".into(), "audit:read".into()]).is_ok());
        let e = validate(&["users:read".into(), "auth:write".into()]).expect_err("unknown");
        assert!(e.contains("\"auth:write\""), "{e}");
        assert!(validate(&[]).is_err());
    }
}
