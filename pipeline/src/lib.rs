//! # roi-pipeline: the streaming runtime
//!
//! Reads behaviour events (NDJSON files, stdin, the in-process generator, Kafka), decodes
//! them into Arrow batches, tracks event time with watermarks, keeps compact keyed window
//! state per homeowner, computes signals and features from `roi-features`, scores them with
//! `roi-models`, and writes alerts, signals and dead letters to the lake.
//!
//! The runtime arrives with the streaming work; this crate has no items yet, and
//! `roi stream` is not offered until it does.
