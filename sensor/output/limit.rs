//! Event rate limits: how many event lines each client address, and the sensor as a whole, may
//! write per second of capture time.
//!
//! Contract: [`EventLimiter::admit`] is asked once per event line, in capture order (the
//! collector applies observations in that order whatever the number of workers), with the
//! packet's timestamp and the client address the event is about. It answers whether the line is
//! written; a refused line is counted under a [`Suppressed`] reason. Only event *lines* are
//! limited: the caller still hands every observation to the inventory, so reports, verdicts and
//! metrics keep every detection.
//!
//! Two token buckets decide: one per client address (rate [`EventLimits::per_source`] lines a
//! second, burst ten seconds of it) and one for the sensor ([`EventLimits::global`], the same
//! shape). A line needs a token from both. Buckets refill by the packets' timestamps, never the
//! wall clock, so a replay gives the same lines on every run and with any number of workers; a
//! timestamp that goes backwards (files out of order) refills nothing. Arithmetic is in
//! integers (tokens counted in billionths), so no rounding differs between machines.
//!
//! The per-address table holds at most [`MAX_SOURCES`] addresses. When it is full, the address
//! that entered it first is dropped (counted in [`LimiterCounts::sources_evicted`]) and comes
//! back later with a full bucket: a flood from spoofed addresses churns the table, and the
//! global bucket is what holds it. Each admission costs a hash lookup and a few integer
//! operations; the table costs about 64 bytes per address (4 MiB full).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use crate::observation::{Observation, Observed};
use crate::reason::ReasonCounts;
use crate::time::Timestamp;

/// Client addresses with a bucket of their own. 65 536 covers the clients of a large site;
/// beyond it the oldest entry goes (see the module docs).
pub const MAX_SOURCES: usize = 1 << 16;
/// Event lines per second one client address may write, sustained. A host running Kaspersky
/// resolves and contacts its update and KSN servers a few times a minute; a browser with
/// `--all-names` names tens of hosts while a page loads. 20 a second sustained, 200 at once,
/// lets all of that through and stops a single address from flooding the file.
pub const DEFAULT_PER_SOURCE_RATE: u32 = 20;
/// Event lines per second for the whole sensor, sustained: at about 400 bytes a line, 1 000
/// lines a second is 400 KB/s (35 GB a day at worst), instead of the 15 MB/s a DNS flood
/// otherwise writes.
pub const DEFAULT_GLOBAL_RATE: u32 = 1_000;
/// A bucket holds this many seconds of its rate: a burst of lines after a quiet spell passes.
pub const BURST_SECONDS: u64 = 10;

/// Tokens are counted in billionths, so that a bucket refills by nanoseconds of capture time.
const SCALE: u64 = 1_000_000_000;

crate::reason_enum! {
    /// Why an event line was not written.
    pub enum Suppressed {
        /// The client address had spent its bucket.
        PerSource => "per_source",
        /// The sensor had spent its global bucket.
        Global => "global",
    }
}

/// The limits; a rate of 0 turns that limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventLimits {
    /// Lines per second per client address.
    pub per_source: u32,
    /// Lines per second for the sensor.
    pub global: u32,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            per_source: DEFAULT_PER_SOURCE_RATE,
            global: DEFAULT_GLOBAL_RATE,
        }
    }
}

impl EventLimits {
    /// No limit at all (tests, and `--event-rate 0 --event-rate-global 0`).
    pub const OFF: EventLimits = EventLimits {
        per_source: 0,
        global: 0,
    };
}

/// One token bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// Tokens × [`SCALE`].
    tokens: u64,
    /// Capture time of the last refill.
    at: Timestamp,
}

impl Bucket {
    fn full(rate: u32, now: Timestamp) -> Bucket {
        Bucket {
            tokens: capacity(rate),
            at: now,
        }
    }

    /// Refills for the time since the last refill, then takes one token if there is one.
    fn take(&mut self, rate: u32, now: Timestamp) -> bool {
        self.refill(rate, now);
        if self.tokens < SCALE {
            return false;
        }
        self.tokens -= SCALE;
        true
    }

    fn refill(&mut self, rate: u32, now: Timestamp) {
        if now > self.at {
            let nanos = u64::try_from(now.saturating_sub(self.at).as_nanos()).unwrap_or(u64::MAX);
            let add = nanos.saturating_mul(u64::from(rate));
            self.tokens = self.tokens.saturating_add(add).min(capacity(rate));
            self.at = now;
        }
    }

    /// Gives back a token taken by [`Bucket::take`] (the other bucket refused the line).
    fn refund(&mut self, rate: u32) {
        self.tokens = self.tokens.saturating_add(SCALE).min(capacity(rate));
    }
}

fn capacity(rate: u32) -> u64 {
    u64::from(rate)
        .saturating_mul(BURST_SECONDS)
        .saturating_mul(SCALE)
}

/// What the limiter counted.
#[derive(Clone, Debug, Default)]
pub struct LimiterCounts {
    pub suppressed: ReasonCounts<Suppressed>,
    /// Addresses dropped from the full table (they start again with a full bucket).
    pub sources_evicted: u64,
}

/// The limiter; see the module docs.
pub struct EventLimiter {
    limits: EventLimits,
    global: Option<Bucket>,
    sources: HashMap<IpAddr, Bucket, foldhash::fast::FixedState>,
    /// Addresses in the order they entered `sources` (each once).
    order: VecDeque<IpAddr>,
    pub counts: LimiterCounts,
}

impl EventLimiter {
    pub fn new(limits: EventLimits) -> EventLimiter {
        EventLimiter {
            limits,
            global: None,
            sources: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x006c_696d_6974)),
            order: VecDeque::new(),
            counts: LimiterCounts::default(),
        }
    }

    pub fn limits(&self) -> EventLimits {
        self.limits
    }

    /// Whether the event line about `source` at capture time `now` may be written; a refusal
    /// is counted. `None`: an event about no client (limited only globally).
    pub fn admit(&mut self, source: Option<IpAddr>, now: Timestamp) -> bool {
        let EventLimits { per_source, global } = self.limits;
        let mut took_source: Option<IpAddr> = None;
        if let (Some(ip), true) = (source, per_source > 0) {
            if let Entry::Vacant(v) = self.sources.entry(ip) {
                v.insert(Bucket::full(per_source, now));
                self.order.push_back(ip);
                self.evict_over_cap();
            }
            let Some(bucket) = self.sources.get_mut(&ip) else {
                return false;
            };
            if !bucket.take(per_source, now) {
                self.counts.suppressed.incr(Suppressed::PerSource);
                return false;
            }
            took_source = Some(ip);
        }
        if global > 0 {
            let bucket = self.global.get_or_insert_with(|| Bucket::full(global, now));
            if !bucket.take(global, now) {
                if let Some(b) = took_source.and_then(|ip| self.sources.get_mut(&ip)) {
                    b.refund(per_source);
                }
                self.counts.suppressed.incr(Suppressed::Global);
                return false;
            }
        }
        true
    }

    /// Addresses with a bucket now.
    pub fn sources(&self) -> usize {
        self.sources.len()
    }

    fn evict_over_cap(&mut self) {
        while self.sources.len() > MAX_SOURCES {
            match self.order.pop_front() {
                Some(old) => {
                    self.sources.remove(&old);
                    self.counts.sources_evicted = self.counts.sources_evicted.saturating_add(1);
                }
                None => break,
            }
        }
    }
}

/// The client address an event line is about.
pub fn event_source(obs: &Observed) -> Option<IpAddr> {
    match &obs.what {
        Observation::Name(s) => Some(s.client.ip),
        Observation::OtherName(s) => Some(s.client.ip),
        Observation::DnsAnswer { client, .. }
        | Observation::Nameless { client, .. }
        | Observation::KscSession { client, .. }
        | Observation::UpdateRequest { client, .. }
        | Observation::UpdatePayload { client, .. } => Some(client.ip),
        Observation::KscDatagram { src, .. } => Some(src.ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
    }

    fn t(millis: u64) -> Timestamp {
        Timestamp::from_secs_nanos(1_700_000_000 + millis / 1000, (millis % 1000) * 1_000_000)
    }

    fn admitted(l: &mut EventLimiter, source: Option<IpAddr>, now: Timestamp, n: usize) -> usize {
        (0..n).filter(|_| l.admit(source, now)).count()
    }

    #[test]
    fn one_source_gets_its_burst_then_its_rate() {
        let mut l = EventLimiter::new(EventLimits {
            per_source: 20,
            global: 0,
        });
        assert_eq!(admitted(&mut l, ip(1), t(0), 1000), 200);
        assert_eq!(l.counts.suppressed.get(Suppressed::PerSource), 800);
        // Half a second refills ten.
        assert_eq!(admitted(&mut l, ip(1), t(500), 1000), 10);
        // Another address is not affected.
        assert_eq!(admitted(&mut l, ip(2), t(500), 5), 5);
        // A long pause refills only up to the burst.
        assert_eq!(admitted(&mut l, ip(1), t(3_600_000), 1000), 200);
    }

    #[test]
    fn the_global_bucket_holds_a_flood_from_many_addresses() {
        let mut l = EventLimiter::new(EventLimits {
            per_source: 20,
            global: 100,
        });
        // 100 000 addresses, one event each, within one second: the global burst passes.
        let n = (0..100_000u32).filter(|i| l.admit(ip(*i), t(500))).count();
        assert_eq!(n, 1000);
        assert_eq!(l.counts.suppressed.get(Suppressed::Global), 99_000);
        assert!(l.sources() <= MAX_SOURCES);
        assert_eq!(l.counts.sources_evicted, 100_000 - MAX_SOURCES as u64);
    }

    #[test]
    fn a_global_refusal_costs_the_source_nothing() {
        let mut l = EventLimiter::new(EventLimits {
            per_source: 1,
            global: 1,
        });
        assert_eq!(admitted(&mut l, ip(1), t(0), 10), 10);
        // The global bucket is empty; ip(2)'s ten tokens stay.
        assert_eq!(admitted(&mut l, ip(2), t(0), 5), 0);
        assert_eq!(admitted(&mut l, ip(2), t(10_000), 10), 10);
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut l = EventLimiter::new(EventLimits {
            per_source: 1,
            global: 0,
        });
        assert_eq!(admitted(&mut l, ip(1), t(100_000), 20), 10);
        assert_eq!(admitted(&mut l, ip(1), t(0), 20), 0);
        assert_eq!(admitted(&mut l, ip(1), t(101_000), 20), 1);
    }

    #[test]
    fn off_admits_everything() {
        let mut l = EventLimiter::new(EventLimits::OFF);
        assert_eq!(admitted(&mut l, ip(1), t(0), 100_000), 100_000);
        assert_eq!(l.sources(), 0);
    }

    #[test]
    fn the_same_events_give_the_same_answers() {
        // Determinism: the answers depend only on the (source, time) sequence.
        let run = || {
            let mut l = EventLimiter::new(EventLimits::default());
            (0..50_000u64)
                .map(|i| l.admit(ip((i % 97) as u32), t(i / 7)))
                .collect::<Vec<bool>>()
        };
        assert_eq!(run(), run());
    }
}
