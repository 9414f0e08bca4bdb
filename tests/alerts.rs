//! The shipped Prometheus alert rules load and pass their unit tests
//! (`deploy/prometheus/ksensor.rules.test.yml`), with Prometheus's own `promtool`.

mod common;

use std::process::Command;

fn promtool() -> Option<Command> {
    match Command::new("promtool").arg("--version").output() {
        Ok(out) if out.status.success() => Some(Command::new("promtool")),
        _ => {
            eprintln!("SKIPPED: promtool not found (Debian package `prometheus`); CI installs it");
            None
        }
    }
}

fn run(mut cmd: Command) {
    let out = cmd
        .current_dir(common::repo_root().join("deploy/prometheus"))
        .output()
        .expect("running promtool");
    assert!(
        out.status.success(),
        "promtool failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_are_valid() {
    let Some(mut cmd) = promtool() else { return };
    cmd.args(["check", "rules", "ksensor.rules.yml"]);
    run(cmd);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let Some(mut cmd) = promtool() else { return };
    cmd.args(["test", "rules", "ksensor.rules.test.yml"]);
    run(cmd);
}

#[test]
fn every_alert_has_a_unit_test() {
    let root = common::repo_root().join("deploy/prometheus");
    let rules = std::fs::read_to_string(root.join("ksensor.rules.yml")).expect("rules");
    let tests = std::fs::read_to_string(root.join("ksensor.rules.test.yml")).expect("tests");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 9, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no test"
        );
    }
}
