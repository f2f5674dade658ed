//! The feature catalog: every feature ROI computes about a homeowner, defined once.
//!
//! A feature is a pure function of [`Inputs`]: the homeowner's behaviour through the
//! [`History`] trait and their [`Facts`] at the day. Whether `History` is the streaming
//! state or the batch event list, the same definition runs, so stream and backfill agree.

use roi_schemas::EventType as E;

use crate::context::Facts;
use crate::day::Day;
use crate::history::{Distinct, History, TypeSet};

/// Version of the catalog; models record it and refuse to score another version's features.
pub const CATALOG_VERSION: &str = "features-v1";

/// What a feature is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// App and e-mail behaviour.
    Engagement,
    /// Loan, equity and rates.
    Financial,
    /// The home itself.
    Property,
    /// The home's market.
    Market,
}

impl Category {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Engagement => "engagement",
            Category::Financial => "financial",
            Category::Property => "property",
            Category::Market => "market",
        }
    }
}

/// Everything a feature may look at.
pub struct Inputs<'a> {
    /// Behaviour.
    pub history: &'a dyn History,
    /// Static context at `at`.
    pub facts: &'a Facts,
    /// The day, features are as of its end.
    pub at: Day,
}

/// One feature of the catalog.
#[derive(Clone, Copy)]
pub struct FeatureDef {
    /// Column name.
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Window it covers (`1d`, `7d`, `30d`, `90d`, `7d/30d`, `lifetime`, `point-in-time`).
    pub window: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Category.
    pub category: Category,
    /// The definition. `None` means unknown (e.g. no loan on record).
    pub compute: fn(&Inputs<'_>) -> Option<f64>,
}

impl std::fmt::Debug for FeatureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureDef")
            .field("name", &self.name)
            .field("window", &self.window)
            .finish()
    }
}

const ALL: TypeSet = TypeSet::ALL;
const VAL: TypeSet = TypeSet::of(&[E::ValuationViewed]);
const EQUITY: TypeSet = TypeSet::of(&[E::EquityReportOpened]);
const DOC_VIEW: TypeSet = TypeSet::of(&[E::DocumentViewed]);
const DOC_DOWN: TypeSet = TypeSet::of(&[E::DocumentDownloaded]);
const DOC_SHARE: TypeSet = TypeSet::of(&[E::DocumentShared]);
const LISTING: TypeSet = TypeSet::of(&[E::ListingViewed]);
const SAVE: TypeSet = TypeSet::of(&[E::ListingSaved]);
const AWAY: TypeSet = TypeSet::of(&[E::OutOfAreaSearch]);
const SEARCHING: TypeSet = TypeSet::of(&[E::OutOfAreaSearch, E::ListingViewed]);
const MORTGAGE: TypeSet = TypeSet::of(&[E::MortgageCalcUsed]);
const REFI: TypeSet = TypeSet::of(&[E::RefinanceCalcUsed]);
const CALC: TypeSet = TypeSet::of(&[E::MortgageCalcUsed, E::RefinanceCalcUsed]);
const RENTAL: TypeSet = TypeSet::of(&[E::RentalAnalysisViewed]);
const LOGIN: TypeSet = TypeSet::of(&[E::Login]);
const PAGE: TypeSet = TypeSet::of(&[E::PageView]);
const OPEN: TypeSet = TypeSet::of(&[E::EmailOpened]);
const CLICK: TypeSet = TypeSet::of(&[E::EmailClicked]);

fn n(i: &Inputs<'_>, t: TypeSet, days: i32) -> f64 {
    f64::from(i.history.count(t, days, i.at))
}

fn since(i: &Inputs<'_>, t: TypeSet) -> Option<f64> {
    i.history.last_day(t, i.at).map(|d| f64::from(i.at - d))
}

/// Ratio of the 7-day to the 30-day daily rate, smoothed so quiet homeowners sit at 1.
fn trend(i: &Inputs<'_>, t: TypeSet) -> Option<f64> {
    let eps = 1.0 / 30.0;
    Some((n(i, t, 7) / 7.0 + eps) / (n(i, t, 30) / 30.0 + eps))
}

macro_rules! features {
    ($( $id:ident = $name:literal, $window:literal, $unit:literal, $cat:ident, $desc:literal, $f:expr; )*) => {
        /// Feature identifiers, in catalog (column) order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum F { $( $id ),* }

        /// The catalog, in column order.
        pub const FEATURES: &[FeatureDef] = &[$(
            FeatureDef {
                name: $name,
                description: $desc,
                window: $window,
                unit: $unit,
                category: Category::$cat,
                compute: $f,
            }
        ),*];
    };
}

features! {
    Events1d = "events_1d", "1d", "events", Engagement, "All events today", |i| Some(n(i, ALL, 1));
    Events7d = "events_7d", "7d", "events", Engagement, "All events in the last 7 days", |i| Some(n(i, ALL, 7));
    Events30d = "events_30d", "30d", "events", Engagement, "All events in the last 30 days", |i| Some(n(i, ALL, 30));
    Events90d = "events_90d", "90d", "events", Engagement, "All events in the last 90 days", |i| Some(n(i, ALL, 90));
    ValuationViews7d = "valuation_views_7d", "7d", "events", Engagement, "Home valuation views", |i| Some(n(i, VAL, 7));
    ValuationViews30d = "valuation_views_30d", "30d", "events", Engagement, "Home valuation views", |i| Some(n(i, VAL, 30));
    ValuationViews90d = "valuation_views_90d", "90d", "events", Engagement, "Home valuation views", |i| Some(n(i, VAL, 90));
    EquityReports30d = "equity_reports_30d", "30d", "events", Engagement, "Equity reports opened", |i| Some(n(i, EQUITY, 30));
    EquityReports90d = "equity_reports_90d", "90d", "events", Engagement, "Equity reports opened", |i| Some(n(i, EQUITY, 90));
    DocumentViews30d = "document_views_30d", "30d", "events", Engagement, "Stored documents viewed", |i| Some(n(i, DOC_VIEW, 30));
    DocumentViews90d = "document_views_90d", "90d", "events", Engagement, "Stored documents viewed", |i| Some(n(i, DOC_VIEW, 90));
    DocumentDownloads30d = "document_downloads_30d", "30d", "events", Engagement, "Stored documents downloaded", |i| Some(n(i, DOC_DOWN, 30));
    DocumentShares90d = "document_shares_90d", "90d", "events", Engagement, "Stored documents shared", |i| Some(n(i, DOC_SHARE, 90));
    ListingViews7d = "listing_views_7d", "7d", "events", Engagement, "For-sale listings viewed", |i| Some(n(i, LISTING, 7));
    ListingViews30d = "listing_views_30d", "30d", "events", Engagement, "For-sale listings viewed", |i| Some(n(i, LISTING, 30));
    ListingViews90d = "listing_views_90d", "90d", "events", Engagement, "For-sale listings viewed", |i| Some(n(i, LISTING, 90));
    ListingSaves30d = "listing_saves_30d", "30d", "events", Engagement, "Listings saved", |i| Some(n(i, SAVE, 30));
    OutOfAreaSearches30d = "out_of_area_searches_30d", "30d", "events", Engagement, "Searches outside the home's area", |i| Some(n(i, AWAY, 30));
    OutOfAreaSearches90d = "out_of_area_searches_90d", "90d", "events", Engagement, "Searches outside the home's area", |i| Some(n(i, AWAY, 90));
    MortgageCalc30d = "mortgage_calc_30d", "30d", "events", Engagement, "Mortgage (purchase) calculator uses", |i| Some(n(i, MORTGAGE, 30));
    RefinanceCalc30d = "refinance_calc_30d", "30d", "events", Engagement, "Refinance calculator uses", |i| Some(n(i, REFI, 30));
    RefinanceCalc90d = "refinance_calc_90d", "90d", "events", Engagement, "Refinance calculator uses", |i| Some(n(i, REFI, 90));
    RentalAnalyses30d = "rental_analyses_30d", "30d", "events", Engagement, "Rental (investment) analyses viewed", |i| Some(n(i, RENTAL, 30));
    RentalAnalyses90d = "rental_analyses_90d", "90d", "events", Engagement, "Rental (investment) analyses viewed", |i| Some(n(i, RENTAL, 90));
    Logins30d = "logins_30d", "30d", "events", Engagement, "Logins", |i| Some(n(i, LOGIN, 30));
    PageViews30d = "page_views_30d", "30d", "events", Engagement, "Other page views", |i| Some(n(i, PAGE, 30));
    Sessions7d = "sessions_7d", "7d", "sessions", Engagement, "App sessions with activity", |i| Some(f64::from(i.history.distinct(Distinct::Sessions, 7, i.at)));
    Sessions30d = "sessions_30d", "30d", "sessions", Engagement, "App sessions with activity", |i| Some(f64::from(i.history.distinct(Distinct::Sessions, 30, i.at)));
    DistinctDocuments30d = "distinct_documents_30d", "30d", "documents", Engagement, "Distinct documents touched", |i| Some(f64::from(i.history.distinct(Distinct::Documents, 30, i.at)));
    DistinctListings30d = "distinct_listings_30d", "30d", "listings", Engagement, "Distinct listings touched", |i| Some(f64::from(i.history.distinct(Distinct::Listings, 30, i.at)));
    OutOfAreaShare30d = "out_of_area_share_30d", "30d", "ratio", Engagement, "Out-of-area searches / (those + listing views)", |i| {
        let all = n(i, SEARCHING, 30);
        (all > 0.0).then(|| n(i, AWAY, 30) / all)
    };
    DaysSinceLastEvent = "days_since_last_event", "lifetime", "days", Engagement, "Days since any event", |i| since(i, ALL);
    DaysSinceLastValuation = "days_since_last_valuation", "lifetime", "days", Engagement, "Days since a valuation view", |i| since(i, VAL);
    DaysSinceLastListing = "days_since_last_listing", "lifetime", "days", Engagement, "Days since a listing view", |i| since(i, LISTING);
    DaysSinceLastCalculator = "days_since_last_calculator", "lifetime", "days", Engagement, "Days since a mortgage or refinance calculation", |i| since(i, CALC);
    EventsTrend = "events_trend_7d_30d", "7d/30d", "ratio", Engagement, "Daily event rate, last 7 days over last 30 (smoothed)", |i| trend(i, ALL);
    ListingTrend = "listing_trend_7d_30d", "7d/30d", "ratio", Engagement, "Daily listing-view rate, 7 over 30 days (smoothed)", |i| trend(i, LISTING);
    ValuationTrend = "valuation_trend_7d_30d", "7d/30d", "ratio", Engagement, "Daily valuation-view rate, 7 over 30 days (smoothed)", |i| trend(i, VAL);
    EmailOpens30d = "email_opens_30d", "30d", "events", Engagement, "Campaign e-mails opened", |i| Some(n(i, OPEN, 30));
    EmailClicks30d = "email_clicks_30d", "30d", "events", Engagement, "Campaign e-mail clicks", |i| Some(n(i, CLICK, 30));
    EmailOpens90d = "email_opens_90d", "90d", "events", Engagement, "Campaign e-mails opened", |i| Some(n(i, OPEN, 90));
    EmailClickRate90d = "email_click_rate_90d", "90d", "ratio", Engagement, "Clicks per open", |i| {
        let opens = n(i, OPEN, 90);
        (opens > 0.0).then(|| n(i, CLICK, 90) / opens)
    };
    ObservedDays = "observed_days", "lifetime", "days", Engagement, "Days since the first event seen", |i| i.history.first_day(i.at).map(|d| f64::from(i.at - d + 1));
    TenureYears = "tenure_years", "point-in-time", "years", Property, "Years since the home was bought", |i| i.facts.tenure_years;
    EquityPct = "equity_pct", "point-in-time", "percent", Financial, "(estimated value - loan balance) / value", |i| {
        let v = i.facts.value?;
        Some(100.0 * (v - i.facts.balance.unwrap_or(0.0)) / v)
    };
    Ltv = "ltv", "point-in-time", "ratio", Financial, "Loan balance / estimated value", |i| Some(i.facts.balance? / i.facts.value?);
    ValueChangePct = "est_value_change_pct", "point-in-time", "percent", Financial, "Estimated value change since purchase", |i| Some(100.0 * (i.facts.value? / i.facts.purchase_price? - 1.0));
    RateSpread = "rate_spread", "point-in-time", "points", Financial, "Current loan rate minus the market 30-year rate", |i| Some(i.facts.loan_rate? - i.facts.market_rate?);
    LoanAgeMonths = "loan_age_months", "point-in-time", "months", Financial, "Months since the current loan was originated", |i| i.facts.loan_age_months;
    PropertyAgeYears = "property_age_years", "point-in-time", "years", Property, "Age of the home", |i| i.facts.property_age_years;
    ZipTurnover12m = "zip_turnover_12m", "365d", "ratio", Market, "Sales in the zip over 12 months per property", |i| i.facts.zip_turnover_12m;
    Appreciation12m = "metro_appreciation_12m", "12 months", "ratio", Market, "Metro price-index change over 12 months", |i| i.facts.appreciation_12m;
    MarketRate = "market_rate_30y", "point-in-time", "percent", Market, "Latest published 30-year mortgage rate", |i| i.facts.market_rate;
}

/// A homeowner's feature values, in catalog order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureVector(pub Vec<Option<f64>>);

impl FeatureVector {
    /// Computes every feature.
    pub fn compute(inputs: &Inputs<'_>) -> FeatureVector {
        FeatureVector(FEATURES.iter().map(|f| (f.compute)(inputs)).collect())
    }

    /// The value of `f` (missing values read as `None`).
    pub fn get(&self, f: F) -> Option<f64> {
        self.0[f as usize]
    }

    /// The value of `f`, or 0 when missing.
    pub fn or0(&self, f: F) -> f64 {
        self.get(f).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_large_unique_and_in_enum_order() {
        assert!(FEATURES.len() >= 35, "{} features", FEATURES.len());
        let mut names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        assert_eq!(FEATURES[F::MarketRate as usize].name, "market_rate_30y");
        assert_eq!(FEATURES[F::Events1d as usize].name, "events_1d");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURES.len(), "feature names must be unique");
    }
}
