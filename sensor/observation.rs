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
}

/// Which part of a protocol a name came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameSource {
    /// A question of a query (for an UPDATE, its zone: RFC 2136 §2.3).
    DnsQuery,
    /// A DNS response whose query was not seen, a CNAME target in a response, or the owner of
    /// an answer record that is neither (a zone transfer, an mDNS announcement, RFC 6762 §8.3).
    DnsAnswer,
    /// The owner of a prerequisite or update record of an UPDATE (RFC 2136 §2.4, §2.5).
    DnsUpdate,
    /// The owner of an authority or additional record (zone names, glue): context that the
    /// client did not ask for. Never matched against rules; reported with `--all-names`.
    DnsRecord,
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
            NameSource::DnsUpdate => "dns-update",
            NameSource::DnsRecord => "dns-record",
            NameSource::TlsSni => "tls-sni",
            NameSource::TlsSniEchOuter => "tls-sni-ech",
            NameSource::QuicSni => "quic-sni",
            NameSource::HttpHost => "http-host",
            NameSource::HttpConnect => "http-connect",
        }
    }

    pub fn kind(self) -> NameKind {
        match self {
            NameSource::DnsQuery
            | NameSource::DnsAnswer
            | NameSource::DnsUpdate
            | NameSource::DnsRecord => NameKind::Dns,
            NameSource::TlsSni | NameSource::TlsSniEchOuter => NameKind::Tls,
            NameSource::QuicSni => NameKind::Quic,
            NameSource::HttpHost | NameSource::HttpConnect => NameKind::Http,
        }
    }
}

/// Which DNS service carried a message: told apart by port (RFC 6762 §3, RFC 4795 §2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DnsService {
    Unicast,
    Mdns,
    Llmnr,
}

/// What a DNS name observation adds: the message's opcode (RFC 1035 §4.1.1, RFC 6895 §2.2:
/// 0 QUERY, 1 IQUERY, 2 STATUS, 4 NOTIFY, 5 UPDATE, 6 DSO) and the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsInfo {
    pub opcode: u8,
    pub service: DnsService,
}

impl DnsInfo {
    /// The event `source` of a DNS name: the role, with the service in front for mDNS and
    /// LLMNR (`mdns-answer`, `llmnr-query`), so that they stay apart from unicast DNS.
    pub fn source_label(info: Option<DnsInfo>, source: NameSource) -> &'static str {
        let service = info.map_or(DnsService::Unicast, |i| i.service);
        match (service, source) {
            (DnsService::Mdns, NameSource::DnsQuery) => "mdns-query",
            (DnsService::Mdns, NameSource::DnsAnswer) => "mdns-answer",
            (DnsService::Mdns, NameSource::DnsRecord) => "mdns-record",
            (DnsService::Llmnr, NameSource::DnsQuery) => "llmnr-query",
            (DnsService::Llmnr, NameSource::DnsAnswer) => "llmnr-answer",
            (DnsService::Llmnr, NameSource::DnsRecord) => "llmnr-record",
            _ => source.label(),
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
    /// For DNS names: the message's opcode and service.
    pub dns: Option<DnsInfo>,
}

/// What a name that is not a host name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherNameForm {
    /// An IPv4 or IPv6 address literal (an HTTP `Host`, a TLS or QUIC server name): never
    /// matched against name rules; whoever checks addresses reads `addr`.
    Literal(IpAddr),
    /// Bytes that a host name cannot hold (RFC 952, RFC 1123 §2.1): DNS service labels with
    /// spaces, tunnels, raw UTF-8, binary. Never matched against rules.
    NotHostName,
}

/// A name seen on the wire that is not a host name. Kept only with `--all-names` (no rule can
/// match it), counted either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherNameSighting {
    /// The name as text: an address in its usual form for a literal; for other names their
    /// bytes with DNS presentation escapes (`proto::escape_name`).
    pub text: Box<str>,
    pub form: OtherNameForm,
    pub source: NameSource,
    pub client: Endpoint,
    pub server: Endpoint,
    pub dns: Option<DnsInfo>,
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
    /// A literal or odd name (not a host name).
    OtherName(OtherNameSighting),
    /// Addresses a DNS response gave for a name that matched a rule, when the name itself was
    /// already reported with its query. Not an event: it feeds DNS-answer correlation.
    DnsAnswer {
        name: HostName,
        rule: RuleIdx,
        client: Endpoint,
        server: Endpoint,
        answers: Vec<IpAddr>,
        ttl: Option<u32>,
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
