//! The Grafana dashboard `deploy/grafana/ksensor.json`, without Grafana: its JSON model is
//! importable (schema version, a Prometheus data-source variable that every panel uses, the
//! `sensor` and `instance` variables, a layout inside Grafana's 24-column grid with no overlap),
//! every query filters by both variables, and every metric it names is one the sensor exports
//! (from a real `Metrics` registry with an interface and the bundled rules, and a replay's
//! `--metrics-file`). That each query
//! returns the series its panel shows, from a real Prometheus scraping a live sensor, is
//! checked in `tests/live.rs` (`live_capture_feeds_prometheus_and_stops_cleanly`).

mod common;

use std::collections::BTreeSet;

use common::{dashboard, dashboard_panels, dashboard_targets};
use ksensor::metrics::Metrics;
use ksensor::rules::RuleSet;

/// Grafana 12's dashboard schema version; Grafana 11 and later import it.
const SCHEMA_VERSION: u64 = 41;

/// What the dashboard must show: installs over time (unmanaged and externally managed), by
/// certainty and product, new hosts, detections by rule and category, packets and drops per
/// interface, flows and caps, reassembly memory against its budget, suppressed event lines,
/// rule reload status.
const REQUIRED_PANELS: [&str; 11] = [
    "Unmanaged and externally managed installs now",
    "Unmanaged and externally managed installs over time",
    "Installs by certainty and product (now)",
    "New hosts (first seen in the selected range)",
    "Detections by rule and category (selected range)",
    "Packets per interface",
    "Drops per interface",
    "Caps hit and outputs failed",
    "Reassembly memory vs budget",
    "Event lines written and suppressed",
    "Rule reload status",
];

#[test]
fn dashboard_model_is_importable() {
    let d = dashboard();
    assert_eq!(d["schemaVersion"].as_u64(), Some(SCHEMA_VERSION));
    assert_eq!(d["uid"], "ksensor-overview");
    assert!(
        d["id"].is_null(),
        "an exported dashboard has no database id"
    );
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for (name, definition) in [
        ("sensor", "label_values(ksensor_build_info, sensor)"),
        (
            "instance",
            "label_values(ksensor_build_info{sensor=~\"$sensor\"}, instance)",
        ),
    ] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["definition"], definition, "{name}");
        assert_eq!(v["query"]["query"], definition, "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        // "All" must match every value, and a sensor without `--sensor` (no label) too.
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(v["multi"], true, "{name}");
        assert_eq!(v["allValue"], ".*", "{name}");
    }

    let panels = dashboard_panels(&d);
    let mut ids = BTreeSet::new();
    let mut cells: Vec<(String, u64, u64, u64, u64)> = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().expect("x"),
            g["y"].as_u64().expect("y"),
            g["w"].as_u64().expect("w"),
            g["h"].as_u64().expect("h"),
        );
        let title = p["title"].as_str().unwrap_or_default().to_string();
        assert!(x + w <= 24 && w > 0 && h > 0, "{title}: outside the grid");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "{title}: id reused"
        );
        for (other, ox, oy, ow, oh) in &cells {
            let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        cells.push((title, x, y, w, h));
    }
    for p in &panels {
        let title = p["title"].as_str().unwrap_or_default();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
    // Grafana's import dialog lists the plugins a dashboard needs from `__requires`.
    let required: BTreeSet<&str> = d["__requires"]
        .as_array()
        .expect("__requires")
        .iter()
        .filter(|r| r["type"] == "panel")
        .filter_map(|r| r["id"].as_str())
        .collect();
    for p in &panels {
        let kind = p["type"].as_str().unwrap_or_default();
        assert!(
            required.contains(kind),
            "{}: panel type {kind} not in __requires",
            p["title"]
        );
    }
    for needed in REQUIRED_PANELS {
        assert!(
            panels.iter().any(|p| p["title"] == needed),
            "no panel {needed:?}"
        );
    }
}

/// `ksensor_…` metric names in a PromQL expression, each with the text of its `{…}` matchers
/// (empty when it has none).
fn selectors(expr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("ksensor_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let after = &tail[end..];
        let matchers = if after.starts_with('{') {
            after[1..after.find('}').unwrap_or(after.len())].to_string()
        } else {
            String::new()
        };
        out.push((name, matchers));
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_query_filters_by_sensor_and_instance_and_names_real_metrics() {
    let mut m = Metrics::new(Some("t")).expect("registry");
    m.add_interface("eth1");
    m.set_interface_up("eth1", true);
    let rules = RuleSet::load(&[RuleSet::bundled_dir()]).expect("bundled rules");
    m.rules_loaded(&rules, std::time::SystemTime::now());
    // Families without a series are not rendered: the per-host and per-reload ones come from
    // a replay of the staged network, the capture ones from the registry above.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("m.prom");
    common::run_replay(
        &common::pcaps_dir().join("staged-network.pcap"),
        &[
            "--metrics-file",
            file.to_str().expect("utf-8"),
            "--report",
            "-",
        ],
    );
    let replayed = std::fs::read_to_string(&file).expect("metrics file");
    let text = m.render() + &replayed;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let targets = dashboard_targets(&dashboard());
    assert!(targets.len() >= 20, "{} queries", targets.len());
    for t in &targets {
        let found = selectors(&t.expr);
        assert!(
            !found.is_empty(),
            "{} {}: no ksensor metric",
            t.panel,
            t.ref_id
        );
        for (name, matchers) in found {
            assert!(
                exported.contains(name.as_str()),
                "{} {}: {name} is not a ksensor metric",
                t.panel,
                t.ref_id
            );
            for wanted in ["sensor=~\"$sensor\"", "instance=~\"$instance\""] {
                assert!(
                    matchers.contains(wanted),
                    "{} {}: {name}{{{matchers}}} does not filter by {wanted}",
                    t.panel,
                    t.ref_id
                );
            }
        }
    }
}
