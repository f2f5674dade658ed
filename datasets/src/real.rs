//! Real public datasets vendored with ROI (see `datasets/real/README.md` for sources and
//! licences): Ames, Iowa house sales and the Texas monthly housing market.

use std::path::PathBuf;

/// Directory holding the vendored real datasets.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("real")
}

/// Ames, Iowa residential sales 2006–2010 (2,930 rows, with coordinates).
pub fn ames_csv() -> PathBuf {
    dir().join("ames.csv")
}

/// Monthly housing market of 46 Texas cities, 2000–2015.
pub fn txhousing_csv() -> PathBuf {
    dir().join("txhousing.csv")
}

/// The Texas monthly housing market, embedded so that `roi datasets import txhousing`
/// works from any directory.
pub const TXHOUSING: &str = include_str!("../real/txhousing.csv");
