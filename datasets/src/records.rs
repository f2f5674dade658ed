//! Property records as three imperfect sources describe them.
//!
//! - **assessor**: every property; upper-case abbreviated address, parcel id; attributes
//!   from the last reassessment (1–4 years old, so additions are often missing), assessed
//!   value ≈ 85% of market value then; a few fields missing.
//! - **MLS**: one record per listed sale; agent formatting (`Street`, `#5`), parcel id only
//!   sometimes and in another format, living area rounded and sometimes generous, list
//!   price and days on market; attributes as of the listing.
//! - **owner**: entered by ~40% of homeowners; lower-case, occasional typos, no parcel id,
//!   current attributes roughly rounded, optimistic condition and value.

use chrono::{NaiveDate, TimeZone, Utc};
use rand::Rng;
use roi_schemas::{ContactId, PropertyRecord, PropertyType, RecordId, RecordSource};

use crate::calendar::{Month, month_of, month_start};
use crate::housing::{PropertySim, STREETS, SUFFIXES};
use crate::market::Market;
use crate::random::{WorldRng, chance, normal};

fn at_noon(d: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(12, 0, 0).expect("noon exists"))
}

fn keep<T>(rng: &mut WorldRng, p_missing: f64, v: T) -> Option<T> {
    (!chance(rng, p_missing)).then_some(v)
}

fn blank(id: RecordId, source: RecordSource, key: String, observed: NaiveDate) -> PropertyRecord {
    PropertyRecord::blank(id, source, key, at_noon(observed))
}

/// The assessor's record of `p`.
pub fn assessor(
    rng: &mut WorldRng,
    id: RecordId,
    p: &PropertySim,
    market: &Market,
) -> PropertyRecord {
    let year = 2025 - rng.random_range(0..4);
    let observed = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid date");
    let m = month_of(observed);
    let a = &p.address;
    let mut address = format!(
        "{} {} {}",
        a.number, STREETS[a.street], SUFFIXES[a.suffix].0
    )
    .to_uppercase();
    if let Some(u) = a.unit {
        address.push_str(&format!(" UNIT {u}"));
    }
    // Reassessments miss about half of all additions.
    let sqft = if p.renovated.is_some() && chance(rng, 0.5) {
        p.sqft_before
    } else {
        p.sqft_at(m)
    };
    let mut r = blank(
        id,
        RecordSource::Assessor,
        format!("ACCT-{:08}", p.row.property_id.0),
        observed,
    );
    r.parcel_id = keep(rng, 0.01, p.row.parcel_id.clone());
    r.address = Some(address);
    r.city = Some(p.row.city.to_uppercase());
    r.state = Some(p.row.state.clone());
    r.zip = keep(rng, 0.02, p.row.zip.clone());
    r.lat = Some(p.row.lat + normal(rng, 0.0, 0.0001));
    r.lon = Some(p.row.lon + normal(rng, 0.0, 0.0001));
    r.property_type = keep(rng, 0.02, p.row.property_type);
    r.sqft = keep(rng, 0.03, sqft);
    r.beds = keep(rng, 0.05, p.row.beds);
    r.baths = keep(rng, 0.05, p.row.baths);
    r.lot_sqft = if p.row.property_type == PropertyType::Condo {
        None
    } else {
        keep(rng, 0.05, p.row.lot_sqft)
    };
    r.year_built = keep(rng, 0.01, p.row.year_built);
    let graded = (p.row.condition
        + if chance(rng, 0.3) {
            rng.random_range(-1..=1)
        } else {
            0
        })
    .clamp(1, 5);
    r.condition = keep(rng, 0.2, graded);
    r.value_estimate =
        Some((p.value_at(market, m) * 0.85 * normal(rng, 1.0, 0.08) / 100.0).round() * 100.0);
    r
}

/// The MLS record of a listing of `p` that closed on `sold_on` after `dom` days.
pub fn mls(
    rng: &mut WorldRng,
    id: RecordId,
    p: &PropertySim,
    sold_on: NaiveDate,
    price: f64,
    dom: i32,
) -> PropertyRecord {
    let listed = sold_on - chrono::Duration::days(i64::from(dom));
    let m: Month = month_of(listed);
    let a = &p.address;
    let mut address = format!(
        "{} {} {}",
        a.number, STREETS[a.street], SUFFIXES[a.suffix].1
    );
    if let Some(u) = a.unit {
        address.push_str(&if chance(rng, 0.5) {
            format!(" #{u}")
        } else {
            format!(" Apt {u}")
        });
    }
    let sqft = f64::from(p.sqft_at(m)) * if chance(rng, 0.3) { 1.04 } else { 1.0 };
    let mut r = blank(
        id,
        RecordSource::Mls,
        format!("MLS{:09}", id.0 % 1_000_000_000),
        listed,
    );
    r.parcel_id = chance(rng, 0.6).then(|| p.row.parcel_id.replace('-', ""));
    r.address = Some(address);
    r.city = Some(p.row.city.clone());
    r.state = Some(p.row.state.clone());
    r.zip = keep(rng, 0.01, p.row.zip.clone());
    if chance(rng, 0.85) {
        r.lat = Some(p.row.lat + normal(rng, 0.0, 0.0003));
        r.lon = Some(p.row.lon + normal(rng, 0.0, 0.0003));
    }
    r.property_type = Some(p.row.property_type);
    r.sqft = keep(rng, 0.03, ((sqft / 50.0).round() * 50.0) as i32);
    r.beds = keep(rng, 0.03, p.row.beds);
    r.baths = keep(rng, 0.05, p.row.baths);
    r.lot_sqft = if p.row.property_type == PropertyType::Condo {
        None
    } else {
        keep(rng, 0.2, p.row.lot_sqft)
    };
    r.year_built = keep(rng, 0.1, p.row.year_built);
    r.condition = keep(rng, 0.3, p.row.condition);
    r.value_estimate = Some((price * normal(rng, 1.02, 0.03) / 1000.0).round() * 1000.0);
    r.days_on_market = Some(dom);
    r
}

/// What the homeowner entered about their home, if they did.
pub fn owner(
    rng: &mut WorldRng,
    id: RecordId,
    p: &PropertySim,
    market: &Market,
    contact: ContactId,
) -> Option<PropertyRecord> {
    if !chance(rng, 0.4) {
        return None;
    }
    let m = crate::calendar::EVENTS_START + rng.random_range(0..36);
    let observed = month_start(m) + chrono::Duration::days(rng.random_range(0..28));
    let a = &p.address;
    let mut street = STREETS[a.street].to_lowercase();
    if chance(rng, 0.05) && street.len() > 3 {
        let i = rng.random_range(1..street.len() - 1);
        street.remove(i);
    }
    let mut address = format!(
        "{} {} {}",
        a.number,
        street,
        SUFFIXES[a.suffix].0.to_lowercase()
    );
    if chance(rng, 0.5) {
        address.push('.');
    }
    if let Some(u) = a.unit {
        address.push_str(&format!(" unit {u}"));
    }
    let mut r = blank(
        id,
        RecordSource::Owner,
        format!("owner-{}", contact.0),
        observed,
    );
    r.address = Some(address);
    r.city = keep(rng, 0.2, p.row.city.to_lowercase());
    r.state = keep(rng, 0.2, p.row.state.clone());
    r.zip = keep(rng, 0.1, p.row.zip.clone());
    r.property_type = keep(rng, 0.3, p.row.property_type);
    r.sqft = keep(
        rng,
        0.2,
        ((f64::from(p.sqft_at(m)) / 100.0).round() * 100.0) as i32,
    );
    r.beds = keep(rng, 0.1, p.row.beds);
    r.baths = keep(rng, 0.1, p.row.baths);
    r.year_built = keep(rng, 0.4, p.row.year_built);
    let optimistic = (p.row.condition + i32::from(chance(rng, 0.4))).min(5);
    r.condition = keep(rng, 0.2, optimistic);
    let estimate = (p.value_at(market, m) * normal(rng, 1.08, 0.12) / 1000.0).round() * 1000.0;
    r.value_estimate = keep(rng, 0.3, estimate);
    r.contact_id = Some(contact);
    Some(r)
}
