//! Fingerprints of lake tables: how the runner tells that an input has changed.
//!
//! A table's fingerprint hashes the relative path, size and modification time of every
//! file under its directory (hidden `.`-prefixed entries, such as staging directories,
//! are ignored). It reads metadata only, so fingerprinting a large event log is cheap;
//! rewriting a table, even with the same bytes, changes its fingerprint, as with `make`.

use std::hash::Hasher;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::{Error, Result};

/// The fingerprint of the table stored under `dir`, or `None` if it does not exist.
pub fn table(dir: &Path) -> Result<Option<String>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut entries = Vec::new();
    collect(dir, dir, &mut entries)?;
    entries.sort();
    let mut hasher = fnv::FnvHasher::default();
    for (path, len, mtime) in &entries {
        hasher.write(path.as_bytes());
        hasher.write_u8(0);
        hasher.write_u64(*len);
        hasher.write_u128(*mtime);
    }
    Ok(Some(format!("{:016x}-{}", hasher.finish(), entries.len())))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, u64, u128)>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(Error::io("listing", dir))? {
        let entry = entry.map_err(Error::io("listing", dir))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let meta = entry
            .metadata()
            .map_err(Error::io("reading metadata of", &path))?;
        if meta.is_dir() {
            collect(root, &path, out)?;
        } else {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((relative, meta.len(), mtime));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_when_a_file_changes_and_ignores_hidden_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        assert_eq!(table(&dir).unwrap(), None);
        std::fs::create_dir_all(dir.join("month=2024-01")).unwrap();
        std::fs::write(dir.join("month=2024-01/part-0.parquet"), b"abc").unwrap();
        let first = table(&dir).unwrap().unwrap();
        assert_eq!(table(&dir).unwrap().unwrap(), first, "stable");
        std::fs::create_dir_all(dir.join(".staging-x")).unwrap();
        std::fs::write(dir.join(".staging-x/part-0.parquet"), b"zzzz").unwrap();
        assert_eq!(table(&dir).unwrap().unwrap(), first, "hidden ignored");
        std::fs::write(dir.join("month=2024-01/part-0.parquet"), b"abcd").unwrap();
        assert_ne!(table(&dir).unwrap().unwrap(), first, "size change seen");
    }
}
