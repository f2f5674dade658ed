//! Contacts as campaigns see them: homeowners with an e-mail consent state, and the CSV
//! files users import them from ([`parse_csv`], a pure function).
//!
//! Consent is `subscribed`, `unsubscribed`, `bounced` or `complained`; only `subscribed`
//! contacts are ever mailed. Every change is kept with when, why and by whom
//! (the store's `consent_changes`). An import may record that a contact left (any state
//! other than `subscribed`) but can never put a contact who left back on the list: that
//! takes the contact's own action or an explicit change by a manager.
//!
//! ## CSV import format
//! UTF-8, comma-separated, with a header row. Columns (any order; only `email` is
//! required; an empty cell leaves an existing contact's value as it is):
//!
//! | column | meaning |
//! | --- | --- |
//! | `email` | the address (matched case-insensitively to existing contacts) |
//! | `first_name`, `last_name` | names |
//! | `consent` | `subscribed` (default for new contacts), `unsubscribed`, `bounced`, `complained` |
//! | `address`, `city`, `state`, `zip` | the home's address (`zip`: five digits) |
//! | `property_type` | `single_family`, `townhouse`, `condo` or `multi_family` |
//! | `beds`, `baths`, `sqft`, `year_built` | numbers |
//! | `closed_on` | when the purchase closed, `YYYY-MM-DD` |
//!
//! A row with a bad value is reported (row number, column, value, reason) and skipped; the
//! other rows are imported. An unknown column rejects the whole file, naming it, so a
//! misspelt header never silently drops data.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a contact may be mailed, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Consent {
    /// On the list: campaigns may mail them.
    Subscribed,
    /// They left (or never agreed).
    Unsubscribed,
    /// Their address bounced permanently.
    Bounced,
    /// They marked a message as spam.
    Complained,
}

impl Consent {
    /// Every state.
    pub const ALL: &'static [Consent] = &[
        Consent::Subscribed,
        Consent::Unsubscribed,
        Consent::Bounced,
        Consent::Complained,
    ];

    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Subscribed => "subscribed",
            Consent::Unsubscribed => "unsubscribed",
            Consent::Bounced => "bounced",
            Consent::Complained => "complained",
        }
    }
}

impl std::str::FromStr for Consent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Consent::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a consent state; use subscribed, unsubscribed, bounced or complained"
                )
            })
    }
}

/// Property types a contact's home may have.
pub const PROPERTY_TYPES: &[&str] = &["single_family", "townhouse", "condo", "multi_family"];

/// One contact read from a CSV file. `None` fields were empty (or absent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRow {
    /// 1-based line of the file (the header is line 1).
    pub row: u64,
    /// Lower-cased address.
    pub email: String,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Consent state.
    pub consent: Option<Consent>,
    /// Street address.
    pub address: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Two-letter state.
    pub state: Option<String>,
    /// Five-digit zip code.
    pub zip: Option<String>,
    /// One of [`PROPERTY_TYPES`].
    pub property_type: Option<String>,
    /// Bedrooms.
    pub beds: Option<f64>,
    /// Bathrooms.
    pub baths: Option<f64>,
    /// Living area, square feet.
    pub sqft: Option<f64>,
    /// Year built.
    pub year_built: Option<f64>,
    /// Purchase close date, days since 1970-01-01.
    pub closed_on_day: Option<i64>,
}

/// Why one row (or the whole file) was not imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// 1-based line of the file (1 is the header; 0 for the file as a whole).
    pub row: u64,
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// The value at fault, when one is.
    pub value: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// Columns an import file may have.
pub const IMPORT_COLUMNS: &[&str] = &[
    "email",
    "first_name",
    "last_name",
    "consent",
    "address",
    "city",
    "state",
    "zip",
    "property_type",
    "beds",
    "baths",
    "sqft",
    "year_built",
    "closed_on",
];

/// Most rows one import may hold.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// Reads an import file: the rows that are valid, and an error for each that is not.
/// `Err` (one error) when the file as a whole cannot be read: no header, no `email`
/// column, an unknown or repeated column, or more than [`MAX_IMPORT_ROWS`] rows.
pub fn parse_csv(bytes: &[u8]) -> Result<(Vec<ImportRow>, Vec<RowError>), RowError> {
    let whole = |message: String| RowError {
        row: 0,
        column: None,
        value: None,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| whole(format!("the header row cannot be read: {e}")))?
        .clone();
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(whole(
            "the file is empty: it needs a header row naming its columns (at least email)"
                .to_owned(),
        ));
    }
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for name in header.iter() {
        let lower = name.trim_start_matches('\u{feff}').to_lowercase();
        let Some(known) = IMPORT_COLUMNS.iter().copied().find(|c| *c == lower) else {
            return Err(RowError {
                row: 1,
                column: Some(name.to_owned()),
                value: None,
                message: format!(
                    "unknown column {name:?}; the columns are {}",
                    IMPORT_COLUMNS.join(", ")
                ),
            });
        };
        if columns.contains(&known) {
            return Err(RowError {
                row: 1,
                column: Some(name.to_owned()),
                value: None,
                message: format!("column {name:?} appears twice"),
            });
        }
        columns.push(known);
    }
    if !columns.contains(&"email") {
        return Err(RowError {
            row: 1,
            column: Some("email".to_owned()),
            value: None,
            message: "the header has no email column".to_owned(),
        });
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashMap::new();
    // (byte offset, 1-based line at that offset)
    let mut counted: (usize, u64) = (0, 1);
    for (i, record) in reader.records().enumerate() {
        if rows.len() + errors.len() >= MAX_IMPORT_ROWS {
            return Err(whole(format!(
                "more than {MAX_IMPORT_ROWS} rows; split the file"
            )));
        }
        // The record's line in the file, counted from its byte offset (the reader's own
        // line count skips blank lines).
        let row_no = match record.as_ref().ok().and_then(|r| r.position()) {
            Some(p) => {
                // The position may be where a skipped blank line began.
                let mut at = (p.byte() as usize).min(bytes.len());
                while at < bytes.len() && matches!(bytes[at], b'\n' | b'\r') {
                    at += 1;
                }
                if at >= counted.0 {
                    counted.1 +=
                        bytes[counted.0..at].iter().filter(|b| **b == b'\n').count() as u64;
                    counted.0 = at;
                }
                counted.1
            }
            None => i as u64 + 2,
        };
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    row: row_no,
                    column: None,
                    value: None,
                    message: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() > columns.len() {
            errors.push(RowError {
                row: row_no,
                column: None,
                value: None,
                message: format!(
                    "has {} fields but the header names {}",
                    record.len(),
                    columns.len()
                ),
            });
            continue;
        }
        match parse_row(row_no, &columns, &record) {
            Ok(row) => {
                if let Some(first) = seen.insert(row.email.clone(), row_no) {
                    errors.push(RowError {
                        row: row_no,
                        column: Some("email".to_owned()),
                        value: Some(row.email),
                        message: format!("the same address is on row {first}"),
                    });
                } else {
                    rows.push(row);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((rows, errors))
}

fn parse_row(
    row_no: u64,
    columns: &[&'static str],
    record: &csv::StringRecord,
) -> Result<ImportRow, RowError> {
    let bad = |column: &str, value: &str, message: String| RowError {
        row: row_no,
        column: Some(column.to_owned()),
        value: Some(value.to_owned()),
        message,
    };
    let mut row = ImportRow {
        row: row_no,
        ..ImportRow::default()
    };
    for (&column, value) in columns.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        if value.len() > 500 {
            return Err(bad(
                column,
                &value[..value.floor_char_boundary(40)],
                "longer than 500 characters".to_owned(),
            ));
        }
        let text = || Some(value.to_owned());
        let number = |min: f64, max: f64| -> Result<Option<f64>, RowError> {
            match value.replace(',', "").parse::<f64>() {
                Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Some(v)),
                Ok(_) => Err(bad(
                    column,
                    value,
                    format!("must be between {min} and {max}"),
                )),
                Err(_) => Err(bad(column, value, "is not a number".to_owned())),
            }
        };
        match column {
            "email" => row.email = check_email(value).map_err(|m| bad(column, value, m))?,
            "first_name" => row.first_name = text(),
            "last_name" => row.last_name = text(),
            "consent" => {
                row.consent = Some(
                    value
                        .to_lowercase()
                        .parse()
                        .map_err(|m| bad(column, value, m))?,
                )
            }
            "address" => row.address = text(),
            "city" => row.city = text(),
            "state" => {
                if value.len() != 2 || !value.chars().all(|c| c.is_ascii_alphabetic()) {
                    return Err(bad(
                        column,
                        value,
                        "must be a two-letter state code".to_owned(),
                    ));
                }
                row.state = Some(value.to_uppercase());
            }
            "zip" => {
                if value.len() != 5 || !value.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad(column, value, "must be five digits".to_owned()));
                }
                row.zip = text();
            }
            "property_type" => {
                let lower = value.to_lowercase();
                if !PROPERTY_TYPES.contains(&lower.as_str()) {
                    return Err(bad(
                        column,
                        value,
                        format!("must be one of {}", PROPERTY_TYPES.join(", ")),
                    ));
                }
                row.property_type = Some(lower);
            }
            "beds" => row.beds = number(0.0, 100.0)?,
            "baths" => row.baths = number(0.0, 100.0)?,
            "sqft" => row.sqft = number(1.0, 1_000_000.0)?,
            "year_built" => row.year_built = number(1600.0, 2200.0)?,
            "closed_on" => {
                let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map_err(|_| bad(column, value, "must be a date, YYYY-MM-DD".to_owned()))?;
                row.closed_on_day = Some(days_since_epoch(day));
            }
            _ => {}
        }
    }
    if row.email.is_empty() {
        return Err(RowError {
            row: row_no,
            column: Some("email".to_owned()),
            value: None,
            message: "is empty".to_owned(),
        });
    }
    Ok(row)
}

/// Lower-cases and checks an address's shape.
pub fn check_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email)
    } else {
        Err("is not an e-mail address".to_owned())
    }
}

/// Days since 1970-01-01.
pub fn days_since_epoch(day: chrono::NaiveDate) -> i64 {
    day.signed_duration_since(chrono::NaiveDate::default())
        .num_days()
}

/// The date `days` after 1970-01-01.
pub fn date_of_day(days: i64) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::default().checked_add_signed(chrono::TimeDelta::try_days(days)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_valid_rows_and_reports_bad_ones() {
        let file = "Email,first_name,last_name,consent,zip,beds,closed_on,property_type\n\
                    ANA@Example.com,Ana,Diaz,,50010,3,2019-03-03,Condo\n\
                    bob@example,Bob,Lee,,50010,3,,\n\
                    cy@example.com,Cy,Ng,gone,50010,,,\n\
                    dee@example.com,Dee,Ray,unsubscribed,5001,,,\n\
                    eve@example.com,Eve,Ok,,,,2019-02-30,\n\
                    \n\
                    ana@example.com,Ana,Again,,,,,\n\
                    fay@example.com,Fay,Fi,complained,,4.5,,single_family\n";
        let (rows, errors) = parse_csv(file.as_bytes()).expect("readable");
        assert_eq!(rows.len(), 2, "{errors:?}");
        assert_eq!(rows[0].email, "ana@example.com");
        assert_eq!(rows[0].row, 2);
        assert_eq!(rows[0].property_type.as_deref(), Some("condo"));
        assert_eq!(
            rows[0].closed_on_day.and_then(date_of_day),
            chrono::NaiveDate::from_ymd_opt(2019, 3, 3)
        );
        assert_eq!(rows[1].consent, Some(Consent::Complained));
        assert_eq!(rows[1].beds, Some(4.5));
        let got: Vec<(u64, Option<&str>, &str)> = errors
            .iter()
            .map(|e| (e.row, e.column.as_deref(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (3, Some("email"), "is not an e-mail address"),
                (
                    4,
                    Some("consent"),
                    "\"gone\" is not a consent state; use subscribed, unsubscribed, bounced or complained"
                ),
                (5, Some("zip"), "must be five digits"),
                (6, Some("closed_on"), "must be a date, YYYY-MM-DD"),
                (8, Some("email"), "the same address is on row 2"),
            ]
        );
    }

    #[test]
    fn whole_file_errors_name_the_column() {
        let err = parse_csv(b"email,frist_name\na@b.co,Ann\n").expect_err("unknown column");
        assert_eq!(err.row, 1);
        assert_eq!(err.column.as_deref(), Some("frist_name"));
        assert!(
            err.message.starts_with("unknown column \"frist_name\""),
            "{}",
            err.message
        );
        let err = parse_csv(b"first_name\nAnn\n").expect_err("no email");
        assert_eq!(err.message, "the header has no email column");
        let err = parse_csv(b"email,Email\n").expect_err("twice");
        assert_eq!(err.message, "column \"Email\" appears twice");
        let err = parse_csv(b"").expect_err("empty");
        assert!(
            err.message.starts_with("the file is empty"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_row_with_too_many_fields_is_reported() {
        let (rows, errors) =
            parse_csv(b"email,zip\na@b.co,50010,extra\nc@d.co,50011\n").expect("readable");
        assert_eq!(rows.len(), 1);
        assert_eq!(errors[0].row, 2);
        assert_eq!(errors[0].message, "has 3 fields but the header names 2");
    }
}
