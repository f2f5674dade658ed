//! Between the lake and the store: the alerts the streaming job raised go in (`roi alerts
//! ingest`), what agents made of them comes back as training labels (`roi alerts
//! outcomes`), and, for the demo, the world's organizations and agents become
//! organizations and users of the store, with routing profiles and rules, so that `roi
//! serve` afterwards shows routed alerts.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use roi_schemas::table::StrEnum;
use roi_serving::alerts::AlertKind;
use roi_serving::role::Role;
use roi_serving::routing::{Rule, StrategyConfig};
use roi_serving::store::{AgentProfile, NewAlert, NewUser, Store};

/// The alerts the streaming job left in the lake, in the store's form, with each home's
/// zip code (territory routing) and each homeowner's agent of record (relationship
/// routing) when the lake has them.
pub fn lake_alerts(lake: &Path) -> Result<Vec<NewAlert>> {
    let dir = lake.join("alerts").join("alerts");
    if !dir.is_dir() {
        anyhow::bail!(
            "no alerts at {}: run `roi stream` (or `roi demo`) first",
            dir.display()
        );
    }
    let rows: Vec<roi_schemas::alert::Alert> = roi_pipeline::lake::read_table(&dir)
        .with_context(|| format!("reading the alerts at {}", dir.display()))?;
    let master = lake.join("curated").join("property_master");
    let zips: HashMap<i64, String> = if master.is_dir() {
        roi_pipeline::lake::read_table::<roi_schemas::curated::PropertyMaster>(&master)
            .with_context(|| format!("reading {}", master.display()))?
            .into_iter()
            .filter_map(|p| Some((p.property_id.0, p.zip?)))
            .collect()
    } else {
        HashMap::new()
    };
    let contacts = lake.join("raw").join("contacts");
    let of_record: HashMap<i64, i64> = if contacts.is_dir() {
        roi_pipeline::lake::read_table::<roi_schemas::entity::Contact>(&contacts)
            .with_context(|| format!("reading {}", contacts.display()))?
            .into_iter()
            .filter_map(|c| Some((c.contact_id.0, c.agent_id?.0)))
            .collect()
    } else {
        HashMap::new()
    };
    rows.iter()
        .map(|a| new_alert(a, &zips, &of_record))
        .collect()
}

/// How many outcomes were written, by state.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    /// Every alert written.
    pub total: u64,
    /// Converted.
    pub converted: u64,
    /// Dismissed or expired.
    pub lost: u64,
    /// Still open (new, assigned, contacted).
    pub open: u64,
}

/// Writes what became of the store's alerts to the lake table `alerts.outcomes`
/// (replacing the previous copy), month-partitioned by when each was raised.
pub fn write_outcomes(
    lake: &Path,
    rows: &[roi_serving::store::AlertOutcomeRow],
) -> Result<OutcomeCounts> {
    use roi_schemas::alert::{AlertOutcome, AlertStatus as LakeStatus, IntentKind};
    use roi_schemas::ids::{ContactId, OrgId, PropertyId};
    use roi_schemas::table::Table;
    use roi_serving::alerts::AlertStatus;
    let time = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .ok_or_else(|| anyhow::anyhow!("time {t} is out of range"))
    };
    let mut counts = OutcomeCounts::default();
    let mut by_month: std::collections::BTreeMap<String, Vec<AlertOutcome>> = Default::default();
    for r in rows {
        let raised_at = time(r.raised_at)?;
        let closed = matches!(
            r.status,
            AlertStatus::Converted | AlertStatus::Dismissed | AlertStatus::Expired
        );
        counts.total += 1;
        match r.status {
            AlertStatus::Converted => counts.converted += 1,
            _ if closed => counts.lost += 1,
            _ => counts.open += 1,
        }
        let outcome = AlertOutcome {
            alert_id: r.alert_id.clone(),
            org_id: OrgId(r.lake_org_id),
            contact_id: ContactId(r.contact_id),
            property_id: r.property_id.map(PropertyId),
            kind: IntentKind::parse(r.kind.as_str())
                .with_context(|| format!("alert {}", r.alert_id))?,
            score: r.score,
            model_version: r.model_version.clone(),
            raised_at,
            status: LakeStatus::parse(r.status.as_str())
                .with_context(|| format!("alert {}", r.alert_id))?,
            converted: r.status == AlertStatus::Converted,
            closed,
            outcome_value: r.outcome_value,
            assigned_at: r.assigned_at.map(time).transpose()?,
            contacted_at: r.contacted_at.map(time).transpose()?,
            closed_at: r.closed_at.map(time).transpose()?,
        };
        by_month
            .entry(raised_at.format("month=%Y-%m").to_string())
            .or_default()
            .push(outcome);
    }
    let mut table = roi_pipeline::lake::PartitionedTable::create(
        lake,
        "alerts",
        "outcomes",
        AlertOutcome::schema(),
    )?;
    for (month, outcomes) in &by_month {
        table.write(month, &AlertOutcome::to_batch(outcomes)?)?;
    }
    table.finish(serde_json::json!({
        "converted": counts.converted,
        "lost": counts.lost,
        "open": counts.open,
    }))?;
    Ok(counts)
}

fn kind_of(kind: &roi_schemas::alert::IntentKind) -> Result<AlertKind> {
    kind.as_str()
        .parse()
        .map_err(|e: String| anyhow::anyhow!("kind {e}"))
}

/// The store's form of an alert the streaming job raised.
fn new_alert(
    a: &roi_schemas::alert::Alert,
    zips: &HashMap<i64, String>,
    of_record: &HashMap<i64, i64>,
) -> Result<NewAlert> {
    Ok(NewAlert {
        id: a.alert_id.clone(),
        lake_org_id: a.org_id.0,
        contact_id: a.contact_id.0,
        property_id: a.property_id.map(|p| p.0),
        kind: kind_of(&a.kind).with_context(|| format!("alert {}", a.alert_id))?,
        score: a.score,
        confidence: a.confidence,
        reasons: a.reasons.clone(),
        model_version: a.model_version.clone(),
        raised_at: a.created_at.timestamp(),
        zip: a.property_id.and_then(|p| zips.get(&p.0).cloned()),
        agent_of_record: of_record.get(&a.contact_id.0).copied(),
    })
}

/// The routing rules a demo organization starts with: the homeowner's agent of record,
/// else a local specialist with room, else a specialist weighted by conversion, else
/// anyone in turn.
pub fn default_rules() -> Vec<Rule> {
    use StrategyConfig::*;
    let rule = |name: &str, strategies: Vec<StrategyConfig>| Rule {
        name: name.to_owned(),
        strategies,
    };
    vec![
        rule("agent of record", vec![Relationship]),
        rule("local specialist", vec![Territory, Skill, Workload]),
        rule("specialist", vec![Skill, Performance { floor: 0.05 }]),
        rule("anyone", vec![RoundRobin]),
    ]
}

/// Seconds a demo agent has to accept an alert before it is routed to someone else.
pub const DEMO_ACCEPT_WITHIN_SECS: i64 = 24 * 3600;

/// One routing decision, for the demo's printout.
pub struct RoutedLine {
    /// The alert.
    pub alert_id: String,
    /// Its kind and score.
    pub kind: AlertKind,
    /// Its score.
    pub score: f64,
    /// The agent's name.
    pub agent: String,
    /// The rule and strategy, and why.
    pub why: String,
}

/// What seeding one organization did.
pub struct SeededOrg {
    /// Its slug (sign in with it).
    pub slug: String,
    /// Whether it was created now (else it was there from an earlier run).
    pub created: bool,
    /// Agents with routing profiles.
    pub agents: usize,
    /// Alerts routed now, in order.
    pub routed: Vec<RoutedLine>,
    /// New alerts left unrouted (no agent with room matched).
    pub waiting: usize,
}

/// What seeding did, and where the sign-in details are.
pub struct Seeded {
    /// Per organization.
    pub orgs: Vec<SeededOrg>,
    /// What the alert ingest did.
    pub ingest: roi_serving::store::IngestReport,
    /// The file with the demo users' e-mails and passwords (every run that made users
    /// appends its own).
    pub credentials: Option<std::path::PathBuf>,
}

fn slug_of(name: &str, lake_id: i64) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(32).collect();
    format!("{}-{lake_id}", slug.trim_end_matches('-'))
}

/// Seeds the store from the lake's world (organizations, territories, agents) and its
/// alerts, and routes the alerts. Organizations already linked from an earlier run are
/// reused; their rules are left as they are.
pub async fn seed_demo(store: &Store, lake: &Path, data_dir: &Path) -> Result<Seeded> {
    let raw = lake.join("raw");
    let read = |table: &str| raw.join(table);
    let organizations: Vec<roi_schemas::entity::Organization> =
        roi_pipeline::lake::read_table(&read("organizations")).context("reading organizations")?;
    let territories: Vec<roi_schemas::entity::Territory> =
        roi_pipeline::lake::read_table(&read("territories")).context("reading territories")?;
    let agents: Vec<roi_schemas::entity::Agent> =
        roi_pipeline::lake::read_table(&read("agents")).context("reading agents")?;
    let zips_of: HashMap<i64, Vec<String>> = territories
        .into_iter()
        .map(|t| (t.territory_id.0, t.zips))
        .collect();
    let now = chrono::Utc::now().timestamp();
    let password = roi_serving::auth::secret::new_secret("demo");
    let hash = roi_serving::auth::password::Passwords::new()
        .hash(&password)
        .map_err(|p| anyhow::anyhow!("{}", p.detail()))?;
    let mut credentials = String::new();
    let links = store.lake_links().await?;
    let mut seeded = Vec::new();
    for org in &organizations {
        let lake_id = org.org_id.0;
        let (slug, created) = match links.get(&lake_id) {
            Some(id) => {
                let slug = store
                    .organizations()
                    .await?
                    .into_iter()
                    .find(|o| &o.id == id)
                    .map(|o| o.slug)
                    .unwrap_or_default();
                (slug, false)
            }
            None => {
                let slug = slug_of(&org.name, lake_id);
                let owner = NewUser {
                    email: format!("owner@{slug}.example"),
                    name: format!("{} owner", org.name),
                    role: Role::Owner,
                    password_hash: hash.clone(),
                };
                let (made, user) = store
                    .create_organization(&slug, &org.name, owner, now)
                    .await
                    .with_context(|| format!("creating organization {slug}"))?;
                store.link_lake_org(lake_id, &made.id, now).await?;
                credentials.push_str(&format!("{slug}\t{}\towner\n", user.email));
                (slug, true)
            }
        };
        let scope = store
            .organization_by_slug(&slug)
            .await?
            .with_context(|| format!("organization {slug} vanished"))?;
        let tenant = store.tenant_of(&scope);
        let mut agent_count = 0;
        for agent in agents.iter().filter(|a| a.org_id.0 == lake_id) {
            let email = agent.email.to_lowercase();
            let user = match tenant.user_by_email(&email).await? {
                Some(u) => u,
                None => {
                    let u = tenant
                        .add_user(
                            NewUser {
                                email: email.clone(),
                                name: agent.name.clone(),
                                role: Role::Agent,
                                password_hash: hash.clone(),
                            },
                            now,
                        )
                        .await?;
                    credentials.push_str(&format!("{slug}\t{email}\tagent\n"));
                    u
                }
            };
            let profile = AgentProfile {
                user_id: user.id.clone(),
                zips: agent
                    .territory_id
                    .and_then(|t| zips_of.get(&t.0))
                    .map(|z| z.iter().cloned().collect())
                    .unwrap_or_default(),
                skills: agent.skills.iter().map(kind_of).collect::<Result<_>>()?,
                capacity: agent.capacity.clamp(1, 10_000) as u32,
                active: true,
            };
            tenant.set_agent_profile(&profile, now).await?;
            tenant
                .link_lake_agent(agent.agent_id.0, &user.id, now)
                .await?;
            agent_count += 1;
        }
        if tenant.routing().await?.rules.is_empty() {
            tenant
                .set_routing_rules(&default_rules(), Some(DEMO_ACCEPT_WITHIN_SECS), now)
                .await?;
        }
        seeded.push(SeededOrg {
            slug,
            created,
            agents: agent_count,
            routed: Vec::new(),
            waiting: 0,
        });
    }

    let alerts = lake_alerts(lake)?;
    let report = store.ingest_alerts(&alerts, now).await?;
    let by_id: HashMap<&str, &NewAlert> = alerts.iter().map(|a| (a.id.as_str(), a)).collect();
    for s in &mut seeded {
        let scope = store
            .organization_by_slug(&s.slug)
            .await?
            .with_context(|| format!("organization {} vanished", s.slug))?;
        let tenant = store.tenant_of(&scope);
        let names: HashMap<String, String> = tenant
            .users()
            .await?
            .into_iter()
            .map(|u| (u.id, u.name))
            .collect();
        loop {
            let Some(run) = roi_serving::autoroute::route_new(&tenant, None, now).await? else {
                break;
            };
            s.waiting = run.unplaced.len();
            if run.placed.is_empty() {
                break;
            }
            for p in run.placed {
                let Some(a) = by_id.get(p.alert_id.as_str()) else {
                    continue;
                };
                s.routed.push(RoutedLine {
                    kind: a.kind,
                    score: a.score,
                    agent: names
                        .get(&p.decision.agent_id)
                        .cloned()
                        .unwrap_or(p.decision.agent_id),
                    why: format!(
                        "rule {:?} ({}): {}",
                        p.decision.rule, p.decision.strategy, p.decision.reason
                    ),
                    alert_id: p.alert_id,
                });
            }
        }
    }
    let path = data_dir.join("demo-credentials.txt");
    if !credentials.is_empty() {
        let text = format!(
            "# Demo users made {}: sign in with POST /auth/login and\n\
             # {{\"organization\": SLUG, \"email\": EMAIL, \"password\": \"{password}\"}}\n\
             # slug\temail\trole\n{credentials}",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        append_private(&path, &text)?;
    }
    Ok(Seeded {
        orgs: seeded,
        ingest: report,
        credentials: path.is_file().then_some(path),
    })
}

/// Appends to a file only its owner can read (it holds passwords).
fn append_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
