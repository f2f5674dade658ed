//! `roi sql`: queries over the lake, rendered for people or for other tools.

use std::io::Write;
use std::path::Path;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::catalog::{LakeTable, session};
use crate::{Error, Result};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header.
    Csv,
    /// One JSON object per row (NDJSON).
    Json,
    /// A Parquet file (needs an output path).
    Parquet,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!(
                "unknown format {other:?}; expected table, csv, json or parquet"
            )),
        }
    }
}

/// A query's result.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// Result schema.
    pub schema: SchemaRef,
    /// Result rows.
    pub batches: Vec<RecordBatch>,
    /// Tables that were available.
    pub tables: Vec<LakeTable>,
}

impl QueryResult {
    /// Row count.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

fn query_error(e: impl std::fmt::Display, tables: &[LakeTable]) -> Error {
    let message = e.to_string();
    let hint = if message.contains("not found") || message.contains("No table named") {
        if tables.is_empty() {
            "\nthe lake has no tables yet; run roi demo or roi datasets generate".to_owned()
        } else {
            let names: Vec<String> = tables.iter().map(LakeTable::qualified).collect();
            format!("\navailable tables: {}", names.join(", "))
        }
    } else {
        String::new()
    };
    Error::Query { message, hint }
}

/// Runs `sql` (one statement) against the lake at `root`.
pub async fn query(root: &Path, sql: &str) -> Result<QueryResult> {
    let (ctx, tables) = session(root).await?;
    let df = ctx.sql(sql).await.map_err(|e| query_error(e, &tables))?;
    let schema: SchemaRef = df.schema().inner().clone();
    let batches = df.collect().await.map_err(|e| query_error(e, &tables))?;
    Ok(QueryResult {
        schema,
        batches,
        tables,
    })
}

/// Renders an aligned text table (with the row count).
pub fn render_table(r: &QueryResult) -> Result<String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("NULL");
    let headers: Vec<String> = r.schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(r.rows());
    for batch in &r.batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Output {
                what: "table".into(),
                message: e.to_string(),
            })?;
        for row in 0..batch.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("| {c:<w$} "))
            .collect::<String>()
            + "|\n"
    };
    let mut out = rule.clone();
    out.push_str(&line(&headers));
    out.push_str(&rule);
    for row in &rows {
        out.push_str(&line(row));
    }
    out.push_str(&rule);
    let n = rows.len();
    out.push_str(&format!("{n} row{}\n", if n == 1 { "" } else { "s" }));
    Ok(out)
}

/// Writes the result to `out` as CSV or NDJSON.
pub fn write_text(r: &QueryResult, format: Format, out: &mut dyn Write) -> Result<()> {
    let err = |e: arrow::error::ArrowError| Error::Output {
        what: format!("{format:?}"),
        message: e.to_string(),
    };
    match format {
        Format::Table => {
            let text = render_table(r)?;
            out.write_all(text.as_bytes()).map_err(|e| Error::Output {
                what: "stdout".into(),
                message: e.to_string(),
            })
        }
        Format::Csv => {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if r.batches.is_empty() {
                w.write(&RecordBatch::new_empty(r.schema.clone()))
                    .map_err(err)?;
            }
            for b in &r.batches {
                w.write(b).map_err(err)?;
            }
            Ok(())
        }
        Format::Json => {
            let mut w = arrow::json::LineDelimitedWriter::new(out);
            for b in &r.batches {
                w.write(b).map_err(err)?;
            }
            w.finish().map_err(err)
        }
        Format::Parquet => Err(Error::Output {
            what: "stdout".into(),
            message: "parquet output needs a file: pass --out FILE".into(),
        }),
    }
}

/// Writes the result to `path` in `format` (Parquet, or any text format).
pub fn write_file(r: &QueryResult, format: Format, path: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Output {
        what: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(io)?;
    if format != Format::Parquet {
        let mut w = std::io::BufWriter::new(file);
        write_text(r, format, &mut w)?;
        return w.flush().map_err(io);
    }
    let pq = |e: parquet::errors::ParquetError| Error::Output {
        what: path.display().to_string(),
        message: e.to_string(),
    };
    let mut w = parquet::arrow::ArrowWriter::try_new(file, r.schema.clone(), None).map_err(pq)?;
    for b in &r.batches {
        w.write(b).map_err(pq)?;
    }
    w.close().map_err(pq)?;
    Ok(())
}
