//! Financials of each home: its current mortgage's amortised balance, equity, LTV, what
//! refinancing at today's rate would save and when it breaks even, and the cash a
//! cash-out refinance could release.
//!
//! Conventions (the formulas are unit-tested against hand-computed cases):
//! - the current loan is the newest loan originated on or before the as-of date and not
//!   closed by then; months paid = whole months since origination;
//! - refinancing replaces the balance with a new 30-year fixed loan at the market rate of
//!   the month before the as-of date; closing costs are [`CLOSING_COST_SHARE`] of the
//!   balance plus [`CLOSING_COST_FIXED`]; break-even = closing costs / monthly saving;
//! - cash-out potential = [`CASH_OUT_MAX_LTV`] × value − balance, floored at zero.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use roi_schemas::{Loan, MortgageRate, PropertyFinancials, PropertyId, PropertyValuation};

/// Closing costs of a refinance as a share of the balance.
pub const CLOSING_COST_SHARE: f64 = 0.02;
/// Fixed closing costs of a refinance, dollars.
pub const CLOSING_COST_FIXED: f64 = 1_500.0;
/// Highest loan-to-value lenders allow on a cash-out refinance.
pub const CASH_OUT_MAX_LTV: f64 = 0.80;

/// Monthly payment of a fully amortising loan.
pub fn monthly_payment(amount: f64, rate_pct: f64, term_months: i32) -> f64 {
    let n = f64::from(term_months.max(1));
    let r = rate_pct / 1200.0;
    if r == 0.0 {
        amount / n
    } else {
        amount * r / (1.0 - (1.0 + r).powf(-n))
    }
}

/// Whole months from `from` to `to` (0 when `to` is earlier).
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i32 {
    let months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    let months = if to.day() < from.day() {
        months - 1
    } else {
        months
    };
    months.max(0)
}

/// The position of `valuation`'s property at its date, given its loans and the market
/// rate.
pub fn position(
    valuation: &PropertyValuation,
    loans: &[&Loan],
    market_rate_pct: Option<f64>,
) -> PropertyFinancials {
    let as_of = valuation.as_of;
    let current = loans
        .iter()
        .filter(|l| l.originated_on <= as_of && l.closed_on.is_none_or(|c| c > as_of))
        .max_by_key(|l| (l.originated_on, l.loan_id));
    let (balance, rate, payment, remaining) = match current {
        Some(l) => {
            let paid = months_between(l.originated_on, as_of);
            (
                l.balance_after(paid),
                Some(l.rate_pct),
                Some(l.monthly_payment()),
                l.term_months - paid.min(l.term_months),
            )
        }
        None => (0.0, None, None, 0),
    };
    let value = valuation.value;
    let (refinance_saving, break_even_months) = match (payment, market_rate_pct) {
        (Some(payment), Some(market)) if balance > 0.0 && remaining > 0 => {
            let saving = payment - monthly_payment(balance, market, 360);
            let costs = CLOSING_COST_SHARE * balance + CLOSING_COST_FIXED;
            (Some(saving), (saving > 0.0).then(|| costs / saving))
        }
        _ => (None, None),
    };
    PropertyFinancials {
        property_id: valuation.property_id,
        as_of,
        value,
        balance,
        equity: value - balance,
        equity_pct: if value > 0.0 {
            (value - balance) / value
        } else {
            0.0
        },
        ltv: if value > 0.0 { balance / value } else { 0.0 },
        loan_rate_pct: rate,
        payment,
        market_rate_pct,
        refinance_saving,
        break_even_months,
        cash_out: (CASH_OUT_MAX_LTV * value - balance).max(0.0),
    }
}

/// Positions of every valued property.
pub fn positions(
    valuations: &[PropertyValuation],
    loans: &[Loan],
    rates: &[MortgageRate],
) -> Vec<PropertyFinancials> {
    let mut by_property: HashMap<PropertyId, Vec<&Loan>> = HashMap::new();
    for l in loans {
        by_property.entry(l.property_id).or_default().push(l);
    }
    let mut rates: Vec<&MortgageRate> = rates.iter().collect();
    rates.sort_by_key(|r| r.month);
    let market = |d: NaiveDate| {
        // The latest month published before the as-of month.
        let first = d.with_day(1).unwrap_or(d);
        rates
            .iter()
            .rev()
            .find(|r| r.month < first)
            .map(|r| r.rate_30y_pct)
    };
    valuations
        .iter()
        .map(|v| {
            let loans = by_property
                .get(&v.property_id)
                .map_or(&[][..], Vec::as_slice);
            position(v, loans, market(v.as_of))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use roi_schemas::{LoanId, LoanPurpose};

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn loan(id: i64, originated: NaiveDate, amount: f64, rate: f64) -> Loan {
        Loan {
            loan_id: LoanId(id),
            property_id: PropertyId(1),
            contact_id: None,
            purpose: LoanPurpose::Purchase,
            originated_on: originated,
            amount,
            rate_pct: rate,
            term_months: 360,
            closed_on: None,
        }
    }

    fn valuation(value: f64) -> PropertyValuation {
        PropertyValuation {
            property_id: PropertyId(1),
            as_of: date(2025, 1, 15),
            value,
            low: value,
            high: value,
            coverage: 0.8,
            model_id: "m".into(),
        }
    }

    #[test]
    fn payment_and_months_by_hand() {
        // 200,000 at 6% over 30 years: 1,199.10 a month (standard amortisation table).
        assert!((monthly_payment(200_000.0, 6.0, 360) - 1_199.10).abs() < 0.01);
        assert!((monthly_payment(1_200.0, 0.0, 12) - 100.0).abs() < 1e-12);
        assert_eq!(months_between(date(2020, 1, 15), date(2025, 1, 15)), 60);
        assert_eq!(months_between(date(2020, 1, 20), date(2025, 1, 15)), 59);
        assert_eq!(months_between(date(2025, 2, 1), date(2025, 1, 15)), 0);
    }

    #[test]
    fn position_by_hand() {
        // 200,000 at 6% from 2020-01-15; 60 payments made by 2025-01-15.
        // Balance = 200000 * 1.005^60 - 1199.101 * (1.005^60 - 1) / 0.005 = 186,108.71.
        let l = loan(1, date(2020, 1, 15), 200_000.0, 6.0);
        let p = position(&valuation(300_000.0), &[&l], Some(4.0));
        assert!((p.balance - 186_108.71).abs() < 0.05, "{}", p.balance);
        assert!((p.equity - 113_891.29).abs() < 0.05);
        assert!((p.ltv - 0.620_362).abs() < 1e-5);
        // New 30-year loan of 186,108.71 at 4%: 888.51 a month; saving 310.59.
        let saving = p.refinance_saving.unwrap();
        assert!((saving - 310.59).abs() < 0.02, "{saving}");
        // Closing costs 2% + 1,500 = 5,222.17; break-even 16.8 months.
        assert!((p.break_even_months.unwrap() - 16.81).abs() < 0.01);
        // Cash out: 0.8 * 300,000 - 186,108.71.
        assert!((p.cash_out - 53_891.29).abs() < 0.05);
    }

    #[test]
    fn the_newest_open_loan_counts_and_no_loan_means_no_debt() {
        let old = Loan {
            closed_on: Some(date(2021, 6, 1)),
            ..loan(1, date(2015, 3, 1), 150_000.0, 4.5)
        };
        let refi = loan(2, date(2021, 6, 1), 160_000.0, 3.0);
        let later = loan(3, date(2026, 1, 1), 10.0, 9.0);
        let p = position(&valuation(400_000.0), &[&old, &refi, &later], Some(6.5));
        assert_eq!(p.loan_rate_pct, Some(3.0));
        assert!(
            p.refinance_saving.unwrap() < 0.0,
            "rate lock-in: refinancing costs more"
        );
        assert_eq!(p.break_even_months, None);
        let free = position(&valuation(400_000.0), &[], Some(6.5));
        assert_eq!((free.balance, free.equity_pct, free.ltv), (0.0, 1.0, 0.0));
        assert_eq!(free.cash_out, 320_000.0);
        assert_eq!(free.refinance_saving, None);
    }
}
