//! The accept loop, the connection cap and one connection's life.
//!
//! Contract: every connection is a task on the listener's one tokio thread (never a thread of
//! its own). At most [`MAX_CONNECTIONS`] are open; a new one beyond that closes an open one
//! that is not inside a request: one of the source holding the most connections (an IPv4
//! address or an IPv6 /64), the one of those that has waited longest since its last request
//! (or since it connected, if it never sent one). When every open connection is inside a
//! request, the new one is closed at once. So one source's idle or stalled connections cannot
//! lock another source's scraper out, and within a source a scraper, which sends its request as
//! soon as it connects, is the last to go. Each connection has a TLS handshake
//! timeout, a header timeout (a whole request head must arrive within it; hyper starts it again
//! for every request, so it is also the keep-alive idle timeout) and a write timeout
//! ([`WriteDeadline`]). Accept errors are counted, logged at most once per
//! [`ACCEPT_LOG_EVERY`], and survived: when the process is out of descriptors the loop closes
//! the longest-waiting connection (so the next accept can succeed) and pauses
//! [`ACCEPT_ERROR_PAUSE`] before trying again.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use super::auth::{source_key, Auth, Decision};
use super::deadline::WriteDeadline;
use crate::app::log;
use crate::metrics::web::{AuthFailure, ConnClose, WebCounters};
use crate::metrics::{Metrics, TEXT_CONTENT_TYPE};
use crate::reason::Reason as _;

/// Connections open at once. Prometheus keeps one connection per target (two for an HA pair),
/// an operator adds a curl: 64 leaves room for dozens of scrapers while bounding descriptors
/// (64 of systemd's `LimitNOFILE=1024` in `deploy/ksensor.service`) and memory (hyper's buffers
/// plus rustls state, some tens of kilobytes each).
pub const MAX_CONNECTIONS: usize = 64;
/// A whole request head must arrive within this (slow-header clients), and a kept-alive
/// connection may idle this long between requests. Prometheus sends its request as soon as it
/// has connected, and reconnects at the next scrape if the connection was closed meanwhile.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A response stalls at most this long with the client accepting no byte of it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake is a few round trips; this is generous for any real client.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// hyper's read buffer per connection (its minimum is 8 KiB): a request is a GET line and a
/// few headers, and a bigger head is refused (431) rather than buffered.
pub const MAX_BUF: usize = 16 * 1024;
/// Pause after an accept error, so a lasting one (no descriptors) does not spin the core.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line about accept errors, and one about the connection cap, per interval.
pub const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// One open connection.
struct Slot {
    /// Its source, as failed logins are charged ([`source_key`]).
    source: IpAddr,
    /// When it connected or last started a request.
    last_request: Instant,
    in_request: bool,
    /// Closes it (its task drops the socket) when it is evicted.
    evict: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Slots {
    next_id: u64,
    open: HashMap<u64, Slot>,
}

enum Admission {
    Admitted {
        id: u64,
        evicted: oneshot::Receiver<()>,
        made_room: bool,
    },
    Full,
}

impl Slots {
    /// Closes a connection that is not inside a request: of the source with the most open
    /// connections, the one that waited longest since its last request. Whether there was one.
    fn evict_one(&mut self) -> bool {
        let mut per_source: HashMap<IpAddr, usize> = HashMap::new();
        for s in self.open.values() {
            *per_source.entry(s.source).or_default() += 1;
        }
        let victim = self
            .open
            .iter()
            .filter(|(_, s)| !s.in_request)
            .max_by_key(|(_, s)| {
                let held = per_source.get(&s.source).copied().unwrap_or(0);
                (held, Reverse(s.last_request))
            })
            .map(|(id, _)| *id);
        let Some(slot) = victim.and_then(|id| self.open.remove(&id)) else {
            return false;
        };
        if let Some(tx) = slot.evict {
            let _ = tx.send(());
        }
        true
    }

    fn admit(&mut self, peer: IpAddr, now: Instant) -> Admission {
        let made_room = self.open.len() >= MAX_CONNECTIONS;
        if made_room && !self.evict_one() {
            return Admission::Full;
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.open.insert(
            id,
            Slot {
                source: source_key(peer),
                last_request: now,
                in_request: false,
                evict: Some(tx),
            },
        );
        Admission::Admitted {
            id,
            evicted: rx,
            made_room,
        }
    }

    fn set_in_request(&mut self, id: u64, on: bool, now: Instant) {
        if let Some(s) = self.open.get_mut(&id) {
            s.in_request = on;
            if on {
                s.last_request = now;
            }
        }
    }
}

/// Counts events and says when a log line is due (at most one per interval, with the count
/// since the last line).
#[derive(Default)]
struct Pacer {
    last: Option<Instant>,
    unlogged: u64,
}

impl Pacer {
    fn due(&mut self, now: Instant, every: Duration) -> Option<u64> {
        self.unlogged = self.unlogged.saturating_add(1);
        if self
            .last
            .is_some_and(|at| now.saturating_duration_since(at) < every)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// What every connection task shares.
pub struct Shared {
    pub metrics: Arc<Mutex<Metrics>>,
    pub auth: Auth,
    pub counters: WebCounters,
    pub tls: Option<TlsAcceptor>,
    slots: Mutex<Slots>,
    accept_log: Mutex<Pacer>,
    limit_log: Mutex<Pacer>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(
        metrics: Arc<Mutex<Metrics>>,
        auth: Auth,
        counters: WebCounters,
        tls: Option<TlsAcceptor>,
    ) -> Shared {
        Shared {
            metrics,
            auth,
            counters,
            tls,
            slots: Mutex::new(Slots::default()),
            accept_log: Mutex::new(Pacer::default()),
            limit_log: Mutex::new(Pacer::default()),
        }
    }

    fn limit_reached(&self, closed: ConnClose) {
        self.counters.closed(closed);
        if let Some(n) = lock(&self.limit_log).due(Instant::now(), ACCEPT_LOG_EVERY) {
            log::warn(
                "metrics listener at its connection limit; closing connections",
                &[
                    ("limit", &MAX_CONNECTIONS.to_string()),
                    ("action", closed.label()),
                    ("closed", &n.to_string()),
                ],
            );
        }
    }
}

/// Out of descriptors or kernel memory: closing a connection frees what the next accept needs.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Accepts until `stop` fires (or its sender is dropped).
pub async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let admission = lock(&shared.slots).admit(peer.ip(), Instant::now());
                match admission {
                    Admission::Admitted {
                        id,
                        evicted,
                        made_room,
                    } => {
                        if made_room {
                            shared.limit_reached(ConnClose::Evicted);
                        }
                        shared.counters.opened();
                        // Responses are written whole; Nagle would only delay their tail.
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(connection(shared.clone(), stream, peer, id, evicted));
                    }
                    Admission::Full => {
                        drop(stream);
                        shared.limit_reached(ConnClose::Limit);
                    }
                }
            }
            Err(e) => {
                shared.counters.accept_error();
                let freed = out_of_resources(&e) && lock(&shared.slots).evict_one();
                if freed {
                    shared.counters.closed(ConnClose::Evicted);
                }
                if let Some(n) = lock(&shared.accept_log).due(Instant::now(), ACCEPT_LOG_EVERY) {
                    log::warn(
                        "metrics listener cannot accept connections",
                        &[
                            ("error", &e.to_string()),
                            ("errors", &n.to_string()),
                            ("closed_idle", if freed { "1" } else { "0" }),
                        ],
                    );
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Releases a connection's slot however its task ends (closed, evicted, runtime shut down).
struct SlotGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.shared.slots).open.remove(&self.id);
        self.shared.counters.released();
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    evicted: oneshot::Receiver<()>,
) {
    let _slot = SlotGuard {
        shared: shared.clone(),
        id,
    };
    let io = WriteDeadline::new(stream, WRITE_TIMEOUT);
    let closed = tokio::select! {
        // Eviction first: a connection evicted before its request was read must not start
        // one (its slot is gone, so nothing would protect it from being dropped half-way, after
        // it spent a verification from its source's budget).
        biased;
        // Counted by whoever evicted it.
        _ = evicted => None,
        closed = serve(shared.clone(), io, peer, id) => closed,
    };
    if let Some(why) = closed {
        shared.counters.closed(why);
    }
}

async fn serve(
    shared: Arc<Shared>,
    io: WriteDeadline<TcpStream>,
    peer: SocketAddr,
    id: u64,
) -> Option<ConnClose> {
    match shared.tls.clone() {
        Some(acceptor) => {
            let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                Err(_) => return Some(ConnClose::TlsHandshakeTimeout),
                Ok(Err(_)) => return Some(ConnClose::TlsHandshakeFailed),
                Ok(Ok(tls)) => tls,
            };
            http(shared, TokioIo::new(tls), peer, id).await
        }
        None => http(shared, TokioIo::new(io), peer, id).await,
    }
}

fn timed_out_writing(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}

async fn http<I>(shared: Arc<Shared>, io: I, peer: SocketAddr, id: u64) -> Option<ConnClose>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let shared = svc_shared.clone();
        async move { Ok::<_, Infallible>(respond(req, &shared, peer, id).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_BUF);
    match builder.serve_connection(io, service).await {
        Ok(()) => None,
        Err(e) if e.is_timeout() => Some(ConnClose::HeaderTimeout),
        Err(e) if timed_out_writing(&e) => Some(ConnClose::WriteTimeout),
        Err(e) if e.is_parse() || e.is_parse_too_large() => Some(ConnClose::Protocol),
        // The client went away (reset, half a request): its doing, not a closing of ours.
        Err(_) => None,
    }
}

/// Marks the connection as inside a request for as long as the response is being decided.
struct InRequest<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for InRequest<'_> {
    fn drop(&mut self) {
        lock(&self.shared.slots).set_in_request(self.id, false, Instant::now());
    }
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn refusal(why: AuthFailure) -> Response<Full<Bytes>> {
    let (status, body) = match why {
        AuthFailure::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "too many failed logins\n"),
        AuthFailure::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy; try again\n"),
        _ => (StatusCode::UNAUTHORIZED, "unauthorized\n"),
    };
    let mut r = reply(status, body);
    let h = r.headers_mut();
    h.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"ksensor\""),
    );
    if matches!(why, AuthFailure::RateLimited | AuthFailure::Busy) {
        h.insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

async fn respond(
    req: Request<Incoming>,
    shared: &Shared,
    peer: SocketAddr,
    id: u64,
) -> Response<Full<Bytes>> {
    lock(&shared.slots).set_in_request(id, true, Instant::now());
    let _in_request = InRequest { shared, id };
    let authz = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
    if let Decision::Refused(why) = shared.auth.check(peer.ip(), authz).await {
        return refusal(why);
    }
    match req.uri().path() {
        "/metrics" => {
            // Rendering takes the lock only as long as encoding the registry (the live loop
            // holds it a moment per tick).
            let text = lock(&shared.metrics).render();
            let mut r = reply(StatusCode::OK, text);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
            r
        }
        "/healthz" => reply(StatusCode::OK, "ok\n"),
        "/" => reply(StatusCode::OK, "ksensor: see /metrics and /healthz\n"),
        _ => reply(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn admitted(a: Admission) -> u64 {
        match a {
            Admission::Admitted { id, .. } => id,
            Admission::Full => panic!("refused"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_waiting_idle_connection_goes() {
        let mut s = Slots::default();
        let t0 = Instant::now();
        let mut ids = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            match s.admit(A, t0 + Duration::from_millis(i as u64)) {
                Admission::Admitted { id, made_room, .. } => {
                    assert!(!made_room);
                    ids.push(id);
                }
                Admission::Full => panic!("refused below the cap"),
            }
        }
        // The oldest is inside a request; the second oldest goes.
        s.set_in_request(ids[0], true, t0);
        let later = t0 + Duration::from_secs(1);
        assert!(matches!(
            s.admit(A, later),
            Admission::Admitted {
                made_room: true,
                ..
            }
        ));
        assert!(s.open.contains_key(&ids[0]));
        assert!(!s.open.contains_key(&ids[1]));
        assert_eq!(s.open.len(), MAX_CONNECTIONS);
        // All inside a request: the newcomer is refused.
        for slot in s.open.values_mut() {
            slot.in_request = true;
        }
        assert!(matches!(s.admit(A, later), Admission::Full));
        assert_eq!(s.open.len(), MAX_CONNECTIONS);
    }

    #[test]
    fn the_source_holding_most_connections_pays_for_a_newcomer() {
        let mut s = Slots::default();
        let t0 = Instant::now();
        // B's scraper connected first and is idle, the oldest of all.
        let scraper = admitted(s.admit(B, t0));
        for i in 1..MAX_CONNECTIONS {
            admitted(s.admit(A, t0 + Duration::from_millis(i as u64)));
        }
        for _ in 0..(3 * MAX_CONNECTIONS) {
            admitted(s.admit(A, t0 + Duration::from_secs(1)));
            assert!(s.open.contains_key(&scraper), "A's flood evicted B");
        }
        // B's next connection evicts one of A's, not B's own older one.
        let second = admitted(s.admit(B, t0 + Duration::from_secs(2)));
        assert!(s.open.contains_key(&scraper) && s.open.contains_key(&second));
    }

    #[test]
    fn a_request_refreshes_a_connection() {
        let mut s = Slots::default();
        let t0 = Instant::now();
        let first = admitted(s.admit(A, t0));
        let _second = s.admit(A, t0 + Duration::from_millis(1));
        s.set_in_request(first, true, t0 + Duration::from_millis(2));
        s.set_in_request(first, false, t0 + Duration::from_millis(3));
        assert!(s.evict_one());
        assert!(s.open.contains_key(&first), "the one that asked last stays");
    }

    #[test]
    fn pacer_logs_once_per_interval_with_the_count() {
        let mut p = Pacer::default();
        let t0 = Instant::now();
        assert_eq!(p.due(t0, ACCEPT_LOG_EVERY), Some(1));
        assert_eq!(p.due(t0, ACCEPT_LOG_EVERY), None);
        assert_eq!(p.due(t0 + Duration::from_secs(1), ACCEPT_LOG_EVERY), None);
        assert_eq!(p.due(t0 + ACCEPT_LOG_EVERY, ACCEPT_LOG_EVERY), Some(3));
    }
}
