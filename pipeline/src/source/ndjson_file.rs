//! NDJSON from a file or a directory of files (sorted by name), optionally followed.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Chunk, Poll, Source};
use crate::{Error, Result};

/// Reads `*.ndjson` / `*.jsonl` files in name order (skipping hidden and `_` files). When following, new files in the
/// directory (names sorting after the current one) and lines appended to the current file
/// are picked up; a partial last line is held back until its newline arrives.
pub struct NdjsonFile {
    root: PathBuf,
    is_dir: bool,
    follow: bool,
    done: Vec<PathBuf>,
    current: Option<Open>,
}

struct Open {
    path: PathBuf,
    origin: Arc<str>,
    reader: BufReader<File>,
    line: i64,
    partial: String,
}

/// Data files: `*.ndjson` or `*.jsonl`, not hidden (`.`) or metadata (`_manifest.json`).
fn is_ndjson(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    !name.starts_with('.')
        && !name.starts_with('_')
        && p.extension().is_some_and(|e| e == "ndjson" || e == "jsonl")
}

impl NdjsonFile {
    /// Opens `path` (file or directory).
    pub fn open(path: impl AsRef<Path>, follow: bool) -> Result<NdjsonFile> {
        let root = path.as_ref().to_path_buf();
        let meta = std::fs::metadata(&root).map_err(Error::io("opening source", &root))?;
        Ok(NdjsonFile {
            is_dir: meta.is_dir(),
            root,
            follow,
            done: Vec::new(),
            current: None,
        })
    }

    fn next_file(&self) -> Result<Option<PathBuf>> {
        if !self.is_dir {
            return Ok((self.done.is_empty()).then(|| self.root.clone()));
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .map_err(Error::io("listing", &self.root))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_ndjson(p))
            .collect();
        files.sort();
        let after = self.done.last();
        Ok(files.into_iter().find(|f| after.is_none_or(|a| f > a)))
    }
}

impl Source for NdjsonFile {
    fn describe(&self) -> String {
        format!("file:{}", self.root.display())
    }

    fn poll(&mut self, max_lines: usize) -> Result<Poll> {
        loop {
            if self.current.is_none() {
                match self.next_file()? {
                    Some(path) => {
                        let file = File::open(&path).map_err(Error::io("opening", &path))?;
                        self.current = Some(Open {
                            origin: Arc::from(path.display().to_string()),
                            path,
                            reader: BufReader::with_capacity(1 << 20, file),
                            line: 0,
                            partial: String::new(),
                        });
                    }
                    None if self.follow => return Ok(Poll::Idle),
                    None => return Ok(Poll::Done),
                }
            }
            let open = self.current.as_mut().expect("opened above");
            let mut chunk = Chunk {
                origin: open.origin.clone(),
                lines: Vec::new(),
                offsets: Vec::new(),
            };
            let mut eof = false;
            while chunk.lines.len() < max_lines {
                let mut buf = std::mem::take(&mut open.partial);
                let n = open
                    .reader
                    .read_line(&mut buf)
                    .map_err(Error::io("reading", &open.path))?;
                if n == 0 || !buf.ends_with('\n') {
                    // End of data for now; keep any unterminated tail for later (following)
                    // or treat it as the last line (not following).
                    if self.follow || buf.is_empty() {
                        open.partial = buf;
                    } else {
                        open.line += 1;
                        chunk.lines.push(buf);
                        chunk.offsets.push(open.line);
                    }
                    eof = true;
                    break;
                }
                buf.pop();
                if buf.ends_with('\r') {
                    buf.pop();
                }
                open.line += 1;
                if buf.trim().is_empty() {
                    continue;
                }
                chunk.lines.push(buf);
                chunk.offsets.push(open.line);
            }
            if eof {
                // A followed file may still grow, but a newer file means it is finished.
                let newer = self.is_dir && self.follow && {
                    let path = open.path.clone();
                    self.done.push(path);
                    let next = self.next_file()?;
                    self.done.pop();
                    next.is_some()
                };
                if !self.follow || newer {
                    let finished = self.current.take().expect("open");
                    self.done.push(finished.path);
                }
            }
            if !chunk.lines.is_empty() {
                return Ok(Poll::Lines(chunk));
            }
            if eof && self.follow && self.current.is_some() {
                return Ok(Poll::Idle);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::compliance::drain;

    #[test]
    fn reads_a_directory_in_name_order_skipping_blank_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("b.ndjson"), "{\"x\":3}\n\n{\"x\":4}").expect("write");
        std::fs::write(dir.path().join("a.ndjson"), "{\"x\":1}\r\n{\"x\":2}\n").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored\n").expect("write");
        std::fs::write(dir.path().join("_manifest.json"), "{\n}\n").expect("write");
        std::fs::write(dir.path().join(".c.ndjson.tmp"), "{}\n").expect("write");
        let mut src = NdjsonFile::open(dir.path(), false).expect("open");
        let lines = drain(&mut src);
        let texts: Vec<&str> = lines.iter().map(|(_, _, l)| l.as_str()).collect();
        assert_eq!(texts, ["{\"x\":1}", "{\"x\":2}", "{\"x\":3}", "{\"x\":4}"]);
        assert_eq!(lines[3].1, 3, "line numbers count blank lines");
        assert!(lines[0].0.ends_with("a.ndjson"));
    }

    #[test]
    fn following_picks_up_appended_lines_and_new_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.ndjson");
        std::fs::write(&a, "1\n2").expect("write");
        let mut src = NdjsonFile::open(dir.path(), true).expect("open");
        let Poll::Lines(c) = src.poll(10).expect("poll") else {
            panic!("lines expected")
        };
        assert_eq!(c.lines, ["1"]);
        assert!(matches!(src.poll(10).expect("poll"), Poll::Idle));
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .expect("open")
            .write_all(b"\n3\n")
            .expect("append");
        let Poll::Lines(c) = src.poll(10).expect("poll") else {
            panic!("lines expected")
        };
        assert_eq!(c.lines, ["2", "3"]);
        std::fs::write(dir.path().join("b.ndjson"), "4\n").expect("write");
        let Poll::Lines(c) = src.poll(10).expect("poll") else {
            panic!("lines expected")
        };
        assert_eq!(c.lines, ["4"]);
        assert_eq!(c.offsets, [1]);
    }

    #[test]
    fn missing_path_is_named() {
        let err = NdjsonFile::open("/no/such/events", false)
            .err()
            .expect("error");
        assert!(err.to_string().contains("/no/such/events"), "{err}");
    }
}
