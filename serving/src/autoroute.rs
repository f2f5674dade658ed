//! Routing runs: giving an organization's new alerts to agents with its rules, and
//! moving on alerts whose agent did not accept them in time. `POST /alerts/route` runs
//! them on demand; the server's background router ([`run`]) runs them as alerts arrive
//! and on a timer.
//!
//! Runs in one process take turns (one lock), so that two runs cannot both read and
//! then overwrite an organization's round-robin cursors. Replicas may still run at the
//! same moment: an alert moves only from the state its run saw, so it is never given
//! twice; at worst a cursor advance is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};

use crate::alerts::AlertStatus;
use crate::routing::{AgentLoad, AlertFacts, Decision, route};
use crate::store::{AlertFilter, AlertMove, AlertSort, Store, StoredAlert, Tenant};
use crate::{StoreError, unix_now};

/// Most alerts placed in one run.
pub const ROUTE_BATCH: i64 = 500;

static TURN: Mutex<()> = Mutex::const_new(());

/// One alert given to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The alert.
    pub alert_id: String,
    /// Who got it, by which rule and strategy, and why.
    pub decision: Decision,
    /// The agent it was taken from (re-routing), if any.
    pub taken_from: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunReport {
    /// Alerts given to agents, in the order placed.
    pub placed: Vec<Placed>,
    /// Alerts no rule could place (no agent matched, or all were full).
    pub unplaced: Vec<String>,
}

/// The agents routing may choose now, with their load.
async fn agent_loads(tenant: &Tenant<'_>) -> Result<Vec<AgentLoad>, StoreError> {
    Ok(tenant
        .agent_standings()
        .await?
        .into_iter()
        .filter(|s| s.profile.active)
        .map(|s| s.load())
        .collect())
}

fn facts(alert: &StoredAlert, of_record: &std::collections::BTreeMap<i64, String>) -> AlertFacts {
    AlertFacts {
        kind: alert.kind,
        zip: alert.zip.clone(),
        agent_of_record: alert
            .agent_of_record
            .and_then(|a| of_record.get(&a).cloned()),
    }
}

/// Routes the organization's new alerts, oldest first (up to [`ROUTE_BATCH`]). None when
/// it has no rules. `actor` is the user who asked (none: the server's router).
pub async fn route_new(
    tenant: &Tenant<'_>,
    actor: Option<&str>,
    now: i64,
) -> Result<Option<RunReport>, StoreError> {
    let _turn = TURN.lock().await;
    let mut config = tenant.routing().await?;
    if config.rules.is_empty() {
        return Ok(None);
    }
    let oldest_first = tenant
        .alerts(&AlertFilter {
            status: Some(AlertStatus::New),
            sort: AlertSort::Oldest,
            limit: ROUTE_BATCH,
            ..AlertFilter::default()
        })
        .await?;
    let mut report = RunReport::default();
    if oldest_first.is_empty() {
        return Ok(Some(report));
    }
    let mut agents = agent_loads(tenant).await?;
    let index: std::collections::HashMap<String, usize> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();
    let of_record = tenant.lake_agents().await?;
    // Decide every alert first (each decision's load counts for the next), then make
    // all the assignments in one transaction.
    let mut planned = Vec::new();
    for alert in oldest_first {
        let Some(decision) = route(
            &facts(&alert, &of_record),
            &agents,
            &config.rules,
            &mut config.state,
        ) else {
            report.unplaced.push(alert.id);
            continue;
        };
        if let Some(&i) = index.get(&decision.agent_id) {
            agents[i].open += 1;
        }
        planned.push(Placed {
            alert_id: alert.id,
            decision,
            taken_from: None,
        });
    }
    let moves: Vec<(&str, AlertMove<'_>)> = planned
        .iter()
        .map(|p| {
            (
                p.alert_id.as_str(),
                AlertMove {
                    from: AlertStatus::New,
                    to: AlertStatus::Assigned,
                    assignee_id: Some(&p.decision.agent_id),
                    outcome_value: None,
                    actor_id: actor,
                    detail: format!(
                        "routed by rule {} ({}): {}",
                        p.decision.rule, p.decision.strategy, p.decision.reason
                    ),
                },
            )
        })
        .collect();
    let moved = tenant.move_alerts(&moves, now).await?;
    drop(moves);
    report.placed = planned
        .into_iter()
        .zip(moved)
        .filter_map(|(p, moved)| moved.then_some(p))
        .collect();
    tenant.save_routing_state(&config.state, now).await?;
    Ok(Some(report))
}

/// Routes to someone else the alerts whose agent has not accepted them within the
/// organization's `accept_within_secs` (nothing when that is unset). An alert no other
/// agent can take stays where it is.
pub async fn reroute_unaccepted(tenant: &Tenant<'_>, now: i64) -> Result<RunReport, StoreError> {
    let _turn = TURN.lock().await;
    let mut config = tenant.routing().await?;
    let mut report = RunReport::default();
    let Some(within) = config.accept_within_secs else {
        return Ok(report);
    };
    if config.rules.is_empty() {
        return Ok(report);
    }
    let stale = tenant.unaccepted(now - within, ROUTE_BATCH).await?;
    if stale.is_empty() {
        return Ok(report);
    }
    let mut agents = agent_loads(tenant).await?;
    let of_record = tenant.lake_agents().await?;
    for alert in stale {
        let Some(holder) = alert.assignee_id.clone() else {
            continue;
        };
        // Everyone but the agent who let it wait.
        let others: Vec<AgentLoad> = agents.iter().filter(|a| a.id != holder).cloned().collect();
        let Some(decision) = route(
            &facts(&alert, &of_record),
            &others,
            &config.rules,
            &mut config.state,
        ) else {
            report.unplaced.push(alert.id);
            continue;
        };
        let moved = tenant
            .move_alert(
                &alert.id,
                &AlertMove {
                    from: AlertStatus::Assigned,
                    to: AlertStatus::Assigned,
                    assignee_id: Some(&decision.agent_id),
                    outcome_value: None,
                    actor_id: None,
                    detail: format!(
                        "not accepted within {within} s; re-routed by rule {} ({}): {}",
                        decision.rule, decision.strategy, decision.reason
                    ),
                },
                now,
            )
            .await?;
        if !moved {
            continue;
        }
        for a in &mut agents {
            if a.id == decision.agent_id {
                a.open += 1;
            } else if a.id == holder {
                a.open = a.open.saturating_sub(1);
            }
        }
        report.placed.push(Placed {
            alert_id: alert.id,
            decision,
            taken_from: Some(holder),
        });
    }
    tenant.save_routing_state(&config.state, now).await?;
    Ok(report)
}

/// The server's router: routes every organization's new alerts and re-routes unaccepted
/// ones, when `wake` is notified (new alerts arrived) and every `interval`. Runs until
/// the task is dropped.
pub async fn run(store: Store, wake: Arc<Notify>, interval: Duration) {
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = route_all(&store).await {
            tracing::error!(error = %e, "background routing");
        }
    }
}

async fn route_all(store: &Store) -> Result<(), StoreError> {
    for org in store.routed_organizations().await? {
        let tenant = Tenant::new(store, org);
        let now = unix_now();
        if let Some(r) = route_new(&tenant, None, now).await?
            && !r.placed.is_empty()
        {
            tracing::info!(
                org = tenant.org_id(),
                routed = r.placed.len(),
                unrouted = r.unplaced.len(),
                "routed new alerts"
            );
        }
        let r = reroute_unaccepted(&tenant, now).await?;
        if !r.placed.is_empty() {
            tracing::info!(
                org = tenant.org_id(),
                rerouted = r.placed.len(),
                "re-routed unaccepted alerts"
            );
        }
    }
    Ok(())
}
