//! The metrics listener: `GET /metrics` (Prometheus text format) and `GET /healthz`, built to
//! face the network.
//!
//! Contract: [`MetricsServer::start`] binds `--listen` (plain HTTP/1.1, or HTTPS when the web
//! config names a certificate and key) and serves on one thread of its own, a tokio
//! current-thread runtime driving hyper: connections are tasks, not threads, so the listener
//! never takes more than that one core plus the bcrypt pool ([`auth::AUTH_THREADS`]) from
//! capture, whatever clients do. Each scrape locks the shared [`Metrics`] just long enough to
//! render them. Its defences, each counted in `ksensor_web_*` series ([`WebCounters`]):
//!
//! * [`server`]: a connection cap that closes the longest-waiting connection, never a scraper
//!   in the middle of a request; TLS-handshake, header (and keep-alive idle) and write
//!   timeouts ([`deadline`]); accept errors (out of descriptors) logged, paced and survived.
//! * [`auth`]: basic auth (RFC 7617) against bcrypt hashes on a small bounded pool, a cache of
//!   verified credentials so scrapes skip bcrypt, failed logins counted, budgeted and logged
//!   per source.
//! * [`tls`]: rustls 0.23 (ring provider); every key and certificate form is either
//!   supported or refused at start with one line naming the file.
//!
//! Request bodies are never read; request heads are bounded ([`server::MAX_BUF`]).

pub mod auth;
pub mod deadline;
pub mod server;
pub mod tls;

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::app::config::WebConfig;
use crate::app::log;
use crate::metrics::web::WebCounters;
use crate::metrics::Metrics;

/// How long `stop` waits for a bcrypt verification still running.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Why the listener could not start: one line, naming the file or address.
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
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    addr: String,
}

impl MetricsServer {
    /// Binds `addr` and starts serving. Logs one `level=warn` line when the address is not
    /// loopback and the web config leaves TLS or basic auth off (the README's "Hardening"
    /// section says why).
    pub fn start(
        addr: &str,
        web: &WebConfig,
        metrics: Arc<Mutex<Metrics>>,
    ) -> Result<MetricsServer, ServeError> {
        let tls = match &web.tls_server_config {
            Some(t) => Some(tls::server_config(t).map_err(ServeError)?),
            None => None,
        };
        let counters = {
            let m = metrics.lock().unwrap_or_else(PoisonError::into_inner);
            WebCounters::register(m.registry())
                .map_err(|e| ServeError(format!("metrics listener: {e}")))?
        };
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| ServeError(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| ServeError(format!("cannot listen on {addr}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(auth::AUTH_THREADS)
            .thread_name("ksensor-auth")
            .build()
            .map_err(|e| ServeError(format!("cannot start the metrics listener: {e}")))?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| ServeError(format!("cannot listen on {addr}: {e}")))?
        };
        let (tls_on, auth_on) = (tls.is_some(), !web.basic_auth_users.is_empty());
        let guarded = tls_on && auth_on;
        if !local.ip().is_loopback() && !guarded {
            log::warn(
                "metrics listener is not on loopback and has no TLS or no basic auth \
                 (--web-config): anyone who reaches it reads the host inventory",
                &[
                    ("addr", &local.to_string()),
                    ("tls", if tls_on { "on" } else { "off" }),
                    ("basic_auth", if auth_on { "on" } else { "off" }),
                ],
            );
        }
        let shared = Arc::new(server::Shared::new(
            metrics,
            auth::Auth::new(web.basic_auth_users.clone(), counters.clone()),
            counters,
            tls.map(tokio_rustls::TlsAcceptor::from),
        ));
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("ksensor-http".into())
            .spawn(move || {
                runtime.block_on(server::accept_loop(shared, listener, stop_rx));
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(|e| ServeError(format!("cannot start the listener thread: {e}")))?;
        Ok(MetricsServer {
            stop: Some(stop_tx),
            thread: Some(thread),
            addr: local.to_string(),
        })
    }

    /// The bound address (with the real port when `:0` was asked).
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Stops accepting, closes every connection and joins the listener's thread.
    pub fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::{Read, Write};

    fn get(addr: &str, path: &str, authz: Option<&str>) -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let extra = authz.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n{extra}\r\n").expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_metrics_healthz_and_404_and_enforces_auth() {
        let metrics = Arc::new(Mutex::new(Metrics::new(Some("t1")).expect("metrics")));
        let open =
            MetricsServer::start("127.0.0.1:0", &WebConfig::default(), metrics).expect("start");
        let addr = open.addr().to_string();
        let m = get(&addr, "/metrics", None);
        assert!(m.starts_with("HTTP/1.0 200"), "{m}");
        assert!(m.contains(TEXT_CONTENT_TYPE_HEADER), "{m}");
        let build = format!(
            "ksensor_build_info{{version=\"{}\",sensor=\"t1\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(m.contains(&build), "{m}");
        assert!(
            m.contains("ksensor_web_connections_closed_total{reason=\"limit\",sensor=\"t1\"} 0"),
            "{m}"
        );
        assert!(get(&addr, "/healthz", None).ends_with("ok\n"));
        assert!(get(&addr, "/nope", None).contains(" 404 "));
        open.stop();

        let metrics = Arc::new(Mutex::new(Metrics::new(None).expect("metrics")));
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
        assert!(
            denied.to_ascii_lowercase().contains("www-authenticate"),
            "{denied}"
        );
        let ok = get(&addr, "/metrics", Some("Basic cHJvbTpzM2NyZXQ="));
        assert!(ok.contains("ksensor_rules "), "{ok}");
        assert!(
            ok.contains("ksensor_web_auth_failures_total{reason=\"missing\"} 1"),
            "{ok}"
        );
        locked.stop();
    }

    const TEXT_CONTENT_TYPE_HEADER: &str = "content-type: text/plain; version=0.0.4";
}
