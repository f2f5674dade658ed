//! E-mail campaigns over HTTP: templates (validated, previewed, test-sent), the merge-tag
//! catalog, campaigns (send now, schedule, cancel, statistics), and the public tracking
//! endpoints recipients reach from their mail (open pixel, click redirect, unsubscribe
//! page and RFC 8058 one-click unsubscribe). Managers and above write; agents read.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::app::AppState;
use crate::auth::Principal;
use crate::campaigns::{LinkKind, MergeContext, Outgoing, Sent, merge_values};
use crate::merge::{MergeValues, TAGS, Template};
use crate::problem::{Json, Problem, ProblemBody, Query};
use crate::role::Role;
use crate::store::{Campaign, NewCampaign, StoredTemplate, Tenant};
use crate::unix_now;

/// A template to save or preview.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateRequest {
    /// Unique name (1–100 characters).
    name: String,
    /// Subject, a template (`Your home in {{ property.city }}`).
    subject: String,
    /// HTML part, a template (values are HTML-escaped).
    html: String,
    /// Plain-text part, a template.
    text: String,
}

/// A saved template.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TemplateView {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Subject template.
    subject: String,
    /// HTML part template.
    html: String,
    /// Plain-text part template.
    text: String,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds.
    updated_at: i64,
}

impl From<StoredTemplate> for TemplateView {
    fn from(t: StoredTemplate) -> Self {
        TemplateView {
            id: t.id,
            name: t.name,
            subject: t.subject,
            html: t.html,
            text: t.text,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// One merge tag.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MergeTagView {
    /// Write `{{ name }}` in a template.
    name: String,
    /// What it holds.
    description: String,
    /// A realistic value.
    example: String,
    /// What is shown when a contact has no value.
    fallback: String,
}

/// A template to render.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewTemplate {
    /// Subject template.
    subject: String,
    /// HTML template.
    html: String,
    /// Text template.
    text: String,
    /// Render for this contact; absent: the catalog's example values.
    contact_id: Option<String>,
}

/// A rendered message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RenderedView {
    /// Subject.
    subject: String,
    /// HTML part.
    html: String,
    /// Text part.
    text: String,
}

/// A test send.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestSend {
    /// A user of your organization to send to (default: you).
    to: Option<String>,
    /// Personalise for this contact; absent: the catalog's example values.
    contact_id: Option<String>,
}

/// What a test send did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TestSent {
    /// The address it went to.
    to: String,
    /// The mail server's id for it, when it gives one.
    provider_id: Option<String>,
}

fn manager(p: &Principal) -> Result<(), Problem> {
    p.require(Role::Manager)
}

fn reader(p: &Principal) -> Result<(), Problem> {
    p.require(Role::Agent)
}

fn check_template(req: &TemplateRequest) -> Result<(String, Template), Problem> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name: must be 1–100 characters without control characters",
        ));
    }
    let compiled = Template::compile(&req.subject, &req.html, &req.text)
        .map_err(|e| Problem::invalid(format!("template: {e}")))?;
    Ok((name.to_owned(), compiled))
}

/// The merge tags templates can use, with examples and fallbacks (agents and above).
#[utoipa::path(get, path = "/templates/tags", tag = "campaigns", security(("bearer" = [])),
    responses(
        (status = 200, description = "The catalog", body = [MergeTagView]),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn tags(principal: Principal) -> Result<Json<Vec<MergeTagView>>, Problem> {
    reader(&principal)?;
    Ok(Json(
        TAGS.iter()
            .map(|t| MergeTagView {
                name: t.name.to_owned(),
                description: t.description.to_owned(),
                example: t.example.to_owned(),
                fallback: t.fallback.to_owned(),
            })
            .collect(),
    ))
}

/// Saves a template (managers and above). It must compile, and use only catalog tags:
/// an unknown tag is a 422 naming it and its line.
#[utoipa::path(post, path = "/templates", tag = "campaigns", security(("bearer" = [])),
    request_body = TemplateRequest,
    responses(
        (status = 201, description = "Saved", body = TemplateView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "A template with this name exists", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_template(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<TemplateRequest>,
) -> Result<(StatusCode, Json<TemplateView>), Problem> {
    manager(&principal)?;
    let (name, _) = check_template(&req)?;
    let saved = principal
        .tenant(&state.store)
        .create_template(
            &name,
            &req.subject,
            &req.html,
            &req.text,
            &principal.user_id,
            unix_now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

/// Templates by name (agents and above).
#[utoipa::path(get, path = "/templates", tag = "campaigns", security(("bearer" = [])),
    responses(
        (status = 200, description = "Templates", body = [TemplateView]),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_templates(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<TemplateView>>, Problem> {
    reader(&principal)?;
    let all = principal.tenant(&state.store).templates().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// One template (agents and above).
#[utoipa::path(get, path = "/templates/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such template in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_template(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<TemplateView>, Problem> {
    reader(&principal)?;
    let t = principal
        .tenant(&state.store)
        .template(&id)
        .await?
        .ok_or_else(|| Problem::not_found("template"))?;
    Ok(Json(t.into()))
}

/// Replaces a template (managers and above). Campaigns already queued keep the messages
/// they rendered.
#[utoipa::path(put, path = "/templates/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    request_body = TemplateRequest,
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such template in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Another template has this name", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update_template(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<TemplateRequest>,
) -> Result<Json<TemplateView>, Problem> {
    manager(&principal)?;
    let (name, _) = check_template(&req)?;
    let t = principal
        .tenant(&state.store)
        .update_template(&id, &name, &req.subject, &req.html, &req.text, unix_now())
        .await?
        .ok_or_else(|| Problem::not_found("template"))?;
    Ok(Json(t.into()))
}

/// Deletes a template no campaign uses (managers and above).
#[utoipa::path(delete, path = "/templates/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such template in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "A campaign uses it", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_template(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    manager(&principal)?;
    if !principal.tenant(&state.store).delete_template(&id).await? {
        return Err(Problem::not_found("template"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn context(tenant: &Tenant<'_>, campaign_name: &str) -> Result<MergeContext, Problem> {
    let now = unix_now();
    let today = crate::contacts::date_of_day(now.div_euclid(86_400))
        .map(|d| {
            use chrono::Datelike;
            crate::merge::long_date(d.year(), d.month(), d.day())
        })
        .unwrap_or_default();
    Ok(MergeContext {
        org_name: tenant.organization().await?.name,
        branding: tenant.branding().await?,
        campaign_name: campaign_name.to_owned(),
        today,
    })
}

async fn render_preview(
    state: &AppState,
    tenant: &Tenant<'_>,
    template: &Template,
    contact_id: Option<&str>,
) -> Result<crate::merge::Rendered, Problem> {
    let values = match contact_id {
        Some(id) => {
            let contact = tenant
                .contact(id)
                .await?
                .ok_or_else(|| Problem::not_found("contact"))?;
            let ctx = context(tenant, "Preview").await?;
            let unsubscribe = state.tracker.unsubscribe_url("preview", &contact.id);
            merge_values(&contact, &ctx, &unsubscribe, unix_now().div_euclid(86_400))
        }
        None => MergeValues::examples(),
    };
    template
        .render(&values)
        .map_err(|e| Problem::invalid(format!("template: {e}")))
}

/// Renders a template for a contact, or with the catalog's examples (agents and above);
/// nothing is saved or sent.
#[utoipa::path(post, path = "/templates/preview", tag = "campaigns", security(("bearer" = [])),
    request_body = PreviewTemplate,
    responses(
        (status = 200, description = "The rendered parts", body = RenderedView),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such contact in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<PreviewTemplate>,
) -> Result<Json<RenderedView>, Problem> {
    reader(&principal)?;
    let template = Template::compile(&req.subject, &req.html, &req.text)
        .map_err(|e| Problem::invalid(format!("template: {e}")))?;
    let tenant = principal.tenant(&state.store);
    let r = render_preview(&state, &tenant, &template, req.contact_id.as_deref()).await?;
    Ok(Json(RenderedView {
        subject: r.subject,
        html: r.html,
        text: r.text,
    }))
}

/// Sends a template once, now, to a user of your organization (managers and above), with
/// `[TEST]` before the subject. Needs a configured mail transport.
#[utoipa::path(post, path = "/templates/{id}/test", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Template id")),
    request_body = TestSend,
    responses(
        (status = 200, description = "Sent", body = TestSent),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such template, contact or user in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 502, description = "The mail server refused it", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "This server has no mail transport configured", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn test_send(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<TestSend>,
) -> Result<Json<TestSent>, Problem> {
    manager(&principal)?;
    let tenant = principal.tenant(&state.store);
    let stored = tenant
        .template(&id)
        .await?
        .ok_or_else(|| Problem::not_found("template"))?;
    let to = match &req.to {
        Some(email) => {
            let email = email.trim().to_lowercase();
            tenant
                .user_by_email(&email)
                .await?
                .ok_or_else(|| Problem::not_found("user with that address"))?
                .email
        }
        None => {
            tenant
                .user(&principal.user_id)
                .await?
                .ok_or_else(|| Problem::not_found("user"))?
                .email
        }
    };
    let Some(sender) = state.campaign_sender.clone() else {
        return Err(Problem::conflict(
            "this server sends no mail: configure serve.campaigns.smtp_url, serve.notifications.smtp_url or serve.campaigns.sendgrid_api_key",
        ));
    };
    let template = Template::compile(&stored.subject, &stored.html, &stored.text)
        .map_err(|e| Problem::invalid(format!("template: {e}")))?;
    let r = render_preview(&state, &tenant, &template, req.contact_id.as_deref()).await?;
    let branding = tenant.branding().await?;
    let from = sender.from_for(&branding);
    let outgoing = Outgoing {
        message_id: format!(
            "<test.{}@{}>",
            crate::auth::secret::new_id("msg"),
            from.email.domain()
        ),
        from,
        reply_to: None,
        to: to.clone(),
        subject: format!("[TEST] {}", r.subject.replace(['\r', '\n'], " ")),
        text: r.text,
        html: r.html,
        unsubscribe: state.tracker.unsubscribe_url("test", "test"),
        campaign_id: "test".to_owned(),
        contact_id: "test".to_owned(),
    };
    match sender.send_now(&outgoing).await {
        Sent::Ok(provider_id) => Ok(Json(TestSent { to, provider_id })),
        Sent::Transient(e) | Sent::Permanent { error: e, .. } => Err(Problem::bad_gateway(e)),
    }
}

/// A campaign to create.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignRequest {
    /// Name (1–200 characters).
    name: String,
    /// The template.
    template_id: String,
    /// A saved segment as the audience…
    segment_id: Option<String>,
    /// …or a rule (exactly one of the two).
    rule: Option<String>,
    /// When to send (Unix seconds); absent keeps it a draft until `POST …/send`.
    scheduled_at: Option<i64>,
}

/// A campaign with its numbers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CampaignView {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Template.
    template_id: String,
    /// Saved segment, when the audience is one.
    segment_id: Option<String>,
    /// The audience rule.
    rule: String,
    /// `draft`, `scheduled`, `queuing`, `sending`, `sent`, `cancelled` or `failed`.
    status: String,
    /// Why it failed (its rule or template no longer compiles, a message cannot be
    /// rendered); its queued messages were dropped.
    failure: Option<String>,
    /// When it is to go.
    scheduled_at: Option<i64>,
    /// When queuing began.
    queued_at: Option<i64>,
    /// When the last message was settled.
    finished_at: Option<i64>,
    /// Its number in pipeline events (`campaign_id` of `email_*` events).
    pipeline_id: i64,
    /// Unix seconds.
    created_at: i64,
    /// Delivery, engagement and attributed alerts.
    stats: CampaignStatsView,
}

/// What a campaign did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CampaignStatsView {
    /// Messages queued.
    messages: i64,
    /// Waiting or being sent.
    pending: i64,
    /// Taken by the mail server.
    delivered: i64,
    /// Failed for good.
    failed: i64,
    /// Not sent: the contact left the list first.
    suppressed: i64,
    /// Contacts who opened.
    opened: i64,
    /// Contacts who clicked.
    clicked: i64,
    /// Contacts who unsubscribed from it.
    unsubscribed: i64,
    /// Bounces.
    bounced: i64,
    /// Spam complaints.
    complained: i64,
    /// Alerts raised for recipients within the attribution window after delivery.
    alerts: i64,
    /// Of those, converted.
    conversions: i64,
    /// Their recorded value.
    converted_value: f64,
    /// The attribution window, days.
    attribution_days: u32,
}

impl CampaignStatsView {
    pub(crate) fn new(s: crate::store::CampaignStats, attribution_days: u32) -> Self {
        CampaignStatsView {
            messages: s.messages,
            pending: s.pending,
            delivered: s.delivered,
            failed: s.failed,
            suppressed: s.suppressed,
            opened: s.opened,
            clicked: s.clicked,
            unsubscribed: s.unsubscribed,
            bounced: s.bounced,
            complained: s.complained,
            alerts: s.alerts,
            conversions: s.conversions,
            converted_value: s.converted_value,
            attribution_days,
        }
    }
}

async fn campaign_view(
    state: &AppState,
    tenant: &Tenant<'_>,
    c: Campaign,
) -> Result<CampaignView, Problem> {
    let days = state.config.campaigns.attribution_days;
    let s = tenant
        .campaign_stats(&c.id, i64::from(days) * 86_400)
        .await?;
    Ok(CampaignView {
        id: c.id,
        name: c.name,
        template_id: c.template_id,
        segment_id: c.segment_id,
        rule: c.rule,
        status: c.status.as_str().to_owned(),
        failure: c.failure,
        scheduled_at: c.scheduled_at,
        queued_at: c.queued_at,
        finished_at: c.finished_at,
        pipeline_id: c.lake_id,
        created_at: c.created_at,
        stats: CampaignStatsView::new(s, days),
    })
}

/// Creates a campaign (managers and above): a draft, or scheduled when it has a time.
/// Only subscribed contacts the audience matches when it is queued are mailed.
#[utoipa::path(post, path = "/campaigns", tag = "campaigns", security(("bearer" = [])),
    request_body = CampaignRequest,
    responses(
        (status = 201, description = "Created", body = CampaignView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such template or segment in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CampaignRequest>,
) -> Result<(StatusCode, Json<CampaignView>), Problem> {
    manager(&principal)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "name: must be 1–200 characters without control characters",
        ));
    }
    let tenant = principal.tenant(&state.store);
    tenant
        .template(&req.template_id)
        .await?
        .ok_or_else(|| Problem::not_found("template"))?;
    let rule = match (&req.segment_id, &req.rule) {
        (Some(id), None) => {
            tenant
                .segment(id)
                .await?
                .ok_or_else(|| Problem::not_found("segment"))?
                .rule
        }
        (None, Some(rule)) => rule.clone(),
        _ => return Err(Problem::invalid("give segment_id or rule (one of them)")),
    };
    super::contacts::compile(&tenant, &rule).await?;
    if let Some(at) = req.scheduled_at
        && !(0..=4_102_444_800).contains(&at)
    {
        return Err(Problem::invalid(
            "scheduled_at: must be a Unix time before 2100",
        ));
    }
    let made = tenant
        .create_campaign(
            &NewCampaign {
                name,
                template_id: &req.template_id,
                segment_id: req.segment_id.as_deref(),
                rule: &rule,
                scheduled_at: req.scheduled_at,
                created_by: &principal.user_id,
            },
            unix_now(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(campaign_view(&state, &tenant, made).await?),
    ))
}

/// Campaigns, newest first, with their numbers (agents and above).
#[utoipa::path(get, path = "/campaigns", tag = "campaigns", security(("bearer" = [])),
    responses(
        (status = 200, description = "Campaigns", body = [CampaignView]),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<CampaignView>>, Problem> {
    reader(&principal)?;
    let tenant = principal.tenant(&state.store);
    let mut out = Vec::new();
    for c in tenant.campaigns().await? {
        out.push(campaign_view(&state, &tenant, c).await?);
    }
    Ok(Json(out))
}

/// One campaign with its delivery, engagement and attributed alerts (agents and above).
#[utoipa::path(get, path = "/campaigns/{id}", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 403, description = "Needs the agent role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, Problem> {
    reader(&principal)?;
    let tenant = principal.tenant(&state.store);
    let c = tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    Ok(Json(campaign_view(&state, &tenant, c).await?))
}

/// When to send.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendRequest {
    /// Unix seconds; absent: now.
    at: Option<i64>,
}

/// Sends a draft or scheduled campaign now, or schedules it (managers and above). The
/// server's background sender renders and queues it, then sends.
#[utoipa::path(post, path = "/campaigns/{id}/send", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    request_body = SendRequest,
    responses(
        (status = 202, description = "Scheduled", body = CampaignView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Already queued, sent or cancelled", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn send(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(req): Json<SendRequest>,
) -> Result<(StatusCode, Json<CampaignView>), Problem> {
    manager(&principal)?;
    let now = unix_now();
    let at = req.at.unwrap_or(now);
    if !(0..=4_102_444_800).contains(&at) {
        return Err(Problem::invalid("at: must be a Unix time before 2100"));
    }
    let tenant = principal.tenant(&state.store);
    let c = tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    if !tenant.schedule_campaign(&id, at, now).await? {
        return Err(Problem::conflict(format!(
            "the campaign is {}; only a draft or scheduled campaign can be sent",
            c.status.as_str()
        )));
    }
    let c = tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(campaign_view(&state, &tenant, c).await?),
    ))
}

/// Cancels a campaign that has not finished (managers and above); messages not yet sent
/// are dropped.
#[utoipa::path(post, path = "/campaigns/{id}/cancel", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Campaign id")),
    responses(
        (status = 200, description = "Cancelled", body = CampaignView),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in your organization", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Already sent or cancelled", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, Problem> {
    manager(&principal)?;
    let tenant = principal.tenant(&state.store);
    let c = tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    if !tenant.cancel_campaign(&id, unix_now()).await? {
        return Err(Problem::conflict(format!(
            "the campaign is {}",
            c.status.as_str()
        )));
    }
    let c = tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    Ok(Json(campaign_view(&state, &tenant, c).await?))
}

/// Which messages.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageQuery {
    /// Only this status: `queued`, `sending`, `sent`, `failed` or `suppressed`.
    status: Option<String>,
    /// Messages after this contact id (the previous page's `next_after`).
    after: Option<String>,
    /// How many (1–500, default 100).
    limit: Option<i64>,
}

/// One message of a campaign.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MessageView {
    /// The contact.
    contact_id: String,
    /// Address.
    recipient: String,
    /// `queued` (waiting: first try, a retry or held back by a rate limit), `sending`,
    /// `sent`, `failed` or `suppressed` (the contact left the list first).
    status: String,
    /// Attempts made (a message held back by a rate limit has used none).
    attempts: i64,
    /// When it is due (Unix milliseconds), while queued.
    next_attempt_ms: Option<i64>,
    /// Why the last attempt failed, or why it waits.
    last_error: Option<String>,
    /// The mail server's id for it.
    provider_id: Option<String>,
    /// When it went, Unix seconds.
    sent_at: Option<i64>,
}

/// A page of messages.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MessagePage {
    /// In contact order.
    messages: Vec<MessageView>,
    /// Pass as `after` for the next page; null on the last.
    next_after: Option<String>,
}

/// A campaign's messages with their attempts and errors (managers and above).
#[utoipa::path(get, path = "/campaigns/{id}/messages", tag = "campaigns", security(("bearer" = [])),
    params(("id" = String, Path, description = "Campaign id"), MessageQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 403, description = "Needs the manager role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn messages(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> Result<Json<MessagePage>, Problem> {
    manager(&principal)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid("limit: must be between 1 and 500"));
    }
    if let Some(s) = &q.status
        && !["queued", "sending", "sent", "failed", "suppressed"].contains(&s.as_str())
    {
        return Err(Problem::invalid(
            "status: must be queued, sending, sent, failed or suppressed",
        ));
    }
    let tenant = principal.tenant(&state.store);
    tenant
        .campaign(&id)
        .await?
        .ok_or_else(|| Problem::not_found("campaign"))?;
    let rows = tenant
        .campaign_messages(
            &id,
            q.status.as_deref(),
            q.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|m| m.contact_id.clone()))
        .flatten();
    Ok(Json(MessagePage {
        messages: rows
            .into_iter()
            .map(|m| MessageView {
                next_attempt_ms: (m.status == "queued").then_some(m.next_attempt_ms),
                contact_id: m.contact_id,
                recipient: m.recipient,
                status: m.status,
                attempts: m.attempts,
                last_error: m.last_error,
                provider_id: m.provider_id,
                sent_at: m.sent_at,
            })
            .collect(),
        next_after,
    }))
}

/// The 1×1 transparent GIF of the open pixel.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

async fn tracked(
    state: &AppState,
    kind: LinkKind,
    campaign: &str,
    contact: &str,
    url: &str,
    sig: &str,
) -> Result<crate::store::TrackedMessage, Problem> {
    if !state.tracker.verify(kind, campaign, contact, url, sig) {
        return Err(Problem::not_found(
            "link (it is not one this server signed)",
        ));
    }
    state
        .store
        .tracked_message(campaign, contact)
        .await?
        .ok_or_else(|| Problem::not_found("message"))
}

fn engagement(state: &AppState, m: &crate::store::TrackedMessage, event_type: &str) {
    let id = crate::campaigns::EventLog::new_event_id();
    state
        .engagement_log
        .append(m, event_type, id, crate::unix_now_ms());
}

/// The open pixel: records an open and appends an `email_opened` event.
#[utoipa::path(get, path = "/t/o/{campaign}/{contact}/{sig}", tag = "tracking",
    params(
        ("campaign" = String, Path, description = "Campaign id"),
        ("contact" = String, Path, description = "Contact id"),
        ("sig" = String, Path, description = "The link's signature"),
    ),
    responses(
        (status = 200, description = "A 1×1 GIF", content_type = "image/gif"),
        (status = 404, description = "Not a link this server signed", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn open(
    State(state): State<AppState>,
    Path((campaign, contact, sig)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let m = tracked(&state, LinkKind::Open, &campaign, &contact, "", &sig).await?;
    state
        .store
        .record_engagement(&m, "opened", None, "", unix_now())
        .await?;
    engagement(&state, &m, "email_opened");
    let mut response = PIXEL.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    Ok(response)
}

/// The link target.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct ClickQuery {
    /// The original URL.
    u: String,
}

/// A click redirect: records the click, appends an `email_clicked` event and redirects to
/// the original link (only to the URL the signature covers).
#[utoipa::path(get, path = "/t/c/{campaign}/{contact}/{sig}", tag = "tracking",
    params(
        ("campaign" = String, Path, description = "Campaign id"),
        ("contact" = String, Path, description = "Contact id"),
        ("sig" = String, Path, description = "The link's signature"),
        ClickQuery,
    ),
    responses(
        (status = 302, description = "To the original link"),
        (status = 404, description = "Not a link this server signed", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn click(
    State(state): State<AppState>,
    Path((campaign, contact, sig)): Path<(String, String, String)>,
    Query(q): Query<ClickQuery>,
) -> Result<Response, Problem> {
    let m = tracked(&state, LinkKind::Click, &campaign, &contact, &q.u, &sig).await?;
    let target = HeaderValue::from_str(&q.u).map_err(|_| Problem::not_found("link"))?;
    state
        .store
        .record_engagement(&m, "clicked", Some(&q.u), "", unix_now())
        .await?;
    engagement(&state, &m, "email_clicked");
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, target);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, private"),
    );
    Ok(response)
}

fn page(title: &str, body: &str) -> Html<String> {
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:3em auto\">{body}</body></html>",
        esc(title)
    ))
}

/// The unsubscribe page a recipient reaches from a message: their address and a button
/// that unsubscribes them.
#[utoipa::path(get, path = "/u/{campaign}/{contact}/{sig}", tag = "tracking",
    params(
        ("campaign" = String, Path, description = "Campaign id"),
        ("contact" = String, Path, description = "Contact id"),
        ("sig" = String, Path, description = "The link's signature"),
    ),
    responses(
        (status = 200, description = "The page", content_type = "text/html"),
        (status = 404, description = "Not a link this server signed", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn unsubscribe_page(
    State(state): State<AppState>,
    Path((campaign, contact, sig)): Path<(String, String, String)>,
) -> Result<Html<String>, Problem> {
    let m = tracked(&state, LinkKind::Unsubscribe, &campaign, &contact, "", &sig).await?;
    let email = m.email.replace('&', "&amp;").replace('<', "&lt;");
    Ok(if m.consent == "subscribed" {
        page(
            "Unsubscribe",
            &format!(
                "<h1>Unsubscribe</h1><p>Stop e-mail to <b>{email}</b>?</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>"
            ),
        )
    } else {
        page(
            "Unsubscribed",
            &format!(
                "<h1>You are unsubscribed</h1><p><b>{email}</b> gets no more of these e-mails.</p>"
            ),
        )
    })
}

/// Unsubscribes the recipient: the RFC 8058 one-click POST mail clients send
/// (`List-Unsubscribe=One-Click`), and the page's button. Idempotent.
#[utoipa::path(post, path = "/u/{campaign}/{contact}/{sig}", tag = "tracking",
    params(
        ("campaign" = String, Path, description = "Campaign id"),
        ("contact" = String, Path, description = "Contact id"),
        ("sig" = String, Path, description = "The link's signature"),
    ),
    responses(
        (status = 200, description = "Unsubscribed", content_type = "text/html"),
        (status = 404, description = "Not a link this server signed", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn unsubscribe(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((campaign, contact, sig)): Path<(String, String, String)>,
) -> Result<Html<String>, Problem> {
    let m = tracked(&state, LinkKind::Unsubscribe, &campaign, &contact, "", &sig).await?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(100)
        .collect::<String>();
    if m.consent == "subscribed" {
        state
            .store
            .record_engagement(
                &m,
                "unsubscribed",
                None,
                &format!("unsubscribed from campaign {campaign} (one-click; {agent})"),
                unix_now(),
            )
            .await?;
    }
    let email = m.email.replace('&', "&amp;").replace('<', "&lt;");
    Ok(page(
        "Unsubscribed",
        &format!(
            "<h1>You are unsubscribed</h1><p><b>{email}</b> gets no more of these e-mails.</p>"
        ),
    ))
}

/// A bounce or complaint reported by the mail provider.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailEvent {
    /// `bounced` or `complained`.
    kind: String,
    /// The campaign (from the message's `custom_args` or `Message-ID`).
    campaign_id: String,
    /// The contact.
    contact_id: String,
    /// What the provider said.
    detail: Option<String>,
}

/// What a batch of provider events did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ProviderEventsResult {
    /// Events recorded.
    recorded: u64,
    /// Events not about a campaign message of this server, or of a kind not kept
    /// (`processed`, `deferred`, `delivered`), or already recorded.
    skipped: u64,
}

/// SendGrid's signed Event Webhook: bounces (`bounce`, `dropped`), spam reports,
/// unsubscribes, opens and clicks of campaign messages, identified by the `campaign_id`
/// and `contact_id` custom arguments every message carries. The request must carry
/// SendGrid's ECDSA signature (`X-Twilio-Email-Event-Webhook-Signature` and `…-Timestamp`),
/// checked with `[serve.campaigns] sendgrid_webhook_key`.
#[utoipa::path(post, path = "/campaigns/sendgrid-events", tag = "tracking",
    request_body(content = String, content_type = "application/json", description = "SendGrid's array of events"),
    responses(
        (status = 200, description = "Recorded", body = ProviderEventsResult),
        (status = 403, description = "Not signed by SendGrid's key", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "The webhook is not configured", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn sendgrid_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<ProviderEventsResult>, Problem> {
    let Some(point) = state
        .config
        .campaigns
        .sendgrid_webhook_key
        .as_deref()
        .and_then(crate::campaigns::webhook_point)
    else {
        return Err(Problem::not_found(
            "SendGrid event webhook (not configured)",
        ));
    };
    let body = body?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    crate::campaigns::verify_sendgrid(
        &point,
        &header("x-twilio-email-event-webhook-signature"),
        &header("x-twilio-email-event-webhook-timestamp"),
        &body,
        unix_now(),
    )
    .map_err(|e| Problem::forbidden(format!("SendGrid event webhook: {e}")))?;
    let events: Vec<serde_json::Value> = serde_json::from_slice(&body)
        .map_err(|e| Problem::invalid(format!("body: not an array of SendGrid events: {e}")))?;
    let mut result = ProviderEventsResult {
        recorded: 0,
        skipped: 0,
    };
    for e in &events {
        let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let kind = match text("event") {
            "bounce" | "dropped" => "bounced",
            "spamreport" => "complained",
            "unsubscribe" | "group_unsubscribe" => "unsubscribed",
            "open" => "opened",
            "click" => "clicked",
            _ => {
                result.skipped += 1;
                continue;
            }
        };
        let Some(m) = state
            .store
            .tracked_message(text("campaign_id"), text("contact_id"))
            .await?
        else {
            result.skipped += 1;
            continue;
        };
        let reason = [text("reason"), text("status"), text("type")]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let detail = format!("SendGrid {}: {reason}", text("event"))
            .chars()
            .take(500)
            .collect::<String>();
        let url = (kind == "clicked")
            .then(|| text("url"))
            .filter(|u| !u.is_empty());
        if state
            .store
            .record_engagement(&m, kind, url, detail.trim_end_matches(": "), unix_now())
            .await?
        {
            result.recorded += 1;
            match kind {
                "opened" => engagement(&state, &m, "email_opened"),
                "clicked" => engagement(&state, &m, "email_clicked"),
                _ => {}
            }
        } else {
            result.skipped += 1;
        }
    }
    Ok(Json(result))
}

/// What a mail event did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MailEventResult {
    /// False when it was already recorded.
    recorded: bool,
}

/// Records a bounce or complaint for a sent message and takes the contact off the list
/// (admins and above, or an API key with `campaigns:write`: the provider's webhook relay).
#[utoipa::path(post, path = "/campaigns/mail-events", tag = "campaigns", security(("bearer" = [])),
    request_body = MailEvent,
    responses(
        (status = 200, description = "Recorded", body = MailEventResult),
        (status = 403, description = "Needs the admin role", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such message in your organization", body = ProblemBody, content_type = "application/problem+json"),
    ))]
pub(crate) async fn mail_event(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<MailEvent>,
) -> Result<Json<MailEventResult>, Problem> {
    principal.require(Role::Admin)?;
    if !matches!(req.kind.as_str(), "bounced" | "complained") {
        return Err(Problem::invalid("kind: must be bounced or complained"));
    }
    let m = state
        .store
        .tracked_message(&req.campaign_id, &req.contact_id)
        .await?
        .filter(|m| m.org_id == principal.org_id)
        .ok_or_else(|| Problem::not_found("message"))?;
    let detail = req
        .detail
        .as_deref()
        .unwrap_or("reported by the mail provider")
        .chars()
        .take(500)
        .collect::<String>();
    let recorded = state
        .store
        .record_engagement(&m, &req.kind, None, &detail, unix_now())
        .await?;
    Ok(Json(MailEventResult { recorded }))
}
