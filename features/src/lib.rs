//! # roi-features: the one feature and signal catalog
//!
//! Every feature ([`catalog::FEATURES`], 50+) and signal ([`signal::SIGNALS`], 13 in three
//! categories) is defined here once and computed two ways from the same definition:
//!
//! - **incrementally** by the streaming job, which keeps one compact
//!   [`state::ContactState`] per homeowner (per-day counts, no raw events);
//! - **point-in-time** by the batch backfill, from raw events in an
//!   [`history::EventHistory`].
//!
//! Both implement [`history::History`], the only way a definition sees behaviour, and the
//! parity tests hold their answers equal. Static context (home, loan, market) comes from
//! [`context::ContextIndex`], point-in-time as well.
//!
//! ```
//! use roi_features::catalog::{FeatureVector, Inputs, F};
//! use roi_features::context::Facts;
//! use roi_features::history::{EventHistory, Touch};
//! use roi_features::state::ContactState;
//! use roi_schemas::EventType;
//!
//! let touch = Touch { ts_ms: 1_700_000_000_000, kind: EventType::ValuationViewed as u8,
//!                     session: Some(1), document: None, listing: None };
//! let mut state = ContactState::default();
//! state.add(&touch);
//! let batch = EventHistory { events: vec![touch] };
//! let day = roi_features::day::day_of(touch.ts_ms);
//! let facts = Facts::default();
//! let a = FeatureVector::compute(&Inputs { history: &state, facts: &facts, at: day });
//! let b = FeatureVector::compute(&Inputs { history: &batch, facts: &facts, at: day });
//! assert_eq!(a, b);
//! assert_eq!(a.get(F::ValuationViews7d), Some(1.0));
//! ```

pub mod catalog;
pub mod context;
pub mod day;
pub mod history;
pub mod signal;
pub mod snapshot;
pub mod state;
