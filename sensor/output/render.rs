//! Markdown and CSV reports, rendered from the report model ([`super::model`]) alone, so a
//! run, a re-render of a saved report and a merge of several write them the same way.
//!
//! Contract: pure functions of [`ReportHead`] and [`HostDocs`]; deterministic text; every
//! string that came off the wire (names, asset labels, file names) is escaped for its format
//! (`|` and newlines in Markdown cells, quotes in CSV fields).

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{EvidenceDoc, HostDoc, HostDocs, ManagerDoc, ReportHead};

/// How `managed_by` is written in one cell: addresses, or `cloud-console:NAME`.
pub fn managed_by_cell(managers: &[ManagerDoc]) -> String {
    managers
        .iter()
        .map(|m| match (&m.cloud_console, &m.address) {
            (Some(name), _) => format!("cloud-console:{name}"),
            (None, Some(a)) => a.clone(),
            (None, None) => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The distinct rule ids of a host's evidence, sorted.
pub fn rule_ids(h: &HostDoc) -> Vec<&str> {
    let mut ids: Vec<&str> = h
        .evidence
        .iter()
        .filter_map(|e| e.rule.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The strongest confidence among a host's evidence (`low < medium < high`).
pub fn strongest(h: &HostDoc) -> &str {
    let rank = |c: &str| match c {
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    };
    h.evidence
        .iter()
        .map(|e| e.confidence.as_str())
        .max_by_key(|c| rank(c))
        .unwrap_or("")
}

/// What an evidence entry is about: its name, or its peer.
pub fn evidence_subject(e: &EvidenceDoc) -> &str {
    e.name.as_deref().or(e.peer.as_deref()).unwrap_or("")
}

/// A counter by its path in `counters` (0 when absent).
pub fn counter(counters: &Value, path: &[&str]) -> u64 {
    let mut v = counters;
    for key in path {
        match v.get(key) {
            Some(next) => v = next,
            None => return 0,
        }
    }
    v.as_u64().unwrap_or(0)
}

/// The CSV host table.
pub fn csv(hosts: &dyn HostDocs) -> String {
    let mut out = String::from("ip,verdict,certainty,product,managed_by,asset,role,first_seen,last_seen,macs,vlans,rules,categories,strongest_confidence,reason\n");
    hosts.for_each(&mut |h| {
        let asset = h.asset.as_ref();
        let fields = [
            h.ip.clone(),
            h.verdict.clone(),
            h.certainty.clone().unwrap_or_default(),
            h.product.clone().unwrap_or_default(),
            managed_by_cell(&h.managed_by),
            asset.map(|a| a.label.clone()).unwrap_or_default(),
            asset.and_then(|a| a.role.clone()).unwrap_or_default(),
            h.first_seen.clone(),
            h.last_seen.clone(),
            h.macs.join(" "),
            h.vlans
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            rule_ids(h).join(" "),
            h.categories.join(" "),
            strongest(h).to_string(),
            h.reason.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    });
    out
}

/// The Markdown report for people.
pub fn markdown(head: &ReportHead, hosts: &dyn HostDocs) -> String {
    let mut md = String::new();
    let show = |t: &Option<String>| t.clone().unwrap_or_else(|| "-".to_string());
    let _ = writeln!(md, "# ksensor audit report\n");
    let _ = writeln!(md, "- Sensor: ksensor {}", md_cell(&head.sensor.version));
    let _ = writeln!(
        md,
        "- Rule set: {} rules, SHA-256 `{}`",
        head.rules.rule_count,
        md_cell(&head.rules.sha256)
    );
    let _ = writeln!(
        md,
        "- Capture time range: {} to {}",
        show(&head.time_range.first),
        show(&head.time_range.last)
    );
    if let Some(merge) = &head.merge {
        let _ = writeln!(
            md,
            "- Merged from {} reports ({} rule sets). {}",
            merge.reports.len(),
            merge.rule_sets.len(),
            md_cell(&merge.note)
        );
    }
    let _ = writeln!(md, "\n## Inputs\n\n| file | SHA-256 | packets | bytes | first | last | damage |\n|---|---|---|---|---|---|---|");
    for i in &head.inputs {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {} |",
            md_cell(&i.name),
            md_cell(i.sha256.as_deref().unwrap_or("-")),
            i.packets,
            i.file_bytes,
            show(&i.first_ts),
            show(&i.last_ts),
            md_cell(i.error.as_deref().unwrap_or("none")),
        );
    }
    let _ = writeln!(md, "\n## Hosts\n");
    let mut any = false;
    hosts.for_each(&mut |_| any = true);
    if !any {
        let _ = writeln!(md, "No host showed Kaspersky evidence.");
    } else {
        let _ = writeln!(md, "| verdict | certainty | product | host | asset | managed by | why |\n|---|---|---|---|---|---|---|");
        hosts.for_each(&mut |h| {
            let _ = writeln!(
                md,
                "| **{}** | {} | {} | {} | {} | {} | {} |",
                md_cell(&h.verdict),
                md_cell(h.certainty.as_deref().unwrap_or("-")),
                md_cell(h.product.as_deref().unwrap_or("-")),
                md_cell(&h.ip),
                md_cell(h.asset.as_ref().map_or("-", |a| a.label.as_str())),
                md_cell(&managed_by_cell(&h.managed_by)),
                md_cell(&h.reason),
            );
        });
        let _ = writeln!(md, "\n## Evidence per host\n");
        hosts.for_each(&mut |h| {
            let _ = writeln!(md, "### {} — {}\n", md_cell(&h.ip), md_cell(&h.verdict));
            match h.verdict.as_str() {
                "resolver" => {
                    let _ = writeln!(md, "Lookups below were made by this resolver: someone behind it looked up these names.\n");
                }
                "proxy" => {
                    let _ = writeln!(md, "Traffic below was sent by this proxy: its clients asked for these names.\n");
                }
                _ => {}
            }
            if !h.learned.is_empty() {
                let learned: Vec<&str> = h.learned.iter().map(|f| f.text.as_str()).collect();
                let _ = writeln!(md, "Learned: {}.\n", md_cell(&learned.join("; ")));
            }
            let _ = writeln!(md, "| kind | name | rule | family | product | install | confidence | count | first | last | input |\n|---|---|---|---|---|---|---|---|---|---|---|");
            for e in &h.evidence {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    md_cell(&e.source),
                    md_cell(evidence_subject(e)),
                    md_cell(e.rule.as_deref().unwrap_or("-")),
                    md_cell(e.family.as_deref().unwrap_or("-")),
                    md_cell(e.product.as_deref().unwrap_or("-")),
                    if e.install { "yes" } else { "no" },
                    md_cell(&e.confidence),
                    e.count,
                    show(&e.first),
                    show(&e.last),
                    md_cell(e.input.as_deref().unwrap_or("")),
                );
            }
            let _ = writeln!(md);
        });
    }
    let c = &head.counters;
    let _ = writeln!(md, "## Counters\n\n| counter | value |\n|---|---|");
    let _ = writeln!(
        md,
        "| packets | {} |\n| decoded | {} |",
        counter(c, &["packets"]),
        counter(c, &["decoded"])
    );
    if let Some(Value::Object(skips)) = c.get("skipped").and_then(|s| s.get("decode")) {
        for (label, n) in skips {
            let _ = writeln!(md, "| skipped: {} | {} |", md_cell(label), n);
        }
    }
    if let Some(Value::Object(links)) = c.get("unsupported_link_types") {
        for (link, n) in links {
            let _ = writeln!(
                md,
                "| skipped: unsupported link type {} | {} |",
                md_cell(link),
                n
            );
        }
    }
    if let Some(Value::Object(kinds)) = c.get("names_extracted") {
        for (kind, n) in kinds {
            let _ = writeln!(md, "| names extracted: {} | {} |", md_cell(kind), n);
        }
    }
    let _ = writeln!(md, "| detections | {} |", counter(c, &["detections"]));
    if let Some(e) = &head.events {
        let _ = writeln!(md, "| event lines written | {} |", counter(e, &["written"]));
        if let Some(Value::Object(suppressed)) = e.get("suppressed") {
            for (label, n) in suppressed {
                let _ = writeln!(md, "| event lines suppressed: {} | {} |", md_cell(label), n);
            }
        }
    }
    md
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
