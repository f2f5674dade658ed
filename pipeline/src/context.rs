//! Static context for the feature window, loaded from the lake.
//!
//! Homes come from the property master (`curated/property_master`) when the batch jobs
//! have built it, otherwise from the synthetic world's `raw/truth_properties`. Contacts,
//! sales, loans, the price index and mortgage rates come from `raw/`. A lake without
//! these tables gives an empty context: behaviour features still work, context features
//! are null.

use std::path::Path;

use roi_features::context::{ContextIndex, ContextTables};
use roi_schemas::{Property, PropertyMaster, PropertyType};

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

/// The home facts the context reads (zip, metro, year built) from a property-master row;
/// `None` when the master lacks one of them, so that homeowner's context stays unknown
/// rather than wrong. Fields the context never reads are left at neutral values.
fn home_of(m: &PropertyMaster) -> Option<Property> {
    Some(Property {
        property_id: m.property_id,
        parcel_id: m.parcel_id.clone(),
        address: m.address.clone().unwrap_or_default(),
        city: m.city.clone().unwrap_or_default(),
        state: m.state.clone().unwrap_or_default(),
        zip: m.zip.clone()?,
        metro_id: m.metro_id?,
        lat: m.lat.unwrap_or_default(),
        lon: m.lon.unwrap_or_default(),
        property_type: m.property_type.unwrap_or(PropertyType::SingleFamily),
        sqft: m.sqft.unwrap_or_default(),
        beds: m.beds.unwrap_or_default(),
        baths: m.baths.unwrap_or_default(),
        lot_sqft: m.lot_sqft.unwrap_or_default(),
        year_built: m.year_built?,
        condition: m.condition.unwrap_or_default(),
    })
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
            master.iter().filter_map(home_of).collect(),
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
