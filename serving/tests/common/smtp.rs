//! A real SMTP server (aiosmtpd, from PyPI; `scripts/test` installs it) on a loopback
//! port for the tests that send mail, and helpers to read what it received.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A real SMTP server (aiosmtpd) on a loopback port, writing what it receives to a
/// maildir; killed on drop.
pub struct Smtp {
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub async fn smtp_server() -> Smtp {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let maildir: PathBuf = dir.path().join("mail");
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 -m aiosmtpd (scripts/test installs aiosmtpd from PyPI)");
    let smtp = Smtp { port, dir, child };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "aiosmtpd did not start on port {port} (is it installed? pip install aiosmtpd)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    smtp
}

/// The messages in a maildir, as text, oldest first.
pub fn mails(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("mail").join("new")) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, std::fs::read_to_string(e.path()).ok()?))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, text)| text).collect()
}

/// Undoes quoted-printable soft line breaks and `=3D`, enough to read our parts.
pub fn unfold(mail: &str) -> String {
    mail.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

pub async fn wait_mails(smtp: &Smtp, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let seen = mails(smtp.dir.path());
        if seen.len() >= n {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} mails expected, {} came",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
