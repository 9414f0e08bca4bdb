//! The per-worker flow table.
//!
//! Contract: maps a direction-independent [`FlowKey`] to a value, remembers when each flow was
//! last seen, expires idle flows as capture time advances and never holds more than its
//! capacity. Expiry sweeps run at most once per [`SWEEP_INTERVAL`] of capture time, so their cost
//! is spread over the packets of that interval. When the table is full, the oldest flow (by
//! creation) is evicted to make room, counted: a flood of new flows can never push memory past
//! the cap, each insertion costs O(1) amortised however long the flood lasts, and a real
//! connection that starts during or after a flood is still tracked (its flow lives until
//! `capacity` newer flows have been created).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use hashbrown::hash_table::{Entry, HashTable};

use crate::time::Timestamp;

/// How often (in capture time) idle flows are swept out.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Which endpoint of a [`FlowKey`] sent a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The endpoint with the lower (address, port).
    Lo,
    Hi,
}

impl Side {
    pub fn index(self) -> usize {
        match self {
            Side::Lo => 0,
            Side::Hi => 1,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }
}

/// A flow's identity, the same whichever side sent the packet. Addresses are kept as 128-bit
/// integers (IPv4 mapped into IPv6) so that ordering and hashing are a few word operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    lo_ip: u128,
    hi_ip: u128,
    /// `lo_port << 16 | hi_port`.
    ports: u32,
    proto: u8,
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(self.lo_ip);
        state.write_u128(self.hi_ip);
        state.write_u64(u64::from(self.ports) << 8 | u64::from(self.proto));
    }
}

use crate::decode::ip_bits;

impl FlowKey {
    /// [`FlowKey::new`] for addresses given as [`ip_bits`].
    #[inline]
    pub fn from_bits(s: u128, sport: u16, d: u128, dport: u16, proto: u8) -> (FlowKey, Side) {
        let ((lo_ip, lo_port), (hi_ip, hi_port), side) = if (s, sport) <= (d, dport) {
            ((s, sport), (d, dport), Side::Lo)
        } else {
            ((d, dport), (s, sport), Side::Hi)
        };
        let ports = u32::from(lo_port) << 16 | u32::from(hi_port);
        let key = FlowKey {
            lo_ip,
            hi_ip,
            ports,
            proto,
        };
        (key, side)
    }

    /// The key of a packet from `src:sport` to `dst:dport`, and which side of the key sent it.
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> (FlowKey, Side) {
        FlowKey::from_bits(ip_bits(src), sport, ip_bits(dst), dport, proto)
    }
}

/// A hash of the address pair that is the same for both directions. Workers are chosen by it;
/// ports are left out so that every fragment of a datagram (only the first carries ports) and
/// every flow between two hosts reach the same worker.
#[inline]
pub fn symmetric_hash(a: IpAddr, b: IpAddr) -> u64 {
    symmetric_hash_bits(ip_bits(a), ip_bits(b))
}

/// [`symmetric_hash`] of two addresses given as [`ip_bits`].
#[inline]
pub fn symmetric_hash_bits(a: u128, b: u128) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    foldhash::fast::FixedState::with_seed(0x6b73_656e_736f_7221).hash_one((lo, hi))
}

/// The worker, out of `workers`, that handles packets between `a` and `b`.
#[inline]
pub fn worker_for(a: IpAddr, b: IpAddr, workers: usize) -> usize {
    worker_for_bits(ip_bits(a), ip_bits(b), workers)
}

/// [`worker_for`] of two addresses given as [`ip_bits`] (the pair
/// [`crate::decode::dispatch_reading`] returns). The hash is mapped onto `0..workers` by a multiply and a shift (Lemire's
/// "fastrange"), not a division: the reader does this for every packet, and a 64-bit division
/// costs as much as the rest of it.
#[inline]
pub fn worker_for_bits(a: u128, b: u128, workers: usize) -> usize {
    let scaled = u128::from(symmetric_hash_bits(a, b)) * workers.max(1) as u128;
    (scaled >> 64) as usize
}

/// What the table needs to know about a stored value.
pub trait FlowEntry {
    fn last_seen(&self) -> Timestamp;
    /// How long this flow may stay idle before it is expired (depends on its state).
    fn idle_timeout(&self) -> Duration;
    /// A lower bound of [`FlowEntry::idle_timeout`] that reads only the entry itself, not
    /// state it points to. A lookup asks for [`FlowEntry::idle_timeout`] only when the flow
    /// has been idle this long, so that a busy flow costs no second cache miss.
    fn shortest_idle_timeout(&self) -> Duration {
        self.idle_timeout()
    }
}

/// Whether `entry` has been idle past its timeout at `now`.
#[inline(always)]
fn is_expired<V: FlowEntry>(entry: &V, now: Timestamp) -> bool {
    let last_seen = entry.last_seen();
    now.has_passed(last_seen, entry.shortest_idle_timeout())
        && now.has_passed(last_seen, entry.idle_timeout())
}

/// Counters of the table's decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    pub created: u64,
    pub expired: u64,
    pub evicted_under_pressure: u64,
    pub refused_table_full: u64,
}

/// A bounded flow table. Iteration order is fixed by a fixed hash seed, so that sweeps and
/// evictions are reproducible from run to run.
pub struct FlowTable<V> {
    /// Each flow with the serial number of its creation. A `HashTable` rather than a
    /// `HashMap`: a lookup is a probe and a key comparison, without the entry API's reservation
    /// check and key copy (the map's `get_mut` cannot hand the flow back and also remove it when
    /// it turns out expired).
    slots: HashTable<(FlowKey, u64, V)>,
    hasher: foldhash::fast::FixedState,
    /// Flows in creation order, as (key, serial). An entry whose serial differs from the map's
    /// (the flow is gone, or was created again later) is stale and skipped; stale entries are
    /// compacted away once the queue holds twice the capacity, so it stays O(capacity) and each
    /// insertion costs O(1) amortised.
    order: VecDeque<(FlowKey, u64)>,
    next_serial: u64,
    capacity: usize,
    last_sweep: Timestamp,
    pub counters: TableCounters,
}

impl<V: FlowEntry> FlowTable<V> {
    pub fn new(capacity: usize) -> Self {
        FlowTable {
            slots: HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(0x666c_6f77),
            order: VecDeque::new(),
            next_serial: 0,
            capacity: capacity.max(1),
            last_sweep: Timestamp::ZERO,
            counters: TableCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The serial of `key`'s flow, if there is one.
    fn serial_of(&self, key: &FlowKey) -> Option<u64> {
        self.slots
            .find(self.hash(key), |(k, _, _)| k == key)
            .map(|(_, serial, _)| *serial)
    }

    /// The live flow for `key`. A flow idle past its timeout counts as gone even before a sweep
    /// removes it, so that results do not depend on when sweeps happen to run.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &FlowKey, now: Timestamp) -> Option<&mut V> {
        let hash = self.hash(key);
        let entry = self.slots.find_entry(hash, |(k, _, _)| k == key).ok()?;
        let (_, _, v) = entry.get();
        if is_expired(v, now) {
            entry.remove();
            self.counters.expired += 1;
            None
        } else {
            Some(&mut entry.into_mut().2)
        }
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        let hash = self.hash(key);
        let entry = self.slots.find_entry(hash, |(k, _, _)| k == key).ok()?;
        Some(entry.remove().0 .2)
    }

    /// Inserts a new flow (replacing any flow with the same key), evicting the oldest flow if
    /// the table is full. Returns `None` (counted) only if no room could be made, which cannot
    /// happen while the creation queue is consistent.
    pub fn insert(&mut self, key: FlowKey, value: V, _now: Timestamp) -> Option<&mut V> {
        if self.slots.len() >= self.capacity && self.serial_of(&key).is_none() {
            self.evict_oldest();
            if self.slots.len() >= self.capacity {
                self.counters.refused_table_full += 1;
                return None;
            }
        }
        self.counters.created += 1;
        let serial = self.next_serial;
        self.next_serial = self.next_serial.wrapping_add(1);
        self.order.push_back((key, serial));
        if self.order.len() > self.capacity.saturating_mul(2) {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(k, s)| self.serial_of(k) == Some(*s));
            self.order = order;
        }
        let hash = self.hash(&key);
        let hasher = &self.hasher;
        let slot =
            match self
                .slots
                .entry(hash, |(k, _, _)| *k == key, |(k, _, _)| hasher.hash_one(k))
            {
                Entry::Occupied(mut o) => {
                    *o.get_mut() = (key, serial, value);
                    o.into_mut()
                }
                Entry::Vacant(v) => v.insert((key, serial, value)).into_mut(),
            };
        Some(&mut slot.2)
    }

    /// Removes the oldest live flow in creation order (counted), skipping stale queue entries.
    fn evict_oldest(&mut self) {
        while let Some((key, serial)) = self.order.pop_front() {
            let hash = self.hash(&key);
            if let Ok(entry) = self.slots.find_entry(hash, |(k, _, _)| *k == key) {
                if entry.get().1 == serial {
                    entry.remove();
                    self.counters.evicted_under_pressure += 1;
                    return;
                }
            }
        }
    }

    /// Expires idle flows if a sweep interval of capture time has passed since the last sweep.
    /// Call once per packet (or batch) with the capture clock.
    #[inline]
    pub fn tick(&mut self, now: Timestamp) {
        if now.has_passed(self.last_sweep, SWEEP_INTERVAL) {
            self.sweep(now);
        }
    }

    /// Removes every idle flow (counted).
    fn sweep(&mut self, now: Timestamp) {
        self.last_sweep = now;
        let before = self.slots.len();
        self.slots.retain(|(_, _, v)| !is_expired(v, now));
        self.counters.expired += (before - self.slots.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    struct F(Timestamp);
    impl FlowEntry for F {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
        fn idle_timeout(&self) -> Duration {
            Duration::from_secs(60)
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn key_is_direction_independent() {
        let (k1, s1) = FlowKey::new(ip(1), 40000, ip(2), 443, 6);
        let (k2, s2) = FlowKey::new(ip(2), 443, ip(1), 40000, 6);
        assert_eq!(k1, k2);
        assert_eq!(s1, Side::Lo);
        assert_eq!(s2, Side::Hi);
        assert_eq!(symmetric_hash(ip(1), ip(2)), symmetric_hash(ip(2), ip(1)));
        let (k3, _) = FlowKey::new(ip(1), 40001, ip(2), 443, 6);
        assert_ne!(k1, k3);
    }

    #[test]
    fn workers_are_chosen_in_range_evenly_and_symmetrically() {
        for workers in [1usize, 2, 3, 8] {
            let mut per_worker = vec![0u32; workers];
            for i in 0..30_000u32 {
                let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
                let b = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i % 97));
                let w = worker_for(a, b, workers);
                assert_eq!(w, worker_for(b, a, workers));
                per_worker[w] += 1;
            }
            let fair = 30_000 / workers as u32;
            for n in per_worker {
                assert!(
                    n.abs_diff(fair) < fair / 10,
                    "{n} of {fair} ({workers} workers)"
                );
            }
        }
        assert_eq!(worker_for(ip(1), ip(2), 0), 0);
    }

    fn key(port: u16) -> FlowKey {
        FlowKey::new(ip(1), port, ip(2), 80, 6).0
    }

    #[test]
    fn full_table_evicts_the_oldest_flow() {
        let mut t = FlowTable::new(2);
        let t0 = Timestamp::from_secs_nanos(100, 0);
        for port in 1..=2 {
            assert!(t.insert(key(port), F(t0), t0).is_some());
        }
        assert!(t.insert(key(3), F(t0), t0).is_some());
        assert_eq!(t.counters.evicted_under_pressure, 1);
        assert_eq!(t.counters.refused_table_full, 0);
        assert_eq!(t.len(), 2);
        assert!(t.get_mut(&key(1), t0).is_none());
        assert!(t.get_mut(&key(2), t0).is_some());
        assert!(t.get_mut(&key(3), t0).is_some());
    }

    #[test]
    fn stale_queue_entries_are_skipped() {
        // Flow 1 is removed and created again: its first queue entry is stale, so the next
        // eviction takes flow 2 (now the oldest), not the new flow 1.
        let mut t = FlowTable::new(2);
        let t0 = Timestamp::from_secs_nanos(100, 0);
        t.insert(key(1), F(t0), t0);
        t.insert(key(2), F(t0), t0);
        assert!(t.remove(&key(1)).is_some());
        t.insert(key(1), F(t0), t0);
        t.insert(key(3), F(t0), t0);
        assert!(t.get_mut(&key(1), t0).is_some());
        assert!(t.get_mut(&key(2), t0).is_none());
        assert!(t.get_mut(&key(3), t0).is_some());
    }

    /// Found by the SYN-flood test (tests/floods.rs): with the table full of recently created
    /// flows, every new flow used to trigger a sweep of the whole table and then be refused, so
    /// a flood cost O(capacity) per packet and hid every later connection. Now each insertion
    /// evicts one flow and the queue stays within twice the capacity.
    #[test]
    fn a_flood_of_new_flows_stays_bounded_and_keeps_admitting() {
        const CAP: usize = 64;
        let mut t = FlowTable::new(CAP);
        let t0 = Timestamp::from_secs_nanos(100, 0);
        for i in 0..100_000u32 {
            let (k, _) = FlowKey::new(
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                1024,
                ip(2),
                443,
                6,
            );
            assert!(t.insert(k, F(t0), t0).is_some());
            assert!(t.len() <= CAP);
            assert!(t.order.len() <= 2 * CAP + 1);
        }
        assert_eq!(t.counters.created, 100_000);
        assert_eq!(t.counters.evicted_under_pressure, 100_000 - CAP as u64);
        assert_eq!(t.counters.refused_table_full, 0);
        // A real connection after the flood is tracked.
        assert!(t.insert(key(443), F(t0), t0).is_some());
        assert!(t.get_mut(&key(443), t0).is_some());
    }

    /// An entry whose timeout, 60 s, is known to be at least 10 s without asking for it;
    /// counts how often it is asked.
    struct Lazy(Timestamp, std::cell::Cell<u32>);
    impl FlowEntry for Lazy {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
        fn idle_timeout(&self) -> Duration {
            self.1.set(self.1.get() + 1);
            Duration::from_secs(60)
        }
        fn shortest_idle_timeout(&self) -> Duration {
            Duration::from_secs(10)
        }
    }

    #[test]
    fn the_full_timeout_is_asked_only_past_the_shortest_and_decides() {
        let mut t = FlowTable::new(10);
        let t0 = Timestamp::from_secs_nanos(1000, 0);
        let after = |secs| t0.saturating_add(Duration::from_secs(secs));
        let k = key(1);
        t.insert(k, Lazy(t0, Default::default()), t0);
        // Busy: the full timeout is not asked.
        assert_eq!(t.get_mut(&k, after(9)).unwrap().1.get(), 0);
        // Idle past the shortest timeout but not the full one: asked, and kept.
        assert_eq!(t.get_mut(&k, after(11)).unwrap().1.get(), 1);
        t.tick(after(59));
        assert_eq!(t.len(), 1);
        // Idle past the full timeout: gone, in a lookup as in a sweep.
        assert!(t.get_mut(&k, after(60)).is_none());
        assert_eq!(t.counters.expired, 1);
        t.insert(k, Lazy(t0, Default::default()), t0);
        t.tick(after(120));
        assert!(t.is_empty());
        assert_eq!(t.counters.expired, 2);
    }

    #[test]
    fn tick_expires_only_idle_flows() {
        let mut t = FlowTable::new(10);
        let t0 = Timestamp::from_secs_nanos(1000, 0);
        let (old, _) = FlowKey::new(ip(1), 1, ip(2), 80, 6);
        let (new, _) = FlowKey::new(ip(1), 2, ip(2), 80, 6);
        t.insert(old, F(t0), t0);
        let t1 = t0.saturating_add(Duration::from_secs(61));
        t.insert(new, F(t1), t1);
        t.tick(t1);
        assert!(t.get_mut(&old, t1).is_none());
        assert!(t.get_mut(&new, t1).is_some());
        assert_eq!(t.counters.expired, 1);
    }
}
