//! Market geography and time series: metros, neighbourhoods, price index, mortgage rates.

use chrono::NaiveDate;

use crate::ids::MetroId;
use crate::table::table;

table! {
    /// A metropolitan area.
    pub struct Metro in "metros" {
        /// Id.
        pub metro_id: MetroId,
        /// Name.
        pub name: String,
        /// Two-letter state.
        pub state: String,
        /// Centre latitude.
        pub lat: f64,
        /// Centre longitude.
        pub lon: f64,
    }
}

table! {
    /// A neighbourhood, identified by its zip code.
    pub struct Neighbourhood in "neighbourhoods" {
        /// Five-digit zip code.
        pub zip: String,
        /// Metro it belongs to.
        pub metro_id: MetroId,
        /// Name.
        pub name: String,
        /// Centre latitude.
        pub lat: f64,
        /// Centre longitude.
        pub lon: f64,
    }
}

table! {
    /// Monthly house-price index of a metro (1.0 at the world's base month).
    pub struct PriceIndex in "price_index" {
        /// Metro.
        pub metro_id: MetroId,
        /// First day of the month.
        pub month: NaiveDate,
        /// Index level.
        pub index: f64,
    }
}

table! {
    /// Monthly average mortgage rates.
    pub struct MortgageRate in "mortgage_rates" {
        /// First day of the month.
        pub month: NaiveDate,
        /// 30-year fixed rate, percent.
        pub rate_30y_pct: f64,
        /// 15-year fixed rate, percent.
        pub rate_15y_pct: f64,
    }
}
