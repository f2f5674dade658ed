//! Alerts: what the streaming job tells an agent.

use chrono::{DateTime, Utc};

use crate::ids::{AgentId, ContactId, OrgId, PropertyId};
use crate::table::{str_enum, table};

str_enum! {
    /// What a homeowner is likely to do; one propensity model per kind.
    pub enum IntentKind ("intent kind") {
        /// Sell their home.
        Sell = "sell",
        /// Buy a home.
        Buy = "buy",
        /// Refinance their mortgage.
        Refinance = "refinance",
        /// Buy an investment property.
        Investment = "investment",
    }
}

str_enum! {
    /// Life cycle of an alert.
    pub enum AlertStatus ("alert status") {
        /// Just created.
        New = "new",
        /// Routed to an agent.
        Assigned = "assigned",
        /// The agent reached the homeowner.
        Contacted = "contacted",
        /// Became business.
        Converted = "converted",
        /// Judged not worth pursuing.
        Dismissed = "dismissed",
        /// Timed out.
        Expired = "expired",
    }
}

table! {
    /// An explained alert about one homeowner.
    pub struct Alert in "alerts" {
        /// Deterministic id (same inputs, same id), so sinks can be idempotent.
        pub alert_id: String,
        /// Tenant.
        pub org_id: OrgId,
        /// Homeowner.
        pub contact_id: ContactId,
        /// Their home.
        pub property_id: Option<PropertyId>,
        /// What they are likely to do.
        pub kind: IntentKind,
        /// Calibrated probability of the outcome within 90 days.
        pub score: f64,
        /// Confidence in the score, in [0, 1].
        pub confidence: f64,
        /// Top reasons, most important first, in plain words.
        pub reasons: Vec<String>,
        /// Model version that scored it.
        pub model_version: String,
        /// Event time at which it was raised.
        pub created_at: DateTime<Utc>,
        /// Life-cycle status.
        pub status: AlertStatus,
        /// Agent it is assigned to.
        pub assignee: Option<AgentId>,
    }
}

table! {
    /// What became of an alert once an agent had it: the label that flows back from the
    /// store to the lake (`alerts.outcomes`), beside the score the model gave.
    pub struct AlertOutcome in "alert_outcomes" {
        /// The alert.
        pub alert_id: String,
        /// Tenant (the pipeline's organization id).
        pub org_id: OrgId,
        /// Homeowner.
        pub contact_id: ContactId,
        /// Their home.
        pub property_id: Option<PropertyId>,
        /// What the alert predicted.
        pub kind: IntentKind,
        /// The score it was raised with.
        pub score: f64,
        /// Model version that scored it.
        pub model_version: String,
        /// When it was raised.
        pub raised_at: DateTime<Utc>,
        /// Where it is now.
        pub status: AlertStatus,
        /// Whether it became business (the label).
        pub converted: bool,
        /// Whether it is closed (converted, dismissed or expired).
        pub closed: bool,
        /// The deal's value, when converted.
        pub outcome_value: Option<f64>,
        /// When it was first given to an agent.
        pub assigned_at: Option<DateTime<Utc>>,
        /// When the agent first reached the homeowner.
        pub contacted_at: Option<DateTime<Utc>>,
        /// When it was closed.
        pub closed_at: Option<DateTime<Utc>>,
    }
}

impl Alert {
    /// Checks that score and confidence are probabilities.
    pub fn validate(&self) -> crate::Result<()> {
        crate::entity::ensure(
            (0.0..=1.0).contains(&self.score),
            "alerts",
            "score",
            self.score,
            "must be within [0, 1]",
        )?;
        crate::entity::ensure(
            (0.0..=1.0).contains(&self.confidence),
            "alerts",
            "confidence",
            self.confidence,
            "must be within [0, 1]",
        )
    }
}
