//! `roi`: the command-line entry point of ROI.
//!
//! This binary only parses arguments, loads configuration and calls the library crates.

mod audience;
mod config;
mod seed;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use roi_datasets::{Scale, WorldConfig};
use roi_pipeline::StreamConfig;
use roi_pipeline::watermark::EventTimeConfig;

use crate::config::Config;

/// ROI, a real-estate intelligence engine: it watches how homeowners behave, values their
/// homes and tells agents who is likely to sell, buy, refinance or invest.
#[derive(Debug, Parser)]
#[command(
    name = "roi",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Global {
    /// Data directory holding `lake/` [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Lake root directory [default: <data-dir>/lake]
    #[arg(long, global = true, value_name = "URL")]
    lake: Option<String>,
    /// Configuration file [default: ./roi.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the main job end to end on embedded defaults and print what it did
    Demo(DemoArgs),
    /// Generate synthetic worlds with ground truth
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Stream behaviour events into windowed features, signals and dead letters
    Stream(StreamArgs),
    /// Inspect the feature and signal catalog
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// Run the batch job DAG (property master, market statistics, …) over the lake
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Train models on the lake: the AVM and the four alert models
    #[command(subcommand)]
    Train(TrainCommand),
    /// The model registry: list versions, show one, promote one to live
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Query the lake with SQL; every table is `zone.table` (e.g. raw.sales)
    Sql(SqlArgs),
    /// Inspect the effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve the HTTP API (auth, users, invitations; OpenAPI at /openapi.json, docs at /docs)
    Serve(ServeArgs),
    /// The relational store (SQLite by default, PostgreSQL by database.url)
    #[command(subcommand)]
    Db(DbCommand),
    /// Organizations of the store, and their link to the pipeline's organization ids
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Alerts in the store: bring in what the streaming job raised
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Campaign audiences: homeowners as contacts of the store
    #[command(subcommand)]
    Contacts(ContactsCommand),
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Bring the lake's homeowners into the store as contacts of their (linked)
    /// organization: home, valuation, equity, the zip's market figures, agent of record,
    /// newest features and each promoted model's score. Segments read these.
    #[command(
        after_help = "New contacts are subscribed when they opted in to marketing e-mail at closing, else unsubscribed; a contact's consent is never changed by a later sync. Running it again refreshes everything else.

Examples:
  roi contacts sync
  roi contacts sync --org acme-title-1"
    )]
    Sync {
        /// Only this organization (its slug)
        #[arg(long, value_name = "SLUG")]
        org: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum OrgsCommand {
    /// List the store's organizations and the pipeline organization each is linked to
    List,
    /// Link an organization (by slug) to the pipeline's id for it, so that its alerts are ingested
    #[command(
        after_help = "Example:\n  roi orgs link acme 3     (the lake's org_id 3 is the store's organization acme)"
    )]
    Link {
        /// The organization's slug (as at sign-up)
        slug: String,
        /// The pipeline's organization id (org_id in the lake's tables)
        lake_org_id: i64,
    },
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Copy the streaming job's alerts (lake table alerts.alerts) into the store;
    /// alerts already there are left alone, so running it again is safe
    #[command(
        after_help = "Alerts of pipeline organizations linked to no organization of the store are counted and skipped; link them with `roi orgs link`."
    )]
    Ingest,
    /// Write what became of the store's alerts (converted, dismissed, expired or open;
    /// the deal's value; when each was assigned, contacted and closed) to the lake as
    /// alerts.outcomes: the labels that flow back for training
    #[command(
        after_help = "Covers the alerts of organizations linked to the pipeline (roi orgs link), and replaces the previous copy.

Example:
  roi alerts outcomes && roi sql \"SELECT kind, avg(CAST(converted AS INT)) FROM alerts.outcomes WHERE closed GROUP BY kind\""
    )]
    Outcomes,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The store is migrated on start. Stop with Ctrl-C or SIGTERM: requests in flight finish first.\n\nExamples:\n  roi serve\n  roi serve --bind 0.0.0.0:8080\n  ROI_DATABASE__URL=postgres://roi@db:5432/roi roi serve"
)]
struct ServeArgs {
    /// Address to listen on [default: serve.bind, 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply pending migrations to the store (roi serve also does this on start)
    Migrate,
}

#[derive(Debug, Args)]
struct StreamArgs {
    /// file:PATH (an NDJSON file or a directory of them), or stdin / -
    #[arg(long, value_name = "SPEC")]
    source: String,
    /// Stop when the source has no more data (otherwise keep following it)
    #[arg(long)]
    until_idle: bool,
    /// How far the watermark trails the newest event time, seconds
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    max_out_of_order: u64,
    /// How far behind the watermark an event is still applied, seconds; later ones are
    /// dead-lettered with reason `late`
    #[arg(long, value_name = "SECS", default_value_t = 6 * 3600)]
    allowed_lateness: u64,
    /// Threads for decoding and for the feature window's key partitions [default: all cores]
    #[arg(long)]
    threads: Option<usize>,
    /// Do not score with the promoted alert models (features and signals only)
    #[arg(long)]
    no_alerts: bool,
    /// A homeowner gets at most one alert of a kind within this many days
    #[arg(long, value_name = "DAYS", default_value_t = roi_pipeline::scoring::DEFAULT_COOLDOWN_DAYS)]
    cooldown_days: i32,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  roi sql \"SHOW TABLES\"\n  roi sql \"SELECT zip, count(*) AS sales, median(price) FROM raw.sales s JOIN raw.truth_properties p USING (property_id) GROUP BY zip ORDER BY 2 DESC LIMIT 5\"\n  roi sql --file q.sql --format csv > out.csv\n  roi sql \"SELECT * FROM features.contact_features\" --format parquet --out features.parquet"
)]
struct SqlArgs {
    /// The query (one SQL statement)
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    query: Option<String>,
    /// Read the query from a file
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format: table, csv, json (one object per line) or parquet
    #[arg(long, default_value = "table", value_parser = parse_format)]
    format: roi_jobs::sql::Format,
    /// Write the result to a file instead of stdout (required for parquet)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<roi_jobs::sql::Format, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// Train the automated valuation model and print its holdout accuracy (MdAPE, PPE10,
    /// PPE20, interval coverage); runs the jobs it needs first
    Avm(TrainAvmArgs),
    /// Train the alert models (90-day propensity to sell, buy, refinance or invest) on the
    /// point-in-time training set, register them, and print their test-period numbers
    /// beside the oracle's; runs the jobs it needs first
    #[command(
        after_help = "The first version of each model is promoted automatically; later ones \
are promoted with `roi models promote ID` after comparing them (`roi models show ID`)."
    )]
    Alerts(TrainAlertsArgs),
}

#[derive(Debug, Args)]
struct TrainAlertsArgs {
    /// Which model: sell, buy, refinance, investment or all
    #[arg(long, default_value = "all", value_parser = parse_models)]
    model: ModelChoice,
    /// Labels are the outcomes known by this date (YYYY-MM-DD) [default: the last event day]
    #[arg(long, value_name = "DATE")]
    date: Option<chrono::NaiveDate>,
    /// Alert budget: alerts per contact and year the operating point aims at
    #[arg(long, value_name = "RATE", default_value_t = 0.10)]
    budget: f64,
    /// Confidence floor: never alert where, on the calibration months, fewer than this
    /// share of the alerts at least as strong came true
    #[arg(long, value_name = "P", default_value_t = 0.5)]
    min_confidence: f64,
    /// Train and evaluate on this outcome CSV instead of the lake (needs --mapping; the
    /// model is evaluated, not registered): AUC and precision in the top 20%
    #[arg(long, value_name = "CSV", requires = "mapping")]
    csv: Option<PathBuf>,
    /// Column mapping of --csv (TOML; see datasets/real/caravan.mapping.toml)
    #[arg(long, value_name = "TOML", requires = "csv")]
    mapping: Option<PathBuf>,
}

/// The models `--model` selects.
#[derive(Debug, Clone)]
struct ModelChoice(Vec<roi_schemas::IntentKind>);

fn parse_models(s: &str) -> Result<ModelChoice, String> {
    use roi_schemas::StrEnum;
    if s == "all" {
        return Ok(ModelChoice(roi_jobs::propensity::KINDS.to_vec()));
    }
    roi_schemas::IntentKind::parse(s)
        .map(|k| ModelChoice(vec![k]))
        .ok_or_else(|| format!("{s:?} is not a model; use sell, buy, refinance, investment or all"))
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Every registered model version, with its headline numbers; * marks the live one
    List,
    /// One model version: what it was trained on, and its full evaluation report
    Show {
        /// Model id, e.g. sell-v2
        id: String,
    },
    /// Make a model version the live one of its name (the stream and the API use it)
    Promote {
        /// Model id, e.g. sell-v2
        id: String,
    },
}

#[derive(Debug, Args)]
struct TrainAvmArgs {
    /// Holdout = sales in the 12 months up to this date (YYYY-MM-DD) [default: the latest sale]
    #[arg(long, value_name = "DATE")]
    date: Option<chrono::NaiveDate>,
    /// Also write the examples of the time split (features, target, part) to this Parquet
    /// file, for training other tools on exactly the same data
    #[arg(long, value_name = "FILE")]
    export_examples: Option<PathBuf>,
    /// Train and evaluate on this sales CSV instead of the lake (needs --mapping; the
    /// model is evaluated, not installed)
    #[arg(long, value_name = "CSV", requires = "mapping")]
    sales_csv: Option<PathBuf>,
    /// Column mapping of --sales-csv (TOML; see datasets/real/ames.mapping.toml)
    #[arg(long, value_name = "TOML", requires = "sales_csv")]
    mapping: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List the jobs with their inputs and outputs
    List,
    /// Run jobs (and any job upstream of them) in dependency order; up-to-date jobs are skipped
    #[command(
        after_help = "Examples:\n  roi jobs run all\n  roi jobs run property-master --force\n  roi jobs run all --date 2025-06-30"
    )]
    Run(JobsRunArgs),
    /// Show each job's last run and whether a run now would redo it
    Status,
}

#[derive(Debug, Args)]
struct JobsRunArgs {
    /// Job names, or `all`
    #[arg(required = true, value_name = "JOB")]
    jobs: Vec<String>,
    /// As-of date (YYYY-MM-DD) for jobs that look at a point in time [default: the data's latest]
    #[arg(long, value_name = "DATE")]
    date: Option<chrono::NaiveDate>,
    /// Run the named jobs even if nothing they read has changed (upstream jobs still skip
    /// when up to date)
    #[arg(long)]
    force: bool,
    /// Retries of a transient failure (I/O timeouts, interruptions)
    #[arg(long, default_value_t = 2)]
    retries: u32,
}

#[derive(Debug, Subcommand)]
enum FeaturesCommand {
    /// Print every feature and signal with its window, unit, category and meaning
    List,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// World size for the demo
    #[arg(long, value_parser = parse_scale)]
    scale: Option<Scale>,
    /// Seed for the demo world
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// Write a deterministic synthetic world (Parquet tables, NDJSON events, truth)
    Generate(GenerateArgs),
    /// Land real public data in the lake's raw zone
    Import(ImportArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  roi datasets import txhousing && roi jobs run market-stats\n  roi sql \"SELECT area, month, yoy_appreciation FROM curated.market_stats WHERE area_kind = 'city' AND area = 'Austin' ORDER BY month DESC LIMIT 12\""
)]
struct ImportArgs {
    /// What to import: txhousing (monthly market of 46 Texas cities, 2000-2015, vendored)
    #[arg(value_parser = ["txhousing"])]
    dataset: String,
    /// Read a CSV in the txhousing layout from this file instead of the vendored copy
    #[arg(long, value_name = "CSV")]
    file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// tiny (~400 homeowners), small (~10k, ~1M events), medium (~100k, ~10M), large (~1M, ~100M)
    #[arg(long, value_parser = parse_scale)]
    scale: Option<Scale>,
    /// Seed; the same seed gives byte-identical output
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory [default: the lake's raw/ zone]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Add ~0.5% malformed event lines (bad JSON, unknown type, missing field, future timestamp)
    #[arg(long)]
    dirty: bool,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (file + ROI_* environment + options), secrets masked
    Show,
}

fn parse_scale(s: &str) -> Result<Scale, String> {
    s.parse::<Scale>().map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_jobs(
    lake: &std::path::Path,
    selection: &[String],
    options: &roi_jobs::runner::RunOptions,
) -> Result<()> {
    let jobs = roi_jobs::registry::jobs();
    let runtime = tokio::runtime::Runtime::new().context("starting the job runtime")?;
    runtime.block_on(roi_jobs::runner::run(
        lake,
        &jobs,
        selection,
        options,
        &mut summary::print_job_progress,
    ))?;
    Ok(())
}

fn load_config(global: &Global) -> Result<(Config, config::Sources)> {
    let (mut config, sources) = Config::load(global.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &global.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(lake) = &global.lake {
        config.lake = Some(lake.clone());
    }
    Ok((config, sources))
}

fn run(cli: Cli) -> Result<()> {
    let (config, sources) = load_config(&cli.global)?;
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.command {
        Command::Demo(args) => {
            let world = WorldConfig {
                scale: args.scale.unwrap_or(config.datasets.scale),
                seed: args.seed.unwrap_or(config.datasets.seed),
                dirty: false,
                out: config.lake_dir().join("raw"),
                progress,
            };
            println!(
                "ROI demo: generating a {} world (seed {}) into the lake's raw zone",
                world.scale, world.seed
            );
            let report = roi_datasets::generate(&world).context("generating the demo world")?;
            summary::print_world(&report);
            println!();
            let lake = config.lake_dir();
            println!("running the batch jobs...");
            run_jobs(
                &lake,
                &["all".to_owned()],
                &roi_jobs::runner::RunOptions::default(),
            )?;
            println!();
            let mut stream = StreamConfig::new(
                format!("file:{}", report.out.join("events").display()),
                &lake,
            );
            stream.progress = progress;
            println!();
            println!("training the alert models on the point-in-time training set...");
            let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let mut trained = Vec::new();
            for kind in roi_jobs::propensity::KINDS {
                // A world too small for one kind still trains the others.
                match runtime.block_on(roi_jobs::propensity::train(
                    &lake,
                    &[kind],
                    &roi_models::propensity::PropensityConfig::default(),
                    &created_at,
                )) {
                    Ok(t) => trained.extend(t),
                    Err(e) => println!("\n{kind}: not trained: {e}"),
                }
            }
            summary::print_trained_alerts(&trained);
            // The demo's stream uses the models it just trained.
            let registry = roi_models::registry::Registry::at(&lake);
            for t in &trained {
                registry.promote(&t.card.id)?;
            }
            println!();
            println!("streaming the world's events through the feature windows and the models...");
            let streamed = roi_pipeline::run(&stream).context("streaming the demo events")?;
            summary::print_stream(&streamed, &lake);
            println!();
            println!("alerts against the world's outcomes:");
            // Judge only alerts from the test months: the models never learned from them.
            let since = trained
                .iter()
                .map(|t| t.report.split.test.0)
                .min()
                .and_then(roi_features::day::month_start);
            let judged = runtime.block_on(roi_jobs::propensity::judge_alerts(&lake, since))?;
            summary::print_alert_outcomes(&judged, &trained, since);
            println!();
            println!("bringing the alerts into the store and routing them to agents...");
            let (store, _) =
                runtime.block_on(roi_serving::server::open_store(&config.database()))?;
            let seeded = runtime.block_on(seed::seed_demo(&store, &lake, &config.data_dir));
            let seeded = match seeded {
                Ok(s) => s,
                Err(e) => {
                    runtime.block_on(store.close());
                    return Err(e);
                }
            };
            summary::print_seeded(&seeded);
            println!();
            println!("bringing the homeowners into the store as campaign contacts...");
            let synced = audience::lake_audience(&lake).and_then(|a| {
                let synced = runtime.block_on(audience::sync(
                    &store,
                    &a,
                    None,
                    chrono::Utc::now().timestamp(),
                ))?;
                Ok((synced, a))
            });
            runtime.block_on(store.close());
            let (synced, a) = synced?;
            summary::print_contact_sync(&synced, &a);
        }
        Command::Stream(args) => {
            let lake = config.lake_dir();
            let mut stream = StreamConfig::new(args.source, &lake);
            stream.until_idle = args.until_idle;
            stream.event_time = EventTimeConfig {
                max_out_of_order_ms: args.max_out_of_order as i64 * 1000,
                allowed_lateness_ms: args.allowed_lateness as i64 * 1000,
            };
            if let Some(t) = args.threads {
                stream.threads = t.max(1);
            }
            stream.score = !args.no_alerts;
            stream.cooldown_days = args.cooldown_days.max(0);
            stream.progress = progress;
            let streamed = roi_pipeline::run(&stream).context("streaming")?;
            summary::print_stream(&streamed, &lake);
        }
        Command::Features(FeaturesCommand::List) => summary::print_catalog(),
        Command::Jobs(JobsCommand::List) => summary::print_jobs(&roi_jobs::registry::jobs()),
        Command::Jobs(JobsCommand::Status) => {
            let jobs = roi_jobs::registry::jobs();
            let status = roi_jobs::runner::status(&config.lake_dir(), &jobs)?;
            summary::print_job_status(&status);
        }
        Command::Jobs(JobsCommand::Run(args)) => {
            let options = roi_jobs::runner::RunOptions {
                as_of: args.date,
                force: args.force,
                force_jobs: Some(args.jobs.clone()),
                retries: args.retries,
                ..Default::default()
            };
            run_jobs(&config.lake_dir(), &args.jobs, &options)?;
        }
        Command::Train(TrainCommand::Avm(args)) if args.sales_csv.is_some() => {
            let read = |p: &Option<PathBuf>| -> Result<String> {
                let p = p
                    .as_ref()
                    .context("--sales-csv and --mapping go together")?;
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let mapping = roi_jobs::mapping::parse_mapping(&read(&args.mapping)?)?;
            let lines = roi_jobs::mapping::train_avm(
                &read(&args.sales_csv)?,
                &mapping,
                args.date,
                args.export_examples.as_deref(),
            )?;
            for line in lines {
                println!("{line}");
            }
        }
        Command::Train(TrainCommand::Avm(args)) => {
            let selection = vec!["avm-train".to_owned()];
            let options = roi_jobs::runner::RunOptions {
                as_of: args.date,
                force: true,
                force_jobs: Some(selection.clone()),
                ..Default::default()
            };
            run_jobs(&config.lake_dir(), &selection, &options)?;
            if let Some(path) = &args.export_examples {
                let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
                let rows = runtime.block_on(roi_jobs::valuation::export_examples(
                    &config.lake_dir(),
                    args.date,
                    path,
                ))?;
                println!("wrote {rows} examples to {}", path.display());
            }
        }
        Command::Train(TrainCommand::Alerts(args)) if args.csv.is_some() => {
            let read = |p: &Option<PathBuf>| -> Result<String> {
                let p = p.as_ref().context("--csv and --mapping go together")?;
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let mapping = roi_jobs::outcome_mapping::parse(&read(&args.mapping)?)?;
            for line in roi_jobs::outcome_mapping::train(&read(&args.csv)?, &mapping)? {
                println!("{line}");
            }
        }
        Command::Train(TrainCommand::Alerts(args)) => {
            if !(args.budget > 0.0 && args.budget <= 12.0) {
                anyhow::bail!(
                    "--budget {} must be in (0, 12] alerts per contact and year",
                    args.budget
                );
            }
            if !(0.0..=1.0).contains(&args.min_confidence) {
                anyhow::bail!("--min-confidence {} must be in [0, 1]", args.min_confidence);
            }
            let lake = config.lake_dir();
            let selection = vec!["alert-training-set".to_owned()];
            let options = roi_jobs::runner::RunOptions {
                as_of: args.date,
                ..Default::default()
            };
            run_jobs(&lake, &selection, &options)?;
            let train = roi_models::propensity::PropensityConfig {
                alerts_per_contact_year: args.budget,
                min_confidence: args.min_confidence,
                ..Default::default()
            };
            let created_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let trained = runtime.block_on(roi_jobs::propensity::train(
                &lake,
                &args.model.0,
                &train,
                &created_at,
            ))?;
            summary::print_trained_alerts(&trained);
        }
        Command::Models(command) => {
            let registry = roi_models::registry::Registry::at(&config.lake_dir());
            match command {
                ModelsCommand::List => summary::print_models(&registry.list()?),
                ModelsCommand::Show { id } => {
                    let card = registry.card(&id)?;
                    let live = registry
                        .promoted(&card.name)?
                        .is_some_and(|p| p.id == card.id);
                    summary::print_model(&card, live, &registry.metrics(&id)?);
                }
                ModelsCommand::Promote { id } => match registry.promote(&id)? {
                    Some(previous) if previous == id => println!(
                        "{id} is already the live {} model",
                        registry.card(&id)?.name
                    ),
                    Some(previous) => println!("promoted {id} (was {previous})"),
                    None => println!("promoted {id}"),
                },
            }
        }
        Command::Sql(args) => {
            let sql = match (&args.query, &args.file) {
                (Some(q), _) => q.clone(),
                (None, Some(f)) => std::fs::read_to_string(f)
                    .with_context(|| format!("reading query file {}", f.display()))?,
                (None, None) => anyhow::bail!("give a query or --file"),
            };
            let lake = config.lake_dir();
            let runtime = tokio::runtime::Runtime::new().context("starting the query runtime")?;
            let result = runtime.block_on(roi_jobs::sql::query(&lake, &sql))?;
            match &args.out {
                Some(path) => {
                    roi_jobs::sql::write_file(&result, args.format, path)?;
                    eprintln!("wrote {} rows to {}", result.rows(), path.display());
                }
                None => {
                    let stdout = std::io::stdout();
                    roi_jobs::sql::write_text(&result, args.format, &mut stdout.lock())?;
                }
            }
        }
        Command::Datasets(DatasetsCommand::Import(args)) => {
            let text = match &args.file {
                Some(f) => std::fs::read_to_string(f)
                    .with_context(|| format!("reading {}", f.display()))?,
                None => roi_datasets::real::TXHOUSING.to_owned(),
            };
            let lake = config.lake_dir();
            let rows = roi_jobs::market::land_city_months(&text, &lake)?;
            println!(
                "landed {rows} city-months of {} in {}",
                args.dataset,
                lake.join("raw/city_market_monthly").display()
            );
        }
        Command::Datasets(DatasetsCommand::Generate(args)) => {
            let world = WorldConfig {
                scale: args.scale.unwrap_or(config.datasets.scale),
                seed: args.seed.unwrap_or(config.datasets.seed),
                dirty: args.dirty,
                out: args.out.unwrap_or_else(|| config.lake_dir().join("raw")),
                progress,
            };
            let report = roi_datasets::generate(&world).context("generating the world")?;
            summary::print_world(&report);
        }
        Command::Serve(args) => {
            let mut serve = config.serve.clone();
            if let Some(bind) = args.bind {
                serve.bind = bind;
            }
            // Campaign engagement feeds the streaming job through the data directory's
            // event log unless configured elsewhere.
            if serve.campaigns.events_path.is_none() {
                serve.campaigns.events_path =
                    Some(config.data_dir.join("events").join("engagement.ndjson"));
            }
            // Documents are kept in the data directory unless configured elsewhere.
            if serve.documents.storage.is_none() {
                let dir = std::path::absolute(config.data_dir.join("documents"))
                    .context("resolving the documents directory")?;
                serve.documents.storage = Some(format!("file://{}", dir.display()));
            }
            // So is the search index, which then survives restarts.
            if serve.documents.search.path.is_none() {
                serve.documents.search.path = Some(config.data_dir.join("search"));
            }
            let database = config.database();
            let runtime = tokio::runtime::Runtime::new().context("starting the server runtime")?;
            runtime.block_on(roi_serving::server::run_with(
                &serve,
                &database,
                roi_serving::server::shutdown_signal(),
                |addr, store, migrations| {
                    println!(
                        "roi serve: listening on http://{addr} (store {:?}, {migrations} migrations applied); docs at http://{addr}/docs",
                        store.backend()
                    );
                },
            ))?;
            println!("roi serve: stopped");
        }
        Command::Db(DbCommand::Migrate) => {
            let database = config.database();
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let (store, ran) = runtime.block_on(roi_serving::server::open_store(&database))?;
            println!(
                "{}: {}",
                roi_serving::store::mask_password(database.url.as_deref().unwrap_or("")),
                if ran == 0 {
                    "up to date (no migrations pending)".to_owned()
                } else {
                    format!("{ran} migrations applied")
                }
            );
            runtime.block_on(store.close());
        }
        Command::Orgs(command) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let (store, _) =
                runtime.block_on(roi_serving::server::open_store(&config.database()))?;
            let result = runtime.block_on(orgs(&store, command));
            runtime.block_on(store.close());
            result?;
        }
        Command::Alerts(AlertsCommand::Ingest) => {
            let alerts = seed::lake_alerts(&config.lake_dir())?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let (store, _) =
                runtime.block_on(roi_serving::server::open_store(&config.database()))?;
            let report =
                runtime.block_on(store.ingest_alerts(&alerts, chrono::Utc::now().timestamp()));
            runtime.block_on(store.close());
            let report = report?;
            println!(
                "{} alerts read: {} stored, {} already in the store",
                alerts.len(),
                report.inserted,
                report.duplicates
            );
            for (lake_org, n) in &report.unlinked {
                println!(
                    "  {n} skipped: pipeline organization {lake_org} is linked to no organization (roi orgs link SLUG {lake_org})"
                );
            }
            // Running servers push the new alerts at once when told through Redis (else
            // at their next poll of the event log).
            if report.inserted > 0
                && let Some(url) = &config.serve.redis_url
                && let Err(e) = runtime.block_on(roi_serving::push::announce(
                    url,
                    &config.serve.redis_namespace,
                ))
            {
                eprintln!("warning: could not announce the new alerts through Redis: {e}");
            }
        }
        Command::Contacts(ContactsCommand::Sync { org }) => {
            let audience = audience::lake_audience(&config.lake_dir())?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let (store, _) =
                runtime.block_on(roi_serving::server::open_store(&config.database()))?;
            let synced = runtime.block_on(audience::sync(
                &store,
                &audience,
                org.as_deref(),
                chrono::Utc::now().timestamp(),
            ));
            runtime.block_on(store.close());
            summary::print_contact_sync(&synced?, &audience);
        }
        Command::Alerts(AlertsCommand::Outcomes) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let (store, _) =
                runtime.block_on(roi_serving::server::open_store(&config.database()))?;
            let rows = runtime.block_on(store.alert_outcomes());
            runtime.block_on(store.close());
            let rows = rows?;
            let lake = config.lake_dir();
            let counts = seed::write_outcomes(&lake, &rows)?;
            println!(
                "alerts.outcomes: {} alerts ({} converted, {} dismissed or expired, {} open) written to {}",
                counts.total,
                counts.converted,
                counts.lost,
                counts.open,
                lake.join("alerts").join("outcomes").display()
            );
        }
        Command::Config(ConfigCommand::Show) => {
            match &sources.file {
                Some(f) => println!("# from file {}", f.display()),
                None => println!("# no config file (roi.toml) found; defaults apply"),
            }
            if !sources.env.is_empty() {
                println!("# environment overrides: {}", sources.env.join(", "));
            }
            print!("{}", config.to_masked_toml()?);
        }
    }
    Ok(())
}

/// `roi orgs …` against an open store.
async fn orgs(store: &roi_serving::store::Store, command: OrgsCommand) -> Result<()> {
    match command {
        OrgsCommand::List => {
            let links = store.lake_links().await?;
            let by_org: std::collections::HashMap<&str, i64> = links
                .iter()
                .map(|(lake, org)| (org.as_str(), *lake))
                .collect();
            let all = store.organizations().await?;
            if all.is_empty() {
                println!("no organizations yet (POST /auth/signup creates one)");
            }
            for org in all {
                let link = by_org
                    .get(org.id.as_str())
                    .map_or("not linked".to_owned(), |l| format!("pipeline org_id {l}"));
                println!("{:<24} {:<28} {link}", org.slug, org.name);
            }
        }
        OrgsCommand::Link { slug, lake_org_id } => {
            let org = store
                .organization_by_slug(&slug)
                .await?
                .with_context(|| format!("no organization with slug {slug:?} (roi orgs list)"))?;
            store
                .link_lake_org(lake_org_id, &org.id, chrono::Utc::now().timestamp())
                .await?;
            println!("linked {slug} to pipeline organization {lake_org_id}");
        }
    }
    Ok(())
}
