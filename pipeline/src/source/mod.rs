//! Sources: where events come from. Every source yields chunks of raw lines with their
//! origin and offsets; decoding is shared, so every source gets the same validation and
//! dead-letter behaviour.

mod ndjson_file;
mod stdin;

use std::sync::Arc;

pub use ndjson_file::NdjsonFile;
pub use stdin::Stdin;

use crate::{Error, Result};

/// Raw lines from one origin, in order.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// Where the lines came from (file path, `stdin`).
    pub origin: Arc<str>,
    /// The lines, without line terminators.
    pub lines: Vec<String>,
    /// 1-based line number of each line within its origin.
    pub offsets: Vec<i64>,
}

/// What a poll produced.
#[derive(Debug)]
pub enum Poll {
    /// Some lines.
    Lines(Chunk),
    /// Nothing now; more may come later (a followed directory).
    Idle,
    /// The source is exhausted.
    Done,
}

/// A source of NDJSON lines.
///
/// Contract: lines are returned in the source's order, each exactly once, with offsets
/// that identify them in their origin; `Done` is final.
pub trait Source: Send {
    /// Human-readable description (`file:/data/events`, `stdin`).
    fn describe(&self) -> String;
    /// Returns up to `max_lines` lines.
    fn poll(&mut self, max_lines: usize) -> Result<Poll>;
}

/// Parses a `--source` spec: `file:PATH` (a file or a directory of `*.ndjson`/`*.jsonl`
/// files), `stdin` or `-`. `follow` keeps watching a directory or file for new data.
pub fn from_spec(spec: &str, follow: bool) -> Result<Box<dyn Source>> {
    if spec == "-" || spec == "stdin" || spec == "stdin:" {
        return Ok(Box::new(Stdin::new()));
    }
    if let Some(path) = spec.strip_prefix("file:") {
        return Ok(Box::new(NdjsonFile::open(path, follow)?));
    }
    if spec.starts_with("kafka://") {
        return Err(Error::Config(format!(
            "source {spec:?}: the Kafka source is not built yet; use file:PATH or stdin"
        )));
    }
    Err(Error::Config(format!(
        "source {spec:?}: expected file:PATH, stdin or -"
    )))
}

#[cfg(test)]
pub(crate) mod compliance {
    //! The shared check every source must pass.
    use super::*;

    /// Drains `source` and checks ordering and offset contracts; returns the lines.
    pub fn drain(source: &mut dyn Source) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        let mut last: Option<(String, i64)> = None;
        loop {
            match source.poll(3).expect("poll") {
                Poll::Lines(c) => {
                    assert_eq!(c.lines.len(), c.offsets.len(), "one offset per line");
                    assert!(c.lines.len() <= 3, "respects max_lines");
                    for (l, o) in c.lines.into_iter().zip(c.offsets) {
                        if let Some((origin, prev)) = &last
                            && **origin == *c.origin
                        {
                            assert!(o > *prev, "offsets increase within an origin");
                        }
                        last = Some((c.origin.to_string(), o));
                        out.push((c.origin.to_string(), o, l));
                    }
                }
                Poll::Idle => panic!("a non-following source must not idle"),
                Poll::Done => break,
            }
        }
        assert!(
            matches!(source.poll(3).expect("poll"), Poll::Done),
            "Done is final"
        );
        out
    }
}
