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
//! DNS-over-TCP messages), not for bulk data: held bytes must lie within [`MAX_BUFFERED_BYTES`]
//! of the next expected byte (a stream carrying DNS: [`MAX_DNS_BUFFERED_BYTES`], see
//! [`StreamReassembler::hold_whole_dns_messages`]), in at most [`MAX_OOO_SEGMENTS`] out-of-order
//! runs. Hitting a cap
//! returns [`Delivery::Overflow`] once, frees the buffer and finishes the stream; a finished
//! stream ignores further data.
//!
//! Memory: the buffer holds the bytes received and nothing else. Out-of-order runs are packed
//! after the contiguous prefix without the holes between them (a 300-byte segment 16 KiB ahead
//! costs 300 bytes, not 16 KiB), the buffer is allocated only when a byte must be held, grows
//! by half its size at most (never past the window), is freed when it empties and shrunk when
//! a consume leaves it mostly empty. Every byte of capacity is taken from the worker's share of
//! the reassembly budget ([`crate::flow::budget`]) before the buffer grows, and given back when
//! it shrinks or the stream is dropped; a growth the budget refuses finishes the stream with
//! [`ReasmSkip::BudgetExhausted`]. An in-order stream never buffers, so it never touches the
//! budget.
//!
//! Sequence numbers are compared modulo 2^32 (RFC 9293 §3.4, formerly RFC 793 §3.3): a segment is
//! "before" or "after" the next expected byte by the sign of the 32-bit difference.

use crate::decode::TcpSegment;
use crate::flow::budget::WorkerBudget;
use crate::reason::{Reason, ReasonCounts};

/// Bytes one stream may hold, and how far ahead of the next expected byte a held byte may lie.
/// One maximal TLS record, 5-byte header plus 2^14 bytes of fragment (RFC 8446 §5.1), holds any
/// real ClientHello; HTTP servers cap a request head at 8 KiB (nginx, Apache); DNS queries over
/// TCP are far smaller. A stream that needs more is not one we can get a name from.
pub const MAX_BUFFERED_BYTES: usize = 5 + (1 << 14);

/// Bytes a stream carrying DNS over TCP may hold, and how far ahead a held byte may lie: one
/// whole message, its two-octet length and up to 65 535 octets (RFC 1035 §4.2.2), so that a
/// message of any length (a zone transfer, a large TXT or DNSSEC answer) is read whole. Held
/// bytes are paid from the reassembly budget as any others: a flood of such streams is bounded
/// by the budget, each holding at most four times a ClientHello's window.
pub const MAX_DNS_BUFFERED_BYTES: usize = 2 + 65_535;

/// Out-of-order runs (adjacent or overlapping segments coalesce into one run) held beyond the
/// next expected byte. A full buffer cut into segments of the default MSS of 536 bytes
/// (RFC 9293 §3.7.1) is 31 segments, so 32 runs hold any reordering of a full buffer; more means
/// tiny segments (an evasion trick) and bounds the per-segment scan of the run list.
pub const MAX_OOO_SEGMENTS: usize = 32;

/// Segments starting too far ahead to ever be buffered are dropped; after this many in a row
/// (without the stream advancing) the stream has lost sync (missed capture, wrong start after a
/// mid-stream pickup) and is finished. A few spoofed segments cannot kill a stream this way.
pub const MAX_TOO_FAR_AHEAD_DROPS: u8 = 8;

/// Bytes of budget one out-of-order run entry costs (its `[start, end)` pair).
const RUN_ENTRY_BYTES: usize = std::mem::size_of::<(u32, u32)>();

// Offsets within the window are stored as u32.
const _: () = assert!(MAX_BUFFERED_BYTES < u32::MAX as usize);
const _: () = assert!(MAX_DNS_BUFFERED_BYTES < u32::MAX as usize);

crate::reason_enum! {
    /// Why reassembly of a stream was abandoned; the stream is finished when this is returned.
    pub enum ReasmSkip {
        /// The data to hold would exceed [`MAX_BUFFERED_BYTES`] (a DNS stream:
        /// [`MAX_DNS_BUFFERED_BYTES`]).
        BufferFull => "buffer_full",
        /// More than [`MAX_OOO_SEGMENTS`] out-of-order runs.
        TooManyOutOfOrder => "too_many_out_of_order",
        /// More than [`MAX_TOO_FAR_AHEAD_DROPS`] segments in a row beyond the buffer window.
        TooFarAhead => "too_far_ahead",
        /// The buffer had to grow and the reassembly budget (`--reassembly-memory`, shared by
        /// all workers) or this worker's share of it was spent.
        BudgetExhausted => "budget_exhausted",
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
        /// A segment started at least the stream's window ([`MAX_BUFFERED_BYTES`], for DNS
        /// [`MAX_DNS_BUFFERED_BYTES`]) ahead of the next expected byte.
        DroppedTooFarAhead => "dropped_too_far_ahead",
    }
}

const EVENT_KINDS: usize = <ReasmEvent as Reason>::ALL.len();

/// Per-stream event counts: a fixed array, no allocation. Read them with
/// [`StreamReassembler::take_counters`] (which resets them) and fold them into worker totals with
/// [`ReasmCounters::add_to`]. 16 bits each (saturating) keep every TCP flow's state small: the
/// flow stage takes them after every segment, so they never count more than one segment's
/// events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasmCounters {
    counts: [u16; EVENT_KINDS],
}

impl ReasmCounters {
    pub fn get(&self, event: ReasmEvent) -> u32 {
        self.counts.get(event.index()).copied().map_or(0, u32::from)
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
    /// Length of the last `InPlace` delivery, which `keep` may copy; 0 otherwise.
    in_place_len: u32,
    /// Bytes held, packed: the contiguous unconsumed prefix (`contig` bytes, stream offsets
    /// `[0, contig)` from `base`), then the bytes of each out-of-order run in order, without the
    /// holes between runs. Empty and unallocated on the fast path.
    buf: Vec<u8>,
    /// Out-of-order runs as `[start, end)` stream offsets from `base`: sorted, disjoint, never
    /// touching each other nor the prefix (`start > contig`).
    runs: Vec<(u32, u32)>,
    contig: u32,
    /// Budget bytes taken for the capacity of `buf` and `runs`.
    charged: u32,
    /// The worker's budget, kept from the first take (so that drop can give it back).
    budget: Option<WorkerBudget>,
    too_far_ahead_drops: u8,
    finished: bool,
    /// The stream carries DNS over TCP: its window is [`MAX_DNS_BUFFERED_BYTES`].
    whole_dns: bool,
    counters: ReasmCounters,
}

impl Drop for StreamReassembler {
    fn drop(&mut self) {
        self.release_all();
    }
}

/// Where a merge writes, and what it found.
struct MergePlan {
    /// Runs `first..last` touch the new data and become one run `[start, end)`.
    first: usize,
    last: usize,
    start: usize,
    end: usize,
    /// Packed position in `buf` of run `first` (or of where the merged run goes).
    at: usize,
    /// Bytes the touched runs hold now.
    held: usize,
}

impl StreamReassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets the stream hold a whole DNS-over-TCP message: its window becomes
    /// [`MAX_DNS_BUFFERED_BYTES`] instead of [`MAX_BUFFERED_BYTES`]. Called by the caller that
    /// knows what the stream carries, before it pushes the stream's bytes.
    pub fn hold_whole_dns_messages(&mut self) {
        self.whole_dns = true;
    }

    /// Bytes this stream may hold, and how far ahead of the next expected byte.
    fn window(&self) -> usize {
        if self.whole_dns {
            MAX_DNS_BUFFERED_BYTES
        } else {
            MAX_BUFFERED_BYTES
        }
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
    pub fn push_segment<'a>(
        &'a mut self,
        segment: &TcpSegment<'a>,
        budget: &WorkerBudget,
    ) -> Delivery<'a> {
        if segment.flags & TcpSegment::RST != 0 {
            self.in_place_len = 0;
            return Delivery::Nothing;
        }
        let mut seq = segment.seq;
        if segment.flags & TcpSegment::SYN != 0 {
            self.on_syn(segment.seq);
            seq = seq.wrapping_add(1);
        }
        self.push(seq, segment.payload, budget)
    }

    /// Pushes the payload of a segment whose first byte has sequence number `seq`. A SYN's
    /// data starts at `isn + 1`: call [`Self::on_syn`] first, then push it at `isn + 1`. Bytes
    /// that must be held are paid for from `budget`.
    pub fn push<'a>(
        &'a mut self,
        seq: u32,
        payload: &'a [u8],
        budget: &WorkerBudget,
    ) -> Delivery<'a> {
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

        let window = self.window();
        if rel >= window {
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
            self.pass_in_place(to_u32(payload.len()));
            return Delivery::InPlace(payload);
        }

        // Stream offset (from `base`) of the new data, which starts at or after `contig`.
        let Some(at) = contig.checked_add(rel) else {
            return self.abandon(ReasmSkip::BufferFull);
        };
        let end = match at.checked_add(payload.len()) {
            Some(end) if end <= window => end,
            _ => return self.abandon(ReasmSkip::BufferFull),
        };
        let plan = self.plan_merge(at, end);
        let joins_prefix = plan.start == contig;
        let runs_after = self
            .runs
            .len()
            .saturating_sub(plan.last.saturating_sub(plan.first))
            .saturating_add(usize::from(!joins_prefix));
        if runs_after > MAX_OOO_SEGMENTS {
            return self.abandon(ReasmSkip::TooManyOutOfOrder);
        }
        let grow = (plan.end.saturating_sub(plan.start)).saturating_sub(plan.held);
        let more_runs = usize::from(plan.first == plan.last && !joins_prefix);
        if !self.make_room(grow, more_runs, budget) {
            return self.abandon(ReasmSkip::BudgetExhausted);
        }
        let (overlap_bytes, conflict) = self.merge(&plan, at, payload);
        if rel > 0 {
            self.counters.incr(ReasmEvent::OutOfOrder);
        }
        if grow == 0 {
            self.counters.incr(ReasmEvent::Duplicate);
        } else if overlapped || overlap_bytes > 0 {
            self.counters.incr(ReasmEvent::Overlap);
        }
        if conflicting || conflict {
            self.counters.incr(ReasmEvent::ConflictingOverlap);
        }

        let now_contig = self.contiguous_len();
        if now_contig > contig {
            self.too_far_ahead_drops = 0;
            Delivery::Buffered(self.buf.get(..now_contig).unwrap_or_default())
        } else {
            Delivery::Nothing
        }
    }

    /// Which runs new data at stream offsets `[at, end)` (at or after the prefix) touches, and
    /// what they become.
    fn plan_merge(&self, at: usize, end: usize) -> MergePlan {
        let runs = &self.runs;
        // Touching counts: adjacent runs coalesce.
        let first = runs.partition_point(|r| (r.1 as usize) < at);
        let last = first.saturating_add(
            runs.get(first..)
                .unwrap_or_default()
                .partition_point(|r| (r.0 as usize) <= end),
        );
        let touched = runs.get(first..last).unwrap_or_default();
        let start = touched.first().map_or(at, |r| at.min(r.0 as usize));
        let end = touched.last().map_or(end, |r| end.max(r.1 as usize));
        let held = touched.iter().map(|r| run_len(*r)).sum();
        let before: usize = runs
            .get(..first)
            .unwrap_or_default()
            .iter()
            .map(|r| run_len(*r))
            .sum();
        MergePlan {
            first,
            last,
            start,
            end,
            at: self.contiguous_len().saturating_add(before),
            held,
        }
    }

    /// Writes `data` (stream offsets `[at, at + data.len())`) into the packed buffer as `plan`
    /// says: the runs it touches move apart to make room for the bytes between them, which come
    /// from `data`; where `data` overlaps a run, the run's bytes stay (first copy wins). The
    /// caller made room. Returns the overlapping byte count and whether any of them differed.
    fn merge(&mut self, plan: &MergePlan, at: usize, data: &[u8]) -> (usize, bool) {
        let region = plan.end.saturating_sub(plan.start);
        let grow = region.saturating_sub(plan.held);
        let old_len = self.buf.len();
        // Open the gap: everything after the touched runs moves right by `grow`.
        let tail = plan.at.saturating_add(plan.held);
        self.buf.resize(old_len.saturating_add(grow), 0);
        self.buf
            .copy_within(tail..old_len, tail.saturating_add(grow));
        // Each touched run moves to its place in the merged run, last one first (each moves
        // right, onto bytes already moved or free).
        let mut overlap = 0usize;
        let mut conflict = false;
        let mut packed_end = plan.at.saturating_add(plan.held);
        for &(rs, re) in self
            .runs
            .get(plan.first..plan.last)
            .unwrap_or_default()
            .iter()
            .rev()
        {
            let (rs, re) = (rs as usize, re as usize);
            let len = re.saturating_sub(rs);
            let from = packed_end.saturating_sub(len);
            let to = plan.at.saturating_add(rs.saturating_sub(plan.start));
            self.buf.copy_within(from..packed_end, to);
            packed_end = from;
            // Compare what `data` says about these bytes with what the run holds.
            let (os, oe) = (rs.max(at), re.min(at.saturating_add(data.len())));
            if oe > os {
                overlap = overlap.saturating_add(oe - os);
                let held = self
                    .buf
                    .get(to.saturating_add(os - rs)..to.saturating_add(oe - rs));
                let new = data.get(os - at..oe - at);
                if held != new {
                    conflict = true;
                }
            }
        }
        // Fill the holes between the runs (all inside `[at, at + data.len())`) from `data`.
        let mut cursor = plan.start;
        let holes = self
            .runs
            .get(plan.first..plan.last)
            .unwrap_or_default()
            .iter()
            .map(|&(s, e)| (s as usize, e as usize))
            .chain(std::iter::once((plan.end, plan.end)));
        for (rs, re) in holes {
            if rs > cursor {
                let dst = plan.at.saturating_add(cursor - plan.start);
                let src = data.get(cursor.saturating_sub(at)..rs.saturating_sub(at));
                if let (Some(src), Some(dst)) =
                    (src, self.buf.get_mut(dst..dst.saturating_add(rs - cursor)))
                {
                    if src.len() == dst.len() {
                        dst.copy_from_slice(src);
                    }
                }
            }
            cursor = cursor.max(re);
        }
        // The run list: the touched runs become one, which joins the prefix if it starts there.
        let merged = (to_u32(plan.start), to_u32(plan.end));
        let contig = self.contiguous_len();
        if plan.start == contig {
            self.runs.drain(plan.first..plan.last);
            self.contig = to_u32(plan.end);
        } else if plan.first < plan.last {
            if let Some(slot) = self.runs.get_mut(plan.first) {
                *slot = merged;
            }
            self.runs.drain(plan.first.saturating_add(1)..plan.last);
        } else {
            self.runs.insert(plan.first, merged);
        }
        (overlap, conflict)
    }

    /// Makes sure `buf` can take `grow` more bytes and `runs` `more_runs` more entries, taking
    /// any new capacity from the budget first. `false` (nothing changed) when it refuses.
    fn make_room(&mut self, grow: usize, more_runs: usize, budget: &WorkerBudget) -> bool {
        let need_buf = self.buf.len().saturating_add(grow);
        let need_runs = self.runs.len().saturating_add(more_runs);
        let buf_cap = if need_buf > self.buf.capacity() {
            // Room for half again what is held (amortised O(1) copying per byte however the
            // stream is cut), never past the window: the capacity stays within 1.5 times the
            // bytes held after a growth (and 2 times after a consume, which shrinks it).
            let len = self.buf.len();
            need_buf.max(len.saturating_add(len / 2).min(self.window()))
        } else {
            self.buf.capacity()
        };
        let runs_cap = if need_runs > self.runs.capacity() {
            need_runs
                .max(self.runs.capacity().saturating_mul(2))
                .max(4)
                .min(MAX_OOO_SEGMENTS.saturating_add(1))
                .max(need_runs)
        } else {
            self.runs.capacity()
        };
        let footprint = buf_cap.saturating_add(runs_cap.saturating_mul(RUN_ENTRY_BYTES));
        let extra = footprint.saturating_sub(self.charged as usize);
        if extra > 0 {
            let budget = self.budget.get_or_insert_with(|| budget.clone());
            if !budget.take(extra) {
                return false;
            }
            self.charged = to_u32(footprint);
        }
        self.buf
            .reserve_exact(buf_cap.saturating_sub(self.buf.len()));
        self.runs
            .reserve_exact(runs_cap.saturating_sub(self.runs.len()));
        self.settle();
        true
    }

    /// Brings the charge in line with the capacities the allocator really gave: given back
    /// when they are smaller (a shrink), taken regardless when larger (`reserve_exact` may
    /// round up; it does not for bytes today, so this is a few bytes at most).
    fn settle(&mut self) {
        let footprint = self
            .buf
            .capacity()
            .saturating_add(self.runs.capacity().saturating_mul(RUN_ENTRY_BYTES));
        let charged = self.charged as usize;
        if let Some(budget) = &self.budget {
            if footprint < charged {
                budget.give_back(charged - footprint);
            } else if footprint > charged {
                budget.take_anyway(footprint - charged);
            }
        }
        self.charged = to_u32(footprint);
    }

    /// After [`Delivery::InPlace`]: copies `unconsumed`, the tail of that delivery the caller
    /// could not parse yet, into the buffer so the next delivery starts with it. Only the last
    /// `InPlace` delivery's length is accepted (a longer slice keeps its last bytes); a call at
    /// any other time does nothing. Fails, finishing the stream, if the tail exceeds
    /// the stream's window ([`MAX_BUFFERED_BYTES`] or [`MAX_DNS_BUFFERED_BYTES`]) or the
    /// budget refuses it.
    pub fn keep(&mut self, unconsumed: &[u8], budget: &WorkerBudget) -> Result<(), ReasmSkip> {
        let delivered = std::mem::take(&mut self.in_place_len) as usize;
        let n = unconsumed.len().min(delivered);
        if self.finished || n == 0 || !self.buf.is_empty() {
            return Ok(());
        }
        if n > self.window() {
            self.finish();
            return Err(ReasmSkip::BufferFull);
        }
        if !self.make_room(n, 0, budget) {
            self.finish();
            return Err(ReasmSkip::BudgetExhausted);
        }
        let tail = unconsumed
            .get(unconsumed.len().saturating_sub(n)..)
            .unwrap_or_default();
        self.buf.extend_from_slice(tail);
        self.runs.clear();
        self.contig = to_u32(n);
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
        let shift = to_u32(n);
        for run in &mut self.runs {
            run.0 = run.0.saturating_sub(shift);
            run.1 = run.1.saturating_sub(shift);
        }
        self.contig = self.contig.saturating_sub(shift);
        self.base = self.base.wrapping_add(shift);
        // Sized to what it holds: an empty buffer is freed, a mostly empty one shrunk.
        if self.buf.is_empty() {
            self.buf = Vec::new();
            self.runs = Vec::new();
            self.settle();
        } else if self.buf.capacity() > self.buf.len().saturating_mul(2) {
            self.buf.shrink_to(self.buf.len());
            self.settle();
        }
    }

    /// Stops reassembly (the flow is bypassed, or has yielded what we need): frees the buffer;
    /// later pushes return [`Delivery::Nothing`].
    pub fn finish(&mut self) {
        self.finished = true;
        self.in_place_len = 0;
        self.buf = Vec::new();
        self.runs = Vec::new();
        self.contig = 0;
        self.release_all();
    }

    /// Gives back every byte of budget this stream holds.
    fn release_all(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.give_back(self.charged as usize);
        }
        self.charged = 0;
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// What [`Self::push`] does with `len` bytes at `seq` on its fast path (data already
    /// started, nothing held, `seq` the next expected byte: delivered in place), without the
    /// bytes: the stream moves past them and the answer is `true`. Any other case changes
    /// nothing and answers `false` (the caller then pushes the bytes).
    pub fn pass_in_order(&mut self, seq: u32, len: u32) -> bool {
        let in_order = !self.finished
            && len > 0
            && self.start == Start::Data
            && self.buf.is_empty()
            && seq == self.base;
        if in_order {
            self.pass_in_place(len);
        }
        in_order
    }

    /// Moves the stream past `len` in-order bytes delivered in place (nothing held).
    #[inline]
    fn pass_in_place(&mut self, len: u32) {
        self.base = self.base.wrapping_add(len);
        self.in_place_len = len;
        self.too_far_ahead_drops = 0;
    }

    /// Bytes held: unconsumed contiguous data and out-of-order data (not the holes between).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Budget bytes this stream holds (the capacity of its buffers).
    pub fn charged_bytes(&self) -> usize {
        self.charged as usize
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
        self.contig as usize
    }

    #[cfg(test)]
    fn out_of_order_runs(&self) -> usize {
        self.runs.len()
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

/// Length of an out-of-order run.
fn run_len(run: (u32, u32)) -> usize {
    run.1.saturating_sub(run.0) as usize
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

    /// A budget no test here reaches (the budget tests make their own).
    fn budget() -> WorkerBudget {
        static BUDGET: std::sync::OnceLock<WorkerBudget> = std::sync::OnceLock::new();
        BUDGET
            .get_or_init(|| WorkerBudget::standalone(usize::MAX / 2))
            .clone()
    }

    /// A ClientHello-shaped payload: a TLS handshake record header and varied bytes.
    fn client_hello_like(len: usize) -> Vec<u8> {
        let body = len.saturating_sub(5);
        let mut v = vec![0x16, 0x03, 0x01, (body >> 8) as u8, body as u8];
        v.extend((0..body).map(|i| (i * 7 + i / 251) as u8));
        v
    }

    /// Consumer that parses everything it is given: the concatenation must be the stream.
    fn feed_eager(r: &mut StreamReassembler, out: &mut Vec<u8>, seq: u32, data: &[u8]) {
        match r.push(seq, data, &budget()) {
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
        match r.push(seq, data, &budget()) {
            Delivery::InPlace(b) if b.len() >= total => Some(b.to_vec()),
            Delivery::InPlace(b) => {
                let b = b.to_vec();
                r.keep(&b, &budget()).unwrap();
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
        match r.push(1001, a, &budget()) {
            Delivery::InPlace(got) => assert_eq!(got.as_ptr(), a.as_ptr()),
            other => panic!("{other:?}"),
        }
        match r.push(1301, b, &budget()) {
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
        assert_eq!(r.push(8, a, &budget()), Delivery::InPlace(a));
        r.keep(&a[150..], &budget()).unwrap();
        assert_eq!(r.buffered_bytes(), 50);
        match r.push(208, b, &budget()) {
            Delivery::Buffered(got) => assert_eq!(got, &data[150..]),
            other => panic!("{other:?}"),
        }
        r.consume(350);
        assert_eq!(r.buffered_bytes(), 0);
        // Empty again: back on the fast path.
        let more = [1u8, 2, 3];
        assert_eq!(r.push(508, &more, &budget()), Delivery::InPlace(&more[..]));
    }

    #[test]
    fn keep_longer_than_delivery_keeps_only_the_delivered_length() {
        let mut r = StreamReassembler::new();
        let a = [1u8, 2, 3];
        assert_eq!(r.push(0, &a, &budget()), Delivery::InPlace(&a[..]));
        r.keep(&[9, 9, 1, 2, 3], &budget()).unwrap();
        assert_eq!(r.buffered_bytes(), 3);
        assert_eq!(
            r.push(3, &[4], &budget()),
            Delivery::Buffered(&[1, 2, 3, 4][..])
        );
    }

    #[test]
    fn keep_without_in_place_delivery_does_nothing() {
        let mut r = StreamReassembler::new();
        r.keep(&[1, 2, 3], &budget()).unwrap();
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.push(0, &[1], &budget()), Delivery::InPlace(&[1][..]));
        assert_eq!(r.push(1, &[2], &budget()), Delivery::InPlace(&[2][..]));
        // A keep after another push refers to the latest delivery only.
        r.keep(&[2], &budget()).unwrap();
        r.keep(&[2], &budget()).unwrap();
        assert_eq!(r.buffered_bytes(), 1);
    }

    #[test]
    fn partial_consume_keeps_the_rest_contiguous() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[3, 4], &budget()), Delivery::Nothing);
        assert_eq!(
            r.push(1, &[1, 2], &budget()),
            Delivery::Buffered(&[1, 2, 3, 4][..])
        );
        r.consume(3);
        assert_eq!(r.buffered_bytes(), 1);
        assert_eq!(r.push(5, &[5], &budget()), Delivery::Buffered(&[4, 5][..]));
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
        // The 39 bytes received are held, not the 25-byte hole before them.
        assert_eq!(r.buffered_bytes(), 39);
        feed_eager(&mut r, &mut out, 0xFFFF_FFF1, &data[..10]);
        feed_eager(&mut r, &mut out, 0xFFFF_FFFB, &data[10..25]);
        assert_eq!(out, data);
        assert_eq!(r.next_seq(), Some(0x0000_0031));
        // An old segment from before the wrap is a duplicate, not data 4 GiB ahead.
        assert_eq!(
            r.push(0xFFFF_FFF1, &data[..10], &budget()),
            Delivery::Nothing
        );
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
        assert_eq!(
            r.push_segment(&syn, &budget()),
            Delivery::InPlace(&data[..200])
        );
        assert_eq!(r.next_seq(), Some(200));
        let rest = TcpSegment {
            seq: 200,
            flags: TcpSegment::ACK,
            payload: &data[200..],
            wire_payload_len: 100,
            ..syn
        };
        assert_eq!(
            r.push_segment(&rest, &budget()),
            Delivery::InPlace(&data[200..])
        );
        // A retransmitted SYN with its data is old: nothing new.
        assert_eq!(r.push_segment(&syn, &budget()), Delivery::Nothing);
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
        assert_eq!(r.push_segment(&rst, &budget()), Delivery::Nothing);
        assert_eq!(r.next_seq(), Some(1));
    }

    #[test]
    fn mid_stream_pickup_starts_at_first_data_segment() {
        let mut r = StreamReassembler::new();
        assert_eq!(r.next_seq(), None);
        let req = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(
            r.push(0x8000_0000, &req[..10], &budget()),
            Delivery::InPlace(&req[..10])
        );
        assert_eq!(
            r.push(0x8000_0000 + 10, &req[10..], &budget()),
            Delivery::InPlace(&req[10..])
        );
        // Data before the pickup point is treated as already delivered.
        assert_eq!(r.push(0x7FFF_FF00, &[0; 16], &budget()), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 1);
    }

    #[test]
    fn syn_after_data_is_ignored() {
        let mut r = StreamReassembler::new();
        assert_eq!(
            r.push(100, &[1, 2], &budget()),
            Delivery::InPlace(&[1, 2][..])
        );
        r.on_syn(5000);
        assert_eq!(r.next_seq(), Some(102));
    }

    #[test]
    fn retransmitted_syn_before_data_moves_the_start() {
        let mut r = StreamReassembler::new();
        r.on_syn(10);
        r.on_syn(20);
        assert_eq!(r.next_seq(), Some(21));
        assert_eq!(r.push(21, &[7], &budget()), Delivery::InPlace(&[7][..]));
    }

    #[test]
    fn entirely_old_segment_is_nothing() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(1, &[1, 2, 3, 4], &budget()),
            Delivery::InPlace(&[1, 2, 3, 4][..])
        );
        assert_eq!(r.push(1, &[1, 2, 3, 4], &budget()), Delivery::Nothing);
        assert_eq!(r.push(2, &[2, 3], &budget()), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 2);
        assert_eq!(r.counters().get(ReasmEvent::ConflictingOverlap), 0);
    }

    #[test]
    fn partial_retransmission_is_trimmed() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(1, &[1, 2, 3], &budget()),
            Delivery::InPlace(&[1, 2, 3][..])
        );
        // Bytes 2..3 again plus 4, 5 new: only the new part comes out, in place.
        assert_eq!(
            r.push(2, &[2, 3, 4, 5], &budget()),
            Delivery::InPlace(&[4, 5][..])
        );
        assert_eq!(r.counters().get(ReasmEvent::Overlap), 1);
        assert_eq!(r.next_seq(), Some(6));
    }

    #[test]
    fn conflicting_overlap_is_counted_and_first_data_wins() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(6, b"WORLD", &budget()), Delivery::Nothing);
        // Overlaps the held run with different bytes at seq 6..8.
        assert_eq!(
            r.push(1, b"helloXY", &budget()),
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
        assert_eq!(r.push(1, b"abc", &budget()), Delivery::InPlace(&b"abc"[..]));
        r.keep(b"abc", &budget()).unwrap();
        assert_eq!(r.push(1, b"abX", &budget()), Delivery::Nothing);
        let c = r.counters();
        assert_eq!(c.get(ReasmEvent::Duplicate), 1);
        assert_eq!(c.get(ReasmEvent::ConflictingOverlap), 1);
        assert_eq!(r.push(4, b"d", &budget()), Delivery::Buffered(&b"abcd"[..]));
    }

    #[test]
    fn take_counters_resets() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[3], &budget()), Delivery::Nothing);
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
        let first = r.push(seq, &chunk, &budget());
        assert_eq!(first, Delivery::InPlace(&chunk[..]));
        r.keep(&chunk, &budget()).unwrap();
        seq += 4096;
        for _ in 0..3 {
            assert!(matches!(
                r.push(seq, &chunk, &budget()),
                Delivery::Buffered(_)
            ));
            seq += 4096;
        }
        assert_eq!(r.buffered_bytes(), 16384);
        // 16384 + 6 > MAX_BUFFERED_BYTES.
        assert_eq!(
            r.push(seq, &[0; 6], &budget()),
            Delivery::Overflow(ReasmSkip::BufferFull)
        );
        assert!(r.is_finished());
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.buf.capacity(), 0, "buffer freed");
        assert_eq!(r.push(seq, &[0; 6], &budget()), Delivery::Nothing);
    }

    #[test]
    fn exactly_max_buffered_bytes_fits() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let data = vec![1u8; MAX_BUFFERED_BYTES];
        assert_eq!(r.push(2, &data[1..], &budget()), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), MAX_BUFFERED_BYTES - 1);
        match r.push(1, &data[..1], &budget()) {
            Delivery::Buffered(b) => assert_eq!(b.len(), MAX_BUFFERED_BYTES),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dns_stream_holds_a_whole_message_and_no_more() {
        // A stream carrying DNS holds 2 + 65 535 bytes (RFC 1035 §4.2.2), in order and kept
        // piece by piece as a parser that waits for the whole message does.
        let mut r = StreamReassembler::new();
        r.hold_whole_dns_messages();
        r.on_syn(0);
        let data: Vec<u8> = (0..MAX_DNS_BUFFERED_BYTES)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut whole = None;
        for (k, piece) in data.chunks(1460).enumerate() {
            whole = feed_whole(&mut r, data.len(), 1 + (k * 1460) as u32, piece);
        }
        assert_eq!(whole.as_deref(), Some(&data[..]));
        assert!(!r.is_finished());
        assert_eq!(r.charged_bytes(), 0, "budget given back once consumed");
        // Held out of order: exactly the window fits, one byte more does not.
        let mut r = StreamReassembler::new();
        r.hold_whole_dns_messages();
        r.on_syn(0);
        assert_eq!(r.push(2, &data[1..], &budget()), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), MAX_DNS_BUFFERED_BYTES - 1);
        match r.push(1, &data[..1], &budget()) {
            Delivery::Buffered(b) => assert_eq!(b.len(), MAX_DNS_BUFFERED_BYTES),
            other => panic!("{other:?}"),
        }
        let mut r = StreamReassembler::new();
        r.hold_whole_dns_messages();
        r.on_syn(0);
        assert_eq!(r.push(2, &data[1..], &budget()), Delivery::Nothing);
        assert_eq!(
            r.push(MAX_DNS_BUFFERED_BYTES as u32, &[0, 0], &budget()),
            Delivery::Overflow(ReasmSkip::BufferFull)
        );
        // Any other stream keeps the ClientHello window.
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(2, &data[1..MAX_BUFFERED_BYTES + 1], &budget()),
            Delivery::Overflow(ReasmSkip::BufferFull)
        );
    }

    #[test]
    fn dns_stream_window_is_paid_from_the_budget() {
        // 40 KB held out of order is charged to the worker's budget; a budget too small for
        // it refuses, counted as budget exhaustion, and nothing stays charged.
        let data = vec![7u8; 40_000];
        let budget = WorkerBudget::standalone(1 << 20);
        let mut r = StreamReassembler::new();
        r.hold_whole_dns_messages();
        r.on_syn(0);
        assert_eq!(r.push(2, &data, &budget), Delivery::Nothing);
        assert!(r.charged_bytes() >= 40_000);
        assert_eq!(budget.held(), r.charged_bytes());
        drop(r);
        assert_eq!(budget.held(), 0);
        let small = WorkerBudget::standalone(32 * 1024);
        let mut r = StreamReassembler::new();
        r.hold_whole_dns_messages();
        r.on_syn(0);
        assert_eq!(
            r.push(2, &data, &small),
            Delivery::Overflow(ReasmSkip::BudgetExhausted)
        );
        assert_eq!(small.held(), 0);
    }

    #[test]
    fn oversized_keep_fails_and_finishes() {
        let mut r = StreamReassembler::new();
        let big = vec![0u8; MAX_BUFFERED_BYTES + 1];
        assert!(matches!(r.push(0, &big, &budget()), Delivery::InPlace(_)));
        assert_eq!(r.keep(&big, &budget()), Err(ReasmSkip::BufferFull));
        assert!(r.is_finished());
    }

    #[test]
    fn big_in_order_segment_is_in_place_despite_the_cap() {
        // The cap bounds what is held, not what passes through in place.
        let mut r = StreamReassembler::new();
        let big = vec![0u8; 60_000];
        assert!(matches!(r.push(0, &big, &budget()), Delivery::InPlace(b) if b.len() == 60_000));
        assert!(!r.is_finished());
    }

    #[test]
    fn out_of_order_segment_beyond_buffer_overflows() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(
            r.push(1 + 16_000, &[0; 1000], &budget()),
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
            assert_eq!(
                r.push(3 + 2 * i, &[1], &budget()),
                Delivery::Nothing,
                "run {i}"
            );
        }
        assert_eq!(r.out_of_order_runs(), MAX_OOO_SEGMENTS);
        assert_eq!(
            r.push(3 + 2 * MAX_OOO_SEGMENTS as u32, &[1], &budget()),
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
            assert_eq!(r.push(10 + i, &[i as u8], &budget()), Delivery::Nothing);
        }
        assert_eq!(r.runs.len(), 1);
        match r.push(1, &[0; 9], &budget()) {
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
            assert_eq!(r.push(far, &[1], &budget()), Delivery::Nothing, "drop {i}");
        }
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(
            r.counters().get(ReasmEvent::DroppedTooFarAhead),
            u32::from(MAX_TOO_FAR_AHEAD_DROPS)
        );
        // The stream still works while under the limit...
        assert_eq!(r.push(1, &[5], &budget()), Delivery::InPlace(&[5][..]));
        // ...and progress resets the run of drops.
        for _ in 0..MAX_TOO_FAR_AHEAD_DROPS {
            assert_eq!(r.push(far + 1, &[1], &budget()), Delivery::Nothing);
        }
        assert_eq!(
            r.push(far + 1, &[1], &budget()),
            Delivery::Overflow(ReasmSkip::TooFarAhead)
        );
        assert!(r.is_finished());
    }

    #[test]
    fn far_behind_is_old_not_ahead() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        // 2^31 - 1 behind and exactly 2^31 away: both count as old by the signed difference.
        assert_eq!(r.push(0x8000_0002, &[1], &budget()), Delivery::Nothing);
        assert_eq!(r.push(0x8000_0001, &[1], &budget()), Delivery::Nothing);
        assert_eq!(r.counters().get(ReasmEvent::Duplicate), 2);
        assert_eq!(r.push(1, &[1], &budget()), Delivery::InPlace(&[1][..]));
    }

    #[test]
    fn empty_payload_is_nothing_and_does_not_set_the_start() {
        let mut r = StreamReassembler::new();
        assert_eq!(r.push(5, &[], &budget()), Delivery::Nothing);
        assert_eq!(r.next_seq(), None);
    }

    #[test]
    fn finish_frees_and_ignores_later_data() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(3, &[1, 2], &budget()), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), 2);
        r.finish();
        assert_eq!(r.buffered_bytes(), 0);
        assert_eq!(r.push(1, &[1, 2], &budget()), Delivery::Nothing);
        r.on_syn(100);
        assert!(r.is_finished());
    }

    #[test]
    fn emptied_large_buffer_is_released() {
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let data = vec![3u8; 10_000];
        assert_eq!(r.push(2, &data[1..], &budget()), Delivery::Nothing);
        assert!(matches!(
            r.push(1, &data[..1], &budget()),
            Delivery::Buffered(_)
        ));
        r.consume(10_000);
        assert_eq!(r.buf.capacity(), 0);
    }

    #[test]
    fn an_out_of_order_segment_costs_its_own_bytes() {
        // 300 bytes of a ClientHello 16 000 bytes ahead: held as 300 bytes, not as a buffer
        // reaching to the end of the window.
        let b = WorkerBudget::standalone(1 << 20);
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let piece = client_hello_like(300);
        assert_eq!(r.push(1 + 16_000, &piece, &b), Delivery::Nothing);
        assert_eq!(r.buffered_bytes(), 300);
        assert!(r.buf.capacity() < 400, "capacity {}", r.buf.capacity());
        assert_eq!(b.held(), r.charged_bytes());
        assert!(r.charged_bytes() <= 300 + 4 * RUN_ENTRY_BYTES);
        // The bytes before it arrive: one contiguous delivery of everything.
        let start = vec![7u8; 16_000];
        match r.push(1, &start, &b) {
            Delivery::Buffered(got) => {
                assert_eq!(got.len(), 16_300);
                assert_eq!(&got[16_000..], &piece[..]);
            }
            other => panic!("{other:?}"),
        }
        r.consume(16_300);
        assert_eq!(
            (r.charged_bytes(), b.held()),
            (0, 0),
            "emptied: all given back"
        );
    }

    #[test]
    fn in_order_streams_never_touch_the_budget() {
        let b = WorkerBudget::standalone(1 << 20);
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        let data = client_hello_like(5000);
        let mut seq = 1u32;
        for chunk in data.chunks(1000) {
            assert!(matches!(r.push(seq, chunk, &b), Delivery::InPlace(_)));
            seq += chunk.len() as u32;
        }
        assert!(r.budget.is_none());
        assert_eq!(b.held(), 0);
    }

    #[test]
    fn a_refused_budget_finishes_the_stream_and_gives_everything_back() {
        let b = WorkerBudget::standalone(2000);
        let data = client_hello_like(4000);
        // keep() of a tail larger than the budget.
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert!(matches!(r.push(1, &data[..2500], &b), Delivery::InPlace(_)));
        assert_eq!(r.keep(&data[..2500], &b), Err(ReasmSkip::BudgetExhausted));
        assert!(r.is_finished());
        assert_eq!(b.held(), 0);
        // Growth past the budget while merging.
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert!(matches!(r.push(1, &data[..1000], &b), Delivery::InPlace(_)));
        r.keep(&data[..1000], &b).unwrap();
        assert_eq!(b.held(), 1000);
        assert_eq!(
            r.push(1001, &data[1000..2500], &b),
            Delivery::Overflow(ReasmSkip::BudgetExhausted)
        );
        assert!(r.is_finished());
        assert_eq!((r.buffered_bytes(), b.held()), (0, 0));
        assert_eq!(r.push(2501, &data[2500..], &b), Delivery::Nothing);
    }

    #[test]
    fn a_dropped_stream_gives_its_bytes_back() {
        let b = WorkerBudget::standalone(1 << 20);
        let mut r = StreamReassembler::new();
        r.on_syn(0);
        assert_eq!(r.push(100, &[1; 500], &b), Delivery::Nothing);
        assert!(b.held() >= 500);
        drop(r);
        assert_eq!(b.held(), 0);
        assert_eq!(b.shared().used(), 0);
    }

    #[test]
    fn the_charge_follows_the_capacity_through_shuffled_streams() {
        // Random segmentations, orders, duplicates and overlaps through both consumers: the
        // budget always holds exactly what the buffers' capacities are, never much more than
        // what they hold, and gets it all back at the end.
        let mut rng = XorShift(0x6275_6467_6574);
        let b = WorkerBudget::standalone(1 << 30);
        for round in 0..200 {
            let data = client_hello_like(200 + rng.below(MAX_BUFFERED_BYTES - 200));
            let mut segs = Vec::new();
            for _ in 0..(3 + rng.below(25)) {
                let a = rng.below(data.len());
                let len = 1 + rng.below((data.len() - a).min(1500));
                segs.push((a, len));
            }
            segs.push((0, data.len().min(700)));
            segs.push((data.len() - 1, 1));
            rng.shuffle(&mut segs);
            let mut r = StreamReassembler::new();
            r.on_syn(0);
            let mut out = Vec::new();
            for &(off, len) in &segs {
                let chunk = &data[off..off + len];
                match r.push(1 + off as u32, chunk, &b) {
                    Delivery::InPlace(got) => {
                        // Keep half, as a parser waiting for more would.
                        let got = got.to_vec();
                        out.extend_from_slice(&got[..got.len() / 2]);
                        r.keep(&got[got.len() / 2..], &b).unwrap();
                    }
                    Delivery::Buffered(got) => {
                        let n = got.len() / 2 + 1;
                        out.extend_from_slice(&got[..n]);
                        r.consume(n);
                    }
                    Delivery::Nothing => {}
                    Delivery::Overflow(reason) => {
                        assert_eq!(reason, ReasmSkip::TooManyOutOfOrder, "round {round}");
                    }
                }
                assert_eq!(b.held(), r.charged_bytes(), "round {round}");
                let runs = r.runs.capacity() * RUN_ENTRY_BYTES;
                assert_eq!(r.charged_bytes(), r.buf.capacity() + runs, "round {round}");
                // Sized to what it holds: within twice the bytes held, nothing when empty.
                let (cap, held) = (r.buf.capacity(), r.buffered_bytes());
                assert!(
                    cap <= 2 * held,
                    "round {round}: capacity {cap} for {held} bytes"
                );
                assert!(r.buffered_bytes() <= MAX_BUFFERED_BYTES);
            }
            assert_eq!(out, data[..out.len()], "round {round}");
            drop(r);
            assert_eq!(b.held(), 0, "round {round}");
        }
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
