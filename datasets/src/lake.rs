//! Writing tables: Parquet files plus a `_manifest.json` per table, into a staging
//! directory that replaces the destination only when the whole world is complete.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use roi_schemas::Table;
use serde::Serialize;

use crate::{Error, Result};

/// One data file of a table.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// Path relative to the table directory.
    pub path: String,
    /// Rows (or lines) in the file.
    pub rows: u64,
}

/// The `_manifest.json` of a table.
#[derive(Debug, Clone, Serialize)]
pub struct TableManifest {
    /// Table name.
    pub table: String,
    /// `parquet` or `ndjson`.
    pub format: &'static str,
    /// Schema version of `roi-schemas`.
    pub schema_version: u32,
    /// Total rows.
    pub rows: u64,
    /// Partition column, if the files are partitioned (`source=…/` directories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitioned_by: Option<&'static str>,
    /// Data files.
    pub files: Vec<FileEntry>,
    /// Columns: name, Arrow type, nullability.
    pub columns: Vec<(String, String, bool)>,
}

/// Streams rows of one table into one Parquet file.
pub struct TableWriter<T: Table> {
    path: PathBuf,
    relative: String,
    writer: ArrowWriter<BufWriter<File>>,
    rows: u64,
    _rows: std::marker::PhantomData<T>,
}

impl<T: Table> TableWriter<T> {
    /// Creates `<root>/<T::NAME>/<partition>/part-00000.parquet`.
    pub fn create(root: &Path, partition: Option<String>) -> Result<Self> {
        let relative = match &partition {
            Some(p) => format!("{p}/part-00000.parquet"),
            None => "part-00000.parquet".to_owned(),
        };
        let path = root.join(T::NAME).join(&relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(Error::io("creating directory", dir))?;
        }
        let file = File::create(&path).map_err(Error::io("creating", &path))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(256 * 1024))
            .set_created_by("roi-datasets".to_owned())
            .build();
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 20, file),
            T::schema(),
            Some(props),
        )
        .map_err(|source| Error::Parquet {
            path: path.clone(),
            source,
        })?;
        Ok(TableWriter {
            path,
            relative,
            writer,
            rows: 0,
            _rows: std::marker::PhantomData,
        })
    }

    /// Appends rows.
    pub fn write(&mut self, rows: &[T]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let batch = T::to_batch(rows)?;
        self.writer.write(&batch).map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        self.rows += rows.len() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file.
    pub fn finish(self) -> Result<FileEntry> {
        self.writer.close().map_err(|source| Error::Parquet {
            path: self.path.clone(),
            source,
        })?;
        Ok(FileEntry {
            path: self.relative,
            rows: self.rows,
        })
    }
}

/// Writes `rows` as a whole table with its manifest; returns the row count.
pub fn write_table<T: Table>(root: &Path, rows: &[T]) -> Result<u64> {
    let mut w = TableWriter::<T>::create(root, None)?;
    for chunk in rows.chunks(256 * 1024) {
        w.write(chunk)?;
    }
    let entry = w.finish()?;
    write_manifest::<T>(root, vec![entry], None)
}

/// Writes `<root>/<T::NAME>/_manifest.json`; returns the total row count.
pub fn write_manifest<T: Table>(
    root: &Path,
    files: Vec<FileEntry>,
    partitioned_by: Option<&'static str>,
) -> Result<u64> {
    let rows = files.iter().map(|f| f.rows).sum();
    let schema = T::schema();
    let manifest = TableManifest {
        table: T::NAME.to_owned(),
        format: "parquet",
        schema_version: roi_schemas::SCHEMA_VERSION,
        rows,
        partitioned_by,
        files,
        columns: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
            .collect(),
    };
    write_json(&root.join(T::NAME).join("_manifest.json"), &manifest)?;
    Ok(rows)
}

/// Writes pretty JSON with a trailing newline.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Usage(format!("bug: manifest does not serialise: {e}")))?;
    text.push('\n');
    fs::write(path, text).map_err(Error::io("writing", path))
}

/// A directory that is filled completely before it replaces its destination.
#[derive(Debug)]
pub struct Staging {
    /// Where the world is being written.
    pub dir: PathBuf,
    dest: PathBuf,
}

impl Staging {
    /// Prepares staging for `dest`. Refuses to replace a non-empty directory that is not a
    /// world (no `manifest.json`), so a typo cannot wipe unrelated files.
    pub fn new(dest: &Path) -> Result<Staging> {
        if dest.exists() {
            let is_world = dest.join("manifest.json").is_file();
            let empty = fs::read_dir(dest)
                .map_err(Error::io("reading", dest))?
                .next()
                .is_none();
            if !is_world && !empty {
                return Err(Error::Usage(format!(
                    "{} exists and is not a generated world (no manifest.json); choose another --out or remove it",
                    dest.display()
                )));
            }
        }
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "world".into());
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(Error::io("creating directory", parent))?;
        let dir = parent.join(format!(".{name}.partial"));
        if dir.exists() {
            fs::remove_dir_all(&dir)
                .map_err(Error::io("removing stale staging directory", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
        Ok(Staging {
            dir,
            dest: dest.to_path_buf(),
        })
    }

    /// Moves the finished world into place, replacing an older one.
    pub fn commit(self) -> Result<PathBuf> {
        if self.dest.exists() {
            fs::remove_dir_all(&self.dest)
                .map_err(Error::io("removing previous world", &self.dest))?;
        }
        fs::rename(&self.dir, &self.dest)
            .map_err(Error::io("moving world into place", &self.dest))?;
        Ok(self.dest)
    }
}
