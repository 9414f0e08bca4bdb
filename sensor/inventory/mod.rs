//! Inventory stage: per-host evidence, learned facts and verdicts.
//!
//! Contract: the collector applies observations in capture order ([`Inventory::apply`]); the
//! inventory keeps, per client host, the evidence (rule, name, kind, input) with counts and
//! first/last times, and what was learned about hosts from traffic (KSC agents and servers,
//! update mirrors, resolvers), each fact with how it was learned. [`Inventory::verdict`] decides
//! a host's verdict from that and the operator's [`assets::Assets`]. Hosts live in a `DashMap`
//! so that a metrics thread can read while the collector writes; it is touched per observation,
//! never per packet. Every map is capped; what a cap refuses is counted.
//!
//! Memory: names are interned ([`names::NameTable`]: each distinct name stored once, evidence
//! holds a 4-byte [`NameId`] instead of a 254-byte inline name); a host's evidence is a sorted
//! vector of 72-byte entries, its MACs, VLANs and facts sorted boxed slices; answered addresses
//! a hash map. Memory is bounded by the caps, not by the input. Worst case with every cap full
//! (x86-64; hash-table slack, vector slack and allocation headers included):
//!
//! | structure | cap | worst case |
//! |---|---|---|
//! | host records (`DashMap`, 160-byte slots, ≤ 2× slots) | [`MAX_HOSTS`] 65 536 | ≈ 21 MB |
//! | evidence, all hosts (≤ 25 % vector slack) | [`MAX_EVIDENCE_ENTRIES`] 262 144 | ≈ 25 MB |
//! | MACs, VLANs, resolver clients per host | [`MAX_MACS_PER_HOST`], [`MAX_VLANS_PER_HOST`] | ≈ 16 MB |
//! | learned facts, all hosts | [`MAX_FACTS`] 131 072 | ≈ 4 MB |
//! | distinct names | [`MAX_DISTINCT_NAMES`] 16 384 | ≈ 5 MB |
//! | answered addresses (map + eviction queue) | [`MAX_ANSWERED_ADDRS`] 65 536 | ≈ 8 MB |
//! | recent matched queries (queue + index by name and server) | [`MAX_RECENT_QUERIES`] 4 096 | ≈ 0.5 MB |
//!
//! So at most about 80 MB, whatever the capture (measured: 69 MB with every cap but facts
//! full; the generated dns profile, 4 M packets and 5 000 hosts with evidence, needs a few
//! MB). Writing a report walks the hosts in place and builds one host's JSON at a time, so it
//! adds little on top.
//!
//! Layout: `host.rs` holds what is known about one host (evidence, facts, capped sets),
//! `correlate.rs` the memories that link observations (DNS answers for nameless connections,
//! recent queries for forwarding resolvers), `verdict.rs` the verdicts, `reload.rs` the
//! translation of rule indexes on a rule reload; `tests.rs` the tests. How facts read in
//! reports is the output stage's business (`crate::output::describe`).

pub mod assets;
mod correlate;
mod host;
pub mod names;
mod reload;
#[cfg(test)]
mod tests;
mod verdict;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use dashmap::mapref::one::Ref;
use dashmap::DashMap;

use crate::observation::{NameSource, Observation, Observed};
use crate::rules::{Confidence, RuleIdx, RuleSet};
use crate::time::Timestamp;

pub use correlate::Correlation;
use correlate::{lowered, Answered, RecentQueries};
use host::{insert_sorted, Budget, NameArg};
pub use host::{Evidence, EvidenceKey, EvidenceKind, EvidenceStat, Fact, Host};
pub use names::{NameId, NameTable, MAX_DISTINCT_NAMES};
pub use reload::RuleRemap;
pub use verdict::Verdict;

/// Hosts with evidence or learned facts. A /16 of clients fits; a flood of spoofed sources
/// cannot grow the inventory past it. A host record with its key is 160 bytes, in hash tables
/// at most half full after growing: 65 536 × 2 × 161 ≈ 21 MB.
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
/// three resolver clients, at most 112 + 48 + 80 bytes of allocations per host: 65 536 × 240
/// ≈ 16 MB).
pub const MAX_MACS_PER_HOST: usize = 16;
pub const MAX_VLANS_PER_HOST: usize = 16;
/// Learned facts per host.
pub const MAX_FACTS_PER_HOST: usize = 64;
/// Learned facts over all hosts: two per host with the host table full (a KSC server learns
/// one fact per agent, each agent one). A fact is 24 bytes: 131 072 × 24 ≈ 3 MB, plus one
/// allocation per host with facts.
pub const MAX_FACTS: usize = 131_072;
/// Addresses remembered from DNS answers for Kaspersky names (DNS-answer correlation). An
/// entry is 48 bytes in a hash table (≤ 2× slots) plus 17 bytes in the eviction queue:
/// 65 536 × (2 × 49 + 17) ≈ 7.5 MB.
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
/// Public resolvers Kaspersky products fall back to (research §0 item 2).
pub const PUBLIC_RESOLVERS: [&str; 5] = [
    "8.8.8.8",
    "1.1.1.1",
    "9.9.9.9",
    "223.6.6.6",
    "185.228.168.168",
];

/// Counters of the inventory's own caps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InventoryCounters {
    pub hosts_refused: u64,
    pub answered_addrs_evicted: u64,
    pub correlated_connections: u64,
    pub update_payloads: u64,
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
    hosts: DashMap<IpAddr, Host>,
    budget: Budget,
    answered: HashMap<IpAddr, Answered, foldhash::fast::RandomState>,
    /// Insertion order of `answered`, for eviction: exactly the keys of `answered`.
    answered_order: VecDeque<IpAddr>,
    recent_queries: RecentQueries,
    public_resolvers: Vec<IpAddr>,
    pub counters: InventoryCounters,
    /// Detections per rule index.
    pub per_rule: BTreeMap<RuleIdx, u64>,
}

impl Inventory {
    pub fn new(rules: Arc<RuleSet>) -> Self {
        Inventory {
            rules,
            hosts: DashMap::new(),
            budget: Budget::default(),
            answered: HashMap::default(),
            answered_order: VecDeque::new(),
            recent_queries: RecentQueries::default(),
            public_resolvers: PUBLIC_RESOLVERS
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
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
        match &obs.what {
            // Literals and odd names match no name rule: they are events, not evidence.
            Observation::OtherName(_) => None,
            Observation::Name(s) => {
                let rule = s.rule?;
                self.counters.detections += 1;
                *self.per_rule.entry(rule).or_insert(0) += 1;
                let confidence = self.rules.rule(rule).confidence;
                let key = EvidenceKey {
                    kind: EvidenceKind::Name(s.source),
                    rule: Some(rule),
                    name: None,
                    peer: None,
                    input: obs.ctx.input,
                };
                let client = s.client.ip;
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
                });
                if s.source == NameSource::DnsQuery {
                    self.on_matched_query(&s.name, client, s.server.ip, ts);
                }
                if !s.answers.is_empty() {
                    self.remember_answers(&s.name, rule, &s.answers, s.ttl, ts);
                }
                None
            }
            Observation::DnsAnswer {
                name,
                rule,
                answers,
                ttl,
                ..
            } => {
                self.remember_answers(name, *rule, answers, *ttl, ts);
                None
            }
            Observation::Nameless {
                client,
                server,
                reason,
            } => {
                let answered = self.answered.get(&server.ip).copied()?;
                if ts < answered.answered_at || ts > answered.expires {
                    return None;
                }
                let name = self.budget.names.host_name(answered.name)?;
                self.counters.correlated_connections += 1;
                let confidence = lowered(self.rules.rule(answered.rule).confidence);
                let key = EvidenceKey {
                    kind: EvidenceKind::Correlated(*reason),
                    rule: Some(answered.rule),
                    name: None,
                    peer: Some(server.ip),
                    input: obs.ctx.input,
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
                Some(Correlation {
                    name,
                    rule: answered.rule,
                    answered_at: answered.answered_at,
                    confidence,
                })
            }
            Observation::KscContact { client, server, .. } => {
                let key = EvidenceKey {
                    kind: EvidenceKind::KscContact,
                    rule: None,
                    name: None,
                    peer: Some(server.ip),
                    input: obs.ctx.input,
                };
                let port = server.port;
                self.with_host(client.ip, ts, |h, budget, counters| {
                    h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::Medium);
                    h.add_fact(
                        budget,
                        counters,
                        Fact::KscAgentOf {
                            server: server.ip,
                            port,
                        },
                    );
                });
                self.with_host(server.ip, ts, |h, budget, counters| {
                    h.add_fact(
                        budget,
                        counters,
                        Fact::KscServerFor {
                            client: client.ip,
                            port,
                        },
                    )
                });
                None
            }
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host,
            } => {
                self.counters.update_payloads += 1;
                let rule = host.as_ref().and_then(|h| self.rules.lookup(h));
                let key = EvidenceKey {
                    kind: EvidenceKind::UpdatePayload(*magic),
                    rule,
                    name: None,
                    peer: Some(server.ip),
                    input: obs.ctx.input,
                };
                let name = match host {
                    Some(h) => NameArg::Seen(h),
                    None => NameArg::None,
                };
                let from_mirror = rule.is_none();
                self.with_host(client.ip, ts, |h, budget, counters| {
                    h.add_evidence(budget, counters, key, name, ts, Confidence::High);
                    if from_mirror {
                        h.add_fact(
                            budget,
                            counters,
                            Fact::UpdatedFromMirror { server: server.ip },
                        );
                    }
                });
                if from_mirror {
                    let magic = *magic;
                    self.with_host(server.ip, ts, |h, budget, counters| {
                        h.add_fact(
                            budget,
                            counters,
                            Fact::ServedUpdate {
                                client: client.ip,
                                magic,
                            },
                        )
                    });
                }
                None
            }
        }
    }

    /// Runs `f` on the host `ip`, creating it if there is room. The host's shard lock is held
    /// only during `f`, which must not touch another host.
    fn with_host(
        &mut self,
        ip: IpAddr,
        ts: Timestamp,
        f: impl FnOnce(&mut Host, &mut Budget, &mut InventoryCounters),
    ) {
        let Inventory {
            hosts,
            budget,
            counters,
            ..
        } = self;
        if let Some(mut host) = hosts.get_mut(&ip) {
            f(&mut host, budget, counters);
            return;
        }
        if hosts.len() >= MAX_HOSTS {
            counters.hosts_refused += 1;
            return;
        }
        let mut host = Host::new(ip, ts);
        f(&mut host, budget, counters);
        hosts.insert(ip, host);
    }

    /// One host, read-locked while the guard lives: do not call into the inventory's hosts
    /// again before dropping it.
    pub fn host(&self, ip: IpAddr) -> Option<Ref<'_, IpAddr, Host>> {
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
        for entry in self.hosts.iter() {
            f(entry.value());
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
