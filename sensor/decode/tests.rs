//! Whole-packet tests of the decode stage: every link type, tunnel kind, fragments, checksums,
//! truncation at every offset and garbage input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{PacketBuilder, VlanId};

use super::*;

const MAC_DST: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_SRC: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];
const CLIENT4: [u8; 4] = [10, 0, 0, 1];
const SERVER4: [u8; 4] = [10, 0, 0, 2];
const OUTER_A: [u8; 4] = [192, 0, 2, 1];
const OUTER_B: [u8; 4] = [192, 0, 2, 2];
const CLIENT6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const SERVER6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const HELLO: &[u8] = b"\x16\x03\x01\x00\x05hello";

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn v6(a: [u8; 16]) -> IpAddr {
    IpAddr::V6(Ipv6Addr::from(a))
}

/// Internet checksum for building test headers.
fn inet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet with the given fragment field (flags and offset in 8-byte units).
fn ipv4_with(src: [u8; 4], dst: [u8; 4], proto: u8, id: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut packet = vec![0x45, 0];
    packet.extend(total.to_be_bytes());
    packet.extend(id.to_be_bytes());
    packet.extend(frag.to_be_bytes());
    packet.extend([64, proto, 0, 0]);
    packet.extend(src);
    packet.extend(dst);
    let checksum = inet_checksum(&packet);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(src, dst, proto, 0x1234, 0x4000, payload)
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend((payload.len() as u16).to_be_bytes());
    packet.extend([next, 64]);
    packet.extend(src);
    packet.extend(dst);
    packet.extend_from_slice(payload);
    packet
}

/// A UDP datagram without checksum (fine over IPv4 outer headers).
fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut datagram = src_port.to_be_bytes().to_vec();
    datagram.extend(dst_port.to_be_bytes());
    datagram.extend(((8 + payload.len()) as u16).to_be_bytes());
    datagram.extend([0, 0]);
    datagram.extend_from_slice(payload);
    datagram
}

fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut frame = MAC_DST.to_vec();
    frame.extend(MAC_SRC);
    frame.extend(ethertype.to_be_bytes());
    frame.extend_from_slice(body);
    frame
}

/// IPv4 TCP 40000 -> 443 carrying `HELLO`, valid checksums.
fn inner_tcp4() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 443, 1000, 65535)
        .ack(77)
        .psh()
        .write(&mut packet, HELLO)
        .unwrap();
    packet
}

/// IPv6 UDP 50000 -> 53 carrying `HELLO`, valid checksum.
fn inner_udp6() -> Vec<u8> {
    let mut packet = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .udp(50000, 53)
        .write(&mut packet, HELLO)
        .unwrap();
    packet
}

fn assert_tcp4(d: &Decoded<'_>) {
    assert_eq!(d.ip.src, v4(CLIENT4));
    assert_eq!(d.ip.dst, v4(SERVER4));
    assert_eq!(d.ip.proto, 6);
    let L4::Tcp(tcp) = d.l4 else {
        panic!("not tcp: {:?}", d.l4)
    };
    assert_eq!(tcp.src_port, 40000);
    assert_eq!(tcp.dst_port, 443);
    assert_eq!(tcp.seq, 1000);
    assert_eq!(tcp.ack, 77);
    assert_eq!(tcp.flags, TcpSegment::ACK | 0x08);
    assert_eq!(tcp.payload, HELLO);
    assert_eq!(tcp.wire_payload_len, HELLO.len() as u32);
    assert!(!d.truncated);
    assert_eq!(transport_checksum_ok(d), Some(true));
}

fn assert_udp6(d: &Decoded<'_>) {
    assert_eq!(d.ip.src, v6(CLIENT6));
    assert_eq!(d.ip.dst, v6(SERVER6));
    assert_eq!(d.ip.proto, 17);
    let L4::Udp(udp) = d.l4 else {
        panic!("not udp: {:?}", d.l4)
    };
    assert_eq!(udp.src_port, 50000);
    assert_eq!(udp.dst_port, 53);
    assert_eq!(udp.payload, HELLO);
    assert!(!d.truncated);
    assert_eq!(transport_checksum_ok(d), Some(true));
}

fn hops(d: &Decoded<'_>) -> Vec<OuterHop> {
    d.outer_hops().collect()
}

fn hop(src: [u8; 4], dst: [u8; 4], tunnel: TunnelKind) -> OuterHop {
    OuterHop {
        src: v4(src),
        dst: v4(dst),
        tunnel,
    }
}

/// Checks what must hold for any decode result of `packet` (which has no link padding) cut
/// to `cut` bytes.
fn check_consistent(link: LinkType, packet: &[u8], cut: usize) {
    let Some(captured) = packet.get(..cut) else {
        return;
    };
    let dispatched = dispatch_bits(link, captured);
    let Ok(d) = decode_packet(link, captured) else {
        return;
    };
    // The dispatcher's fast path agrees with the full decode whenever the packet decodes.
    assert_eq!(
        dispatched,
        Some((ip_bits(d.ip.src), ip_bits(d.ip.dst))),
        "dispatch at cut {cut}"
    );
    assert_eq!(
        d.truncated,
        cut < packet.len(),
        "truncated flag at cut {cut}"
    );
    assert!(usize::from(d.outer_len) <= MAX_TUNNEL_DEPTH);
    assert!(
        d.l4_bytes.len() as u64 <= u64::from(d.l4_wire_len),
        "cut {cut}"
    );
    if let L4::Tcp(tcp) = d.l4 {
        assert!(tcp.payload.len() as u64 <= u64::from(tcp.wire_payload_len));
    }
    if cut < packet.len() {
        assert_eq!(transport_checksum_ok(&d), None, "checksum at cut {cut}");
    }
}

// ---- plain packets and link types ----

#[test]
fn ethernet_ipv4_tcp() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 443, 1000, 65535)
        .ack(77)
        .psh()
        .write(&mut frame, HELLO)
        .unwrap();
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(d.link.src_mac, Some(MAC_SRC));
    assert_eq!(d.link.dst_mac, Some(MAC_DST));
    assert_eq!(d.link.vlan, None);
    assert_eq!(d.outer_len, 0);
    assert_eq!(d.ip_packet, &frame[14..]);
    assert_eq!(d.innermost_tunnel(), None);
}

#[test]
fn ethernet_padding_is_cut_by_ip_length() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .ipv4(CLIENT4, SERVER4, 64)
        .udp(5353, 53)
        .write(&mut frame, b"x")
        .unwrap();
    frame.resize(60, 0);
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    let L4::Udp(udp) = d.l4 else { panic!() };
    assert_eq!(udp.payload, b"x");
    assert_eq!(d.ip_packet.len(), 29);
    assert!(!d.truncated);
    assert_eq!(transport_checksum_ok(&d), Some(true));
}

#[test]
fn tcp_with_options() {
    let mut frame = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .tcp(1, 2, 3, 4)
        .syn()
        .options_raw(&[2, 4, 5, 0xb4, 1, 1, 4, 2])
        .unwrap()
        .write(&mut frame, &[])
        .unwrap();
    let d = decode_packet(LinkType::RAW, &frame).unwrap();
    let L4::Tcp(tcp) = d.l4 else { panic!() };
    assert_eq!(tcp.flags, TcpSegment::SYN);
    assert!(tcp.payload.is_empty());
    assert_eq!(tcp.wire_payload_len, 0);
    assert_eq!(d.l4_bytes.len(), 28);
    assert_eq!(transport_checksum_ok(&d), Some(true));
}

#[test]
fn snap_length_cuts_tcp_payload() {
    let mut frame = ethernet(0x0800, &inner_tcp4());
    frame.truncate(frame.len() - 4);
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    let L4::Tcp(tcp) = d.l4 else { panic!() };
    assert_eq!(tcp.payload, &HELLO[..HELLO.len() - 4]);
    assert_eq!(tcp.wire_payload_len, HELLO.len() as u32);
    assert!(d.truncated);
    assert_eq!(transport_checksum_ok(&d), None);
}

#[test]
fn ipv4_total_length_zero_means_captured_length() {
    let mut packet = inner_tcp4();
    packet[2] = 0;
    packet[3] = 0;
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    let L4::Tcp(tcp) = d.l4 else { panic!() };
    assert_eq!(tcp.payload, HELLO);
    assert!(!d.truncated);
}

#[test]
fn ipv4_bad_ihl_and_total_length() {
    let mut packet = inner_tcp4();
    packet[0] = 0x44;
    assert_eq!(
        decode_packet(LinkType::RAW, &packet).err(),
        Some(DecodeSkip::BadIpHeader)
    );
    let mut packet = inner_tcp4();
    packet[2] = 0;
    packet[3] = 19;
    assert_eq!(
        decode_packet(LinkType::RAW, &packet).err(),
        Some(DecodeSkip::BadIpHeader)
    );
    let mut packet = inner_tcp4();
    packet[0] = 0x4F; // 60-byte header in a packet with 20
    assert_eq!(
        decode_packet(LinkType::RAW, &packet[..40]).err(),
        Some(DecodeSkip::BadIpHeader)
    );
}

#[test]
fn ipv4_header_longer_than_capture_is_truncated() {
    let packet = ipv4(CLIENT4, SERVER4, 6, &[0; 60]);
    let mut with_options = packet.clone();
    with_options[0] = 0x4F;
    assert_eq!(
        decode_packet(LinkType::IPV4, &with_options[..40]).err(),
        Some(DecodeSkip::TruncatedIp)
    );
}

#[test]
fn ip_version_mismatch_for_link_type() {
    assert_eq!(
        decode_packet(LinkType::IPV6, &inner_tcp4()).err(),
        Some(DecodeSkip::BadIpHeader)
    );
    assert_eq!(
        decode_packet(LinkType::IPV4, &inner_udp6()).err(),
        Some(DecodeSkip::BadIpHeader)
    );
}

#[test]
fn ipv6_udp_checksum_right_and_wrong() {
    let packet = inner_udp6();
    let d = decode_packet(LinkType::IPV6, &packet).unwrap();
    assert_udp6(&d);
    let mut bad = packet.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let d = decode_packet(LinkType::IPV6, &bad).unwrap();
    assert_eq!(transport_checksum_ok(&d), Some(false));
}

#[test]
fn ipv4_tcp_checksum_wrong() {
    let mut packet = inner_tcp4();
    packet[24] ^= 0x80; // sequence number
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(transport_checksum_ok(&d), Some(false));
}

#[test]
fn udp_zero_checksum_ipv4_is_unchecked() {
    let packet = ipv4(CLIENT4, SERVER4, 17, &udp(1, 53, b"query"));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(transport_checksum_ok(&d), None);
}

#[test]
fn udp_zero_checksum_ipv6_is_wrong() {
    let packet = ipv6(CLIENT6, SERVER6, 17, &udp(1, 53, b"query"));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(transport_checksum_ok(&d), Some(false));
}

#[test]
fn odd_length_udp_checksum() {
    let mut packet = Vec::new();
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .udp(1, 2)
        .write(&mut packet, b"odd")
        .unwrap();
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(transport_checksum_ok(&d), Some(true));
}

#[test]
fn single_and_double_vlan() {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 443, 1000, 65535)
        .ack(77)
        .psh()
        .write(&mut frame, HELLO)
        .unwrap();
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(d.link.vlan, Some(42));

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
        .ipv6(CLIENT6, SERVER6, 64)
        .udp(50000, 53)
        .write(&mut frame, HELLO)
        .unwrap();
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_udp6(&d);
    assert_eq!(d.link.vlan, Some(200));
}

#[test]
fn every_link_type_reaches_tcp() {
    let ip = inner_tcp4();
    let ip6 = inner_udp6();
    let with = |prefix: &[u8], body: &[u8]| [prefix, body].concat();
    let sll = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    let sll2 = [
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    let cases = [
        (LinkType::ETHERNET, ethernet(0x0800, &ip)),
        (LinkType::RAW, ip.clone()),
        (LinkType::RAW_DLT12, ip.clone()),
        (LinkType::RAW_DLT14, ip.clone()),
        (LinkType::IPV4, ip.clone()),
        (LinkType::NULL, with(&[2, 0, 0, 0], &ip)),
        (LinkType::NULL, with(&[0, 0, 0, 2], &ip)),
        (LinkType::LOOP, with(&[0, 0, 0, 2], &ip)),
        (LinkType::LINUX_SLL, with(&sll, &ip)),
        (LinkType::LINUX_SLL2, with(&sll2, &ip)),
    ];
    for (link, frame) in cases {
        let d = decode_packet(link, &frame).unwrap_or_else(|e| panic!("{link:?}: {e:?}"));
        assert_tcp4(&d);
    }
    let cases6 = [
        (LinkType::IPV6, ip6.clone()),
        (LinkType::RAW, ip6.clone()),
        (LinkType::NULL, with(&[30, 0, 0, 0], &ip6)),
        (LinkType::NULL, with(&[0, 0, 0, 28], &ip6)),
        (LinkType::LOOP, with(&[0, 0, 0, 24], &ip6)),
    ];
    for (link, frame) in cases6 {
        let d = decode_packet(link, &frame).unwrap_or_else(|e| panic!("{link:?}: {e:?}"));
        assert_udp6(&d);
    }
    let packet = with(&sll, &ip);
    let d = decode_packet(LinkType::LINUX_SLL, &packet).unwrap();
    assert_eq!(d.link.src_mac, Some([1, 2, 3, 4, 5, 6]));
}

#[test]
fn mpls_two_labels_and_pseudowire() {
    let mut body = vec![0x00, 0x3e, 0x80, 0x40, 0x00, 0x7d, 0x01, 0x40]; // 1000, 2000 bottom
    body.extend(inner_tcp4());
    let packet = ethernet(0x8847, &body);
    let d = decode_packet(LinkType::ETHERNET, &packet).unwrap();
    assert_tcp4(&d);

    let mut body = vec![0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0];
    body.extend(ethernet(0x86DD, &inner_udp6()));
    let packet = ethernet(0x8847, &body);
    let d = decode_packet(LinkType::ETHERNET, &packet).unwrap();
    assert_udp6(&d);
    assert_eq!(d.link.src_mac, Some(MAC_SRC));
}

#[test]
fn pppoe_session_ipv4() {
    let ip = inner_tcp4();
    let mut body = vec![0x11, 0x00, 0x00, 0x2a];
    body.extend(((ip.len() + 2) as u16).to_be_bytes());
    body.extend([0x00, 0x21]);
    body.extend(&ip);
    let packet = ethernet(0x8864, &body);
    let d = decode_packet(LinkType::ETHERNET, &packet).unwrap();
    assert_tcp4(&d);
}

#[test]
fn non_ip_ethertype() {
    assert_eq!(
        decode_packet(LinkType::ETHERNET, &ethernet(0x0806, &[0; 28])).err(),
        Some(DecodeSkip::NotIp)
    );
}

// ---- IPv6 extension headers ----

/// Inserts extension headers (each a full header whose first byte is overwritten) after the
/// IPv6 header of `packet`, chaining next-header values.
fn with_extensions(packet: &[u8], headers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = packet[..40].to_vec();
    let final_next = out[6];
    let mut chain = Vec::new();
    for (i, (kind, header)) in headers.iter().enumerate() {
        let mut header = header.clone();
        header[0] = headers.get(i + 1).map_or(final_next, |(k, _)| *k);
        if i == 0 {
            out[6] = *kind;
        }
        chain.extend(header);
    }
    out.extend(chain);
    out.extend_from_slice(&packet[40..]);
    let payload_len = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&payload_len.to_be_bytes());
    out
}

#[test]
fn ipv6_three_extension_headers_then_udp() {
    let hop_by_hop = vec![0, 0, 1, 4, 0, 0, 0, 0]; // PadN
    let routing = vec![
        0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let destination = vec![0, 0, 1, 4, 0, 0, 0, 0];
    let packet = with_extensions(
        &inner_udp6(),
        &[(0, hop_by_hop), (43, routing), (60, destination)],
    );
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
    assert!(!d.routed);
    assert_eq!(d.ip_packet, &packet[..]);
}

#[test]
fn ipv6_jumbogram_reads_captured_length() {
    let mut packet = Vec::new();
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 443, 1000, 65535)
        .write(&mut packet, HELLO)
        .unwrap();
    let tcp_len = (packet.len() - 40) as u32;
    // Hop-by-hop header with a Jumbo Payload option (RFC 2675 §2), payload length 0.
    let mut jumbo = vec![0, 0, 0xC2, 4];
    jumbo.extend((tcp_len + 8).to_be_bytes());
    let mut packet = with_extensions(&packet, &[(0, jumbo)]);
    packet[4] = 0;
    packet[5] = 0;
    let d = decode_packet(LinkType::IPV6, &packet).unwrap();
    let L4::Tcp(tcp) = d.l4 else { panic!() };
    assert_eq!(tcp.payload, HELLO);
    assert_eq!(d.l4_wire_len, tcp_len);
    assert!(!d.truncated);
    assert_eq!(transport_checksum_ok(&d), Some(true));
}

#[test]
fn ipv6_zero_payload_length_without_hop_by_hop_is_empty() {
    let mut packet = inner_udp6();
    packet[4] = 0;
    packet[5] = 0;
    assert_eq!(
        decode_packet(LinkType::IPV6, &packet).err(),
        Some(DecodeSkip::BadTransportHeader)
    );
}

#[test]
fn ipv6_routing_with_segments_left_skips_checksum() {
    let mut routing = vec![0, 2, 0, 1];
    routing.resize(24, 0);
    let packet = with_extensions(&inner_udp6(), &[(43, routing)]);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert!(d.routed);
    assert!(matches!(d.l4, L4::Udp(_)));
    assert_eq!(transport_checksum_ok(&d), None);
}

#[test]
fn ipv6_esp_and_no_next_header_are_other() {
    let packet = ipv6(CLIENT6, SERVER6, 50, &[0; 16]);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(d.l4, L4::Other { proto: 50 });
    let packet = with_extensions(&ipv6(CLIENT6, SERVER6, 59, &[]), &[(60, vec![0; 8])]);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(d.l4, L4::Other { proto: 59 });
    assert_eq!(transport_checksum_ok(&d), None);
}

#[test]
fn ipv4_icmp_is_other() {
    let packet = ipv4(CLIENT4, SERVER4, 1, &[8, 0, 0, 0, 0, 0, 0, 0]);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(d.l4, L4::Other { proto: 1 });
    assert_eq!(d.l4_bytes.len(), 8);
}

// ---- fragments and reassembly ----

#[test]
fn ipv4_first_and_later_fragments() {
    let payload = udp(1000, 53, &[0xAB; 32]);
    let first = ipv4_with(CLIENT4, SERVER4, 17, 0xBEEF, 0x2000, &payload[..24]);
    let d = decode_packet(LinkType::RAW, &first).unwrap();
    assert_eq!(
        d.l4,
        L4::Fragment(IpFragment {
            id: 0xBEEF,
            offset: 0,
            more_fragments: true,
            proto: 17,
            payload: &payload[..24],
        })
    );
    assert_eq!(transport_checksum_ok(&d), None);

    let later = ipv4_with(CLIENT4, SERVER4, 17, 0xBEEF, 3, &payload[24..]);
    let d = decode_packet(LinkType::RAW, &later).unwrap();
    assert_eq!(
        d.l4,
        L4::Fragment(IpFragment {
            id: 0xBEEF,
            offset: 24,
            more_fragments: false,
            proto: 17,
            payload: &payload[24..],
        })
    );
}

#[test]
fn ipv6_first_and_later_fragments() {
    let whole = inner_udp6();
    let udp_bytes = &whole[40..];
    let fragment = |offset_units: u16, more: bool, part: &[u8]| {
        let mut header = vec![17, 0];
        header.extend((offset_units << 3 | u16::from(more)).to_be_bytes());
        header.extend(0xCAFE_F00Du32.to_be_bytes());
        header.extend_from_slice(part);
        ipv6(CLIENT6, SERVER6, 44, &header)
    };
    let first = fragment(0, true, &udp_bytes[..8]);
    let d = decode_packet(LinkType::IPV6, &first).unwrap();
    assert_eq!(
        d.l4,
        L4::Fragment(IpFragment {
            id: 0xCAFE_F00D,
            offset: 0,
            more_fragments: true,
            proto: 17,
            payload: &udp_bytes[..8],
        })
    );
    assert_eq!(d.ip.proto, 17);

    let later = fragment(1, false, &udp_bytes[8..]);
    let d = decode_packet(LinkType::IPV6, &later).unwrap();
    let L4::Fragment(frag) = d.l4 else { panic!() };
    assert_eq!(frag.offset, 8);
    assert!(!frag.more_fragments);
    assert_eq!(frag.payload, &udp_bytes[8..]);

    // The flow stage reassembles and resumes; the checksum of the whole is checkable.
    let d = decode_ip_payload(&d, v6(CLIENT6), v6(SERVER6), 17, udp_bytes).unwrap();
    assert_udp6(&d);
}

#[test]
fn ipv6_atomic_fragment_is_whole() {
    let whole = inner_udp6();
    let mut header = vec![17, 0, 0, 0, 0, 0, 0, 1];
    header.extend_from_slice(&whole[40..]);
    let packet = ipv6(CLIENT6, SERVER6, 44, &header);
    let d = decode_packet(LinkType::IPV6, &packet).unwrap();
    assert_udp6(&d);
}

#[test]
fn reassembled_payload_keeps_outer_context() {
    // A fragment inside GRE: the context carries the link and the GRE hop.
    let gre = [
        &[0x00, 0x00, 0x08, 0x00][..],
        &ipv4_with(CLIENT4, SERVER4, 6, 9, 0x2000, &[0; 16]),
    ]
    .concat();
    let frame = ethernet(0x0800, &ipv4(OUTER_A, OUTER_B, 47, &gre));
    let context = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert!(matches!(context.l4, L4::Fragment(_)));

    let whole = inner_tcp4();
    let d = decode_ip_payload(&context, v4(CLIENT4), v4(SERVER4), 6, &whole[20..]).unwrap();
    assert_tcp4(&d);
    assert_eq!(d.link.src_mac, Some(MAC_SRC));
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Gre)]);
}

#[test]
fn reassembled_payload_with_tunnel_inside() {
    let packet = ipv4_with(OUTER_A, OUTER_B, 4, 1, 0x2000, &[0; 8]);
    let context = decode_packet(LinkType::RAW, &packet).unwrap();
    let whole = inner_tcp4();
    let d = decode_ip_payload(&context, v4(OUTER_A), v4(OUTER_B), 4, &whole).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::IpInIp)]);
}

#[test]
fn reassembled_ipv6_walks_destination_options() {
    let whole = inner_udp6();
    let mut payload = vec![17, 0, 1, 4, 0, 0, 0, 0];
    payload.extend_from_slice(&whole[40..]);
    let context = decode_packet(LinkType::IPV6, &whole).unwrap();
    let d = decode_ip_payload(&context, v6(CLIENT6), v6(SERVER6), 60, &payload).unwrap();
    assert_udp6(&d);
}

// ---- tunnels ----

#[test]
fn gre_keyed_and_sequenced() {
    let mut gre = vec![0x30, 0x00, 0x08, 0x00];
    gre.extend(0xDEAD_BEEFu32.to_be_bytes()); // key
    gre.extend(7u32.to_be_bytes()); // sequence
    gre.extend(inner_tcp4());
    let frame = ethernet(0x0800, &ipv4(OUTER_A, OUTER_B, 47, &gre));
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Gre)]);
    assert_eq!(d.innermost_tunnel(), Some(TunnelKind::Gre));
    assert_eq!(d.link.src_mac, Some(MAC_SRC));
}

#[test]
fn gre_with_checksum_carrying_ipv6() {
    let mut gre = vec![0x80, 0x00, 0x86, 0xDD, 0, 0, 0, 0];
    gre.extend(inner_udp6());
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Gre)]);
}

#[test]
fn gre_over_ipv6_outer() {
    let mut gre = vec![0x20, 0x00, 0x08, 0x00, 0, 0, 0, 42];
    gre.extend(inner_tcp4());
    let packet = ipv6(SERVER6, CLIENT6, 47, &gre);
    let d = decode_packet(LinkType::IPV6, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(
        hops(&d),
        vec![OuterHop {
            src: v6(SERVER6),
            dst: v6(CLIENT6),
            tunnel: TunnelKind::Gre
        }]
    );
}

#[test]
fn gre_transparent_bridging() {
    let mut gre = vec![0x00, 0x00, 0x65, 0x58];
    gre.extend(ethernet(0x0800, &inner_tcp4()));
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(d.link.src_mac, None);
}

#[test]
fn gre_mpls() {
    let mut gre = vec![0x00, 0x00, 0x88, 0x47, 0x00, 0x01, 0x01, 0x40];
    gre.extend(inner_tcp4());
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Gre)]);
}

#[test]
fn gre_pptp_is_other() {
    let gre = [
        0x30, 0x81, 0x88, 0x0B, 0, 4, 0, 1, 0, 0, 0, 1, 0xff, 0x03, 0, 0x21,
    ];
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_eq!(d.l4, L4::Other { proto: 47 });
    assert_eq!(d.outer_len, 0);
}

#[test]
fn gre_truncated_header() {
    let gre = [0x30, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        decode_packet(LinkType::RAW, &ipv4(OUTER_A, OUTER_B, 47, &gre)).err(),
        Some(DecodeSkip::TruncatedTunnel)
    );
}

#[test]
fn erspan_type_i() {
    let mut gre = vec![0x00, 0x00, 0x88, 0xBE];
    gre.extend(ethernet(0x0800, &inner_tcp4()));
    let frame = ethernet(0x0800, &ipv4(OUTER_A, OUTER_B, 47, &gre));
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Erspan)]);
}

#[test]
fn erspan_type_ii() {
    let mut gre = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 5];
    gre.extend([0x10, 0x64, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09]); // ver 1, vlan 100, session 1
    let mut inner = Vec::new();
    PacketBuilder::ethernet2([9; 6], [8; 6])
        .single_vlan(VlanId::try_new(100).unwrap())
        .ipv6(CLIENT6, SERVER6, 64)
        .udp(50000, 53)
        .write(&mut inner, HELLO)
        .unwrap();
    gre.extend(inner);
    let frame = ethernet(0x0800, &ipv4(OUTER_A, OUTER_B, 47, &gre));
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_udp6(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Erspan)]);
    // The mirrored frame's MACs and tag are not the capture's.
    assert_eq!(d.link.src_mac, Some(MAC_SRC));
    assert_eq!(d.link.vlan, None);
}

#[test]
fn erspan_type_iii_with_platform_subheader() {
    let mut gre = vec![0x10, 0x00, 0x22, 0xEB, 0, 0, 0, 5];
    gre.extend([0x20, 0x00, 0x00, 0x01]); // ver 2, session 1
    gre.extend([0x12, 0x34, 0x56, 0x78]); // timestamp
    gre.extend([0x00, 0x00, 0x00, 0x01]); // SGT, FT 0 (Ethernet), O
    gre.extend([0x0C, 0, 0, 0, 0, 0, 0, 0]); // platform subheader
    gre.extend(ethernet(0x0800, &inner_tcp4()));
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Erspan)]);
}

#[test]
fn erspan_type_iii_without_subheader() {
    let mut gre = vec![0x00, 0x00, 0x22, 0xEB];
    gre.extend([0x20, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
    gre.extend(ethernet(0x0800, &inner_tcp4()));
    let packet = ipv4(OUTER_A, OUTER_B, 47, &gre);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
}

fn vxlan_frame() -> Vec<u8> {
    let mut vxlan = vec![0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0x00]; // VNI 4096
    let mut inner = Vec::new();
    PacketBuilder::ethernet2([9; 6], [8; 6])
        .single_vlan(VlanId::try_new(300).unwrap())
        .ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 443, 1000, 65535)
        .ack(77)
        .psh()
        .write(&mut inner, HELLO)
        .unwrap();
    vxlan.extend(inner);
    ethernet(
        0x0800,
        &ipv4(OUTER_A, OUTER_B, 17, &udp(54321, 4789, &vxlan)),
    )
}

#[test]
fn vxlan() {
    let frame = vxlan_frame();
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Vxlan)]);
    assert_eq!(d.link.vlan, None);
    assert_eq!(d.link.dst_mac, Some(MAC_DST));
}

#[test]
fn vxlan_carrying_arp_is_not_ip() {
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    vxlan.extend(ethernet(0x0806, &[0; 28]));
    let packet = ipv4(OUTER_A, OUTER_B, 17, &udp(1, 4789, &vxlan));
    assert_eq!(
        decode_packet(LinkType::RAW, &packet).err(),
        Some(DecodeSkip::NotIp)
    );
}

#[test]
fn vxlan_port_without_valid_header_is_udp() {
    let packet = ipv4(OUTER_A, OUTER_B, 17, &udp(1, 4789, &[0; 30]));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    let L4::Udp(udp) = d.l4 else { panic!() };
    assert_eq!(udp.dst_port, 4789);
    assert_eq!(udp.payload.len(), 30);
    assert_eq!(d.outer_len, 0);
}

#[test]
fn geneve_with_options_ethernet() {
    let mut geneve = vec![0x02, 0x00, 0x65, 0x58, 0x00, 0x00, 0x2a, 0x00]; // 8 option bytes
    geneve.extend([0x01, 0x02, 0x80, 0x01, 0xAA, 0xBB, 0xCC, 0xDD]); // one 4-byte option
    geneve.extend(ethernet(0x86DD, &inner_udp6()));
    let packet = ipv4(OUTER_A, OUTER_B, 17, &udp(3000, 6081, &geneve));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Geneve)]);
}

#[test]
fn geneve_ipv4_protocol() {
    let mut geneve = vec![0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x2a, 0x00];
    geneve.extend(inner_tcp4());
    let packet = ipv4(OUTER_A, OUTER_B, 17, &udp(3000, 6081, &geneve));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
}

#[test]
fn ip_in_ip_all_four_combinations() {
    let packet = ipv4(OUTER_A, OUTER_B, 4, &inner_tcp4());
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::IpInIp)]);

    let packet = ipv4(OUTER_A, OUTER_B, 41, &inner_udp6());

    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::IpInIp)]);

    let outer6 = |next: u8, inner: &[u8]| ipv6(SERVER6, CLIENT6, next, inner);
    let packet = outer6(4, &inner_tcp4());
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(
        hops(&d),
        vec![OuterHop {
            src: v6(SERVER6),
            dst: v6(CLIENT6),
            tunnel: TunnelKind::IpInIp
        }]
    );
    let packet = outer6(41, &inner_udp6());
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
}

#[test]
fn ip_in_ip_with_wrong_inner_version() {
    assert_eq!(
        decode_packet(LinkType::RAW, &ipv4(OUTER_A, OUTER_B, 4, &inner_udp6())).err(),
        Some(DecodeSkip::BadIpHeader)
    );
}

fn gtpu_packet() -> Vec<u8> {
    let inner = inner_tcp4();
    // E set; sequence, N-PDU, next type 0x85 (PDU session container), one 4-byte extension.
    let mut gtp = vec![0x34, 0xFF];
    gtp.extend(((4 + 4 + inner.len()) as u16).to_be_bytes());
    gtp.extend(0x0000_0001u32.to_be_bytes());
    gtp.extend([0x00, 0x00, 0x00, 0x85]);
    gtp.extend([0x01, 0x10, 0x09, 0x00]);
    gtp.extend(inner);
    ipv4(OUTER_A, OUTER_B, 17, &udp(2152, 2152, &gtp))
}

#[test]
fn gtpu_with_extension_header() {
    let packet = gtpu_packet();
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::GtpU)]);
}

#[test]
fn gtpu_plain_ipv6() {
    let inner = inner_udp6();
    let mut gtp = vec![0x30, 0xFF];
    gtp.extend((inner.len() as u16).to_be_bytes());
    gtp.extend([0, 0, 0, 9]);
    gtp.extend(inner);
    let packet = ipv4(OUTER_A, OUTER_B, 17, &udp(40000, 2152, &gtp));
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
}

fn teredo_packet(auth: bool) -> Vec<u8> {
    let mut teredo = Vec::new();
    if auth {
        teredo.extend([0x00, 0x01, 2, 3, 0xC1, 0xC2, 0xA1, 0xA2, 0xA3]);
        teredo.extend([0x55; 8]); // nonce
        teredo.push(0); // confirmation
    }
    teredo.extend([0x00, 0x00, 0xF2, 0x27, 0x3F, 0xFF, 0xFD, 0xFE]); // origin indicator
    teredo.extend(inner_udp6());
    ipv4(OUTER_A, OUTER_B, 17, &udp(3544, 40000, &teredo))
}

#[test]
fn teredo_with_origin_indicator() {
    let packet = teredo_packet(false);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
    assert_eq!(hops(&d), vec![hop(OUTER_A, OUTER_B, TunnelKind::Teredo)]);
}

#[test]
fn teredo_with_authentication_and_origin() {
    let packet = teredo_packet(true);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_udp6(&d);
}

#[test]
fn teredo_port_with_dns_payload_is_udp() {
    let packet = ipv4(
        OUTER_A,
        OUTER_B,
        17,
        &udp(3544, 53, &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    );
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert!(matches!(d.l4, L4::Udp(UdpDatagram { dst_port: 53, .. })));
    assert_eq!(d.outer_len, 0);
}

// ---- nesting ----

/// `levels` IP-in-IP headers around the TCP packet.
fn nested_ipip(levels: usize) -> Vec<u8> {
    let mut packet = inner_tcp4();
    for _ in 0..levels {
        packet = ipv4(OUTER_A, OUTER_B, 4, &packet);
    }
    packet
}

#[test]
fn nesting_up_to_the_cap() {
    let packet = nested_ipip(MAX_TUNNEL_DEPTH);
    let d = decode_packet(LinkType::RAW, &packet).unwrap();
    assert_tcp4(&d);
    assert_eq!(usize::from(d.outer_len), MAX_TUNNEL_DEPTH);
    assert_eq!(hops(&d).len(), MAX_TUNNEL_DEPTH);
}

#[test]
fn nesting_past_the_cap() {
    assert_eq!(
        decode_packet(LinkType::RAW, &nested_ipip(MAX_TUNNEL_DEPTH + 1)).err(),
        Some(DecodeSkip::TunnelTooDeep)
    );
}

#[test]
fn mixed_nesting_erspan_vxlan() {
    // ERSPAN II carrying a mirrored VXLAN packet carrying TCP.
    let mut gre = vec![
        0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0,
    ];
    gre.extend(vxlan_frame());
    let frame = ethernet(0x0800, &ipv4([172, 16, 0, 1], [172, 16, 0, 2], 47, &gre));
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_tcp4(&d);
    assert_eq!(
        hops(&d),
        vec![
            hop([172, 16, 0, 1], [172, 16, 0, 2], TunnelKind::Erspan),
            hop(OUTER_A, OUTER_B, TunnelKind::Vxlan),
        ]
    );
    assert_eq!(d.innermost_tunnel(), Some(TunnelKind::Vxlan));
}

#[test]
fn reassembly_continues_depth_count() {
    let packet = nested_ipip(MAX_TUNNEL_DEPTH);
    let context = decode_packet(LinkType::RAW, &packet).unwrap();
    let inner = inner_tcp4();
    let result = decode_ip_payload(&context, v4(OUTER_A), v4(OUTER_B), 4, &inner);
    assert_eq!(result.err(), Some(DecodeSkip::TunnelTooDeep));
}

// ---- hostile input ----

fn sample_packets() -> Vec<(LinkType, Vec<u8>)> {
    let mut tcp_eth = Vec::new();
    PacketBuilder::ethernet2(MAC_SRC, MAC_DST)
        .double_vlan(VlanId::try_new(1).unwrap(), VlanId::try_new(2).unwrap())
        .ipv4(CLIENT4, SERVER4, 64)
        .tcp(40000, 443, 1000, 65535)
        .write(&mut tcp_eth, HELLO)
        .unwrap();
    let ext6 = with_extensions(
        &inner_udp6(),
        &[
            (0, vec![0, 0, 1, 4, 0, 0, 0, 0]),
            (60, vec![0, 0, 1, 4, 0, 0, 0, 0]),
        ],
    );
    let mut erspan3 = vec![
        0x00, 0x00, 0x22, 0xEB, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    erspan3.extend([0; 8]);
    erspan3.extend(ethernet(0x86DD, &ext6));
    let mut pppoe = vec![0x11, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x21];
    pppoe.extend(inner_tcp4());
    let mut mpls_pw = vec![0x00, 0x01, 0x01, 0x40, 0, 0, 0, 0];
    mpls_pw.extend(ethernet(0x0800, &inner_tcp4()));
    vec![
        (LinkType::ETHERNET, tcp_eth),
        (LinkType::ETHERNET, ethernet(0x86DD, &ext6)),
        (LinkType::ETHERNET, vxlan_frame()),
        (LinkType::RAW, gtpu_packet()),
        (LinkType::RAW, teredo_packet(true)),
        (LinkType::RAW, ipv4(OUTER_A, OUTER_B, 47, &erspan3)),
        (LinkType::RAW, nested_ipip(MAX_TUNNEL_DEPTH)),
        (LinkType::ETHERNET, ethernet(0x8864, &pppoe)),
        (LinkType::ETHERNET, ethernet(0x8847, &mpls_pw)),
        (
            LinkType::LINUX_SLL2,
            [
                &[
                    0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
                ][..],
                &inner_udp6(),
            ]
            .concat(),
        ),
    ]
}

#[test]
fn samples_decode_whole() {
    for (i, (link, packet)) in sample_packets().into_iter().enumerate() {
        let d = decode_packet(link, &packet).unwrap_or_else(|e| panic!("sample {i}: {e:?}"));
        assert!(!d.truncated, "sample {i}");
        assert_eq!(transport_checksum_ok(&d), Some(true), "sample {i}");
    }
}

#[test]
fn truncation_at_every_offset() {
    for (link, packet) in sample_packets() {
        for cut in 0..=packet.len() {
            check_consistent(link, &packet, cut);
        }
    }
}

#[test]
fn truncated_inside_transport_header() {
    let packet = inner_tcp4();
    for cut in 20..40 {
        assert_eq!(
            decode_packet(LinkType::RAW, &packet[..cut]).err(),
            Some(DecodeSkip::TruncatedTransport),
            "cut {cut}"
        );
    }
}

#[test]
fn bit_flips_in_samples_never_panic() {
    for (link, packet) in sample_packets() {
        for byte in 0..packet.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut flipped = packet.clone();
                flipped[byte] ^= bit;
                if let Ok(d) = decode_packet(link, &flipped) {
                    assert!(d.l4_bytes.len() as u64 <= u64::from(d.l4_wire_len));
                    let _ = transport_checksum_ok(&d);
                }
            }
        }
    }
}

#[test]
fn garbage_for_every_link_type() {
    let links = [
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::RAW_DLT12,
        LinkType::RAW_DLT14,
        LinkType::RAW,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
        LinkType(147),
    ];
    let mut rng = crate::test_rng::XorShift(0x9E37_79B9_7F4A_7C15);
    let mut next = move || rng.next();
    for link in links {
        for len in 0..300usize {
            let mut packet: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Steer some packets past the first layers so deeper parsers see garbage too.
            match (link, packet.first_mut()) {
                (LinkType::RAW | LinkType::IPV4, Some(b)) if len % 2 == 0 => *b = 0x45,
                (LinkType::IPV6, Some(b)) => *b = 0x60,
                _ => {}
            }
            if let Ok(d) = decode_packet(link, &packet) {
                assert!(d.l4_bytes.len() as u64 <= u64::from(d.l4_wire_len));
                let _ = transport_checksum_ok(&d);
            }
        }
    }
}

#[test]
fn decode_skip_labels_are_snake_case_and_unique() {
    use crate::reason::Reason;
    let labels: Vec<&str> = DecodeSkip::ALL.iter().map(|r| r.label()).collect();
    for label in &labels {
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{label}"
        );
    }
    let mut sorted = labels.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), labels.len());
}

// ---- dispatch_reading (the multi-worker reader's address pair and plain TCP reading) ----

/// The address pair [`dispatch_reading`] picks the worker by.
fn dispatch_bits(link: LinkType, packet: &[u8]) -> Option<(u128, u128)> {
    dispatch_reading(link, packet).1
}

/// Every packet of every committed capture: the dispatcher's pair is the full decode's, and the
/// worker's fast path reads what the full decode reads.
#[test]
fn fixed_offset_readers_agree_with_decode_on_every_committed_capture() {
    use crate::capture::file::FileSource;
    use crate::capture::{PacketSource, SourceStatus};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut checked = 0usize;
    let mut plain = 0usize;
    let mut plain_decoded = 0usize;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "pcap" && ext != "pcapng" {
            continue;
        }
        let mut src = FileSource::open(&path, 0).unwrap();
        while let Ok(SourceStatus::More) = src.next_packets(64, &mut |meta, data| {
            let full = decode_packet(meta.link, data)
                .ok()
                .map(|d| (ip_bits(d.ip.src), ip_bits(d.ip.dst)));
            assert_eq!(dispatch_bits(meta.link, data), full, "{}", path.display());
            assert!(
                plain_tcp_agrees_with_decode(meta.link, data),
                "plain_tcp: {}",
                path.display()
            );
            plain += usize::from(plain_tcp(meta.link, data).is_some());
            if meta.link == LinkType::ETHERNET {
                assert!(
                    decode_plain_agrees_with_full(data),
                    "decode_plain: {}",
                    path.display()
                );
                plain_decoded += usize::from(decode_plain(data).is_some());
            }
            assert_eq!(
                decode_packet(meta.link, data),
                decode_full(meta.link, data),
                "{}",
                path.display()
            );
            assert_eq!(
                dispatch_reading(meta.link, data).0,
                plain_tcp(meta.link, data),
                "{}",
                path.display()
            );
            checked += 1;
        }) {}
    }
    assert!(checked > 1000, "{checked}");
    // Most TCP on the committed captures is plain: the fast path is exercised, not skipped.
    assert!(plain > checked / 4, "{plain} plain TCP of {checked}");
    assert!(
        plain_decoded > checked / 2,
        "{plain_decoded} packets of {checked} decoded at fixed offsets"
    );
}

/// [`decode_plain`] answers for plain TCP and UDP over IPv4 and IPv6, VLAN-tagged or not, and
/// leaves every variation it does not cover to the full walk: cuts anywhere, IP options,
/// fragments, a UDP length short of the payload, tunnel ports, other protocols.
#[test]
fn decode_plain_takes_the_common_shapes_and_leaves_the_rest() {
    for tags in 0..=2 {
        let frame = ethernet_tcp4(tags);
        let fast = decode_plain(&frame).expect("plain TCP");
        assert_eq!(fast.link.vlan, (tags > 0).then_some(0x64));
        assert!(decode_plain_agrees_with_full(&frame));
        for cut in 0..frame.len() {
            let cut = &frame[..cut];
            assert!(decode_plain(cut).is_none(), "cut at {}", cut.len());
            assert!(decode_plain_agrees_with_full(cut));
        }
    }
    let mut udp4 = vec![0u8; 12];
    udp4.extend_from_slice(&[0x08, 0x00]);
    PacketBuilder::ipv4(CLIENT4, SERVER4, 64)
        .udp(50000, 53)
        .write(&mut udp4, HELLO)
        .unwrap();
    let d = decode_plain(&udp4).expect("plain UDP");
    assert!(matches!(d.l4, L4::Udp(u) if u.payload == HELLO && u.dst_port == 53));
    assert!(decode_plain_agrees_with_full(&udp4));
    let mut udp6 = vec![0u8; 12];
    udp6.extend_from_slice(&[0x86, 0xdd]);
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .udp(50000, 53)
        .write(&mut udp6, HELLO)
        .unwrap();
    assert!(decode_plain(&udp6).is_some());
    assert!(decode_plain_agrees_with_full(&udp6));
    let ip = 14;
    /// A change to a plain frame that must send it down the full walk.
    type Variation<'a> = (&'static str, Box<dyn Fn(&mut Vec<u8>) + 'a>);
    let variants: Vec<Variation> = vec![
        ("IP options", Box::new(|f: &mut Vec<u8>| f[ip] = 0x46)),
        ("MF set", Box::new(|f: &mut Vec<u8>| f[ip + 6] |= 0x20)),
        ("fragment offset", Box::new(|f: &mut Vec<u8>| f[ip + 7] = 1)),
        (
            "total length 0",
            Box::new(|f: &mut Vec<u8>| {
                f[ip + 2] = 0;
                f[ip + 3] = 0;
            }),
        ),
        (
            "UDP length short",
            Box::new(|f: &mut Vec<u8>| f[ip + 25] -= 1),
        ),
        (
            "VXLAN port",
            Box::new(|f: &mut Vec<u8>| {
                f[ip + 22] = (4789u16 >> 8) as u8;
                f[ip + 23] = (4789u16 & 0xff) as u8;
            }),
        ),
        ("ICMP", Box::new(|f: &mut Vec<u8>| f[ip + 9] = 1)),
        (
            "Ethernet padding",
            Box::new(|f: &mut Vec<u8>| f.extend_from_slice(&[0; 6])),
        ),
    ];
    for (what, change) in variants {
        let mut frame = udp4.clone();
        change(&mut frame);
        let padded = what == "Ethernet padding";
        assert_eq!(decode_plain(&frame).is_some(), padded, "{what}");
        assert!(decode_plain_agrees_with_full(&frame), "{what}");
    }
}

// ---- plain_tcp (the worker's fast path) ----

/// A plain IPv4 TCP frame (inner_tcp4 behind an Ethernet header), VLAN-tagged `tags` times.
fn ethernet_tcp4(tags: usize) -> Vec<u8> {
    let mut frame = vec![0u8; 12];
    for _ in 0..tags {
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&inner_tcp4());
    frame
}

#[test]
fn plain_tcp_reads_vlan_tagged_ipv4() {
    for tags in 0..=2 {
        let frame = ethernet_tcp4(tags);
        let seg = plain_tcp(LinkType::ETHERNET, &frame).expect("plain");
        assert_eq!(seg.src, ip_bits(v4(CLIENT4)));
        assert_eq!(seg.dst, ip_bits(v4(SERVER4)));
        assert!(plain_tcp_agrees_with_decode(LinkType::ETHERNET, &frame));
    }
    let mut frame6 = vec![0u8; 12];
    frame6.extend_from_slice(&[0x86, 0xdd]);
    PacketBuilder::ipv6(CLIENT6, SERVER6, 64)
        .tcp(40000, 443, 1000, 65535)
        .fin()
        .ack(5)
        .write(&mut frame6, HELLO)
        .unwrap();
    let seg = plain_tcp(LinkType::ETHERNET, &frame6).expect("plain IPv6");
    assert_eq!((seg.src_port, seg.dst_port), (40000, 443));
    assert_ne!(seg.flags & TcpSegment::FIN, 0);
    assert!(plain_tcp_agrees_with_decode(LinkType::ETHERNET, &frame6));
}

#[test]
fn plain_tcp_leaves_everything_unusual_to_the_full_decode() {
    let frame = ethernet_tcp4(0);
    let ip = 14;
    // Cut by the snap length anywhere: the full decode marks it truncated (or skips it).
    for cut in 0..frame.len() {
        assert_eq!(
            plain_tcp(LinkType::ETHERNET, &frame[..cut]),
            None,
            "cut at {cut}"
        );
    }
    let with = |at: usize, value: u8| {
        let mut f = frame.clone();
        f[at] = value;
        f
    };
    // IPv4 options (IHL 6), a fragment (MF, or an offset), UDP, version 6 in an IPv4 frame.
    for f in [
        with(ip, 0x46),
        with(ip + 6, 0x20),
        with(ip + 7, 0x01),
        with(ip + 9, 17),
        with(ip, 0x65),
    ] {
        assert_eq!(plain_tcp(LinkType::ETHERNET, &f), None);
        assert!(plain_tcp_agrees_with_decode(LinkType::ETHERNET, &f));
    }
    // A TCP data offset below 5 words or past the segment.
    let tcp = ip + 20;
    for offset in [0x40u8, 0xf0] {
        assert_eq!(plain_tcp(LinkType::ETHERNET, &with(tcp + 12, offset)), None);
    }
    // Not Ethernet: the full decode.
    assert_eq!(plain_tcp(LinkType::RAW, &inner_tcp4()), None);
    // Trailing padding after the IP packet (short frames) is fine: the IP length rules.
    let mut padded = frame.clone();
    padded.extend_from_slice(&[0; 6]);
    assert!(plain_tcp(LinkType::ETHERNET, &padded).is_some());
    assert!(plain_tcp_agrees_with_decode(LinkType::ETHERNET, &padded));
}

#[test]
fn dispatch_bits_of_vxlan_are_the_inner_pair() {
    let frame = vxlan_frame();
    let d = decode_packet(LinkType::ETHERNET, &frame).unwrap();
    assert_eq!(d.outer_len, 1);
    assert_eq!(
        dispatch_bits(LinkType::ETHERNET, &frame),
        Some((ip_bits(v4(CLIENT4)), ip_bits(v4(SERVER4))))
    );
}

#[test]
fn dispatch_bits_of_vlan_tagged_ipv4_tcp() {
    let tcp4 = inner_tcp4();
    let mut tagged = vec![0u8; 12];
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x81, 0x00, 0x00, 0x65, 0x08, 0x00]);
    tagged.extend_from_slice(&tcp4);
    assert_eq!(
        dispatch_bits(LinkType::ETHERNET, &tagged),
        Some((ip_bits(v4(CLIENT4)), ip_bits(v4(SERVER4))))
    );
}

#[test]
fn dispatch_bits_of_garbage_is_none_at_every_length() {
    let garbage = [0xffu8; 80];
    for cut in 0..=garbage.len() {
        assert_eq!(dispatch_bits(LinkType::ETHERNET, &garbage[..cut]), None);
    }
    // Five VLAN tags: over the cap, the full decode refuses it.
    let mut deep = vec![0u8; 12];
    for _ in 0..5 {
        deep.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
    }
    deep.extend_from_slice(&[0x08, 0x00]);
    deep.extend_from_slice(&inner_tcp4());
    assert_eq!(dispatch_bits(LinkType::ETHERNET, &deep), None);
}
