//! Tests of the inventory: caps under floods, correlation, forwarding resolvers, reloads and
//! the documented memory sizes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::correlate::RecentQuery;
use super::*;
use crate::observation::{Endpoint, NameSighting, NamelessReason, ObsOrder, PacketContext};
use crate::proto::HostName;

fn rules() -> Arc<RuleSet> {
    let text = "[[rule]]\nid = \"kaspersky\"\nmatch = [\"suffix:kaspersky.com\"]\n\
                category = \"update\"\nconfidence = \"high\"\nsource = \"t\"\n\n\
                [[rule]]\nid = \"ksn\"\nmatch = [\"suffix:kaspersky-labs.com\"]\n\
                category = \"update\"\nconfidence = \"medium\"\nsource = \"t\"\n";
    Arc::new(RuleSet::parse("t.toml", text).expect("rules"))
}

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n))
}

fn ctx(secs: u64, input: u16) -> PacketContext {
    PacketContext {
        ts: Timestamp::from_secs_nanos(1_000 + secs, 0),
        input,
        client_mac: None,
        vlan: None,
        outer: None,
        ip_proto: 6,
    }
}

fn observed(ctx: PacketContext, what: Observation) -> Observed {
    Observed {
        order: ObsOrder { packet: 0, sub: 0 },
        ctx,
        what,
    }
}

fn name(s: &str) -> HostName {
    HostName::parse(s.as_bytes()).expect("valid name")
}

/// A matched TLS SNI from `client` (rule 0 unless the name says otherwise).
fn sni(client: IpAddr, host: &str, input: u16) -> Observed {
    observed(
        ctx(0, input),
        Observation::Name(NameSighting {
            name: name(host),
            source: NameSource::TlsSni,
            client: Endpoint {
                ip: client,
                port: 50_000,
            },
            server: Endpoint {
                ip: ip(0xff_ffff),
                port: 443,
            },
            rule: Some(RuleIdx(u32::from(host.ends_with("kaspersky-labs.com")))),
            answers: Vec::new(),
            ttl: None,
            dns: None,
        }),
    )
}

fn answer(host: &str, addrs: Vec<IpAddr>, secs: u64) -> Observed {
    let ep = Endpoint {
        ip: ip(1),
        port: 53,
    };
    observed(
        ctx(secs, 0),
        Observation::DnsAnswer {
            name: name(host),
            rule: RuleIdx(0),
            client: ep,
            server: ep,
            answers: addrs,
            ttl: Some(300),
            dns: None,
        },
    )
}

fn ksc(client: IpAddr, server: IpAddr) -> Observed {
    observed(
        ctx(0, 0),
        Observation::KscContact {
            client: Endpoint {
                ip: client,
                port: 50_000,
            },
            server: Endpoint {
                ip: server,
                port: 13_000,
            },
            udp: false,
        },
    )
}

fn total_evidence(inv: &Inventory) -> (usize, u64) {
    let mut entries = 0usize;
    let mut dropped = 0u64;
    inv.for_each_host(|h| {
        assert!(h.evidence().len() <= MAX_EVIDENCE_PER_HOST);
        entries += h.evidence().len();
        dropped += h.evidence_dropped;
    });
    (entries, dropped)
}

#[test]
fn flood_of_distinct_hosts_and_names_stays_within_caps() {
    let mut inv = Inventory::new(rules());
    const FLOOD: u32 = 200_000;
    for i in 0..FLOOD {
        inv.apply(&sni(ip(i), &format!("h{i}.kaspersky.com"), 0));
    }
    let flood = FLOOD as usize;
    assert_eq!(inv.counters.detections, u64::from(FLOOD));
    assert_eq!(inv.host_count(), MAX_HOSTS);
    assert_eq!(inv.counters.hosts_refused, (flood - MAX_HOSTS) as u64);
    // Refused hosts intern nothing; accepted ones past the name cap keep nameless evidence.
    assert_eq!(inv.names().len(), MAX_DISTINCT_NAMES);
    assert_eq!(
        inv.counters.names_refused,
        (MAX_HOSTS - MAX_DISTINCT_NAMES) as u64
    );
    assert_eq!(inv.evidence_entries(), MAX_HOSTS);
    assert_eq!(total_evidence(&inv), (MAX_HOSTS, 0));
    let last = inv.host(ip(MAX_HOSTS as u32 - 1)).expect("accepted host");
    assert_eq!(last.evidence().len(), 1);
    assert_eq!(last.evidence()[0].key.name, None);
    assert_eq!(last.strongest(), Some(Confidence::High));
    drop(last);
    assert!(inv.host(ip(MAX_HOSTS as u32)).is_none());
}

#[test]
fn evidence_flood_stops_at_the_inventory_wide_cap() {
    let mut inv = Inventory::new(rules());
    // 1 100 hosts × 256 inputs = 281 600 distinct entries, over MAX_EVIDENCE_ENTRIES.
    const HOSTS: u32 = 1_100;
    for h in 0..HOSTS {
        for input in 0..256u16 {
            inv.apply(&sni(ip(h), "dnl-01.geo.kaspersky.com", input));
        }
    }
    let attempts = HOSTS as usize * 256;
    assert_eq!(inv.evidence_entries(), MAX_EVIDENCE_ENTRIES);
    let refused = (attempts - MAX_EVIDENCE_ENTRIES) as u64;
    assert_eq!(inv.counters.evidence_refused, refused);
    assert_eq!(total_evidence(&inv), (MAX_EVIDENCE_ENTRIES, refused));
    assert_eq!(inv.names().len(), 1);
    // Known entries still count when the inventory is full.
    inv.apply(&sni(ip(0), "dnl-01.geo.kaspersky.com", 7));
    let host = inv.host(ip(0)).expect("host");
    let entry = host
        .evidence()
        .iter()
        .find(|e| e.key.input == 7)
        .expect("entry");
    assert_eq!(entry.stat.count, 2);
}

#[test]
fn per_host_evidence_cap_refuses_the_257th_entry() {
    let mut inv = Inventory::new(rules());
    for input in 0..=256u16 {
        inv.apply(&sni(ip(5), "dnl-01.geo.kaspersky.com", input));
    }
    let host = inv.host(ip(5)).expect("host");
    assert_eq!(host.evidence().len(), MAX_EVIDENCE_PER_HOST);
    assert_eq!(host.evidence_dropped, 1);
    drop(host);
    assert_eq!(inv.counters.evidence_refused, 0);
    assert_eq!(inv.evidence_entries(), MAX_EVIDENCE_PER_HOST);
}

#[test]
fn refused_evidence_interns_no_name() {
    let mut inv = Inventory::new(rules());
    for input in 0..256u16 {
        inv.apply(&sni(ip(5), "a.kaspersky.com", input));
    }
    inv.apply(&sni(ip(5), "b.kaspersky.com", 0));
    assert_eq!(inv.names().len(), 1);
    assert_eq!(inv.names().get(&name("b.kaspersky.com")), None);
}

#[test]
fn fact_flood_stops_at_the_inventory_wide_cap() {
    let mut inv = Inventory::new(rules());
    // 2 048 agents × 80 KSC servers: every pair is one new fact on each side.
    const CLIENTS: u32 = 2_048;
    const SERVERS: u32 = 80;
    for c in 0..CLIENTS {
        for s in 0..SERVERS {
            inv.apply(&ksc(ip(c), ip(0x10_0000 + s)));
        }
    }
    let attempts = 2 * CLIENTS as usize * SERVERS as usize;
    assert_eq!(inv.fact_count(), MAX_FACTS);
    assert_eq!(inv.counters.facts_refused, (attempts - MAX_FACTS) as u64);
    let mut facts = 0usize;
    inv.for_each_host(|h| {
        assert!(h.facts().len() <= MAX_FACTS_PER_HOST);
        facts += h.facts().len();
    });
    assert_eq!(facts, MAX_FACTS);
    // Agents keep one evidence entry per server (per-host cap 256 not reached).
    assert_eq!(inv.evidence_entries(), CLIENTS as usize * SERVERS as usize);
}

#[test]
fn answered_addresses_evict_oldest_past_cap() {
    let mut inv = Inventory::new(rules());
    // 10 000 answers × 8 addresses = 80 000 distinct addresses.
    for i in 0..10_000u32 {
        let addrs = (0..8).map(|k| ip(i * 8 + k)).collect();
        inv.apply(&answer("dnl-01.geo.kaspersky.com", addrs, 0));
    }
    assert_eq!(inv.answered_addrs(), MAX_ANSWERED_ADDRS);
    assert_eq!(inv.answered_order.len(), MAX_ANSWERED_ADDRS);
    assert_eq!(
        inv.counters.answered_addrs_evicted,
        (80_000 - MAX_ANSWERED_ADDRS) as u64
    );
    assert!(!inv.answered.contains_key(&ip(0)));
    assert!(inv.answered.contains_key(&ip(79_999)));
    assert_eq!(inv.names().len(), 1);
}

#[test]
fn answer_for_a_name_past_the_name_cap_is_not_remembered() {
    let mut inv = Inventory::new(rules());
    for i in 0..MAX_DISTINCT_NAMES as u32 {
        inv.apply(&answer(&format!("h{i}.kaspersky.com"), vec![ip(i)], 0));
    }
    inv.apply(&answer("late.kaspersky.com", vec![ip(0xabcd)], 0));
    assert_eq!(inv.counters.names_refused, 1);
    assert!(!inv.answered.contains_key(&ip(0xabcd)));
    assert_eq!(inv.answered_addrs(), MAX_DISTINCT_NAMES);
}

#[test]
fn correlation_returns_the_answered_name() {
    let mut inv = Inventory::new(rules());
    let server = IpAddr::V6(Ipv6Addr::new(0x2a02, 0x6b8, 0, 0, 0, 0, 0, 1));
    inv.apply(&answer("dnl-01.geo.kaspersky.com", vec![server], 0));
    let nameless = observed(
        ctx(10, 0),
        Observation::Nameless {
            client: Endpoint {
                ip: ip(9),
                port: 50_000,
            },
            server: Endpoint {
                ip: server,
                port: 443,
            },
            reason: NamelessReason::TlsNoSni,
        },
    );
    let c = inv.apply(&nameless).expect("correlated");
    assert_eq!(c.name, name("dnl-01.geo.kaspersky.com"));
    assert_eq!(c.confidence, Confidence::Medium);
    let host = inv.host(ip(9)).expect("host");
    let e = host.evidence()[0];
    assert_eq!(e.key.peer, Some(server));
    assert_eq!(
        e.key.name.and_then(|n| inv.name(n)),
        Some("dnl-01.geo.kaspersky.com")
    );
}

#[test]
fn report_order_is_host_name_order_not_interning_order() {
    let mut inv = Inventory::new(rules());
    for host in ["bb.kaspersky.com", "c.kaspersky.com", "a.kaspersky.com"] {
        inv.apply(&sni(ip(3), host, 0));
    }
    let host = inv.host(ip(3)).expect("host");
    let shown: Vec<&str> = inv
        .evidence_in_order(&host)
        .iter()
        .filter_map(|e| e.key.name.and_then(|n| inv.name(n)))
        .collect();
    assert_eq!(
        shown,
        vec!["a.kaspersky.com", "c.kaspersky.com", "bb.kaspersky.com"]
    );
}

#[test]
fn reload_merges_entries_and_keeps_budgets_exact() {
    let old = rules();
    let mut inv = Inventory::new(old);
    inv.apply(&sni(ip(3), "x.kaspersky.com", 0));
    inv.apply(&sni(ip(3), "x.kaspersky-labs.com", 0));
    inv.apply(&answer("x.kaspersky.com", vec![ip(77)], 0));
    // The new set has neither rule: both entries keep their names, no answered address stays.
    let text = "[[rule]]\nid = \"other\"\nmatch = [\"suffix:example.org\"]\n\
                category = \"update\"\nconfidence = \"high\"\nsource = \"t\"\n";
    inv.set_rules(Arc::new(RuleSet::parse("n.toml", text).expect("rules")));
    assert_eq!(inv.evidence_entries(), 2);
    assert_eq!(inv.answered_addrs(), 0);
    assert_eq!(inv.answered_order.len(), 0);
    let host = inv.host(ip(3)).expect("host");
    assert!(host.evidence().iter().all(|e| e.key.rule.is_none()));
}

#[test]
fn reload_merging_two_rules_into_one_entry_frees_budget() {
    let mut inv = Inventory::new(rules());
    // Same name under both rules (forced by hand: rule 1 for a kaspersky.com name).
    let mut second = sni(ip(3), "x.kaspersky.com", 0);
    if let Observation::Name(s) = &mut second.what {
        s.rule = Some(RuleIdx(1));
    }
    inv.apply(&sni(ip(3), "x.kaspersky.com", 0));
    inv.apply(&second);
    assert_eq!(inv.evidence_entries(), 2);
    let text = "[[rule]]\nid = \"none\"\nmatch = [\"suffix:example.org\"]\n\
                category = \"update\"\nconfidence = \"high\"\nsource = \"t\"\n";
    inv.set_rules(Arc::new(RuleSet::parse("n.toml", text).expect("rules")));
    assert_eq!(inv.evidence_entries(), 1);
    let host = inv.host(ip(3)).expect("host");
    assert_eq!(host.evidence().len(), 1);
    assert_eq!(host.evidence()[0].stat.count, 2);
    assert_eq!(host.evidence()[0].stat.confidence, Confidence::High);
}

#[test]
fn macs_and_vlans_are_sorted_sets_capped_per_host() {
    let mut inv = Inventory::new(rules());
    for i in 0..40u8 {
        let mut o = sni(ip(4), "a.kaspersky.com", 0);
        o.ctx.client_mac = Some([0, 0, 0, 0, 0, 39 - i]);
        o.ctx.vlan = Some(u16::from(i % 20));
        inv.apply(&o);
    }
    let host = inv.host(ip(4)).expect("host");
    assert_eq!(host.macs().len(), MAX_MACS_PER_HOST);
    let firsts: Vec<u8> = host.macs().iter().map(|m| m[5]).collect();
    assert_eq!(firsts, (24..40).collect::<Vec<u8>>());
    assert_eq!(host.vlans(), (0..16).collect::<Vec<u16>>().as_slice());
}

/// A matched DNS query for `host` from `client` to `server` at `secs`.
fn query(client: IpAddr, server: IpAddr, host: &str, secs: u64) -> Observed {
    observed(
        ctx(secs, 0),
        Observation::Name(NameSighting {
            name: name(host),
            source: NameSource::DnsQuery,
            client: Endpoint {
                ip: client,
                port: 40_000,
            },
            server: Endpoint {
                ip: server,
                port: 53,
            },
            rule: Some(RuleIdx(0)),
            answers: Vec::new(),
            ttl: None,
            dns: None,
        }),
    )
}

/// The clients `ip` was learned to forward lookups for.
fn forwarded_for(inv: &Inventory, ip: IpAddr) -> Vec<IpAddr> {
    inv.host(ip).map_or(Vec::new(), |h| {
        h.facts()
            .iter()
            .filter_map(|f| match f {
                Fact::ForwardedFor { client } => Some(*client),
                _ => None,
            })
            .collect()
    })
}

/// Checks the index against a scan of the queue: every key maps to the newest query of
/// that key sent by another host, and nothing else is indexed.
fn check_recent_index(recent: &RecentQueries) {
    let mut expected: HashMap<(NameId, IpAddr), u64> = HashMap::new();
    for (i, q) in recent.order.iter().enumerate() {
        if q.client != q.server {
            expected.insert((q.name, q.server), recent.first_seq + i as u64);
        }
    }
    let actual: HashMap<(NameId, IpAddr), u64> =
        recent.newest.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(actual, expected);
    assert!(recent.order.len() <= MAX_RECENT_QUERIES);
}

#[test]
fn resolver_forwarding_a_recent_client_lookup_is_learned() {
    let mut inv = Inventory::new(rules());
    let (client, resolver, upstream) = (ip(1), ip(2), ip(3));
    inv.apply(&query(client, resolver, "ds.kaspersky.com", 0));
    inv.apply(&query(resolver, upstream, "ds.kaspersky.com", 1));
    assert_eq!(forwarded_for(&inv, resolver), vec![client]);
    // Another name, or another server, does not make a forwarder.
    inv.apply(&query(ip(4), ip(5), "a.kaspersky.com", 2));
    inv.apply(&query(ip(5), upstream, "b.kaspersky.com", 2));
    inv.apply(&query(ip(6), upstream, "a.kaspersky.com", 2));
    assert_eq!(forwarded_for(&inv, ip(5)), Vec::<IpAddr>::new());
    assert_eq!(forwarded_for(&inv, ip(6)), Vec::<IpAddr>::new());
    check_recent_index(&inv.recent_queries);
}

#[test]
fn forwarding_window_is_inclusive_and_then_closes() {
    let mut inv = Inventory::new(rules());
    inv.apply(&query(ip(1), ip(2), "ds.kaspersky.com", 0));
    // 6 s later: outside the window.
    inv.apply(&query(
        ip(2),
        ip(3),
        "ds.kaspersky.com",
        FORWARD_WINDOW_SECS + 1,
    ));
    assert_eq!(forwarded_for(&inv, ip(2)), Vec::<IpAddr>::new());
    inv.apply(&query(ip(7), ip(8), "ds.kaspersky.com", 10));
    // Exactly 5 s later: inside.
    inv.apply(&query(
        ip(8),
        ip(3),
        "ds.kaspersky.com",
        10 + FORWARD_WINDOW_SECS,
    ));
    assert_eq!(forwarded_for(&inv, ip(8)), vec![ip(7)]);
}

#[test]
fn newest_other_client_is_the_origin_and_self_queries_are_skipped() {
    let mut inv = Inventory::new(rules());
    let resolver = ip(2);
    inv.apply(&query(ip(1), resolver, "ds.kaspersky.com", 0));
    inv.apply(&query(ip(4), resolver, "ds.kaspersky.com", 1));
    // The resolver asking itself (a local stub) comes later but cannot be the origin.
    inv.apply(&query(resolver, resolver, "ds.kaspersky.com", 2));
    check_recent_index(&inv.recent_queries);
    inv.apply(&query(resolver, ip(3), "ds.kaspersky.com", 3));
    assert_eq!(forwarded_for(&inv, resolver), vec![ip(4)]);
}

#[test]
fn evicted_query_no_longer_makes_a_forwarder() {
    // The client's query, then enough queries to other servers to push it out.
    let run = |fillers: usize| {
        let mut inv = Inventory::new(rules());
        inv.apply(&query(ip(1), ip(2), "ds.kaspersky.com", 0));
        for i in 0..fillers {
            let server = ip(0x10_0000 + i as u32);
            inv.apply(&query(ip(9), server, "ds.kaspersky.com", 0));
        }
        check_recent_index(&inv.recent_queries);
        inv.apply(&query(ip(2), ip(3), "ds.kaspersky.com", 1));
        check_recent_index(&inv.recent_queries);
        forwarded_for(&inv, ip(2))
    };
    // With one slot to spare the query is still there; one filler more evicts it.
    assert_eq!(run(MAX_RECENT_QUERIES - 1), vec![ip(1)]);
    assert_eq!(run(MAX_RECENT_QUERIES), Vec::<IpAddr>::new());
    assert_eq!(run(MAX_RECENT_QUERIES + 100), Vec::<IpAddr>::new());
}

#[test]
fn index_matches_a_linear_scan_under_eviction() {
    // Model check against the scan the index replaces: newest query within the window
    // from another client, over many evictions of a few hot keys.
    let mut recent = RecentQueries::default();
    let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15u64);
    let mut next = move || rng.next();
    let mut names = NameTable::new();
    let ids: Vec<NameId> = (0..3)
        .map(|i| {
            names
                .intern(&name(&format!("n{i}.kaspersky.com")))
                .expect("room")
        })
        .collect();
    let mut now = Timestamp::from_secs_nanos(1_000, 0);
    for step in 0..3 * MAX_RECENT_QUERIES {
        now = now.saturating_add(std::time::Duration::from_millis(next() % 8));
        let id = ids[(next() % 3) as usize];
        let client = ip((next() % 4) as u32);
        let server = ip((next() % 4) as u32);
        let scan = recent
            .order
            .iter()
            .rev()
            .take_while(|q| now.saturating_sub(q.ts).as_secs() <= FORWARD_WINDOW_SECS)
            .find(|q| q.server == client && q.name == id && q.client != client)
            .map(|q| q.client);
        assert_eq!(recent.forwarded_from(id, client, now), scan, "step {step}");
        recent.push(RecentQuery {
            name: id,
            client,
            server,
            ts: now,
        });
    }
    check_recent_index(&recent);
    assert_eq!(recent.order.len(), MAX_RECENT_QUERIES);
}

#[test]
fn entry_sizes_match_the_documented_worst_case() {
    // The worst-case table in the module doc is computed from these (x86-64).
    assert_eq!(std::mem::size_of::<Evidence>(), 72);
    assert_eq!(std::mem::size_of::<Fact>(), 24);
    assert_eq!(std::mem::size_of::<Host>(), 136);
    assert_eq!(std::mem::size_of::<(IpAddr, Host)>(), 160);
    assert_eq!(std::mem::size_of::<(IpAddr, Answered)>(), 48);
    assert_eq!(std::mem::size_of::<RecentQuery>(), 48);
    assert_eq!(std::mem::size_of::<((NameId, IpAddr), u64)>(), 32);
}
