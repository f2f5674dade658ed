//! The behaviour-event log: NDJSON files in arrival order, one per arrival month.
//!
//! Events are produced per event-time month, but a file holds the events that *arrived*
//! in its month, sorted by arrival: late events spill into the next file. With `--dirty`,
//! about 0.5% extra lines are malformed in one of four ways, for error-path tests.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use roi_schemas::StrEnum;
use serde::Serialize;

use crate::behaviour::EventDraft;
use crate::calendar::{Month, month_start};
use crate::lake::FileEntry;
use crate::{Error, Result};

/// Kinds of malformed lines added by `--dirty` (names match the dead-letter reasons).
pub const DIRT_KINDS: [&str; 4] = [
    "malformed_json",
    "unknown_event_type",
    "missing_field",
    "future_timestamp",
];
/// Dirty lines per 1000 events.
const DIRT_PER_MILLE: u64 = 5;

/// Counts of what the log holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventLogStats {
    /// Valid event lines.
    pub events: u64,
    /// Malformed lines per kind (empty unless `--dirty`).
    pub malformed: std::collections::BTreeMap<String, u64>,
    /// Events whose arrival is more than an hour after their event time.
    pub late_over_1h: u64,
    /// Events that arrived before an event with an earlier timestamp (out of order).
    pub out_of_order: u64,
    /// Files.
    pub files: Vec<FileEntry>,
}

/// Writes the log month by month.
pub struct EventLog {
    dir: PathBuf,
    seed: u64,
    dirty: bool,
    carry: Vec<EventDraft>,
    zips: Vec<String>,
    max_ts_seen: i64,
    /// Running counts.
    pub stats: EventLogStats,
}

fn mix(seed: u64, id: i64) -> u64 {
    let mut x = seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

impl EventLog {
    /// A log under `<root>/events/`; `zips` resolves zip indices.
    pub fn create(root: &Path, seed: u64, dirty: bool, zips: Vec<String>) -> Result<EventLog> {
        let dir = root.join("events");
        std::fs::create_dir_all(&dir).map_err(Error::io("creating directory", &dir))?;
        Ok(EventLog {
            dir,
            seed,
            dirty,
            carry: Vec::new(),
            zips,
            max_ts_seen: i64::MIN,
            stats: EventLogStats::default(),
        })
    }

    /// Adds the events generated for event-time month `m` and writes every event that
    /// arrived before the end of `m`; later arrivals wait for the next month.
    pub fn push_month(&mut self, m: Month, mut events: Vec<EventDraft>, last: bool) -> Result<()> {
        events.append(&mut self.carry);
        events.par_sort_unstable_by_key(|e| (e.arrival_ms, e.event_id));
        let cutoff = crate::calendar::month_start_ms(m + 1);
        let split = if last {
            events.len()
        } else {
            events.partition_point(|e| e.arrival_ms < cutoff)
        };
        self.carry = events.split_off(split);
        let name = format!("arrivals-{}.ndjson", month_start(m).format("%Y-%m"));
        let path = self.dir.join(&name);
        for e in &events {
            if e.arrival_ms - e.ts_ms > 3_600_000 {
                self.stats.late_over_1h += 1;
            }
            if e.ts_ms < self.max_ts_seen {
                self.stats.out_of_order += 1;
            }
            self.max_ts_seen = self.max_ts_seen.max(e.ts_ms);
        }
        let seed = self.seed;
        let dirty = self.dirty;
        let zips = &self.zips;
        let chunks: Vec<(Vec<u8>, [u64; 4])> = events
            .par_chunks(50_000)
            .map(|chunk| {
                let mut buf = Vec::with_capacity(chunk.len() * 160);
                let mut dirt = [0u64; 4];
                let mut line = Vec::with_capacity(256);
                for e in chunk {
                    line.clear();
                    format_event(&mut line, e, zips);
                    buf.extend_from_slice(&line);
                    buf.push(b'\n');
                    if dirty {
                        let h = mix(seed, e.event_id);
                        if h % 1000 < DIRT_PER_MILLE {
                            let kind = ((h >> 32) % 4) as usize;
                            dirty_line(&mut buf, &line, kind, h);
                            dirt[kind] += 1;
                        }
                    }
                }
                (buf, dirt)
            })
            .collect();
        let file = File::create(&path).map_err(Error::io("creating", &path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut lines = events.len() as u64;
        for (buf, dirt) in &chunks {
            w.write_all(buf).map_err(Error::io("writing", &path))?;
            for (k, n) in dirt.iter().enumerate() {
                if *n > 0 {
                    *self
                        .stats
                        .malformed
                        .entry(DIRT_KINDS[k].to_owned())
                        .or_default() += n;
                    lines += n;
                }
            }
        }
        w.flush().map_err(Error::io("writing", &path))?;
        self.stats.events += events.len() as u64;
        self.stats.files.push(FileEntry {
            path: name,
            rows: lines,
        });
        Ok(())
    }
}

fn push_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

fn field_int(out: &mut Vec<u8>, name: &str, v: Option<i64>) {
    if let Some(v) = v {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        push_int(out, v);
    }
}

/// Formats one event exactly as `serde_json` would serialise [`roi_schemas::Event`]
/// (same field order, absent optionals omitted).
pub fn format_event(out: &mut Vec<u8>, e: &EventDraft, zips: &[String]) {
    out.extend_from_slice(b"{\"event_id\":");
    push_int(out, e.event_id);
    out.extend_from_slice(b",\"org_id\":");
    push_int(out, e.org);
    out.extend_from_slice(b",\"contact_id\":");
    push_int(out, e.contact);
    out.extend_from_slice(b",\"event_type\":\"");
    out.extend_from_slice(e.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"ts\":\"");
    crate::calendar::push_rfc3339_ms(out, e.ts_ms);
    out.push(b'"');
    field_int(out, "session_id", e.session);
    field_int(out, "property_id", e.property);
    field_int(out, "document_id", e.document);
    field_int(out, "listing_id", e.listing);
    if let Some(z) = e.zip {
        out.extend_from_slice(b",\"search_zip\":\"");
        out.extend_from_slice(zips[z as usize].as_bytes());
        out.push(b'"');
    }
    field_int(out, "campaign_id", e.campaign);
    if let Some(a) = e.amount {
        out.extend_from_slice(b",\"amount\":");
        out.extend_from_slice(ryu::Buffer::new().format(a).as_bytes());
    }
    out.push(b'}');
}

/// Appends a malformed variant of `line` (a valid event line) of the given kind.
fn dirty_line(out: &mut Vec<u8>, line: &[u8], kind: usize, h: u64) {
    let text = std::str::from_utf8(line).unwrap_or_default();
    let broken = match kind {
        // Truncated mid-object, as a crashed writer leaves it.
        0 => text[..(text.len() / 2).max(1)].to_owned(),
        1 => {
            let start = text.find("\"event_type\":\"").map_or(0, |i| i + 14);
            let end = text[start..].find('"').map_or(start, |j| start + j);
            let bogus =
                ["teleported", "valuation_view", "LISTING_VIEWED", ""][(h >> 8) as usize % 4];
            format!("{}{}{}", &text[..start], bogus, &text[end..])
        }
        2 => {
            let field = ["\"contact_id\":", "\"ts\":", "\"event_type\":"][(h >> 8) as usize % 3];
            let start = text.find(field).unwrap_or(0);
            let end = text[start..]
                .find(",\"")
                .map_or(text.len() - 1, |j| start + j + 1);
            format!("{}{}", &text[..start], &text[end..]).replace(",}", "}")
        }
        _ => {
            let start = text.find("\"ts\":\"").map_or(0, |i| i + 6);
            let year = 2099 + (h >> 16) % 50;
            format!("{}{year}{}", &text[..start], &text[start + 4..])
        }
    };
    out.extend_from_slice(broken.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use roi_schemas::{EventType, RejectReason, parse_event_line};

    fn draft() -> EventDraft {
        EventDraft {
            arrival_ms: 1_700_000_001_000,
            ts_ms: 1_700_000_000_123,
            event_id: 99,
            contact: 7,
            org: 2,
            kind: EventType::MortgageCalcUsed,
            session: Some(5),
            property: None,
            document: None,
            listing: Some(123),
            zip: Some(1),
            campaign: None,
            amount: Some(350_000.0),
        }
    }

    #[test]
    fn formatted_line_is_what_serde_writes() {
        let zips = vec!["50001".to_owned(), "78702".to_owned()];
        let mut line = Vec::new();
        format_event(&mut line, &draft(), &zips);
        let text = String::from_utf8(line).expect("utf8");
        let event = parse_event_line(&text, None).expect("valid");
        assert_eq!(serde_json::to_string(&event).expect("json"), text);
        assert_eq!(event.search_zip.as_deref(), Some("78702"));
    }

    #[test]
    fn every_dirt_kind_is_rejected_for_its_reason() {
        let zips = vec!["50001".to_owned(), "78702".to_owned()];
        let mut line = Vec::new();
        format_event(&mut line, &draft(), &zips);
        let expected = [
            RejectReason::MalformedJson,
            RejectReason::UnknownEventType,
            RejectReason::MissingField,
            RejectReason::FutureTimestamp,
        ];
        for (kind, reason) in expected.into_iter().enumerate() {
            for h in [0u64, 1 << 8, 2 << 8, 3 << 8, 12345 << 8] {
                let mut out = Vec::new();
                dirty_line(&mut out, &line, kind, h);
                let text = String::from_utf8(out).expect("utf8");
                let r = parse_event_line(text.trim_end(), None).expect_err(&text);
                assert_eq!(r.reason, reason, "{text}");
                assert_eq!(reason.as_str(), DIRT_KINDS[kind]);
            }
        }
    }
}
