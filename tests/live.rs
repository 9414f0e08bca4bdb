//! Live capture end to end, as root (CI runs as root; elsewhere these tests say SKIPPED).
//!
//! `live_capture_feeds_prometheus_and_stops_cleanly`: two network namespaces joined by a veth
//! pair (names unique per run). `ksensor live` captures on one end inside its namespace; a real
//! Prometheus (Debian's `prometheus`) runs in the same namespace, scrapes it over loopback every
//! second and evaluates the shipped alert rules. `tcpreplay` plays real captures from `pcaps/`
//! into the other end. The test asks Prometheus's HTTP API that detections rose and that the
//! unmanaged-install alert fires, runs every query of the Grafana dashboard
//! (`deploy/grafana/ksensor.json`, variables filled in) and checks each returns the series its
//! panel shows (`check_dashboard`), then plays one more capture, sends SIGTERM right after it and
//! checks that every event a replay of the same captures gives was written (nothing lost in the
//! drain). Everything is bounded in time and torn down by a guard's `Drop`, even on failure.
//!
//! `sighup_and_changed_files_reload_rules`: `ksensor live` on `lo`; a good new rule file (by
//! SIGHUP, then by a changed file) shows the new rule count in `/metrics`; a broken one keeps
//! the old rules and sets `ksensor_rules_last_reload_success 0`.
//!
//! Requests into the namespace go through this test binary itself, re-run under
//! `ip netns exec` as a tiny HTTP client (`ns_http_get_helper`): no curl needed.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Upper bound of the whole namespace test (the brief asks for less than 90 s).
const LAB_BUDGET: Duration = Duration::from_secs(80);
const HELPER_ENV: &str = "KSENSOR_TEST_HTTP_GET";
const BODY_START: &str = "<<<KSENSOR-BODY\n";
const BODY_END: &str = "\nKSENSOR-BODY>>>";

static RUN: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn skip_unless(tools: &[&str]) -> bool {
    if !is_root() {
        eprintln!("SKIPPED: live capture tests need root (CI runs them as root)");
        return true;
    }
    for tool in tools {
        if !have(tool) {
            eprintln!("SKIPPED: {tool} not installed (.ci/run installs it)");
            return true;
        }
    }
    false
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawning a command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Namespaces, processes and files of one test; all removed on drop.
struct Lab {
    namespaces: Vec<String>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            namespaces: Vec::new(),
            children: Vec::new(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn add_namespace(&mut self, name: &str) {
        run_ok(Command::new("ip").args(["netns", "add", name]));
        self.namespaces.push(name.to_string());
        run_ok(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]));
    }

    /// Starts `cmd` with stdout/stderr to files `<log>.out` / `<log>.err`; returns its index.
    fn spawn(&mut self, cmd: &mut Command, log: &str) -> usize {
        let out = std::fs::File::create(self.path(&format!("{log}.out"))).expect("log file");
        let err = std::fs::File::create(self.path(&format!("{log}.err"))).expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawning a process");
        self.children.push(child);
        self.children.len() - 1
    }

    fn log(&self, log: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{log}.err"))).unwrap_or_default()
    }

    fn pid(&self, index: usize) -> u32 {
        self.children.get(index).expect("child").id()
    }

    fn signal(&self, index: usize, sig: &str) {
        run_ok(Command::new("kill").args([sig, &self.pid(index).to_string()]));
    }

    /// Waits for a child to exit; `None` on timeout.
    fn wait(&mut self, index: usize, limit: Duration) -> Option<std::process::ExitStatus> {
        let child = self.children.get_mut(index).expect("child");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn exited(&mut self, index: usize) -> bool {
        matches!(
            self.children.get_mut(index).map(|c| c.try_wait()),
            Some(Ok(Some(_)))
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Plain HTTP/1.0 GET of `addr` + `path`; the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// Not a test of its own: re-run under `ip netns exec` to make one HTTP request from inside a
/// namespace (`KSENSOR_TEST_HTTP_GET=addr/path`). Without the variable it does nothing.
#[test]
fn ns_http_get_helper() {
    let Ok(target) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (addr, path) = target.split_at(target.find('/').unwrap_or(target.len()));
    if let Some(body) = http_get(addr, path) {
        print!("{BODY_START}{body}{BODY_END}");
    }
}

fn ns_get(ns: &str, addr: &str, path: &str) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args([
            "--exact",
            "ns_http_get_helper",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(HELPER_ENV, format!("{addr}{path}"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find(BODY_START)? + BODY_START.len();
    let end = text.rfind(BODY_END)?;
    text.get(start..end).map(str::to_string)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Value of an instant PromQL query with a single result.
fn prom_scalar(ns: &str, query: &str) -> Option<f64> {
    let body = ns_get(
        ns,
        "127.0.0.1:9090",
        &format!("/api/v1/query?query={}", percent_encode(query)),
    )?;
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// `name{labels}` → value from a text exposition.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// What identifies an event across a replay and a live run (timestamps and input differ).
fn event_key(e: &Value) -> String {
    format!(
        "{} {} {}:{} -> {}:{} {}",
        e["kind"].as_str().unwrap_or(""),
        e["name"].as_str().unwrap_or(""),
        e["client"]["ip"].as_str().unwrap_or(""),
        e["client"]["port"],
        e["server"]["ip"].as_str().unwrap_or(""),
        e["server"]["port"],
        e["rule"]["id"].as_str().unwrap_or("")
    )
}

fn event_counts(lines: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        *m.entry(event_key(&e)).or_insert(0) += 1;
    }
    m
}

fn replay_expected(captures: &[&str]) -> BTreeMap<String, usize> {
    let mut all = BTreeMap::new();
    for c in captures {
        let events = common::replay_events(&common::pcaps_dir().join(c), &["--workers", "1"]);
        for e in &events {
            *all.entry(event_key(e)).or_insert(0) += 1;
        }
    }
    all
}

fn tcpreplay(ns: &str, iface: &str, capture: &str) {
    run_ok(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpreplay",
                "-q",
                "--pps",
                "2000",
                "-i",
                iface,
            ])
            .arg(common::repo_root().join("pcaps").join(capture)),
    );
}

#[test]
fn live_capture_feeds_prometheus_and_stops_cleanly() {
    if skip_unless(&["ip", "tcpreplay", "prometheus"]) {
        return;
    }
    let started = Instant::now();
    let id = format!(
        "{}{}",
        std::process::id() % 100_000,
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let (ns_cap, ns_src) = (format!("kscap{id}"), format!("kssrc{id}"));
    let (veth_cap, veth_src) = (format!("kc{id}"), format!("ks{id}"));
    let mut lab = Lab::new();
    lab.add_namespace(&ns_cap);
    lab.add_namespace(&ns_src);
    run_ok(Command::new("ip").args([
        "link", "add", &veth_cap, "netns", &ns_cap, "type", "veth", "peer", "name", &veth_src,
        "netns", &ns_src,
    ]));
    for (ns, dev) in [(&ns_cap, &veth_cap), (&ns_src, &veth_src)] {
        run_ok(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]));
    }

    let events = lab.path("events.jsonl");
    let sensor = lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns_cap])
            .arg(env!("CARGO_BIN_EXE_ksensor"))
            .args(["live", "-i", &veth_cap, "--workers", "2", "--immediate"])
            .args(["--sensor", "live-test", "--listen", "127.0.0.1:9977"])
            .arg("--events")
            .arg(&events)
            .current_dir(common::repo_root()),
        "ksensor",
    );
    until(
        "ksensor to start capturing",
        Duration::from_secs(15),
        || {
            assert!(
                !lab.exited(sensor),
                "ksensor exited: {}",
                lab.log("ksensor")
            );
            lab.log("ksensor")
                .contains("msg=\"capture started\"")
                .then_some(())
        },
    );

    let config = lab.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{:?}]\n\
             scrape_configs:\n  - job_name: ksensor\n    static_configs: [{{targets: ['127.0.0.1:9977']}}]\n",
            common::repo_root().join("deploy/prometheus/ksensor.rules.yml")
        ),
    )
    .expect("prometheus config");
    lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns_cap, "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                lab.path("tsdb").display()
            ))
            .args(["--web.listen-address=127.0.0.1:9090", "--log.level=warn"]),
        "prometheus",
    );
    until(
        "Prometheus to scrape ksensor",
        Duration::from_secs(30),
        || (prom_scalar(&ns_cap, "up{job=\"ksensor\"}")? == 1.0).then_some(()),
    );

    tcpreplay(&ns_src, &veth_src, "staged-network.pcap");
    let detections = until("detections in Prometheus", Duration::from_secs(20), || {
        let v = prom_scalar(
            &ns_cap,
            "sum(ksensor_detections_total{sensor=\"live-test\"})",
        )?;
        (v > 0.0).then_some(v)
    });
    assert!(detections >= 20.0, "{detections}");
    let firing = until(
        "the unmanaged-antivirus alert",
        Duration::from_secs(20),
        || {
            let body = ns_get(&ns_cap, "127.0.0.1:9090", "/api/v1/alerts")?;
            let v: Value = serde_json::from_str(&body).ok()?;
            let hosts: Vec<String> = v["data"]["alerts"]
                .as_array()?
                .iter()
                .filter(|a| {
                    a["labels"]["alertname"] == "KsensorNewUnmanagedAntivirus"
                        && a["state"] == "firing"
                })
                .filter_map(|a| a["labels"]["host"].as_str().map(str::to_string))
                .collect();
            (!hosts.is_empty()).then_some(hosts)
        },
    );
    assert!(firing.iter().any(|h| h == "10.66.0.22"), "{firing:?}");
    let received = prom_scalar(
        &ns_cap,
        &format!("ksensor_capture_received_packets_total{{interface=\"{veth_cap}\"}}"),
    )
    .unwrap_or(0.0);
    assert!(received >= 193.0, "libpcap counted {received} packets");
    check_dashboard(&ns_cap, &veth_cap);
    assert!(
        started.elapsed() < LAB_BUDGET,
        "too slow: {:?}",
        started.elapsed()
    );

    // One more capture, and SIGTERM as soon as it has been sent: the drain must keep it all.
    tcpreplay(&ns_src, &veth_src, "tls-sni.pcap");
    lab.signal(sensor, "-TERM");
    let status = lab
        .wait(sensor, Duration::from_secs(15))
        .expect("ksensor did not stop within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{}", lab.log("ksensor"));
    let log = lab.log("ksensor");
    assert!(log.contains("msg=stopped"), "{log}");
    assert!(!log.contains("level=error"), "{log}");

    let expected = replay_expected(&["staged-network.pcap", "tls-sni.pcap"]);
    let got = event_counts(&std::fs::read_to_string(&events).expect("events file"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, n)| got.get(*k).copied().unwrap_or(0) < **n)
        .collect();
    assert!(missing.is_empty(), "events lost: {missing:?}\ngot: {got:?}");
    assert!(started.elapsed() < LAB_BUDGET + Duration::from_secs(10));
}

/// The labels each query of the Grafana dashboard must return, by panel title and query
/// (`refId`): what its legend, table columns or filters use. Every panel of the dashboard is
/// listed, so a new panel cannot go untested.
/// `(refId, labels)` of one query.
type QueryLabels = (&'static str, &'static [&'static str]);

const DASHBOARD_SERIES: &[(&str, &[QueryLabels])] = &[
    (
        "Unmanaged and externally managed installs now",
        &[("A", &[]), ("B", &[])],
    ),
    (
        "Unmanaged and externally managed installs over time",
        &[("A", &["sensor", "verdict"])],
    ),
    ("Hosts by verdict", &[("A", &["verdict"])]),
    (
        "Installs by certainty and product (now)",
        &[("A", &["certainty", "product"])],
    ),
    (
        "Installs by certainty and product over time",
        &[("A", &["certainty", "product"])],
    ),
    (
        "New hosts (first seen in the selected range)",
        &[(
            "A",
            &[
                "host",
                "verdict",
                "certainty",
                "product",
                "sensor",
                "instance",
            ],
        )],
    ),
    ("Detections by category", &[("A", &["category"])]),
    (
        "Detections by rule and category (selected range)",
        &[("A", &["rule", "category"])],
    ),
    (
        "Names extracted and matched",
        &[("A", &["kind"]), ("B", &["kind"])],
    ),
    (
        "Correlated connections and update payloads",
        &[("A", &["sensor"]), ("B", &["sensor"])],
    ),
    ("Packets per interface", &[("A", &["sensor", "interface"])]),
    (
        "Drops per interface",
        &[
            ("A", &["sensor", "interface"]),
            ("B", &["sensor", "interface"]),
        ],
    ),
    ("Interface capture up", &[("A", &["sensor", "interface"])]),
    ("Flows tracked", &[("A", &["sensor"]), ("B", &["sensor"])]),
    (
        "Flow churn",
        &[
            ("A", &["sensor"]),
            ("B", &["sensor"]),
            ("C", &["sensor"]),
            ("D", &["sensor"]),
        ],
    ),
    (
        "Caps hit and outputs failed",
        &[("A", &["sensor", "reason"]), ("B", &["sensor"])],
    ),
    (
        "Reassembly memory vs budget",
        &[("A", &["sensor"]), ("B", &["sensor"])],
    ),
    (
        "Event lines written and suppressed",
        &[("A", &["sensor"]), ("B", &["sensor", "reason"])],
    ),
    (
        "Skipped by stage and reason (selected range)",
        &[("A", &["stage", "reason"])],
    ),
    ("Rule reload status", &[("A", &["sensor", "instance"])]),
    (
        "Running rule set",
        &[
            ("A", &["sensor", "instance", "sha256"]),
            ("B", &["sensor", "instance"]),
            ("C", &["sensor", "instance"]),
        ],
    ),
    ("Rule reload failures", &[("A", &["sensor", "reason"])]),
];

/// Result of an instant PromQL query (`data.result`), or the error Prometheus gave.
fn prom_query(ns: &str, query: &str) -> Result<Vec<Value>, String> {
    let body = ns_get(
        ns,
        "127.0.0.1:9090",
        &format!("/api/v1/query?query={}", percent_encode(query)),
    )
    .ok_or_else(|| format!("no answer from Prometheus for {query}"))?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("{query}: {body}"));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Grafana's variables as the dashboard's time range and selections would fill them.
fn fill(expr: &str, sensor: &str, instance: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "5s")
        .replace("$__range", "10m")
        .replace("$sensor", sensor)
        .replace("$instance", instance)
}

/// Runs every query of `deploy/grafana/ksensor.json` against the real Prometheus that scraped
/// the sensor while the staged network was played: each must return series with the labels
/// its panel uses, for one sensor, for "All" and for a multi-value selection; the template
/// variables' own queries must offer this sensor and instance; and the panels that carry the
/// point of the dashboard must show the staged network's numbers.
fn check_dashboard(ns: &str, veth: &str) {
    let dashboard = common::dashboard();
    let targets = common::dashboard_targets(&dashboard);
    let instance = "127.0.0.1:9977";
    // Template variables: Grafana's label_values() is the label-values API.
    let values = |label: &str, matcher: &str| -> Vec<String> {
        let body = ns_get(
            ns,
            "127.0.0.1:9090",
            &format!(
                "/api/v1/label/{label}/values?match[]={}",
                percent_encode(matcher)
            ),
        )
        .unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let sensors = values("sensor", "ksensor_build_info");
    assert!(sensors.iter().any(|s| s == "live-test"), "{sensors:?}");
    let instances = values("instance", "ksensor_build_info{sensor=~\"live-test\"}");
    assert_eq!(instances, vec![instance.to_string()]);

    for (panel, _) in DASHBOARD_SERIES {
        assert!(
            targets.iter().any(|t| t.panel == *panel),
            "DASHBOARD_SERIES names {panel:?}, which the dashboard lacks"
        );
    }
    for t in &targets {
        let labels: &[&str] = DASHBOARD_SERIES
            .iter()
            .find(|(p, _)| *p == t.panel)
            .and_then(|(_, qs)| qs.iter().find(|(r, _)| *r == t.ref_id))
            .map(|(_, l)| *l)
            .unwrap_or_else(|| panic!("{} {}: not in DASHBOARD_SERIES", t.panel, t.ref_id));
        for l in common::legend_labels(t.legend.as_deref().unwrap_or_default()) {
            assert!(
                labels.contains(&l.as_str()),
                "{} {}: the legend uses {l}, not checked",
                t.panel,
                t.ref_id
            );
        }
        for (sensor, inst) in [
            ("live-test", instance),
            (".*", ".*"),
            ("(live-test|other-sensor)", "(127.0.0.1:9977|10.0.0.9:9977)"),
        ] {
            let query = fill(&t.expr, sensor, inst);
            let series = until(
                &format!("{} {} to return series", t.panel, t.ref_id),
                Duration::from_secs(10),
                || prom_query(ns, &query).ok().filter(|r| !r.is_empty()),
            );
            for s in &series {
                for l in labels {
                    assert!(
                        s["metric"][*l].is_string(),
                        "{} {}: series without {l}: {s}",
                        t.panel,
                        t.ref_id
                    );
                }
            }
        }
    }

    // The numbers that matter, from the staged network (see pcaps/README.md).
    let one = |panel: &str, ref_id: &str| -> Vec<Value> {
        let t = targets
            .iter()
            .find(|t| t.panel == panel && t.ref_id == ref_id)
            .expect("panel");
        prom_query(ns, &fill(&t.expr, "live-test", instance)).expect("query")
    };
    let value = |s: &Value| -> f64 {
        s["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let unmanaged = one("Unmanaged and externally managed installs now", "A");
    assert_eq!(
        unmanaged.iter().map(value).sum::<f64>(),
        3.0,
        "{unmanaged:?}"
    );
    let external = one("Unmanaged and externally managed installs now", "B");
    assert_eq!(external.iter().map(value).sum::<f64>(), 0.0, "{external:?}");
    // Both verdicts have a series (at 0 until a host has it), so the graph shows both.
    let over_time = one("Unmanaged and externally managed installs over time", "A");
    let by_verdict: BTreeMap<String, f64> = over_time
        .iter()
        .map(|s| {
            (
                s["metric"]["verdict"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                value(s),
            )
        })
        .collect();
    assert_eq!(
        by_verdict,
        BTreeMap::from([
            ("externally-managed-install".to_string(), 0.0),
            ("unmanaged-install".to_string(), 3.0),
        ]),
        "{over_time:?}"
    );
    // The staged network's installs (pcaps/README.md): .21 managed and .22 unmanaged confirmed
    // antivirus, .31 likely kaspersky, .51 likely oem.
    let certainty_product = |panel: &str| -> BTreeMap<(String, String), f64> {
        one(panel, "A")
            .iter()
            .filter(|s| value(s) > 0.0)
            .map(|s| {
                let l = |k: &str| s["metric"][k].as_str().unwrap_or_default().to_string();
                ((l("certainty"), l("product")), value(s))
            })
            .collect()
    };
    let installs = BTreeMap::from([
        (("confirmed".to_string(), "antivirus".to_string()), 2.0),
        (("likely".to_string(), "kaspersky".to_string()), 1.0),
        (("likely".to_string(), "oem".to_string()), 1.0),
    ]);
    assert_eq!(
        certainty_product("Installs by certainty and product (now)"),
        installs
    );
    assert_eq!(
        certainty_product("Installs by certainty and product over time"),
        installs
    );
    // Every certainty x product pair is a bar, zeros included.
    assert_eq!(one("Installs by certainty and product (now)", "A").len(), 9);
    // The panel's subquery samples at $__interval (5 s) steps aligned to the clock: a series
    // first scraped less than a step before the query is not in it yet. Asked again until it
    // is, for at most three steps.
    let new_unmanaged = |hosts: &[Value]| {
        hosts.iter().any(|s| {
            s["metric"]["host"] == "10.66.0.22"
                && s["metric"]["verdict"] == "unmanaged-install"
                && s["metric"]["certainty"] == "confirmed"
                && s["metric"]["product"] == "antivirus"
                && value(s) > 1.0e12
        })
    };
    let mut new_hosts = one("New hosts (first seen in the selected range)", "A");
    for _ in 0..15 {
        if new_unmanaged(&new_hosts) {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
        new_hosts = one("New hosts (first seen in the selected range)", "A");
    }
    assert!(new_unmanaged(&new_hosts), "{new_hosts:?}");
    // Reassembly: the default budget (256 MiB), and what the buffers hold within it.
    let budget = one("Reassembly memory vs budget", "B");
    assert_eq!(
        budget.iter().map(value).collect::<Vec<_>>(),
        vec![268_435_456.0],
        "{budget:?}"
    );
    let held = one("Reassembly memory vs budget", "A");
    assert!(
        held.len() == 1 && (0.0..=268_435_456.0).contains(&value(&held[0])),
        "{held:?}"
    );
    // Event lines: nothing in the staged network comes near the limits, so both reasons are
    // there at 0.
    let suppressed = one("Event lines written and suppressed", "B");
    let reasons: BTreeMap<String, f64> = suppressed
        .iter()
        .map(|s| {
            (
                s["metric"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                value(s),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        BTreeMap::from([("global".to_string(), 0.0), ("per_source".to_string(), 0.0)]),
        "{suppressed:?}"
    );
    let written = prom_scalar(
        ns,
        "sum(ksensor_events_written_total{sensor=\"live-test\"})",
    )
    .unwrap_or(0.0);
    assert!(written >= 20.0, "events written {written}");
    let by_rule = one("Detections by rule and category (selected range)", "A");
    let dnl = by_rule
        .iter()
        .find(|s| s["metric"]["rule"] == "update-dnl-geo")
        .map(value)
        .unwrap_or(0.0);
    assert!(dnl >= 4.0, "update-dnl-geo detections {dnl}: {by_rule:?}");
    let packets = one("Packets per interface", "A");
    assert!(
        packets.iter().any(|s| s["metric"]["interface"] == veth),
        "{packets:?}"
    );
    let reload = one("Rule reload status", "A");
    assert_eq!(reload.iter().map(value).collect::<Vec<_>>(), vec![1.0]);
}

fn metrics(addr: &str) -> BTreeMap<String, f64> {
    samples(&http_get(addr, "/metrics").unwrap_or_default())
}

fn write_rules(path: &Path, ids: &[&str]) {
    let text: String = ids
        .iter()
        .map(|id| {
            format!(
                "[[rule]]\nid = \"{id}\"\nmatch = [\"suffix:{id}.example\"]\ncategory = \"update\"\n\
                 confidence = \"high\"\nproduct = \"kaspersky\"\nsource = \"test\"\n\n"
            )
        })
        .collect();
    std::fs::write(path, text).expect("rule file");
}

#[test]
fn sighup_and_changed_files_reload_rules() {
    if skip_unless(&[]) {
        return;
    }
    let mut lab = Lab::new();
    let rules = lab.path("rules.toml");
    write_rules(&rules, &["one", "two", "three"]);
    let sensor = lab.spawn(
        Command::new(env!("CARGO_BIN_EXE_ksensor"))
            .args(["live", "-i", "lo", "--workers", "2", "--bpf", "udp port 9"])
            .args([
                "--listen",
                "127.0.0.1:0",
                "--rule-poll-secs",
                "1",
                "--rules",
            ])
            .arg(&rules)
            .arg("--events")
            .arg(lab.path("events.jsonl")),
        "ksensor",
    );
    let addr = until("the listener", Duration::from_secs(15), || {
        assert!(
            !lab.exited(sensor),
            "ksensor exited: {}",
            lab.log("ksensor")
        );
        let log = lab.log("ksensor");
        let rest = log.split("msg=listening addr=").nth(1)?;
        Some(rest.split_whitespace().next()?.to_string())
    });
    let m = metrics(&addr);
    assert_eq!(m.get("ksensor_rules"), Some(&3.0), "{m:?}");
    assert_eq!(m.get("ksensor_rules_last_reload_success"), Some(&1.0));

    // A good file, by SIGHUP. (Same size as before, so the poller alone could miss it if the
    // mtime did not move: the signal must do it.)
    // Log rotation: the events file is moved away; SIGHUP makes a new one.
    std::fs::rename(lab.path("events.jsonl"), lab.path("events.jsonl.1")).expect("rotate");
    write_rules(&rules, &["uno", "dos"]);
    lab.signal(sensor, "-HUP");
    until("2 rules after SIGHUP", Duration::from_secs(10), || {
        (metrics(&addr).get("ksensor_rules") == Some(&2.0)).then_some(())
    });
    until(
        "the events file to be reopened",
        Duration::from_secs(5),
        || lab.path("events.jsonl").exists().then_some(()),
    );

    // A broken file: old rules stay, failure visible.
    std::fs::write(&rules, "[[rule]]\nid = \"x\"\nmatch = [\n").expect("write");
    lab.signal(sensor, "-HUP");
    let m = until("the reload failure", Duration::from_secs(10), || {
        let m = metrics(&addr);
        (m.get("ksensor_rules_last_reload_success") == Some(&0.0)).then_some(m)
    });
    assert_eq!(
        m.get("ksensor_rules"),
        Some(&2.0),
        "old rules must keep running"
    );
    assert_eq!(
        m.get("ksensor_rules_reload_failures_total{reason=\"syntax\"}"),
        Some(&1.0),
        "{m:?}"
    );
    let log = lab.log("ksensor");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("level=error") && l.contains("rule reload failed"))
        .collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors.iter().all(|l| l.contains("rules.toml:")),
        "{errors:?}"
    );

    // A fixed file, no signal: the poller sees the change.
    write_rules(&rules, &["a", "b", "c", "d"]);
    until(
        "4 rules after the file changed",
        Duration::from_secs(10),
        || {
            let m = metrics(&addr);
            (m.get("ksensor_rules") == Some(&4.0)
                && m.get("ksensor_rules_last_reload_success") == Some(&1.0))
            .then_some(())
        },
    );

    lab.signal(sensor, "-TERM");
    let status = lab.wait(sensor, Duration::from_secs(10)).expect("stops");
    assert_eq!(status.code(), Some(0), "{}", lab.log("ksensor"));
}

#[test]
fn missing_interface_is_one_line_and_exit_1() {
    let out = common::ksensor()
        .args(["live", "-i", "ksnosuch0", "--listen", "off"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("level=error"), "{err}");
    assert!(lines[0].contains("ksnosuch0"), "{err}");
    if is_root() {
        assert!(lines[0].contains("no such interface"), "{err}");
    }
}

#[test]
fn config_file_options_apply_and_flags_override() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("k.toml");
    std::fs::write(&config, "interfaces = [\"ksnosuch1\"]\nlisten = \"off\"\n").expect("write");
    let out = common::ksensor()
        .args(["live", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ksnosuch1"));
    let out = common::ksensor()
        .args(["live", "-i", "ksnosuch2", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ksnosuch2") && !err.contains("ksnosuch1"),
        "{err}"
    );
    std::fs::write(&config, "interfacez = [\"x\"]\n").expect("write");
    let out = common::ksensor()
        .args(["live", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interfacez"));
}

#[test]
fn interface_that_goes_away_is_retried_and_visible_in_metrics() {
    if skip_unless(&["ip"]) {
        return;
    }
    let id = format!(
        "{}{}",
        std::process::id() % 100_000,
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let (ns, dev, peer) = (format!("ksret{id}"), format!("kr{id}"), format!("kp{id}"));
    let mut lab = Lab::new();
    lab.add_namespace(&ns);
    let make_veth = || {
        run_ok(Command::new("ip").args([
            "-n", &ns, "link", "add", &dev, "type", "veth", "peer", "name", &peer,
        ]));
        for d in [&dev, &peer] {
            run_ok(Command::new("ip").args(["-n", &ns, "link", "set", d, "up"]));
        }
    };
    make_veth();
    let sensor = lab.spawn(
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(env!("CARGO_BIN_EXE_ksensor"))
            .args(["live", "-i", &dev, "--workers", "1"])
            .args(["--listen", "127.0.0.1:9977"]),
        "ksensor",
    );
    let up = || -> Option<f64> {
        let text = ns_get(&ns, "127.0.0.1:9977", "/metrics")?;
        samples(&text)
            .get(&format!("ksensor_interface_up{{interface=\"{dev}\"}}"))
            .copied()
    };
    until("capture to start", Duration::from_secs(15), || {
        assert!(
            !lab.exited(sensor),
            "ksensor exited: {}",
            lab.log("ksensor")
        );
        (up()? == 1.0).then_some(())
    });
    run_ok(Command::new("ip").args(["-n", &ns, "link", "del", &dev]));
    until(
        "the interface to be marked down",
        Duration::from_secs(15),
        || (up()? == 0.0).then_some(()),
    );
    make_veth();
    until("capture to resume", Duration::from_secs(20), || {
        (up()? == 1.0).then_some(())
    });
    let text = ns_get(&ns, "127.0.0.1:9977", "/metrics").unwrap_or_default();
    assert_eq!(
        samples(&text).get(&format!(
            "ksensor_interface_reopens_total{{interface=\"{dev}\"}}"
        )),
        Some(&1.0),
        "{text}"
    );
    let log = lab.log("ksensor");
    assert!(log.contains("msg=\"capture failed; retrying\""), "{log}");
    assert!(log.contains("msg=\"capture resumed\""), "{log}");
    lab.signal(sensor, "-TERM");
    let status = lab.wait(sensor, Duration::from_secs(10)).expect("stops");
    assert_eq!(status.code(), Some(0), "{log}");
}
