//! Tests of the inventory: caps and eviction under floods, per-client correlation, forwarding
//! resolvers, reloads, the documented memory sizes, and one test per rule of thumb of the
//! verdict model (scans, broadcasts, query types, refused connections, update files, proxies,
//! external and Cloud Console management, address space).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::correlate::{AnswerKey, RecentQuery};
use super::*;
use crate::observation::{Endpoint, NameSighting, NamelessReason, ObsOrder, PacketContext};
use crate::proto::HostName;

fn rules() -> Arc<RuleSet> {
    let text = "[[rule]]\nid = \"kaspersky\"\nmatch = [\"suffix:kaspersky.com\"]\n\
                category = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\n\
                source = \"t\"\n\n\
                [[rule]]\nid = \"ksn\"\nmatch = [\"suffix:kaspersky-labs.com\"]\n\
                category = \"update\"\nconfidence = \"medium\"\nproduct = \"kaspersky\"\n\
                source = \"t\"\n";
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
            qtype: None,
            dns_facts: None,
        }),
    )
}

/// Addresses answered to 10.0.0.1 for `host`.
fn answer(host: &str, addrs: Vec<IpAddr>, secs: u64) -> Observed {
    answer_to(ip(1), host, addrs, secs)
}

fn answer_to(querier: IpAddr, host: &str, addrs: Vec<IpAddr>, secs: u64) -> Observed {
    let ep = Endpoint {
        ip: querier,
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
            dns_facts: None,
        },
    )
}

/// A conversation (or not) without a name from `client` to `server`:443 at `secs`.
fn nameless(client: IpAddr, server: IpAddr, secs: u64, conversed: bool) -> Observed {
    observed(
        ctx(secs, 0),
        Observation::Nameless {
            client: Endpoint {
                ip: client,
                port: 50_000,
            },
            server: Endpoint {
                ip: server,
                port: 443,
            },
            reason: NamelessReason::TlsNoSni,
            conversed,
            kaspersky_space: false,
            origin: None,
        },
    )
}

fn ksc(client: IpAddr, server: IpAddr) -> Observed {
    observed(
        ctx(0, 0),
        Observation::KscSession {
            client: Endpoint {
                ip: client,
                port: 50_000,
            },
            server: Endpoint {
                ip: server,
                port: 13_000,
            },
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
    assert_eq!(inv.by_age.len(), MAX_HOSTS);
    // Every host past the cap evicted the oldest one (all equally strong).
    assert_eq!(inv.counters.hosts_evicted, (flood - MAX_HOSTS) as u64);
    assert_eq!(inv.counters.hosts_evicted_high, (flood - MAX_HOSTS) as u64);
    // Names are interned until the name table is full; later evidence keeps no name.
    assert_eq!(inv.names().len(), MAX_DISTINCT_NAMES);
    assert_eq!(
        inv.counters.names_refused,
        (flood - MAX_DISTINCT_NAMES) as u64
    );
    // Evicted hosts gave their entries back.
    assert_eq!(inv.evidence_entries(), MAX_HOSTS);
    assert_eq!(total_evidence(&inv), (MAX_HOSTS, 0));
    let last = inv.host(ip(FLOOD - 1)).expect("newest host");
    assert_eq!(last.evidence().len(), 1);
    assert_eq!(last.evidence()[0].key.name, None);
    assert_eq!(last.strongest(), Some(Confidence::High));
    assert!(inv.host(ip(0)).is_none(), "the oldest host was evicted");
    assert!(inv.host(ip(FLOOD - MAX_HOSTS as u32)).is_some());
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
    assert!(!inv.answered.contains_key(&(ip(1), ip(0))));
    assert!(inv.answered.contains_key(&(ip(1), ip(79_999))));
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
    assert!(!inv.answered.contains_key(&(ip(1), ip(0xabcd))));
    assert_eq!(inv.answered_addrs(), MAX_DISTINCT_NAMES);
}

#[test]
fn correlation_returns_the_answered_name() {
    let mut inv = Inventory::new(rules());
    let server = IpAddr::V6(Ipv6Addr::new(0x2a02, 0x6b8, 0, 0, 0, 0, 0, 1));
    inv.apply(&answer_to(
        ip(9),
        "dnl-01.geo.kaspersky.com",
        vec![server],
        0,
    ));
    let nameless = nameless(ip(9), server, 10, true);
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
        .evidence_in_order(host)
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
                category = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\n\
                source = \"t\"\n";
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
                category = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\n\
                source = \"t\"\n";
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
            qtype: Some(1),
            dns_facts: None,
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
    assert_eq!(std::mem::size_of::<Host>(), 160);
    assert_eq!(std::mem::size_of::<(IpAddr, Host)>(), 184);
    assert_eq!(std::mem::size_of::<(AnswerKey, Answered)>(), 64);
    assert_eq!(std::mem::size_of::<AnswerKey>(), 34);
    assert_eq!(std::mem::size_of::<(Tier, u64, IpAddr)>(), 32);
    assert_eq!(std::mem::size_of::<RecentQuery>(), 48);
    assert_eq!(std::mem::size_of::<((NameId, IpAddr), u64)>(), 32);
}

// ---- The verdict model's rules of thumb ----

use super::assets::Assets;
use crate::proto::update::UpdatePath;

/// Rules of each kind the model tells apart, and Kaspersky's address space (one `exclude`
/// network inside it).
fn model_rules() -> Arc<RuleSet> {
    let rule = |id: &str, m: &str, category: &str, confidence: &str, product: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\nmatch = [\"{m}\"]\ncategory = \"{category}\"\n\
             confidence = \"{confidence}\"\nproduct = \"{product}\"\nsource = \"t\"\n\n"
        )
    };
    let mut text = String::new();
    text += &rule(
        "upd",
        "pattern:s##.upd.kaspersky.com",
        "update",
        "high",
        "kaspersky",
    );
    text += &rule(
        "dnl",
        "pattern:dnl-##.geo.kaspersky.com",
        "update",
        "high",
        "antivirus-or-oem",
    );
    text += &rule(
        "script",
        "suffix:kis.v2.scr.kaspersky-labs.com",
        "injected-script",
        "high",
        "antivirus",
    );
    text += &rule(
        "ksc-cloud",
        "suffix:ksc.kaspersky.com",
        "ksc-cloud",
        "high",
        "antivirus",
    );
    text += &rule(
        "portal",
        "exact:my.kaspersky.com",
        "portal",
        "medium",
        "none",
    );
    text += &rule("website", "suffix:kaspersky.com", "website", "low", "none");
    text += &rule(
        "ksn",
        "suffix:ksn.kaspersky-labs.com",
        "ksn-cloud",
        "high",
        "kaspersky",
    );
    text += &rule("oem", "exact:kav8.zonealarm.com", "update", "high", "oem");
    text += &rule(
        "push",
        "suffix:ucp-ntfy.kaspersky-labs.com",
        "service",
        "medium",
        "kaspersky",
    );
    text += "[[network]]\nid = \"kl\"\nasn = 200107\nprefixes = [\"77.74.176.0/21\"]\n\
             use = \"corroborate\"\nsource = \"t\"\nretrieved = \"2026-01-01\"\n";
    Arc::new(RuleSet::parse("model.toml", &text).expect("model rules"))
}

fn a(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn at(ip: &str, port: u16) -> Endpoint {
    Endpoint { ip: a(ip), port }
}

/// A name seen from `client` to `server`: the rule is looked up as the worker would.
fn seen(
    rules: &RuleSet,
    client: &str,
    server: Endpoint,
    host: &str,
    source: NameSource,
    qtype: Option<u16>,
    secs: u64,
) -> Observed {
    let n = name(host);
    observed(
        ctx(secs, 0),
        Observation::Name(NameSighting {
            name: n,
            source,
            client: at(client, 50_000),
            server,
            rule: rules.lookup(&n),
            answers: Vec::new(),
            ttl: None,
            dns: None,
            qtype,
            dns_facts: None,
        }),
    )
}

fn tls(rules: &RuleSet, client: &str, server: &str, port: u16, host: &str) -> Observed {
    seen(
        rules,
        client,
        at(server, port),
        host,
        NameSource::TlsSni,
        None,
        0,
    )
}

fn lookup(rules: &RuleSet, client: &str, resolver: &str, host: &str, qtype: u16) -> Observed {
    seen(
        rules,
        client,
        at(resolver, 53),
        host,
        NameSource::DnsQuery,
        Some(qtype),
        0,
    )
}

fn session(client: &str, server: &str, port: u16) -> Observed {
    observed(
        ctx(0, 0),
        Observation::KscSession {
            client: at(client, 50_000),
            server: at(server, port),
        },
    )
}

fn datagram(src: &str, dst: &str, port: u16, dst_group: bool) -> Observed {
    observed(
        ctx(0, 0),
        Observation::KscDatagram {
            src: at(src, 40_000),
            dst: at(dst, port),
            dst_group,
        },
    )
}

#[allow(clippy::too_many_arguments)]
fn payload(
    rules: &RuleSet,
    client: &str,
    server: &str,
    magic: UpdateMagic,
    host: Option<&str>,
    path: Option<UpdatePath>,
    kaspersky_space: bool,
) -> Observed {
    let host = host.map(name);
    observed(
        ctx(0, 0),
        Observation::UpdatePayload {
            client: at(client, 50_000),
            server: at(server, 80),
            magic,
            rule: host.as_ref().and_then(|h| rules.lookup(h)),
            host,
            path,
            kaspersky_space,
            origin: None,
        },
    )
}

fn request(
    rules: &RuleSet,
    client: &str,
    server: &str,
    host: Option<&str>,
    path: UpdatePath,
    kaspersky_space: bool,
) -> Observed {
    let host = host.map(name);
    observed(
        ctx(0, 0),
        Observation::UpdateRequest {
            client: at(client, 50_000),
            server: at(server, 80),
            path,
            rule: host.as_ref().and_then(|h| rules.lookup(h)),
            host,
            kaspersky_space,
            origin: None,
        },
    )
}

/// (verdict, certainty, product, managed_by) of `ip`, as the report shows them.
fn verdict_of(
    inv: &Inventory,
    ip: &str,
    assets: &Assets,
) -> Option<(String, String, String, String)> {
    let host = inv.host(a(ip))?;
    let (_, d) = inv.decision(host, assets)?;
    let managed_by: Vec<String> = d
        .managed_by
        .iter()
        .map(|m| match (&m.cloud_console, m.address) {
            (Some(n), _) => format!("cloud-console:{n}"),
            (None, Some(a)) => a.to_string(),
            (None, None) => "?".into(),
        })
        .collect();
    Some((
        d.verdict.label().to_string(),
        d.certainty.map_or("", |c| c.label()).to_string(),
        d.product.map_or("", |p| p.label()).to_string(),
        managed_by.join(" "),
    ))
}

fn v(
    verdict: &str,
    certainty: &str,
    product: &str,
    managed_by: &str,
) -> Option<(String, String, String, String)> {
    Some((
        verdict.into(),
        certainty.into(),
        product.into(),
        managed_by.into(),
    ))
}

fn no_assets() -> Assets {
    Assets::default()
}

fn inventory(text: &str) -> Assets {
    Assets::parse("inv.csv", &format!("address,label,role\n{text}")).expect("inventory")
}

#[test]
fn scan_probes_learn_nothing() {
    // What a SYN scan leaves after the flow stage: no KSC session, only connections that
    // never conversed (refused, reset after SYN-ACK, unanswered).
    let mut inv = Inventory::new(model_rules());
    for last in 1..32u8 {
        inv.apply(&nameless(
            a("10.70.0.30"),
            IpAddr::V4(Ipv4Addr::new(10, 70, 0, last)),
            0,
            false,
        ));
    }
    assert_eq!(inv.host_count(), 0);
}

#[test]
fn ksc_roles_follow_the_documented_directions() {
    let mut inv = Inventory::new(model_rules());
    inv.apply(&session("10.70.0.21", "10.70.0.10", 13_000));
    inv.apply(&session("10.70.0.22", "10.70.0.10", 14_000));
    inv.apply(&session("10.70.0.12", "10.70.0.10", 13_000));
    inv.apply(&session("10.70.0.23", "10.70.0.12", 13_000));
    inv.apply(&session("10.70.0.20", "10.70.0.10", 13_299));
    // The server wakes its agents: the destination is the agent.
    inv.apply(&datagram("10.70.0.10", "10.70.0.21", 15_000, false));
    inv.apply(&datagram("10.70.0.23", "10.70.0.10", 13_000, false));
    let none = no_assets();
    assert_eq!(
        verdict_of(&inv, "10.70.0.10", &none),
        v("ksc-server", "", "", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.12", &none),
        v("distribution-point", "", "", "10.70.0.10")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.21", &none),
        v("managed-install", "likely", "antivirus", "10.70.0.10")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.23", &none),
        v(
            "managed-install",
            "likely",
            "antivirus",
            "10.70.0.12 10.70.0.10"
        )
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.20", &none),
        v("ksc-console", "", "", "")
    );
    // A wake-up alone (UDP only) is possible at most.
    let mut inv = Inventory::new(model_rules());
    inv.apply(&datagram("10.70.0.10", "10.70.0.31", 15_000, false));
    assert_eq!(
        verdict_of(&inv, "10.70.0.31", &none),
        v("managed-install", "possible", "antivirus", "10.70.0.10")
    );
    // Sending wake-ups alone makes no server; shutdown notices from three agents do.
    assert_eq!(verdict_of(&inv, "10.70.0.10", &none), None);
    for agent in ["10.70.0.41", "10.70.0.42", "10.70.0.43"] {
        inv.apply(&datagram(agent, "10.70.0.9", 13_000, false));
    }
    assert_eq!(
        verdict_of(&inv, "10.70.0.9", &none),
        v("ksc-server", "", "", "")
    );
}

#[test]
fn broadcast_and_multicast_addresses_never_become_hosts() {
    let mut inv = Inventory::new(model_rules());
    // An agent's wake-up broadcasts: the subnet-directed one is a group by its Ethernet
    // destination, the limited one by its address.
    inv.apply(&datagram("10.70.0.23", "10.70.0.255", 15_000, true));
    inv.apply(&datagram("10.70.0.23", "255.255.255.255", 15_000, true));
    inv.apply(&datagram("10.70.0.12", "239.255.13.1", 15_001, true));
    for group in [
        "10.70.0.255",
        "255.255.255.255",
        "239.255.13.1",
        "10.70.0.23",
    ] {
        assert!(inv.host(a(group)).is_none(), "{group}");
    }
    // The sender of the multicast is a distribution point.
    assert_eq!(
        verdict_of(&inv, "10.70.0.12", &no_assets()),
        v("distribution-point", "", "", "")
    );
    // Once known as a broadcast address, an address stays out even without the flag; and
    // addresses that are groups by themselves never get in.
    inv.apply(&session("10.70.0.5", "10.70.0.255", 13_000));
    inv.apply(&session("0.0.0.0", "10.70.0.10", 13_000));
    inv.apply(&tls(
        &model_rules(),
        "224.0.0.251",
        "203.0.113.1",
        443,
        "s01.upd.kaspersky.com",
    ));
    assert!(inv.host(a("10.70.0.255")).is_none());
    assert!(inv.host(a("0.0.0.0")).is_none());
    assert!(inv.host(a("224.0.0.251")).is_none());
    assert!(inv.counters.group_addresses_ignored >= 5);
}

#[test]
fn txt_and_mx_lookups_are_mail_checks_not_installs() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    inv.apply(&lookup(
        &rules,
        "10.70.0.32",
        "10.70.0.53",
        "kaspersky.com",
        15,
    ));
    inv.apply(&lookup(
        &rules,
        "10.70.0.32",
        "10.70.0.53",
        "s01.upd.kaspersky.com",
        16,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.32", &no_assets()),
        v("website-only", "", "", "")
    );
    // An address lookup of the same name is a client of the service.
    inv.apply(&lookup(
        &rules,
        "10.70.0.33",
        "10.70.0.53",
        "s01.upd.kaspersky.com",
        65,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.33", &no_assets()),
        v("unmanaged-install", "likely", "kaspersky", "")
    );
}

#[test]
fn correlation_is_per_client_within_the_ttl_and_needs_a_conversation() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    let cdn = a("203.0.113.50");
    inv.apply(&answer_to(
        a("10.70.0.33"),
        "s09.upd.kaspersky.com",
        vec![cdn],
        0,
    ));
    // Another host's conversation with the shared address, and a refused SYN: nothing.
    assert!(inv
        .apply(&nameless(a("10.70.0.34"), cdn, 1, true))
        .is_none());
    assert!(inv
        .apply(&nameless(a("10.70.0.33"), cdn, 1, false))
        .is_none());
    assert!(inv.host(a("10.70.0.34")).is_none());
    // The client that was answered: correlated, possible at most.
    assert!(inv
        .apply(&nameless(a("10.70.0.33"), cdn, 2, true))
        .is_some());
    assert_eq!(
        verdict_of(&inv, "10.70.0.33", &no_assets()),
        v("unmanaged-install", "possible", "kaspersky", "")
    );
    // After the TTL (300 s here): nothing.
    assert!(inv
        .apply(&nameless(a("10.70.0.33"), cdn, 302, true))
        .is_none());
    // Through the resolver: the answer went to 10.70.0.53, which the client uses.
    inv.apply(&answer_to(
        a("10.70.0.53"),
        "s09.upd.kaspersky.com",
        vec![cdn],
        400,
    ));
    inv.apply(&seen(
        &rules,
        "10.70.0.36",
        at("10.70.0.53", 53),
        "dnl-01.geo.kaspersky.com",
        NameSource::DnsQuery,
        Some(1),
        400,
    ));
    assert!(inv
        .apply(&nameless(a("10.70.0.36"), cdn, 401, true))
        .is_some());
}

/// A request through a proxy for an address literal in Kaspersky's space: the evidence names
/// the literal, not the proxy the client connected to, as its peer (the auditor's question is
/// which Kaspersky address was fetched from).
#[test]
fn proxied_literal_evidence_names_the_literal_as_peer() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    let literal = a("77.74.176.10");
    let mut req = request(
        &rules,
        "10.70.0.42",
        "10.70.0.40",
        None,
        UpdatePath::SignatureBases,
        true,
    );
    let mut body = payload(
        &rules,
        "10.70.0.42",
        "10.70.0.40",
        UpdateMagic::Klzf,
        None,
        Some(UpdatePath::SignatureBases),
        true,
    );
    let mut tls = nameless(a("10.70.0.43"), a("10.70.0.40"), 0, true);
    for o in [&mut req, &mut body, &mut tls] {
        match &mut o.what {
            Observation::UpdateRequest {
                origin,
                kaspersky_space,
                ..
            }
            | Observation::UpdatePayload {
                origin,
                kaspersky_space,
                ..
            }
            | Observation::Nameless {
                origin,
                kaspersky_space,
                ..
            } => {
                *origin = Some(literal);
                *kaspersky_space = true;
            }
            _ => unreachable!(),
        }
        inv.apply(o);
    }
    for client in ["10.70.0.42", "10.70.0.43"] {
        let host = inv.host(a(client)).expect("host");
        let peers: Vec<_> = host.evidence().iter().map(|e| e.key.peer).collect();
        assert!(!peers.is_empty(), "{client}");
        assert!(
            peers.iter().all(|p| *p == Some(literal)),
            "{client}: {peers:?}"
        );
    }
    assert_eq!(
        verdict_of(&inv, "10.70.0.42", &no_assets()),
        v("unmanaged-install", "confirmed", "antivirus", "")
    );
}

#[test]
fn address_space_counts_outbound_only_and_never_alone_above_possible() {
    let mut inv = Inventory::new(model_rules());
    let mut o = nameless(a("10.70.0.61"), a("77.74.176.10"), 0, true);
    if let Observation::Nameless {
        kaspersky_space, ..
    } = &mut o.what
    {
        *kaspersky_space = true;
    }
    inv.apply(&o);
    assert_eq!(
        verdict_of(&inv, "10.70.0.61", &no_assets()),
        v("unmanaged-install", "possible", "kaspersky", "")
    );
    // Inbound from Kaspersky's space (its link checker fetching our web server): the server is
    // not in the space, so the worker marks nothing and nobody gets evidence.
    inv.apply(&nameless(a("77.74.177.5"), a("10.70.0.60"), 0, true));
    assert!(inv.host(a("10.70.0.60")).is_none());
    assert!(inv.host(a("77.74.177.5")).is_none());
}

#[test]
fn diff_alone_never_counts_and_payloads_make_only_internal_servers_mirrors() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    // DIFF from an intranet server, not on an update path: nothing at all.
    inv.apply(&payload(
        &rules,
        "10.70.0.48",
        "10.70.0.60",
        UpdateMagic::Diff,
        None,
        None,
        false,
    ));
    assert!(inv.host(a("10.70.0.48")).is_none());
    assert!(inv.host(a("10.70.0.60")).is_none());
    assert_eq!(inv.counters.diff_without_update_path, 1);
    // KLZF on a signature path from an internal server without a Kaspersky name: a mirror.
    inv.apply(&request(
        &rules,
        "10.70.0.22",
        "10.70.0.11",
        None,
        UpdatePath::SignatureBases,
        false,
    ));
    inv.apply(&payload(
        &rules,
        "10.70.0.22",
        "10.70.0.11",
        UpdateMagic::Klzf,
        None,
        Some(UpdatePath::SignatureBases),
        false,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.11", &no_assets()),
        v("update-mirror", "", "", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.22", &no_assets()),
        v("managed-install", "likely", "antivirus", "10.70.0.11")
    );
    // DIFF on an update path from that mirror counts for another client.
    inv.apply(&payload(
        &rules,
        "10.70.0.24",
        "10.70.0.11",
        UpdateMagic::Diff,
        None,
        Some(UpdatePath::Index),
        false,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.24", &no_assets()),
        v("managed-install", "likely", "antivirus", "10.70.0.11")
    );
    // KLZF by IP literal from Kaspersky's address space: confirmed for the client, and the
    // Kaspersky server is no mirror and not reported.
    inv.apply(&request(
        &rules,
        "10.70.0.49",
        "77.74.176.10",
        None,
        UpdatePath::SignatureBases,
        true,
    ));
    inv.apply(&payload(
        &rules,
        "10.70.0.49",
        "77.74.176.10",
        UpdateMagic::Klzf,
        None,
        Some(UpdatePath::SignatureBases),
        true,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.49", &no_assets()),
        v("unmanaged-install", "confirmed", "antivirus", "")
    );
    assert_eq!(verdict_of(&inv, "77.74.176.10", &no_assets()), None);
    // KLZF by a Kaspersky name from a server that happens to be internal: not a mirror.
    inv.apply(&request(
        &rules,
        "10.70.0.42",
        "10.99.0.101",
        Some("dnl-01.geo.kaspersky.com"),
        UpdatePath::SignatureBases,
        false,
    ));
    inv.apply(&payload(
        &rules,
        "10.70.0.42",
        "10.99.0.101",
        UpdateMagic::Klzf,
        Some("dnl-01.geo.kaspersky.com"),
        Some(UpdatePath::SignatureBases),
        false,
    ));
    assert_eq!(verdict_of(&inv, "10.99.0.101", &no_assets()), None);
    assert_eq!(
        verdict_of(&inv, "10.70.0.42", &no_assets()),
        v("unmanaged-install", "confirmed", "antivirus", "")
    );
    // KLZF from an external server with no Kaspersky name or address: counts for nothing.
    inv.apply(&payload(
        &rules,
        "10.70.0.47",
        "198.51.100.7",
        UpdateMagic::Klzf,
        None,
        Some(UpdatePath::Bases),
        false,
    ));
    assert_eq!(verdict_of(&inv, "10.70.0.47", &no_assets()), None);
    assert_eq!(verdict_of(&inv, "198.51.100.7", &no_assets()), None);
}

#[test]
fn a_proxys_upstream_legs_are_its_clients_traffic() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    let proxy = at("10.70.0.40", 8888);
    inv.apply(&seen(
        &rules,
        "10.70.0.41",
        proxy,
        "s12.upd.kaspersky.com",
        NameSource::HttpConnect,
        None,
        0,
    ));
    // The proxy's own upstream leg for that client.
    inv.apply(&tls(
        &rules,
        "10.70.0.40",
        "203.0.113.112",
        443,
        "s12.upd.kaspersky.com",
    ));
    // One client is not enough to call it a proxy.
    assert_eq!(
        verdict_of(&inv, "10.70.0.40", &no_assets()),
        v("unmanaged-install", "likely", "kaspersky", "")
    );
    inv.apply(&seen(
        &rules,
        "10.70.0.42",
        proxy,
        "dnl-03.geo.kaspersky.com",
        NameSource::HttpAbsoluteUri,
        None,
        0,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.40", &no_assets()),
        v("proxy", "", "", "")
    );
    // The clients keep their own evidence.
    assert_eq!(
        verdict_of(&inv, "10.70.0.41", &no_assets()),
        v("unmanaged-install", "likely", "kaspersky", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.42", &no_assets()),
        v("unmanaged-install", "likely", "oem", "")
    );
    // The operator can name it too.
    let mut inv = Inventory::new(rules.clone());
    inv.apply(&tls(
        &rules,
        "10.70.0.40",
        "203.0.113.112",
        443,
        "s12.upd.kaspersky.com",
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.40", &inventory("10.70.0.40,proxy,proxy\n")),
        v("proxy", "", "", "")
    );
}

#[test]
fn an_external_or_unlisted_ksc_manages_but_not_for_us() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    inv.apply(&session("10.70.0.25", "198.51.100.10", 13_000));
    inv.apply(&tls(
        &rules,
        "10.70.0.25",
        "203.0.113.105",
        443,
        "s05.upd.kaspersky.com",
    ));
    inv.apply(&session("10.70.0.27", "10.70.0.15", 13_000));
    let none = no_assets();
    assert_eq!(
        verdict_of(&inv, "10.70.0.25", &none),
        v(
            "externally-managed-install",
            "confirmed",
            "antivirus",
            "198.51.100.10"
        )
    );
    // The external server is not ours to report.
    assert_eq!(verdict_of(&inv, "198.51.100.10", &none), None);
    // An internal KSC manages its agents, unless the inventory lists other servers.
    assert_eq!(
        verdict_of(&inv, "10.70.0.27", &none),
        v("managed-install", "likely", "antivirus", "10.70.0.15")
    );
    let listed = inventory("10.70.0.10,ksc,ksc-server\n");
    assert_eq!(
        verdict_of(&inv, "10.70.0.27", &listed),
        v(
            "externally-managed-install",
            "likely",
            "antivirus",
            "10.70.0.15"
        )
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.15", &listed),
        v("ksc-server", "", "", "")
    );
    // The operator's own public range makes that server ours.
    let ours = no_assets().with_internal_nets(&["198.51.100.0/24".parse().expect("net")]);
    assert_eq!(
        verdict_of(&inv, "10.70.0.25", &ours),
        v("managed-install", "confirmed", "antivirus", "198.51.100.10")
    );
    assert_eq!(
        verdict_of(&inv, "198.51.100.10", &ours),
        v("ksc-server", "", "", "")
    );
}

#[test]
fn the_cloud_console_on_its_agent_ports_is_management_on_443_a_portal() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    inv.apply(&tls(
        &rules,
        "10.70.0.31",
        "203.0.113.31",
        443,
        "eu1.ksc.kaspersky.com",
    ));
    inv.apply(&tls(
        &rules,
        "10.70.0.26",
        "203.0.113.32",
        23_101,
        "eu1.ksc.kaspersky.com",
    ));
    let none = no_assets();
    assert_eq!(
        verdict_of(&inv, "10.70.0.31", &none),
        v("website-only", "", "", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.26", &none),
        v(
            "externally-managed-install",
            "likely",
            "antivirus",
            "cloud-console:eu1.ksc.kaspersky.com"
        )
    );
    // A lookup of a Cloud Console name is medium evidence with no manager.
    inv.apply(&lookup(
        &rules,
        "10.70.0.37",
        "10.70.0.53",
        "eu1.ksc.kaspersky.com",
        1,
    ));
    assert_eq!(
        verdict_of(&inv, "10.70.0.37", &none),
        v("unmanaged-install", "possible", "antivirus", "")
    );
}

#[test]
fn certainty_and_product_follow_the_evidence_families() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    // Shared infrastructure, three families: confirmed, but only "kaspersky".
    for host in ["s01.upd.kaspersky.com", "dc1.ksn.kaspersky-labs.com"] {
        inv.apply(&tls(&rules, "10.70.0.44", "203.0.113.1", 443, host));
    }
    // The web-protection script: antivirus.
    inv.apply(&lookup(
        &rules,
        "10.70.0.46",
        "10.70.0.53",
        "gc.kis.v2.scr.kaspersky-labs.com",
        1,
    ));
    // Check Point's pattern: dnl-## and an OEM name.
    inv.apply(&tls(
        &rules,
        "10.70.0.47",
        "203.0.113.119",
        443,
        "dnl-01.geo.kaspersky.com",
    ));
    inv.apply(&tls(
        &rules,
        "10.70.0.47",
        "203.0.113.121",
        80,
        "kav8.zonealarm.com",
    ));
    // dnl-## with shared names: a Kaspersky product that uses dnl updates is the antivirus.
    inv.apply(&tls(
        &rules,
        "10.70.0.51",
        "203.0.113.119",
        443,
        "dnl-01.geo.kaspersky.com",
    ));
    inv.apply(&tls(
        &rules,
        "10.70.0.51",
        "203.0.113.101",
        443,
        "s01.upd.kaspersky.com",
    ));
    // Medium only (Password Manager push, with the portal): possible.
    inv.apply(&tls(
        &rules,
        "10.70.0.45",
        "203.0.113.30",
        443,
        "my.kaspersky.com",
    ));
    inv.apply(&tls(
        &rules,
        "10.70.0.45",
        "203.0.113.116",
        443,
        "bosh12.ucp-ntfy.kaspersky-labs.com",
    ));
    let none = no_assets();
    assert_eq!(
        verdict_of(&inv, "10.70.0.44", &none),
        v("unmanaged-install", "confirmed", "kaspersky", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.46", &none),
        v("unmanaged-install", "likely", "antivirus", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.47", &none),
        v("unmanaged-install", "likely", "oem", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.51", &none),
        v("unmanaged-install", "likely", "antivirus", "")
    );
    assert_eq!(
        verdict_of(&inv, "10.70.0.45", &none),
        v("unmanaged-install", "possible", "kaspersky", "")
    );
}

#[test]
fn eviction_takes_the_weakest_oldest_host_and_high_ones_last() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    // Fill the inventory with website visitors (low confidence), oldest first.
    for i in 0..MAX_HOSTS as u32 {
        let mut o = tls(&rules, "10.0.0.1", "203.0.113.1", 443, "www.kaspersky.com");
        if let Observation::Name(s) = &mut o.what {
            s.client.ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        }
        o.ctx.ts = Timestamp::from_secs_nanos(1_000 + u64::from(i), 0);
        inv.apply(&o);
    }
    assert_eq!(inv.host_count(), MAX_HOSTS);
    // A genuine install arrives: the oldest visitor makes room.
    let mut genuine = tls(
        &rules,
        "172.16.0.1",
        "203.0.113.1",
        443,
        "s01.upd.kaspersky.com",
    );
    genuine.ctx.ts = Timestamp::from_secs_nanos(100_000, 0);
    inv.apply(&genuine);
    assert!(inv.host(a("172.16.0.1")).is_some());
    assert!(inv.host(a("10.0.0.0")).is_none());
    assert_eq!(inv.counters.hosts_evicted, 1);
    // A flood of newer high-confidence hosts evicts every visitor before the genuine host.
    let visitors_left = MAX_HOSTS as u32 - 1;
    for i in 0..visitors_left {
        let mut o = tls(
            &rules,
            "10.0.0.1",
            "203.0.113.1",
            443,
            "s02.upd.kaspersky.com",
        );
        if let Observation::Name(s) = &mut o.what {
            s.client.ip = IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + i));
        }
        o.ctx.ts = Timestamp::from_secs_nanos(200_000 + u64::from(i), 0);
        inv.apply(&o);
    }
    assert!(inv.host(a("172.16.0.1")).is_some());
    assert_eq!(inv.counters.hosts_evicted, u64::from(visitors_left) + 1);
    assert_eq!(inv.counters.hosts_evicted_high, 0);
    // Now only strong hosts remain: the least recently seen one goes next.
    let mut o = tls(
        &rules,
        "10.9.9.9",
        "203.0.113.1",
        443,
        "s03.upd.kaspersky.com",
    );
    o.ctx.ts = Timestamp::from_secs_nanos(900_000, 0);
    inv.apply(&o);
    assert!(inv.host(a("172.16.0.1")).is_none());
    assert_eq!(inv.counters.hosts_evicted_high, 1);
    assert_eq!(inv.by_age.len(), inv.host_count());
    assert_eq!(total_evidence(&inv).0, inv.evidence_entries());
}

#[test]
fn a_spoofed_dns_flood_cannot_hide_a_genuine_host_seen_afterwards() {
    let rules = model_rules();
    let mut inv = Inventory::new(rules.clone());
    // 100 000 spoofed sources asking the resolver for a Kaspersky update name.
    for i in 0..100_000u32 {
        let mut o = lookup(&rules, "10.0.0.1", "10.70.0.53", "s01.upd.kaspersky.com", 1);
        if let Observation::Name(s) = &mut o.what {
            s.client.ip = IpAddr::V4(Ipv4Addr::from(0x6400_0000 + i));
        }
        o.ctx.ts = Timestamp::from_secs_nanos(1_000 + u64::from(i / 1_000), 0);
        inv.apply(&o);
    }
    assert_eq!(inv.host_count(), MAX_HOSTS);
    let mut genuine = tls(
        &rules,
        "10.70.0.46",
        "203.0.113.107",
        443,
        "s07.upd.kaspersky.com",
    );
    genuine.ctx.ts = Timestamp::from_secs_nanos(2_000, 0);
    inv.apply(&genuine);
    assert_eq!(
        verdict_of(&inv, "10.70.0.46", &no_assets()),
        v("unmanaged-install", "likely", "kaspersky", "")
    );
    // The resolver they all asked kept its role.
    assert_eq!(
        verdict_of(&inv, "10.70.0.53", &no_assets()),
        v("resolver", "", "", "")
    );
    assert!(inv.counters.hosts_evicted >= 100_000 - MAX_HOSTS as u64);
}
