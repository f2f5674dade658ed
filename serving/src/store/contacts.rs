//! Contacts, their consent history and per-contact numbers, segments, and branding: what
//! campaigns are sent to and how they look.
//!
//! Contacts arrive two ways: synced from the lake ([`Tenant::sync_contacts`], by the
//! pipeline's contact id, with the home's valuation, equity and market figures, and the
//! features and model scores as `contact_values`), or imported from CSV
//! ([`Tenant::import_contacts`], by e-mail). A sync never changes consent once a contact
//! exists: what a homeowner chose in ROI outranks what the lake says.

use std::collections::{BTreeSet, HashMap};

use sqlx::any::AnyRow;

use super::{Result, StoreError, Tenant, failed, get, unique};
use crate::auth::secret::new_id;
use crate::contacts::{Consent, ImportRow, RowError};
use crate::segment::{Bind, Compiled};

/// What is known about a contact's home, its value and its market. Every field may be
/// unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactAttributes {
    /// Street address.
    pub address: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Two-letter state.
    pub state: Option<String>,
    /// Five-digit zip code.
    pub zip: Option<String>,
    /// `single_family`, `townhouse`, `condo` or `multi_family`.
    pub property_type: Option<String>,
    /// Bedrooms.
    pub beds: Option<f64>,
    /// Bathrooms.
    pub baths: Option<f64>,
    /// Living area, square feet.
    pub sqft: Option<f64>,
    /// Year built.
    pub year_built: Option<f64>,
    /// Purchase close date, days since 1970-01-01.
    pub closed_on_day: Option<i64>,
    /// Estimated value, dollars.
    pub value: Option<f64>,
    /// Lower bound of the value's interval.
    pub value_low: Option<f64>,
    /// Upper bound of the value's interval.
    pub value_high: Option<f64>,
    /// Valuation date, days since 1970-01-01.
    pub valued_on_day: Option<i64>,
    /// The area's price change over the last 12 months, percent.
    pub value_change_pct: Option<f64>,
    /// Value less the mortgage balance, dollars.
    pub equity: Option<f64>,
    /// Equity as percent of value.
    pub equity_pct: Option<f64>,
    /// Loan-to-value, percent.
    pub ltv: Option<f64>,
    /// Mortgage balance, dollars.
    pub loan_balance: Option<f64>,
    /// The mortgage's rate, percent.
    pub loan_rate_pct: Option<f64>,
    /// The market's 30-year rate, percent.
    pub market_rate_pct: Option<f64>,
    /// Monthly saving of a refinance at the market rate, dollars.
    pub refinance_saving: Option<f64>,
    /// Cash a cash-out refinance to 80% LTV could release, dollars.
    pub cash_out: Option<f64>,
    /// The month of the market figures, days since 1970-01-01 (its first day).
    pub market_month_day: Option<i64>,
    /// Median sale price in the zip that month.
    pub market_median_price: Option<f64>,
    /// Median price per square foot in the zip that month.
    pub market_median_ppsf: Option<f64>,
    /// Year-over-year change of the zip's median price, percent.
    pub market_yoy_pct: Option<f64>,
    /// Sales in the zip that month.
    pub market_sales: Option<f64>,
    /// The agent of record's name.
    pub agent_name: Option<String>,
    /// The agent of record's e-mail.
    pub agent_email: Option<String>,
}

/// Attribute columns, in the order [`bind_attributes`] binds them.
const ATTRIBUTE_COLUMNS: &[&str] = &[
    "address",
    "city",
    "state",
    "zip",
    "property_type",
    "beds",
    "baths",
    "sqft",
    "year_built",
    "closed_on_day",
    "value",
    "value_low",
    "value_high",
    "valued_on_day",
    "value_change_pct",
    "equity",
    "equity_pct",
    "ltv",
    "loan_balance",
    "loan_rate_pct",
    "market_rate_pct",
    "refinance_saving",
    "cash_out",
    "market_month_day",
    "market_median_price",
    "market_median_ppsf",
    "market_yoy_pct",
    "market_sales",
    "agent_name",
    "agent_email",
];

pub(super) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_attributes<'q>(q: AnyQuery<'q>, a: &'q ContactAttributes) -> AnyQuery<'q> {
    q.bind(a.address.as_deref())
        .bind(a.city.as_deref())
        .bind(a.state.as_deref())
        .bind(a.zip.as_deref())
        .bind(a.property_type.as_deref())
        .bind(a.beds)
        .bind(a.baths)
        .bind(a.sqft)
        .bind(a.year_built)
        .bind(a.closed_on_day)
        .bind(a.value)
        .bind(a.value_low)
        .bind(a.value_high)
        .bind(a.valued_on_day)
        .bind(a.value_change_pct)
        .bind(a.equity)
        .bind(a.equity_pct)
        .bind(a.ltv)
        .bind(a.loan_balance)
        .bind(a.loan_rate_pct)
        .bind(a.market_rate_pct)
        .bind(a.refinance_saving)
        .bind(a.cash_out)
        .bind(a.market_month_day)
        .bind(a.market_median_price)
        .bind(a.market_median_ppsf)
        .bind(a.market_yoy_pct)
        .bind(a.market_sales)
        .bind(a.agent_name.as_deref())
        .bind(a.agent_email.as_deref())
}

fn attributes_from(r: &AnyRow) -> Result<ContactAttributes> {
    Ok(ContactAttributes {
        address: get(r, "address")?,
        city: get(r, "city")?,
        state: get(r, "state")?,
        zip: get(r, "zip")?,
        property_type: get(r, "property_type")?,
        beds: get(r, "beds")?,
        baths: get(r, "baths")?,
        sqft: get(r, "sqft")?,
        year_built: get(r, "year_built")?,
        closed_on_day: get(r, "closed_on_day")?,
        value: get(r, "value")?,
        value_low: get(r, "value_low")?,
        value_high: get(r, "value_high")?,
        valued_on_day: get(r, "valued_on_day")?,
        value_change_pct: get(r, "value_change_pct")?,
        equity: get(r, "equity")?,
        equity_pct: get(r, "equity_pct")?,
        ltv: get(r, "ltv")?,
        loan_balance: get(r, "loan_balance")?,
        loan_rate_pct: get(r, "loan_rate_pct")?,
        market_rate_pct: get(r, "market_rate_pct")?,
        refinance_saving: get(r, "refinance_saving")?,
        cash_out: get(r, "cash_out")?,
        market_month_day: get(r, "market_month_day")?,
        market_median_price: get(r, "market_median_price")?,
        market_median_ppsf: get(r, "market_median_ppsf")?,
        market_yoy_pct: get(r, "market_yoy_pct")?,
        market_sales: get(r, "market_sales")?,
        agent_name: get(r, "agent_name")?,
        agent_email: get(r, "agent_email")?,
    })
}

/// A contact as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// Server-made id (`ct_…`).
    pub id: String,
    /// The pipeline's id, when synced from the lake.
    pub lake_contact_id: Option<i64>,
    /// Lower-cased address; unique in the organization.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Whether they may be mailed.
    pub consent: Consent,
    /// When consent last changed, Unix seconds.
    pub consent_at: i64,
    /// Home, value and market.
    pub attributes: ContactAttributes,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

pub(super) fn contact_columns(alias: &str) -> String {
    let mut cols = vec![
        "id",
        "lake_contact_id",
        "email",
        "first_name",
        "last_name",
        "consent",
        "consent_at",
        "created_at",
        "updated_at",
    ];
    cols.extend_from_slice(ATTRIBUTE_COLUMNS);
    cols.iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn consent_of(text: &str) -> Result<Consent> {
    text.parse().map_err(StoreError::Corrupt)
}

pub(super) fn contact_from(r: &AnyRow) -> Result<Contact> {
    let consent: String = get(r, "consent")?;
    Ok(Contact {
        id: get(r, "id")?,
        lake_contact_id: get(r, "lake_contact_id")?,
        email: get(r, "email")?,
        first_name: get(r, "first_name")?,
        last_name: get(r, "last_name")?,
        consent: consent_of(&consent)?,
        consent_at: get(r, "consent_at")?,
        attributes: attributes_from(r)?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

/// A contact from the lake.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncContact {
    /// The pipeline's id.
    pub lake_contact_id: i64,
    /// Address (lower-cased by the sync).
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Whether they agreed to marketing e-mail at closing (used only for a new contact).
    pub opted_in: bool,
    /// Home, value and market.
    pub attributes: ContactAttributes,
    /// Features and scores by qualified name (`feature.…`, `score.…`).
    pub values: Vec<(String, f64)>,
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// New contacts.
    pub inserted: u64,
    /// Contacts already there, updated.
    pub updated: u64,
    /// Lake contacts skipped because another lake contact has the same address.
    pub duplicate_emails: u64,
    /// Per-contact values written.
    pub values: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// New contacts.
    pub inserted: u64,
    /// Existing contacts updated.
    pub updated: u64,
    /// Rows not imported, with why.
    pub errors: Vec<RowError>,
}

/// One change of a contact's consent.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentChange {
    /// Unix seconds.
    pub at: i64,
    /// State before (none: the contact was created).
    pub from: Option<Consent>,
    /// State after.
    pub to: Consent,
    /// `sync`, `import`, `api`, `unsubscribe`, `bounce` or `complaint`.
    pub source: String,
    /// The user who made it, if one did.
    pub actor_id: Option<String>,
    /// Why, in words.
    pub detail: String,
}

/// A saved segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Server-made id (`seg_…`).
    pub id: String,
    /// Unique name in the organization.
    pub name: String,
    /// The rule, as written.
    pub rule: String,
    /// Who saved it.
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// How the organization's mail looks and who it is from. Every field may be unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branding {
    /// Sender display name.
    pub from_name: Option<String>,
    /// Sender address (else the server's configured sender).
    pub from_email: Option<String>,
    /// Reply-To address.
    pub reply_to: Option<String>,
    /// Logo image URL.
    pub logo_url: Option<String>,
    /// Website URL.
    pub website: Option<String>,
    /// Postal address printed in every message's footer.
    pub postal_address: Option<String>,
    /// Brand colour, `#rrggbb`.
    pub primary_color: Option<String>,
    /// Address homeowners write to for help.
    pub support_email: Option<String>,
    /// When last changed; none: never set.
    pub updated_at: Option<i64>,
}

/// A segment's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentCount {
    /// Contacts the rule matches.
    pub matched: i64,
    /// Of those, the ones that may be mailed.
    pub subscribed: i64,
}

/// Contacts per statement in bulk writes (each binds ~40 values; well under both
/// backends' parameter limits).
const CHUNK: usize = 200;
/// Values per statement in bulk writes (4 parameters each).
const VALUE_CHUNK: usize = 1000;

pub(super) fn bind_segment<'q>(mut q: AnyQuery<'q>, binds: &'q [Bind]) -> AnyQuery<'q> {
    for b in binds {
        q = match b {
            Bind::Number(v) => q.bind(*v),
            Bind::Text(s) => q.bind(s.as_str()),
        };
    }
    q
}

impl Tenant<'_> {
    /// Brings the lake's contacts into the store: new ones are added (subscribed when
    /// they opted in at closing, else unsubscribed), known ones (by pipeline id, else by
    /// address) get the lake's names and attributes, and each one's values are replaced.
    /// `value_names` describes every qualified name the values use.
    pub async fn sync_contacts(
        &self,
        contacts: &[SyncContact],
        value_names: &[(String, String)],
        now: i64,
    ) -> Result<SyncReport> {
        let existing =
            sqlx::query("SELECT id, lake_contact_id, email FROM contacts WHERE org_id = $1")
                .bind(&self.org)
                .fetch_all(self.store.pool())
                .await
                .map_err(failed("reading contacts to sync"))?;
        let mut by_lake: HashMap<i64, String> = HashMap::new();
        let mut by_email: HashMap<String, (String, Option<i64>)> = HashMap::new();
        for r in &existing {
            let id: String = get(r, "id")?;
            let lake: Option<i64> = get(r, "lake_contact_id")?;
            if let Some(l) = lake {
                by_lake.insert(l, id.clone());
            }
            by_email.insert(get(r, "email")?, (id, lake));
        }
        let mut report = SyncReport::default();
        let mut seen_emails: BTreeSet<String> = BTreeSet::new();
        // (id, is_new, contact)
        let mut plan: Vec<(String, bool, &SyncContact)> = Vec::with_capacity(contacts.len());
        for c in contacts {
            if !seen_emails.insert(c.email.clone()) {
                report.duplicate_emails += 1;
                continue;
            }
            if let Some(id) = by_lake.get(&c.lake_contact_id) {
                plan.push((id.clone(), false, c));
            } else if let Some((id, lake)) = by_email.get(&c.email) {
                if lake.is_some_and(|l| l != c.lake_contact_id) {
                    // The address belongs to another pipeline contact already.
                    report.duplicate_emails += 1;
                    continue;
                }
                plan.push((id.clone(), false, c));
            } else {
                plan.push((new_id("ct"), true, c));
            }
        }
        let mut tx = self.store.begin().await?;
        let width = 10 + ATTRIBUTE_COLUMNS.len();
        let columns = format!(
            "id, org_id, lake_contact_id, email, first_name, last_name, consent, consent_at, \
             created_at, updated_at, {}",
            ATTRIBUTE_COLUMNS.join(", ")
        );
        let mut updates = vec![
            "lake_contact_id = excluded.lake_contact_id".to_owned(),
            "first_name = excluded.first_name".to_owned(),
            "last_name = excluded.last_name".to_owned(),
            "updated_at = excluded.updated_at".to_owned(),
        ];
        updates.extend(
            ATTRIBUTE_COLUMNS
                .iter()
                .map(|c| format!("{c} = excluded.{c}")),
        );
        let updates = updates.join(", ");
        for chunk in plan.chunks(CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let first = i * width + 1;
                    let marks: Vec<String> =
                        (first..first + width).map(|n| format!("${n}")).collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let sql = self.store.bulk_sql(&format!(
                "INSERT INTO contacts ({columns}) VALUES {} ON CONFLICT (id) DO UPDATE SET {updates}",
                rows.join(", ")
            ));
            let mut q = sqlx::query(&sql).persistent(false);
            for (id, _, c) in chunk {
                let consent = if c.opted_in {
                    Consent::Subscribed
                } else {
                    Consent::Unsubscribed
                };
                q = q
                    .bind(id.as_str())
                    .bind(&self.org)
                    .bind(c.lake_contact_id)
                    .bind(c.email.as_str())
                    .bind(c.first_name.as_str())
                    .bind(c.last_name.as_str())
                    .bind(consent.as_str())
                    .bind(now)
                    .bind(now)
                    .bind(now);
                q = bind_attributes(q, &c.attributes);
            }
            q.execute(&mut *tx).await.map_err(unique(
                "a contact with this address".to_owned(),
                "syncing contacts",
            ))?;
            let news: Vec<&(String, bool, &SyncContact)> =
                chunk.iter().filter(|(_, new, _)| *new).collect();
            if !news.is_empty() {
                let marks: Vec<String> = (0..news.len())
                    .map(|i| {
                        let b = i * 6;
                        format!(
                            "(${}, ${}, ${}, ${}, NULL, ${}, 'sync', NULL, ${})",
                            b + 1,
                            b + 2,
                            b + 3,
                            b + 4,
                            b + 5,
                            b + 6
                        )
                    })
                    .collect();
                let sql = self.store.bulk_sql(&format!(
                    "INSERT INTO consent_changes (id, org_id, contact_id, at, from_state, to_state, source, actor_id, detail) VALUES {}",
                    marks.join(", ")
                ));
                let mut q = sqlx::query(&sql).persistent(false);
                for (id, _, c) in news {
                    let (to, detail) = if c.opted_in {
                        (
                            Consent::Subscribed,
                            "opted in to marketing e-mail at closing",
                        )
                    } else {
                        (
                            Consent::Unsubscribed,
                            "did not opt in to marketing e-mail at closing",
                        )
                    };
                    q = q
                        .bind(new_id("cc"))
                        .bind(&self.org)
                        .bind(id.as_str())
                        .bind(now)
                        .bind(to.as_str())
                        .bind(detail);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(failed("recording synced contacts' consent"))?;
            }
            report.inserted += chunk.iter().filter(|(_, new, _)| *new).count() as u64;
            report.updated += chunk.iter().filter(|(_, new, _)| !*new).count() as u64;
            let ids: Vec<&str> = chunk.iter().map(|(id, _, _)| id.as_str()).collect();
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = self.store.bulk_sql(&format!(
                "DELETE FROM contact_values WHERE org_id = $1 AND contact_id IN ({})",
                marks.join(", ")
            ));
            let mut q = sqlx::query(&sql).persistent(false).bind(&self.org);
            for id in &ids {
                q = q.bind(*id);
            }
            q.execute(&mut *tx)
                .await
                .map_err(failed("clearing contact values"))?;
            let values: Vec<(&str, &str, f64)> = chunk
                .iter()
                .flat_map(|(id, _, c)| {
                    c.values
                        .iter()
                        .filter(|(_, v)| v.is_finite())
                        .map(move |(n, v)| (id.as_str(), n.as_str(), *v))
                })
                .collect();
            for part in values.chunks(VALUE_CHUNK) {
                let marks: Vec<String> = (0..part.len())
                    .map(|i| {
                        let b = i * 4;
                        format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
                    })
                    .collect();
                let sql = self.store.bulk_sql(&format!(
                    "INSERT INTO contact_values (org_id, contact_id, name, value) VALUES {}",
                    marks.join(", ")
                ));
                let mut q = sqlx::query(&sql).persistent(false);
                for (id, name, v) in part {
                    q = q.bind(&self.org).bind(*id).bind(*name).bind(*v);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(failed("writing contact values"))?;
                report.values += part.len() as u64;
            }
        }
        for (name, description) in value_names {
            sqlx::query(
                "INSERT INTO contact_value_names (org_id, name, description) VALUES ($1, $2, $3)
                 ON CONFLICT (org_id, name) DO UPDATE SET description = excluded.description",
            )
            .bind(&self.org)
            .bind(name)
            .bind(description)
            .execute(&mut *tx)
            .await
            .map_err(failed("naming contact values"))?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a contact sync"))?;
        Ok(report)
    }

    /// Imports rows read from a CSV file by address: new contacts are added, known ones
    /// get the row's non-empty fields. A row that would put a contact who left back on
    /// the list is refused and reported; the others are applied.
    pub async fn import_contacts(
        &self,
        rows: &[ImportRow],
        actor_id: &str,
        now: i64,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        let mut tx = self.store.begin().await?;
        // Writing first takes SQLite's write lock at the start (and orders concurrent
        // imports of one organization on PostgreSQL): a SQLite transaction that read
        // first fails at its first write if another connection wrote in between.
        sqlx::query("UPDATE organizations SET name = name WHERE id = $1")
            .bind(&self.org)
            .execute(&mut *tx)
            .await
            .map_err(failed("starting a contact import"))?;
        for row in rows {
            let current =
                sqlx::query("SELECT id, consent FROM contacts WHERE org_id = $1 AND email = $2")
                    .bind(&self.org)
                    .bind(&row.email)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(failed("finding an imported contact"))?;
            match current {
                None => {
                    let id = new_id("ct");
                    let consent = row.consent.unwrap_or(Consent::Subscribed);
                    let attrs = import_attributes(row);
                    let sql = format!(
                        "INSERT INTO contacts (id, org_id, email, first_name, last_name, consent, consent_at, \
                         created_at, updated_at, {}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, {})",
                        ATTRIBUTE_COLUMNS.join(", "),
                        (8..8 + ATTRIBUTE_COLUMNS.len())
                            .map(|n| format!("${n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    let q = sqlx::query(&sql)
                        .persistent(false)
                        .bind(&id)
                        .bind(&self.org)
                        .bind(&row.email)
                        .bind(row.first_name.as_deref().unwrap_or(""))
                        .bind(row.last_name.as_deref().unwrap_or(""))
                        .bind(consent.as_str())
                        .bind(now);
                    bind_attributes(q, &attrs)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed("importing a contact"))?;
                    record_consent(
                        &mut tx,
                        &self.org,
                        &id,
                        None,
                        consent,
                        "import",
                        Some(actor_id),
                        &format!("imported from CSV row {}", row.row),
                        now,
                    )
                    .await?;
                    report.inserted += 1;
                }
                Some(r) => {
                    let id: String = get(&r, "id")?;
                    let was = consent_of(&get::<String>(&r, "consent")?)?;
                    if let Some(to) = row.consent
                        && to != was
                    {
                        if to == Consent::Subscribed {
                            report.errors.push(RowError {
                                row: row.row,
                                column: Some("consent".to_owned()),
                                value: Some(to.as_str().to_owned()),
                                message: format!(
                                    "{} is {}; an import cannot put them back on the list",
                                    row.email,
                                    was.as_str()
                                ),
                            });
                            continue;
                        }
                        sqlx::query(
                            "UPDATE contacts SET consent = $1, consent_at = $2 WHERE org_id = $3 AND id = $4",
                        )
                        .bind(to.as_str())
                        .bind(now)
                        .bind(&self.org)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed("changing an imported contact's consent"))?;
                        record_consent(
                            &mut tx,
                            &self.org,
                            &id,
                            Some(was),
                            to,
                            "import",
                            Some(actor_id),
                            &format!("imported from CSV row {}", row.row),
                            now,
                        )
                        .await?;
                    }
                    let mut sets = vec!["updated_at = $1".to_owned()];
                    let mut texts: Vec<&str> = Vec::new();
                    let mut numbers: Vec<f64> = Vec::new();
                    let mut next = 2;
                    for (col, v) in [
                        ("first_name", &row.first_name),
                        ("last_name", &row.last_name),
                        ("address", &row.address),
                        ("city", &row.city),
                        ("state", &row.state),
                        ("zip", &row.zip),
                        ("property_type", &row.property_type),
                    ] {
                        if let Some(v) = v {
                            sets.push(format!("{col} = ${next}"));
                            texts.push(v);
                            next += 1;
                        }
                    }
                    for (col, v) in [
                        ("beds", row.beds),
                        ("baths", row.baths),
                        ("sqft", row.sqft),
                        ("year_built", row.year_built),
                    ] {
                        if let Some(v) = v {
                            sets.push(format!("{col} = ${next}"));
                            numbers.push(v);
                            next += 1;
                        }
                    }
                    if row.closed_on_day.is_some() {
                        sets.push(format!("closed_on_day = ${next}"));
                        next += 1;
                    }
                    let sql = format!(
                        "UPDATE contacts SET {} WHERE org_id = ${next} AND id = ${}",
                        sets.join(", "),
                        next + 1
                    );
                    let mut q = sqlx::query(&sql).persistent(false).bind(now);
                    for t in texts {
                        q = q.bind(t);
                    }
                    for n in numbers {
                        q = q.bind(n);
                    }
                    if let Some(day) = row.closed_on_day {
                        q = q.bind(day);
                    }
                    q.bind(&self.org)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .map_err(failed("updating an imported contact"))?;
                    report.updated += 1;
                }
            }
        }
        tx.commit().await.map_err(failed("committing an import"))?;
        Ok(report)
    }

    /// One contact.
    pub async fn contact(&self, id: &str) -> Result<Option<Contact>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM contacts c WHERE c.org_id = $1 AND c.id = $2",
            contact_columns("c")
        ))
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a contact"))?;
        row.map(|r| contact_from(&r)).transpose()
    }

    /// A page of contacts in id order, optionally in one consent state.
    pub async fn contacts(
        &self,
        consent: Option<Consent>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Contact>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM contacts c WHERE c.org_id = $1 AND ($2 = '' OR c.consent = $2)
             AND c.id > $3 ORDER BY c.id LIMIT $4",
            contact_columns("c")
        ))
        .bind(&self.org)
        .bind(consent.map(Consent::as_str).unwrap_or(""))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing contacts"))?;
        rows.iter().map(contact_from).collect()
    }

    /// A contact's features and scores by qualified name.
    pub async fn contact_values(&self, id: &str) -> Result<Vec<(String, f64)>> {
        let rows = sqlx::query(
            "SELECT name, value FROM contact_values WHERE org_id = $1 AND contact_id = $2 ORDER BY name",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("reading contact values"))?;
        rows.iter()
            .map(|r| Ok((get(r, "name")?, get(r, "value")?)))
            .collect()
    }

    /// The qualified names this organization's contacts have values for, with what each
    /// means.
    pub async fn value_names(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT name, description FROM contact_value_names WHERE org_id = $1 ORDER BY name",
        )
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing value names"))?;
        rows.iter()
            .map(|r| Ok((get(r, "name")?, get(r, "description")?)))
            .collect()
    }

    /// A contact's consent changes, oldest first.
    pub async fn consent_history(&self, id: &str) -> Result<Vec<ConsentChange>> {
        let rows = sqlx::query(
            "SELECT at, from_state, to_state, source, actor_id, detail FROM consent_changes
             WHERE org_id = $1 AND contact_id = $2 ORDER BY at, id",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("reading consent history"))?;
        rows.iter()
            .map(|r| {
                let from: Option<String> = get(r, "from_state")?;
                Ok(ConsentChange {
                    at: get(r, "at")?,
                    from: from.as_deref().map(consent_of).transpose()?,
                    to: consent_of(&get::<String>(r, "to_state")?)?,
                    source: get(r, "source")?,
                    actor_id: get(r, "actor_id")?,
                    detail: get(r, "detail")?,
                })
            })
            .collect()
    }

    /// Changes a contact's consent and records why; nothing is recorded when it is
    /// already `to`. None when the contact is not in this organization.
    pub async fn set_consent(
        &self,
        id: &str,
        to: Consent,
        source: &str,
        actor_id: Option<&str>,
        detail: &str,
        now: i64,
    ) -> Result<Option<Contact>> {
        let mut tx = self.store.begin().await?;
        let row = sqlx::query("SELECT consent FROM contacts WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed("reading a contact's consent"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let was = consent_of(&get::<String>(&row, "consent")?)?;
        if was != to {
            sqlx::query(
                "UPDATE contacts SET consent = $1, consent_at = $2, updated_at = $2
                 WHERE org_id = $3 AND id = $4",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(&self.org)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(failed("changing consent"))?;
            record_consent(
                &mut tx,
                &self.org,
                id,
                Some(was),
                to,
                source,
                actor_id,
                detail,
                now,
            )
            .await?;
        }
        tx.commit()
            .await
            .map_err(failed("committing a consent change"))?;
        self.contact(id).await
    }

    /// How many contacts a compiled segment rule matches (its placeholders numbered
    /// from `$2`).
    pub async fn segment_count(&self, rule: &Compiled) -> Result<SegmentCount> {
        let sql = format!(
            "SELECT COUNT(*) AS matched,
                    COALESCE(SUM(CASE WHEN c.consent = 'subscribed' THEN 1 ELSE 0 END), 0) AS subscribed
             FROM contacts c {} WHERE c.org_id = $1 AND {}",
            rule.joins, rule.condition
        );
        let q = sqlx::query(&sql).persistent(false).bind(&self.org);
        let row = bind_segment(q, &rule.binds)
            .fetch_one(self.store.pool())
            .await
            .map_err(failed("counting a segment"))?;
        Ok(SegmentCount {
            matched: get(&row, "matched")?,
            subscribed: get(&row, "subscribed")?,
        })
    }

    /// The first `limit` contacts (in id order) a compiled segment rule matches.
    pub async fn segment_sample(&self, rule: &Compiled, limit: i64) -> Result<Vec<Contact>> {
        let sql = format!(
            "SELECT {} FROM contacts c {} WHERE c.org_id = $1 AND {} ORDER BY c.id LIMIT {}",
            contact_columns("c"),
            rule.joins,
            rule.condition,
            limit.clamp(0, 1000)
        );
        let q = sqlx::query(&sql).persistent(false).bind(&self.org);
        let rows = bind_segment(q, &rule.binds)
            .fetch_all(self.store.pool())
            .await
            .map_err(failed("sampling a segment"))?;
        rows.iter().map(contact_from).collect()
    }

    /// Saves a segment (its rule already checked).
    pub async fn create_segment(
        &self,
        name: &str,
        rule: &str,
        created_by: &str,
        now: i64,
    ) -> Result<Segment> {
        let segment = Segment {
            id: new_id("seg"),
            name: name.to_owned(),
            rule: rule.to_owned(),
            created_by: Some(created_by.to_owned()),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO segments (id, org_id, name, rule, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&segment.id)
        .bind(&self.org)
        .bind(name)
        .bind(rule)
        .bind(created_by)
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(unique(
            format!("a segment named {name:?}"),
            "saving a segment",
        ))?;
        Ok(segment)
    }

    /// Changes a segment's name and rule; None when it is not in this organization.
    pub async fn update_segment(
        &self,
        id: &str,
        name: &str,
        rule: &str,
        now: i64,
    ) -> Result<Option<Segment>> {
        let done = sqlx::query(
            "UPDATE segments SET name = $1, rule = $2, updated_at = $3 WHERE org_id = $4 AND id = $5",
        )
        .bind(name)
        .bind(rule)
        .bind(now)
        .bind(&self.org)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(unique(format!("a segment named {name:?}"), "changing a segment"))?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.segment(id).await
    }

    /// Deletes a segment; false when it is not in this organization.
    pub async fn delete_segment(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM segments WHERE org_id = $1 AND id = $2")
            .bind(&self.org)
            .bind(id)
            .execute(self.store.pool())
            .await
            .map_err(failed("deleting a segment"))?;
        Ok(done.rows_affected() == 1)
    }

    /// One segment.
    pub async fn segment(&self, id: &str) -> Result<Option<Segment>> {
        let row = sqlx::query(
            "SELECT id, name, rule, created_by, created_at, updated_at FROM segments
             WHERE org_id = $1 AND id = $2",
        )
        .bind(&self.org)
        .bind(id)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading a segment"))?;
        row.map(|r| segment_from(&r)).transpose()
    }

    /// Every saved segment, by name.
    pub async fn segments(&self) -> Result<Vec<Segment>> {
        let rows = sqlx::query(
            "SELECT id, name, rule, created_by, created_at, updated_at FROM segments
             WHERE org_id = $1 ORDER BY name",
        )
        .bind(&self.org)
        .fetch_all(self.store.pool())
        .await
        .map_err(failed("listing segments"))?;
        rows.iter().map(segment_from).collect()
    }

    /// The organization's branding (all unset until first saved).
    pub async fn branding(&self) -> Result<Branding> {
        let row = sqlx::query(
            "SELECT from_name, from_email, reply_to, logo_url, website, postal_address,
                    primary_color, support_email, updated_at FROM branding WHERE org_id = $1",
        )
        .bind(&self.org)
        .fetch_optional(self.store.pool())
        .await
        .map_err(failed("reading branding"))?;
        let Some(r) = row else {
            return Ok(Branding::default());
        };
        Ok(Branding {
            from_name: get(&r, "from_name")?,
            from_email: get(&r, "from_email")?,
            reply_to: get(&r, "reply_to")?,
            logo_url: get(&r, "logo_url")?,
            website: get(&r, "website")?,
            postal_address: get(&r, "postal_address")?,
            primary_color: get(&r, "primary_color")?,
            support_email: get(&r, "support_email")?,
            updated_at: Some(get(&r, "updated_at")?),
        })
    }

    /// Replaces the organization's branding.
    pub async fn set_branding(&self, b: &Branding, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO branding (org_id, from_name, from_email, reply_to, logo_url, website,
                 postal_address, primary_color, support_email, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (org_id) DO UPDATE SET from_name = excluded.from_name,
                 from_email = excluded.from_email, reply_to = excluded.reply_to,
                 logo_url = excluded.logo_url, website = excluded.website,
                 postal_address = excluded.postal_address, primary_color = excluded.primary_color,
                 support_email = excluded.support_email, updated_at = excluded.updated_at",
        )
        .persistent(false)
        .bind(&self.org)
        .bind(b.from_name.as_deref())
        .bind(b.from_email.as_deref())
        .bind(b.reply_to.as_deref())
        .bind(b.logo_url.as_deref())
        .bind(b.website.as_deref())
        .bind(b.postal_address.as_deref())
        .bind(b.primary_color.as_deref())
        .bind(b.support_email.as_deref())
        .bind(now)
        .execute(self.store.pool())
        .await
        .map_err(failed("saving branding"))?;
        Ok(())
    }
}

fn segment_from(r: &AnyRow) -> Result<Segment> {
    Ok(Segment {
        id: get(r, "id")?,
        name: get(r, "name")?,
        rule: get(r, "rule")?,
        created_by: get(r, "created_by")?,
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

fn import_attributes(row: &ImportRow) -> ContactAttributes {
    ContactAttributes {
        address: row.address.clone(),
        city: row.city.clone(),
        state: row.state.clone(),
        zip: row.zip.clone(),
        property_type: row.property_type.clone(),
        beds: row.beds,
        baths: row.baths,
        sqft: row.sqft,
        year_built: row.year_built,
        closed_on_day: row.closed_on_day,
        ..ContactAttributes::default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn record_consent(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    org: &str,
    contact_id: &str,
    from: Option<Consent>,
    to: Consent,
    source: &str,
    actor_id: Option<&str>,
    detail: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO consent_changes (id, org_id, contact_id, at, from_state, to_state, source, actor_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .persistent(false)
    .bind(new_id("cc"))
    .bind(org)
    .bind(contact_id)
    .bind(now)
    .bind(from.map(Consent::as_str))
    .bind(to.as_str())
    .bind(source)
    .bind(actor_id)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map_err(failed("recording a consent change"))?;
    Ok(())
}
