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

/// A named pipe holding the bytes of a small capture, kept open for reading and writing by the
/// test: a run given it as input that reads even one byte leaves fewer than were written.
struct TrackedInput {
    path: std::path::PathBuf,
    pipe: std::fs::File,
    len: usize,
}

impl TrackedInput {
    fn new(dir: &std::path::Path) -> TrackedInput {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("input-{n}.pcap"));
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap_or_else(|e| panic!("mkfifo: {e}"));
        assert!(made.success());
        // Read and write: opening a FIFO so never blocks (fifo(7)), and keeps a writer there.
        let mut pipe = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{e}"));
        let capture =
            std::fs::read(repo_root().join("pcaps/dns-udp.pcap")).unwrap_or_else(|e| panic!("{e}"));
        pipe.write_all(&capture).unwrap_or_else(|e| panic!("{e}"));
        TrackedInput {
            path,
            pipe,
            len: capture.len(),
        }
    }

    /// Whether every byte is still in the pipe (read back, with a timeout for a pipe that
    /// lost some).
    fn untouched(self) -> bool {
        let TrackedInput { mut pipe, len, .. } = self;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut back = vec![0u8; len];
            let _ = tx.send(std::io::Read::read_exact(&mut pipe, &mut back).is_ok());
        });
        rx.recv_timeout(std::time::Duration::from_secs(2))
            .unwrap_or(false)
    }
}

/// A path where this process cannot create a file: a read-only directory for a normal user;
/// for root, which ignores permission bits, a directory of sysfs (`/sys` refuses new files).
fn unwritable(dir: &std::path::Path) -> (std::path::PathBuf, &'static str) {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        return (
            std::path::PathBuf::from("/sys/ksensor-out"),
            "cannot create files in /sys",
        );
    }
    let ro = dir.join("read-only");
    std::fs::create_dir(&ro).unwrap_or_else(|e| panic!("{e}"));
    let mut perms = std::fs::metadata(&ro)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(&ro, perms).unwrap_or_else(|e| panic!("{e}"));
    (ro.join("out"), "permission denied")
}

#[test]
fn every_output_path_is_checked_before_a_byte_is_read() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (no_permission, no_permission_words) = unwritable(dir.path());
    let problems: [(std::path::PathBuf, &str); 3] = [
        (dir.path().join("no-such-dir/out"), "no such directory"),
        (dir.path().to_path_buf(), "is a directory"),
        (no_permission, no_permission_words),
    ];
    for flag in [
        "--events",
        "--report",
        "--report-md",
        "--report-csv",
        "--metrics-file",
    ] {
        for (path, words) in &problems {
            let input = TrackedInput::new(dir.path());
            let what = format!("{flag} {}", path.display());
            let mut child = ksensor()
                .args(["replay", "--quiet", flag])
                .arg(path)
                .arg(&input.path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"));
            // A run that starts reading waits for the pipe's end, which never comes.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{what}: the run started reading its input instead of refusing");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{what}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
            assert!(err.contains(&path.display().to_string()), "{what}: {err}");
            assert!(err.contains(words), "{what}: {words:?} missing from {err}");
            assert!(!err.contains("os error"), "{what}: {err}");
            assert!(out.stdout.is_empty(), "{what}");
            assert!(input.untouched(), "{what}: the input was read");
        }
    }
}

#[test]
fn two_outputs_naming_one_file_are_refused() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let same = dir.path().join("out.txt");
    let out = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--report-md"])
        .arg(&same)
        .arg("--report-csv")
        .arg(&same)
        .arg("pcaps/tls-sni.pcap")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--report-md and --report-csv both name"),
        "{err}"
    );
    assert!(!same.exists());
}

#[test]
fn counts_and_sizes_out_of_range_are_one_line() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["replay", "--workers", "100000", "x.pcap"],
            "--workers must be 1..=64",
        ),
        (&["replay", "--workers", "0", "x.pcap"], "--workers"),
        (&["replay", "--max-flows", "0", "x.pcap"], "--max-flows"),
        (
            &["replay", "--max-flows", "1000000000000", "x.pcap"],
            "--max-flows must be",
        ),
        (
            &["replay", "--reassembly-memory", "64", "x.pcap"],
            "--reassembly-memory must be",
        ),
        (&["replay", "--sensor", "a\u{7}b", "x.pcap"], "--sensor"),
        (
            &["live", "-i", "lo", "--listen", "off", "--workers", "100000"],
            "--workers must be 1..=64",
        ),
        (
            &["live", "-i", "lo", "--listen", "off", "--fanout", "100000"],
            "--fanout must be",
        ),
        (
            &[
                "live",
                "-i",
                "lo",
                "--listen",
                "off",
                "--reassembly-memory",
                "1",
            ],
            "--reassembly-memory must be",
        ),
    ];
    for (args, words) in cases {
        let out = ksensor()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.contains(words),
            "{args:?}: {words:?} missing from {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn missing_files_are_named_in_words() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = dir.path().join("absent");
    let m = missing.to_str().unwrap_or_else(|| panic!("utf-8"));
    let cases: [&[&str]; 5] = [
        &["replay", "--quiet", "--rules", m, "pcaps/tls-sni.pcap"],
        &["replay", "--quiet", "--inventory", m, "pcaps/tls-sni.pcap"],
        &["live", "--config", m],
        &["live", "-i", "lo", "--listen", "off", "--web-config", m],
        &["live", "-i", "lo", "--listen", "off", "--inventory", m],
    ];
    for args in cases {
        let out = ksensor()
            .current_dir(repo_root())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(m), "{args:?}: {err}");
        assert!(err.contains("no such file or directory"), "{args:?}: {err}");
        assert!(
            !err.contains("os error") && !err.contains("entity"),
            "{args:?}: {err}"
        );
    }
}
