//! Decode stage: link, network, tunnel and transport headers of one packet.
//!
//! Contract: [`decode_packet`] reads a packet as captured (possibly cut by the snap length) and
//! fills a [`Decoded`] view that borrows the packet bytes; it never copies payload and never
//! allocates. It descends through VLAN tags, MPLS, PPPoE and tunnels (GRE, ERSPAN, VXLAN, GENEVE,
//! IP-in-IP, GTP-U, Teredo) down to the innermost IP packet, at most [`MAX_TUNNEL_DEPTH`] levels,
//! keeping each outer IP pair as context. An IP fragment stops the walk with [`L4::Fragment`]; the
//! flow stage reassembles it and resumes with [`decode_ip_payload`]. Failures are counted
//! [`DecodeSkip`] reasons; unknown protocol numbers are values ([`L4::Other`]), not failures.
//! Checksums are not verified here (see [`transport_checksum_ok`]); neither is the IPv4 header
//! checksum (a sensor sees what the host saw; a bad header checksum costs a pass over 20 bytes
//! per packet for no verdict change).
//!
//! Lengths: every layer is cut to the length its header declares (IPv4 total length, IPv6
//! payload length, UDP length), so Ethernet padding never reaches a parser; when the capture
//! holds fewer bytes than declared, the view keeps what was captured and sets
//! [`Decoded::truncated`]. An IPv4 total length of 0 is read as "the captured length" (TCP
//! segmentation offload captures on the sending host carry 0 there).
//!
//! Caps bound the work per packet: [`link::MAX_VLAN_TAGS`], [`link::MAX_MPLS_LABELS`],
//! [`ip::MAX_IPV6_EXT_HEADERS`], [`tunnel::MAX_GTPU_EXT_HEADERS`] and [`MAX_TUNNEL_DEPTH`];
//! every loop in the stage is bounded by one of them.
//!
//! Submodules: [`link`] (link types, Ethernet, VLAN, MPLS, PPPoE), [`ip`] (IPv4, IPv6 and its
//! extension headers, TCP, UDP), [`tunnel`] (GRE, ERSPAN, VXLAN, GENEVE, GTP-U, Teredo) and
//! [`checksum`] (Internet checksum, RFC 1071).

pub mod checksum;
pub mod ip;
pub mod link;
pub mod tunnel;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::capture::LinkType;
use crate::reason::ReasonCounts;

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
    Capwap,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub link: LinkInfo,
    /// Outer IP headers, outermost first; `outer_len` of them are valid.
    pub outer: [Option<OuterHop>; MAX_TUNNEL_DEPTH],
    pub outer_len: u8,
    pub ip: IpInfo,
    pub l4: L4<'a>,
    /// The IP packet (header and payload) of the innermost layer, as captured and cut to the IP
    /// length; used to copy fragments. After [`decode_ip_payload`] without a tunnel inside, the
    /// reassembled payload (there is no header).
    pub ip_packet: &'a [u8],
    /// The bytes the transport checksum covers, as captured: the TCP header and payload, the
    /// UDP datagram cut to its UDP length; for fragments and other protocols, the IP payload
    /// after the extension headers.
    pub l4_bytes: &'a [u8],
    /// Length of what `l4_bytes` covers on the wire (from the IP or UDP length); larger than
    /// `l4_bytes.len()` when the snap length cut the packet.
    pub l4_wire_len: u32,
    /// The innermost IPv6 header has a routing header with segments left: the checksum
    /// pseudo-header uses the final destination, not `ip.dst` (RFC 8200 §8.1).
    pub routed: bool,
    /// The snap length cut this packet short.
    pub truncated: bool,
}

impl Decoded<'_> {
    /// The valid outer hops, outermost first.
    pub fn outer_hops(&self) -> impl Iterator<Item = OuterHop> + '_ {
        self.outer
            .iter()
            .take(usize::from(self.outer_len))
            .filter_map(|hop| *hop)
    }

    /// The innermost tunnel, if the packet was decapsulated.
    pub fn innermost_tunnel(&self) -> Option<TunnelKind> {
        self.outer_hops().last().map(|hop| hop.tunnel)
    }
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
        /// A link header (PPPoE) with impossible fields.
        BadLinkHeader => "bad_link_header",
        /// A tunnel identified by IP protocol (GRE, ERSPAN) cut before its header ended.
        TruncatedTunnel => "truncated_tunnel",
    }
}

/// Packet-level counters of one worker (or of all, merged): what reached the decode stage and
/// how far it got. The worker counts them; metrics and reports read them.
#[derive(Clone, Debug, Default)]
pub struct PacketCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Packets decoded down to a transport header (or an IP fragment).
    pub decoded: u64,
    pub decode_skips: ReasonCounts<DecodeSkip>,
    /// Packets cut short by the capture's snap length.
    pub truncated: u64,
    /// The `unsupported_link_type` skips by LINKTYPE number.
    pub unsupported_link_types: LinkTypeCounts,
}

/// Distinct link type numbers counted one by one in [`LinkTypeCounts`]. A capture file has one
/// link type per interface and real ones have a few interfaces; the rest share one count, so
/// the labels stay bounded.
pub const MAX_COUNTED_LINK_TYPES: usize = 8;

/// Packets per LINKTYPE number, for link types the decoder does not know: the first
/// [`MAX_COUNTED_LINK_TYPES`] numbers seen each have a count, later ones share `other`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkTypeCounts {
    counts: [(u32, u64); MAX_COUNTED_LINK_TYPES],
    used: usize,
    pub other: u64,
}

impl LinkTypeCounts {
    pub fn add(&mut self, link: u32, n: u64) {
        let used = self.counts.get_mut(..self.used).unwrap_or(&mut []);
        if let Some(slot) = used.iter_mut().find(|(l, _)| *l == link) {
            slot.1 += n;
        } else if let Some(slot) = self.counts.get_mut(self.used) {
            *slot = (link, n);
            self.used += 1;
        } else {
            self.other += n;
        }
    }

    /// (link type, packets), in the order first seen.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().take(self.used).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0 && self.other == 0
    }

    pub fn merge(&mut self, o: &LinkTypeCounts) {
        for (link, n) in o.iter() {
            self.add(link, n);
        }
        self.other += o.other;
    }
}

impl PacketCounters {
    pub fn merge(&mut self, o: &PacketCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.decoded += o.decoded;
        self.decode_skips.merge(&o.decode_skips);
        self.truncated += o.truncated;
        self.unsupported_link_types.merge(&o.unsupported_link_types);
    }
}

/// Decodes one captured packet of link type `link`. The commonest shape (see
/// [`decode_plain`]) is read at fixed offsets; every other one takes the full walk
/// ([`decode_full`]), with the same result.
#[inline(always)]
pub fn decode_packet(link: LinkType, packet: &[u8]) -> Result<Decoded<'_>, DecodeSkip> {
    if link == LinkType::ETHERNET {
        if let Some(decoded) = decode_plain(packet) {
            return Ok(decoded);
        }
    }
    decode_full(link, packet)
}

/// [`decode_packet`] by the full walk over links, tunnels and extension headers, whatever the
/// shape: the oracle [`decode_plain`] is tested against.
#[inline(never)]
pub fn decode_full(link: LinkType, packet: &[u8]) -> Result<Decoded<'_>, DecodeSkip> {
    let mut link_info = LinkInfo::default();
    let network = link::decode_link(link, packet, &mut link_info)?;
    let first = ip::parse_network(network)?;
    let mut hops = Hops::default();
    let end = walk(&mut hops, first)?;
    Ok(end.into_decoded(link_info, hops))
}

/// Resumes decoding after IP reassembly: `payload` is the reassembled payload of protocol
/// `proto` between `src` and `dst`; `context` carries the link info and outer hops of the
/// fragment that completed the datagram. Tunnels inside continue to be followed (the depth
/// count goes on from `context`). For IPv6, `proto` is the next header of the fragment header,
/// so extension headers of the fragmentable part (destination options) are walked here.
/// `src` and `dst` of different families are [`DecodeSkip::BadIpHeader`].
pub fn decode_ip_payload<'a>(
    context: &Decoded<'_>,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
) -> Result<Decoded<'a>, DecodeSkip> {
    let first = ip::reassembled(src, dst, proto, payload, context.routed)?;
    let mut hops = Hops {
        list: context.outer,
        len: context.outer_len,
    };
    let end = walk(&mut hops, first)?;
    Ok(end.into_decoded(context.link, hops))
}

/// Whether the TCP or UDP checksum of a decoded packet is right (RFC 793 §3.1, RFC 768, with
/// the IPv4 pseudo-header or the IPv6 one of RFC 8200 §8.1). `None` when it cannot be checked:
/// not TCP/UDP, cut by the snap length, UDP over IPv4 with checksum 0 (RFC 768: none sent), or
/// an IPv6 routing header with segments left (the final destination is not at hand). A
/// reassembled payload from [`decode_ip_payload`] is complete and is checked. UDP over IPv6
/// with checksum 0 is `Some(false)` (RFC 8200 §8.1: receivers discard it). Packets captured on
/// the sending host with checksum offload carry unfinished checksums and read `Some(false)`;
/// callers should count, not drop, on that alone.
pub fn transport_checksum_ok(decoded: &Decoded<'_>) -> Option<bool> {
    checksum::transport_ok(decoded)
}

/// An address as the 128-bit integer that flow keys and the choice of worker use: IPv6 as is,
/// IPv4 mapped into IPv6 (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2).
#[inline]
pub fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => ipv4_bits(v4.octets()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[inline]
fn ipv4_bits(octets: [u8; 4]) -> u128 {
    0xffff_0000_0000 | u128::from(u32::from_be_bytes(octets))
}

/// The address pair [`decode_packet`] would report in [`Decoded::ip`], as [`ip_bits`], for
/// choosing a packet's worker; `None` when the packet does not decode (such a packet yields
/// nothing but a counter, on whichever worker). Integers rather than `IpAddr`s: the reader
/// hashes them for every packet, and building the enums on the stack only to read them back
/// stalled it (narrow stores forwarded to wide loads). The common shapes — Ethernet with up
/// to [`link::MAX_VLAN_TAGS`] tags, then IPv4 or IPv6 carrying TCP, UDP on a port no tunnel
/// uses, or ICMP, or an IPv4 fragment — are read from fixed offsets without building a
/// [`Decoded`]; every other shape (tunnels, IPv6 extension headers, MPLS, PPPoE, other link
/// types) takes the full decode, so both directions of a flow and every fragment of a datagram
/// always get the same pair.
///
/// With it, in the same reading, the packet's [`plain_tcp`] reading when it is a plain TCP
/// segment (what the worker's fast path needs). Always inlined: returned through memory, the
/// ~90-byte answer cost more than reading it.
#[inline(always)]
pub fn dispatch_reading(link: LinkType, packet: &[u8]) -> (Option<PlainTcp>, Option<(u128, u128)>) {
    if link == LinkType::ETHERNET {
        if let Some((ethertype, rest)) = skip_ethernet(packet) {
            if let Some(seg) = plain_tcp_after_ethernet(ethertype, rest) {
                return (Some(seg), Some((seg.src, seg.dst)));
            }
            if let Some(pair) = pair_after_ethernet(ethertype, rest) {
                return (None, Some(pair));
            }
        }
    }
    (None, dispatch_bits_by_decode(link, packet))
}

/// The slow path of [`dispatch_reading`], out of line so that the fast path inlines into the
/// reader's loop.
#[inline(never)]
fn dispatch_bits_by_decode(link: LinkType, packet: &[u8]) -> Option<(u128, u128)> {
    decode_packet(link, packet)
        .ok()
        .map(|d| (ip_bits(d.ip.src), ip_bits(d.ip.dst)))
}

/// UDP ports whose payload [`decode_packet`] may decapsulate (see [`tunnel::by_udp_port`]):
/// packets on them take the full decode.
fn is_tunnel_port(port: u16) -> bool {
    matches!(
        port,
        tunnel::VXLAN_PORT
            | tunnel::GENEVE_PORT
            | tunnel::GTPU_PORT
            | tunnel::TEREDO_PORT
            | tunnel::CAPWAP_DATA_PORT
    )
}

/// UDP ports of a transport header at the start of `l4`, unless a tunnel may hide behind them.
fn plain_udp(l4: &[u8]) -> Option<()> {
    let [s0, s1, d0, d1] = *l4.first_chunk::<4>()?;
    let tunnel = is_tunnel_port(u16::from_be_bytes([s0, s1]))
        || is_tunnel_port(u16::from_be_bytes([d0, d1]));
    (!tunnel).then_some(())
}

/// ICMP (RFC 792) and ICMPv6 (RFC 4443): carried to the end of the walk as [`L4::Other`].
const PROTO_ICMP: u8 = 1;
const PROTO_ICMPV6: u8 = 58;

/// The fast path of [`dispatch_reading`]'s pair, given what follows the Ethernet header and its tags:
/// `None` means "take the full decode", never "drop".
#[inline]
fn pair_after_ethernet(ethertype: u16, rest: &[u8]) -> Option<(u128, u128)> {
    match ethertype {
        link::ETHERTYPE_IPV4 => {
            // RFC 791 §3.1: version/IHL, flags and fragment offset, protocol, addresses.
            let header = rest.first_chunk::<20>()?;
            let [vihl, _, _, _, _, _, f0, f1, _, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
                *header;
            let ihl = usize::from(vihl & 0x0f) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return None;
            }
            let pair = (ipv4_bits([s0, s1, s2, s3]), ipv4_bits([d0, d1, d2, d3]));
            // More-fragments bit or a non-zero offset: the walk stops at this layer.
            if f0 & 0x3f != 0 || f1 != 0 {
                return Some(pair);
            }
            match proto {
                ip::PROTO_TCP | PROTO_ICMP => Some(pair),
                ip::PROTO_UDP => rest.get(ihl..).and_then(plain_udp).map(|()| pair),
                _ => None,
            }
        }
        link::ETHERTYPE_IPV6 => {
            let (fixed, l4) = ipv6_fixed_header(rest)?;
            let (next, pair) = (fixed.next, (fixed.src, fixed.dst));
            match next {
                ip::PROTO_TCP | PROTO_ICMPV6 => Some(pair),
                ip::PROTO_UDP => plain_udp(l4).map(|()| pair),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The fields of a fixed IPv6 header that the fixed-offset readers use.
struct Ipv6Fixed {
    src: u128,
    dst: u128,
    next: u8,
    payload_len: u16,
}

/// RFC 8200 §3: payload length at 4, next header at 6, source at 8..24, destination at 24..40;
/// and the bytes after the 40-byte header. `None` when short or not version 6.
#[inline]
fn ipv6_fixed_header(rest: &[u8]) -> Option<(Ipv6Fixed, &[u8])> {
    let (header, after) = rest.split_first_chunk::<40>()?;
    let (fixed, addrs) = header.split_first_chunk::<8>()?;
    let (src, dst) = addrs.split_first_chunk::<16>()?;
    let dst = dst.first_chunk::<16>()?;
    let [v, _, _, _, l0, l1, next, _] = *fixed;
    if v >> 4 != 6 {
        return None;
    }
    let fields = Ipv6Fixed {
        src: u128::from_be_bytes(*src),
        dst: u128::from_be_bytes(*dst),
        next,
        payload_len: u16::from_be_bytes([l0, l1]),
    };
    Some((fields, after))
}

/// The ethertype after an Ethernet header and at most [`link::MAX_VLAN_TAGS`] VLAN tags, and
/// the bytes after it. `None` for a frame too short or with a deeper tag stack.
#[inline]
fn skip_ethernet(frame: &[u8]) -> Option<(u16, &[u8])> {
    skip_ethernet_tags(frame).map(|(ethertype, _, rest)| (ethertype, rest))
}

/// [`skip_ethernet`], with the VLAN id of the innermost tag (as the link walk records it in
/// [`LinkInfo::vlan`]).
#[inline(always)]
fn skip_ethernet_tags(frame: &[u8]) -> Option<(u16, Option<u16>, &[u8])> {
    let (header, mut rest) = frame.split_first_chunk::<14>()?;
    let [.., t0, t1] = *header;
    let mut ethertype = u16::from_be_bytes([t0, t1]);
    let mut vlan = None;
    // Bounded by the tag cap, as in the link walk; a deeper stack takes the full decode.
    for _ in 0..link::MAX_VLAN_TAGS {
        if !matches!(
            ethertype,
            link::ETHERTYPE_VLAN | link::ETHERTYPE_QINQ | link::ETHERTYPE_QINQ_OLD
        ) {
            break;
        }
        let (&[tci0, tci1, t0, t1], inner) = rest.split_first_chunk::<4>()?;
        vlan = Some(u16::from_be_bytes([tci0, tci1]) & 0x0FFF);
        ethertype = u16::from_be_bytes([t0, t1]);
        rest = inner;
    }
    Some((ethertype, vlan, rest))
}

/// What the fast path needs of a plain TCP segment (see [`plain_tcp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainTcp {
    /// Source and destination as [`ip_bits`].
    pub src: u128,
    pub dst: u128,
    pub src_port: u16,
    pub dst_port: u16,
    /// The TCP flags byte ([`TcpSegment::FIN`] and friends).
    pub flags: u8,
    /// The sequence number of the segment's first byte (of its SYN, on a SYN).
    pub seq: u32,
    /// Payload bytes the segment carries (all of them captured).
    pub payload_len: u16,
}

impl PlainTcp {
    /// The segment carries payload bytes.
    pub fn has_payload(&self) -> bool {
        self.payload_len > 0
    }
}

/// The addresses, ports, flags, sequence number and payload length of the commonest packet on a
/// span port, read at fixed offsets: Ethernet (with at most [`link::MAX_VLAN_TAGS`] VLAN tags),
/// then IPv4 without options and unfragmented, or IPv6 without extension headers, then a whole
/// TCP header, all of it captured (nothing cut by the snap length). For such a packet
/// [`decode_packet`] succeeds with an [`L4::Tcp`] of these values, no outer hops and
/// `truncated == false` (checked on every committed capture and by the `decode` fuzz target).
/// Every other packet gets `None` and takes the full decode.
#[inline]
pub fn plain_tcp(link: LinkType, packet: &[u8]) -> Option<PlainTcp> {
    if link != LinkType::ETHERNET {
        return None;
    }
    let (ethertype, rest) = skip_ethernet(packet)?;
    plain_tcp_after_ethernet(ethertype, rest)
}

/// [`plain_tcp`], given what follows the Ethernet header and its tags.
#[inline]
fn plain_tcp_after_ethernet(ethertype: u16, rest: &[u8]) -> Option<PlainTcp> {
    let (src, dst, segment) = match ethertype {
        link::ETHERTYPE_IPV4 => {
            let (header, after) = rest.split_first_chunk::<20>()?;
            let [vihl, _, l0, l1, _, _, f0, f1, _, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
                *header;
            // Version 4 with a 20-byte header, no MF flag and offset 0, TCP.
            if vihl != 0x45 || f0 & 0x3f != 0 || f1 != 0 || proto != ip::PROTO_TCP {
                return None;
            }
            let payload_len = usize::from(u16::from_be_bytes([l0, l1])).checked_sub(20)?;
            let src = ipv4_bits([s0, s1, s2, s3]);
            (src, ipv4_bits([d0, d1, d2, d3]), after.get(..payload_len)?)
        }
        link::ETHERTYPE_IPV6 => {
            let (fixed, after) = ipv6_fixed_header(rest)?;
            if fixed.next != ip::PROTO_TCP {
                return None;
            }
            let payload = after.get(..usize::from(fixed.payload_len))?;
            (fixed.src, fixed.dst, payload)
        }
        _ => return None,
    };
    let header = segment.first_chunk::<20>()?;
    let [sp0, sp1, dp0, dp1, q0, q1, q2, q3, _, _, _, _, offset, flags, ..] = *header;
    let header_len = usize::from(offset >> 4) * 4;
    let payload_len = segment.len().checked_sub(header_len)?;
    if header_len < 20 {
        return None;
    }
    Some(PlainTcp {
        src,
        dst,
        src_port: u16::from_be_bytes([sp0, sp1]),
        dst_port: u16::from_be_bytes([dp0, dp1]),
        flags,
        seq: u32::from_be_bytes([q0, q1, q2, q3]),
        payload_len: u16::try_from(payload_len).ok()?,
    })
}

/// The [`Decoded`] view of the commonest packet on a span port, read at fixed offsets: an
/// Ethernet frame with at most [`link::MAX_VLAN_TAGS`] VLAN tags, then IPv4 with a 20-byte
/// header, unfragmented, or IPv6 without extension headers, whose whole IP length was
/// captured, then a valid TCP header or a UDP datagram that fills the IP payload on ports no
/// tunnel uses. Exactly what [`decode_full`] gives for it (checked on every committed capture
/// and by the `decode` fuzz target); `None` for everything else, which then takes the full walk.
#[inline(always)]
pub fn decode_plain(frame: &[u8]) -> Option<Decoded<'_>> {
    let (ethertype, vlan, rest) = skip_ethernet_tags(frame)?;
    let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5] = *frame.first_chunk::<12>()?;
    let (src, dst, proto, ip_packet, payload) = match ethertype {
        link::ETHERTYPE_IPV4 => {
            let header = rest.first_chunk::<20>()?;
            let [vihl, _, l0, l1, _, _, f0, f1, _, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
                *header;
            let total = usize::from(u16::from_be_bytes([l0, l1]));
            // Version 4, 20-byte header, neither MF nor an offset, the whole length captured
            // (a length of 0, as segmentation offload writes it, takes the full walk).
            if vihl != 0x45 || f0 & 0x3f != 0 || f1 != 0 || total < 20 {
                return None;
            }
            let packet = rest.get(..total)?;
            let src = IpAddr::V4(Ipv4Addr::from([s0, s1, s2, s3]));
            let dst = IpAddr::V4(Ipv4Addr::from([d0, d1, d2, d3]));
            (src, dst, proto, packet, packet.get(20..)?)
        }
        link::ETHERTYPE_IPV6 => {
            let (fixed, after) = ipv6_fixed_header(rest)?;
            let payload_len = usize::from(fixed.payload_len);
            // A zero length may be a jumbogram: the full walk decides.
            if payload_len == 0 {
                return None;
            }
            let payload = after.get(..payload_len)?;
            let packet = rest.get(..40usize.checked_add(payload_len)?)?;
            let src = IpAddr::V6(Ipv6Addr::from(fixed.src));
            let dst = IpAddr::V6(Ipv6Addr::from(fixed.dst));
            (src, dst, fixed.next, packet, payload)
        }
        _ => return None,
    };
    let wire_len = u32::try_from(payload.len()).ok()?;
    let (l4, l4_bytes, l4_wire_len) = match proto {
        ip::PROTO_TCP => {
            let header = payload.first_chunk::<20>()?;
            let [sp0, sp1, dp0, dp1, q0, q1, q2, q3, a0, a1, a2, a3, offset, flags, ..] = *header;
            let header_len = usize::from(offset >> 4) * 4;
            if header_len < 20 {
                return None;
            }
            let segment_payload = payload.get(header_len..)?;
            let segment = TcpSegment {
                src_port: u16::from_be_bytes([sp0, sp1]),
                dst_port: u16::from_be_bytes([dp0, dp1]),
                seq: u32::from_be_bytes([q0, q1, q2, q3]),
                ack: u32::from_be_bytes([a0, a1, a2, a3]),
                flags,
                payload: segment_payload,
                wire_payload_len: u32::try_from(segment_payload.len()).ok()?,
            };
            (L4::Tcp(segment), payload, wire_len)
        }
        ip::PROTO_UDP => {
            let [sp0, sp1, dp0, dp1, len0, len1, _, _] = *payload.first_chunk::<8>()?;
            let (src_port, dst_port) = (
                u16::from_be_bytes([sp0, sp1]),
                u16::from_be_bytes([dp0, dp1]),
            );
            // The UDP length fills the IP payload exactly (no padding to cut, nothing past it).
            if usize::from(u16::from_be_bytes([len0, len1])) != payload.len()
                || is_tunnel_port(src_port)
                || is_tunnel_port(dst_port)
            {
                return None;
            }
            let datagram = UdpDatagram {
                src_port,
                dst_port,
                payload: payload.get(8..)?,
            };
            (L4::Udp(datagram), payload, wire_len)
        }
        _ => return None,
    };
    Some(Decoded {
        link: LinkInfo {
            src_mac: Some([s0, s1, s2, s3, s4, s5]),
            dst_mac: Some([d0, d1, d2, d3, d4, d5]),
            vlan,
        },
        outer: [None; MAX_TUNNEL_DEPTH],
        outer_len: 0,
        ip: IpInfo { src, dst, proto },
        l4,
        ip_packet,
        l4_bytes,
        l4_wire_len,
        routed: false,
        truncated: false,
    })
}

/// Whether [`decode_plain`] keeps its promise on `frame`: when it answers, [`decode_full`]
/// gives the same view. The oracle of the unit tests and of the `decode` fuzz target.
pub fn decode_plain_agrees_with_full(frame: &[u8]) -> bool {
    let Some(fast) = decode_plain(frame) else {
        return true;
    };
    decode_full(LinkType::ETHERNET, frame).is_ok_and(|full| full == fast)
}

/// Whether [`plain_tcp`] keeps its promise on `packet`: when it answers, the full walk
/// ([`decode_full`]) ends on a TCP segment with the same addresses, ports, flags, sequence
/// number and payload length, no outer hops, nothing truncated. The oracle of the unit tests
/// and of the `decode` fuzz target.
pub fn plain_tcp_agrees_with_decode(link: LinkType, packet: &[u8]) -> bool {
    let Some(fast) = plain_tcp(link, packet) else {
        return true;
    };
    let Ok(d) = decode_full(link, packet) else {
        return false;
    };
    let L4::Tcp(seg) = &d.l4 else {
        return false;
    };
    let full = PlainTcp {
        src: ip_bits(d.ip.src),
        dst: ip_bits(d.ip.dst),
        src_port: seg.src_port,
        dst_port: seg.dst_port,
        flags: seg.flags,
        seq: seg.seq,
        payload_len: match u16::try_from(seg.payload.len()) {
            Ok(len) => len,
            Err(_) => return false,
        },
    };
    full == fast && d.outer_len == 0 && !d.truncated
}

/// Outer hops collected while walking.
#[derive(Default)]
struct Hops {
    list: [Option<OuterHop>; MAX_TUNNEL_DEPTH],
    len: u8,
}

/// Where a walk ended: the innermost layer and what follows it.
struct End<'a> {
    addrs: ip::Addrs,
    proto: u8,
    ip_packet: &'a [u8],
    l4: L4<'a>,
    l4_bytes: &'a [u8],
    l4_wire_len: u32,
    routed: bool,
    truncated: bool,
}

impl<'a> End<'a> {
    /// Builds the view in one expression, so that it is written once, in place. (Filling a
    /// local `Decoded` and moving it out copies ~300 bytes right after writing them piecewise,
    /// which stalls on store forwarding.)
    #[inline(always)]
    fn into_decoded(self, link: LinkInfo, hops: Hops) -> Decoded<'a> {
        Decoded {
            link,
            outer: if hops.len == 0 {
                [None; MAX_TUNNEL_DEPTH]
            } else {
                hops.list
            },
            outer_len: hops.len,
            ip: IpInfo {
                src: self.addrs.src(),
                dst: self.addrs.dst(),
                proto: self.proto,
            },
            l4: self.l4,
            ip_packet: self.ip_packet,
            l4_bytes: self.l4_bytes,
            l4_wire_len: self.l4_wire_len,
            routed: self.routed,
            truncated: self.truncated,
        }
    }
}

/// Walks from one IP layer inward, following tunnels until a transport header, a fragment or
/// another protocol ends the walk. Bounded: every turn of the loop pushes one outer hop, and
/// there are at most [`MAX_TUNNEL_DEPTH`] of them.
#[inline]
fn walk<'a>(hops: &mut Hops, first: ip::IpLayer<'a>) -> Result<End<'a>, DecodeSkip> {
    let mut layer = first;
    let mut truncated = false;
    loop {
        truncated |= layer.truncated;
        let end = |l4, l4_bytes, l4_wire_len| End {
            addrs: layer.addrs,
            proto: layer.proto,
            ip_packet: layer.packet,
            l4,
            l4_bytes,
            l4_wire_len,
            routed: layer.routed,
            truncated,
        };
        if let Some(fragment) = layer.fragment {
            let l4 = L4::Fragment(IpFragment {
                id: fragment.id,
                offset: fragment.offset,
                more_fragments: fragment.more,
                proto: layer.proto,
                payload: layer.payload,
            });
            return Ok(end(l4, layer.payload, layer.payload_wire_len));
        }
        let (kind, inner) = match ip::transport(&layer)? {
            ip::Transport::Done {
                l4,
                l4_bytes,
                l4_wire_len,
            } => return Ok(end(l4, l4_bytes, l4_wire_len)),
            ip::Transport::Tunnel { kind, inner } => (kind, inner),
        };
        let slot = hops
            .list
            .get_mut(usize::from(hops.len))
            .ok_or(DecodeSkip::TunnelTooDeep)?;
        *slot = Some(OuterHop {
            src: layer.addrs.src(),
            dst: layer.addrs.dst(),
            tunnel: kind,
        });
        hops.len = hops.len.saturating_add(1);
        let network = match inner {
            tunnel::Inner::Network(network) => network,
            tunnel::Inner::Ethernet(frame) => link::inner_ethernet(frame)?,
            tunnel::Inner::Mpls(stack) => link::inner_mpls(stack)?,
            tunnel::Inner::Wlan(frame) => link::inner_ieee80211(frame)?,
        };
        layer = ip::parse_network(network)?;
    }
}

#[cfg(test)]
mod tests;
