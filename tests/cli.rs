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
fn features_list_prints_the_catalog() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = roi(&["features", "list"], tmp.path());
    assert!(out.status.success());
    let text = text(&out.stdout);
    for needle in [
        "valuation_views_7d",
        "equity_pct",
        "rate_spread",
        "valuation_spike",
        "life_event_market",
        "threshold",
    ] {
        assert!(text.contains(needle), "catalog lacks {needle}");
    }
}

#[test]
fn stream_from_stdin_dead_letters_bad_lines_and_keeps_going() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["stream", "--source", "-", "--lake", "lake"])
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let input = concat!(
        r#"{"event_id":1,"org_id":1,"contact_id":4,"event_type":"login","ts":"2024-03-01T10:00:00Z"}"#,
        "\n{oops\n",
        r#"{"event_id":2,"org_id":1,"contact_id":4,"event_type":"valuation_viewed","ts":"2024-03-01T10:01:00Z"}"#,
        "\n"
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.contains("2 events applied") && summary.contains("malformed_json 1"),
        "{summary}"
    );
    assert!(
        tmp.path()
            .join("lake/dead_letter/events/_manifest.json")
            .is_file()
    );
    assert!(
        tmp.path()
            .join("lake/features/contact_features/month=2024-03")
            .is_dir()
    );
}
