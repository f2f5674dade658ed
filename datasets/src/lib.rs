//! # roi-datasets: a synthetic real-estate world with ground truth
//!
//! [`generate`] writes a deterministic world (same seed ⇒ byte-identical files) into a
//! lake's `raw/` zone or any directory:
//!
//! - market geography and series: `metros`, `neighbourhoods`, `price_index`, `mortgage_rates`;
//! - the business: `organizations`, `territories`, `agents`, `contacts` (homeowners);
//! - housing: `sales`, `loans`, and `property_records` from three disagreeing sources;
//! - behaviour: `events/arrivals-YYYY-MM.ndjson`, in arrival order with out-of-order and
//!   late events (and malformed lines with `dirty`);
//! - labels and truth: `outcomes`, `truth_intent` (latent 3-month probabilities, the
//!   oracle), `truth_properties`, `truth_property_values`, `truth_record_links`.
//!
//! Every table is a directory with Parquet files and a `_manifest.json`; the world has a
//! `manifest.json` with seed, scale and counts. The generative story is in the crate's
//! README. [`real`] locates the vendored real datasets.
//!
//! ```no_run
//! use roi_datasets::{generate, Scale, WorldConfig};
//! let report = generate(&WorldConfig {
//!     scale: Scale::Tiny, seed: 7, dirty: false, out: "/tmp/world".into(), progress: false,
//! })?;
//! println!("{} events", report.manifest.events.events);
//! # Ok::<(), roi_datasets::Error>(())
//! ```

pub mod behaviour;
pub mod calendar;
mod error;
pub mod event_log;
pub mod geography;
pub mod homeowner;
pub mod housing;
pub mod intent;
pub mod lake;
pub mod market;
pub mod people;
pub mod random;
pub mod real;
pub mod records;
mod scale;
mod world;

pub use error::{Error, Result};
pub use scale::{Scale, ScaleParams};
pub use world::{GenerationReport, OracleSample, WorldConfig, WorldManifest, generate};
