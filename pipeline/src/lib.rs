//! # roi-pipeline: the streaming runtime
//!
//! Reads behaviour events, applies event-time windows and computes the feature and signal
//! catalog of `roi-features` for every homeowner, writing to the lake:
//!
//! ```text
//! source (ndjson_file | stdin) ─ chunks of lines
//!   → decode        Arrow RecordBatches; bad lines → dead letters (reason, offset, source)
//!   → dedupe        repeated (org, event_id) → dead letters (duplicate_event)
//!   → event_time    watermark; events beyond the allowed lateness → dead letters (late)
//!   → features      keyed ContactState per homeowner; when a day closes, a feature
//!                   snapshot and the firing signals of each homeowner active that day
//! sinks: features.contact_features, signals.signal_firings, dead_letter.events,
//!        _runs/stream/run-*.json
//! ```
//!
//! Sources sit behind [`source::Source`], operators behind [`operator::Operator`]; a Kafka
//! source and checkpoints plug into the same seams. Outputs are deterministic for a given
//! input: ids, ordering and file boundaries depend only on the data.
//!
//! ```no_run
//! let report = roi_pipeline::run(&roi_pipeline::StreamConfig::new("file:data/lake/raw/events", "data/lake"))?;
//! println!("{} events, {} dead letters", report.accepted, report.dead_letters.values().sum::<u64>());
//! # Ok::<(), roi_pipeline::Error>(())
//! ```

pub mod columns;
pub mod context;
pub mod decode;
pub mod dedupe;
mod error;
pub mod event_time;
pub mod lake;
pub mod operator;
pub mod runtime;
pub mod scoring;
pub mod source;
pub mod watermark;
pub mod window;

pub use error::{Error, Result};
pub use runtime::{StreamConfig, StreamReport, run, run_with_sink};
