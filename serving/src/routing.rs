//! Routing alerts to agents: six strategies behind one trait, composed into ordered
//! rules with fallbacks.
//!
//! A [`Rule`] is a chain of strategies. Each strategy either narrows the candidates
//! (territory, skill, relationship) or picks one of them (workload, round-robin,
//! performance). The first rule that ends with an agent decides; when a rule narrows to
//! nobody, the next rule is tried. Agents at capacity are never candidates, so no
//! strategy can overload one. Every [`Decision`] says which rule and which strategy
//! decided, and why, in words.
//!
//! The engine is pure: agents, rules and the persistent [`RoutingState`] (round-robin
//! cursors, performance weights) go in, a decision and the updated state come out.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::alerts::AlertKind;

/// What routing knows about an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFacts {
    /// What the homeowner is likely to do.
    pub kind: AlertKind,
    /// The home's zip code, when known.
    pub zip: Option<String>,
    /// The homeowner's agent of record (a user id), when known.
    pub agent_of_record: Option<String>,
}

/// An agent as routing sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLoad {
    /// User id.
    pub id: String,
    /// Zip codes of their territory.
    pub zips: BTreeSet<String>,
    /// Alert kinds they handle.
    pub skills: BTreeSet<AlertKind>,
    /// Most open alerts at a time.
    pub capacity: u32,
    /// Open alerts now.
    pub open: u32,
    /// Share of their closed alerts that converted, 0–1.
    pub conversion_rate: f64,
}

impl AgentLoad {
    fn has_room(&self) -> bool {
        self.open < self.capacity
    }
}

/// One strategy, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum StrategyConfig {
    /// Keep agents whose territory holds the alert's zip.
    Territory,
    /// Keep agents who handle the alert's kind.
    Skill,
    /// Keep only the homeowner's agent of record.
    Relationship,
    /// Pick the agent with the most room (lowest open / capacity).
    Workload,
    /// Pick the next agent in turn (a persistent cursor per rule).
    RoundRobin,
    /// Pick in proportion to conversion rate (smooth weighted round-robin; agents with
    /// no record get `floor`).
    Performance {
        /// Weight of an agent with a conversion rate of 0 (default 0.05).
        #[serde(default = "default_floor")]
        floor: f64,
    },
}

fn default_floor() -> f64 {
    0.05
}

/// An ordered chain of strategies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Name, unique within the organization (it keys the rule's cursor).
    pub name: String,
    /// Strategies in order; a rule whose chain picks nobody ends with the least loaded
    /// of what is left.
    pub strategies: Vec<StrategyConfig>,
}

/// Routing memory between decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingState {
    /// Per rule: the last agent round-robin picked.
    pub cursors: BTreeMap<String, String>,
    /// Per rule and agent: the smooth weighted round-robin's current weight (in
    /// thousandths of a conversion rate, so that the arithmetic is exact).
    pub weights: BTreeMap<String, BTreeMap<String, i64>>,
}

/// Who gets the alert, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The agent (user id).
    pub agent_id: String,
    /// The rule that decided.
    pub rule: String,
    /// The strategy that made the final choice.
    pub strategy: &'static str,
    /// Each step, in words.
    pub reason: String,
}

/// What a strategy did to the candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// These remain (indices into the agents).
    Narrowed(Vec<usize>, String),
    /// This one is chosen.
    Picked(usize, String),
}

/// A routing strategy.
pub trait Strategy {
    /// Its name in decisions and configuration.
    fn name(&self) -> &'static str;
    /// Narrows or picks among `candidates` (non-empty, each with room).
    fn apply(
        &self,
        rule: &str,
        alert: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        state: &mut RoutingState,
    ) -> Step;
}

struct Territory;
struct Skill;
struct Relationship;
struct Workload;
struct RoundRobin;
struct Performance {
    floor: f64,
}

impl Strategy for Territory {
    fn name(&self) -> &'static str {
        "territory"
    }
    fn apply(
        &self,
        _: &str,
        alert: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        _: &mut RoutingState,
    ) -> Step {
        let Some(zip) = &alert.zip else {
            return Step::Narrowed(Vec::new(), "territory: the alert has no zip".into());
        };
        let kept: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| agents[i].zips.contains(zip))
            .collect();
        let why = format!("territory {zip}: {} agents", kept.len());
        Step::Narrowed(kept, why)
    }
}

impl Strategy for Skill {
    fn name(&self) -> &'static str {
        "skill"
    }
    fn apply(
        &self,
        _: &str,
        alert: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        _: &mut RoutingState,
    ) -> Step {
        let kept: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| agents[i].skills.contains(&alert.kind))
            .collect();
        let why = format!("skill {}: {} agents", alert.kind, kept.len());
        Step::Narrowed(kept, why)
    }
}

impl Strategy for Relationship {
    fn name(&self) -> &'static str {
        "relationship"
    }
    fn apply(
        &self,
        _: &str,
        alert: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        _: &mut RoutingState,
    ) -> Step {
        let Some(record) = &alert.agent_of_record else {
            return Step::Narrowed(Vec::new(), "relationship: no agent of record".into());
        };
        match candidates.into_iter().find(|&i| &agents[i].id == record) {
            Some(i) => Step::Picked(i, format!("relationship: agent of record {record}")),
            None => Step::Narrowed(
                Vec::new(),
                format!("relationship: agent of record {record} is not available"),
            ),
        }
    }
}

impl Strategy for Workload {
    fn name(&self) -> &'static str {
        "workload"
    }
    fn apply(
        &self,
        _: &str,
        _: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        _: &mut RoutingState,
    ) -> Step {
        let load = |i: usize| agents[i].open as f64 / agents[i].capacity as f64;
        let best = candidates
            .iter()
            .copied()
            .min_by(|&a, &b| {
                load(a)
                    .total_cmp(&load(b))
                    .then(agents[a].id.cmp(&agents[b].id))
            })
            .expect("candidates are not empty");
        let a = &agents[best];
        Step::Picked(
            best,
            format!("least loaded: {} ({}/{} open)", a.id, a.open, a.capacity),
        )
    }
}

impl Strategy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }
    fn apply(
        &self,
        rule: &str,
        _: &AlertFacts,
        agents: &[AgentLoad],
        mut candidates: Vec<usize>,
        state: &mut RoutingState,
    ) -> Step {
        candidates.sort_by(|&a, &b| agents[a].id.cmp(&agents[b].id));
        let last = state.cursors.get(rule);
        let next = last
            .and_then(|last| candidates.iter().copied().find(|&i| agents[i].id > *last))
            .unwrap_or(candidates[0]);
        state
            .cursors
            .insert(rule.to_owned(), agents[next].id.clone());
        Step::Picked(
            next,
            format!("round-robin: next in turn is {}", agents[next].id),
        )
    }
}

impl Strategy for Performance {
    fn name(&self) -> &'static str {
        "performance"
    }
    fn apply(
        &self,
        rule: &str,
        _: &AlertFacts,
        agents: &[AgentLoad],
        candidates: Vec<usize>,
        state: &mut RoutingState,
    ) -> Step {
        // Smooth weighted round-robin: every candidate gains its weight, the highest is
        // chosen and pays back the total; over time each is chosen in proportion.
        let weight = |i: usize| {
            let rate = agents[i].conversion_rate.clamp(0.0, 1.0).max(self.floor);
            ((rate * 1000.0).round() as i64).max(1)
        };
        let current = state.weights.entry(rule.to_owned()).or_default();
        let total: i64 = candidates.iter().map(|&i| weight(i)).sum();
        let mut best = candidates[0];
        let mut best_value = i64::MIN;
        for &i in &candidates {
            let value = current.entry(agents[i].id.clone()).or_insert(0);
            *value += weight(i);
            if *value > best_value || (*value == best_value && agents[i].id < agents[best].id) {
                best_value = *value;
                best = i;
            }
        }
        if let Some(v) = current.get_mut(&agents[best].id) {
            *v -= total;
        }
        Step::Picked(
            best,
            format!(
                "performance: {} (conversion {:.0}%)",
                agents[best].id,
                agents[best].conversion_rate * 100.0
            ),
        )
    }
}

fn strategy(config: &StrategyConfig) -> Box<dyn Strategy> {
    match config {
        StrategyConfig::Territory => Box::new(Territory),
        StrategyConfig::Skill => Box::new(Skill),
        StrategyConfig::Relationship => Box::new(Relationship),
        StrategyConfig::Workload => Box::new(Workload),
        StrategyConfig::RoundRobin => Box::new(RoundRobin),
        StrategyConfig::Performance { floor } => Box::new(Performance { floor: *floor }),
    }
}

/// Checks a rule set: names unique and non-empty, each rule with at least one strategy,
/// floors within 0–1. The error names the rule.
pub fn validate(rules: &[Rule]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if rule.name.trim().is_empty() {
            return Err(format!("rules[{i}].name: must not be empty"));
        }
        if !seen.insert(rule.name.as_str()) {
            return Err(format!("rules[{i}].name: {:?} is used twice", rule.name));
        }
        if rule.strategies.is_empty() {
            return Err(format!(
                "rules[{i}] ({}): give at least one strategy",
                rule.name
            ));
        }
        for s in &rule.strategies {
            if let StrategyConfig::Performance { floor } = s
                && !(0.0..=1.0).contains(floor)
            {
                return Err(format!("rules[{i}] ({}): floor must be 0 to 1", rule.name));
            }
        }
    }
    Ok(())
}

/// Routes one alert: the first rule that ends with an agent decides. None when every
/// rule narrows to nobody (or every agent is at capacity).
pub fn route(
    alert: &AlertFacts,
    agents: &[AgentLoad],
    rules: &[Rule],
    state: &mut RoutingState,
) -> Option<Decision> {
    let with_room: Vec<usize> = (0..agents.len())
        .filter(|&i| agents[i].has_room())
        .collect();
    if with_room.is_empty() {
        return None;
    }
    for rule in rules {
        let mut candidates = with_room.clone();
        let mut steps = Vec::new();
        let mut picked = None;
        for config in &rule.strategies {
            let s = strategy(config);
            match s.apply(&rule.name, alert, agents, candidates, state) {
                Step::Narrowed(kept, why) => {
                    steps.push(why);
                    candidates = kept;
                    if candidates.is_empty() {
                        break;
                    }
                }
                Step::Picked(i, why) => {
                    steps.push(why);
                    picked = Some((i, s.name()));
                    candidates = Vec::new();
                    break;
                }
            }
        }
        if picked.is_none() && !candidates.is_empty() {
            let s = Workload;
            if let Step::Picked(i, why) = s.apply(&rule.name, alert, agents, candidates, state) {
                steps.push(why);
                picked = Some((i, s.name()));
            }
        }
        if let Some((i, strategy)) = picked {
            return Some(Decision {
                agent_id: agents[i].id.clone(),
                rule: rule.name.clone(),
                strategy,
                reason: steps.join("; "),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agent(id: &str, zips: &[&str], skills: &[AlertKind], capacity: u32, rate: f64) -> AgentLoad {
        AgentLoad {
            id: id.into(),
            zips: zips.iter().map(|z| z.to_string()).collect(),
            skills: skills.iter().copied().collect(),
            capacity,
            open: 0,
            conversion_rate: rate,
        }
    }

    fn facts(kind: AlertKind, zip: &str, record: Option<&str>) -> AlertFacts {
        AlertFacts {
            kind,
            zip: Some(zip.into()),
            agent_of_record: record.map(str::to_owned),
        }
    }

    fn rule(name: &str, strategies: Vec<StrategyConfig>) -> Rule {
        Rule {
            name: name.into(),
            strategies,
        }
    }

    use AlertKind::*;
    use StrategyConfig as S;

    #[test]
    fn rules_fall_back_in_order_and_say_why() {
        let agents = vec![
            agent("ann", &["50010"], &[Sell, Buy], 5, 0.3),
            agent("bob", &["50014"], &[Refinance], 5, 0.1),
            agent("cat", &["50010"], &[Sell], 5, 0.2),
        ];
        let rules = vec![
            rule("relationship", vec![S::Relationship]),
            rule("local", vec![S::Territory, S::Skill, S::Workload]),
            rule("anyone", vec![S::RoundRobin]),
        ];
        let mut state = RoutingState::default();
        let d = route(
            &facts(Sell, "50010", Some("cat")),
            &agents,
            &rules,
            &mut state,
        )
        .expect("routed");
        assert_eq!(
            (d.agent_id.as_str(), d.rule.as_str(), d.strategy),
            ("cat", "relationship", "relationship")
        );
        let d = route(&facts(Sell, "50010", None), &agents, &rules, &mut state).expect("routed");
        assert_eq!((d.agent_id.as_str(), d.rule.as_str()), ("ann", "local"));
        assert!(
            d.reason.contains("territory 50010: 2 agents"),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("skill sell: 2 agents"), "{}", d.reason);
        // Nobody local handles investment: the last rule takes it, in turn.
        let d = route(
            &facts(Investment, "50010", None),
            &agents,
            &rules,
            &mut state,
        )
        .expect("routed");
        assert_eq!(
            (d.agent_id.as_str(), d.rule.as_str(), d.strategy),
            ("ann", "anyone", "round_robin")
        );
        let d = route(
            &facts(Investment, "50010", None),
            &agents,
            &rules,
            &mut state,
        )
        .expect("routed");
        assert_eq!(d.agent_id, "bob");
    }

    #[test]
    fn performance_picks_in_proportion_to_conversion() {
        let agents = vec![
            agent("ann", &[], &[], 1000, 0.6),
            agent("bob", &[], &[], 1000, 0.2),
            agent("cat", &[], &[], 1000, 0.2),
        ];
        let rules = vec![rule("best", vec![S::Performance { floor: 0.05 }])];
        let mut state = RoutingState::default();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..100 {
            let d = route(&facts(Sell, "1", None), &agents, &rules, &mut state).expect("routed");
            *counts.entry(d.agent_id).or_default() += 1;
        }
        assert_eq!(counts["ann"], 60);
        assert_eq!(counts["bob"], 20);
        assert_eq!(counts["cat"], 20);
    }

    #[test]
    fn rule_sets_are_checked() {
        assert!(validate(&[rule("a", vec![S::Workload])]).is_ok());
        let twice = validate(&[rule("a", vec![S::Workload]), rule("a", vec![S::Skill])]);
        assert!(twice.expect_err("dup").contains("used twice"));
        assert!(
            validate(&[rule("a", vec![])])
                .expect_err("empty")
                .contains("at least one")
        );
        let parsed: Vec<Rule> = serde_json::from_str(
            r#"[{"name":"local","strategies":[{"strategy":"territory"},{"strategy":"performance"}]}]"#,
        )
        .expect("json");
        assert_eq!(parsed[0].strategies[1], S::Performance { floor: 0.05 });
    }

    fn any_kind() -> impl proptest::strategy::Strategy<Value = AlertKind> {
        prop_oneof![Just(Sell), Just(Buy), Just(Refinance), Just(Investment)]
    }

    proptest! {
        #[test]
        fn capacity_is_never_exceeded(
            capacities in proptest::collection::vec(1u32..4, 1..8),
            kinds in proptest::collection::vec(any_kind(), 1..60),
        ) {
            let mut agents: Vec<AgentLoad> = capacities
                .iter()
                .enumerate()
                .map(|(i, &c)| agent(&format!("a{i}"), &["1"], &[Sell, Buy], c, 0.1 * i as f64))
                .collect();
            let rules = vec![
                rule("skilled", vec![S::Skill, S::Performance { floor: 0.05 }]),
                rule("anyone", vec![S::RoundRobin]),
            ];
            let mut state = RoutingState::default();
            for kind in kinds {
                match route(&facts(kind, "1", None), &agents, &rules, &mut state) {
                    Some(d) => {
                        let a = agents.iter_mut().find(|a| a.id == d.agent_id).expect("known");
                        a.open += 1;
                        prop_assert!(a.open <= a.capacity);
                    }
                    None => prop_assert!(agents.iter().all(|a| a.open == a.capacity)),
                }
            }
        }

        #[test]
        fn round_robin_is_fair(n in 1usize..12, rounds in 1u32..6) {
            let agents: Vec<AgentLoad> = (0..n)
                .map(|i| agent(&format!("a{i:02}"), &[], &[], 1000, 0.0))
                .collect();
            let rules = vec![rule("turns", vec![S::RoundRobin])];
            let mut state = RoutingState::default();
            let mut counts: BTreeMap<String, u32> = BTreeMap::new();
            for _ in 0..(n as u32 * rounds) {
                let d = route(&facts(Sell, "1", None), &agents, &rules, &mut state).expect("routed");
                *counts.entry(d.agent_id).or_default() += 1;
            }
            prop_assert_eq!(counts.len(), n);
            prop_assert!(counts.values().all(|&c| c == rounds));
        }

        #[test]
        fn territory_is_respected(
            territories in proptest::collection::vec(proptest::collection::btree_set(0u8..6, 0..3), 1..8),
            zips in proptest::collection::vec(0u8..8, 1..40),
        ) {
            let agents: Vec<AgentLoad> = territories
                .iter()
                .enumerate()
                .map(|(i, t)| AgentLoad {
                    id: format!("a{i}"),
                    zips: t.iter().map(|z| format!("5001{z}")).collect(),
                    skills: BTreeSet::new(),
                    capacity: 1000,
                    open: 0,
                    conversion_rate: 0.2,
                })
                .collect();
            let rules = vec![rule("local", vec![S::Territory, S::RoundRobin])];
            let mut state = RoutingState::default();
            for z in zips {
                let zip = format!("5001{z}");
                let covered = agents.iter().any(|a| a.zips.contains(&zip));
                match route(&facts(Sell, &zip, None), &agents, &rules, &mut state) {
                    Some(d) => {
                        let a = agents.iter().find(|a| a.id == d.agent_id).expect("known");
                        prop_assert!(a.zips.contains(&zip));
                    }
                    None => prop_assert!(!covered),
                }
            }
        }
    }
}
