//! Routing speed: one decision at a time over 1,000 agents and 20 rules (territory,
//! skill, relationship, workload, round-robin and performance in different chains),
//! with each decision's load applied before the next. Reports p50/p99/max per decision
//! and, side by side, the same decisions made by a plain Python implementation of the
//! same rules (`benches/peers/routing.py`) on the same input, with their agreement.
//!
//! Usage: `cargo bench --bench routing` (needs python3 for the peer).

use std::collections::BTreeSet;
use std::time::Instant;

use roi_serving::alerts::AlertKind;
use roi_serving::routing::{AgentLoad, AlertFacts, RoutingState, Rule, StrategyConfig as S, route};

const AGENTS: usize = 1_000;
const ZIPS: u64 = 200;
const ALERTS: usize = 20_000;
const KINDS: [AlertKind; 4] = [
    AlertKind::Sell,
    AlertKind::Buy,
    AlertKind::Refinance,
    AlertKind::Investment,
];

/// A small deterministic generator (the peer reads the generated input, not this).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn world() -> (Vec<AgentLoad>, Vec<Rule>, Vec<AlertFacts>) {
    let mut rng = Lcg(7);
    let agents: Vec<AgentLoad> = (0..AGENTS)
        .map(|i| AgentLoad {
            id: format!("agent-{i:04}"),
            zips: (0..3).map(|_| format!("5{:04}", rng.next(ZIPS))).collect(),
            skills: (0..2)
                .map(|_| KINDS[rng.next(4) as usize])
                .collect::<BTreeSet<_>>(),
            capacity: 20 + rng.next(30) as u32,
            open: rng.next(20) as u32,
            conversion_rate: rng.next(500) as f64 / 1000.0,
        })
        .collect();
    let chains = [
        vec![S::Relationship],
        vec![S::Territory, S::Skill, S::Workload],
        vec![S::Territory, S::Performance { floor: 0.05 }],
        vec![S::Skill, S::RoundRobin],
        vec![S::Territory, S::RoundRobin],
    ];
    let mut rules: Vec<Rule> = (0..19)
        .map(|i| Rule {
            name: format!("rule-{i:02}"),
            strategies: chains[i % chains.len()].clone(),
        })
        .collect();
    rules.push(Rule {
        name: "anyone".into(),
        strategies: vec![S::Workload],
    });
    let alerts = (0..ALERTS)
        .map(|_| AlertFacts {
            kind: KINDS[rng.next(4) as usize],
            zip: Some(format!("5{:04}", rng.next(ZIPS + 20))),
            agent_of_record: (rng.next(10) < 3)
                .then(|| format!("agent-{:04}", rng.next(AGENTS as u64))),
        })
        .collect();
    (agents, rules, alerts)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let (mut agents, rules, alerts) = world();
    let input = serde_json::json!({
        "agents": agents.iter().map(|a| serde_json::json!({
            "id": a.id, "zips": a.zips, "skills": a.skills.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "capacity": a.capacity, "open": a.open, "conversion_rate": a.conversion_rate,
        })).collect::<Vec<_>>(),
        "rules": rules,
        "alerts": alerts.iter().map(|f| serde_json::json!({
            "kind": f.kind.as_str(), "zip": f.zip, "agent_of_record": f.agent_of_record,
        })).collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let input_path = dir.path().join("routing-input.json");
    std::fs::write(&input_path, input.to_string()).expect("write the peer's input");

    let mut state = RoutingState::default();
    let mut nanos = Vec::with_capacity(alerts.len());
    let mut chosen = Vec::with_capacity(alerts.len());
    let started = Instant::now();
    for alert in &alerts {
        let t = Instant::now();
        let decision = route(alert, &agents, &rules, &mut state);
        nanos.push(t.elapsed().as_nanos() as u64);
        let id = decision.map(|d| d.agent_id).unwrap_or_default();
        if let Some(a) = agents.iter_mut().find(|a| a.id == id) {
            a.open += 1;
        }
        chosen.push(id);
    }
    let total = started.elapsed();
    nanos.sort_unstable();
    let us = |n: u64| n as f64 / 1000.0;
    println!(
        "roi routing: {} decisions over {AGENTS} agents and {} rules in {:.2} s; per decision p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        alerts.len(),
        rules.len(),
        total.as_secs_f64(),
        us(percentile(&nanos, 0.5)),
        us(percentile(&nanos, 0.99)),
        us(*nanos.last().expect("decisions")),
    );

    let peer = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/routing.py");
    let out = std::process::Command::new("python3")
        .arg(&peer)
        .arg(&input_path)
        .output()
        .expect("run the Python peer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let summary = lines.next().expect("peer summary");
    let peer_chosen: Vec<&str> = lines.collect();
    let agree = chosen
        .iter()
        .zip(&peer_chosen)
        .filter(|(a, b)| a.as_str() == **b)
        .count();
    println!("{summary}");
    println!("agreement: {agree} of {} decisions identical", chosen.len());
    let peer_p99: f64 = summary
        .split("p99 ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("peer p99");
    println!(
        "ratio p99 peer / roi: {:.1}x",
        peer_p99 / us(percentile(&nanos, 0.99))
    );
}
