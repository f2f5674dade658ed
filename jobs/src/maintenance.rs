//! A maintenance schedule from component ages: when each major component of a home is
//! due for replacement.
//!
//! Without service records, a component is assumed installed when the home was built and
//! replaced at the end of each typical lifespan since; the next due date is the end of
//! the current lifespan. Lifespans are the usual planning figures of home inspectors
//! ([`COMPONENTS`]). A component due within a year of the as-of date is `due_soon`;
//! `overdue` cannot happen under this assumption, so the schedule reports the age of the
//! current component instead, which is what an agent talks to a homeowner about.

use chrono::{Datelike, NaiveDate};
use roi_schemas::{MaintenanceItem, PropertyMaster};

/// Major components and their typical lifespans, years.
pub const COMPONENTS: [(&str, i32); 6] = [
    ("roof", 25),
    ("hvac", 18),
    ("water_heater", 12),
    ("exterior_paint", 10),
    ("windows", 30),
    ("kitchen_appliances", 15),
];

/// The schedule of one home as of `as_of` (empty without a year built).
pub fn schedule(home: &PropertyMaster, as_of: NaiveDate) -> Vec<MaintenanceItem> {
    let Some(built) = home.year_built.filter(|y| *y <= as_of.year()) else {
        return Vec::new();
    };
    COMPONENTS
        .iter()
        .map(|&(component, lifespan)| {
            let age_of_home = as_of.year() - built;
            let installed = built + (age_of_home / lifespan) * lifespan;
            let due_year = installed + lifespan;
            let due_on = NaiveDate::from_ymd_opt(due_year, 1, 1).unwrap_or(as_of);
            MaintenanceItem {
                property_id: home.property_id,
                as_of,
                component: component.to_owned(),
                lifespan_years: lifespan,
                installed_year: installed,
                age_years: as_of.year() - installed,
                due_on,
                due_soon: due_on <= as_of + chrono::Days::new(365),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use roi_schemas::PropertyId;

    fn home(year_built: Option<i32>) -> PropertyMaster {
        PropertyMaster {
            year_built,
            record_count: 1,
            ..PropertyMaster::unknown(PropertyId(1), "p".into())
        }
    }

    #[test]
    fn schedule_by_hand() {
        let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
        let items = schedule(&home(Some(1990)), as_of);
        let roof = items.iter().find(|i| i.component == "roof").unwrap();
        // Built 1990, roof lifespan 25: replaced 2015, next due 2040.
        assert_eq!((roof.installed_year, roof.age_years), (2015, 10));
        assert_eq!(roof.due_on, NaiveDate::from_ymd_opt(2040, 1, 1).unwrap());
        assert!(!roof.due_soon);
        // Water heater, 12 years: 1990, 2002, 2014, next due 2026-01-01 -> due soon.
        let heater = items
            .iter()
            .find(|i| i.component == "water_heater")
            .unwrap();
        assert_eq!(heater.installed_year, 2014);
        assert!(heater.due_soon);
        // Paint, 10 years: repainted 2020, due 2030.
        let paint = items
            .iter()
            .find(|i| i.component == "exterior_paint")
            .unwrap();
        assert_eq!((paint.installed_year, paint.age_years), (2020, 5));
        assert_eq!(items.len(), COMPONENTS.len());
        assert!(schedule(&home(None), as_of).is_empty());
        assert!(schedule(&home(Some(2030)), as_of).is_empty());
    }
}
