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
