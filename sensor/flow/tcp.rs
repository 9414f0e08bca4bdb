//! TCP flows: which side is the client, what each direction carries, and when to stop looking.
//!
//! Contract: [`TcpFlow::on_segment`] takes one segment of a flow, feeds it through the
//! direction's [`StreamReassembler`] and the parser the stream's first bytes call for:
//! a TLS ClientHello (server name), HTTP/1.x request heads (Host, every request of a keep-alive
//! connection), HTTP response heads (the first bytes of each body, for update-file magic) or DNS
//! over TCP (RFC 7766 framing). A direction stops being parsed as soon as it can yield nothing
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
use crate::flow::udp::Scratch;
use crate::observation::{Endpoint, NameSource, NamelessReason, KSC_TCP_PORTS};
use crate::proto::dns::{self, TcpFrame};
use crate::proto::http::{self, BodyLength, ChunkedBody, RequestHead, ResponseHead, TargetForm};
use crate::proto::tls::{self, ClientHelloOutcome};
use crate::proto::update;
use crate::reason::ReasonCounts;

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
        MidstreamGaveUp => "midstream_gave_up",
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
    Dns,
    /// Nothing more to find in this direction.
    Done,
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
        let facts = &mut self.facts;
        let rst = seg.flags & TcpSegment::RST != 0;
        if syn {
            if !ack {
                if !facts.syn_seen {
                    facts.client = Some(side);
                    if KSC_TCP_PORTS.contains(&cx.dst.port) {
                        facts.session.set(Session::KSC_PENDING);
                    }
                }
                facts.syn_seen = true;
            } else if facts.syn_seen && facts.client == Some(side.other()) {
                facts.session.set(Session::SYNACK);
            }
            if let Some(dir) = self.dirs.get_mut(side.index()) {
                dir.reasm.on_syn(seg.seq);
            }
        }
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
        App::Dns => feed_dns(bytes, app, cx, emit, src, dst),
        App::Unknown | App::Done => bytes.len(),
    }
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
    let dns_port = cx.dst.port == 53 || cx.src.port == 53;
    if facts.client.is_none() && (looks_tls || looks_request || cx.dst.port == 53) {
        facts.client = Some(side);
    }
    let is_client = facts.client == Some(side);
    let app = if dns_port {
        App::Dns
    } else if is_client && looks_tls {
        App::Tls
    } else if is_client && looks_request {
        App::HttpRequests(HttpBody::Head)
    } else if !is_client && looks_response && facts.client.is_some() {
        App::HttpResponses(HttpBody::Head)
    } else {
        App::Done
    };
    if is_client && !facts.client_data_seen {
        facts.client_data_seen = true;
        if matches!(app, App::Done) && !midstream {
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
    let (host, head_len, body) = match http::parse_request_head(rest) {
        RequestHead::NeedMore => return HttpStep::NeedMore,
        RequestHead::NotHttp => return HttpStep::Done,
        RequestHead::Invalid(_) => return HttpStep::Invalid,
        RequestHead::Complete {
            host,
            head_len,
            body,
        } => (host, head_len, body),
    };
    let target = http::request_target(rest.get(..head_len).unwrap_or(rest));
    let form = target.map_or(TargetForm::Other, |t| t.form);
    let connect = form == TargetForm::Authority;
    let path = target.and_then(|t| update::update_path(t.path));
    // The one rule lookup of this request: its name sighting, its update request and its
    // response's payload all use it.
    let rule = host.as_ref().and_then(|name| emit.lookup(name));
    // A proxy fetches an absolute-form request's IP literal for the client: that address, not
    // the proxy's, is where the request goes.
    let origin = target
        .filter(|t| t.form == TargetForm::Absolute)
        .and_then(|t| http::authority_ip(t.authority));
    let facts = RequestFacts {
        host,
        rule,
        path,
        origin,
    };
    if let Some(name) = &host {
        let source = match form {
            TargetForm::Authority => NameSource::HttpConnect,
            TargetForm::Absolute => NameSource::HttpAbsoluteUri,
            TargetForm::Origin | TargetForm::Other => NameSource::HttpHost,
        };
        emit.name_with_rule(name, rule, source, client, server, &[], None, None);
    } else if !connect {
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
        let Some(rest) = bytes.get(used..) else {
            return used;
        };
        match dns::next_tcp_frame(rest) {
            TcpFrame::NeedMore => return used,
            TcpFrame::Message { msg, consumed } => {
                used = used.saturating_add(consumed.max(1));
                let parsed = dns::parse_message(msg, &mut cx.scratch.dns.message);
                if parsed.is_err() {
                    cx.skips.incr(TcpSkip::DnsInvalid);
                }
                crate::flow::udp::emit_dns(cx.scratch, src, dst, 6, emit);
                if parsed.is_err() && cx.scratch.dns.message.questions.is_empty() {
                    *app = App::Done;
                    return bytes.len();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::flow::emit::NameCounters;
    use crate::flow::table::FlowKey;
    use crate::observation::{Observation, Observed, PacketContext};
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
                false,
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

    /// Every tracked TCP connection holds one of these until it is bypassed (a SYN flood fills
    /// the table with them): keep it small. Names live inline only where one is being built.
    #[test]
    fn flow_state_stays_small() {
        let size = std::mem::size_of::<TcpFlow>();
        assert!(size <= 384, "TcpFlow is {size} bytes");
    }
}
