//! The lake as the streaming job sees it: reading context tables, writing outputs.
//!
//! Outputs are Parquet files partitioned by the month of their event date
//! (`month=YYYY-MM/part-NNNNN.parquet`), each written to a hidden temporary name and
//! renamed into place, so a reader never sees a half-written file. A `_manifest.json` per
//! table lists partitions and row counts when the run ends.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use roi_schemas::Table;

use crate::{Error, Result};

/// Reads every Parquet file under `dir` (recursively, in name order) as rows of `T`.
pub fn read_table<T: Table>(dir: &Path) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for_each_batch(dir, |_, batch| {
        rows.extend(T::from_batch(&batch).map_err(|source| Error::Table {
            path: dir.to_path_buf(),
            source,
        })?);
        Ok(())
    })?;
    Ok(rows)
}

/// Each homeowner's newest feature snapshot in a snapshot table (the layout of
/// [`roi_features::snapshot::schema`], e.g. `features/contact_features`), by contact id.
pub fn latest_snapshots(
    dir: &Path,
) -> Result<std::collections::HashMap<i64, roi_features::snapshot::Snapshot>> {
    let mut latest: std::collections::HashMap<i64, roi_features::snapshot::Snapshot> =
        std::collections::HashMap::new();
    for_each_batch(dir, |path, batch| {
        let rows = roi_features::snapshot::from_batch(&batch).map_err(|e| Error::Parquet {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        for s in rows {
            match latest.get(&s.contact_id) {
                Some(have) if have.day >= s.day => {}
                _ => {
                    latest.insert(s.contact_id, s);
                }
            }
        }
        Ok(())
    })?;
    Ok(latest)
}

/// Calls `f` with every record batch of every Parquet file under `dir` (recursively, in
/// name order), with the file it came from.
fn for_each_batch(dir: &Path, mut f: impl FnMut(&Path, RecordBatch) -> Result<()>) -> Result<()> {
    let mut files = Vec::new();
    collect_parquet(dir, &mut files)?;
    files.sort();
    for path in files {
        let file = File::open(&path).map_err(Error::io("opening", &path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(64 * 1024).build())
            .map_err(|source| Error::Parquet {
                path: path.clone(),
                source,
            })?;
        for batch in reader {
            let batch = batch.map_err(|e| Error::Parquet {
                path: path.clone(),
                source: e.into(),
            })?;
            f(&path, batch)?;
        }
    }
    Ok(())
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(Error::io("listing", dir))? {
        let path = entry.map_err(Error::io("listing", dir))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_parquet(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    Ok(())
}

/// Writes one batch as a Parquet file, atomically (temporary name, then rename).
pub fn write_parquet_atomic(
    path: &Path,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Result<u64> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Config(format!("bad output path {}", path.display())))?;
    fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = File::create(&tmp).map_err(Error::io("creating", &tmp))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("roi-pipeline".to_owned())
        .build();
    let mut w =
        ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| Error::Parquet {
            path: tmp.clone(),
            source,
        })?;
    let mut rows = 0;
    for b in batches {
        w.write(b).map_err(|source| Error::Parquet {
            path: tmp.clone(),
            source,
        })?;
        rows += b.num_rows() as u64;
    }
    w.close().map_err(|source| Error::Parquet {
        path: tmp.clone(),
        source,
    })?;
    fs::rename(&tmp, path).map_err(Error::io("committing", path))?;
    Ok(rows)
}

/// A month-partitioned output table owned by one stream run.
#[derive(Debug)]
pub struct PartitionedTable {
    dir: PathBuf,
    name: String,
    schema: SchemaRef,
    parts: BTreeMap<String, Vec<(String, u64)>>,
}

impl PartitionedTable {
    /// Prepares `<lake>/<zone>/<table>`, removing what an earlier run wrote there.
    pub fn create(
        lake: &Path,
        zone: &str,
        table: &str,
        schema: SchemaRef,
    ) -> Result<PartitionedTable> {
        let dir = lake.join(zone).join(table);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(Error::io("clearing previous output", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
        Ok(PartitionedTable {
            dir,
            name: format!("{zone}.{table}"),
            schema,
            parts: BTreeMap::new(),
        })
    }

    /// Writes `batch` as the next file of `partition` (e.g. `month=2024-03`).
    pub fn write(&mut self, partition: &str, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let files = self.parts.entry(partition.to_owned()).or_default();
        let name = format!("part-{:05}.parquet", files.len());
        let rows = write_parquet_atomic(
            &self.dir.join(partition).join(&name),
            self.schema.clone(),
            std::slice::from_ref(batch),
        )?;
        files.push((format!("{partition}/{name}"), rows));
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.parts.values().flatten().map(|(_, r)| r).sum()
    }

    /// Writes the table's `_manifest.json`.
    pub fn finish(&self, extra: serde_json::Value) -> Result<()> {
        let files: Vec<serde_json::Value> = self
            .parts
            .values()
            .flatten()
            .map(|(p, r)| serde_json::json!({"path": p, "rows": r}))
            .collect();
        let manifest = serde_json::json!({
            "table": self.name,
            "format": "parquet",
            "schema_version": roi_schemas::SCHEMA_VERSION,
            "partitioned_by": "month",
            "rows": self.rows(),
            "files": files,
            "columns": self.schema.fields().iter().map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable())).collect::<Vec<_>>(),
            "about": extra,
        });
        let path = self.dir.join("_manifest.json");
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::Config(format!("bug: manifest: {e}")))?;
        fs::write(&path, text + "\n").map_err(Error::io("writing", &path))
    }
}
