//! What routing reads and keeps: agent profiles with their current load and record,
//! each organization's rules, and the routing memory between decisions.

use std::collections::{BTreeMap, BTreeSet};

use super::{ALERT_COLUMNS, Backend, Result, Store, StoreError, Tenant, failed, get};
use crate::alerts::{AlertKind, AlertStatus};
use crate::routing::{AgentLoad, RoutingState, Rule};
use crate::store::StoredAlert;

/// A profile as the standings read sends it: user, zips, skills, capacity, active.
type ProfileRow = (String, BTreeSet<String>, BTreeSet<AlertKind>, i64, i64);

/// An agent's routing profile.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentProfile {
    /// The user.
    pub user_id: String,
    /// Zip codes of their territory.
    pub zips: BTreeSet<String>,
    /// Alert kinds they handle.
    pub skills: BTreeSet<AlertKind>,
    /// Most open alerts at a time.
    pub capacity: u32,
    /// Whether routing may choose them.
    pub active: bool,
}

/// A profile with the agent's alerts now.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentStanding {
    /// The profile.
    pub profile: AgentProfile,
    /// Alerts assigned or contacted.
    pub open: u32,
    /// Alerts converted.
    pub converted: u32,
    /// Alerts dismissed or expired.
    pub lost: u32,
}

impl AgentStanding {
    /// Converted over closed; 0 with no closed alerts.
    pub fn conversion_rate(&self) -> f64 {
        let closed = self.converted + self.lost;
        if closed == 0 {
            0.0
        } else {
            f64::from(self.converted) / f64::from(closed)
        }
    }

    /// The agent as the routing engine sees them.
    pub fn load(&self) -> AgentLoad {
        AgentLoad {
            id: self.profile.user_id.clone(),
            zips: self.profile.zips.clone(),
            skills: self.profile.skills.clone(),
            capacity: self.profile.capacity,
            open: self.open,
            conversion_rate: self.conversion_rate(),
        }
    }
}

/// An organization's routing configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingConfig {
    /// The rules, tried in order.
    pub rules: Vec<Rule>,
    /// The memory between decisions.
    pub state: RoutingState,
    /// Seconds an assigned agent has to accept before the alert is routed to someone
    /// else; none: never re-route.
    pub accept_within_secs: Option<i64>,
}

fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl Tenant<'_> {
    /// Creates or replaces an agent's profile.
    pub async fn set_agent_profile(&self, p: &AgentProfile, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO agent_profiles (org_id, user_id, zips, skills, capacity, active, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (org_id, user_id) DO UPDATE SET zips = excluded.zips,
                 skills = excluded.skills, capacity = excluded.capacity,
                 active = excluded.active, updated_at = excluded.updated_at",
        )
        .bind(&self.org)
        .bind(&p.user_id)
        .bind(to_json(&p.zips, "zips")?)
        .bind(to_json(&p.skills, "skills")?)
        .bind(i64::from(p.capacity))
        .bind(i64::from(p.active))
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing an agent profile"))?;
        Ok(())
    }

    /// Every agent profile with the agent's current alerts, by user id.
    ///
    /// Each of the two reads comes back as one JSON row built by the database (a
    /// routing run reads every agent, thousands of rows otherwise handed over one by
    /// one).
    pub async fn agent_standings(&self) -> Result<Vec<AgentStanding>> {
        let (profiles, counts) = match self.store.backend() {
            Backend::Sqlite => (
                "SELECT json_group_array(json_array(user_id, json(zips), json(skills),
                        capacity, active) ORDER BY user_id) AS j
                 FROM agent_profiles WHERE org_id = $1",
                "SELECT json_group_array(json_array(assignee_id, status, n)) AS j
                 FROM (SELECT assignee_id, status, COUNT(*) AS n FROM alerts
                       WHERE org_id = $1 AND assignee_id IS NOT NULL
                       GROUP BY assignee_id, status) AS c",
            ),
            Backend::Postgres => (
                "SELECT COALESCE(json_agg(json_build_array(user_id, zips::json, skills::json,
                        capacity, active) ORDER BY user_id), '[]'::json)::text AS j
                 FROM agent_profiles WHERE org_id = $1",
                "SELECT COALESCE(json_agg(json_build_array(assignee_id, status, n)),
                        '[]'::json)::text AS j
                 FROM (SELECT assignee_id, status, COUNT(*) AS n FROM alerts
                       WHERE org_id = $1 AND assignee_id IS NOT NULL
                       GROUP BY assignee_id, status) AS c",
            ),
        };
        let read = |sql: &'static str, what: &'static str| async move {
            let row = sqlx::query(sql)
                .bind(&self.org)
                .fetch_one(self.store.pool())
                .await
                .map_err(failed(what))?;
            get::<Option<String>>(&row, "j").map(Option::unwrap_or_default)
        };
        let profiles: Vec<ProfileRow> = json(
            &read(profiles, "reading agent profiles").await?,
            "agent profiles",
        )?;
        let counts: Vec<(String, AlertStatus, i64)> = json(
            &read(counts, "counting agents' alerts").await?,
            "agents' alert counts",
        )?;
        let mut by_agent: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
        for (agent, status, n) in counts {
            let n = n as u32;
            let entry = by_agent.entry(agent).or_default();
            match status {
                AlertStatus::Converted => entry.1 += n,
                AlertStatus::Dismissed | AlertStatus::Expired => entry.2 += n,
                AlertStatus::Assigned | AlertStatus::Contacted => entry.0 += n,
                AlertStatus::New => {}
            }
        }
        Ok(profiles
            .into_iter()
            .map(|(user_id, zips, skills, capacity, active)| {
                let (open, converted, lost) = by_agent.get(&user_id).copied().unwrap_or_default();
                AgentStanding {
                    profile: AgentProfile {
                        zips,
                        skills,
                        capacity: capacity as u32,
                        active: active != 0,
                        user_id,
                    },
                    open,
                    converted,
                    lost,
                }
            })
            .collect())
    }

    /// Links the pipeline's agent id to a user (replacing an earlier link of either).
    pub async fn link_lake_agent(&self, lake_agent_id: i64, user_id: &str, now: i64) -> Result<()> {
        let mut tx = self.store.begin().await?;
        sqlx::query(
            "DELETE FROM lake_agents WHERE org_id = $1 AND (lake_agent_id = $2 OR user_id = $3)",
        )
        .bind(&self.org)
        .bind(lake_agent_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(failed("replacing an agent link"))?;
        sqlx::query(
            "INSERT INTO lake_agents (org_id, lake_agent_id, user_id, linked_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&self.org)
        .bind(lake_agent_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(failed("linking an agent to the pipeline"))?;
        tx.commit()
            .await
            .map_err(failed("committing an agent link"))?;
        Ok(())
    }

    /// The pipeline's agent ids and the users they are, by pipeline id.
    pub async fn lake_agents(&self) -> Result<BTreeMap<i64, String>> {
        let rows = sqlx::query("SELECT lake_agent_id, user_id FROM lake_agents WHERE org_id = $1")
            .bind(&self.org)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("reading agent links"))?;
        rows.iter()
            .map(|r| Ok((get(r, "lake_agent_id")?, get(r, "user_id")?)))
            .collect()
    }

    /// The organization's routing configuration (none configured: empty rules).
    pub async fn routing(&self) -> Result<RoutingConfig> {
        let row = sqlx::query(
            "SELECT rules, state, accept_within_secs FROM routing_configs WHERE org_id = $1",
        )
        .bind(&self.org)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading the routing rules"))?;
        match row {
            Some(r) => {
                let rules: String = get(&r, "rules")?;
                let state: String = get(&r, "state")?;
                Ok(RoutingConfig {
                    rules: json(&rules, "routing rules")?,
                    state: json(&state, "routing state")?,
                    accept_within_secs: get(&r, "accept_within_secs")?,
                })
            }
            None => Ok(RoutingConfig::default()),
        }
    }

    /// Replaces the rules and the acceptance time (and starts the routing memory
    /// afresh).
    pub async fn set_routing_rules(
        &self,
        rules: &[Rule],
        accept_within_secs: Option<i64>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO routing_configs (org_id, rules, state, updated_at, accept_within_secs)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id) DO UPDATE SET rules = excluded.rules, state = excluded.state,
                 updated_at = excluded.updated_at,
                 accept_within_secs = excluded.accept_within_secs",
        )
        .bind(&self.org)
        .bind(to_json(&rules, "routing rules")?)
        .bind(to_json(&RoutingState::default(), "routing state")?)
        .bind(now)
        .bind(accept_within_secs)
        .execute(self.store.pool())
        .await
        .map_err(failed("storing the routing rules"))?;
        Ok(())
    }

    /// Assigned alerts their agent has not accepted, assigned at or before `assigned_by`,
    /// oldest first.
    pub async fn unaccepted(&self, assigned_by: i64, limit: i64) -> Result<Vec<StoredAlert>> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE org_id = $1 AND status = 'assigned' AND accepted_at IS NULL
             AND updated_at <= $2 ORDER BY updated_at, id LIMIT $3"
        ))
        .bind(&self.org)
        .bind(assigned_by)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("finding unaccepted alerts"))?;
        rows.iter().map(super::alerts::alert_from).collect()
    }

    /// Keeps the routing memory after a round of decisions.
    pub async fn save_routing_state(&self, state: &RoutingState, now: i64) -> Result<()> {
        sqlx::query("UPDATE routing_configs SET state = $1, updated_at = $2 WHERE org_id = $3")
            .bind(to_json(state, "routing state")?)
            .bind(now)
            .bind(&self.org)
            .execute(self.store.pool())
            .await
            .map_err(failed("storing the routing state"))?;
        Ok(())
    }
}

impl Store {
    /// Organizations with routing rules, by id.
    pub async fn routed_organizations(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT org_id, rules FROM routing_configs ORDER BY org_id")
            .fetch_all(self.pool())
            .await
            .map_err(failed("listing routed organizations"))?;
        let mut orgs = Vec::new();
        for r in &rows {
            let rules: String = get(r, "rules")?;
            if json::<Vec<Rule>>(&rules, "routing rules")?.is_empty() {
                continue;
            }
            orgs.push(get(r, "org_id")?);
        }
        Ok(orgs)
    }
}
