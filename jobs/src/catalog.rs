//! The lake's tables, registered in a DataFusion session as `zone.table`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionConfig, SessionContext};
use roi_schemas::Table;

use crate::{Error, Result};

/// Zones that hold tables, in the order `roi sql` lists them.
pub const ZONES: [&str; 6] = [
    "raw",
    "curated",
    "features",
    "signals",
    "dead_letter",
    "alerts",
];

/// How a table is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A directory of Parquet files (possibly in partition subdirectories).
    Parquet,
    /// A directory of NDJSON files (the raw event log).
    NdJson,
}

/// One table of the lake.
#[derive(Debug, Clone)]
pub struct LakeTable {
    /// Zone (`raw`, `curated`, …).
    pub zone: String,
    /// Table name within the zone.
    pub name: String,
    /// Directory.
    pub path: PathBuf,
    /// Storage format.
    pub storage: Storage,
}

impl LakeTable {
    /// `zone.table`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.zone, self.name)
    }
}

fn contains_files(dir: &Path, ext: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let p = e.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(['.', '_']));
            !hidden
                && (p.extension().is_some_and(|x| x == ext)
                    || (p.is_dir() && contains_files(&p, ext)))
        })
}

/// Finds every table under `root`, sorted by zone order then name.
pub fn discover(root: &Path) -> Result<Vec<LakeTable>> {
    if !root.is_dir() {
        return Err(Error::Lake {
            path: root.to_path_buf(),
            message:
                "no such directory; generate a world first (roi demo or roi datasets generate)"
                    .into(),
        });
    }
    let mut tables = Vec::new();
    for zone in ZONES {
        let Ok(entries) = std::fs::read_dir(root.join(zone)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with(['.', '_']) {
                continue;
            }
            let storage = if contains_files(&dir, "parquet") {
                Storage::Parquet
            } else if contains_files(&dir, "ndjson") {
                Storage::NdJson
            } else {
                continue;
            };
            tables.push(LakeTable {
                zone: zone.to_owned(),
                name,
                path: dir,
                storage,
            });
        }
    }
    Ok(tables)
}

/// A session with every lake table registered (and `information_schema`, so
/// `SHOW TABLES` works).
pub async fn session(root: &Path) -> Result<(SessionContext, Vec<LakeTable>)> {
    let tables = discover(root)?;
    let ctx = empty_session(root)?;
    for t in &tables {
        register(&ctx, t).await.map_err(|message| Error::Lake {
            path: t.path.clone(),
            message,
        })?;
    }
    Ok((ctx, tables))
}

/// A session with only `wanted` (`zone.table` names) registered: a job sees its declared
/// inputs and nothing else. Wanted tables absent from the lake are left out.
pub async fn session_with(root: &Path, wanted: &[&str]) -> Result<SessionContext> {
    let ctx = empty_session(root)?;
    for t in discover(root)? {
        let name = t.qualified();
        if wanted.contains(&name.as_str()) {
            register(&ctx, &t).await.map_err(|message| Error::Data {
                table: name.clone(),
                message: format!("cannot be read: {message}"),
            })?;
        }
    }
    Ok(ctx)
}

fn empty_session(root: &Path) -> Result<SessionContext> {
    // Read strings as plain Utf8 (what `roi_schemas::Table` decodes), and read files in
    // every subdirectory of a table, not only in `key=value` partition directories.
    let config = SessionConfig::new()
        .with_information_schema(true)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool(
            "datafusion.execution.listing_table_ignore_subdirectory",
            false,
        );
    let ctx = SessionContext::new_with_config(config);
    let catalog = ctx.catalog("datafusion").ok_or_else(|| Error::Lake {
        path: root.to_path_buf(),
        message: "bug: DataFusion's default catalog is missing".into(),
    })?;
    for zone in ZONES {
        catalog
            .register_schema(zone, Arc::new(MemorySchemaProvider::new()))
            .map_err(|e| Error::Lake {
                path: root.to_path_buf(),
                message: e.to_string(),
            })?;
    }
    Ok(ctx)
}

async fn register(ctx: &SessionContext, t: &LakeTable) -> Result<(), String> {
    let reference = TableReference::partial(t.zone.as_str(), t.name.as_str());
    let path = format!(
        "{}/",
        t.path
            .canonicalize()
            .unwrap_or_else(|_| t.path.clone())
            .display()
    );
    let registered = match t.storage {
        Storage::Parquet => {
            ctx.register_parquet(reference, &path, ParquetReadOptions::default())
                .await
        }
        Storage::NdJson => {
            let event_schema = roi_schemas::Event::schema();
            ctx.register_json(
                reference,
                &path,
                JsonReadOptions::default()
                    .file_extension(".ndjson")
                    .schema(&event_schema),
            )
            .await
        }
    };
    registered.map_err(|e| e.to_string())
}
