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

/// An SMTP server that refuses some recipients: `bounce…@` addresses get `550 5.1.1` at
/// RCPT (a permanent refusal of the address), and the first message to a `later…@`
/// address gets `451 4.3.0` (try again); everything else is stored in the maildir.
const PICKY: &str = r#"
import mailbox, sys, threading
from aiosmtpd.controller import Controller

port, maildir = int(sys.argv[1]), sys.argv[2]
box = mailbox.Maildir(maildir, create=True)
deferred = set()

class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith('bounce'):
            return '550 5.1.1 no such user'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            if rcpt.startswith('later') and rcpt not in deferred:
                deferred.add(rcpt)
                return '451 4.3.0 try again later'
        box.add(envelope.original_content)
        return '250 2.0.0 OK'

controller = Controller(Handler(), hostname='127.0.0.1', port=port)
controller.start()
print('ready', flush=True)
threading.Event().wait()
"#;

/// [`PICKY`] on a loopback port; killed on drop.
pub async fn picky_smtp_server() -> Smtp {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let script = dir.path().join("picky.py");
    std::fs::write(&script, PICKY).expect("write the SMTP server");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(dir.path().join("mail"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with aiosmtpd (scripts/test installs it)");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("read");
    assert_eq!(line.trim(), "ready", "the SMTP server did not start");
    Smtp { port, dir, child }
}
