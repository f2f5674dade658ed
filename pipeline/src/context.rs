//! Static context for the feature window, loaded from the lake.
//!
//! Homes come from the property master (`curated/property_master`) when the batch jobs
//! have built it, otherwise from the synthetic world's `raw/truth_properties`. Contacts,
//! sales, loans, the price index and mortgage rates come from `raw/`. A lake without
//! these tables gives an empty context: behaviour features still work, context features
//! are null.

use std::path::Path;

use roi_features::context::{ContextIndex, ContextTables, home_from_master};
use roi_schemas::PropertyMaster;

use crate::Result;
use crate::lake::read_table;

/// Where the context came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextReport {
    /// Table that supplied the homes, if any.
    pub properties_from: Option<String>,
    /// Homeowners with a known home.
    pub contacts: usize,
}

/// Loads the context tables under `lake`.
pub fn load(lake: &Path) -> Result<(ContextIndex, ContextReport)> {
    let raw = lake.join("raw");
    let table = |name: &str| {
        let p = raw.join(name);
        p.is_dir().then_some(p)
    };
    let (properties, from) = if lake.join("curated/property_master").is_dir() {
        let master: Vec<PropertyMaster> = read_table(&lake.join("curated/property_master"))?;
        (
            master.iter().filter_map(home_from_master).collect(),
            Some("curated.property_master".to_owned()),
        )
    } else if let Some(p) = table("truth_properties") {
        (read_table(&p)?, Some("raw.truth_properties".to_owned()))
    } else {
        (Vec::new(), None)
    };
    let tables = ContextTables {
        contacts: table("contacts")
            .map(|p| read_table(&p))
            .transpose()?
            .unwrap_or_default(),
        properties,
        sales: table("sales")
            .map(|p| read_table(&p))
            .transpose()?
            .unwrap_or_default(),
        loans: table("loans")
            .map(|p| read_table(&p))
            .transpose()?
            .unwrap_or_default(),
        price_index: table("price_index")
            .map(|p| read_table(&p))
            .transpose()?
            .unwrap_or_default(),
        mortgage_rates: table("mortgage_rates")
            .map(|p| read_table(&p))
            .transpose()?
            .unwrap_or_default(),
    };
    let index = ContextIndex::build(tables);
    let report = ContextReport {
        properties_from: from,
        contacts: index.len(),
    };
    Ok((index, report))
}
