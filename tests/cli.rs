//! The `roi` command line: help, configuration and error messages.

use std::process::Command;

fn roi(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run roi")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_subcommand() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = roi(&["--help"], tmp.path());
    assert!(out.status.success());
    let help = text(&out.stdout);
    for cmd in ["demo", "datasets", "config"] {
        assert!(help.contains(cmd), "--help lacks {cmd}:\n{help}");
    }
    let out = roi(&["datasets", "generate", "--help"], tmp.path());
    let help = text(&out.stdout);
    assert!(
        help.contains("--scale") && help.contains("--dirty") && help.contains("--seed"),
        "{help}"
    );
}

#[test]
fn bad_scale_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = roi(&["datasets", "generate", "--scale", "huge"], tmp.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("huge"), "{}", text(&out.stderr));
}

#[test]
fn refuses_to_overwrite_a_directory_that_is_not_a_world() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("precious.txt"), "keep me").expect("write");
    let out = roi(
        &["datasets", "generate", "--scale", "tiny", "--out", "."],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a generated world"),
        "{}",
        text(&out.stderr)
    );
    assert!(tmp.path().join("precious.txt").exists());
}

#[test]
fn config_show_layers_file_env_and_flags_and_masks_secrets() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("roi.toml"), "[datasets]\nseed = 5\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["config", "show", "--data-dir", "/srv/roi"])
        .current_dir(tmp.path())
        .env("ROI_DATASETS__SCALE", "medium")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("seed = 5")
            && shown.contains("scale = \"medium\"")
            && shown.contains("/srv/roi"),
        "{shown}"
    );
    std::fs::write(tmp.path().join("roi.toml"), "colour = \"blue\"\n").expect("write");
    let out = roi(&["config", "show"], tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("colour"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn demo_generates_a_world_and_prints_a_summary() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = roi(&["demo", "--scale", "tiny"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("oracle") && summary.contains("events:"),
        "{summary}"
    );
    assert!(tmp.path().join("data/lake/raw/manifest.json").is_file());
}
