//! Helpers shared by the end-to-end tests.

use std::path::Path;
use std::process::Command;

/// Runs the `roi` binary in `dir`: (success, stdout, stderr).
pub fn roi(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run roi");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
