//! TCP stream reassembly: one direction of one connection, bounded.
//!
//! Contract: a [`StreamReassembler`] is fed the segments of one direction of a TCP connection as
//! they are captured ([`StreamReassembler::push`], or [`StreamReassembler::push_segment`] which
//! also handles SYN) and hands back the bytes that have become contiguous, in stream order,
//! exactly once:
//!
//! * in-order data while nothing is buffered comes back as [`Delivery::InPlace`], borrowing the
//!   segment: nothing is copied. A caller that needs more bytes to finish its message hands the
//!   unparsed tail back with [`StreamReassembler::keep`], which copies it;
//! * anything else is merged into the stream's buffer and, if the contiguous prefix grew,
//!   [`Delivery::Buffered`] returns the whole unconsumed contiguous prefix; the caller removes
//!   what it parsed with [`StreamReassembler::consume`];
//! * out-of-order data is held until the gap before it fills. Retransmissions, duplicates and
//!   overlaps are trimmed: the first copy of a byte wins (counted; a later copy with different
//!   bytes is counted as a conflicting overlap).
//!
//! It is meant for the start of a stream (a TLS ClientHello, an HTTP request or response head,
//! DNS-over-TCP messages), not for bulk data: the buffer is capped at [`MAX_BUFFERED_BYTES`] and
//! [`MAX_OOO_SEGMENTS`] held out-of-order runs. Hitting a cap returns [`Delivery::Overflow`] once,
//! frees the buffer and finishes the stream; a finished stream ignores further data. The buffer
//! is allocated lazily, so an idle or in-order stream costs only the struct itself.
//!
//! Sequence numbers are compared modulo 2^32 (RFC 9293 §3.4, formerly RFC 793 §3.3): a segment is
//! "before" or "after" the next expected byte by the sign of the 32-bit difference.

use crate::decode::TcpSegment;
use crate::reason::{Reason, ReasonCounts};

/// Bytes one stream may hold (contiguous unconsumed data, out-of-order data and the holes
/// between). One maximal TLS record, 5-byte header plus 2^14 bytes of fragment (RFC 8446 §5.1),
/// holds any real ClientHello; HTTP servers cap a request head at 8 KiB (nginx, Apache); DNS
/// queries over TCP are far smaller. A stream that needs more is not one we can get a name from.
pub const MAX_BUFFERED_BYTES: usize = 5 + (1 << 14);

/// Out-of-order runs (adjacent or overlapping segments coalesce into one run) held beyond the
/// next expected byte. A full buffer cut into segments of the default MSS of 536 bytes
/// (RFC 9293 §3.7.1) is 31 segments, so 32 runs hold any reordering of a full buffer; more means
/// tiny segments (an evasion trick) and bounds the per-segment scan of the run list.
pub const MAX_OOO_SEGMENTS: usize = 32;

/// Segments starting too far ahead to ever be buffered are dropped; after this many in a row
/// (without the stream advancing) the stream has lost sync (missed capture, wrong start after a
/// mid-stream pickup) and is finished. A few spoofed segments cannot kill a stream this way.
pub const MAX_TOO_FAR_AHEAD_DROPS: u8 = 8;

/// A buffer that empties keeps its allocation for the next message only up to this capacity, so
/// idle streams that once held a large message do not keep it. 4 KiB covers a typical
/// ClientHello or HTTP head, the messages that get buffered most.
const RETAINED_CAPACITY: usize = 4096;

crate::reason_enum! {
    /// Why reassembly of a stream was abandoned; the stream is finished when this is returned.
    pub enum ReasmSkip {
        /// The data to hold would exceed [`MAX_BUFFERED_BYTES`].
        BufferFull => "buffer_full",
        /// More than [`MAX_OOO_SEGMENTS`] out-of-order runs.
        TooManyOutOfOrder => "too_many_out_of_order",
        /// More than [`MAX_TOO_FAR_AHEAD_DROPS`] segments in a row beyond the buffer window.
        TooFarAhead => "too_far_ahead",
    }
}

crate::reason_enum! {
    /// Events counted per stream (see [`ReasmCounters`]); none of them stops the stream.
    pub enum ReasmEvent {
        /// A segment started beyond the next expected byte and was held.
        OutOfOrder => "out_of_order",
        /// A segment brought no new byte (a retransmission or a duplicate).
        Duplicate => "duplicate",
        /// A segment overlapped bytes already received and also brought new ones.
        Overlap => "overlap",
        /// Overlapping bytes differed from the first copy (which was kept).
        ConflictingOverlap => "conflicting_overlap",
        /// A segment started at least [`MAX_BUFFERED_BYTES`] ahead of the next expected byte.
        DroppedTooFarAhead => "dropped_too_far_ahead",
    }
}

const EVENT_KINDS: usize = <ReasmEvent as Reason>::ALL.len();

/// Per-stream event counts: a fixed array, no allocation. Read them with
/// [`StreamReassembler::take_counters`] (which resets them) and fold them into worker totals with
/// [`ReasmCounters::add_to`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasmCounters {
    counts: [u32; EVENT_KINDS],
}

impl ReasmCounters {
    pub fn get(&self, event: ReasmEvent) -> u32 {
        self.counts.get(event.index()).copied().unwrap_or(0)
    }

    pub fn is_zero(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }

    /// Adds these counts to worker-level totals.
    pub fn add_to(&self, totals: &mut ReasonCounts<ReasmEvent>) {
        for event in ReasmEvent::ALL {
            totals.add(*event, u64::from(self.get(*event)));
        }
    }

    fn incr(&mut self, event: ReasmEvent) {
        if let Some(slot) = self.counts.get_mut(event.index()) {
            *slot = slot.saturating_add(1);
        }
    }
}

/// What a pushed segment made available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery<'a> {
    /// The segment itself, in order, nothing buffered: parse it directly. Bytes not parsed are
    /// dropped unless handed back with [`StreamReassembler::keep`] before the next push.
    InPlace(&'a [u8]),
    /// All contiguous unconsumed bytes, from the buffer; call [`StreamReassembler::consume`]
    /// with what was parsed.
    Buffered(&'a [u8]),
    /// Nothing new is contiguous (out-of-order, duplicate, empty, or the stream is finished).
    Nothing,
    /// A cap was hit: the buffer is freed and the stream finished.
    Overflow(ReasmSkip),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Start {
    /// Neither a SYN nor data seen yet: the first data segment sets the start.
    #[default]
    Unknown,
    /// A SYN set the start; no data yet (a retransmitted SYN may still move it).
    Syn,
    /// Data has been accepted; the start is fixed.
    Data,
}

/// One direction of a TCP connection. See the module docs.
#[derive(Debug, Default)]
pub struct StreamReassembler {
    /// Sequence number of `buf[0]`; when `buf` is empty, of the next expected byte.
    base: u32,
    start: Start,
    /// Bytes from `base` on: the contiguous unconsumed prefix, then out-of-order runs with
    /// zero-filled holes between. Empty (and unallocated until first needed) on the fast path.
    buf: Vec<u8>,
    /// Received runs in `buf`, as `[start, end)` offsets: sorted, disjoint, never adjacent. A run
    /// starting at 0 is the contiguous prefix; the others are out-of-order.
    runs: Vec<(usize, usize)>,
    /// Length of the last `InPlace` delivery, which `keep` may copy; 0 otherwise.
    in_place_len: usize,
    too_far_ahead_drops: u8,
    finished: bool,
    counters: ReasmCounters,
}

impl StreamReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the initial sequence number from a SYN (or SYN-ACK): the first data byte is
    /// `isn + 1` (RFC 9293 §3.4). Ignored once data has been accepted.
    pub fn on_syn(&mut self, isn: u32) {
        if self.start != Start::Data && !self.finished {
            self.base = isn.wrapping_add(1);
            self.start = Start::Syn;
        }
    }

    /// Pushes a decoded segment: a SYN sets the start and its data (TCP Fast Open, RFC 7413)
    /// is delivered from `isn + 1`. The payload of a RST is diagnostic text, not stream data
    /// (RFC 9293 §3.5.3), and is ignored. Bytes cut by the snap length are a hole that never
    /// fills: later data waits as out-of-order until a cap finishes the stream.
    pub fn push_segment<'a>(&'a mut self, segment: &TcpSegment<'a>) -> Delivery<'a> {
        if segment.flags & TcpSegment::RST != 0 {
            self.in_place_len = 0;
            return Delivery::Nothing;
        }
        let mut seq = segment.seq;
        if segment.flags & TcpSegment::SYN != 0 {
            self.on_syn(segment.seq);
            seq = seq.wrapping_add(1);
        }
        self.push(seq, segment.payload)
    }

    /// Pushes the payload of a segment whose first byte has sequence number `seq`. A SYN's
    /// data starts at `isn + 1`: call [`Self::on_syn`] first, then push it at `isn + 1`.
    pub fn push<'a>(&'a mut self, seq: u32, payload: &'a [u8]) -> Delivery<'a> {
        self.in_place_len = 0;
        if self.finished || payload.is_empty() {
            return Delivery::Nothing;
        }
        match self.start {
            Start::Unknown => {
                // Picked up mid-stream: this segment is the start.
                self.base = seq;
                self.start = Start::Data;
            }
            Start::Syn => self.start = Start::Data,
            Start::Data => {}
        }

        let contig = self.contiguous_len();
        let next = self.base.wrapping_add(to_u32(contig));
        let rel = seq_delta(seq, next);
        let len = i64::try_from(payload.len()).unwrap_or(i64::MAX);
        if rel.saturating_add(len) <= 0 {
            // Entirely before the next expected byte: already delivered.
            if self.old_bytes_conflict(rel, payload) {
                self.counters.incr(ReasmEvent::ConflictingOverlap);
            }
            self.counters.incr(ReasmEvent::Duplicate);
            return Delivery::Nothing;
        }

        let mut overlapped = false;
        let mut conflicting = false;
        let (payload, rel) = match usize::try_from(rel) {
            Ok(rel) => (payload, rel),
            Err(_) => {
                // Starts before the next expected byte: trim the old part, first copy wins.
                let old = usize::try_from(rel.unsigned_abs()).unwrap_or(usize::MAX);
                let Some((old_part, new_part)) = payload.split_at_checked(old) else {
                    return Delivery::Nothing;
                };
                overlapped = true;
                conflicting = self.old_bytes_conflict(rel, old_part);
                (new_part, 0)
            }
        };

        if rel >= MAX_BUFFERED_BYTES {
            self.counters.incr(ReasmEvent::DroppedTooFarAhead);
            self.too_far_ahead_drops = self.too_far_ahead_drops.saturating_add(1);
            if self.too_far_ahead_drops > MAX_TOO_FAR_AHEAD_DROPS {
                return self.abandon(ReasmSkip::TooFarAhead);
            }
            return Delivery::Nothing;
        }

        if rel == 0 && self.buf.is_empty() {
            // Fast path: in order, nothing held. `buf` empty means `base` is the next byte.
            if overlapped {
                self.counters.incr(ReasmEvent::Overlap);
            }
            if conflicting {
                self.counters.incr(ReasmEvent::ConflictingOverlap);
            }
            self.base = self.base.wrapping_add(to_u32(payload.len()));
            self.in_place_len = payload.len();
            self.too_far_ahead_drops = 0;
            return Delivery::InPlace(payload);
        }

        let Some(at) = contig.checked_add(rel) else {
            return self.abandon(ReasmSkip::BufferFull);
        };
        let end = match at.checked_add(payload.len()) {
            Some(end) if end <= MAX_BUFFERED_BYTES => end,
            _ => return self.abandon(ReasmSkip::BufferFull),
        };
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let merge = merge_first_wins(&mut self.buf, &mut self.runs, at, payload);
        if rel > 0 {
            self.counters.incr(ReasmEvent::OutOfOrder);
        }
        if merge.new_bytes == 0 {
            self.counters.incr(ReasmEvent::Duplicate);
        } else if overlapped || merge.overlap_bytes > 0 {
            self.counters.incr(ReasmEvent::Overlap);
        }
        if conflicting || merge.conflicting {
            self.counters.incr(ReasmEvent::ConflictingOverlap);
        }
        if self.out_of_order_runs() > MAX_OOO_SEGMENTS {
            return self.abandon(ReasmSkip::TooManyOutOfOrder);
        }

        let now_contig = self.contiguous_len();
        if now_contig > contig {
            self.too_far_ahead_drops = 0;
            Delivery::Buffered(self.buf.get(..now_contig).unwrap_or_default())
        } else {
            Delivery::Nothing
        }
    }

    /// After [`Delivery::InPlace`]: copies `unconsumed`, the tail of that delivery the caller
    /// could not parse yet, into the buffer so the next delivery starts with it. Only the last
    /// `InPlace` delivery's length is accepted (a longer slice keeps its last bytes); a call at
    /// any other time does nothing. Fails, finishing the stream, if the tail exceeds
    /// [`MAX_BUFFERED_BYTES`].
    pub fn keep(&mut self, unconsumed: &[u8]) -> Result<(), ReasmSkip> {
        let delivered = std::mem::take(&mut self.in_place_len);
        let n = unconsumed.len().min(delivered);
        if self.finished || n == 0 || !self.buf.is_empty() {
            return Ok(());
        }
        if n > MAX_BUFFERED_BYTES {
            self.finish();
            return Err(ReasmSkip::BufferFull);
        }
        let tail = unconsumed
            .get(unconsumed.len().saturating_sub(n)..)
            .unwrap_or_default();
        self.buf.extend_from_slice(tail);
        self.runs.clear();
        self.runs.push((0, n));
        self.base = self.base.wrapping_sub(to_u32(n));
        Ok(())
    }

    /// After [`Delivery::Buffered`]: drops the first `n` contiguous bytes (clamped to what is
    /// contiguous), which the caller has parsed.
    pub fn consume(&mut self, n: usize) {
        self.in_place_len = 0;
        let n = n.min(self.contiguous_len());
        if n == 0 {
            return;
        }
        // n <= contiguous length <= buf.len().
        self.buf.drain(..n);
        for run in &mut self.runs {
            run.0 = run.0.saturating_sub(n);
            run.1 = run.1.saturating_sub(n);
        }
        if self.runs.first() == Some(&(0, 0)) {
            self.runs.remove(0);
        }
        self.base = self.base.wrapping_add(to_u32(n));
        if self.buf.is_empty() && self.buf.capacity() > RETAINED_CAPACITY {
            self.buf = Vec::new();
        }
    }

    /// Stops reassembly (the flow is bypassed, or has yielded what we need): frees the buffer;
    /// later pushes return [`Delivery::Nothing`].
    pub fn finish(&mut self) {
        self.finished = true;
        self.in_place_len = 0;
        self.buf = Vec::new();
        self.runs = Vec::new();
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Bytes held: unconsumed contiguous data, out-of-order data and the holes between them.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Sequence number of the next expected byte, once the start is known.
    pub fn next_seq(&self) -> Option<u32> {
        match self.start {
            Start::Unknown => None,
            _ => Some(self.base.wrapping_add(to_u32(self.contiguous_len()))),
        }
    }

    pub fn counters(&self) -> ReasmCounters {
        self.counters
    }

    /// Returns the event counts and resets them.
    pub fn take_counters(&mut self) -> ReasmCounters {
        std::mem::take(&mut self.counters)
    }

    fn abandon(&mut self, reason: ReasmSkip) -> Delivery<'static> {
        self.finish();
        Delivery::Overflow(reason)
    }

    fn contiguous_len(&self) -> usize {
        match self.runs.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    fn out_of_order_runs(&self) -> usize {
        let contiguous = usize::from(self.contiguous_len() > 0);
        self.runs.len().saturating_sub(contiguous)
    }

    /// Whether `old`, whose first byte is `rel` (< 0) bytes before the next expected byte,
    /// differs from the part of the contiguous prefix still buffered. Bytes already consumed
    /// cannot be compared.
    fn old_bytes_conflict(&self, rel: i64, old: &[u8]) -> bool {
        let contig = self.contiguous_len();
        let at = i64::try_from(contig)
            .unwrap_or(i64::MAX)
            .saturating_add(rel);
        let (skip, from) = match usize::try_from(at) {
            Ok(from) => (0, from),
            Err(_) => (usize::try_from(at.unsigned_abs()).unwrap_or(usize::MAX), 0),
        };
        match (old.get(skip..), self.buf.get(from..contig)) {
            (Some(old), Some(held)) => {
                let n = old.len().min(held.len());
                old.get(..n) != held.get(..n)
            }
            _ => false,
        }
    }
}

/// Signed distance from `b` to `a` in sequence space (RFC 9293 §3.4): negative when `a` is
/// before `b`.
fn seq_delta(a: u32, b: u32) -> i64 {
    // Reinterpreting the 32-bit difference as two's complement is the point (RFC 9293 §3.4).
    i64::from(a.wrapping_sub(b) as i32)
}

/// Lengths here are bounded by the caps, far below 2^32; saturate rather than wrap anyway.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What [`merge_first_wins`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Merge {
    /// Bytes written that no earlier data covered.
    pub new_bytes: usize,
    /// Bytes that earlier data already covered (left untouched).
    pub overlap_bytes: usize,
    /// Some overlapping byte differed from the earlier copy.
    pub conflicting: bool,
}

/// Writes `data` at offset `at` of `buf` where no earlier run covers it, compares it where one
/// does (the first copy wins), and records `[at, at + data.len())` in `runs`, which stays sorted,
/// disjoint and coalesced (adjacent runs merge). The caller sizes `buf` to hold the data; bytes
/// beyond `buf` are not written. Cost: O(runs) plus the bytes touched.
pub(crate) fn merge_first_wins(
    buf: &mut [u8],
    runs: &mut Vec<(usize, usize)>,
    at: usize,
    data: &[u8],
) -> Merge {
    let mut merge = Merge::default();
    let Some(end) = at.checked_add(data.len()) else {
        return merge;
    };
    if data.is_empty() {
        return merge;
    }
    let first = runs.partition_point(|run| run.1 < at);
    let mut last = first;
    let mut cursor = at;
    let (mut merged_start, mut merged_end) = (at, end);
    for &(run_start, run_end) in runs.get(first..).unwrap_or_default() {
        if run_start > end {
            break;
        }
        // The run touches [at, end): write the gap before it, compare the overlap.
        if run_start > cursor {
            merge.new_bytes = merge.new_bytes.saturating_add(copy_range(
                buf,
                data,
                at,
                cursor,
                run_start.min(end),
            ));
        }
        let (overlap_start, overlap_end) = (run_start.max(at), run_end.min(end));
        if overlap_end > overlap_start {
            merge.overlap_bytes = merge
                .overlap_bytes
                .saturating_add(overlap_end.saturating_sub(overlap_start));
            let held = buf.get(overlap_start..overlap_end);
            let new = data.get(overlap_start.saturating_sub(at)..overlap_end.saturating_sub(at));
            if held != new {
                merge.conflicting = true;
            }
        }
        cursor = cursor.max(run_end);
        merged_start = merged_start.min(run_start);
        merged_end = merged_end.max(run_end);
        last = last.saturating_add(1);
    }
    if cursor < end {
        merge.new_bytes = merge
            .new_bytes
            .saturating_add(copy_range(buf, data, at, cursor, end));
    }
    if last > first {
        if let Some(run) = runs.get_mut(first) {
            *run = (merged_start, merged_end);
        }
        runs.drain(first.saturating_add(1)..last);
    } else {
        runs.insert(first, (merged_start, merged_end));
    }
    merge
}

/// Copies `data[from - at .. to - at]` to `buf[from..to]`; returns the bytes copied.
fn copy_range(buf: &mut [u8], data: &[u8], at: usize, from: usize, to: usize) -> usize {
    let src = data.get(from.saturating_sub(at)..to.saturating_sub(at));
    match (buf.get_mut(from..to), src) {
        (Some(dst), Some(src)) if dst.len() == src.len() => {
            dst.copy_from_slice(src);
            src.len()
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello-shaped payload: a TLS handshake record header and varied bytes.
    fn client_hello_like(len: usize) -> Vec<u8> {
        let body = len.saturating_sub(5);
        let mut v = vec![0x16, 0x03, 0x01, (body >> 8) as u8, body as u8];
        v.extend((0..body).map(|i| (i * 7 + i / 251) as u8));
        v
    }

    /// Consumer that parses everything it is given: the concatenation must be the stream.
    fn feed_eager(r: &mut StreamReassembler, out: &mut Vec<u8>, seq: u32, data: &[u8]) {
        match r.push(seq, data) {
            Delivery::InPlace(b) => out.extend_from_slice(b),
            Delivery::Buffered(b) => {
                let n = b.len();
                out.extend_from_slice(b);
                r.consume(n);
            }
            Delivery::Nothing => {}
            Delivery::Overflow(reason) => panic!("unexpected overflow {reason:?}"),
        }
    }

    /// Consumer that needs `total` bytes before it can parse: keeps partial data.
    fn feed_whole(
        r: &mut StreamReassembler,
        total: usize,
        seq: u32,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        match r.push(seq, data) {
            Delivery::InPlace(b) if b.len() >= total => Some(b.to_vec()),
            Delivery::InPlace(b) => {
                let b = b.to_vec();
                r.keep(&b).unwrap();
                None
            }
            Delivery::Buffered(b) if b.len() >= total => {
                let whole = b.to_vec();
                r.consume(whole.len());
                Some(whole)
            }
            Delivery::Buffered(_) | Delivery::Nothing => None,
            Delivery::Overflow(reason) => panic!("unexpected overflow {reason:?}"),
        }
    }

    use crate::test_rng::XorShift;

    /// Cuts `data` into `n` pieces at the given points: `(offset, len)`.
    fn split_even(len: usize, n: usize) -> Vec<(usize, usize)> {
        let mut pieces = Vec::new();
        let mut off = 0;
        for i in 0..n {
            let end = len * (i + 1) / n;
            pieces.push((off, end - off));
            off = end;
        }
        pieces
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

    #[test]
    fn in_order_fast_path_copies_nothing() {
        let data = client_hello_like(600);
        let mut r = StreamReassembler::new();
        r.on_syn(1000);
        let (a, b) = data.split_at(300);
        match r.push(1001, a) {
            Delivery::InPlace(got) => assert_eq!(got.as_ptr(), a.as_ptr()),
            other => panic!("{other:?}"),
        }
        match r.push(1301, b) {
            Delivery::InPlace(got) => {
                assert_eq!(got.as_ptr(), b.as_ptr());
                assert_eq!(got.len(), 300);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.buf.capacity(), 0, "no buffer allocated on the fast path");
        assert_eq!(r.next_seq(), Some(1601));
        assert!(r.counters().is_zero());
    }

    #[test]
    fn keep_then_next_segment_is_buffered_with_the_tail() {
        let data = client_hello_like(500);
        let mut r = StreamReassembler::new();
        r.on_syn(7);
        let (a, b) = data.split_at(200);
        assert_eq!(r.push(8, a), Delivery::InPlace(a));
        r.keep(&a[150..]).unwrap();
        assert_eq!(r.buffered_bytes(), 50);
        match r.push(208, b) {
            Delivery::Buffered(got) => assert_eq!(got, &data[150..]),
            other => panic!("{other:?}"),
        }
        r.consume(350);
        assert_eq!(r.buffered_bytes(), 0);
        // Empty again: back on the fast path.
        let more = [1u8, 2, 3];
        assert_eq!(r.push(508, &more), Delivery::InPlace(&more[..]));
    }

    #[test]
    fn keep_longer_than_delivery_keeps_only_the_delivered_length() {
        let mut r = StreamReassembler::new();
        let a = [1u8, 2, 3];
        assert_eq!(r.push(0, &a), Delivery::InPlace(&a[..]));
        r.keep(&[9, 9, 1, 2, 3]).unwrap();
        assert_eq!(r.buffered_bytes(), 3);
        assert_eq!(r.push(3, &[4]), Delivery::Buffered(&[1, 2, 3, 4][..]));
    }

    #[test]
    fn keep_without_in_place_delivery_does_nothing() {
        let mut r = StreamReassembler::new();
        r.keep(&[1, 2, 3]).unwrap();
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.push(0, &[1]), Delivery::InPlace(&[1][..]));
        assert_eq!(r.push(1, &[2]), Delivery::InPlace(&[2][..]));
        // A keep after another push refers to the latest delivery only.
        r.keep(&[2]).unwrap();
        r.keep(&[2]).unwrap();
        assert_eq!(r.buffered_bytes(), 1);
    }

    #[test]
    fn partial_consume_keeps_the_rest_contiguous() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[3, 4]), Delivery::Nothing);
        assert_eq!(r.push(1, &[1, 2]), Delivery::Buffered(&[1, 2, 3, 4][..]));
        r.consume(3);
        assert_eq!(r.buffered_bytes(), 1);
        assert_eq!(r.push(5, &[5]), Delivery::Buffered(&[4, 5][..]));
        r.consume(100);
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.next_seq(), Some(6));
    }

    fn check_pieces_in_order(isn: u32, data: &[u8], pieces: &[(usize, usize)], order: &[usize]) {
        let mut r = StreamReassembler::new();
        r.on_syn(isn);
        let mut out = Vec::new();
        for &i in order {
            let (off, len) = pieces[i];
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            feed_eager(&mut r, &mut out, seq, &data[off..off + len]);
        }
        assert_eq!(out, data, "order {order:?} isn {isn:#x}");
        assert_eq!(r.buffered_bytes(), 0);

        let mut r = StreamReassembler::new();
        r.on_syn(isn);
        let mut whole = None;
        for &i in order {
            let (off, len) = pieces[i];
            let seq = isn.wrapping_add(1).wrapping_add(off as u32);
            if let Some(w) = feed_whole(&mut r, data.len(), seq, &data[off..off + len]) {
                assert!(whole.is_none(), "delivered twice");
                whole = Some(w);
            }
        }
        assert_eq!(whole.as_deref(), Some(data), "order {order:?} isn {isn:#x}");
    }

    #[test]
    fn two_pieces_both_orders() {
        let data = client_hello_like(517);
        let pieces = split_even(data.len(), 2);
        for order in permutations(2) {
            check_pieces_in_order(0x1234_5678, &data, &pieces, &order);
        }
    }

    #[test]
    fn three_pieces_every_permutation() {
        let data = client_hello_like(1800);
        let pieces = split_even(data.len(), 3);
        for isn in [0u32, 0xFFFF_FFF0, 0x7FFF_FFFF, 0xFFFF_F900] {
            for order in permutations(3) {
                check_pieces_in_order(isn, &data, &pieces, &order);
            }
        }
    }

    #[test]
    fn two_pieces_split_at_every_offset_both_orders() {
        let data = client_hello_like(300);
        for split in 1..data.len() {
            let pieces = [(0, split), (split, data.len() - split)];
            check_pieces_in_order(0xFFFF_FF00, &data, &pieces, &[0, 1]);
            check_pieces_in_order(0xFFFF_FF00, &data, &pieces, &[1, 0]);
        }
    }

    #[test]
    fn ten_pieces_random_orders_with_duplicates_and_overlaps() {
        let data = client_hello_like(4000);
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..300 {
            // Uneven cut points.
            let mut cuts: Vec<usize> = (0..9).map(|_| 1 + rng.below(data.len() - 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut segs = Vec::new();
            let mut prev = 0;
            for c in cuts.iter().copied().chain([data.len()]) {
                if c > prev {
                    segs.push((prev, c - prev));
                }
                prev = c;
            }
            // Duplicates of some pieces and overlapping ranges.
            for _ in 0..3 {
                let dup = segs[rng.below(segs.len())];
                segs.push(dup);
                let a = rng.below(data.len() - 1);
                let b = a + 1 + rng.below((data.len() - a).min(1500));
                segs.push((a, b - a));
            }
            rng.shuffle(&mut segs);
            let isn = if round % 2 == 0 {
                0xFFFF_FFF0
            } else {
                rng.next() as u32
            };

            let mut r = StreamReassembler::new();
            r.on_syn(isn);
            let mut out = Vec::new();
            for &(off, len) in &segs {
                let seq = isn.wrapping_add(1).wrapping_add(off as u32);
                feed_eager(&mut r, &mut out, seq, &data[off..off + len]);
            }
            assert_eq!(out.len(), data.len(), "round {round}");
            assert_eq!(out, data, "round {round}");

            // The same segments to a consumer that waits for the whole message.
            let mut w = StreamReassembler::new();
            w.on_syn(isn);
            let mut whole = None;
            for &(off, len) in &segs {
                let seq = isn.wrapping_add(1).wrapping_add(off as u32);
                if let Some(got) = feed_whole(&mut w, data.len(), seq, &data[off..off + len]) {
                    assert!(whole.is_none(), "delivered twice, round {round}");
                    whole = Some(got);
                }
            }
            assert_eq!(whole.as_deref(), Some(&data[..]), "round {round}");
            assert_eq!(r.counters().get(ReasmEvent::ConflictingOverlap), 0);
            assert!(
                r.counters().get(ReasmEvent::Duplicate) >= 3,
                "round {round}"
            );
            assert!(!r.is_finished());
        }
    }

    #[test]
    fn wraparound_at_two_to_the_32() {
        let data = client_hello_like(64);
        let mut r = StreamReassembler::new();
        r.on_syn(0xFFFF_FFF0);
        let mut out = Vec::new();
        // Bytes 0..15 sit below 2^32, 15.. wrap to 0.
        feed_eager(&mut r, &mut out, 0x0000_000A, &data[25..64]);
        assert_eq!(r.buffered_bytes(), 64);
        feed_eager(&mut r, &mut out, 0xFFFF_FFF1, &data[..10]);
        feed_eager(&mut r, &mut out, 0xFFFF_FFFB, &data[10..25]);
        assert_eq!(out, data);
        assert_eq!(r.next_seq(), Some(0x0000_0031));
        // An old segment from before the wrap is a duplicate, not data 4 GiB ahead.
        assert_eq!(r.push(0xFFFF_FFF1, &data[..10]), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 1);
        assert_eq!(r.counters().get(ReasmEvent::DroppedTooFarAhead), 0);
    }

    #[test]
    fn tcp_fast_open_data_on_syn_is_delivered() {
        let data = client_hello_like(300);
        let syn = TcpSegment {
            src_port: 50000,
            dst_port: 443,
            seq: 0xFFFF_FFFF,
            ack: 0,
            flags: TcpSegment::SYN,
            payload: &data[..200],
            wire_payload_len: 200,
        };
        let mut r = StreamReassembler::new();
        assert_eq!(r.push_segment(&syn), Delivery::InPlace(&data[..200]));
        assert_eq!(r.next_seq(), Some(200));
        let rest = TcpSegment {
            seq: 200,
            flags: TcpSegment::ACK,
            payload: &data[200..],
            wire_payload_len: 100,
            ..syn
        };
        assert_eq!(r.push_segment(&rest), Delivery::InPlace(&data[200..]));
        // A retransmitted SYN with its data is old: nothing new.
        assert_eq!(r.push_segment(&syn), Delivery::Nothing);
        assert_eq!(r.next_seq(), Some(300));
    }

    #[test]
    fn rst_payload_is_not_stream_data() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let rst = TcpSegment {
            src_port: 1,
            dst_port: 2,
            seq: 1,
            ack: 0,
            flags: TcpSegment::RST,
            payload: b"reset reason",
            wire_payload_len: 12,
        };
        assert_eq!(r.push_segment(&rst), Delivery::Nothing);
        assert_eq!(r.next_seq(), Some(1));
    }

    #[test]
    fn mid_stream_pickup_starts_at_first_data_segment() {
        let mut r = StreamReassembler::new();
        assert_eq!(r.next_seq(), None);
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(
            r.push(0x8000_0000, &req[..10]),
            Delivery::InPlace(&req[..10])
        );
        assert_eq!(
            r.push(0x8000_0000 + 10, &req[10..]),
            Delivery::InPlace(&req[10..])
        );
        // Data before the pickup point is treated as already delivered.
        assert_eq!(r.push(0x7FFF_FF00, &[0; 16]), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 1);
    }

    #[test]
    fn syn_after_data_is_ignored() {
        let mut r = StreamReassembler::new();
        assert_eq!(r.push(100, &[1, 2]), Delivery::InPlace(&[1, 2][..]));
        r.on_syn(5000);
        assert_eq!(r.next_seq(), Some(102));
    }

    #[test]
    fn retransmitted_syn_before_data_moves_the_start() {
        let mut r = StreamReassembler::new();
        r.on_syn(10);
        r.on_syn(20);
        assert_eq!(r.next_seq(), Some(21));
        assert_eq!(r.push(21, &[7]), Delivery::InPlace(&[7][..]));
    }

    #[test]
    fn entirely_old_segment_is_nothing() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(1, &[1, 2, 3, 4]),
            Delivery::InPlace(&[1, 2, 3, 4][..])
        );
        assert_eq!(r.push(1, &[1, 2, 3, 4]), Delivery::Nothing);
        assert_eq!(r.push(2, &[2, 3]), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 2);
        assert_eq!(r.counters().get(ReasmEvent::ConflictingOverlap), 0);
    }

    #[test]
    fn partial_retransmission_is_trimmed() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(1, &[1, 2, 3]), Delivery::InPlace(&[1, 2, 3][..]));
        // Bytes 2..3 again plus 4, 5 new: only the new part comes out, in place.
        assert_eq!(r.push(2, &[2, 3, 4, 5]), Delivery::InPlace(&[4, 5][..]));
        assert_eq!(r.counters().get(ReasmEvent::Overlap), 1);
        assert_eq!(r.next_seq(), Some(6));
    }

    #[test]
    fn conflicting_overlap_is_counted_and_first_data_wins() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(6, b"WORLD"), Delivery::Nothing);
        // Overlaps the held run with different bytes at seq 6..8.
        assert_eq!(
            r.push(1, b"helloXY"),
            Delivery::Buffered(&b"helloWORLD"[..])
        );
        let c = r.counters();
        assert_eq!(c.get(ReasmEvent::ConflictingOverlap), 1);
        assert_eq!(c.get(ReasmEvent::Overlap), 1);
        assert_eq!(c.get(ReasmEvent::OutOfOrder), 1);
    }

    #[test]
    fn conflicting_retransmission_of_buffered_bytes_is_counted() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(1, b"abc"), Delivery::InPlace(&b"abc"[..]));
        r.keep(b"abc").unwrap();
        assert_eq!(r.push(1, b"abX"), Delivery::Nothing);
        let c = r.counters();
        assert_eq!(c.get(ReasmEvent::Duplicate), 1);
        assert_eq!(c.get(ReasmEvent::ConflictingOverlap), 1);
        assert_eq!(r.push(4, b"d"), Delivery::Buffered(&b"abcd"[..]));
    }

    #[test]
    fn take_counters_resets() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[3]), Delivery::Nothing);
        let taken = r.take_counters();
        assert_eq!(taken.get(ReasmEvent::OutOfOrder), 1);
        assert!(r.counters().is_zero());
        let mut totals = ReasonCounts::<ReasmEvent>::default();
        taken.add_to(&mut totals);
        taken.add_to(&mut totals);
        assert_eq!(totals.get(ReasmEvent::OutOfOrder), 2);
        assert_eq!(totals.total(), 2);
    }

    #[test]
    fn buffer_cap_overflows_and_finishes() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let chunk = vec![0xAB; 4096];
        let mut seq = 1u32;
        let first = r.push(seq, &chunk);
        assert_eq!(first, Delivery::InPlace(&chunk[..]));
        r.keep(&chunk).unwrap();
        seq += 4096;
        for _ in 0..3 {
            assert!(matches!(r.push(seq, &chunk), Delivery::Buffered(_)));
            seq += 4096;
        }
        assert_eq!(r.buffered_bytes(), 16384);
        // 16384 + 6 > MAX_BUFFERED_BYTES.
        assert_eq!(
            r.push(seq, &[0; 6]),
            Delivery::Overflow(ReasmSkip::BufferFull)
        );
        assert!(r.is_finished());
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.buf.capacity(), 0, "buffer freed");
        assert_eq!(r.push(seq, &[0; 6]), Delivery::Nothing);
    }

    #[test]
    fn exactly_max_buffered_bytes_fits() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let data = vec![1u8; MAX_BUFFERED_BYTES];
        assert_eq!(r.push(2, &data[1..]), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), MAX_BUFFERED_BYTES);
        match r.push(1, &data[..1]) {
            Delivery::Buffered(b) => assert_eq!(b.len(), MAX_BUFFERED_BYTES),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_keep_fails_and_finishes() {
        let mut r = StreamReassembler::new();
        let big = vec![0u8; MAX_BUFFERED_BYTES + 1];
        assert!(matches!(r.push(0, &big), Delivery::InPlace(_)));
        assert_eq!(r.keep(&big), Err(ReasmSkip::BufferFull));
        assert!(r.is_finished());
    }

    #[test]
    fn big_in_order_segment_is_in_place_despite_the_cap() {
        // The cap bounds what is held, not what passes through in place.
        let mut r = StreamReassembler::new();
        let big = vec![0u8; 60_000];
        assert!(matches!(r.push(0, &big), Delivery::InPlace(b) if b.len() == 60_000));
        assert!(!r.is_finished());
    }

    #[test]
    fn out_of_order_segment_beyond_buffer_overflows() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(1 + 16_000, &[0; 1000]),
            Delivery::Overflow(ReasmSkip::BufferFull)
        );
        assert!(r.is_finished());
    }

    #[test]
    fn too_many_out_of_order_runs_overflows() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        // One-byte segments with one-byte gaps: each is its own run.
        for i in 0..MAX_OOO_SEGMENTS as u32 {
            assert_eq!(r.push(3 + 2 * i, &[1]), Delivery::Nothing, "run {i}");
        }
        assert_eq!(r.out_of_order_runs(), MAX_OOO_SEGMENTS);
        assert_eq!(
            r.push(3 + 2 * MAX_OOO_SEGMENTS as u32, &[1]),
            Delivery::Overflow(ReasmSkip::TooManyOutOfOrder)
        );
        assert!(r.is_finished());
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn adjacent_out_of_order_segments_coalesce_into_one_run() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        for i in 0..100u32 {
            assert_eq!(r.push(10 + i, &[i as u8]), Delivery::Nothing);
        }
        assert_eq!(r.runs.len(), 1);
        match r.push(1, &[0; 9]) {
            Delivery::Buffered(b) => assert_eq!(b.len(), 109),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_far_ahead_is_dropped_then_finishes() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let far = 1 + MAX_BUFFERED_BYTES as u32;
        for i in 0..MAX_TOO_FAR_AHEAD_DROPS {
            assert_eq!(r.push(far, &[1]), Delivery::Nothing, "drop {i}");
        }
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(
            r.counters().get(ReasmEvent::DroppedTooFarAhead),
            u32::from(MAX_TOO_FAR_AHEAD_DROPS)
        );
        // The stream still works while under the limit...
        assert_eq!(r.push(1, &[5]), Delivery::InPlace(&[5][..]));
        // ...and progress resets the run of drops.
        for _ in 0..MAX_TOO_FAR_AHEAD_DROPS {
            assert_eq!(r.push(far + 1, &[1]), Delivery::Nothing);
        }
        assert_eq!(
            r.push(far + 1, &[1]),
            Delivery::Overflow(ReasmSkip::TooFarAhead)
        );
        assert!(r.is_finished());
    }

    #[test]
    fn far_behind_is_old_not_ahead() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        // 2^31 - 1 behind and exactly 2^31 away: both count as old by the signed difference.
        assert_eq!(r.push(0x8000_0002, &[1]), Delivery::Nothing);
        assert_eq!(r.push(0x8000_0001, &[1]), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 2);
        assert_eq!(r.push(1, &[1]), Delivery::InPlace(&[1][..]));
    }

    #[test]
    fn empty_payload_is_nothing_and_does_not_set_the_start() {
        let mut r = StreamReassembler::new();
        assert_eq!(r.push(5, &[]), Delivery::Nothing);
        assert_eq!(r.next_seq(), None);
    }

    #[test]
    fn finish_frees_and_ignores_later_data() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[1, 2]), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), 4);
        r.finish();
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.push(1, &[1, 2]), Delivery::Nothing);
        r.on_syn(100);
        assert!(r.is_finished());
    }

    #[test]
    fn emptied_large_buffer_is_released() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let data = vec![3u8; 10_000];
        assert_eq!(r.push(2, &data[1..]), Delivery::Nothing);
        assert!(matches!(r.push(1, &data[..1]), Delivery::Buffered(_)));
        r.consume(10_000);
        assert_eq!(r.buf.capacity(), 0);
    }

    #[test]
    fn idle_stream_is_small() {
        assert!(std::mem::size_of::<StreamReassembler>() <= 96);
    }

    #[test]
    fn merge_reports_new_overlap_and_conflict() {
        let mut buf = vec![0u8; 10];
        let mut runs = Vec::new();
        let m = merge_first_wins(&mut buf, &mut runs, 2, &[1, 2, 3]);
        assert_eq!(
            m,
            Merge {
                new_bytes: 3,
                overlap_bytes: 0,
                conflicting: false
            }
        );
        let m = merge_first_wins(&mut buf, &mut runs, 7, &[7, 8]);
        assert_eq!(m.new_bytes, 2);
        assert_eq!(runs, vec![(2, 5), (7, 9)]);
        // Spans both runs and the gap; byte 4 conflicts.
        let m = merge_first_wins(&mut buf, &mut runs, 1, &[9, 1, 2, 9, 5, 6, 7, 8, 9]);
        assert_eq!(
            m,
            Merge {
                new_bytes: 4,
                overlap_bytes: 5,
                conflicting: true
            }
        );
        assert_eq!(runs, vec![(1, 10)]);
        assert_eq!(buf, [0, 9, 1, 2, 3, 5, 6, 7, 8, 9]);
    }

    #[test]
    fn merge_ignores_data_beyond_the_buffer() {
        let mut buf = vec![0u8; 4];
        let mut runs = Vec::new();
        let m = merge_first_wins(&mut buf, &mut runs, 2, &[1, 2, 3, 4]);
        assert_eq!(m.new_bytes, 0);
        assert_eq!(buf, [0; 4]);
    }
}
