//! # roi-features: the one feature and signal catalog
//!
//! Every feature (35+ per homeowner) and signal (11, in three categories) is defined here
//! once, with its name, description, window and unit, and is computable two ways from the
//! same definition: incrementally by the streaming job (`roi-pipeline`) and point-in-time
//! from history by the batch backfill (`roi-jobs`), which the parity tests hold equal.
//!
//! The catalog itself arrives with the streaming work; this crate has no items yet, and
//! `roi features list` is not offered until it does.
