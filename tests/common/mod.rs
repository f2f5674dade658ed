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

/// The first number after `label` in `text`.
#[allow(dead_code)]
pub fn number_after(text: &str, label: &str) -> f64 {
    let start = text
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {text}"))
        + label.len();
    text[start..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("number after {label} in {text}"))
}
