//! TCP flows: which side is the client, what each direction carries, and when to stop looking.
//!
//! Contract: [`TcpFlow::on_segment`] takes one segment of a flow, feeds it through the
//! direction's [`StreamReassembler`] and the parser the stream's first bytes call for:
//! a TLS ClientHello (server name), HTTP/1.x request heads (Host, every request of a keep-alive
//! connection), HTTP response heads (the first bytes of each body, for update-file magic) or DNS
//! over TCP (RFC 7766 framing). A direction stops being parsed as soon as it can yield nothing
//! more; when both have stopped, the flow asks to be bypassed. Bytes are copied only when a
//! message spans segments, and never more than the reassembler's cap.

use std::time::Duration;

use crate::decode::TcpSegment;
use crate::flow::emit::Emitter;
use crate::flow::reassembly::{Delivery, ReasmEvent, ReasmSkip, StreamReassembler};
use crate::flow::table::Side;
use crate::pipeline::observation::{Endpoint, NameSource, NamelessReason};
use crate::flow::udp::Scratch;
use crate::proto::dns::{self, TcpFrame};
use crate::proto::http::{self, BodyLength, ChunkedBody, RequestHead, ResponseHead};
use crate::proto::tls::{self, ClientHelloOutcome};
use crate::proto::HostName;
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
    MagicCheck { remaining: Option<u64>, chunked: Option<ChunkedBody>, host: Option<HostName> },
}

struct Direction {
    reasm: StreamReassembler,
    app: App,
}

impl Direction {
    fn new() -> Self {
        Direction { reasm: StreamReassembler::new(), app: App::Unknown }
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

/// State of one TCP connection while it can still yield a name.
pub struct TcpFlow {
    /// The side that opened the connection (sent the SYN or the first request).
    client: Option<Side>,
    syn_seen: bool,
    client_data_seen: bool,
    midstream_sniffs: u8,
    dirs: [Direction; 2],
    requests: Vec<PendingRequest>,
}

impl TcpFlow {
    pub fn new() -> Self {
        TcpFlow {
            client: None,
            syn_seen: false,
            client_data_seen: false,
            midstream_sniffs: 0,
            dirs: [Direction::new(), Direction::new()],
            requests: Vec::new(),
        }
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
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, cx: &mut SegmentCtx<'_>, emit: &mut Emitter<'_>) {
        let side = cx.side;
        let syn = seg.flags & TcpSegment::SYN != 0;
        let ack = seg.flags & TcpSegment::ACK != 0;
        if syn {
            if !ack {
                if self.client.is_none() || !self.syn_seen {
                    self.client = Some(side);
                }
                self.syn_seen = true;
                if KSC_TCP_PORTS.contains(&cx.dst.port) {
                    emit.ksc_contact(cx.src, cx.dst, false);
                }
            }
            if let Some(dir) = self.dirs.get_mut(side.index()) {
                dir.reasm.on_syn(seg.seq);
            }
        }
        if !seg.payload.is_empty() {
            self.on_data(seg, cx, emit);
        }
        let closing = seg.flags & (TcpSegment::FIN | TcpSegment::RST) != 0;
        if closing && self.syn_seen && !self.client_data_seen && self.client.is_some() {
            // The connection ends without a byte from the client: a name can't come any more.
            let (client, server) = self.endpoints(cx);
            emit.nameless(client, server, NamelessReason::NoData);
            self.client_data_seen = true;
            for dir in &mut self.dirs {
                dir.done();
            }
        }
    }

    /// (client, server) endpoints for this flow, from the current segment.
    fn endpoints(&self, cx: &SegmentCtx<'_>) -> (Endpoint, Endpoint) {
        if self.client == Some(cx.side) {
            (cx.src, cx.dst)
        } else {
            (cx.dst, cx.src)
        }
    }

    fn on_data(&mut self, seg: &TcpSegment<'_>, cx: &mut SegmentCtx<'_>, emit: &mut Emitter<'_>) {
        let side = cx.side;
        if self.dirs.get(side.index()).is_some_and(Direction::is_done) {
            return;
        }
        if matches!(self.dirs.get(side.index()).map(|d| &d.app), Some(App::Unknown)) {
            self.classify(side, seg.payload, cx, emit);
            if self.dirs.get(side.index()).is_some_and(Direction::is_done) {
                return;
            }
        }
        let Some(dir) = self.dirs.get_mut(side.index()) else { return };
        let Direction { reasm, app } = dir;
        let (src, dst) = (cx.src, cx.dst);
        let requests = &mut self.requests;
        let mut handler = |bytes: &[u8], cx: &mut SegmentCtx<'_>, emit: &mut Emitter<'_>| -> usize {
            match app {
                App::Tls => feed_tls(bytes, app, cx, emit, src, dst),
                App::HttpRequests(_) => feed_http_requests(bytes, app, requests, cx, emit, src, dst),
                App::HttpResponses(_) => feed_http_responses(bytes, app, requests, cx, emit, src, dst),
                App::Dns => feed_dns(bytes, app, cx, emit, src, dst),
                App::Unknown | App::Done => bytes.len(),
            }
        };
        // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
        let syn = seg.flags & TcpSegment::SYN != 0;
        let seq = if syn { seg.seq.wrapping_add(1) } else { seg.seq };
        match reasm.push(seq, seg.payload) {
            Delivery::InPlace(bytes) => {
                let used = handler(bytes, cx, emit);
                if !matches!(app, App::Done) {
                    if let Some(tail) = seg.payload.get(used..) {
                        if !tail.is_empty() && reasm.keep(tail).is_err() {
                            cx.skips.incr(TcpSkip::ReassemblyOverflow);
                            *app = App::Done;
                        }
                    }
                }
            }
            Delivery::Buffered(bytes) => {
                let used = handler(bytes, cx, emit);
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
        if matches!(app, App::Done) {
            reasm.finish();
        }
    }

    /// Decides what a direction carries from its first data bytes.
    fn classify(&mut self, side: Side, payload: &[u8], cx: &mut SegmentCtx<'_>, emit: &mut Emitter<'_>) {
        let midstream = !self.syn_seen;
        let looks_tls = looks_like_client_hello(payload);
        let looks_request = !matches!(http::parse_request_head(payload), RequestHead::NotHttp);
        let looks_response = !matches!(http::parse_response_head(payload), ResponseHead::NotHttp);
        let dns_port = cx.dst.port == 53 || cx.src.port == 53;
        if self.client.is_none() && (looks_tls || looks_request || (dns_port && cx.dst.port == 53)) {
            self.client = Some(side);
        }
        let is_client = self.client == Some(side);
        let app = if dns_port {
            App::Dns
        } else if is_client && looks_tls {
            App::Tls
        } else if is_client && looks_request {
            App::HttpRequests(HttpBody::Head)
        } else if !is_client && looks_response && !self.requests.is_empty() {
            App::HttpResponses(HttpBody::Head)
        } else if !is_client && looks_response && self.client.is_some() {
            // A response before we saw its request (flow picked up mid-stream).
            App::HttpResponses(HttpBody::Head)
        } else {
            App::Done
        };
        if is_client && !self.client_data_seen {
            self.client_data_seen = true;
            if matches!(app, App::Done) && !midstream {
                emit.nameless(cx.src, cx.dst, NamelessReason::OtherProtocol);
            }
        }
        let give_up_midstream = midstream && matches!(app, App::Done) && {
            self.midstream_sniffs = self.midstream_sniffs.saturating_add(1);
            self.midstream_sniffs < MIDSTREAM_SNIFF_SEGMENTS
        };
        if let Some(dir) = self.dirs.get_mut(side.index()) {
            if give_up_midstream {
                // Stay Unknown: the next segment may start a request.
                return;
            }
            if midstream && matches!(app, App::Done) {
                cx.skips.incr(TcpSkip::MidstreamGaveUp);
            }
            let done = matches!(app, App::Done);
            dir.app = app;
            if done {
                dir.reasm.finish();
            }
        }
        // The server side of a TLS flow carries nothing we read; nor does a non-HTTP server.
        if let Some(client) = self.client {
            let client_app_is_http =
                matches!(self.dirs.get(client.index()).map(|d| &d.app), Some(App::HttpRequests(_)));
            let client_done = self.dirs.get(client.index()).is_some_and(Direction::is_done);
            let client_is_tls = matches!(self.dirs.get(client.index()).map(|d| &d.app), Some(App::Tls));
            if let Some(server_dir) = self.dirs.get_mut(client.other().index()) {
                let server_unknown = matches!(server_dir.app, App::Unknown);
                if server_unknown && (client_is_tls || (client_done && !client_app_is_http)) && !dns_port {
                    server_dir.done();
                }
            }
        }
    }
}

impl Default for TcpFlow {
    fn default() -> Self {
        Self::new()
    }
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
            let source = if ech { NameSource::TlsSniEchOuter } else { NameSource::TlsSni };
            emit.name(name, source, client, server, &[], None);
            if ech {
                emit.nameless(client, server, NamelessReason::TlsEch);
            }
        }
        ClientHelloOutcome::NoSni { ech } => {
            let reason = if ech { NamelessReason::TlsEch } else { NamelessReason::TlsNoSni };
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
            let n = usize::try_from(*left).unwrap_or(usize::MAX).min(bytes.len());
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
        let App::HttpRequests(state) = app else { return used };
        let Some(rest) = bytes.get(used..) else { return used };
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
                RequestHead::Complete { host, head_len, body } => {
                    let connect = rest.starts_with(b"CONNECT ");
                    if let Some(name) = host {
                        let source = if connect { NameSource::HttpConnect } else { NameSource::HttpHost };
                        emit.name(name, source, client, server, &[], None);
                    } else if !connect {
                        emit.nameless(client, server, NamelessReason::OtherProtocol);
                    }
                    if requests.len() < MAX_PENDING_REQUESTS {
                        requests.push(PendingRequest { host, head: rest.starts_with(b"HEAD ") });
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
                        // What follows is a tunnel (usually TLS to the named host): not HTTP.
                        *app = App::Done;
                        return bytes.len();
                    }
                }
            },
            _ => {
                let (n, ended) = skip_body(state, rest);
                used = used.saturating_add(n);
                if ended {
                    *state = HttpBody::Head;
                } else if n == 0 {
                    return used;
                }
            }
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
        let App::HttpResponses(state) = app else { return used };
        let Some(rest) = bytes.get(used..) else { return used };
        if rest.is_empty() {
            return used;
        }
        match state {
            HttpBody::Head => match http::parse_response_head(rest) {
                ResponseHead::NeedMore => return used,
                ResponseHead::NotHttp | ResponseHead::Invalid(_) => {
                    if !matches!(http::parse_response_head(rest), ResponseHead::NotHttp) {
                        cx.skips.incr(TcpSkip::HttpInvalid);
                    }
                    *app = App::Done;
                    return bytes.len();
                }
                ResponseHead::Complete { status, head_len, body } => {
                    used = used.saturating_add(head_len.max(1));
                    let request = if status >= 200 && !requests.is_empty() {
                        Some(requests.remove(0))
                    } else {
                        None
                    };
                    let host = request.and_then(|r| r.host);
                    let no_body = request.is_some_and(|r| r.head);
                    *state = match body {
                        _ if no_body => HttpBody::Head,
                        BodyLength::None | BodyLength::ContentLength(0) => HttpBody::Head,
                        BodyLength::ContentLength(n) => {
                            HttpBody::MagicCheck { remaining: Some(n), chunked: None, host }
                        }
                        BodyLength::Chunked => HttpBody::MagicCheck {
                            remaining: None,
                            chunked: Some(ChunkedBody::default()),
                            host,
                        },
                        BodyLength::UntilClose => {
                            HttpBody::MagicCheck { remaining: None, chunked: None, host }
                        }
                    };
                }
            },
            HttpBody::MagicCheck { remaining, chunked, host } => {
                if let Some(chunked) = chunked {
                    // Chunked: let the decoder find the first data bytes.
                    let progress = chunked.consume(rest);
                    let start = chunked.first_data();
                    if start.len() >= MAGIC_LEN || progress.done {
                        if let Some(magic) = http::update_payload_magic(start) {
                            emit.update_payload(client, server, magic, *host);
                        }
                        let chunked = std::mem::take(chunked);
                        *state = if progress.done { HttpBody::Head } else { HttpBody::Chunked(chunked) };
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
                if let Some(magic) = rest.get(..want).and_then(http::update_payload_magic) {
                    emit.update_payload(client, server, magic, *host);
                }
                match remaining {
                    Some(n) => {
                        let skip = usize::try_from(*n).unwrap_or(usize::MAX).min(rest.len());
                        let left = *n - skip as u64;
                        used = used.saturating_add(skip);
                        *state = if left == 0 { HttpBody::Head } else { HttpBody::Length(left) };
                    }
                    None => {
                        // Body until close: nothing more to read in this direction.
                        *app = App::Done;
                        return bytes.len();
                    }
                }
            }
            _ => {
                let (n, ended) = skip_body(state, rest);
                used = used.saturating_add(n);
                if ended {
                    *state = HttpBody::Head;
                } else if n == 0 {
                    return used;
                }
            }
        }
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
        let Some(rest) = bytes.get(used..) else { return used };
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
