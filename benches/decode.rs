//! Decode-stage benchmarks: packets per second through `decode_packet` for the common shapes
//! (Ethernet/IPv4/TCP, VLAN/IPv6/UDP) and a tunnelled one (VXLAN), the worker's fast-path
//! reading of a plain TCP segment (`plain_tcp`, all a packet of a bypassed flow costs besides
//! its flow lookup), plus the checksum.
//!
//! Needs `[[bench]] name = "decode" path = "benches/decode.rs" harness = false` in Cargo.toml.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::{LaxSlicedPacket, PacketBuilder, VlanId};
use ksensor::capture::LinkType;
use ksensor::decode::{decode_packet, plain_tcp, transport_checksum_ok};

const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: [u8; 6] = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];

/// A 517-byte TLS ClientHello-sized payload.
fn payload() -> Vec<u8> {
    (0..517u32).map(|i| i as u8).collect()
}

fn ethernet_ipv4_tcp() -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 443, 1, 65535)
        .ack(1)
        .psh()
        .write(&mut frame, &payload())
        .expect("build packet");
    frame
}

fn vlan_ipv6_udp() -> Vec<u8> {
    let mut frame = Vec::new();
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .single_vlan(VlanId::try_new(10).expect("vlan id"))
        .ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(50000, 53)
        .write(&mut frame, &payload()[..60])
        .expect("build packet");
    frame
}

fn vxlan() -> Vec<u8> {
    let inner = ethernet_ipv4_tcp();
    let mut outer = Vec::new();
    let mut body = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    body.extend(inner);
    PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(54321, 4789)
        .write(&mut outer, &body)
        .expect("build packet");
    outer
}

fn bench_decode(c: &mut Criterion) {
    let cases = [
        ("ethernet_ipv4_tcp", ethernet_ipv4_tcp()),
        ("vlan_ipv6_udp", vlan_ipv6_udp()),
        ("vxlan_ipv4_tcp", vxlan()),
    ];
    let mut group = c.benchmark_group("decode_packet");
    group.throughput(Throughput::Elements(1));
    for (name, frame) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| decode_packet(black_box(LinkType::ETHERNET), black_box(frame)).is_ok())
        });
    }
    group.finish();

    // Reference point on the same machine and load: etherparse's lax slicer, which stops at
    // the transport header and follows no tunnels.
    let mut group = c.benchmark_group("etherparse_lax_baseline");
    group.throughput(Throughput::Elements(1));
    for (name, frame) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| LaxSlicedPacket::from_ethernet(black_box(frame)).is_ok())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("plain_tcp");
    group.throughput(Throughput::Elements(1));
    let frame = ethernet_ipv4_tcp();
    group.bench_function("ethernet_ipv4_tcp", |b| {
        b.iter(|| plain_tcp(black_box(LinkType::ETHERNET), black_box(&frame)).is_some())
    });
    group.finish();

    let mut group = c.benchmark_group("transport_checksum_ok");
    let frame = ethernet_ipv4_tcp();
    let decoded = decode_packet(LinkType::ETHERNET, &frame).expect("decodes");
    group.throughput(Throughput::Bytes(decoded.l4_bytes.len() as u64));
    group.bench_function("tcp_537_bytes", |b| {
        b.iter(|| transport_checksum_ok(black_box(&decoded)))
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
