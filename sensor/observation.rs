//! The stage contract: what a worker reports about the packets it handled.
//!
//! Producers: the flow stage ([`crate::flow`], through its emitter) turns what the parsers
//! found into [`Observed`] values: names seen (with the rule that matched, if any), DNS answers
//! for matched names, connections that carried no usable name, contacts with Kaspersky
//! Security Center ports and update payloads seen in HTTP bodies. Consumers: the inventory
//! (evidence, facts, verdicts) and the event writer, in capture order.
//!
//! Each observation carries the global sequence number of the packet that produced it
//! ([`ObsOrder`]), so the pipeline's collector can apply them in capture order whatever the
//! number of workers, and the [`PacketContext`] (time, input, client MAC, VLAN, tunnel) of that
//! packet. Rule indexes name rules of the set the producing worker used; the collector remaps
//! them when the set changed. Plain data: no behaviour beyond labels, nothing here reads bytes.

use std::net::IpAddr;

use crate::proto::update::UpdateMagic;
use crate::proto::{HostName, NameKind};
use crate::rules::RuleIdx;
use crate::time::Timestamp;

/// Position of an observation in the capture: the packet's global sequence number (0-based,
/// over all inputs) and the index of the observation among those of that packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObsOrder {
    pub packet: u64,
    pub sub: u32,
}

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// Link and tunnel context of the packet that carried the observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketContext {
    pub ts: Timestamp,
    /// Input (file or interface) index.
    pub input: u16,
    /// MAC address of the client side, when the client sent this packet over Ethernet.
    pub client_mac: Option<[u8; 6]>,
    pub vlan: Option<u16>,
    /// Outermost tunnel endpoints, when the packet was decapsulated.
    pub outer: Option<(IpAddr, IpAddr)>,
    /// Transport protocol number of the (innermost) packet: 6 TCP, 17 UDP. Observations are
    /// made while a packet of their own flow is processed, so this is their flow's transport.
    pub ip_proto: u8,
}

/// Which part of a protocol a name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameSource {
    DnsQuery,
    /// A DNS response whose query was not seen, or a CNAME target in a response.
    DnsAnswer,
    TlsSni,
    /// SNI of a ClientHello that also offered Encrypted Client Hello. Chrome offers a GREASE
    /// ECH extension on every connection, so this is usually the real name; with real ECH it
    /// is the outer, public name.
    TlsSniEchOuter,
    QuicSni,
    HttpHost,
    /// Authority of an HTTP `CONNECT` (a client talking through a proxy).
    HttpConnect,
}

impl NameSource {
    pub fn label(self) -> &'static str {
        match self {
            NameSource::DnsQuery => "dns-query",
            NameSource::DnsAnswer => "dns-answer",
            NameSource::TlsSni => "tls-sni",
            NameSource::TlsSniEchOuter => "tls-sni-ech",
            NameSource::QuicSni => "quic-sni",
            NameSource::HttpHost => "http-host",
            NameSource::HttpConnect => "http-connect",
        }
    }

    pub fn kind(self) -> NameKind {
        match self {
            NameSource::DnsQuery | NameSource::DnsAnswer => NameKind::Dns,
            NameSource::TlsSni | NameSource::TlsSniEchOuter => NameKind::Tls,
            NameSource::QuicSni => NameKind::Quic,
            NameSource::HttpHost | NameSource::HttpConnect => NameKind::Http,
        }
    }
}

/// Addresses a DNS response gave for a name (bounded).
pub const MAX_ANSWER_ADDRS: usize = 8;

/// A name seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameSighting {
    pub name: HostName,
    pub source: NameSource,
    pub client: Endpoint,
    pub server: Endpoint,
    pub rule: Option<RuleIdx>,
    /// For DNS responses: A/AAAA addresses answered for this name (after CNAMEs) and the
    /// smallest TTL among them.
    pub answers: Vec<IpAddr>,
    pub ttl: Option<u32>,
    /// For DNS names, when the pipeline is asked for them (EVE events): the message they were
    /// seen in (boxed: most observations have none).
    pub dns: Option<Box<DnsFacts>>,
}

/// Why a connection carried no usable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamelessReason {
    /// TLS ClientHello without server_name.
    TlsNoSni,
    /// TLS ClientHello with Encrypted Client Hello: the real name is hidden.
    TlsEch,
    /// The first client bytes are neither TLS nor HTTP.
    OtherProtocol,
    /// The connection ended without client data.
    NoData,
}

impl NamelessReason {
    pub fn label(self) -> &'static str {
        match self {
            NamelessReason::TlsNoSni => "tls-without-sni",
            NamelessReason::TlsEch => "tls-with-ech",
            NamelessReason::OtherProtocol => "no-tls-or-http",
            NamelessReason::NoData => "no-client-data",
        }
    }
}

/// One fact from a worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    Name(NameSighting),
    /// The response to a query whose name matched a rule and was already reported with the
    /// query: the addresses it gave (none only when DNS facts are wanted). Not a native event:
    /// it feeds DNS-answer correlation, and is an EVE `dns` answer record.
    DnsAnswer {
        name: HostName,
        rule: RuleIdx,
        client: Endpoint,
        server: Endpoint,
        answers: Vec<IpAddr>,
        ttl: Option<u32>,
        /// The response the addresses came from.
        dns: Option<Box<DnsFacts>>,
    },
    /// A TCP connection (or QUIC without SNI) that gave no usable name.
    Nameless {
        client: Endpoint,
        server: Endpoint,
        reason: NamelessReason,
    },
    /// A client contacted a Kaspersky Security Center port (`KSC_TCP_PORTS` and
    /// `KSC_UDP_PORTS` in `flow/tcp.rs`, with their sources).
    KscContact {
        client: Endpoint,
        server: Endpoint,
        udp: bool,
    },
    /// An HTTP response body started with a Kaspersky update-file magic.
    UpdatePayload {
        client: Endpoint,
        server: Endpoint,
        magic: UpdateMagic,
        host: Option<HostName>,
    },
}

/// An observation with its position and packet context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub order: ObsOrder,
    pub ctx: PacketContext,
    pub what: Observation,
}

// What a DNS message said around a reported name: its header, the question and the answer
// records, carried with DNS observations for outputs that describe the message itself (the
// EVE `dns` records of `output::eve`). The flow stage fills them from the parsed message only
// for names that become observations, so the common case (a name that matched nothing, or a
// response whose query was already reported without a match) copies nothing.

/// Answer records kept per message. A response to one question is normally a CNAME chain of
/// a few links and a handful of addresses (the flow stage follows at most 16 links and keeps
/// at most 8 addresses per name); 16 records hold that, and each costs about 520 bytes (two
/// inline host names), so one observation stays under 9 KB. Records past the cap are counted
/// in [`DnsFacts::answers_left_out`], and the output says so.
pub const MAX_DNS_FACT_RECORDS: usize = 16;

/// One question (RFC 1035 §4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    pub name: HostName,
    pub qtype: u16,
}

/// The data of an answer record, as far as the parser decodes it.
// The inline CNAME target makes every variant as large as a host name; records sit in a
// bounded Vec built only for reported names, where a box per target would add an allocation
// per CNAME for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsRecordData {
    /// A or AAAA (RFC 1035 §3.4.1, RFC 3596 §2.2).
    Addr(IpAddr),
    /// CNAME target (RFC 1035 §3.3.1).
    Name(HostName),
    /// Any other type, or A/AAAA/CNAME data that did not decode: the parser does not keep it.
    Undecoded,
}

/// One answer-section record (RFC 1035 §4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    pub owner: HostName,
    pub rtype: u16,
    pub ttl: u32,
    pub data: DnsRecordData,
}

/// The message a DNS name was seen in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsFacts {
    pub id: u16,
    /// The header flags word as sent (RFC 1035 §4.1.1, RFC 4035 §3.2).
    pub flags: u16,
    /// For a query: the question that held the name. For a response: its first question
    /// (what a response record describes), or none when it had no question the parser kept.
    pub question: Option<DnsQuestion>,
    /// A response's answer records whose owner is a host name, in message order.
    pub answers: Vec<DnsRecord>,
    /// Answer records past [`MAX_DNS_FACT_RECORDS`].
    pub answers_left_out: u16,
}

impl DnsFacts {
    /// QR bit: the message is a response.
    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// Opcode (RFC 1035 §4.1.1).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }

    /// The 4-bit header RCODE.
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
}
