//! NDJSON from standard input.

use std::io::BufRead;
use std::sync::Arc;

use super::{Chunk, Poll, Source};
use crate::{Error, Result};

/// Reads lines from standard input until end of file.
pub struct Stdin {
    origin: Arc<str>,
    line: i64,
    done: bool,
}

impl Stdin {
    /// A source over this process's standard input.
    pub fn new() -> Stdin {
        Stdin {
            origin: Arc::from("stdin"),
            line: 0,
            done: false,
        }
    }
}

impl Default for Stdin {
    fn default() -> Self {
        Stdin::new()
    }
}

impl Source for Stdin {
    fn describe(&self) -> String {
        "stdin".to_owned()
    }

    fn poll(&mut self, max_lines: usize) -> Result<Poll> {
        if self.done {
            return Ok(Poll::Done);
        }
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let mut chunk = Chunk {
            origin: self.origin.clone(),
            lines: Vec::new(),
            offsets: Vec::new(),
        };
        while chunk.lines.len() < max_lines {
            let mut buf = String::new();
            if lock
                .read_line(&mut buf)
                .map_err(Error::io("reading", "stdin"))?
                == 0
            {
                self.done = true;
                break;
            }
            self.line += 1;
            let text = buf.trim_end_matches(['\n', '\r']);
            if !text.trim().is_empty() {
                chunk.lines.push(text.to_owned());
                chunk.offsets.push(self.line);
            }
        }
        Ok(if chunk.lines.is_empty() {
            Poll::Done
        } else {
            Poll::Lines(chunk)
        })
    }
}
