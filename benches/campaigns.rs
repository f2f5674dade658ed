//! Campaign speed: render + enqueue, and SMTP sending.
//!
//! 1. **Render**: a realistic template (subject, ~1.5 KB HTML with a dozen merge tags and
//!    two links, ~500 B text) personalised for N contacts and tracked (click redirects,
//!    open pixel), on one thread; side by side, Python's Jinja2 (the engine MiniJinja
//!    follows) rendering the same template with the same values
//!    (`benches/peers/render_campaign.py`), also on one core.
//! 2. **Render + enqueue**: the real queuing path (`roi_serving::campaigns::queue_campaign`:
//!    audience pages from the store, render, multi-row inserts into the durable queue) for
//!    N contacts in a SQLite store.
//! 3. **SMTP send**: the queue drained by the sender to a real SMTP server on loopback
//!    (aiosmtpd), M messages.
//!
//! Usage: `cargo bench --bench campaigns -- [N] [M]` (defaults 1,000,000 and 2,000; needs
//! python3 with jinja2 and aiosmtpd).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roi_serving::campaigns::{MergeContext, Sender, Tracker, render_for};
use roi_serving::merge::Template;
use roi_serving::store::{Branding, Contact, ContactAttributes, Store, SyncContact};

const SUBJECT: &str =
    "{{ contact.first_name }}, your home in {{ property.city }} is worth {{ valuation.value }}";
const HTML: &str = r#"<html><body style="font-family:sans-serif">
<table width="100%" cellpadding="0" cellspacing="0"><tr><td style="background:{{ org.primary_color }};padding:16px">
<img src="{{ org.logo_url }}" alt="{{ org.name }}" height="40"></td></tr></table>
<h1 style="font-size:22px">Hi {{ contact.first_name }},</h1>
<p>Your home at <b>{{ property.full_address }}</b> is now estimated at <b>{{ valuation.value }}</b>
(between {{ valuation.low }} and {{ valuation.high }}), {{ valuation.change_pct }} over the last year.</p>
<p>You own about <b>{{ equity.percent }}</b> of it: {{ equity.amount }} in equity. Homes in {{ market.zip }}
sold for a median of {{ market.median_price }} in {{ market.month }}.</p>
<p><a href="https://acme.example/report?home={{ property.zip }}&amp;src=email" style="color:{{ org.primary_color }}">See your full home report</a></p>
<p>Thinking about what comes next? {{ agent.name }} can help: <a href="mailto:{{ agent.email }}">{{ agent.email }}</a>
or <a href="https://acme.example/agents">meet the team</a>.</p>
<hr><p style="font-size:12px;color:#666">{{ org.name }} · {{ org.postal_address }}<br>
You get this because you closed on your home with us. <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
</body></html>"#;
const TEXT: &str = "Hi {{ contact.first_name }},\n\nYour home at {{ property.full_address }} is now estimated at {{ valuation.value }} ({{ valuation.change_pct }} over the last year).\nYou own about {{ equity.percent }} of it: {{ equity.amount }} in equity.\n\nYour agent: {{ agent.name }} <{{ agent.email }}>\n\n{{ org.name }}, {{ org.postal_address }}\nUnsubscribe: {{ links.unsubscribe }}\n";

const FIRST: [&str; 8] = ["Ana", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal"];
const CITIES: [&str; 4] = ["Ames", "Boone", "Nevada", "Story City"];

fn attributes(i: usize) -> ContactAttributes {
    ContactAttributes {
        address: Some(format!("{} Oak St", 100 + i % 900)),
        city: Some(CITIES[i % 4].to_owned()),
        state: Some("IA".to_owned()),
        zip: Some(format!("500{:02}", i % 20)),
        property_type: Some("single_family".to_owned()),
        beds: Some(3.0),
        year_built: Some(1990.0 + (i % 30) as f64),
        closed_on_day: Some(15_000 + (i % 3000) as i64),
        value: Some(250_000.0 + (i % 1000) as f64 * 250.0),
        value_low: Some(230_000.0 + (i % 1000) as f64 * 250.0),
        value_high: Some(270_000.0 + (i % 1000) as f64 * 250.0),
        value_change_pct: Some((i % 90) as f64 / 10.0 - 2.0),
        equity: Some(100_000.0 + (i % 500) as f64 * 300.0),
        equity_pct: Some(20.0 + (i % 60) as f64),
        market_month_day: Some(20_727),
        market_median_price: Some(289_000.0),
        agent_name: Some("Pat Agent".to_owned()),
        agent_email: Some("pat@acme.example".to_owned()),
        ..ContactAttributes::default()
    }
}

fn contact(i: usize) -> Contact {
    Contact {
        id: format!("ct_{i:08}"),
        lake_contact_id: Some(i as i64),
        email: format!("owner{i}@home{}.example", i % 50),
        first_name: FIRST[i % 8].to_owned(),
        last_name: format!("Owner{i}"),
        consent: roi_serving::contacts::Consent::Subscribed,
        consent_at: 0,
        attributes: attributes(i),
        created_at: 0,
        updated_at: 0,
    }
}

/// Contact `i` as the lake would sync it.
fn synced(i: usize) -> SyncContact {
    let c = contact(i);
    SyncContact {
        lake_contact_id: i as i64,
        email: c.email,
        first_name: c.first_name,
        last_name: c.last_name,
        opted_in: true,
        attributes: c.attributes,
        values: Vec::new(),
    }
}

fn context() -> MergeContext {
    MergeContext {
        org_name: "Acme Title".to_owned(),
        branding: Branding {
            logo_url: Some("https://acme.example/logo.png".to_owned()),
            postal_address: Some("1 Main St, Ames, IA 50010".to_owned()),
            primary_color: Some("#0a7f3c".to_owned()),
            ..Branding::default()
        },
        campaign_name: "Home value update".to_owned(),
        today: "November 30, 2026".to_owned(),
    }
}

/// Renders for `n` contacts on this thread; returns (seconds, bytes rendered).
fn render(n: usize) -> (f64, usize) {
    let template = Template::compile(SUBJECT, HTML, TEXT).expect("template");
    let tracker = Tracker::new(b"bench-secret", "https://roi.example");
    let ctx = context();
    let mut bytes = 0;
    let started = Instant::now();
    for i in 0..n {
        let m = render_for(&template, &contact(i), &ctx, &tracker, "cmp_bench", 20_787)
            .expect("render");
        bytes += m.subject.len() + m.html.len() + m.text.len();
    }
    (started.elapsed().as_secs_f64(), bytes)
}

/// Writes the peer's input (the merge values of the first `n` contacts, as the queue
/// computes them) and runs it; returns its seconds.
fn peer(n: usize, dir: &std::path::Path) -> Option<f64> {
    let tracker = Tracker::new(b"bench-secret", "https://roi.example");
    let ctx = context();
    let path = dir.join("values.ndjson");
    let mut out = String::new();
    for i in 0..n.min(200_000) {
        let c = contact(i);
        let unsubscribe = tracker.unsubscribe_url("cmp_bench", &c.id);
        let v = roi_serving::campaigns::merge_values(&c, &ctx, &unsubscribe, 20_787);
        let map: serde_json::Map<String, serde_json::Value> = roi_serving::merge::TAGS
            .iter()
            .map(|t| {
                (
                    t.name.to_owned(),
                    serde_json::Value::from(v.get(t.name).unwrap_or(t.fallback)),
                )
            })
            .collect();
        out.push_str(&serde_json::Value::Object(map).to_string());
        out.push('\n');
    }
    std::fs::write(&path, out).ok()?;
    std::fs::write(dir.join("subject.j2"), SUBJECT).ok()?;
    std::fs::write(dir.join("html.j2"), HTML).ok()?;
    std::fs::write(dir.join("text.j2"), TEXT).ok()?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peers/render_campaign.py"
    );
    let output = std::process::Command::new("taskset")
        .args(["-c", "0", "python3", script])
        .arg(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&output.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let per_message: f64 = text.trim().parse().ok()?;
    Some(per_message)
}

async fn organization<'s>(
    store: &'s Store,
    slug: &str,
) -> (roi_serving::store::Tenant<'s>, roi_serving::store::User) {
    let owner = roi_serving::store::NewUser {
        email: format!("owner@{slug}.example"),
        name: "Owner".to_owned(),
        role: roi_serving::role::Role::Owner,
        password_hash: "x".to_owned(),
    };
    let (org, user) = store
        .create_organization(slug, "Acme Title", owner, 0)
        .await
        .expect("organization");
    (store.tenant_of(&org), user)
}

/// A campaign to every subscribed contact, taken for queuing.
async fn new_campaign(
    store: &Store,
    tenant: &roi_serving::store::Tenant<'_>,
    user: &roi_serving::store::User,
) -> roi_serving::store::Campaign {
    let template = tenant
        .create_template("bench", SUBJECT, HTML, TEXT, &user.id, 0)
        .await
        .expect("template");
    let campaign = tenant
        .create_campaign(
            &roi_serving::store::NewCampaign {
                name: "bench",
                template_id: &template.id,
                segment_id: None,
                rule: "consent = 'subscribed'",
                scheduled_at: Some(0),
                created_by: &user.id,
            },
            0,
        )
        .await
        .expect("campaign");
    let taken = store.take_due_campaigns(1, 0).await.expect("take");
    assert!(
        taken.iter().any(|(_, id)| id == &campaign.id),
        "taken for queuing"
    );
    campaign
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let m: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("tempdir");

    let (secs, bytes) = render(n);
    let roi_us = secs * 1e6 / n as f64;
    println!(
        "render: {n} messages in {secs:.2} s: {:.0} messages/s on one thread ({roi_us:.2} µs each, {:.0} B average)",
        n as f64 / secs,
        bytes as f64 / n as f64
    );
    match peer(n, dir.path()) {
        Some(us) => println!(
            "peer: Jinja2 (Python) {us:.2} µs/message on one core; ratio (Jinja2 / roi) {:.1}x",
            us / roi_us
        ),
        None => println!("peer: not run (python3 with jinja2 needed)"),
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let database = roi_serving::config::DatabaseConfig {
            url: Some(format!("sqlite://{}/bench.db", dir.path().display())),
            max_connections: 4,
        };
        let (store, _) = roi_serving::server::open_store(&database).await.expect("store");
        let (tenant, user) = organization(&store, "acme").await;
        let started = Instant::now();
        let people: Vec<SyncContact> = (0..n)
            .map(synced)
            .collect();
        for chunk in people.chunks(50_000) {
            tenant.sync_contacts(chunk, &[], 0).await.expect("sync");
        }
        println!("setup: {n} contacts synced in {:.1} s", started.elapsed().as_secs_f64());
        let campaign = new_campaign(&store, &tenant, &user).await;
        let tracker = Tracker::new(b"bench-secret", "https://roi.example");
        let started = Instant::now();
        let queued = roi_serving::campaigns::queue_campaign(&tenant, &campaign, &tracker, &roi_serving::campaigns::Queue::Store, 1_764_460_800)
            .await
            .expect("queue");
        let secs = started.elapsed().as_secs_f64();
        println!(
            "render + enqueue: {} messages in {secs:.1} s: {:.0} messages/s (SQLite, one task)",
            queued.added,
            queued.added as f64 / secs
        );

        // SMTP: a fresh campaign of M contacts to a real server on loopback.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let mut server = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Sink"])
            .spawn()
            .expect("aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let config = roi_serving::campaigns::CampaignConfig {
            per_domain_per_minute: 1_000_000,
            concurrency: 8,
            ..Default::default()
        };
        let transport: Arc<dyn roi_serving::campaigns::Transport> = Arc::new(
            roi_serving::campaigns::SmtpTransport::new(&format!("smtp://127.0.0.1:{port}"), 30).expect("smtp"),
        );
        let sender = Arc::new(Sender::new(
            config,
            transport,
            "Acme Title <news@acme.example>".parse().expect("from"),
            tracker.clone(),
            roi_serving::ratelimit::Limiter::default(),
            roi_serving::campaigns::Queue::Store,
        ));
        // A second organization of M contacts gets its own campaign; the big one is
        // cancelled (its messages suppressed).
        tenant.cancel_campaign(&campaign.id, 1).await.expect("cancel");
        let (small, small_user) = organization(&store, "small").await;
        let people: Vec<SyncContact> = (0..m)
            .map(synced)
            .collect();
        small.sync_contacts(&people, &[], 0).await.expect("sync");
        let campaign = new_campaign(&store, &small, &small_user).await;
        roi_serving::campaigns::queue_campaign(&small, &campaign, &tracker, &roi_serving::campaigns::Queue::Store, 1_764_460_800)
            .await
            .expect("queue");
        let started = Instant::now();
        loop {
            roi_serving::campaigns::round(&store, Some(&sender), &tracker, &roi_serving::campaigns::Queue::Store).await;
            let stats = small.campaign_stats(&campaign.id, 0).await.expect("stats");
            if stats.pending == 0 {
                let secs = started.elapsed().as_secs_f64();
                println!(
                    "SMTP send: {} messages in {secs:.1} s: {:.0} messages/s to aiosmtpd on loopback (8 at once)",
                    stats.delivered,
                    stats.delivered as f64 / secs
                );
                break;
            }
        }
        let _ = server.kill();
        let _ = server.wait();
    });
}
