//! Campaign audiences: contacts with their consent and its history, CSV imports, and
//! segments (rules of the [`crate::segment`] language, previewed live and saved).
//! Agents and above read; managers and above change.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Principal;
use crate::contacts::{Consent, RowError, date_of_day, parse_csv};
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::role::Role;
use crate::segment::{Compiled, FIELDS, FieldType, Rule};
use crate::store::{ConsentChange, Contact, Segment, Tenant};
use crate::unix_now;

/// Most bytes one CSV import may have.
pub(crate) const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// A contact as served.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ContactView {
    /// Id.
    id: String,
    /// The pipeline's homeowner id, when synced from the lake.
    lake_contact_id: Option<i64>,
    /// Address.
    email: String,
    /// First name.
    first_name: String,
    /// Last name.
    last_name: String,
    /// Whether campaigns may mail them.
    consent: Consent,
    /// When consent last changed, Unix seconds.
    consent_at: i64,
    /// Street address.
    address: Option<String>,
    /// City.
    city: Option<String>,
    /// State.
    state: Option<String>,
    /// Zip code.
    zip: Option<String>,
    /// `single_family`, `townhouse`, `condo` or `multi_family`.
    property_type: Option<String>,
    /// Bedrooms.
    beds: Option<f64>,
    /// Bathrooms.
    baths: Option<f64>,
    /// Living area, square feet.
    sqft: Option<f64>,
    /// Year built.
    year_built: Option<f64>,
    /// When the purchase closed, `YYYY-MM-DD`.
    closed_on: Option<String>,
    /// Estimated value, dollars.
    value: Option<f64>,
    /// Lower bound of the value's interval.
    value_low: Option<f64>,
    /// Upper bound.
    value_high: Option<f64>,
    /// Valuation date, `YYYY-MM-DD`.
    valued_on: Option<String>,
    /// Equity, dollars.
    equity: Option<f64>,
    /// Equity, percent of value.
    equity_pct: Option<f64>,
    /// Loan-to-value, percent.
    ltv: Option<f64>,
    /// Mortgage rate, percent.
    loan_rate_pct: Option<f64>,
    /// Median sale price in the zip, latest month.
    market_median_price: Option<f64>,
    /// Year-over-year change of that median, percent.
    market_yoy_pct: Option<f64>,
    /// The agent of record.
    agent_name: Option<String>,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
}

fn day_text(day: Option<i64>) -> Option<String> {
    day.and_then(date_of_day).map(|d| d.to_string())
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        let a = c.attributes;
        ContactView {
            id: c.id,
            lake_contact_id: c.lake_contact_id,
            email: c.email,
            first_name: c.first_name,
            last_name: c.last_name,
            consent: c.consent,
            consent_at: c.consent_at,
            address: a.address,
            city: a.city,
            state: a.state,
            zip: a.zip,
            property_type: a.property_type,
            beds: a.beds,
            baths: a.baths,
            sqft: a.sqft,
            year_built: a.year_built,
            closed_on: day_text(a.closed_on_day),
            value: a.value,
            value_low: a.value_low,
            value_high: a.value_high,
            valued_on: day_text(a.valued_on_day),
            equity: a.equity,
            equity_pct: a.equity_pct,
            ltv: a.ltv,
            loan_rate_pct: a.loan_rate_pct,
            market_median_price: a.market_median_price,
            market_yoy_pct: a.market_yoy_pct,
            agent_name: a.agent_name,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One change of consent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ConsentChangeView {
    /// Unix seconds.
    at: i64,
    /// Before (null: when the contact was added).
    from: Option<Consent>,
    /// After.
    to: Consent,
    /// `sync`, `import`, `api`, `unsubscribe`, `bounce` or `complaint`.
    source: String,
    /// The user who made it.
    actor_id: Option<String>,
    /// Why.
    detail: String,
}

impl From<ConsentChange> for ConsentChangeView {
    fn from(c: ConsentChange) -> Self {
        ConsentChangeView {
            at: c.at,
            from: c.from,
            to: c.to,
            source: c.source,
            actor_id: c.actor_id,
            detail: c.detail,
        }
    }
}

/// A named number about a contact.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct NamedValue {
    /// Qualified name, e.g. `feature.valuation_views_7d` or `score.refinance`.
    name: String,
    /// Its value.
    value: f64,
}

/// A contact with their consent history and their features and scores.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ContactDetail {
    /// The contact.
    contact: ContactView,
    /// Consent changes, oldest first.
    consent_history: Vec<ConsentChangeView>,
    /// Features and model scores (what segments can read as `feature.…` and `score.…`).
    values: Vec<NamedValue>,
}

/// Which contacts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactQuery {
    /// Only contacts in this consent state.
    consent: Option<Consent>,
    /// Contacts after this id (the previous page's `next_after`).
    after: Option<String>,
    /// How many (1–500, default 100).
    limit: Option<i64>,
}

/// A page of contacts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ContactPage {
    /// In id order.
    contacts: Vec<ContactView>,
    /// Pass as `after` for the next page; null on the last.
    next_after: Option<String>,
}

/// A change of consent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRequest {
    /// The new state.
    consent: Consent,
    /// Why (1–500 characters), kept in the history.
    detail: String,
}

/// What an import did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ImportResult {
    /// Contacts added.
    inserted: u64,
    /// Contacts updated.
    updated: u64,
    /// Rows not imported, with why (row 1 is the header).
    errors: Vec<RowError>,
}

fn reader(principal: &Principal) -> Result<(), Problem> {
    principal.require(Role::Agent)
}

fn manager(principal: &Principal) -> Result<(), Problem> {
    principal.require(Role::Manager)
}

/// Contacts (agents and above), in id order.
#[utoipa::path(get, path = "/contacts", tag = "contacts", security(("bearer" = [])),
    params(ContactQuery),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ContactQuery>,
) -> Result<Json<ContactPage>, Problem> {
    reader(&principal)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 500"));
    }
    let page = principal
        .tenant(&state.store)
        .contacts(q.consent, q.after.as_deref(), limit)
        .await?;
    let next_after = (page.len() as i64 == limit)
        .then(|| page.last().map(|c| c.id.clone()))
        .flatten();
    Ok(Json(ContactPage {
        contacts: page.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// One contact with their consent history, features and scores (agents and above).
#[utoipa::path(get, path = "/contacts/{id}", tag = "contacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "The contact", body = ContactDetail),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such contact in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ContactDetail>, Problem> {
    reader(&principal)?;
    let tenant = principal.tenant(&state.store);
    let contact = tenant
        .contact(&id)
        .await?
        .ok_or_else(|| Problem::not_found("contact"))?;
    Ok(Json(detail(&tenant, contact).await?))
}

async fn detail(tenant: &Tenant<'_>, contact: Contact) -> Result<ContactDetail, Problem> {
    let history = tenant.consent_history(&contact.id).await?;
    let values = tenant.contact_values(&contact.id).await?;
    Ok(ContactDetail {
        contact: contact.into(),
        consent_history: history.into_iter().map(Into::into).collect(),
        values: values
            .into_iter()
            .map(|(name, value)| NamedValue { name, value })
            .collect(),
    })
}

/// Changes a contact's consent (managers and above); the change and its reason are kept
/// in the contact's history. Putting a contact who unsubscribed, bounced or complained
/// back on the list should follow their own request.
#[utoipa::path(put, path = "/contacts/{id}/consent", tag = "contacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Contact id")),
    request_body = ConsentRequest,
    responses(
        (status = 200, description = "The contact after the change", body = ContactDetail),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such contact in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_consent(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<ConsentRequest>,
) -> Result<Json<ContactDetail>, Problem> {
    manager(&principal)?;
    let reason = req.detail.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::invalid("detail: must be 1–500 characters"));
    }
    let tenant = principal.tenant(&state.store);
    let contact = tenant
        .set_consent(
            &id,
            req.consent,
            "api",
            Some(&principal.user_id),
            reason,
            unix_now(),
        )
        .await?
        .ok_or_else(|| Problem::not_found("contact"))?;
    Ok(Json(detail(&tenant, contact).await?))
}

/// Imports contacts from a CSV file (managers and above; body `text/csv`, at most
/// 16 MiB and 100,000 rows). Columns and rules: see the `contacts` module of the serving
/// crate (`email` required; `first_name`, `last_name`, `consent`, `address`, `city`,
/// `state`, `zip`, `property_type`, `beds`, `baths`, `sqft`, `year_built`, `closed_on`).
/// Valid rows are imported; each bad row is reported with its row number, column, value
/// and reason. An import never puts a contact who left back on the list.
#[utoipa::path(post, path = "/contacts/import", tag = "contacts", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header row"),
    responses(
        (status = 200, description = "What was imported, and the rows that were not", body = ImportResult),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 16 MiB", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn import(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ImportResult>, Problem> {
    manager(&principal)?;
    let body = body?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "text/csv" {
        return Err(Problem::unsupported_media_type(
            "the body must be text/csv (a header row, then one contact per row)",
        ));
    }
    let (rows, mut errors) = parse_csv(&body).map_err(|e| {
        let column = e.column.map(|c| format!(" ({c})")).unwrap_or_default();
        Problem::invalid(format!("row {}{column}: {}", e.row, e.message))
    })?;
    let report = principal
        .tenant(&state.store)
        .import_contacts(&rows, &principal.user_id, unix_now())
        .await?;
    errors.extend(report.errors);
    errors.sort_by_key(|e| e.row);
    Ok(Json(ImportResult {
        inserted: report.inserted,
        updated: report.updated,
        errors,
    }))
}

/// A field segments can read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct FieldView {
    /// Name to write in a rule.
    name: String,
    /// `number` or `text`.
    #[serde(rename = "type")]
    kind: String,
    /// What it is.
    description: String,
    /// Unit, if any.
    unit: String,
}

/// What rules can read.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SegmentFields {
    /// Contact, home, value and market fields.
    fields: Vec<FieldView>,
    /// Features and model scores this organization's contacts have (numbers).
    values: Vec<FieldView>,
}

/// A rule to try.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewRequest {
    /// The rule, e.g. `equity_pct > 40 and zip in ("50010", "50014")`.
    rule: String,
    /// How many matching contacts to show (0–100, default 10).
    sample: Option<i64>,
}

/// What a rule matches now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Preview {
    /// Contacts matched.
    matched: i64,
    /// Of those, contacts campaigns may mail (subscribed).
    subscribed: i64,
    /// The first few matches in id order.
    sample: Vec<ContactView>,
}

/// A segment to save.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SegmentRequest {
    /// Unique name (1–100 characters).
    name: String,
    /// The rule.
    rule: String,
}

/// A saved segment with its size now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct SegmentView {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Rule.
    rule: String,
    /// Contacts it matches now.
    matched: i64,
    /// Of those, subscribed.
    subscribed: i64,
    /// Who saved it.
    created_by: Option<String>,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
    /// What the campaigns sent to it did, together (engagement counts contacts per
    /// campaign; alerts are counted per message delivered).
    campaigns: super::campaigns::CampaignStatsView,
}

/// Today as days since 1970-01-01 (what `tenure_years` and `property_age_years` count
/// from).
fn today() -> i64 {
    unix_now().div_euclid(86_400)
}

/// Parses and compiles a rule against the organization's values; a bad rule is a 422
/// naming the line, column and what is wrong.
pub(crate) async fn compile(tenant: &Tenant<'_>, rule: &str) -> Result<Compiled, Problem> {
    let parsed = Rule::parse(rule).map_err(|e| Problem::invalid(format!("rule: {e}")))?;
    let known: BTreeSet<String> = tenant
        .value_names()
        .await?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    parsed
        .compile(&known, today(), 2)
        .map_err(|e| Problem::invalid(format!("rule: {e}")))
}

/// What segment rules can read: the fixed fields, and the features and scores this
/// organization's contacts have (agents and above). The language itself is documented
/// in the serving crate's `segment` module.
#[utoipa::path(get, path = "/segments/fields", tag = "segments", security(("bearer" = [])),
    responses(
        (status = 200, description = "Fields and values", body = SegmentFields),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn fields(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SegmentFields>, Problem> {
    reader(&principal)?;
    let values = principal.tenant(&state.store).value_names().await?;
    Ok(Json(SegmentFields {
        fields: FIELDS
            .iter()
            .map(|f| FieldView {
                name: f.name.to_owned(),
                kind: match f.kind {
                    FieldType::Number => "number",
                    FieldType::Text => "text",
                }
                .to_owned(),
                description: f.description.to_owned(),
                unit: f.unit.to_owned(),
            })
            .collect(),
        values: values
            .into_iter()
            .map(|(name, description)| FieldView {
                name,
                kind: "number".to_owned(),
                description,
                unit: String::new(),
            })
            .collect(),
    }))
}

/// Counts what a rule matches now and shows a sample (agents and above).
#[utoipa::path(post, path = "/segments/preview", tag = "segments", security(("bearer" = [])),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "Counts and a sample", body = Preview),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<PreviewRequest>,
) -> Result<Json<Preview>, Problem> {
    reader(&principal)?;
    let sample = req.sample.unwrap_or(10);
    if !(0..=100).contains(&sample) {
        return Err(Problem::invalid("sample: must be between 0 and 100"));
    }
    let tenant = principal.tenant(&state.store);
    let compiled = compile(&tenant, &req.rule).await?;
    let count = tenant.segment_count(&compiled).await?;
    let rows = if sample > 0 {
        tenant.segment_sample(&compiled, sample).await?
    } else {
        Vec::new()
    };
    Ok(Json(Preview {
        matched: count.matched,
        subscribed: count.subscribed,
        sample: rows.into_iter().map(Into::into).collect(),
    }))
}

async fn segment_view(
    state: &AppState,
    tenant: &Tenant<'_>,
    s: Segment,
) -> Result<SegmentView, Problem> {
    let count = tenant
        .segment_count(&compile(tenant, &s.rule).await?)
        .await?;
    let days = state.config.campaigns.attribution_days;
    let stats = tenant
        .segment_stats(&s.id, i64::from(days) * 86_400)
        .await?;
    Ok(SegmentView {
        id: s.id,
        name: s.name,
        rule: s.rule,
        matched: count.matched,
        subscribed: count.subscribed,
        created_by: s.created_by,
        created_at: s.created_at,
        updated_at: s.updated_at,
        campaigns: super::campaigns::CampaignStatsView::new(stats, days),
    })
}

fn check_segment(req: &SegmentRequest) -> Result<String, Problem> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name: must be 1–100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Saves a segment (managers and above). The rule must compile.
#[utoipa::path(post, path = "/segments", tag = "segments", security(("bearer" = [])),
    request_body = SegmentRequest,
    responses(
        (status = 201, description = "Saved", body = SegmentView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "A segment with this name exists", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<SegmentRequest>,
) -> Result<(StatusCode, Json<SegmentView>), Problem> {
    manager(&principal)?;
    let name = check_segment(&req)?;
    let tenant = principal.tenant(&state.store);
    compile(&tenant, &req.rule).await?;
    let saved = tenant
        .create_segment(&name, &req.rule, &principal.user_id, unix_now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(segment_view(&state, &tenant, saved).await?),
    ))
}

/// Saved segments with their sizes now (agents and above).
#[utoipa::path(get, path = "/segments", tag = "segments", security(("bearer" = [])),
    responses(
        (status = 200, description = "Segments by name", body = [SegmentView]),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_segments(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<SegmentView>>, Problem> {
    reader(&principal)?;
    let tenant = principal.tenant(&state.store);
    let mut out = Vec::new();
    for s in tenant.segments().await? {
        out.push(segment_view(&state, &tenant, s).await?);
    }
    Ok(Json(out))
}

/// One segment with its size now (agents and above).
#[utoipa::path(get, path = "/segments/{id}", tag = "segments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    responses(
        (status = 200, description = "The segment", body = SegmentView),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such segment in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_segment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<SegmentView>, Problem> {
    reader(&principal)?;
    let tenant = principal.tenant(&state.store);
    let s = tenant
        .segment(&id)
        .await?
        .ok_or_else(|| Problem::not_found("segment"))?;
    Ok(Json(segment_view(&state, &tenant, s).await?))
}

/// Changes a segment's name and rule (managers and above).
#[utoipa::path(put, path = "/segments/{id}", tag = "segments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    request_body = SegmentRequest,
    responses(
        (status = 200, description = "The segment", body = SegmentView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such segment in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Another segment has this name", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update_segment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<SegmentRequest>,
) -> Result<Json<SegmentView>, Problem> {
    manager(&principal)?;
    let name = check_segment(&req)?;
    let tenant = principal.tenant(&state.store);
    compile(&tenant, &req.rule).await?;
    let s = tenant
        .update_segment(&id, &name, &req.rule, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("segment"))?;
    Ok(Json(segment_view(&state, &tenant, s).await?))
}

/// Deletes a segment (managers and above).
#[utoipa::path(delete, path = "/segments/{id}", tag = "segments", security(("bearer" = [])),
    params(("id" = String, Path, description = "Segment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such segment in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_segment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    manager(&principal)?;
    if !principal.tenant(&state.store).delete_segment(&id).await? {
        return Err(Problem::not_found("segment"));
    }
    Ok(StatusCode::NO_CONTENT)
}
