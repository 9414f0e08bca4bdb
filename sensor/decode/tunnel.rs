//! Tunnel headers: GRE (RFC 2784, RFC 2890) and the ERSPAN types it carries
//! (draft-foschiano-erspan-03), and the UDP encapsulations VXLAN (RFC 7348), GENEVE (RFC 8926),
//! GTP-U (3GPP TS 29.281), Teredo (RFC 4380) and CAPWAP data (RFC 5415 §4.3, RFC 5416). IP-in-IP needs no header and is dispatched in
//! [`super::ip`].
//!
//! Input: the payload after the outer IP (GRE) or UDP header. Output: the [`Inner`] layer to
//! descend into, borrowed from the payload; nothing is copied. GRE is identified by its IP
//! protocol number, so a damaged GRE header is a [`DecodeSkip`]; the UDP encapsulations are
//! only guessed from a port, so they are followed only when their header is valid and complete,
//! and otherwise the datagram stays ordinary UDP. Once a tunnel header is accepted, the layers
//! inside are the packet's: an inner frame that is not IP (ARP over VXLAN) or is damaged is
//! skipped with the inner reason, not reported as the outer UDP datagram.
//! Cap: [`MAX_GTPU_EXT_HEADERS`].

use super::link::Network;
use super::{DecodeSkip, TunnelKind};

/// GTP-U extension headers followed per G-PDU. TS 29.281 §5.2 defines fewer than ten types and
/// user-plane traffic carries one or two (a PDU session container on 5G N3, a PDCP number
/// during handover); eight bounds the chain with room to spare.
pub const MAX_GTPU_EXT_HEADERS: usize = 8;

/// IANA-assigned UDP ports.
pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const GTPU_PORT: u16 = 2152;
pub const TEREDO_PORT: u16 = 3544;
/// CAPWAP data channel (RFC 5415 §15.4): wireless controllers and their access points.
pub const CAPWAP_DATA_PORT: u16 = 5247;

/// GRE flag bits (RFC 2784 §2, RFC 2890 §2; R and s from RFC 1701).
const GRE_CHECKSUM: u16 = 0x8000;
const GRE_ROUTING: u16 = 0x4000;
const GRE_KEY: u16 = 0x2000;
const GRE_SEQUENCE: u16 = 0x1000;
const GRE_STRICT_SOURCE_ROUTE: u16 = 0x0800;
const GRE_VERSION: u16 = 0x0007;

/// Protocol types in GRE and GENEVE (ethertypes).
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_TRANSPARENT_BRIDGING: u16 = 0x6558;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_ERSPAN_I_II: u16 = 0x88BE;
const ETHERTYPE_ERSPAN_III: u16 = 0x22EB;

/// ERSPAN header lengths (draft-foschiano-erspan-03 §4.2, §4.3, §4.3.1).
const ERSPAN_II_HEADER: usize = 8;
const ERSPAN_III_HEADER: usize = 12;
const ERSPAN_III_PLATFORM_SUBHEADER: usize = 8;

const IPV6_HEADER: usize = 40;

/// The layer below a tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner<'a> {
    Network(Network<'a>),
    /// An Ethernet frame (VXLAN, GENEVE, GRE bridging, ERSPAN).
    Ethernet(&'a [u8]),
    /// An MPLS label stack (MPLS over GRE, RFC 4023 §4).
    Mpls(&'a [u8]),
    /// An IEEE 802.11 frame (CAPWAP with the 802.11 binding's native frames, RFC 5416 §3).
    Wlan(&'a [u8]),
}

/// GRE header. `Ok(None)`: a valid GRE packet whose payload we do not decode (PPTP's enhanced
/// GRE, an unknown protocol type, a reserved ERSPAN frame type).
pub fn gre(bytes: &[u8]) -> Result<Option<(TunnelKind, Inner<'_>)>, DecodeSkip> {
    let (&[f0, f1, p0, p1], rest) = bytes
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedTunnel)?;
    let flags = u16::from_be_bytes([f0, f1]);
    match flags & GRE_VERSION {
        0 => {}
        // RFC 2637 §4.1: PPTP's enhanced GRE carries PPP; not followed.
        1 => return Ok(None),
        _ => return Err(DecodeSkip::BadTunnelHeader),
    }
    // RFC 2784 §2.3: a receiver without RFC 1701 routing support discards these.
    if flags & (GRE_ROUTING | GRE_STRICT_SOURCE_ROUTE) != 0 {
        return Err(DecodeSkip::BadTunnelHeader);
    }
    // Checksum+reserved, key and sequence number are 4 bytes each, in that order.
    let optional: usize = [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE]
        .iter()
        .filter(|bit| flags & **bit != 0)
        .map(|_| 4)
        .sum();
    let body = rest.get(optional..).ok_or(DecodeSkip::TruncatedTunnel)?;
    let found = match u16::from_be_bytes([p0, p1]) {
        ETHERTYPE_IPV4 => (TunnelKind::Gre, Inner::Network(Network::Ipv4(body))),
        ETHERTYPE_IPV6 => (TunnelKind::Gre, Inner::Network(Network::Ipv6(body))),
        ETHERTYPE_TRANSPARENT_BRIDGING => (TunnelKind::Gre, Inner::Ethernet(body)),
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => (TunnelKind::Gre, Inner::Mpls(body)),
        // Type II has the sequence bit and an 8-byte header; type I has neither.
        ETHERTYPE_ERSPAN_I_II if flags & GRE_SEQUENCE != 0 => {
            let (&[ver_vlan, ..], frame) = body
                .split_first_chunk::<ERSPAN_II_HEADER>()
                .ok_or(DecodeSkip::TruncatedTunnel)?;
            if ver_vlan >> 4 != 1 {
                return Err(DecodeSkip::BadTunnelHeader);
            }
            (TunnelKind::Erspan, Inner::Ethernet(frame))
        }
        ETHERTYPE_ERSPAN_I_II => (TunnelKind::Erspan, Inner::Ethernet(body)),
        ETHERTYPE_ERSPAN_III => match erspan_iii(body)? {
            Some(inner) => (TunnelKind::Erspan, inner),
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(found))
}

/// ERSPAN type III: Ver(4)=2 VLAN(12) COS(3) BSO(2) T(1) SessionID(10), Timestamp(32),
/// SGT(16) P(1) FT(5) HwID(6) D(1) Gra(2) O(1), then an 8-byte platform subheader when O is set.
/// FT 0 is an Ethernet frame, FT 2 an IP packet; other frame types are reserved.
fn erspan_iii(body: &[u8]) -> Result<Option<Inner<'_>>, DecodeSkip> {
    let (&[ver_vlan, _, _, _, _, _, _, _, _, _, p_ft_hw, hw_d_gra_o], rest) = body
        .split_first_chunk::<ERSPAN_III_HEADER>()
        .ok_or(DecodeSkip::TruncatedTunnel)?;
    if ver_vlan >> 4 != 2 {
        return Err(DecodeSkip::BadTunnelHeader);
    }
    let rest = if hw_d_gra_o & 0x01 != 0 {
        rest.get(ERSPAN_III_PLATFORM_SUBHEADER..)
            .ok_or(DecodeSkip::TruncatedTunnel)?
    } else {
        rest
    };
    match (p_ft_hw >> 2) & 0x1F {
        0 => Ok(Some(Inner::Ethernet(rest))),
        2 => match rest.first().map(|b| b >> 4) {
            Some(4) => Ok(Some(Inner::Network(Network::Ipv4(rest)))),
            Some(6) => Ok(Some(Inner::Network(Network::Ipv6(rest)))),
            Some(_) => Err(DecodeSkip::BadTunnelHeader),
            None => Err(DecodeSkip::TruncatedTunnel),
        },
        _ => Ok(None),
    }
}

/// UDP encapsulations, by port. `payload` is the captured UDP payload, `wire_len` its length on
/// the wire (UDP length minus 8). `None`: ordinary UDP.
#[inline]
pub fn by_udp_port(
    src_port: u16,
    dst_port: u16,
    payload: &[u8],
    wire_len: u16,
) -> Option<(TunnelKind, Inner<'_>)> {
    match dst_port {
        VXLAN_PORT => return vxlan(payload).map(|inner| (TunnelKind::Vxlan, inner)),
        GENEVE_PORT => return geneve(payload).map(|inner| (TunnelKind::Geneve, inner)),
        GTPU_PORT => return gtpu(payload).map(|inner| (TunnelKind::GtpU, inner)),
        _ => {}
    }
    if src_port == TEREDO_PORT || dst_port == TEREDO_PORT {
        return teredo(payload, wire_len).map(|inner| (TunnelKind::Teredo, inner));
    }
    if src_port == CAPWAP_DATA_PORT || dst_port == CAPWAP_DATA_PORT {
        return capwap_data(payload).map(|inner| (TunnelKind::Capwap, inner));
    }
    None
}

/// CAPWAP wireless binding ID of IEEE 802.11 (RFC 5415 §4.3, RFC 5416 §3).
const CAPWAP_WBID_IEEE80211: u8 = 1;

/// CAPWAP data packet header (RFC 5415 §4.3): preamble (version 0, type 0: not DTLS), then
/// HLEN (5 bits, in 4-byte words, the whole header), RID (5), WBID (5), flags T F L W M K and
/// 3 flag bits, then fragment ID and offset. Only whole, unfragmented frames are followed: an
/// 802.11 frame (T set, WBID 1) or an Ethernet frame (T clear). Keep-alives and fragments
/// are left as UDP.
fn capwap_data(payload: &[u8]) -> Option<Inner<'_>> {
    let (&[preamble, b1, b2, b3, _, _, _, _], _) = payload.split_first_chunk::<8>()?;
    if preamble != 0 {
        return None;
    }
    let bits = u32::from_be_bytes([0, b1, b2, b3]);
    let hlen = usize::try_from(bits >> 19).ok()?.checked_mul(4)?;
    let wbid = ((bits >> 9) & 0x1f) as u8;
    let native = bits & (1 << 8) != 0;
    let fragment = bits & (1 << 7) != 0;
    let keep_alive = bits & (1 << 3) != 0;
    if hlen < 8 || fragment || keep_alive {
        return None;
    }
    let frame = payload.get(hlen..)?;
    match (native, wbid) {
        (true, CAPWAP_WBID_IEEE80211) => Some(Inner::Wlan(frame)),
        (false, _) => Some(Inner::Ethernet(frame)),
        (true, _) => None,
    }
}

/// VXLAN (RFC 7348 §5): flags(8) with I set, reserved(24), VNI(24), reserved(8); then Ethernet.
fn vxlan(payload: &[u8]) -> Option<Inner<'_>> {
    let (&[flags, ..], frame) = payload.split_first_chunk::<8>()?;
    (flags & 0x08 != 0).then_some(Inner::Ethernet(frame))
}

/// GENEVE (RFC 8926 §3.4): Ver(2)=0 OptLen(6, 4-byte units) O C Rsvd(6), Protocol Type(16),
/// VNI(24), Reserved(8), then the options.
fn geneve(payload: &[u8]) -> Option<Inner<'_>> {
    let (&[ver_optlen, _, p0, p1, _, _, _, _], rest) = payload.split_first_chunk::<8>()?;
    if ver_optlen >> 6 != 0 {
        return None;
    }
    let body = rest.get(usize::from(ver_optlen & 0x3F) * 4..)?;
    match u16::from_be_bytes([p0, p1]) {
        ETHERTYPE_TRANSPARENT_BRIDGING => Some(Inner::Ethernet(body)),
        ETHERTYPE_IPV4 => Some(Inner::Network(Network::Ipv4(body))),
        ETHERTYPE_IPV6 => Some(Inner::Network(Network::Ipv6(body))),
        _ => None,
    }
}

/// GTP-U (TS 29.281 §5.1): Version(3)=1 PT(1)=1 spare E S PN, message type (255 = G-PDU,
/// §6.1), length of what follows the first 8 bytes, TEID. When E, S or PN is set, a sequence
/// number, N-PDU number and next extension header type follow; with E, a chain of extension
/// headers (§5.2: length in 4-byte units, content, next type) ends at type 0. The T-PDU is an
/// IP packet (PDU type IPv4/IPv6), told apart by its version nibble.
fn gtpu(payload: &[u8]) -> Option<Inner<'_>> {
    const FLAG_E: u8 = 0x04;
    const FLAGS_OPTIONAL: u8 = 0x07;
    const G_PDU: u8 = 255;
    let (&[flags, message_type, l0, l1, _, _, _, _], rest) = payload.split_first_chunk::<8>()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || message_type != G_PDU {
        return None;
    }
    let mut body = rest
        .get(..usize::from(u16::from_be_bytes([l0, l1])))
        .unwrap_or(rest);
    if flags & FLAGS_OPTIONAL != 0 {
        let (&[_, _, _, first_type], after) = body.split_first_chunk::<4>()?;
        body = after;
        if flags & FLAG_E != 0 {
            let mut next_type = first_type;
            let mut count = 0usize;
            while next_type != 0 {
                count = count.saturating_add(1);
                if count > MAX_GTPU_EXT_HEADERS {
                    return None;
                }
                let units = *body.first()?;
                if units == 0 {
                    return None;
                }
                let (extension, after) = body.split_at_checked(usize::from(units) * 4)?;
                next_type = *extension.last()?;
                body = after;
            }
        }
    }
    match body.first()? >> 4 {
        4 => Some(Inner::Network(Network::Ipv4(body))),
        6 => Some(Inner::Network(Network::Ipv6(body))),
        _ => None,
    }
}

/// Teredo (RFC 4380 §5.1.1): an optional authentication indicator (0x0001, ID-len, AU-len,
/// client id, authentication value, 8-byte nonce, confirmation byte), then an optional origin
/// indicator (0x0000, obfuscated port and IPv4 address), then an IPv6 packet. Followed only when
/// that packet is IPv6 and its payload length fills the datagram exactly (Teredo adds no
/// padding), so that ordinary traffic from port 3544 stays UDP.
fn teredo(payload: &[u8], wire_len: u16) -> Option<Inner<'_>> {
    let mut rest = payload;
    let mut wire = usize::from(wire_len);
    if let Some((&[0x00, 0x01, id_len, au_len], _)) = rest.split_first_chunk::<4>() {
        // 4 + id + au + nonce(8) + confirmation(1); at most 4 + 255 + 255 + 9.
        let indicator = usize::from(id_len)
            .saturating_add(usize::from(au_len))
            .saturating_add(4 + 9);
        rest = rest.get(indicator..)?;
        wire = wire.checked_sub(indicator)?;
    }
    if let Some((&[0x00, 0x00], _)) = rest.split_first_chunk::<2>() {
        rest = rest.get(8..)?;
        wire = wire.checked_sub(8)?;
    }
    let &[ver, _, _, _, l0, l1, ..] = rest.first_chunk::<IPV6_HEADER>()?;
    let declared = IPV6_HEADER + usize::from(u16::from_be_bytes([l0, l1]));
    (ver >> 4 == 6 && declared == wire).then_some(Inner::Network(Network::Ipv6(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: &[u8] = &[0x45, 0, 0, 20];

    /// A CAPWAP data header (RFC 5415 §4.3) of `words` 4-byte words with these flag bits.
    fn capwap(words: u32, wbid: u32, t: bool, f: bool, k: bool, frame: &[u8]) -> Vec<u8> {
        let bits =
            words << 19 | wbid << 9 | u32::from(t) << 8 | u32::from(f) << 7 | u32::from(k) << 3;
        let mut p = bits.to_be_bytes().to_vec();
        p.extend_from_slice(&[0; 4]);
        p.resize(words as usize * 4, 0);
        p.extend_from_slice(frame);
        p
    }

    #[test]
    fn capwap_data_channel() {
        let frame = [7u8; 30];
        let wlan = capwap(2, 1, true, false, false, &frame);
        assert_eq!(
            by_udp_port(5247, 5247, &wlan, 0),
            Some((TunnelKind::Capwap, Inner::Wlan(&frame[..])))
        );
        // A longer header (radio MAC, wireless information) is skipped by HLEN.
        let long = capwap(4, 1, true, false, false, &frame);
        assert_eq!(
            by_udp_port(40000, 5247, &long, 0),
            Some((TunnelKind::Capwap, Inner::Wlan(&frame[..])))
        );
        // T clear: an 802.3 frame.
        let eth = capwap(2, 1, false, false, false, &frame);
        assert_eq!(
            by_udp_port(5247, 40000, &eth, 0),
            Some((TunnelKind::Capwap, Inner::Ethernet(&frame[..])))
        );
        // Fragments, keep-alives, DTLS (preamble type 1), other bindings, short headers:
        // left as UDP.
        for p in [
            capwap(2, 1, true, true, false, &frame),
            capwap(2, 1, true, false, true, &frame),
            capwap(2, 3, true, false, false, &frame),
            capwap(1, 1, true, false, false, &frame),
        ] {
            assert_eq!(by_udp_port(5247, 5247, &p, 0), None);
        }
        let mut dtls = wlan.clone();
        dtls[0] = 1;
        assert_eq!(by_udp_port(5247, 5247, &dtls, 0), None);
        assert_eq!(by_udp_port(5247, 5247, &wlan[..7], 0), None);
    }

    #[test]
    fn gre_keyed_and_sequenced_ipv4() {
        let mut bytes = vec![0xB0, 0x00, 0x08, 0x00]; // C K S
        bytes.extend([0; 12]);
        bytes.extend_from_slice(IP4);
        assert_eq!(
            gre(&bytes),
            Ok(Some((TunnelKind::Gre, Inner::Network(Network::Ipv4(IP4)))))
        );
    }

    #[test]
    fn gre_version_one_is_not_followed() {
        let bytes = [0x30, 0x01, 0x88, 0x0B, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(gre(&bytes), Ok(None));
    }

    #[test]
    fn gre_bad_version_and_routing_bit() {
        assert_eq!(
            gre(&[0x00, 0x02, 0x08, 0x00]),
            Err(DecodeSkip::BadTunnelHeader)
        );
        assert_eq!(
            gre(&[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]),
            Err(DecodeSkip::BadTunnelHeader)
        );
    }

    #[test]
    fn gre_unknown_protocol_is_a_value() {
        assert_eq!(gre(&[0x00, 0x00, 0x12, 0x34, 1, 2]), Ok(None));
    }

    #[test]
    fn gre_truncated_options() {
        assert_eq!(
            gre(&[0x20, 0x00, 0x08, 0x00, 0, 0]),
            Err(DecodeSkip::TruncatedTunnel)
        );
        for cut in 0..4 {
            assert_eq!(gre(&[0, 0, 8, 0][..cut]), Err(DecodeSkip::TruncatedTunnel));
        }
    }

    #[test]
    fn erspan_ii_wrong_version() {
        let mut bytes = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 1];
        bytes.extend([0x20, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(gre(&bytes), Err(DecodeSkip::BadTunnelHeader));
    }

    #[test]
    fn erspan_iii_ip_frame_type_and_platform_subheader() {
        let mut bytes = vec![0x00, 0x00, 0x22, 0xEB];
        bytes.extend([0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 << 2, 0x01]);
        bytes.extend([0xEE; 8]);
        bytes.extend_from_slice(IP4);
        assert_eq!(
            gre(&bytes),
            Ok(Some((
                TunnelKind::Erspan,
                Inner::Network(Network::Ipv4(IP4))
            )))
        );
    }

    #[test]
    fn erspan_iii_reserved_frame_type() {
        let mut bytes = vec![0x00, 0x00, 0x22, 0xEB];
        bytes.extend([0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 << 2, 0x00]);
        bytes.extend([0; 14]);
        assert_eq!(gre(&bytes), Ok(None));
    }

    #[test]
    fn vxlan_without_i_flag_is_udp() {
        assert_eq!(by_udp_port(5000, VXLAN_PORT, &[0; 30], 30), None);
    }

    #[test]
    fn vxlan_on_source_port_only_is_udp() {
        let mut payload = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        payload.extend([0; 18]);
        assert_eq!(by_udp_port(VXLAN_PORT, 5000, &payload, 26), None);
    }

    #[test]
    fn geneve_version_one_is_udp() {
        let payload = [0x40, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 0];
        assert_eq!(by_udp_port(5000, GENEVE_PORT, &payload, 10), None);
    }

    #[test]
    fn geneve_options_past_capture_is_udp() {
        let payload = [0x02, 0, 0x08, 0x00, 0, 0, 1, 0, 0, 0, 0, 0];
        assert_eq!(by_udp_port(5000, GENEVE_PORT, &payload, 12), None);
    }

    #[test]
    fn gtpu_echo_request_is_udp() {
        let payload = [0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(by_udp_port(2152, GTPU_PORT, &payload, 12), None);
    }

    #[test]
    fn gtpu_extension_of_zero_length_is_udp() {
        let mut payload = vec![0x34, 255, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x85];
        payload.extend([0, 0, 0, 0]);
        payload.extend_from_slice(IP4);
        assert_eq!(by_udp_port(2152, GTPU_PORT, &payload, 24), None);
    }

    #[test]
    fn gtpu_extension_chain_past_cap_is_udp() {
        let mut payload = vec![0x34, 255, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85];
        for _ in 0..=MAX_GTPU_EXT_HEADERS {
            payload.extend([1, 0, 0, 0x85]);
        }
        payload.extend([1, 0, 0, 0]);
        payload.extend_from_slice(IP4);
        let len = (payload.len() - 8) as u16;
        payload[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(by_udp_port(2152, GTPU_PORT, &payload, len + 8), None);
    }

    #[test]
    fn gtpu_without_e_flag_ignores_next_type() {
        // S set, next-type byte nonzero but E clear: no extension chain.
        let mut payload = vec![0x32, 255, 0, 8, 0, 0, 0, 1, 0, 7, 0, 0x85];
        payload.extend_from_slice(IP4);
        assert_eq!(
            by_udp_port(2152, GTPU_PORT, &payload, 16),
            Some((TunnelKind::GtpU, Inner::Network(Network::Ipv4(IP4))))
        );
    }

    #[test]
    fn teredo_non_ipv6_payload_is_udp() {
        let payload = [0u8; 48];
        assert_eq!(by_udp_port(TEREDO_PORT, 40000, &payload, 48), None);
    }

    #[test]
    fn teredo_length_mismatch_is_udp() {
        let mut payload = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        payload.extend([0; 32]);
        payload.extend([0; 8]);
        assert!(by_udp_port(TEREDO_PORT, 40000, &payload, 48).is_some());
        assert_eq!(by_udp_port(TEREDO_PORT, 40000, &payload, 49), None);
        assert_eq!(by_udp_port(40000, 53, &payload, 48), None);
    }

    #[test]
    fn teredo_auth_indicator_longer_than_datagram_is_udp() {
        let payload = [0x00, 0x01, 200, 200, 0, 0];
        assert_eq!(by_udp_port(TEREDO_PORT, 40000, &payload, 6), None);
    }
}
