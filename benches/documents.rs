//! Document upload and download throughput on local storage: 1 MB and 50 MB files
//! through `roi serve` (multipart upload streamed to disk with SHA-256 and sniffing, a
//! store row per document and version; downloads streamed from disk with an access-log
//! row each), one request at a time over loopback.
//!
//! The peer, in the same run: a plain Node.js file server (`benches/peers/files/server.mjs`)
//! that streams the same bytes to and from the same disk with no authentication,
//! hashing, sniffing or bookkeeping. It is a floor for moving the bytes, not an equal:
//! the ratio says what ROI's document handling costs on top of it.
//!
//! Usage: `benches/documents.sh [SMALL_FILES] [LARGE_FILES]` (default 64 and 6), which
//! builds the release binary.

use std::time::{Duration, Instant};

const MB: usize = 1_000_000;
const BOUNDARY: &str = "roi-bench-boundary-5c1b7d";

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server and returns it with the address it printed first.
fn start(mut command: std::process::Command, marker: &str) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Child(
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start a server"),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
}

/// `size` bytes that neither compress nor repeat (xorshift).
fn payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

fn multipart(file: &[u8], name: &str) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{name}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

struct Rates {
    upload: f64,
    download: f64,
}

fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / MB as f64 / took.as_secs_f64()
}

async fn roi_round(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    size: usize,
    files: usize,
) -> Rates {
    let mut ids = Vec::with_capacity(files);
    let mut took = Duration::ZERO;
    for i in 0..files {
        let body = multipart(&payload(size, i as u64 + 1), &format!("f{i}"));
        let started = Instant::now();
        let r = client
            .post(format!("{base}/documents"))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = r.status();
        let json: serde_json::Value = r.json().await.expect("json");
        took += started.elapsed();
        assert_eq!(status, 201, "{json}");
        ids.push(json["document"]["id"].as_str().expect("an id").to_owned());
    }
    let upload = mb_per_s(size * files, took);
    let started = Instant::now();
    for id in &ids {
        let r = client
            .get(format!("{base}/documents/{id}/content"))
            .bearer_auth(token)
            .send()
            .await
            .expect("download");
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.expect("bytes");
        assert_eq!(bytes.len(), size);
    }
    Rates {
        upload,
        download: mb_per_s(size * files, started.elapsed()),
    }
}

async fn peer_round(client: &reqwest::Client, base: &str, size: usize, files: usize) -> Rates {
    let mut took = Duration::ZERO;
    for i in 0..files {
        let body = payload(size, i as u64 + 1);
        let started = Instant::now();
        let r = client
            .post(format!("{base}/files/s{size}n{i}"))
            .body(body)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 201);
        took += started.elapsed();
    }
    let upload = mb_per_s(size * files, took);
    let started = Instant::now();
    for i in 0..files {
        let r = client
            .get(format!("{base}/files/s{size}n{i}"))
            .send()
            .await
            .expect("download");
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.expect("bytes");
        assert_eq!(bytes.len(), size);
    }
    Rates {
        upload,
        download: mb_per_s(size * files, started.elapsed()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let small: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let large: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(6);
    let roi = std::env::var("BENCH_ROI_BIN").unwrap_or_else(|_| "target/release/roi".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let peer_dir = dir.path().join("peer");
    std::fs::create_dir_all(&peer_dir).expect("peer dir");

    let mut command = std::process::Command::new(&roi);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ROI_DATA_DIR", dir.path().join("roi"))
        .env("ROI_SERVE__DOCUMENTS__MAX_UPLOAD_MB", "200");
    let (_roi, roi_addr) = start(command, "http://");
    let mut command = std::process::Command::new("node");
    command.arg("benches/peers/files/server.mjs").arg(&peer_dir);
    let (_peer, peer_addr) = start(command, "http://");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://{roi_addr}");
        let signup: serde_json::Value = client
            .post(format!("{base}/auth/signup"))
            .json(&serde_json::json!({
                "organization_name": "Bench Title", "organization_slug": "bench",
                "email": "owner@bench.test", "name": "Owner",
                "password": "correct horse battery staple"}))
            .send()
            .await
            .expect("signup")
            .json()
            .await
            .expect("json");
        let token = signup["access_token"].as_str().expect("a token").to_owned();
        let peer = format!("http://{peer_addr}");
        println!(
            "documents on local storage, one request at a time over loopback (MB = 10^6 bytes)"
        );
        println!(
            "{:>8} {:>6} {:>14} {:>14} {:>8} {:>14} {:>14} {:>8}",
            "file",
            "files",
            "roi up MB/s",
            "peer up MB/s",
            "ratio",
            "roi down MB/s",
            "peer down",
            "ratio"
        );
        for (size, files) in [(MB, small), (50 * MB, large)] {
            // One warm-up file each, not counted.
            roi_round(&client, &base, &token, size.min(MB), 1).await;
            peer_round(&client, &peer, size.min(MB), 1).await;
            let r = roi_round(&client, &base, &token, size, files).await;
            let p = peer_round(&client, &peer, size, files).await;
            println!(
                "{:>6} MB {:>6} {:>14.1} {:>14.1} {:>8.2} {:>14.1} {:>14.1} {:>8.2}",
                size / MB,
                files,
                r.upload,
                p.upload,
                r.upload / p.upload,
                r.download,
                p.download,
                r.download / p.download
            );
        }
    });
}
