//! From the lake to campaign audiences (`roi contacts sync`): each pipeline homeowner
//! becomes a contact of the linked organization, with their home (property master), its
//! valuation and financial position, the zip's latest market figures, the agent of record,
//! their newest features, and each promoted model's score.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use roi_schemas::table::StrEnum;
use roi_serving::store::{ContactAttributes, Store, SyncContact, SyncReport};

/// The lake's homeowners in the store's form, by pipeline organization, and the
/// qualified value names they use with their descriptions.
pub struct LakeAudience {
    /// Contacts by the pipeline's organization id.
    pub by_org: BTreeMap<i64, Vec<SyncContact>>,
    /// `feature.…` and `score.…` names, described.
    pub value_names: Vec<(String, String)>,
    /// Kinds of score present (promoted models).
    pub scored: Vec<String>,
}

fn days(d: chrono::NaiveDate) -> i64 {
    roi_serving::contacts::days_since_epoch(d)
}

/// Reads what campaigns need from the lake. Only `raw/contacts` is required; every other
/// table fills what it can.
pub fn lake_audience(lake: &Path) -> Result<LakeAudience> {
    let table = |zone: &str, name: &str| lake.join(zone).join(name);
    let contacts_dir = table("raw", "contacts");
    if !contacts_dir.is_dir() {
        anyhow::bail!(
            "no contacts at {}: run `roi datasets generate` (or `roi demo`) first",
            contacts_dir.display()
        );
    }
    let contacts: Vec<roi_schemas::entity::Contact> =
        roi_pipeline::lake::read_table(&contacts_dir).context("reading raw.contacts")?;
    let read_if = |dir: std::path::PathBuf| dir.is_dir().then_some(dir);

    let homes: HashMap<i64, roi_schemas::curated::PropertyMaster> =
        match read_if(table("curated", "property_master")) {
            Some(dir) => {
                roi_pipeline::lake::read_table::<roi_schemas::curated::PropertyMaster>(&dir)
                    .context("reading curated.property_master")?
                    .into_iter()
                    .map(|p| (p.property_id.0, p))
                    .collect()
            }
            None => HashMap::new(),
        };
    let mut valuations: HashMap<i64, roi_schemas::curated::PropertyValuation> = HashMap::new();
    if let Some(dir) = read_if(table("curated", "valuations")) {
        for v in roi_pipeline::lake::read_table::<roi_schemas::curated::PropertyValuation>(&dir)
            .context("reading curated.valuations")?
        {
            match valuations.get(&v.property_id.0) {
                Some(have) if have.as_of >= v.as_of => {}
                _ => {
                    valuations.insert(v.property_id.0, v);
                }
            }
        }
    }
    let mut financials: HashMap<i64, roi_schemas::curated::PropertyFinancials> = HashMap::new();
    if let Some(dir) = read_if(table("curated", "financials")) {
        for f in roi_pipeline::lake::read_table::<roi_schemas::curated::PropertyFinancials>(&dir)
            .context("reading curated.financials")?
        {
            match financials.get(&f.property_id.0) {
                Some(have) if have.as_of >= f.as_of => {}
                _ => {
                    financials.insert(f.property_id.0, f);
                }
            }
        }
    }
    let mut markets: HashMap<String, roi_schemas::curated::MarketStat> = HashMap::new();
    if let Some(dir) = read_if(table("curated", "market_stats")) {
        for m in roi_pipeline::lake::read_table::<roi_schemas::curated::MarketStat>(&dir)
            .context("reading curated.market_stats")?
        {
            if m.area_kind != roi_schemas::curated::AreaKind::Zip {
                continue;
            }
            match markets.get(&m.area) {
                Some(have) if have.month >= m.month => {}
                _ => {
                    markets.insert(m.area.clone(), m);
                }
            }
        }
    }
    let agents: HashMap<i64, roi_schemas::entity::Agent> = match read_if(table("raw", "agents")) {
        Some(dir) => roi_pipeline::lake::read_table::<roi_schemas::entity::Agent>(&dir)
            .context("reading raw.agents")?
            .into_iter()
            .map(|a| (a.agent_id.0, a))
            .collect(),
        None => HashMap::new(),
    };
    let snapshots = match read_if(table("features", "contact_features")) {
        Some(dir) => roi_pipeline::lake::latest_snapshots(&dir)
            .context("reading features.contact_features")?,
        None => HashMap::new(),
    };
    let scorer =
        roi_pipeline::scoring::Scorer::load(lake, roi_pipeline::scoring::DEFAULT_COOLDOWN_DAYS)
            .context("loading the promoted alert models")?;
    let ordered: Vec<&roi_features::snapshot::Snapshot> = contacts
        .iter()
        .filter_map(|c| snapshots.get(&c.contact_id.0))
        .collect();
    let owned: Vec<roi_features::snapshot::Snapshot> =
        ordered.iter().map(|s| (*s).clone()).collect();
    let probabilities = scorer.probabilities(&owned).context("scoring contacts")?;
    let mut scores: HashMap<i64, Vec<(String, f64)>> = HashMap::new();
    for (kind, values) in &probabilities {
        for (s, p) in owned.iter().zip(values) {
            scores
                .entry(s.contact_id)
                .or_default()
                .push((format!("score.{}", kind.as_str()), *p));
        }
    }

    let mut value_names: Vec<(String, String)> = roi_features::catalog::FEATURES
        .iter()
        .map(|f| {
            let window = match f.window {
                "point-in-time" | "lifetime" => String::new(),
                w => format!(", {w}"),
            };
            let unit = if f.unit.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.unit)
            };
            (
                format!("feature.{}", f.name),
                format!("{}{window}{unit}", f.description),
            )
        })
        .collect();
    let scored: Vec<String> = probabilities
        .iter()
        .map(|(k, _)| k.as_str().to_owned())
        .collect();
    value_names.extend(scored.iter().map(|k| {
        (
            format!("score.{k}"),
            format!("calibrated probability (0–1) that the homeowner will {k} within 90 days, by the promoted model"),
        )
    }));

    let mut by_org: BTreeMap<i64, Vec<SyncContact>> = BTreeMap::new();
    for c in &contacts {
        let pid = c.property_id.0;
        let home = homes.get(&pid);
        let valuation = valuations.get(&pid);
        let money = financials.get(&pid);
        let market = home
            .and_then(|h| h.zip.as_ref())
            .and_then(|z| markets.get(z));
        let agent = c.agent_id.and_then(|a| agents.get(&a.0));
        let attributes = ContactAttributes {
            address: home.and_then(|h| h.address.clone()).map(|a| title_case(&a)),
            city: home.and_then(|h| h.city.clone()).map(|a| title_case(&a)),
            state: home.and_then(|h| h.state.clone()),
            zip: home.and_then(|h| h.zip.clone()),
            property_type: home
                .and_then(|h| h.property_type)
                .map(|t| t.as_str().to_owned()),
            beds: home.and_then(|h| h.beds).map(f64::from),
            baths: home.and_then(|h| h.baths),
            sqft: home.and_then(|h| h.sqft).map(f64::from),
            year_built: home.and_then(|h| h.year_built).map(f64::from),
            closed_on_day: Some(days(c.closed_on)),
            value: valuation.map(|v| v.value),
            value_low: valuation.map(|v| v.low),
            value_high: valuation.map(|v| v.high),
            valued_on_day: valuation.map(|v| days(v.as_of)),
            value_change_pct: market.and_then(|m| m.yoy_appreciation).map(|y| y * 100.0),
            equity: money.map(|f| f.equity),
            equity_pct: money.map(|f| f.equity_pct * 100.0),
            ltv: money.map(|f| f.ltv * 100.0),
            loan_balance: money.map(|f| f.balance),
            loan_rate_pct: money.and_then(|f| f.loan_rate_pct),
            market_rate_pct: money.and_then(|f| f.market_rate_pct),
            refinance_saving: money.and_then(|f| f.refinance_saving),
            cash_out: money.map(|f| f.cash_out),
            market_month_day: market.map(|m| days(m.month)),
            market_median_price: market.and_then(|m| m.median_price),
            market_median_ppsf: market.and_then(|m| m.median_price_per_sqft),
            market_yoy_pct: market.and_then(|m| m.yoy_appreciation).map(|y| y * 100.0),
            market_sales: market.map(|m| f64::from(m.sales)),
            agent_name: agent.map(|a| a.name.clone()),
            agent_email: agent.map(|a| a.email.to_lowercase()),
        };
        let mut values: Vec<(String, f64)> = Vec::new();
        if let Some(s) = snapshots.get(&c.contact_id.0) {
            for (def, v) in roi_features::catalog::FEATURES.iter().zip(&s.features.0) {
                if let Some(v) = v {
                    values.push((format!("feature.{}", def.name), *v));
                }
            }
        }
        if let Some(s) = scores.remove(&c.contact_id.0) {
            values.extend(s);
        }
        let Ok(email) = roi_serving::contacts::check_email(&c.email) else {
            continue;
        };
        by_org.entry(c.org_id.0).or_default().push(SyncContact {
            lake_contact_id: c.contact_id.0,
            email,
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            opted_in: c.email_opt_in,
            attributes,
            values,
        });
    }
    Ok(LakeAudience {
        by_org,
        value_names,
        scored,
    })
}

/// `123 OAK ST` → `123 Oak St` (the property master upper-cases addresses; mail reads
/// better in title case).
fn title_case(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) if !w.chars().any(|c| c.is_ascii_digit()) => {
                    first.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase()
                }
                _ => w.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One organization's sync.
pub struct SyncedOrg {
    /// Its slug.
    pub slug: String,
    /// What the sync did.
    pub report: SyncReport,
}

/// Syncs every linked organization (or only `only`, by slug) from `audience`.
pub async fn sync(
    store: &Store,
    audience: &LakeAudience,
    only: Option<&str>,
    now: i64,
) -> Result<Vec<SyncedOrg>> {
    let links = store.lake_links().await?;
    let orgs = store.organizations().await?;
    let mut out = Vec::new();
    for (lake_id, org_id) in &links {
        let Some(org) = orgs.iter().find(|o| &o.id == org_id) else {
            continue;
        };
        if only.is_some_and(|s| s != org.slug) {
            continue;
        }
        let Some(contacts) = audience.by_org.get(lake_id) else {
            continue;
        };
        let report = store
            .tenant_of(org)
            .sync_contacts(contacts, &audience.value_names, now)
            .await
            .with_context(|| format!("syncing the contacts of {}", org.slug))?;
        out.push(SyncedOrg {
            slug: org.slug.clone(),
            report,
        });
    }
    if let Some(slug) = only
        && out.is_empty()
    {
        anyhow::bail!(
            "organization {slug:?} is not linked to a pipeline organization with contacts (roi orgs list; roi orgs link)"
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_cases_addresses() {
        assert_eq!(title_case("123 OAK ST UNIT 5B"), "123 Oak St Unit 5B");
        assert_eq!(title_case("AMES"), "Ames");
    }
}
