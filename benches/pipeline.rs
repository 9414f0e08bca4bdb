//! Criterion benches for the stages not covered elsewhere: DNS name extraction, flow-table
//! lookup, and one worker end to end on the real staged-network capture.
//!
//! `cargo bench --bench pipeline`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use ksensor::capture::file::FileSource;
use ksensor::capture::{PacketMeta, PacketSource, SourceStatus};
use ksensor::flow::table::{FlowEntry, FlowKey, FlowTable};
use ksensor::pipeline::Worker;
use ksensor::proto::dns::{parse_message, DnsMessage};
use ksensor::rules::RuleSet;
use ksensor::time::Timestamp;

/// A response for dnl-01.geo.kaspersky.com: CNAME to a CDN name, then an A record.
fn dns_response() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    for label in ["dnl-01", "geo", "kaspersky", "com"] {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    // CNAME: owner = pointer to the question name (offset 12).
    m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0x0e, 0x10]);
    let target: Vec<u8> = [b"\x03cdn".as_slice(), b"\x07example\x03net\x00"].concat();
    m.extend_from_slice(&(target.len() as u16).to_be_bytes());
    let target_at = m.len();
    m.extend_from_slice(&target);
    m.extend_from_slice(&[
        0xc0,
        target_at as u8,
        0,
        1,
        0,
        1,
        0,
        0,
        0x0e,
        0x10,
        0,
        4,
        192,
        0,
        2,
        7,
    ]);
    m
}

fn bench_dns(c: &mut Criterion) {
    let msg = dns_response();
    let mut out = DnsMessage::default();
    let mut g = c.benchmark_group("dns");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_response_cname_a", |b| {
        b.iter(|| {
            let _ = parse_message(black_box(&msg), &mut out);
            black_box(out.answers.len())
        })
    });
    g.finish();
}

struct Entry(Timestamp);
impl FlowEntry for Entry {
    fn last_seen(&self) -> Timestamp {
        self.0
    }
    fn idle_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(300)
    }
}

fn bench_flow_lookup(c: &mut Criterion) {
    let now = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let mut table = FlowTable::new(1 << 18);
    let keys: Vec<FlowKey> = (0..20_000u32)
        .map(|i| {
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i % 2000)));
            let server = IpAddr::V4(Ipv4Addr::from(0xc000_0200 | (i % 5000)));
            FlowKey::new(client, 30_000 + (i % 30_000) as u16, server, 443, 6).0
        })
        .collect();
    for k in &keys {
        table.insert(*k, Entry(now), now);
    }
    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("lookup_20k_established", |b| {
        b.iter(|| {
            let mut hits = 0u32;
            for k in &keys {
                if table.get_mut(k, now).is_some() {
                    hits += 1;
                }
            }
            black_box(hits)
        })
    });
    g.finish();
}

fn bench_worker(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/staged-network.pcap");
    let mut packets: Vec<(PacketMeta, Vec<u8>)> = Vec::new();
    let mut source = FileSource::open(&path, 0).unwrap_or_else(|e| panic!("{e}"));
    while let Ok(SourceStatus::More) =
        source.next_packets(1024, &mut |m, d| packets.push((m, d.to_vec())))
    {}
    let bundled = RuleSet::bundled_dir();
    let rules =
        Arc::new(RuleSet::load(std::slice::from_ref(&bundled)).unwrap_or_else(|e| panic!("{e}")));
    let mut g = c.benchmark_group("worker");
    g.throughput(Throughput::Elements(packets.len() as u64));
    g.bench_function("staged_network_capture", |b| {
        b.iter(|| {
            let mut worker = Worker::new(rules.clone(), false, 1 << 16);
            for (seq, (meta, data)) in packets.iter().enumerate() {
                worker.process(seq as u64, meta, data);
            }
            black_box(worker.take_observations().len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_dns, bench_flow_lookup, bench_worker);
criterion_main!(benches);
