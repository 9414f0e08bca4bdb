//! `ksensor`: command line. Parses flags, builds the pipeline, maps errors to exit codes.
//!
//! Exit codes:
//! - 0: every input was read to its end and every output written;
//! - 1: a user error stopped the run before any input was read (bad rule file, inventory,
//!   output path, flag value); one line on standard error says what and where;
//! - 2: command-line syntax error (unknown flag, missing argument);
//! - 3: the run finished and wrote its outputs, but at least one input was missing, not a
//!   capture, truncated or corrupt (each named on standard error and in the report);
//! - 4: writing an output (events, report) failed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use ksensor::inventory::assets::Assets;
use ksensor::inventory::Inventory;
use ksensor::output::events::EventWriter;
use ksensor::output::report::Report;
use ksensor::output::summary;
use ksensor::pipeline::{self, replay, Collector, PipelineConfig};
use ksensor::rules::RuleSet;

#[derive(Parser)]
#[command(
    name = "ksensor",
    version,
    about = "Finds hosts running Kaspersky antivirus in network traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read pcap/pcapng files (or `-` for standard input) and report Kaspersky evidence.
    Replay(ReplayArgs),
    /// Work with rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate rule files (or directories of *.toml); prints the rule count and hash.
    Check { paths: Vec<PathBuf> },
}

#[derive(Args)]
struct ReplayArgs {
    /// Capture files, read in order; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<String>,
    /// Rule file or directory (repeatable). Default: the bundled rules/.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Write one JSON object per detection to PATH (`-` for standard output).
    #[arg(long, value_name = "PATH|-")]
    events: Option<String>,
    /// With --events, also log every extracted name that matched no rule.
    #[arg(long)]
    all_names: bool,
    /// Write the JSON audit report to PATH (`-` for standard output).
    #[arg(long, value_name = "PATH|-")]
    report: Option<String>,
    /// Write the Markdown audit report to PATH.
    #[arg(long, value_name = "PATH")]
    report_md: Option<PathBuf>,
    /// Write the host table as CSV to PATH.
    #[arg(long, value_name = "PATH")]
    report_csv: Option<PathBuf>,
    /// Managed-asset inventory: CSV `address,label,role`.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Flows tracked per worker.
    #[arg(long, value_name = "N", default_value_t = ksensor::flow::MAX_FLOWS_PER_WORKER)]
    max_flows: usize,
    /// Never draw the progress line.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    match cli.command {
        Command::Replay(args) => match replay_command(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("ksensor: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => rules_check(&paths),
    }
}

fn load_rules(paths: &[PathBuf]) -> Result<RuleSet> {
    if paths.is_empty() {
        let bundled = RuleSet::bundled_dir();
        let set = RuleSet::load(std::slice::from_ref(&bundled))?;
        return Ok(set.display_root(&bundled, "<bundled>"));
    }
    Ok(RuleSet::load(paths)?)
}

fn rules_check(paths: &[PathBuf]) -> ExitCode {
    if paths.is_empty() {
        eprintln!("ksensor: rules check needs at least one FILE");
        return ExitCode::from(2);
    }
    match RuleSet::load(paths) {
        Ok(set) => {
            println!("ok: {} rules, sha256 {}", set.rules().len(), set.sha256());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ksensor: {e}");
            ExitCode::from(1)
        }
    }
}

/// Opens an output: `-` is standard output.
fn create_output(path: &str) -> Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file = File::create(path).with_context(|| format!("cannot create {path}"))?;
    Ok(Box::new(BufWriter::new(file)))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn replay_command(args: ReplayArgs) -> Result<ExitCode> {
    let rules = Arc::new(load_rules(&args.rules)?);
    let assets = match &args.inventory {
        Some(path) => Assets::load(path)?,
        None => Assets::default(),
    };
    let workers = match args.workers {
        Some(0) => anyhow::bail!("--workers must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if args.max_flows == 0 {
        anyhow::bail!("--max-flows must be at least 1");
    }
    // Create every output before reading anything, so a bad path fails fast.
    let events = match &args.events {
        Some(path) => Some(EventWriter::new(create_output(path)?, args.files.clone())),
        None => None,
    };
    let mut report_out = match &args.report {
        Some(path) => Some(create_output(path)?),
        None => None,
    };
    let config = PipelineConfig {
        workers,
        rules: rules.clone(),
        all_names: args.all_names,
        max_flows_per_worker: args.max_flows,
    };
    let collector = Collector::new(Inventory::new(rules.clone()), events, workers);
    let outcome = replay::run(&args.files, &config, collector, !args.quiet);

    for input in &outcome.inputs {
        if let Some(err) = &input.error {
            eprintln!("ksensor: {}: {err}", input.name);
        }
    }
    let caps = pipeline::named_caps();
    let report = Report::build(
        &outcome.inputs,
        &rules,
        &outcome.counters,
        &outcome.collector.inventory,
        &assets,
        &caps,
    );
    let mut output_failed = false;
    if let Some(e) = &outcome.collector.event_error {
        eprintln!("ksensor: writing events failed: {e}");
        output_failed = true;
    }
    if let Some(out) = &mut report_out {
        let json = report.to_json();
        let written = serde_json::to_writer_pretty(&mut *out, &json)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            eprintln!("ksensor: writing the report failed: {e}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.report_md {
        if let Err(e) = write_text(path, &report.to_markdown()) {
            eprintln!("ksensor: {e:#}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.report_csv {
        if let Err(e) = write_text(path, &report.to_csv()) {
            eprintln!("ksensor: {e:#}");
            output_failed = true;
        }
    }
    let stdout_taken = args.events.as_deref() == Some("-") || args.report.as_deref() == Some("-");
    if !stdout_taken && args.events.is_none() && args.report.is_none() {
        print!("{}", summary::render(&report));
    }
    Ok(if output_failed {
        ExitCode::from(4)
    } else if !outcome.inputs_clean() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
