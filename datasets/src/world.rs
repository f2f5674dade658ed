//! Putting the world together and writing it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;
use rayon::prelude::*;
use roi_schemas::{
    Agent, Contact, ContactId, Event, IntentKind, IntentSnapshot, Loan, Metro, MortgageRate,
    Neighbourhood, Organization, Outcome, Parcel, PriceIndex, Property, PropertyId, PropertyRecord,
    PropertyValue, RecordId, RecordLink, RecordSource, Sale, StrEnum, Table, Territory,
};
use serde::Serialize;

use crate::behaviour::ZipBook;
use crate::calendar::{EVENTS_START, Month, SIM_START, WORLD_END, month_start, ts_from_ms};
use crate::event_log::{EventLog, EventLogStats};
use crate::homeowner::{HomeownerSim, MonthOutput, WorldView};
use crate::housing::{History, PropertySim};
use crate::lake::{FileEntry, Staging, TableWriter, write_json, write_manifest, write_table};
use crate::market::Market;
use crate::people::{People, org_metros};
use crate::random::{Stream, rng_for};
use crate::{Error, Result, Scale, geography, housing, intent, people, records};

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// Size.
    pub scale: Scale,
    /// Seed; the same seed gives byte-identical output.
    pub seed: u64,
    /// Add ~0.5% malformed event lines.
    pub dirty: bool,
    /// Destination directory (replaced when complete).
    pub out: PathBuf,
    /// Show progress bars on stderr.
    pub progress: bool,
}

/// The world's `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct WorldManifest {
    /// Always `roi-datasets`.
    pub generator: &'static str,
    /// Schema version of the tables.
    pub schema_version: u32,
    /// Seed.
    pub seed: u64,
    /// Scale name.
    pub scale: Scale,
    /// Whether malformed lines were added.
    pub dirty: bool,
    /// First month of history (sales, loans, series).
    pub history_start: String,
    /// First month of behaviour events and intent snapshots.
    pub events_start: String,
    /// First day after the world.
    pub end: String,
    /// Outcomes count as labels when they close within this many months of a snapshot.
    pub label_horizon_months: usize,
    /// Rows per Parquet table.
    pub tables: std::collections::BTreeMap<String, u64>,
    /// The event log.
    pub events: EventLogStats,
}

/// Oracle scores and labels of one intent kind (a sample of homeowner-months).
#[derive(Debug, Clone)]
pub struct OracleSample {
    /// The kind.
    pub kind: IntentKind,
    /// Latent probability of the outcome within the horizon.
    pub scores: Vec<f64>,
    /// Whether the outcome happened within the horizon.
    pub labels: Vec<bool>,
}

/// What a generation produced.
#[derive(Debug)]
pub struct GenerationReport {
    /// Where the world is.
    pub out: PathBuf,
    /// Its manifest.
    pub manifest: WorldManifest,
    /// Oracle samples (every homeowner up to 50k, then an even subsample).
    pub oracle: Vec<OracleSample>,
    /// Wall time, seconds.
    pub seconds: f64,
}

fn bar(progress: bool, len: u64, what: &str) -> ProgressBar {
    if !progress {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("static template is valid")
        .progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

struct Oracle {
    stride: usize,
    /// Per sampled homeowner: per month since EVENTS_START, the four probabilities.
    scores: Vec<Vec<[f32; 4]>>,
    /// Per sampled homeowner: months with an outcome, per kind.
    outcomes: Vec<[Vec<Month>; 4]>,
}

impl Oracle {
    fn new(contacts: usize) -> Oracle {
        let stride = contacts.div_ceil(50_000).max(1);
        let n = contacts.div_ceil(stride);
        Oracle {
            stride,
            scores: vec![Vec::new(); n],
            outcomes: vec![Default::default(); n],
        }
    }

    fn samples(self) -> Vec<OracleSample> {
        intent::KINDS
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                let mut s = OracleSample {
                    kind: *kind,
                    scores: Vec::new(),
                    labels: Vec::new(),
                };
                for (c, months) in self.scores.iter().enumerate() {
                    for (i, p) in months.iter().enumerate() {
                        let m = EVENTS_START + i as Month;
                        if m + intent::HORIZON_MONTHS as Month > WORLD_END {
                            continue;
                        }
                        s.scores.push(f64::from(p[k]));
                        s.labels.push(
                            self.outcomes[c][k]
                                .iter()
                                .any(|&o| o >= m && o < m + intent::HORIZON_MONTHS as Month),
                        );
                    }
                }
                s
            })
            .collect()
    }
}

/// Generates a world into `config.out`.
pub fn generate(config: &WorldConfig) -> Result<GenerationReport> {
    let started = Instant::now();
    let params = config.scale.params();
    let seed = config.seed;
    let staging = Staging::new(&config.out)?;
    let root = staging.dir.clone();
    let mut tables = std::collections::BTreeMap::new();

    // Geography and market.
    let mut geo_rng = rng_for(seed, Stream::Geography, 0);
    let (metros, nbs) = geography::build(&mut geo_rng, params.metros, params.zips_per_metro);
    let market = Market::build(&mut geo_rng, &metros);
    let metro_rows: Vec<Metro> = metros.iter().map(|m| m.row.clone()).collect();
    let nb_rows: Vec<Neighbourhood> = nbs.iter().map(|n| n.row.clone()).collect();
    tables.insert(Metro::NAME.into(), write_table(&root, &metro_rows)?);
    tables.insert(Neighbourhood::NAME.into(), write_table(&root, &nb_rows)?);
    tables.insert(
        PriceIndex::NAME.into(),
        write_table(&root, &market.index_rows(&metros))?,
    );
    tables.insert(
        MortgageRate::NAME.into(),
        write_table(&root, &market.rate_rows())?,
    );

    // Properties and their history.
    let total = params.contacts + params.market_properties;
    let pb = bar(config.progress, total as u64, "properties");
    let built: Vec<(PropertySim, History)> = (0..total)
        .into_par_iter()
        .map(|i| {
            let mut rng = rng_for(seed, Stream::Property, i as u64);
            let p = housing::property(&mut rng, i, &metros, &nbs);
            let owner = (i < params.contacts).then(|| ContactId(i as i64 + 1));
            let h = housing::history(&mut rng, &p, &market, owner);
            pb.inc(1);
            (p, h)
        })
        .collect();
    pb.finish_and_clear();
    let (properties, histories): (Vec<PropertySim>, Vec<History>) = built.into_iter().unzip();
    tracing::info!(properties = properties.len(), "properties generated");

    // Organizations and homeowners.
    let org_metros = org_metros(params.orgs, params.metros);
    let mut contact_rngs: Vec<_> = (0..params.contacts)
        .map(|i| rng_for(seed, Stream::Contact, i as u64))
        .collect();
    let contact_org: Vec<usize> = contact_rngs
        .iter_mut()
        .enumerate()
        .map(|(i, rng)| {
            let metro = properties[i].metro;
            let candidates: Vec<usize> = (0..params.orgs)
                .filter(|&j| org_metros[j].contains(&metro))
                .collect();
            candidates[rng.random_range(0..candidates.len())]
        })
        .collect();
    let mut per_org = vec![0usize; params.orgs];
    for &j in &contact_org {
        per_org[j] += 1;
    }
    let people = People::build(
        &mut rng_for(seed, Stream::People, 0),
        params.orgs,
        params.metros,
        &nbs,
        &per_org,
        params.contacts_per_agent,
    );

    let mut sales_w = TableWriter::<Sale>::create(&root, None)?;
    let mut loans_w = TableWriter::<Loan>::create(&root, None)?;
    let mut next_sale = 0i64;
    let mut next_loan = 0i64;
    let mut contacts = Vec::with_capacity(params.contacts);
    let mut homeowners = Vec::with_capacity(params.contacts);
    {
        let mut sales = Vec::new();
        let mut loans = Vec::new();
        for (i, (h, mut rng)) in histories
            .iter()
            .zip(
                contact_rngs
                    .into_iter()
                    .map(Some)
                    .chain(std::iter::repeat_with(|| None)),
            )
            .enumerate()
        {
            let pid = PropertyId(i as i64 + 1);
            let loans_before = loans.len();
            housing::history_rows(
                h,
                pid,
                &mut next_sale,
                &mut next_loan,
                &mut sales,
                &mut loans,
            );
            if let Some(rng) = rng.as_mut() {
                // A homeowner's loans stay with the homeowner: later refinances close them.
                let own_loans = loans.split_off(loans_before);
                let org = &people.orgs[contact_org[i]];
                let purchase = h.sales.last().expect("a homeowner's home has a purchase");
                let agent = people.agent_for(rng, org.org_id, &properties[i].row.zip);
                let contact = people::contact(
                    rng,
                    ContactId(i as i64 + 1),
                    org.org_id,
                    pid,
                    agent,
                    purchase.day,
                );
                let sim =
                    HomeownerSim::new(rng.clone(), &contact, i, properties[i].metro, own_loans);
                contacts.push(contact);
                homeowners.push(sim);
            }
            if sales.len() > 100_000 {
                sales_w.write(&sales)?;
                loans_w.write(&loans)?;
                sales.clear();
                loans.clear();
            }
        }
        sales_w.write(&sales)?;
        loans_w.write(&loans)?;
    }
    tables.insert(Organization::NAME.into(), write_table(&root, &people.orgs)?);
    tables.insert(
        Territory::NAME.into(),
        write_table(&root, &people.territories)?,
    );
    tables.insert(Agent::NAME.into(), write_table(&root, &people.agents)?);
    tables.insert(Contact::NAME.into(), write_table(&root, &contacts)?);
    drop(contacts);

    // Property records of the three sources.
    let mut record_w = [
        RecordSource::Assessor,
        RecordSource::Mls,
        RecordSource::Owner,
    ]
    .map(|s| TableWriter::<PropertyRecord>::create(&root, Some(format!("source={}", s.as_str()))));
    let mut record_w: Vec<TableWriter<PropertyRecord>> = record_w
        .iter_mut()
        .map(|w| std::mem::replace(w, Err(Error::Usage(String::new()))))
        .collect::<Result<_>>()?;
    let mut links = Vec::new();
    let mut next_record = 0i64;
    {
        let mut batch: [Vec<PropertyRecord>; 3] = Default::default();
        for (i, (p, h)) in properties.iter().zip(&histories).enumerate() {
            let mut rng = rng_for(seed, Stream::Records, i as u64);
            next_record += 1;
            batch[0].push(records::assessor(
                &mut rng,
                RecordId(next_record),
                p,
                &market,
            ));
            links.push(RecordLink {
                record_id: RecordId(next_record),
                property_id: p.row.property_id,
            });
            for s in &h.sales {
                if let Some(dom) = s.days_on_market {
                    next_record += 1;
                    batch[1].push(records::mls(
                        &mut rng,
                        RecordId(next_record),
                        p,
                        s.day,
                        s.price,
                        dom,
                    ));
                    links.push(RecordLink {
                        record_id: RecordId(next_record),
                        property_id: p.row.property_id,
                    });
                }
            }
            if i < params.contacts
                && let Some(r) = records::owner(
                    &mut rng,
                    RecordId(next_record + 1),
                    p,
                    &market,
                    ContactId(i as i64 + 1),
                )
            {
                next_record += 1;
                batch[2].push(r);
                links.push(RecordLink {
                    record_id: RecordId(next_record),
                    property_id: p.row.property_id,
                });
            }
            if batch[1].len() > 100_000 {
                for (w, b) in record_w.iter_mut().zip(batch.iter_mut()) {
                    w.write(b)?;
                    b.clear();
                }
            }
        }
        for (w, b) in record_w.iter_mut().zip(batch.iter_mut()) {
            w.write(b)?;
        }
    }
    drop(histories);

    // The monthly simulation of every homeowner.
    let zip_names: Vec<String> = nbs.iter().map(|n| n.row.zip.clone()).collect();
    let zips = ZipBook {
        by_metro: (0..params.metros)
            .map(|m| {
                nbs.iter()
                    .enumerate()
                    .filter(|(_, n)| n.metro == m)
                    .map(|(i, _)| i as u32)
                    .collect()
            })
            .collect(),
    };
    let for_sale_by_metro: Vec<Vec<usize>> = (0..params.metros)
        .map(|m| {
            (params.contacts..total)
                .filter(|&i| properties[i].metro == m)
                .collect()
        })
        .collect();
    let view = WorldView {
        market: &market,
        properties: &properties,
        for_sale_by_metro: &for_sale_by_metro,
        zips: &zips,
    };
    let mut log = EventLog::create(&root, seed, config.dirty, zip_names)?;
    let mut snapshots_w = TableWriter::<IntentSnapshot>::create(&root, None)?;
    let mut outcomes = Vec::new();
    let mut oracle = Oracle::new(params.contacts);
    let pb = bar(config.progress, (WORLD_END - SIM_START) as u64, "months");
    for m in SIM_START..WORLD_END {
        let observe = m >= EVENTS_START;
        let outputs: Vec<MonthOutput> = homeowners
            .par_chunks_mut(512)
            .map(|chunk| {
                let mut out = MonthOutput::default();
                for h in chunk {
                    h.month(m, &view, observe, &mut out);
                }
                out
            })
            .collect();
        let mut events = Vec::new();
        let mut snapshots = Vec::new();
        for mut o in outputs {
            events.append(&mut o.events);
            for s in o.snapshots {
                let c = (s.contact_id.0 - 1) as usize;
                if c.is_multiple_of(oracle.stride) {
                    oracle.scores[c / oracle.stride]
                        .push([s.p_sell, s.p_buy, s.p_refinance, s.p_investment].map(|p| p as f32));
                }
                snapshots.push(s);
            }
            for d in o.outcomes {
                let c = (d.contact.0 - 1) as usize;
                let k = intent::KINDS
                    .iter()
                    .position(|k| *k == d.kind)
                    .expect("kind is one of KINDS");
                if c.is_multiple_of(oracle.stride) {
                    oracle.outcomes[c / oracle.stride][k].push(m);
                }
                let at = ts_from_ms(d.at_ms);
                if let Some((sale_id, price, dom)) = d.sale {
                    let (seller, buyer) = if d.kind == IntentKind::Sell {
                        (Some(d.contact), None)
                    } else {
                        (None, Some(d.contact))
                    };
                    let p = &properties[d.property];
                    sales_w.write(&[Sale {
                        sale_id,
                        property_id: p.row.property_id,
                        sold_on: at.date_naive(),
                        price,
                        days_on_market: dom,
                        seller_contact_id: seller,
                        buyer_contact_id: buyer,
                    }])?;
                    let mut rng = rng_for(seed, Stream::Records, sale_id.0 as u64);
                    let id = RecordId(sale_id.0);
                    record_w[1].write(&[records::mls(
                        &mut rng,
                        id,
                        p,
                        at.date_naive(),
                        price,
                        dom.unwrap_or(30),
                    )])?;
                    links.push(RecordLink {
                        record_id: id,
                        property_id: p.row.property_id,
                    });
                }
                outcomes.push(Outcome {
                    contact_id: d.contact,
                    kind: d.kind,
                    occurred_at: at,
                    property_id: PropertyId(d.property as i64 + 1),
                    sale_id: d.sale.map(|s| s.0),
                    loan_id: d.loan,
                });
            }
        }
        snapshots_w.write(&snapshots)?;
        if observe {
            log.push_month(m, events, m == WORLD_END - 1)?;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();

    for h in &homeowners {
        loans_w.write(&h.loans)?;
    }
    drop(homeowners);
    let last = WORLD_END - 1;
    let values: Vec<PropertyValue> = properties
        .iter()
        .map(|p| PropertyValue {
            property_id: p.row.property_id,
            as_of: month_start(last),
            value: p.value_at(&market, last).round(),
        })
        .collect();
    let property_rows: Vec<Property> = properties.iter().map(|p| p.row.clone()).collect();
    let parcels: Vec<Parcel> = properties
        .iter()
        .map(|p| Parcel {
            property_id: p.row.property_id,
            parcel_id: p.row.parcel_id.clone(),
        })
        .collect();
    tables.insert(Parcel::NAME.into(), write_table(&root, &parcels)?);
    tables.insert(
        "truth_properties".into(),
        write_named(&root, "truth_properties", &property_rows)?,
    );
    tables.insert(
        "truth_property_values".into(),
        write_named(&root, "truth_property_values", &values)?,
    );
    tables.insert(
        "truth_record_links".into(),
        write_named(&root, "truth_record_links", &links)?,
    );
    tables.insert(
        "truth_intent".into(),
        finish_named(&root, "truth_intent", snapshots_w)?,
    );
    tables.insert(Outcome::NAME.into(), write_table(&root, &outcomes)?);
    tables.insert(
        Sale::NAME.into(),
        write_manifest::<Sale>(&root, vec![sales_w.finish()?], None)?,
    );
    tables.insert(
        Loan::NAME.into(),
        write_manifest::<Loan>(&root, vec![loans_w.finish()?], None)?,
    );
    let record_files = record_w
        .into_iter()
        .map(TableWriter::finish)
        .collect::<Result<Vec<FileEntry>>>()?;
    tables.insert(
        PropertyRecord::NAME.into(),
        write_manifest::<PropertyRecord>(&root, record_files, Some("source"))?,
    );
    write_event_manifest(&root, &log.stats)?;

    let manifest = WorldManifest {
        generator: "roi-datasets",
        schema_version: roi_schemas::SCHEMA_VERSION,
        seed,
        scale: config.scale,
        dirty: config.dirty,
        history_start: month_start(0).to_string(),
        events_start: month_start(EVENTS_START).to_string(),
        end: month_start(WORLD_END).to_string(),
        label_horizon_months: intent::HORIZON_MONTHS,
        tables,
        events: log.stats,
    };
    write_json(&root.join("manifest.json"), &manifest)?;
    let out = staging.commit()?;
    Ok(GenerationReport {
        out,
        manifest,
        oracle: oracle.samples(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Truth tables share row types with public tables but live under their own names.
fn write_named<T: Table>(root: &Path, name: &str, rows: &[T]) -> Result<u64> {
    let tmp = root.join(format!(".{name}"));
    let n = write_table(&tmp, rows)?;
    rename_table::<T>(root, &tmp, name)?;
    Ok(n)
}

fn finish_named<T: Table>(root: &Path, name: &str, w: TableWriter<T>) -> Result<u64> {
    let entry = w.finish()?;
    let n = write_manifest::<T>(root, vec![entry], None)?;
    let from = root.join(T::NAME);
    let to = root.join(name);
    std::fs::rename(&from, &to).map_err(Error::io("renaming", &from))?;
    rewrite_manifest_name(&to, name)?;
    Ok(n)
}

fn rename_table<T: Table>(root: &Path, tmp: &Path, name: &str) -> Result<()> {
    let from = tmp.join(T::NAME);
    let to = root.join(name);
    std::fs::rename(&from, &to).map_err(Error::io("renaming", &from))?;
    std::fs::remove_dir(tmp).map_err(Error::io("removing", tmp))?;
    rewrite_manifest_name(&to, name)
}

fn rewrite_manifest_name(dir: &Path, name: &str) -> Result<()> {
    let path = dir.join("_manifest.json");
    let text = std::fs::read_to_string(&path).map_err(Error::io("reading", &path))?;
    let mut v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("bug: manifest {}: {e}", path.display())))?;
    v["table"] = serde_json::Value::String(name.to_owned());
    write_json(&path, &v)
}

fn write_event_manifest(root: &Path, stats: &EventLogStats) -> Result<()> {
    let schema = Event::schema();
    let manifest = crate::lake::TableManifest {
        table: "events".into(),
        format: "ndjson",
        schema_version: roi_schemas::SCHEMA_VERSION,
        rows: stats.files.iter().map(|f| f.rows).sum(),
        partitioned_by: None,
        files: stats.files.clone(),
        columns: schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
            .collect(),
    };
    write_json(&root.join("events").join("_manifest.json"), &manifest)
}
