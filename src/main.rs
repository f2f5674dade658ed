//! `roi`: the command-line entry point of ROI.
//!
//! This binary only parses arguments, loads configuration and calls the library crates.

mod config;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use roi_datasets::{Scale, WorldConfig};

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
    /// Inspect the effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
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
            println!(
                "next: the raw zone is Parquet + NDJSON under {}",
                report.out.display()
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
