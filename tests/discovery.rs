//! Install discovery on the staged network capture (`pcaps/staged-network.pcap`, see
//! `pcaps/README.md`): every host's verdict, the evidence and the learned facts behind it, and
//! reports that are byte-identical across runs and worker counts.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{ksensor, pcaps_dir, replay_report, repo_root};

const CAPTURE: &str = "staged-network.pcap";
const INVENTORY: &str = "pcaps/staged-network-inventory.csv";

fn hosts(report: &Value) -> BTreeMap<String, Value> {
    report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no hosts"))
        .iter()
        .map(|h| (h["ip"].as_str().unwrap_or_default().to_string(), h.clone()))
        .collect()
}

fn verdicts(report: &Value) -> BTreeMap<String, String> {
    hosts(report)
        .into_iter()
        .map(|(ip, h)| (ip, h["verdict"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The sentences of a host's learned facts.
fn learned(host: &Value) -> Vec<String> {
    host["learned"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v["text"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn evidence_kinds(host: &Value) -> Vec<(String, String)> {
    host["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["source"].as_str().unwrap_or_default().to_string(),
                        e["name"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn expected_verdicts() -> BTreeMap<String, String> {
    expected_decisions()
        .into_iter()
        .map(|(ip, (verdict, ..))| (ip, verdict))
        .collect()
}

/// Verdict, certainty, product and `managed_by` of every host of the staged network (the same
/// with and without its inventory). Reviewed against `pcaps/README.md`:
/// - .21 (managed): a TLS session to the KSC on 13000 with data both ways, and KLZF on a
///   signature path from the internal mirror: two families (management, update), antivirus.
/// - .22 (unmanaged): ds, dc1.ksn, dnl-01 by name and a KLZF file from dnl-01 by name (an update
///   file from a Kaspersky name: confirmed); the file and signature path make it antivirus.
/// - .31: one high-confidence lookup of an update name shared by every Kaspersky product.
/// - .51: a lookup of dnl-05, which Kaspersky's antivirus and Check Point's engine both use,
///   with nothing shared beside it (the OEM pattern), plus its nameless connections to the
///   address it was given (correlation adds no family).
fn expected_decisions() -> BTreeMap<String, (String, String, String, String)> {
    [
        ("10.66.0.10", "ksc-server", "", "", ""),
        ("10.66.0.11", "update-mirror", "", "", ""),
        (
            "10.66.0.21",
            "managed-install",
            "confirmed",
            "antivirus",
            "10.66.0.10 10.66.0.11",
        ),
        (
            "10.66.0.22",
            "unmanaged-install",
            "confirmed",
            "antivirus",
            "",
        ),
        ("10.66.0.31", "unmanaged-install", "likely", "kaspersky", ""),
        ("10.66.0.41", "website-only", "", "", ""),
        ("10.66.0.51", "unmanaged-install", "likely", "oem", ""),
        ("10.66.0.53", "resolver", "", "", ""),
    ]
    .into_iter()
    .map(|(ip, v, c, p, m)| {
        (
            ip.to_string(),
            (v.to_string(), c.to_string(), p.to_string(), m.to_string()),
        )
    })
    .collect()
}

/// (verdict, certainty, product, managed_by) per host, as in the JSON report.
fn decisions(report: &Value) -> BTreeMap<String, (String, String, String, String)> {
    hosts(report)
        .into_iter()
        .map(|(ip, h)| {
            let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            let managed_by: Vec<String> = h["managed_by"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["address"].as_str().map(String::from))
                .collect();
            (
                ip,
                (
                    text("verdict"),
                    text("certainty"),
                    text("product"),
                    managed_by.join(" "),
                ),
            )
        })
        .collect()
}

#[test]
fn verdicts_with_the_inventory() {
    let report = replay_report(
        &pcaps_dir().join(CAPTURE),
        &["--inventory", INVENTORY, "--workers", "1"],
    );
    assert_eq!(verdicts(&report), expected_verdicts());
    assert_eq!(decisions(&report), expected_decisions());
    let hosts = hosts(&report);
    assert_eq!(hosts["10.66.0.10"]["asset"]["label"], "ksc");
    assert_eq!(hosts["10.66.0.21"]["asset"]["role"], "endpoint");
}

#[test]
fn verdicts_learned_from_traffic_alone() {
    // Without an inventory, the KSC server, the mirror, the managed agent and the resolver are
    // all recognised from what they do on the wire.
    let report = replay_report(&pcaps_dir().join(CAPTURE), &["--workers", "1"]);
    assert_eq!(verdicts(&report), expected_verdicts());
    assert_eq!(decisions(&report), expected_decisions());
    let hosts = hosts(&report);
    let ksc = learned(&hosts["10.66.0.10"]);
    assert!(
        ksc.iter()
            .any(|f| f.contains("sessions (port 13000) from 10.66.0.21")),
        "{ksc:?}"
    );
    let mirror = learned(&hosts["10.66.0.11"]);
    assert!(
        mirror
            .iter()
            .any(|f| f.contains("(KLZF) on an update path over HTTP to 10.66.0.21")),
        "{mirror:?}"
    );
    let managed = learned(&hosts["10.66.0.21"]);
    assert!(
        managed
            .iter()
            .any(|f| f.contains("agent sessions with 10.66.0.10 on port 13000")),
        "{managed:?}"
    );
    assert!(
        managed
            .iter()
            .any(|f| f.contains("update paths or files from 10.66.0.11")),
        "{managed:?}"
    );
    let resolver = learned(&hosts["10.66.0.53"]);
    assert!(
        resolver
            .iter()
            .any(|f| f.contains("forwarded 10.66.0.31's Kaspersky lookup")),
        "{resolver:?}"
    );
}

#[test]
fn evidence_behind_each_verdict() {
    let report = replay_report(
        &pcaps_dir().join(CAPTURE),
        &["--inventory", INVENTORY, "--workers", "1"],
    );
    let hosts = hosts(&report);

    // The unmanaged host: its own lookups, TLS server names, an HTTP update with KLZF magic,
    // and a lookup sent straight to a public resolver.
    let unmanaged = evidence_kinds(&hosts["10.66.0.22"]);
    for want in [
        ("dns-query", "ds.kaspersky.com"),
        ("tls-sni", "ds.kaspersky.com"),
        ("tls-sni", "dc1.ksn.kaspersky-labs.com"),
        ("http-host", "dnl-01.geo.kaspersky.com"),
        ("update-payload", "dnl-01.geo.kaspersky.com"),
        ("dns-query", "activation-v2.kaspersky.com"),
    ] {
        assert!(
            unmanaged.contains(&(want.0.to_string(), want.1.to_string())),
            "missing {want:?} in {unmanaged:?}"
        );
    }
    let facts = learned(&hosts["10.66.0.22"]);
    assert!(
        facts.iter().any(|f| f.contains("public resolver 8.8.8.8")),
        "{facts:?}"
    );

    // The nameless connections to the address answered for dnl-05 count, with lower confidence
    // and the reason they had no name.
    let nosni: Vec<&Value> = hosts["10.66.0.51"]["evidence"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let correlated: Vec<&&Value> = nosni.iter().filter(|e| e["kind"] == "correlated").collect();
    assert_eq!(correlated.len(), 2, "{nosni:?}");
    for e in &correlated {
        assert_eq!(e["name"], "dnl-05.geo.kaspersky.com");
        assert_eq!(e["confidence"], "medium");
        assert_eq!(e["peer"], "10.99.0.105");
    }
    let details: Vec<&str> = correlated
        .iter()
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(details, ["tls-without-sni", "no-tls-or-http"]);

    // The browser only visited the website: low-confidence names only.
    for e in hosts["10.66.0.41"]["evidence"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(e["confidence"], "low", "{e}");
    }
    // The resolver's lookups are listed on the resolver, and client1's own query on client1.
    assert!(evidence_kinds(&hosts["10.66.0.31"])
        .contains(&("dns-query".into(), "s01.upd.kaspersky.com".into())));
    assert!(evidence_kinds(&hosts["10.66.0.53"])
        .contains(&("dns-query".into(), "s01.upd.kaspersky.com".into())));
    // Every evidence entry names its capture file and carries first/last times.
    for host in hosts.values() {
        for e in host["evidence"].as_array().into_iter().flatten() {
            assert_eq!(e["input"], "pcaps/staged-network.pcap");
            assert!(e["first"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
        }
    }
}

fn run_to_files(dir: &std::path::Path, workers: &str) -> (String, String, String) {
    let (json, md, csv) = (dir.join("r.json"), dir.join("r.md"), dir.join("r.csv"));
    let out = ksensor()
        .current_dir(repo_root())
        .args([
            "replay",
            "--quiet",
            "--inventory",
            INVENTORY,
            "--workers",
            workers,
        ])
        .arg("--report")
        .arg(&json)
        .arg("--report-md")
        .arg(&md)
        .arg("--report-csv")
        .arg(&csv)
        .arg(pcaps_dir().join(CAPTURE))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    (read(&json), read(&md), read(&csv))
}

#[test]
fn reports_are_byte_identical_across_runs_and_worker_counts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = run_to_files(dir.path(), "1");
    for workers in ["1", "2", "3", "8"] {
        assert!(
            first == run_to_files(dir.path(), workers),
            "reports differ with --workers {workers}"
        );
    }
    let (json, md, csv) = first;
    assert!(json.contains("\"sha256\""));
    assert!(md.starts_with("# ksensor audit report"));
    assert!(
        md.contains("| **unmanaged-install** | confirmed | antivirus | 10.66.0.22 |"),
        "{md}"
    );
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("ip,verdict,certainty,product,managed_by,asset,role,first_seen,last_seen,macs,vlans,rules,categories,strongest_confidence,reason"));
    assert_eq!(lines.count(), 8);
}
