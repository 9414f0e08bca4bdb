//! decode::decode_packet over every link type (chosen by the first input byte).
//!
//! Properties: every borrowed view (IP packet, TCP/UDP payload, fragment payload) lies within
//! the packet; TCP wire length is at least the captured payload; `outer_len` hops are present
//! and within the tunnel cap; a fragment resumed with `decode_ip_payload` stays within its
//! payload; the checksum helper never panics; the worker's fast path (`decode::plain_tcp`)
//! answers only for packets the full decode ends on the same TCP segment for, and the
//! fixed-offset decode (`decode::decode_plain`) only with the full walk's very view.
#![no_main]

use ksensor::decode::{self, Decoded, L4, MAX_TUNNEL_DEPTH};
use ksensor_fuzz::{link_type, within, Cursor};
use libfuzzer_sys::fuzz_target;

fn check(d: &Decoded<'_>, input: &[u8]) {
    assert!(within(d.ip_packet, input), "ip_packet outside the input");
    let hops = usize::from(d.outer_len);
    assert!(hops <= MAX_TUNNEL_DEPTH, "outer_len {hops} over the cap");
    for (i, hop) in d.outer.iter().enumerate() {
        assert_eq!(hop.is_some(), i < hops, "outer hop {i} vs outer_len {hops}");
    }
    match d.l4 {
        L4::Tcp(seg) => {
            assert!(within(seg.payload, input), "TCP payload outside the input");
            assert!(within(seg.payload, d.ip_packet), "TCP payload outside the IP packet");
            let captured = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
            assert!(seg.wire_payload_len >= captured, "wire length below captured length");
            if !d.truncated {
                assert_eq!(seg.wire_payload_len, captured, "untruncated TCP lengths differ");
            }
        }
        L4::Udp(dgram) => {
            assert!(within(dgram.payload, input), "UDP payload outside the input");
            assert!(within(dgram.payload, d.ip_packet), "UDP payload outside the IP packet");
        }
        L4::Fragment(frag) => {
            assert!(within(frag.payload, input), "fragment outside the input");
            assert!(within(frag.payload, d.ip_packet), "fragment outside the IP packet");
        }
        L4::Other { .. } => {}
    }
    let _ = decode::transport_checksum_ok(d);
}

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let link = link_type(cursor.u8());
    let packet = cursor.rest();
    assert!(
        decode::plain_tcp_agrees_with_decode(link, packet),
        "plain_tcp differs from the full decode"
    );
    if link == ksensor::capture::LinkType::ETHERNET {
        assert!(
            decode::decode_plain_agrees_with_full(packet),
            "decode_plain differs from the full decode"
        );
    }
    let Ok(d) = decode::decode_packet(link, packet) else {
        return;
    };
    check(&d, packet);
    if let L4::Fragment(frag) = d.l4 {
        // As if this fragment completed a datagram: resume on its payload.
        if let Ok(inner) =
            decode::decode_ip_payload(&d, d.ip.src, d.ip.dst, frag.proto, frag.payload)
        {
            assert!(within(inner.ip_packet, frag.payload) || inner.ip_packet.is_empty());
            if let L4::Tcp(seg) = inner.l4 {
                assert!(within(seg.payload, frag.payload));
            }
            if let L4::Udp(dgram) = inner.l4 {
                assert!(within(dgram.payload, frag.payload));
            }
            assert!(usize::from(inner.outer_len) <= MAX_TUNNEL_DEPTH);
        }
    }
});
