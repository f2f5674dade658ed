//! Whole-job benchmark: synthetic world generation throughput.
//!
//! Usage: `cargo bench --bench generate -- [tiny|small|medium|large] [SEED]` (default medium).
//!
//! Reports wall time and events per second for the whole world (Parquet tables, NDJSON
//! event log, truth), then runs the hot output path side by side with its peer: the same
//! events formatted by the generator's NDJSON writer and by `serde_json` on the schema
//! type, and prints the ratio. Results belong in `benches/RESULTS.md`.

use std::time::Instant;

use roi_datasets::behaviour::EventDraft;
use roi_datasets::event_log::format_event;
use roi_datasets::{Scale, WorldConfig, generate};
use roi_schemas::{Event, parse_event_line};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scale: Scale = args
        .first()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(Scale::Medium);
    let seed: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(7);
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("world");

    let started = Instant::now();
    let report = generate(&WorldConfig {
        scale,
        seed,
        dirty: false,
        out: out.clone(),
        progress: false,
    })?;
    let secs = started.elapsed().as_secs_f64();
    let events = report.manifest.events.events;
    let bytes: u64 = report
        .manifest
        .events
        .files
        .iter()
        .map(|f| {
            std::fs::metadata(out.join("events").join(&f.path))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    println!("generate --scale {scale} --seed {seed}");
    println!("  threads:        {}", rayon_threads());
    println!("  wall time:      {secs:.1} s");
    println!(
        "  events:         {events} ({:.2} M events/s, {:.0} MB NDJSON)",
        events as f64 / secs / 1e6,
        bytes as f64 / 1e6
    );
    println!(
        "  contacts:       {}",
        report.manifest.tables.get("contacts").copied().unwrap_or(0)
    );

    // Peer comparison on one month of real output lines.
    let file = out
        .join("events")
        .join(&report.manifest.events.files[report.manifest.events.files.len() / 2].path);
    let text = std::fs::read_to_string(&file)?;
    let parsed: Vec<Event> = text
        .lines()
        .map(|l| parse_event_line(l, None))
        .collect::<Result<_, _>>()?;
    let mut zips: Vec<String> = Vec::new();
    let drafts: Vec<EventDraft> = parsed
        .iter()
        .map(|e| EventDraft {
            arrival_ms: 0,
            ts_ms: e.ts.timestamp_millis(),
            event_id: e.event_id.0,
            contact: e.contact_id.0,
            org: e.org_id.0,
            kind: e.event_type,
            session: e.session_id.map(|v| v.0),
            property: e.property_id.map(|v| v.0),
            document: e.document_id.map(|v| v.0),
            listing: e.listing_id.map(|v| v.0),
            zip: e.search_zip.as_ref().map(|z| {
                zips.iter().position(|x| x == z).unwrap_or_else(|| {
                    zips.push(z.clone());
                    zips.len() - 1
                }) as u32
            }),
            campaign: e.campaign_id.map(|v| v.0),
            amount: e.amount,
        })
        .collect();
    let rounds = 5;
    let mut ours = f64::MAX;
    let mut peer = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        let mut buf = Vec::with_capacity(text.len());
        for d in &drafts {
            format_event(&mut buf, d, &zips);
            buf.push(b'\n');
        }
        ours = ours.min(t.elapsed().as_secs_f64());
        assert_eq!(
            buf.len(),
            text.len(),
            "formatter output must equal the file"
        );

        let t = Instant::now();
        let mut buf = Vec::with_capacity(text.len());
        for e in &parsed {
            serde_json::to_writer(&mut buf, e)?;
            buf.push(b'\n');
        }
        peer = peer.min(t.elapsed().as_secs_f64());
        assert_eq!(
            buf.len(),
            text.len(),
            "serde_json output must equal the file"
        );
    }
    let n = parsed.len() as f64;
    println!(
        "NDJSON encoding of {} events ({}), best of {rounds}:",
        parsed.len(),
        file.file_name().and_then(|f| f.to_str()).unwrap_or("?")
    );
    println!("  roi format_event: {:.0} ns/event", ours / n * 1e9);
    println!("  serde_json:       {:.0} ns/event", peer / n * 1e9);
    println!("  ratio (serde_json / roi): {:.2}x", peer / ours);
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
