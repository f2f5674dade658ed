//! A batch job: what it reads, what it writes, and the context it runs in.
//!
//! A job never writes into the lake directly. It hands its output tables to
//! [`JobContext::write`] / [`JobContext::write_batches`], which fill a hidden staging
//! directory; the runner moves the staged tables into place only after the whole job
//! succeeded, so a reader never sees a half-written table.

use std::fs::{self, File};
use std::future::Future;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use roi_schemas::Table;

use crate::{Error, Result};

/// The future a job's `run` returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<JobReport>> + Send + 'a>>;

/// One batch job of the DAG.
///
/// Contract: `run` reads only tables named in [`Job::inputs`] (through the context's
/// session) and writes every table named in [`Job::outputs`], nothing else, through the
/// context. Given the same inputs, version and as-of date it writes the same rows: the
/// runner relies on this to skip jobs whose inputs have not changed.
pub trait Job: Send + Sync {
    /// Name used on the command line, e.g. `property-master`.
    fn name(&self) -> &'static str;
    /// One line for `roi jobs list`.
    fn description(&self) -> &'static str;
    /// Bumped whenever the job's logic changes, so that its outputs are rebuilt.
    fn version(&self) -> u32;
    /// Tables read, as `zone.table`.
    fn inputs(&self) -> &'static [&'static str];
    /// Inputs that may be absent (the job then works without them).
    fn optional_inputs(&self) -> &'static [&'static str] {
        &[]
    }
    /// Tables written, as `zone.table`.
    fn outputs(&self) -> &'static [&'static str];
    /// Whether the job looks at a point in time (`--date`); jobs that do not are not
    /// rerun when only the date changes, and see no date.
    fn uses_date(&self) -> bool {
        false
    }
    /// Does the work.
    fn run<'a>(&'a self, cx: &'a JobContext) -> JobFuture<'a>;
}

/// What a job reports besides its output tables.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// Lines worth showing (quality figures, warnings), also kept in the run log.
    pub notes: Vec<String>,
}

/// A table a job has written into staging.
#[derive(Debug)]
pub(crate) struct StagedTable {
    pub(crate) table: String,
    pub(crate) dir: PathBuf,
    pub(crate) rows: u64,
}

/// Everything a running job may use.
pub struct JobContext {
    lake: PathBuf,
    as_of: Option<NaiveDate>,
    session: SessionContext,
    outputs: &'static [&'static str],
    run_id: String,
    staged: Mutex<Vec<StagedTable>>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("lake", &self.lake)
            .field("as_of", &self.as_of)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    pub(crate) fn new(
        lake: &Path,
        as_of: Option<NaiveDate>,
        session: SessionContext,
        outputs: &'static [&'static str],
        run_id: &str,
    ) -> JobContext {
        JobContext {
            lake: lake.to_path_buf(),
            as_of,
            session,
            outputs,
            run_id: run_id.to_owned(),
            staged: Mutex::new(Vec::new()),
        }
    }

    /// Lake root.
    pub fn lake(&self) -> &Path {
        &self.lake
    }

    /// The `--date` the run is for, if given.
    pub fn as_of(&self) -> Option<NaiveDate> {
        self.as_of
    }

    /// A DataFusion session with the job's inputs registered as `zone.table`.
    pub fn session(&self) -> &SessionContext {
        &self.session
    }

    /// Whether `table` (`zone.table`) exists in the lake.
    pub fn has_table(&self, table: &str) -> bool {
        has_table(&self.session, table)
    }

    /// Reads a whole table into rows.
    pub async fn read<T: Table>(&self, table: &str) -> Result<Vec<T>> {
        read_rows(&self.session, table).await
    }

    /// Reads a whole table as Arrow batches.
    pub async fn read_batches(&self, table: &str) -> Result<Vec<RecordBatch>> {
        read_batches(&self.session, table).await
    }

    /// Runs a query and collects its result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.session.sql(sql).await.map_err(|e| Error::Query {
            message: e.to_string(),
            hint: String::new(),
        })?;
        df.collect().await.map_err(|e| Error::Query {
            message: e.to_string(),
            hint: String::new(),
        })
    }

    /// Stages `rows` as the output table `table` (`zone.table`, one of the job's outputs).
    pub fn write<T: Table>(&self, table: &str, rows: &[T]) -> Result<u64> {
        let mut batches = Vec::new();
        for chunk in rows.chunks(256 * 1024) {
            batches.push(T::to_batch(chunk).map_err(|e| Error::Internal(e.to_string()))?);
        }
        self.write_batches(table, T::schema(), &batches)
    }

    /// Stages Arrow batches as the output table `table` (`zone.table`).
    pub fn write_batches(
        &self,
        table: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<u64> {
        let dir = self.staging_dir(table)?;
        let (_, name) = split(table)?;
        let path = dir.join("part-00000.parquet");
        let rows = write_parquet(&path, schema.clone(), batches)?;
        let manifest = serde_json::json!({
            "table": name,
            "format": "parquet",
            "schema_version": roi_schemas::SCHEMA_VERSION,
            "rows": rows,
            "files": [{"path": "part-00000.parquet", "rows": rows}],
            "columns": schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                .collect::<Vec<_>>(),
            "run_id": self.run_id,
        });
        let manifest_path = dir.join("_manifest.json");
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::Internal(format!("manifest does not serialise: {e}")))?;
        fs::write(&manifest_path, text + "\n").map_err(Error::io("writing", &manifest_path))?;
        self.staged(table, dir, rows)?;
        Ok(rows)
    }

    /// Stages files (e.g. a model) as the output `table` (`zone.table`): the directory is
    /// committed like any table.
    pub fn write_files(&self, table: &str, files: &[(&str, Vec<u8>)]) -> Result<()> {
        let dir = self.staging_dir(table)?;
        for (file, bytes) in files {
            let path = dir.join(file);
            fs::write(&path, bytes).map_err(Error::io("writing", &path))?;
        }
        self.staged(table, dir, files.len() as u64)
    }

    /// A fresh staging directory for the declared output `table`.
    fn staging_dir(&self, table: &str) -> Result<PathBuf> {
        if !self.outputs.contains(&table) {
            return Err(Error::Internal(format!(
                "job wrote {table}, which it does not declare as an output"
            )));
        }
        let (zone, name) = split(table)?;
        let dir = self
            .lake
            .join(zone)
            .join(format!(".{name}.staging-{}", self.run_id));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(Error::io("removing", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
        Ok(dir)
    }

    /// Records `dir` as the staged version of `table` (replacing an earlier one).
    fn staged(&self, table: &str, dir: PathBuf, rows: u64) -> Result<()> {
        let mut staged = self
            .staged
            .lock()
            .map_err(|_| Error::Internal("staging list poisoned".into()))?;
        staged.retain(|s| s.table != table);
        staged.push(StagedTable {
            table: table.to_owned(),
            dir,
            rows,
        });
        Ok(())
    }

    /// The run's id (also names model versions).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub(crate) fn take_staged(&self) -> Vec<StagedTable> {
        self.staged
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }
}

pub(crate) fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<u64> {
    let file = File::create(path).map_err(Error::io("creating", path))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("roi-jobs".to_owned())
        .build();
    let parquet_error = |e: parquet::errors::ParquetError| Error::Output {
        what: path.display().to_string(),
        message: e.to_string(),
    };
    let mut writer =
        ArrowWriter::try_new(BufWriter::with_capacity(1 << 20, file), schema, Some(props))
            .map_err(parquet_error)?;
    let mut rows = 0;
    for batch in batches {
        writer.write(batch).map_err(parquet_error)?;
        rows += batch.num_rows() as u64;
    }
    writer.close().map_err(parquet_error)?;
    Ok(rows)
}

/// Reads a whole registered table of `session` as Arrow batches.
pub(crate) async fn read_batches(
    session: &SessionContext,
    table: &str,
) -> Result<Vec<RecordBatch>> {
    let df = session
        .table(reference(table))
        .await
        .map_err(|e| Error::Data {
            table: table.to_owned(),
            message: format!("cannot be read: {e}"),
        })?;
    df.collect().await.map_err(|e| Error::Data {
        table: table.to_owned(),
        message: e.to_string(),
    })
}

/// Reads a whole registered table of `session` into rows.
pub(crate) async fn read_rows<T: Table>(session: &SessionContext, table: &str) -> Result<Vec<T>> {
    let batches = read_batches(session, table).await?;
    let mut rows = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in &batches {
        rows.extend(T::from_batch(batch).map_err(|e| Error::Data {
            table: table.to_owned(),
            message: e.to_string(),
        })?);
    }
    Ok(rows)
}

/// The date a dated job works at: `--date` if given, else the day of the latest sale.
pub fn as_of_or_latest_sale(
    given: Option<NaiveDate>,
    sale_days: impl IntoIterator<Item = NaiveDate>,
) -> Result<NaiveDate> {
    given
        .or_else(|| sale_days.into_iter().max())
        .ok_or_else(|| Error::Data {
            table: "raw.sales".into(),
            message: "has no sales to take the date from; pass --date".into(),
        })
}

/// `zone.table` -> (`zone`, `table`).
pub(crate) fn split(table: &str) -> Result<(&str, &str)> {
    table
        .split_once('.')
        .ok_or_else(|| Error::Internal(format!("table name {table:?} is not zone.table")))
}

/// Whether `table` (`zone.table`) is registered in `session`.
pub(crate) fn has_table(session: &SessionContext, table: &str) -> bool {
    session.table_exist(reference(table)).unwrap_or(false)
}

fn reference(table: &str) -> TableReference {
    match table.split_once('.') {
        Some((zone, name)) => TableReference::partial(zone.to_owned(), name.to_owned()),
        None => TableReference::bare(table.to_owned()),
    }
}
