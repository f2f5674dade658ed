//! Organizations, territories, agents and homeowners.

use rand::Rng;
use roi_schemas::{
    Agent, AgentId, Contact, ContactId, IntentKind, OrgId, OrgKind, Organization, PropertyId,
    StrEnum, Territory, TerritoryId,
};

use crate::geography::NeighbourhoodSim;
use crate::random::{WorldRng, chance, normal};

const FIRST: [&str; 24] = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Maria",
    "Wei",
    "Aisha",
    "Carlos",
    "Priya",
    "Hiro",
    "Fatima",
    "Noah",
    "Olivia",
    "Liam",
    "Emma",
    "Sofia",
];
const LAST: [&str; 24] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Nguyen",
    "Kim",
    "Patel",
    "Okafor",
    "Schmidt",
];
const ORG_NAMES: [&str; 10] = [
    "Prairie",
    "Keystone",
    "Heritage",
    "Summit",
    "Landmark",
    "Cornerstone",
    "Pioneer",
    "Liberty",
    "Guardian",
    "Frontier",
];

/// Organizations, territories and agents, with the lookups homeowners need.
#[derive(Debug, Clone)]
pub struct People {
    /// Tenants.
    pub orgs: Vec<Organization>,
    /// Metros (indices) each organization operates in.
    pub org_metros: Vec<Vec<usize>>,
    /// Territories.
    pub territories: Vec<Territory>,
    /// Agents.
    pub agents: Vec<Agent>,
}

impl People {
    /// Builds tenants, one territory per group of four zips per (organization, metro),
    /// and agents in proportion to the organization's homeowners.
    pub fn build(
        rng: &mut WorldRng,
        orgs: usize,
        metros: usize,
        nbs: &[NeighbourhoodSim],
        contacts_per_org: &[usize],
        contacts_per_agent: usize,
    ) -> People {
        let mut out = People {
            orgs: Vec::new(),
            org_metros: Vec::new(),
            territories: Vec::new(),
            agents: Vec::new(),
        };
        for j in 0..orgs {
            let kind = if j % 2 == 0 {
                OrgKind::TitleCompany
            } else {
                OrgKind::Brokerage
            };
            let suffix = match kind {
                OrgKind::TitleCompany => "Title",
                OrgKind::Brokerage => "Realty",
            };
            let name = format!(
                "{} {suffix}{}",
                ORG_NAMES[j % ORG_NAMES.len()],
                if j >= ORG_NAMES.len() {
                    format!(" {}", j / ORG_NAMES.len() + 1)
                } else {
                    String::new()
                }
            );
            out.orgs.push(Organization {
                org_id: OrgId(j as i64 + 1),
                name,
                kind,
                mfa_required: chance(rng, 0.3),
            });
        }
        out.org_metros = org_metros(orgs, metros);
        for (j, org) in out.orgs.iter().enumerate() {
            let mut org_territories = Vec::new();
            for &metro in &out.org_metros[j] {
                let zips: Vec<&NeighbourhoodSim> =
                    nbs.iter().filter(|n| n.metro == metro).collect();
                for (k, chunk) in zips.chunks(4).enumerate() {
                    let id = TerritoryId(out.territories.len() as i64 + 1);
                    out.territories.push(Territory {
                        territory_id: id,
                        org_id: org.org_id,
                        name: format!(
                            "{} {}",
                            chunk[0].row.name.split(' ').next_back().unwrap_or("Area"),
                            k + 1
                        ),
                        zips: chunk.iter().map(|n| n.row.zip.clone()).collect(),
                    });
                    org_territories.push(id);
                }
            }
            let n_agents = (contacts_per_org[j] / contacts_per_agent)
                .max(org_territories.len())
                .max(2);
            for a in 0..n_agents {
                let id = AgentId(out.agents.len() as i64 + 1);
                let first = FIRST[rng.random_range(0..FIRST.len())];
                let last = LAST[rng.random_range(0..LAST.len())];
                let mut skills: Vec<IntentKind> = IntentKind::ALL
                    .iter()
                    .copied()
                    .filter(|_| chance(rng, 0.6))
                    .collect();
                if skills.is_empty() {
                    skills.push(IntentKind::ALL[rng.random_range(0..IntentKind::ALL.len())]);
                }
                let territory_id =
                    (!chance(rng, 0.1)).then(|| org_territories[a % org_territories.len()]);
                out.agents.push(Agent {
                    agent_id: id,
                    org_id: org.org_id,
                    name: format!("{first} {last}"),
                    email: format!(
                        "{}.{}{}@{}.example.com",
                        first.to_lowercase(),
                        last.to_lowercase(),
                        id.0,
                        org_slug(&org.name)
                    ),
                    territory_id,
                    skills,
                    capacity: rng.random_range(20..80),
                    conversion_rate: (normal(rng, 0.12, 0.05)).clamp(0.01, 0.4),
                    closed_deals: rng.random_range(0..120),
                });
            }
        }
        out
    }

    /// An agent of record for a homeowner of org `org` living in `zip`: preferably one whose
    /// territory covers the zip.
    pub fn agent_for(&self, rng: &mut WorldRng, org: OrgId, zip: &str) -> Option<AgentId> {
        let local: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|a| a.org_id == org)
            .filter(|a| {
                a.territory_id.is_some_and(|t| {
                    self.territories[t.0 as usize - 1]
                        .zips
                        .iter()
                        .any(|z| z == zip)
                })
            })
            .collect();
        let pool: Vec<&Agent> = if local.is_empty() {
            self.agents.iter().filter(|a| a.org_id == org).collect()
        } else {
            local
        };
        (!pool.is_empty()).then(|| pool[rng.random_range(0..pool.len())].agent_id)
    }
}

/// Metros (indices) each organization operates in: organization `j` serves metro
/// `j mod metros`, and odd-numbered ones also the next metro.
pub fn org_metros(orgs: usize, metros: usize) -> Vec<Vec<usize>> {
    (0..orgs)
        .map(|j| {
            let mut ms = vec![j % metros];
            if j % 2 == 1 && metros > 1 {
                ms.push((j + 1) % metros);
            }
            ms
        })
        .collect()
}

fn org_slug(name: &str) -> String {
    name.split_whitespace()
        .next()
        .unwrap_or("org")
        .to_lowercase()
}

/// A homeowner row.
pub fn contact(
    rng: &mut WorldRng,
    id: ContactId,
    org: OrgId,
    property: PropertyId,
    agent: Option<AgentId>,
    closed_on: chrono::NaiveDate,
) -> Contact {
    let first = FIRST[rng.random_range(0..FIRST.len())];
    let last = LAST[rng.random_range(0..LAST.len())];
    Contact {
        contact_id: id,
        org_id: org,
        first_name: first.into(),
        last_name: last.into(),
        email: format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            id.0
        ),
        property_id: property,
        agent_id: agent,
        closed_on,
        email_opt_in: chance(rng, 0.85),
    }
}
