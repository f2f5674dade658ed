//! JSON and Arrow round trips for every table, and validation error messages.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use roi_schemas::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .expect("valid test timestamp")
}

fn roundtrip<
    T: Table + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
>(
    rows: Vec<T>,
) {
    let batch = T::to_batch(&rows).expect("encode");
    assert_eq!(batch.schema(), T::schema());
    assert_eq!(
        T::from_batch(&batch).expect("decode"),
        rows,
        "arrow round trip of {}",
        T::NAME
    );
    let ndjson: String = rows
        .iter()
        .map(|r| serde_json::to_string(r).expect("json") + "\n")
        .collect();
    let back: Vec<T> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("parse"))
        .collect();
    assert_eq!(back, rows, "json round trip of {}", T::NAME);
}

fn property() -> Property {
    Property {
        property_id: PropertyId(1),
        parcel_id: "0902-11-001".into(),
        address: "12 Oak St".into(),
        city: "Ames".into(),
        state: "IA".into(),
        zip: "50010".into(),
        metro_id: MetroId(1),
        lat: 42.03,
        lon: -93.62,
        property_type: PropertyType::SingleFamily,
        sqft: 1650,
        beds: 3,
        baths: 2.5,
        lot_sqft: 8000,
        year_built: 1978,
        condition: 3,
    }
}

#[test]
fn every_table_round_trips() {
    roundtrip(vec![Organization {
        org_id: OrgId(1),
        name: "Prairie Title".into(),
        kind: OrgKind::TitleCompany,
        mfa_required: true,
    }]);
    roundtrip(vec![Territory {
        territory_id: TerritoryId(3),
        org_id: OrgId(1),
        name: "North".into(),
        zips: vec!["50010".into(), "50014".into()],
    }]);
    roundtrip(vec![Agent {
        agent_id: AgentId(4),
        org_id: OrgId(1),
        name: "Ana Ruiz".into(),
        email: "ana@example.com".into(),
        territory_id: None,
        skills: vec![IntentKind::Sell, IntentKind::Refinance],
        capacity: 40,
        conversion_rate: 0.12,
        closed_deals: 31,
    }]);
    roundtrip(vec![Contact {
        contact_id: ContactId(9),
        org_id: OrgId(1),
        first_name: "Lee".into(),
        last_name: "Park".into(),
        email: "lee@example.com".into(),
        property_id: PropertyId(1),
        agent_id: Some(AgentId(4)),
        closed_on: date(2015, 6, 30),
        email_opt_in: false,
    }]);
    roundtrip(vec![property()]);
    roundtrip(vec![Sale {
        sale_id: SaleId(1),
        property_id: PropertyId(1),
        sold_on: date(2019, 5, 2),
        price: 231_000.0,
        days_on_market: Some(12),
        seller_contact_id: None,
        buyer_contact_id: Some(ContactId(9)),
    }]);
    roundtrip(vec![Loan {
        loan_id: LoanId(1),
        property_id: PropertyId(1),
        contact_id: Some(ContactId(9)),
        purpose: LoanPurpose::Purchase,
        originated_on: date(2019, 5, 2),
        amount: 184_800.0,
        rate_pct: 4.125,
        term_months: 360,
        closed_on: None,
    }]);
    roundtrip(vec![PropertyRecord {
        record_id: RecordId(77),
        source: RecordSource::Mls,
        source_key: "MLS-1234".into(),
        observed_at: ts(1_556_000_000_000),
        parcel_id: None,
        address: Some("12 Oak Street".into()),
        city: Some("Ames".into()),
        state: Some("IA".into()),
        zip: Some("50010".into()),
        lat: None,
        lon: None,
        property_type: Some(PropertyType::SingleFamily),
        sqft: Some(1700),
        beds: Some(3),
        baths: None,
        lot_sqft: None,
        year_built: Some(1978),
        condition: None,
        value_estimate: Some(235_000.0),
        days_on_market: Some(12),
        contact_id: None,
    }]);
    roundtrip(vec![Metro {
        metro_id: MetroId(1),
        name: "Ames".into(),
        state: "IA".into(),
        lat: 42.03,
        lon: -93.62,
    }]);
    roundtrip(vec![Neighbourhood {
        zip: "50010".into(),
        metro_id: MetroId(1),
        name: "North Ames".into(),
        lat: 42.05,
        lon: -93.62,
    }]);
    roundtrip(vec![PriceIndex {
        metro_id: MetroId(1),
        month: date(2020, 1, 1),
        index: 1.07,
    }]);
    roundtrip(vec![MortgageRate {
        month: date(2020, 1, 1),
        rate_30y_pct: 3.6,
        rate_15y_pct: 3.1,
    }]);
    roundtrip(vec![IntentSnapshot {
        contact_id: ContactId(9),
        snapshot_on: date(2024, 2, 1),
        p_sell: 0.02,
        p_buy: 0.01,
        p_refinance: 0.2,
        p_investment: 0.003,
    }]);
    roundtrip(vec![Outcome {
        contact_id: ContactId(9),
        kind: IntentKind::Refinance,
        occurred_at: ts(1_710_000_000_000),
        property_id: PropertyId(1),
        sale_id: None,
        loan_id: Some(LoanId(2)),
    }]);
    roundtrip(vec![PropertyValue {
        property_id: PropertyId(1),
        as_of: date(2025, 12, 31),
        value: 250_000.0,
    }]);
    roundtrip(vec![RecordLink {
        record_id: RecordId(77),
        property_id: PropertyId(1),
    }]);
    roundtrip(vec![Parcel {
        property_id: PropertyId(1),
        parcel_id: "03-78701-0000001".into(),
    }]);
    roundtrip(vec![
        PropertyMaster {
            property_id: PropertyId(1),
            parcel_id: "03-78701-0000001".into(),
            address: Some("12 OAK ST UNIT 5".into()),
            city: Some("AUSTIN".into()),
            state: Some("TX".into()),
            zip: Some("78701".into()),
            metro_id: Some(MetroId(2)),
            lat: Some(30.27),
            lon: Some(-97.74),
            property_type: Some(PropertyType::Condo),
            sqft: Some(900),
            beds: Some(2),
            baths: Some(1.0),
            lot_sqft: None,
            year_built: Some(2004),
            condition: Some(4),
            record_count: 3,
            sources: vec![RecordSource::Assessor, RecordSource::Mls],
            last_observed_at: Some(ts(1_700_000_000_000)),
        },
        PropertyMaster::unknown(PropertyId(2), "03-78701-0000002".into()),
    ]);
    roundtrip(vec![FieldProvenance {
        property_id: PropertyId(1),
        field: "sqft".into(),
        source: RecordSource::Mls,
        record_id: RecordId(5),
        observed_at: ts(1_700_000_000_000),
        rule: "newest of assessor/mls".into(),
    }]);
    roundtrip(vec![RecordMatch {
        record_id: RecordId(5),
        source: RecordSource::Owner,
        property_id: None,
        rule: MatchRule::Unmatched,
    }]);
    roundtrip(vec![QualityIssue {
        kind: QualityKind::Conflict,
        property_id: Some(PropertyId(1)),
        record_id: Some(RecordId(5)),
        field: Some("sqft".into()),
        detail: "sqft: assessor 1800, mls 2150 (winner mls)".into(),
    }]);
    roundtrip(vec![MarketStat {
        area_kind: AreaKind::H3,
        area: "8826cc0001fffff".into(),
        month: date(2025, 6, 1),
        sales: 4,
        median_price: Some(310_000.0),
        median_price_per_sqft: Some(181.5),
        median_days_on_market: None,
        sales_12m: 40,
        median_price_12m: Some(300_000.0),
        yoy_appreciation: Some(0.031),
        properties: Some(812),
        turnover_12m: Some(0.049),
    }]);
    roundtrip(vec![Comparables {
        property_id: PropertyId(1),
        as_of: date(2025, 12, 31),
        window_months: 6,
        count: 2,
        median_price: Some(300_000.0),
        median_price_per_sqft: Some(170.0),
        median_distance_mi: Some(0.21),
        nearest_mi: Some(0.1),
        sale_ids: vec![11, 7],
    }]);
    roundtrip(vec![CityMonth {
        city: "Austin".into(),
        month: date(2013, 5, 1),
        sales: Some(3012.0),
        median_price: None,
    }]);
    roundtrip(vec![PropertyFinancials {
        property_id: PropertyId(1),
        as_of: date(2025, 1, 15),
        value: 300_000.0,
        balance: 186_108.71,
        equity: 113_891.29,
        equity_pct: 0.38,
        ltv: 0.62,
        loan_rate_pct: Some(6.0),
        payment: Some(1_199.1),
        market_rate_pct: Some(4.0),
        refinance_saving: Some(310.59),
        break_even_months: None,
        cash_out: 53_891.29,
    }]);
    roundtrip(vec![Alert {
        alert_id: "a-1".into(),
        org_id: OrgId(1),
        contact_id: ContactId(9),
        property_id: Some(PropertyId(1)),
        kind: IntentKind::Sell,
        score: 0.71,
        confidence: 0.8,
        reasons: vec!["viewed valuation 6x this week vs 0.4/week usual".into()],
        model_version: "sell-1".into(),
        created_at: ts(1_710_000_000_000),
        status: AlertStatus::New,
        assignee: None,
    }]);
}

fn arb_event() -> impl Strategy<Value = Event> {
    (
        any::<i64>(),
        1i64..100,
        0i64..1_000_000,
        0usize..EventType::ALL.len(),
        0i64..4_000_000_000_000,
        proptest::option::of(0i64..1_000_000),
        proptest::option::of("[0-9]{5}"),
        proptest::option::of(0.0f64..2_000_000.0),
    )
        .prop_map(|(id, org, contact, ty, ms, session, zip, amount)| Event {
            event_id: EventId(id),
            org_id: OrgId(org),
            contact_id: ContactId(contact),
            event_type: EventType::ALL[ty],
            ts: ts(ms),
            session_id: session.map(SessionId),
            property_id: session.map(PropertyId),
            document_id: None,
            listing_id: session.map(ListingId),
            search_zip: zip,
            campaign_id: None,
            amount,
        })
}

proptest! {
    #[test]
    fn events_round_trip_through_json_and_arrow(events in proptest::collection::vec(arb_event(), 0..40)) {
        let far_future = Some(ts(5_000_000_000_000));
        for e in &events {
            let line = serde_json::to_string(e).expect("json");
            prop_assert_eq!(&parse_event_line(&line, far_future).expect("parse"), e);
        }
        let batch = Event::to_batch(&events).expect("encode");
        prop_assert_eq!(Event::from_batch(&batch).expect("decode"), events);
    }
}

#[test]
fn event_type_names_are_stable_and_parse() {
    assert_eq!(EventType::ALL.len(), 15);
    for t in EventType::ALL {
        assert_eq!(t.as_str().parse::<EventType>().expect("parse"), *t);
    }
    assert_eq!(EventType::RefinanceCalcUsed.as_str(), "refinance_calc_used");
    let err = "teleported".parse::<EventType>().expect_err("unknown type");
    assert!(err.to_string().contains("\"teleported\""), "{err}");
}

#[test]
fn every_rejection_names_field_and_value() {
    let now = Some(ts(1_750_000_000_000));
    let cases = [
        (
            r#"{"event_id":1,"org_id":1,"contact_id":"#,
            RejectReason::MalformedJson,
            None,
            "JSON",
        ),
        (r#"[1,2]"#, RejectReason::MalformedJson, None, "object"),
        (
            r#"{"event_id":1,"org_id":1,"event_type":"login","ts":"2024-01-01T00:00:00Z"}"#,
            RejectReason::MissingField,
            Some("contact_id"),
            "contact_id",
        ),
        (
            r#"{"event_id":1,"org_id":1,"contact_id":3,"event_type":"teleported","ts":"2024-01-01T00:00:00Z"}"#,
            RejectReason::UnknownEventType,
            Some("event_type"),
            "teleported",
        ),
        (
            r#"{"event_id":1,"org_id":1,"contact_id":"x","event_type":"login","ts":"2024-01-01T00:00:00Z"}"#,
            RejectReason::InvalidField,
            Some("contact_id"),
            "\"x\"",
        ),
        (
            r#"{"event_id":1,"org_id":1,"contact_id":3,"event_type":"login","ts":"yesterday"}"#,
            RejectReason::InvalidTimestamp,
            Some("ts"),
            "yesterday",
        ),
        (
            r#"{"event_id":1,"org_id":1,"contact_id":3,"event_type":"login","ts":"2099-01-01T00:00:00Z"}"#,
            RejectReason::FutureTimestamp,
            Some("ts"),
            "2099-01-01",
        ),
        (
            r#"{"event_id":1,"org_id":1,"contact_id":3,"event_type":"login","ts":"2024-01-01T00:00:00Z","amount":"lots"}"#,
            RejectReason::InvalidField,
            Some("amount"),
            "lots",
        ),
    ];
    for (line, reason, field, needle) in cases {
        let r = parse_event_line(line, now).expect_err(line);
        assert_eq!(r.reason, reason, "{line}: {r}");
        assert_eq!(r.field, field, "{line}: {r}");
        assert!(
            r.message.contains(needle),
            "{line}: message {:?} lacks {needle:?}",
            r.message
        );
    }
}

#[test]
fn entity_validation_names_field_and_value() {
    let mut p = property();
    p.validate().expect("valid property");
    p.zip = "5001".into();
    let msg = p.validate().expect_err("bad zip").to_string();
    assert!(
        msg.contains("properties.zip") && msg.contains("\"5001\""),
        "{msg}"
    );
    let mut p = property();
    p.condition = 9;
    let msg = p.validate().expect_err("bad condition").to_string();
    assert!(
        msg.contains("properties.condition") && msg.contains("9"),
        "{msg}"
    );
}

#[test]
fn decoding_reports_missing_and_mistyped_columns() {
    let batch = Sale::to_batch(&[]).expect("encode");
    let msg = Loan::from_batch(&batch)
        .expect_err("wrong table")
        .to_string();
    assert!(msg.contains("loans") && msg.contains("loan_id"), "{msg}");
    let batch = MortgageRate::to_batch(&[]).expect("encode");
    let renamed = arrow::record_batch::RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("metro_id", arrow::datatypes::DataType::Date32, false),
            arrow::datatypes::Field::new("month", arrow::datatypes::DataType::Date32, false),
            arrow::datatypes::Field::new("index", arrow::datatypes::DataType::Float64, false),
        ])),
        vec![
            batch.column(0).clone(),
            batch.column(0).clone(),
            batch.column(1).clone(),
        ],
    )
    .expect("batch");
    let msg = PriceIndex::from_batch(&renamed)
        .expect_err("mistyped")
        .to_string();
    assert!(
        msg.contains("metro_id") && msg.contains("Date32") && msg.contains("Int64"),
        "{msg}"
    );
}

#[test]
fn loan_amortises_to_zero() {
    let loan = Loan {
        loan_id: LoanId(1),
        property_id: PropertyId(1),
        contact_id: None,
        purpose: LoanPurpose::Purchase,
        originated_on: date(2020, 1, 1),
        amount: 200_000.0,
        rate_pct: 6.0,
        term_months: 360,
        closed_on: None,
    };
    assert!((loan.monthly_payment() - 1199.10).abs() < 0.01);
    assert!((loan.balance_after(0) - 200_000.0).abs() < 1e-6);
    assert!(loan.balance_after(360) < 1e-3);
    assert!(loan.balance_after(120) < 200_000.0 && loan.balance_after(120) > 150_000.0);
}
