//! Decode stage: link, network, tunnel and transport headers of one packet.
//!
//! Contract: [`decode_packet`] reads a packet as captured (possibly cut by the snap length) and
//! fills a [`Decoded`] view that borrows the packet bytes; it never copies payload and never
//! allocates. It descends through VLAN tags, MPLS, PPPoE and tunnels (GRE, ERSPAN, VXLAN, GENEVE,
//! IP-in-IP, GTP-U, Teredo) down to the innermost IP packet, at most [`MAX_TUNNEL_DEPTH`] levels,
//! keeping each outer IP pair as context. An IP fragment stops the walk with [`L4::Fragment`]; the
//! flow stage reassembles it and resumes with [`decode_ip_payload`]. Failures are counted
//! [`DecodeSkip`] reasons; unknown protocol numbers are values ([`L4::Other`]), not failures.
//! Checksums are not verified here (see [`transport_checksum_ok`]).

use std::net::IpAddr;

use crate::capture::LinkType;

/// Tunnel levels decapsulated before a packet is skipped as `tunnel_too_deep`. Real span traffic
/// has at most two (ERSPAN carrying VXLAN, say); four leaves room and bounds work per packet.
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// Link-layer context of the outermost frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkInfo {
    pub src_mac: Option<[u8; 6]>,
    pub dst_mac: Option<[u8; 6]>,
    /// Innermost 802.1Q/802.1ad VLAN id of the outermost Ethernet frame, if tagged.
    pub vlan: Option<u16>,
}

/// Encapsulation kinds, for outer context and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    IpInIp,
    GtpU,
    Teredo,
}

impl TunnelKind {
    pub fn label(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::GtpU => "gtpu",
            TunnelKind::Teredo => "teredo",
        }
    }
}

/// One outer IP header left behind when descending into a tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHop {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub tunnel: TunnelKind,
}

/// The innermost IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Transport protocol number (after IPv6 extension headers).
    pub proto: u8,
}

/// A TCP segment view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// Raw flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    /// Payload bytes actually captured (may be shorter than on the wire).
    pub payload: &'a [u8],
    /// Payload length on the wire (from the IP length), >= `payload.len()`.
    pub wire_payload_len: u32,
}

impl TcpSegment<'_> {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// A UDP datagram view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

/// An IP fragment: the flow stage reassembles these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpFragment<'a> {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Byte offset of `payload` in the original datagram's payload.
    pub offset: u32,
    pub more_fragments: bool,
    /// Protocol of the reassembled payload (IPv4 protocol / IPv6 next header after the fragment
    /// header).
    pub proto: u8,
    pub payload: &'a [u8],
}

/// What follows the innermost IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
    Fragment(IpFragment<'a>),
    /// Another protocol (ICMP, ESP, …): counted, not parsed.
    Other {
        proto: u8,
    },
}

/// A decoded packet. Borrowed from the packet bytes; reused across packets by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Decoded<'a> {
    pub link: LinkInfo,
    /// Outer IP headers, outermost first; `outer_len` of them are valid.
    pub outer: [Option<OuterHop>; MAX_TUNNEL_DEPTH],
    pub outer_len: u8,
    pub ip: IpInfo,
    pub l4: L4<'a>,
    /// The IP packet (header and payload) of the innermost layer, as captured; used for
    /// checksums and to copy fragments.
    pub ip_packet: &'a [u8],
    /// The snap length cut this packet short.
    pub truncated: bool,
}

crate::reason_enum! {
    /// Why a packet was not decoded down to a transport header.
    pub enum DecodeSkip {
        UnsupportedLinkType => "unsupported_link_type",
        NotIp => "not_ip",
        TruncatedLink => "truncated_link",
        TruncatedIp => "truncated_ip",
        BadIpHeader => "bad_ip_header",
        TruncatedTransport => "truncated_transport",
        BadTransportHeader => "bad_transport_header",
        TunnelTooDeep => "tunnel_too_deep",
        BadTunnelHeader => "bad_tunnel_header",
        TooManyVlanTags => "too_many_vlan_tags",
        TooManyMplsLabels => "too_many_mpls_labels",
        TooManyIpv6ExtensionHeaders => "too_many_ipv6_extension_headers",
    }
}

/// Decodes one captured packet of link type `link`.
pub fn decode_packet(link: LinkType, packet: &[u8]) -> Result<Decoded<'_>, DecodeSkip> {
    let _ = (link, packet);
    Err(DecodeSkip::UnsupportedLinkType)
}

/// Resumes decoding after IP reassembly: `payload` is the reassembled payload of protocol
/// `proto` between `src` and `dst`; `context` carries the link info and outer hops of the
/// fragment that completed the datagram. Tunnels inside continue to be followed.
pub fn decode_ip_payload<'a>(
    context: &Decoded<'_>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
) -> Result<Decoded<'a>, DecodeSkip> {
    let _ = (context, src, dst, proto, payload);
    Err(DecodeSkip::NotIp)
}

/// Whether the TCP or UDP checksum of a decoded packet is right. `None` when it cannot be
/// checked (truncated by the snap length, UDP over IPv4 with checksum 0, reassembled payload).
pub fn transport_checksum_ok(decoded: &Decoded<'_>) -> Option<bool> {
    let _ = decoded;
    None
}
