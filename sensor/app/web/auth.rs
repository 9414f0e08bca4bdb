//! HTTP basic auth (RFC 7617) against the web config's bcrypt hashes, kept off the serving
//! path.
//!
//! Contract: [`Auth::check`] decides one request's `Authorization` header. A pair that was
//! verified before (same user, same SHA-256 of the password; compared in constant time) is
//! granted at once: a scraper pays bcrypt once, not on every scrape. Anything else costs one
//! bcrypt verification, which runs on tokio's blocking pool (the runtime caps it at
//! [`AUTH_THREADS`] threads) and only when a queue slot is free ([`AUTH_QUEUE`]); with none
//! free the request is refused as `busy` without any work. Unknown users are verified against a
//! fixed hash of the same cost, as Prometheus's exporter toolkit does, so timing does not tell
//! which user names exist. Failed logins are counted by reason
//! (`ksensor_web_auth_failures_total`), and every verification is paid from its source's budget
//! (an IPv4 address or an IPv6 /64, [`Sources`]; a login that succeeds is refunded): a source
//! that used up [`FAILURE_BURST`] is refused as `rate_limited` without any bcrypt until its
//! budget refills, so one source cannot fill the queue. Each source gets at most one
//! `level=warn` log line per [`LOG_EVERY`] (with the count since the last), all sources together
//! at most [`MAX_LOG_LINES`] per [`LOG_EVERY`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::app::log;
use crate::metrics::web::{AuthFailure, WebCounters};
use crate::reason::Reason as _;

/// Longest `Authorization` header considered: user and password of any sane length fit.
pub const MAX_AUTH_HEADER_LEN: usize = 1024;
/// bcrypt threads: bcrypt is slow by design (tens of milliseconds at cost 10), so wrong
/// passwords are the cheapest way to burn the sensor's CPU; one core's worth is the most the
/// listener may take from capture on a 2-core sensor, and it verifies a dozen logins a second.
pub const AUTH_THREADS: usize = 1;
/// Verifications waiting or running: at cost 10 about a second of work on one thread, so a
/// first login queued behind a full queue still answers well inside Prometheus's default 10 s
/// scrape timeout.
pub const AUTH_QUEUE: usize = 16;
/// Verifications a source may spend before it is refused without one; a failed login spends
/// one, a successful one gives it back (a person mistyping a password a few times stays below
/// it).
pub const FAILURE_BURST: u32 = 10;
/// One more failed login is allowed per this interval once a source's budget is spent.
pub const FAILURE_REFILL: Duration = Duration::from_secs(6);
/// Sources whose failures are remembered; beyond it the one seen least recently is forgotten.
/// Bounds the table however many addresses an IPv6 attacker has.
pub const MAX_SOURCES: usize = 1024;
/// At most one log line per source per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// At most this many failed-login lines per [`LOG_EVERY`] for all sources together: the log
/// must stay readable whatever the number of sources; the counter has every failure.
pub const MAX_LOG_LINES: u32 = 20;
/// Longest user name copied into a log line.
const MAX_LOGGED_USER: usize = 64;

/// A bcrypt hash (cost 10, made with glibc's `crypt`) verified for unknown users so that they
/// take as long as known ones; whatever it verifies to, an unknown user is refused.
const DUMMY_HASH: &str = "$2b$10$TBH7LFDHvl6JOWouete7Ie4x2rQCZ41Mg4TeAn9U4j4Z7QKlUgrc6";

/// What the listener answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Granted,
    Refused(AuthFailure),
}

/// Per-source failed-login budgets (a token bucket each) and log pacing.
#[derive(Default)]
pub struct Sources {
    table: HashMap<IpAddr, Source>,
    log_window: Option<Instant>,
    log_lines: u32,
}

struct Source {
    /// Failures still allowed (whole tokens), refilled one per [`FAILURE_REFILL`].
    tokens: u32,
    refilled: Instant,
    seen: Instant,
    /// Failures since the last log line about this source.
    unlogged: u64,
    logged: Option<Instant>,
}

/// The address a budget is charged to: IPv4 as is, IPv6 by its /64 (one host usually owns a
/// whole /64 and picks addresses in it at will, RFC 8981); IPv4-mapped IPv6 as IPv4.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl Sources {
    fn entry(&mut self, key: IpAddr, now: Instant) -> &mut Source {
        if !self.table.contains_key(&key) && self.table.len() >= MAX_SOURCES {
            let oldest = self
                .table
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.table.remove(&k);
            }
        }
        let s = self.table.entry(key).or_insert(Source {
            tokens: FAILURE_BURST,
            refilled: now,
            seen: now,
            unlogged: 0,
            logged: None,
        });
        s.seen = now;
        let steps =
            now.saturating_duration_since(s.refilled).as_nanos() / FAILURE_REFILL.as_nanos();
        if steps > 0 {
            let steps = u32::try_from(steps).unwrap_or(u32::MAX);
            s.tokens = s.tokens.saturating_add(steps).min(FAILURE_BURST);
            s.refilled = now;
        }
        s
    }

    /// Takes one verification from `ip`'s budget; false when it is spent.
    pub fn begin(&mut self, ip: IpAddr, now: Instant) -> bool {
        let s = self.entry(source_key(ip), now);
        let ok = s.tokens > 0;
        s.tokens = s.tokens.saturating_sub(1);
        ok
    }

    /// Gives back what [`Sources::begin`] took: the login succeeded.
    pub fn succeeded(&mut self, ip: IpAddr, now: Instant) {
        let s = self.entry(source_key(ip), now);
        s.tokens = s.tokens.saturating_add(1).min(FAILURE_BURST);
    }

    /// Records one failed login from `ip`; `Some(n)` when a log line is due, with the failures
    /// it reports (this one included).
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Option<u64> {
        let s = self.entry(source_key(ip), now);
        s.unlogged = s.unlogged.saturating_add(1);
        let due = s
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        if !due {
            return None;
        }
        let n = s.unlogged;
        let window_open = self
            .log_window
            .is_some_and(|at| now.saturating_duration_since(at) < LOG_EVERY);
        if !window_open {
            self.log_window = Some(now);
            self.log_lines = 0;
        }
        if self.log_lines >= MAX_LOG_LINES {
            return None;
        }
        self.log_lines += 1;
        let s = self.entry(source_key(ip), now);
        s.unlogged = 0;
        s.logged = Some(now);
        Some(n)
    }
}

/// `user:password` from an `Authorization` header value, or why not.
pub fn parse_basic(header: Option<&[u8]>) -> Result<(String, String), AuthFailure> {
    let header = header.ok_or(AuthFailure::Missing)?;
    if header.len() > MAX_AUTH_HEADER_LEN {
        return Err(AuthFailure::Malformed);
    }
    let header = std::str::from_utf8(header).map_err(|_| AuthFailure::Malformed)?;
    // RFC 7617 §2 and RFC 9110 §11.1: the scheme name is case-insensitive.
    let (scheme, encoded) = header.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthFailure::Malformed);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthFailure::Malformed)?;
    let text = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
    let (user, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
    Ok((user.to_string(), password.to_string()))
}

fn digest(password: &str) -> [u8; 32] {
    Sha256::digest(password.as_bytes()).into()
}

/// Equality of two digests in time that does not depend on where they differ (a digest of the
/// right password must not leak byte by byte through response times).
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Users, the verified-credential cache, failure budgets and the verification queue.
pub struct Auth {
    users: BTreeMap<String, String>,
    /// Last verified password digest per user; written by the verification job itself, so a
    /// login whose client gave up waiting still warms it.
    verified: Arc<Mutex<HashMap<String, [u8; 32]>>>,
    sources: Mutex<Sources>,
    queue: Arc<Semaphore>,
    counters: WebCounters,
}

impl Auth {
    pub fn new(users: BTreeMap<String, String>, counters: WebCounters) -> Auth {
        Auth {
            users,
            verified: Arc::new(Mutex::new(HashMap::new())),
            sources: Mutex::new(Sources::default()),
            queue: Arc::new(Semaphore::new(AUTH_QUEUE)),
            counters,
        }
    }

    pub fn required(&self) -> bool {
        !self.users.is_empty()
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, user: &str, d: &[u8; 32]) -> bool {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        verified.get(user).is_some_and(|v| same_digest(v, d))
    }

    /// Decides a request from `peer` with this `Authorization` header (must run inside the
    /// listener's tokio runtime).
    pub async fn check(&self, peer: IpAddr, header: Option<&[u8]>) -> Decision {
        if !self.required() {
            return Decision::Granted;
        }
        let (user, password) = match parse_basic(header) {
            Ok(pair) => pair,
            // No credentials at all is how a browser asks for the login prompt: counted, not
            // logged.
            Err(AuthFailure::Missing) => return Self::refuse(AuthFailure::Missing, &self.counters),
            Err(why) => return self.fail(peer, "", why),
        };
        let d = digest(&password);
        if self.cached(&user, &d) {
            return Decision::Granted;
        }
        let allowed = self.sources().begin(peer, Instant::now());
        if !allowed {
            return self.fail(peer, &user, AuthFailure::RateLimited);
        }
        let Ok(permit) = self.queue.clone().try_acquire_owned() else {
            self.sources().succeeded(peer, Instant::now());
            return Self::refuse(AuthFailure::Busy, &self.counters);
        };
        let known = self.users.get(&user).cloned();
        let hash = known.clone().unwrap_or_else(|| DUMMY_HASH.to_string());
        let verified = self.verified.clone();
        let user_for_job = user.clone();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let ok = bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false);
            if ok && known.is_some() {
                verified
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(user_for_job, d);
            }
            ok && known.is_some()
        });
        match job.await {
            Ok(true) => {
                self.sources().succeeded(peer, Instant::now());
                Decision::Granted
            }
            Ok(false) if self.users.contains_key(&user) => {
                self.fail(peer, &user, AuthFailure::WrongPassword)
            }
            Ok(false) => self.fail(peer, &user, AuthFailure::UnknownUser),
            // The runtime is shutting down.
            Err(_) => Self::refuse(AuthFailure::Busy, &self.counters),
        }
    }

    /// Counts a refusal that is no guess at a password (no credentials, or no room to verify
    /// them): not logged.
    fn refuse(why: AuthFailure, counters: &WebCounters) -> Decision {
        counters.auth_failed(why);
        Decision::Refused(why)
    }

    /// Counts a failed login and logs it when due for its source.
    fn fail(&self, peer: IpAddr, user: &str, why: AuthFailure) -> Decision {
        self.counters.auth_failed(why);
        let due = self.sources().failed(peer, Instant::now());
        if let Some(n) = due {
            let mut end = user.len().min(MAX_LOGGED_USER);
            while !user.is_char_boundary(end) {
                end -= 1;
            }
            log::warn(
                "metrics listener: failed login",
                &[
                    ("source", &peer.to_canonical().to_string()),
                    ("user", user.get(..end).unwrap_or("")),
                    ("reason", why.label()),
                    ("failures", &n.to_string()),
                    ("period_s", &LOG_EVERY.as_secs().to_string()),
                ],
            );
        }
        Decision::Refused(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> WebCounters {
        WebCounters::register(&prometheus::Registry::new()).expect("register")
    }

    fn auth() -> Auth {
        // Cost 4: the minimum, to keep the test fast.
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        Auth::new(BTreeMap::from([("prom".to_string(), hash)]), counters())
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(AUTH_THREADS)
            .build()
            .expect("runtime")
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn parse_basic_follows_rfc7617() {
        // RFC 7617 §2's example: "Aladdin:open sesame".
        assert_eq!(
            parse_basic(Some(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")),
            Ok(("Aladdin".to_string(), "open sesame".to_string()))
        );
        assert_eq!(
            parse_basic(Some(b"bAsIc cHJvbTpzM2NyZXQ=")),
            Ok(("prom".to_string(), "s3cret".to_string()))
        );
        // A colon in the password is part of it (§2: the user-id cannot contain one).
        assert_eq!(
            parse_basic(Some(b"Basic YTpiOmM=")),
            Ok(("a".to_string(), "b:c".to_string()))
        );
        assert_eq!(parse_basic(None), Err(AuthFailure::Missing));
        for bad in [
            &b"Bearer x"[..],
            b"Basic !!!!",
            b"Basic Zg=",
            b"Basic Zm9v",
            b"Basic",
            b"Basic /w==",
        ] {
            assert_eq!(
                parse_basic(Some(bad)),
                Err(AuthFailure::Malformed),
                "{bad:?}"
            );
        }
        let long = format!("Basic {}", "A".repeat(MAX_AUTH_HEADER_LEN));
        assert_eq!(
            parse_basic(Some(long.as_bytes())),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn right_password_only_and_cached() {
        let a = auth();
        let rt = rt();
        let check = |h: Option<&str>| rt.block_on(a.check(LOCAL, h.map(str::as_bytes)));
        assert_eq!(check(Some("Basic cHJvbTpzM2NyZXQ=")), Decision::Granted);
        assert!(a.cached("prom", &digest("s3cret")));
        assert_eq!(check(Some("Basic cHJvbTpzM2NyZXQ=")), Decision::Granted);
        // "prom:wrong"
        assert_eq!(
            check(Some("Basic cHJvbTp3cm9uZw==")),
            Decision::Refused(AuthFailure::WrongPassword)
        );
        // "other:s3cret"
        assert_eq!(
            check(Some("Basic b3RoZXI6czNjcmV0")),
            Decision::Refused(AuthFailure::UnknownUser)
        );
        assert_eq!(check(None), Decision::Refused(AuthFailure::Missing));
        assert_eq!(
            check(Some("Bearer x")),
            Decision::Refused(AuthFailure::Malformed)
        );
    }

    #[test]
    fn no_users_means_open() {
        let a = Auth::new(BTreeMap::new(), counters());
        assert!(!a.required());
        assert_eq!(rt().block_on(a.check(LOCAL, None)), Decision::Granted);
    }

    #[test]
    fn a_source_that_keeps_failing_is_refused_without_bcrypt_and_refills() {
        let mut s = Sources::default();
        let t0 = Instant::now();
        for i in 0..FAILURE_BURST {
            assert!(s.begin(LOCAL, t0), "verification {i}");
            let logged = s.failed(LOCAL, t0);
            assert_eq!(logged, (i == 0).then_some(1), "only the first is logged");
        }
        assert!(!s.begin(LOCAL, t0));
        // Another source is not affected.
        let other: IpAddr = "192.0.2.7".parse().expect("ip");
        assert!(s.begin(other, t0));
        // One verification allowed again after one refill interval.
        let t1 = t0 + FAILURE_REFILL;
        assert!(s.begin(LOCAL, t1));
        assert_eq!(s.failed(LOCAL, t1), None);
        assert!(!s.begin(LOCAL, t1));
        // The next line, a period later, reports what was not logged.
        assert_eq!(
            s.failed(LOCAL, t0 + LOG_EVERY),
            Some(u64::from(FAILURE_BURST) + 1)
        );
    }

    #[test]
    fn a_successful_login_is_refunded() {
        let mut s = Sources::default();
        let t0 = Instant::now();
        for _ in 0..(3 * FAILURE_BURST) {
            assert!(s.begin(LOCAL, t0));
            s.succeeded(LOCAL, t0);
        }
    }

    #[test]
    fn ipv6_sources_are_charged_per_64_and_the_table_is_capped() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        assert_eq!(source_key(a), source_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(
            source_key(mapped),
            "192.0.2.1".parse::<IpAddr>().expect("ip")
        );
        let mut s = Sources::default();
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES as u32 + 10) {
            s.failed(IpAddr::V4(i.into()), t0);
        }
        assert_eq!(s.table.len(), MAX_SOURCES);
    }

    #[test]
    fn log_lines_are_capped_across_sources() {
        let mut s = Sources::default();
        let t0 = Instant::now();
        let lines = (0..100u32)
            .filter(|i| s.failed(IpAddr::V4((*i).into()), t0).is_some())
            .count();
        assert_eq!(lines, MAX_LOG_LINES as usize);
    }

    #[test]
    fn dummy_hash_is_a_valid_cost_10_hash() {
        let parts: bcrypt::HashParts = DUMMY_HASH.parse().expect("parses");
        assert_eq!(parts.get_cost(), 10);
        assert_eq!(bcrypt::verify("", DUMMY_HASH).ok(), Some(false));
    }

    #[test]
    fn failure_reasons_have_labels() {
        assert_eq!(AuthFailure::ALL.len(), 6);
        assert_eq!(AuthFailure::RateLimited.label(), "rate_limited");
    }
}
