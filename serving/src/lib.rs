//! # roi-serving: the HTTP layer
//!
//! An axum application over a SQL store (SQLite by default, PostgreSQL by configuration):
//! multi-tenant auth, alerts with routing and WebSocket push, documents, campaigns.
//!
//! The server arrives with the serving work; this crate has no items yet, and `roi serve`
//! is not offered until it does.
