//! Prometheus metrics: what the sensor counts, in the Prometheus text format.
//!
//! Contract: [`Metrics`] owns one `prometheus::Registry`. The live loop (or the end of a replay)
//! feeds it counter *deltas* ([`Metrics::add_worker_counters`], [`Metrics::add_capture_stats`])
//! and snapshots it reads itself ([`Metrics::observe_inventory`], which diffs the inventory's
//! and the event writer's cumulative counts against what it saw last time). [`Metrics::render`] encodes everything for
//! `/metrics`; [`write_textfile`] writes it atomically for node_exporter's textfile collector.
//! Nothing here touches a packet: it runs on a tick (≤ a few times a second) and on scrapes.
//!
//! Label cardinality is bounded by construction: stages, reasons, kinds, verdicts and
//! categories are closed enums; rule ids are capped by `rules::MAX_RULES`; interfaces by the
//! command line. The one per-host series, `ksensor_install_info{host,verdict,certainty,product}`,
//! is capped at [`MAX_INSTALL_SERIES`] hosts (least recently seen evicted first, each eviction
//! counted in `ksensor_install_series_evicted_total`). `certainty` and `product` are closed sets
//! (`confirmed|likely|possible`, `antivirus|kaspersky|oem`), empty for verdicts that are not
//! installs. Names and client addresses never become labels otherwise. `--sensor NAME` adds a
//! constant `sensor` label to every series.
//!
//! Host gauges are computed from the inventory on the live loop's tick, in two steps:
//! [`InventorySnapshot::take`] walks the hosts while the caller holds the pipeline (the
//! inventory is plain data behind it), and [`Metrics::apply_snapshot`] sets the gauges, so the
//! metrics lock that a scrape waits for is held only for setting values, never for the walk.

pub mod web;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::capture::live::CaptureStats;
use crate::flow::{FlowGauges, WorkerCounters};
use crate::inventory::assets::Assets;
use crate::inventory::{Certainty, Inventory, InventoryCounters, Product, Verdict};
use crate::proto::NameKind;
use crate::reason::{Reason, ReasonCounts};
use crate::reason_enum;
use crate::rules::{RuleErrorKind, RuleSet};
use crate::time::Timestamp;

/// Hosts exported one by one in `ksensor_install_info`. A SOC wants to see each install, but a
/// series per host must not grow with the network: a thousand installs is a large estate and
/// still a cheap scrape (one line each). Past it, the least recently seen hosts are dropped
/// from the per-host series (still counted in `ksensor_hosts`).
pub const MAX_INSTALL_SERIES: usize = 1_000;

/// Longest `--sensor` name: it is a label value on every series of every scrape; a site code
/// or host name fits in far less.
pub const MAX_SENSOR_NAME: usize = 128;

/// Checks a `--sensor` name: one line when it is empty, too long or holds control characters
/// (which would break log lines and dashboards).
pub fn check_sensor_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_SENSOR_NAME || name.chars().any(char::is_control) {
        return Err(format!(
            "--sensor must be 1..={MAX_SENSOR_NAME} bytes without control characters"
        ));
    }
    Ok(())
}

reason_enum! {
    /// Why ksensor itself dropped something (as opposed to the kernel or the NIC).
    pub enum DropReason {
        /// A packet of a new flow was refused: the worker's flow table was full.
        FlowTableFull => "flow_table_full",
        /// A host was evicted to make room for a new one: the inventory is at
        /// `inventory::MAX_HOSTS` (the weakest, least recently seen host goes first).
        InventoryHostEvicted => "inventory_host_evicted",
        /// An evidence entry was refused: the inventory is at `inventory::MAX_EVIDENCE_ENTRIES`.
        InventoryEvidenceFull => "inventory_evidence_full",
        /// A name was kept without its text: the inventory is at `inventory::MAX_DISTINCT_NAMES`.
        InventoryNamesFull => "inventory_names_full",
        /// A learned fact was refused: `inventory::MAX_FACTS_PER_HOST` or `inventory::MAX_FACTS`.
        InventoryFactsFull => "inventory_facts_full",
        /// An evidence entry was refused: the host is at `inventory::MAX_EVIDENCE_PER_HOST`.
        EvidencePerHostFull => "evidence_per_host_full",
        /// An address remembered from a DNS answer was evicted for a newer one.
        DnsAnswerAddressEvicted => "dns_answer_address_evicted",
        /// An event could not be written (output error).
        EventWriteFailed => "event_write_failed",
    }
}

/// Why the metrics could not be set up.
#[derive(Debug)]
pub struct MetricsError(prometheus::Error);

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metrics: {}", self.0)
    }
}

impl std::error::Error for MetricsError {}

impl From<prometheus::Error> for MetricsError {
    fn from(e: prometheus::Error) -> Self {
        MetricsError(e)
    }
}

/// Every metric of one sensor.
pub struct Metrics {
    registry: Registry,
    packets: IntCounter,
    bytes: IntCounter,
    decoded: IntCounter,
    truncated: IntCounter,
    bad_checksums: IntCounter,
    skipped: IntCounterVec,
    unsupported_link_types: IntCounterVec,
    flow_events: IntCounterVec,
    flows_created: IntCounter,
    flows_expired: IntCounter,
    flows_evicted: IntCounter,
    flows_bypassed: IntCounter,
    flows_tracked: IntGauge,
    fragments_in_flight: IntGauge,
    reassembly_bytes: IntGauge,
    reassembly_budget: IntGauge,
    names_extracted: IntCounterVec,
    names_matched: IntCounterVec,
    detections: IntCounterVec,
    correlated: IntCounter,
    update_payloads: IntCounter,
    hosts: IntGaugeVec,
    install_info: IntGaugeVec,
    install_evicted: IntCounter,
    dropped: IntCounterVec,
    events_written: IntCounter,
    events_suppressed: IntCounterVec,
    /// Suppressed event lines already counted, per reason slot.
    seen_suppressed: Vec<u64>,
    capture_received: IntCounterVec,
    capture_dropped: IntCounterVec,
    capture_if_dropped: IntCounterVec,
    interface_up: IntGaugeVec,
    interface_reopens: IntCounterVec,
    rules_info: IntGaugeVec,
    rules_count: IntGauge,
    rules_load_time: Gauge,
    rules_reload_success: IntGauge,
    rules_reload_failures: IntCounterVec,
    /// What was last read from the inventory and the event writer, to turn their cumulative
    /// counts into deltas (detections by rule id).
    seen_per_rule: BTreeMap<String, u64>,
    seen_inventory: InventoryCounters,
    seen_evidence_dropped: u64,
    seen_events: u64,
    seen_event_error: bool,
    /// Hosts currently exported in `ksensor_install_info`, with their labels.
    installs: HashMap<IpAddr, InstallLabels>,
    /// The sha256 label currently set on `ksensor_rules_info`.
    rules_sha: Option<String>,
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let c = IntCounter::new(name, help)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

/// `vec{labels} += n`; label counts are fixed at construction, so a mismatch cannot happen,
/// and would only lose the increment.
fn add(vec: &IntCounterVec, labels: &[&str], n: u64) {
    if n > 0 {
        if let Ok(c) = vec.get_metric_with_label_values(labels) {
            c.inc_by(n);
        }
    }
}

fn set(vec: &IntGaugeVec, labels: &[&str], v: i64) {
    if let Ok(g) = vec.get_metric_with_label_values(labels) {
        g.set(v);
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn add_reasons<R: Reason>(vec: &IntCounterVec, stage: &str, counts: &ReasonCounts<R>) {
    for (reason, n) in counts.iter() {
        add(vec, &[stage, reason], n);
    }
}

/// Makes every series of a labelled family exist at zero, so `rate()` and alerts see them
/// before the first event.
fn touch_reasons<R: Reason>(vec: &IntCounterVec, stage: &str) {
    for r in R::ALL {
        let _ = vec.get_metric_with_label_values(&[stage, r.label()]);
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Metrics {
    /// Builds the registry; `sensor` becomes a constant `sensor` label on every series.
    pub fn new(sensor: Option<&str>) -> Result<Metrics, MetricsError> {
        let labels = sensor.map(|s| HashMap::from([("sensor".to_string(), s.to_string())]));
        let r = Registry::new_custom(None, labels)?;
        let build_info = gauge_vec(
            &r,
            "ksensor_build_info",
            "ksensor build: version label, value 1.",
            &["version"],
        )?;
        set(&build_info, &[env!("CARGO_PKG_VERSION")], 1);
        let start = Gauge::new(
            "ksensor_start_time_seconds",
            "Unix time the sensor started, in seconds.",
        )?;
        start.set(unix_now());
        r.register(Box::new(start))?;
        let rules_load_time = Gauge::new(
            "ksensor_rules_load_time_seconds",
            "Unix time the running rule set was loaded, in seconds.",
        )?;
        r.register(Box::new(rules_load_time.clone()))?;
        let m = Metrics {
            packets: counter(
                &r,
                "ksensor_packets_total",
                "Packets handed to the workers.",
            )?,
            bytes: counter(
                &r,
                "ksensor_bytes_total",
                "Bytes of the packets handed to the workers (length on the wire).",
            )?,
            decoded: counter(
                &r,
                "ksensor_packets_decoded_total",
                "Packets decoded down to a transport header or an IP fragment.",
            )?,
            truncated: counter(
                &r,
                "ksensor_packets_truncated_total",
                "Packets cut short by the capture snap length.",
            )?,
            bad_checksums: counter(
                &r,
                "ksensor_bad_checksums_total",
                "DNS messages and TCP segments that gave evidence and whose TCP/UDP checksum is wrong (used anyway; offloading produces them).",
            )?,
            skipped: counter_vec(
                &r,
                "ksensor_skipped_total",
                "Packets, streams or datagrams a stage stopped looking at, by stage and reason.",
                &["stage", "reason"],
            )?,
            unsupported_link_types: counter_vec(
                &r,
                "ksensor_unsupported_link_type_packets_total",
                "Packets of a link type the decoder does not know, by LINKTYPE number (at most 8 numbers; the rest as \"other\").",
                &["linktype"],
            )?,
            flow_events: counter_vec(
                &r,
                "ksensor_flow_events_total",
                "Reassembly and defragmentation events that drop nothing, by stage and event.",
                &["stage", "event"],
            )?,
            flows_created: counter(&r, "ksensor_flows_created_total", "Flows created.")?,
            flows_expired: counter(
                &r,
                "ksensor_flows_expired_total",
                "Flows removed after their idle timeout.",
            )?,
            flows_evicted: counter(
                &r,
                "ksensor_flows_evicted_total",
                "Flows evicted early to make room in a full flow table.",
            )?,
            flows_bypassed: counter(
                &r,
                "ksensor_flows_bypassed_total",
                "Flows that yielded what they could and are no longer parsed.",
            )?,
            flows_tracked: gauge(&r, "ksensor_flows_tracked", "Flows in the flow tables now.")?,
            fragments_in_flight: gauge(
                &r,
                "ksensor_ip_fragments_in_flight",
                "IP datagrams waiting for more fragments now.",
            )?,
            reassembly_bytes: gauge(
                &r,
                "ksensor_reassembly_bytes",
                "Bytes the TCP stream buffers and QUIC Initial buffers of all workers hold now (their capacity).",
            )?,
            reassembly_budget: gauge(
                &r,
                "ksensor_reassembly_budget_bytes",
                "Most bytes the TCP stream buffers may hold together (--reassembly-memory).",
            )?,
            names_extracted: counter_vec(
                &r,
                "ksensor_names_extracted_total",
                "Host names extracted from traffic, by kind (dns, tls, quic, http).",
                &["kind"],
            )?,
            names_matched: counter_vec(
                &r,
                "ksensor_names_matched_total",
                "Extracted host names that matched a rule, by kind.",
                &["kind"],
            )?,
            detections: counter_vec(
                &r,
                "ksensor_detections_total",
                "Names that matched a Kaspersky rule, by rule id and category.",
                &["rule", "category"],
            )?,
            correlated: counter(
                &r,
                "ksensor_correlated_connections_total",
                "Connections without a name attributed through an earlier DNS answer.",
            )?,
            update_payloads: counter(
                &r,
                "ksensor_update_payloads_total",
                "HTTP responses that carried a Kaspersky update file.",
            )?,
            hosts: gauge_vec(
                &r,
                "ksensor_hosts",
                "Hosts with Kaspersky evidence or a Kaspersky role, by verdict, certainty and product (the last two empty for non-installs).",
                &["verdict", "certainty", "product"],
            )?,
            install_info: gauge_vec(
                &r,
                "ksensor_install_info",
                "One series per host running Kaspersky, with verdict, certainty and product (capped, least recently seen evicted).",
                &["host", "verdict", "certainty", "product"],
            )?,
            install_evicted: counter(
                &r,
                "ksensor_install_series_evicted_total",
                "Hosts dropped from ksensor_install_info by its series cap.",
            )?,
            dropped: counter_vec(
                &r,
                "ksensor_dropped_total",
                "Things ksensor itself dropped because a cap was hit or an output failed.",
                &["reason"],
            )?,
            events_written: counter(&r, "ksensor_events_written_total", "Events written.")?,
            events_suppressed: counter_vec(
                &r,
                "ksensor_events_suppressed_total",
                "Event lines not written because of the rate limits, by reason (per_source, global); the detections still count.",
                &["reason"],
            )?,
            seen_suppressed: Vec::new(),
            capture_received: counter_vec(
                &r,
                "ksensor_capture_received_packets_total",
                "Packets the capture handles received (libpcap ps_recv), by interface.",
                &["interface"],
            )?,
            capture_dropped: counter_vec(
                &r,
                "ksensor_capture_dropped_packets_total",
                "Packets dropped because the capture buffer was full (libpcap ps_drop).",
                &["interface"],
            )?,
            capture_if_dropped: counter_vec(
                &r,
                "ksensor_capture_interface_dropped_packets_total",
                "Packets dropped by the interface or its driver (libpcap ps_ifdrop).",
                &["interface"],
            )?,
            interface_up: gauge_vec(
                &r,
                "ksensor_interface_up",
                "1 while the capture on an interface runs, 0 while it is being retried.",
                &["interface"],
            )?,
            interface_reopens: counter_vec(
                &r,
                "ksensor_interface_reopens_total",
                "Times a capture handle was reopened after its interface failed.",
                &["interface"],
            )?,
            rules_info: gauge_vec(
                &r,
                "ksensor_rules_info",
                "The running rule set: sha256 label, value 1.",
                &["sha256"],
            )?,
            rules_count: gauge(&r, "ksensor_rules", "Rules in the running rule set.")?,
            rules_load_time,
            rules_reload_success: gauge(
                &r,
                "ksensor_rules_last_reload_success",
                "1 if the last rule load or reload succeeded, 0 if it failed.",
            )?,
            rules_reload_failures: counter_vec(
                &r,
                "ksensor_rules_reload_failures_total",
                "Rule reloads that failed (the old rules kept running), by reason.",
                &["reason"],
            )?,
            registry: r,
            seen_per_rule: BTreeMap::new(),
            seen_inventory: InventoryCounters::default(),
            seen_evidence_dropped: 0,
            seen_events: 0,
            seen_event_error: false,
            installs: HashMap::new(),
            rules_sha: None,
        };
        touch_reasons::<crate::decode::DecodeSkip>(&m.skipped, "decode");
        // Alerts watch reassembly refusals (`budget_exhausted` above all) from the first scrape.
        touch_reasons::<crate::flow::reassembly::ReasmSkip>(&m.skipped, "reassembly");
        for kind in NameKind::ALL {
            let _ = m
                .names_extracted
                .get_metric_with_label_values(&[kind.label()]);
            let _ = m
                .names_matched
                .get_metric_with_label_values(&[kind.label()]);
        }
        for labels in host_label_sets() {
            set(&m.hosts, &labels.as_array(), 0);
        }
        for r in DropReason::ALL {
            let _ = m.dropped.get_metric_with_label_values(&[r.label()]);
        }
        for r in RuleErrorKind::ALL {
            let _ = m
                .rules_reload_failures
                .get_metric_with_label_values(&[r.label()]);
        }
        Ok(m)
    }

    /// Adds worker counter deltas (the pipeline hands them out while it runs and when it ends).
    pub fn add_worker_counters(&self, c: &WorkerCounters) {
        self.packets.inc_by(c.packets.packets);
        self.bytes.inc_by(c.packets.bytes);
        self.decoded.inc_by(c.packets.decoded);
        self.truncated.inc_by(c.packets.truncated);
        add_reasons(&self.skipped, "decode", &c.packets.decode_skips);
        let links = &c.packets.unsupported_link_types;
        for (link, n) in links.iter() {
            add(&self.unsupported_link_types, &[&link.to_string()], n);
        }
        if links.other > 0 {
            add(&self.unsupported_link_types, &["other"], links.other);
        }
        let f = &c.flow;
        add_reasons(&self.skipped, "tcp", &f.tcp);
        add_reasons(&self.skipped, "dns", &f.dns);
        add_reasons(&self.skipped, "quic", &f.quic);
        add_reasons(&self.skipped, "defrag", &f.defrag);
        add_reasons(&self.skipped, "reassembly", &f.reasm);
        add_reasons(&self.flow_events, "defrag", &f.defrag_events);
        add_reasons(&self.flow_events, "reassembly", &f.reasm_events);
        add(
            &self.dropped,
            &[DropReason::FlowTableFull.label()],
            f.table.refused_table_full,
        );
        self.flows_created.inc_by(f.table.created);
        self.flows_expired.inc_by(f.table.expired);
        self.flows_evicted.inc_by(f.table.evicted_under_pressure);
        self.flows_bypassed.inc_by(f.flows_bypassed);
        self.bad_checksums.inc_by(f.bad_checksums);
        for (i, kind) in NameKind::ALL.iter().enumerate() {
            let extracted = c.names.extracted.get(i).copied().unwrap_or(0);
            let matched = c.names.matched.get(i).copied().unwrap_or(0);
            add(&self.names_extracted, &[kind.label()], extracted);
            add(&self.names_matched, &[kind.label()], matched);
        }
    }

    pub fn set_flow_gauges(&self, g: FlowGauges) {
        self.flows_tracked.set(clamp_i64(g.flows as u64));
        self.fragments_in_flight
            .set(clamp_i64(g.fragments_in_flight as u64));
        self.reassembly_bytes
            .set(clamp_i64(g.reassembly_bytes as u64));
    }

    /// The reassembly budget's total (set once at start).
    pub fn set_reassembly_budget(&self, total: usize) {
        self.reassembly_budget.set(clamp_i64(total as u64));
    }

    /// Reads the inventory's cumulative counts and its hosts (detections per rule, cap drops,
    /// hosts per verdict, the per-host install series) and the event writer's: `events_written`
    /// so far, and whether writing has failed. Walks every host (at most
    /// `inventory::MAX_HOSTS`): call it on a tick of a second or so, not per packet. The same
    /// as [`InventorySnapshot::take`] then [`Metrics::apply_snapshot`].
    pub fn observe_inventory(
        &mut self,
        inv: &Inventory,
        events_written: u64,
        event_failed: bool,
        assets: &Assets,
    ) {
        let snapshot = InventorySnapshot::take(inv, events_written, event_failed, assets);
        self.apply_snapshot(snapshot);
    }

    /// Sets every inventory-derived series from a snapshot (cheap: no host is walked).
    pub fn apply_snapshot(&mut self, snap: InventorySnapshot) {
        for (id, category, n) in &snap.per_rule {
            let before = self.seen_per_rule.get(id).copied().unwrap_or(0);
            add(
                &self.detections,
                &[id.as_str(), category],
                n.saturating_sub(before),
            );
        }
        self.seen_per_rule = snap
            .per_rule
            .iter()
            .map(|(id, _, n)| (id.clone(), *n))
            .collect();
        let c = snap.counters;
        let s = self.seen_inventory;
        add(
            &self.dropped,
            &[DropReason::InventoryHostEvicted.label()],
            c.hosts_evicted.saturating_sub(s.hosts_evicted),
        );
        add(
            &self.dropped,
            &[DropReason::InventoryEvidenceFull.label()],
            c.evidence_refused.saturating_sub(s.evidence_refused),
        );
        add(
            &self.dropped,
            &[DropReason::InventoryNamesFull.label()],
            c.names_refused.saturating_sub(s.names_refused),
        );
        add(
            &self.dropped,
            &[DropReason::InventoryFactsFull.label()],
            c.facts_refused.saturating_sub(s.facts_refused),
        );
        add(
            &self.dropped,
            &[DropReason::DnsAnswerAddressEvicted.label()],
            c.answered_addrs_evicted
                .saturating_sub(s.answered_addrs_evicted),
        );
        self.correlated.inc_by(
            c.correlated_connections
                .saturating_sub(s.correlated_connections),
        );
        self.update_payloads
            .inc_by(c.update_payloads.saturating_sub(s.update_payloads));
        self.seen_inventory = c;
        self.events_written
            .inc_by(snap.events_written.saturating_sub(self.seen_events));
        self.seen_events = snap.events_written;
        if snap.event_failed && !self.seen_event_error {
            self.seen_event_error = true;
            add(&self.dropped, &[DropReason::EventWriteFailed.label()], 1);
        }
        for labels in host_label_sets() {
            let n = snap.per_verdict.get(&labels).copied().unwrap_or(0);
            set(&self.hosts, &labels.as_array(), n);
        }
        // Hosts count refusals by both evidence caps; the inventory-wide ones have their label.
        let evidence_dropped = snap.evidence_dropped.saturating_sub(c.evidence_refused);
        add(
            &self.dropped,
            &[DropReason::EvidencePerHostFull.label()],
            evidence_dropped.saturating_sub(self.seen_evidence_dropped),
        );
        self.seen_evidence_dropped = evidence_dropped;
        self.update_install_series(snap.installs, &snap.all_installs);
    }

    /// Reads the event rate limiter's cumulative counts of suppressed lines (the output
    /// stage's `limit::Suppressed` reasons, held by the collector) into
    /// `ksensor_events_suppressed_total`. Every reason's series exists from the first call, so
    /// call it once at start (all zero) for alerts to see them before the first suppression.
    pub fn observe_events_suppressed<R: Reason>(&mut self, counts: &ReasonCounts<R>) {
        self.seen_suppressed.resize(R::ALL.len(), 0);
        for (r, seen) in R::ALL.iter().zip(self.seen_suppressed.iter_mut()) {
            let now = counts.get(*r);
            if let Ok(c) = self
                .events_suppressed
                .get_metric_with_label_values(&[r.label()])
            {
                c.inc_by(now.saturating_sub(*seen));
            }
            *seen = now;
        }
    }

    /// Sets `ksensor_install_info` to the installs the snapshot kept (the
    /// [`MAX_INSTALL_SERIES`] most recently seen), counting a host that lost its series while
    /// still an install as evicted.
    fn update_install_series(
        &mut self,
        kept: HashMap<IpAddr, InstallLabels>,
        all: &HashSet<IpAddr>,
    ) {
        for (ip, old) in &self.installs {
            if kept.get(ip) == Some(old) {
                continue;
            }
            let host = ip.to_string();
            let [v, c, p] = old.as_array();
            let _ = self
                .install_info
                .remove_label_values(&[host.as_str(), v, c, p]);
            if !kept.contains_key(ip) && all.contains(ip) {
                self.install_evicted.inc();
            }
        }
        for (ip, labels) in &kept {
            if self.installs.get(ip) != Some(labels) {
                let [v, c, p] = labels.as_array();
                set(&self.install_info, &[ip.to_string().as_str(), v, c, p], 1);
            }
        }
        self.installs = kept;
    }

    /// Records a rule set that was loaded and is now running.
    pub fn rules_loaded(&mut self, rules: &RuleSet, at: SystemTime) {
        if let Some(old) = self.rules_sha.take() {
            let _ = self.rules_info.remove_label_values(&[old.as_str()]);
        }
        set(&self.rules_info, &[rules.sha256()], 1);
        self.rules_sha = Some(rules.sha256().to_string());
        self.rules_count.set(clamp_i64(rules.rules().len() as u64));
        // Every rule's detection series exists from the start, at 0, so that `increase()` and
        // `rate()` count a rule's first detections too (a series that appears already at N
        // shows no increase). Bounded by `rules::MAX_RULES`.
        for rule in rules.rules() {
            let _ = self
                .detections
                .get_metric_with_label_values(&[rule.id.as_str(), rule.category.label()]);
        }
        self.rules_load_time.set(
            at.duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        self.rules_reload_success.set(1);
    }

    /// Records a reload that failed (the old rules keep running).
    pub fn rules_reload_failed(&self, kind: RuleErrorKind) {
        add(&self.rules_reload_failures, &[kind.label()], 1);
        self.rules_reload_success.set(0);
    }

    /// Call right after the inventory switched rule sets: its per-rule counts were remapped,
    /// so they become the new baseline for `ksensor_detections_total`.
    pub fn rebase_detections(&mut self, inv: &Inventory) {
        let rules = inv.rules();
        self.seen_per_rule = inv
            .per_rule
            .iter()
            .filter_map(|(idx, n)| Some((rules.get(*idx)?.id.clone(), *n)))
            .collect();
    }

    pub fn add_capture_stats(&self, interface: &str, d: CaptureStats) {
        add(&self.capture_received, &[interface], d.received);
        add(&self.capture_dropped, &[interface], d.dropped);
        add(&self.capture_if_dropped, &[interface], d.if_dropped);
    }

    /// Declares an interface (its series exist at zero from the start).
    pub fn add_interface(&self, interface: &str) {
        for vec in [
            &self.capture_received,
            &self.capture_dropped,
            &self.capture_if_dropped,
            &self.interface_reopens,
        ] {
            let _ = vec.get_metric_with_label_values(&[interface]);
        }
        set(&self.interface_up, &[interface], 0);
    }

    pub fn set_interface_up(&self, interface: &str, up: bool) {
        set(&self.interface_up, &[interface], i64::from(up));
    }

    pub fn interface_reopened(&self, interface: &str) {
        add(&self.interface_reopens, &[interface], 1);
    }

    /// Every series in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec fails only on an invalid metric family, which `new` rules out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The registry, for series owned elsewhere (the metrics listener registers its own).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// The labels of one host's verdict: verdict, certainty and product (the last two empty for
/// verdicts that are not installs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstallLabels {
    pub verdict: Verdict,
    pub certainty: Option<Certainty>,
    pub product: Option<Product>,
}

impl InstallLabels {
    fn as_array(&self) -> [&'static str; 3] {
        [
            self.verdict.label(),
            self.certainty.map_or("", Certainty::label),
            self.product.map_or("", Product::label),
        ]
    }
}

/// Every label set `ksensor_hosts` can have: 3 × 3 × 3 install sets and one per other verdict
/// (37 series), all kept at zero until a host has them, so alerts see them from the start.
fn host_label_sets() -> Vec<InstallLabels> {
    let mut sets = Vec::new();
    for verdict in Verdict::ALL {
        if verdict.is_install() {
            for certainty in Certainty::ALL {
                for product in Product::ALL {
                    sets.push(InstallLabels {
                        verdict,
                        certainty: Some(certainty),
                        product: Some(product),
                    });
                }
            }
        } else {
            sets.push(InstallLabels {
                verdict,
                certainty: None,
                product: None,
            });
        }
    }
    sets
}

/// What the metrics take from the inventory on a tick, gathered while the pipeline is held and
/// applied later under the metrics lock ([`Metrics::apply_snapshot`]).
#[derive(Clone, Debug, Default)]
pub struct InventorySnapshot {
    /// Detections so far per rule: (rule id, category label, count).
    pub per_rule: Vec<(String, &'static str, u64)>,
    pub counters: InventoryCounters,
    pub evidence_dropped: u64,
    pub per_verdict: HashMap<InstallLabels, i64>,
    /// The [`MAX_INSTALL_SERIES`] most recently seen installs: the `ksensor_install_info`
    /// series to export.
    pub installs: HashMap<IpAddr, InstallLabels>,
    /// Every install (to tell a host evicted from the series from one that stopped being an
    /// install).
    pub all_installs: HashSet<IpAddr>,
    pub events_written: u64,
    pub event_failed: bool,
}

impl InventorySnapshot {
    /// Walks every host of `inv` once and decides its verdict.
    pub fn take(
        inv: &Inventory,
        events_written: u64,
        event_failed: bool,
        assets: &Assets,
    ) -> InventorySnapshot {
        let rules = inv.rules();
        let per_rule = inv
            .per_rule
            .iter()
            .filter_map(|(idx, n)| {
                let rule = rules.get(*idx)?;
                Some((rule.id.clone(), rule.category.label(), *n))
            })
            .collect();
        let mut installs: Vec<(Timestamp, IpAddr, InstallLabels)> = Vec::new();
        let mut snap = InventorySnapshot {
            per_rule,
            counters: inv.counters,
            events_written,
            event_failed,
            ..InventorySnapshot::default()
        };
        inv.for_each_host(|host| {
            snap.evidence_dropped = snap.evidence_dropped.saturating_add(host.evidence_dropped);
            let Some((_, d)) = inv.decision(host, assets) else {
                return;
            };
            let labels = InstallLabels {
                verdict: d.verdict,
                certainty: d.certainty,
                product: d.product,
            };
            *snap.per_verdict.entry(labels).or_insert(0) += 1;
            if d.verdict.is_install() {
                installs.push((host.last_seen, host.ip, labels));
            }
        });
        // Most recent first; ties by address so the choice is stable.
        installs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        snap.all_installs = installs.iter().map(|(_, ip, _)| *ip).collect();
        snap.installs = installs
            .iter()
            .take(MAX_INSTALL_SERIES)
            .map(|(_, ip, v)| (*ip, *v))
            .collect();
        snap
    }
}

/// The content type of [`Metrics::render`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes `text` to `path` atomically: a temporary file in the same directory, synced, then
/// renamed over `path` (node_exporter's textfile collector never reads half a file).
pub fn write_textfile(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::inventory::Inventory;
    use crate::observation::{
        Endpoint, NameSighting, NameSource, ObsOrder, Observation, Observed, PacketContext,
    };
    use crate::proto::HostName;
    use crate::rules::RuleIdx;
    use crate::time::Timestamp;

    use crate::rules::suffix_rules_for_tests as rules;

    /// A detection of rule 0 from client 10.1.x.y at second `t`.
    fn seen(client: u32, t: u64) -> Observed {
        let [_, _, x, y] = client.to_be_bytes();
        Observed {
            order: ObsOrder { packet: t, sub: 0 },
            ctx: PacketContext {
                ts: Timestamp::from_secs_nanos(t, 0),
                input: 0,
                client_mac: None,
                vlan: None,
                outer: None,
                ip_proto: 6,
            },
            what: Observation::Name(NameSighting {
                name: HostName::parse(b"x.a.example").expect("name"),
                source: NameSource::TlsSni,
                client: Endpoint {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 1, x, y)),
                    port: 40_000,
                },
                server: Endpoint {
                    ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    port: 443,
                },
                rule: Some(RuleIdx(0)),
                answers: Vec::new(),
                ttl: None,
                dns: None,
                qtype: None,
                dns_facts: None,
            }),
        }
    }

    /// A tick of the live loop: no events written, no event error.
    fn observe(m: &mut Metrics, inv: &Inventory) {
        m.observe_inventory(inv, 0, false, &Assets::default());
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let m = Metrics::new(None).expect("metrics");
        let text = m.render();
        let mut families = 0;
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            families += 1;
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(name.starts_with("ksensor_"), "{line}");
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
        // Labelled families without any series yet (per interface, rule, host) are not listed.
        assert_eq!(families, 28);
    }

    crate::reason_enum! {
        enum TestSuppressed {
            A => "per_source",
            B => "global",
        }
    }

    #[test]
    fn suppressed_events_count_deltas_and_exist_from_the_first_call() {
        let mut m = Metrics::new(None).expect("metrics");
        m.observe_events_suppressed(&ReasonCounts::<TestSuppressed>::default());
        let text = m.render();
        let series = |r: &str| format!("ksensor_events_suppressed_total{{reason=\"{r}\"}}");
        assert_eq!(value(&text, &series("per_source")), Some(0.0));
        assert_eq!(value(&text, &series("global")), Some(0.0));
        let mut c = ReasonCounts::<TestSuppressed>::default();
        c.add(TestSuppressed::A, 5);
        m.observe_events_suppressed(&c);
        c.add(TestSuppressed::A, 2);
        c.add(TestSuppressed::B, 1);
        m.observe_events_suppressed(&c);
        m.observe_events_suppressed(&c);
        let text = m.render();
        assert_eq!(value(&text, &series("per_source")), Some(7.0));
        assert_eq!(value(&text, &series("global")), Some(1.0));
    }

    #[test]
    fn detections_count_per_rule_and_survive_a_reload() {
        let old = rules(&["a", "b"]);
        let mut inv = Inventory::new(old.clone());
        let mut m = Metrics::new(Some("s")).expect("metrics");
        inv.apply(&seen(1, 10));
        inv.apply(&seen(2, 11));
        observe(&mut m, &inv);
        let series = "ksensor_detections_total{category=\"update\",rule=\"a\",sensor=\"s\"}";
        assert_eq!(value(&m.render(), series), Some(2.0));
        // Reload: "a" moves from index 0 to 1; the counter must not jump or go back.
        observe(&mut m, &inv);
        inv.set_rules(rules(&["b", "a"]));
        m.rebase_detections(&inv);
        observe(&mut m, &inv);
        assert_eq!(value(&m.render(), series), Some(2.0));
        let mut third = seen(3, 12);
        if let Observation::Name(s) = &mut third.what {
            s.rule = Some(RuleIdx(1));
        }
        inv.apply(&third);
        observe(&mut m, &inv);
        assert_eq!(value(&m.render(), series), Some(3.0));
        let text = m.render();
        assert_eq!(
            value(
                &m.render(),
                "ksensor_hosts{certainty=\"likely\",product=\"kaspersky\",verdict=\"unmanaged-install\",sensor=\"s\"}"
            ),
            Some(3.0),
            "{text}"
        );
    }

    #[test]
    fn install_series_are_capped_and_evictions_counted() {
        let rules = rules(&["a"]);
        let mut inv = Inventory::new(rules);
        let mut m = Metrics::new(None).expect("metrics");
        let extra = 5u32;
        let n = u32::try_from(MAX_INSTALL_SERIES).expect("cap fits") + extra;
        for i in 0..n {
            inv.apply(&seen(i, u64::from(i) + 1));
        }
        observe(&mut m, &inv);
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("ksensor_install_info{"))
            .count();
        assert_eq!(series, MAX_INSTALL_SERIES);
        // The oldest hosts (10.1.0.0 … 10.1.0.4) are the ones left out.
        assert!(!text.contains("host=\"10.1.0.0\""));
        assert!(!text.contains("host=\"10.1.0.4\""));
        assert!(text.contains("host=\"10.1.0.5\""));
        assert_eq!(
            value(
                &text,
                "ksensor_hosts{certainty=\"likely\",product=\"kaspersky\",verdict=\"unmanaged-install\"}"
            ),
            Some(f64::from(n))
        );
        // Only hosts that had a series and lost it count as evictions.
        assert_eq!(
            value(&text, "ksensor_install_series_evicted_total"),
            Some(0.0)
        );
        // Host 10.1.0.5 (now the oldest exported) is pushed out by a newer one.
        inv.apply(&seen(n, u64::from(n) + 100));
        observe(&mut m, &inv);
        let text = m.render();
        assert!(!text.contains("host=\"10.1.0.5\""));
        assert_eq!(
            value(&text, "ksensor_install_series_evicted_total"),
            Some(1.0)
        );
    }

    #[test]
    fn rule_info_keeps_one_sha_and_reload_failure_sets_zero() {
        let mut m = Metrics::new(None).expect("metrics");
        let (a, b) = (rules(&["a"]), rules(&["a", "b"]));
        m.rules_loaded(&a, UNIX_EPOCH + std::time::Duration::from_secs(7));
        m.rules_loaded(&b, UNIX_EPOCH + std::time::Duration::from_secs(9));
        let text = m.render();
        assert_eq!(text.matches("ksensor_rules_info{").count(), 1);
        assert!(text.contains(&format!(
            "ksensor_rules_info{{sha256=\"{}\"}} 1",
            b.sha256()
        )));
        assert_eq!(value(&text, "ksensor_rules"), Some(2.0));
        assert_eq!(value(&text, "ksensor_rules_load_time_seconds"), Some(9.0));
        m.rules_reload_failed(RuleErrorKind::Syntax);
        let text = m.render();
        assert_eq!(value(&text, "ksensor_rules_last_reload_success"), Some(0.0));
        assert_eq!(
            value(
                &text,
                "ksensor_rules_reload_failures_total{reason=\"syntax\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn capture_stats_and_interface_state_per_interface() {
        let m = Metrics::new(None).expect("metrics");
        m.add_interface("eth1");
        m.set_interface_up("eth1", true);
        m.add_capture_stats(
            "eth1",
            CaptureStats {
                received: 10,
                dropped: 2,
                if_dropped: 1,
            },
        );
        m.add_capture_stats(
            "eth1",
            CaptureStats {
                received: 5,
                dropped: 0,
                if_dropped: 0,
            },
        );
        let text = m.render();
        let get = |s: &str| value(&text, s);
        assert_eq!(
            get("ksensor_capture_received_packets_total{interface=\"eth1\"}"),
            Some(15.0)
        );
        assert_eq!(
            get("ksensor_capture_dropped_packets_total{interface=\"eth1\"}"),
            Some(2.0)
        );
        assert_eq!(
            get("ksensor_capture_interface_dropped_packets_total{interface=\"eth1\"}"),
            Some(1.0)
        );
        assert_eq!(get("ksensor_interface_up{interface=\"eth1\"}"), Some(1.0));
    }

    #[test]
    fn textfile_is_written_atomically_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.prom");
        write_textfile(&path, "a 1\n").expect("write");
        write_textfile(&path, "a 2\n").expect("rewrite");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        assert!(write_textfile(&dir.path().join("no/such/dir/k.prom"), "x").is_err());
    }
}
