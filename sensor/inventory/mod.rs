//! Inventory stage: per-host evidence, learned facts and verdicts.
//!
//! Contract: the collector applies observations in capture order ([`Inventory::apply`]); the
//! inventory keeps, per client host, the evidence (rule, name, kind, input) with counts and
//! first/last times, and what was learned about hosts from traffic (KSC agents and servers,
//! update mirrors, resolvers), each fact with how it was learned. [`Inventory::verdict`] decides
//! a host's verdict from that and the operator's [`assets::Assets`]. Hosts live in a `DashMap`
//! so that a metrics thread can read while the collector writes; it is touched per observation,
//! never per packet. Every map is capped; what a cap refuses is counted.

pub mod assets;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;

use crate::pipeline::observation::{NameSource, NamelessReason, Observation, Observed};
use crate::proto::http::UpdateMagic;
use crate::proto::HostName;
use crate::rules::{Confidence, RuleIdx, RuleSet};
use crate::time::Timestamp;

use assets::{Assets, Role};

/// Hosts with evidence or learned facts. A /16 of clients fits; a flood of spoofed sources
/// cannot grow the inventory past it.
pub const MAX_HOSTS: usize = 65_536;
/// Distinct evidence entries per host (rule × name × kind × input). A real install touches a
/// few dozen names.
pub const MAX_EVIDENCE_PER_HOST: usize = 256;
/// MAC addresses and VLANs remembered per host.
pub const MAX_MACS_PER_HOST: usize = 16;
pub const MAX_VLANS_PER_HOST: usize = 16;
/// Learned facts per host.
pub const MAX_FACTS_PER_HOST: usize = 64;
/// Addresses remembered from DNS answers for Kaspersky names (DNS-answer correlation).
pub const MAX_ANSWERED_ADDRS: usize = 65_536;
/// Shortest time an answered address stays attributed, whatever its TTL: clients and OS caches
/// commonly keep records for at least a minute (RFC 8767 also allows serving stale answers).
pub const MIN_ANSWER_LIFETIME_SECS: u64 = 60;
/// Matched DNS queries remembered to recognise a resolver forwarding a client's lookup.
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

/// What kind of evidence an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvidenceKind {
    /// A name seen in traffic from/to the host.
    Name(NameSource),
    /// A connection without a usable name to an address answered for a Kaspersky name.
    Correlated(NamelessReason),
    /// An HTTP response to the host started with a Kaspersky update-file magic.
    UpdatePayload(UpdateMagic),
    /// The host contacted a Kaspersky Security Center port.
    KscContact,
}

impl EvidenceKind {
    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::Name(source) => source.label(),
            EvidenceKind::Correlated(_) => "dns-correlated-connection",
            EvidenceKind::UpdatePayload(_) => "update-payload",
            EvidenceKind::KscContact => "ksc-agent-port",
        }
    }
}

/// Identity of one evidence entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvidenceKey {
    pub kind: EvidenceKind,
    /// The rule that matched (by index in the rule set the inventory was built with).
    pub rule: Option<RuleIdx>,
    pub name: Option<HostName>,
    /// The other endpoint, where it matters (KSC server, mirror, correlated address).
    pub peer: Option<IpAddr>,
    pub input: u16,
}

/// Counts and times of one evidence entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvidenceStat {
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The confidence this evidence carries (lowered for correlation).
    pub confidence: Confidence,
}

/// Something learned about a host from traffic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fact {
    /// Contacted KSC server `server` on `port`: a managed endpoint.
    KscAgentOf { server: IpAddr, port: u16 },
    /// Was contacted on a KSC port by `client`: a KSC server.
    KscServerFor { client: IpAddr, port: u16 },
    /// Served a Kaspersky update file (`magic`) to `client` without a Kaspersky host name.
    ServedUpdate { client: IpAddr, magic: UpdateMagic },
    /// Received a Kaspersky update file from internal mirror `server`.
    UpdatedFromMirror { server: IpAddr },
    /// Forwarded `client`'s lookup of a Kaspersky name upstream.
    ForwardedFor { client: IpAddr },
    /// Received Kaspersky lookups from several clients.
    AnsweredClients { clients: usize },
    /// Sent Kaspersky lookups straight to a public resolver (product fallback behaviour).
    QueriedPublicResolver { resolver: IpAddr },
}

impl Fact {
    /// A sentence for reports.
    pub fn describe(&self) -> String {
        match self {
            Fact::KscAgentOf { server, port } => {
                format!("talks to Kaspersky Security Center {server} on agent port {port}")
            }
            Fact::KscServerFor { client, port } => {
                format!("receives Kaspersky Security Center agent connections (port {port}) from {client}")
            }
            Fact::ServedUpdate { client, magic } => {
                format!(
                    "served a Kaspersky update file ({}) over HTTP to {client}",
                    magic_label(*magic)
                )
            }
            Fact::UpdatedFromMirror { server } => {
                format!("downloads Kaspersky update files from internal mirror {server}")
            }
            Fact::ForwardedFor { client } => {
                format!("forwarded {client}'s Kaspersky lookup to an upstream resolver")
            }
            Fact::AnsweredClients { clients } => {
                format!("received Kaspersky lookups from {clients} clients")
            }
            Fact::QueriedPublicResolver { resolver } => {
                format!("sent Kaspersky lookups straight to public resolver {resolver}")
            }
        }
    }
}

pub fn magic_label(magic: UpdateMagic) -> &'static str {
    match magic {
        UpdateMagic::Klzf => "KLZF",
        UpdateMagic::Kld2 => "KLD2",
        UpdateMagic::Diff => "DIFF",
    }
}

/// Everything known about one host.
#[derive(Clone, Debug)]
pub struct Host {
    pub ip: IpAddr,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub macs: BTreeSet<[u8; 6]>,
    pub vlans: BTreeSet<u16>,
    pub evidence: BTreeMap<EvidenceKey, EvidenceStat>,
    pub facts: BTreeSet<Fact>,
    /// Evidence entries refused by the per-host cap.
    pub evidence_dropped: u64,
    /// Distinct clients whose Kaspersky queries this host received (capped).
    clients_asking: BTreeSet<IpAddr>,
}

impl Host {
    fn new(ip: IpAddr, ts: Timestamp) -> Self {
        Host {
            ip,
            first_seen: ts,
            last_seen: ts,
            macs: BTreeSet::new(),
            vlans: BTreeSet::new(),
            evidence: BTreeMap::new(),
            facts: BTreeSet::new(),
            evidence_dropped: 0,
            clients_asking: BTreeSet::new(),
        }
    }

    fn touch(&mut self, ts: Timestamp) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
    }

    fn add_evidence(&mut self, key: EvidenceKey, ts: Timestamp, confidence: Confidence) {
        self.touch(ts);
        if let Some(stat) = self.evidence.get_mut(&key) {
            stat.count += 1;
            stat.first = stat.first.min(ts);
            stat.last = stat.last.max(ts);
            return;
        }
        if self.evidence.len() >= MAX_EVIDENCE_PER_HOST {
            self.evidence_dropped += 1;
            return;
        }
        self.evidence.insert(
            key,
            EvidenceStat {
                count: 1,
                first: ts,
                last: ts,
                confidence,
            },
        );
    }

    fn add_fact(&mut self, fact: Fact) {
        if self.facts.len() < MAX_FACTS_PER_HOST {
            self.facts.insert(fact);
        }
    }

    /// The strongest confidence among this host's evidence.
    pub fn strongest(&self) -> Option<Confidence> {
        self.evidence.values().map(|s| s.confidence).max()
    }
}

/// A host's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    UnmanagedInstall,
    ManagedInstall,
    KscServer,
    UpdateMirror,
    Resolver,
    WebsiteOnly,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::UnmanagedInstall,
        Verdict::ManagedInstall,
        Verdict::KscServer,
        Verdict::UpdateMirror,
        Verdict::Resolver,
        Verdict::WebsiteOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::UnmanagedInstall => "unmanaged-install",
            Verdict::ManagedInstall => "managed-install",
            Verdict::KscServer => "ksc-server",
            Verdict::UpdateMirror => "update-mirror",
            Verdict::Resolver => "resolver",
            Verdict::WebsiteOnly => "website-only",
        }
    }
}

/// An address answered for a Kaspersky name.
#[derive(Clone, Copy, Debug)]
struct Answered {
    name: HostName,
    rule: RuleIdx,
    answered_at: Timestamp,
    expires: Timestamp,
}

/// A matched DNS query, remembered briefly to recognise forwarding.
#[derive(Clone, Copy, Debug)]
struct RecentQuery {
    name: HostName,
    client: IpAddr,
    server: IpAddr,
    ts: Timestamp,
}

/// Counters of the inventory's own caps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InventoryCounters {
    pub hosts_refused: u64,
    pub answered_addrs_evicted: u64,
    pub correlated_connections: u64,
    pub update_payloads: u64,
    pub detections: u64,
}

/// All hosts, and the memories used to learn about them.
pub struct Inventory {
    rules: Arc<RuleSet>,
    hosts: DashMap<IpAddr, Host>,
    answered: BTreeMap<IpAddr, Answered>,
    /// Insertion order of `answered`, for eviction.
    answered_order: VecDeque<(Timestamp, IpAddr)>,
    recent_queries: VecDeque<RecentQuery>,
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
            answered: BTreeMap::new(),
            answered_order: VecDeque::new(),
            recent_queries: VecDeque::new(),
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

    /// Applies one observation (in capture order). Returns a correlation found for a nameless
    /// connection, so the caller can report it as an event.
    pub fn apply(&mut self, obs: &Observed) -> Option<Correlation> {
        let ts = obs.ctx.ts;
        match &obs.what {
            Observation::Name(s) => {
                let rule = s.rule?;
                self.counters.detections += 1;
                *self.per_rule.entry(rule).or_insert(0) += 1;
                let confidence = self.rules.rule(rule).confidence;
                let key = EvidenceKey {
                    kind: EvidenceKind::Name(s.source),
                    rule: Some(rule),
                    name: Some(s.name),
                    peer: None,
                    input: obs.ctx.input,
                };
                let client = s.client.ip;
                self.with_host(client, ts, |h| {
                    h.add_evidence(key, ts, confidence);
                    if let Some(mac) = obs.ctx.client_mac {
                        if h.macs.len() < MAX_MACS_PER_HOST {
                            h.macs.insert(mac);
                        }
                    }
                    if let Some(vlan) = obs.ctx.vlan {
                        if h.vlans.len() < MAX_VLANS_PER_HOST {
                            h.vlans.insert(vlan);
                        }
                    }
                });
                if s.source == NameSource::DnsQuery {
                    self.on_matched_query(s.name, client, s.server.ip, ts);
                }
                if !s.answers.is_empty() {
                    self.remember_answers(s.name, rule, &s.answers, s.ttl, ts);
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
                self.remember_answers(*name, *rule, answers, *ttl, ts);
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
                self.counters.correlated_connections += 1;
                let confidence = lowered(self.rules.rule(answered.rule).confidence);
                let key = EvidenceKey {
                    kind: EvidenceKind::Correlated(*reason),
                    rule: Some(answered.rule),
                    name: Some(answered.name),
                    peer: Some(server.ip),
                    input: obs.ctx.input,
                };
                self.with_host(client.ip, ts, |h| h.add_evidence(key, ts, confidence));
                Some(Correlation {
                    name: answered.name,
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
                self.with_host(client.ip, ts, |h| {
                    h.add_evidence(key, ts, Confidence::Medium);
                    h.add_fact(Fact::KscAgentOf {
                        server: server.ip,
                        port,
                    });
                });
                self.with_host(server.ip, ts, |h| {
                    h.add_fact(Fact::KscServerFor {
                        client: client.ip,
                        port,
                    })
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
                    name: *host,
                    peer: Some(server.ip),
                    input: obs.ctx.input,
                };
                let from_mirror = rule.is_none();
                self.with_host(client.ip, ts, |h| {
                    h.add_evidence(key, ts, Confidence::High);
                    if from_mirror {
                        h.add_fact(Fact::UpdatedFromMirror { server: server.ip });
                    }
                });
                if from_mirror {
                    let magic = *magic;
                    self.with_host(server.ip, ts, |h| {
                        h.add_fact(Fact::ServedUpdate {
                            client: client.ip,
                            magic,
                        })
                    });
                }
                None
            }
        }
    }

    fn with_host(&mut self, ip: IpAddr, ts: Timestamp, f: impl FnOnce(&mut Host)) {
        if let Some(mut host) = self.hosts.get_mut(&ip) {
            f(&mut host);
            return;
        }
        if self.hosts.len() >= MAX_HOSTS {
            self.counters.hosts_refused += 1;
            return;
        }
        let mut host = Host::new(ip, ts);
        f(&mut host);
        self.hosts.insert(ip, host);
    }

    fn on_matched_query(&mut self, name: HostName, client: IpAddr, server: IpAddr, ts: Timestamp) {
        if self.public_resolvers.contains(&server) {
            self.with_host(client, ts, |h| {
                h.add_fact(Fact::QueriedPublicResolver { resolver: server })
            });
        }
        // Did `client` receive this lookup from someone else just before? Then it forwards.
        let forwarded_for = self
            .recent_queries
            .iter()
            .rev()
            .take_while(|q| ts.saturating_sub(q.ts).as_secs() <= FORWARD_WINDOW_SECS)
            .find(|q| q.server == client && q.name == name && q.client != client)
            .map(|q| q.client);
        if let Some(origin) = forwarded_for {
            self.with_host(client, ts, |h| {
                h.add_fact(Fact::ForwardedFor { client: origin })
            });
        }
        self.with_host(server, ts, |h| {
            if h.clients_asking.len() < RESOLVER_MIN_CLIENTS {
                h.clients_asking.insert(client);
                if h.clients_asking.len() == RESOLVER_MIN_CLIENTS {
                    h.add_fact(Fact::AnsweredClients {
                        clients: RESOLVER_MIN_CLIENTS,
                    });
                }
            }
        });
        if self.recent_queries.len() >= MAX_RECENT_QUERIES {
            self.recent_queries.pop_front();
        }
        self.recent_queries.push_back(RecentQuery {
            name,
            client,
            server,
            ts,
        });
    }

    fn remember_answers(
        &mut self,
        name: HostName,
        rule: RuleIdx,
        addrs: &[IpAddr],
        ttl: Option<u32>,
        ts: Timestamp,
    ) {
        let lifetime = u64::from(ttl.unwrap_or(0)).max(MIN_ANSWER_LIFETIME_SECS);
        let expires = ts.saturating_add(std::time::Duration::from_secs(lifetime));
        for &ip in addrs {
            while self.answered.len() >= MAX_ANSWERED_ADDRS {
                match self.answered_order.pop_front() {
                    Some((_, old)) => {
                        if self.answered.remove(&old).is_some() {
                            self.counters.answered_addrs_evicted += 1;
                        }
                    }
                    None => break,
                }
            }
            if self
                .answered
                .insert(
                    ip,
                    Answered {
                        name,
                        rule,
                        answered_at: ts,
                        expires,
                    },
                )
                .is_none()
            {
                self.answered_order.push_back((ts, ip));
            }
        }
    }

    /// The verdict for a host given the operator's assets, or `None` for a host with neither
    /// evidence nor a role worth reporting.
    pub fn verdict(&self, host: &Host, assets: &Assets) -> Option<Verdict> {
        let role = assets.find(host.ip, host.macs.iter()).map(|a| a.role);
        let learned_ksc = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::KscServerFor { .. }));
        let learned_mirror = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::ServedUpdate { .. }));
        let learned_resolver = host
            .facts
            .iter()
            .any(|f| matches!(f, Fact::ForwardedFor { .. } | Fact::AnsweredClients { .. }));
        if role == Some(Role::KscServer) || (role.is_none() && learned_ksc) {
            return Some(Verdict::KscServer);
        }
        if role == Some(Role::UpdateMirror) || (role.is_none() && learned_mirror) {
            return Some(Verdict::UpdateMirror);
        }
        if role == Some(Role::Resolver) || (role.is_none() && learned_resolver) {
            return Some(Verdict::Resolver);
        }
        let strongest = host.strongest()?;
        let managed = role == Some(Role::Endpoint)
            || host
                .facts
                .iter()
                .any(|f| matches!(f, Fact::KscAgentOf { .. } | Fact::UpdatedFromMirror { .. }));
        if managed && strongest >= Confidence::Medium {
            return Some(Verdict::ManagedInstall);
        }
        if strongest >= Confidence::Medium {
            return Some(Verdict::UnmanagedInstall);
        }
        Some(Verdict::WebsiteOnly)
    }

    /// Every host, sorted by address.
    pub fn hosts_sorted(&self) -> Vec<Host> {
        let mut hosts: Vec<Host> = self.hosts.iter().map(|e| e.value().clone()).collect();
        hosts.sort_by_key(|h| h.ip);
        hosts
    }

    /// Number of hosts per verdict (for metrics).
    pub fn verdict_counts(&self, assets: &Assets) -> BTreeMap<Verdict, u64> {
        let mut counts = BTreeMap::new();
        for entry in self.hosts.iter() {
            if let Some(v) = self.verdict(entry.value(), assets) {
                *counts.entry(v).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// A nameless connection attributed to a Kaspersky name through an earlier DNS answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Correlation {
    pub name: HostName,
    pub rule: RuleIdx,
    pub answered_at: Timestamp,
    pub confidence: Confidence,
}

/// Correlated evidence is one step weaker than the name itself.
fn lowered(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        Confidence::Medium | Confidence::Low => Confidence::Low,
    }
}
