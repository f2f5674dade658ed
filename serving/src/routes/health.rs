//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::problem::{Json, Problem};
use crate::store::Backend;

/// Health status.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub(crate) struct Health {
    /// `ok` or `ready`.
    status: String,
    /// The store's backend (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        store: None,
    })
}

/// Readiness: the store (and Redis, when configured) answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "A dependency is down", body = crate::problem::ProblemBody,
         content_type = "application/problem+json"),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        Problem::unavailable("the store does not answer").retry_after(5)
    })?;
    state.limiter.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed: Redis");
        Problem::unavailable("Redis does not answer").retry_after(5)
    })?;
    let store = match state.store.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Ok(Json(Health {
        status: "ready".into(),
        store: Some(store.into()),
    }))
}

/// Request counters and latency histograms (OpenMetrics text, which Prometheus scrapes).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text exposition", body = String,
               content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
