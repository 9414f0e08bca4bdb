//! Rule lookup cost: one `RuleSet::lookup` per name, on 10 and 10 000 synthetic rules (a third
//! each exact, suffix and pattern), for a hit and a miss, plus the bundled Kaspersky rules on a
//! mix of real-shaped names. Lookup cost should not depend on the rule count.
//!
//! Needs in Cargo.toml: `[[bench]] name = "rules" path = "benches/rules.rs" harness = false`.

use std::hint::black_box;

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
    group.bench_function("mixed_10_names", |b| {
        b.iter(|| {
            names
                .iter()
                .filter(|n| set.lookup(black_box(n)).is_some())
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_synthetic, bench_bundled);
criterion_main!(benches);
