//! Stopping `ksensor live` twice: a second SIGTERM during the drain ends the process at once
//! (status 1), and the events file still holds only whole JSON lines.
//!
//! As root (CI runs as root; elsewhere the test says SKIPPED): `ksensor live` captures on the
//! loopback of a network namespace the test creates, while this test binary, re-run inside the
//! namespace (`dns_blast_helper`), sends DNS queries for a Kaspersky name to 127.0.0.1:53 as
//! fast as it can, so that event lines are being written when the signals come. Bounded in
//! time; the namespace and processes are removed by a guard's `Drop`, even on failure.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BLAST_ENV: &str = "KSENSOR_TEST_DNS_BLAST_MS";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A DNS query (RFC 1035 §4.1) for ds.kaspersky.com, type A.
fn query(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["ds", "kaspersky", "com"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

/// Not a test of its own: re-run inside the namespace to send queries for the milliseconds in
/// `KSENSOR_TEST_DNS_BLAST_MS`. Without the variable it does nothing.
#[test]
fn dns_blast_helper() {
    let Some(ms) = std::env::var(BLAST_ENV).ok().and_then(|v| v.parse().ok()) else {
        return;
    };
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let end = Instant::now() + Duration::from_millis(ms);
    let mut id = 0u16;
    while Instant::now() < end {
        for _ in 0..256 {
            // Nothing listens on port 53: the ICMP errors that come back are of no interest.
            let _ = socket.send_to(&query(id), "127.0.0.1:53");
            id = id.wrapping_add(1);
        }
    }
}

/// The namespace and processes of the test, removed on drop.
struct Lab {
    ns: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_second_sigterm_during_the_drain_leaves_whole_lines() {
    if !is_root() {
        eprintln!("SKIPPED: needs root for a network namespace (CI runs as root)");
        return;
    }
    let mut lab = Lab {
        ns: format!("kss-stop-{}", std::process::id()),
        children: Vec::new(),
        dir: tempfile::tempdir().expect("tempdir"),
    };
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    run(&["netns", "add", &lab.ns]);
    run(&["-n", &lab.ns, "link", "set", "lo", "up"]);

    let events = lab.path("events.jsonl");
    let err = std::fs::File::create(lab.path("sensor.err")).expect("log");
    let sensor = Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .arg(env!("CARGO_BIN_EXE_ksensor"))
        .args(["live", "-i", "lo", "--listen", "off", "--workers", "2"])
        .args(["--bpf", "udp dst port 53", "--event-rate", "0"])
        .args(["--event-rate-global", "0", "--events"])
        .arg(&events)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("spawn ksensor");
    // `ip netns exec` execs the command: the child's pid is ksensor's.
    let pid = sensor.id().to_string();
    lab.children.push(sensor);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(lab.path("sensor.err"))
        .unwrap_or_default()
        .contains("capture started")
    {
        assert!(Instant::now() < deadline, "ksensor did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let blaster = Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .arg(std::env::current_exe().expect("test binary"))
        .args(["--exact", "dns_blast_helper", "--test-threads", "1"])
        .env(BLAST_ENV, "4000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the DNS blaster");
    lab.children.push(blaster);
    // Let events flow, then stop twice: the second signal lands while the first one's drain
    // reads what the kernel still holds (at least the capture timeout, 100 ms).
    let grown = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&events).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(Instant::now() < grown, "no events written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let kill = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
    };
    kill("-TERM");
    // The second signal goes once the first one's drain has begun (its log line is out), not
    // after a fixed sleep: on a loaded machine two signals sent before the first is handled
    // are one pending signal (signal(7): standard signals do not queue).
    let begun = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(lab.path("sensor.err"))
        .unwrap_or_default()
        .contains("stopping: draining")
    {
        assert!(Instant::now() < begun, "ksensor did not begin its drain");
        std::thread::sleep(Duration::from_millis(2));
    }
    kill("-TERM");
    let status = wait_for(&mut lab.children[0], Duration::from_secs(20)).expect("ksensor exits");
    let log = std::fs::read_to_string(lab.path("sensor.err")).unwrap_or_default();
    assert_eq!(
        status.code(),
        Some(1),
        "the second signal must end the drain at once: {log}"
    );

    let text = std::fs::read(&events).expect("events file");
    assert!(text.len() > 1 << 20, "{} bytes of events", text.len());
    assert_eq!(
        text.last(),
        Some(&b'\n'),
        "the events file ends in a cut line"
    );
    let mut lines = 0;
    for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "not a whole JSON line ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(v["name"], "ds.kaspersky.com");
        lines += 1;
    }
    println!(
        "second SIGTERM: {lines} whole event lines, {} bytes",
        text.len()
    );
}
