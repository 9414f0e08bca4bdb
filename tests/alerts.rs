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
    assert_eq!(alerts.len(), 13, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no test"
        );
    }
}

/// The ksensor metric names in the alert expressions (`expr:` blocks).
fn names_in_expressions(rules: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut in_expr = false;
    for line in rules.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("expr:") {
            in_expr = rest.trim() == "|";
            collect_names(rest, &mut names);
            continue;
        }
        if in_expr && (t.starts_with("for:") || t.starts_with("- alert:") || t.is_empty()) {
            in_expr = false;
        }
        if in_expr {
            collect_names(t, &mut names);
        }
    }
    names
}

fn collect_names(text: &str, names: &mut std::collections::BTreeSet<String>) {
    let mut rest = text;
    while let Some(at) = rest.find("ksensor_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
}

/// Every ksensor metric an alert expression names is registered somewhere in the sensor's
/// code (as the string literal of its name), so that a renamed metric cannot leave an alert
/// watching nothing.
#[test]
fn every_metric_an_alert_names_is_registered() {
    let root = common::repo_root();
    let rules =
        std::fs::read_to_string(root.join("deploy/prometheus/ksensor.rules.yml")).expect("rules");
    let names = names_in_expressions(&rules);
    assert!(names.len() >= 10, "{names:?}");
    let mut code = String::new();
    let mut dirs = vec![root.join("sensor")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read sensor/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                code.push_str(&std::fs::read_to_string(&path).expect("read source"));
            }
        }
    }
    for name in &names {
        assert!(
            code.contains(&format!("\"{name}\"")),
            "an alert watches {name}, which no metric of the sensor is called"
        );
    }
}
