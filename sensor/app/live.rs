//! `ksensor live`: capture threads → the multi-core pipeline → events and metrics, until a
//! signal stops it.
//!
//! Threads: one capture thread per handle (an interface, or each of its `--fanout` handles),
//! the pipeline's workers, the metrics listener, and the calling thread as supervisor. A
//! capture thread reads up to [`READ_CHUNK`] packets per call from its non-blocking handle and
//! pushes them into the shared [`Pipeline`] (the lock is taken only once a packet is in hand, so
//! an idle handle never blocks a busy one); when its handle has nothing it sleeps
//! [`IDLE_SLEEP`]. If its interface fails (down, removed) it marks it down in
//! `ksensor_interface_up`, logs one line and reopens it with a capped backoff.
//!
//! The supervisor, every [`FLUSH_INTERVAL`]: hands staged packets to the workers, applies their
//! results, flushes events (so an event is written well within a second of its packet) and
//! publishes counters. Every [`METRICS_INTERVAL`] it reads the inventory for the host gauges.
//! SIGHUP reloads the rules and reopens the events file (log rotation); a rule file whose
//! modification time or size changed is reloaded too (polled). A reload that fails keeps the
//! running rules, logs one error line and sets `ksensor_rules_last_reload_success 0`.
//! SIGINT/SIGTERM stop capture, drain every packet already read, flush events and return; a
//! second signal during that drain exits at once (status 1).

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::app::config::WebConfig;
use crate::app::log;
use crate::app::web::MetricsServer;
use crate::capture::live::{LiveOptions, LiveSource, MAX_FANOUT};
use crate::capture::{PacketSource, SourceStatus};
use crate::inventory::assets::Assets;
use crate::inventory::Inventory;
use crate::metrics::{InventorySnapshot, Metrics};
use crate::output::events::{EventFormat, EventWriter};
use crate::output::limit::{EventLimits, Suppressed};
use crate::pipeline::{Collector, Pipeline, PipelineConfig};
use crate::reason::{Reason, ReasonCounts};
use crate::rules::{RuleSet, MAX_RULE_FILES};

/// Packets read per call on a handle: bounds how long one capture thread holds the pipeline.
pub const READ_CHUNK: usize = 1024;
/// Sleep of a capture thread whose handle had nothing: adds at most this much latency and
/// keeps an idle sensor near 0% CPU (the kernel ring buffers meanwhile).
pub const IDLE_SLEEP: Duration = Duration::from_millis(2);
/// Supervisor tick: staged packets go to the workers and events are flushed this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// How often the inventory is walked for the host gauges (up to `inventory::MAX_HOSTS` hosts).
pub const METRICS_INTERVAL: Duration = Duration::from_secs(1);
/// How often each handle's libpcap counters are read.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// Reopen backoff of a failed interface: starts at the first value, doubles up to the second.
pub const RETRY_FIRST: Duration = Duration::from_millis(500);
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Most interfaces on one command line (each becomes a label value and a thread per handle).
pub const MAX_INTERFACES: usize = 64;
/// Most capture handles (interfaces × `--fanout`), each a thread and a kernel ring of
/// `--buffer-size` (64 MiB by default): 64 of them are already 4 GiB of rings, and more
/// threads than a capture host has cores read no faster.
pub const MAX_CAPTURE_HANDLES: usize = 64;
/// Supervisor sleep between checks of signals.
const TICK: Duration = Duration::from_millis(50);

/// Everything `ksensor live` needs, after flags and config file were merged.
#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub interfaces: Vec<String>,
    pub capture: LiveOptions,
    pub fanout: usize,
    pub workers: usize,
    pub max_flows: usize,
    /// Bytes all workers' stream buffers may hold together (`--reassembly-memory`).
    pub reassembly_bytes: usize,
    /// Rule files or directories; empty means the bundled rules.
    pub rules: Vec<PathBuf>,
    /// Poll the rule files for changes this often (`None`: only SIGHUP reloads).
    pub rule_poll: Option<Duration>,
    pub inventory: Option<PathBuf>,
    /// The operator's internal networks (`--internal-net`, `internal_nets`).
    pub internal_nets: Vec<ipnet::IpNet>,
    /// `-` for standard output.
    pub events: Option<String>,
    pub events_format: EventFormat,
    pub all_names: bool,
    /// Event line rate limits (per client address and for the sensor).
    pub event_limits: EventLimits,
    /// Metrics listener address (`None`: no listener).
    pub listen: Option<String>,
    pub web: WebConfig,
    pub sensor: Option<String>,
}

/// Why `live` stopped with an error.
#[derive(Debug)]
pub enum LiveRunError {
    /// Bad settings, rules, inventory, interface or listener: nothing was captured (exit 1).
    Setup(String),
    /// Writing events failed during the run (exit 4).
    Output(String),
}

impl std::fmt::Display for LiveRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveRunError::Setup(m) | LiveRunError::Output(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LiveRunError {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn rule_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![RuleSet::bundled_dir()]
    } else {
        paths.to_vec()
    }
}

/// What identifies the rule files' content cheaply: path, modification time and size of each
/// file (directories expanded to their `*.toml`, at most `MAX_RULE_FILES`).
type RuleSignature = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn rule_signature(paths: &[PathBuf]) -> RuleSignature {
    let mut sig = Vec::new();
    let mut add = |p: &Path| {
        let meta = std::fs::metadata(p).ok();
        sig.push((
            p.to_path_buf(),
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.map_or(0, |m| m.len()),
        ));
    };
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .take(MAX_RULE_FILES)
                .collect();
            files.sort();
            files.iter().for_each(|f| add(f));
        } else {
            add(path);
        }
    }
    sig
}

fn open_events(path: &str) -> io::Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(BufWriter::new(io::stdout())));
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Box::new(BufWriter::new(file)))
}

struct Shared {
    pipeline: Mutex<Pipeline>,
    metrics: Arc<Mutex<Metrics>>,
    stop: Arc<AtomicBool>,
}

struct Handle {
    interface: String,
    input: u16,
    fanout_group: Option<u16>,
}

fn open_handle(h: &Handle, opts: &LiveOptions) -> Result<LiveSource, String> {
    let source = LiveSource::open(&h.interface, h.input, opts).map_err(|e| e.to_string())?;
    if let Some(group) = h.fanout_group {
        source.join_fanout(group).map_err(|e| e.to_string())?;
    }
    Ok(source)
}

/// Reads one chunk from `source` into the pipeline.
fn read_chunk(
    source: &mut LiveSource,
    shared: &Shared,
) -> Result<SourceStatus, crate::capture::CaptureError> {
    let mut guard: Option<MutexGuard<'_, Pipeline>> = None;
    source.next_packets(READ_CHUNK, &mut |meta, data| {
        guard
            .get_or_insert_with(|| lock(&shared.pipeline))
            .push(meta, data);
    })
}

/// On stop: reads what the kernel already holds, including a block it retires only after the
/// block timeout, so packets captured before the signal are not lost.
fn drain_ring(source: &mut LiveSource, opts: &LiveOptions, shared: &Shared) {
    let settle = Duration::from_millis(u64::from(opts.timeout_ms)) + Duration::from_millis(50);
    let deadline = Instant::now() + settle;
    loop {
        match read_chunk(source, shared) {
            Ok(SourceStatus::More) => continue,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(IDLE_SLEEP),
            _ => return,
        }
    }
}

/// The interface's link state from sysfs (`operstate`, see the kernel's
/// Documentation/networking/operstates.rst): `Some(false)` for `down`/`lowerlayerdown`/
/// `notpresent`, `Some(true)` for `up` and `unknown` (loopback and some virtual devices report
/// `unknown` while working), `None` when sysfs cannot tell.
fn link_is_up(interface: &str) -> Option<bool> {
    let path = Path::new("/sys/class/net")
        .join(interface)
        .join("operstate");
    let state = std::fs::read_to_string(path).ok()?;
    match state.trim() {
        "up" | "unknown" | "dormant" => Some(true),
        "down" | "lowerlayerdown" | "notpresent" => Some(false),
        _ => None,
    }
}

fn capture_loop(mut source: LiveSource, h: Handle, opts: LiveOptions, shared: Arc<Shared>) {
    let mut last_stats = Instant::now();
    let mut link_up = true;
    while !shared.stop.load(Ordering::Relaxed) {
        let status = read_chunk(&mut source, &shared);
        if last_stats.elapsed() >= STATS_INTERVAL {
            last_stats = Instant::now();
            if let Ok(d) = source.stats_delta() {
                lock(&shared.metrics).add_capture_stats(&h.interface, d);
            }
            // A link that goes down keeps its packet socket open and silent; only sysfs says.
            if let Some(up) = link_is_up(&h.interface).filter(|up| *up != link_up) {
                link_up = up;
                lock(&shared.metrics).set_interface_up(&h.interface, up);
                if up {
                    log::info("link is up again", &[("interface", &h.interface)]);
                } else {
                    log::warn("link is down", &[("interface", &h.interface)]);
                }
            }
        }
        match status {
            Ok(SourceStatus::More) => {}
            Ok(SourceStatus::Idle) | Ok(SourceStatus::End) => std::thread::sleep(IDLE_SLEEP),
            Err(e) => {
                let why = match e {
                    crate::capture::CaptureError::Live(kind) => {
                        crate::capture::live::describe(kind).to_string()
                    }
                    other => other.to_string(),
                };
                log::error(
                    "capture failed; retrying",
                    &[("interface", &h.interface), ("error", &why)],
                );
                lock(&shared.metrics).set_interface_up(&h.interface, false);
                match reopen(&h, &opts, &shared) {
                    Some(s) => source = s,
                    None => return,
                }
            }
        }
    }
    drain_ring(&mut source, &opts, &shared);
    if let Ok(d) = source.stats_delta() {
        lock(&shared.metrics).add_capture_stats(&h.interface, d);
    }
}

/// Reopens a failed handle with backoff; `None` when asked to stop first.
fn reopen(h: &Handle, opts: &LiveOptions, shared: &Shared) -> Option<LiveSource> {
    let mut wait = RETRY_FIRST;
    let mut last_error = String::new();
    loop {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(TICK);
        }
        match open_handle(h, opts) {
            Ok(source) => {
                let m = lock(&shared.metrics);
                m.interface_reopened(&h.interface);
                m.set_interface_up(&h.interface, true);
                log::info("capture resumed", &[("interface", &h.interface)]);
                return Some(source);
            }
            Err(e) => {
                if e != last_error {
                    log::warn(
                        "interface still unavailable",
                        &[("interface", &h.interface), ("error", &e)],
                    );
                    last_error = e;
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

/// Loads the rules again and swaps them in, or keeps the running ones on error.
fn reload(paths: &[PathBuf], trigger: &str, shared: &Shared, assets: &Assets) {
    match RuleSet::load(paths) {
        Ok(set) => {
            let set = Arc::new(set);
            let mut p = lock(&shared.pipeline);
            let mut m = lock(&shared.metrics);
            // Detections so far are counted under the old rule ids before indexes change.
            observe(&mut m, p.collector(), assets);
            p.set_rules(set.clone());
            m.rebase_detections(&p.collector().inventory);
            m.rules_loaded(&set, SystemTime::now());
            log::info(
                "rules reloaded",
                &[
                    ("trigger", trigger),
                    ("rules", &set.rules().len().to_string()),
                    ("sha256", set.sha256()),
                ],
            );
        }
        Err(e) => {
            lock(&shared.metrics).rules_reload_failed(e.kind);
            log::error(
                "rule reload failed; the running rules stay",
                &[("trigger", trigger), ("error", &e.to_string())],
            );
        }
    }
}

/// Moves staged packets to the workers, applies results, flushes events, publishes counters.
///
/// The inventory is walked (every host decided) while the pipeline is held, and the metrics
/// lock, which a scrape waits for, is taken only afterwards to set the values.
fn tick(shared: &Shared, assets: &Assets, with_inventory: bool) {
    let mut p = lock(&shared.pipeline);
    p.flush();
    let counters = p.take_counters();
    let gauges = p.flow_gauges();
    p.collector_mut().flush();
    let snapshot = with_inventory.then(|| {
        let c = p.collector();
        InventorySnapshot::take(
            &c.inventory,
            c.events_written,
            c.event_error.is_some(),
            assets,
        )
    });
    drop(p);
    let mut m = lock(&shared.metrics);
    m.add_worker_counters(&counters);
    m.set_flow_gauges(gauges);
    if let Some(snapshot) = snapshot {
        m.apply_snapshot(snapshot);
    }
}

/// Shortest time between two log lines about suppressed event lines: a flood that lasts hours
/// must not fill the journal instead of the events file.
pub const SUPPRESSION_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Logs, at most every [`SUPPRESSION_LOG_INTERVAL`], how many event lines the rate limits
/// suppressed since the last such line.
#[derive(Default)]
struct SuppressionLog {
    logged: u64,
    last: Option<Instant>,
}

impl SuppressionLog {
    fn maybe_log(&mut self, counts: &ReasonCounts<Suppressed>) {
        let total = counts.total();
        if total <= self.logged
            || self
                .last
                .is_some_and(|t| t.elapsed() < SUPPRESSION_LOG_INTERVAL)
        {
            return;
        }
        let mut fields: Vec<(&str, String)> =
            vec![("since_last", (total - self.logged).to_string())];
        for r in Suppressed::ALL {
            fields.push((r.label(), counts.get(*r).to_string()));
        }
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        log::warn(
            "event lines suppressed by the rate limits; detections still reach the inventory and metrics",
            &fields,
        );
        self.logged = total;
        self.last = Some(Instant::now());
    }
}

/// Hands the metrics what the collector holds: the inventory and the event writer's counts.
fn observe(m: &mut Metrics, c: &Collector, assets: &Assets) {
    m.observe_events_suppressed(&c.event_limits().suppressed);
    m.observe_inventory(
        &c.inventory,
        c.events_written,
        c.event_error.is_some(),
        assets,
    );
}

fn check(settings: &LiveSettings) -> Result<(), String> {
    if settings.interfaces.is_empty() {
        return Err("live needs at least one interface (-i IFACE)".into());
    }
    if settings.interfaces.len() > MAX_INTERFACES {
        return Err(format!("at most {MAX_INTERFACES} interfaces"));
    }
    let most_fanout = MAX_FANOUT.min(MAX_CAPTURE_HANDLES);
    if settings.fanout == 0 || settings.fanout > most_fanout {
        return Err(format!(
            "--fanout must be 1..={most_fanout}, not {}",
            settings.fanout
        ));
    }
    let handles = settings.interfaces.len().saturating_mul(settings.fanout);
    if handles > MAX_CAPTURE_HANDLES {
        return Err(format!(
            "{} interfaces x --fanout {} is {handles} capture handles; at most {MAX_CAPTURE_HANDLES}",
            settings.interfaces.len(),
            settings.fanout
        ));
    }
    crate::pipeline::check_settings(
        settings.workers,
        settings.max_flows,
        settings.reassembly_bytes,
    )?;
    if let Some(path) = settings.events.as_deref().filter(|p| *p != "-") {
        crate::fs_error::check_output(Path::new(path))?;
    }
    if let Some(name) = &settings.sensor {
        crate::metrics::check_sensor_name(name)?;
    }
    settings.capture.validate()
}

/// Runs until SIGINT/SIGTERM. Logs `msg=listening addr=…` once the metrics listener is up and
/// `msg="capture started"` once every handle is open.
pub fn run(settings: LiveSettings) -> Result<(), LiveRunError> {
    let setup = LiveRunError::Setup;
    check(&settings).map_err(setup)?;
    let paths = rule_paths(&settings.rules);
    let rules = Arc::new(RuleSet::load(&paths).map_err(|e| setup(e.to_string()))?);
    let assets = match &settings.inventory {
        Some(path) => Assets::load(path).map_err(|e| setup(e.to_string()))?,
        None => Assets::default(),
    }
    .with_internal_nets(&settings.internal_nets);
    let mut metrics = Metrics::new(settings.sensor.as_deref()).map_err(|e| setup(e.to_string()))?;
    metrics.rules_loaded(&rules, SystemTime::now());
    metrics.set_reassembly_budget(settings.reassembly_bytes);
    // Every suppression reason exists at zero from the first scrape.
    metrics.observe_events_suppressed(&ReasonCounts::<Suppressed>::default());
    for iface in &settings.interfaces {
        metrics.add_interface(iface);
    }
    let metrics = Arc::new(Mutex::new(metrics));

    // Signals first, so a signal during setup is not lost.
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .and_then(|_| signal_hook::flag::register(sig, stop.clone()))
            .map_err(|e| setup(format!("cannot install signal handlers: {e}")))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| setup(format!("cannot install signal handlers: {e}")))?;

    // Open every handle before anything runs: a missing interface or missing permission is
    // one error line and exit 1.
    let mut sources = Vec::new();
    for (index, iface) in settings.interfaces.iter().enumerate() {
        let input = u16::try_from(index).unwrap_or(u16::MAX);
        // Fanout group ids are per network namespace; derive one from the pid and interface.
        let group = (settings.fanout > 1).then(|| {
            let pid = std::process::id() & 0xffff;
            u16::try_from(pid).unwrap_or(0).wrapping_add(input)
        });
        for _ in 0..settings.fanout {
            let h = Handle {
                interface: iface.clone(),
                input,
                fanout_group: group,
            };
            let source = open_handle(&h, &settings.capture).map_err(setup)?;
            sources.push((source, h));
        }
    }

    let events = match &settings.events {
        Some(path) => Some(
            EventWriter::new(
                open_events(path).map_err(|e| setup(crate::fs_error::at(Path::new(path), &e)))?,
                settings.interfaces.clone(),
            )
            .with_format(settings.events_format),
        ),
        None => None,
    };
    let server = match &settings.listen {
        Some(addr) => {
            let s = MetricsServer::start(addr, &settings.web, metrics.clone())
                .map_err(|e| setup(e.to_string()))?;
            log::info(
                "listening",
                &[
                    ("addr", s.addr()),
                    (
                        "tls",
                        if settings.web.tls_server_config.is_some() {
                            "on"
                        } else {
                            "off"
                        },
                    ),
                    (
                        "basic_auth",
                        if settings.web.basic_auth_users.is_empty() {
                            "off"
                        } else {
                            "on"
                        },
                    ),
                ],
            );
            Some(s)
        }
        None => None,
    };

    let config = PipelineConfig {
        workers: settings.workers,
        rules: rules.clone(),
        all_names: settings.all_names,
        max_flows_per_worker: settings.max_flows,
        reassembly_bytes: settings.reassembly_bytes,
        dns_facts: settings.events.is_some()
            && matches!(settings.events_format, EventFormat::Eve(_)),
    };
    let collector = Collector::new(Inventory::new(rules.clone()), events, settings.workers)
        .with_event_limits(settings.event_limits);
    let shared = Arc::new(Shared {
        pipeline: Mutex::new(Pipeline::new(&config, collector)),
        metrics,
        stop: stop.clone(),
    });
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    for (n, (source, h)) in sources.into_iter().enumerate() {
        lock(&shared.metrics).set_interface_up(&h.interface, true);
        let (shared2, opts) = (shared.clone(), settings.capture.clone());
        let thread = std::thread::Builder::new()
            .name(format!("ksensor-capture-{n}"))
            .spawn(move || capture_loop(source, h, opts, shared2))
            .map_err(|e| setup(format!("cannot start a capture thread: {e}")))?;
        threads.push(thread);
    }
    log::info(
        "capture started",
        &[
            ("interfaces", &settings.interfaces.join(",")),
            ("fanout", &settings.fanout.to_string()),
            ("workers", &settings.workers.to_string()),
            ("rules", &rules.rules().len().to_string()),
            ("sha256", rules.sha256()),
        ],
    );

    let mut signature = rule_signature(&paths);
    let (mut last_flush, mut last_inventory, mut last_poll) =
        (Instant::now(), Instant::now(), Instant::now());
    let mut event_error_logged = false;
    let mut suppression_log = SuppressionLog::default();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        if hup.swap(false, Ordering::Relaxed) {
            reload(&paths, "sighup", &shared, &assets);
            signature = rule_signature(&paths);
            if let Some(path) = settings.events.as_deref().filter(|p| *p != "-") {
                let mut p = lock(&shared.pipeline);
                if let Some(w) = p.collector_mut().events_mut() {
                    match open_events(path) {
                        Ok(out) => {
                            let _ = w.reopen(out);
                            log::info("events file reopened", &[("path", path)]);
                        }
                        Err(e) => log::error(
                            "cannot reopen the events file; writing to the old one",
                            &[("path", path), ("error", &crate::fs_error::describe(&e))],
                        ),
                    }
                }
            }
        }
        if let Some(every) = settings.rule_poll {
            if last_poll.elapsed() >= every {
                last_poll = Instant::now();
                let now = rule_signature(&paths);
                if now != signature {
                    signature = now;
                    reload(&paths, "file-changed", &shared, &assets);
                }
            }
        }
        if last_flush.elapsed() >= FLUSH_INTERVAL {
            last_flush = Instant::now();
            let with_inventory = last_inventory.elapsed() >= METRICS_INTERVAL;
            if with_inventory {
                last_inventory = Instant::now();
            }
            tick(&shared, &assets, with_inventory);
            if with_inventory {
                let p = lock(&shared.pipeline);
                suppression_log.maybe_log(&p.collector().event_limits().suppressed);
            }
            if !event_error_logged {
                if let Some(e) = &lock(&shared.pipeline).collector().event_error {
                    log::error("writing events failed", &[("error", &e.to_string())]);
                    event_error_logged = true;
                }
            }
        }
    }

    log::info("stopping: draining packets already read", &[]);
    for t in threads {
        let _ = t.join();
    }
    let (collector, counters) = {
        let mut p = lock(&shared.pipeline);
        let idle = Pipeline::new(
            &PipelineConfig {
                workers: 1,
                ..config.clone()
            },
            Collector::new(Inventory::new(rules.clone()), None, 1),
        );
        std::mem::replace(&mut *p, idle).finish()
    };
    {
        let mut m = lock(&shared.metrics);
        m.add_worker_counters(&counters);
        observe(&mut m, &collector, &assets);
    }
    if let Some(s) = server {
        s.stop();
    }
    log::info(
        "stopped",
        &[
            ("events", &collector.events_written.to_string()),
            (
                "events_suppressed",
                &collector.event_limits().suppressed.total().to_string(),
            ),
            (
                "detections",
                &collector.inventory.counters.detections.to_string(),
            ),
        ],
    );
    match &collector.event_error {
        Some(e) => Err(LiveRunError::Output(format!("writing events failed: {e}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LiveSettings {
        LiveSettings {
            interfaces: vec!["lo".into()],
            capture: LiveOptions::default(),
            fanout: 1,
            workers: 1,
            max_flows: 10,
            reassembly_bytes: crate::flow::budget::DEFAULT_REASSEMBLY_BYTES,
            rules: Vec::new(),
            rule_poll: None,
            inventory: None,
            internal_nets: Vec::new(),
            events: None,
            events_format: EventFormat::Native,
            all_names: false,
            event_limits: EventLimits::default(),
            listen: None,
            web: WebConfig::default(),
            sensor: None,
        }
    }

    #[test]
    fn check_rejects_bad_settings() {
        assert_eq!(check(&settings()), Ok(()));
        let mut s = settings();
        s.interfaces.clear();
        assert!(check(&s).is_err());
        let mut s = settings();
        s.fanout = 0;
        assert!(check(&s).is_err());
        let mut s = settings();
        s.fanout = MAX_FANOUT + 1;
        assert!(check(&s).is_err());
        let mut s = settings();
        s.workers = 0;
        assert!(check(&s).is_err());
        let mut s = settings();
        s.interfaces = vec!["x".into(); MAX_INTERFACES + 1];
        assert!(check(&s).is_err());
        let mut s = settings();
        s.workers = 100_000;
        assert!(check(&s).unwrap_err().contains("--workers"));
        let mut s = settings();
        s.fanout = 100_000;
        assert!(check(&s).unwrap_err().contains("--fanout"));
        let mut s = settings();
        s.interfaces = vec!["x".into(); 4];
        s.fanout = MAX_CAPTURE_HANDLES / 2;
        assert!(check(&s).unwrap_err().contains("capture handles"));
        let mut s = settings();
        s.reassembly_bytes = 64;
        assert!(check(&s).unwrap_err().contains("--reassembly-memory"));
        let mut s = settings();
        s.events = Some("/nonexistent-dir/events.jsonl".into());
        let e = check(&s).unwrap_err();
        assert!(
            e.contains("/nonexistent-dir/events.jsonl") && e.contains("no such directory"),
            "{e}"
        );
    }

    #[test]
    fn rule_signature_sees_a_rewrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "x").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        let before = rule_signature(&[dir.path().to_path_buf()]);
        assert_eq!(before.len(), 1);
        std::fs::write(&file, "xy").expect("write");
        assert_ne!(rule_signature(&[dir.path().to_path_buf()]), before);
    }
}
