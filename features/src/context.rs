//! Static context known about a homeowner at a point in time: their home, loan and market.
//!
//! Built once from lake tables (contacts, properties, sales, loans, price index, mortgage
//! rates). Every lookup is point-in-time: only sales and loans dated on or before the day
//! count, and monthly series are read for the *previous* month, the latest one published.

use rustc_hash::FxHashMap as HashMap;

use roi_schemas::{
    Contact, ContactId, Loan, MetroId, MortgageRate, PriceIndex, Property, PropertyId,
    PropertyMaster, PropertyType, Sale,
};

use crate::day::{Day, day_of_date, month_index};

/// What the context knows about one homeowner at a day.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Facts {
    /// Years since purchase.
    pub tenure_years: Option<f64>,
    /// Estimated value (purchase price moved by the metro index).
    pub value: Option<f64>,
    /// Purchase price.
    pub purchase_price: Option<f64>,
    /// Outstanding balance of the current mortgage (0 without one).
    pub balance: Option<f64>,
    /// Current mortgage rate, percent.
    pub loan_rate: Option<f64>,
    /// Months since the current mortgage was originated.
    pub loan_age_months: Option<f64>,
    /// Market 30-year rate, percent.
    pub market_rate: Option<f64>,
    /// Age of the home, years.
    pub property_age_years: Option<f64>,
    /// Sales in the home's zip over the last 12 months per property in the zip.
    pub zip_turnover_12m: Option<f64>,
    /// Metro price change over 12 months.
    pub appreciation_12m: Option<f64>,
}

#[derive(Debug, Clone)]
struct Home {
    property: PropertyId,
    zip: usize,
    metro: MetroId,
    year_built: i32,
    closed_on: Day,
}

/// Point-in-time lookups of homeowners' context.
#[derive(Debug, Clone, Default)]
pub struct ContextIndex {
    homes: HashMap<ContactId, Home>,
    /// Sales per property, sorted by day: (day, price).
    sales: HashMap<PropertyId, Vec<(Day, f64)>>,
    /// Loans per homeowner, sorted by origination.
    loans: HashMap<ContactId, Vec<Loan>>,
    /// Sale days per zip, sorted.
    zip_sales: Vec<Vec<Day>>,
    zip_properties: Vec<usize>,
    /// Price index per metro, by month index (see [`MonthSeries`]).
    index: HashMap<MetroId, MonthSeries>,
    rates: MonthSeries,
}

/// A monthly series stored densely from its first month.
#[derive(Debug, Clone, Default)]
struct MonthSeries {
    first: i32,
    values: Vec<Option<f64>>,
}

impl MonthSeries {
    fn from_points(mut points: Vec<(i32, f64)>) -> MonthSeries {
        points.sort_by_key(|p| p.0);
        let Some(first) = points.first().map(|p| p.0) else {
            return MonthSeries::default();
        };
        let last = points.last().map_or(first, |p| p.0);
        let mut values = vec![None; (last - first + 1) as usize];
        for (m, v) in points {
            values[(m - first) as usize] = Some(v);
        }
        MonthSeries { first, values }
    }

    fn get(&self, month: i32) -> Option<f64> {
        let i = usize::try_from(month - self.first).ok()?;
        self.values.get(i).copied().flatten()
    }
}

/// The tables the context is built from.
#[derive(Debug, Default)]
pub struct ContextTables {
    /// Homeowners.
    pub contacts: Vec<Contact>,
    /// Properties (property master, or the world's true attributes).
    pub properties: Vec<Property>,
    /// Sales.
    pub sales: Vec<Sale>,
    /// Loans.
    pub loans: Vec<Loan>,
    /// Price index.
    pub price_index: Vec<PriceIndex>,
    /// Mortgage rates.
    pub mortgage_rates: Vec<MortgageRate>,
}

/// The home facts the context reads (zip, metro, year built) from a property-master row;
/// `None` when the master lacks one of them, so that homeowner's context stays unknown
/// rather than wrong. Fields the context never reads are left at neutral values.
pub fn home_from_master(m: &PropertyMaster) -> Option<Property> {
    Some(Property {
        property_id: m.property_id,
        parcel_id: m.parcel_id.clone(),
        address: m.address.clone().unwrap_or_default(),
        city: m.city.clone().unwrap_or_default(),
        state: m.state.clone().unwrap_or_default(),
        zip: m.zip.clone()?,
        metro_id: m.metro_id?,
        lat: m.lat.unwrap_or_default(),
        lon: m.lon.unwrap_or_default(),
        property_type: m.property_type.unwrap_or(PropertyType::SingleFamily),
        sqft: m.sqft.unwrap_or_default(),
        beds: m.beds.unwrap_or_default(),
        baths: m.baths.unwrap_or_default(),
        lot_sqft: m.lot_sqft.unwrap_or_default(),
        year_built: m.year_built?,
        condition: m.condition.unwrap_or_default(),
    })
}

impl ContextIndex {
    /// Indexes the tables.
    pub fn build(t: ContextTables) -> ContextIndex {
        let mut zips: HashMap<String, usize> = HashMap::default();
        let mut zip_of_property: HashMap<PropertyId, usize> = HashMap::default();
        let mut props: HashMap<PropertyId, &Property> = HashMap::default();
        let mut zip_properties = Vec::new();
        for p in &t.properties {
            let n = zips.len();
            let z = *zips.entry(p.zip.clone()).or_insert(n);
            if z == zip_properties.len() {
                zip_properties.push(0);
            }
            zip_properties[z] += 1;
            zip_of_property.insert(p.property_id, z);
            props.insert(p.property_id, p);
        }
        let mut zip_sales = vec![Vec::new(); zip_properties.len()];
        let mut sales: HashMap<PropertyId, Vec<(Day, f64)>> = HashMap::default();
        for s in &t.sales {
            let day = day_of_date(s.sold_on);
            sales.entry(s.property_id).or_default().push((day, s.price));
            if let Some(&z) = zip_of_property.get(&s.property_id) {
                zip_sales[z].push(day);
            }
        }
        for v in sales.values_mut() {
            v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        }
        for v in &mut zip_sales {
            v.sort_unstable();
        }
        let mut loans: HashMap<ContactId, Vec<Loan>> = HashMap::default();
        for l in t.loans {
            if let Some(c) = l.contact_id {
                loans.entry(c).or_default().push(l);
            }
        }
        for v in loans.values_mut() {
            v.sort_by_key(|l| (l.originated_on, l.loan_id));
        }
        let homes = t
            .contacts
            .iter()
            .filter_map(|c| {
                let p = props.get(&c.property_id)?;
                Some((
                    c.contact_id,
                    Home {
                        property: c.property_id,
                        zip: zip_of_property[&c.property_id],
                        metro: p.metro_id,
                        year_built: p.year_built,
                        closed_on: day_of_date(c.closed_on),
                    },
                ))
            })
            .collect();
        let mut points: HashMap<MetroId, Vec<(i32, f64)>> = HashMap::default();
        for p in &t.price_index {
            points
                .entry(p.metro_id)
                .or_default()
                .push((month_index(day_of_date(p.month)), p.index));
        }
        let index = points
            .into_iter()
            .map(|(m, p)| (m, MonthSeries::from_points(p)))
            .collect();
        let rates = MonthSeries::from_points(
            t.mortgage_rates
                .iter()
                .map(|r| (month_index(day_of_date(r.month)), r.rate_30y_pct))
                .collect(),
        );
        ContextIndex {
            homes,
            sales,
            loans,
            zip_sales,
            zip_properties,
            index,
            rates,
        }
    }

    /// Number of homeowners with a known home.
    pub fn len(&self) -> usize {
        self.homes.len()
    }

    /// Whether no homeowner is known.
    pub fn is_empty(&self) -> bool {
        self.homes.is_empty()
    }

    /// The home of `contact`, if known.
    pub fn property_of(&self, contact: ContactId) -> Option<PropertyId> {
        self.homes.get(&contact).map(|h| h.property)
    }

    /// What is known about `contact` at the end of `at`.
    pub fn facts(&self, contact: ContactId, at: Day) -> Facts {
        let Some(home) = self.homes.get(&contact) else {
            return Facts::default();
        };
        let published = month_index(at) - 1;
        let idx = self.index.get(&home.metro);
        let index_at = |m: i32| idx.and_then(|i| i.get(m));
        let purchase = self
            .sales
            .get(&home.property)
            .and_then(|s| s.iter().rev().find(|(d, _)| *d <= at.min(home.closed_on)))
            .copied();
        let value = purchase.and_then(|(d, price)| {
            let then = index_at(month_index(d))?;
            let now = index_at(published)?;
            Some(price * now / then)
        });
        let loan = self.loans.get(&contact).and_then(|ls| {
            ls.iter().rev().find(|l| {
                l.property_id == home.property
                    && day_of_date(l.originated_on) <= at
                    && l.closed_on.is_none_or(|c| day_of_date(c) > at)
            })
        });
        let loan_months = loan.map(|l| month_index(at) - month_index(day_of_date(l.originated_on)));
        let balance = match (loan, loan_months) {
            (Some(l), Some(m)) => Some(l.balance_after(m)),
            _ => Some(0.0),
        };
        let turnover = {
            let days = &self.zip_sales[home.zip];
            let lo = days.partition_point(|d| *d <= at - 365);
            let hi = days.partition_point(|d| *d <= at);
            Some((hi - lo) as f64 / self.zip_properties[home.zip].max(1) as f64)
        };
        Facts {
            tenure_years: (at >= home.closed_on).then(|| f64::from(at - home.closed_on) / 365.25),
            value,
            purchase_price: purchase.map(|p| p.1),
            balance,
            loan_rate: loan.map(|l| l.rate_pct),
            loan_age_months: loan_months.map(f64::from),
            market_rate: self.rates.get(published),
            property_age_years: Some(f64::from(
                2000 + month_index(at).div_euclid(12) - home.year_built,
            )),
            zip_turnover_12m: turnover,
            appreciation_12m: index_at(published)
                .zip(index_at(published - 12))
                .map(|(a, b)| a / b - 1.0),
        }
    }
}
