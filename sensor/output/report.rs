//! The audit report: JSON for machines, Markdown for people, CSV of the host table.
//!
//! Contract: [`Report::build`] gathers everything from a finished run into plain data; the
//! renderers turn it into text. Nothing in a report depends on the wall clock, the machine or
//! the number of workers, so the same inputs and rules give byte-identical reports.
//!
//! Memory: a report holds one small row per reported host (address, verdict, asset), not a copy
//! of the host; renderers read each host from the inventory in turn, and the JSON report is
//! streamed ([`JsonReport`] builds one host's object at a time), so writing a report costs about
//! one host's worth of memory on top of the inventory, whatever the number of hosts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::flow::WorkerCounters;
use crate::inventory::assets::Assets;
use crate::inventory::{Evidence, EvidenceKind, Inventory, Verdict};
use crate::proto::NameKind;
use crate::reason::{Reason, ReasonCounts};
use crate::rules::RuleSet;
use crate::time::Timestamp;

use super::describe::{describe_fact, magic_label};
use super::mac_string;

/// What the report says about one input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputSummary {
    pub name: String,
    pub sha256: Option<String>,
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

/// One host row: the host itself stays in the inventory ([`Inventory::host`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRow {
    pub ip: IpAddr,
    pub verdict: Verdict,
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
            let Some(verdict) = inventory.verdict(host, assets) else {
                return;
            };
            let asset = assets.find(host.ip, host.macs().iter());
            rows.push(HostRow {
                ip: host.ip,
                verdict,
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
        }
    }

    pub fn time_range(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let first = self.inputs.iter().filter_map(|i| i.first_ts).min();
        let last = self.inputs.iter().filter_map(|i| i.last_ts).max();
        (first, last)
    }

    /// The JSON object of one host (`None` if it is not in the inventory).
    fn host_json(&self, row: &HostRow) -> Option<Value> {
        let h = self.inventory.host(row.ip)?;
        let mut rule_counts: BTreeMap<&str, u64> = BTreeMap::new();
        let mut categories: Vec<&str> = Vec::new();
        let evidence: Vec<Value> = self
            .inventory
            .evidence_in_order(&h)
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
                let kind = match key.kind {
                    EvidenceKind::Name(source) => source.kind().label(),
                    EvidenceKind::Correlated(_) => "correlated",
                    EvidenceKind::UpdatePayload(_) => "update-payload",
                    EvidenceKind::KscContact => "ksc",
                };
                let detail = match key.kind {
                    EvidenceKind::Correlated(reason) => Some(reason.label()),
                    EvidenceKind::UpdatePayload(magic) => Some(magic_label(magic)),
                    _ => None,
                };
                json!({
                    "kind": kind,
                    "source": key.kind.label(),
                    "detail": detail,
                    "name": key.name.and_then(|n| self.inventory.name(n)),
                    "rule": rule.map(|r| r.id.clone()),
                    "category": rule.map(|r| r.category.label()),
                    "confidence": stat.confidence.label(),
                    "peer": key.peer.map(|p| p.to_string()),
                    "count": stat.count,
                    "first": ts(Some(stat.first)),
                    "last": ts(Some(stat.last)),
                    "input": self.inputs.get(usize::from(key.input)).map(|i| i.name.clone()),
                })
            })
            .collect();
        categories.sort_unstable();
        Some(json!({
            "ip": h.ip.to_string(),
            "verdict": row.verdict.label(),
            "asset": row.asset_label.as_ref().map(|l| json!({"label": l, "role": row.asset_role})),
            "first_seen": ts(Some(h.first_seen)),
            "last_seen": ts(Some(h.last_seen)),
            "macs": h.macs().iter().map(mac_string).collect::<Vec<_>>(),
            "vlans": h.vlans(),
            "learned": h.facts().iter().map(describe_fact).collect::<Vec<_>>(),
            "rules": rule_counts,
            "categories": categories,
            "evidence": evidence,
            "evidence_dropped_by_cap": h.evidence_dropped,
        }))
    }

    /// The JSON report, streamed: serialising it builds one host's object at a time.
    pub fn to_json(&self) -> JsonReport<'_, 'a> {
        JsonReport {
            report: self,
            head: self.json_head(),
        }
    }

    /// The JSON report as one value (tests; it holds every host at once).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self.to_json()).unwrap_or(Value::Null)
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
            "sensor": { "name": "ksensor", "version": self.version },
            "inputs": self.inputs.iter().map(|i| json!({
                "name": i.name,
                "sha256": i.sha256,
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
                "hosts_refused_by_cap": inv.hosts_refused,
                "answered_addresses_evicted": inv.answered_addrs_evicted,
                "names_refused_by_cap": inv.names_refused,
                "evidence_refused_by_cap": inv.evidence_refused,
                "facts_refused_by_cap": inv.facts_refused,
            },
            "caps": self.caps.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "verdicts": verdicts,
            "hosts": Value::Null,
        });
        let mut map = match head {
            Value::Object(map) => map,
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

    /// The CSV host table.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("ip,verdict,asset,role,first_seen,last_seen,macs,vlans,rules,categories,strongest_confidence\n");
        for row in &self.rows {
            let Some(h) = self.inventory.host(row.ip) else {
                continue;
            };
            let mut rules: Vec<&str> = h
                .evidence()
                .iter()
                .filter_map(|e| e.key.rule)
                .map(|r| self.rules.rule(r).id.as_str())
                .collect();
            rules.dedup();
            rules.sort_unstable();
            rules.dedup();
            let mut cats: Vec<&str> = h
                .evidence()
                .iter()
                .filter_map(|e| e.key.rule)
                .map(|r| self.rules.rule(r).category.label())
                .collect();
            cats.sort_unstable();
            cats.dedup();
            let fields = [
                h.ip.to_string(),
                row.verdict.label().to_string(),
                row.asset_label.clone().unwrap_or_default(),
                row.asset_role.unwrap_or("").to_string(),
                h.first_seen.rfc3339_micros().to_string(),
                h.last_seen.rfc3339_micros().to_string(),
                h.macs()
                    .iter()
                    .map(mac_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                h.vlans()
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                rules.join(" "),
                cats.join(" "),
                h.strongest().map_or("", |c| c.label()).to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }

    /// The Markdown report for people.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let (first, last) = self.time_range();
        let show =
            |t: Option<Timestamp>| t.map_or("-".to_string(), |t| t.rfc3339_micros().to_string());
        let _ = writeln!(md, "# ksensor audit report\n");
        let _ = writeln!(md, "- Sensor: ksensor {}", self.version);
        let _ = writeln!(
            md,
            "- Rule set: {} rules, SHA-256 `{}`",
            self.rules.rules().len(),
            self.rules.sha256()
        );
        let _ = writeln!(
            md,
            "- Capture time range: {} to {}",
            show(first),
            show(last)
        );
        let _ = writeln!(md, "\n## Inputs\n\n| file | SHA-256 | packets | bytes | first | last | damage |\n|---|---|---|---|---|---|---|");
        for i in self.inputs {
            let _ = writeln!(
                md,
                "| {} | `{}` | {} | {} | {} | {} | {} |",
                md_cell(&i.name),
                i.sha256.as_deref().unwrap_or("-"),
                i.packets,
                i.file_bytes,
                show(i.first_ts),
                show(i.last_ts),
                md_cell(i.error.as_deref().unwrap_or("none")),
            );
        }
        let _ = writeln!(md, "\n## Hosts\n");
        if self.rows.is_empty() {
            let _ = writeln!(md, "No host showed Kaspersky evidence.");
        } else {
            let _ = writeln!(md, "| verdict | host | asset | MACs | rules (count) | learned |\n|---|---|---|---|---|---|");
            for row in &self.rows {
                let Some(h) = self.inventory.host(row.ip) else {
                    continue;
                };
                let mut rules: BTreeMap<&str, u64> = BTreeMap::new();
                for e in h.evidence() {
                    if let Some(r) = e.key.rule {
                        *rules.entry(self.rules.rule(r).id.as_str()).or_insert(0) += e.stat.count;
                    }
                }
                let rules: Vec<String> = rules.iter().map(|(r, n)| format!("{r} ({n})")).collect();
                let learned: Vec<String> = h.facts().iter().map(describe_fact).collect();
                let _ = writeln!(
                    md,
                    "| **{}** | {} | {} | {} | {} | {} |",
                    row.verdict.label(),
                    h.ip,
                    md_cell(row.asset_label.as_deref().unwrap_or("-")),
                    h.macs()
                        .iter()
                        .map(mac_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                    md_cell(&rules.join(", ")),
                    md_cell(&learned.join("; ")),
                );
            }
            let _ = writeln!(md, "\n## Evidence per host\n");
            for row in &self.rows {
                let Some(h) = self.inventory.host(row.ip) else {
                    continue;
                };
                let _ = writeln!(md, "### {} — {}\n", h.ip, row.verdict.label());
                if row.verdict == Verdict::Resolver {
                    let _ = writeln!(md, "Lookups below were made by this resolver: someone behind it looked up these names.\n");
                }
                let _ = writeln!(md, "| kind | name | rule | confidence | count | first | last | input |\n|---|---|---|---|---|---|---|---|");
                for Evidence { key: k, stat: s } in self.inventory.evidence_in_order(&h) {
                    let rule = k
                        .rule
                        .map(|r| self.rules.rule(r).id.as_str())
                        .unwrap_or("-");
                    let name = k
                        .name
                        .and_then(|n| self.inventory.name(n))
                        .map(str::to_string)
                        .or(k.peer.map(|p| p.to_string()))
                        .unwrap_or_default();
                    let input = self
                        .inputs
                        .get(usize::from(k.input))
                        .map(|i| i.name.as_str())
                        .unwrap_or("");
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} | {} | {} | {} | {} |",
                        k.kind.label(),
                        md_cell(&name),
                        rule,
                        s.confidence.label(),
                        s.count,
                        s.first.rfc3339_micros(),
                        s.last.rfc3339_micros(),
                        md_cell(input),
                    );
                }
                let _ = writeln!(md);
            }
        }
        let c = self.counters;
        let _ = writeln!(md, "## Counters\n\n| counter | value |\n|---|---|");
        let _ = writeln!(
            md,
            "| packets | {} |\n| decoded | {} |",
            c.packets.packets, c.packets.decoded
        );
        for (label, n) in c.packets.decode_skips.iter().filter(|(_, n)| *n > 0) {
            let _ = writeln!(md, "| skipped: {label} | {n} |");
        }
        for (link, n) in c.packets.unsupported_link_types.iter() {
            let _ = writeln!(md, "| skipped: unsupported link type {link} | {n} |");
        }
        for (kind, n) in NameKind::ALL.iter().zip(c.names.extracted) {
            let _ = writeln!(md, "| names extracted: {} | {n} |", kind.label());
        }
        let _ = writeln!(
            md,
            "| detections | {} |",
            self.inventory.counters.detections
        );
        md
    }
}

/// The JSON report of [`Report::to_json`]: serialises like the whole report as one
/// `serde_json::Value` (same keys, same order), building one host's object at a time.
pub struct JsonReport<'r, 'a> {
    report: &'r Report<'a>,
    /// Everything but the hosts, in output order (`"hosts"` holds a placeholder).
    head: serde_json::Map<String, Value>,
}

impl Serialize for JsonReport<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.head.len()))?;
        for (key, value) in &self.head {
            if key == "hosts" {
                map.serialize_entry(key, &HostsJson(self.report))?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
