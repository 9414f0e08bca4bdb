//! The HTML audit report: one self-contained file for people who open a report in a browser.
//!
//! Contract: [`render`] is a pure function of the report model ([`ReportHead`] and
//! [`HostDocs`], the data the JSON report serialises) and gives the same bytes for the same
//! model (no clock, no randomness, maps in sorted order). The file fetches nothing: styles and
//! charts (SVG) are inline, and its Content-Security-Policy (`default-src 'none'`, the one
//! inline script allowed by its SHA-256) stops the browser from loading anything even if a
//! string slipped through unescaped. It reads completely without JavaScript; the script only
//! adds sorting by a column header and a text filter over the host table. A print stylesheet
//! (`@media print`) drops the controls and keeps rows and host sections whole across pages.
//!
//! Every string that came from traffic or from a file (names, asset labels, file names, reason
//! sentences that quote names) is escaped with [`esc`] for text and attribute values alike.
//! Hosts' evidence timelines show at most [`TIMELINE_ROWS`] entries, so a host with the
//! maximum evidence (256 entries) still prints on a page or two.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::model::{EvidenceDoc, HostDoc, HostDocs, ReportHead};
use super::render::{counter, evidence_subject, managed_by_cell};

/// Evidence entries drawn in one host's timeline: the earliest first; the rest are in the
/// evidence table below it (a timeline taller than this no longer reads as one picture).
pub const TIMELINE_ROWS: usize = 24;

/// Characters of an entry's label beside its timeline row (what fits the label column at 12 px).
const TIMELINE_LABEL_CHARS: usize = 48;

/// Escapes `s` for HTML text and quoted attribute values (the five characters HTML gives
/// meaning to).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#fff; --head:#f6f8fa; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; max-width: 1280px; padding: 1rem 1.5rem; }
h1 { font-size: 1.6rem; margin: .2rem 0; } h2 { font-size: 1.25rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; } h3 { font-size: 1.05rem; margin: 1.2rem 0 .3rem; }
.muted { color: var(--muted); } code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
nav a { margin-right: 1rem; }
td.ip, td.first-seen, td.last-seen, td.vlan { white-space: nowrap; word-break: normal; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: var(--head); } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; } .charts figure { margin: 0; flex: 1 1 360px; } figcaption { font-weight: 600; margin-bottom: .3rem; }
.bar { fill: #0969da; } .bar.unmanaged { fill: #a40e26; } .bar.external { fill: #9a6700; } .bar.managed { fill: #1a7f37; } .tick { stroke: var(--line); } svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
.v-unmanaged-install { color: #a40e26; font-weight: 600; } .v-externally-managed-install { color: #9a6700; font-weight: 600; } .v-managed-install { color: #1a7f37; font-weight: 600; }
.timeline .span { fill: #0969da; } .timeline .dot { fill: #0969da; } .timeline .indirect { fill: #8c959f; }
article.host { border-top: 1px solid var(--line); padding-top: .3rem; }
.filter { margin: .3rem 0; padding: .3rem; width: 22rem; max-width: 100%; }
th.sortable { cursor: pointer; } th.sortable::after { content: " \2195"; color: var(--muted); }
@media print {
  body { font-size: 9pt; max-width: none; padding: 0; }
  nav, .filter, th.sortable::after { display: none; content: none; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; } tr, figure { break-inside: avoid; } article.host { break-inside: avoid-page; }
  thead { display: table-header-group; }
  .bar, .timeline .span, .timeline .dot { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"#;

/// Sorting by a column header and a text filter over tables marked `data-sortable`; nothing
/// else depends on it.
const SCRIPT: &str = r#"
(function () {
  function key(cell) { var v = cell.getAttribute('data-sort'); return v === null ? cell.textContent.trim() : v; }
  document.querySelectorAll('table[data-sortable]').forEach(function (table) {
    var body = table.tBodies[0];
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.classList.add('sortable');
      th.addEventListener('click', function () {
        var asc = th.getAttribute('data-dir') !== 'asc';
        th.setAttribute('data-dir', asc ? 'asc' : 'desc');
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          var nx = Number(x), ny = Number(y);
          var c = (x !== '' && y !== '' && !isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
    var input = document.createElement('input');
    input.type = 'search'; input.className = 'filter'; input.id = table.id + '-filter';
    input.placeholder = 'Filter rows (any text)';
    input.addEventListener('input', function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(body.rows, function (r) {
        r.hidden = q !== '' && r.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
    table.parentNode.insertBefore(input, table);
  });
})();
"#;

/// The Content-Security-Policy: nothing may be loaded; inline styles and the one script (by
/// its hash, CSP Level 2 §4.2.4) may run.
fn csp() -> String {
    let digest = Sha256::digest(SCRIPT.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest);
    format!("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

/// Microseconds since 1970 of an RFC 3339 UTC time as reports write it
/// (`2026-12-06T10:50:23.179046Z`), `None` for anything else (a damaged report draws no mark).
fn micros(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = t.get(from..from.checked_add(len)?)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let frac = match b.get(19) {
        Some(b'.') => {
            let digits = t.get(20..)?.trim_end_matches('Z');
            let padded = format!("{digits:0<6}");
            padded.get(..6)?.parse::<i64>().ok()?
        }
        _ => 0,
    };
    // Days from civil (Howard Hinnant's algorithm, proleptic Gregorian calendar).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days
        .checked_mul(86_400)?
        .checked_add(hh * 3600 + mm * 60 + ss)?;
    secs.checked_mul(1_000_000)?.checked_add(frac)
}

/// A horizontal bar chart with the numbers beside the bars; the same numbers are in the table
/// under it.
fn bar_chart(out: &mut String, id: &str, title: &str, items: &[(String, u64)]) {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (190u64, 230u64, 22u64);
    let height = (items.len() as u64).saturating_mul(row_h).max(row_h);
    let _ = write!(
        out,
        "<figure id=\"chart-{id}\"><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        esc(title),
        esc(title),
        label_w + bar_w + 60,
        label_w + bar_w + 60,
    );
    for (i, (label, n)) in items.iter().enumerate() {
        let y = (i as u64).saturating_mul(row_h);
        let w = n.saturating_mul(bar_w) / max;
        // Installs in the colours the host table gives their verdicts.
        let class = match label.as_str() {
            "unmanaged-install" => "bar unmanaged",
            "externally-managed-install" => "bar external",
            "managed-install" => "bar managed",
            _ => "bar",
        };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text><rect class=\"{class}\" x=\"{label_w}\" y=\"{}\" width=\"{w}\" height=\"{}\"></rect><text x=\"{}\" y=\"{}\">{n}</text>",
            label_w - 6,
            y + 15,
            esc(label),
            y + 4,
            row_h - 8,
            label_w + w + 6,
            y + 15,
        );
    }
    let _ = write!(out, "</svg><table class=\"counts\" data-chart=\"{id}\"><thead><tr><th>{}</th><th class=\"num\">hosts</th></tr></thead><tbody>", esc(title));
    for (label, n) in items {
        let _ = write!(
            out,
            "<tr><td class=\"key\">{}</td><td class=\"num count\" data-key=\"{}\">{n}</td></tr>",
            esc(label),
            esc(label)
        );
    }
    out.push_str("</tbody></table></figure>");
}

/// A host's evidence over time: one row per entry (at most [`TIMELINE_ROWS`]), a bar from its
/// first to its last sighting (a dot when they are one instant), grey when indirect.
fn timeline(out: &mut String, h: &HostDoc) {
    let (Some(t0), Some(t1)) = (micros(&h.first_seen), micros(&h.last_seen)) else {
        return;
    };
    let mut entries: Vec<&EvidenceDoc> = h.evidence.iter().collect();
    entries.sort_by(|a, b| {
        (a.first.as_deref(), a.last.as_deref()).cmp(&(b.first.as_deref(), b.last.as_deref()))
    });
    let shown = entries.len().min(TIMELINE_ROWS);
    let (label_w, plot_w, row_h) = (330i64, 420i64, 14i64);
    let height = (shown as i64 + 1) * row_h + 6;
    let span = (t1 - t0).max(0);
    let x = |t: i64| -> i64 {
        if span == 0 {
            label_w + plot_w / 2
        } else {
            label_w + ((t - t0).clamp(0, span) as i128 * plot_w as i128 / span as i128) as i64
        }
    };
    let _ = write!(
        out,
        "<svg class=\"timeline\" role=\"img\" aria-label=\"evidence of {} over time\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        esc(&h.ip),
        label_w + plot_w + 10,
        label_w + plot_w + 10,
    );
    let axis_y = shown as i64 * row_h + 4;
    let _ = write!(
        out,
        "<line class=\"tick\" x1=\"{label_w}\" y1=\"{axis_y}\" x2=\"{}\" y2=\"{axis_y}\"></line><text x=\"{label_w}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        label_w + plot_w,
        axis_y + row_h,
        esc(&h.first_seen),
        label_w + plot_w,
        axis_y + row_h,
        esc(&h.last_seen),
    );
    for (i, e) in entries.iter().take(shown).enumerate() {
        let y = i as i64 * row_h;
        let label = format!("{} {}", e.source, evidence_subject(e));
        // Long names are cut in the picture (the full name is in its tooltip and the table).
        let shown_label: String = if label.chars().count() > TIMELINE_LABEL_CHARS {
            let mut cut: String = label.chars().take(TIMELINE_LABEL_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            label.clone()
        };
        let class = if e.direct { "" } else { " indirect" };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6,
            y + 11,
            esc(&shown_label)
        );
        let (Some(a), Some(b)) = (
            e.first.as_deref().and_then(micros),
            e.last.as_deref().and_then(micros),
        ) else {
            continue;
        };
        let (xa, xb) = (x(a), x(b));
        if xb - xa < 3 {
            let _ = write!(
                out,
                "<circle class=\"dot{class}\" cx=\"{xa}\" cy=\"{}\" r=\"4\"><title>{} × {}</title></circle>",
                y + 7,
                esc(&label),
                e.count
            );
        } else {
            let _ = write!(
                out,
                "<rect class=\"span{class}\" x=\"{xa}\" y=\"{}\" width=\"{}\" height=\"8\"><title>{} × {}</title></rect>",
                y + 3,
                xb - xa,
                esc(&label),
                e.count
            );
        }
    }
    out.push_str("</svg>");
    if entries.len() > shown {
        let _ = write!(
            out,
            "<p class=\"muted\">The timeline shows the {shown} earliest of {} entries; the table lists all.</p>",
            entries.len()
        );
    }
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "–".to_string(), esc)
}

/// Non-zero counters under `value` as `(path, count)`, keys in sorted order.
fn nonzero(value: &Value, prefix: &str, out: &mut Vec<(String, u64)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                nonzero(v, &path, out);
            }
        }
        Value::Number(n) => {
            if let Some(n) = n.as_u64().filter(|n| *n > 0) {
                out.push((prefix.to_string(), n));
            }
        }
        _ => {}
    }
}

/// Whether a counter says that something was not looked at (skipped, refused, evicted, cut).
fn is_loss(path: &str) -> bool {
    const WORDS: [&str; 9] = [
        "skipped.",
        "stream_events.",
        "refused",
        "evicted",
        "dropped",
        "truncated",
        "bad_checksums",
        "ignored",
        "expired",
    ];
    WORDS.iter().any(|w| path.contains(w))
}

/// The HTML audit report.
pub fn render(head: &ReportHead, hosts: &dyn HostDocs) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let mut host_count = 0u64;
    let mut by_certainty: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_product: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped = 0u64;
    hosts.for_each(&mut |h| {
        host_count += 1;
        if let Some(c) = &h.certainty {
            *by_certainty.entry(c.clone()).or_insert(0) += 1;
        }
        if let Some(p) = &h.product {
            *by_product.entry(p.clone()).or_insert(0) += 1;
        }
        dropped = dropped.saturating_add(h.evidence_dropped_by_cap);
    });
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"generator\" content=\"ksensor {}\"><title>ksensor audit report</title><style>{STYLE}</style></head><body>\n",
        // Our own constant: no quote or markup in it, and written unescaped so that the
        // policy reads the same in the file as in the browser.
        csp(),
        esc(&head.sensor.version)
    );
    let _ = writeln!(
        out,
        "<header><h1>ksensor audit report</h1><p class=\"muted\">ksensor {} · capture time <span class=\"mono\">{}</span> to <span class=\"mono\">{}</span> · <span id=\"host-count\">{host_count}</span> reported hosts</p></header>",
        esc(&head.sensor.version),
        opt(&head.time_range.first),
        opt(&head.time_range.last)
    );
    out.push_str("<nav><a href=\"#inputs\">Inputs</a><a href=\"#rules\">Rule set</a><a href=\"#counts\">Counts</a><a href=\"#hosts\">Hosts</a><a href=\"#evidence\">Evidence per host</a><a href=\"#coverage\">What was not looked at</a></nav>\n");

    // Inputs.
    out.push_str("<section id=\"inputs\"><h2>Inputs</h2><table id=\"input-table\"><thead><tr><th>file</th><th class=\"num\">size (bytes)</th><th class=\"num\">packets</th><th>first packet</th><th>last packet</th><th>digest</th><th>damage</th><th>skipped while reading</th></tr></thead><tbody>");
    for i in &head.inputs {
        let mut digest = i.digest().map_or_else(
            || "<span class=\"muted\">whole file not hashed</span>".to_string(),
            |(alg, d)| format!("{alg} <code>{}</code>", esc(d)),
        );
        if let (Some(h), Some(t)) = (&i.head_sha256, &i.tail_sha256) {
            let _ = write!(
                digest,
                "<br><span class=\"muted\">first / last {} bytes, SHA-256</span> <code>{}</code> / <code>{}</code>",
                i.edge_bytes,
                esc(h),
                esc(t)
            );
        }
        let notes: Vec<String> = i
            .notes
            .iter()
            .map(|(k, n)| format!("{} {n}", esc(k)))
            .collect();
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{digest}</td><td>{}</td><td>{}</td></tr>",
            esc(&i.name),
            i.file_bytes,
            i.packets,
            opt(&i.first_ts),
            opt(&i.last_ts),
            i.error.as_deref().map_or_else(|| "none".to_string(), esc),
            if notes.is_empty() { "none".to_string() } else { notes.join(", ") },
        );
    }
    out.push_str("</tbody></table></section>\n");

    // Rule set, and how a merged report was made.
    let _ = write!(
        out,
        "<section id=\"rules\"><h2>Rule set</h2><p>{} rules, SHA-256 <code id=\"rules-sha256\">{}</code></p><table><thead><tr><th>rule file</th><th>SHA-256</th></tr></thead><tbody>",
        head.rules.rule_count,
        esc(&head.rules.sha256)
    );
    for f in &head.rules.files {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td><code>{}</code></td></tr>",
            esc(&f.path),
            esc(&f.sha256)
        );
    }
    out.push_str("</tbody></table>");
    if let Some(m) = &head.merge {
        let _ = write!(
            out,
            "<h3>Merged report</h3><p>Merged from {} reports. {}</p><table><thead><tr><th>rule set SHA-256</th><th class=\"num\">rules</th><th class=\"num\">reports</th></tr></thead><tbody>",
            m.reports.len(),
            esc(&m.note)
        );
        for r in &m.rule_sets {
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&r.sha256),
                r.rule_count,
                r.reports
            );
        }
        out.push_str("</tbody></table><table><thead><tr><th>report's inputs</th><th>rule set</th><th>sensor</th></tr></thead><tbody>");
        for r in &m.reports {
            let inputs: Vec<String> = r.inputs.iter().map(|i| esc(i)).collect();
            let _ = write!(
                out,
                "<tr><td class=\"mono\">{}</td><td><code>{}</code></td><td>ksensor {}</td></tr>",
                inputs.join("<br>"),
                esc(&r.rules_sha256),
                esc(&r.sensor_version)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>\n");

    // Counts.
    out.push_str("<section id=\"counts\"><h2>Counts</h2><div class=\"charts\">");
    let verdicts: Vec<(String, u64)> = head.verdicts.iter().map(|(k, v)| (k.clone(), *v)).collect();
    bar_chart(&mut out, "verdict", "verdict", &verdicts);
    let certainty: Vec<(String, u64)> = by_certainty.into_iter().collect();
    bar_chart(&mut out, "certainty", "certainty (installs)", &certainty);
    let product: Vec<(String, u64)> = by_product.into_iter().collect();
    bar_chart(&mut out, "product", "product (installs)", &product);
    out.push_str("</div></section>\n");

    // Host table.
    out.push_str("<section id=\"hosts-section\"><h2 id=\"hosts-title\">Hosts</h2>");
    if host_count == 0 {
        out.push_str("<p>No host showed Kaspersky evidence.</p>");
    }
    out.push_str("<table id=\"hosts\" data-sortable=\"\"><thead><tr><th>verdict</th><th>host</th><th>VLAN</th><th>asset</th><th>certainty</th><th>product</th><th>managed by</th><th>reason</th><th>first seen</th><th>last seen</th></tr></thead><tbody>");
    let mut n = 0usize;
    hosts.for_each(&mut |h| {
        n += 1;
        let vlans: Vec<String> = h.vlans.iter().map(|v| v.to_string()).collect();
        let _ = write!(
            out,
            "<tr class=\"host\"><td class=\"verdict v-{}\">{}</td><td class=\"ip mono\"><a href=\"#h{n}\">{}</a></td><td class=\"vlan\">{}</td><td class=\"asset\">{}</td><td class=\"certainty\">{}</td><td class=\"product\">{}</td><td class=\"managed-by mono\">{}</td><td class=\"reason\">{}</td><td class=\"first-seen mono\">{}</td><td class=\"last-seen mono\">{}</td></tr>",
            esc(&h.verdict),
            esc(&h.verdict),
            esc(&h.ip),
            esc(&vlans.join(" ")),
            h.asset.as_ref().map_or_else(String::new, |a| esc(&a.label)),
            opt(&h.certainty),
            opt(&h.product),
            esc(&managed_by_cell(&h.managed_by)),
            esc(&h.reason),
            esc(&h.first_seen),
            esc(&h.last_seen),
        );
    });
    out.push_str("</tbody></table></section>\n");

    // Evidence per host.
    out.push_str("<section id=\"evidence\"><h2>Evidence per host</h2>");
    let mut n = 0usize;
    hosts.for_each(&mut |h| {
        n += 1;
        let _ = write!(
            out,
            "<article class=\"host\" id=\"h{n}\"><h3><span class=\"mono\">{}</span> — <span class=\"v-{}\">{}</span></h3><p>{}</p>",
            esc(&h.ip),
            esc(&h.verdict),
            esc(&h.verdict),
            esc(&h.reason)
        );
        match h.verdict.as_str() {
            "resolver" => out.push_str("<p class=\"muted\">Lookups below were made by this resolver: someone behind it looked up these names.</p>"),
            "proxy" => out.push_str("<p class=\"muted\">Traffic below was sent by this proxy: its clients asked for these names.</p>"),
            _ => {}
        }
        timeline(&mut out, h);
        if !h.learned.is_empty() {
            out.push_str("<p>Learned:</p><ul>");
            for f in &h.learned {
                let _ = write!(out, "<li>{}</li>", esc(&f.text));
            }
            out.push_str("</ul>");
        }
        out.push_str("<table class=\"evidence\"><thead><tr><th>source</th><th>name or peer</th><th>rule</th><th>family</th><th>product</th><th>install</th><th>confidence</th><th class=\"num\">count</th><th>first</th><th>last</th><th>input</th></tr></thead><tbody>");
        for e in &h.evidence {
            let _ = write!(
                out,
                "<tr><td>{}{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>",
                esc(&e.source),
                e.detail.as_deref().map_or_else(String::new, |d| format!(" ({})", esc(d))),
                esc(evidence_subject(e)),
                opt(&e.rule),
                opt(&e.family),
                opt(&e.product),
                if e.install { if e.direct { "yes" } else { "yes (indirect)" } } else { "no" },
                esc(&e.confidence),
                e.count,
                opt(&e.first),
                opt(&e.last),
                opt(&e.input),
            );
        }
        out.push_str("</tbody></table>");
        if h.evidence_dropped_by_cap > 0 {
            let _ = write!(
                out,
                "<p><strong>{} evidence entries were refused by the per-host cap</strong>; the counts above are a lower bound.</p>",
                h.evidence_dropped_by_cap
            );
        }
        out.push_str("</article>\n");
    });
    out.push_str("</section>\n");

    // What was not looked at.
    out.push_str("<section id=\"coverage\"><h2>What was not looked at</h2>");
    let mut losses: Vec<(String, u64)> = Vec::new();
    nonzero(&head.counters, "", &mut losses);
    losses.retain(|(p, _)| is_loss(p));
    let damaged: Vec<&str> = head
        .inputs
        .iter()
        .filter(|i| i.error.is_some())
        .map(|i| i.name.as_str())
        .collect();
    let _ = write!(
        out,
        "<p>{} of {} packets decoded; {} inputs damaged or cut short{}.</p>",
        counter(&head.counters, &["decoded"]),
        counter(&head.counters, &["packets"]),
        damaged.len(),
        if damaged.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                damaged
                    .iter()
                    .map(|d| esc(d))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    out.push_str("<table id=\"losses\"><thead><tr><th>skipped, refused, evicted or cut</th><th class=\"num\">count</th></tr></thead><tbody>");
    if losses.is_empty() && dropped == 0 {
        out.push_str("<tr><td>nothing: every packet was decoded or counted as not ours, and no cap was reached</td><td class=\"num\">0</td></tr>");
    }
    for (path, n) in &losses {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{n}</td></tr>",
            esc(path)
        );
    }
    if dropped > 0 {
        let _ = write!(out, "<tr><td class=\"mono\">hosts.evidence_dropped_by_cap</td><td class=\"num\">{dropped}</td></tr>");
    }
    if let Some(events) = &head.events {
        let suppressed = counter(events, &["suppressed_total"]);
        if suppressed > 0 {
            let _ = write!(out, "<tr><td class=\"mono\">event lines suppressed by the rate limits (every detection is still in this report)</td><td class=\"num\">{suppressed}</td></tr>");
        }
    }
    out.push_str("</tbody></table><h3>Caps in force</h3><p class=\"muted\">Each table, buffer and timeout is bounded; what reaches a bound is counted above.</p><table id=\"caps\"><thead><tr><th>cap</th><th class=\"num\">value</th></tr></thead><tbody>");
    for (k, v) in &head.caps {
        let _ = write!(
            out,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{v}</td></tr>",
            esc(k)
        );
    }
    out.push_str("</tbody></table></section>\n");
    let _ = write!(out, "<script>{SCRIPT}</script>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Install bars take their verdict's colour in the host table (unmanaged red, externally
    /// managed amber, managed green); every other bar is the neutral one.
    #[test]
    fn install_bars_are_coloured_by_verdict() {
        let items: Vec<(String, u64)> = [
            "unmanaged-install",
            "externally-managed-install",
            "managed-install",
            "ksc-server",
            "website-only",
        ]
        .iter()
        .map(|v| (v.to_string(), 3))
        .collect();
        let mut out = String::new();
        bar_chart(&mut out, "verdict", "verdict", &items);
        let classes: Vec<&str> = out
            .split("<rect class=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(
            classes,
            ["bar unmanaged", "bar external", "bar managed", "bar", "bar"]
        );
        for (class, verdict, colour) in [
            ("unmanaged", "unmanaged-install", "#a40e26"),
            ("external", "externally-managed-install", "#9a6700"),
            ("managed", "managed-install", "#1a7f37"),
        ] {
            assert!(STYLE.contains(&format!(".bar.{class} {{ fill: {colour}; }}")));
            assert!(STYLE.contains(&format!(".v-{verdict} {{ color: {colour};")));
        }
    }

    #[test]
    fn escapes_the_five_characters() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn reads_report_times_and_refuses_others() {
        assert_eq!(micros("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            micros("2026-12-06T10:50:23.179046Z"),
            Some(1_796_554_223_179_046)
        );
        for bad in [
            "",
            "2026-12-06",
            "20x6-12-06T10:50:23.1Z",
            "2026-12-06T10:50:2é.000000Z",
        ] {
            assert_eq!(micros(bad), None, "{bad}");
        }
    }

    /// A saved report with hostile strings renders them as text only, and the same model gives
    /// the same bytes.
    #[test]
    fn hostile_names_are_text_and_rendering_is_deterministic() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/staged-enterprise.pcap.report.json"),
        )
        .expect("golden");
        let mut doc = super::super::model::ReportDoc::from_json(text.as_bytes()).expect("report");
        let evil = "<script>alert('x')</script>\"><img src=http://example.invalid/x>";
        doc.hosts[0].evidence[0].name = Some(evil.to_string());
        doc.hosts[0].asset = Some(super::super::model::AssetDoc {
            label: evil.to_string(),
            role: None,
        });
        doc.head.inputs[0].name = evil.to_string();
        let a = render(&doc.head, &doc.hosts);
        let b = render(&doc.head, &doc.hosts);
        assert_eq!(a, b);
        assert!(!a.contains(evil));
        assert!(!a.contains("<img"));
        assert!(a.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;&lt;img"));
        // One script element: ours.
        assert_eq!(a.matches("<script>").count(), 1);
    }
}
