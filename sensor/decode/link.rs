//! Link layers: from a captured frame to the start of its IP packet.
//!
//! Input: the frame bytes and its LINKTYPE. Output: a [`Network`] slice (IPv4 or IPv6, not yet
//! parsed) borrowed from the frame, plus the outermost frame's MACs and innermost VLAN id in
//! [`LinkInfo`]. Nothing is copied. Handled: Ethernet II with 802.1Q / 802.1ad / 0x9100 tags,
//! MPLS label stacks (RFC 3032) ending in IP or in an Ethernet pseudowire with a control word
//! (RFC 4448 §4.6), PPPoE sessions (RFC 2516 §4) carrying PPP IPv4 or IPv6 (RFC 1661 §2),
//! Linux cooked captures v1 and v2, raw IP, BSD NULL / OpenBSD LOOP loopback, Cisco HDLC, PPP
//! with and without HDLC-like framing, and IEEE 802.11 data frames (bare, behind radiotap, or
//! inside CAPWAP: [`ieee80211`]).
//!
//! Caps: [`MAX_VLAN_TAGS`] tags per Ethernet header and [`MAX_MPLS_LABELS`] labels per walk;
//! a pseudowire needs a label, so the number of Ethernet headers per walk is bounded too.

use super::{DecodeSkip, LinkInfo};
use crate::capture::LinkType;

/// VLAN tags accepted in one Ethernet header. QinQ (802.1ad) uses two and some carrier
/// networks three; four leaves room while bounding the tag loop.
pub const MAX_VLAN_TAGS: usize = 4;

/// MPLS labels accepted in one packet, pseudowire frames included. Service provider stacks are
/// 2-3 labels (transport, service, entropy pair); segment-routing stacks reach about 10 (the
/// usual hardware push depth); 16 covers those and bounds the label loop.
pub const MAX_MPLS_LABELS: usize = 16;

/// Ethertypes (IEEE registry) and PPP protocol numbers (RFC 1661 §2, IANA PPP DLL numbers).
pub(crate) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(crate) const ETHERTYPE_IPV6: u16 = 0x86DD;
pub(crate) const ETHERTYPE_VLAN: u16 = 0x8100;
pub(crate) const ETHERTYPE_QINQ: u16 = 0x88A8;
pub(crate) const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// ARPHRD_ETHER: the link address in a cooked header is a MAC.
const ARPHRD_ETHER: u16 = 1;

/// An IP packet found below the link layers, not yet parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
}

/// Where the link walk stands.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// An Ethernet II header starts here.
    Ethernet(&'a [u8]),
    /// An ethertype was read; its payload starts here.
    EtherType(u16, &'a [u8]),
    /// An MPLS label stack starts here.
    Mpls(&'a [u8]),
}

/// Strips the link layers of a captured frame. Records MACs and the VLAN id of the outermost
/// frame into `info`.
#[inline]
pub fn decode_link<'a>(
    link: LinkType,
    frame: &'a [u8],
    info: &mut LinkInfo,
) -> Result<Network<'a>, DecodeSkip> {
    match link {
        LinkType::ETHERNET => walk(Step::Ethernet(frame), info, true),
        LinkType::RAW_DLT12 | LinkType::RAW_DLT14 | LinkType::RAW => by_version(frame),
        LinkType::IPV4 => Ok(Network::Ipv4(frame)),
        LinkType::IPV6 => Ok(Network::Ipv6(frame)),
        LinkType::NULL => loopback(frame, true),
        LinkType::LOOP => loopback(frame, false),
        LinkType::LINUX_SLL => sll(frame, info),
        LinkType::LINUX_SLL2 => sll2(frame, info),
        LinkType::C_HDLC => cisco_hdlc(frame, info),
        LinkType::PPP => ppp(frame),
        LinkType::PPP_HDLC => ppp_hdlc(frame, info),
        LinkType::IEEE802_11 => ieee80211(frame, info),
        LinkType::IEEE802_11_RADIOTAP => radiotap(frame, info),
        _ => Err(DecodeSkip::UnsupportedLinkType),
    }
}

/// An Ethernet frame found inside a tunnel (VXLAN, GENEVE, GRE bridging, ERSPAN). Its MACs and
/// tags are not recorded: [`LinkInfo`] describes the outermost frame.
pub fn inner_ethernet(frame: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    walk(Step::Ethernet(frame), &mut LinkInfo::default(), false)
}

/// An 802.11 frame found inside a tunnel (CAPWAP). Its addresses are not recorded:
/// [`LinkInfo`] describes the outermost frame.
/// Cisco controllers write the frame control field byte-swapped (Wireshark's CAPWAP
/// "swap frame control" preference, on by default for that reason): when the field as sent is
/// not a data frame's, the swapped one is tried.
pub fn inner_ieee80211(frame: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    match ieee80211_fc(frame, false, &mut LinkInfo::default()) {
        Err(DecodeSkip::NotIp) => ieee80211_fc(frame, true, &mut LinkInfo::default()),
        other => other,
    }
}

/// An MPLS label stack found inside a tunnel (MPLS over GRE, RFC 4023).
pub fn inner_mpls(stack: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    walk(Step::Mpls(stack), &mut LinkInfo::default(), false)
}

/// Raw IP: the version nibble decides.
fn by_version(packet: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    match packet.first().map(|b| b >> 4) {
        Some(4) => Ok(Network::Ipv4(packet)),
        Some(6) => Ok(Network::Ipv6(packet)),
        Some(_) => Err(DecodeSkip::NotIp),
        None => Err(DecodeSkip::TruncatedIp),
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL
/// (`either_order`), network order for LOOP. AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD,
/// OpenBSD), 28 (FreeBSD) or 30 (macOS).
fn loopback(frame: &[u8], either_order: bool) -> Result<Network<'_>, DecodeSkip> {
    let (family, rest) = frame
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    let big = u32::from_be_bytes(*family);
    let family = if either_order && big > 0xFFFF {
        u32::from_le_bytes(*family)
    } else {
        big
    };
    match family {
        2 => Ok(Network::Ipv4(rest)),
        24 | 28 | 30 => Ok(Network::Ipv6(rest)),
        _ => Err(DecodeSkip::NotIp),
    }
}

/// Linux cooked capture v1: packet type, ARPHRD type, address length, 8 address bytes,
/// protocol (an ethertype for the link types we care about).
fn sll<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    let (header, rest) = frame
        .split_first_chunk::<16>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    let [_, _, hatype0, hatype1, _, halen, a0, a1, a2, a3, a4, a5, _, _, proto0, proto1] = *header;
    if u16::from_be_bytes([hatype0, hatype1]) == ARPHRD_ETHER && halen == 6 {
        info.src_mac = Some([a0, a1, a2, a3, a4, a5]);
    }
    walk(
        Step::EtherType(u16::from_be_bytes([proto0, proto1]), rest),
        info,
        true,
    )
}

/// Linux cooked capture v2: protocol, reserved, interface index, ARPHRD type, packet type,
/// address length, 8 address bytes.
fn sll2<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    let (header, rest) = frame
        .split_first_chunk::<20>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    let [proto0, proto1, _, _, _, _, _, _, hatype0, hatype1, _, halen, a0, a1, a2, a3, a4, a5, _, _] =
        *header;
    if u16::from_be_bytes([hatype0, hatype1]) == ARPHRD_ETHER && halen == 6 {
        info.src_mac = Some([a0, a1, a2, a3, a4, a5]);
    }
    walk(
        Step::EtherType(u16::from_be_bytes([proto0, proto1]), rest),
        info,
        true,
    )
}

/// The link walk: Ethernet headers, tags, labels and PPPoE until an IP packet. `record` says
/// whether the current Ethernet header is the outermost one (its MACs and tags go to `info`).
/// Each turn consumes at least 4 bytes and is bounded by the tag and label caps.
#[inline]
fn walk<'a>(
    mut step: Step<'a>,
    info: &mut LinkInfo,
    mut record: bool,
) -> Result<Network<'a>, DecodeSkip> {
    let mut tags = 0usize;
    let mut labels = 0usize;
    loop {
        step = match step {
            Step::Ethernet(frame) => {
                let (header, rest) = frame
                    .split_first_chunk::<14>()
                    .ok_or(DecodeSkip::TruncatedLink)?;
                let [d0, d1, d2, d3, d4, d5, s0, s1, s2, s3, s4, s5, t0, t1] = *header;
                if record {
                    info.dst_mac = Some([d0, d1, d2, d3, d4, d5]);
                    info.src_mac = Some([s0, s1, s2, s3, s4, s5]);
                }
                tags = 0;
                Step::EtherType(u16::from_be_bytes([t0, t1]), rest)
            }
            Step::EtherType(ETHERTYPE_IPV4, rest) => return Ok(Network::Ipv4(rest)),
            Step::EtherType(ETHERTYPE_IPV6, rest) => return Ok(Network::Ipv6(rest)),
            // IEEE 802.1Q tag: PCP(3) DEI(1) VID(12), then the next ethertype.
            Step::EtherType(ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD, rest) => {
                tags = tags.saturating_add(1);
                if tags > MAX_VLAN_TAGS {
                    return Err(DecodeSkip::TooManyVlanTags);
                }
                let ([tci0, tci1, t0, t1], rest) = rest
                    .split_first_chunk::<4>()
                    .ok_or(DecodeSkip::TruncatedLink)?;
                if record {
                    info.vlan = Some(u16::from_be_bytes([*tci0, *tci1]) & 0x0FFF);
                }
                Step::EtherType(u16::from_be_bytes([*t0, *t1]), rest)
            }
            Step::EtherType(ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST, rest) => {
                record = false;
                Step::Mpls(rest)
            }
            Step::EtherType(ETHERTYPE_PPPOE_SESSION, rest) => return pppoe_session(rest),
            Step::EtherType(_, _) => return Err(DecodeSkip::NotIp),
            // RFC 3032 §2.1: label(20) TC(3) S(1) TTL(8); S marks the bottom of the stack.
            Step::Mpls(stack) => {
                let mut rest = stack;
                loop {
                    labels = labels.saturating_add(1);
                    if labels > MAX_MPLS_LABELS {
                        return Err(DecodeSkip::TooManyMplsLabels);
                    }
                    let ([_, _, tc_s, _], after) = rest
                        .split_first_chunk::<4>()
                        .ok_or(DecodeSkip::TruncatedLink)?;
                    rest = after;
                    if tc_s & 0x01 != 0 {
                        break;
                    }
                }
                // Below the stack there is no type field: RFC 4385 §2 has IP start with its
                // version nibble and a pseudowire control word with 0000.
                match rest.first().map(|b| b >> 4) {
                    Some(4) => return Ok(Network::Ipv4(rest)),
                    Some(6) => return Ok(Network::Ipv6(rest)),
                    Some(0) => {
                        let (_control_word, frame) = rest
                            .split_first_chunk::<4>()
                            .ok_or(DecodeSkip::TruncatedLink)?;
                        Step::Ethernet(frame)
                    }
                    Some(_) => return Err(DecodeSkip::NotIp),
                    None => return Err(DecodeSkip::TruncatedLink),
                }
            }
        };
    }
}

/// Cisco HDLC framing (LINKTYPE_C_HDLC, 104; also the Cisco form of LINKTYPE_PPP_HDLC): an
/// address byte (0x0F unicast, 0x8F broadcast), a control byte, then an ethertype (RFC 1547
/// §4.3.1).
fn cisco_hdlc<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    let ([address, _control, t0, t1], rest) = frame
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    if *address & 0x7F != 0x0F {
        return Err(DecodeSkip::BadLinkHeader);
    }
    walk(
        Step::EtherType(u16::from_be_bytes([*t0, *t1]), rest),
        info,
        false,
    )
}

/// PPP (LINKTYPE_PPP, 9): an optional HDLC-like address and control (0xFF 0x03, RFC 1662
/// §3.1), then the protocol field: two bytes, or one when the peers negotiated Protocol-Field-
/// Compression (RFC 1661 §6.5; a compressed field is odd, an uncompressed one starts even).
fn ppp(frame: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    let body = frame.strip_prefix(&[0xFF, 0x03]).unwrap_or(frame);
    ppp_protocol(body)
}

fn ppp_protocol(body: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    let (protocol, rest) = match body {
        [first, rest @ ..] if first & 1 == 1 => (u16::from(*first), rest),
        [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
        _ => return Err(DecodeSkip::TruncatedLink),
    };
    match protocol {
        PPP_IPV4 => Ok(Network::Ipv4(rest)),
        PPP_IPV6 => Ok(Network::Ipv6(rest)),
        _ => Err(DecodeSkip::NotIp),
    }
}

/// LINKTYPE_PPP_HDLC (50): PPP in HDLC-like framing (first byte 0xFF) or Cisco PPP with HDLC
/// framing (first byte 0x0F or 0x8F), as the libpcap link-type list defines it.
fn ppp_hdlc<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    match frame.first() {
        Some(0xFF) => ppp(frame),
        Some(b) if b & 0x7F == 0x0F => cisco_hdlc(frame, info),
        Some(_) => Err(DecodeSkip::BadLinkHeader),
        None => Err(DecodeSkip::TruncatedLink),
    }
}

/// IEEE 802.11 frame control type "data" (IEEE 802.11-2020 §9.2.4.1.3).
const WLAN_TYPE_DATA: u8 = 2;
/// Frame control flags (second byte).
const WLAN_TO_DS: u8 = 0x01;
const WLAN_FROM_DS: u8 = 0x02;
const WLAN_PROTECTED: u8 = 0x40;
const WLAN_ORDER: u8 = 0x80;
/// LLC/SNAP header of RFC 1042 (and 802.1H bridge tunnel): DSAP, SSAP, control, OUI.
const SNAP_RFC1042: [u8; 6] = [0xAA, 0xAA, 0x03, 0x00, 0x00, 0x00];
const SNAP_BRIDGE_TUNNEL: [u8; 6] = [0xAA, 0xAA, 0x03, 0x00, 0x00, 0xF8];

/// An 802.11 frame (LINKTYPE_IEEE802_11, 105; inside radiotap or CAPWAP): a data frame's
/// header (IEEE 802.11-2020 §9.3.2.1: 24 bytes, the fourth address with To DS and From DS,
/// QoS Control for QoS subtypes, HT Control when Order is set on a QoS frame), then the LLC/
/// SNAP header and an ethertype. Management and control frames, null data and protected
/// (encrypted) frames carry no IP we can read: `NotIp`.
fn ieee80211<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    ieee80211_fc(frame, false, info)
}

/// [`ieee80211`], reading the frame control field's two bytes in the other order when `swap`.
fn ieee80211_fc<'a>(
    frame: &'a [u8],
    swap: bool,
    info: &mut LinkInfo,
) -> Result<Network<'a>, DecodeSkip> {
    let (&[b0, b1], _) = frame
        .split_first_chunk::<2>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    let (fc0, fc1) = if swap { (b1, b0) } else { (b0, b1) };
    if (fc0 >> 2) & 0x03 != WLAN_TYPE_DATA || fc0 & 0x03 != 0 {
        return Err(DecodeSkip::NotIp);
    }
    let subtype = fc0 >> 4;
    // Subtypes with bit 2 set carry no frame body (Null, QoS Null, CF-Ack/Poll without data).
    if subtype & 0x04 != 0 || fc1 & WLAN_PROTECTED != 0 {
        return Err(DecodeSkip::NotIp);
    }
    let qos = subtype & 0x08 != 0;
    let four_addresses = fc1 & (WLAN_TO_DS | WLAN_FROM_DS) == WLAN_TO_DS | WLAN_FROM_DS;
    let mut header = 24usize;
    if four_addresses {
        header += 6;
    }
    if qos {
        header += 2;
        if fc1 & WLAN_ORDER != 0 {
            header += 4;
        }
    }
    let fixed = frame.get(..header).ok_or(DecodeSkip::TruncatedLink)?;
    let addr = |at: usize| -> Option<[u8; 6]> { fixed.get(at..at + 6)?.try_into().ok() };
    // Destination and source addresses by To DS / From DS (IEEE 802.11-2020 Table 9-30).
    let (da, sa) = match fc1 & (WLAN_TO_DS | WLAN_FROM_DS) {
        0 => (addr(4), addr(10)),
        WLAN_TO_DS => (addr(16), addr(10)),
        WLAN_FROM_DS => (addr(4), addr(16)),
        _ => (addr(16), addr(24)),
    };
    info.dst_mac = da;
    info.src_mac = sa;
    let body = frame.get(header..).ok_or(DecodeSkip::TruncatedLink)?;
    let (snap, rest) = body
        .split_first_chunk::<8>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    let [s0, s1, s2, s3, s4, s5, t0, t1] = *snap;
    let llc = [s0, s1, s2, s3, s4, s5];
    if llc != SNAP_RFC1042 && llc != SNAP_BRIDGE_TUNNEL {
        return Err(DecodeSkip::NotIp);
    }
    walk(
        Step::EtherType(u16::from_be_bytes([t0, t1]), rest),
        info,
        false,
    )
}

/// Radiotap (LINKTYPE_IEEE802_11_RADIOTAP, 127; radiotap.org): version 0, a pad byte, the
/// header length (little-endian u16, the header included), then an 802.11 frame. The fields
/// are skipped whole by that length. A frame with the FCS-at-end flag keeps its last 4 bytes:
/// IP reads only its own length, so they are ignored.
fn radiotap<'a>(frame: &'a [u8], info: &mut LinkInfo) -> Result<Network<'a>, DecodeSkip> {
    let ([version, _, l0, l1], _) = frame
        .split_first_chunk::<4>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    if *version != 0 {
        return Err(DecodeSkip::BadLinkHeader);
    }
    let len = usize::from(u16::from_le_bytes([*l0, *l1]));
    if len < 8 {
        return Err(DecodeSkip::BadLinkHeader);
    }
    ieee80211(frame.get(len..).ok_or(DecodeSkip::TruncatedLink)?, info)
}

/// PPPoE session stage (RFC 2516 §4): VER(4)=1 TYPE(4)=1, CODE=0, SESSION_ID, LENGTH, then a
/// PPP protocol field (RFC 1661 §2; uncompressed, as RFC 2516 §7 asks of PPPoE peers).
fn pppoe_session(bytes: &[u8]) -> Result<Network<'_>, DecodeSkip> {
    let ([ver_type, code, _, _, _, _, p0, p1], rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(DecodeSkip::TruncatedLink)?;
    if *ver_type != 0x11 || *code != 0 {
        return Err(DecodeSkip::BadLinkHeader);
    }
    match u16::from_be_bytes([*p0, *p1]) {
        PPP_IPV4 => Ok(Network::Ipv4(rest)),
        PPP_IPV6 => Ok(Network::Ipv6(rest)),
        _ => Err(DecodeSkip::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: &[u8] = &[0x45, 0, 0, 20];
    const IP6: &[u8] = &[0x60, 0, 0, 0];

    fn ethernet(ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut frame = vec![1, 2, 3, 4, 5, 6, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf];
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(body);
        frame
    }

    fn tag(vid: u16, next: u16) -> Vec<u8> {
        let mut t = (0xE000 | vid).to_be_bytes().to_vec();
        t.extend_from_slice(&next.to_be_bytes());
        t
    }

    fn label(value: u32, bottom: bool) -> [u8; 4] {
        (value << 12 | u32::from(bottom) << 8 | 64).to_be_bytes()
    }

    /// An owned copy of a [`Network`], so tests can build frames inline.
    #[derive(Debug, PartialEq, Eq)]
    enum Found {
        V4(Vec<u8>),
        V6(Vec<u8>),
    }

    fn v4(bytes: &[u8]) -> Found {
        Found::V4(bytes.to_vec())
    }

    fn v6(bytes: &[u8]) -> Found {
        Found::V6(bytes.to_vec())
    }

    fn decode(link: LinkType, frame: &[u8]) -> (Result<Found, DecodeSkip>, LinkInfo) {
        let mut info = LinkInfo::default();
        let result = decode_link(link, frame, &mut info).map(|network| match network {
            Network::Ipv4(bytes) => v4(bytes),
            Network::Ipv6(bytes) => v6(bytes),
        });
        (result, info)
    }

    #[test]
    fn cisco_hdlc_and_ppp_framings() {
        let mut chdlc = vec![0x0F, 0x00, 0x08, 0x00];
        chdlc.extend_from_slice(IP4);
        assert_eq!(decode(LinkType::C_HDLC, &chdlc).0, Ok(v4(IP4)));
        chdlc[0] = 0x8F; // broadcast address
        assert_eq!(decode(LinkType::C_HDLC, &chdlc).0, Ok(v4(IP4)));
        chdlc[0] = 0x42;
        assert_eq!(
            decode(LinkType::C_HDLC, &chdlc).0,
            Err(DecodeSkip::BadLinkHeader)
        );
        // PPP with and without the HDLC-like address and control, and with a compressed
        // protocol field (RFC 1661 §6.5).
        for head in [
            &[0xFF, 0x03, 0x00, 0x57][..],
            &[0x00, 0x57],
            &[0x57],
            &[0xFF, 0x03, 0x57],
        ] {
            let mut f = head.to_vec();
            f.extend_from_slice(IP6);
            assert_eq!(decode(LinkType::PPP, &f).0, Ok(v6(IP6)), "{head:?}");
        }
        assert_eq!(
            decode(LinkType::PPP, &[0xC0, 0x21, 1]).0,
            Err(DecodeSkip::NotIp)
        ); // LCP
           // PPP_HDLC: PPP framing or Cisco framing.
        let mut f = vec![0xFF, 0x03, 0x00, 0x21];
        f.extend_from_slice(IP4);
        assert_eq!(decode(LinkType::PPP_HDLC, &f).0, Ok(v4(IP4)));
        let mut f = vec![0x0F, 0x00, 0x86, 0xDD];
        f.extend_from_slice(IP6);
        assert_eq!(decode(LinkType::PPP_HDLC, &f).0, Ok(v6(IP6)));
        for short in [&[][..], &[0x0F], &[0xFF, 0x03]] {
            for link in [LinkType::C_HDLC, LinkType::PPP, LinkType::PPP_HDLC] {
                assert!(decode(link, short).0.is_err(), "{link:?} {short:?}");
            }
        }
    }

    /// An 802.11 data frame: `fc1` flags, QoS subtype or not, LLC/SNAP, then `body`.
    fn wlan(fc1: u8, qos: bool, ethertype: u16, body: &[u8]) -> Vec<u8> {
        let fc0 = if qos { 0x88 } else { 0x08 };
        let mut f = vec![fc0, fc1, 0, 0];
        for a in 1..=3u8 {
            f.extend_from_slice(&[a; 6]);
        }
        f.extend_from_slice(&[0, 0]); // sequence control
        if fc1 & 0x03 == 0x03 {
            f.extend_from_slice(&[4; 6]);
        }
        if qos {
            f.extend_from_slice(&[0, 0]);
        }
        f.extend_from_slice(&[0xAA, 0xAA, 0x03, 0, 0, 0]);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn ieee80211_data_frames() {
        // To DS: addr2 is the source, addr3 the destination.
        let (net, info) = decode(LinkType::IEEE802_11, &wlan(0x01, false, 0x0800, IP4));
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.src_mac, Some([2; 6]));
        assert_eq!(info.dst_mac, Some([3; 6]));
        // From DS, QoS: addr1 is the destination, addr3 the source.
        let (net, info) = decode(LinkType::IEEE802_11, &wlan(0x02, true, 0x86DD, IP6));
        assert_eq!(net, Ok(v6(IP6)));
        assert_eq!(info.dst_mac, Some([1; 6]));
        assert_eq!(info.src_mac, Some([3; 6]));
        // Four addresses (mesh / WDS).
        let (net, info) = decode(LinkType::IEEE802_11, &wlan(0x03, true, 0x0800, IP4));
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.src_mac, Some([4; 6]));
        // Protected (encrypted) and non-data frames carry nothing readable.
        assert_eq!(
            decode(LinkType::IEEE802_11, &wlan(0x41, false, 0x0800, IP4)).0,
            Err(DecodeSkip::NotIp)
        );
        let mut beacon = wlan(0, false, 0x0800, IP4);
        beacon[0] = 0x80;
        assert_eq!(
            decode(LinkType::IEEE802_11, &beacon).0,
            Err(DecodeSkip::NotIp)
        );
        // Behind radiotap: its own length is skipped.
        let mut rt = vec![0, 0, 12, 0, 0x02, 0, 0, 0, 0x10, 0x0c, 0, 0];
        rt.extend(wlan(0x01, true, 0x0800, IP4));
        assert_eq!(decode(LinkType::IEEE802_11_RADIOTAP, &rt).0, Ok(v4(IP4)));
        rt[2] = 200;
        assert_eq!(
            decode(LinkType::IEEE802_11_RADIOTAP, &rt).0,
            Err(DecodeSkip::TruncatedLink)
        );
        // Every cut of a frame is refused without a panic.
        let frame = wlan(0x03, true, 0x0800, IP4);
        for cut in 0..frame.len() - IP4.len() {
            assert!(
                decode(LinkType::IEEE802_11, &frame[..cut]).0.is_err(),
                "cut {cut}"
            );
        }
        // Inside CAPWAP, a byte-swapped frame control (Cisco) is read too.
        let mut swapped = wlan(0x01, false, 0x0800, IP4);
        swapped.swap(0, 1);
        assert!(matches!(inner_ieee80211(&swapped), Ok(Network::Ipv4(_))));
        assert_eq!(
            decode(LinkType::IEEE802_11, &swapped).0,
            Err(DecodeSkip::NotIp)
        );
    }

    #[test]
    fn ethernet_ipv4_records_macs() {
        let frame = ethernet(0x0800, IP4);
        let (net, info) = decode(LinkType::ETHERNET, &frame);
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.dst_mac, Some([1, 2, 3, 4, 5, 6]));
        assert_eq!(info.src_mac, Some([0xa, 0xb, 0xc, 0xd, 0xe, 0xf]));
        assert_eq!(info.vlan, None);
    }

    #[test]
    fn ethernet_qinq_records_inner_vlan() {
        let mut body = tag(100, 0x8100);
        body.extend(tag(200, 0x86DD));
        body.extend_from_slice(IP6);
        let frame = ethernet(0x88A8, &body);
        let (net, info) = decode(LinkType::ETHERNET, &frame);
        assert_eq!(net, Ok(v6(IP6)));
        assert_eq!(info.vlan, Some(200));
    }

    #[test]
    fn ethernet_tag_0x9100() {
        let mut body = tag(7, 0x0800);
        body.extend_from_slice(IP4);
        let (net, info) = decode(LinkType::ETHERNET, &ethernet(0x9100, &body));
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.vlan, Some(7));
    }

    #[test]
    fn too_many_vlan_tags() {
        let mut body = Vec::new();
        for vid in 0..MAX_VLAN_TAGS as u16 {
            body.extend(tag(vid, 0x8100));
        }
        body.extend(tag(99, 0x0800));
        body.extend_from_slice(IP4);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8100, &body));
        assert_eq!(net, Err(DecodeSkip::TooManyVlanTags));
    }

    #[test]
    fn exactly_max_vlan_tags_is_accepted() {
        let mut body = Vec::new();
        for vid in 1..MAX_VLAN_TAGS as u16 {
            body.extend(tag(vid, 0x8100));
        }
        body.extend(tag(42, 0x0800));
        body.extend_from_slice(IP4);
        let (net, info) = decode(LinkType::ETHERNET, &ethernet(0x8100, &body));
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.vlan, Some(42));
    }

    #[test]
    fn mpls_two_labels_then_ipv4() {
        let mut body = label(1000, false).to_vec();
        body.extend(label(2000, true));
        body.extend_from_slice(IP4);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8847, &body));
        assert_eq!(net, Ok(v4(IP4)));
    }

    #[test]
    fn mpls_pseudowire_with_control_word_records_outer_only() {
        let inner = {
            let mut f = vec![0x22; 12];
            f.extend(tag(300, 0x86DD));
            f.splice(12..12, [0x81, 0x00]);
            f.extend_from_slice(IP6);
            f
        };
        let mut body = tag(10, 0x8847);
        body.extend(label(16, true));
        body.extend([0, 0, 0, 0]);
        body.extend(&inner);
        let (net, info) = decode(LinkType::ETHERNET, &ethernet(0x8100, &body));
        assert_eq!(net, Ok(v6(IP6)));
        assert_eq!(info.vlan, Some(10));
        assert_eq!(info.dst_mac, Some([1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn mpls_too_many_labels() {
        let mut body = Vec::new();
        for i in 0..MAX_MPLS_LABELS as u32 {
            body.extend(label(i + 16, false));
        }
        body.extend(label(99, true));
        body.extend_from_slice(IP4);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8847, &body));
        assert_eq!(net, Err(DecodeSkip::TooManyMplsLabels));
    }

    #[test]
    fn mpls_without_bottom_is_truncated() {
        let body = [label(16, false), label(17, false)].concat();
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8847, &body));
        assert_eq!(net, Err(DecodeSkip::TruncatedLink));
    }

    #[test]
    fn mpls_nested_pseudowires_hit_label_cap() {
        // Each pseudowire frame carries another MPLS stack: the label cap ends the walk.
        let mut frame = ethernet(0x0800, IP4);
        for _ in 0..=MAX_MPLS_LABELS {
            let mut body = label(16, true).to_vec();
            body.extend([0, 0, 0, 0]);
            body.extend(&frame);
            frame = ethernet(0x8847, &body);
        }
        let (net, _) = decode(LinkType::ETHERNET, &frame);
        assert_eq!(net, Err(DecodeSkip::TooManyMplsLabels));
    }

    #[test]
    fn mpls_unknown_nibble_is_not_ip() {
        let mut body = label(13, true).to_vec();
        body.extend([0x10, 0, 0, 0]);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8847, &body));
        assert_eq!(net, Err(DecodeSkip::NotIp));
    }

    #[test]
    fn pppoe_ipv4_and_ipv6() {
        let mut body = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x21];
        body.extend_from_slice(IP4);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8864, &body));
        assert_eq!(net, Ok(v4(IP4)));

        let mut body = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x57];
        body.extend_from_slice(IP6);
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8864, &body));
        assert_eq!(net, Ok(v6(IP6)));
    }

    #[test]
    fn pppoe_lcp_is_not_ip() {
        let body = [0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0xc0, 0x21, 1, 2, 3, 4];
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8864, &body));
        assert_eq!(net, Err(DecodeSkip::NotIp));
    }

    #[test]
    fn pppoe_bad_version() {
        let body = [0x21, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x21, 0x45];
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x8864, &body));
        assert_eq!(net, Err(DecodeSkip::BadLinkHeader));
    }

    #[test]
    fn arp_is_not_ip() {
        let (net, _) = decode(LinkType::ETHERNET, &ethernet(0x0806, &[0; 28]));
        assert_eq!(net, Err(DecodeSkip::NotIp));
    }

    #[test]
    fn sll_records_source_mac() {
        let mut frame = vec![0, 0, 0, 1, 0, 6, 9, 8, 7, 6, 5, 4, 0, 0, 0x08, 0x00];
        frame.extend_from_slice(IP4);
        let (net, info) = decode(LinkType::LINUX_SLL, &frame);
        assert_eq!(net, Ok(v4(IP4)));
        assert_eq!(info.src_mac, Some([9, 8, 7, 6, 5, 4]));
        assert_eq!(info.dst_mac, None);
    }

    #[test]
    fn sll_tunnel_device_has_no_mac() {
        // ARPHRD_NONE (0xFFFE), no address: raw IPv6 on a tun device.
        let mut frame = vec![0, 4, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x86, 0xdd];
        frame.extend_from_slice(IP6);
        let (net, info) = decode(LinkType::LINUX_SLL, &frame);
        assert_eq!(net, Ok(v6(IP6)));
        assert_eq!(info.src_mac, None);
    }

    #[test]
    fn sll2_ipv6_with_vlan_tag() {
        let mut frame = vec![
            0x81, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 1, 1, 1, 1, 1, 1, 0, 0,
        ];
        frame.extend(tag(55, 0x86DD));
        frame.extend_from_slice(IP6);
        let (net, info) = decode(LinkType::LINUX_SLL2, &frame);
        assert_eq!(net, Ok(v6(IP6)));
        assert_eq!(info.src_mac, Some([1; 6]));
        assert_eq!(info.vlan, Some(55));
    }

    #[test]
    fn raw_link_types_use_version_nibble() {
        for link in [LinkType::RAW, LinkType::RAW_DLT12, LinkType::RAW_DLT14] {
            assert_eq!(decode(link, IP4).0, Ok(v4(IP4)));
            assert_eq!(decode(link, IP6).0, Ok(v6(IP6)));
            assert_eq!(decode(link, &[0x50, 0]).0, Err(DecodeSkip::NotIp));
            assert_eq!(decode(link, &[]).0, Err(DecodeSkip::TruncatedIp));
        }
    }

    #[test]
    fn ipv4_and_ipv6_link_types() {
        assert_eq!(decode(LinkType::IPV4, IP4).0, Ok(v4(IP4)));
        assert_eq!(decode(LinkType::IPV6, IP6).0, Ok(v6(IP6)));
    }

    #[test]
    fn null_loopback_both_byte_orders() {
        for (family, is_v6) in [
            ([2, 0, 0, 0], false),
            ([0, 0, 0, 2], false),
            ([24, 0, 0, 0], true),
            ([0, 0, 0, 28], true),
            ([30, 0, 0, 0], true),
        ] {
            let mut frame = family.to_vec();
            frame.extend_from_slice(if is_v6 { IP6 } else { IP4 });
            let expected = if is_v6 { v6(IP6) } else { v4(IP4) };
            assert_eq!(decode(LinkType::NULL, &frame).0, Ok(expected), "{family:?}");
        }
        assert_eq!(
            decode(LinkType::NULL, &[7, 0, 0, 0, 0x45]).0,
            Err(DecodeSkip::NotIp)
        );
    }

    #[test]
    fn loop_is_network_order_only() {
        let mut frame = vec![0, 0, 0, 24];
        frame.extend_from_slice(IP6);
        assert_eq!(decode(LinkType::LOOP, &frame).0, Ok(v6(IP6)));
        let mut frame = vec![2, 0, 0, 0];
        frame.extend_from_slice(IP4);
        assert_eq!(decode(LinkType::LOOP, &frame).0, Err(DecodeSkip::NotIp));
    }

    #[test]
    fn unsupported_link_type() {
        assert_eq!(
            decode(LinkType(147), &[0; 64]).0,
            Err(DecodeSkip::UnsupportedLinkType)
        );
    }

    #[test]
    fn truncation_at_every_offset_of_link_headers() {
        let mut pppoe = tag(5, 0x8864);
        pppoe.extend([0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x21]);
        pppoe.extend_from_slice(IP4);
        let mut mpls = label(16, false).to_vec();
        mpls.extend(label(17, true));
        mpls.extend([0, 0, 0, 0]);
        mpls.extend(ethernet(0x86DD, IP6));
        let frames = [
            (LinkType::ETHERNET, ethernet(0x8100, &pppoe)),
            (LinkType::ETHERNET, ethernet(0x8847, &mpls)),
        ];
        for (link, frame) in frames {
            let header_len = frame.len() - 4;
            for cut in 0..header_len {
                let (net, _) = decode(link, &frame[..cut]);
                assert_eq!(net, Err(DecodeSkip::TruncatedLink), "cut at {cut}");
            }
        }
        for cut in 0..16 {
            assert_eq!(
                decode(LinkType::LINUX_SLL, &[0; 16][..cut]).0,
                Err(DecodeSkip::TruncatedLink)
            );
        }
        for cut in 0..20 {
            assert_eq!(
                decode(LinkType::LINUX_SLL2, &[0; 20][..cut]).0,
                Err(DecodeSkip::TruncatedLink)
            );
        }
        for cut in 0..4 {
            assert_eq!(
                decode(LinkType::NULL, &[2, 0, 0, 0][..cut]).0,
                Err(DecodeSkip::TruncatedLink)
            );
        }
    }

    #[test]
    fn garbage_frames_never_panic() {
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
        ];
        let mut rng = crate::test_rng::XorShift(0x2545_F491_4F6C_DD1D);
        for link in links {
            for len in 0..200usize {
                let frame: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let _ = decode(link, &frame);
            }
        }
    }
}
