//! The world's clock: months as integers, and timestamp text.
//!
//! Month 0 is January 2000. The world's history starts there; the intent simulation
//! starts at [`SIM_START`], behaviour events at [`EVENTS_START`], and everything ends
//! before [`WORLD_END`] (January 2026).

use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// A month index: 0 = 2000-01.
pub type Month = i32;

/// First month of the intent simulation (burn-in without events): 2022-01.
pub const SIM_START: Month = 22 * 12;
/// First month with behaviour events and intent snapshots: 2022-07.
pub const EVENTS_START: Month = 22 * 12 + 6;
/// First month after the world: 2026-01.
pub const WORLD_END: Month = 26 * 12;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// First day of `m`.
pub fn month_start(m: Month) -> NaiveDate {
    NaiveDate::from_ymd_opt(2000 + m.div_euclid(12), (m.rem_euclid(12) + 1) as u32, 1)
        .expect("month index within chrono's range")
}

/// Unix milliseconds at 00:00 UTC on the first day of `m`.
pub fn month_start_ms(m: Month) -> i64 {
    month_start(m)
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis()
}

/// Days in month `m`.
pub fn days_in_month(m: Month) -> i64 {
    (month_start_ms(m + 1) - month_start_ms(m)) / DAY_MS
}

/// The month containing `date`.
pub fn month_of(date: NaiveDate) -> Month {
    (date.year() - 2000) * 12 + date.month0() as i32
}

/// The date `day` days (0-based) into month `m`.
pub fn day_in_month(m: Month, day: i64) -> NaiveDate {
    month_start(m) + chrono::Duration::days(day.clamp(0, days_in_month(m) - 1))
}

/// Unix milliseconds to a UTC timestamp.
pub fn ts_from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).expect("world timestamps are within chrono's range")
}

/// Appends `ms` as RFC 3339 with millisecond precision (`2024-03-05T14:03:22.120Z`).
///
/// Hand-rolled because it runs once per generated event; tested against chrono.
pub fn push_rfc3339_ms(out: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut buf[0..4], y);
    put_digits(&mut buf[5..7], mo);
    put_digits(&mut buf[8..10], d);
    put_digits(&mut buf[11..13], h);
    put_digits(&mut buf[14..16], mi);
    put_digits(&mut buf[17..19], s);
    put_digits(&mut buf[20..23], milli);
    out.extend_from_slice(&buf);
}

fn put_digits(slot: &mut [u8], mut v: i64) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_chrono() {
        for ms in [
            0i64,
            951_782_400_123,
            1_709_647_402_120,
            1_767_225_599_999,
            4_102_444_800_000,
        ] {
            let mut out = Vec::new();
            push_rfc3339_ms(&mut out, ms);
            let expected = ts_from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(String::from_utf8(out).expect("ascii"), expected);
        }
    }

    #[test]
    fn months_round_trip() {
        assert_eq!(
            month_start(SIM_START),
            NaiveDate::from_ymd_opt(2022, 1, 1).expect("date")
        );
        assert_eq!(month_of(month_start(EVENTS_START)), EVENTS_START);
        assert_eq!(
            days_in_month(month_of(NaiveDate::from_ymd_opt(2024, 2, 1).expect("d"))),
            29
        );
        assert_eq!(
            month_start(WORLD_END - 1),
            NaiveDate::from_ymd_opt(2025, 12, 1).expect("d")
        );
    }
}
