//! The business entities: who the clients are, what they own and who serves them.

use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::IntentKind;
use crate::ids::{
    AgentId, ContactId, LoanId, MetroId, OrgId, PropertyId, RecordId, SaleId, TerritoryId,
};
use crate::table::{str_enum, table};
use crate::{Error, Result};

/// Fails with [`Error::InvalidValue`] naming `table.field` and the value unless `ok`.
pub(crate) fn ensure(
    ok: bool,
    table: &'static str,
    field: &'static str,
    value: impl std::fmt::Display,
    reason: &str,
) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            table,
            field,
            value: value.to_string(),
            reason: reason.into(),
        })
    }
}

str_enum! {
    /// What kind of business a tenant is.
    pub enum OrgKind ("organization kind") {
        /// A title company: closes transactions and keeps the clients' documents.
        TitleCompany = "title_company",
        /// A real-estate brokerage.
        Brokerage = "brokerage",
    }
}

table! {
    /// A tenant.
    pub struct Organization in "organizations" {
        /// Id.
        pub org_id: OrgId,
        /// Display name.
        pub name: String,
        /// Title company or brokerage.
        pub kind: OrgKind,
        /// Whether its users must enrol a second factor.
        pub mfa_required: bool,
    }
}

table! {
    /// A named set of zip codes covered by an agent.
    pub struct Territory in "territories" {
        /// Id.
        pub territory_id: TerritoryId,
        /// Owning organization.
        pub org_id: OrgId,
        /// Display name.
        pub name: String,
        /// Five-digit zip codes.
        pub zips: Vec<String>,
    }
}

table! {
    /// An agent who receives alerts.
    pub struct Agent in "agents" {
        /// Id.
        pub agent_id: AgentId,
        /// Employer.
        pub org_id: OrgId,
        /// Full name.
        pub name: String,
        /// Work e-mail.
        pub email: String,
        /// Territory, if the agent has one.
        pub territory_id: Option<TerritoryId>,
        /// Alert kinds the agent handles.
        pub skills: Vec<IntentKind>,
        /// Maximum open alerts at a time.
        pub capacity: i32,
        /// Historical share of alerts converted, in [0, 1].
        pub conversion_rate: f64,
        /// Deals closed to date.
        pub closed_deals: i32,
    }
}

impl Agent {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        ensure(
            self.capacity > 0,
            "agents",
            "capacity",
            self.capacity,
            "must be positive",
        )?;
        ensure(
            (0.0..=1.0).contains(&self.conversion_rate),
            "agents",
            "conversion_rate",
            self.conversion_rate,
            "must be within [0, 1]",
        )?;
        ensure(
            self.email.contains('@'),
            "agents",
            "email",
            &self.email,
            "not an e-mail address",
        )
    }
}

table! {
    /// A homeowner: a closed client of an organization.
    pub struct Contact in "contacts" {
        /// Id.
        pub contact_id: ContactId,
        /// The organization that closed their purchase.
        pub org_id: OrgId,
        /// First name.
        pub first_name: String,
        /// Last name.
        pub last_name: String,
        /// E-mail address.
        pub email: String,
        /// The home they own.
        pub property_id: PropertyId,
        /// Agent of record (relationship routing).
        pub agent_id: Option<AgentId>,
        /// Date their purchase of the home closed.
        pub closed_on: NaiveDate,
        /// Whether they agreed to marketing e-mail.
        pub email_opt_in: bool,
    }
}

impl Contact {
    /// Checks the e-mail address shape.
    pub fn validate(&self) -> Result<()> {
        ensure(
            self.email.contains('@'),
            "contacts",
            "email",
            &self.email,
            "not an e-mail address",
        )
    }
}

str_enum! {
    /// Kind of dwelling.
    pub enum PropertyType ("property type") {
        /// Detached house.
        SingleFamily = "single_family",
        /// Attached house.
        Townhouse = "townhouse",
        /// Apartment in a condominium.
        Condo = "condo",
        /// Two to four units.
        MultiFamily = "multi_family",
    }
}

table! {
    /// A property's attributes as one clean row.
    pub struct Property in "properties" {
        /// Id.
        pub property_id: PropertyId,
        /// County parcel number.
        pub parcel_id: String,
        /// Street address, e.g. `123 Oak St`.
        pub address: String,
        /// City.
        pub city: String,
        /// Two-letter state.
        pub state: String,
        /// Five-digit zip code.
        pub zip: String,
        /// Metro area.
        pub metro_id: MetroId,
        /// Latitude (WGS 84).
        pub lat: f64,
        /// Longitude (WGS 84).
        pub lon: f64,
        /// Kind of dwelling.
        pub property_type: PropertyType,
        /// Finished living area, square feet.
        pub sqft: i32,
        /// Bedrooms.
        pub beds: i32,
        /// Bathrooms (half baths count 0.5).
        pub baths: f64,
        /// Lot area, square feet.
        pub lot_sqft: i32,
        /// Year built.
        pub year_built: i32,
        /// Condition, 1 (poor) to 5 (excellent).
        pub condition: i32,
    }
}

table! {
    /// ROI's property register: the parcel each property id stands for. Sales, loans and
    /// closings name properties by id; the county roll and most sources name them by
    /// parcel, so this is the key the property master matches records on.
    pub struct Parcel in "parcels" {
        /// Id.
        pub property_id: PropertyId,
        /// County parcel number (`MM-ZZZZZ-NNNNNNN`: metro, zip, sequence).
        pub parcel_id: String,
    }
}

impl Property {
    /// Checks ranges and formats.
    pub fn validate(&self) -> Result<()> {
        let t = "properties";
        ensure(
            (-90.0..=90.0).contains(&self.lat),
            t,
            "lat",
            self.lat,
            "must be within [-90, 90]",
        )?;
        ensure(
            (-180.0..=180.0).contains(&self.lon),
            t,
            "lon",
            self.lon,
            "must be within [-180, 180]",
        )?;
        ensure(
            is_zip(&self.zip),
            t,
            "zip",
            &self.zip,
            "must be five digits",
        )?;
        ensure(self.sqft > 0, t, "sqft", self.sqft, "must be positive")?;
        ensure(self.beds >= 0, t, "beds", self.beds, "must not be negative")?;
        ensure(
            self.baths >= 0.0,
            t,
            "baths",
            self.baths,
            "must not be negative",
        )?;
        ensure(
            (1600..=2100).contains(&self.year_built),
            t,
            "year_built",
            self.year_built,
            "must be within 1600..=2100",
        )?;
        ensure(
            (1..=5).contains(&self.condition),
            t,
            "condition",
            self.condition,
            "must be within 1..=5",
        )
    }
}

/// Whether `s` is a five-digit zip code.
pub fn is_zip(s: &str) -> bool {
    s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())
}

table! {
    /// A recorded sale.
    pub struct Sale in "sales" {
        /// Id.
        pub sale_id: SaleId,
        /// Property sold.
        pub property_id: PropertyId,
        /// Closing date.
        pub sold_on: NaiveDate,
        /// Price in dollars.
        pub price: f64,
        /// Days the listing was on the market, when it was listed.
        pub days_on_market: Option<i32>,
        /// Seller, when a client.
        pub seller_contact_id: Option<ContactId>,
        /// Buyer, when a client.
        pub buyer_contact_id: Option<ContactId>,
    }
}

impl Sale {
    /// Checks the price.
    pub fn validate(&self) -> Result<()> {
        ensure(
            self.price.is_finite() && self.price > 0.0,
            "sales",
            "price",
            self.price,
            "must be positive",
        )
    }
}

str_enum! {
    /// Why a loan was taken.
    pub enum LoanPurpose ("loan purpose") {
        /// Financing a purchase.
        Purchase = "purchase",
        /// Replacing an earlier loan.
        Refinance = "refinance",
    }
}

table! {
    /// A fixed-rate mortgage.
    pub struct Loan in "loans" {
        /// Id.
        pub loan_id: LoanId,
        /// Property securing the loan.
        pub property_id: PropertyId,
        /// Borrower, when a client.
        pub contact_id: Option<ContactId>,
        /// Purchase or refinance.
        pub purpose: LoanPurpose,
        /// Origination date.
        pub originated_on: NaiveDate,
        /// Principal at origination, dollars.
        pub amount: f64,
        /// Annual interest rate, percent (e.g. 6.25).
        pub rate_pct: f64,
        /// Term in months.
        pub term_months: i32,
        /// Date the loan was repaid (sale or refinance), if it was.
        pub closed_on: Option<NaiveDate>,
    }
}

impl Loan {
    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        ensure(
            self.amount > 0.0,
            "loans",
            "amount",
            self.amount,
            "must be positive",
        )?;
        ensure(
            (0.0..=30.0).contains(&self.rate_pct),
            "loans",
            "rate_pct",
            self.rate_pct,
            "must be within [0, 30]",
        )?;
        ensure(
            self.term_months > 0,
            "loans",
            "term_months",
            self.term_months,
            "must be positive",
        )
    }

    /// Monthly payment of the fully amortising loan.
    pub fn monthly_payment(&self) -> f64 {
        let r = self.rate_pct / 1200.0;
        let n = f64::from(self.term_months);
        if r == 0.0 {
            self.amount / n
        } else {
            self.amount * r / (1.0 - (1.0 + r).powf(-n))
        }
    }

    /// Outstanding principal after `months_paid` scheduled payments (0 once repaid).
    pub fn balance_after(&self, months_paid: i32) -> f64 {
        let k = f64::from(months_paid.clamp(0, self.term_months));
        let r = self.rate_pct / 1200.0;
        if r == 0.0 {
            return self.amount * (1.0 - k / f64::from(self.term_months));
        }
        let growth = (1.0 + r).powf(k);
        (self.amount * growth - self.monthly_payment() * (growth - 1.0) / r).max(0.0)
    }
}

str_enum! {
    /// Where a property record came from.
    pub enum RecordSource ("record source") {
        /// County assessor roll: has the parcel id; attributes can be years stale.
        Assessor = "assessor",
        /// MLS listing: fresh at listing time, formatted by agents, sometimes generous.
        Mls = "mls",
        /// Entered by the homeowner: current but informal, often partial.
        Owner = "owner",
    }
}

table! {
    /// A property as one source describes it. Sources disagree, go stale and leave fields
    /// empty; the property master job reconciles them.
    pub struct PropertyRecord in "property_records" {
        /// Id of this record.
        pub record_id: RecordId,
        /// Which source delivered it.
        pub source: RecordSource,
        /// The source's own key (assessor account, MLS number, owner profile id).
        pub source_key: String,
        /// When the source last observed the property.
        pub observed_at: DateTime<Utc>,
        /// County parcel number, when the source carries it.
        pub parcel_id: Option<String>,
        /// Street address as the source wrote it.
        pub address: Option<String>,
        /// City as written.
        pub city: Option<String>,
        /// State as written.
        pub state: Option<String>,
        /// Zip code as written.
        pub zip: Option<String>,
        /// Latitude.
        pub lat: Option<f64>,
        /// Longitude.
        pub lon: Option<f64>,
        /// Kind of dwelling.
        pub property_type: Option<PropertyType>,
        /// Living area, square feet.
        pub sqft: Option<i32>,
        /// Bedrooms.
        pub beds: Option<i32>,
        /// Bathrooms.
        pub baths: Option<f64>,
        /// Lot area, square feet.
        pub lot_sqft: Option<i32>,
        /// Year built.
        pub year_built: Option<i32>,
        /// Condition 1–5.
        pub condition: Option<i32>,
        /// The source's value figure: assessed value, list price or owner's estimate.
        pub value_estimate: Option<f64>,
        /// Days on market (MLS only).
        pub days_on_market: Option<i32>,
        /// The homeowner who entered it (owner source only).
        pub contact_id: Option<ContactId>,
    }
}

impl PropertyRecord {
    /// A record that says nothing yet about its property: every optional field empty.
    pub fn blank(
        record_id: RecordId,
        source: RecordSource,
        source_key: String,
        observed_at: DateTime<Utc>,
    ) -> PropertyRecord {
        PropertyRecord {
            record_id,
            source,
            source_key,
            observed_at,
            parcel_id: None,
            address: None,
            city: None,
            state: None,
            zip: None,
            lat: None,
            lon: None,
            property_type: None,
            sqft: None,
            beds: None,
            baths: None,
            lot_sqft: None,
            year_built: None,
            condition: None,
            value_estimate: None,
            days_on_market: None,
            contact_id: None,
        }
    }

    /// Checks that values present are in range (absent values are allowed).
    pub fn validate(&self) -> Result<()> {
        let t = "property_records";
        if let Some(v) = self.sqft {
            ensure(v > 0, t, "sqft", v, "must be positive")?;
        }
        if let Some(v) = self.lat {
            ensure(
                (-90.0..=90.0).contains(&v),
                t,
                "lat",
                v,
                "must be within [-90, 90]",
            )?;
        }
        if let Some(v) = self.lon {
            ensure(
                (-180.0..=180.0).contains(&v),
                t,
                "lon",
                v,
                "must be within [-180, 180]",
            )?;
        }
        if let Some(v) = self.value_estimate {
            ensure(
                v.is_finite() && v > 0.0,
                t,
                "value_estimate",
                v,
                "must be positive",
            )?;
        }
        if let Some(v) = self.condition {
            ensure(
                (1..=5).contains(&v),
                t,
                "condition",
                v,
                "must be within 1..=5",
            )?;
        }
        Ok(())
    }
}
