//! Stream == batch: the incremental state answers every feature and signal exactly as the
//! point-in-time computation over raw events does, whatever the arrival order.

use proptest::prelude::*;
use roi_features::catalog::{FeatureVector, Inputs};
use roi_features::context::Facts;
use roi_features::day::{DAY_MS, Day, day_of, end_of_day_ms};
use roi_features::history::{EventHistory, Touch};
use roi_features::signal::{SignalInputs, fire};
use roi_features::state::ContactState;

const BASE_DAY: Day = 19_500;

fn arb_touch() -> impl Strategy<Value = (Touch, i64)> {
    (
        0i32..160,
        0i64..DAY_MS,
        0u8..15,
        proptest::option::of(0i64..25),
        proptest::option::of(0i64..6),
        proptest::option::of(0i64..12),
        prop_oneof![4 => 0i64..600_000, 1 => 0i64..DAY_MS],
    )
        .prop_map(|(day, ms, kind, session, document, listing, delay)| {
            let ts_ms = i64::from(BASE_DAY + day) * DAY_MS + ms;
            (
                Touch {
                    ts_ms,
                    kind,
                    session,
                    document,
                    listing,
                },
                ts_ms + delay,
            )
        })
}

/// Streams `events` (arrival order), closing each day once nothing more can arrive for it,
/// and checks features and signals at every close against the batch computation.
fn check(mut events: Vec<(Touch, i64)>) -> Result<usize, TestCaseError> {
    events.sort_by_key(|(t, a)| (*a, t.ts_ms));
    let facts = Facts::default();
    let first = events
        .iter()
        .map(|(t, _)| day_of(t.ts_ms))
        .min()
        .unwrap_or(BASE_DAY);
    let last = events
        .iter()
        .map(|(t, _)| day_of(t.ts_ms))
        .max()
        .unwrap_or(BASE_DAY);
    let mut state = ContactState::default();
    let mut seen: Vec<Touch> = Vec::new();
    let mut next_close = first;
    let mut closes = 0;
    let close = |state: &mut ContactState, seen: &[Touch], d: Day| -> Result<(), TestCaseError> {
        let batch = EventHistory {
            events: seen.to_vec(),
        };
        let a = FeatureVector::compute(&Inputs {
            history: state,
            facts: &facts,
            at: d,
        });
        let b = FeatureVector::compute(&Inputs {
            history: &batch,
            facts: &facts,
            at: d,
        });
        prop_assert_eq!(&a, &b, "features differ as of day {}", d);
        let fa = fire(&SignalInputs {
            features: &a,
            history: state,
            facts_before: &facts,
            at: d,
        });
        let fb = fire(&SignalInputs {
            features: &b,
            history: &batch,
            facts_before: &facts,
            at: d,
        });
        prop_assert_eq!(fa, fb, "signals differ as of day {}", d);
        state.evict_before(d - 89);
        Ok(())
    };
    for (t, arrival) in &events {
        while end_of_day_ms(next_close) + DAY_MS < *arrival && next_close <= last {
            close(&mut state, &seen, next_close)?;
            closes += 1;
            next_close += 1;
        }
        state.add(t);
        seen.push(*t);
    }
    while next_close <= last + 100 {
        close(&mut state, &seen, next_close)?;
        closes += 1;
        next_close += 1;
    }
    Ok(closes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn streaming_state_equals_point_in_time_batch(events in proptest::collection::vec(arb_touch(), 0..200)) {
        check(events)?;
    }
}

#[test]
fn eviction_keeps_state_small() {
    let mut state = ContactState::default();
    for d in 0..400 {
        for k in 0..3 {
            state.add(&Touch {
                ts_ms: i64::from(BASE_DAY + d) * DAY_MS + k * 1000,
                kind: (k % 15) as u8,
                session: Some(i64::from(d)),
                document: Some(k),
                listing: None,
            });
        }
        state.evict_before(BASE_DAY + d - 89);
    }
    state.shrink();
    assert!(
        state.bytes() < 8 * 1024,
        "{} bytes for a very active homeowner",
        state.bytes()
    );
}
