//! Flow stage: per-worker flow table, IP defragmentation, TCP stream reassembly, and the choice
//! of parser for each datagram or stream.
//!
//! Contract: [`FlowEngine::on_packet`] takes one decoded packet (borrowed) and reports what it
//! finds through an [`Emitter`]. All state is owned by the engine (one per worker, nothing
//! shared) and bounded by named caps: flows ([`MAX_FLOWS_PER_WORKER`]), IP fragments
//! ([`defrag`]), buffered stream bytes and out-of-order segments ([`reassembly`]), QUIC CRYPTO
//! bytes ([`crate::proto::quic`]). Stream buffers and QUIC Initial buffers are also paid for
//! from the reassembly budget that all workers share ([`budget`]); a flow whose buffered bytes stall is forgotten after
//! [`STALLED_BUFFER_TIMEOUT`], which gives its bytes back. A flow that can yield nothing more is bypassed: its later
//! packets cost one table lookup, and a plain TCP segment of it not even a full decode
//! ([`FlowEngine::on_plain_tcp`]).

pub mod budget;
pub mod defrag;
pub mod emit;
pub mod reassembly;
pub mod table;
pub mod tcp;
pub mod udp;

use std::time::Duration;

use crate::decode::{self, Decoded, PacketCounters, L4};
use crate::observation::{Endpoint, NameSource, NamelessReason, KSC_UDP_PORTS};
use crate::proto::dns::{self, DnsSkip};
use crate::proto::quic::{self, InitialState, QuicOutcome, QuicSkip};
use crate::proto::tls::ClientHelloOutcome;
use crate::reason::ReasonCounts;
use crate::time::Timestamp;

use budget::WorkerBudget;
use defrag::{DefragEvent, DefragOutcome, DefragSkip, Defragmenter};
use emit::{Emitter, NameCounters};
use reassembly::{ReasmEvent, ReasmSkip};
use table::{FlowEntry, FlowKey, FlowTable, TableCounters};
use tcp::{SegmentCtx, TcpFlow, TcpSkip};
use udp::Scratch;

/// Flows tracked per worker. The enterprise profile keeps ~20 000 flows open at once. A flow
/// still being parsed costs about 500 bytes (a 96-byte table entry plus its boxed TCP state,
/// 384 bytes while only a SYN has been seen; a bypassed flow just the entry), so a table full
/// of fresh flows — a SYN flood — holds about 32 MB per worker. When full, the oldest flow is evicted (counted);
/// flows closed both ways are forgotten at once, so only concurrent flows count.
pub const MAX_FLOWS_PER_WORKER: usize = 1 << 16;
/// A bypassed flow is forgotten after this much silence; if it speaks again it is picked up
/// mid-stream and bypassed again after a few segments.
pub const BYPASSED_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A flow that saw FIN or RST lingers this long to absorb retransmissions.
pub const CLOSED_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A TCP flow holding buffered bytes (part of a ClientHello or request head, or data past a
/// hole) that arrive no further for this long is forgotten, and its bytes go back to the
/// reassembly budget. The rest of a message follows within a round trip; a lost segment is
/// retransmitted after the retransmission timeout, 1 s at first and doubling (RFC 6298 §2.1,
/// §5.5), so 10 s covers three retransmissions. Without it, a flood of streams that never
/// finish their message would hold the budget for the full [`tcp::ACTIVE_IDLE_TIMEOUT`].
pub const STALLED_BUFFER_TIMEOUT: Duration = Duration::from_secs(10);
/// A QUIC connection has this long to complete its ClientHello (clients retransmit Initials
/// within a second or two).
pub const QUIC_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A QUIC flow still looking for its ClientHello: the side that sent the first Initial (the
/// client), its Initial state, and what that state's buffers have taken from the reassembly
/// budget (given back when the flow is dropped).
pub struct QuicFlow {
    client: table::Side,
    initial: InitialState,
    charge: budget::Charge,
}

/// What the table holds for a flow.
pub enum FlowState {
    /// A TCP flow still being read. Never [`TcpFlow::is_finished`]: the packet that finishes
    /// it turns the flow to [`FlowState::Bypassed`] (`on_packet`), so a lookup need not read
    /// the boxed state to know that.
    Tcp(Box<TcpFlow>),
    Quic(Box<QuicFlow>),
    /// Nothing more to learn from this flow.
    Bypassed {
        closed: bool,
    },
}

/// A flow table entry.
pub struct Flow {
    pub last_seen: Timestamp,
    pub state: FlowState,
    /// TCP: which sides sent a FIN (bit [`Side::index`]); both, or a RST, end the flow.
    pub fins: u8,
}

impl FlowEntry for Flow {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    fn idle_timeout(&self) -> Duration {
        match self.state {
            FlowState::Tcp(ref tcp) if tcp.holds_bytes() => STALLED_BUFFER_TIMEOUT,
            FlowState::Tcp(_) => tcp::ACTIVE_IDLE_TIMEOUT,
            FlowState::Quic(_) => QUIC_IDLE_TIMEOUT,
            FlowState::Bypassed { closed: false } => BYPASSED_IDLE_TIMEOUT,
            FlowState::Bypassed { closed: true } => CLOSED_IDLE_TIMEOUT,
        }
    }

    fn shortest_idle_timeout(&self) -> Duration {
        match self.state {
            // Without reading the boxed TCP state: whether it holds bytes.
            FlowState::Tcp(_) => STALLED_BUFFER_TIMEOUT.min(tcp::ACTIVE_IDLE_TIMEOUT),
            _ => self.idle_timeout(),
        }
    }
}

/// Everything the flow stage counts.
#[derive(Clone, Debug, Default)]
pub struct FlowCounters {
    pub table: TableCounters,
    pub tcp: ReasonCounts<TcpSkip>,
    pub dns: ReasonCounts<DnsSkip>,
    pub quic: ReasonCounts<QuicSkip>,
    pub defrag: ReasonCounts<DefragSkip>,
    pub defrag_events: ReasonCounts<DefragEvent>,
    pub reasm: ReasonCounts<ReasmSkip>,
    pub reasm_events: ReasonCounts<ReasmEvent>,
    /// Datagrams rebuilt from fragments.
    pub reassembled_datagrams: u64,
    /// DNS messages and TCP segments that gave evidence ([`Emitter::evidence`]: not names kept
    /// only for `--all-names`, so the count does not depend on it) and whose TCP/UDP checksum
    /// is wrong: evidence from a packet the receiver may have dropped. Such packets are used
    /// anyway (capture-host offloading leaves checksums unfinished); other packets' checksums
    /// are not computed.
    pub bad_checksums: u64,
    /// Packets of bypassed flows (the fast path).
    pub bypassed_packets: u64,
    /// Flows that went to the bypass state.
    pub flows_bypassed: u64,
    /// TCP flows forgotten because both sides closed or one reset.
    pub flows_closed: u64,
    /// Packets handled by a parser.
    pub parsed_packets: u64,
    /// DNS queries forgotten before their response because the pending-query cap was hit.
    pub dns_queries_evicted: u64,
}

impl FlowCounters {
    pub fn merge(&mut self, o: &FlowCounters) {
        self.table.created += o.table.created;
        self.table.expired += o.table.expired;
        self.table.evicted_under_pressure += o.table.evicted_under_pressure;
        self.table.refused_table_full += o.table.refused_table_full;
        self.tcp.merge(&o.tcp);
        self.dns.merge(&o.dns);
        self.quic.merge(&o.quic);
        self.defrag.merge(&o.defrag);
        self.defrag_events.merge(&o.defrag_events);
        self.reasm.merge(&o.reasm);
        self.reasm_events.merge(&o.reasm_events);
        self.reassembled_datagrams += o.reassembled_datagrams;
        self.bad_checksums += o.bad_checksums;
        self.bypassed_packets += o.bypassed_packets;
        self.flows_bypassed += o.flows_bypassed;
        self.flows_closed += o.flows_closed;
        self.parsed_packets += o.parsed_packets;
        self.dns_queries_evicted += o.dns_queries_evicted;
    }
}

/// Everything a worker counts: its packets (decode), its flows and its names. Defined here,
/// the lowest stage that sees all three; metrics and reports read it.
#[derive(Clone, Debug, Default)]
pub struct WorkerCounters {
    pub packets: PacketCounters,
    pub flow: FlowCounters,
    pub names: NameCounters,
}

impl WorkerCounters {
    pub fn merge(&mut self, o: &WorkerCounters) {
        self.packets.merge(&o.packets);
        self.flow.merge(&o.flow);
        self.names.merge(&o.names);
    }
}

/// Gauges of the state a worker holds now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowGauges {
    pub flows: usize,
    pub fragments_in_flight: usize,
    pub buffered_fragment_bytes: usize,
    /// Reassembly budget bytes this worker's TCP stream buffers and QUIC Initial buffers hold.
    pub reassembly_bytes: usize,
}

/// One worker's flow stage.
pub struct FlowEngine {
    table: FlowTable<Flow>,
    defrag: Defragmenter,
    scratch: Scratch,
    /// This worker's share of the reassembly budget.
    budget: WorkerBudget,
    pub counters: FlowCounters,
    /// Segments the fast path took that were not of a bypassed flow (tests check the two
    /// kinds of [`FlowEngine::on_plain_tcp`] are exercised).
    #[cfg(test)]
    pub fast_acks: u64,
    /// Segments of HTTP bodies the fast path skipped (tests).
    #[cfg(test)]
    pub fast_bodies: u64,
    /// SYNs and SYN-ACKs the fast path took, outside bypassed flows (tests).
    #[cfg(test)]
    pub fast_syns: u64,
}

impl Default for FlowEngine {
    fn default() -> Self {
        Self::new(MAX_FLOWS_PER_WORKER)
    }
}

impl FlowEngine {
    /// An engine with a reassembly budget of its own, of the default total
    /// ([`budget::DEFAULT_REASSEMBLY_BYTES`]): for a worker that runs alone (tests, benches,
    /// fuzzing). A pipeline gives each worker a share of one budget ([`FlowEngine::with_budget`]).
    pub fn new(max_flows: usize) -> Self {
        Self::with_budget(
            max_flows,
            WorkerBudget::standalone(budget::DEFAULT_REASSEMBLY_BYTES),
        )
    }

    /// An engine whose stream buffers are paid for from `budget`.
    pub fn with_budget(max_flows: usize, budget: WorkerBudget) -> Self {
        FlowEngine {
            table: FlowTable::new(max_flows),
            defrag: Defragmenter::new(),
            scratch: Scratch::default(),
            budget,
            counters: FlowCounters::default(),
            #[cfg(test)]
            fast_acks: 0,
            #[cfg(test)]
            fast_bodies: 0,
            #[cfg(test)]
            fast_syns: 0,
        }
    }

    pub fn gauges(&self) -> FlowGauges {
        FlowGauges {
            flows: self.table.len(),
            fragments_in_flight: self.defrag.in_flight(),
            buffered_fragment_bytes: self.defrag.buffered_bytes(),
            reassembly_bytes: self.budget.held(),
        }
    }

    /// The worker switched rule sets: rule lookups cached with pending DNS queries are stale.
    pub fn rules_changed(&mut self) {
        self.scratch.dns.rules_epoch = self.scratch.dns.rules_epoch.wrapping_add(1);
    }

    /// Advances the capture clock: expires idle flows and fragments.
    #[inline]
    pub fn tick(&mut self, now: Timestamp) {
        self.table.tick(now);
        self.defrag.expire(now);
    }

    /// Handles one decoded packet captured at `now`.
    pub fn on_packet(&mut self, d: &Decoded<'_>, now: Timestamp, emit: &mut Emitter<'_>) {
        let FlowEngine {
            table,
            defrag,
            scratch,
            budget,
            counters,
            ..
        } = self;
        if let L4::Fragment(frag) = &d.l4 {
            match defrag.push(now, d.ip.src, d.ip.dst, frag) {
                DefragOutcome::Incomplete => {}
                // Counted by the defragmenter itself (see `take_counters`).
                DefragOutcome::Dropped(_) => {}
                DefragOutcome::Complete { proto, payload } => {
                    counters.reassembled_datagrams += 1;
                    match decode::decode_ip_payload(d, d.ip.src, d.ip.dst, proto, payload) {
                        // A fragment of a fragment cannot happen: reassembly removed it.
                        Ok(inner) if !matches!(inner.l4, L4::Fragment(_)) => {
                            on_transport(table, scratch, budget, counters, &inner, now, false, emit)
                        }
                        _ => {}
                    }
                }
            }
            return;
        }
        on_transport(table, scratch, budget, counters, d, now, true, emit);
    }

    /// The fast path: a plain TCP segment (see [`decode::plain_tcp`]) costs a table lookup and
    /// nothing more when it is
    /// * of a bypassed flow;
    /// * empty and without SYN, FIN or RST (an ACK), of a flow being parsed that has seen no
    ///   FIN and is not finished: such a segment changes nothing in the flow but when it was
    ///   last seen;
    /// * without SYN, FIN or RST, of such a flow, its bytes inside an HTTP body of known
    ///   length, next in order with nothing held ([`tcp::TcpFlow::skip_body_segment`]): the
    ///   stream moves past them unread, as the full path would skip them;
    /// * a SYN or SYN-ACK without payload, FIN or RST, of no known flow (it opens one) or of
    ///   such a flow ([`tcp::TcpFlow::on_syn`]);
    /// * empty and without SYN, of no known flow: it opens none and carries nothing.
    ///
    /// The outcome is exactly what [`FlowEngine::on_packet`] would make of the fully decoded
    /// packet. Returns `false`, having changed nothing but the expiry of an idle flow (which
    /// the full path would do too), when the packet needs the full path.
    #[inline]
    pub fn on_plain_tcp(&mut self, seg: &decode::PlainTcp, now: Timestamp) -> bool {
        use decode::TcpSegment as T;
        let (key, side) = FlowKey::from_bits(seg.src, seg.src_port, seg.dst, seg.dst_port, 6);
        // A SYN or SYN-ACK without payload, FIN or RST: it opens a flow or tells one who
        // the client is (`TcpFlow::on_syn`).
        let bare_syn = seg.flags & (T::SYN | T::FIN | T::RST) == T::SYN && !seg.has_payload();
        let Some(flow) = self.table.get_mut(&key, now) else {
            if bare_syn {
                let mut tcp = Box::<TcpFlow>::default();
                tcp.on_syn(side, seg.seq, seg.dst_port, seg.flags & T::ACK != 0);
                let fresh = Flow {
                    last_seen: now,
                    state: FlowState::Tcp(tcp),
                    fins: 0,
                };
                // Refused only when no room can be made (counted by the table).
                let _ = self.table.insert(key, fresh, now);
                #[cfg(test)]
                {
                    self.fast_syns += 1;
                }
                return true;
            }
            let nothing = seg.flags & T::SYN == 0 && !seg.has_payload();
            #[cfg(test)]
            {
                self.fast_acks += u64::from(nothing);
            }
            return nothing;
        };
        let closed = match &mut flow.state {
            FlowState::Bypassed { closed } => closed,
            FlowState::Tcp(tcp) => {
                // Not finished (see `FlowState::Tcp`), so the box is not read and its line
                // not loaded. Unit tests check the invariant: every committed capture comes
                // through here in `fast_path_changes_nothing_on_every_committed_capture`.
                if cfg!(test) {
                    assert!(!tcp.is_finished());
                }
                if flow.fins != 0 {
                    return false;
                }
                if bare_syn {
                    tcp.on_syn(side, seg.seq, seg.dst_port, seg.flags & T::ACK != 0);
                    flow.last_seen = now;
                    #[cfg(test)]
                    {
                        self.fast_syns += 1;
                    }
                    return true;
                }
                if seg.flags & (T::SYN | T::FIN | T::RST) != 0 {
                    return false;
                }
                if seg.has_payload() {
                    // Only bytes inside an HTTP body: skipped here as on_segment would.
                    let len = u32::from(seg.payload_len);
                    if !tcp.skip_body_segment(side, seg.seq, len) {
                        return false;
                    }
                    self.counters.parsed_packets += 1;
                    #[cfg(test)]
                    {
                        self.fast_bodies += 1;
                    }
                }
                flow.last_seen = now;
                #[cfg(test)]
                {
                    self.fast_acks += 1;
                }
                return true;
            }
            FlowState::Quic(_) => return false,
        };
        flow.last_seen = now;
        self.counters.bypassed_packets += 1;
        *closed |= seg.flags & (decode::TcpSegment::FIN | decode::TcpSegment::RST) != 0;
        if note_fin(flow, side, seg.flags) {
            self.table.remove(&key);
            self.counters.flows_closed += 1;
        }
        true
    }

    /// Counters to publish; the state stays.
    pub fn take_counters(&mut self) -> FlowCounters {
        self.counters.table = std::mem::take(&mut self.table.counters);
        self.counters.dns_queries_evicted += std::mem::take(&mut self.scratch.dns.queries.evicted);
        let (skips, events) = self.defrag.take_counters();
        self.counters.defrag.merge(&skips);
        self.counters.defrag_events.merge(&events);
        std::mem::take(&mut self.counters)
    }
}

/// Notes a segment's FIN on its flow and says whether the flow is over: a bypassed
/// connection closed both ways (or reset) can carry nothing more, so the caller forgets it now
/// rather than after an idle timeout, and short connections do not pile up.
#[inline]
fn note_fin(flow: &mut Flow, side: table::Side, flags: u8) -> bool {
    if flags & decode::TcpSegment::FIN != 0 {
        flow.fins |= 1 << side.index();
    }
    let ended = flags & decode::TcpSegment::RST != 0 || flow.fins == 0b11;
    ended && matches!(flow.state, FlowState::Bypassed { .. })
}

/// Counts the packet in [`FlowCounters::bad_checksums`] when its TCP/UDP checksum can be
/// checked and is wrong. Called only for packets that gave evidence: the checksum decides
/// nothing else (a packet is parsed whatever its checksum, since offloading on the
/// capture host leaves checksums unfinished), so the pass over the bytes is spent only where
/// it qualifies evidence.
#[cold]
fn count_bad_checksum(counters: &mut FlowCounters, d: &Decoded<'_>, checkable: bool) {
    if checkable && decode::transport_checksum_ok(d) == Some(false) {
        counters.bad_checksums += 1;
    }
}

#[allow(clippy::too_many_arguments)]
fn on_transport(
    table: &mut FlowTable<Flow>,
    scratch: &mut Scratch,
    budget: &WorkerBudget,
    counters: &mut FlowCounters,
    d: &Decoded<'_>,
    now: Timestamp,
    checksum_checkable: bool,
    emit: &mut Emitter<'_>,
) {
    // The transport of what is processed now: after reassembly or inside a tunnel carried in
    // fragments, the packet's own header may say otherwise.
    emit.ctx.ip_proto = d.ip.proto;
    match &d.l4 {
        L4::Tcp(seg) => {
            let src = Endpoint {
                ip: d.ip.src,
                port: seg.src_port,
            };
            let dst = Endpoint {
                ip: d.ip.dst,
                port: seg.dst_port,
            };
            let (key, side) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, 6);
            let closing = seg.flags & (decode::TcpSegment::FIN | decode::TcpSegment::RST) != 0;
            let flow = match table.get_mut(&key, now) {
                Some(flow) => flow,
                None => {
                    // Pure ACKs of a flow we don't know carry nothing: no state for them.
                    let opens = seg.flags & decode::TcpSegment::SYN != 0;
                    if !opens && seg.payload.is_empty() {
                        return;
                    }
                    let fresh = Flow {
                        last_seen: now,
                        state: FlowState::Tcp(Box::default()),
                        fins: 0,
                    };
                    match table.insert(key, fresh, now) {
                        Some(flow) => flow,
                        None => return,
                    }
                }
            };
            flow.last_seen = now;
            match &mut flow.state {
                FlowState::Bypassed { closed } => {
                    counters.bypassed_packets += 1;
                    *closed |= closing;
                }
                FlowState::Tcp(tcp) => {
                    if !seg.payload.is_empty() {
                        counters.parsed_packets += 1;
                    }
                    let evidence = emit.evidence();
                    let mut cx = SegmentCtx {
                        side,
                        src,
                        dst,
                        scratch,
                        skips: &mut counters.tcp,
                        reasm_skips: &mut counters.reasm,
                        reasm_events: &mut counters.reasm_events,
                        budget,
                    };
                    tcp.on_segment(seg, &mut cx, emit);
                    if emit.evidence() > evidence {
                        count_bad_checksum(counters, d, checksum_checkable);
                    }
                    if tcp.is_finished() || seg.flags & decode::TcpSegment::RST != 0 {
                        flow.state = FlowState::Bypassed { closed: closing };
                        counters.flows_bypassed += 1;
                    }
                }
                FlowState::Quic(_) => {}
            }
            if note_fin(flow, side, seg.flags) {
                table.remove(&key);
                counters.flows_closed += 1;
            }
        }
        L4::Udp(dgram) => {
            let src = Endpoint {
                ip: d.ip.src,
                port: dgram.src_port,
            };
            let dst = Endpoint {
                ip: d.ip.dst,
                port: dgram.dst_port,
            };
            if dns::is_dns_port(src.port) || dns::is_dns_port(dst.port) {
                counters.parsed_packets += 1;
                let parsed = dns::parse_message(dgram.payload, &mut scratch.dns.message);
                if let Err(reason) = parsed {
                    counters.dns.incr(reason);
                }
                let evidence = emit.evidence();
                udp::emit_dns(scratch, src, dst, 17, emit);
                if emit.evidence() > evidence {
                    count_bad_checksum(counters, d, checksum_checkable);
                }
                return;
            }
            if KSC_UDP_PORTS.contains(&dst.port) {
                emit.ksc_datagram(src, dst);
            }
            if quic::looks_like_initial(dgram.payload) {
                on_quic(
                    table,
                    budget,
                    counters,
                    (src, dst),
                    dgram.payload,
                    now,
                    emit,
                );
            }
        }
        L4::Fragment(_) | L4::Other { .. } => {}
    }
}

fn on_quic(
    table: &mut FlowTable<Flow>,
    budget: &WorkerBudget,
    counters: &mut FlowCounters,
    (src, dst): (Endpoint, Endpoint),
    payload: &[u8],
    now: Timestamp,
    emit: &mut Emitter<'_>,
) {
    let (key, side) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, 17);
    let flow = match table.get_mut(&key, now) {
        Some(flow) => flow,
        None => {
            let fresh = Flow {
                last_seen: now,
                state: FlowState::Quic(Box::new(QuicFlow {
                    client: side,
                    initial: InitialState::new(),
                    charge: budget::Charge::default(),
                })),
                fins: 0,
            };
            match table.insert(key, fresh, now) {
                Some(flow) => flow,
                None => return,
            }
        }
    };
    flow.last_seen = now;
    let FlowState::Quic(quic) = &mut flow.state else {
        counters.bypassed_packets += 1;
        return;
    };
    // The server's Initials are no client's (they fail to open with client keys): they are
    // not read, and do not end the flow before the client's ClientHello is complete (a client
    // whose hello spans Initials may send the rest after the server's first answer).
    if side != quic.client {
        return;
    }
    counters.parsed_packets += 1;
    let finished = match quic.initial.process_datagram(payload) {
        QuicOutcome::ClientHello(outcome) => {
            match outcome {
                ClientHelloOutcome::Sni { name, .. } => {
                    emit.name(name, NameSource::QuicSni, src, dst, &[], None)
                }
                // A whole ClientHello in Initials: the client is talking (whether the server
                // answers is not followed; QUIC servers answer in their own Initial).
                ClientHelloOutcome::Literal { addr, .. } => {
                    emit.literal(addr, NameSource::QuicSni, src, dst, true);
                    emit.nameless_to(src, dst, NamelessReason::TlsNoSni, true, Some(addr));
                }
                ClientHelloOutcome::NoSni { ech } => {
                    let reason = if ech {
                        NamelessReason::TlsEch
                    } else {
                        NamelessReason::TlsNoSni
                    };
                    emit.nameless(src, dst, reason, true);
                }
                _ => emit.nameless(src, dst, NamelessReason::TlsNoSni, true),
            }
            true
        }
        QuicOutcome::Failed(reason) => {
            counters.quic.incr(reason);
            true
        }
        _ => false,
    };
    // What the Initial state now holds is paid for from the reassembly budget; refused, the
    // state (and its buffers) is dropped with the flow's bypass.
    let refused = !finished && !quic.charge.settle(budget, quic.initial.held_bytes());
    if refused {
        counters.reasm.incr(ReasmSkip::BudgetExhausted);
    }
    if finished || refused {
        flow.state = FlowState::Bypassed { closed: false };
        counters.flows_bypassed += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::observation::{Observed, PacketContext};
    use crate::proto::quic::tests::{crypto, padded, Seal};
    use crate::rules::RuleSet;

    #[test]
    fn shortest_idle_timeout_bounds_the_idle_timeout() {
        let flow = |state| Flow {
            last_seen: Timestamp::ZERO,
            state,
            fins: 0,
        };
        for f in [
            flow(FlowState::Tcp(Box::default())),
            flow(FlowState::Bypassed { closed: false }),
            flow(FlowState::Bypassed { closed: true }),
        ] {
            assert!(f.shortest_idle_timeout() <= f.idle_timeout());
        }
        // A TCP flow's bound holds whether or not it buffers bytes.
        let tcp = flow(FlowState::Tcp(Box::default())).shortest_idle_timeout();
        assert!(tcp <= STALLED_BUFFER_TIMEOUT && tcp <= tcp::ACTIVE_IDLE_TIMEOUT);
    }

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 71, 0, last)),
            port,
        }
    }

    /// A client Initial for connection `dcid` whose CRYPTO stream starts a ClientHello that
    /// declares 15 000 bytes and sends a piece of it at offset 14 000: its state holds a
    /// 14 KB buffer after one small datagram.
    fn unfinished_hello_initial(dcid: &[u8]) -> Vec<u8> {
        let mut frames = crypto(0, &[1, 0x00, 0x3a, 0x98, 3, 3]);
        frames.extend(crypto(14_000, &[0x5a; 10]));
        let seal = Seal {
            keys_dcid: dcid,
            dcid,
            ..Seal::v1()
        };
        seal.seal(&padded(frames, 1162))
    }

    /// Feeds one datagram from `client` to a QUIC server through [`on_quic`].
    fn feed(
        table: &mut FlowTable<Flow>,
        budget: &WorkerBudget,
        counters: &mut FlowCounters,
        client: Endpoint,
        datagram: &[u8],
        now: Timestamp,
    ) {
        let rules = RuleSet::parse(
            "t.toml",
            "[[rule]]\nid = \"ds\"\nmatch = [\"exact:ds.kaspersky.com\"]\n\
             category = \"service\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\n\
             source = \"t\"\n",
        )
        .expect("rules");
        let mut out: Vec<Observed> = Vec::new();
        let mut names = NameCounters::default();
        let ctx = PacketContext {
            ts: now,
            input: 0,
            client_mac: None,
            vlan: None,
            outer: None,
            ip_proto: 17,
        };
        let mut emit = Emitter::new(
            &rules, false, 0, ctx, &mut out, &mut names, client.ip, None, None,
        );
        on_quic(
            table,
            budget,
            counters,
            (client, ep(1, 443)),
            datagram,
            now,
            &mut emit,
        );
    }

    #[test]
    fn quic_initial_buffers_are_paid_from_the_reassembly_budget() {
        // Room for two flows' Initial buffers (about 15 KB each), not three.
        let budget = WorkerBudget::standalone(40 * 1024);
        let mut table = FlowTable::new(16);
        let mut counters = FlowCounters::default();
        let t0 = Timestamp::from_secs_nanos(100, 0);
        for i in 0..3u8 {
            let dcid = [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, i];
            let datagram = unfinished_hello_initial(&dcid);
            feed(
                &mut table,
                &budget,
                &mut counters,
                ep(10 + i, 50_000),
                &datagram,
                t0,
            );
        }
        assert_eq!(counters.reasm.get(ReasmSkip::BudgetExhausted), 1);
        assert_eq!(
            counters.flows_bypassed, 1,
            "the refused flow dropped its state"
        );
        let held: usize = [10, 11]
            .iter()
            .map(|&last| {
                let (key, _) = FlowKey::new(ep(last, 50_000).ip, 50_000, ep(1, 443).ip, 443, 17);
                match table.get_mut(&key, t0).map(|f| &f.state) {
                    Some(FlowState::Quic(q)) => {
                        assert!(q.initial.held_bytes() >= 14_010);
                        assert_eq!(q.charge.held(), q.initial.held_bytes());
                        q.charge.held()
                    }
                    _ => panic!("flow {last} is not waiting for its ClientHello"),
                }
            })
            .sum();
        assert_eq!(
            budget.held(),
            held,
            "exactly what the two flows hold is charged"
        );
        // Expired, they give every byte back (the bypassed flow stays, holding nothing).
        table.tick(t0.saturating_add(QUIC_IDLE_TIMEOUT + Duration::from_secs(1)));
        assert_eq!(table.len(), 1);
        assert_eq!(budget.held(), 0);
    }
}
