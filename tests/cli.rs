//! The command line as a user meets it: standard input, rule checking, bad flags and files,
//! exit codes (README "Exit codes").

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{ksensor, pcaps_dir, repo_root};

#[test]
fn replay_reads_standard_input() {
    let capture = std::fs::read(repo_root().join(pcaps_dir()).join("tls-sni.pcap"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut child = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--events", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    stdin.write_all(&capture).unwrap_or_else(|e| panic!("{e}"));
    drop(stdin);
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let from_stdin = String::from_utf8_lossy(&out.stdout)
        .replace("\"input\":\"-\"", "\"input\":\"pcaps/tls-sni.pcap\"");
    let golden =
        std::fs::read_to_string(repo_root().join("tests/golden/tls-sni.pcap.events.jsonl"))
            .unwrap_or_default();
    assert_eq!(from_stdin, golden);
}

#[test]
fn summary_table_without_outputs() {
    let out = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "pcaps/staged-network.pcap"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // Columns: verdict, certainty, product, host, count, rules.
    let row = |host: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
            .find(|f| f.get(3).is_some_and(|h| h == host))
            .unwrap_or_default()
    };
    assert_eq!(
        row("10.66.0.22")[..3],
        ["unmanaged-install", "confirmed", "antivirus"],
        "{text}"
    );
    assert_eq!(row("10.66.0.41")[..3], ["website-only", "-", "-"], "{text}");
}

#[test]
fn rules_check_accepts_the_bundled_rules_and_names_a_broken_line() {
    let ok = ksensor()
        .current_dir(repo_root())
        .args(["rules", "check", "rules/kaspersky.toml"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: "));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nid = \"x\"\nmatch = [\"suffix:example.com\"]\ncategory = \"update\"\nconfidence = \"hgh\"\nproduct = \"kaspersky\"\nsource = \"test\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = ksensor()
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:5:"), "{err}");
    assert!(err.contains("hgh"), "{err}");

    // The same broken file given to replay stops before reading anything.
    let out = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--rules"])
        .arg(&bad)
        .arg("pcaps/tls-sni.pcap")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn custom_rules_replace_the_bundled_ones() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules = dir.path().join("only-example.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"example\"\nmatch = [\"exact:example.org\"]\ncategory = \"website\"\nconfidence = \"low\"\nproduct = \"none\"\nsource = \"test\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--events", "-", "--rules"])
        .arg(&rules)
        .arg("pcaps/tls-sni.pcap")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("\"name\":\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(names, ["example.org"]);
}

#[test]
fn a_missing_input_is_reported_and_the_others_still_count() {
    let out = ksensor()
        .current_dir(repo_root())
        .args([
            "replay",
            "--quiet",
            "--report",
            "-",
            "pcaps/no-such-file.pcap",
            "pcaps/tls-sni.pcap",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pcaps/no-such-file.pcap"), "{err}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(report["inputs"][0]["error"].is_string());
    assert_eq!(report["inputs"][1]["error"], serde_json::Value::Null);
    assert_eq!(report["counters"]["detections"], 4);
}

#[test]
fn bad_flags_are_usage_errors() {
    let out = ksensor()
        .args(["replay", "--no-such-flag", "x.pcap"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let out = ksensor()
        .args(["replay", "--workers", "0", "x.pcap"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
    let out = ksensor()
        .current_dir(repo_root())
        .args([
            "replay",
            "--events",
            "/nonexistent-dir/events.jsonl",
            "pcaps/tls-sni.pcap",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent-dir/events.jsonl"));
}
