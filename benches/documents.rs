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
//! OCR: a scanned PDF of `OCR_PAGES` typed pages (drawn by Pillow at 150 dpi, no text
//! layer) uploaded to `roi serve`, timed from the upload's answer until its text is
//! extracted; beside it, the same programs ROI runs (`pdftoppm -r 300`, then `tesseract`
//! page by page) on the same file from a shell, so the ratio is ROI's own overhead.
//!
//! Usage: `benches/documents.sh [SMALL_FILES] [LARGE_FILES] [OCR_PAGES]` (default 64, 6
//! and 10), which builds the release binary.

use std::time::{Duration, Instant};

mod support;
use support::start;

const MB: usize = 1_000_000;
const BOUNDARY: &str = "roi-bench-boundary-5c1b7d";

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

/// Draws a scanned PDF of `pages` typed pages with Pillow.
fn scanned_pdf(path: &std::path::Path, pages: usize) {
    let script = r#"
import os, sys
from PIL import Image, ImageDraw, ImageFont
out, pages = sys.argv[1], int(sys.argv[2])
path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
font = ImageFont.truetype(path, 28) if os.path.exists(path) else ImageFont.load_default(size=28)
words = "the grantor conveys to the grantee the parcel described below with all rights".split()
images = []
for p in range(pages):
    img = Image.new("L", (1275, 1650), 255)
    draw = ImageDraw.Draw(img)
    for line in range(30):
        text = " ".join(words[(line + p + i) % len(words)] for i in range(8))
        draw.text((90, 90 + 48 * line), f"{p + 1}.{line + 1} {text}", font=font, fill=0)
    images.append(img.convert("RGB"))
images[0].save(out, save_all=True, append_images=images[1:], resolution=150)
"#;
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(pages.to_string())
        .status()
        .expect("python3 with Pillow");
    assert!(
        status.success(),
        "drawing the scanned PDF (pip install pillow)"
    );
}

/// OCR through `roi serve`: pages per minute, from the upload's answer to the text.
async fn roi_ocr(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    pdf: &[u8],
    pages: usize,
) -> f64 {
    let r = client
        .post(format!("{base}/documents"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(pdf, "scan"))
        .send()
        .await
        .expect("upload");
    let started = Instant::now();
    let json: serde_json::Value = r.json().await.expect("json");
    let id = json["document"]["id"].as_str().expect("an id").to_owned();
    loop {
        let t: serde_json::Value = client
            .get(format!("{base}/documents/{id}/versions/1/text"))
            .bearer_auth(token)
            .send()
            .await
            .expect("text")
            .json()
            .await
            .expect("json");
        match t["status"].as_str() {
            Some("done") => {
                assert_eq!(t["method"], "ocr", "{t}");
                assert_eq!(t["pages"], pages, "{t}");
                break;
            }
            Some("failed") => panic!("OCR failed: {t}"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    pages as f64 / started.elapsed().as_secs_f64() * 60.0
}

/// The same programs from a shell, one after the other: pages per minute.
fn shell_ocr(pdf: &std::path::Path, scratch: &std::path::Path, pages: usize) -> f64 {
    let started = Instant::now();
    let prefix = scratch.join("page");
    let ok = std::process::Command::new("pdftoppm")
        .args(["-r", "300", "-png"])
        .arg(pdf)
        .arg(&prefix)
        .status()
        .expect("pdftoppm")
        .success();
    assert!(ok, "pdftoppm");
    let mut rendered: Vec<_> = std::fs::read_dir(scratch)
        .expect("pages")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    rendered.sort();
    assert_eq!(rendered.len(), pages);
    for page in &rendered {
        let out = std::process::Command::new("tesseract")
            .arg(page)
            .args(["stdout", "-l", "eng"])
            .output()
            .expect("tesseract");
        assert!(out.status.success(), "tesseract");
    }
    pages as f64 / started.elapsed().as_secs_f64() * 60.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let small: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(64);
    let large: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(6);
    let ocr_pages: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let roi = std::env::var("BENCH_ROI_BIN").unwrap_or_else(|_| "target/release/roi".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let peer_dir = dir.path().join("peer");
    std::fs::create_dir_all(&peer_dir).expect("peer dir");

    let mut command = std::process::Command::new(&roi);
    command
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("ROI_DATA_DIR", dir.path().join("roi"))
        .env("ROI_SERVE__DOCUMENTS__MAX_UPLOAD_MB", "200")
        .env("ROI_SERVE__DOCUMENTS__EXTRACTION__POLL_MS", "20");
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
        let signup = support::sign_up(&client, &base).await;
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
        let pdf_path = dir.path().join("scan.pdf");
        scanned_pdf(&pdf_path, ocr_pages);
        let pdf = std::fs::read(&pdf_path).expect("the scan");
        let roi_rate = roi_ocr(&client, &base, &token, &pdf, ocr_pages).await;
        let scratch = dir.path().join("shell-ocr");
        std::fs::create_dir_all(&scratch).expect("scratch");
        let shell_rate = shell_ocr(&pdf_path, &scratch, ocr_pages);
        println!(
            "OCR of a {ocr_pages}-page scanned PDF (300 dpi): roi {roi_rate:.1} pages/min, \
             pdftoppm + tesseract from a shell {shell_rate:.1} pages/min, ratio {:.2}",
            roi_rate / shell_rate
        );
    });
}
