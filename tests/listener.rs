//! The metrics listener against the attacks a host on the sensor's network can make, with the
//! real binary (`ksensor live -i lo`, as root; elsewhere the tests that need capture say
//! SKIPPED), on loopback only.
//!
//! Attack traffic comes from its own source address, 127.0.0.2 (any 127/8 address is local on
//! Linux), and the scrapes that must keep working from 127.0.0.1: a scraper and an attacker are
//! different hosts, and the listener shares its connection slots and login budgets per source.
//!
//! * `idle_connections_under_nofile_1024_lock_out_no_scrape`: 600 idle TCP connections against
//!   a sensor under `prlimit --nofile=1024` (systemd's `LimitNOFILE` in
//!   `deploy/ksensor.service`).
//! * `out_of_descriptors_is_logged_and_survived`: a sensor with so few descriptors that accept
//!   fails with EMFILE.
//! * `tls_alert_before_the_handshake_costs_no_cpu`: the 7-byte alert that pinned a core in
//!   rustls 0.20 (RUSTSEC-2024-0336); CPU time read from `/proc/PID/stat`.
//! * `a_pipelining_client_that_never_reads_blocks_no_scrape`.
//! * `wrong_password_flood_does_not_delay_a_good_scrape`: 160 concurrent wrong passwords.
//! * `listening_beyond_loopback_without_web_config_warns_once`.
//! * `bad_key_cert_and_hash_formats_are_one_line_and_exit_1` (no root needed) and
//!   `supported_key_forms_serve_tls_and_basic_auth`: keys and certificates made by `openssl`,
//!   TLS requests made by `curl`.
//!
//! The sensor-running tests take one lock, so their timings do not share the two cores with
//! each other. Every wait is bounded; every sensor is killed on drop.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Barrier, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Where attack traffic comes from.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Where good scrapes come from.
const SCRAPER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Prometheus's default scrape timeout is 10 s; a good scrape must answer well inside it.
const GOOD_SCRAPE_BUDGET: Duration = Duration::from_secs(2);
/// The listener's write timeout (`app::web::server::WRITE_TIMEOUT`).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

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

fn skip_unless(root: bool, tools: &[&str]) -> bool {
    if root && !is_root() {
        eprintln!(
            "SKIPPED: listener tests run `ksensor live -i lo`, which needs root (CI is root)"
        );
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

/// A running `ksensor live -i lo` with its listener on 127.0.0.1; killed on drop.
struct Sensor {
    child: Child,
    err: PathBuf,
    addr: SocketAddr,
}

impl Sensor {
    /// Starts the sensor (under `prlimit --nofile=N` when asked) and waits for its listener.
    fn start(dir: &Path, nofile: Option<u32>, extra: &[&str]) -> Sensor {
        Sensor::start_on(dir, "127.0.0.1:0", nofile, extra)
    }

    fn start_on(dir: &Path, listen: &str, nofile: Option<u32>, extra: &[&str]) -> Sensor {
        let err = dir.join(format!("ksensor-{}.err", std::process::id()));
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--");
                c.arg(env!("CARGO_BIN_EXE_ksensor"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ksensor")),
        };
        // prlimit execs the command: the child's pid is the sensor's.
        cmd.args(["live", "-i", "lo", "--workers", "1", "--bpf", "udp port 9"])
            .args(["--rule-poll-secs", "0", "--listen", listen])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("log file"));
        let child = cmd.spawn().expect("spawning ksensor");
        let mut s = Sensor {
            child,
            err,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(s.alive(), "ksensor exited: {}", s.log());
            let log = s.log();
            if let Some(rest) = log.split("msg=listening addr=").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("");
                let port = addr.parse::<SocketAddr>().expect("listen address").port();
                s.addr = SocketAddr::from(([127, 0, 0, 1], port));
                if log.contains("msg=\"capture started\"") {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "ksensor did not start: {log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its `/metrics` as `series → value` (basic auth `user:password` when given).
    fn metrics(&self, auth: Option<&str>) -> BTreeMap<String, f64> {
        let (status, body) = get(SCRAPER, self.addr, "/metrics", auth, Duration::from_secs(5))
            .expect("scraping /metrics");
        assert_eq!(status, 200, "{body}");
        samples(&body)
    }

    /// User plus system CPU time of the sensor so far, in clock ticks (proc(5), fields 14-15).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        field(14).unwrap_or(0) + field(15).unwrap_or(0)
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection from `from` (a loopback address) to `to`.
fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::new(from, 0).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(s.into())
}

fn basic(auth: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(auth)
}

/// One `GET` with `Connection: close`; status and body, or `None` if the connection failed or
/// no whole answer came within `limit`.
fn get(
    from: IpAddr,
    to: SocketAddr,
    path: &str,
    auth: Option<&str>,
    limit: Duration,
) -> Option<(u16, String)> {
    let mut s = connect_from(from, to).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.set_write_timeout(Some(limit)).ok()?;
    let authz = auth.map_or(String::new(), |a| {
        format!("Authorization: Basic {}\r\n", basic(a))
    });
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {to}\r\n{authz}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A good scrape from the scraper's address: it must answer 200 within the budget.
fn good_scrape(sensor: &Sensor, auth: Option<&str>) -> Duration {
    let t = Instant::now();
    let got = get(
        SCRAPER,
        sensor.addr,
        "/metrics",
        auth,
        GOOD_SCRAPE_BUDGET * 2,
    );
    let took = t.elapsed();
    let (status, body) = got.unwrap_or_else(|| panic!("no answer in {took:?}: {}", sensor.log()));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ksensor_build_info"), "{body}");
    assert!(
        took < GOOD_SCRAPE_BUDGET,
        "a good scrape took {took:?}, over {GOOD_SCRAPE_BUDGET:?}"
    );
    took
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

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in {m:?}"))
}

fn until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// This test process needs a descriptor per attack connection: raise its own soft limit (as
/// root, `prlimit` can) when the runner's is low.
fn allow_descriptors(n: u32) {
    let me = std::process::id().to_string();
    run_ok(Command::new("prlimit").args(["--pid", &me, &format!("--nofile={n}:{n}")]));
}

#[test]
fn idle_connections_under_nofile_1024_lock_out_no_scrape() {
    if skip_unless(true, &["prlimit"]) {
        return;
    }
    let _one = serial();
    allow_descriptors(4096);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sensor = Sensor::start(dir.path(), Some(1024), &[]);
    let mut idle = Vec::new();
    for _ in 0..600 {
        idle.push(connect_from(ATTACKER, sensor.addr).expect("connect"));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(sensor.alive(), "{}", sensor.log());
    good_scrape(&sensor, None);
    let m = sensor.metrics(None);
    // 600 connections, 64 slots: all but the last 64 were closed (evicted) at once.
    let evicted = value(
        &m,
        "ksensor_web_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(evicted >= 600.0 - 64.0, "{evicted}");
    assert!(value(&m, "ksensor_web_connections") <= 64.0, "{m:?}");
    let log = sensor.log();
    assert!(log.contains("at its connection limit"), "{log}");
    assert!(!log.contains("not on loopback"), "{log}");
    assert!(!log.contains("level=error"), "{log}");
    drop(idle);
    assert!(sensor.alive());
}

#[test]
fn out_of_descriptors_is_logged_and_survived() {
    if skip_unless(true, &["prlimit"]) {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    // About ten descriptors are the sensor's own (capture, runtime, files): 24 leaves room
    // for a dozen connections before accept fails with EMFILE.
    let mut sensor = Sensor::start(dir.path(), Some(24), &[]);
    let mut held = Vec::new();
    for _ in 0..40 {
        if let Ok(s) = connect_from(ATTACKER, sensor.addr) {
            held.push(s);
        }
    }
    until(
        "an accept error in the log",
        Duration::from_secs(10),
        || {
            sensor
                .log()
                .contains("msg=\"metrics listener cannot accept connections\"")
                .then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(sensor.alive(), "{}", sensor.log());
    drop(held);
    // Once the flood is gone, scrapes are answered again.
    let m = until("a scrape after the flood", Duration::from_secs(10), || {
        let (status, body) = get(
            SCRAPER,
            sensor.addr,
            "/metrics",
            None,
            Duration::from_secs(2),
        )?;
        (status == 200).then(|| samples(&body))
    });
    assert!(value(&m, "ksensor_web_accept_errors_total") >= 1.0, "{m:?}");
    let log = sensor.log();
    let lines = log.lines().filter(|l| l.contains("cannot accept")).count();
    // Paced: one line per 10 s, not one per error.
    assert!(lines <= 2, "{log}");
    assert!(log.contains("Too many open files"), "{log}");
    assert!(sensor.alive());
}

/// Keys and certificates made by openssl in `dir`.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn openssl(&self, args: &[&str]) {
        run_ok(Command::new("openssl").args(args).current_dir(&self.dir));
    }

    /// A self-signed certificate for 127.0.0.1 over the key in `key`.
    fn cert(&self, key: &str, cert: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            "/CN=ksensor-test",
            "-days",
            "2",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-out",
            cert,
        ]);
    }

    fn ec_pkcs8(&self, key: &str) {
        self.openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key,
        ]);
    }

    fn ec_sec1(&self, key: &str) {
        self.openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            key,
        ]);
    }

    fn rsa_pkcs1(&self, key: &str) {
        self.openssl(&["genrsa", "-traditional", "-out", key, "2048"]);
    }

    /// A web config naming `cert` and `key` (relative to the config, as the exporter toolkit
    /// resolves them), with `users` lines under `[basic_auth_users]`.
    fn web_config(&self, name: &str, cert: &str, key: &str, users: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                "[tls_server_config]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n\
                 [basic_auth_users]\n{users}"
            ),
        )
        .expect("web config");
        path
    }
}

/// `ksensor live` with this web config: must exit 1 with one stderr line naming `names` and
/// saying `words`.
fn refused(web: &Path, names: &Path, words: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_ksensor"))
        .args([
            "live",
            "-i",
            "lo",
            "--listen",
            "127.0.0.1:0",
            "--web-config",
        ])
        .arg(web)
        .output()
        .expect("running ksensor");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {err}", web.display());
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("level=error"), "{err}");
    assert!(lines[0].contains(&names.display().to_string()), "{err}");
    assert!(lines[0].contains(words), "expected {words:?}: {err}");
}

#[test]
fn bad_key_cert_and_hash_formats_are_one_line_and_exit_1() {
    if skip_unless(false, &["openssl"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.ec_pkcs8("a.key");
    pki.cert("a.key", "a.crt");
    pki.ec_pkcs8("b.key");
    pki.openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        "a.key",
        "-passout",
        "pass:secret",
        "-out",
        "enc.key",
    ]);
    pki.rsa_pkcs1("rsa.key");
    pki.openssl(&[
        "rsa",
        "-in",
        "rsa.key",
        "-aes128",
        "-traditional",
        "-passout",
        "pass:secret",
        "-out",
        "legacy-enc.key",
    ]);
    std::fs::write(pki.path("empty.pem"), "").expect("write");
    std::fs::write(pki.path("garbage.pem"), "this is not a PEM file\n").expect("write");
    std::fs::write(
        pki.path("bad-base64.pem"),
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    std::fs::write(
        pki.path("not-der.pem"),
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");

    let cases: [(&str, &str, &str, &str); 9] = [
        ("enc.key", "a.crt", "enc.key", "encrypted"),
        ("legacy-enc.key", "a.crt", "legacy-enc.key", "encrypted"),
        ("b.key", "a.crt", "a.crt", "does not match the private key"),
        ("empty.pem", "a.crt", "empty.pem", "no private key"),
        ("garbage.pem", "a.crt", "garbage.pem", "no private key"),
        ("a.key", "garbage.pem", "garbage.pem", "no certificate"),
        (
            "a.key",
            "bad-base64.pem",
            "bad-base64.pem",
            "not a valid PEM file",
        ),
        (
            "a.key",
            "not-der.pem",
            "not-der.pem",
            "not a usable certificate",
        ),
        ("missing.key", "a.crt", "missing.key", "no such file"),
    ];
    for (i, (key, cert, named, words)) in cases.iter().enumerate() {
        let web = pki.web_config(&format!("web{i}.toml"), cert, key, "");
        refused(&web, &pki.path(named), words);
    }
    // Hashes: malformed, and a cost that would stall every login.
    let good = pki.web_config("good.toml", "a.crt", "a.key", "");
    assert!(std::fs::read_to_string(&good).is_ok());
    for (i, (hash, words)) in [
        ("$2y$10$short", "not a bcrypt hash"),
        ("secret", "not a bcrypt hash"),
        (
            "$2b$31$lzGQ8E5f3V9FLA5qeyLqI.QCJx6yrLIAVoLFbMe11ZZk7WmrrfnXG",
            "bcrypt cost 31",
        ),
    ]
    .iter()
    .enumerate()
    {
        let web = pki.web_config(
            &format!("hash{i}.toml"),
            "a.crt",
            "a.key",
            &format!("prom = \"{hash}\"\n"),
        );
        refused(&web, &web, words);
    }
}

/// `curl` over TLS, trusting `ca`; the HTTP status and body.
fn curl(addr: SocketAddr, ca: &Path, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"]);
    if let Some(a) = auth {
        cmd.args(["-u", a]);
    }
    let out = run_ok(cmd.arg(format!("https://{addr}{path}")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn supported_key_forms_serve_tls_and_basic_auth() {
    if skip_unless(true, &["openssl", "curl"]) {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    // Cost 4 (the minimum) keeps the first login quick; the format is the same at any cost.
    let hash = bcrypt::hash("s3cret", 4).expect("hash");
    let users = format!("prom = \"{hash}\"\n");
    type MakeKey = fn(&Pki, &str);
    let forms: [(&str, MakeKey); 3] = [
        ("pkcs8-ec.key", Pki::ec_pkcs8),
        ("pkcs1-rsa.key", Pki::rsa_pkcs1),
        ("sec1-ec.key", Pki::ec_sec1),
    ];
    for (key, make) in forms {
        make(&pki, key);
        let cert = format!("{key}.crt");
        pki.cert(key, &cert);
        let web = pki.web_config(&format!("{key}.toml"), &cert, key, &users);
        let sensor = Sensor::start(
            dir.path(),
            None,
            &["--web-config", &web.display().to_string()],
        );
        assert!(
            sensor.log().contains("tls=on basic_auth=on"),
            "{}",
            sensor.log()
        );
        let ca = pki.path(&cert);
        let (status, body) = curl(sensor.addr, &ca, "/metrics", Some("prom:s3cret"));
        assert_eq!(status, 200, "{key}: {body}");
        assert!(body.contains("ksensor_build_info"), "{key}: {body}");
        assert_eq!(
            curl(sensor.addr, &ca, "/healthz", Some("prom:s3cret")),
            (200, "ok\n".into())
        );
        assert_eq!(curl(sensor.addr, &ca, "/metrics", None).0, 401, "{key}");
        assert_eq!(
            curl(sensor.addr, &ca, "/metrics", Some("prom:nope")).0,
            401,
            "{key}"
        );
        // Plain HTTP to the TLS port gets nothing.
        let plain = get(
            SCRAPER,
            sensor.addr,
            "/metrics",
            None,
            Duration::from_secs(5),
        );
        assert!(plain.as_ref().is_none_or(|(s, _)| *s != 200), "{plain:?}");
    }
}

#[test]
fn tls_alert_before_the_handshake_costs_no_cpu() {
    if skip_unless(true, &["openssl", "curl"]) {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    pki.ec_pkcs8("k.key");
    pki.cert("k.key", "k.crt");
    let web = pki.web_config("web.toml", "k.crt", "k.key", "");
    let sensor = Sensor::start(
        dir.path(),
        None,
        &["--web-config", &web.display().to_string()],
    );
    // A TLS record (RFC 8446 §5.1) of type alert (21), version 3.3, length 2: warning (1),
    // close_notify (0) (§6.1); sent before any ClientHello, on two connections held open.
    // rustls before 0.23.5 looped forever in `complete_io` on it (RUSTSEC-2024-0336).
    const ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00];
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(ATTACKER, sensor.addr).expect("connect");
        s.write_all(&ALERT).expect("alert");
        held.push(s);
    }
    let before = sensor.cpu_ticks();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let ticks = sensor.cpu_ticks().saturating_sub(before);
    let secs = t.elapsed().as_secs_f64();
    eprintln!("CPU after two close_notify alerts: {ticks} ticks in {secs:.1} s");
    // Clock ticks are 1/100 s on Linux (sysconf(_SC_CLK_TCK)); a pinned core would be 100 per
    // second per connection. An idle sensor on lo uses a few.
    assert!(
        ticks < 30,
        "ksensor used {ticks} ticks of CPU in {secs:.1} s after the alerts"
    );
    // The listener closed both connections (an end of stream or a reset, not a read that
    // times out).
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    let (status, body) = curl(sensor.addr, &pki.path("k.crt"), "/metrics", None);
    assert_eq!(status, 200, "{body}");
    let m = samples(&body);
    // rustls 0.23 takes the close_notify as the end of the peer's data and waits for the
    // handshake that never comes: the handshake timeout closes both (a fatal alert would fail
    // the handshake at once).
    let closed = |reason: &str| {
        value(
            &m,
            &format!("ksensor_web_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    assert!(
        closed("tls_handshake_timeout") + closed("tls_handshake_failed") >= 2.0,
        "{m:?}"
    );
}

#[test]
fn a_pipelining_client_that_never_reads_blocks_no_scrape() {
    if skip_unless(true, &[]) {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sensor = Sensor::start(dir.path(), None, &[]);
    let mut pipeliner = connect_from(ATTACKER, sensor.addr).expect("connect");
    pipeliner
        .set_write_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    // Requests back to back until the sensor stops reading (its responses fill the socket
    // buffers, then it can write no more): a write that blocks 0.5 s says so. Bounded at
    // 100 000 requests (about 4 MB).
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {}\r\n\r\n", sensor.addr);
    let batch = request.repeat(100);
    let mut sent = 0;
    while sent < 1000 && pipeliner.write_all(batch.as_bytes()).is_ok() {
        sent += 1;
    }
    for _ in 0..3 {
        good_scrape(&sensor, None);
    }
    // hyper reads the next request only once the last response is out: what a client can
    // make the listener buffer is bounded.
    assert!(
        sent < 1000,
        "the sensor read 100 000 pipelined requests without stalling"
    );
    // The stalled connection is closed one write timeout after it stopped reading.
    let m = until(
        "the write timeout to close the pipeliner",
        WRITE_TIMEOUT + Duration::from_secs(5),
        || {
            let m = sensor.metrics(None);
            (value(
                &m,
                "ksensor_web_connections_closed_total{reason=\"write_timeout\"}",
            ) >= 1.0)
                .then_some(m)
        },
    );
    assert_eq!(value(&m, "ksensor_web_connections"), 1.0, "only the scrape");
    assert!(sensor.alive());
    drop(pipeliner);
}

#[test]
fn wrong_password_flood_does_not_delay_a_good_scrape() {
    if skip_unless(true, &[]) {
        return;
    }
    let _one = serial();
    allow_descriptors(4096);
    let dir = tempfile::tempdir().expect("tempdir");
    // Cost 10, what `htpasswd -B -C 10` and the README suggest: tens of milliseconds a try.
    let hash = bcrypt::hash("s3cret", 10).expect("hash");
    let web = dir.path().join("web.toml");
    std::fs::write(&web, format!("[basic_auth_users]\nprom = \"{hash}\"\n")).expect("write");
    let mut sensor = Sensor::start(
        dir.path(),
        None,
        &["--web-config", &web.display().to_string()],
    );
    let good = Some("prom:s3cret");
    // Prometheus has scraped before the attack: its credentials are verified and cached.
    assert_eq!(
        get(
            SCRAPER,
            sensor.addr,
            "/metrics",
            good,
            Duration::from_secs(10)
        )
        .map(|r| r.0),
        Some(200)
    );

    const FLOOD: usize = 160;
    let start = Arc::new(Barrier::new(FLOOD + 1));
    let addr = sensor.addr;
    let attackers: Vec<_> = (0..FLOOD)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let auth = format!("prom:wrong-{i}");
                get(
                    ATTACKER,
                    addr,
                    "/metrics",
                    Some(&auth),
                    Duration::from_secs(20),
                )
                .map(|r| r.0)
            })
        })
        .collect();
    start.wait();
    std::thread::sleep(Duration::from_millis(20));
    let during = good_scrape(&sensor, good);
    let answers: Vec<Option<u16>> = attackers
        .into_iter()
        .map(|t| t.join().expect("attacker thread"))
        .collect();
    assert!(
        answers
            .iter()
            .all(|a| a.is_none() || matches!(a, Some(401 | 429 | 503))),
        "{answers:?}"
    );
    let refused = answers.iter().filter(|a| a.is_some()).count();
    good_scrape(&sensor, good);

    let m = sensor.metrics(good);
    let failures = |reason: &str| {
        value(
            &m,
            &format!("ksensor_web_auth_failures_total{{reason=\"{reason}\"}}"),
        )
    };
    let wrong = failures("wrong_password");
    let limited = failures("rate_limited");
    let counted = wrong + limited + failures("busy") + failures("unknown_user");
    // Each refusal a client saw is counted; a connection evicted before its request was read
    // (160 connections, 64 slots) got no answer and is counted as evicted instead.
    assert!(counted >= refused as f64, "{counted} < {refused}: {m:?}");
    let evicted = value(
        &m,
        "ksensor_web_connections_closed_total{reason=\"evicted\"}",
    );
    assert!(
        counted + evicted >= FLOOD as f64,
        "{counted} + {evicted}: {m:?}"
    );
    // The source's budget (10 verifications) was spent, then it was refused without bcrypt.
    assert!((10.0..=12.0).contains(&wrong), "{m:?}");
    assert!(limited >= 1.0, "{m:?}");
    let log = sensor.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("msg=\"metrics listener: failed login\""))
        .collect();
    assert!(!lines.is_empty() && lines.len() <= 2, "{log}");
    assert!(
        lines[0].contains("source=127.0.0.2") && lines[0].contains("user=prom"),
        "{log}"
    );
    assert!(sensor.alive());
    eprintln!("good scrape during {FLOOD} wrong passwords: {during:?}; {refused} refused");
}

#[test]
fn listening_beyond_loopback_without_web_config_warns_once() {
    if skip_unless(true, &[]) {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("tempdir");
    // All addresses, port chosen by the kernel; only loopback is ever sent to.
    let sensor = Sensor::start_on(dir.path(), "0.0.0.0:0", None, &[]);
    good_scrape(&sensor, None);
    let log = sensor.log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("level=warn")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("not on loopback") && warnings[0].contains("tls=off basic_auth=off"),
        "{log}"
    );
}
