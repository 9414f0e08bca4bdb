//! Helpers shared by the integration tests: run the real `ksensor` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn ksensor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ksensor"))
}

/// `pcaps/`, relative to the repository root (tests run ksensor from there, so that reports
/// name inputs the same way on every machine).
pub fn pcaps_dir() -> PathBuf {
    PathBuf::from("pcaps")
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ksensor replay` with `args` and the capture; panics with stderr on a non-zero exit.
pub fn run_replay(capture: &Path, args: &[&str]) -> Output {
    let out = ksensor()
        .current_dir(repo_root())
        .arg("replay")
        .arg("--quiet")
        .args(args)
        .arg(capture)
        .output()
        .unwrap_or_else(|e| panic!("running ksensor: {e}"));
    assert!(
        out.status.success(),
        "ksensor replay {} failed ({:?}): {}",
        capture.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Events (JSON lines on stdout) of a replay.
pub fn replay_events(capture: &Path, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--events", "-"];
    all.extend_from_slice(args);
    let out = run_replay(capture, &all);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

/// The JSON report of a replay.
pub fn replay_report(capture: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--report", "-"];
    all.extend_from_slice(args);
    let out = run_replay(capture, &all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad report: {e}"))
}

/// One query of the Grafana dashboard `deploy/grafana/ksensor.json`.
pub struct DashboardTarget {
    pub panel: String,
    pub ref_id: String,
    pub expr: String,
    pub legend: Option<String>,
    pub instant: bool,
}

/// The dashboard's JSON model.
pub fn dashboard() -> Value {
    let path = repo_root().join("deploy/grafana/ksensor.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every panel that is not a row, including those inside collapsed rows.
pub fn dashboard_panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten().cloned());
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Every PromQL query of the dashboard's panels.
pub fn dashboard_targets(dashboard: &Value) -> Vec<DashboardTarget> {
    let mut out = Vec::new();
    for p in dashboard_panels(dashboard) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(DashboardTarget {
                panel: p["title"].as_str().unwrap_or_default().to_string(),
                ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                legend: t["legendFormat"].as_str().map(str::to_string),
                instant: t["instant"] == true,
            });
        }
    }
    out
}

/// The `{{label}}` names a legend format uses.
pub fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}
