//! `replay --metrics-file`: the final metrics in Prometheus text format, written atomically,
//! with values that match the run (checked against the staged-network capture).

mod common;

use std::collections::BTreeMap;

use common::{pcaps_dir, run_replay};

/// `name{labels}` → value, from the text format.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn metrics_file_has_the_run_counts_and_sensor_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ksensor.prom");
    let path_arg = path.to_str().expect("utf-8 path");
    run_replay(
        &pcaps_dir().join("staged-network.pcap"),
        &[
            "--metrics-file",
            path_arg,
            "--sensor",
            "audit",
            "--report",
            "-",
        ],
    );
    let text = std::fs::read_to_string(&path).expect("metrics file written");
    let s = samples(&text);
    let get = |k: &str| {
        s.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no series {k} in\n{text}"))
    };
    assert_eq!(get("ksensor_packets_total{sensor=\"audit\"}"), 193.0);
    assert_eq!(
        get("ksensor_packets_decoded_total{sensor=\"audit\"}"),
        193.0
    );
    // The staged network's three unmanaged hosts: .22 (confirmed antivirus), .31 (likely,
    // shared infrastructure), .51 (likely, dnl-05 alone: the OEM pattern).
    for (certainty, product) in [
        ("confirmed", "antivirus"),
        ("likely", "kaspersky"),
        ("likely", "oem"),
    ] {
        assert_eq!(
            get(&format!(
                "ksensor_hosts{{certainty=\"{certainty}\",product=\"{product}\",verdict=\"unmanaged-install\",sensor=\"audit\"}}"
            )),
            1.0
        );
    }
    assert_eq!(
        get("ksensor_hosts{certainty=\"\",product=\"\",verdict=\"website-only\",sensor=\"audit\"}"),
        1.0
    );
    assert_eq!(
        get("ksensor_detections_total{category=\"update\",rule=\"update-dnl-geo\",sensor=\"audit\"}"),
        5.0
    );
    assert_eq!(
        get("ksensor_install_info{certainty=\"confirmed\",host=\"10.66.0.22\",product=\"antivirus\",verdict=\"unmanaged-install\",sensor=\"audit\"}"),
        1.0
    );
    assert_eq!(
        get("ksensor_rules_last_reload_success{sensor=\"audit\"}"),
        1.0
    );
    // No names and no client addresses in labels except the capped install series.
    for series in s.keys() {
        if !series.starts_with("ksensor_install_info") {
            assert!(!series.contains("10.66."), "{series}");
            assert!(!series.contains("kaspersky.com"), "{series}");
        }
    }
    // Only the final file is left behind (the temporary one was renamed).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ksensor.prom")]);
}

#[test]
fn metrics_file_passes_promtool_check_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("k.prom");
    run_replay(
        &pcaps_dir().join("tls-sni.pcap"),
        &[
            "--metrics-file",
            path.to_str().expect("utf-8"),
            "--report",
            "-",
        ],
    );
    let text = std::fs::read(&path).expect("written");
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("SKIPPED: promtool not found (Debian package `prometheus`); CI installs it");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let problems = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{problems}");
    assert_eq!(
        problems.trim(),
        "",
        "promtool check metrics reported problems"
    );
}

#[test]
fn a_metrics_file_in_a_missing_directory_is_refused_before_the_run() {
    let out = common::ksensor()
        .current_dir(common::repo_root())
        .args(["replay", "--quiet", "--report", "-", "--metrics-file"])
        .arg("/nonexistent-dir/k.prom")
        .arg(pcaps_dir().join("tls-sni.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent-dir/k.prom: no such directory"),
        "{err}"
    );
}

#[test]
fn an_output_failing_at_the_end_is_exit_4_and_the_report_still_written() {
    // /dev/full passes the start-up check (a writable file) and fails every write (ENOSPC).
    let out = common::ksensor()
        .current_dir(common::repo_root())
        .args([
            "replay",
            "--quiet",
            "--report",
            "-",
            "--report-md",
            "/dev/full",
        ])
        .arg(pcaps_dir().join("tls-sni.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"inputs\""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/dev/full: no space left on device"), "{err}");
}
