//! The metrics listener: `GET /metrics` (Prometheus text format) and `GET /healthz`.
//!
//! Contract: [`MetricsServer::start`] binds `--listen` (plain HTTP, or HTTPS when the web config
//! names a certificate and key) and serves requests on one thread; each scrape locks the shared
//! [`Metrics`] just long enough to render them. When the web config lists users, every request
//! needs HTTP basic auth (RFC 7617) whose password matches the user's bcrypt hash; a verified
//! `(user, SHA-256 of password)` pair is remembered so a scrape does not pay bcrypt's cost each
//! time. Request bodies are never read; header values are bounded ([`MAX_AUTH_HEADER_LEN`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tiny_http::{Header, Response, Server, SslConfig};

use crate::app::config::WebConfig;
use crate::app::log;
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};

/// Longest `Authorization` header considered: user and password of any sane length fit.
pub const MAX_AUTH_HEADER_LEN: usize = 1024;
/// How often the serving thread checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Decodes standard base64 (RFC 4648 §4) with padding; `None` on any invalid input.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let chunks = bytes.chunks_exact(4);
    let last = chunks.len().checked_sub(1);
    for (i, chunk) in chunks.enumerate() {
        let [a, b, c, d] = <[u8; 4]>::try_from(chunk).ok()?;
        let pad = match (c, d) {
            (b'=', b'=') => 2,
            (_, b'=') => 1,
            _ => 0,
        };
        if pad > 0 && Some(i) != last {
            return None;
        }
        let n = (val(a)? << 18)
            | (val(b)? << 12)
            | (if pad >= 2 { 0 } else { val(c)? } << 6)
            | if pad >= 1 { 0 } else { val(d)? };
        let [_, x, y, z] = n.to_be_bytes();
        out.push(x);
        if pad < 2 {
            out.push(y);
        }
        if pad < 1 {
            out.push(z);
        }
    }
    Some(out)
}

/// Basic-auth checking against bcrypt hashes.
pub struct Auth {
    users: BTreeMap<String, String>,
    /// Last verified password digest per user.
    verified: BTreeMap<String, [u8; 32]>,
}

impl Auth {
    pub fn new(users: BTreeMap<String, String>) -> Self {
        Auth {
            users,
            verified: BTreeMap::new(),
        }
    }

    pub fn required(&self) -> bool {
        !self.users.is_empty()
    }

    /// Whether an `Authorization` header value grants access.
    pub fn check(&mut self, header: Option<&str>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(header) = header.filter(|h| h.len() <= MAX_AUTH_HEADER_LEN) else {
            return false;
        };
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return false;
        };
        let Some(decoded) = base64_decode(encoded.trim()) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = text.split_once(':') else {
            return false;
        };
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if self.verified.get(user) == Some(&digest) {
            return true;
        }
        if bcrypt::verify(password, hash).unwrap_or(false) {
            self.verified.insert(user.to_string(), digest);
            return true;
        }
        false
    }
}

/// Why the listener could not start.
#[derive(Debug)]
pub struct ServeError(pub String);

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServeError {}

/// The running listener.
pub struct MetricsServer {
    server: Arc<Server>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
    addr: String,
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(request: tiny_http::Request, metrics: &Mutex<Metrics>, auth: &mut Auth) {
    let authz = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    if !auth.check(authz.as_deref()) {
        let mut r = Response::from_string("unauthorized\n").with_status_code(401);
        if let Some(h) = header("WWW-Authenticate", "Basic realm=\"ksensor\"") {
            r.add_header(h);
        }
        let _ = request.respond(r);
        return;
    }
    let path = request.url().split('?').next().unwrap_or("");
    let response = match path {
        "/metrics" => {
            let text = match metrics.lock() {
                Ok(m) => m.render(),
                Err(poisoned) => poisoned.into_inner().render(),
            };
            let mut r = Response::from_string(text);
            if let Some(h) = header("Content-Type", TEXT_CONTENT_TYPE) {
                r.add_header(h);
            }
            r
        }
        "/healthz" => Response::from_string("ok\n"),
        "/" => Response::from_string("ksensor: see /metrics and /healthz\n"),
        _ => Response::from_string("not found\n").with_status_code(404),
    };
    let _ = request.respond(response);
}

impl MetricsServer {
    /// Binds `addr` and starts serving.
    pub fn start(
        addr: &str,
        web: &WebConfig,
        metrics: Arc<Mutex<Metrics>>,
    ) -> Result<MetricsServer, ServeError> {
        let server = match &web.tls_server_config {
            Some(tls) => {
                let read = |p: &std::path::Path| {
                    std::fs::read(p).map_err(|e| ServeError(format!("{}: {e}", p.display())))
                };
                let config = SslConfig {
                    certificate: read(&tls.cert_file)?,
                    private_key: read(&tls.key_file)?,
                };
                Server::https(addr, config)
            }
            None => Server::http(addr),
        }
        .map_err(|e| ServeError(format!("cannot listen on {addr}: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .map_or_else(|| addr.to_string(), |a| a.to_string());
        let server = Arc::new(server);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut auth = Auth::new(web.basic_auth_users.clone());
        let (srv, stop2) = (server.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("ksensor-http".into())
            .spawn(move || {
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    match srv.recv_timeout(STOP_POLL) {
                        Ok(Some(request)) => respond(request, &metrics, &mut auth),
                        Ok(None) => {}
                        Err(e) => log::warn("metrics listener error", &[("error", &e.to_string())]),
                    }
                }
            })
            .map_err(|e| ServeError(format!("cannot start the listener thread: {e}")))?;
        Ok(MetricsServer {
            server,
            stop,
            thread: Some(thread),
            addr,
        })
    }

    /// The bound address (with the real port when `:0` was asked).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn stop(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        // RFC 4648 §10 test vectors.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64_decode(enc).as_deref(),
                Some(plain.as_bytes()),
                "{enc}"
            );
        }
    }

    #[test]
    fn base64_rejects_bad_input() {
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "====", "Zm9"] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    fn auth() -> Auth {
        // Cost 4: the minimum, to keep the test fast.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        Auth::new(BTreeMap::from([("prom".to_string(), hash)]))
    }

    #[test]
    fn basic_auth_accepts_the_right_password_only() {
        let mut a = auth();
        // "prom:s3cret"
        assert!(a.check(Some("Basic cHJvbTpzM2NyZXQ=")));
        // Cached path.
        assert!(a.check(Some("Basic cHJvbTpzM2NyZXQ=")));
        // "prom:wrong"
        assert!(!a.check(Some("Basic cHJvbTp3cm9uZw==")));
        // "other:s3cret"
        assert!(!a.check(Some("Basic b3RoZXI6czNjcmV0")));
        assert!(!a.check(None));
        assert!(!a.check(Some("Bearer x")));
        assert!(!a.check(Some("Basic !!!!")));
        assert!(!a.check(Some(&format!("Basic {}", "A".repeat(MAX_AUTH_HEADER_LEN)))));
    }

    #[test]
    fn no_users_means_open() {
        let mut a = Auth::new(BTreeMap::new());
        assert!(!a.required());
        assert!(a.check(None));
    }

    fn get(addr: &str, path: &str, authz: Option<&str>) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        let extra = authz.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n").expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_metrics_healthz_and_404_and_enforces_auth() {
        let metrics = Arc::new(Mutex::new(Metrics::new(Some("t1")).expect("metrics")));
        let open = MetricsServer::start("127.0.0.1:0", &WebConfig::default(), metrics.clone())
            .expect("start");
        let addr = open.addr().to_string();
        let m = get(&addr, "/metrics", None);
        assert!(
            m.starts_with("HTTP/1.1 200") || m.starts_with("HTTP/1.0 200"),
            "{m}"
        );
        let build = format!(
            "ksensor_build_info{{version=\"{}\",sensor=\"t1\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(m.contains(&build), "{m}");
        assert!(get(&addr, "/healthz", None).ends_with("ok\n"));
        assert!(get(&addr, "/nope", None).contains(" 404 "));
        open.stop();

        let web = WebConfig {
            tls_server_config: None,
            basic_auth_users: BTreeMap::from([(
                "prom".to_string(),
                bcrypt::hash("s3cret", 4).expect("hash"),
            )]),
        };
        let locked = MetricsServer::start("127.0.0.1:0", &web, metrics).expect("start");
        let addr = locked.addr().to_string();
        let denied = get(&addr, "/metrics", None);
        assert!(denied.contains(" 401 "), "{denied}");
        assert!(denied.contains("WWW-Authenticate"), "{denied}");
        let ok = get(&addr, "/metrics", Some("Basic cHJvbTpzM2NyZXQ="));
        assert!(ok.contains("ksensor_rules "), "{ok}");
        locked.stop();
    }
}
