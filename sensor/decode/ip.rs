//! Network and transport headers: IPv4 (RFC 791), IPv6 (RFC 8200) with its extension headers,
//! TCP (RFC 9293 §3.1) and UDP (RFC 768), and the IP-protocol dispatch to tunnels.
//!
//! Input: an IP packet slice found by the link walk or a tunnel. Output: an [`IpLayer`] whose
//! payload is cut to the length the header declares (so link padding never reaches a parser),
//! then a [`Transport`] step: a finished [`L4`] view or the next tunnel layer. Nothing is
//! copied. Cap: [`MAX_IPV6_EXT_HEADERS`] extension headers per IPv6 header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::link::Network;
use super::tunnel::{self, Inner};
use super::{DecodeSkip, TcpSegment, TunnelKind, UdpDatagram, L4};

/// IPv6 extension headers walked per IPv6 header. RFC 8200 §4.1 recommends each header at
/// most once (destination options twice): hop-by-hop, destination, routing, fragment, AH,
/// destination, plus mobility — seven; eight leaves one spare and bounds the walk.
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub const PROTO_HOP_BY_HOP: u8 = 0;
pub const PROTO_IPV4: u8 = 4;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_ROUTING: u8 = 43;
pub const PROTO_FRAGMENT: u8 = 44;
pub const PROTO_GRE: u8 = 47;
pub const PROTO_ESP: u8 = 50;
pub const PROTO_AH: u8 = 51;
pub const PROTO_NO_NEXT_HEADER: u8 = 59;
pub const PROTO_DESTINATION_OPTIONS: u8 = 60;
pub const PROTO_MOBILITY: u8 = 135;
pub const PROTO_HIP: u8 = 139;
pub const PROTO_SHIM6: u8 = 140;

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const TCP_MIN_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Fragmentation fields of a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentInfo {
    pub id: u32,
    /// Offset in bytes.
    pub offset: u32,
    pub more: bool,
}

/// Source and destination addresses as read from a header. Kept as byte arrays while walking:
/// they are copied from layer to layer, and `IpAddr` values built byte by byte and then copied
/// whole stall the store buffer (measured: a third of the time of a plain TCP packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addrs {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

impl Addrs {
    #[inline]
    pub fn src(self) -> IpAddr {
        match self {
            Addrs::V4(src, _) => IpAddr::V4(Ipv4Addr::from(src)),
            Addrs::V6(src, _) => IpAddr::V6(Ipv6Addr::from(src)),
        }
    }

    #[inline]
    pub fn dst(self) -> IpAddr {
        match self {
            Addrs::V4(_, dst) => IpAddr::V4(Ipv4Addr::from(dst)),
            Addrs::V6(_, dst) => IpAddr::V6(Ipv6Addr::from(dst)),
        }
    }
}

/// One parsed IP header (IPv6: with its extension headers).
#[derive(Clone, Copy, Debug)]
pub struct IpLayer<'a> {
    pub addrs: Addrs,
    /// Protocol of `payload` (after IPv6 extension headers; for a fragment, of the datagram).
    pub proto: u8,
    /// Header and payload, captured, cut to the declared length.
    pub packet: &'a [u8],
    /// Bytes after the header(s), captured, cut to the declared length.
    pub payload: &'a [u8],
    /// Length of `payload` on the wire.
    pub payload_wire_len: u32,
    /// The capture holds fewer bytes than the header declares.
    pub truncated: bool,
    pub fragment: Option<FragmentInfo>,
    /// IPv6 routing header with segments left (RFC 8200 §4.4).
    pub routed: bool,
}

/// What follows an IP header.
#[derive(Clone, Copy, Debug)]
pub enum Transport<'a> {
    /// The walk ends here.
    Done {
        l4: L4<'a>,
        l4_bytes: &'a [u8],
        l4_wire_len: u32,
    },
    /// A tunnel: descend into `inner`.
    Tunnel { kind: TunnelKind, inner: Inner<'a> },
}

/// Parses the IP header a link walk or tunnel found.
#[inline]
pub fn parse_network(network: Network<'_>) -> Result<IpLayer<'_>, DecodeSkip> {
    match network {
        Network::Ipv4(bytes) => ipv4(bytes),
        Network::Ipv6(bytes) => ipv6(bytes),
    }
}

/// A reassembled datagram payload (no header): IPv6 extension headers of the fragmentable part
/// are walked; a second fragment header inside is [`DecodeSkip::BadIpHeader`].
pub fn reassembled(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    routed: bool,
) -> Result<IpLayer<'_>, DecodeSkip> {
    let wire = len_u32(payload.len());
    let addrs = match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Addrs::V4(src.octets(), dst.octets()),
        (IpAddr::V6(src), IpAddr::V6(dst)) => Addrs::V6(src.octets(), dst.octets()),
        _ => return Err(DecodeSkip::BadIpHeader),
    };
    let layer = IpLayer {
        addrs,
        proto,
        packet: payload,
        payload,
        payload_wire_len: wire,
        truncated: false,
        fragment: None,
        routed,
    };
    match addrs {
        Addrs::V4(..) => Ok(layer),
        Addrs::V6(..) => {
            let tail = ipv6_extensions(proto, payload, wire)?;
            if tail.fragment.is_some() {
                return Err(DecodeSkip::BadIpHeader);
            }
            Ok(IpLayer {
                proto: tail.proto,
                payload: tail.payload,
                payload_wire_len: tail.wire_len,
                routed: routed || tail.routed,
                ..layer
            })
        }
    }
}

#[inline]
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// IPv4 header (RFC 791 §3.1).
#[inline]
fn ipv4(bytes: &[u8]) -> Result<IpLayer<'_>, DecodeSkip> {
    let (&[ver_ihl, _, len0, len1, id0, id1, frag0, frag1, _, proto, _, _], rest) = bytes
        .split_first_chunk::<12>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    let (src, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    let (dst, _) = rest
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    if ver_ihl >> 4 != 4 {
        return Err(DecodeSkip::BadIpHeader);
    }
    let header_len = usize::from(ver_ihl & 0x0F) * 4;
    if header_len < IPV4_MIN_HEADER {
        return Err(DecodeSkip::BadIpHeader);
    }
    let total_len = match usize::from(u16::from_be_bytes([len0, len1])) {
        // Segmentation offload: the sending host's capture sees 0 here.
        0 => bytes.len(),
        len => len,
    };
    if total_len < header_len {
        return Err(DecodeSkip::BadIpHeader);
    }
    if bytes.len() < header_len {
        return Err(DecodeSkip::TruncatedIp);
    }
    let truncated = bytes.len() < total_len;
    let packet = bytes.get(..total_len).unwrap_or(bytes);
    let payload = packet.get(header_len..).unwrap_or_default();
    // Flags(3): reserved, DF, MF; fragment offset(13) in 8-byte units.
    let frag = u16::from_be_bytes([frag0, frag1]);
    let more = frag & 0x2000 != 0;
    let offset = u32::from(frag & 0x1FFF) * 8;
    let fragment = (more || offset != 0).then_some(FragmentInfo {
        id: u32::from(u16::from_be_bytes([id0, id1])),
        offset,
        more,
    });
    Ok(IpLayer {
        addrs: Addrs::V4(*src, *dst),
        proto,
        packet,
        payload,
        payload_wire_len: len_u32(total_len.saturating_sub(header_len)),
        truncated,
        fragment,
        routed: false,
    })
}

/// IPv6 header (RFC 8200 §3) and its extension headers.
fn ipv6(bytes: &[u8]) -> Result<IpLayer<'_>, DecodeSkip> {
    let (&[ver, _, _, _, len0, len1, next, _], rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    let (src, rest) = rest
        .split_first_chunk::<16>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    let (dst, after) = rest
        .split_first_chunk::<16>()
        .ok_or(DecodeSkip::TruncatedIp)?;
    if ver >> 4 != 6 {
        return Err(DecodeSkip::BadIpHeader);
    }
    let payload_len = match usize::from(u16::from_be_bytes([len0, len1])) {
        // A jumbogram (RFC 2675 §2) announces its length in a hop-by-hop option; read what
        // was captured.
        0 if next == PROTO_HOP_BY_HOP => after.len(),
        len => len,
    };
    let truncated = after.len() < payload_len;
    let payload = after.get(..payload_len).unwrap_or(after);
    let packet = bytes
        .get(..IPV6_HEADER.saturating_add(payload.len()))
        .unwrap_or(bytes);
    let tail = ipv6_extensions(next, payload, len_u32(payload_len))?;
    Ok(IpLayer {
        addrs: Addrs::V6(*src, *dst),
        proto: tail.proto,
        packet,
        payload: tail.payload,
        payload_wire_len: tail.wire_len,
        truncated,
        fragment: tail.fragment,
        routed: tail.routed,
    })
}

/// What is left after the IPv6 extension headers.
struct Ipv6Tail<'a> {
    proto: u8,
    payload: &'a [u8],
    wire_len: u32,
    fragment: Option<FragmentInfo>,
    routed: bool,
}

/// Walks IPv6 extension headers (RFC 8200 §4) from `next` over `bytes` (captured, cut to the
/// payload length; `wire_len` is that length on the wire). Stops at the first header that is
/// not an extension header, at a non-atomic fragment header (the rest belongs to the
/// reassembled datagram), or at ESP / No Next Header.
fn ipv6_extensions(
    mut next: u8,
    mut bytes: &[u8],
    mut wire_len: u32,
) -> Result<Ipv6Tail<'_>, DecodeSkip> {
    let mut routed = false;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let header_len = match next {
            // RFC 8200 §4.3-4.6 and RFC 7045 (mobility, HIP, shim6 share the generic format):
            // next header, length in 8-octet units beyond the first 8.
            PROTO_HOP_BY_HOP
            | PROTO_ROUTING
            | PROTO_DESTINATION_OPTIONS
            | PROTO_MOBILITY
            | PROTO_HIP
            | PROTO_SHIM6 => {
                let [_, len] = *ext_prefix(bytes, wire_len)?;
                usize::from(len).saturating_add(1).saturating_mul(8)
            }
            // RFC 4302 §2.2: AH length is in 4-octet units, minus 2.
            PROTO_AH => {
                let [_, len] = *ext_prefix(bytes, wire_len)?;
                usize::from(len).saturating_add(2).saturating_mul(4)
            }
            PROTO_FRAGMENT => 8,
            _ => {
                return Ok(Ipv6Tail {
                    proto: next,
                    payload: bytes,
                    wire_len,
                    fragment: None,
                    routed,
                })
            }
        };
        let (header, rest) = match bytes.split_at_checked(header_len) {
            Some(split) => split,
            None if len_u32(header_len) <= wire_len => return Err(DecodeSkip::TruncatedIp),
            None => return Err(DecodeSkip::BadIpHeader),
        };
        let this = next;
        let Some(&following) = header.first() else {
            return Err(DecodeSkip::TruncatedIp);
        };
        next = following;
        bytes = rest;
        wire_len = wire_len.saturating_sub(len_u32(header_len));
        match this {
            // RFC 8200 §4.4: byte 3 is Segments Left.
            PROTO_ROUTING => routed |= header.get(3).is_some_and(|left| *left != 0),
            // RFC 8200 §4.5: offset(13) res(2) M(1), identification(32).
            PROTO_FRAGMENT => {
                let Some(&[_, _, off0, off1, id0, id1, id2, id3]) = header.first_chunk::<8>()
                else {
                    return Err(DecodeSkip::TruncatedIp);
                };
                let field = u16::from_be_bytes([off0, off1]);
                let offset = u32::from(field & 0xFFF8);
                let more = field & 0x0001 != 0;
                // An atomic fragment (RFC 6946 §4) is a whole datagram: keep walking.
                if offset != 0 || more {
                    return Ok(Ipv6Tail {
                        proto: next,
                        payload: bytes,
                        wire_len,
                        fragment: Some(FragmentInfo {
                            id: u32::from_be_bytes([id0, id1, id2, id3]),
                            offset,
                            more,
                        }),
                        routed,
                    });
                }
            }
            _ => {}
        }
    }
    match next {
        PROTO_HOP_BY_HOP
        | PROTO_ROUTING
        | PROTO_DESTINATION_OPTIONS
        | PROTO_MOBILITY
        | PROTO_HIP
        | PROTO_SHIM6
        | PROTO_AH
        | PROTO_FRAGMENT => Err(DecodeSkip::TooManyIpv6ExtensionHeaders),
        _ => Ok(Ipv6Tail {
            proto: next,
            payload: bytes,
            wire_len,
            fragment: None,
            routed,
        }),
    }
}

/// The two first bytes of an extension header, or why they are missing.
fn ext_prefix(bytes: &[u8], wire_len: u32) -> Result<&[u8; 2], DecodeSkip> {
    match bytes.first_chunk::<2>() {
        Some(prefix) => Ok(prefix),
        None if wire_len >= 2 => Err(DecodeSkip::TruncatedIp),
        None => Err(DecodeSkip::BadIpHeader),
    }
}

/// Dispatches on the IP protocol of an unfragmented layer.
#[inline]
pub fn transport<'a>(layer: &IpLayer<'a>) -> Result<Transport<'a>, DecodeSkip> {
    let payload = layer.payload;
    let wire_len = layer.payload_wire_len;
    match layer.proto {
        PROTO_TCP => tcp(payload, wire_len),
        PROTO_UDP => udp(payload, wire_len),
        // RFC 2003 (IPv4 in IP), RFC 4213 §3.5 (IPv6 in IPv4), RFC 2473 (in IPv6).
        PROTO_IPV4 => Ok(Transport::Tunnel {
            kind: TunnelKind::IpInIp,
            inner: Inner::Network(Network::Ipv4(payload)),
        }),
        PROTO_IPV6 => Ok(Transport::Tunnel {
            kind: TunnelKind::IpInIp,
            inner: Inner::Network(Network::Ipv6(payload)),
        }),
        PROTO_GRE => match tunnel::gre(payload)? {
            Some((kind, inner)) => Ok(Transport::Tunnel { kind, inner }),
            None => Ok(other(layer)),
        },
        _ => Ok(other(layer)),
    }
}

#[inline]
fn other<'a>(layer: &IpLayer<'a>) -> Transport<'a> {
    Transport::Done {
        l4: L4::Other { proto: layer.proto },
        l4_bytes: layer.payload,
        l4_wire_len: layer.payload_wire_len,
    }
}

/// Missing header bytes: truncated by the capture if the wire had them, invalid otherwise.
#[inline]
fn short_transport(needed: usize, wire_len: u32) -> DecodeSkip {
    if len_u32(needed) <= wire_len {
        DecodeSkip::TruncatedTransport
    } else {
        DecodeSkip::BadTransportHeader
    }
}

/// TCP header (RFC 9293 §3.1): ports, sequence, acknowledgment, data offset, flags.
#[inline]
fn tcp(segment: &[u8], wire_len: u32) -> Result<Transport<'_>, DecodeSkip> {
    let header = segment
        .first_chunk::<TCP_MIN_HEADER>()
        .ok_or_else(|| short_transport(TCP_MIN_HEADER, wire_len))?;
    let [sp0, sp1, dp0, dp1, q0, q1, q2, q3, a0, a1, a2, a3, offset, flags, _, _, _, _, _, _] =
        *header;
    let header_len = usize::from(offset >> 4) * 4;
    if header_len < TCP_MIN_HEADER {
        return Err(DecodeSkip::BadTransportHeader);
    }
    let payload = match segment.get(header_len..) {
        Some(payload) => payload,
        None => return Err(short_transport(header_len, wire_len)),
    };
    let wire_payload_len = wire_len
        .checked_sub(len_u32(header_len))
        .ok_or(DecodeSkip::BadTransportHeader)?;
    Ok(Transport::Done {
        l4: L4::Tcp(TcpSegment {
            src_port: u16::from_be_bytes([sp0, sp1]),
            dst_port: u16::from_be_bytes([dp0, dp1]),
            seq: u32::from_be_bytes([q0, q1, q2, q3]),
            ack: u32::from_be_bytes([a0, a1, a2, a3]),
            flags,
            payload,
            wire_payload_len,
        }),
        l4_bytes: segment,
        l4_wire_len: wire_len,
    })
}

/// UDP header (RFC 768), then tunnels recognised by port when their header is valid. A UDP
/// length of 0 (IPv6 jumbograms, RFC 2675 §4) is not supported: bad transport header.
#[inline]
fn udp(datagram_and_padding: &[u8], wire_len: u32) -> Result<Transport<'_>, DecodeSkip> {
    let [sp0, sp1, dp0, dp1, len0, len1, _, _] = *datagram_and_padding
        .first_chunk::<UDP_HEADER>()
        .ok_or_else(|| short_transport(UDP_HEADER, wire_len))?;
    let udp_len = u16::from_be_bytes([len0, len1]);
    if usize::from(udp_len) < UDP_HEADER || u32::from(udp_len) > wire_len {
        return Err(DecodeSkip::BadTransportHeader);
    }
    let datagram = datagram_and_padding
        .get(..usize::from(udp_len))
        .unwrap_or(datagram_and_padding);
    let payload = datagram.get(UDP_HEADER..).unwrap_or_default();
    let src_port = u16::from_be_bytes([sp0, sp1]);
    let dst_port = u16::from_be_bytes([dp0, dp1]);
    let payload_wire_len = udp_len.saturating_sub(8);
    if let Some((kind, inner)) = tunnel::by_udp_port(src_port, dst_port, payload, payload_wire_len)
    {
        return Ok(Transport::Tunnel { kind, inner });
    }
    Ok(Transport::Done {
        l4: L4::Udp(UdpDatagram {
            src_port,
            dst_port,
            payload,
        }),
        l4_bytes: datagram,
        l4_wire_len: u32::from(udp_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6_ext(next: u8, len_units: u8, fill: u8) -> Vec<u8> {
        let mut h = vec![next, len_units];
        h.resize((usize::from(len_units) + 1) * 8, fill);
        h
    }

    #[test]
    fn extension_chain_of_three_then_tcp() {
        let mut bytes = v6_ext(PROTO_ROUTING, 0, 1);
        bytes.extend(v6_ext(PROTO_DESTINATION_OPTIONS, 0, 0)); // routing, segments left 0
        bytes.extend(v6_ext(PROTO_TCP, 1, 1));
        bytes.extend([0xAA; 4]);
        let tail = ipv6_extensions(PROTO_HOP_BY_HOP, &bytes, bytes.len() as u32).unwrap();
        assert_eq!(tail.proto, PROTO_TCP);
        assert_eq!(tail.payload, &[0xAA; 4]);
        assert_eq!(tail.wire_len, 4);
        assert!(!tail.routed);
        assert!(tail.fragment.is_none());
    }

    #[test]
    fn routing_header_with_segments_left_marks_routed() {
        let mut bytes = vec![PROTO_UDP, 2, 0, 1];
        bytes.resize(24, 0);
        let tail = ipv6_extensions(PROTO_ROUTING, &bytes, 24).unwrap();
        assert!(tail.routed);
        assert_eq!(tail.proto, PROTO_UDP);
        assert!(tail.payload.is_empty());
    }

    #[test]
    fn ah_length_in_four_octet_units() {
        // AH with a 12-byte ICV: payload length field 4 -> (4 + 2) * 4 = 24 bytes.
        let mut bytes = vec![PROTO_UDP, 4];
        bytes.resize(24, 0x55);
        bytes.extend([1, 2, 3]);
        let tail = ipv6_extensions(PROTO_AH, &bytes, 27).unwrap();
        assert_eq!(tail.proto, PROTO_UDP);
        assert_eq!(tail.payload, &[1, 2, 3]);
    }

    #[test]
    fn esp_and_no_next_header_stop() {
        let tail = ipv6_extensions(PROTO_ESP, &[1, 2, 3], 3).unwrap();
        assert_eq!(tail.proto, PROTO_ESP);
        assert_eq!(tail.payload, &[1, 2, 3]);
        let tail = ipv6_extensions(PROTO_NO_NEXT_HEADER, &[], 0).unwrap();
        assert_eq!(tail.proto, PROTO_NO_NEXT_HEADER);
    }

    #[test]
    fn too_many_extension_headers() {
        let mut bytes = Vec::new();
        for _ in 0..=MAX_IPV6_EXT_HEADERS {
            bytes.extend(v6_ext(PROTO_DESTINATION_OPTIONS, 0, 1));
        }
        let result = ipv6_extensions(PROTO_DESTINATION_OPTIONS, &bytes, bytes.len() as u32);
        assert!(matches!(
            result,
            Err(DecodeSkip::TooManyIpv6ExtensionHeaders)
        ));
    }

    #[test]
    fn exactly_max_extension_headers_is_accepted() {
        let mut bytes = Vec::new();
        for i in 0..MAX_IPV6_EXT_HEADERS {
            let next = if i + 1 == MAX_IPV6_EXT_HEADERS {
                PROTO_UDP
            } else {
                PROTO_DESTINATION_OPTIONS
            };
            bytes.extend(v6_ext(next, 0, 1));
        }
        let tail = ipv6_extensions(PROTO_DESTINATION_OPTIONS, &bytes, bytes.len() as u32).unwrap();
        assert_eq!(tail.proto, PROTO_UDP);
    }

    #[test]
    fn extension_length_past_the_wire_is_bad() {
        let bytes = v6_ext(PROTO_TCP, 3, 0);
        let result = ipv6_extensions(PROTO_HOP_BY_HOP, &bytes[..8], 8);
        assert!(matches!(result, Err(DecodeSkip::BadIpHeader)));
        let result = ipv6_extensions(PROTO_HOP_BY_HOP, &bytes[..8], 32);
        assert!(matches!(result, Err(DecodeSkip::TruncatedIp)));
    }

    #[test]
    fn atomic_fragment_is_walked_through() {
        let mut bytes = vec![PROTO_UDP, 0, 0, 0, 0, 0, 0, 9];
        bytes.extend([7; 8]);
        let tail = ipv6_extensions(PROTO_FRAGMENT, &bytes, 16).unwrap();
        assert_eq!(tail.proto, PROTO_UDP);
        assert!(tail.fragment.is_none());
        assert_eq!(tail.payload, &[7; 8]);
    }

    #[test]
    fn non_first_fragment_stops_walk() {
        // offset 185 * 8 = 1480, M=1, id 0x01020304
        let field: u16 = (185 << 3) | 1;
        let mut bytes = vec![PROTO_TCP, 0];
        bytes.extend(field.to_be_bytes());
        bytes.extend([1, 2, 3, 4]);
        bytes.extend([9; 5]);
        let tail = ipv6_extensions(PROTO_FRAGMENT, &bytes, 13).unwrap();
        assert_eq!(tail.proto, PROTO_TCP);
        assert_eq!(
            tail.fragment,
            Some(FragmentInfo {
                id: 0x0102_0304,
                offset: 1480,
                more: true
            })
        );
        assert_eq!(tail.payload, &[9; 5]);
    }

    #[test]
    fn tcp_bad_data_offset() {
        let mut seg = [0u8; 20];
        seg[12] = 0x40;
        assert!(matches!(tcp(&seg, 20), Err(DecodeSkip::BadTransportHeader)));
    }

    #[test]
    fn tcp_options_past_wire_length_is_bad() {
        let mut seg = [0u8; 20];
        seg[12] = 0xF0; // 60-byte header in a 20-byte segment
        assert!(matches!(tcp(&seg, 20), Err(DecodeSkip::BadTransportHeader)));
        assert!(matches!(tcp(&seg, 60), Err(DecodeSkip::TruncatedTransport)));
    }

    #[test]
    fn udp_length_below_header_is_bad() {
        let dgram = [0, 53, 0, 53, 0, 7, 0, 0];
        assert!(matches!(
            udp(&dgram, 8),
            Err(DecodeSkip::BadTransportHeader)
        ));
    }

    #[test]
    fn udp_length_above_ip_payload_is_bad() {
        let dgram = [0, 53, 0, 53, 0, 12, 0, 0, 1, 2];
        assert!(matches!(
            udp(&dgram, 10),
            Err(DecodeSkip::BadTransportHeader)
        ));
    }

    #[test]
    fn udp_payload_cut_to_udp_length() {
        let dgram = [0, 53, 0, 54, 0, 10, 0, 0, 1, 2, 0xEE, 0xEE];
        let Ok(Transport::Done {
            l4: L4::Udp(udp),
            l4_bytes,
            l4_wire_len,
        }) = udp(&dgram, 12)
        else {
            panic!("not udp");
        };
        assert_eq!(udp.src_port, 53);
        assert_eq!(udp.dst_port, 54);
        assert_eq!(udp.payload, &[1, 2]);
        assert_eq!(l4_bytes.len(), 10);
        assert_eq!(l4_wire_len, 10);
    }

    #[test]
    fn reassembled_mixed_families_is_bad() {
        let result = reassembled(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            PROTO_UDP,
            &[],
            false,
        );
        assert!(matches!(result, Err(DecodeSkip::BadIpHeader)));
    }

    #[test]
    fn reassembled_with_second_fragment_header_is_bad() {
        let bytes = [PROTO_UDP, 0, 0, 8, 0, 0, 0, 1, 0, 0];
        let result = reassembled(
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            PROTO_FRAGMENT,
            &bytes,
            false,
        );
        assert!(matches!(result, Err(DecodeSkip::BadIpHeader)));
    }
}
