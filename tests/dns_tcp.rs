//! DNS over TCP end to end: captures built packet by packet (Ethernet, IPv4, TCP with correct
//! checksums) so that a response can be cut exactly where a test needs it, replayed through the
//! real `ksensor` binary.

mod common;
#[path = "builders/dns_message.rs"]
mod dns_message;
mod support;

use std::net::Ipv4Addr;

use etherparse::PacketBuilder;
use serde_json::Value;

use common::replay_events;
use dns_message::{a, dns_tcp};
use support::{pcap_file, Packet, Scratch};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 21);
const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 53);
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = PSH | ACK;

/// An Ethernet II frame with an IPv4 header and a TCP segment, checksums filled in
/// (`etherparse`, as the other tests build packets). `flags`: SYN, ACK, PSH bits.
fn tcp_frame(
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, seq, 0xffff);
    let b = if flags & SYN != 0 { b.syn() } else { b };
    let b = if flags & ACK != 0 { b.ack(0) } else { b };
    let b = if flags & PSH != 0 { b.psh() } else { b };
    let mut frame = Vec::new();
    b.write(&mut frame, payload).expect("build a frame");
    frame
}

/// A capture: a DNS-over-TCP lookup of `qname` whose response is cut at `cuts`, then one
/// connection from the client to each of `visits` (handshake and a few clear-text bytes that are
/// neither TLS nor HTTP, so it has no name of its own).
fn capture(qname: &str, response: &[u8], cuts: &[usize], visits: &[Ipv4Addr]) -> Vec<u8> {
    let mut frames = Vec::new();
    let c = (CLIENT, 40_001);
    let s = (RESOLVER, 53);
    frames.push(tcp_frame(c, s, 100, SYN, b""));
    frames.push(tcp_frame(s, c, 500, SYN | ACK, b""));
    frames.push(tcp_frame(c, s, 101, PSH_ACK, &dns_tcp(false, qname, &[])));
    let mut at = 0usize;
    for end in cuts.iter().copied().chain([response.len()]) {
        let seq = 501 + at as u32;
        frames.push(tcp_frame(s, c, seq, PSH_ACK, &response[at..end]));
        at = end;
    }
    for (i, &server) in visits.iter().enumerate() {
        let c = (CLIENT, 41_000 + i as u16);
        let s = (server, 8080);
        frames.push(tcp_frame(c, s, 1000, SYN, b""));
        frames.push(tcp_frame(s, c, 9000, SYN | ACK, b""));
        frames.push(tcp_frame(c, s, 1001, PSH_ACK, b"HELO agent\r\n"));
    }
    let packets: Vec<Packet> = frames
        .into_iter()
        .enumerate()
        .map(|(i, data)| Packet {
            secs: 1_700_000_000,
            micros: 1000 * i as u32,
            orig_len: data.len() as u32,
            data,
        })
        .collect();
    pcap_file(1, 65535, &packets)
}

/// The servers of the connections correlated with `name`.
fn correlated(events: &[Value], name: &str) -> Vec<String> {
    let mut servers: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "correlated" && e["name"] == name)
        .filter_map(|e| e["server"]["ip"].as_str().map(String::from))
        .collect();
    servers.sort();
    servers
}

#[test]
fn address_answered_in_a_later_segment_correlates_a_connection() {
    // Two A records for a Kaspersky name; the second lies wholly in the response's second
    // segment. A connection to either address is attributed to the name.
    let answers = [
        a("ds.kaspersky.com", [10, 99, 0, 1]),
        a("ds.kaspersky.com", [10, 99, 0, 2]),
    ];
    let response = dns_tcp(true, "ds.kaspersky.com", &answers);
    // The last record: its name (18 octets), fixed fields (10) and address (4).
    let cut = response.len() - 32;
    let visits = [Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 2)];
    let scratch = Scratch::new();
    let file = scratch.write(
        "late-answer.pcap",
        &capture("ds.kaspersky.com", &response, &[cut], &visits),
    );
    for workers in ["1", "2"] {
        let events = replay_events(&file, &["--workers", workers]);
        assert_eq!(
            correlated(&events, "ds.kaspersky.com"),
            ["10.99.0.1", "10.99.0.2"],
            "workers {workers}: {events:?}"
        );
    }
    // Cut inside the second record instead (its address in the last segment), and in three.
    let file = scratch.write(
        "late-answer-3.pcap",
        &capture("ds.kaspersky.com", &response, &[cut - 20, cut + 3], &visits),
    );
    let events = replay_events(&file, &["--workers", "1"]);
    assert_eq!(
        correlated(&events, "ds.kaspersky.com"),
        ["10.99.0.1", "10.99.0.2"],
        "{events:?}"
    );
}
