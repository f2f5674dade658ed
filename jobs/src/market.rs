//! Market statistics: monthly figures per zip, H3 cell and city, and 0.5-mile
//! comparable sales per home.
//!
//! Everything here is plain synchronous Rust over slices, so the job that feeds it (a
//! join of `raw.sales` to `curated.property_master`) stays a thin shell, and every
//! figure is unit-tested without a lake:
//!
//! - [`area_stats`] builds `market_stats` rows per zip and per H3 cell at
//!   [`STATS_RESOLUTION`] from individual sales;
//! - [`city_stats`] builds the same rows from pre-aggregated monthly city figures (the
//!   real `txhousing` data, read by [`parse_txhousing`]);
//! - [`comparables`] finds, for every home, the other properties' sales within
//!   [`RADIUS_MILES`] over 6 and 12 months, through an H3 pre-filter that provably
//!   misses nothing (see [`COMPARABLES_DISK_K`]).
//!
//! Outputs are deterministic: rows are sorted by `(area_kind, area, month)` and
//! `(property_id, window_months)`, and ties are broken by id.
//!
//! ```
//! use chrono::NaiveDate;
//! use roi_jobs::market::{Home, SaleFact, comparables};
//! use roi_schemas::PropertyId;
//!
//! let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
//! let home = Home { property_id: PropertyId(1), zip: None, lat: Some(30.27), lon: Some(-97.74) };
//! let sale = SaleFact {
//!     sale_id: 7, property_id: PropertyId(2), sold_on: day(2025, 3, 1), price: 400_000.0,
//!     days_on_market: None, zip: None, sqft: Some(2000), lat: Some(30.271), lon: Some(-97.74),
//! };
//! let rows = comparables(&[sale], &[home], day(2025, 6, 30));
//! assert_eq!(rows.len(), 2); // one row per look-back window
//! assert_eq!(rows[0].sale_ids, vec![7]);
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Months, NaiveDate};
use h3o::{CellIndex, LatLng, Resolution};
use rayon::prelude::*;
use roi_schemas::{AreaKind, Comparables, MarketStat, PropertyId, PropertyMaster, Sale};

/// One sale with the facts the statistics need (the job builds these by joining
/// `raw.sales` to `curated.property_master`).
#[derive(Debug, Clone, PartialEq)]
pub struct SaleFact {
    /// Recorded sale.
    pub sale_id: i64,
    /// Property sold.
    pub property_id: PropertyId,
    /// Closing date.
    pub sold_on: NaiveDate,
    /// Sale price, dollars. Sales whose price is not a positive finite number (e.g. $0
    /// deed transfers) are not market sales and are skipped everywhere.
    pub price: f64,
    /// Days on market of a listed sale.
    pub days_on_market: Option<i32>,
    /// Zip code of the property.
    pub zip: Option<String>,
    /// Living area of the property, square feet.
    pub sqft: Option<i32>,
    /// Latitude of the property (WGS 84).
    pub lat: Option<f64>,
    /// Longitude of the property (WGS 84).
    pub lon: Option<f64>,
}

/// One property (from `curated.property_master`).
#[derive(Debug, Clone, PartialEq)]
pub struct Home {
    /// Property.
    pub property_id: PropertyId,
    /// Zip code.
    pub zip: Option<String>,
    /// Latitude (WGS 84).
    pub lat: Option<f64>,
    /// Longitude (WGS 84).
    pub lon: Option<f64>,
}

impl Home {
    /// The location facts of a property-master row.
    pub fn of(p: &PropertyMaster) -> Home {
        Home {
            property_id: p.property_id,
            zip: p.zip.clone(),
            lat: p.lat,
            lon: p.lon,
        }
    }
}

impl SaleFact {
    /// A sale with the property-master facts of its home (none when the home is unknown).
    pub fn of(sale: &Sale, home: Option<&PropertyMaster>) -> SaleFact {
        SaleFact {
            sale_id: sale.sale_id.0,
            property_id: sale.property_id,
            sold_on: sale.sold_on,
            price: sale.price,
            days_on_market: sale.days_on_market,
            zip: home.and_then(|p| p.zip.clone()),
            sqft: home.and_then(|p| p.sqft),
            lat: home.and_then(|p| p.lat),
            lon: home.and_then(|p| p.lon),
        }
    }
}

pub use roi_schemas::CityMonth;

/// Parses public monthly city market data in the `txhousing` layout and lands it in the
/// lake as `raw.city_market_monthly` (replacing it atomically), where `market-stats`
/// turns it into `city` rows. Returns the rows landed.
pub fn land_city_months(csv: &str, lake: &std::path::Path) -> crate::Result<usize> {
    use roi_schemas::Table;
    let rows = parse_txhousing(csv)?;
    let raw = lake.join("raw");
    let staging = raw.join(".city_market_monthly.staging");
    let dest = raw.join(CityMonth::NAME);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(crate::Error::io("removing", &staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(crate::Error::io("creating directory", &staging))?;
    let batch = CityMonth::to_batch(&rows).map_err(|e| crate::Error::Internal(e.to_string()))?;
    crate::job::write_parquet(
        &staging.join("part-00000.parquet"),
        CityMonth::schema(),
        &[batch],
    )?;
    if dest.exists() {
        std::fs::remove_dir_all(&dest).map_err(crate::Error::io("removing", &dest))?;
    }
    std::fs::rename(&staging, &dest).map_err(crate::Error::io("committing", &dest))?;
    Ok(rows.len())
}

/// H3 resolution of the per-cell statistics.
///
/// Resolution 8 cells average 0.74 km² (edge ~530 m): a few blocks, a few hundred to
/// a couple of thousand homes in US suburbs, so a year holds enough sales for a
/// meaningful trailing median while the cell stays finer than a zip (tens of km²) and
/// than the synthetic world's neighbourhoods (radius 0.8–2 km). Resolution 7 (5.2 km²)
/// would be about one cell per neighbourhood and add little to the zip figures.
pub const STATS_RESOLUTION: Resolution = Resolution::Eight;

/// Radius of the comparable-sales search, miles.
pub const RADIUS_MILES: f64 = 0.5;

/// Earth radius of [`haversine_miles`], miles (the mean radius, 6371.0 km).
pub const EARTH_RADIUS_MILES: f64 = 3958.8;

/// Metres in a statute mile.
pub const METERS_PER_MILE: f64 = 1609.344;

/// Look-back windows of [`comparables`], months.
pub const COMPARABLE_WINDOWS: [u32; 2] = [6, 12];

/// H3 resolution at which [`comparables`] indexes sales: cells of ~0.1 km² (average
/// edge 200 m), fine enough that the searched disk is a few times the 0.5-mile circle,
/// coarse enough that it holds only [`COMPARABLES_DISK_K`]-rings (127 cells).
pub const COMPARABLES_RESOLUTION: Resolution = Resolution::Nine;

/// A lower bound on the great-circle distance between the two ends of any cell edge
/// at [`COMPARABLES_RESOLUTION`], anywhere on the globe, metres.
///
/// H3 cells are not regular: the icosahedral gnomonic projection shrinks them towards
/// the twelve pentagons. Measured with h3o 0.11 over every cell of resolutions 5–7 the
/// shortest edge lies beside a pentagon and is 0.703 (class III resolutions) or 0.744
/// (class II) of the average edge; at resolution 9 the shortest edge around the
/// twelve pentagons is 141.12 m (0.703 × 200.79 m). 140 m leaves a margin for that and
/// for the small difference between H3's earth radius and [`EARTH_RADIUS_MILES`]. A
/// test re-measures the edges around every pentagon.
pub const COMPARABLES_MIN_EDGE_M: f64 = 140.0;

/// Grid radius `k` of the H3 disk searched around a home's cell: `⌊r / e_min⌋ + 1`
/// with `r` = [`RADIUS_MILES`] in metres and `e_min` = [`COMPARABLES_MIN_EDGE_M`];
/// 804.7 m / 140 m gives k = 6.
///
/// Why the disk covers the whole circle. H3 cells tile the sphere with three cells
/// meeting at every vertex, so cells that share a vertex share an edge (are grid
/// neighbours). Two cells that are *not* neighbours are therefore separated by at
/// least one whole edge: a path from one to the other must cross a third cell between
/// two of its non-adjacent edges, and with interior angles above 90° the shortest such
/// crossing runs along the edge between them, of length ≥ `e_min`. Hence two points
/// closer than `e_min` lie in the same or neighbouring cells. Now take a sale within
/// `r` of a home and cut the great-circle arc between them into `⌊r / e_min⌋ + 1`
/// equal pieces, each shorter than `e_min`: consecutive cut points lie in the same or
/// neighbouring cells, so the sale's cell is at most `⌊r / e_min⌋ + 1` = k grid steps
/// from the home's cell, i.e. inside `grid_disk(k)`. Nothing depends on where the home
/// lies inside its cell or on cells being regular, only on the shortest edge.
/// (Sampling points around the pentagons, the worst case needs 5 rings; on a regular
/// grid `(1.5k - 0.5) · e > r` would already allow 4.)
pub const COMPARABLES_DISK_K: u32 =
    (RADIUS_MILES * METERS_PER_MILE / COMPARABLES_MIN_EDGE_M) as u32 + 1;

/// Great-circle distance between two points given in degrees, miles, on a sphere of
/// radius [`EARTH_RADIUS_MILES`] (haversine formula).
pub fn haversine_miles(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let a = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    2.0 * EARTH_RADIUS_MILES * a.sqrt().min(1.0).asin()
}

/// Monthly statistics per zip and per H3 cell (at [`STATS_RESOLUTION`], area = the
/// cell index in hex) for every month from the area's first sale month through
/// `through`'s month.
///
/// Rows are dense per area: months without sales get `sales` 0 and null medians, but
/// the trailing-12 fields are still computed (over the 12 calendar months ending with
/// the row's, fewer at the start of the area's history). Sales after `through`, and
/// sales without a positive finite price, are ignored; a sale without a zip (or without
/// valid coordinates) only counts towards its cell (or its zip). Price per square foot
/// uses the sales with a positive `sqft`, days on market the sales that have one.
///
/// `properties` counts the distinct homes of `homes` in the area (null when there are
/// none, e.g. a zip the property master does not know), and
/// `turnover_12m = sales_12m / properties`. `yoy_appreciation` is `median_price_12m`
/// over the same area's `median_price_12m` twelve months earlier, minus 1, null when
/// either is null. Rows are sorted by `(area_kind, area, month)`.
pub fn area_stats(sales: &[SaleFact], homes: &[Home], through: NaiveDate) -> Vec<MarketStat> {
    let mut properties: HashMap<(AreaKind, String), i32> = HashMap::new();
    for home in unique_homes(homes) {
        for key in area_keys(home.zip.as_deref(), home.lat, home.lon) {
            *properties.entry(key).or_default() += 1;
        }
    }

    // Area keys are computed once per property (H3 indexing and key strings are the
    // expensive part), then each sale is filed under its areas by number.
    let mut key_ids: HashMap<(AreaKind, String), usize> = HashMap::new();
    let mut keys: Vec<(AreaKind, String)> = Vec::new();
    let mut by_property: HashMap<PropertyId, (&SaleFact, Vec<usize>)> = HashMap::new();
    let mut areas: Vec<Vec<&SaleFact>> = Vec::new();
    for sale in sales {
        if sale.sold_on > through || !is_price(sale.price) {
            continue;
        }
        let same_place = |a: &SaleFact| a.zip == sale.zip && a.lat == sale.lat && a.lon == sale.lon;
        let cached = by_property
            .get(&sale.property_id)
            .filter(|(first, _)| same_place(first))
            .map(|(_, ids)| ids.clone());
        let ids = match cached {
            Some(ids) => ids,
            None => {
                let ids: Vec<usize> = area_keys(sale.zip.as_deref(), sale.lat, sale.lon)
                    .map(|key| {
                        *key_ids.entry(key.clone()).or_insert_with(|| {
                            keys.push(key);
                            areas.push(Vec::new());
                            keys.len() - 1
                        })
                    })
                    .collect();
                by_property.insert(sale.property_id, (sale, ids.clone()));
                ids
            }
        };
        for id in ids {
            areas[id].push(sale);
        }
    }

    let through_month = month_index(through);
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|a, b| keys[*a].cmp(&keys[*b]));
    let per_area: Vec<Vec<MarketStat>> = order
        .into_par_iter()
        .map(|id| {
            let (kind, area) = &keys[id];
            let mut area_sales = areas[id].clone();
            area_sales.sort_by_key(|s| (s.sold_on, s.sale_id));
            let props = properties.get(&(*kind, area.clone())).copied();
            let mut rows = Vec::new();
            area_rows(*kind, area, &area_sales, through_month, props, &mut rows);
            rows
        })
        .collect();
    per_area.into_iter().flatten().collect()
}

/// Appends the dense monthly rows of one area; `sales` are sorted by date.
fn area_rows(
    kind: AreaKind,
    area: &str,
    sales: &[&SaleFact],
    through_month: i32,
    properties: Option<i32>,
    rows: &mut Vec<MarketStat>,
) {
    let Some(first) = sales.first() else {
        return;
    };
    let first_month = month_index(first.sold_on);
    let months: Vec<i32> = sales.iter().map(|s| month_index(s.sold_on)).collect();
    // Trailing medians by month offset from `first_month`, for the year-on-year ratio.
    let mut medians_12m: Vec<Option<f64>> = Vec::new();
    let (mut trail_start, mut month_end) = (0, 0);
    let mut scratch = Vec::new();
    for m in first_month..=through_month {
        let month_start = month_end;
        while month_end < sales.len() && months[month_end] <= m {
            month_end += 1;
        }
        while trail_start < month_end && months[trail_start] < m - 11 {
            trail_start += 1;
        }
        let month = &sales[month_start..month_end];
        let trailing = &sales[trail_start..month_end];

        scratch.clear();
        scratch.extend(month.iter().map(|s| s.price));
        let median_price = median(&mut scratch);
        scratch.clear();
        scratch.extend(month.iter().filter_map(|s| price_per_sqft(s)));
        let median_price_per_sqft = median(&mut scratch);
        scratch.clear();
        scratch.extend(
            month
                .iter()
                .filter_map(|s| s.days_on_market.filter(|d| *d >= 0).map(f64::from)),
        );
        let median_days_on_market = median(&mut scratch);
        scratch.clear();
        scratch.extend(trailing.iter().map(|s| s.price));
        let median_price_12m = median(&mut scratch);

        let offset = medians_12m.len();
        let year_ago = offset.checked_sub(12).and_then(|i| medians_12m[i]);
        medians_12m.push(median_price_12m);
        let sales_12m = count(trailing.len());
        let Some(month_date) = month_start_date(m) else {
            continue;
        };
        rows.push(MarketStat {
            area_kind: kind,
            area: area.to_string(),
            month: month_date,
            sales: count(month.len()),
            median_price,
            median_price_per_sqft,
            median_days_on_market,
            sales_12m,
            median_price_12m,
            yoy_appreciation: ratio_minus_one(median_price_12m, year_ago),
            properties,
            turnover_12m: properties
                .filter(|p| *p > 0)
                .map(|p| f64::from(sales_12m) / f64::from(p)),
        });
    }
}

/// The same statistics from pre-aggregated monthly city rows (real `txhousing` data:
/// no coordinates, no square footage, no days on market).
///
/// One row per city and month present in the input (missing months are not invented),
/// `area` = the city name. `sales` and `sales_12m` add up the known monthly sales (a
/// missing count adds nothing). The individual sales are not available, so
/// `median_price_12m` is the sales-weighted mean of the monthly medians over the 12
/// calendar months ending with the row's (months that lack either figure carry no
/// weight): an approximation of the true 12-month median, exact when the monthly price
/// distributions are alike and close when they drift slowly, which is what a trailing
/// appreciation figure needs. Duplicate rows of one city and month are merged the same
/// way. `yoy_appreciation` compares with the row twelve months earlier. `properties`,
/// `turnover_12m`, `median_price_per_sqft` and `median_days_on_market` are null. Rows
/// are sorted by `(area, month)`.
pub fn city_stats(rows: &[CityMonth]) -> Vec<MarketStat> {
    #[derive(Default)]
    struct Month {
        sales: f64,
        /// Σ median × sales and Σ sales over rows with both figures.
        weighted: f64,
        weight: f64,
        /// Medians of the month, for rows without a usable weight.
        medians: Vec<f64>,
    }

    let mut cities: BTreeMap<&str, BTreeMap<i32, Month>> = BTreeMap::new();
    for row in rows {
        let month = cities
            .entry(row.city.as_str())
            .or_default()
            .entry(month_index(row.month))
            .or_default();
        let sales = row.sales.filter(|s| s.is_finite() && *s >= 0.0);
        let median = row.median_price.filter(|p| is_price(*p));
        month.sales += sales.unwrap_or(0.0);
        if let Some(median) = median {
            month.medians.push(median);
            if let Some(sales) = sales.filter(|s| *s > 0.0) {
                month.weighted += median * sales;
                month.weight += sales;
            }
        }
    }

    let mut out = Vec::new();
    for (city, months) in cities {
        let mut medians_12m: BTreeMap<i32, Option<f64>> = BTreeMap::new();
        for (&m, month) in &months {
            let median_price = if month.weight > 0.0 {
                Some(month.weighted / month.weight)
            } else if month.medians.is_empty() {
                None
            } else {
                Some(month.medians.iter().sum::<f64>() / month.medians.len() as f64)
            };
            let (mut sales_12m, mut weighted, mut weight) = (0.0, 0.0, 0.0);
            for trailing in months.range(m - 11..=m).map(|(_, t)| t) {
                sales_12m += trailing.sales;
                weighted += trailing.weighted;
                weight += trailing.weight;
            }
            let median_price_12m = (weight > 0.0).then(|| weighted / weight);
            let year_ago = medians_12m.get(&(m - 12)).copied().flatten();
            medians_12m.insert(m, median_price_12m);
            let Some(month_date) = month_start_date(m) else {
                continue;
            };
            out.push(MarketStat {
                area_kind: AreaKind::City,
                area: city.to_string(),
                month: month_date,
                sales: round_count(month.sales),
                median_price,
                median_price_per_sqft: None,
                median_days_on_market: None,
                sales_12m: round_count(sales_12m),
                median_price_12m,
                yoy_appreciation: ratio_minus_one(median_price_12m, year_ago),
                properties: None,
                turnover_12m: None,
            });
        }
    }
    out
}

/// Table name used in the errors of [`parse_txhousing`].
const TXHOUSING: &str = "real.txhousing";

/// Parses the vendored `txhousing.csv` text (header
/// `rownames,city,year,month,sales,volume,median,listings,inventory,date`; columns are
/// found by name, so only `city`, `year`, `month`, `sales` and `median` are required)
/// into [`CityMonth`] rows. Empty fields and `NA` are missing values; fields may be
/// double-quoted; blank lines are skipped.
///
/// # Errors
///
/// [`crate::Error::Data`] naming the line (1 = the header) and the field for a missing
/// header or column, a row with the wrong number of fields, an empty city, a year or
/// month that is not one, or a sales count or median that is not a non-negative
/// number.
pub fn parse_txhousing(text: &str) -> crate::Result<Vec<CityMonth>> {
    let error = |message: String| crate::Error::Data {
        table: TXHOUSING.to_string(),
        message,
    };
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(error("empty file: expected a header line".to_string()));
    };
    let header = split_csv_line(header.trim_end_matches('\r'))
        .map_err(|message| error(format!("line 1 (header): {message}")))?;
    let column = |name: &str| {
        header.iter().position(|h| h.trim() == name).ok_or_else(|| {
            error(format!(
                "line 1 (header): no column `{name}` in `{}`",
                header.join(",")
            ))
        })
    };
    let (city_col, year_col, month_col) = (column("city")?, column("year")?, column("month")?);
    let (sales_col, median_col) = (column("sales")?, column("median")?);

    let mut rows = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = split_csv_line(line).map_err(|m| error(format!("line {line_no}: {m}")))?;
        if fields.len() != header.len() {
            return Err(error(format!(
                "line {line_no}: expected {} fields, found {}: `{line}`",
                header.len(),
                fields.len()
            )));
        }
        let field_error = |name: &str, value: &str, what: &str| {
            error(format!("line {line_no}: {name} `{value}` is not {what}"))
        };
        let city = fields[city_col].trim();
        if city.is_empty() || city == "NA" {
            return Err(field_error("city", city, "a city name"));
        }
        let year_text = fields[year_col].trim();
        let year: i32 = year_text
            .parse()
            .map_err(|_| field_error("year", year_text, "a year"))?;
        let month_text = fields[month_col].trim();
        let month = month_text
            .parse::<u32>()
            .ok()
            .and_then(|m| NaiveDate::from_ymd_opt(year, m, 1))
            .ok_or_else(|| field_error("month", month_text, "a month 1-12"))?;
        let number = |name: &str, col: usize| -> crate::Result<Option<f64>> {
            let text = fields[col].trim();
            if text.is_empty() || text == "NA" {
                return Ok(None);
            }
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Some(v)),
                _ => Err(field_error(name, text, "a non-negative number or NA")),
            }
        };
        rows.push(CityMonth {
            city: city.to_string(),
            month,
            sales: number("sales", sales_col)?,
            median_price: number("median", median_col)?,
        });
    }
    Ok(rows)
}

/// Splits one CSV line into fields, honouring double quotes (`""` inside quotes is a
/// quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".to_string());
    }
    fields.push(field);
    Ok(fields)
}

/// Comparable sales for every home with valid coordinates, as of `as_of`.
///
/// For each window of [`COMPARABLE_WINDOWS`] months, the comparables are the sales of
/// *other* properties closed in `(as_of - window, as_of]`, with valid coordinates and a
/// positive finite price, within [`RADIUS_MILES`] by [`haversine_miles`]. Candidates
/// come from an H3 index of the sales at [`COMPARABLES_RESOLUTION`], looked up in the
/// `grid_disk(`[`COMPARABLES_DISK_K`]`)` around the home's cell, which is guaranteed to
/// cover the whole circle, so the result equals an exhaustive scan.
///
/// One row per (home, window), sorted by `(property_id, window_months)`; a property
/// listed twice in `homes` is taken once, at its first valid coordinates. `sale_ids`
/// are nearest first (ties by sale id); medians are of price, of price per square foot
/// (sales with a positive `sqft`) and of distance; with no comparables the count is 0
/// and the medians and `nearest_mi` are null.
pub fn comparables(sales: &[SaleFact], homes: &[Home], as_of: NaiveDate) -> Vec<Comparables> {
    let longest = COMPARABLE_WINDOWS.iter().copied().max().unwrap_or(0);
    let earliest = window_start(as_of, longest);
    let recent: Vec<(&SaleFact, Point)> = sales
        .iter()
        .filter(|s| s.sold_on > earliest && s.sold_on <= as_of && is_price(s.price))
        .filter_map(|s| Point::new(s.lat, s.lon).map(|p| (s, p)))
        .collect();
    let mut index: HashMap<CellIndex, Vec<usize>> = HashMap::new();
    for (i, (_, point)) in recent.iter().enumerate() {
        index
            .entry(point.cell(COMPARABLES_RESOLUTION))
            .or_default()
            .push(i);
    }

    // Homes grouped by cell, so each disk is looked up once.
    let mut by_cell: HashMap<CellIndex, Vec<(PropertyId, Point)>> = HashMap::new();
    let mut seen: HashSet<PropertyId> = HashSet::new();
    for home in homes {
        let Some(point) = Point::new(home.lat, home.lon) else {
            continue;
        };
        if seen.insert(home.property_id) {
            by_cell
                .entry(point.cell(COMPARABLES_RESOLUTION))
                .or_default()
                .push((home.property_id, point));
        }
    }

    let mut rows = Vec::with_capacity(seen.len() * COMPARABLE_WINDOWS.len());
    let mut candidates = Vec::new();
    let mut found: Vec<(f64, &SaleFact)> = Vec::new();
    for (cell, cell_homes) in &by_cell {
        candidates.clear();
        for near in cell.grid_disk::<Vec<_>>(COMPARABLES_DISK_K) {
            if let Some(ids) = index.get(&near) {
                candidates.extend_from_slice(ids);
            }
        }
        for &(property_id, home) in cell_homes {
            found.clear();
            for &i in &candidates {
                let (sale, at) = recent[i];
                if sale.property_id == property_id {
                    continue;
                }
                let distance = haversine_miles(home.lat, home.lon, at.lat, at.lon);
                if distance <= RADIUS_MILES {
                    found.push((distance, sale));
                }
            }
            found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.sale_id.cmp(&b.1.sale_id)));
            for window in COMPARABLE_WINDOWS {
                let start = window_start(as_of, window);
                let within: Vec<(f64, &SaleFact)> = found
                    .iter()
                    .filter(|(_, s)| s.sold_on > start)
                    .copied()
                    .collect();
                rows.push(comparables_row(property_id, as_of, window, &within));
            }
        }
    }
    rows.sort_by_key(|r| (r.property_id, r.window_months));
    rows
}

/// One row of [`comparables`] from the comparables sorted nearest first.
fn comparables_row(
    property_id: PropertyId,
    as_of: NaiveDate,
    window: u32,
    found: &[(f64, &SaleFact)],
) -> Comparables {
    let mut prices: Vec<f64> = found.iter().map(|(_, s)| s.price).collect();
    let mut per_sqft: Vec<f64> = found
        .iter()
        .filter_map(|(_, s)| price_per_sqft(s))
        .collect();
    let mut distances: Vec<f64> = found.iter().map(|(d, _)| *d).collect();
    Comparables {
        property_id,
        as_of,
        window_months: i32::try_from(window).unwrap_or(i32::MAX),
        count: count(found.len()),
        median_price: median(&mut prices),
        median_price_per_sqft: median(&mut per_sqft),
        median_distance_mi: median(&mut distances),
        nearest_mi: found.first().map(|(d, _)| *d),
        sale_ids: found.iter().map(|(_, s)| s.sale_id).collect(),
    }
}

/// A valid WGS 84 position in degrees.
#[derive(Debug, Clone, Copy)]
struct Point {
    lat: f64,
    lon: f64,
    latlng: LatLng,
}

impl Point {
    /// The position, or `None` when a coordinate is missing, not finite or out of range.
    fn new(lat: Option<f64>, lon: Option<f64>) -> Option<Point> {
        let (lat, lon) = (lat?, lon?);
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return None;
        }
        let latlng = LatLng::new(lat, lon).ok()?;
        Some(Point { lat, lon, latlng })
    }

    fn cell(self, resolution: Resolution) -> CellIndex {
        self.latlng.to_cell(resolution)
    }
}

/// The zip and H3 areas (at [`STATS_RESOLUTION`]) a sale or home belongs to, as keyed in
/// `market_stats`.
pub fn area_keys(
    zip: Option<&str>,
    lat: Option<f64>,
    lon: Option<f64>,
) -> impl Iterator<Item = (AreaKind, String)> {
    let zip = zip
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(|z| (AreaKind::Zip, z.to_string()));
    let cell = Point::new(lat, lon).map(|p| (AreaKind::H3, p.cell(STATS_RESOLUTION).to_string()));
    zip.into_iter().chain(cell)
}

/// `homes` without repeated property ids (first occurrence wins).
fn unique_homes(homes: &[Home]) -> impl Iterator<Item = &Home> {
    let mut seen: HashSet<PropertyId> = HashSet::new();
    homes.iter().filter(move |h| seen.insert(h.property_id))
}

/// Whether a price is a market price.
fn is_price(price: f64) -> bool {
    price.is_finite() && price > 0.0
}

fn price_per_sqft(sale: &SaleFact) -> Option<f64> {
    sale.sqft
        .filter(|q| *q > 0)
        .map(|q| sale.price / f64::from(q))
}

/// Median (mean of the two middle values for an even count); reorders `values`.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    // Selection, not a full sort: O(n) per median, which matters for trailing windows.
    let n = values.len();
    let mid = n / 2;
    let (below, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    Some(if n % 2 == 1 {
        upper
    } else {
        let lower = below
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(upper);
        (lower + upper) / 2.0
    })
}

/// `now / before - 1`, null when either is null or `before` is not positive.
fn ratio_minus_one(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    match (now, before) {
        (Some(now), Some(before)) if before > 0.0 => Some(now / before - 1.0),
        _ => None,
    }
}

/// Months since year 0: consecutive months are consecutive integers.
fn month_index(date: NaiveDate) -> i32 {
    date.year() * 12 + date.month0() as i32
}

fn month_start_date(index: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
}

/// The exclusive start of a look-back of `months` ending at `as_of` (day clamped to
/// the month's end, e.g. 31 August - 6 months = 28/29 February).
fn window_start(as_of: NaiveDate, months: u32) -> NaiveDate {
    as_of
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn round_count(n: f64) -> i32 {
    // `as` saturates; the sums are of non-negative finite counts.
    n.round() as i32
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A tiny deterministic generator (64-bit LCG, top 53 bits).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn below(&mut self, n: u64) -> u64 {
            (self.next() * n as f64) as u64
        }
    }

    /// The point `miles` from (lat, lon) on bearing `bearing` (radians).
    fn destination(lat: f64, lon: f64, miles: f64, bearing: f64) -> (f64, f64) {
        let d = miles / EARTH_RADIUS_MILES;
        let (phi1, lambda1) = (lat.to_radians(), lon.to_radians());
        let phi2 = (phi1.sin() * d.cos() + phi1.cos() * d.sin() * bearing.cos()).asin();
        let lambda2 = lambda1
            + (bearing.sin() * d.sin() * phi1.cos()).atan2(d.cos() - phi1.sin() * phi2.sin());
        let lon2 = (lambda2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        (phi2.to_degrees(), lon2)
    }

    fn sale(id: i64, property: i64, sold_on: NaiveDate, price: f64) -> SaleFact {
        SaleFact {
            sale_id: id,
            property_id: PropertyId(property),
            sold_on,
            price,
            days_on_market: None,
            zip: None,
            sqft: None,
            lat: None,
            lon: None,
        }
    }

    fn plain_median(mut v: Vec<f64>) -> Option<f64> {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    /// Exhaustive O(homes × sales) scan with no spatial index.
    fn brute_force(sales: &[SaleFact], homes: &[Home], as_of: NaiveDate) -> Vec<Comparables> {
        let mut homes_by_id: BTreeMap<PropertyId, (f64, f64)> = BTreeMap::new();
        for h in homes {
            if let Some(p) = Point::new(h.lat, h.lon) {
                homes_by_id.entry(h.property_id).or_insert((p.lat, p.lon));
            }
        }
        let mut rows = Vec::new();
        for (&pid, &(lat, lon)) in &homes_by_id {
            for window in [6u32, 12] {
                let start = as_of.checked_sub_months(Months::new(window)).unwrap();
                let mut found: Vec<(f64, &SaleFact)> = sales
                    .iter()
                    .filter(|s| s.property_id != pid && s.sold_on > start && s.sold_on <= as_of)
                    .filter(|s| s.price.is_finite() && s.price > 0.0)
                    .filter_map(|s| {
                        let p = Point::new(s.lat, s.lon)?;
                        let d = haversine_miles(lat, lon, p.lat, p.lon);
                        (d <= RADIUS_MILES).then_some((d, s))
                    })
                    .collect();
                found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.sale_id.cmp(&b.1.sale_id)));
                rows.push(Comparables {
                    property_id: pid,
                    as_of,
                    window_months: window as i32,
                    count: found.len() as i32,
                    median_price: plain_median(found.iter().map(|f| f.1.price).collect()),
                    median_price_per_sqft: plain_median(
                        found
                            .iter()
                            .filter(|f| f.1.sqft.is_some_and(|q| q > 0))
                            .map(|f| f.1.price / f64::from(f.1.sqft.unwrap()))
                            .collect(),
                    ),
                    median_distance_mi: plain_median(found.iter().map(|f| f.0).collect()),
                    nearest_mi: found.first().map(|f| f.0),
                    sale_ids: found.iter().map(|f| f.1.sale_id).collect(),
                });
            }
        }
        rows
    }

    #[test]
    fn disk_radius_follows_from_the_shortest_edge() {
        assert_eq!(COMPARABLES_DISK_K, 6);
        // The shortest edges of the grid lie beside the pentagons: re-measure them.
        let mut shortest = f64::MAX;
        for pentagon in COMPARABLES_RESOLUTION.pentagons() {
            for cell in pentagon.grid_disk::<Vec<_>>(30) {
                for edge in cell.edges() {
                    let b = edge.boundary();
                    let (a, z) = (b.first().unwrap(), b.last().unwrap());
                    let miles = haversine_miles(a.lat(), a.lng(), z.lat(), z.lng());
                    shortest = shortest.min(miles * METERS_PER_MILE);
                }
            }
        }
        assert!(
            shortest >= COMPARABLES_MIN_EDGE_M,
            "shortest edge {shortest} m"
        );
        assert!(
            shortest < COMPARABLES_MIN_EDGE_M * 1.05,
            "bound too loose: {shortest} m"
        );
    }

    #[test]
    fn comparables_equal_an_exhaustive_scan() {
        let as_of = day(2025, 8, 31);
        let pentagon = LatLng::from(COMPARABLES_RESOLUTION.pentagons().next().unwrap());
        let centres = [
            (30.2672, -97.7431),              // Austin
            (42.0308, -93.6319),              // Ames
            (pentagon.lat(), pentagon.lng()), // the most distorted cells
            (-17.0, 179.995),                 // across the antimeridian
            (64.0, -21.9),                    // far north
        ];
        let mut rng = Lcg(20_250_831);
        let mut homes = Vec::new();
        let mut sales = Vec::new();
        for (c, &(lat, lon)) in centres.iter().enumerate() {
            for _ in 0..120 {
                let pid = homes.len() as i64 + 1;
                let miles = 2.0 * rng.next().sqrt();
                let (hlat, hlon) = destination(lat, lon, miles, rng.next() * std::f64::consts::TAU);
                let missing = rng.below(40) == 0;
                homes.push(Home {
                    property_id: PropertyId(pid),
                    zip: Some(format!("{c:05}")),
                    lat: (!missing).then_some(hlat),
                    lon: Some(hlon),
                });
            }
        }
        // A repeated home: taken once, at its first coordinates.
        homes.push(Home {
            property_id: PropertyId(3),
            ..homes[10].clone()
        });
        let n_homes = homes.len() as u64;
        for i in 0..1500 {
            let anchor = &homes[rng.below(n_homes) as usize];
            let (Some(alat), Some(alon)) = (anchor.lat, anchor.lon) else {
                continue;
            };
            // A third of the sales sit right at the radius, the rest around the home.
            let miles = if i % 3 == 0 {
                0.49 + 0.02 * rng.next()
            } else {
                1.2 * rng.next()
            };
            let (lat, lon) = destination(alat, alon, miles, rng.next() * std::f64::consts::TAU);
            let sold_on = match rng.below(10) {
                0 => as_of,
                1 => day(2025, 2, 28), // exactly six months back: 12-month window only
                2 => day(2024, 8, 31), // exactly twelve months back: excluded
                3 => day(2025, 9, 1),  // after as_of: excluded
                _ => as_of - chrono::Days::new(rng.below(400)),
            };
            let property = if rng.below(5) == 0 {
                anchor.property_id.0 // a sale of the home itself
            } else {
                10_000 + i
            };
            sales.push(SaleFact {
                sale_id: 1_000_000 - i * 7 % 1000 * 1000 - i,
                property_id: PropertyId(property),
                sold_on,
                price: if rng.below(50) == 0 {
                    0.0
                } else {
                    (200_000 + 1000 * rng.below(300)) as f64
                },
                days_on_market: None,
                zip: None,
                sqft: match rng.below(4) {
                    0 => None,
                    1 => Some(0),
                    _ => Some(1000 + rng.below(2000) as i32),
                },
                lat: (rng.below(50) != 0).then_some(lat),
                lon: Some(lon),
            });
        }
        // Equal distances: a twin of a sale, to check ties by sale id.
        let mut twin = sales[1].clone();
        twin.sale_id = 5;
        sales.push(twin);

        let fast = comparables(&sales, &homes, as_of);
        let slow = brute_force(&sales, &homes, as_of);
        assert_eq!(fast.len(), slow.len());
        for (f, s) in fast.iter().zip(&slow) {
            assert_eq!(f, s);
        }
        // The case exercised the edges: many comparables, and sales on both sides of
        // the radius.
        let total: i32 = fast.iter().map(|r| r.count).sum();
        assert!(total > 500, "only {total} comparables");
        let (mut inside, mut outside) = (0, 0);
        for h in homes.iter().filter_map(|h| Point::new(h.lat, h.lon)) {
            for p in sales.iter().filter_map(|s| Point::new(s.lat, s.lon)) {
                let d = haversine_miles(h.lat, h.lon, p.lat, p.lon);
                if (0.49..=RADIUS_MILES).contains(&d) {
                    inside += 1;
                } else if d > RADIUS_MILES && d <= 0.51 {
                    outside += 1;
                }
            }
        }
        assert!(
            inside > 100 && outside > 100,
            "{inside} inside, {outside} outside"
        );
        assert!(fast.iter().any(|r| r.window_months == 6 && r.count > 0));
    }

    #[test]
    fn comparables_rows_order_and_empty_windows() {
        let home = Home {
            property_id: PropertyId(1),
            zip: None,
            lat: Some(30.0),
            lon: Some(-97.0),
        };
        let at = |miles: f64| destination(30.0, -97.0, miles, 1.0);
        let mut sales = Vec::new();
        for (id, property, miles, sold_on, sqft) in [
            (30, 2, 0.2, day(2025, 5, 1), Some(1000)),
            (20, 3, 0.2, day(2025, 1, 15), None), // same distance: lower id first
            (10, 4, 0.1, day(2024, 9, 1), Some(2000)),
            (40, 1, 0.0, day(2025, 5, 1), Some(1000)), // the home itself
            (50, 5, 0.6, day(2025, 5, 1), Some(1000)), // too far
        ] {
            let (lat, lon) = at(miles);
            sales.push(SaleFact {
                sqft,
                lat: Some(lat),
                lon: Some(lon),
                ..sale(id, property, sold_on, 100_000.0 * id as f64)
            });
        }
        let lonely = Home {
            property_id: PropertyId(0),
            lat: Some(31.0),
            ..home.clone()
        };
        let rows = comparables(&sales, &[home, lonely], day(2025, 6, 30));
        assert_eq!(rows.len(), 4);
        assert_eq!(
            (rows[0].property_id, rows[0].window_months),
            (PropertyId(0), 6)
        );
        assert_eq!(rows[1].count, 0);
        assert_eq!(rows[1].median_price, None);
        assert_eq!(rows[1].nearest_mi, None);
        let six = &rows[2];
        assert_eq!((six.window_months, six.sale_ids.clone()), (6, vec![20, 30]));
        assert_eq!(six.median_price, Some(2_500_000.0));
        assert_eq!(six.median_price_per_sqft, Some(3000.0));
        let twelve = &rows[3];
        assert_eq!(twelve.sale_ids, vec![10, 20, 30]);
        assert_eq!(twelve.median_price, Some(2_000_000.0));
        assert_eq!(twelve.median_price_per_sqft, Some((500.0 + 3000.0) / 2.0));
        assert!((twelve.nearest_mi.unwrap() - 0.1).abs() < 1e-9);
        assert!((twelve.median_distance_mi.unwrap() - 0.2).abs() < 1e-9);
    }

    #[test]
    fn area_stats_by_zip_and_cell() {
        let (lat, lon) = (30.2672, -97.7431);
        let cell = LatLng::new(lat, lon)
            .unwrap()
            .to_cell(STATS_RESOLUTION)
            .to_string();
        let mut homes: Vec<Home> = (1..=4)
            .map(|i| Home {
                property_id: PropertyId(i),
                zip: Some("78701".into()),
                lat: Some(lat),
                lon: Some(lon),
            })
            .collect();
        homes.push(homes[0].clone()); // counted once
        homes.push(Home {
            property_id: PropertyId(9),
            zip: Some("78702".into()),
            lat: None,
            lon: None,
        });
        let in_zip = |id: i64, sold_on, price, sqft, dom| SaleFact {
            zip: Some("78701".into()),
            sqft,
            days_on_market: dom,
            lat: Some(lat),
            lon: Some(lon),
            ..sale(id, id % 4 + 1, sold_on, price)
        };
        let mut sales = vec![
            in_zip(2, day(2024, 1, 20), 200_000.0, Some(1600), Some(20)),
            in_zip(1, day(2024, 1, 10), 100_000.0, Some(1000), Some(10)),
            in_zip(3, day(2024, 1, 25), 400_000.0, None, None),
            in_zip(4, day(2024, 3, 5), 300_000.0, Some(1500), Some(30)),
            in_zip(5, day(2025, 1, 15), 330_000.0, None, None),
            in_zip(6, day(2025, 2, 1), 500_000.0, None, None),
            in_zip(7, day(2025, 2, 20), 900_000.0, None, None), // after `through`
            in_zip(8, day(2025, 6, 1), 900_000.0, None, None),  // after `through`
            in_zip(9, day(2024, 6, 1), 0.0, None, None),        // not a market sale
        ];
        // No coordinates: counted in its zip only.
        sales.push(SaleFact {
            zip: Some("78702".into()),
            ..sale(10, 9, day(2024, 12, 3), 250_000.0)
        });
        let rows = area_stats(&sales, &homes, day(2025, 2, 15));

        let zip: Vec<&MarketStat> = rows.iter().filter(|r| r.area == "78701").collect();
        let h3: Vec<&MarketStat> = rows.iter().filter(|r| r.area == cell).collect();
        let other: Vec<&MarketStat> = rows.iter().filter(|r| r.area == "78702").collect();
        assert_eq!(rows.len(), zip.len() + h3.len() + other.len());
        assert_eq!(zip.len(), 14, "January 2024 to February 2025, dense");
        assert_eq!(other.len(), 3, "December 2024 to February 2025");
        assert!(h3.iter().all(|r| r.area_kind == AreaKind::H3));
        for (z, h) in zip.iter().zip(&h3) {
            assert_eq!(
                MarketStat {
                    area_kind: AreaKind::H3,
                    area: cell.clone(),
                    ..(*z).clone()
                },
                **h
            );
        }
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.area_kind, r.area.clone(), r.month))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(rows[0].area_kind, AreaKind::Zip);

        let jan = zip[0];
        assert_eq!((jan.month, jan.sales), (day(2024, 1, 1), 3));
        assert_eq!(jan.median_price, Some(200_000.0)); // odd count
        assert_eq!(jan.median_price_per_sqft, Some(112.5)); // (100 + 125) / 2
        assert_eq!(jan.median_days_on_market, Some(15.0));
        assert_eq!((jan.sales_12m, jan.median_price_12m), (3, Some(200_000.0)));
        assert_eq!((jan.properties, jan.turnover_12m), (Some(4), Some(0.75)));
        assert_eq!(jan.yoy_appreciation, None);

        let feb = zip[1];
        assert_eq!((feb.month, feb.sales), (day(2024, 2, 1), 0));
        assert_eq!((feb.median_price, feb.median_price_per_sqft), (None, None));
        assert_eq!(feb.median_days_on_market, None);
        assert_eq!((feb.sales_12m, feb.median_price_12m), (3, Some(200_000.0)));

        let mar = zip[2];
        assert_eq!((mar.sales, mar.median_price_per_sqft), (1, Some(200.0)));
        assert_eq!((mar.sales_12m, mar.median_price_12m), (4, Some(250_000.0))); // even count
        assert_eq!(mar.turnover_12m, Some(1.0));

        let dec = zip[11];
        assert_eq!((dec.month, dec.sales_12m), (day(2024, 12, 1), 4));

        let jan25 = zip[12];
        assert_eq!(
            (jan25.sales_12m, jan25.median_price_12m),
            (2, Some(315_000.0))
        );
        assert!((jan25.yoy_appreciation.unwrap() - 0.575).abs() < 1e-12);

        let feb25 = zip[13];
        assert_eq!((feb25.month, feb25.sales), (day(2025, 2, 1), 1));
        assert_eq!(
            (feb25.sales_12m, feb25.median_price_12m),
            (3, Some(330_000.0))
        );
        assert!((feb25.yoy_appreciation.unwrap() - 0.65).abs() < 1e-12);

        assert_eq!(other[0].properties, Some(1));
        assert_eq!(other[2].sales_12m, 1);
    }

    #[test]
    fn area_stats_without_known_homes_and_empty_input() {
        let lone = SaleFact {
            zip: Some("99999".into()),
            ..sale(1, 1, day(2024, 5, 5), 1.0)
        };
        let rows = area_stats(&[lone], &[], day(2024, 6, 1));
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[1].properties, rows[1].turnover_12m), (None, None));
        assert!(area_stats(&[], &[], day(2024, 6, 1)).is_empty());
        assert!(area_stats(&[sale(1, 1, day(2024, 5, 5), 1.0)], &[], day(2024, 4, 1)).is_empty());
    }

    /// A txhousing-shaped file: `Testville` from January 2000 to February 2001, 10 sales
    /// a month at a median of 100 000, except March 2000 (median NA), May 2000 (sales
    /// missing, median 999 999), January 2001 (30 sales at 200 000) and February 2001
    /// (10 at 150 000).
    fn testville() -> String {
        let mut text =
            String::from("rownames,city,year,month,sales,volume,median,listings,inventory,date\n");
        let mut months = Vec::new();
        for m in 1..=12 {
            months.push((2000, m, "10.0", "100000.0"));
        }
        months[2].3 = "NA";
        months[4].2 = "";
        months[4].3 = "999999.0";
        months.push((2001, 1, "30.0", "200000.0"));
        months.push((2001, 2, "10.0", "150000.0"));
        for (i, (y, m, s, p)) in months.into_iter().enumerate() {
            text.push_str(&format!(
                "{},Testville,{y},{m},{s},NA,{p},,NA,{y}.0\n",
                i + 1
            ));
        }
        text.push_str("15,\"Other, TX\",2000,1,NA,NA,NA,NA,NA,2000.0\r\n\n");
        text
    }

    #[test]
    fn city_stats_from_txhousing_rows() {
        let rows = parse_txhousing(&testville()).unwrap();
        assert_eq!(rows.len(), 15);
        assert_eq!(
            rows[2],
            CityMonth {
                city: "Testville".into(),
                month: day(2000, 3, 1),
                sales: Some(10.0),
                median_price: None,
            }
        );
        assert_eq!(
            (rows[4].sales, rows[4].median_price),
            (None, Some(999_999.0))
        );
        assert_eq!(rows[14].city, "Other, TX");

        let stats = city_stats(&rows);
        assert_eq!(stats.len(), 15);
        let other = &stats[0];
        assert_eq!(
            (other.area.as_str(), other.sales, other.median_price),
            ("Other, TX", 0, None)
        );
        assert_eq!((other.sales_12m, other.median_price_12m), (0, None));
        let t: Vec<&MarketStat> = stats.iter().filter(|s| s.area == "Testville").collect();
        assert!(t.iter().all(|s| s.area_kind == AreaKind::City
            && s.properties.is_none()
            && s.turnover_12m.is_none()
            && s.median_price_per_sqft.is_none()
            && s.median_days_on_market.is_none()));
        assert_eq!(
            (t[0].month, t[0].sales, t[0].median_price),
            (day(2000, 1, 1), 10, Some(100_000.0))
        );
        assert_eq!(
            (t[0].median_price_12m, t[0].yoy_appreciation),
            (Some(100_000.0), None)
        );
        assert_eq!(
            (t[2].sales, t[2].median_price, t[2].sales_12m),
            (10, None, 30)
        );
        // A median without a sales count is shown but carries no weight.
        assert_eq!((t[4].sales, t[4].median_price), (0, Some(999_999.0)));
        assert_eq!(
            (t[4].sales_12m, t[4].median_price_12m),
            (40, Some(100_000.0))
        );
        // January 2001: Feb–Dec 2000 give 9 weighted months of 10 at 100 000 and 10
        // counted months; January 2001 adds 30 at 200 000.
        let jan = t[12];
        assert_eq!(
            (jan.month, jan.sales, jan.sales_12m),
            (day(2001, 1, 1), 30, 130)
        );
        assert_eq!(jan.median_price_12m, Some(15_000_000.0 / 120.0));
        assert!((jan.yoy_appreciation.unwrap() - 0.25).abs() < 1e-12);
        // February 2001: Mar–Dec 2000 (8 weighted months), 30 × 200 000, 10 × 150 000.
        let feb = t[13];
        let expected = (80.0 * 100_000.0 + 30.0 * 200_000.0 + 10.0 * 150_000.0) / 120.0;
        assert_eq!(feb.median_price_12m, Some(expected));
        assert!((feb.yoy_appreciation.unwrap() - (expected / 100_000.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn parse_txhousing_names_the_bad_line() {
        let header = "rownames,city,year,month,sales,volume,median,listings,inventory,date\n";
        let good = "1,Abilene,2000,1,72.0,5380000.0,71400.0,701.0,6.3,2000.0\n";
        for (bad, expected) in [
            (
                "2,Abilene,2000,13,72.0,1,71400.0,1,1,2000.0",
                "line 3: month `13` is not a month 1-12",
            ),
            (
                "2,Abilene,2000,2,lots,1,71400.0,1,1,2000.0",
                "line 3: sales `lots` is not a non-negative",
            ),
            (
                "2,Abilene,2000,2,72.0,1,-5,1,1,2000.0",
                "line 3: median `-5` is not",
            ),
            (
                "2,Abilene,20x0,2,72.0,1,5,1,1,2000.0",
                "line 3: year `20x0` is not a year",
            ),
            (
                "2,,2000,2,72.0,1,5,1,1,2000.0",
                "line 3: city `` is not a city name",
            ),
            (
                "2,Abilene,2000,2,72.0",
                "line 3: expected 10 fields, found 5",
            ),
            (
                "2,\"Abilene,2000,2,72.0,1,5,1,1,2000.0",
                "line 3: unterminated quoted field",
            ),
        ] {
            let text = format!("{header}{good}{bad}\n{good}");
            let err = parse_txhousing(&text).unwrap_err();
            assert!(matches!(err, crate::Error::Data { .. }));
            let message = err.to_string();
            assert!(message.starts_with("real.txhousing: "), "{message}");
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
        let err = parse_txhousing("rownames,city,year,month,sales\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1 (header): no column `median`"),
            "{err}"
        );
        let err = parse_txhousing("").unwrap_err();
        assert!(err.to_string().contains("empty file"), "{err}");
        assert!(parse_txhousing(header).unwrap().is_empty());
    }

    #[test]
    fn haversine_known_distances() {
        let degree = haversine_miles(30.0, -97.0, 31.0, -97.0);
        assert!((degree - 69.09).abs() < 0.01, "{degree}");
        assert_eq!(haversine_miles(30.0, -97.0, 30.0, -97.0), 0.0);
        let across = haversine_miles(0.0, 179.9, 0.0, -179.9);
        assert!((across - 0.2 * 69.093).abs() < 0.01, "{across}");
        let half_world = haversine_miles(0.0, 0.0, 0.0, 180.0);
        assert!((half_world - std::f64::consts::PI * EARTH_RADIUS_MILES).abs() < 1e-6);
    }

    #[test]
    fn vendored_txhousing_gives_austin_appreciation() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../datasets/real/txhousing.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let rows = parse_txhousing(&text).unwrap();
        assert_eq!(rows.len(), 8602);
        let stats = city_stats(&rows);
        assert_eq!(stats.len(), 8602);
        let austin_2013: Vec<&MarketStat> = stats
            .iter()
            .filter(|s| s.area == "Austin" && s.month.year() == 2013)
            .collect();
        assert_eq!(austin_2013.len(), 12);
        for s in &austin_2013 {
            let yoy = s.yoy_appreciation.unwrap();
            assert!((0.02..0.2).contains(&yoy), "{}: {yoy}", s.month);
            assert!(s.sales > 1000 && s.sales_12m > 20_000, "{s:?}");
        }
    }
}
