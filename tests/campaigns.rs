//! The crash test of the campaign send queue: `roi serve` sends a campaign to 30
//! subscribers through a real SMTP server on loopback (aiosmtpd) and is killed (SIGKILL)
//! twice in the middle of sending, once with a message on the wire (the server has its
//! content but has not accepted it) and once between two messages, and restarted each
//! time; in the end every subscriber has received exactly one message.
//!
//! The kills come from the SMTP server at a given point of the protocol, so the test is
//! deterministic. The one window the queue cannot close (a kill after the server accepted
//! a message and before the sender recorded it) is not provoked: no SMTP client can
//! close it, and the queue's documentation says so.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// An SMTP server that stores what it receives in a maildir, and kills the process whose
/// id is in `pidfile` (SIGKILL): on the `data_at`-th message's content, which it then does
/// not store (the sender dies with a message in flight), and on the `mail_at`-th
/// `MAIL FROM` (the sender dies between two messages).
const SMTP: &str = r#"
import mailbox, os, signal, sys, threading
from aiosmtpd.controller import Controller

port, maildir, pidfile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
data_at, mail_at = int(sys.argv[4]), int(sys.argv[5])
box = mailbox.Maildir(maildir, create=True)
datas = 0
mails = 0

def kill():
    os.kill(int(open(pidfile).read()), signal.SIGKILL)

class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        global mails
        mails += 1
        if mails == mail_at:
            kill()
            return '421 4.3.0 closing'
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        global datas
        datas += 1
        if datas == data_at:
            kill()
            return '421 4.3.0 closing'
        box.add(envelope.original_content)
        return '250 2.0.0 OK'

controller = Controller(Handler(), hostname='127.0.0.1', port=port)
controller.start()
print('ready', flush=True)
threading.Event().wait()
"#;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn smtp_server(dir: &Path, port: u16, pidfile: &Path, data_at: u32, mail_at: u32) -> Killed {
    let script = dir.join("smtp.py");
    std::fs::write(&script, SMTP).expect("write the SMTP server");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(dir.join("mail"))
        .arg(pidfile)
        .arg(data_at.to_string())
        .arg(mail_at.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with aiosmtpd (scripts/test installs it)");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(ready, "ready", "the SMTP server did not start");
    Killed(child)
}

/// Starts `roi serve` in `dir` and writes its pid to `pidfile`; returns it when it
/// answers.
fn serve(dir: &Path, pidfile: &Path, addr: &str) -> Killed {
    let child = Command::new(env!("CARGO_BIN_EXE_roi"))
        .args(["serve", "--bind", addr])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn roi serve");
    std::fs::write(pidfile, child.id().to_string()).expect("pidfile");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "roi serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

/// Recipients of the messages in the maildir, with how many each got.
fn received(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("mail").join("new")) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Some(to) = text.lines().find_map(|l| l.strip_prefix("To: ")) {
            *out.entry(to.trim().to_owned()).or_insert(0) += 1;
        }
    }
    out
}

fn wait_dead(child: &mut Killed) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.0.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the sender was not killed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sender_killed_mid_campaign_and_restarted_sends_each_message_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = tmp.path().to_path_buf();
    let smtp_port = free_port();
    let pidfile = dir.join("roi.pid");
    let addr = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.join("roi.toml"),
        format!(
            "[serve]\npublic_url = \"http://{addr}\"\n\n\
             [serve.notifications]\nsmtp_url = \"smtp://127.0.0.1:{smtp_port}\"\n\n\
             [serve.campaigns]\npoll_ms = 50\nlease_secs = 2\nconcurrency = 1\nbackoff_base_ms = 200\n"
        ),
    )
    .expect("roi.toml");
    // The sixth message's content kills the first sender; the sixteenth MAIL FROM (the
    // second sender's tenth transaction) kills the second.
    let _smtp = smtp_server(&dir, smtp_port, &pidfile, 6, 16);
    let mut first = serve(&dir, &pidfile, &addr);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut request = http.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        async move {
            let r = request.send().await.expect("request");
            let status = r.status().as_u16();
            let json: Value = r.json().await.unwrap_or(Value::Null);
            (status, json)
        }
    };
    let (status, session) = runtime.block_on(call(
        reqwest::Method::POST,
        "/auth/signup",
        None,
        Some(json!({"organization_name": "Acme Title", "organization_slug": "acme",
                    "email": "owner@acme.test", "name": "Owner", "password": "correct horse battery staple"})),
    ));
    assert_eq!(status, 201, "{session}");
    let token = session["access_token"].as_str().expect("token").to_owned();
    let mut csv = String::from("email,first_name,zip\n");
    for i in 0..30 {
        csv.push_str(&format!("owner{i:02}@home.test,Owner {i},50010\n"));
    }
    let imported = runtime.block_on(async {
        http.post(format!("{base}/contacts/import"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("import")
            .json::<Value>()
            .await
            .expect("json")
    });
    assert_eq!(imported["inserted"], 30, "{imported}");
    let (status, template) = runtime.block_on(call(
        reqwest::Method::POST,
        "/templates",
        Some(&token),
        Some(json!({"name": "hello", "subject": "Hello {{ contact.first_name }}",
                    "html": "<p>Hello {{ contact.first_name }}</p>", "text": "Hello {{ contact.first_name }}"})),
    ));
    assert_eq!(status, 201, "{template}");
    let (status, campaign) = runtime.block_on(call(
        reqwest::Method::POST,
        "/campaigns",
        Some(&token),
        Some(json!({"name": "crash", "template_id": template["id"], "rule": "zip = '50010'"})),
    ));
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["id"].as_str().expect("id").to_owned();
    let (status, _) = runtime.block_on(call(
        reqwest::Method::POST,
        &format!("/campaigns/{id}/send"),
        Some(&token),
        Some(json!({})),
    ));
    assert_eq!(status, 202);

    // Killed by the SMTP server with the sixth message on the wire.
    wait_dead(&mut first);
    assert_eq!(received(&dir).values().sum::<usize>(), 5);

    // Restarted, and killed again between two messages.
    let mut second = serve(&dir, &pidfile, &addr);
    wait_dead(&mut second);
    assert_eq!(
        received(&dir).values().sum::<usize>(),
        14,
        "{:?}",
        received(&dir)
    );

    // A third run finishes the campaign.
    let _third = serve(&dir, &pidfile, &addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, c) = runtime.block_on(call(
            reqwest::Method::GET,
            &format!("/campaigns/{id}"),
            Some(&token),
            None,
        ));
        if c["status"] == "sent" {
            assert_eq!(c["stats"]["delivered"], 30, "{c}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the campaign did not finish: {c}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = received(&dir);
    assert_eq!(got.len(), 30, "{got:?}");
    assert!(
        got.values().all(|n| *n == 1),
        "some got more than one: {got:?}"
    );
}

/// The engagement events the server appends are events the streaming job accepts.
#[test]
fn engagement_events_decode_in_the_streaming_job() {
    use roi_schemas::table::StrEnum;
    let message = roi_serving::store::TrackedMessage {
        org_id: "org_1".to_owned(),
        campaign_id: "cmp_1".to_owned(),
        campaign_lake_id: roi_serving::store::lake_id_of("cmp_1"),
        contact_id: "ct_1".to_owned(),
        lake_contact_id: Some(42),
        lake_org_id: Some(3),
        email: "a@b.test".to_owned(),
        consent: "subscribed".to_owned(),
    };
    let at = 1_764_460_800_123;
    let lines: Vec<String> = ["email_opened", "email_clicked"]
        .iter()
        .map(|kind| {
            roi_serving::campaigns::EventLog::line(
                &message,
                kind,
                roi_serving::campaigns::EventLog::new_event_id(),
                at,
            )
            .expect("a pipeline contact")
        })
        .collect();
    let chunk = roi_pipeline::source::Chunk {
        origin: "engagement.ndjson".into(),
        offsets: vec![1, 2],
        lines,
    };
    let decoded = roi_pipeline::decode::decode(&chunk, 1, chrono::Utc::now()).expect("decode");
    assert!(decoded.dead.is_empty(), "{:?}", decoded.dead);
    assert_eq!(decoded.batches[0].batch.num_rows(), 2);
    let event = roi_schemas::event::parse_event_line(&chunk.lines[0], None).expect("event");
    assert_eq!(event.contact_id.0, 42);
    assert_eq!(event.org_id.0, 3);
    assert_eq!(
        event.campaign_id.map(|c| c.0),
        Some(message.campaign_lake_id)
    );
    assert_eq!(event.event_type.as_str(), "email_opened");
    assert_eq!(event.ts.timestamp_millis(), at);
    // A contact the pipeline does not know has no event.
    let unknown = roi_serving::store::TrackedMessage {
        lake_contact_id: None,
        ..message
    };
    assert!(roi_serving::campaigns::EventLog::line(&unknown, "email_opened", 1, at).is_none());
}
