//! IP fragment reassembly for IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5), bounded.
//!
//! Contract: [`Defragmenter::push`] takes one fragment ([`IpFragment`], from the decode stage)
//! with its addresses and capture time, copies its payload into the datagram it belongs to
//! (keyed by source, destination, identification and protocol) and, when the fragment completes
//! the datagram, returns the reassembled payload. That payload lives in the defragmenter until
//! the next call. An IPv6 atomic fragment (offset 0, no more fragments; RFC 6946) is returned as
//! is, without copying or state.
//!
//! Received ranges are tracked per datagram (the holes are what lies between them). Where a
//! fragment overlaps bytes already held, the first copy wins; overlaps with identical bytes are
//! counted, but a fragment whose overlapping bytes differ discards the datagram
//! ([`DefragSkip::ConflictingOverlap`]): RFC 8200 §4.5 (after RFC 5722) requires that for IPv6,
//! Linux does the same for IPv4, and a datagram whose content depends on the receiver's overlap
//! policy cannot be trusted. Fragments that contradict the datagram's length (a second last
//! fragment with another end, data beyond the end) discard it too, as Linux does; fragments
//! unusable on their own (empty, or a non-last one whose length is not a multiple of 8) are
//! dropped alone.
//!
//! Caps: [`MAX_DATAGRAMS_IN_FLIGHT`] (the oldest is evicted), [`MAX_BUFFERED_BYTES`] in total
//! (oldest evicted), [`MAX_FRAGMENTS_PER_DATAGRAM`], [`MAX_DATAGRAM_LEN`], and
//! [`FRAGMENT_TIMEOUT`] counted from a datagram's first fragment, as Linux's `ipfrag_time`
//! timer is. Expiry and eviction walk a queue in arrival order, so their cost is amortised O(1)
//! per datagram. Every dropped fragment or datagram is counted under a [`DefragSkip`].
//!
//! Memory: one buffer per datagram in flight, sized to the highest byte received (holes are
//! zero-filled); released buffers are kept for reuse (at most [`MAX_SPARE_BUFFERS`]), so steady
//! fragmented traffic allocates nothing.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use super::reassembly::merge_first_wins;
use crate::decode::IpFragment;
use crate::reason::ReasonCounts;
use crate::time::Timestamp;

/// How long a datagram may wait for its missing fragments, from its first fragment: Linux's
/// `net.ipv4.ipfrag_time` default (RFC 8200 §4.5 allows IPv6 up to 60 s; a passive sensor only
/// needs to outlast real reordering, which is milliseconds).
pub const FRAGMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Datagrams being reassembled per worker. A flood of first fragments never completed must keep
/// memory bounded; 1024 is far above the fragmented datagrams a link has in flight at once
/// (fragmentation is rare: large DNS answers, some tunnels), and the oldest is evicted first.
pub const MAX_DATAGRAMS_IN_FLIGHT: usize = 1024;

/// Fragments accepted for one datagram (duplicates included). The largest datagram cut at the
/// IPv6 minimum MTU of 1280 bytes (RFC 8200 §5) is 52 fragments; 64 leaves room for a few
/// retransmitted ones and bounds the per-fragment scan of the received ranges.
pub const MAX_FRAGMENTS_PER_DATAGRAM: u16 = 64;

/// Largest reassembled payload: what a 16-bit IPv4 total length or IPv6 payload length can
/// describe. More is the "ping of death" (jumbograms, RFC 2675, are never fragmented).
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// Bytes held by all datagrams in flight, per worker: Linux's default `ipfrag_high_thresh`
/// (4 MiB). Without it, 1024 datagrams each with a fragment near offset 65535 would hold 64 MiB.
pub const MAX_BUFFERED_BYTES: usize = 4 << 20;

/// Released datagram buffers kept for reuse: enough for the few datagrams usually in flight,
/// at most 8 × 64 KiB retained.
pub const MAX_SPARE_BUFFERS: usize = 8;

/// The arrival queue holds one entry per datagram created; entries of datagrams already gone
/// are skipped lazily. Past this length it is compacted, which takes at least
/// `MAX_DATAGRAMS_IN_FLIGHT` datagram releases to happen again: amortised O(1).
const MAX_ARRIVAL_QUEUE: usize = 2 * MAX_DATAGRAMS_IN_FLIGHT;

crate::reason_enum! {
    /// Why a fragment or a whole datagram was dropped.
    pub enum DefragSkip {
        /// Evicted, oldest first, to make room under [`MAX_DATAGRAMS_IN_FLIGHT`].
        TooManyDatagrams => "too_many_datagrams",
        /// Evicted, oldest first, to stay under [`MAX_BUFFERED_BYTES`].
        BufferFull => "buffer_full",
        /// A fragment ends beyond [`MAX_DATAGRAM_LEN`]; the datagram is discarded.
        DatagramTooLong => "datagram_too_long",
        /// More than [`MAX_FRAGMENTS_PER_DATAGRAM`]; the datagram is discarded.
        TooManyFragments => "too_many_fragments",
        /// Incomplete after [`FRAGMENT_TIMEOUT`].
        TimedOut => "timed_out",
        /// Overlapping bytes differ from those held; the datagram is discarded.
        ConflictingOverlap => "conflicting_overlap",
        /// The fragment contradicts the datagram's length; the datagram is discarded.
        InconsistentLength => "inconsistent_length",
        /// A fragment other than the last whose length is not a multiple of 8 (RFC 791 §3.1,
        /// RFC 8200 §4.5); dropped alone.
        BadFragmentLength => "bad_fragment_length",
        /// A fragment without payload (other than an atomic one); dropped alone.
        EmptyFragment => "empty_fragment",
    }
}

crate::reason_enum! {
    /// Events counted by the defragmenter that drop nothing.
    pub enum DefragEvent {
        /// A datagram was reassembled.
        Completed => "completed",
        /// An IPv6 atomic fragment was passed through.
        Atomic => "atomic",
        /// A fragment brought no new byte.
        Duplicate => "duplicate",
        /// A fragment overlapped held bytes (identical ones) and brought new bytes.
        Overlap => "overlap",
    }
}

/// What a fragment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefragOutcome<'a> {
    /// Held; the datagram still has holes.
    Incomplete,
    /// The datagram is whole: its payload, of protocol `proto`.
    Complete { proto: u8, payload: &'a [u8] },
    /// The fragment (and, depending on the reason, its datagram) was dropped; already counted in
    /// [`Defragmenter::skips`].
    Dropped(DefragSkip),
}

/// Identity of a datagram: RFC 791 §3.2 (source, destination, protocol, identification); RFC
/// 8200 §4.5 keys by (source, destination, identification), and every fragment header of a
/// datagram carries the same next header, so the protocol does not split IPv6 datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

/// One datagram being reassembled, or a free slot (`live == false`) keeping its range list.
#[derive(Debug)]
struct Datagram {
    key: DatagramKey,
    live: bool,
    /// Bumped when the slot is released, so arrival-queue entries of earlier occupants are
    /// recognised as stale.
    generation: u32,
    /// Bytes from offset 0 up to the highest byte received; holes are zero.
    data: Vec<u8>,
    /// Received `[start, end)` ranges of `data`: sorted, disjoint, never adjacent.
    received: Vec<(usize, usize)>,
    /// Payload length, known once the last fragment (MF = 0) arrived.
    total_len: Option<usize>,
    fragments: u16,
}

#[derive(Clone, Copy, Debug)]
struct Arrival {
    first_seen: Timestamp,
    slot: usize,
    generation: u32,
}

/// Per-worker IP fragment reassembly. See the module docs.
#[derive(Debug, Default)]
pub struct Defragmenter {
    slots: Vec<Datagram>,
    free_slots: Vec<usize>,
    index: foldhash::HashMap<DatagramKey, usize>,
    /// Datagrams in order of their first fragment (plus stale entries, skipped).
    arrivals: VecDeque<Arrival>,
    buffered: usize,
    /// The last reassembled payload.
    completed: Vec<u8>,
    spare: Vec<Vec<u8>>,
    skips: ReasonCounts<DefragSkip>,
    events: ReasonCounts<DefragEvent>,
}

impl Defragmenter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one fragment of a datagram from `src` to `dst` captured at `now`. Expires timed-out
    /// datagrams first.
    pub fn push<'a>(
        &'a mut self,
        now: Timestamp,
        src: IpAddr,
        dst: IpAddr,
        frag: &IpFragment<'a>,
    ) -> DefragOutcome<'a> {
        self.expire(now);
        let payload = frag.payload;
        if frag.offset == 0 && !frag.more_fragments {
            // RFC 6946: an atomic fragment is processed in isolation.
            self.events.incr(DefragEvent::Atomic);
            return DefragOutcome::Complete {
                proto: frag.proto,
                payload,
            };
        }
        if payload.is_empty() {
            return self.reject(None, DefragSkip::EmptyFragment);
        }
        let key = DatagramKey {
            src,
            dst,
            id: frag.id,
            proto: frag.proto,
        };
        let offset = usize::try_from(frag.offset).unwrap_or(usize::MAX);
        let end = offset.saturating_add(payload.len());
        if end > MAX_DATAGRAM_LEN {
            let existing = self.index.get(&key).copied();
            return self.reject(existing, DefragSkip::DatagramTooLong);
        }
        if frag.more_fragments && payload.len() % 8 != 0 {
            return self.reject(None, DefragSkip::BadFragmentLength);
        }

        let slot = match self.index.get(&key) {
            Some(&slot) => slot,
            None => self.create(key, now),
        };
        let Some(dg) = self.slots.get_mut(slot) else {
            return DefragOutcome::Incomplete;
        };
        dg.fragments = dg.fragments.saturating_add(1);
        if dg.fragments > MAX_FRAGMENTS_PER_DATAGRAM {
            return self.reject(Some(slot), DefragSkip::TooManyFragments);
        }
        let consistent = if frag.more_fragments {
            dg.total_len.is_none_or(|total| end <= total)
        } else {
            dg.total_len.is_none_or(|total| total == end) && dg.data.len() <= end
        };
        if !consistent {
            return self.reject(Some(slot), DefragSkip::InconsistentLength);
        }
        if !frag.more_fragments {
            dg.total_len = Some(end);
        }

        let growth = end.saturating_sub(dg.data.len());
        if growth > 0 {
            self.make_room(growth, slot);
            let Some(dg) = self.slots.get_mut(slot) else {
                return DefragOutcome::Incomplete;
            };
            dg.data.resize(end, 0);
            self.buffered = self.buffered.saturating_add(growth);
        }
        let Some(dg) = self.slots.get_mut(slot) else {
            return DefragOutcome::Incomplete;
        };
        let merge = merge_first_wins(&mut dg.data, &mut dg.received, offset, payload);
        if merge.conflicting {
            return self.reject(Some(slot), DefragSkip::ConflictingOverlap);
        }
        if merge.new_bytes == 0 {
            self.events.incr(DefragEvent::Duplicate);
        } else if merge.overlap_bytes > 0 {
            self.events.incr(DefragEvent::Overlap);
        }

        let whole = match (dg.total_len, dg.received.as_slice()) {
            (Some(total), [(0, received)]) => *received == total,
            _ => false,
        };
        if !whole {
            return DefragOutcome::Incomplete;
        }
        let proto = dg.key.proto;
        self.buffered = self.buffered.saturating_sub(dg.data.len());
        std::mem::swap(&mut self.completed, &mut dg.data);
        // The slot now holds the previous result's buffer; release() recycles it.
        dg.data.clear();
        self.release(slot);
        self.events.incr(DefragEvent::Completed);
        DefragOutcome::Complete {
            proto,
            payload: &self.completed,
        }
    }

    /// Drops datagrams whose first fragment is older than [`FRAGMENT_TIMEOUT`] (counted as
    /// [`DefragSkip::TimedOut`]). Walks the arrival queue from its oldest entry and stops at the
    /// first one still in time, so it is cheap to call on every packet or tick. Capture times
    /// that go backwards only delay expiry.
    #[inline]
    pub fn expire(&mut self, now: Timestamp) {
        if !self.arrivals.is_empty() {
            self.expire_arrivals(now);
        }
    }

    /// [`Defragmenter::expire`] with datagrams waiting.
    fn expire_arrivals(&mut self, now: Timestamp) {
        while let Some(&arrival) = self.arrivals.front() {
            if is_current(&self.slots, &arrival) {
                if now.saturating_sub(arrival.first_seen) <= FRAGMENT_TIMEOUT {
                    break;
                }
                self.release(arrival.slot);
                self.skips.incr(DefragSkip::TimedOut);
            }
            self.arrivals.pop_front();
        }
    }

    /// Datagrams being reassembled.
    pub fn in_flight(&self) -> usize {
        self.index.len()
    }

    /// Bytes held for datagrams in flight (including zero-filled holes).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Fragments and datagrams dropped, by reason (including those returned as
    /// [`DefragOutcome::Dropped`]).
    pub fn skips(&self) -> &ReasonCounts<DefragSkip> {
        &self.skips
    }

    pub fn events(&self) -> &ReasonCounts<DefragEvent> {
        &self.events
    }

    /// Returns the skip and event counts and resets them (for a periodic flush).
    pub fn take_counters(&mut self) -> (ReasonCounts<DefragSkip>, ReasonCounts<DefragEvent>) {
        (
            std::mem::take(&mut self.skips),
            std::mem::take(&mut self.events),
        )
    }

    /// Starts a datagram, evicting the oldest if [`MAX_DATAGRAMS_IN_FLIGHT`] are in flight.
    fn create(&mut self, key: DatagramKey, now: Timestamp) -> usize {
        if self.index.len() >= MAX_DATAGRAMS_IN_FLIGHT {
            self.evict_oldest(None, DefragSkip::TooManyDatagrams);
        }
        let data = self.spare.pop().unwrap_or_default();
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Datagram {
                    key,
                    live: false,
                    generation: 0,
                    data: Vec::new(),
                    received: Vec::new(),
                    total_len: None,
                    fragments: 0,
                });
                self.slots.len().saturating_sub(1)
            }
        };
        let mut generation = 0;
        if let Some(dg) = self.slots.get_mut(slot) {
            dg.key = key;
            dg.live = true;
            dg.data = data;
            dg.received.clear();
            dg.total_len = None;
            dg.fragments = 0;
            generation = dg.generation;
        }
        self.index.insert(key, slot);
        self.arrivals.push_back(Arrival {
            first_seen: now,
            slot,
            generation,
        });
        if self.arrivals.len() > MAX_ARRIVAL_QUEUE {
            let slots = &self.slots;
            self.arrivals.retain(|arrival| is_current(slots, arrival));
        }
        slot
    }

    /// Evicts the oldest datagrams other than `keep` until `growth` more bytes fit under
    /// [`MAX_BUFFERED_BYTES`].
    fn make_room(&mut self, growth: usize, keep: usize) {
        while self.buffered.saturating_add(growth) > MAX_BUFFERED_BYTES {
            if !self.evict_oldest(Some(keep), DefragSkip::BufferFull) {
                break;
            }
        }
    }

    /// Releases the oldest datagram in flight other than `keep`, counted under `reason`.
    /// Returns false if there is none.
    fn evict_oldest(&mut self, keep: Option<usize>, reason: DefragSkip) -> bool {
        while let Some(arrival) = self.arrivals.front() {
            if is_current(&self.slots, arrival) {
                break;
            }
            self.arrivals.pop_front();
        }
        let victim = self
            .arrivals
            .iter()
            .find(|arrival| is_current(&self.slots, arrival) && Some(arrival.slot) != keep)
            .map(|arrival| arrival.slot);
        match victim {
            Some(slot) => {
                self.release(slot);
                self.skips.incr(reason);
                true
            }
            None => false,
        }
    }

    /// Drops the fragment, and the datagram in `slot` if given, counted under `reason`.
    fn reject(&mut self, slot: Option<usize>, reason: DefragSkip) -> DefragOutcome<'static> {
        if let Some(slot) = slot {
            self.release(slot);
        }
        self.skips.incr(reason);
        DefragOutcome::Dropped(reason)
    }

    /// Frees a slot: forgets its key, recycles its buffer, invalidates its arrival entry.
    fn release(&mut self, slot: usize) {
        let Some(dg) = self.slots.get_mut(slot) else {
            return;
        };
        if !dg.live {
            return;
        }
        self.index.remove(&dg.key);
        self.buffered = self.buffered.saturating_sub(dg.data.len());
        let mut data = std::mem::take(&mut dg.data);
        dg.received.clear();
        dg.total_len = None;
        dg.fragments = 0;
        dg.live = false;
        dg.generation = dg.generation.wrapping_add(1);
        self.free_slots.push(slot);
        if self.spare.len() < MAX_SPARE_BUFFERS && data.capacity() > 0 {
            data.clear();
            self.spare.push(data);
        }
    }
}

/// Whether an arrival entry still refers to the datagram that created it.
fn is_current(slots: &[Datagram], arrival: &Arrival) -> bool {
    slots
        .get(arrival.slot)
        .is_some_and(|dg| dg.live && dg.generation == arrival.generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const UDP: u8 = 17;
    const V4_SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const V4_DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    const V6_SRC: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    const V6_DST: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

    fn t(secs: u64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, 0)
    }

    /// A DNS-response-shaped UDP payload.
    fn datagram(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 256) as u8).collect()
    }

    fn frag(id: u32, data: &[u8], offset: usize, len: usize, more: bool) -> IpFragment<'_> {
        IpFragment {
            id,
            offset: offset as u32,
            more_fragments: more,
            proto: UDP,
            payload: &data[offset..offset + len],
        }
    }

    /// Splits `len` into fragments of `piece` bytes (a multiple of 8): (offset, len, more).
    fn cut(len: usize, piece: usize) -> Vec<(usize, usize, bool)> {
        let mut v = Vec::new();
        let mut off = 0;
        while off < len {
            let n = piece.min(len - off);
            v.push((off, n, off + n < len));
            off += n;
        }
        v
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut all = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                all.push(q);
            }
        }
        all
    }

    /// Feeds the fragments in `order`; returns the completed payload and asserts that only the
    /// last fragment completed it.
    fn reassemble(
        d: &mut Defragmenter,
        src: IpAddr,
        dst: IpAddr,
        id: u32,
        data: &[u8],
        pieces: &[(usize, usize, bool)],
        order: &[usize],
    ) -> Option<(u8, Vec<u8>)> {
        let mut result = None;
        for (n, &i) in order.iter().enumerate() {
            let (off, len, more) = pieces[i];
            match d.push(t(1), src, dst, &frag(id, data, off, len, more)) {
                DefragOutcome::Complete { proto, payload } => {
                    assert_eq!(n, order.len() - 1, "completed early, order {order:?}");
                    result = Some((proto, payload.to_vec()));
                }
                DefragOutcome::Incomplete => {}
                DefragOutcome::Dropped(r) => panic!("dropped {r:?}, order {order:?}"),
            }
        }
        result
    }

    #[test]
    fn ipv4_two_fragments_both_orders() {
        let data = datagram(1800);
        let pieces = cut(data.len(), 1480);
        assert_eq!(pieces.len(), 2);
        for order in permutations(2) {
            let mut d = Defragmenter::new();
            let got = reassemble(&mut d, V4_SRC, V4_DST, 0x1234, &data, &pieces, &order);
            assert_eq!(got, Some((UDP, data.clone())), "order {order:?}");
            assert_eq!(d.in_flight(), 0);
            assert_eq!(d.buffered_bytes(), 0);
            assert_eq!(d.events().get(DefragEvent::Completed), 1);
        }
    }

    #[test]
    fn ipv4_and_ipv6_three_fragments_every_order() {
        let data = datagram(3000);
        let pieces = cut(data.len(), 1232);
        assert_eq!(pieces.len(), 3);
        for (src, dst) in [(V4_SRC, V4_DST), (V6_SRC, V6_DST)] {
            for order in permutations(3) {
                let mut d = Defragmenter::new();
                let got = reassemble(&mut d, src, dst, 0xDEAD_BEEF, &data, &pieces, &order);
                assert_eq!(got, Some((UDP, data.clone())), "order {order:?}");
                assert_eq!(d.in_flight(), 0);
            }
        }
    }

    #[test]
    fn two_fragments_split_at_every_8_byte_offset_both_orders() {
        let data = datagram(600);
        for split in (8..data.len()).step_by(8) {
            let pieces = [(0, split, true), (split, data.len() - split, false)];
            for order in [[0, 1], [1, 0]] {
                let mut d = Defragmenter::new();
                let got = reassemble(&mut d, V6_SRC, V6_DST, 1, &data, &pieces, &order);
                assert_eq!(got, Some((UDP, data.clone())), "split {split}");
                assert_eq!(d.buffered_bytes(), 0);
            }
        }
    }

    #[test]
    fn ipv6_two_fragments_both_orders() {
        let data = datagram(1500);
        let pieces = cut(data.len(), 1232);
        for order in permutations(2) {
            let mut d = Defragmenter::new();
            let got = reassemble(&mut d, V6_SRC, V6_DST, 7, &data, &pieces, &order);
            assert_eq!(got, Some((UDP, data.clone())));
        }
    }

    #[test]
    fn interleaved_datagrams_are_kept_apart() {
        let a = datagram(2000);
        let b: Vec<u8> = datagram(2000).iter().map(|x| !x).collect();
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(1, &a, 0, 1000, true)),
            DefragOutcome::Incomplete
        );
        // Same id, other direction: another datagram.
        assert_eq!(
            d.push(t(1), V4_DST, V4_SRC, &frag(1, &b, 0, 1000, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(d.in_flight(), 2);
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(1, &a, 1000, 1000, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &a
            }
        );
        assert_eq!(
            d.push(t(1), V4_DST, V4_SRC, &frag(1, &b, 1000, 1000, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &b
            }
        );
    }

    #[test]
    fn duplicates_are_counted_and_harmless() {
        let data = datagram(2400);
        let mut d = Defragmenter::new();
        let first = frag(9, &data, 0, 1200, true);
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &first),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &first),
            DefragOutcome::Incomplete
        );
        assert_eq!(d.events().get(DefragEvent::Duplicate), 1);
        assert_eq!(d.buffered_bytes(), 1200);
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(9, &data, 1200, 1200, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &data
            }
        );
        // A duplicate after completion starts a new datagram that never completes.
        assert_eq!(
            d.push(t(2), V4_SRC, V4_DST, &first),
            DefragOutcome::Incomplete
        );
        assert_eq!(d.in_flight(), 1);
    }

    #[test]
    fn identical_overlap_first_data_wins() {
        let data = datagram(2400);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V6_SRC, V6_DST, &frag(3, &data, 0, 1200, true)),
            DefragOutcome::Incomplete
        );
        // 800..1600 overlaps 800..1200 with the same bytes.
        assert_eq!(
            d.push(t(1), V6_SRC, V6_DST, &frag(3, &data, 800, 800, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(d.events().get(DefragEvent::Overlap), 1);
        assert_eq!(
            d.push(t(1), V6_SRC, V6_DST, &frag(3, &data, 1600, 800, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &data
            }
        );
    }

    #[test]
    fn conflicting_overlap_discards_the_datagram() {
        let data = datagram(2400);
        let mut evil = data.clone();
        evil[1000] ^= 0xFF;
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(4, &data, 0, 1200, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(4, &evil, 800, 1600, false)),
            DefragOutcome::Dropped(DefragSkip::ConflictingOverlap)
        );
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.buffered_bytes(), 0);
        assert_eq!(d.skips().get(DefragSkip::ConflictingOverlap), 1);
    }

    #[test]
    fn timeout_drops_incomplete_datagrams() {
        let data = datagram(2000);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(100), V4_SRC, V4_DST, &frag(1, &data, 0, 1000, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(120), V4_SRC, V4_DST, &frag(2, &data, 0, 1000, true)),
            DefragOutcome::Incomplete
        );
        d.expire(t(130));
        assert_eq!(
            d.in_flight(),
            2,
            "exactly 30 s is not longer than the timeout"
        );
        d.expire(t(131));
        assert_eq!(d.in_flight(), 1);
        assert_eq!(d.skips().get(DefragSkip::TimedOut), 1);
        // The late last fragment of datagram 1 starts a new datagram instead of completing.
        assert_eq!(
            d.push(t(131), V4_SRC, V4_DST, &frag(1, &data, 1000, 1000, false)),
            DefragOutcome::Incomplete
        );
        // Datagram 2 completes in time.
        assert_eq!(
            d.push(t(140), V4_SRC, V4_DST, &frag(2, &data, 1000, 1000, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &data
            }
        );
        d.expire(t(1000));
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.buffered_bytes(), 0);
        assert_eq!(d.skips().get(DefragSkip::TimedOut), 2);
    }

    #[test]
    fn flood_of_first_fragments_stays_within_caps() {
        let data = datagram(16);
        let mut d = Defragmenter::new();
        for id in 0..1_000_000u32 {
            let outcome = d.push(t(1), V4_SRC, V4_DST, &frag(id, &data, 0, 8, true));
            assert_eq!(outcome, DefragOutcome::Incomplete);
            assert!(d.in_flight() <= MAX_DATAGRAMS_IN_FLIGHT);
        }
        assert_eq!(d.in_flight(), MAX_DATAGRAMS_IN_FLIGHT);
        assert_eq!(d.buffered_bytes(), 8 * MAX_DATAGRAMS_IN_FLIGHT);
        assert_eq!(
            d.skips().get(DefragSkip::TooManyDatagrams),
            1_000_000 - MAX_DATAGRAMS_IN_FLIGHT as u64
        );
        assert!(d.arrivals.len() <= MAX_ARRIVAL_QUEUE);
        assert!(d.slots.len() <= MAX_DATAGRAMS_IN_FLIGHT);
        // The newest survive: the last datagram still completes.
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(999_999, &data, 8, 8, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &data
            }
        );
    }

    #[test]
    fn flood_of_high_offset_fragments_stays_within_byte_cap() {
        let data = datagram(MAX_DATAGRAM_LEN);
        let mut d = Defragmenter::new();
        for id in 0..300u32 {
            let f = frag(id, &data, 65_000, 512, true);
            assert_eq!(d.push(t(1), V6_SRC, V6_DST, &f), DefragOutcome::Incomplete);
            assert!(d.buffered_bytes() <= MAX_BUFFERED_BYTES);
        }
        let per = 65_512;
        assert_eq!(d.in_flight(), MAX_BUFFERED_BYTES / per);
        assert_eq!(d.buffered_bytes(), d.in_flight() * per);
        assert_eq!(
            d.skips().get(DefragSkip::BufferFull),
            300 - d.in_flight() as u64
        );
        assert!(d.spare.len() <= MAX_SPARE_BUFFERS);
    }

    #[test]
    fn churn_of_completed_datagrams_keeps_the_queue_bounded() {
        let data = datagram(16);
        let mut d = Defragmenter::new();
        // One datagram stays open at the head of the queue while thousands complete behind it.
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(u32::MAX, &data, 0, 8, true)),
            DefragOutcome::Incomplete
        );
        for id in 0..10_000u32 {
            assert_eq!(
                d.push(t(1), V4_SRC, V4_DST, &frag(id, &data, 0, 8, true)),
                DefragOutcome::Incomplete
            );
            assert!(matches!(
                d.push(t(1), V4_SRC, V4_DST, &frag(id, &data, 8, 8, false)),
                DefragOutcome::Complete { .. }
            ));
            assert!(d.arrivals.len() <= MAX_ARRIVAL_QUEUE);
        }
        assert_eq!(d.in_flight(), 1);
        assert_eq!(d.buffered_bytes(), 8);
        assert_eq!(d.events().get(DefragEvent::Completed), 10_000);
        assert_eq!(d.skips().total(), 0);
    }

    #[test]
    fn last_fragment_with_bad_length_discards() {
        let data = datagram(4000);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(5, &data, 1200, 1200, true)),
            DefragOutcome::Incomplete
        );
        // A last fragment ending before data already received.
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(5, &data, 800, 400, false)),
            DefragOutcome::Dropped(DefragSkip::InconsistentLength)
        );
        assert_eq!(d.in_flight(), 0);

        // Two last fragments that disagree on the end.
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(6, &data, 2400, 800, false)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(6, &data, 2400, 1000, false)),
            DefragOutcome::Dropped(DefragSkip::InconsistentLength)
        );
        // A non-last fragment beyond the known end.
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(7, &data, 1200, 800, false)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(7, &data, 1600, 800, true)),
            DefragOutcome::Dropped(DefragSkip::InconsistentLength)
        );
        assert_eq!(d.skips().get(DefragSkip::InconsistentLength), 3);
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn last_fragment_beyond_max_datagram_len_is_ping_of_death() {
        let data = datagram(MAX_DATAGRAM_LEN + 100);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(8, &data, 0, 1480, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(8, &data, 65_528, 100, false)),
            DefragOutcome::Dropped(DefragSkip::DatagramTooLong)
        );
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn fragment_ending_exactly_at_max_datagram_len_is_accepted() {
        let data = datagram(MAX_DATAGRAM_LEN);
        let mut d = Defragmenter::new();
        for (off, len, more) in cut(MAX_DATAGRAM_LEN, 1480).into_iter().rev() {
            let outcome = d.push(t(1), V4_SRC, V4_DST, &frag(11, &data, off, len, more));
            if off == 0 {
                assert_eq!(
                    outcome,
                    DefragOutcome::Complete {
                        proto: UDP,
                        payload: &data
                    }
                );
            } else {
                assert_eq!(outcome, DefragOutcome::Incomplete);
            }
        }
    }

    #[test]
    fn non_last_fragment_not_multiple_of_8_is_dropped_alone() {
        let data = datagram(2000);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(12, &data, 0, 1001, true)),
            DefragOutcome::Dropped(DefragSkip::BadFragmentLength)
        );
        assert_eq!(d.in_flight(), 0);
    }

    #[test]
    fn zero_length_fragment_is_dropped_alone() {
        let data = datagram(2000);
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(13, &data, 0, 1000, true)),
            DefragOutcome::Incomplete
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(13, &data, 1000, 0, true)),
            DefragOutcome::Dropped(DefragSkip::EmptyFragment)
        );
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(13, &data, 2000, 0, false)),
            DefragOutcome::Dropped(DefragSkip::EmptyFragment)
        );
        assert_eq!(d.in_flight(), 1);
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &frag(13, &data, 1000, 1000, false)),
            DefragOutcome::Complete {
                proto: UDP,
                payload: &data
            }
        );
    }

    #[test]
    fn atomic_fragment_passes_through_without_copy() {
        let data = datagram(100);
        let mut d = Defragmenter::new();
        let f = frag(14, &data, 0, 100, false);
        match d.push(t(1), V6_SRC, V6_DST, &f) {
            DefragOutcome::Complete { proto, payload } => {
                assert_eq!(proto, UDP);
                assert_eq!(payload.as_ptr(), data.as_ptr());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.in_flight(), 0);
        assert_eq!(d.events().get(DefragEvent::Atomic), 1);
    }

    #[test]
    fn too_many_fragments_discards() {
        let data = datagram(2000);
        let mut d = Defragmenter::new();
        let f = frag(15, &data, 0, 8, true);
        for _ in 0..MAX_FRAGMENTS_PER_DATAGRAM {
            assert_eq!(d.push(t(1), V4_SRC, V4_DST, &f), DefragOutcome::Incomplete);
        }
        assert_eq!(
            d.push(t(1), V4_SRC, V4_DST, &f),
            DefragOutcome::Dropped(DefragSkip::TooManyFragments)
        );
        assert_eq!(d.in_flight(), 0);
    }

    #[test]
    fn tiny_fragments_in_reverse_order_reassemble() {
        let data = datagram(8 * MAX_FRAGMENTS_PER_DATAGRAM as usize);
        let mut d = Defragmenter::new();
        let pieces = cut(data.len(), 8);
        let order: Vec<usize> = (0..pieces.len()).rev().collect();
        let got = reassemble(&mut d, V4_SRC, V4_DST, 16, &data, &pieces, &order);
        assert_eq!(got, Some((UDP, data)));
    }

    #[test]
    fn protocol_is_part_of_the_key() {
        let data = datagram(16);
        let mut d = Defragmenter::new();
        let mut f = frag(17, &data, 0, 8, true);
        assert_eq!(d.push(t(1), V4_SRC, V4_DST, &f), DefragOutcome::Incomplete);
        f.proto = 6;
        assert_eq!(d.push(t(1), V4_SRC, V4_DST, &f), DefragOutcome::Incomplete);
        assert_eq!(d.in_flight(), 2);
    }

    #[test]
    fn take_counters_resets() {
        let data = datagram(16);
        let mut d = Defragmenter::new();
        let _ = d.push(t(1), V4_SRC, V4_DST, &frag(18, &data, 0, 0, true));
        let (skips, _events) = d.take_counters();
        assert_eq!(skips.get(DefragSkip::EmptyFragment), 1);
        assert_eq!(d.skips().total(), 0);
    }

    #[test]
    fn spare_buffers_are_reused() {
        let data = datagram(3000);
        let mut d = Defragmenter::new();
        for id in 0..3 {
            let pieces = cut(data.len(), 1480);
            let got = reassemble(&mut d, V4_SRC, V4_DST, id, &data, &pieces, &[0, 1, 2]);
            assert_eq!(got.map(|g| g.1.len()), Some(3000));
        }
        // The previous result's buffer went back to the pool each time.
        assert_eq!(d.spare.len(), 1);
    }
}
