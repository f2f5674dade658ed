//! Tables the batch jobs build in the lake's `curated/` zone.
//!
//! The property master reconciles the three property-record sources into one row per
//! property, with the provenance of every field and a data-quality report beside it.

use chrono::{DateTime, NaiveDate, Utc};

use crate::entity::{PropertyType, RecordSource};
use crate::ids::{MetroId, PropertyId, RecordId};
use crate::table::{str_enum, table};

table! {
    /// One property as the property master reconciles it from every source. Attributes
    /// no source supplies stay null (and are listed in `property_quality`).
    pub struct PropertyMaster in "property_master" {
        /// Id from the property register.
        pub property_id: PropertyId,
        /// County parcel number as the register writes it.
        pub parcel_id: String,
        /// Normalised street address, e.g. `123 OAK ST UNIT 5`.
        pub address: Option<String>,
        /// City, upper case.
        pub city: Option<String>,
        /// Two-letter state.
        pub state: Option<String>,
        /// Five-digit zip code.
        pub zip: Option<String>,
        /// Metro of the zip.
        pub metro_id: Option<MetroId>,
        /// Latitude (WGS 84).
        pub lat: Option<f64>,
        /// Longitude (WGS 84).
        pub lon: Option<f64>,
        /// Kind of dwelling.
        pub property_type: Option<PropertyType>,
        /// Finished living area, square feet.
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
        /// Source records merged into this row.
        pub record_count: i32,
        /// Sources that describe the property.
        pub sources: Vec<RecordSource>,
        /// Newest observation among the merged records.
        pub last_observed_at: Option<DateTime<Utc>>,
    }
}

impl PropertyMaster {
    /// A property known only by its id and parcel: every attribute unknown, no record.
    pub fn unknown(property_id: PropertyId, parcel_id: String) -> PropertyMaster {
        PropertyMaster {
            property_id,
            parcel_id,
            address: None,
            city: None,
            state: None,
            zip: None,
            metro_id: None,
            lat: None,
            lon: None,
            property_type: None,
            sqft: None,
            beds: None,
            baths: None,
            lot_sqft: None,
            year_built: None,
            condition: None,
            record_count: 0,
            sources: Vec::new(),
            last_observed_at: None,
        }
    }
}

table! {
    /// Which source won one field of one property, and when that source observed it.
    pub struct FieldProvenance in "property_provenance" {
        /// Property.
        pub property_id: PropertyId,
        /// Field of `property_master`.
        pub field: String,
        /// Winning source.
        pub source: RecordSource,
        /// Winning record.
        pub record_id: RecordId,
        /// When the winning source observed the value.
        pub observed_at: DateTime<Utc>,
        /// Why it won (the precedence rule that applied).
        pub rule: String,
    }
}

str_enum! {
    /// How a source record was matched to a property.
    pub enum MatchRule ("match rule") {
        /// Same parcel number after canonicalisation.
        Parcel = "parcel",
        /// Same normalised address and zip (or city) as a record already matched.
        Address = "address",
        /// Entered by a homeowner whose closing names the property.
        Contact = "contact",
        /// No rule matched.
        Unmatched = "unmatched",
    }
}

table! {
    /// The match decision for every source record.
    pub struct RecordMatch in "property_record_matches" {
        /// Source record.
        pub record_id: RecordId,
        /// Its source.
        pub source: RecordSource,
        /// Property it was matched to (null when unmatched).
        pub property_id: Option<PropertyId>,
        /// The rule that decided.
        pub rule: MatchRule,
    }
}

str_enum! {
    /// What a data-quality finding is about.
    pub enum QualityKind ("quality kind") {
        /// Sources disagree on a field beyond its tolerance.
        Conflict = "conflict",
        /// No source supplies the field.
        Missing = "missing",
        /// A record matched no property.
        Unmatched = "unmatched",
        /// A value is impossible (negative area, coordinates out of range…) and was ignored.
        Invalid = "invalid",
        /// A record or sale appears more than once; one copy was kept.
        Duplicate = "duplicate",
    }
}

table! {
    /// One data-quality finding of the property master.
    pub struct QualityIssue in "property_quality" {
        /// Kind of finding.
        pub kind: QualityKind,
        /// Property concerned (null for unmatched records).
        pub property_id: Option<PropertyId>,
        /// Record concerned (unmatched records; the losing record of a conflict).
        pub record_id: Option<RecordId>,
        /// Field concerned (conflicts, missing fields).
        pub field: Option<String>,
        /// Human explanation naming the values, e.g. `sqft: mls 2150 vs assessor 1800`.
        pub detail: String,
    }
}

str_enum! {
    /// The kind of area a market statistic describes.
    pub enum AreaKind ("area kind") {
        /// A zip code.
        Zip = "zip",
        /// An H3 cell (resolution in `market_stats` docs).
        H3 = "h3",
        /// A city (real data without coordinates, e.g. `txhousing`).
        City = "city",
    }
}

table! {
    /// Monthly market statistics of one area (zip, H3 cell or city).
    pub struct MarketStat in "market_stats" {
        /// Kind of area.
        pub area_kind: AreaKind,
        /// Zip code, H3 cell index (hex) or city name.
        pub area: String,
        /// First day of the month.
        pub month: NaiveDate,
        /// Sales closed in the month.
        pub sales: i32,
        /// Median sale price in the month.
        pub median_price: Option<f64>,
        /// Median price per square foot in the month.
        pub median_price_per_sqft: Option<f64>,
        /// Median days on market of the month's listed sales.
        pub median_days_on_market: Option<f64>,
        /// Sales in the 12 months ending with this one.
        pub sales_12m: i32,
        /// Median sale price over those 12 months.
        pub median_price_12m: Option<f64>,
        /// `median_price_12m` against the same figure a year earlier, minus 1.
        pub yoy_appreciation: Option<f64>,
        /// Properties in the area (null where unknown, e.g. city data).
        pub properties: Option<i32>,
        /// `sales_12m / properties`: the share of homes that sold in 12 months.
        pub turnover_12m: Option<f64>,
    }
}

table! {
    /// A property's comparable sales within 0.5 miles over a look-back window.
    pub struct Comparables in "comparables" {
        /// Property valued.
        pub property_id: PropertyId,
        /// Date the look-back ends.
        pub as_of: NaiveDate,
        /// Look-back, months (6 or 12).
        pub window_months: i32,
        /// Sales of other properties within the radius and window.
        pub count: i32,
        /// Median price of those sales.
        pub median_price: Option<f64>,
        /// Median price per square foot.
        pub median_price_per_sqft: Option<f64>,
        /// Median distance to them, miles.
        pub median_distance_mi: Option<f64>,
        /// Distance to the nearest, miles.
        pub nearest_mi: Option<f64>,
        /// Their sale ids, nearest first.
        pub sale_ids: Vec<i64>,
    }
}

table! {
    /// A property's estimated market value with its prediction interval.
    pub struct PropertyValuation in "valuations" {
        /// Property valued.
        pub property_id: PropertyId,
        /// Valuation date.
        pub as_of: NaiveDate,
        /// Point estimate, dollars.
        pub value: f64,
        /// Lower bound of the interval.
        pub low: f64,
        /// Upper bound of the interval.
        pub high: f64,
        /// Nominal coverage of the interval (e.g. 0.8).
        pub coverage: f64,
        /// Id of the model that valued it.
        pub model_id: String,
    }
}

table! {
    /// One month of one city's pre-aggregated market figures, as public market series
    /// publish them (the vendored Texas `txhousing` data lands here).
    pub struct CityMonth in "city_market_monthly" {
        /// City (or county) name as the source writes it.
        pub city: String,
        /// First day of the month.
        pub month: NaiveDate,
        /// Sales closed in the month (null where the source has none).
        pub sales: Option<f64>,
        /// Median sale price of the month (null where the source has none).
        pub median_price: Option<f64>,
    }
}

table! {
    /// A property's financial position at its valuation date.
    pub struct PropertyFinancials in "financials" {
        /// Property.
        pub property_id: PropertyId,
        /// Valuation date.
        pub as_of: NaiveDate,
        /// Estimated value.
        pub value: f64,
        /// Outstanding mortgage balance (0 without one).
        pub balance: f64,
        /// `value - balance`.
        pub equity: f64,
        /// `equity / value`.
        pub equity_pct: f64,
        /// `balance / value`.
        pub ltv: f64,
        /// Current loan's rate, percent.
        pub loan_rate_pct: Option<f64>,
        /// Current monthly payment.
        pub payment: Option<f64>,
        /// Market 30-year rate (month before `as_of`), percent.
        pub market_rate_pct: Option<f64>,
        /// Monthly saving of a refinance at the market rate (negative: costs more).
        pub refinance_saving: Option<f64>,
        /// Months for the saving to repay the closing costs.
        pub break_even_months: Option<f64>,
        /// Cash a cash-out refinance to 80% LTV could release.
        pub cash_out: f64,
    }
}

table! {
    /// When one component of a home is due for replacement.
    pub struct MaintenanceItem in "maintenance" {
        /// Property.
        pub property_id: PropertyId,
        /// Schedule date.
        pub as_of: NaiveDate,
        /// Component (`roof`, `hvac`, `water_heater`, …).
        pub component: String,
        /// Typical lifespan, years.
        pub lifespan_years: i32,
        /// Estimated year the current component was installed.
        pub installed_year: i32,
        /// Its age at `as_of`, years.
        pub age_years: i32,
        /// When it is due for replacement.
        pub due_on: NaiveDate,
        /// Due within a year of `as_of`.
        pub due_soon: bool,
    }
}
