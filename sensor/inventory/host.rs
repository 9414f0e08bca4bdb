//! One host: its evidence (counted per rule, name, kind, peer and input), what was learned
//! about it (facts), its MACs and VLANs, all in capped sorted sets; and the inventory-wide
//! budgets every host draws from.

use std::net::IpAddr;

use super::{
    InventoryCounters, NameId, NameTable, MAX_EVIDENCE_ENTRIES, MAX_EVIDENCE_PER_HOST, MAX_FACTS,
    MAX_FACTS_PER_HOST,
};
use crate::observation::{NameSource, NamelessReason};
use crate::proto::update::UpdateMagic;
use crate::proto::HostName;
use crate::rules::{Confidence, RuleIdx};
use crate::time::Timestamp;

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
