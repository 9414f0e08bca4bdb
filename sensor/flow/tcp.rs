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

use std::time::Duration;

use crate::decode::TcpSegment;
use crate::flow::emit::Emitter;
use crate::flow::reassembly::{Delivery, ReasmEvent, ReasmSkip, StreamReassembler};
use crate::flow::table::Side;
use crate::flow::udp::Scratch;
use crate::observation::{Endpoint, NameSource, NamelessReason, OtherNameForm};
use crate::proto::dns::{self, TcpFrame};
use crate::proto::http::{self, BodyLength, ChunkedBody, RequestHead, ResponseHead};
use crate::proto::tls::{self, ClientHelloOutcome};
use crate::proto::update;
use crate::proto::HostName;
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

/// TCP ports of Kaspersky Security Center: Network Agent (13000 TLS, 14000), KSN proxy (13111,
/// 17111 HTTPS). Research §1.8 and §1.2 (S6, S11).
pub const KSC_TCP_PORTS: [u16; 4] = [13000, 14000, 13111, 17111];
/// UDP ports of Kaspersky Security Center: Network Agent (15000), KSN proxy (15111).
pub const KSC_UDP_PORTS: [u16; 2] = [15000, 15111];

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
    /// Names of the current message already emitted from a prefix of it.
    emitted: u32,
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
        host: Option<Box<HostName>>,
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
    host: Option<HostName>,
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
}

/// What a flow knows beyond its two directions.
struct FlowFacts {
    /// The side that opened the connection (sent the SYN or the first request).
    client: Option<Side>,
    syn_seen: bool,
    client_data_seen: bool,
    midstream_sniffs: u8,
    requests: Vec<PendingRequest>,
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

    /// Whether both directions are finished: the flow can be bypassed.
    pub fn is_finished(&self) -> bool {
        self.dirs.iter().all(Direction::is_done)
    }

    /// Bytes held by both reassemblers.
    pub fn buffered_bytes(&self) -> usize {
        self.dirs.iter().map(|d| d.reasm.buffered_bytes()).sum()
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
        if syn {
            if !ack {
                if !facts.syn_seen {
                    facts.client = Some(side);
                } else if facts.client.is_some_and(|c| c != side) && !facts.client_data_seen {
                    // A SYN from each side: a simultaneous open (RFC 9293 §3.5, figure 8).
                    // Neither is the client by the handshake; the first bytes will tell.
                    facts.client = None;
                }
                facts.syn_seen = true;
                if KSC_TCP_PORTS.contains(&cx.dst.port) {
                    emit.ksc_contact(cx.src, cx.dst, false);
                }
            }
            if let Some(dir) = self.dirs.get_mut(side.index()) {
                dir.reasm.on_syn(seg.seq);
            }
        }
        // A reset carries no data worth reading (RFC 9293 §3.5.3 diagnostic payloads).
        if !seg.payload.is_empty() && seg.flags & TcpSegment::RST == 0 {
            self.on_data(seg, cx, emit);
        }
        let closing = seg.flags & (TcpSegment::FIN | TcpSegment::RST) != 0;
        if closing {
            // No client bytes follow the client's FIN, and none follow a reset: a scan for an
            // upgrade ends there.
            let reset = seg.flags & TcpSegment::RST != 0;
            for (i, dir) in self.dirs.iter_mut().enumerate() {
                if matches!(dir.app, App::Upgrade(_)) && (reset || i == side.index()) {
                    dir.done();
                }
            }
        }
        let facts = &mut self.facts;
        if closing && facts.syn_seen && !facts.client_data_seen {
            if let Some(client) = facts.client {
                // The connection ends without a byte from the client: no name can come now.
                let (c, s) = if client == side {
                    (cx.src, cx.dst)
                } else {
                    (cx.dst, cx.src)
                };
                emit.nameless(c, s, NamelessReason::NoData);
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
        match reasm.push(seq, seg.payload) {
            Delivery::InPlace(bytes) => {
                let used = deliver(facts, app, &mut other.app, bytes, cx, emit);
                if !matches!(app, App::Done | App::Unknown) {
                    // In place means `bytes` is this segment's payload.
                    if let Some(tail) = seg.payload.get(used..) {
                        if !tail.is_empty() && reasm.keep(tail).is_err() {
                            cx.skips.incr(TcpSkip::ReassemblyOverflow);
                            *app = App::Done;
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
    if let App::Upgrade(_) = app {
        let used = scan_for_upgrade(bytes, app, cx);
        if !matches!(app, App::Tls) {
            return used;
        }
        let rest = bytes.get(used..).unwrap_or(&[]);
        return used.saturating_add(feed_tls(rest, app, cx, emit, src, dst));
    }
    match app {
        App::Tls => feed_tls(bytes, app, cx, emit, src, dst),
        App::HttpRequests(_) => {
            feed_http_requests(bytes, app, &mut facts.requests, cx, emit, src, dst)
        }
        App::HttpResponses(_) => {
            feed_http_responses(bytes, app, &mut facts.requests, cx, emit, src, dst)
        }
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
            emit.nameless(cx.src, cx.dst, NamelessReason::OtherProtocol);
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

impl Default for TcpFlow {
    fn default() -> Self {
        Self::new()
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
) -> usize {
    match tls::sni_from_stream(bytes, &mut cx.scratch.tls) {
        ClientHelloOutcome::NeedMore => return 0,
        ClientHelloOutcome::Sni { name, ech } => {
            let source = if ech {
                NameSource::TlsSniEchOuter
            } else {
                NameSource::TlsSni
            };
            // Chrome offers a GREASE ECH extension on every connection, so ECH alone does not
            // mean the name is hidden; when it really is, the SNI is the outer public name and
            // the connection may still be attributed through DNS answers.
            if ech && !emit.is_detection(&name) {
                emit.nameless(client, server, NamelessReason::TlsEch);
            }
            emit.name(name, source, client, server, &[], None);
        }
        ClientHelloOutcome::Literal { addr, ech } => {
            // An address, not a host name: reported as such, and the connection counts as
            // one without a name (rules match names; addresses are checked elsewhere).
            let source = if ech {
                NameSource::TlsSniEchOuter
            } else {
                NameSource::TlsSni
            };
            emit.other_name(
                OtherNameForm::Literal(addr),
                || addr.to_string(),
                source,
                client,
                server,
            );
            emit.nameless(client, server, NamelessReason::TlsNoSni);
        }
        ClientHelloOutcome::NoSni { ech } => {
            let reason = if ech {
                NamelessReason::TlsEch
            } else {
                NamelessReason::TlsNoSni
            };
            emit.nameless(client, server, reason);
        }
        ClientHelloOutcome::NotClientHello => {
            emit.nameless(client, server, NamelessReason::OtherProtocol);
        }
        ClientHelloOutcome::Invalid(_) => {
            cx.skips.incr(TcpSkip::TlsInvalid);
            emit.nameless(client, server, NamelessReason::TlsNoSni);
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

/// One body-skipping step from `rest`: the new consumed count, or `None` when more bytes are
/// needed. A finished body puts the direction back to expecting a head.
fn skip_step(state: &mut HttpBody, rest: &[u8], used: usize) -> Option<usize> {
    let (n, ended) = skip_body(state, rest);
    if ended {
        *state = HttpBody::Head;
    } else if n == 0 {
        return None;
    }
    Some(used.saturating_add(n))
}

fn feed_http_requests(
    bytes: &[u8],
    app: &mut App,
    requests: &mut Vec<PendingRequest>,
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
    client: Endpoint,
    server: Endpoint,
) -> usize {
    let mut used = 0usize;
    loop {
        let App::HttpRequests(state) = app else {
            return used;
        };
        let Some(rest) = bytes.get(used..) else {
            return used;
        };
        if rest.is_empty() {
            return used;
        }
        match state {
            HttpBody::Head => match http::parse_request_head(rest) {
                RequestHead::NeedMore => return used,
                RequestHead::NotHttp => {
                    *app = App::Done;
                    return bytes.len();
                }
                RequestHead::Invalid(_) => {
                    cx.skips.incr(TcpSkip::HttpInvalid);
                    *app = App::Done;
                    return bytes.len();
                }
                RequestHead::Complete {
                    host,
                    literal,
                    head_len,
                    body,
                } => {
                    let connect = rest.starts_with(b"CONNECT ");
                    let source = if connect {
                        NameSource::HttpConnect
                    } else {
                        NameSource::HttpHost
                    };
                    if let Some(name) = host {
                        emit.name(name, source, client, server, &[], None);
                    } else {
                        if let Some(addr) = literal {
                            emit.other_name(
                                OtherNameForm::Literal(addr),
                                || addr.to_string(),
                                source,
                                client,
                                server,
                            );
                        }
                        if !connect {
                            emit.nameless(client, server, NamelessReason::OtherProtocol);
                        }
                    }
                    if requests.len() < MAX_PENDING_REQUESTS {
                        requests.push(PendingRequest {
                            host,
                            head: rest.starts_with(b"HEAD "),
                        });
                    }
                    used = used.saturating_add(head_len.max(1));
                    *state = match body {
                        BodyLength::None => HttpBody::Head,
                        BodyLength::ContentLength(0) => HttpBody::Head,
                        BodyLength::ContentLength(n) => HttpBody::Length(n),
                        BodyLength::Chunked => HttpBody::Chunked(ChunkedBody::default()),
                        BodyLength::UntilClose => {
                            *app = App::Done;
                            return bytes.len();
                        }
                    };
                    if connect {
                        // What follows is a tunnel, usually TLS to the named host: read it as a
                        // fresh stream.
                        *app = App::Unknown;
                        facts_reset_for_tunnel(requests);
                        return used;
                    }
                }
            },
            _ => match skip_step(state, rest, used) {
                Some(next) => used = next,
                None => return used,
            },
        }
    }
}

fn feed_http_responses(
    bytes: &[u8],
    app: &mut App,
    requests: &mut Vec<PendingRequest>,
    cx: &mut SegmentCtx<'_>,
    emit: &mut Emitter<'_>,
    server: Endpoint,
    client: Endpoint,
) -> usize {
    let mut used = 0usize;
    loop {
        let App::HttpResponses(state) = app else {
            return used;
        };
        let Some(rest) = bytes.get(used..) else {
            return used;
        };
        if rest.is_empty() {
            return used;
        }
        match state {
            HttpBody::Head => match http::parse_response_head(rest) {
                ResponseHead::NeedMore => return used,
                ResponseHead::NotHttp => {
                    *app = App::Done;
                    return bytes.len();
                }
                ResponseHead::Invalid(_) => {
                    cx.skips.incr(TcpSkip::HttpInvalid);
                    *app = App::Done;
                    return bytes.len();
                }
                ResponseHead::Complete {
                    status,
                    head_len,
                    body,
                } => {
                    used = used.saturating_add(head_len.max(1));
                    let request = if status >= 200 && !requests.is_empty() {
                        Some(requests.remove(0))
                    } else {
                        None
                    };
                    let host = request.and_then(|r| r.host).map(Box::new);
                    let no_body = request.is_some_and(|r| r.head);
                    *state = match body {
                        _ if no_body => HttpBody::Head,
                        BodyLength::None | BodyLength::ContentLength(0) => HttpBody::Head,
                        BodyLength::ContentLength(n) => HttpBody::MagicCheck {
                            remaining: Some(n),
                            chunked: None,
                            host,
                        },
                        BodyLength::Chunked => HttpBody::MagicCheck {
                            remaining: None,
                            chunked: Some(ChunkedBody::default()),
                            host,
                        },
                        BodyLength::UntilClose => HttpBody::MagicCheck {
                            remaining: None,
                            chunked: None,
                            host,
                        },
                    };
                }
            },
            HttpBody::MagicCheck {
                remaining,
                chunked,
                host,
            } => {
                if let Some(chunked) = chunked {
                    // Chunked: let the decoder find the first data bytes.
                    let progress = chunked.consume(rest);
                    let start = chunked.first_data();
                    if start.len() >= MAGIC_LEN || progress.done {
                        if let Some(magic) = update::update_payload_magic(start) {
                            emit.update_payload(client, server, magic, host.as_deref().copied());
                        }
                        let chunked = std::mem::take(chunked);
                        *state = if progress.done {
                            HttpBody::Head
                        } else {
                            HttpBody::Chunked(chunked)
                        };
                    }
                    used = used.saturating_add(progress.consumed);
                    if progress.consumed == 0 {
                        return used;
                    }
                    continue;
                }
                let want = match remaining {
                    Some(n) => usize::try_from(*n).unwrap_or(usize::MAX).min(MAGIC_LEN),
                    None => MAGIC_LEN,
                };
                if rest.len() < want {
                    return used;
                }
                if let Some(magic) = rest.get(..want).and_then(update::update_payload_magic) {
                    emit.update_payload(client, server, magic, host.as_deref().copied());
                }
                match remaining {
                    Some(n) => {
                        let skip = usize::try_from(*n).unwrap_or(usize::MAX).min(rest.len());
                        let left = *n - skip as u64;
                        used = used.saturating_add(skip);
                        *state = if left == 0 {
                            HttpBody::Head
                        } else {
                            HttpBody::Length(left)
                        };
                    }
                    None => {
                        // Body until close: nothing more to read in this direction.
                        *app = App::Done;
                        return bytes.len();
                    }
                }
            }
            _ => match skip_step(state, rest, used) {
                Some(next) => used = next,
                None => return used,
            },
        }
    }
}

/// Cuts DNS messages out of the stream (RFC 1035 §4.2.2) and emits their names. A message whose
/// end has not arrived yet is read as far as it goes, so that a stream that stops inside it
/// (a capture cut short, a lost segment) still gives every name before the cut: names are
/// numbered in message order and each is emitted once, by the first read that holds it
/// ([`crate::flow::udp::emit_dns`]). A message is read again at most
/// [`MAX_PARTIAL_DNS_READS`] times before it is complete: each read is bounded by the 64 KiB
/// message length, and DNS over TCP rarely spans more than a few segments (zone transfers).
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
                let from = stream.emitted as usize;
                let listed = crate::flow::udp::emit_dns(cx.scratch, src, dst, 6, emit, from);
                stream.emitted = u32::try_from(listed.max(from)).unwrap_or(u32::MAX);
                return used;
            }
            TcpFrame::Message { msg, consumed } => {
                used = used.saturating_add(consumed.max(1));
                let from = stream.emitted as usize;
                *stream = DnsStream::default();
                let parsed = dns::parse_message(msg, &mut cx.scratch.dns.message);
                if parsed.is_err() {
                    cx.skips.incr(TcpSkip::DnsInvalid);
                }
                crate::flow::udp::emit_dns(cx.scratch, src, dst, 6, emit, from);
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
    use super::*;
    use crate::flow::reassembly::{ReasmEvent, ReasmSkip};
    use std::net::{IpAddr, Ipv4Addr};

    fn endpoint(port: u16) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
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
        let mut cx = SegmentCtx {
            side: Side::Lo,
            src: endpoint(40000),
            dst: endpoint(25),
            scratch: &mut scratch,
            skips: &mut skips,
            reasm_skips: &mut reasm_skips,
            reasm_events: &mut reasm_events,
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

    /// Every tracked TCP connection holds one of these until it is bypassed (a SYN flood fills
    /// the table with them): keep it small. Names live inline only where one is being built.
    #[test]
    fn flow_state_stays_small() {
        let size = std::mem::size_of::<TcpFlow>();
        assert!(size <= 384, "TcpFlow is {size} bytes");
    }
}
