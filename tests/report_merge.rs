//! `ksensor report merge`: reports of a capture's two halves, each replayed on its own, merge
//! into the report of the whole capture.
//!
//! The bundled staged enterprise capture is cut with editcap (tshark's) between two stages
//! (packet 354 starts a stage 2.6 s after the previous packet; no flow and no DNS answer spans
//! the cut, so no evidence rests on correlation across it). Each half and the whole are
//! replayed with the real binary and the site inventory, the halves' reports merged in both
//! orders. Checked:
//! * both orders give the same bytes;
//! * the merge's hosts equal, byte for byte, the hosts of one replay of both halves together
//!   (evidence names its input, so this is the run the merge stands for);
//! * against the whole capture's report: the same hosts with the same verdict, certainty,
//!   product, managers, reason, learned facts, first/last seen, and evidence counts per
//!   identity. What legitimately differs: `inputs` (two halves, not one file), each evidence
//!   entry's `input` (entries seen in both halves are two entries, one per input, whose counts
//!   add up to the whole's), the `merge` section, and counters that depend on where a file
//!   ends (none here: the cut is between flows).
//! * rule sets that differ are refused with one line unless `--allow-mixed-rules`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ksensor, repo_root};
use serde_json::Value;

const CUT: u32 = 354;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-v").output().is_ok()
}

fn replay(dir: &Path, out: &str, inputs: &[&Path]) -> PathBuf {
    let path = dir.join(out);
    let o = ksensor()
        .current_dir(dir)
        .args(["replay", "--quiet", "--workers", "1", "--inventory"])
        .arg(repo_root().join("pcaps/staged-enterprise-inventory.csv"))
        .arg("--report")
        .arg(&path)
        .args(inputs)
        .output()
        .expect("run ksensor");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    path
}

fn merge(dir: &Path, out: &str, files: &[&Path], extra: &[&str]) -> std::process::Output {
    ksensor()
        .current_dir(dir)
        .args(["report", "merge"])
        .args(files)
        .args(extra)
        .arg("--report")
        .arg(dir.join(out))
        .output()
        .expect("run ksensor")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// Per host: the decision and everything but evidence inputs; evidence as counts per identity.
fn comparable(report: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for h in report["hosts"].as_array().expect("hosts") {
        let mut h = h.clone();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for e in h["evidence"].as_array().expect("evidence") {
            let id = [
                "source", "detail", "origin", "rule", "name", "peer", "family", "install",
            ]
            .iter()
            .map(|k| e[*k].to_string())
            .collect::<Vec<_>>()
            .join(" ");
            *counts.entry(id).or_default() += e["count"].as_u64().expect("count");
        }
        h["evidence"] = serde_json::to_value(counts).expect("counts");
        out.insert(h["ip"].as_str().expect("ip").to_string(), h);
    }
    out
}

#[test]
fn halves_merge_into_the_whole_in_any_order() {
    if !have("editcap") {
        eprintln!("skipped: editcap (tshark) is not installed");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let whole = repo_root().join("pcaps/staged-enterprise.pcap");
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    for (out, range) in [
        (&a, format!("1-{}", CUT - 1)),
        (&b, format!("{CUT}-1000000")),
    ] {
        let o = Command::new("editcap")
            .arg("-r")
            .arg(&whole)
            .arg(out)
            .arg(range)
            .output()
            .expect("editcap");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let ra = replay(dir, "a.json", &[Path::new("a.pcap")]);
    let rb = replay(dir, "b.json", &[Path::new("b.pcap")]);
    let rab = replay(dir, "ab.json", &[Path::new("a.pcap"), Path::new("b.pcap")]);
    let rw = replay(dir, "whole.json", &[&whole]);

    let o = merge(dir, "m1.json", &[&ra, &rb], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = merge(dir, "m2.json", &[&rb, &ra], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m1 = std::fs::read(dir.join("m1.json")).expect("m1");
    assert_eq!(
        m1,
        std::fs::read(dir.join("m2.json")).expect("m2"),
        "order changed the bytes"
    );

    let merged = read(&dir.join("m1.json"));
    let (ab, whole_r) = (read(&rab), read(&rw));
    let halves = [read(&ra), read(&rb)];
    // Both halves hold hosts, and some hosts only in one: the cut is a real split.
    assert!(halves
        .iter()
        .all(|h| !h["hosts"].as_array().expect("hosts").is_empty()));
    assert_eq!(
        merged["hosts"], ab["hosts"],
        "merge differs from one run over both halves"
    );
    assert_eq!(merged["verdicts"], whole_r["verdicts"]);
    assert_eq!(merged["verdict_context"], whole_r["verdict_context"]);
    assert_eq!(comparable(&merged), comparable(&whole_r));
    assert_eq!(
        merged["counters"]["packets"],
        whole_r["counters"]["packets"]
    );
    assert_eq!(
        merged["counters"]["detections"],
        whole_r["counters"]["detections"]
    );
    assert_eq!(merged["time_range"], whole_r["time_range"]);
    let inputs: Vec<&str> = merged["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| i["name"].as_str().expect("name"))
        .collect();
    assert_eq!(inputs, ["a.pcap", "b.pcap"]);
    assert!(merged["merge"]["note"]
        .as_str()
        .expect("note")
        .contains("Cross-file correlation is not recomputed"));

    // The same capture in two reports would be counted twice.
    let o = merge(dir, "twice.json", &[&ra, &ra], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("would count its evidence twice"), "{err}");

    // Other rule sets: refused with one line, accepted with --allow-mixed-rules.
    let rules = dir.join("rules");
    std::fs::create_dir(&rules).expect("mkdir");
    for f in ["kaspersky.toml", "kaspersky-networks.toml"] {
        let mut text = std::fs::read_to_string(repo_root().join("rules").join(f)).expect("rules");
        if f == "kaspersky.toml" {
            text.push_str("\n# a local change: another rule-set hash\n");
        }
        std::fs::write(rules.join(f), text).expect("write rules");
    }
    let rc = dir.join("c.json");
    let o = ksensor()
        .current_dir(dir)
        .args(["replay", "--quiet", "--workers", "1", "--rules"])
        .arg(&rules)
        .arg("--report")
        .arg(&rc)
        .arg("b.pcap")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // a.json (bundled rules) with c.json (the local rules).
    let o = merge(dir, "mixed.json", &[&ra, &rc], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("different rule sets"), "{err}");
    assert!(!dir.join("mixed.json").exists());
    let o = merge(dir, "mixed.json", &[&ra, &rc], &["--allow-mixed-rules"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mixed = read(&dir.join("mixed.json"));
    assert_eq!(
        mixed["merge"]["rule_sets"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn files_that_are_not_reports_are_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let cases = [
        ("garbage.json", "this is not json", "not JSON"),
        (
            "other.json",
            r#"{"hello": "world"}"#,
            "not a ksensor JSON report",
        ),
        (
            "old.json",
            r#"{"sensor": {"name": "ksensor", "version": "0.0.1"}, "hosts": []}"#,
            "without a report schema version",
        ),
        (
            "future.json",
            r#"{"sensor": {"name": "ksensor", "report_schema": 7}, "hosts": []}"#,
            "report schema 7",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        for sub in [&["report", "merge"][..], &["report", "render"][..]] {
            let o = ksensor()
                .args(sub)
                .arg(&path)
                .arg("--report-html")
                .arg(dir.join("out.html"))
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name}: {err}");
            assert_eq!(err.lines().count(), 1, "{name}: {err}");
            assert!(err.contains(want), "{name}: {err}");
        }
    }
    assert!(!dir.join("out.html").exists());
}

/// `report render` writes a saved report again: its JSON byte for byte, and the other formats.
#[test]
fn render_writes_a_saved_report_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let golden = repo_root().join("tests/golden/staged-network.pcap.report.json");
    let o = ksensor()
        .args(["report", "render"])
        .arg(&golden)
        .arg("--report")
        .arg(dir.join("r.json"))
        .arg("--report-md")
        .arg(dir.join("r.md"))
        .arg("--report-csv")
        .arg(dir.join("r.csv"))
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(dir.join("r.json")).expect("json"),
        std::fs::read(&golden).expect("golden")
    );
    let report = read(&golden);
    let csv = std::fs::read_to_string(dir.join("r.csv")).expect("csv");
    let md = std::fs::read_to_string(dir.join("r.md")).expect("md");
    let hosts = report["hosts"].as_array().expect("hosts");
    assert_eq!(csv.lines().count(), hosts.len() + 1);
    for h in hosts {
        let ip = h["ip"].as_str().expect("ip");
        assert!(
            csv.lines().any(|l| l.starts_with(&format!("{ip},"))),
            "{ip}"
        );
        assert!(md.contains(&format!("### {ip} — ")), "{ip}");
    }
}
