//! The stage contract: what a worker reports about the packets it handled.
//!
//! Producers: the flow stage ([`crate::flow`], through its emitter) turns what the parsers
//! found into [`Observed`] values: names seen (with the rule that matched, if any, and for DNS
//! the query type), DNS answers for matched names, connections that carried no usable name
//! (with whether they were real conversations and whether the server is in Kaspersky's address
//! space), completed Kaspersky Security Center sessions and KSC datagrams, HTTP requests for
//! update paths and update payloads seen in HTTP bodies. Every rule or address lookup is made
//! once, in the worker, and rides along. Consumers: the inventory (evidence, facts, verdicts)
//! and the event writer, in capture order.
//!
//! Each observation carries the global sequence number of the packet that produced it
//! ([`ObsOrder`]), so the pipeline's collector can apply them in capture order whatever the
//! number of workers, and the [`PacketContext`] (time, input, client MAC, VLAN, tunnel) of that
//! packet. Rule indexes name rules of the set the producing worker used; the collector remaps
//! them when the set changed. Plain data: no behaviour beyond labels, nothing here reads bytes.

use std::net::IpAddr;

use crate::proto::update::{UpdateMagic, UpdatePath};
use crate::proto::{HostName, NameKind};
use crate::rules::RuleIdx;
use crate::time::Timestamp;

/// Kaspersky Security Center TCP ports on which a completed session is reported
/// ([`Observation::KscSession`]): the agent ports [`KSC_AGENT_PORTS`], the console ports
/// [`KSC_CONSOLE_PORTS`], mobile devices (13292), the KSN proxy (13111, 17111 HTTPS) and the
/// activation proxy (17000, 17100 for mobile devices). Every one is a port a managed device or
/// console connects *to* ("Ports used by Kaspersky Security Center",
/// https://support.kaspersky.com/help/KSC/13/en-US/158525.htm; KSC Open API
/// `KSNPROXY_SETTINGS`, https://support.kaspersky.com/help/KSC/14/KSCAPI/a00220.html, and
/// `KLSRV_ACTPRX_SSL_PORTS_ARRAY`, …/a00219.html; the table with every source is in
/// `rules/README.md`, "Kaspersky Security Center (on premises): ports and directions").
pub const KSC_TCP_PORTS: [u16; 9] = [
    13000, 14000, 13291, 13299, 13292, 13111, 17111, 17000, 17100,
];
/// Network Agent → Administration Server or distribution point: 13000 (TLS), 14000 (plain).
pub const KSC_AGENT_PORTS: [u16; 2] = [13000, 14000];
/// Administration Console (MMC, 13291) and Web Console server / OpenAPI clients (13299) →
/// Administration Server.
pub const KSC_CONSOLE_PORTS: [u16; 2] = [13291, 13299];
/// UDP 15000: a server or distribution point wakes an agent (the agent listens).
pub const KSC_WAKEUP_PORT: u16 = 15000;
/// UDP 15001: a distribution point multicasts to agents (the agents listen).
pub const KSC_MULTICAST_PORT: u16 = 15001;
/// UDP 13000: an agent tells its Administration Server the device shuts down (the server
/// listens).
pub const KSC_NOTICE_PORT: u16 = 13000;
/// The UDP ports of [`Observation::KscDatagram`].
pub const KSC_UDP_PORTS: [u16; 3] = [KSC_WAKEUP_PORT, KSC_MULTICAST_PORT, KSC_NOTICE_PORT];
/// TCP port ranges of the Kaspersky Security Center Cloud Console (`*.ksc.kaspersky.com`:
/// agents, mobile devices, activation proxy, klsctunnel;
/// https://support.kaspersky.com/KSC/CloudConsole/de-DE/158830.htm): a name under `ksc.kaspersky.com` on one of them is an agent of the Cloud
/// Console, on any other port (a browser on 443) the web portal.
pub const KSC_CLOUD_PORT_RANGES: [(u16, u16); 4] = [
    (23100, 23199),
    (23700, 23799),
    (27200, 27299),
    (29200, 29299),
];

/// Whether `port` is a Cloud Console agent port.
pub fn is_cloud_console_port(port: u16) -> bool {
    KSC_CLOUD_PORT_RANGES
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&port))
}

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
    /// Authority of an absolute-form request target (`GET http://name/path`, RFC 9112
    /// §3.2.2): a client talking through a forward proxy.
    HttpAbsoluteUri,
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
            NameSource::HttpAbsoluteUri => "http-absolute-uri",
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
            NameSource::HttpHost | NameSource::HttpConnect | NameSource::HttpAbsoluteUri => {
                NameKind::Http
            }
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
    /// For a DNS question (a query's, or a response's whose query was not seen): its QTYPE
    /// (RFC 1035 §3.2.2; 65 HTTPS and 64 SVCB from RFC 9460 §14.1). Only address lookups make
    /// the querier a client of the named service.
    pub qtype: Option<u16>,
    /// For DNS names, when the pipeline is asked for them (EVE events): the message they were
    /// seen in (boxed: most observations have none).
    pub dns_facts: Option<Box<DnsFacts>>,
}

/// What a name that is not a host name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherNameForm {
    /// An IPv4 or IPv6 address literal (an HTTP `Host` or request target, a TLS or QUIC server
    /// name): never matched against name rules, only against Kaspersky's address space
    /// (`kaspersky_space`).
    Literal(IpAddr),
    /// Bytes that a host name cannot hold (RFC 952, RFC 1123 §2.1): DNS service labels with
    /// spaces, tunnels, raw UTF-8, binary. Never matched against rules.
    NotHostName,
}

/// A name seen on the wire that is not a host name. Kept with `--all-names`, or when it is an
/// address literal in Kaspersky's address space (no name rule can match it); counted either
/// way. A literal's address-space evidence reaches the inventory through the connection's
/// [`Observation::Nameless`], judged by the same address, never twice.
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
    /// A literal whose address is in a `corroborate` network of the rule set (Kaspersky's own
    /// address space) on a connection the server accepted; always false for other names.
    pub kaspersky_space: bool,
    /// For DNS names, when the pipeline is asked for them (EVE events): the message they were
    /// seen in.
    pub dns_facts: Option<Box<DnsFacts>>,
}

/// Why a connection carried no usable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NamelessReason {
    /// TLS ClientHello without server_name.
    TlsNoSni,
    /// TLS ClientHello with an Encrypted Client Hello extension and no server_name at all: the
    /// real name is hidden. (A ClientHello with a server_name is a name sighting, ECH or not:
    /// Chrome sends a GREASE ECH extension beside the real name on every connection.)
    TlsEch,
    /// The first client bytes are neither TLS nor HTTP.
    OtherProtocol,
    /// An HTTP request whose host is absent or an IP literal.
    HttpNoName,
    /// The connection ended without client data.
    NoData,
}

impl NamelessReason {
    pub fn label(self) -> &'static str {
        match self {
            NamelessReason::TlsNoSni => "tls-without-sni",
            NamelessReason::TlsEch => "tls-with-ech",
            NamelessReason::OtherProtocol => "no-tls-or-http",
            NamelessReason::HttpNoName => "http-without-name",
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
        dns_facts: Option<Box<DnsFacts>>,
    },
    /// A TCP connection (or QUIC without SNI) that gave no usable name.
    Nameless {
        client: Endpoint,
        server: Endpoint,
        reason: NamelessReason,
        /// A real conversation: the server accepted the connection (SYN-ACK, or a QUIC Initial
        /// carrying a whole ClientHello) and the client sent data. A refused or unanswered SYN,
        /// or a connection closed before any client byte, is not: it can be attributed to no
        /// name and is no evidence of anything.
        conversed: bool,
        /// The server address is in a `corroborate` network of the rule set (Kaspersky's own
        /// address space). Looked up only for conversations.
        kaspersky_space: bool,
        /// The address literal the client named (a TLS or QUIC server name, a `Host` field, an
        /// absolute-form or CONNECT authority), which `kaspersky_space` was judged by instead
        /// of `server`: through a proxy, `server` is the proxy.
        origin: Option<IpAddr>,
    },
    /// A completed TCP session on a Kaspersky Security Center port ([`KSC_TCP_PORTS`]): the client's SYN, the server's SYN-ACK and at least
    /// one payload byte each way. Once per connection. Scans (bare SYNs, RSTs, SYN-ACKs without
    /// data) never produce one.
    KscSession {
        client: Endpoint,
        server: Endpoint,
    },
    /// A UDP datagram to a Kaspersky Security Center port ([`KSC_UDP_PORTS`]):
    /// 15000 a wake-up from a server or distribution point to an agent, 15001 a distribution
    /// point's multicast to agents, 13000 an agent's shutdown notice to its server. Only the
    /// destination port tells them apart: source ports are ephemeral.
    KscDatagram {
        src: Endpoint,
        dst: Endpoint,
        /// The destination is a group (broadcast, multicast, unspecified): by address, or by
        /// the Ethernet destination's individual/group bit (IEEE 802 §8.2, which is how a
        /// subnet-directed broadcast such as 10.0.0.255 shows). Never a host.
        dst_group: bool,
    },
    /// An HTTP request for a Kaspersky update path (`proto::update::update_path`).
    UpdateRequest {
        client: Endpoint,
        server: Endpoint,
        path: UpdatePath,
        /// The request's host (Host field, or the absolute-form / CONNECT authority), when it
        /// is a name, and the rule it matched (the lookup of the request's name sighting).
        host: Option<HostName>,
        rule: Option<RuleIdx>,
        /// The server address is in Kaspersky's address space (`corroborate` networks).
        kaspersky_space: bool,
        /// The request's host when it is an address literal, judged for `kaspersky_space`
        /// instead of `server` (through a proxy, `server` is the proxy).
        origin: Option<IpAddr>,
    },
    /// An HTTP response body started with a Kaspersky update-file magic. `host` is the name
    /// the request was for, `rule` the rule it matched (looked up once, by the worker).
    UpdatePayload {
        client: Endpoint,
        server: Endpoint,
        magic: UpdateMagic,
        /// The request's host name and the rule it matched (looked up once, with the request).
        host: Option<HostName>,
        rule: Option<RuleIdx>,
        /// The request's path, when it was an update path.
        path: Option<UpdatePath>,
        /// The server address is in Kaspersky's address space (`corroborate` networks).
        kaspersky_space: bool,
        /// As for [`Observation::UpdateRequest`]: the literal judged instead of `server`.
        origin: Option<IpAddr>,
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

/// One question (RFC 1035 §4.1.2). Its QTYPE does not depend on the bytes of its name, so a
/// question whose name is not a host name is kept too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    pub name: DnsName,
    pub qtype: u16,
}

/// A name of a DNS message as the facts keep it.
// The inline host name makes the enum as large as one; it sits in the facts of a reported
// name only (at most one question), where boxing it would add an allocation for nothing, as
// for [`DnsRecordData`].
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsName {
    Host(HostName),
    /// Bytes a host name cannot hold (RFC 952, RFC 1123 §2.1), in presentation form with
    /// escapes (RFC 1035 §5.1, `proto::escape_name`), as [`OtherNameSighting::text`].
    Other(Box<str>),
}

impl std::fmt::Display for DnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsName::Host(name) => name.fmt(f),
            DnsName::Other(text) => f.write_str(text),
        }
    }
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
