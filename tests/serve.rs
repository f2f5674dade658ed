//! `roi db migrate` and `roi serve` as a user runs them: a real process, a real socket,
//! and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn roi(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run roi")
}

#[test]
fn db_migrate_applies_once_then_reports_up_to_date() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = roi(tmp.path(), &["db", "migrate"]);
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        out.contains("roi.db") && out.contains("migrations applied"),
        "{out}"
    );
    assert!(tmp.path().join("data/roi.db").is_file());
    let again = roi(tmp.path(), &["db", "migrate"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));

    let bad = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["db", "migrate"])
        .current_dir(tmp.path())
        .env("ROI_DATABASE__URL", "mysql://root:hunter2@localhost/roi")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("database.url") && err.contains("****") && !err.contains("hunter2"),
        "{err}"
    );
}

/// One HTTP/1.1 GET over a plain socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.lines().next().unwrap_or("").to_owned();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn serve_answers_on_its_socket_and_stops_gracefully_on_sigterm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn roi serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned();
    let (status, body) = get(&addr, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("\"ok\""), "{body}");
    let (status, body) = get(&addr, "/readyz");
    assert!(
        status.contains("200") && body.contains("sqlite"),
        "{status} {body}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "roi serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
