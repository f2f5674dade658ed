//! # roi-jobs: batch jobs on DataFusion
//!
//! The batch half of ROI: a DAG of jobs that turns the lake's `raw/` zone into its
//! `curated/` zone, and the analysts' door to the lake.
//!
//! - [`job`] defines a job (declared inputs and outputs as `zone.table`, a version) and
//!   the context it runs in: a DataFusion session over the lake, and staged outputs;
//! - [`runner`] plans the DAG, skips jobs whose inputs have not changed
//!   ([`fingerprint`]s), commits outputs atomically, retries transient failures and keeps
//!   a run log in `_runs/jobs/`;
//! - [`registry`] lists the jobs; their logic lives in [`property_master`], [`market`]
//!   (statistics and comparables), [`valuation`] (AVM features, training, scoring) and
//!   [`financials`] (balance, equity, LTV, refinance and cash-out) and [`maintenance`]
//!   (component replacement schedule), and [`propensity`] (the alert models' point-in-time
//!   training set, and their training into the model registry);
//! - [`catalog`] registers every lake table in a DataFusion session as `zone.table`, and
//!   [`sql`] runs a query and renders the result as a table, CSV, NDJSON or Parquet.
//!
//! ```no_run
//! # async fn demo() -> Result<(), roi_jobs::Error> {
//! let lake = std::path::Path::new("data/lake");
//! let jobs = roi_jobs::registry::jobs();
//! let options = roi_jobs::runner::RunOptions::default();
//! roi_jobs::runner::run(lake, &jobs, &["all".into()], &options, &mut |_| {}).await?;
//! let result = roi_jobs::sql::query(lake, "SELECT count(*) FROM curated.property_master").await?;
//! print!("{}", roi_jobs::sql::render_table(&result)?);
//! # Ok(()) }
//! ```

pub mod catalog;
mod error;
pub mod financials;
pub mod fingerprint;
pub mod job;
pub mod maintenance;
pub mod mapping;
pub mod market;
pub mod outcome_mapping;
pub mod propensity;
pub mod property_master;
pub mod registry;
pub mod runner;
pub mod sql;
pub mod valuation;

pub use error::{Error, Result};
