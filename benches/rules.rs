//! Rule lookup cost: one `RuleSet::lookup` per name, on 10 and 10 000 synthetic rules (a third
//! each exact, suffix and pattern), for a hit and a miss, plus the bundled Kaspersky rules on a
//! mix of real-shaped names. Lookup cost should not depend on the rule count.
//!
//! Address lookup cost: one `RuleSet::network_for` per address on the bundled networks (37
//! prefixes) and on 65 536 synthetic prefixes (the `MAX_PREFIXES` cap: nested /16, /20, /24
//! and /32 blocks), IPv4 and IPv6, hit and miss. A binary search: the cost grows with the
//! logarithm of the prefix count.
//!
//! Needs in Cargo.toml: `[[bench]] name = "rules" path = "benches/rules.rs" harness = false`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ksensor::proto::HostName;
use ksensor::rules::RuleSet;

/// `n` rules: thirds exact names, suffixes and patterns, each under its own zone.
fn synthetic_rules(n: usize) -> RuleSet {
    let mut text = String::with_capacity(n * 120);
    for i in 0..n {
        let m = match i % 3 {
            0 => format!("exact:host{i}.zone{i}.example"),
            1 => format!("suffix:zone{i}.example"),
            _ => format!("pattern:n##-*.zone{i}.example"),
        };
        text.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\nmatch = [\"{m}\"]\ncategory = \"service\"\n\
             confidence = \"medium\"\nproduct = \"kaspersky\"\nsource = \"synthetic\"\n"
        ));
    }
    match RuleSet::parse("synthetic.toml", &text) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    }
}

fn host(s: &str) -> HostName {
    match HostName::parse(s.as_bytes()) {
        Ok(h) => h,
        Err(e) => panic!("{s}: {e:?}"),
    }
}

fn bench_synthetic(c: &mut Criterion) {
    let mut group = c.benchmark_group("rules_lookup");
    group.throughput(Throughput::Elements(1));
    for n in [10usize, 10_000] {
        let set = synthetic_rules(n);
        // Rule 7 is a suffix (7 % 3 == 1), rule 5 a pattern: present in both sizes.
        let cases = [
            ("hit_suffix", host("a.b.zone7.example")),
            ("hit_pattern", host("n12-cdn.zone5.example")),
            ("hit_exact", host("host6.zone6.example")),
            ("miss", host("www.unrelated-site.example.net")),
            ("miss_deep", host("a.b.c.d.e.f.g.h.i.j.zone999999.example")),
        ];
        for (label, name) in &cases {
            group.bench_function(format!("{n}_rules/{label}"), |b| {
                b.iter(|| set.lookup(black_box(name)))
            });
        }
    }
    group.finish();
}

fn bench_bundled(c: &mut Criterion) {
    let set = match RuleSet::load(&[RuleSet::bundled_dir()]) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    };
    let names: Vec<HostName> = [
        "dnl-07.geo.kaspersky.com",
        "s12.upd.kaspersky.com",
        "dc1.ksn.kaspersky-labs.com",
        "ksn-url-geo.kaspersky-labs.com",
        "www.kaspersky.com",
        "mx13.kaspersky-labs.com",
        "_spf.kaspersky-labs.com",
        "www.google.com",
        "clients4.google.com",
        "r3.o.lencr.org",
        "a1234.dscd.akamai.net",
    ]
    .iter()
    .map(|s| host(s))
    .collect();
    let mut group = c.benchmark_group("rules_bundled");
    group.throughput(Throughput::Elements(names.len() as u64));
    group.bench_function("mixed_11_names", |b| {
        b.iter(|| {
            names
                .iter()
                .filter(|n| set.lookup(black_box(n)).is_some())
                .count()
        })
    });
    group.finish();
}

/// `MAX_PREFIXES` prefixes in 64 networks of 1024: nested IPv4 blocks (/16 > /20 > /24 > /32)
/// and IPv6 /48s with /64s inside. Plus the one rule a set needs.
fn synthetic_networks() -> RuleSet {
    let mut text = String::from(
        "[[rule]]\nid = \"r\"\nmatch = [\"exact:r.example\"]\ncategory = \"update\"\n\
         confidence = \"high\"\nproduct = \"kaspersky\"\nsource = \"synthetic\"\n",
    );
    let mut total = 0usize;
    for n in 0..64u32 {
        let mut prefixes = Vec::with_capacity(1024);
        let (a, b) = (10 + n / 8, (n % 8) * 32);
        for c in 0..32u32 {
            prefixes.push(format!("{a}.{}.0.0/16", b + c));
            prefixes.push(format!("{a}.{}.16.0/20", b + c));
            for d in (16..32u32).step_by(2) {
                prefixes.push(format!("{a}.{}.{d}.0/24", b + c));
            }
            prefixes.push(format!("{a}.{}.17.5/32", b + c));
            for v in 0..10u32 {
                prefixes.push(format!("2a03:{n:x}:{c:x}{v:x}::/48"));
                prefixes.push(format!("2a03:{n:x}:{c:x}{v:x}:1::/64"));
            }
            prefixes.push(format!("2a03:{n:x}:{c:x}ff::/48"));
        }
        total += prefixes.len();
        let list: Vec<String> = prefixes.iter().map(|p| format!("{p:?}")).collect();
        text.push_str(&format!(
            "[[network]]\nid = \"n{n}\"\nasn = {}\nprefixes = [{}]\nuse = \"corroborate\"\n\
             source = \"synthetic\"\nretrieved = \"2026-12-06\"\n",
            n + 1,
            list.join(", ")
        ));
    }
    let set = match RuleSet::parse("synthetic-networks.toml", &text) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(total, ksensor::rules::MAX_PREFIXES);
    assert_eq!(set.prefix_count(), total);
    set
}

fn addr(s: &str) -> IpAddr {
    match s.parse() {
        Ok(a) => a,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn bench_networks(c: &mut Criterion) {
    let bundled = match RuleSet::load(&[RuleSet::bundled_dir()]) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    };
    let synthetic = synthetic_networks();
    let mut group = c.benchmark_group("rules_network");
    group.throughput(Throughput::Elements(1));
    let cases: [(&str, &RuleSet, &str, bool); 8] = [
        ("bundled/v4_hit", &bundled, "77.74.181.20", true),
        ("bundled/v4_miss", &bundled, "142.250.74.110", false),
        ("bundled/v6_hit", &bundled, "2a03:2480:8029::10", true),
        (
            "bundled/v6_miss",
            &bundled,
            "2a00:1450:400e:80f::200e",
            false,
        ),
        ("65536_prefixes/v4_hit", &synthetic, "13.100.17.5", true),
        ("65536_prefixes/v4_miss", &synthetic, "9.1.2.3", false),
        ("65536_prefixes/v6_hit", &synthetic, "2a03:21:15::1", true),
        (
            "65536_prefixes/v6_miss",
            &synthetic,
            "2a03:21:ffff::1",
            false,
        ),
    ];
    for (label, set, a, hit) in cases {
        let ip = addr(a);
        assert_eq!(set.network_for(ip).is_some(), hit, "{label}");
        group.bench_function(label, |b| b.iter(|| set.network_for(black_box(ip))));
    }
    group.finish();
}

criterion_group!(benches, bench_synthetic, bench_bundled, bench_networks);
criterion_main!(benches);
