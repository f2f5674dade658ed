//! Human summaries printed on stdout.

use roi_datasets::{GenerationReport, OracleSample};
use roi_models::metrics::{average_precision, budget_share, precision_at_budget, roc_auc};

/// Alerts per contact and year the old system aimed for.
pub const ALERT_BUDGET_PER_YEAR: f64 = 0.10;

/// Oracle quality of one intent kind.
#[derive(Debug, Clone)]
pub struct OracleLine {
    /// Kind name.
    pub kind: &'static str,
    /// Snapshot rows.
    pub rows: usize,
    /// Share of rows with the outcome within the horizon.
    pub base_rate: f64,
    /// ROC AUC of the latent probability.
    pub auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Precision when alerting 10% of contacts per year.
    pub precision_at_budget: Option<f64>,
    /// Recall at the same budget.
    pub recall_at_budget: Option<f64>,
}

/// Scores the world's latent probabilities against its outcomes.
pub fn oracle_lines(samples: &[OracleSample]) -> Vec<OracleLine> {
    use roi_schemas::StrEnum;
    samples
        .iter()
        .map(|s| {
            let at = precision_at_budget(
                &s.scores,
                &s.labels,
                budget_share(ALERT_BUDGET_PER_YEAR, 12.0),
            );
            OracleLine {
                kind: s.kind.as_str(),
                rows: s.scores.len(),
                base_rate: s.labels.iter().filter(|l| **l).count() as f64
                    / s.labels.len().max(1) as f64,
                auc: roc_auc(&s.scores, &s.labels),
                average_precision: average_precision(&s.scores, &s.labels),
                precision_at_budget: at.map(|a| a.precision),
                recall_at_budget: at.map(|a| a.recall),
            }
        })
        .collect()
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

/// Prints what a generation wrote and how predictable its outcomes are.
pub fn print_world(report: &GenerationReport) {
    let m = &report.manifest;
    println!(
        "world: scale {} seed {}{} -> {}",
        m.scale,
        m.seed,
        if m.dirty { " (dirty)" } else { "" },
        report.out.display()
    );
    println!(
        "  period: history from {}, events {} .. {}",
        m.history_start, m.events_start, m.end
    );
    println!("  tables:");
    for (name, rows) in &m.tables {
        println!("    {name:<24} {rows:>12} rows");
    }
    let e = &m.events;
    println!(
        "  events: {} in {} NDJSON files; {} out of order, {} over 1 h late",
        e.events,
        e.files.len(),
        e.out_of_order,
        e.late_over_1h
    );
    if !e.malformed.is_empty() {
        let parts: Vec<String> = e
            .malformed
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  malformed lines: {}", parts.join(", "));
    }
    println!(
        "  generated in {:.1} s ({:.0} events/s)",
        report.seconds,
        e.events as f64 / report.seconds.max(1e-9)
    );
    println!();
    println!(
        "oracle (latent 3-month probabilities vs outcomes; budget = {:.0}% of contacts alerted per year):",
        ALERT_BUDGET_PER_YEAR * 100.0
    );
    println!(
        "  {:<11} {:>9} {:>9} {:>7} {:>7} {:>10} {:>9}",
        "model", "rows", "base", "AUC", "AP", "prec@bud", "rec@bud"
    );
    for l in oracle_lines(&report.oracle) {
        println!(
            "  {:<11} {:>9} {:>9.4} {:>7} {:>7} {:>10} {:>9}",
            l.kind,
            l.rows,
            l.base_rate,
            opt(l.auc),
            opt(l.average_precision),
            opt(l.precision_at_budget),
            opt(l.recall_at_budget)
        );
    }
}

/// Prints what a stream run did.
pub fn print_stream(r: &roi_pipeline::StreamReport, lake: &std::path::Path) {
    let dead: u64 = r.dead_letters.values().sum();
    println!("stream: {} -> {}", r.source, lake.display());
    println!(
        "  {} lines in {:.1} s ({:.0} lines/s, {} threads); {} events applied",
        r.lines, r.seconds, r.lines_per_second, r.threads, r.accepted
    );
    if dead > 0 {
        let parts: Vec<String> = r
            .dead_letters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  dead-lettered {dead}: {}", parts.join(", "));
    } else {
        println!("  dead-lettered 0");
    }
    println!(
        "  window state: {} homeowners, {:.0} bytes each on average; watermark {}",
        r.contacts,
        r.state_bytes_per_contact,
        r.watermark.as_deref().unwrap_or("-")
    );
    println!(
        "  wrote {} feature snapshots ({} .. {}) and {} signal firings",
        r.snapshots,
        r.first_day.as_deref().unwrap_or("-"),
        r.last_day.as_deref().unwrap_or("-"),
        r.signals
    );
    for (name, n) in &r.signals_by_name {
        println!("    {name:<24} {n:>9}");
    }
    match &r.context.properties_from {
        Some(from) => println!(
            "  context: {} homeowners, homes from {from}",
            r.context.contacts
        ),
        None => println!("  context: none found in the lake (context features are null)"),
    }
    if r.models.is_empty() && r.unscored.is_empty() {
        println!("  alerts: scoring off");
    } else if r.models.is_empty() {
        println!("  alerts: no promoted alert model (train with `roi train alerts`)");
    } else {
        let parts: Vec<String> = r
            .alerts_by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "  raised {} alerts with {}{}",
            r.alerts,
            r.models.join(", "),
            if parts.is_empty() {
                String::new()
            } else {
                format!(": {}", parts.join(", "))
            }
        );
        if !r.unscored.is_empty() {
            println!(
                "  not scored (no promoted model): {}",
                r.unscored.join(", ")
            );
        }
    }
}

/// Prints how the stream's alerts turned out against the world's outcomes, beside the
/// models' test-period precision and the oracle's at the same alert volume.
pub fn print_alert_outcomes(
    judged: &[roi_jobs::propensity::AlertOutcomes],
    trained: &[roi_jobs::propensity::Trained],
    since: Option<chrono::NaiveDate>,
) {
    println!(
        "  {:<11} {:>7} {:>7} {:>11} {:>15} {:>17}",
        "kind", "alerts", "judged", "came true", "test precision", "oracle precision"
    );
    for j in judged {
        let t = trained.iter().find(|t| t.card.name == j.kind.to_string());
        println!(
            "  {:<11} {:>7} {:>7} {:>11} {:>15} {:>17}",
            j.kind.to_string(),
            j.alerts,
            j.judged,
            j.precision()
                .map_or("n/a".to_owned(), |p| format!("{} ({p:.3})", j.came_true)),
            t.map_or("n/a".to_owned(), |t| format!(
                "{:.3}",
                t.report.model.precision
            )),
            t.and_then(|t| t.report.oracle.as_ref())
                .map_or("n/a".to_owned(), |o| format!("{:.3}", o.precision)),
        );
    }
    println!(
        "  (judged = alerts raised {} whose 90 days are covered by the known outcomes; the oracle is the world's latent probability at the model's alert volume on the test months)",
        since.map_or("at any time".to_owned(), |d| format!(
            "from {d}, the first test month,"
        ))
    );
}

/// Prints what the demo put in the store: alerts stored, and which were routed to which
/// agent and why (the first few per organization), with how to see them served.
pub fn print_seeded(seeded: &crate::seed::Seeded) {
    const SHOWN: usize = 5;
    println!(
        "  {} alerts stored, {} already in the store",
        seeded.ingest.inserted, seeded.ingest.duplicates
    );
    for org in &seeded.orgs {
        println!(
            "  {} ({}): {} agents; {} alerts routed now, {} waiting for an agent with room",
            org.slug,
            if org.created {
                "new"
            } else {
                "from an earlier run"
            },
            org.agents,
            org.routed.len(),
            org.waiting
        );
        for r in org.routed.iter().take(SHOWN) {
            println!(
                "    {} {:<10} score {:.2} -> {}: {}",
                r.alert_id,
                r.kind.as_str(),
                r.score,
                r.agent,
                r.why
            );
        }
        if org.routed.len() > SHOWN {
            println!("    ... and {} more", org.routed.len() - SHOWN);
        }
    }
    match &seeded.credentials {
        Some(path) => println!(
            "  see them served: `roi serve`, then sign in as a user listed in {} (GET /alerts, GET /alerts/{{id}}, /ws)",
            path.display()
        ),
        None => println!("  see them served: `roi serve`"),
    }
}

/// Prints what `roi contacts sync` did.
pub fn print_contact_sync(
    synced: &[crate::audience::SyncedOrg],
    audience: &crate::audience::LakeAudience,
) {
    let total: usize = audience.by_org.values().map(Vec::len).sum();
    println!(
        "{total} homeowners read from the lake; scores from {}",
        if audience.scored.is_empty() {
            "no promoted model (roi train alerts; roi models promote)".to_owned()
        } else {
            format!("the promoted {} models", audience.scored.join(", "))
        }
    );
    if synced.is_empty() {
        println!(
            "  no organization of the store is linked to the lake's (roi orgs link SLUG ORG_ID)"
        );
    }
    for s in synced {
        let r = &s.report;
        println!(
            "  {}: {} new contacts, {} updated, {} values{}",
            s.slug,
            r.inserted,
            r.updated,
            r.values,
            if r.duplicate_emails > 0 {
                format!(
                    ", {} skipped (address already used by another homeowner)",
                    r.duplicate_emails
                )
            } else {
                String::new()
            }
        );
    }
}

/// Prints the feature and signal catalog.
pub fn print_catalog() {
    use roi_features::catalog::{CATALOG_VERSION, FEATURES};
    use roi_features::signal::SIGNALS;
    println!("features ({}, catalog {CATALOG_VERSION}):", FEATURES.len());
    println!(
        "  {:<28} {:<13} {:<9} {:<10} description",
        "name", "window", "unit", "category"
    );
    for f in FEATURES {
        println!(
            "  {:<28} {:<13} {:<9} {:<10} {}",
            f.name,
            f.window,
            f.unit,
            f.category.as_str(),
            f.description
        );
    }
    println!();
    println!("signals ({}):", SIGNALS.len());
    println!(
        "  {:<24} {:<18} {:<9} description",
        "name", "category", "pattern"
    );
    for s in SIGNALS {
        println!(
            "  {:<24} {:<18} {:<9} {}",
            s.name,
            s.category.as_str(),
            s.pattern.as_str(),
            s.description
        );
    }
}

/// Prints the job DAG.
pub fn print_jobs(jobs: &[Box<dyn roi_jobs::job::Job>]) {
    println!("jobs ({}), in registry order:", jobs.len());
    for job in jobs {
        let dated = if job.uses_date() {
            " (as of --date)"
        } else {
            ""
        };
        println!(
            "  {:<20} v{}  {}{dated}",
            job.name(),
            job.version(),
            job.description()
        );
        println!("  {:<20}      reads  {}", "", job.inputs().join(", "));
        if !job.optional_inputs().is_empty() {
            println!(
                "  {:<20}      uses if present  {}",
                "",
                job.optional_inputs().join(", ")
            );
        }
        println!("  {:<20}      writes {}", "", job.outputs().join(", "));
    }
}

/// Prints one step of a job run as it happens.
pub fn print_job_progress(p: roi_jobs::runner::Progress<'_>) {
    use roi_jobs::runner::{Outcome, Progress};
    match p {
        Progress::Planned(names) => println!("plan: {}", names.join(" -> ")),
        Progress::Started {
            index,
            total,
            job,
            reason,
        } => println!("[{index}/{total}] {job}: running ({reason})"),
        Progress::Retrying {
            job,
            attempt,
            error,
        } => eprintln!("  {job}: attempt {attempt} failed ({error}); retrying"),
        Progress::Finished {
            index,
            total,
            record,
        } => {
            let secs = record.duration_ms as f64 / 1000.0;
            match record.outcome {
                Outcome::Succeeded => {
                    println!("[{index}/{total}] {}: succeeded in {secs:.1} s", record.job);
                    for (table, out) in &record.outputs {
                        println!("    {table:<36} {:>10} rows", out.rows);
                    }
                    for note in &record.notes {
                        println!("    {note}");
                    }
                }
                Outcome::Skipped => println!(
                    "[{index}/{total}] {}: skipped ({})",
                    record.job, record.reason
                ),
                Outcome::Failed | Outcome::Blocked => println!(
                    "[{index}/{total}] {}: {} ({})",
                    record.job,
                    record.outcome,
                    record.error.as_deref().unwrap_or("no reason recorded")
                ),
            }
        }
    }
}

/// Prints `roi jobs status`.
pub fn print_job_status(status: &[roi_jobs::runner::JobStatus]) {
    println!(
        "{:<20} {:<10} {:<25} {:>9}  now",
        "job", "last", "at", "seconds"
    );
    for s in status {
        match &s.last {
            Some(r) => println!(
                "{:<20} {:<10} {:<25} {:>9.1}  {}",
                s.job,
                r.outcome.to_string(),
                r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                r.duration_ms as f64 / 1000.0,
                s.freshness
            ),
            None => println!(
                "{:<20} {:<10} {:<25} {:>9}  {}",
                s.job, "-", "-", "-", s.freshness
            ),
        }
        if let Some(e) = s.last.as_ref().and_then(|r| r.error.as_ref()) {
            println!("{:<20} error: {e}", "");
        }
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

fn gap(model: Option<f64>, oracle: Option<f64>) -> String {
    match (model, oracle) {
        (Some(m), Some(o)) => format!("{:+.3}", m - o),
        _ => "n/a".to_owned(),
    }
}

/// Prints what `roi train alerts` trained: the test-period numbers beside the oracle's.
pub fn print_trained_alerts(trained: &[roi_jobs::propensity::Trained]) {
    use roi_models::propensity::Evaluation;
    for t in trained {
        let r = &t.report;
        let op = &r.operating_point;
        println!();
        println!(
            "{} ({}){}: trained on {} rows ({} positive) in {:.1} s; calibrated on {} rows",
            t.card.id,
            t.card.name,
            if t.promoted { ", promoted" } else { "" },
            r.train_rows,
            r.train_positives,
            r.train_seconds,
            r.calibration_rows
        );
        match op.threshold {
            Some(threshold) => println!(
                "  operating point: alert at p >= {threshold:.3} (set by the {}: budget {} alerts/contact-year, confidence >= {})",
                if op.bound_by == "budget" {
                    "budget"
                } else {
                    "confidence floor"
                },
                op.alerts_per_contact_year,
                op.min_confidence
            ),
            None => println!(
                "  operating point: no alerts; even this model's strongest scores came true less often than the confidence floor ({}) on the calibration months",
                op.min_confidence
            ),
        }
        println!(
            "  test period {} rows, {} positive ({}):",
            r.model.rows,
            r.model.positives,
            pct(r.model.positives as f64 / r.model.rows.max(1) as f64)
        );
        println!("  {:<26} {:>8} {:>8} {:>8}", "", "model", "oracle", "gap");
        let o: Option<&Evaluation> = r.oracle.as_ref();
        let rows: [(&str, Option<f64>, Option<f64>); 6] = [
            ("AUC", r.model.auc, o.and_then(|o| o.auc)),
            ("PR-AUC", r.model.pr_auc, o.and_then(|o| o.pr_auc)),
            (
                "precision at the point",
                Some(r.model.precision),
                o.map(|o| o.precision),
            ),
            (
                "recall at the point",
                Some(r.model.recall),
                o.map(|o| o.recall),
            ),
            (
                "alerts per contact-year",
                Some(r.model.alerts_per_contact_year),
                o.map(|o| o.alerts_per_contact_year),
            ),
            (
                "calibration error (ECE)",
                Some(r.model.ece),
                o.map(|o| o.ece),
            ),
        ];
        for (name, m, or) in rows {
            println!(
                "  {name:<26} {:>8} {:>8} {:>8}",
                opt(m),
                opt(or),
                gap(m, or)
            );
        }
    }
    if trained.iter().any(|t| t.report.oracle.is_some()) {
        println!();
        println!(
            "(the oracle is the world's latent probability, held to the model's alert volume on the same rows)"
        );
    }
}

/// Prints the registry's versions.
pub fn print_models(models: &[roi_models::registry::Listed]) {
    if models.is_empty() {
        println!("no models registered yet; train some with `roi train alerts`");
        return;
    }
    println!("  {:<16} {:<22} {:<12} summary", "id", "created", "catalog");
    for m in models {
        println!(
            "{} {:<16} {:<22} {:<12} {}",
            if m.promoted { "*" } else { " " },
            m.card.id,
            m.card.created_at,
            m.card.catalog_version,
            m.card.summary
        );
    }
    println!("(* = live)");
}

/// Prints one model version and its evaluation report.
pub fn print_model(
    card: &roi_models::registry::ModelCard,
    live: bool,
    metrics: &serde_json::Value,
) {
    println!("{}{}", card.id, if live { " (live)" } else { "" });
    println!("  created:          {}", card.created_at);
    println!(
        "  feature catalog:  {} ({} features)",
        card.catalog_version,
        card.features.len()
    );
    println!(
        "  training data:    {} rows, {} positive, from {} (fingerprint {}{})",
        card.training.rows,
        card.training.positives,
        card.training.table,
        card.training.fingerprint,
        card.training
            .as_of
            .as_ref()
            .map(|d| format!(", last snapshot {d}"))
            .unwrap_or_default()
    );
    println!("  summary:          {}", card.summary);
    println!("  features:         {}", card.features.join(", "));
    println!("evaluation report:");
    println!(
        "{}",
        serde_json::to_string_pretty(metrics).unwrap_or_else(|_| metrics.to_string())
    );
}
