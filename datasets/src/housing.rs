//! Properties, their hidden value surface, and their sales and loan history.
//!
//! A property's log value at price index 1.0 is a hedonic function of its attributes
//! (size, age, beds/baths, lot, condition, type), its neighbourhood, a smooth spatial field
//! and an idiosyncratic effect no attribute explains. Its value in month `m` is that times
//! the metro's price index. Sale prices are value × log-normal noise.

use rand::Rng;
use roi_schemas::{
    ContactId, Loan, LoanId, LoanPurpose, Property, PropertyId, PropertyType, Sale, SaleId,
};

use crate::calendar::{Month, SIM_START, WORLD_END, day_in_month, days_in_month, month_start};
use crate::geography::{KM_PER_DEG_LAT, MetroSim, NeighbourhoodSim};
use crate::market::Market;
use crate::random::{WorldRng, chance, exponential, lognormal, normal, sigmoid, weighted_index};

/// Street names used in addresses.
pub const STREETS: [&str; 24] = [
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Walnut",
    "Willow",
    "Birch",
    "Hickory",
    "Spruce",
    "Lincoln",
    "Washington",
    "Jefferson",
    "Franklin",
    "Madison",
    "Lake",
    "Hill",
    "River",
    "Park",
    "Ridge",
    "Meadow",
    "Sunset",
    "Prairie",
    "Forest",
];
/// Street suffixes: canonical abbreviation and spelled-out form.
pub const SUFFIXES: [(&str, &str); 8] = [
    ("St", "Street"),
    ("Ave", "Avenue"),
    ("Rd", "Road"),
    ("Dr", "Drive"),
    ("Ln", "Lane"),
    ("Ct", "Court"),
    ("Blvd", "Boulevard"),
    ("Way", "Way"),
];

/// The structured address of a property, rendered differently by each source.
#[derive(Debug, Clone)]
pub struct Address {
    /// House number.
    pub number: u32,
    /// Index into [`STREETS`].
    pub street: usize,
    /// Index into [`SUFFIXES`].
    pub suffix: usize,
    /// Unit number for condos.
    pub unit: Option<u32>,
}

impl Address {
    /// Canonical form: `1234 Oak St Unit 5`.
    pub fn canonical(&self) -> String {
        let base = format!(
            "{} {} {}",
            self.number, STREETS[self.street], SUFFIXES[self.suffix].0
        );
        match self.unit {
            Some(u) => format!("{base} Unit {u}"),
            None => base,
        }
    }
}

/// One property as the generator sees it.
#[derive(Debug, Clone)]
pub struct PropertySim {
    /// True current attributes.
    pub row: Property,
    /// Structured address.
    pub address: Address,
    /// Metro index.
    pub metro: usize,
    /// Log value at index 1.0 with current attributes.
    pub log_value: f64,
    /// Month of a living-area addition, if any; before it the home was smaller.
    pub renovated: Option<Month>,
    /// Living area before the addition.
    pub sqft_before: i32,
    /// Log value at index 1.0 before the addition.
    pub log_value_before: f64,
}

impl PropertySim {
    /// True value in month `m`.
    pub fn value_at(&self, market: &Market, m: Month) -> f64 {
        let lv = match self.renovated {
            Some(r) if m < r => self.log_value_before,
            _ => self.log_value,
        };
        lv.exp() * market.index_at(self.metro, m)
    }

    /// Living area in month `m`.
    pub fn sqft_at(&self, m: Month) -> i32 {
        match self.renovated {
            Some(r) if m < r => self.sqft_before,
            _ => self.row.sqft,
        }
    }
}

fn hedonic(p: &Property, sqft: i32, metro: &MetroSim, nb: &NeighbourhoodSim, idio: f64) -> f64 {
    let age = f64::from((2025 - p.year_built).max(0));
    let type_effect = match p.property_type {
        PropertyType::SingleFamily => 0.0,
        PropertyType::Townhouse => -0.06,
        PropertyType::Condo => -0.12,
        PropertyType::MultiFamily => 0.05,
    };
    let lot_effect = if p.lot_sqft > 0 {
        0.08 * (f64::from(p.lot_sqft.max(1000)) / 8000.0).ln()
    } else {
        0.0
    };
    metro.base_value.ln()
        + nb.effect
        + metro.spatial_effect(p.lat, p.lon)
        + 0.72 * (f64::from(sqft) / 1800.0).ln()
        + 0.03 * f64::from(p.beds - 3)
        + 0.06 * (p.baths - 2.0)
        + lot_effect
        - 0.0045 * age.min(70.0)
        + 0.0025 * (age - 70.0).max(0.0)
        + 0.07 * f64::from(p.condition - 3)
        + type_effect
        + idio
}

/// Generates property `index` (its id is `index + 1`) in a neighbourhood drawn by `rng`.
pub fn property(
    rng: &mut WorldRng,
    index: usize,
    metros: &[MetroSim],
    nbs: &[NeighbourhoodSim],
) -> PropertySim {
    let nb = &nbs[rng.random_range(0..nbs.len())];
    let metro = &metros[nb.metro];
    let property_type = [
        PropertyType::SingleFamily,
        PropertyType::Townhouse,
        PropertyType::Condo,
        PropertyType::MultiFamily,
    ][weighted_index(rng, &[0.70, 0.12, 0.13, 0.05])];
    let (median_sqft, median_lot) = match property_type {
        PropertyType::SingleFamily => (1800.0, 8000.0),
        PropertyType::Townhouse => (1500.0, 2500.0),
        PropertyType::Condo => (1050.0, 0.0),
        PropertyType::MultiFamily => (2400.0, 6000.0),
    };
    let sqft = lognormal(rng, median_sqft, 0.28).clamp(400.0, 8000.0) as i32;
    let beds = ((f64::from(sqft) / 600.0 + normal(rng, 0.0, 0.6)).round() as i32).clamp(
        if property_type == PropertyType::Condo {
            0
        } else {
            1
        },
        7,
    );
    let baths = ((f64::from(beds) * 0.6 + normal(rng, 0.6, 0.4)) * 2.0)
        .round()
        .clamp(2.0, 10.0)
        / 2.0;
    let lot_sqft = if median_lot > 0.0 {
        lognormal(rng, median_lot, 0.45).clamp(800.0, 200_000.0) as i32
    } else {
        0
    };
    let year_built = normal(rng, nb.era, 10.0).round().clamp(1880.0, 2024.0) as i32;
    let age = 2025 - year_built;
    let cond_shift = if age > 60 {
        0.15
    } else if age < 10 {
        -0.2
    } else {
        0.0
    };
    let condition = weighted_index(
        rng,
        &[
            0.05 + cond_shift * 0.3,
            0.15 + cond_shift,
            0.45,
            0.25 - cond_shift * 0.5,
            0.10 - cond_shift * 0.5,
        ],
    ) as i32
        + 1;
    let r = nb.radius_km * rng.random::<f64>().sqrt();
    let theta = rng.random::<f64>() * std::f64::consts::TAU;
    let lat = nb.row.lat + r * theta.sin() / KM_PER_DEG_LAT;
    let lon = nb.row.lon + r * theta.cos() / (KM_PER_DEG_LAT * nb.row.lat.to_radians().cos());
    let address = Address {
        number: rng.random_range(100..9900),
        street: rng.random_range(0..STREETS.len()),
        suffix: rng.random_range(0..SUFFIXES.len()),
        unit: (property_type == PropertyType::Condo).then(|| rng.random_range(1..400)),
    };
    let id = index as i64 + 1;
    let row = Property {
        property_id: PropertyId(id),
        parcel_id: format!("{:02}-{}-{:07}", metro.row.metro_id.0, nb.row.zip, id),
        address: address.canonical(),
        city: metro.row.name.clone(),
        state: metro.row.state.clone(),
        zip: nb.row.zip.clone(),
        metro_id: metro.row.metro_id,
        lat,
        lon,
        property_type,
        sqft,
        beds,
        baths,
        lot_sqft,
        year_built,
        condition,
    };
    let idio = normal(rng, 0.0, 0.09);
    let renovated = (year_built < 2010 && chance(rng, 0.12))
        .then(|| rng.random_range(((year_built.max(2000) - 2000) * 12 + 12)..SIM_START));
    let sqft_before = if renovated.is_some() {
        (f64::from(sqft) / 1.18) as i32
    } else {
        sqft
    };
    let log_value = hedonic(&row, sqft, metro, nb, idio);
    let log_value_before = hedonic(&row, sqft_before, metro, nb, idio);
    PropertySim {
        row,
        address,
        metro: nb.metro,
        log_value,
        renovated,
        sqft_before,
        log_value_before,
    }
}

/// A sale before ids are assigned.
#[derive(Debug, Clone)]
pub struct SaleDraft {
    /// Month of closing.
    pub month: Month,
    /// Closing date.
    pub day: chrono::NaiveDate,
    /// Price.
    pub price: f64,
    /// Days on market; `None` when it was not listed (off-market sale).
    pub days_on_market: Option<i32>,
    /// Buyer when a client.
    pub buyer: Option<ContactId>,
    /// Seller when a client.
    pub seller: Option<ContactId>,
    /// The purchase loan, if financed.
    pub loan: Option<LoanDraft>,
}

/// A loan before ids are assigned.
#[derive(Debug, Clone)]
pub struct LoanDraft {
    /// Borrower when a client.
    pub contact: Option<ContactId>,
    /// Purchase or refinance.
    pub purpose: LoanPurpose,
    /// Origination month.
    pub month: Month,
    /// Principal.
    pub amount: f64,
    /// Rate, percent.
    pub rate_pct: f64,
    /// Term, months.
    pub term_months: i32,
    /// Month repaid.
    pub closed: Option<Month>,
}

impl LoanDraft {
    /// The loan row with the given ids.
    pub fn row(&self, loan_id: LoanId, property_id: PropertyId) -> Loan {
        Loan {
            loan_id,
            property_id,
            contact_id: self.contact,
            purpose: self.purpose,
            originated_on: month_start(self.month),
            amount: self.amount.round(),
            rate_pct: self.rate_pct,
            term_months: self.term_months,
            closed_on: self.closed.map(month_start),
        }
    }

    /// Outstanding balance at the start of month `m`.
    pub fn balance_at(&self, m: Month) -> f64 {
        self.row(LoanId(0), PropertyId(0))
            .balance_after(m - self.month)
    }
}

/// A loan for a purchase at `price` in month `m`, or `None` for a cash purchase.
pub fn purchase_loan(
    rng: &mut WorldRng,
    market: &Market,
    m: Month,
    price: f64,
    contact: Option<ContactId>,
    financed: f64,
) -> Option<LoanDraft> {
    if !chance(rng, financed) {
        return None;
    }
    let ltv = normal(rng, 0.82, 0.08).clamp(0.5, 0.97);
    let fifteen = chance(rng, 0.15);
    let rate = market.rate_at(m) + normal(rng, 0.15, 0.3) - if fifteen { 0.7 } else { 0.0 };
    Some(LoanDraft {
        contact,
        purpose: LoanPurpose::Purchase,
        month: m,
        amount: price * ltv,
        rate_pct: (rate.max(2.0) * 8.0).round() / 8.0,
        term_months: if fifteen { 180 } else { 360 },
        closed: None,
    })
}

/// Refinance hazard per month given the loan's rate spread over the market.
pub fn rate_refinance_hazard(spread: f64) -> f64 {
    0.06 * sigmoid((spread - 0.9) / 0.2)
}

/// A sale of `p` in month `m` at value × noise, with its listing and loan.
pub fn sale(
    rng: &mut WorldRng,
    p: &PropertySim,
    market: &Market,
    m: Month,
    buyer: Option<ContactId>,
    seller: Option<ContactId>,
) -> SaleDraft {
    let price = (p.value_at(market, m) * normal(rng, 0.0, 0.07).exp() / 100.0).round() * 100.0;
    let heat = market.yoy(p.metro, m);
    let days_on_market = chance(rng, 0.85)
        .then(|| lognormal(rng, 35.0 / (1.0 + 4.0 * heat.max(-0.2)), 0.6).clamp(1.0, 365.0) as i32);
    let day = day_in_month(m, rng.random_range(0..days_in_month(m)));
    let loan = purchase_loan(rng, market, m, price, buyer, 0.85);
    SaleDraft {
        month: m,
        day,
        price,
        days_on_market,
        buyer,
        seller,
        loan,
    }
}

/// The history of one property up to the start of the intent simulation (clients' homes)
/// or to the end of the world (the rest of the market).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Sales in time order.
    pub sales: Vec<SaleDraft>,
    /// Refinance loans in time order.
    pub refinances: Vec<LoanDraft>,
}

impl History {
    /// The loan still open at the end of the history (the owner's current mortgage).
    pub fn open_loan(&self) -> Option<&LoanDraft> {
        self.sales
            .iter()
            .filter_map(|s| s.loan.as_ref())
            .chain(self.refinances.iter())
            .filter(|l| l.closed.is_none())
            .max_by_key(|l| l.month)
    }
}

/// Draws the history of property `p`; `owner` is the client who owns it at the start of
/// the simulation, if any (their purchase is the last sale).
pub fn history(
    rng: &mut WorldRng,
    p: &PropertySim,
    market: &Market,
    owner: Option<ContactId>,
) -> History {
    let built = ((p.row.year_built - 2000) * 12).max(0);
    let mut h = History::default();
    match owner {
        Some(contact) => {
            let tenure_months = (exponential(rng, 9.0).min(21.5) * 12.0) as i32 + 3;
            let purchase = (SIM_START - tenure_months).max(built).min(SIM_START - 3);
            let mut earlier = Vec::new();
            let mut m = purchase;
            loop {
                m -= (exponential(rng, 10.0) * 12.0) as i32 + 6;
                if m < built.max(0) {
                    break;
                }
                earlier.push(m);
            }
            for &m in earlier.iter().rev() {
                let s = sale(rng, p, market, m, None, None);
                h.sales.push(s);
            }
            let mut purchase_sale = sale(rng, p, market, purchase, Some(contact), None);
            purchase_sale.loan = purchase_loan(
                rng,
                market,
                purchase,
                purchase_sale.price,
                Some(contact),
                0.9,
            );
            h.sales.push(purchase_sale);
            // Rate-driven refinances before the simulation starts.
            let mut current = h.sales.last().and_then(|s| s.loan.clone());
            let mut m = purchase + 6;
            while m < SIM_START {
                if let Some(loan) = &current {
                    let spread = loan.rate_pct - market.rate_at(m);
                    if chance(rng, rate_refinance_hazard(spread)) {
                        let new = LoanDraft {
                            contact: Some(contact),
                            purpose: LoanPurpose::Refinance,
                            month: m,
                            amount: loan.balance_at(m),
                            rate_pct: ((market.rate_at(m) + normal(rng, 0.1, 0.2)).max(2.0) * 8.0)
                                .round()
                                / 8.0,
                            term_months: 360,
                            closed: None,
                        };
                        close_all(&mut h, m);
                        h.refinances.push(new.clone());
                        current = Some(new);
                        m += 6;
                        continue;
                    }
                }
                m += 1;
            }
        }
        None => {
            let mut m = if built > 0 {
                built
            } else {
                -(exponential(rng, 10.0) * 12.0) as i32
            };
            if m < 0 {
                m += (exponential(rng, 10.0) * 12.0) as i32;
            }
            while m < WORLD_END {
                if m >= 0 {
                    let s = sale(rng, p, market, m, None, None);
                    close_all(&mut h, m);
                    h.sales.push(s);
                }
                m += (exponential(rng, 10.0) * 12.0) as i32 + 6;
            }
        }
    }
    h
}

/// Marks every open loan of the property as repaid in `m`.
pub fn close_all(h: &mut History, m: Month) {
    for loan in h
        .sales
        .iter_mut()
        .filter_map(|s| s.loan.as_mut())
        .chain(h.refinances.iter_mut())
    {
        if loan.closed.is_none() {
            loan.closed = Some(m);
        }
    }
}

/// Assigns ids to a property's history and renders its rows.
pub fn history_rows(
    h: &History,
    property_id: PropertyId,
    next_sale: &mut i64,
    next_loan: &mut i64,
    sales: &mut Vec<Sale>,
    loans: &mut Vec<Loan>,
) {
    for s in &h.sales {
        *next_sale += 1;
        sales.push(Sale {
            sale_id: SaleId(*next_sale),
            property_id,
            sold_on: s.day,
            price: s.price,
            days_on_market: s.days_on_market,
            seller_contact_id: s.seller,
            buyer_contact_id: s.buyer,
        });
        if let Some(l) = &s.loan {
            *next_loan += 1;
            loans.push(l.row(LoanId(*next_loan), property_id));
        }
    }
    for l in &h.refinances {
        *next_loan += 1;
        loans.push(l.row(LoanId(*next_loan), property_id));
    }
}
