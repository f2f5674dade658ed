//! # roi-jobs: batch jobs on DataFusion
//!
//! A dependency-ordered DAG of jobs over the lake: the property master (multi-source
//! merge), market statistics and comparables, AVM training and scoring, financial
//! snapshots, point-in-time feature backfill; plus `roi sql` over every lake table.
//!
//! The jobs arrive with the batch work; this crate has no items yet, and `roi jobs` and
//! `roi sql` are not offered until they do.
