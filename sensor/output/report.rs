//! The audit report: JSON for machines, Markdown for people, CSV of the host table.
//!
//! Contract: [`Report::build`] gathers everything from a finished run into plain data; the
//! renderers turn it into text. Nothing in a report depends on the wall clock, the machine or
//! the number of workers, so the same inputs and rules give byte-identical reports.
//!
//! Memory: a report holds one small row per reported host (address, verdict, certainty,
//! product, asset), not a copy of the host; renderers read each host from the inventory in
//! turn (and decide it again: [`crate::inventory::verdict::decide`] is pure), and the JSON
//! report is streamed ([`JsonReport`] builds one host's object at a time), so writing a report
//! costs about one host's worth of memory on top of the inventory, whatever the number of
//! hosts.
//!
//! Each host carries what its verdict rests on, so that the verdict can be recomputed from the
//! JSON alone: per evidence entry its kind, rule, family, product class, confidence, whether it
//! can support an install and whether it was seen directly, count, first/last and peer; per
//! host its learned facts with their peers, its learned roles, whether it is internal, and its
//! managers with their roles; and the decision: verdict, certainty, product, `managed_by` and
//! one plain `reason` sentence (also in the Markdown and CSV).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::capture::digest::{DigestAlgorithm, InputDigests};
use crate::flow::WorkerCounters;
use crate::inventory::assets::Assets;
use crate::inventory::verdict::{Decision, HostSummary, Manager};
use crate::inventory::{Certainty, Evidence, Fact, Host, Inventory, Origin, Product, Verdict};
use crate::proto::NameKind;
use crate::reason::{Reason, ReasonCounts};
use crate::rules::RuleSet;
use crate::time::Timestamp;

use super::describe::{
    describe_fact, evidence_detail, evidence_group, evidence_origin, fact_label, reason,
};
use super::mac_string;
use super::model::{HostDoc, HostDocs, ReportHead, REPORT_SCHEMA};

/// What the report says about one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputSummary {
    pub name: String,
    /// SHA-256 of the whole input (`sha256sum`), when one was asked for (`--input-hash sha256`)
    /// or the input is no longer than one MiB (then it is the edges' hash).
    pub sha256: Option<String>,
    /// Digest of the whole input, when one was asked for (`--input-hash blake3`): `b3sum`.
    pub blake3: Option<String>,
    /// Bytes hashed at each end of the input: `min(size, 1 MiB)` (`capture::digest`).
    pub edge_bytes: u64,
    /// SHA-256 of the first `edge_bytes` bytes (`head -c N FILE | sha256sum`).
    pub head_sha256: Option<String>,
    /// SHA-256 of the last `edge_bytes` bytes (`tail -c N FILE | sha256sum`).
    pub tail_sha256: Option<String>,
    pub packets: u64,
    pub captured_bytes: u64,
    pub file_bytes: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
    /// Things skipped or noticed while reading (`label → count`, zero counts left out).
    pub notes: BTreeMap<String, u64>,
}

impl InputSummary {
    /// Records an input's hashes (hex) as the report shows them.
    pub fn set_digests(&mut self, digests: &InputDigests) {
        let hex = |d: &[u8; 32]| Some(crate::hex::lower_hex(d));
        if let Some(full) = &digests.full {
            match full.algorithm {
                DigestAlgorithm::Sha256 => self.sha256 = hex(&full.value),
                DigestAlgorithm::Blake3 => self.blake3 = hex(&full.value),
            }
        }
        if let Some(edges) = &digests.edges {
            // An input no longer than an edge was hashed whole for free.
            if edges.whole && self.sha256.is_none() {
                self.sha256 = hex(&edges.head);
            }
            self.edge_bytes = edges.span;
            self.head_sha256 = hex(&edges.head);
            self.tail_sha256 = hex(&edges.tail);
        }
    }
}

/// One host row: the host itself stays in the inventory ([`Inventory::host`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRow {
    pub ip: IpAddr,
    pub verdict: Verdict,
    pub certainty: Option<Certainty>,
    pub product: Option<Product>,
    pub asset_label: Option<String>,
    pub asset_role: Option<&'static str>,
}

/// Everything a report shows.
pub struct Report<'a> {
    pub version: &'static str,
    pub inputs: &'a [InputSummary],
    pub rules: &'a RuleSet,
    pub counters: &'a WorkerCounters,
    pub inventory: &'a Inventory,
    pub assets: &'a Assets,
    pub caps: &'a [(&'static str, u64)],
    pub rows: Vec<HostRow>,
    /// What happened to the event lines, when events were written ([`Report::with_events`]).
    pub events: Option<EventsSummary>,
}

/// The event lines of a run: written, suppressed by the rate limits (`output::limit`), and the
/// limits in force. Only in reports of runs that wrote events.
#[derive(Clone, Debug)]
pub struct EventsSummary {
    pub written: u64,
    pub limits: crate::output::limit::EventLimits,
    pub counts: crate::output::limit::LimiterCounts,
}

fn ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.rfc3339_micros().to_string())
    })
}

fn reasons<R: Reason>(counts: &ReasonCounts<R>) -> Value {
    let map: serde_json::Map<String, Value> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(l, n)| (l.to_string(), json!(n)))
        .collect();
    Value::Object(map)
}

impl<'a> Report<'a> {
    pub fn build(
        inputs: &'a [InputSummary],
        rules: &'a RuleSet,
        counters: &'a WorkerCounters,
        inventory: &'a Inventory,
        assets: &'a Assets,
        caps: &'a [(&'static str, u64)],
    ) -> Report<'a> {
        let mut rows: Vec<HostRow> = Vec::new();
        inventory.for_each_host(|host| {
            let Some((_, decision)) = inventory.decision(host, assets) else {
                return;
            };
            let asset = assets.find(host.ip, host.macs().iter());
            rows.push(HostRow {
                ip: host.ip,
                verdict: decision.verdict,
                certainty: decision.certainty,
                product: decision.product,
                asset_label: asset.map(|a| a.label.clone()),
                asset_role: asset.map(|a| a.role.label()),
            });
        });
        rows.sort_by_key(|r| (r.verdict, r.ip));
        Report {
            version: env!("CARGO_PKG_VERSION"),
            inputs,
            rules,
            counters,
            inventory,
            assets,
            caps,
            rows,
            events: None,
        }
    }

    /// Adds what happened to the event lines (a run that wrote events).
    pub fn with_events(mut self, events: EventsSummary) -> Self {
        self.events = Some(events);
        self
    }

    pub fn time_range(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let first = self.inputs.iter().filter_map(|i| i.first_ts).min();
        let last = self.inputs.iter().filter_map(|i| i.last_ts).max();
        (first, last)
    }

    /// A reported host with its summary and decision (`None` if it is gone or no longer
    /// reported).
    fn decided(&self, row: &HostRow) -> Option<(&'a Host, HostSummary, Decision)> {
        let host = self.inventory.host(row.ip)?;
        let (summary, decision) = self.inventory.decision(host, self.assets)?;
        Some((host, summary, decision))
    }

    /// The JSON object of one host (`None` if it is not in the inventory). Its evidence
    /// entries are typed ([`EvidenceJson`]): a host can hold hundreds, and a `json!` map per
    /// entry cost an allocation per key.
    fn host_json(&self, row: &HostRow) -> Option<HostJson<'_>> {
        let (h, summary, decision) = self.decided(row)?;
        let names = self.inventory.names();
        let mut rule_counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut categories: Vec<&str> = Vec::new();
        // `summary.evidence` is in the host's key order; reports list host-name order.
        let classified: std::collections::HashMap<_, _> = h
            .evidence()
            .iter()
            .zip(&summary.evidence)
            .map(|(e, c)| (e.key, c))
            .collect();
        let evidence: Vec<EvidenceJson<'_>> = self
            .evidence_in_order(h)
            .into_iter()
            .map(|Evidence { key, stat }| {
                let rule = key.rule.map(|r| self.rules.rule(r));
                if let Some(rule) = rule {
                    *rule_counts.entry(rule.id.as_str()).or_insert(0) += stat.count;
                    let cat = rule.category.label();
                    if !categories.contains(&cat) {
                        categories.push(cat);
                    }
                }
                let class = classified.get(key);
                EvidenceJson {
                    category: rule.map(|r| r.category.label()),
                    confidence: stat.confidence.label(),
                    count: stat.count,
                    detail: evidence_detail(key.kind),
                    direct: class.is_some_and(|c| c.direct),
                    family: class.map(|c| c.family.label()),
                    first: stat.first.rfc3339_micros().to_string(),
                    input: self
                        .inputs
                        .get(usize::from(key.input))
                        .map(|i| i.name.as_str()),
                    install: class.is_some_and(|c| c.install),
                    kind: evidence_group(key.kind),
                    last: stat.last.rfc3339_micros().to_string(),
                    name: key.name.and_then(|n| self.inventory.name(n)),
                    origin: evidence_origin(key.kind),
                    peer: key.peer.map(|p| p.to_string()),
                    product: class.map(|c| c.product.label()),
                    rule: rule.map(|r| r.id.as_str()),
                    source: key.kind.label(),
                }
            })
            .collect();
        categories.sort_unstable();
        let roles = role_labels(&summary.roles);
        Some(HostJson {
            asset: row
                .asset_label
                .as_ref()
                .map(|l| json!({"label": l, "role": row.asset_role})),
            categories,
            certainty: decision.certainty.map(Certainty::label),
            dns_servers: h.dns_servers().iter().map(|s| s.to_string()).collect(),
            evidence,
            evidence_dropped_by_cap: h.evidence_dropped,
            first_seen: ts(Some(h.first_seen)),
            internal: summary.internal,
            ip: h.ip.to_string(),
            last_seen: ts(Some(h.last_seen)),
            learned: h.facts().iter().map(|f| fact_json(f, names)).collect(),
            macs: h.macs().iter().map(mac_string).collect(),
            managed_by: decision.managed_by.iter().map(manager_json).collect(),
            product: decision.product.map(Product::label),
            reason: reason(&summary, &decision, h.facts()),
            roles,
            rules: rule_counts,
            verdict: decision.verdict.label(),
            vlans: json!(h.vlans()),
        })
    }

    /// The JSON report, streamed: serialising it builds one host's object at a time.
    pub fn to_json(&self) -> JsonReport<'_, 'a> {
        JsonReport {
            report: self,
            head: self.head(),
        }
    }

    /// Everything in the JSON report but the hosts (`"hosts"` is a placeholder).
    fn json_head(&self) -> serde_json::Map<String, Value> {
        let c = self.counters;
        let (first, last) = self.time_range();
        let mut per_rule: BTreeMap<&str, u64> = BTreeMap::new();
        for (idx, n) in &self.inventory.per_rule {
            per_rule.insert(self.rules.rule(*idx).id.as_str(), *n);
        }
        let kinds = |arr: &[u64; 4]| -> Value {
            let m: serde_json::Map<String, Value> = NameKind::ALL
                .iter()
                .zip(arr.iter())
                .map(|(k, n)| (k.label().to_string(), json!(n)))
                .collect();
            Value::Object(m)
        };
        let mut verdicts: BTreeMap<&str, u64> = BTreeMap::new();
        for row in &self.rows {
            *verdicts.entry(row.verdict.label()).or_insert(0) += 1;
        }
        let inv = &self.inventory.counters;
        let head = json!({
            "sensor": { "name": "ksensor", "report_schema": REPORT_SCHEMA, "version": self.version },
            "inputs": self.inputs.iter().map(|i| json!({
                "name": i.name,
                "sha256": i.sha256,
                "blake3": i.blake3,
                "edge_bytes": i.edge_bytes,
                "head_sha256": i.head_sha256,
                "tail_sha256": i.tail_sha256,
                "packets": i.packets,
                "captured_bytes": i.captured_bytes,
                "file_bytes": i.file_bytes,
                "first_ts": ts(i.first_ts),
                "last_ts": ts(i.last_ts),
                "error": i.error,
                "notes": i.notes,
            })).collect::<Vec<_>>(),
            "rules": {
                "sha256": self.rules.sha256(),
                "rule_count": self.rules.rules().len(),
                "files": self.rules.files().iter().map(|f| json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
            },
            "time_range": { "first": ts(first), "last": ts(last) },
            "counters": {
                "packets": c.packets.packets,
                "bytes": c.packets.bytes,
                "decoded": c.packets.decoded,
                "truncated_by_snaplen": c.packets.truncated,
                "skipped": {
                    "decode": reasons(&c.packets.decode_skips),
                    "dns": reasons(&c.flow.dns),
                    "tcp": reasons(&c.flow.tcp),
                    "quic": reasons(&c.flow.quic),
                    "ip_fragments": reasons(&c.flow.defrag),
                    "tcp_reassembly": reasons(&c.flow.reasm),
                },
                "stream_events": {
                    "tcp_reassembly": reasons(&c.flow.reasm_events),
                    "ip_fragments": reasons(&c.flow.defrag_events),
                },
                "bad_checksums": c.flow.bad_checksums,
                "reassembled_datagrams": c.flow.reassembled_datagrams,
                "parsed_packets": c.flow.parsed_packets,
                "dns_queries_evicted": c.flow.dns_queries_evicted,
                "bypassed_packets": c.flow.bypassed_packets,
                "flows": {
                    "created": c.flow.table.created,
                    "expired": c.flow.table.expired,
                    "evicted_under_pressure": c.flow.table.evicted_under_pressure,
                    "refused_table_full": c.flow.table.refused_table_full,
                    "bypassed": c.flow.flows_bypassed,
                    "closed": c.flow.flows_closed,
                },
                "names_extracted": kinds(&c.names.extracted),
                "names_matched": kinds(&c.names.matched),
                "detections": inv.detections,
                "detections_per_rule": per_rule,
                "correlated_connections": inv.correlated_connections,
                "update_payloads": inv.update_payloads,
                "hosts_evicted_by_cap": inv.hosts_evicted,
                "hosts_evicted_with_high_evidence": inv.hosts_evicted_high,
                "group_addresses_ignored": inv.group_addresses_ignored,
                "broadcast_addresses_refused_by_cap": inv.broadcast_addrs_refused,
                "kaspersky_address_connections": inv.kaspersky_address_connections,
                "diff_without_update_path": inv.diff_without_update_path,
                "answered_addresses_evicted": inv.answered_addrs_evicted,
                "names_refused_by_cap": inv.names_refused,
                "evidence_refused_by_cap": inv.evidence_refused,
                "facts_refused_by_cap": inv.facts_refused,
            },
            "caps": self.caps.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "verdicts": verdicts,
            "verdict_context": {
                "inventory_names_managers": self.assets.names_managers(),
                "peers": self.peers(),
            },
            "hosts": Value::Null,
        });
        let mut map = match head {
            Value::Object(mut map) => {
                if let Some(e) = &self.events {
                    map.insert(
                        "events".into(),
                        json!({
                            "written": e.written,
                            "suppressed": reasons(&e.counts.suppressed),
                            "suppressed_total": e.counts.suppressed.total(),
                            "limits": {
                                "per_source_per_sec": e.limits.per_source,
                                "global_per_sec": e.limits.global,
                                "burst_secs": crate::output::limit::BURST_SECONDS,
                            },
                            "limiter_sources_evicted": e.counts.sources_evicted,
                        }),
                    );
                }
                map
            }
            _ => serde_json::Map::new(),
        };
        // Link types the decoder does not know, by number (only when there are some).
        let links = &c.packets.unsupported_link_types;
        if !links.is_empty() {
            let mut by_number: serde_json::Map<String, Value> = links
                .iter()
                .map(|(l, n)| (l.to_string(), json!(n)))
                .collect();
            if links.other > 0 {
                by_number.insert("other".into(), json!(links.other));
            }
            if let Some(Value::Object(counters)) = map.get_mut("counters") {
                counters.insert("unsupported_link_types".into(), Value::Object(by_number));
            }
        }
        map
    }

    /// The CSV host table ([`super::render::csv`] over this report's model).
    pub fn to_csv(&self) -> String {
        super::render::csv(self)
    }

    /// The Markdown report for people ([`super::render::markdown`] over this report's model).
    pub fn to_markdown(&self) -> String {
        super::render::markdown(&self.head(), self)
    }

    /// The HTML audit report ([`super::html::render`] over this report's model).
    pub fn to_html(&self) -> String {
        super::html::render(&self.head(), self)
    }

    /// Everything but the hosts, as the model the renderers read: the same values the JSON
    /// report writes (it is read back from them).
    pub fn head(&self) -> ReportHead {
        serde_json::from_value(Value::Object(self.json_head())).unwrap_or_else(|e| {
            // The head is built above from the model's own fields; a mismatch is a bug in
            // this file, caught by the golden round-trip test, never by input bytes.
            unreachable!("report head does not fit the model: {e}")
        })
    }

    /// A host's evidence in report order: by kind, rule id, name (shortest first, then bytes,
    /// as host names compare), peer and input. Rule ids rather than rule indices, so that a
    /// report merged from saved JSON (which has the ids only) lists entries in the same order.
    fn evidence_in_order<'h>(&self, host: &'h Host) -> Vec<&'h Evidence> {
        let names = self.inventory.names();
        let rule_id = |r: Option<crate::rules::RuleIdx>| r.map(|r| self.rules.rule(r).id.as_str());
        let mut entries: Vec<&Evidence> = host.evidence().iter().collect();
        entries.sort_by(|a, b| {
            let (a, b) = (&a.key, &b.key);
            (a.kind, rule_id(a.rule))
                .cmp(&(b.kind, rule_id(b.rule)))
                .then_with(|| names.cmp(a.name, b.name))
                .then_with(|| (a.peer, a.input).cmp(&(b.peer, b.input)))
        });
        entries
    }

    /// The peers the reported hosts' verdicts depend on that are not reported themselves:
    /// servers they completed KSC sessions with, got wake-ups from, sent shutdown notices to
    /// or fetched updates from. A merge of saved reports decides again whether such a peer
    /// manages a host (`verdict::managers_of`), so it needs the peer's inventory role,
    /// whether it is internal and its facts.
    fn peers(&self) -> Vec<Value> {
        let reported: std::collections::BTreeSet<IpAddr> = self.rows.iter().map(|r| r.ip).collect();
        let mut peers: std::collections::BTreeSet<IpAddr> = std::collections::BTreeSet::new();
        for row in &self.rows {
            let Some(h) = self.inventory.host(row.ip) else {
                continue;
            };
            for fact in h.facts() {
                if let Fact::KscSessionTo { server, .. }
                | Fact::KscWakeupFrom { server }
                | Fact::KscNoticeTo { server }
                | Fact::FetchedUpdates { server } = *fact
                {
                    peers.insert(server);
                }
            }
            for e in h.evidence() {
                if let crate::inventory::EvidenceKind::UpdatePath(_, Origin::Server)
                | crate::inventory::EvidenceKind::UpdatePayload(_, Origin::Server) = e.key.kind
                {
                    peers.extend(e.key.peer);
                }
            }
        }
        let names = self.inventory.names();
        peers
            .difference(&reported)
            .map(|&ip| {
                let host = self.inventory.host(ip);
                let macs = host.map_or(&[][..], |h| h.macs());
                json!({
                    "address": ip.to_string(),
                    "internal": self.assets.is_internal(ip),
                    "inventory_role": self.assets.find(ip, macs.iter()).map(|a| a.role.label()),
                    "learned": host.map_or_else(Vec::new, |h| {
                        h.facts().iter().map(|f| fact_json(f, names)).collect()
                    }),
                })
            })
            .collect()
    }
}

impl HostDocs for Report<'_> {
    /// Each reported host's JSON object read into the model, one at a time.
    fn for_each(&self, f: &mut dyn FnMut(&HostDoc)) {
        for row in &self.rows {
            let Some(host) = self.host_json(row) else {
                continue;
            };
            let value = serde_json::to_value(&host).unwrap_or_default();
            match serde_json::from_value::<HostDoc>(value) {
                Ok(doc) => f(&doc),
                Err(e) => unreachable!("host object does not fit the model: {e}"),
            }
        }
    }
}

/// The JSON report of [`Report::to_json`]: the model's layout ([`super::model::write_report`]),
/// building one host's object at a time.
pub struct JsonReport<'r, 'a> {
    report: &'r Report<'a>,
    head: ReportHead,
}

impl Serialize for JsonReport<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::model::write_report(serializer, &self.head, &HostsJson(self.report))
    }
}

/// One host in the JSON report. Fields in alphabetical order, like [`EvidenceJson`].
#[derive(Serialize)]
struct HostJson<'r> {
    asset: Option<Value>,
    categories: Vec<&'static str>,
    certainty: Option<&'static str>,
    dns_servers: Vec<String>,
    evidence: Vec<EvidenceJson<'r>>,
    evidence_dropped_by_cap: u64,
    first_seen: Value,
    internal: bool,
    ip: String,
    last_seen: Value,
    learned: Vec<Value>,
    macs: Vec<String>,
    managed_by: Vec<Value>,
    product: Option<&'static str>,
    reason: String,
    roles: Vec<&'static str>,
    rules: BTreeMap<&'r str, u64>,
    verdict: &'static str,
    vlans: Value,
}

/// One evidence entry of a host in the JSON report. Fields in alphabetical order: the order
/// in which the `json!` maps of the other objects write their keys, and the order of every
/// report written before this type existed.
#[derive(Serialize)]
struct EvidenceJson<'r> {
    category: Option<&'static str>,
    confidence: &'static str,
    count: u64,
    detail: Option<String>,
    direct: bool,
    family: Option<&'static str>,
    first: String,
    input: Option<&'r str>,
    install: bool,
    kind: &'static str,
    last: String,
    name: Option<&'r str>,
    origin: Option<&'static str>,
    peer: Option<String>,
    product: Option<&'static str>,
    rule: Option<&'r str>,
    source: &'static str,
}

/// The `"hosts"` array, one host object built, written and dropped at a time.
struct HostsJson<'r, 'a>(&'r Report<'a>);

impl Serialize for HostsJson<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let report = self.0;
        let mut seq = serializer.serialize_seq(Some(report.rows.len()))?;
        for row in &report.rows {
            if let Some(host) = report.host_json(row) {
                seq.serialize_element(&host)?;
            }
        }
        seq.end()
    }
}

/// The learned roles of a host as the JSON report lists them.
pub(crate) fn role_labels(r: &crate::inventory::verdict::LearnedRoles) -> Vec<&'static str> {
    [
        (r.ksc_server, "ksc-server"),
        (r.distribution_point, "distribution-point"),
        (r.update_mirror, "update-mirror"),
        (r.proxy, "proxy"),
        (r.resolver, "resolver"),
        (r.ksc_console, "ksc-console"),
    ]
    .into_iter()
    .filter_map(|(on, label)| on.then_some(label))
    .collect()
}

/// A manager in the JSON report.
pub(crate) fn manager_json(m: &Manager) -> Value {
    json!({
        "address": m.address.map(|a| a.to_string()),
        "cloud_console": m.cloud_console.as_deref(),
        "link": m.link.label(),
        "inventory_role": m.asset_role.map(|r| r.label()),
        "learned_role": m.learned.map(Verdict::label),
        "internal": m.internal,
    })
}

/// How `managed_by` is written in one cell (Markdown, CSV): addresses, or `cloud-console:NAME`.
pub fn managed_by_cell(managers: &[Manager]) -> String {
    managers
        .iter()
        .map(|m| match (&m.cloud_console, m.address) {
            (Some(name), _) => format!("cloud-console:{name}"),
            (None, Some(a)) => a.to_string(),
            (None, None) => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A learned fact in the JSON report: its kind, its peer and port where it has them, and the
/// sentence.
pub(crate) fn fact_json(fact: &Fact, names: &crate::inventory::NameTable) -> Value {
    let port = match *fact {
        Fact::KscSessionTo { port, .. } | Fact::KscSessionFrom { port, .. } => Some(port),
        _ => None,
    };
    let name = match *fact {
        Fact::CloudConsole { name } => names.name(name),
        _ => None,
    };
    json!({
        "fact": fact_label(fact),
        "peer": fact.peer().map(|p| p.to_string()),
        "port": port,
        "name": name,
        "text": describe_fact(fact, names),
    })
}
