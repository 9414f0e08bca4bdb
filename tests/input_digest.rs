//! What binds a replay's report to its inputs, checked with the standard tools an auditor has:
//! `sha256sum` and `b3sum` for a whole-input digest asked for with `--input-hash`, and
//! `head -c N | sha256sum` / `tail -c N | sha256sum` for the first and last MiB a default
//! report always carries, with the input's size, packet count and first/last time.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{ksensor, repo_root, run_replay};
use serde_json::Value;

/// The first word of a tool's output for `input` (a file, or `-` with `stdin` as input).
fn tool(cmd: &str, args: &[&str], stdin: Option<&[u8]>) -> Option<String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    if let Some(bytes) = stdin {
        child.stdin.take()?.write_all(bytes).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    assert!(out.status.success(), "{cmd} {args:?} failed");
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// `head -c n FILE | sha256sum` (or `tail`), with the real tools.
fn edge_sha256(which: &str, n: u64, path: &Path) -> String {
    let out = Command::new(which)
        .arg("-c")
        .arg(n.to_string())
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{which}: {e}"));
    tool("sha256sum", &[], Some(&out.stdout)).expect("sha256sum")
}

/// A classic pcap of more than 2 MiB: the bundled staged-enterprise capture's records written
/// eleven times after its header (a crafted file: its timestamps repeat, which ksensor
/// accepts), so that its first and last MiB differ from each other and from the whole.
fn large_capture(dir: &Path) -> std::path::PathBuf {
    let bytes = std::fs::read(repo_root().join("pcaps/staged-enterprise.pcap")).unwrap();
    let (header, records) = bytes.split_at(24);
    let mut big = header.to_vec();
    for _ in 0..11 {
        big.extend_from_slice(records);
    }
    assert!(big.len() > 3 << 20);
    let path = dir.join("large.pcap");
    std::fs::write(&path, &big).unwrap();
    path
}

fn only_input(report: &Value) -> &Value {
    let inputs = report["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 1);
    &inputs[0]
}

fn report(path: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--report", "-"];
    all.extend_from_slice(args);
    let out = run_replay(path, &all);
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

#[test]
fn a_default_report_binds_each_input_by_size_packets_times_and_its_first_and_last_mib() {
    let dir = tempfile::tempdir().unwrap();
    let path = large_capture(dir.path());
    let size = std::fs::metadata(&path).unwrap().len();
    let mut seen = Vec::new();
    // One worker reads the file as a stream, two walk it in segments.
    for workers in ["1", "2"] {
        let report = report(&path, &["--workers", workers]);
        let input = only_input(&report).clone();
        assert_eq!(input["file_bytes"], size, "{workers} workers");
        assert!(input["packets"].as_u64().unwrap() > 0);
        assert!(input["first_ts"].is_string() && input["last_ts"].is_string());
        assert_eq!(
            input["sha256"],
            Value::Null,
            "no whole-file hash unless asked"
        );
        assert_eq!(input["blake3"], Value::Null);
        assert_eq!(input["edge_bytes"], 1u64 << 20);
        let head = edge_sha256("head", 1 << 20, &path);
        let tail = edge_sha256("tail", 1 << 20, &path);
        assert_ne!(head, tail);
        assert_eq!(input["head_sha256"], head.as_str(), "{workers} workers");
        assert_eq!(input["tail_sha256"], tail.as_str(), "{workers} workers");
        seen.push(input);
    }
    assert_eq!(seen[0], seen[1], "the same binding for any worker count");
}

#[test]
fn a_whole_input_digest_asked_for_is_what_sha256sum_and_b3sum_say() {
    let dir = tempfile::tempdir().unwrap();
    let large = large_capture(dir.path());
    let small = repo_root().join("pcaps/dns-udp.pcap");
    let b3sum = tool("b3sum", &["--version"], None).is_some();
    if !b3sum {
        eprintln!("b3sum is not installed (Debian package b3sum): BLAKE3 digests not compared");
    }
    for path in [&large, &small] {
        let sha = tool("sha256sum", &[path.to_str().unwrap()], None).expect("sha256sum");
        for workers in ["1", "2"] {
            let input = only_input(&report(
                path,
                &["--workers", workers, "--input-hash", "sha256"],
            ))
            .clone();
            assert_eq!(input["sha256"], sha.as_str(), "{}", path.display());
            assert_eq!(input["blake3"], Value::Null);
            if b3sum {
                let b3 = tool("b3sum", &[path.to_str().unwrap()], None).unwrap();
                let input = only_input(&report(
                    path,
                    &["--workers", workers, "--input-hash", "blake3"],
                ))
                .clone();
                assert_eq!(input["blake3"], b3.as_str(), "{}", path.display());
            }
        }
    }
    // A capture of at most one MiB: both edges are the whole file's SHA-256, which the report
    // gives as its digest too, also beside a BLAKE3 digest.
    let sha = tool("sha256sum", &[small.to_str().unwrap()], None).unwrap();
    for args in [&[][..], &["--input-hash", "blake3"][..]] {
        let input = only_input(&report(&small, args)).clone();
        assert_eq!(input["head_sha256"], sha.as_str());
        assert_eq!(input["tail_sha256"], sha.as_str());
        assert_eq!(input["sha256"], sha.as_str());
    }
}

#[test]
fn standard_input_is_bound_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = large_capture(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let mut child = ksensor()
        .args([
            "replay",
            "--quiet",
            "--report",
            "-",
            "--input-hash",
            "sha256",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_stdin = only_input(&report).clone();
    let from_file = only_input(&report_of(&path)).clone();
    for key in [
        "sha256",
        "head_sha256",
        "tail_sha256",
        "edge_bytes",
        "file_bytes",
        "packets",
    ] {
        assert_eq!(from_stdin[key], from_file[key], "{key}");
    }
    assert_eq!(
        from_stdin["tail_sha256"],
        edge_sha256("tail", 1 << 20, &path).as_str()
    );
}

fn report_of(path: &Path) -> Value {
    report(path, &["--input-hash", "sha256"])
}

#[test]
fn no_input_hash_still_runs_with_a_deprecation_line_and_conflicts_with_input_hash() {
    let capture = Path::new("pcaps/dns-udp.pcap");
    let out = run_replay(capture, &["--report", "-", "--no-input-hash"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-input-hash is deprecated"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(only_input(&report)["head_sha256"].is_string());
    let both = ksensor()
        .current_dir(repo_root())
        .args([
            "replay",
            "--quiet",
            "--no-input-hash",
            "--input-hash",
            "sha256",
        ])
        .arg(capture)
        .output()
        .unwrap();
    assert!(!both.status.success());
    let bad = ksensor()
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--input-hash", "md5"])
        .arg(capture)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("sha256 or blake3"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
