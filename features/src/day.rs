//! Calendar days: the granularity of every feature window.
//!
//! A window of *N* days as of day *D* covers the whole UTC days *D − N + 1 ..= D*; a
//! feature "as of day *D*" sees every event whose time is at or before the end of *D*.

/// Days since 1970-01-01 (UTC).
pub type Day = i32;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// The day containing `ts_ms`.
pub fn day_of(ts_ms: i64) -> Day {
    ts_ms.div_euclid(DAY_MS) as Day
}

/// The last millisecond of `day`.
pub fn end_of_day_ms(day: Day) -> i64 {
    (i64::from(day) + 1) * DAY_MS - 1
}

/// The calendar date of `day`.
pub fn date(day: Day) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .expect("day within chrono's range")
        .date_naive()
}

/// The day of a calendar date.
pub fn day_of_date(d: chrono::NaiveDate) -> Day {
    day_of(
        d.and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp_millis(),
    )
}

/// Months since 2000-01 of `day` (the lake's monthly series are keyed by month).
/// Pure arithmetic (Howard Hinnant's civil-from-days): it runs for every snapshot.
pub fn month_index(day: Day) -> i32 {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    ((year - 2000) * 12 + month - 1) as i32
}

/// The first day of month `month` (months since 2000-01, as [`month_index`] counts).
pub fn month_start(month: i32) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(
        2000 + month.div_euclid(12),
        month.rem_euclid(12) as u32 + 1,
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_index_matches_chrono() {
        use chrono::Datelike;
        for day in (-800..30_000).step_by(7) {
            let d = date(day);
            assert_eq!(
                month_index(day),
                (d.year() - 2000) * 12 + d.month0() as i32,
                "{d}"
            );
            assert_eq!(month_start(month_index(day)), d.with_day(1), "{d}");
        }
    }
}
