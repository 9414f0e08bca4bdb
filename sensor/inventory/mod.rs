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
//! full; the generated dns profile, 4 M packets and 5 000 hosts with evidence, needs a few MB). Writing a report walks the hosts in place and
//! builds one host's JSON at a time, so it adds little on top.

pub mod assets;
pub mod names;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use dashmap::mapref::one::Ref;
use dashmap::DashMap;

use crate::observation::{NameSource, NamelessReason, Observation, Observed};
use crate::proto::http::UpdateMagic;
use crate::proto::HostName;
use crate::rules::{Confidence, RuleIdx, RuleSet};
use crate::time::Timestamp;

use assets::{Assets, Role};
pub use names::{NameId, NameTable, MAX_DISTINCT_NAMES};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EvidenceKey {
    pub kind: EvidenceKind,
    /// The rule that matched (by index in the rule set the inventory was built with).
    pub rule: Option<RuleIdx>,
    /// The name, in the inventory's [`NameTable`] (`None` also when the table was full).
    pub name: Option<NameId>,
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

impl EvidenceStat {
    fn seen(&mut self, ts: Timestamp) {
        self.count = self.count.saturating_add(1);
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
    }

    fn merge(&mut self, other: &EvidenceStat) {
        self.count = self.count.saturating_add(other.count);
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.confidence = self.confidence.max(other.confidence);
    }
}

/// One evidence entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub key: EvidenceKey,
    pub stat: EvidenceStat,
}

/// Something learned about a host from traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Sorted sets, boxed slices rather than trees or vectors: they rarely change and most
    /// hosts have one MAC and no facts, so the smallest representation wins.
    macs: Box<[[u8; 6]]>,
    vlans: Box<[u16]>,
    /// Sorted by key, searched by bisection.
    evidence: Vec<Evidence>,
    facts: Box<[Fact]>,
    /// Evidence entries refused by the per-host or the inventory-wide cap.
    pub evidence_dropped: u64,
    /// Distinct clients whose Kaspersky queries this host received (capped).
    clients_asking: Box<[IpAddr]>,
}

/// What inserting into a capped sorted set did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Insert {
    Added,
    Present,
    Full,
}

/// Inserts `value` into the sorted set `set` unless it is there or the set holds `cap` values.
fn insert_sorted<T: Ord + Copy>(set: &mut Box<[T]>, value: T, cap: usize) -> Insert {
    match set.binary_search(&value) {
        Ok(_) => Insert::Present,
        Err(_) if set.len() >= cap => Insert::Full,
        Err(pos) => {
            let mut grown = Vec::with_capacity(set.len().saturating_add(1));
            grown.extend_from_slice(set);
            // `pos <= len` by `binary_search`'s contract.
            grown.insert(pos.min(grown.len()), value);
            *set = grown.into_boxed_slice();
            Insert::Added
        }
    }
}

/// The name an evidence entry is about, as the caller has it.
#[derive(Clone, Copy, Debug)]
enum NameArg<'n> {
    None,
    /// Already in the name table.
    Known(NameId),
    /// From an observation; interned only if a new entry is stored.
    Seen(&'n HostName),
}

/// Inventory-wide budgets shared by all hosts.
#[derive(Default)]
struct Budget {
    names: NameTable,
    /// Evidence entries stored over all hosts (≤ [`MAX_EVIDENCE_ENTRIES`]).
    evidence_entries: usize,
    /// Facts stored over all hosts (≤ [`MAX_FACTS`]).
    facts: usize,
}

impl Host {
    fn new(ip: IpAddr, ts: Timestamp) -> Self {
        Host {
            ip,
            first_seen: ts,
            last_seen: ts,
            macs: Box::default(),
            vlans: Box::default(),
            evidence: Vec::new(),
            facts: Box::default(),
            evidence_dropped: 0,
            clients_asking: Box::default(),
        }
    }

    /// MAC addresses seen for this host, sorted.
    pub fn macs(&self) -> &[[u8; 6]] {
        &self.macs
    }

    /// VLANs seen for this host, sorted.
    pub fn vlans(&self) -> &[u16] {
        &self.vlans
    }

    /// Learned facts, sorted.
    pub fn facts(&self) -> &[Fact] {
        &self.facts
    }

    /// Evidence entries, sorted by [`EvidenceKey`] (name ids, not name text: see
    /// [`Inventory::evidence_in_order`] for the order reports use).
    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    fn touch(&mut self, ts: Timestamp) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
    }

    fn find_evidence(&mut self, key: &EvidenceKey) -> Result<&mut EvidenceStat, usize> {
        match self.evidence.binary_search_by(|e| e.key.cmp(key)) {
            Ok(i) => self.evidence.get_mut(i).map(|e| &mut e.stat).ok_or(i),
            Err(i) => Err(i),
        }
    }

    /// Counts evidence `key` (its `name` is replaced by `name`). A new entry needs room under
    /// both caps; its name is interned only then, so refused evidence takes no table slot.
    fn add_evidence(
        &mut self,
        budget: &mut Budget,
        counters: &mut InventoryCounters,
        key: EvidenceKey,
        name: NameArg<'_>,
        ts: Timestamp,
        confidence: Confidence,
    ) {
        self.touch(ts);
        let known = match name {
            NameArg::None => Ok(None),
            NameArg::Known(id) => Ok(Some(id)),
            NameArg::Seen(n) => budget.names.get(n).map(Some).ok_or(n),
        };
        if let Ok(id) = known {
            if let Ok(stat) = self.find_evidence(&EvidenceKey { name: id, ..key }) {
                stat.seen(ts);
                return;
            }
        }
        if self.evidence.len() >= MAX_EVIDENCE_PER_HOST {
            self.evidence_dropped = self.evidence_dropped.saturating_add(1);
            return;
        }
        if budget.evidence_entries >= MAX_EVIDENCE_ENTRIES {
            self.evidence_dropped = self.evidence_dropped.saturating_add(1);
            counters.evidence_refused = counters.evidence_refused.saturating_add(1);
            return;
        }
        let id = match known {
            Ok(id) => id,
            Err(n) => {
                let id = budget.names.intern(n);
                if id.is_none() {
                    counters.names_refused = counters.names_refused.saturating_add(1);
                }
                id
            }
        };
        let key = EvidenceKey { name: id, ..key };
        match self.find_evidence(&key) {
            // The name table was full and a nameless entry of this kind exists.
            Ok(stat) => stat.seen(ts),
            Err(pos) => {
                if self.evidence.len() == self.evidence.capacity() {
                    // Grow by a quarter, not double: bounds the slack to 25 %.
                    self.evidence
                        .reserve_exact((self.evidence.len() / 4).max(1));
                }
                let entry = Evidence {
                    key,
                    stat: EvidenceStat {
                        count: 1,
                        first: ts,
                        last: ts,
                        confidence,
                    },
                };
                self.evidence.insert(pos.min(self.evidence.len()), entry);
                budget.evidence_entries = budget.evidence_entries.saturating_add(1);
            }
        }
    }

    fn add_fact(&mut self, budget: &mut Budget, counters: &mut InventoryCounters, fact: Fact) {
        let cap = if budget.facts >= MAX_FACTS {
            // Only facts already known are accepted (as no-ops).
            0
        } else {
            MAX_FACTS_PER_HOST
        };
        match insert_sorted(&mut self.facts, fact, cap) {
            Insert::Added => budget.facts = budget.facts.saturating_add(1),
            Insert::Present => {}
            Insert::Full => counters.facts_refused = counters.facts_refused.saturating_add(1),
        }
    }

    /// The strongest confidence among this host's evidence.
    pub fn strongest(&self) -> Option<Confidence> {
        self.evidence.iter().map(|e| e.stat.confidence).max()
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
    name: NameId,
    rule: RuleIdx,
    answered_at: Timestamp,
    expires: Timestamp,
}

/// A matched DNS query, remembered briefly to recognise forwarding.
#[derive(Clone, Copy, Debug)]
struct RecentQuery {
    name: NameId,
    client: IpAddr,
    server: IpAddr,
    ts: Timestamp,
}

/// The last [`MAX_RECENT_QUERIES`] matched queries, in arrival order, with an index that finds
/// the newest query for a (name, server) pair in one hash probe.
///
/// Invariant: `newest` maps a (name, server) key to the sequence number of the newest query in
/// `order` with that key whose client is not its server, and holds no other entry. Eviction
/// pops the oldest query; the index entry goes with it only if it was that query (any newer
/// query of the key would have replaced it), so the index never outlives the queue.
#[derive(Default)]
struct RecentQueries {
    order: VecDeque<RecentQuery>,
    /// Sequence number of `order.front()`; query `seq` is at `order[seq - first_seq]`.
    first_seq: u64,
    /// Keyed by a per-process random hash: names and servers come off the wire.
    newest: HashMap<(NameId, IpAddr), u64, foldhash::fast::RandomState>,
}

impl RecentQueries {
    /// Remembers a query, forgetting the oldest when [`MAX_RECENT_QUERIES`] are held.
    fn push(&mut self, query: RecentQuery) {
        if self.order.len() >= MAX_RECENT_QUERIES {
            if let Some(old) = self.order.pop_front() {
                let key = (old.name, old.server);
                if self.newest.get(&key) == Some(&self.first_seq) {
                    self.newest.remove(&key);
                }
                self.first_seq = self.first_seq.wrapping_add(1);
            }
        }
        // `order.len()` < 4 096 fits in u64.
        let seq = self.first_seq.wrapping_add(self.order.len() as u64);
        self.order.push_back(query);
        // A query a host sent to itself can never show that host forwarding someone else's
        // lookup (the client must differ), so it is queued for eviction order but not indexed.
        if query.client != query.server {
            self.newest.insert((query.name, query.server), seq);
        }
    }

    /// The client of the newest remembered query for `name` sent to `server` by another host,
    /// if it was sent at most [`FORWARD_WINDOW_SECS`] before `now`. Queries are applied in
    /// capture order, so with non-decreasing times this is the newest such query within the
    /// window (an older one of the same key would be older still).
    fn forwarded_from(&self, name: NameId, server: IpAddr, now: Timestamp) -> Option<IpAddr> {
        let seq = *self.newest.get(&(name, server))?;
        let at = usize::try_from(seq.wrapping_sub(self.first_seq)).ok()?;
        let query = self.order.get(at)?;
        (now.saturating_sub(query.ts).as_secs() <= FORWARD_WINDOW_SECS).then_some(query.client)
    }
}

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

    fn on_matched_query(&mut self, name: &HostName, client: IpAddr, server: IpAddr, ts: Timestamp) {
        if self.public_resolvers.contains(&server) {
            self.with_host(client, ts, |h, budget, counters| {
                h.add_fact(
                    budget,
                    counters,
                    Fact::QueriedPublicResolver { resolver: server },
                )
            });
        }
        let id = self.budget.names.intern(name);
        if id.is_none() {
            self.counters.names_refused = self.counters.names_refused.saturating_add(1);
        }
        // Did `client` receive this lookup from someone else just before? Then it forwards.
        let forwarded_for = id.and_then(|id| self.recent_queries.forwarded_from(id, client, ts));
        if let Some(origin) = forwarded_for {
            self.with_host(client, ts, |h, budget, counters| {
                h.add_fact(budget, counters, Fact::ForwardedFor { client: origin })
            });
        }
        self.with_host(server, ts, |h, budget, counters| {
            if h.clients_asking.len() < RESOLVER_MIN_CLIENTS {
                insert_sorted(&mut h.clients_asking, client, RESOLVER_MIN_CLIENTS);
                if h.clients_asking.len() == RESOLVER_MIN_CLIENTS {
                    h.add_fact(
                        budget,
                        counters,
                        Fact::AnsweredClients {
                            clients: RESOLVER_MIN_CLIENTS,
                        },
                    );
                }
            }
        });
        let Some(id) = id else { return };
        self.recent_queries.push(RecentQuery {
            name: id,
            client,
            server,
            ts,
        });
    }

    fn remember_answers(
        &mut self,
        name: &HostName,
        rule: RuleIdx,
        addrs: &[IpAddr],
        ttl: Option<u32>,
        ts: Timestamp,
    ) {
        if addrs.is_empty() {
            return;
        }
        let Some(name) = self.budget.names.intern(name) else {
            self.counters.names_refused = self.counters.names_refused.saturating_add(1);
            return;
        };
        let lifetime = u64::from(ttl.unwrap_or(0)).max(MIN_ANSWER_LIFETIME_SECS);
        let expires = ts.saturating_add(std::time::Duration::from_secs(lifetime));
        for &ip in addrs {
            while self.answered.len() >= MAX_ANSWERED_ADDRS {
                match self.answered_order.pop_front() {
                    Some(old) => {
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
                self.answered_order.push_back(ip);
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

/// Translates rule indexes of one rule set into another by rule id (live reload). A rule that
/// is gone from the new set maps to `None`. Built once per reload: one entry per old rule.
pub struct RuleRemap {
    map: Vec<Option<RuleIdx>>,
}

impl RuleRemap {
    pub fn new(old: &RuleSet, new: &RuleSet) -> Self {
        let by_id: std::collections::HashMap<&str, RuleIdx> = new
            .rules()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((r.id.as_str(), RuleIdx(u32::try_from(i).ok()?))))
            .collect();
        RuleRemap {
            map: old
                .rules()
                .iter()
                .map(|r| by_id.get(r.id.as_str()).copied())
                .collect(),
        }
    }

    /// The index in the new set of the rule `idx` named in the old set.
    pub fn get(&self, idx: RuleIdx) -> Option<RuleIdx> {
        self.map
            .get(usize::try_from(idx.0).ok()?)
            .copied()
            .flatten()
    }
}

impl Inventory {
    /// Switches to a new rule set (live reload): every stored rule index is translated by rule
    /// id. Evidence of a rule that is gone keeps its counts without a rule; answered addresses
    /// of a gone rule are forgotten.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        let remap = RuleRemap::new(&self.rules, &rules);
        let mut merged = 0usize;
        for mut host in self.hosts.iter_mut() {
            let evidence = &mut host.evidence;
            for e in evidence.iter_mut() {
                e.key.rule = e.key.rule.and_then(|r| remap.get(r));
            }
            evidence.sort_by_key(|e| e.key);
            let before = evidence.len();
            // Two entries that now have the same key (two rules mapped to one) become one.
            evidence.dedup_by(|later, kept| {
                if later.key == kept.key {
                    kept.stat.merge(&later.stat);
                    true
                } else {
                    false
                }
            });
            merged = merged.saturating_add(before.saturating_sub(evidence.len()));
        }
        self.budget.evidence_entries = self.budget.evidence_entries.saturating_sub(merged);
        self.answered.retain(|_, a| match remap.get(a.rule) {
            Some(r) => {
                a.rule = r;
                true
            }
            None => false,
        });
        let answered = &self.answered;
        self.answered_order.retain(|ip| answered.contains_key(ip));
        self.per_rule = std::mem::take(&mut self.per_rule)
            .into_iter()
            .filter_map(|(r, n)| Some((remap.get(r)?, n)))
            .collect();
        self.rules = rules;
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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::observation::{Endpoint, NameSighting, ObsOrder, PacketContext};

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
}
