//! TCP flows: which side is the client, what each direction carries, and when to stop looking.
//!
//! Contract: [`TcpFlow::on_segment`] takes one segment of a flow, feeds it through the
//! direction's [`StreamReassembler`] and the parser the stream's first bytes call for:
//! a TLS ClientHello (server name), HTTP/1.x request heads (Host, every request of a keep-alive
//! connection), HTTP response heads (the first bytes of each body, for update-file magic) or DNS
//! over TCP (RFC 7766 framing). A client stream that starts as anything else (SMTP, IMAP,
//! LDAP, PostgreSQL, RDP…) is scanned for a ClientHello for its first [`UPGRADE_SCAN_BYTES`]:
//! in-band upgrades to TLS (STARTTLS and its kin) put one right after their clear-text
//! preamble. Which side is the client is the side that sent the SYN, or when both did
//! (simultaneous open, RFC 9293 §3.5) or none was seen, the side whose bytes look like a
//! ClientHello or a request. A direction stops being parsed as soon as it can yield nothing
//! more; when both have stopped, the flow asks to be bypassed. Bytes are copied only when a
//! message spans segments, and never more than the reassembler's cap.
//!
//! Kaspersky Security Center ports ([`KSC_TCP_PORTS`]): a connection opened to one is followed
//! (flags and payload presence only, no bytes kept) until it shows a completed session — the
//! client's SYN, the server's SYN-ACK and payload both ways — which is reported once
//! ([`Emitter::ksc_session`]). A scan's bare SYNs, RSTs and unanswered probes report nothing.
//!
//! HTTP requests: the host (Host field, absolute-form or CONNECT authority) is a name sighting
//! whose source says the form; a request for a Kaspersky update path
//! ([`update::update_path`]) is reported with it, and each request's host, rule and path wait
//! for the response, whose first body bytes may carry an update-file magic.

use std::time::Duration;

use crate::decode::TcpSegment;
use crate::flow::budget::WorkerBudget;
use crate::flow::emit::{Emitter, RequestFacts};
use crate::flow::reassembly::{Delivery, ReasmEvent, ReasmSkip, StreamReassembler};
use crate::flow::table::Side;
use crate::flow::udp::{emit_dns_read, ReadSoFar, Scratch};
use crate::observation::{Endpoint, NameSource, NamelessReason, KSC_TCP_PORTS};
use crate::proto::dns::{self, TcpFrame};
use crate::proto::http::{self, BodyLength, ChunkedBody, RequestHead, ResponseHead, TargetForm};
use crate::proto::tls::{self, ClientHelloOutcome};
use crate::proto::update;
use crate::reason::ReasonCounts;

/// Client bytes of a connection that starts as neither TLS nor HTTP that are scanned for a
/// ClientHello before the direction is given up. Clients send a short clear-text preamble
/// before an in-band upgrade: SMTP `EHLO` and `STARTTLS` (RFC 3207) or the XMPP stream header
/// (RFC 6120 §5.4) are a few hundred bytes, LDAP's StartTLS request (RFC 4511 §4.14.1) and
/// PostgreSQL's SSLRequest tens. 8 KiB leaves room for pipelined or repeated commands while
/// keeping the scan of other protocols short.
pub const UPGRADE_SCAN_BYTES: u32 = 8 * 1024;
/// Data segments of a flow picked up mid-stream that are sniffed for a ClientHello or a request
/// before the flow is bypassed. A keep-alive HTTP connection sends its next request within a
/// few segments of a response; bulk transfers never do.
pub const MIDSTREAM_SNIFF_SEGMENTS: u8 = 16;
/// Requests remembered to pair with their responses (pipelining depth). Browsers pipeline at most
/// a handful; deeper queues are dropped, which only loses the Host of an update payload.
pub const MAX_PENDING_REQUESTS: usize = 8;
/// Bytes of a response body inspected for update-file magic.
const MAGIC_LEN: usize = 4;

crate::reason_enum! {
    /// Why a TCP direction stopped being parsed before it yielded a name, or what went wrong.
    pub enum TcpSkip {
        ReassemblyOverflow => "reassembly_overflow",
        TlsInvalid => "tls_invalid",
        HttpInvalid => "http_invalid",
        DnsInvalid => "dns_invalid",
        /// A DNS-over-TCP message spanned more segments than `MAX_PARTIAL_DNS_READS`: its
        /// later prefixes were not read (if the stream stops inside it, the names after the
        /// last read prefix are lost).
        DnsPartialReadsCapped => "dns_partial_reads_capped",
        MidstreamGaveUp => "midstream_gave_up",
        /// A client stream that began as neither TLS nor HTTP showed no ClientHello in its
        /// first `UPGRADE_SCAN_BYTES`.
        UpgradeScanGaveUp => "upgrade_scan_gave_up",
    }
}

/// Idle timeout of a flow still being parsed: long enough for a slow client.
pub const ACTIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// What one direction of a flow carries.
#[derive(Debug)]
enum App {
    /// No data yet.
    Unknown,
    Tls,
    HttpRequests(HttpBody),
    HttpResponses(HttpBody),
    Dns(DnsStream),
    /// A client stream that began as something else: scanning for a ClientHello (an in-band
    /// upgrade to TLS); the count of bytes scanned so far.
    Upgrade(u32),
    /// Nothing more to find in this direction.
    Done,
}

/// Partial reads of a DNS-over-TCP message made before its end arrived
/// ([`MAX_PARTIAL_DNS_READS`]).
pub const MAX_PARTIAL_DNS_READS: u8 = 16;

/// Where a DNS-over-TCP direction is inside its current message.
#[derive(Debug, Default)]
struct DnsStream {
    /// How far the reads of a prefix of the current message went (names emitted, answer
    /// records held), so that a later read emits only what is new.
    read: ReadSoFar,
    /// Prefix reads made of the current message.
    partial_reads: u8,
}

/// Where an HTTP direction is between messages.
#[derive(Debug)]
enum HttpBody {
    /// Expecting a message head.
    Head,
    /// Skipping a body of known length.
    Length(u64),
    Chunked(ChunkedBody),
    /// A response body: waiting for its first bytes to check the magic, then skip the rest.
    MagicCheck {
        remaining: Option<u64>,
        chunked: Option<ChunkedBody>,
        /// Boxed: a response body is rare next to the flows that never get one, and an inline
        /// name would make every flow's state hundreds of bytes larger.
        request: Option<Box<RequestFacts>>,
    },
}

struct Direction {
    reasm: StreamReassembler,
    app: App,
}

impl Direction {
    fn new() -> Self {
        Direction {
            reasm: StreamReassembler::new(),
            app: App::Unknown,
        }
    }

    fn done(&mut self) {
        self.app = App::Done;
        self.reasm.finish();
    }

    fn is_done(&self) -> bool {
        matches!(self.app, App::Done)
    }
}

/// Request facts needed to read the matching response.
#[derive(Clone, Copy, Debug)]
struct PendingRequest {
    facts: RequestFacts,
    /// The rule-set epoch `facts.rule` was looked up under (`DnsScratch::rules_epoch`).
    rules_epoch: u32,
    head: bool,
}

/// First bytes of a TLS handshake record carrying a ClientHello (RFC 8446 §5.1, §4): content
/// type 22, a 3.x record version, and — when present — handshake type 1.
pub fn looks_like_client_hello(payload: &[u8]) -> bool {
    match payload {
        [0x16, 0x03, minor, rest @ ..] if *minor <= 0x04 => rest.get(2).is_none_or(|t| *t == 0x01),
        _ => false,
    }
}

/// Facts about the segment being handled.
pub struct SegmentCtx<'s> {
    pub side: Side,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub scratch: &'s mut Scratch,
    pub skips: &'s mut ReasonCounts<TcpSkip>,
    pub reasm_skips: &'s mut ReasonCounts<ReasmSkip>,
    pub reasm_events: &'s mut ReasonCounts<ReasmEvent>,
    /// The worker's share of the reassembly budget, for bytes a stream must hold.
    pub budget: &'s WorkerBudget,
}

/// What a flow knows beyond its two directions.
struct FlowFacts {
    /// The side that opened the connection (sent the SYN or the first request).
    client: Option<Side>,
    syn_seen: bool,
    /// What the session check follows, packed in one byte (every tracked flow carries it):
    /// [`Session::SYNACK`], [`Session::PAYLOAD`], [`Session::KSC_PENDING`], [`Session::FIN`].
    session: Session,
    client_data_seen: bool,
    midstream_sniffs: u8,
    requests: Vec<PendingRequest>,
}

/// The session-check bits of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Session(u8);

impl Session {
    /// The server answered the client's SYN with a SYN-ACK.
    const SYNACK: u8 = 1;
    /// Payload (not on a RST) from the side with [`Side::index`] 0; shifted by the index for
    /// side 1.
    const PAYLOAD: u8 = 2;
    const PAYLOAD_BOTH: u8 = 2 | 4;
    /// The connection was opened to a KSC port and has not yet shown a completed session: keep
    /// following it even when nothing is left to parse.
    const KSC_PENDING: u8 = 8;
    /// A FIN from side 0; shifted by the index for side 1.
    const FIN: u8 = 16;
    const FIN_BOTH: u8 = 16 | 32;

    fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    fn set(&mut self, bits: u8) {
        self.0 |= bits;
    }

    fn clear(&mut self, bits: u8) {
        self.0 &= !bits;
    }
}

/// State of one TCP connection while it can still yield a name.
pub struct TcpFlow {
    facts: FlowFacts,
    /// Indexed by [`Side::index`].
    dirs: [Direction; 2],
}

impl TcpFlow {
    pub fn new() -> Self {
        TcpFlow {
            facts: FlowFacts {
                client: None,
                syn_seen: false,
                session: Session(0),
                client_data_seen: false,
                midstream_sniffs: 0,
                requests: Vec::new(),
            },
            dirs: [Direction::new(), Direction::new()],
        }
    }

    /// The side that opened the connection, once known.
    pub fn client_side(&self) -> Option<Side> {
        self.facts.client
    }

    /// Whether both directions are finished and no KSC session is awaited: the flow can be
    /// bypassed.
    pub fn is_finished(&self) -> bool {
        !self.facts.session.has(Session::KSC_PENDING) && self.dirs.iter().all(Direction::is_done)
    }

    /// Bytes held by both reassemblers.
    pub fn buffered_bytes(&self) -> usize {
        self.dirs.iter().map(|d| d.reasm.buffered_bytes()).sum()
    }

    /// Whether either direction holds buffered bytes (cheap: read on every flow lookup).
    pub fn holds_bytes(&self) -> bool {
        self.dirs.iter().any(|d| d.reasm.buffered_bytes() > 0)
    }

    /// The fast path's share of the payload segments: a segment of `len` bytes at `seq` from
    /// `side`, without SYN, FIN or RST, that lies inside an HTTP body of known length and is
    /// the next in order with nothing held. Does exactly what [`TcpFlow::on_segment`] would
    /// (the stream moves past the bytes, the body shrinks; no observation), without reading
    /// the bytes, and returns `true`. Returns `false`, having changed nothing, for any other
    /// segment, including one that ends the body: the full path takes those.
    pub fn skip_body_segment(&mut self, side: Side, seq: u32, len: u32) -> bool {
        // on_segment would set this side's payload bit and might complete a KSC session.
        let payload_seen = self.facts.session.has(Session::PAYLOAD << side.index());
        if !payload_seen || self.facts.session.has(Session::KSC_PENDING) {
            return false;
        }
        let [lo, hi] = &mut self.dirs;
        let (dir, other) = match side {
            Side::Lo => (lo, hi),
            Side::Hi => (hi, lo),
        };
        // on_data would finish the stream of a direction found done.
        if other.is_done() && !other.reasm.is_finished() {
            return false;
        }
        let (App::HttpRequests(HttpBody::Length(remaining))
        | App::HttpResponses(HttpBody::Length(remaining))) = &mut dir.app
        else {
            return false;
        };
        if u64::from(len) >= *remaining || !dir.reasm.pass_in_order(seq, len) {
            return false;
        }
        *remaining -= u64::from(len);
        true
    }

    /// What a segment with SYN set, from `side` to port `dst_port`, tells the flow: who the
    /// client is, whether a KSC session is awaited, that the server answered; and where its
    /// sender's stream starts. The whole of what [`TcpFlow::on_segment`] does with a SYN or
    /// SYN-ACK that carries no payload and neither FIN nor RST, in a flow that has seen no FIN
    /// (the fast path calls it for those).
    pub fn on_syn(&mut self, side: Side, seq: u32, dst_port: u16, ack: bool) {
        let facts = &mut self.facts;
        if !ack {
            if !facts.syn_seen {
                facts.client = Some(side);
                if KSC_TCP_PORTS.contains(&dst_port) {
                    facts.session.set(Session::KSC_PENDING);
                }
            } else if facts.client.is_some_and(|c| c != side) && !facts.client_data_seen {
                // A SYN from each side: a simultaneous open (RFC 9293 §3.5, figure 8).
                // Neither is the client by the handshake; the first bytes will tell.
                facts.client = None;
            }
            facts.syn_seen = true;
        } else if facts.syn_seen && facts.client == Some(side.other()) {
            facts.session.set(Session::SYNACK);
        }
        if let Some(dir) = self.dirs.get_mut(side.index()) {
            dir.reasm.on_syn(seq);
        }
    }

    /// Handles one segment; `emit` receives names and other observations.
    pub fn on_segment(
        &mut self,
        seg: &TcpSegment<'_>,
        cx: &mut SegmentCtx<'_>,
        emit: &mut Emitter<'_>,
    ) {
        let side = cx.side;
        let syn = seg.flags & TcpSegment::SYN != 0;
        let ack = seg.flags & TcpSegment::ACK != 0;
        let rst = seg.flags & TcpSegment::RST != 0;
        if syn {
            self.on_syn(side, seg.seq, cx.dst.port, ack);
        }
        let facts = &mut self.facts;
        // A reset carries no data worth reading (RFC 9293 §3.5.3 diagnostic payloads).
        if !seg.payload.is_empty() && !rst {
            facts.session.set(Session::PAYLOAD << side.index());
            let complete = Session::KSC_PENDING | Session::SYNACK | Session::PAYLOAD_BOTH;
            if facts.session.has(complete) {
                facts.session.clear(Session::KSC_PENDING);
                if let Some((c, s)) = client_server(facts.client, side, cx) {
                    emit.ksc_session(c, s);
                }
            }
            self.on_data(seg, cx, emit);
        }
        let closing = seg.flags & (TcpSegment::FIN | TcpSegment::RST) != 0;
        if closing {
            // No client bytes follow the client's FIN, and none follow a reset: a scan for an
            // upgrade ends there.
            for (i, dir) in self.dirs.iter_mut().enumerate() {
                if matches!(dir.app, App::Upgrade(_)) && (rst || i == side.index()) {
                    dir.done();
                }
            }
        }
        let facts = &mut self.facts;
        if seg.flags & TcpSegment::FIN != 0 {
            facts.session.set(Session::FIN << side.index());
        }
        if rst || facts.session.has(Session::FIN_BOTH) {
            // Nobody can send payload any more: the session will not complete.
            facts.session.clear(Session::KSC_PENDING);
        }
        if closing && facts.syn_seen && !facts.client_data_seen {
            if let Some((c, s)) = client_server(facts.client, side, cx) {
                // The connection ends without a byte from the client: no name can come now.
                emit.nameless(c, s, NamelessReason::NoData, false);
                facts.client_data_seen = true;
                for dir in &mut self.dirs {
                    dir.done();
                }
            }
        }
    }

    fn on_data(&mut self, seg: &TcpSegment<'_>, cx: &mut SegmentCtx<'_>, emit: &mut Emitter<'_>) {
        let TcpFlow { facts, dirs } = self;
        let [lo, hi] = dirs;
        let (dir, other) = match cx.side {
            Side::Lo => (lo, hi),
            Side::Hi => (hi, lo),
        };
        if dir.is_done() {
            return;
        }
        let Direction { reasm, app } = dir;
        if matches!(app, App::Unknown) && carries_dns(cx.src, cx.dst) {
            // It will be read as DNS (see `classify`): a message is read whole, up to 64 KiB.
            reasm.hold_whole_dns_messages();
        }
        // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
        let syn = seg.flags & TcpSegment::SYN != 0;
        let seq = if syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        match reasm.push(seq, seg.payload, cx.budget) {
            Delivery::InPlace(bytes) => {
                let used = deliver(facts, app, &mut other.app, bytes, cx, emit);
                if !matches!(app, App::Done | App::Unknown) {
                    // In place means `bytes` is this segment's payload.
                    if let Some(tail) = seg.payload.get(used..) {
                        if !tail.is_empty() {
                            if let Err(reason) = reasm.keep(tail, cx.budget) {
                                cx.skips.incr(TcpSkip::ReassemblyOverflow);
                                cx.reasm_skips.incr(reason);
                                *app = App::Done;
                            }
                        }
                    }
                }
            }
            Delivery::Buffered(bytes) => {
                let used = deliver(facts, app, &mut other.app, bytes, cx, emit);
                reasm.consume(used);
            }
            Delivery::Nothing => {}
            Delivery::Overflow(reason) => {
                cx.skips.incr(TcpSkip::ReassemblyOverflow);
                cx.reasm_skips.incr(reason);
                *app = App::Done;
            }
        }
        let events = reasm.take_counters();
        if !events.is_zero() {
            events.add_to(cx.reasm_events);
        }
        for d in [dir, other] {
            if d.is_done() {
                d.reasm.finish();
            }
        }
    }
}

/// Hands in-order stream bytes to the direction's parser, deciding first what the direction
/// carries if that is still open. Returns how many bytes were consumed.
fn deliver(
    facts: &mut FlowFacts,
    app: &mut App,
    other: &mut App,
    bytes: &[u8],
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
) -> usize {
    if matches!(app, App::Unknown) {
        *app = classify(facts, other, bytes, cx, emit);
        if matches!(app, App::Unknown) {
            // Still sniffing a flow picked up mid-stream: drop these bytes.
            return bytes.len();
        }
    }
    let (src, dst) = (cx.src, cx.dst);
    let conversed = facts.conversed();
    if let App::Upgrade(_) = app {
        let used = scan_for_upgrade(bytes, app, cx);
        if !matches!(app, App::Tls) {
            return used;
        }
        let rest = bytes.get(used..).unwrap_or(&[]);
        return used.saturating_add(feed_tls(rest, app, cx, emit, src, dst, conversed));
    }
    match app {
        App::Tls => feed_tls(bytes, app, cx, emit, src, dst, conversed),
        App::HttpRequests(_) | App::HttpResponses(_) => feed_http(
            bytes,
            app,
            &mut facts.requests,
            cx,
            emit,
            (src, dst),
            conversed,
        ),
        App::Dns(_) => feed_dns(bytes, app, cx, emit, src, dst),
        App::Upgrade(_) | App::Unknown | App::Done => bytes.len(),
    }
}

/// Length of a TLS record header plus the handshake type (RFC 8446 §5.1, §4).
const CLIENT_HELLO_PREFIX: usize = 6;

/// Scans a client stream for the start of a ClientHello record. Found: the direction becomes
/// TLS and the bytes before it are consumed. A candidate too close to the end to be checked
/// is kept for the next bytes. After [`UPGRADE_SCAN_BYTES`] the direction is given up.
fn scan_for_upgrade(bytes: &[u8], app: &mut App, cx: &mut SegmentCtx<'_>) -> usize {
    let App::Upgrade(scanned) = app else {
        return bytes.len();
    };
    let budget = usize::try_from(UPGRADE_SCAN_BYTES.saturating_sub(*scanned)).unwrap_or(0);
    let window = bytes.get(..bytes.len().min(budget)).unwrap_or(&[]);
    let mut at = 0usize;
    while let Some(offset) = window.get(at..).and_then(|w| memchr::memchr(0x16, w)) {
        let pos = at.saturating_add(offset);
        let candidate = bytes.get(pos..).unwrap_or(&[]);
        if candidate.len() < CLIENT_HELLO_PREFIX {
            // Maybe a ClientHello whose header continues in the next segment.
            *scanned = scanned.saturating_add(u32::try_from(pos).unwrap_or(u32::MAX));
            return pos;
        }
        if looks_like_client_hello(candidate) {
            *app = App::Tls;
            return pos;
        }
        at = pos.saturating_add(1);
    }
    *scanned = scanned.saturating_add(u32::try_from(window.len()).unwrap_or(u32::MAX));
    if *scanned >= UPGRADE_SCAN_BYTES {
        cx.skips.incr(TcpSkip::UpgradeScanGaveUp);
        *app = App::Done;
    }
    bytes.len()
}

/// Whether a connection between these endpoints carries DNS over TCP (port 53, RFC 7766).
fn carries_dns(src: Endpoint, dst: Endpoint) -> bool {
    dst.port == 53 || src.port == 53
}

/// Decides what a direction carries from its first in-order bytes; may also settle the other
/// direction (the server side of TLS carries nothing we read).
fn classify(
    facts: &mut FlowFacts,
    other: &mut App,
    bytes: &[u8],
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
) -> App {
    let side = cx.side;
    let midstream = !facts.syn_seen;
    let looks_tls = looks_like_client_hello(bytes);
    let looks_request = !matches!(http::parse_request_head(bytes), RequestHead::NotHttp);
    let looks_response = !matches!(http::parse_response_head(bytes), ResponseHead::NotHttp);
    let dns_port = carries_dns(cx.src, cx.dst);
    if facts.client.is_none() && (looks_tls || looks_request || cx.dst.port == 53) {
        facts.client = Some(side);
    }
    let is_client = facts.client == Some(side);
    let app = if dns_port {
        App::Dns(DnsStream::default())
    } else if is_client && looks_tls {
        App::Tls
    } else if is_client && looks_request {
        App::HttpRequests(HttpBody::Head)
    } else if !is_client && looks_response && facts.client.is_some() {
        App::HttpResponses(HttpBody::Head)
    } else if is_client && !midstream {
        App::Upgrade(0)
    } else {
        App::Done
    };
    if is_client && !facts.client_data_seen {
        facts.client_data_seen = true;
        if matches!(app, App::Done | App::Upgrade(_)) && !midstream {
            let conversed = facts.conversed();
            emit.nameless(cx.src, cx.dst, NamelessReason::OtherProtocol, conversed);
        }
    }
    if midstream && matches!(app, App::Done) {
        facts.midstream_sniffs = facts.midstream_sniffs.saturating_add(1);
        if facts.midstream_sniffs < MIDSTREAM_SNIFF_SEGMENTS {
            // The next segment may start a request.
            return App::Unknown;
        }
        cx.skips.incr(TcpSkip::MidstreamGaveUp);
    }
    if is_client && matches!(other, App::Unknown) && !dns_port {
        let server_may_speak_http = matches!(app, App::HttpRequests(_));
        if !server_may_speak_http {
            *other = App::Done;
        }
    }
    app
}

/// The (client, server) endpoints of a segment sent by `side`, once the client is known.
fn client_server(
    client: Option<Side>,
    side: Side,
    cx: &SegmentCtx<'_>,
) -> Option<(Endpoint, Endpoint)> {
    let client = client?;
    Some(if client == side {
        (cx.src, cx.dst)
    } else {
        (cx.dst, cx.src)
    })
}

impl Default for TcpFlow {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowFacts {
    /// Whether client data now is part of a real conversation: the server accepted the
    /// connection, or the flow was picked up mid-stream (it was established before we looked).
    fn conversed(&self) -> bool {
        self.session.has(Session::SYNACK) || !self.syn_seen
    }
}

/// After a `CONNECT`, the tunnel's own messages are not HTTP responses to pair.
fn facts_reset_for_tunnel(requests: &mut Vec<PendingRequest>) {
    requests.clear();
}

fn feed_tls(
    bytes: &[u8],
    app: &mut App,
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
    client: Endpoint,
    server: Endpoint,
    conversed: bool,
) -> usize {
    match tls::sni_from_stream(bytes, &mut cx.scratch.tls) {
        ClientHelloOutcome::NeedMore => return 0,
        ClientHelloOutcome::Sni { name, ech } => {
            // A ClientHello with a server name is a sighting of that name, ECH or not: Chrome
            // offers a GREASE ECH extension (draft-ietf-tls-esni §6.2) beside the real name on
            // every connection, and with real ECH the outer name is the public name the client
            // really contacts. The source keeps the ECH flag.
            let source = if ech {
                NameSource::TlsSniEchOuter
            } else {
                NameSource::TlsSni
            };
            emit.name(name, source, client, server, &[], None);
        }
        ClientHelloOutcome::Literal { addr, ech } => {
            // An address, not a host name: reported as such, and the connection counts as one
            // without a name whose address is the literal (rules match names; the address is
            // looked up in Kaspersky's address space).
            let source = if ech {
                NameSource::TlsSniEchOuter
            } else {
                NameSource::TlsSni
            };
            emit.literal(addr, source, client, server, conversed);
            let reason = NamelessReason::TlsNoSni;
            emit.nameless_to(client, server, reason, conversed, Some(addr));
        }
        ClientHelloOutcome::NoSni { ech } => {
            let reason = if ech {
                NamelessReason::TlsEch
            } else {
                NamelessReason::TlsNoSni
            };
            emit.nameless(client, server, reason, conversed);
        }
        ClientHelloOutcome::NotClientHello => {
            emit.nameless(client, server, NamelessReason::OtherProtocol, conversed);
        }
        ClientHelloOutcome::Invalid(_) => {
            cx.skips.incr(TcpSkip::TlsInvalid);
            emit.nameless(client, server, NamelessReason::TlsNoSni, conversed);
        }
    }
    *app = App::Done;
    bytes.len()
}

/// Skips body bytes; returns how many were consumed and whether the body ended.
fn skip_body(body: &mut HttpBody, bytes: &[u8]) -> (usize, bool) {
    match body {
        HttpBody::Length(left) => {
            let n = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            *left -= n as u64;
            (n, *left == 0)
        }
        HttpBody::Chunked(chunked) => {
            let progress = chunked.consume(bytes);
            (progress.consumed, progress.done)
        }
        HttpBody::Head | HttpBody::MagicCheck { .. } => (0, true),
    }
}

/// What one step of the HTTP loop ([`feed_http`]) did.
enum HttpStep {
    /// Consumed this many bytes; the loop goes on after them.
    Used(usize),
    /// Needs more bytes than the stream holds so far.
    NeedMore,
    /// Consumed this many bytes, after which the direction is a tunnel (an HTTP `CONNECT`): it
    /// is read again as a fresh stream.
    Tunnel(usize),
    /// Nothing more to read in this direction: not HTTP, or a body that runs until the
    /// connection closes.
    Done,
    /// A malformed message: counted, and nothing more to read in this direction.
    Invalid,
}

/// One body-skipping step from `rest`. A finished body puts the direction back to expecting a
/// head.
fn skip_step(state: &mut HttpBody, rest: &[u8]) -> HttpStep {
    let (n, ended) = skip_body(state, rest);
    if ended {
        *state = HttpBody::Head;
    } else if n == 0 {
        return HttpStep::NeedMore;
    }
    HttpStep::Used(n)
}

/// Reads the HTTP messages of one direction (requests or responses) from `bytes`, the
/// direction's in-order bytes from `src` to `dst`: message heads, then bodies skipped (a
/// response body's first bytes checked for an update-file magic). Returns how many bytes were
/// consumed.
fn feed_http(
    bytes: &[u8],
    app: &mut App,
    requests: &mut Vec<PendingRequest>,
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
    (src, dst): (Endpoint, Endpoint),
    conversed: bool,
) -> usize {
    let epoch = cx.scratch.dns.rules_epoch;
    let mut used = 0usize;
    loop {
        let Some(rest) = bytes.get(used..) else {
            return used;
        };
        if rest.is_empty() {
            return used;
        }
        let step = match app {
            App::HttpRequests(state @ HttpBody::Head) => {
                request_head(rest, state, requests, emit, (src, dst), (epoch, conversed))
            }
            App::HttpResponses(state @ HttpBody::Head) => {
                response_head(rest, state, requests, emit, epoch)
            }
            App::HttpResponses(state @ HttpBody::MagicCheck { .. }) => {
                response_body_start(rest, state, emit, src, dst)
            }
            App::HttpRequests(state) | App::HttpResponses(state) => skip_step(state, rest),
            _ => return used,
        };
        match step {
            HttpStep::Used(n) => used = used.saturating_add(n),
            HttpStep::NeedMore => return used,
            HttpStep::Tunnel(n) => {
                *app = App::Unknown;
                facts_reset_for_tunnel(requests);
                return used.saturating_add(n);
            }
            HttpStep::Invalid => {
                cx.skips.incr(TcpSkip::HttpInvalid);
                *app = App::Done;
                return bytes.len();
            }
            HttpStep::Done => {
                *app = App::Done;
                return bytes.len();
            }
        }
    }
}

/// A request head at the start of `rest`, from `client` to `server`: its name (the Host, or the
/// authority of an absolute-form target or a CONNECT) is emitted with the source its form
/// says, a request for an update path is emitted with it, and the request (host, rule, path)
/// is remembered for its response. `epoch` is the worker's rule-set epoch; `conversed` whether
/// the connection is a real conversation (for a request without a name).
fn request_head(
    rest: &[u8],
    state: &mut HttpBody,
    requests: &mut Vec<PendingRequest>,
    emit: &mut Emitter<'_>,
    (client, server): (Endpoint, Endpoint),
    (epoch, conversed): (u32, bool),
) -> HttpStep {
    let (host, literal, head_len, body) = match http::parse_request_head(rest) {
        RequestHead::NeedMore => return HttpStep::NeedMore,
        RequestHead::NotHttp => return HttpStep::Done,
        RequestHead::Invalid(_) => return HttpStep::Invalid,
        RequestHead::Complete {
            host,
            literal,
            head_len,
            body,
        } => (host, literal, head_len, body),
    };
    let target = http::request_target(rest.get(..head_len).unwrap_or(rest));
    let form = target.map_or(TargetForm::Other, |t| t.form);
    let connect = form == TargetForm::Authority;
    let path = target.and_then(|t| update::update_path(t.path));
    // The one rule lookup of this request: its name sighting, its update request and its
    // response's payload all use it.
    let rule = host.as_ref().and_then(|name| emit.lookup(name));
    // An IP-literal host (of an absolute-form target or a CONNECT, which a proxy reaches for
    // the client, or of the Host field) is the address the request goes to: it, not the
    // proxy's address, is judged for Kaspersky's address space.
    let origin = literal;
    let facts = RequestFacts {
        host,
        rule,
        path,
        origin,
    };
    let source = match form {
        TargetForm::Authority => NameSource::HttpConnect,
        TargetForm::Absolute => NameSource::HttpAbsoluteUri,
        TargetForm::Origin | TargetForm::Other => NameSource::HttpHost,
    };
    if let Some(addr) = literal {
        emit.literal(addr, source, client, server, conversed);
    }
    if let Some(name) = &host {
        emit.name_with_rule(name, rule, source, client, server, &[], None, None);
    } else if !connect || origin.is_some() {
        // A CONNECT to a name is judged by the tunnel's own ClientHello; a CONNECT to an
        // address literal only here (the tunnel's server is the proxy).
        emit.nameless_to(
            client,
            server,
            NamelessReason::HttpNoName,
            conversed,
            origin,
        );
    }
    if let Some(path) = path {
        emit.update_request(client, server, path, facts);
    }
    if requests.len() < MAX_PENDING_REQUESTS {
        requests.push(PendingRequest {
            facts,
            rules_epoch: epoch,
            head: rest.starts_with(b"HEAD "),
        });
    }
    let used = head_len.max(1);
    *state = match body {
        BodyLength::None => HttpBody::Head,
        BodyLength::ContentLength(0) => HttpBody::Head,
        BodyLength::ContentLength(n) => HttpBody::Length(n),
        BodyLength::Chunked => HttpBody::Chunked(ChunkedBody::default()),
        BodyLength::UntilClose => return HttpStep::Done,
    };
    if connect {
        // What follows is a tunnel, usually TLS to the named host: read it as a fresh stream.
        return HttpStep::Tunnel(used);
    }
    HttpStep::Used(used)
}

/// A response head at the start of `rest`: paired with the oldest pending request (a final
/// response, status 200 or more), its body is then checked for an update-file magic. The
/// request's rule is looked up again only if the worker switched rule sets (`epoch`) since.
fn response_head(
    rest: &[u8],
    state: &mut HttpBody,
    requests: &mut Vec<PendingRequest>,
    emit: &Emitter<'_>,
    epoch: u32,
) -> HttpStep {
    let (status, head_len, body) = match http::parse_response_head(rest) {
        ResponseHead::NeedMore => return HttpStep::NeedMore,
        ResponseHead::NotHttp => return HttpStep::Done,
        ResponseHead::Invalid(_) => return HttpStep::Invalid,
        ResponseHead::Complete {
            status,
            head_len,
            body,
        } => (status, head_len, body),
    };
    let request = if status >= 200 && !requests.is_empty() {
        Some(requests.remove(0))
    } else {
        None
    };
    let no_body = request.is_some_and(|r| r.head);
    let request = request.map(|r| {
        let mut facts = r.facts;
        if r.rules_epoch != epoch {
            facts.rule = facts.host.as_ref().and_then(|h| emit.lookup(h));
        }
        Box::new(facts)
    });
    *state = match body {
        _ if no_body => HttpBody::Head,
        BodyLength::None | BodyLength::ContentLength(0) => HttpBody::Head,
        BodyLength::ContentLength(n) => HttpBody::MagicCheck {
            remaining: Some(n),
            chunked: None,
            request,
        },
        BodyLength::Chunked => HttpBody::MagicCheck {
            remaining: None,
            chunked: Some(ChunkedBody::default()),
            request,
        },
        BodyLength::UntilClose => HttpBody::MagicCheck {
            remaining: None,
            chunked: None,
            request,
        },
    };
    HttpStep::Used(head_len.max(1))
}

/// The first bytes of a response body (`state` is [`HttpBody::MagicCheck`]) from `server` to
/// `client`: an update-file magic there is emitted, then the rest of the body is skipped.
fn response_body_start(
    rest: &[u8],
    state: &mut HttpBody,
    emit: &mut Emitter<'_>,
    server: Endpoint,
    client: Endpoint,
) -> HttpStep {
    let HttpBody::MagicCheck {
        remaining,
        chunked,
        request,
    } = state
    else {
        return HttpStep::Used(0);
    };
    let facts = request.as_deref().copied().unwrap_or_default();
    if let Some(chunked) = chunked {
        // Chunked: let the decoder find the first data bytes.
        let progress = chunked.consume(rest);
        let start = chunked.first_data();
        if start.len() >= MAGIC_LEN || progress.done {
            if let Some(magic) = update::update_payload_magic(start) {
                emit.update_payload(client, server, magic, facts);
            }
            let chunked = std::mem::take(chunked);
            *state = if progress.done {
                HttpBody::Head
            } else {
                HttpBody::Chunked(chunked)
            };
        }
        if progress.consumed == 0 {
            return HttpStep::NeedMore;
        }
        return HttpStep::Used(progress.consumed);
    }
    let want = match remaining {
        Some(n) => usize::try_from(*n).unwrap_or(usize::MAX).min(MAGIC_LEN),
        None => MAGIC_LEN,
    };
    if rest.len() < want {
        return HttpStep::NeedMore;
    }
    if let Some(magic) = rest.get(..want).and_then(update::update_payload_magic) {
        emit.update_payload(client, server, magic, facts);
    }
    match remaining {
        Some(n) => {
            let skip = usize::try_from(*n).unwrap_or(usize::MAX).min(rest.len());
            let left = *n - skip as u64;
            *state = if left == 0 {
                HttpBody::Head
            } else {
                HttpBody::Length(left)
            };
            HttpStep::Used(skip)
        }
        // Body until close: nothing more to read in this direction.
        None => HttpStep::Done,
    }
}

/// Cuts DNS messages out of the stream (RFC 1035 §4.2.2) and emits their names. A message whose
/// end has not arrived yet is read as far as it goes, so that a stream that stops inside it
/// (a capture cut short, a lost segment) still gives every name before the cut: names are
/// numbered in message order and each is emitted once, by the first read that holds it; the
/// addresses a later read adds for a matched name go to correlation then
/// ([`emit_dns_read`]). A message is read again at most
/// [`MAX_PARTIAL_DNS_READS`] times before it is complete: each read is bounded by the 64 KiB
/// message length, and DNS over TCP rarely spans more than a few segments (zone transfers).
/// The direction's reassembler holds a whole message (`reassembly::MAX_DNS_BUFFERED_BYTES`),
/// so a message of any length completes when its bytes arrive, and every name is then read.
fn feed_dns(
    bytes: &[u8],
    app: &mut App,
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
    src: Endpoint,
    dst: Endpoint,
) -> usize {
    let mut used = 0usize;
    loop {
        let App::Dns(stream) = app else {
            return used;
        };
        let Some(rest) = bytes.get(used..) else {
            return used;
        };
        match dns::next_tcp_frame(rest) {
            TcpFrame::NeedMore => {
                // The two-octet length prefix, then a header at least (RFC 1035 §4.1.1).
                let Some(prefix) = rest.get(2..).filter(|p| p.len() >= 12) else {
                    return used;
                };
                if stream.partial_reads >= MAX_PARTIAL_DNS_READS {
                    if stream.partial_reads == MAX_PARTIAL_DNS_READS {
                        cx.skips.incr(TcpSkip::DnsPartialReadsCapped);
                        stream.partial_reads = stream.partial_reads.saturating_add(1);
                    }
                    return used;
                }
                stream.partial_reads = stream.partial_reads.saturating_add(1);
                // Expected to stop early: what it read is kept, and not an error.
                let _ = dns::parse_message(prefix, &mut cx.scratch.dns.message);
                let before = stream.read;
                let read = emit_dns_read(cx.scratch, src, dst, 6, emit, before);
                stream.read = ReadSoFar {
                    names: read.names.max(before.names),
                    answers: read.answers.max(before.answers),
                };
                return used;
            }
            TcpFrame::Message { msg, consumed } => {
                used = used.saturating_add(consumed.max(1));
                let before = stream.read;
                *stream = DnsStream::default();
                let parsed = dns::parse_message(msg, &mut cx.scratch.dns.message);
                if parsed.is_err() {
                    cx.skips.incr(TcpSkip::DnsInvalid);
                }
                emit_dns_read(cx.scratch, src, dst, 6, emit, before);
                if parsed.is_err() && cx.scratch.dns.message.questions.is_empty() {
                    *app = App::Done;
                    return bytes.len();
                }
            }
        }
    }
}

/// DNS messages built byte by byte (shared with `tests/dns_tcp.rs` as a source file).
#[cfg(test)]
#[path = "../../tests/builders/dns_message.rs"]
mod dns_message;

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::dns_message::{a, cname, dns_tcp};
    use super::*;
    use crate::flow::emit::NameCounters;
    use crate::flow::table::FlowKey;
    use crate::observation::{
        Observation, Observed, OtherNameForm, OtherNameSighting, PacketContext,
    };
    use crate::rules::RuleSet;
    use crate::time::Timestamp;

    const DS_HELLO: &[u8] = include_bytes!("../proto/testdata/tls13_ds_kaspersky.bin");
    const NO_SNI_HELLO: &[u8] = include_bytes!("../proto/testdata/tls13_no_sni.bin");
    const SYN: u8 = TcpSegment::SYN;
    const ACK: u8 = TcpSegment::ACK;
    const RST: u8 = TcpSegment::RST;
    const FIN: u8 = TcpSegment::FIN;

    fn rules() -> RuleSet {
        RuleSet::parse(
            "t.toml",
            "[[rule]]\nid = \"ds\"\nmatch = [\"exact:ds.kaspersky.com\"]\ncategory = \"service\"\n\
             confidence = \"high\"\nproduct = \"kaspersky\"\nsource = \"t\"\n\n\
             [[network]]\nid = \"kl\"\nasn = 200107\nprefixes = [\"77.74.176.0/21\"]\n\
             use = \"corroborate\"\nsource = \"t\"\nretrieved = \"2026-01-01\"\n",
        )
        .expect("rules")
    }

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 70, 0, last)),
            port,
        }
    }

    /// Runs [`scan_for_upgrade`] over `chunks` as successive deliveries (an unconsumed tail is
    /// delivered again in front of the next chunk, as the reassembler does). Returns the state
    /// and the offset of the stream where TLS starts, if it does.
    fn scan(chunks: &[&[u8]]) -> (App, Option<usize>, ReasonCounts<TcpSkip>) {
        let mut scratch = Scratch::default();
        let mut skips = ReasonCounts::default();
        let mut reasm_skips: ReasonCounts<ReasmSkip> = ReasonCounts::default();
        let mut reasm_events: ReasonCounts<ReasmEvent> = ReasonCounts::default();
        let budget = WorkerBudget::standalone(1 << 20);
        let mut cx = SegmentCtx {
            side: Side::Lo,
            src: ep(1, 40000),
            dst: ep(2, 25),
            scratch: &mut scratch,
            skips: &mut skips,
            reasm_skips: &mut reasm_skips,
            reasm_events: &mut reasm_events,
            budget: &budget,
        };
        let mut app = App::Upgrade(0);
        let mut pending: Vec<u8> = Vec::new();
        let mut offset = 0usize;
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let used = scan_for_upgrade(&pending, &mut app, &mut cx);
            if matches!(app, App::Tls) {
                return (app, Some(offset + used), skips);
            }
            if matches!(app, App::Done) {
                break;
            }
            offset += used;
            pending.drain(..used);
        }
        (app, None, skips)
    }

    const HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];

    #[test]
    fn upgrade_scan_finds_the_client_hello_after_a_preamble() {
        let (app, at, _) = scan(&[b"EHLO x\r\n", b"STARTTLS\r\n", HELLO]);
        assert!(matches!(app, App::Tls));
        assert_eq!(at, Some(18));
        // In the same delivery as the preamble, after stray 0x16 bytes that are not one.
        let mut one = b"\x16\x16\x03garbage\x16\x03\x01\x00\x05\x02".to_vec();
        let start = one.len();
        one.extend_from_slice(HELLO);
        assert_eq!(scan(&[&one]).1, Some(start));
        // A record header split across deliveries.
        let (app, at, _) = scan(&[b"AUTH TLS\r\n\x16\x03", &HELLO[2..]]);
        assert!(matches!(app, App::Tls));
        assert_eq!(at, Some(10));
    }

    #[test]
    fn upgrade_scan_gives_up_after_its_budget() {
        let filler = vec![b'x'; 1000];
        let mut chunks: Vec<&[u8]> = vec![&filler[..]; 9];
        chunks.push(HELLO);
        let (app, at, skips) = scan(&chunks);
        assert!(matches!(app, App::Done));
        assert_eq!(at, None);
        assert_eq!(skips.get(TcpSkip::UpgradeScanGaveUp), 1);
        // Just inside the budget it is found.
        let mut chunks: Vec<&[u8]> = vec![&filler[..]; 8];
        chunks.push(HELLO);
        assert_eq!(scan(&chunks).1, Some(8000));
    }

    /// One TCP connection between `client` and `server`, driven segment by segment, with the
    /// observations it produces.
    struct Conn {
        flow: TcpFlow,
        scratch: Scratch,
        client: Endpoint,
        server: Endpoint,
        out: Vec<Observed>,
        rules: RuleSet,
        packet: u64,
        budget: WorkerBudget,
        /// Every name is wanted (`--all-names`).
        all_names: bool,
    }

    impl Conn {
        fn new(client: Endpoint, server: Endpoint) -> Conn {
            Conn {
                flow: TcpFlow::new(),
                scratch: Scratch::default(),
                client,
                server,
                out: Vec::new(),
                rules: rules(),
                packet: 0,
                budget: WorkerBudget::standalone(1 << 20),
                all_names: false,
            }
        }

        /// A segment from the client (`from_client`) or the server.
        fn seg(&mut self, from_client: bool, flags: u8, seq: u32, payload: &[u8]) -> &mut Self {
            let (src, dst) = if from_client {
                (self.client, self.server)
            } else {
                (self.server, self.client)
            };
            let (_, side) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, 6);
            let seg = TcpSegment {
                src_port: src.port,
                dst_port: dst.port,
                seq,
                ack: 0,
                flags,
                payload,
                wire_payload_len: payload.len() as u32,
            };
            let ctx = PacketContext {
                ts: Timestamp::from_secs_nanos(100, 0),
                input: 0,
                client_mac: None,
                vlan: None,
                outer: None,
                ip_proto: 6,
            };
            let mut names = NameCounters::default();
            let mut emit = Emitter::new(
                &self.rules,
                self.all_names,
                self.packet,
                ctx,
                &mut self.out,
                &mut names,
                src.ip,
                None,
                None,
            );
            self.packet += 1;
            let (mut skips, mut reasm_skips, mut reasm_events) = Default::default();
            let mut cx = SegmentCtx {
                side,
                src,
                dst,
                scratch: &mut self.scratch,
                skips: &mut skips,
                reasm_skips: &mut reasm_skips,
                reasm_events: &mut reasm_events,
                budget: &self.budget,
            };
            self.flow.on_segment(&seg, &mut cx, &mut emit);
            self
        }

        fn sessions(&self) -> usize {
            self.out
                .iter()
                .filter(|o| matches!(o.what, Observation::KscSession { .. }))
                .count()
        }

        fn what(&self) -> Vec<&Observation> {
            self.out.iter().map(|o| &o.what).collect()
        }
    }

    #[test]
    fn ksc_session_needs_handshake_and_payload_both_ways() {
        let mut c = Conn::new(ep(21, 50_000), ep(10, 13_000));
        c.seg(true, SYN, 100, b"").seg(false, SYN | ACK, 500, b"");
        c.seg(true, ACK, 101, b"").seg(true, ACK, 101, NO_SNI_HELLO);
        assert_eq!(c.sessions(), 0, "client data alone is no session");
        // The flow keeps being followed for the session although TLS is done.
        assert!(!c.flow.is_finished());
        c.seg(false, ACK, 501, b"\x16\x03\x03\x00\x02hi");
        assert_eq!(c.sessions(), 1);
        let Some(Observation::KscSession { client, server }) = c
            .what()
            .into_iter()
            .find(|o| matches!(o, Observation::KscSession { .. }))
        else {
            panic!("no session");
        };
        assert_eq!(
            (client.ip, server.ip, server.port),
            (c.client.ip, c.server.ip, 13_000)
        );
        // Once per connection.
        c.seg(false, ACK, 509, b"more");
        assert_eq!(c.sessions(), 1);
        assert!(c.flow.is_finished());
    }

    #[test]
    fn scan_syns_and_resets_make_no_session() {
        // nmap -sS: SYN, SYN-ACK, the scanner's kernel resets.
        let mut c = Conn::new(ep(30, 40_000), ep(10, 13_000));
        c.seg(true, SYN, 1, b"")
            .seg(false, SYN | ACK, 9, b"")
            .seg(true, RST, 2, b"");
        assert_eq!(c.sessions(), 0);
        // A closed port: SYN answered by RST/ACK.
        let mut closed = Conn::new(ep(30, 40_001), ep(11, 13_000));
        closed.seg(true, SYN, 1, b"").seg(false, RST | ACK, 0, b"");
        assert_eq!(closed.sessions(), 0);
        // Both end without client data: a nameless connection that never conversed.
        for conn in [&c, &closed] {
            assert!(conn.what().iter().all(|o| matches!(
                o,
                Observation::Nameless {
                    reason: NamelessReason::NoData,
                    conversed: false,
                    ..
                }
            )));
        }
        // A handshake with data one way only, then both FINs: no session either.
        let mut oneway = Conn::new(ep(22, 40_002), ep(10, 14_000));
        oneway.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        oneway.seg(true, ACK, 2, b"klnagent: sync request\n");
        oneway
            .seg(true, FIN | ACK, 25, b"")
            .seg(false, FIN | ACK, 10, b"");
        assert_eq!(oneway.sessions(), 0);
        assert!(oneway.flow.is_finished());
    }

    #[test]
    fn no_session_on_other_ports_or_without_syn() {
        let mut web = Conn::new(ep(21, 50_001), ep(10, 443));
        web.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        web.seg(true, ACK, 2, DS_HELLO).seg(false, ACK, 10, b"x");
        assert_eq!(web.sessions(), 0);
        // Picked up mid-stream: who opened it is unknown.
        let mut mid = Conn::new(ep(21, 50_002), ep(10, 13_000));
        mid.seg(true, ACK, 2, b"abc").seg(false, ACK, 10, b"def");
        assert_eq!(mid.sessions(), 0);
    }

    /// A ClientHello carrying server_name `name` and an encrypted_client_hello extension (as
    /// Chrome sends with GREASE ECH).
    fn hello_with_sni_and_ech(name: &[u8]) -> Vec<u8> {
        let u16be = |n: usize| (n as u16).to_be_bytes();
        let mut sni_list = vec![0u8];
        sni_list.extend_from_slice(&u16be(name.len()));
        sni_list.extend_from_slice(name);
        let mut exts = vec![0, 0];
        exts.extend_from_slice(&u16be(sni_list.len() + 2));
        exts.extend_from_slice(&u16be(sni_list.len()));
        exts.extend_from_slice(&sni_list);
        exts.extend_from_slice(&[0xfe, 0x0d, 0, 4, 0, 1, 2, 3]);
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x5a; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        body.extend_from_slice(&u16be(exts.len()));
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&u16be(body.len()));
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&u16be(hs.len()));
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sni_with_ech_is_a_name_never_a_nameless_connection() {
        for name in [&b"shop.example.net"[..], b"ds.kaspersky.com"] {
            let mut c = Conn::new(ep(34, 50_003), ep(50, 443));
            c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
            c.seg(true, ACK, 2, &hello_with_sni_and_ech(name));
            assert!(
                c.what()
                    .iter()
                    .all(|o| !matches!(o, Observation::Nameless { .. })),
                "{:?}",
                c.what()
            );
        }
        // With a rule, the name is a sighting whose source keeps the ECH flag.
        let mut c = Conn::new(ep(34, 50_004), ep(50, 443));
        c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        c.seg(true, ACK, 2, &hello_with_sni_and_ech(b"ds.kaspersky.com"));
        assert!(matches!(
            c.what().as_slice(),
            [Observation::Name(s)] if s.source == NameSource::TlsSniEchOuter
        ));
    }

    #[test]
    fn nameless_conversation_carries_the_address_space() {
        // TLS without SNI to Kaspersky's address space, accepted: a conversation.
        let kl = Endpoint {
            ip: "77.74.176.10".parse().expect("ip"),
            port: 443,
        };
        let mut c = Conn::new(ep(61, 50_005), kl);
        c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        c.seg(true, ACK, 2, NO_SNI_HELLO);
        assert!(matches!(
            c.what().as_slice(),
            [Observation::Nameless {
                reason: NamelessReason::TlsNoSni,
                conversed: true,
                kaspersky_space: true,
                ..
            }]
        ));
        // The same to another address is a conversation outside it.
        let mut other = Conn::new(ep(61, 50_006), ep(50, 443));
        other.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        other.seg(true, ACK, 2, NO_SNI_HELLO);
        assert!(matches!(
            other.what().as_slice(),
            [Observation::Nameless {
                conversed: true,
                kaspersky_space: false,
                ..
            }]
        ));
    }

    #[test]
    fn absolute_form_request_and_update_path() {
        let mut c = Conn::new(ep(42, 50_007), ep(40, 8888));
        c.rules = RuleSet::parse(
            "t.toml",
            "[[rule]]\nid = \"dnl\"\nmatch = [\"pattern:dnl-##.geo.kaspersky.com\"]\n\
             category = \"update\"\nconfidence = \"high\"\nproduct = \"antivirus-or-oem\"\n\
             source = \"t\"\n",
        )
        .expect("rules");
        c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        let req = b"GET http://dnl-03.geo.kaspersky.com/bases/av/kdb/i386/base003.kdc HTTP/1.1\r\n\
            Host: dnl-03.geo.kaspersky.com\r\n\r\n";
        c.seg(true, ACK, 2, req);
        c.seg(
            false,
            ACK,
            10,
            b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nKLZF\x01\x02\x03\x04",
        );
        let what = c.what();
        assert!(
            matches!(what.as_slice(), [
                Observation::Name(s),
                Observation::UpdateRequest { path: update::UpdatePath::SignatureBases, rule: Some(_), .. },
                Observation::UpdatePayload { magic: update::UpdateMagic::Klzf, rule: Some(_), path: Some(update::UpdatePath::SignatureBases), .. },
            ] if s.source == NameSource::HttpAbsoluteUri),
            "{what:?}"
        );
        // Through the proxy to an IP literal in Kaspersky's space: judged by that address.
        let mut c = Conn::new(ep(49, 50_008), ep(40, 8888));
        c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        let req = b"GET http://77.74.176.10/bases/av/kdb/i386/base002.kdc HTTP/1.1\r\n\
            Host: 77.74.176.10\r\n\r\n";
        c.seg(true, ACK, 2, req);
        let what = c.what();
        assert!(
            matches!(
                what.as_slice(),
                [
                    Observation::OtherName(OtherNameSighting {
                        form: OtherNameForm::Literal(_),
                        source: NameSource::HttpAbsoluteUri,
                        kaspersky_space: true,
                        ..
                    }),
                    Observation::Nameless {
                        reason: NamelessReason::HttpNoName,
                        kaspersky_space: true,
                        ..
                    },
                    Observation::UpdateRequest {
                        kaspersky_space: true,
                        host: None,
                        ..
                    },
                ]
            ),
            "{what:?}"
        );
    }

    /// The observations of one accepted connection from `client` to `server` whose client
    /// sends `first`.
    fn accepted(client: Endpoint, server: Endpoint, first: &[u8]) -> Vec<Observation> {
        let mut c = Conn::new(client, server);
        c.seg(true, SYN, 1, b"").seg(false, SYN | ACK, 9, b"");
        c.seg(true, ACK, 2, first);
        c.out.into_iter().map(|o| o.what).collect()
    }

    /// The (address, kaspersky_space) of the literal among `what`, and the nameless
    /// connection's kaspersky_space.
    fn literal_and_nameless(what: &[Observation]) -> (Option<(IpAddr, bool)>, Option<bool>) {
        let literal = what.iter().find_map(|o| match o {
            Observation::OtherName(OtherNameSighting {
                form: OtherNameForm::Literal(addr),
                kaspersky_space,
                ..
            }) => Some((*addr, *kaspersky_space)),
            _ => None,
        });
        let nameless = what.iter().find_map(|o| match o {
            Observation::Nameless {
                kaspersky_space, ..
            } => Some(*kaspersky_space),
            _ => None,
        });
        (literal, nameless)
    }

    #[test]
    fn literals_are_judged_by_kaspersky_address_space_never_by_name_rules() {
        let kl: IpAddr = "77.74.176.10".parse().expect("ip");
        let kl_ep = Endpoint { ip: kl, port: 443 };
        // A TLS server name that is an address in Kaspersky's space: reported without
        // --all-names, and the connection is a nameless one to that space.
        let what = accepted(
            ep(62, 50_010),
            kl_ep,
            &hello_with_sni_and_ech(b"77.74.176.10"),
        );
        assert_eq!(
            literal_and_nameless(&what),
            (Some((kl, true)), Some(true)),
            "{what:?}"
        );
        // The literal is judged, not the server: a literal in Kaspersky's space sent to
        // another address (a transparent proxy) still counts; the reverse does not.
        let what = accepted(
            ep(62, 50_011),
            ep(50, 443),
            &hello_with_sni_and_ech(b"77.74.176.10"),
        );
        assert_eq!(literal_and_nameless(&what), (Some((kl, true)), Some(true)));
        let what = accepted(
            ep(62, 50_012),
            kl_ep,
            &hello_with_sni_and_ech(b"10.70.0.50"),
        );
        // Outside the space and without --all-names: counted, not kept.
        assert_eq!(literal_and_nameless(&what), (None, Some(false)), "{what:?}");
        // A Host literal, origin form, for an update path: the request is judged by it too.
        let what = accepted(
            ep(63, 50_013),
            Endpoint { ip: kl, port: 80 },
            b"GET /bases/av/kdb/i386/base002.kdc HTTP/1.1\r\nHost: 77.74.176.10\r\n\r\n",
        );
        assert_eq!(literal_and_nameless(&what), (Some((kl, true)), Some(true)));
        assert!(
            what.iter().any(|o| matches!(
                o,
                Observation::UpdateRequest {
                    kaspersky_space: true,
                    rule: None,
                    ..
                }
            )),
            "{what:?}"
        );
        // CONNECT to a literal through a proxy: judged by the literal (the tunnel's server is
        // the proxy, and its ClientHello may carry no name).
        let what = accepted(
            ep(64, 50_014),
            ep(40, 8888),
            b"CONNECT 77.74.176.10:443 HTTP/1.1\r\nHost: 77.74.176.10:443\r\n\r\n",
        );
        assert_eq!(literal_and_nameless(&what), (Some((kl, true)), Some(true)));
        // A connection the server never accepted is no conversation: the literal is not in
        // the space for it, as for a nameless one.
        let mut c = Conn::new(ep(65, 50_015), kl_ep);
        c.seg(true, SYN, 1, b"");
        c.seg(true, ACK, 2, &hello_with_sni_and_ech(b"77.74.176.10"));
        assert_eq!(
            literal_and_nameless(&c.what().into_iter().cloned().collect::<Vec<_>>()),
            (None, Some(false))
        );
    }

    /// The addresses that reach correlation for `name`: those of its matched name sightings
    /// and of its `DnsAnswer` observations (what the inventory remembers).
    fn correlated(out: &[Observed], name: &str) -> Vec<IpAddr> {
        let mut addrs: Vec<IpAddr> = Vec::new();
        for o in out {
            let (n, answers) = match &o.what {
                Observation::Name(s) if s.rule.is_some() => (s.name, &s.answers),
                Observation::DnsAnswer { name, answers, .. } => (*name, answers),
                _ => continue,
            };
            if n.to_string() == name {
                addrs.extend(answers.iter().copied());
            }
        }
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// A DNS-over-TCP exchange: the query for `qname` (unless `query` is false), then
    /// `response` cut at `cuts` (stream offsets, ascending). Returns the observations.
    fn dns_exchange(query: bool, qname: &str, response: &[u8], cuts: &[usize]) -> Vec<Observed> {
        let mut c = Conn::new(ep(31, 40_000), ep(53, 53));
        c.seg(true, SYN, 100, b"").seg(false, SYN | ACK, 500, b"");
        if query {
            c.seg(true, ACK, 101, &dns_tcp(false, qname, &[]));
        }
        let mut at = 0usize;
        for end in cuts.iter().copied().chain([response.len()]) {
            let piece = &response[at..end];
            c.seg(false, ACK, 501 + at as u32, piece);
            at = end;
        }
        c.out
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn dns_answer_address_in_a_later_segment_reaches_correlation() {
        // The question and the first A record in the first segment, the second A record in
        // the next: both addresses of the matched name are correlated.
        let response = dns_tcp(
            true,
            "ds.kaspersky.com",
            &[
                a("ds.kaspersky.com", [1, 1, 1, 1]),
                a("ds.kaspersky.com", [2, 2, 2, 2]),
            ],
        );
        let second = response.len() - (16 + 2 + 10 + 4);
        let out = dns_exchange(true, "ds.kaspersky.com", &response, &[second]);
        let want = vec![v4(1, 1, 1, 1), v4(2, 2, 2, 2)];
        assert_eq!(correlated(&out, "ds.kaspersky.com"), want);
        // The late address goes out as an answer of the matched rule, without facts.
        let late = out.iter().filter_map(|o| match &o.what {
            Observation::DnsAnswer {
                answers, dns_facts, ..
            } => Some((answers, dns_facts)),
            _ => None,
        });
        let late: Vec<_> = late.collect();
        assert_eq!(late.len(), 2, "{late:?}");
        assert_eq!(late[1].0, &vec![v4(2, 2, 2, 2)]);
        assert!(late[1].1.is_none());
    }

    #[test]
    fn dns_answer_addresses_are_correlated_however_the_response_is_cut() {
        // A matched question answered through a CNAME, and a matched CNAME target of an
        // unmatched question; every cut into two and three segments gives every address.
        let matched_question = dns_tcp(
            true,
            "ds.kaspersky.com",
            &[
                cname("ds.kaspersky.com", "edge.cdn.example"),
                a("edge.cdn.example", [3, 3, 3, 3]),
                a("edge.cdn.example", [4, 4, 4, 4]),
            ],
        );
        let matched_target = dns_tcp(
            true,
            "www.example.org",
            &[
                cname("www.example.org", "ds.kaspersky.com"),
                a("ds.kaspersky.com", [5, 5, 5, 5]),
                a("ds.kaspersky.com", [6, 6, 6, 6]),
            ],
        );
        let cases = [
            (
                "ds.kaspersky.com",
                &matched_question,
                [v4(3, 3, 3, 3), v4(4, 4, 4, 4)],
            ),
            (
                "www.example.org",
                &matched_target,
                [v4(5, 5, 5, 5), v4(6, 6, 6, 6)],
            ),
        ];
        // Each with and without its query seen first.
        let runs = cases.iter().flat_map(|case| [(case, true), (case, false)]);
        for ((qname, response, want), query) in runs {
            let len = response.len();
            for first in 1..len {
                let out = dns_exchange(query, qname, response, &[first]);
                assert_eq!(
                    correlated(&out, "ds.kaspersky.com"),
                    want,
                    "{qname} query {query} cut at {first}"
                );
                for second in (first + 1..len).step_by(7) {
                    let out = dns_exchange(query, qname, response, &[first, second]);
                    assert_eq!(
                        correlated(&out, "ds.kaspersky.com"),
                        want,
                        "{qname} query {query} cut at {first}, {second}"
                    );
                }
            }
        }
    }

    #[test]
    fn dns_message_longer_than_a_client_hello_window_is_read_whole() {
        // A 45 KB response (a 15 KB TXT record, then 1 000 A records, then the question's
        // own address) in 1 460-byte segments, in order and in reverse order: it completes,
        // so every name and address is reported, the last ones included.
        let txt: Vec<u8> = (0..60)
            .flat_map(|_| [[254u8].as_slice(), &[b't'; 254]].concat())
            .collect();
        let owners: Vec<String> = (0..1000).map(|i| format!("h{i}.example.net")).collect();
        let mut answers = vec![("big.example.net", 16, txt)];
        for (i, owner) in owners.iter().enumerate() {
            answers.push(a(owner, [10, 200, (i >> 8) as u8, i as u8]));
        }
        answers.push(a("ds.kaspersky.com", [10, 99, 0, 7]));
        let response = dns_tcp(true, "ds.kaspersky.com", &answers);
        assert!(response.len() > 40_000, "{}", response.len());
        let pieces: Vec<(usize, &[u8])> = response
            .chunks(1460)
            .enumerate()
            .map(|(k, p)| (k * 1460, p))
            .collect();
        for reverse in [false, true] {
            let mut c = Conn::new(ep(31, 40_000), ep(53, 53));
            c.all_names = true;
            c.seg(true, SYN, 100, b"").seg(false, SYN | ACK, 500, b"");
            c.seg(true, ACK, 101, &dns_tcp(false, "ds.kaspersky.com", &[]));
            let mut order = pieces.clone();
            if reverse {
                order.reverse();
            }
            for (at, piece) in order {
                c.seg(false, ACK, 501 + at as u32, piece);
            }
            let mut seen: Vec<(String, Vec<IpAddr>)> = c
                .out
                .iter()
                .filter_map(|o| match &o.what {
                    Observation::Name(s) if s.source == NameSource::DnsAnswer => {
                        Some((s.name.to_string(), s.answers.clone()))
                    }
                    _ => None,
                })
                .collect();
            seen.sort();
            let mut want: Vec<(String, Vec<IpAddr>)> = owners
                .iter()
                .enumerate()
                .map(|(i, o)| (o.clone(), vec![v4(10, 200, (i >> 8) as u8, i as u8)]))
                .collect();
            want.push(("big.example.net".into(), vec![]));
            want.sort();
            assert_eq!(seen.len(), want.len(), "reverse {reverse}");
            assert_eq!(seen, want, "reverse {reverse}");
            assert_eq!(
                correlated(&c.out, "ds.kaspersky.com"),
                [v4(10, 99, 0, 7)],
                "reverse {reverse}"
            );
            // Everything held went back to the budget.
            assert_eq!(c.budget.held(), 0, "reverse {reverse}");
        }
    }

    /// Every tracked TCP connection holds one of these until it is bypassed (a SYN flood fills
    /// the table with them): keep it small. Names live inline only where one is being built.
    #[test]
    fn flow_state_stays_small() {
        let size = std::mem::size_of::<TcpFlow>();
        assert!(size <= 384, "TcpFlow is {size} bytes");
    }
}
