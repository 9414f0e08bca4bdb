//! `ksensor`: command line. Parses flags, builds the pipeline, maps errors to exit codes.
//!
//! Exit codes:
//! - 0: every input was read to its end and every output written;
//! - 1: a user error stopped the run before any input was read (bad rule file, inventory,
//!   output path, flag value); one line on standard error says what and where;
//! - 2: command-line syntax error (unknown flag, missing argument);
//! - 3: the run finished and wrote its outputs, but at least one input was missing, not a
//!   capture, truncated or corrupt (each named on standard error and in the report);
//! - 4: writing an output (events, report, metrics file) failed.
//!
//! `live` uses the same codes: 0 after a clean stop (SIGINT/SIGTERM, events flushed), 1 when
//! setup failed (bad flag or config value, rules, interface missing or not permitted, listener
//! address taken), 2 for command-line syntax, 4 when writing events failed during the run.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use ksensor::app::config::{parse_net, LiveConfig, WebConfig};
use ksensor::app::live::{self as live_app, LiveRunError, LiveSettings};
use ksensor::capture::digest::{DigestAlgorithm, DigestOptions};
use ksensor::capture::live::{
    LiveOptions, DEFAULT_BUFFER_BYTES, DEFAULT_SNAPLEN, DEFAULT_TIMEOUT_MS,
};
use ksensor::flow::budget::DEFAULT_REASSEMBLY_BYTES;
use ksensor::fs_error;
use ksensor::inventory::assets::Assets;
use ksensor::inventory::Inventory;
use ksensor::metrics::{write_textfile, Metrics};
use ksensor::output::eve::EveSource;
use ksensor::output::events::{EventFormat, EventWriter};
use ksensor::output::limit::{EventLimits, DEFAULT_GLOBAL_RATE, DEFAULT_PER_SOURCE_RATE};
use ksensor::output::report::EventsSummary;
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
    /// Capture on interfaces until SIGINT/SIGTERM; export Prometheus metrics and events.
    Live(LiveArgs),
    /// Work with rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Re-render or merge saved JSON reports (no captures needed).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Merge JSON reports (from several sensors, or files replayed on several machines) into
    /// one, deciding every verdict again from the merged evidence.
    Merge {
        /// JSON reports written by `ksensor replay --report`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Merge reports made with different rule sets (all are listed in the result).
        #[arg(long)]
        allow_mixed_rules: bool,
        #[command(flatten)]
        outputs: ReportOutputs,
    },
    /// Render one saved JSON report again (Markdown, CSV, HTML).
    Render {
        file: PathBuf,
        #[command(flatten)]
        outputs: ReportOutputs,
    },
}

#[derive(Args)]
struct ReportOutputs {
    /// Write the JSON audit report to PATH (`-` for standard output).
    #[arg(long, value_name = "PATH|-")]
    report: Option<String>,
    /// Write the Markdown audit report to PATH.
    #[arg(long, value_name = "PATH")]
    report_md: Option<PathBuf>,
    /// Write the host table as CSV to PATH.
    #[arg(long, value_name = "PATH")]
    report_csv: Option<PathBuf>,
    /// Write the HTML audit report (one self-contained file) to PATH.
    #[arg(long, value_name = "PATH")]
    report_html: Option<PathBuf>,
}

fn report_command(command: ReportCommand) -> ExitCode {
    use ksensor::app::report_cmd::{run, Outputs};
    let (files, merge, allow, o) = match command {
        ReportCommand::Merge {
            files,
            allow_mixed_rules,
            outputs,
        } => (files, true, allow_mixed_rules, outputs),
        ReportCommand::Render { file, outputs } => (vec![file], false, false, outputs),
    };
    let outputs = Outputs {
        report: o.report,
        report_md: o.report_md,
        report_csv: o.report_csv,
        report_html: o.report_html,
    };
    match run(&files, merge, allow, &outputs) {
        Ok(failed) if failed.is_empty() => ExitCode::SUCCESS,
        Ok(failed) => {
            for f in failed {
                eprintln!("ksensor: writing failed: {f}");
            }
            ExitCode::from(4)
        }
        Err(e) => {
            eprintln!("ksensor: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate rule files (or directories of *.toml); prints the rule, network and prefix
    /// counts and the rule-set hash.
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
    /// Shape of the events: `native` (ksensor's) or `eve` (Suricata-style EVE records).
    #[arg(long, value_name = "FORMAT", default_value = "native",
          value_parser = EventFormat::NAMES)]
    events_format: String,
    /// With --events, also log every extracted name that matched no rule.
    #[arg(long)]
    all_names: bool,
    /// Event lines per second one client address may write (token bucket on capture time,
    /// bursts of 10 s; 0: no limit) [default: 20].
    #[arg(long, value_name = "N")]
    event_rate: Option<u32>,
    /// Event lines per second for the whole sensor (0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    event_rate_global: Option<u32>,
    #[command(flatten)]
    outputs: ReportOutputs,
    /// Managed-asset inventory: CSV `address,label,role`.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// An internal network of ours beside RFC 1918/4193, link-local and loopback (repeatable):
    /// its servers are ours when no inventory names them.
    #[arg(long = "internal-net", value_name = "CIDR", value_parser = parse_net)]
    internal_nets: Vec<ipnet::IpNet>,
    /// Worker threads (default: the machine's cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Flows tracked per worker.
    #[arg(long, value_name = "N", default_value_t = ksensor::flow::MAX_FLOWS_PER_WORKER)]
    max_flows: usize,
    /// Bytes all workers together may hold in TCP stream buffers [default: 256 MiB].
    #[arg(long, value_name = "BYTES")]
    reassembly_memory: Option<usize>,
    /// Never draw the progress line.
    #[arg(long)]
    quiet: bool,
    /// Also hash every input whole, with sha256 (check: sha256sum) or blake3 (check: b3sum).
    /// Without it the report binds each input by its size, packet count, first and last time
    /// and the SHA-256 of its first and last MiB; a whole-input hash costs the workers CPU
    /// (SHA-256 ~1.3 GB/s, BLAKE3 ~5 GB/s per core).
    #[arg(long, value_name = "ALGORITHM", value_parser = clap::value_parser!(DigestAlgorithm))]
    input_hash: Option<DigestAlgorithm>,
    /// Deprecated: a whole-input hash is no longer computed unless --input-hash asks for one.
    #[arg(long, hide = true, conflicts_with = "input_hash")]
    no_input_hash: bool,
    /// Write the final metrics in Prometheus text format to PATH, atomically (for
    /// node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    metrics_file: Option<PathBuf>,
    /// Sensor name: a `sensor` label on every metric.
    #[arg(long, value_name = "NAME")]
    sensor: Option<String>,
}

/// Default metrics listener: loopback only; 9977 is not in Prometheus's list of allocated
/// exporter ports.
const DEFAULT_LISTEN: &str = "127.0.0.1:9977";
/// Default rule-file poll interval, seconds.
const DEFAULT_RULE_POLL_SECS: u64 = 5;

#[derive(Args)]
struct LiveArgs {
    /// TOML file with any of the options below (keys are the flag names with `_`); flags win.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Interface to capture on (repeatable).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    interfaces: Vec<String>,
    /// Do not put interfaces in promiscuous mode.
    #[arg(long)]
    no_promisc: bool,
    /// Bytes captured per packet [default: 65535].
    #[arg(long, value_name = "BYTES")]
    snaplen: Option<u32>,
    /// Kernel capture buffer per handle, bytes [default: 64 MiB].
    #[arg(long, value_name = "BYTES")]
    buffer_size: Option<u32>,
    /// Deliver packets immediately instead of in blocks.
    #[arg(long)]
    immediate: bool,
    /// Block timeout, milliseconds [default: 100].
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u32>,
    /// BPF capture filter (pcap-filter(7) syntax).
    #[arg(long, value_name = "FILTER")]
    bpf: Option<String>,
    /// Capture handles per interface, joined in one PACKET_FANOUT hash group [default: 1].
    #[arg(long, value_name = "N")]
    fanout: Option<usize>,
    /// Worker threads [default: the machine's cores].
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Flows tracked per worker.
    #[arg(long, value_name = "N")]
    max_flows: Option<usize>,
    /// Bytes all workers together may hold in TCP stream buffers [default: 256 MiB].
    #[arg(long, value_name = "BYTES")]
    reassembly_memory: Option<usize>,
    /// Rule file or directory (repeatable). Default: the bundled rules/.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Check the rule files for changes every N seconds (0: only on SIGHUP) [default: 5].
    #[arg(long, value_name = "SECS")]
    rule_poll_secs: Option<u64>,
    /// Managed-asset inventory: CSV `address,label,role`.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// An internal network of ours beside RFC 1918/4193, link-local and loopback (repeatable):
    /// its servers are ours when no inventory names them.
    #[arg(long = "internal-net", value_name = "CIDR", value_parser = parse_net)]
    internal_nets: Vec<ipnet::IpNet>,
    /// Append one JSON object per detection to PATH (`-`: standard output); reopened on SIGHUP.
    #[arg(long, value_name = "PATH|-")]
    events: Option<String>,
    /// Shape of the events: `native` (ksensor's) or `eve` (Suricata-style EVE records)
    /// [default: native].
    #[arg(long, value_name = "FORMAT", value_parser = EventFormat::NAMES)]
    events_format: Option<String>,
    /// With --events, also log every extracted name that matched no rule.
    #[arg(long)]
    all_names: bool,
    /// Event lines per second one client address may write (token bucket on capture time,
    /// bursts of 10 s; 0: no limit) [default: 20].
    #[arg(long, value_name = "N")]
    event_rate: Option<u32>,
    /// Event lines per second for the whole sensor (0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    event_rate_global: Option<u32>,
    /// Metrics listener address (`/metrics`, `/healthz`); `off` disables it
    /// [default: 127.0.0.1:9977].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Listener TLS and basic-auth settings (TOML, Prometheus web-config keys).
    #[arg(long, value_name = "FILE")]
    web_config: Option<PathBuf>,
    /// Sensor name: a `sensor` label on every metric.
    #[arg(long, value_name = "NAME")]
    sensor: Option<String>,
}

/// Merges flags over the config file over defaults.
fn live_settings(args: LiveArgs) -> Result<LiveSettings> {
    let file = match &args.config {
        Some(path) => LiveConfig::load(path).map_err(anyhow::Error::msg)?,
        None => LiveConfig::default(),
    };
    let file_nets = file.internal_nets().map_err(anyhow::Error::msg)?;
    let interfaces = if args.interfaces.is_empty() {
        file.interfaces.unwrap_or_default()
    } else {
        args.interfaces
    };
    let capture = LiveOptions {
        promisc: if args.no_promisc {
            false
        } else {
            file.promisc.unwrap_or(true)
        },
        snaplen: args.snaplen.or(file.snaplen).unwrap_or(DEFAULT_SNAPLEN),
        buffer_bytes: args
            .buffer_size
            .or(file.buffer_size)
            .unwrap_or(DEFAULT_BUFFER_BYTES),
        immediate: args.immediate || file.immediate.unwrap_or(false),
        timeout_ms: args
            .timeout_ms
            .or(file.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
        bpf: args.bpf.or(file.bpf),
    };
    let workers = args
        .workers
        .or(file.workers)
        .unwrap_or_else(pipeline::default_workers);
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let web_config = args.web_config.or(file.web_config);
    let web = match &web_config {
        Some(path) => WebConfig::load(path).map_err(anyhow::Error::msg)?,
        None => WebConfig::default(),
    };
    let events_format = match args.events_format.or(file.events_format) {
        None => EventFormat::Native,
        Some(name) => EventFormat::from_name(&name, EveSource::Interfaces).ok_or_else(|| {
            anyhow::anyhow!(
                "events_format: {name:?} is not one of {}",
                EventFormat::NAMES.join(", ")
            )
        })?,
    };
    let poll = args
        .rule_poll_secs
        .or(file.rule_poll_secs)
        .unwrap_or(DEFAULT_RULE_POLL_SECS);
    Ok(LiveSettings {
        interfaces,
        capture,
        fanout: args.fanout.or(file.fanout).unwrap_or(1),
        workers,
        max_flows: args
            .max_flows
            .or(file.max_flows)
            .unwrap_or(ksensor::flow::MAX_FLOWS_PER_WORKER),
        reassembly_bytes: args
            .reassembly_memory
            .or(file.reassembly_memory)
            .unwrap_or(DEFAULT_REASSEMBLY_BYTES),
        rules: if args.rules.is_empty() {
            file.rules.unwrap_or_default()
        } else {
            args.rules
        },
        rule_poll: (poll > 0).then(|| std::time::Duration::from_secs(poll)),
        internal_nets: if args.internal_nets.is_empty() {
            file_nets
        } else {
            args.internal_nets
        },
        inventory: args.inventory.or(file.inventory),
        events: args.events.or(file.events),
        events_format,
        all_names: args.all_names || file.all_names.unwrap_or(false),
        event_limits: EventLimits {
            per_source: args
                .event_rate
                .or(file.event_rate)
                .unwrap_or(DEFAULT_PER_SOURCE_RATE),
            global: args
                .event_rate_global
                .or(file.event_rate_global)
                .unwrap_or(DEFAULT_GLOBAL_RATE),
        },
        listen: (listen != "off").then_some(listen),
        web,
        sensor: args.sensor.or(file.sensor),
    })
}

fn live_command(args: LiveArgs) -> ExitCode {
    let settings = match live_settings(args) {
        Ok(s) => s,
        Err(e) => {
            ksensor::app::log::error("cannot start", &[("error", &format!("{e:#}"))]);
            return ExitCode::from(1);
        }
    };
    match live_app::run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            ksensor::app::log::error("live capture failed", &[("error", &e.to_string())]);
            match e {
                LiveRunError::Setup(_) => ExitCode::from(1),
                LiveRunError::Output(_) => ExitCode::from(4),
            }
        }
    }
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
        Command::Live(args) => live_command(args),
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => rules_check(&paths),
        Command::Report { command } => report_command(command),
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
            println!(
                "ok: {} rules, {} networks ({} prefixes), sha256 {}",
                set.rules().len(),
                set.networks().len(),
                set.prefix_count(),
                set.sha256()
            );
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
    let file =
        File::create(path).map_err(|e| anyhow::anyhow!(fs_error::at(Path::new(path), &e)))?;
    Ok(Box::new(BufWriter::new(file)))
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!(fs_error::at(path, &e)))
}

fn replay_command(args: ReplayArgs) -> Result<ExitCode> {
    let rules = Arc::new(load_rules(&args.rules)?);
    let assets = match &args.inventory {
        Some(path) => Assets::load(path)?,
        None => Assets::default(),
    }
    .with_internal_nets(&args.internal_nets);
    let workers = args.workers.unwrap_or_else(pipeline::default_workers);
    let reassembly_bytes = args.reassembly_memory.unwrap_or(DEFAULT_REASSEMBLY_BYTES);
    pipeline::check_settings(workers, args.max_flows, reassembly_bytes)
        .map_err(anyhow::Error::msg)?;
    if let Some(name) = &args.sensor {
        ksensor::metrics::check_sensor_name(name).map_err(anyhow::Error::msg)?;
    }
    // Check every output before reading anything, so a bad path fails at once, not after the
    // replay: each can be written, and no two name the same file.
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    for (flag, path) in [
        ("--events", args.events.as_deref().map(Path::new)),
        ("--report", args.outputs.report.as_deref().map(Path::new)),
        ("--report-md", args.outputs.report_md.as_deref()),
        ("--report-csv", args.outputs.report_csv.as_deref()),
        ("--report-html", args.outputs.report_html.as_deref()),
        ("--metrics-file", args.metrics_file.as_deref()),
    ] {
        let Some(path) = path.filter(|p| *p != Path::new("-")) else {
            continue;
        };
        fs_error::check_output(path).map_err(anyhow::Error::msg)?;
        if let Some((other, _)) = outputs.iter().find(|(_, p)| *p == path) {
            anyhow::bail!("{other} and {flag} both name {}", path.display());
        }
        outputs.push((flag, path));
    }
    // The flag's parser admits only known names.
    let format = EventFormat::from_name(&args.events_format, EveSource::Files).unwrap_or_default();
    let events = match &args.events {
        Some(path) => {
            Some(EventWriter::new(create_output(path)?, args.files.clone()).with_format(format))
        }
        None => None,
    };
    let mut report_out = match &args.outputs.report {
        Some(path) => Some(create_output(path)?),
        None => None,
    };
    let config = PipelineConfig {
        workers,
        rules: rules.clone(),
        all_names: args.all_names,
        max_flows_per_worker: args.max_flows,
        reassembly_bytes,
        dns_facts: events.is_some() && matches!(format, EventFormat::Eve(_)),
    };
    let event_limits = EventLimits {
        per_source: args.event_rate.unwrap_or(DEFAULT_PER_SOURCE_RATE),
        global: args.event_rate_global.unwrap_or(DEFAULT_GLOBAL_RATE),
    };
    let collector = Collector::new(Inventory::new(rules.clone()), events, workers)
        .with_event_limits(event_limits);
    if args.no_input_hash {
        eprintln!(
            "ksensor: --no-input-hash is deprecated and does nothing: inputs are hashed whole \
             only with --input-hash sha256|blake3"
        );
    }
    let read = replay::ReadOptions {
        progress: !args.quiet,
        digest: DigestOptions {
            full: args.input_hash,
        },
    };
    let outcome = replay::run(&args.files, &config, collector, read);

    for input in &outcome.inputs {
        if let Some(err) = &input.error {
            eprintln!("ksensor: {}: {err}", input.name);
        }
    }
    let caps = pipeline::named_caps();
    let mut report = Report::build(
        &outcome.inputs,
        &rules,
        &outcome.counters,
        &outcome.collector.inventory,
        &assets,
        &caps,
    );
    if args.events.is_some() {
        let limited = outcome.collector.event_limits();
        let suppressed = limited.suppressed.total();
        if suppressed > 0 {
            let why: Vec<String> = limited
                .suppressed
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{reason} {n}"))
                .collect();
            eprintln!(
                "ksensor: {suppressed} event lines suppressed by the rate limits ({}); \
                 the report and inventory keep every detection (--event-rate 0 \
                 --event-rate-global 0 writes them all)",
                why.join(", ")
            );
        }
        report = report.with_events(EventsSummary {
            written: outcome.collector.events_written,
            limits: event_limits,
            counts: limited.clone(),
        });
    }
    let mut output_failed = false;
    if let Some(e) = &outcome.collector.event_error {
        eprintln!("ksensor: writing events failed: {e}");
        output_failed = true;
    }
    if let Some(out) = &mut report_out {
        let json = report.to_json();
        // A buffer of a concrete type in front of the boxed writer: the serializer's many small
        // writes (a report can be tens of MB) then inline into copies instead of each being a
        // call through the box.
        let written = {
            let mut buffered = BufWriter::with_capacity(1 << 20, &mut *out);
            serde_json::to_writer_pretty(&mut buffered, &json)
                .map_err(io::Error::from)
                .and_then(|()| buffered.write_all(b"\n"))
                .and_then(|()| buffered.flush())
        }
        .and_then(|()| out.flush());
        if let Err(e) = written {
            eprintln!("ksensor: writing the report failed: {e}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.outputs.report_md {
        if let Err(e) = write_text(path, &report.to_markdown()) {
            eprintln!("ksensor: {e:#}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.outputs.report_csv {
        if let Err(e) = write_text(path, &report.to_csv()) {
            eprintln!("ksensor: {e:#}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.outputs.report_html {
        if let Err(e) = write_text(path, &report.to_html()) {
            eprintln!("ksensor: {e:#}");
            output_failed = true;
        }
    }
    if let Some(path) = &args.metrics_file {
        let written = Metrics::new(args.sensor.as_deref())
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|mut m| {
                m.rules_loaded(&rules, std::time::SystemTime::now());
                m.set_reassembly_budget(config.reassembly_bytes);
                m.add_worker_counters(&outcome.counters);
                let c = &outcome.collector;
                m.observe_events_suppressed(&c.event_limits().suppressed);
                m.observe_inventory(
                    &c.inventory,
                    c.events_written,
                    c.event_error.is_some(),
                    &assets,
                );
                write_textfile(path, &m.render())
            });
        if let Err(e) = written {
            eprintln!("ksensor: {}", fs_error::at(path, &e));
            output_failed = true;
        }
    }
    let stdout_taken =
        args.events.as_deref() == Some("-") || args.outputs.report.as_deref() == Some("-");
    if !stdout_taken && args.events.is_none() && args.outputs.report.is_none() {
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
