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
