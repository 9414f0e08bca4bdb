//! The terminal summary printed by `replay` when no report or events are asked for.

use std::fmt::Write as _;

use crate::proto::NameKind;

use super::describe::fact_label;
use super::report::Report;

/// Renders the summary table.
pub fn render(report: &Report<'_>) -> String {
    let mut s = String::new();
    let c = report.counters;
    let _ = writeln!(
        s,
        "ksensor {} — rules: {} ({})",
        report.version,
        report.rules.rules().len(),
        short(report.rules.sha256())
    );
    for i in report.inputs {
        let status = i.error.as_deref().unwrap_or("ok");
        let _ = writeln!(
            s,
            "input {}: {} packets, {} bytes, {}",
            i.name, i.packets, i.file_bytes, status
        );
    }
    let names: Vec<String> = NameKind::ALL
        .iter()
        .zip(c.names.extracted)
        .map(|(k, n)| format!("{} {n}", k.label()))
        .collect();
    let _ = writeln!(
        s,
        "packets {} decoded {} skipped {} | names: {} | detections {}",
        c.packets.packets,
        c.packets.decoded,
        c.packets.decode_skips.total(),
        names.join(", "),
        report.inventory.counters.detections
    );
    if let Some(e) = report.events.as_ref() {
        let suppressed = e.counts.suppressed.total();
        if suppressed > 0 {
            let _ = writeln!(
                s,
                "event lines: {} written, {suppressed} suppressed by the rate limits \
                 (every detection is still in the report)",
                e.written
            );
        }
    }
    if report.rows.is_empty() {
        let _ = writeln!(s, "\nNo host showed Kaspersky evidence.");
        return s;
    }
    let _ = writeln!(
        s,
        "\n{:<26} {:<9} {:<9} {:<40} {:>6}  RULES (OR EVIDENCE)",
        "VERDICT", "CERTAINTY", "PRODUCT", "HOST", "COUNT"
    );
    for row in &report.rows {
        let Some(h) = report.inventory.host(row.ip) else {
            continue;
        };
        let mut rules: Vec<&str> = h
            .evidence()
            .iter()
            .filter_map(|e| e.key.rule)
            .map(|r| report.rules.rule(r).id.as_str())
            .collect();
        if rules.is_empty() {
            // Content-level evidence (KSC sessions, update files) or what the host serves.
            rules = h.evidence().iter().map(|e| e.key.kind.label()).collect();
            if rules.is_empty() {
                rules = h.facts().iter().map(fact_label).collect();
            }
        }
        rules.sort_unstable();
        rules.dedup();
        let count: u64 = h.evidence().iter().map(|e| e.stat.count).sum();
        let host = match &row.asset_label {
            Some(label) => format!("{} ({label})", h.ip),
            None => h.ip.to_string(),
        };
        let _ = writeln!(
            s,
            "{:<26} {:<9} {:<9} {:<40} {:>6}  {}",
            row.verdict.label(),
            row.certainty.map_or("-", |c| c.label()),
            row.product.map_or("-", |p| p.label()),
            host,
            count,
            rules.join(" ")
        );
    }
    s
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
