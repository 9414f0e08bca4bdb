//! One host: its evidence (counted per kind, rule, name, peer and input), what was learned
//! about it (facts), its MACs and VLANs, all in capped sorted sets; and the inventory-wide
//! budgets every host draws from.

use std::net::IpAddr;

use super::{
    InventoryCounters, NameId, NameTable, MAX_DNS_SERVERS_PER_HOST, MAX_EVIDENCE_ENTRIES,
    MAX_EVIDENCE_PER_HOST, MAX_FACTS, MAX_FACTS_PER_HOST,
};
use crate::observation::{NameSource, NamelessReason};
use crate::proto::update::{UpdateMagic, UpdatePath};
use crate::proto::HostName;
use crate::rules::{Confidence, RuleIdx};
use crate::time::Timestamp;

/// Where an update request or payload came from: what decides whether it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// The request's host matched a Kaspersky rule.
    KasperskyName,
    /// The server address is in Kaspersky's address space (an IP-literal or nameless host).
    KasperskyAddress,
    /// Any other server: it counts only as an update mirror (inventoried, or internal and
    /// learned from the update files it served).
    Server,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::KasperskyName => "kaspersky-name",
            Origin::KasperskyAddress => "kaspersky-address",
            Origin::Server => "server",
        }
    }
}

/// What kind of evidence an entry is: how it was seen. What it is worth (family, product
/// class, whether it supports an install) is worked out from this, the rule and the roles of
/// its peer (`verdict::classify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvidenceKind {
    /// A name seen in traffic from the host: an address lookup (A, AAAA, HTTPS, SVCB, ANY,
    /// CNAME), a TLS/QUIC server name, an HTTP host.
    Name(NameSource),
    /// A DNS lookup of a Kaspersky name for another record type (TXT, MX, …): not a client of
    /// the service. Holds the QTYPE.
    DnsOtherLookup(u16),
    /// A name under `ksc.kaspersky.com` contacted on a Cloud Console agent port.
    CloudConsole,
    /// An HTTP request for an update path.
    UpdatePath(UpdatePath, Origin),
    /// An HTTP response to the host started with a Kaspersky update-file magic.
    UpdatePayload(UpdateMagic, Origin),
    /// A completed Kaspersky Security Center session to the peer, on this TCP port.
    KscSession(u16),
    /// A KSC wake-up (UDP 15000, or a unicast 15001) from the peer.
    KscWakeup,
    /// A KSC shutdown notice (UDP 13000) sent to the peer.
    KscNotice,
    /// A conversation without a name to an address the host (or its resolver) was given for a
    /// Kaspersky name, within the answer's lifetime.
    Correlated(NamelessReason),
    /// A conversation without a name to an address in Kaspersky's address space.
    KasperskyAddress(NamelessReason),
    /// A Kaspersky lookup sent straight to a public resolver (the peer): the products' DNS
    /// fallback.
    PublicResolver,
}

impl EvidenceKind {
    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::Name(source) => source.label(),
            EvidenceKind::DnsOtherLookup(_) => "dns-other-lookup",
            EvidenceKind::CloudConsole => "cloud-console-session",
            EvidenceKind::UpdatePath(..) => "update-path",
            EvidenceKind::UpdatePayload(..) => "update-payload",
            EvidenceKind::KscSession(_) => "ksc-session",
            EvidenceKind::KscWakeup => "ksc-wakeup",
            EvidenceKind::KscNotice => "ksc-shutdown-notice",
            EvidenceKind::Correlated(_) => "dns-correlated-connection",
            EvidenceKind::KasperskyAddress(_) => "kaspersky-address",
            EvidenceKind::PublicResolver => "public-resolver-fallback",
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
    pub(super) fn seen(&mut self, ts: Timestamp) {
        self.count = self.count.saturating_add(1);
        self.first = self.first.min(ts);
        self.last = self.last.max(ts);
    }

    pub(super) fn merge(&mut self, other: &EvidenceStat) {
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

/// Something learned about a host from traffic, with the peer it was learned from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fact {
    /// Completed a KSC session to `server` on `port` (an agent, or a console on 13291/13299).
    KscSessionTo { server: IpAddr, port: u16 },
    /// Accepted a completed KSC session from `client` on `port`.
    KscSessionFrom { client: IpAddr, port: u16 },
    /// Received a KSC wake-up (UDP 15000) from `server`: an agent of it.
    KscWakeupFrom { server: IpAddr },
    /// Sent a KSC wake-up to `agent` (only a server or distribution point does, inside the LAN).
    KscWakeupTo { agent: IpAddr },
    /// Sent a KSC shutdown notice (UDP 13000) to `server`.
    KscNoticeTo { server: IpAddr },
    /// Received a KSC shutdown notice from `agent`.
    KscNoticeFrom { agent: IpAddr },
    /// Sent KSC distribution-point multicast (UDP 15001) to `group`.
    KscMulticast { group: IpAddr },
    /// Contacted the Kaspersky Security Center Cloud Console `name` on an agent port.
    CloudConsole { name: NameId },
    /// Fetched an update path or an update file from `server`, which is neither a Kaspersky
    /// name nor a Kaspersky address: it is this host's mirror if it is one.
    FetchedUpdates { server: IpAddr },
    /// Served a Kaspersky update file (`magic`, KLZF or KLD2) on an update path to `client`,
    /// without a Kaspersky host name.
    ServedUpdate { client: IpAddr, magic: UpdateMagic },
    /// Forwarded `client`'s lookup of a Kaspersky name upstream.
    ForwardedFor { client: IpAddr },
    /// Received Kaspersky lookups from several clients.
    AnsweredClients { clients: usize },
    /// Sent Kaspersky lookups straight to a public resolver (product fallback behaviour).
    QueriedPublicResolver { resolver: IpAddr },
    /// Received a CONNECT or absolute-form request for a Kaspersky name from `client`.
    ProxyFor { client: IpAddr },
    /// Sent a CONNECT or absolute-form request for a Kaspersky name to `proxy`.
    ViaProxy { proxy: IpAddr },
}

impl Fact {
    /// A fact that gives its host a server role (or the makings of one): such a host ranks
    /// with the strongest evidence when the inventory must evict.
    pub fn is_role(&self) -> bool {
        matches!(
            self,
            Fact::KscSessionFrom { .. }
                | Fact::KscWakeupTo { .. }
                | Fact::KscNoticeFrom { .. }
                | Fact::KscMulticast { .. }
                | Fact::ServedUpdate { .. }
                | Fact::ForwardedFor { .. }
                | Fact::AnsweredClients { .. }
                | Fact::ProxyFor { .. }
        )
    }

    /// The peer the fact was learned from, if it has one.
    pub fn peer(&self) -> Option<IpAddr> {
        match *self {
            Fact::KscSessionTo { server, .. }
            | Fact::KscWakeupFrom { server }
            | Fact::KscNoticeTo { server }
            | Fact::FetchedUpdates { server } => Some(server),
            Fact::KscSessionFrom { client, .. }
            | Fact::ServedUpdate { client, .. }
            | Fact::ForwardedFor { client }
            | Fact::ProxyFor { client } => Some(client),
            Fact::KscWakeupTo { agent } | Fact::KscNoticeFrom { agent } => Some(agent),
            Fact::KscMulticast { group } => Some(group),
            Fact::QueriedPublicResolver { resolver } => Some(resolver),
            Fact::ViaProxy { proxy } => Some(proxy),
            Fact::CloudConsole { .. } | Fact::AnsweredClients { .. } => None,
        }
    }
}

/// How strongly a host is held when the inventory must make room: the strongest confidence of
/// its evidence, or [`Tier::Role`] for hosts with a server role. Ordered weakest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Neither evidence nor a role yet.
    #[default]
    Empty,
    Low,
    Medium,
    /// High-confidence evidence, or a server role (KSC server, mirror, resolver, proxy).
    High,
}

impl Tier {
    pub(super) fn of(confidence: Confidence) -> Tier {
        match confidence {
            Confidence::Low => Tier::Low,
            Confidence::Medium => Tier::Medium,
            Confidence::High => Tier::High,
        }
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
    pub(super) macs: Box<[[u8; 6]]>,
    pub(super) vlans: Box<[u16]>,
    /// Sorted by key, searched by bisection.
    pub(super) evidence: Vec<Evidence>,
    pub(super) facts: Box<[Fact]>,
    /// Evidence entries refused by the per-host or the inventory-wide cap.
    pub evidence_dropped: u64,
    /// Distinct clients whose Kaspersky queries this host received (capped).
    pub(super) clients_asking: Box<[IpAddr]>,
    /// DNS servers this host sent Kaspersky lookups to (capped at
    /// [`MAX_DNS_SERVERS_PER_HOST`]): a connection without a name may be tied to an answer one
    /// of them received.
    pub(super) dns_servers: Box<[IpAddr]>,
    /// Where the host stands in the eviction order: its tier and the whole second of
    /// `last_seen` it was filed under.
    pub(super) tier: Tier,
    pub(super) filed_at: u64,
}

/// What inserting into a capped sorted set did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Insert {
    Added,
    Present,
    Full,
}

/// Inserts `value` into the sorted set `set` unless it is there or the set holds `cap` values.
pub(super) fn insert_sorted<T: Ord + Copy>(set: &mut Box<[T]>, value: T, cap: usize) -> Insert {
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
pub(super) enum NameArg<'n> {
    None,
    /// Already in the name table.
    Known(NameId),
    /// From an observation; interned only if a new entry is stored.
    Seen(&'n HostName),
}

/// Inventory-wide budgets shared by all hosts.
#[derive(Default)]
pub(super) struct Budget {
    pub(super) names: NameTable,
    /// Evidence entries stored over all hosts (≤ [`MAX_EVIDENCE_ENTRIES`]).
    pub(super) evidence_entries: usize,
    /// Facts stored over all hosts (≤ [`MAX_FACTS`]).
    pub(super) facts: usize,
}

impl Budget {
    /// Gives back what an evicted host held.
    pub(super) fn release(&mut self, host: &Host) {
        self.evidence_entries = self.evidence_entries.saturating_sub(host.evidence.len());
        self.facts = self.facts.saturating_sub(host.facts.len());
    }
}

impl Host {
    pub(super) fn new(ip: IpAddr, ts: Timestamp) -> Self {
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
            dns_servers: Box::default(),
            tier: Tier::Empty,
            filed_at: ts.secs(),
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
    /// [`super::Inventory::evidence_in_order`] for the order reports use).
    pub fn evidence(&self) -> &[Evidence] {
        &self.evidence
    }

    /// DNS servers this host sent Kaspersky lookups to, sorted.
    pub fn dns_servers(&self) -> &[IpAddr] {
        &self.dns_servers
    }

    pub(super) fn touch(&mut self, ts: Timestamp) {
        self.first_seen = self.first_seen.min(ts);
        self.last_seen = self.last_seen.max(ts);
    }

    pub(super) fn find_evidence(&mut self, key: &EvidenceKey) -> Result<&mut EvidenceStat, usize> {
        match self.evidence.binary_search_by(|e| e.key.cmp(key)) {
            Ok(i) => self.evidence.get_mut(i).map(|e| &mut e.stat).ok_or(i),
            Err(i) => Err(i),
        }
    }

    /// Counts evidence `key` (its `name` is replaced by `name`). A new entry needs room under
    /// both caps; its name is interned only then, so refused evidence takes no table slot.
    pub(super) fn add_evidence(
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
                self.tier = self.tier.max(Tier::of(confidence));
            }
        }
    }

    pub(super) fn add_fact(
        &mut self,
        budget: &mut Budget,
        counters: &mut InventoryCounters,
        fact: Fact,
    ) {
        let cap = if budget.facts >= MAX_FACTS {
            // Only facts already known are accepted (as no-ops).
            0
        } else {
            MAX_FACTS_PER_HOST
        };
        match insert_sorted(&mut self.facts, fact, cap) {
            Insert::Added => {
                budget.facts = budget.facts.saturating_add(1);
                if fact.is_role() {
                    self.tier = Tier::High;
                }
            }
            Insert::Present => {}
            Insert::Full => counters.facts_refused = counters.facts_refused.saturating_add(1),
        }
    }

    /// Remembers a DNS server this host sent a Kaspersky lookup to.
    pub(super) fn add_dns_server(&mut self, server: IpAddr) {
        insert_sorted(&mut self.dns_servers, server, MAX_DNS_SERVERS_PER_HOST);
    }

    /// The strongest confidence among this host's evidence.
    pub fn strongest(&self) -> Option<Confidence> {
        self.evidence.iter().map(|e| e.stat.confidence).max()
    }
}
