//! Inventory stage: per-host evidence, learned facts and verdicts.
//!
//! Contract: the collector applies observations in capture order ([`Inventory::apply`]); the
//! inventory keeps, per host, the evidence (how it was seen, rule, name, peer, input) with
//! counts and first/last times, and what was learned about hosts from traffic (KSC agents,
//! servers and distribution points, update mirrors, resolvers, proxies, the Cloud Console),
//! each fact with the peer it was learned from. [`Inventory::summary`] gathers one host's
//! evidence, roles and managers into a plain [`verdict::HostSummary`], and the pure
//! [`verdict::decide`] turns that into a [`verdict::Decision`] (verdict, certainty, product,
//! who manages it). Every map is capped; what a cap refuses or evicts is counted.
//!
//! What counts, and why (the rules of thumb; `rules/README.md` cites the sources):
//! * Names count by their rule (category → evidence family, product class, confidence), and
//!   only as what they were: an address lookup (A, AAAA, HTTPS, SVCB, ANY, CNAME) makes the
//!   querier a client of the service, any other lookup (TXT, MX, …) does not; a name under
//!   `ksc.kaspersky.com` is the Cloud Console's agent only on its agent ports.
//! * Kaspersky Security Center roles come from completed sessions in their documented
//!   directions (agents connect to 13000/14000, consoles to 13291/13299), wake-ups (UDP 15000,
//!   server → agent), shutdown notices (UDP 13000, agent → server) and distribution-point
//!   multicast (UDP 15001). Group addresses (broadcast, multicast, unspecified, and any
//!   address a frame to an Ethernet group address was sent to) never become hosts.
//! * A conversation without a name counts through a DNS answer given to that client (or to the
//!   resolver it uses) within the answer's lifetime, or, weakly, through Kaspersky's address
//!   space when it goes out to it. Inbound connections from Kaspersky's space count for nobody.
//! * Update paths and payloads count only from a Kaspersky name, a Kaspersky address or an
//!   update mirror; `DIFF` only with an update path. A payload makes a server a mirror only
//!   when that server is neither a Kaspersky name nor a Kaspersky address (and only an
//!   internal one is reported as such).
//! * Resolvers and proxies are learned from what they do for several clients; their own
//!   lookups and upstream legs are their clients' traffic.
//!
//! Hosts live in a plain hash map reached through `&mut self`: the collector is the only
//! writer and every reader (reports, the metrics tick) runs while the pipeline is held, and a
//! verdict reads other hosts (a manager's role), so a reader must see one consistent state.
//! The metrics listener never reads hosts: it serves what the last tick rendered.
//!
//! Budgets: when [`MAX_HOSTS`] hosts are held, a new host evicts the weakest, least recently
//! seen one ([`host::Tier`]: no evidence, then low, medium, and last high-confidence evidence
//! or a server role), so a flood of spoofed sources cannot hide a real host seen after it.
//! Every eviction is counted (`hosts_evicted`, and `hosts_evicted_high` for hosts with
//! high-confidence evidence or a role, evicted only when nothing weaker was left).
//!
//! Memory: names are interned ([`names::NameTable`]: each distinct name stored once, evidence
//! holds a 4-byte [`NameId`] instead of a 254-byte inline name); a host's evidence is a sorted
//! vector of 72-byte entries, its MACs, VLANs and facts sorted boxed slices; answered addresses
//! a hash map. Memory is bounded by the caps, not by the input. Worst case with every cap full
//! (x86-64; hash-table slack, vector slack and allocation headers included):
//!
//! | structure | cap | worst case |
//! |---|---|---|
//! | host records (hash map, 184-byte slots, ≤ 2× slots) | [`MAX_HOSTS`] 65 536 | ≈ 24 MB |
//! | eviction order (B-tree of 32-byte keys, ≤ 2× space) | [`MAX_HOSTS`] | ≈ 4 MB |
//! | evidence, all hosts (≤ 25 % vector slack) | [`MAX_EVIDENCE_ENTRIES`] 262 144 | ≈ 25 MB |
//! | MACs, VLANs, resolver clients, DNS servers per host | [`MAX_MACS_PER_HOST`], [`MAX_VLANS_PER_HOST`], [`MAX_DNS_SERVERS_PER_HOST`] | ≈ 22 MB |
//! | learned facts, all hosts | [`MAX_FACTS`] 131 072 | ≈ 4 MB |
//! | distinct names | [`MAX_DISTINCT_NAMES`] 16 384 | ≈ 5 MB |
//! | answered addresses per querier (map + eviction queue) | [`MAX_ANSWERED_ADDRS`] 65 536 | ≈ 12 MB |
//! | recent matched queries (queue + index by name and server) | [`MAX_RECENT_QUERIES`] 4 096 | ≈ 0.5 MB |
//!
//! So at most about 100 MB, whatever the capture. Writing a report walks the hosts in place and
//! builds one host's JSON at a time, so it adds little on top.
//!
//! Layout: `host.rs` holds what is known about one host (evidence, facts, capped sets),
//! `correlate.rs` the memories that link observations (DNS answers for nameless connections,
//! recent queries for forwarding resolvers), `verdict.rs` the summaries, the pure decision and
//! the verdict types, `reload.rs` the translation of rule indexes on a rule reload, `assets.rs`
//! the operator's inventory file; `tests.rs` the tests. How verdicts and facts read in reports
//! is the output stage's business (`crate::output::describe`).

pub mod assets;
mod correlate;
mod host;
pub mod names;
mod reload;
#[cfg(test)]
mod tests;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use crate::flow::emit::is_group_address;
use crate::observation::{
    is_cloud_console_port, NameSighting, NameSource, Observation, Observed, KSC_MULTICAST_PORT,
    KSC_NOTICE_PORT, KSC_WAKEUP_PORT,
};
use crate::proto::update::UpdateMagic;
use crate::proto::NameKind;
use crate::rules::{Category, Confidence, RuleIdx, RuleSet};
use crate::time::Timestamp;

pub use correlate::Correlation;
use correlate::{lowered, AnswerKey, Answered, RecentQueries};
use host::{insert_sorted, Budget, NameArg};
pub use host::{Evidence, EvidenceKey, EvidenceKind, EvidenceStat, Fact, Host, Origin, Tier};
pub use names::{NameId, NameTable, MAX_DISTINCT_NAMES};
pub use reload::RuleRemap;
pub use verdict::{Certainty, Decision, Family, Product, Verdict};

/// Hosts with evidence or learned facts. A /16 of clients fits; past it the weakest, least
/// recently seen host is evicted for a new one. A host record with its key is 184 bytes, in a
/// hash table at most half full after growing: 65 536 × 2 × 185 ≈ 24 MB.
pub const MAX_HOSTS: usize = 65_536;
/// Distinct evidence entries per host (rule × name × kind × input). A real install touches a
/// few dozen names.
pub const MAX_EVIDENCE_PER_HOST: usize = 256;
/// Evidence entries over all hosts: four per host with the host table full (the generated dns
/// profile averages five per host on 5 000 hosts). Without it the per-host caps alone would
/// allow 65 536 × 256 entries (over a gigabyte). An entry is 72 bytes: 262 144 × 72 × 1.25
/// (vector growth slack) + one allocation header per host ≈ 25 MB.
pub const MAX_EVIDENCE_ENTRIES: usize = 262_144;
/// MAC addresses and VLANs remembered per host (6 and 2 bytes each, in boxed slices; with the
/// three resolver clients and four DNS servers, at most 112 + 48 + 80 + 96 bytes of
/// allocations per host: 65 536 × 336 ≈ 22 MB).
pub const MAX_MACS_PER_HOST: usize = 16;
pub const MAX_VLANS_PER_HOST: usize = 16;
/// DNS servers remembered per host for correlation through its resolver: a host uses one or
/// two resolvers (RFC 1034 §5.3.1 stubs); four leaves room for a fallback and a VPN's.
pub const MAX_DNS_SERVERS_PER_HOST: usize = 4;
/// Learned facts per host.
pub const MAX_FACTS_PER_HOST: usize = 64;
/// Learned facts over all hosts: two per host with the host table full (a KSC server learns
/// one fact per agent, each agent one). A fact is 24 bytes: 131 072 × 24 ≈ 3 MB, plus one
/// allocation per host with facts.
pub const MAX_FACTS: usize = 131_072;
/// Addresses remembered from DNS answers for Kaspersky names, per (querier, address). An
/// entry is 64 bytes in a hash table (≤ 2× slots) plus 34 bytes in the eviction queue:
/// 65 536 × (2 × 65 + 34) ≈ 11 MB.
pub const MAX_ANSWERED_ADDRS: usize = 65_536;
/// Shortest time an answered address stays attributed, whatever its TTL: clients and OS caches
/// commonly keep records for at least a minute (RFC 8767 also allows serving stale answers).
pub const MIN_ANSWER_LIFETIME_SECS: u64 = 60;
/// Matched DNS queries remembered to recognise a resolver forwarding a client's lookup: a
/// resolver forwards within [`FORWARD_WINDOW_SECS`], and a few thousand matched queries in five
/// seconds is far more than a site's Kaspersky lookups. Each costs 48 bytes in the arrival
/// queue (4 096 × 48 ≈ 0.2 MB) and at most one 32-byte index entry in a hash table at most
/// half full after growing (8 192 × 33 ≈ 0.27 MB).
pub const MAX_RECENT_QUERIES: usize = 4_096;
/// A forwarded query follows the client's within this many seconds.
pub const FORWARD_WINDOW_SECS: u64 = 5;
/// Distinct clients whose Kaspersky queries a host must receive to be learned as a resolver.
pub const RESOLVER_MIN_CLIENTS: usize = 3;
/// Distinct clients that must send CONNECT or absolute-form requests to a host for it to be
/// learned as a forward proxy: one client could be talking to a misconfigured server, two
/// already use it as their proxy.
pub const PROXY_MIN_CLIENTS: usize = 2;
/// Distinct agents whose shutdown notices (UDP 13000) make a host a KSC server without any
/// session: one or two could be misdirected datagrams.
pub const NOTICE_MIN_AGENTS: usize = 3;
/// Addresses learned to be group addresses because a frame to an Ethernet group address was
/// sent to them (subnet-directed broadcasts such as 10.70.0.255): one per watched subnet.
pub const MAX_BROADCAST_ADDRS: usize = 1_024;
/// Public resolvers Kaspersky products query directly when Kaspersky servers are unreachable
/// through the system resolver (Kaspersky Endpoint Security 11.6 network settings,
/// https://support.kaspersky.com/KESWin/11.6.0/de-DE/202507.htm; KSC Cloud Console updating,
/// https://support.kaspersky.com/KSC/CloudConsole/en-US/46875.htm).
pub const PUBLIC_RESOLVERS: [&str; 5] = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "223.6.6.6",
    "185.228.168.168",
];
/// Address-type DNS query types: a lookup of one of these makes the querier a client of the
/// named service: A (1), CNAME (5), AAAA (28), SVCB (64), HTTPS (65), ANY (255) (RFC 1035
/// §3.2.2, RFC 3596, RFC 9460 §14.1, RFC 8482).
pub const ADDRESS_QTYPES: [u16; 6] = [1, 5, 28, 64, 65, 255];

/// Counters of the inventory's own caps and decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InventoryCounters {
    /// Hosts evicted to make room for a new one ([`MAX_HOSTS`]).
    pub hosts_evicted: u64,
    /// Of those, hosts with high-confidence evidence or a server role (evicted only when no
    /// weaker host was left).
    pub hosts_evicted_high: u64,
    /// Observations whose host would have been a group address (broadcast, multicast,
    /// unspecified): never a host.
    pub group_addresses_ignored: u64,
    /// Directed-broadcast addresses not remembered: [`MAX_BROADCAST_ADDRS`] were held.
    pub broadcast_addrs_refused: u64,
    pub answered_addrs_evicted: u64,
    pub correlated_connections: u64,
    /// Conversations without a name to Kaspersky's address space.
    pub kaspersky_address_connections: u64,
    pub update_payloads: u64,
    /// `DIFF` bodies that did not answer an update path (ignored).
    pub diff_without_update_path: u64,
    pub detections: u64,
    /// Names not interned: the name table was at [`MAX_DISTINCT_NAMES`]. The evidence is kept
    /// without its name; DNS answers and queries for the name are not remembered.
    pub names_refused: u64,
    /// Evidence entries refused by [`MAX_EVIDENCE_ENTRIES`] (also in the host's
    /// `evidence_dropped`).
    pub evidence_refused: u64,
    /// Facts refused by [`MAX_FACTS_PER_HOST`] or [`MAX_FACTS`].
    pub facts_refused: u64,
}

/// All hosts, and the memories used to learn about them.
pub struct Inventory {
    rules: Arc<RuleSet>,
    /// Keyed by a per-process random hash: addresses come off the wire.
    hosts: HashMap<IpAddr, Host, foldhash::fast::RandomState>,
    /// Eviction order: (tier, whole second last seen, address) of every host, weakest and
    /// oldest first. Exactly the hosts of `hosts`, each under its `tier` and `filed_at`.
    by_age: BTreeSet<(Tier, u64, IpAddr)>,
    budget: Budget,
    answered: HashMap<AnswerKey, Answered, foldhash::fast::RandomState>,
    /// Insertion order of `answered`, for eviction: exactly the keys of `answered`.
    answered_order: VecDeque<AnswerKey>,
    recent_queries: RecentQueries,
    public_resolvers: Vec<IpAddr>,
    /// Subnet-directed broadcast addresses seen as such (never hosts).
    broadcasts: HashSet<IpAddr, foldhash::fast::RandomState>,
    pub counters: InventoryCounters,
    /// Detections per rule index.
    pub per_rule: BTreeMap<RuleIdx, u64>,
}

impl Inventory {
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Inventory {
            rules,
            hosts: HashMap::default(),
            by_age: BTreeSet::new(),
            budget: Budget::default(),
            answered: HashMap::default(),
            answered_order: VecDeque::new(),
            recent_queries: RecentQueries::default(),
            public_resolvers: PUBLIC_RESOLVERS
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            broadcasts: HashSet::default(),
            counters: InventoryCounters::default(),
            per_rule: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// The interned names evidence refers to.
    pub fn names(&self) -> &NameTable {
        &self.budget.names
    }

    /// The text of an interned name.
    pub fn name(&self, id: NameId) -> Option<&str> {
        self.budget.names.name(id)
    }

    /// Applies one observation (in capture order). Returns a correlation found for a nameless
    /// connection, so the caller can report it as an event.
    pub fn apply(&mut self, obs: &Observed) -> Option<Correlation> {
        let ts = obs.ctx.ts;
        let input = obs.ctx.input;
        match &obs.what {
            // Literals and odd names match no name rule: they are events, not evidence. A
            // literal's address-space evidence comes with the connection's nameless
            // observation, judged by the literal's address (counted once).
            Observation::OtherName(_) => None,
            Observation::Name(s) => {
                let rule = s.rule?;
                self.counters.detections += 1;
                *self.per_rule.entry(rule).or_insert(0) += 1;
                let r = self.rules.rule(rule);
                let (category, mut confidence) = (r.category, r.confidence);
                // Every DNS source (questions, answers, UPDATE names, other records): a lookup or a
                // record names a service, it does not reach it.
                let dns = s.source.kind() == NameKind::Dns;
                let kind = name_evidence_kind(s, category);
                if dns && category == Category::KscCloud {
                    // An agent resolves the Cloud Console before connecting, but so does a
                    // browser: a lookup is medium evidence at most.
                    confidence = confidence.min(Confidence::Medium);
                }
                let key = EvidenceKey {
                    kind,
                    rule: Some(rule),
                    name: None,
                    peer: None,
                    input,
                };
                let client = s.client.ip;
                let proxied = matches!(
                    s.source,
                    NameSource::HttpConnect | NameSource::HttpAbsoluteUri
                );
                let cloud = kind == EvidenceKind::CloudConsole;
                let names_id = if cloud { self.intern(&s.name) } else { None };
                let server = s.server.ip;
                self.with_host(client, ts, |h, budget, counters| {
                    h.add_evidence(
                        budget,
                        counters,
                        key,
                        NameArg::Seen(&s.name),
                        ts,
                        confidence,
                    );
                    if let Some(mac) = obs.ctx.client_mac {
                        insert_sorted(&mut h.macs, mac, MAX_MACS_PER_HOST);
                    }
                    if let Some(vlan) = obs.ctx.vlan {
                        insert_sorted(&mut h.vlans, vlan, MAX_VLANS_PER_HOST);
                    }
                    if let Some(name) = names_id {
                        h.add_fact(budget, counters, Fact::CloudConsole { name });
                    }
                    if proxied {
                        h.add_fact(budget, counters, Fact::ViaProxy { proxy: server });
                    }
                });
                if proxied {
                    self.with_host(server, ts, |h, budget, counters| {
                        h.add_fact(budget, counters, Fact::ProxyFor { client })
                    });
                }
                if s.source == NameSource::DnsQuery {
                    self.on_matched_query(&s.name, rule, client, server, ts, input);
                }
                if !s.answers.is_empty() {
                    self.remember_answers(client, &s.name, rule, &s.answers, s.ttl, ts);
                }
                None
            }
            Observation::DnsAnswer {
                name,
                rule,
                client,
                answers,
                ttl,
                ..
            } => {
                self.remember_answers(client.ip, name, *rule, answers, *ttl, ts);
                None
            }
            Observation::Nameless {
                client,
                server,
                reason,
                conversed,
                kaspersky_space,
                origin: literal,
            } => {
                if !conversed {
                    // A refused or unanswered SYN, or nothing from the client: nothing to
                    // attribute.
                    return None;
                }
                let mut found = None;
                if let Some(answered) = self.answer_for(client.ip, server.ip, ts) {
                    if let Some(name) = self.budget.names.host_name(answered.name) {
                        self.counters.correlated_connections += 1;
                        let confidence = lowered(self.rules.rule(answered.rule).confidence);
                        let key = EvidenceKey {
                            kind: EvidenceKind::Correlated(*reason),
                            rule: Some(answered.rule),
                            name: None,
                            peer: Some(server.ip),
                            input,
                        };
                        self.with_host(client.ip, ts, |h, budget, counters| {
                            h.add_evidence(
                                budget,
                                counters,
                                key,
                                NameArg::Known(answered.name),
                                ts,
                                confidence,
                            )
                        });
                        found = Some(Correlation {
                            name,
                            rule: answered.rule,
                            answered_at: answered.answered_at,
                            confidence,
                        });
                    }
                }
                if *kaspersky_space {
                    self.counters.kaspersky_address_connections += 1;
                    // The address judged: the literal the client named (through a proxy,
                    // `server` is the proxy), else the server.
                    let key = EvidenceKey {
                        kind: EvidenceKind::KasperskyAddress(*reason),
                        rule: None,
                        name: None,
                        peer: Some(literal.unwrap_or(server.ip)),
                        input,
                    };
                    self.with_host(client.ip, ts, |h, budget, counters| {
                        h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::Low)
                    });
                }
                found
            }
            Observation::KscSession { client, server } => {
                let port = server.port;
                let key = EvidenceKey {
                    kind: EvidenceKind::KscSession(port),
                    rule: None,
                    name: None,
                    peer: Some(server.ip),
                    input,
                };
                self.with_host(client.ip, ts, |h, budget, counters| {
                    h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::High);
                    h.add_fact(
                        budget,
                        counters,
                        Fact::KscSessionTo {
                            server: server.ip,
                            port,
                        },
                    );
                });
                self.with_host(server.ip, ts, |h, budget, counters| {
                    h.add_fact(
                        budget,
                        counters,
                        Fact::KscSessionFrom {
                            client: client.ip,
                            port,
                        },
                    )
                });
                None
            }
            Observation::KscDatagram {
                src,
                dst,
                dst_group,
            } => {
                self.on_ksc_datagram(src.ip, dst.ip, dst.port, *dst_group, ts, input);
                None
            }
            Observation::UpdateRequest {
                client,
                server,
                path,
                host,
                rule,
                kaspersky_space,
                origin: literal,
            } => {
                let origin = origin(*rule, *kaspersky_space);
                let confidence = match origin {
                    Origin::KasperskyName => {
                        rule.map_or(Confidence::Medium, |r| self.rules.rule(r).confidence)
                    }
                    Origin::KasperskyAddress => Confidence::Medium,
                    Origin::Server => Confidence::High,
                };
                let key = EvidenceKey {
                    kind: EvidenceKind::UpdatePath(*path, origin),
                    rule: *rule,
                    name: None,
                    peer: Some(evidence_peer(origin, *literal, server.ip)),
                    input,
                };
                let name = host.as_ref().map_or(NameArg::None, NameArg::Seen);
                self.with_host(client.ip, ts, |h, budget, counters| {
                    h.add_evidence(budget, counters, key, name, ts, confidence);
                    if origin == Origin::Server {
                        h.add_fact(budget, counters, Fact::FetchedUpdates { server: server.ip });
                    }
                });
                None
            }
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host,
                rule,
                path,
                kaspersky_space,
                origin: literal,
            } => {
                self.counters.update_payloads += 1;
                if *magic == UpdateMagic::Diff && path.is_none() {
                    // `DIFF` starts many binary diffs: alone it says nothing about Kaspersky.
                    self.counters.diff_without_update_path += 1;
                    return None;
                }
                let origin = origin(*rule, *kaspersky_space);
                let key = EvidenceKey {
                    kind: EvidenceKind::UpdatePayload(*magic, origin),
                    rule: *rule,
                    name: None,
                    peer: Some(evidence_peer(origin, *literal, server.ip)),
                    input,
                };
                let name = host.as_ref().map_or(NameArg::None, NameArg::Seen);
                let serves = origin == Origin::Server;
                self.with_host(client.ip, ts, |h, budget, counters| {
                    h.add_evidence(budget, counters, key, name, ts, Confidence::High);
                    if serves {
                        h.add_fact(budget, counters, Fact::FetchedUpdates { server: server.ip });
                    }
                });
                // A mirror serves Kaspersky's own update files (not a diff, not by Kaspersky's
                // name or from Kaspersky's addresses) on the paths the updater asks for.
                if serves && *magic != UpdateMagic::Diff && path.is_some() {
                    let (client, magic) = (client.ip, *magic);
                    self.with_host(server.ip, ts, |h, budget, counters| {
                        h.add_fact(budget, counters, Fact::ServedUpdate { client, magic })
                    });
                }
                None
            }
        }
    }

    /// A datagram to a KSC UDP port: 15000 (and unicast 15001) wakes the destination, an
    /// agent of the source; 15001 to a group is a distribution point's multicast; 13000 is the
    /// source's shutdown notice to its server. A datagram to a group marks no destination.
    fn on_ksc_datagram(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        port: u16,
        dst_group: bool,
        ts: Timestamp,
        input: u16,
    ) {
        if dst_group {
            self.note_broadcast(dst);
            if port == KSC_MULTICAST_PORT {
                self.with_host(src, ts, |h, budget, counters| {
                    h.add_fact(budget, counters, Fact::KscMulticast { group: dst })
                });
            } else {
                self.counters.group_addresses_ignored += 1;
            }
            return;
        }
        if port == KSC_WAKEUP_PORT || port == KSC_MULTICAST_PORT {
            let key = EvidenceKey {
                kind: EvidenceKind::KscWakeup,
                rule: None,
                name: None,
                peer: Some(src),
                input,
            };
            self.with_host(dst, ts, |h, budget, counters| {
                h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::Medium);
                h.add_fact(budget, counters, Fact::KscWakeupFrom { server: src });
            });
            self.with_host(src, ts, |h, budget, counters| {
                h.add_fact(budget, counters, Fact::KscWakeupTo { agent: dst })
            });
        } else if port == KSC_NOTICE_PORT {
            let key = EvidenceKey {
                kind: EvidenceKind::KscNotice,
                rule: None,
                name: None,
                peer: Some(dst),
                input,
            };
            self.with_host(src, ts, |h, budget, counters| {
                h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::Medium);
                h.add_fact(budget, counters, Fact::KscNoticeTo { server: dst });
            });
            self.with_host(dst, ts, |h, budget, counters| {
                h.add_fact(budget, counters, Fact::KscNoticeFrom { agent: src })
            });
        }
    }

    /// Remembers `ip` as a group address (a frame to an Ethernet group address was sent to
    /// it), forgetting it as a host if it was one.
    fn note_broadcast(&mut self, ip: IpAddr) {
        if is_group_address(ip) || self.broadcasts.contains(&ip) {
            return;
        }
        if self.broadcasts.len() >= MAX_BROADCAST_ADDRS {
            self.counters.broadcast_addrs_refused += 1;
            return;
        }
        self.broadcasts.insert(ip);
        if let Some(host) = self.hosts.remove(&ip) {
            self.by_age.remove(&(host.tier, host.filed_at, ip));
            self.budget.release(&host);
        }
    }

    fn intern(&mut self, name: &crate::proto::HostName) -> Option<NameId> {
        let id = self.budget.names.intern(name);
        if id.is_none() {
            self.counters.names_refused = self.counters.names_refused.saturating_add(1);
        }
        id
    }

    /// Runs `f` on the host `ip`, creating it (evicting the weakest, least recently seen host
    /// when [`MAX_HOSTS`] are held) unless `ip` is a group address. `f` must not touch another
    /// host.
    fn with_host(
        &mut self,
        ip: IpAddr,
        ts: Timestamp,
        f: impl FnOnce(&mut Host, &mut Budget, &mut InventoryCounters),
    ) {
        if is_group_address(ip) || self.broadcasts.contains(&ip) {
            self.counters.group_addresses_ignored += 1;
            return;
        }
        let Inventory {
            hosts,
            by_age,
            budget,
            counters,
            ..
        } = self;
        if let Some(host) = hosts.get_mut(&ip) {
            let filed = (host.tier, host.filed_at, ip);
            host.touch(ts);
            f(host, budget, counters);
            let now = host.last_seen.secs();
            if (host.tier, now) != (filed.0, filed.1) {
                by_age.remove(&filed);
                host.filed_at = now;
                by_age.insert((host.tier, now, ip));
            }
            return;
        }
        if hosts.len() >= MAX_HOSTS {
            if let Some((tier, _, victim)) = by_age.pop_first() {
                if let Some(gone) = hosts.remove(&victim) {
                    budget.release(&gone);
                }
                counters.hosts_evicted += 1;
                if tier == Tier::High {
                    counters.hosts_evicted_high += 1;
                }
            }
        }
        let mut host = Host::new(ip, ts);
        f(&mut host, budget, counters);
        host.filed_at = host.last_seen.secs();
        by_age.insert((host.tier, host.filed_at, ip));
        hosts.insert(ip, host);
    }

    /// One host.
    pub fn host(&self, ip: IpAddr) -> Option<&Host> {
        self.hosts.get(&ip)
    }

    /// Number of hosts.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// A host's evidence in report order: by kind, rule, name (shortest first, then bytes, as
    /// host names compare), peer and input.
    pub fn evidence_in_order<'h>(&self, host: &'h Host) -> Vec<&'h Evidence> {
        let names = &self.budget.names;
        let mut entries: Vec<&Evidence> = host.evidence.iter().collect();
        entries.sort_by(|a, b| {
            let (a, b) = (&a.key, &b.key);
            (a.kind, a.rule)
                .cmp(&(b.kind, b.rule))
                .then_with(|| names.cmp(a.name, b.name))
                .then_with(|| (a.peer, a.input).cmp(&(b.peer, b.input)))
        });
        entries
    }

    /// Calls `f` on every host, in no particular order, without copying (metrics, reports).
    pub fn for_each_host(&self, mut f: impl FnMut(&Host)) {
        for host in self.hosts.values() {
            f(host);
        }
    }

    /// Evidence entries stored over all hosts (≤ [`MAX_EVIDENCE_ENTRIES`]).
    pub fn evidence_entries(&self) -> usize {
        self.budget.evidence_entries
    }

    /// Facts stored over all hosts (≤ [`MAX_FACTS`]).
    pub fn fact_count(&self) -> usize {
        self.budget.facts
    }

    /// Addresses remembered from DNS answers (≤ [`MAX_ANSWERED_ADDRS`]).
    pub fn answered_addrs(&self) -> usize {
        self.answered.len()
    }
}

/// What kind of evidence a sighting of a name that matched a rule of `category` is: a DNS
/// lookup for a record type other than an address is not a client of the service, a Cloud
/// Console name contacted on an agent port is a Cloud Console session, anything else is the
/// name as seen. The inventory files it under this kind; `output::eve` describes it with it.
pub fn name_evidence_kind(s: &NameSighting, category: Category) -> EvidenceKind {
    let dns = s.source.kind() == NameKind::Dns;
    match s.qtype {
        Some(q) if dns && !ADDRESS_QTYPES.contains(&q) => EvidenceKind::DnsOtherLookup(q),
        _ if !dns && category == Category::KscCloud && is_cloud_console_port(s.server.port) => {
            EvidenceKind::CloudConsole
        }
        _ => EvidenceKind::Name(s.source),
    }
}

/// The peer an update request's or payload's evidence names: the Kaspersky address that made
/// it Kaspersky's (the literal the client named, which through a proxy is not the server it
/// connected to), else the server.
fn evidence_peer(origin: Origin, literal: Option<IpAddr>, server: IpAddr) -> IpAddr {
    match (origin, literal) {
        (Origin::KasperskyAddress, Some(addr)) => addr,
        _ => server,
    }
}

/// Where an update request or payload came from: a Kaspersky name (its host matched a rule),
/// else a Kaspersky address, else some server.
pub fn origin(rule: Option<RuleIdx>, kaspersky_space: bool) -> Origin {
    if rule.is_some() {
        Origin::KasperskyName
    } else if kaspersky_space {
        Origin::KasperskyAddress
    } else {
        Origin::Server
    }
}
