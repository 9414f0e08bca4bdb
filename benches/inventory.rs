//! What the live loop's metrics tick costs with a full host inventory: walking every host and
//! deciding its verdict (`InventorySnapshot::take`, done while the pipeline is held), and
//! setting the gauges from the result and rendering `/metrics` (`Metrics::apply_snapshot` and
//! `Metrics::render`, the part a scrape can wait for). The inventory holds `MAX_HOSTS` hosts:
//! a KSC server with its agents, and spoofed DNS sources each with one lookup of a Kaspersky
//! update name sent to one resolver (the flood that fills the inventory in `tests/floods.rs`).
//!
//! These numbers decide where the host gauges are computed: a scrape that walked the hosts
//! itself (as a concurrent map would allow) would wait for the whole walk on every scrape.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ksensor::inventory::assets::Assets;
use ksensor::inventory::{Inventory, MAX_HOSTS};
use ksensor::metrics::{InventorySnapshot, Metrics};
use ksensor::observation::{
    Endpoint, NameSighting, NameSource, ObsOrder, Observation, Observed, PacketContext,
};
use ksensor::proto::HostName;
use ksensor::rules::RuleSet;
use ksensor::time::Timestamp;

fn observed(secs: u64, what: Observation) -> Observed {
    Observed {
        order: ObsOrder { packet: 0, sub: 0 },
        ctx: PacketContext {
            ts: Timestamp::from_secs_nanos(1_000 + secs, 0),
            input: 0,
            client_mac: None,
            vlan: None,
            outer: None,
        },
        what,
    }
}

fn full_inventory() -> Inventory {
    let rules = match RuleSet::load(&[RuleSet::bundled_dir()]) {
        Ok(r) => Arc::new(r),
        Err(e) => panic!("{e}"),
    };
    let name = match HostName::parse(b"s01.upd.kaspersky.com") {
        Ok(n) => n,
        Err(e) => panic!("{e:?}"),
    };
    let rule = rules.lookup(&name);
    let mut inv = Inventory::new(rules);
    let ep = |ip: IpAddr, port| Endpoint { ip, port };
    let ksc = IpAddr::V4(Ipv4Addr::new(10, 70, 0, 10));
    for i in 0..64u8 {
        let agent = IpAddr::V4(Ipv4Addr::new(10, 70, 1, i));
        inv.apply(&observed(
            0,
            Observation::KscSession {
                client: ep(agent, 50_000),
                server: ep(ksc, 13_000),
            },
        ));
    }
    let resolver = IpAddr::V4(Ipv4Addr::new(10, 70, 0, 53));
    for i in 0..MAX_HOSTS as u32 {
        let client = IpAddr::V4(Ipv4Addr::from(0x6400_0000 + i));
        inv.apply(&observed(
            u64::from(i / 1000),
            Observation::Name(NameSighting {
                name,
                source: NameSource::DnsQuery,
                client: ep(client, 40_000),
                server: ep(resolver, 53),
                rule,
                answers: Vec::new(),
                ttl: None,
                dns: None,
                qtype: Some(1),
            }),
        ));
    }
    assert_eq!(inv.host_count(), MAX_HOSTS);
    inv
}

fn tick(c: &mut Criterion) {
    let inv = full_inventory();
    let assets = Assets::default();
    let mut g = c.benchmark_group("metrics_tick_65536_hosts");
    g.sample_size(10);
    g.bench_function("snapshot_take (walk and decide every host)", |b| {
        b.iter(|| black_box(InventorySnapshot::take(&inv, 0, false, &assets)))
    });
    let snapshot = InventorySnapshot::take(&inv, 0, false, &assets);
    let mut metrics = match Metrics::new(None) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    metrics.apply_snapshot(snapshot.clone());
    g.bench_function("apply_snapshot (under the metrics lock)", |b| {
        b.iter(|| metrics.apply_snapshot(black_box(snapshot.clone())))
    });
    g.bench_function("render (a scrape)", |b| {
        b.iter(|| black_box(metrics.render()))
    });
    g.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
