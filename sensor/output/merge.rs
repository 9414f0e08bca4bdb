//! Merging saved JSON reports into one, without the captures: `ksensor report merge`.
//!
//! Contract: [`merge`] takes reports read with [`ReportDoc::from_json`] and gives one report
//! of the same layout whose verdicts are decided again ([`decide`]) from the merged evidence
//! and facts, never copied from the inputs. The same reports in any order give the same
//! report, byte for byte: reports are put in a canonical order first and every list is sorted.
//!
//! How things unite:
//! * hosts by address and VLAN set (two entries of one address with different VLAN lists
//!   stay two rows: two sites may reuse an address);
//! * evidence entries by their identity (source, detail, origin, rule, name, peer, input):
//!   counts summed, first/last the earliest/latest, the higher confidence;
//! * learned facts by identity (a resolver's client count: the largest, a lower bound);
//!   MACs, VLANs and DNS servers as sets, under the same caps as a run's;
//! * inputs are listed together (a capture in two reports, by digest, is refused: its
//!   evidence would be counted twice); rule sets must be one unless `allow_mixed_rules`;
//! * counters are summed key by key, caps and event limits are the largest seen.
//!
//! What a merge cannot recompute: cross-file correlation. A connection without a name is tied
//! to a Kaspersky name by a DNS answer seen earlier in the same run; a report keeps the
//! correlations it made, not the answers, so an answer in one report and the connection in
//! another stay apart ([`CROSS_FILE_NOTE`], written into every merged report). Likewise a host
//! that no input reported (nothing worth reporting in any one of them) is not in the merge,
//! and resolver and proxy roles that need several clients are learned per run.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use super::describe::{magic_label, qtype_label};
use super::model::{
    AssetDoc, EvidenceDoc, FactDoc, HostDoc, InputDoc, MergeDoc, MergedReportDoc, PeerDoc,
    ReportDoc, ReportHead, RuleSetDoc, SensorDoc, TimeRangeDoc, VerdictContextDoc, REPORT_SCHEMA,
};
use super::report::{fact_json, manager_json, role_labels};
use crate::inventory::assets::Role;
use crate::inventory::verdict::{
    decide, is_mirror, managers_of, EvidenceSummary, Family, HostSummary, LearnedRoles, Peers,
};
use crate::inventory::{
    EvidenceKind, Fact, NameId, NameTable, Origin, MAX_DNS_SERVERS_PER_HOST, MAX_EVIDENCE_PER_HOST,
    MAX_FACTS_PER_HOST, MAX_MACS_PER_HOST, MAX_VLANS_PER_HOST,
};
use crate::observation::{NameSource, NamelessReason};
use crate::proto::update::{UpdateMagic, UpdatePath};
use crate::proto::HostName;
use crate::rules::{Confidence, ProductClass};

/// What every merged report says it could not do.
pub const CROSS_FILE_NOTE: &str = "Verdicts were decided again from the merged evidence. \
Cross-file correlation is not recomputed: a connection without a name is tied to a DNS answer \
only within the run that saw both, so a DNS answer in one report and the connection in another \
stay apart (replay such captures together in one run). Hosts no single report listed, and \
resolver or proxy roles that need several clients within one run, are not recovered.";

/// Why reports could not be merged. Each is one line for the user.
#[derive(Debug, PartialEq, Eq)]
pub enum MergeError {
    /// Nothing to merge.
    NoReports,
    /// The reports were made with different rule sets (their SHA-256s).
    MixedRules(Vec<String>),
    /// One capture (by digest, or by size and first and last MiB) is an input of two reports.
    SameInput { name: String, identity: String },
    /// Two different inputs share a name, so evidence could not say which it came from.
    SameName(String),
    /// A label this sensor does not know (a report from another sensor version).
    Label { what: &'static str, value: String },
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::NoReports => write!(f, "no reports to merge"),
            MergeError::MixedRules(hashes) => write!(
                f,
                "the reports were made with {} different rule sets ({}); verdicts from \
                 different rules do not add up (--allow-mixed-rules merges them anyway)",
                hashes.len(),
                hashes.join(", ")
            ),
            MergeError::SameInput { name, identity } => write!(
                f,
                "capture {name} ({identity}) is an input of two reports; merging them \
                 would count its evidence twice"
            ),
            MergeError::SameName(name) => write!(
                f,
                "two different inputs are both named {name}; evidence names its input, so \
                 replay them under different names"
            ),
            MergeError::Label { what, value } => {
                write!(
                    f,
                    "unknown {what} {value:?} (a report from another ksensor version?)"
                )
            }
        }
    }
}

fn label_err(what: &'static str, value: &str) -> MergeError {
    MergeError::Label {
        what,
        value: value.to_string(),
    }
}

const NAME_SOURCES: [NameSource; 8] = [
    NameSource::DnsQuery,
    NameSource::DnsAnswer,
    NameSource::TlsSni,
    NameSource::TlsSniEchOuter,
    NameSource::QuicSni,
    NameSource::HttpHost,
    NameSource::HttpConnect,
    NameSource::HttpAbsoluteUri,
];
const NAMELESS: [NamelessReason; 5] = [
    NamelessReason::TlsNoSni,
    NamelessReason::TlsEch,
    NamelessReason::OtherProtocol,
    NamelessReason::HttpNoName,
    NamelessReason::NoData,
];
const UPDATE_PATHS: [UpdatePath; 4] = [
    UpdatePath::SignatureBases,
    UpdatePath::Bases,
    UpdatePath::Index,
    UpdatePath::Updater,
];
const MAGICS: [UpdateMagic; 3] = [UpdateMagic::Klzf, UpdateMagic::Kld2, UpdateMagic::Diff];
const ORIGINS: [Origin; 3] = [
    Origin::KasperskyName,
    Origin::KasperskyAddress,
    Origin::Server,
];

fn find<T: Copy>(all: &[T], label: impl Fn(T) -> String, s: &str) -> Option<T> {
    all.iter().copied().find(|v| label(*v) == s)
}

fn ip(what: &'static str, s: &str) -> Result<IpAddr, MergeError> {
    s.parse().map_err(|_| label_err(what, s))
}

/// The evidence kind an entry's `source`, `detail` and `origin` labels name.
fn evidence_kind(e: &EvidenceDoc) -> Result<EvidenceKind, MergeError> {
    let detail = e.detail.as_deref().unwrap_or("");
    let origin = || {
        e.origin
            .as_deref()
            .and_then(|o| find(&ORIGINS, |v| v.label().to_string(), o))
            .ok_or_else(|| label_err("update origin", e.origin.as_deref().unwrap_or("")))
    };
    let nameless = || {
        find(&NAMELESS, |v| v.label().to_string(), detail)
            .ok_or_else(|| label_err("nameless reason", detail))
    };
    if let Some(source) = find(&NAME_SOURCES, |v| v.label().to_string(), &e.source) {
        return Ok(EvidenceKind::Name(source));
    }
    Ok(match e.source.as_str() {
        "dns-other-lookup" => EvidenceKind::DnsOtherLookup(
            // `qtype_label` writes the registered names it knows (all below 258) and `TYPEn`
            // for the rest (RFC 3597 §5).
            match detail.strip_prefix("TYPE").and_then(|n| n.parse().ok()) {
                Some(q) => q,
                None => (0..=257u16)
                    .find(|q| qtype_label(*q) == detail)
                    .ok_or_else(|| label_err("query type", detail))?,
            },
        ),
        "cloud-console-session" => EvidenceKind::CloudConsole,
        "update-path" => EvidenceKind::UpdatePath(
            find(&UPDATE_PATHS, |v| v.label().to_string(), detail)
                .ok_or_else(|| label_err("update path", detail))?,
            origin()?,
        ),
        "update-payload" => EvidenceKind::UpdatePayload(
            find(&MAGICS, |v| magic_label(v).to_string(), detail)
                .ok_or_else(|| label_err("update file", detail))?,
            origin()?,
        ),
        "ksc-session" => {
            EvidenceKind::KscSession(detail.parse().map_err(|_| label_err("KSC port", detail))?)
        }
        "ksc-wakeup" => EvidenceKind::KscWakeup,
        "ksc-shutdown-notice" => EvidenceKind::KscNotice,
        "dns-correlated-connection" => EvidenceKind::Correlated(nameless()?),
        "kaspersky-address" => EvidenceKind::KasperskyAddress(nameless()?),
        "public-resolver-fallback" => EvidenceKind::PublicResolver,
        other => return Err(label_err("evidence source", other)),
    })
}

/// A learned fact back from its JSON (`fact`, `peer`, `port`, `name`; the update file of a
/// served update and the client count of a resolver are only in its sentence).
fn fact(doc: &FactDoc, names: &mut NameTable) -> Result<Fact, MergeError> {
    let peer = || {
        doc.peer
            .as_deref()
            .ok_or_else(|| label_err("fact without a peer", &doc.fact))
            .and_then(|p| ip("fact peer", p))
    };
    let port = || {
        doc.port
            .ok_or_else(|| label_err("fact without a port", &doc.fact))
    };
    Ok(match doc.fact.as_str() {
        "ksc-session-to" => Fact::KscSessionTo {
            server: peer()?,
            port: port()?,
        },
        "ksc-session-from" => Fact::KscSessionFrom {
            client: peer()?,
            port: port()?,
        },
        "ksc-wakeup-from" => Fact::KscWakeupFrom { server: peer()? },
        "ksc-wakeup-to" => Fact::KscWakeupTo { agent: peer()? },
        "ksc-notice-to" => Fact::KscNoticeTo { server: peer()? },
        "ksc-notice-from" => Fact::KscNoticeFrom { agent: peer()? },
        "ksc-multicast" => Fact::KscMulticast { group: peer()? },
        "cloud-console" => {
            let text = doc.name.as_deref().unwrap_or("");
            let name = HostName::parse(text.as_bytes())
                .ok()
                .and_then(|n| names.intern(&n))
                .ok_or_else(|| label_err("Cloud Console name", text))?;
            Fact::CloudConsole { name }
        }
        "fetched-updates-from" => Fact::FetchedUpdates { server: peer()? },
        "served-update" => Fact::ServedUpdate {
            client: peer()?,
            magic: MAGICS
                .iter()
                .copied()
                .find(|m| doc.text.contains(&format!("({})", magic_label(*m))))
                .ok_or_else(|| label_err("served update file", &doc.text))?,
        },
        "forwarded-for" => Fact::ForwardedFor { client: peer()? },
        "answered-clients" => Fact::AnsweredClients {
            clients: doc
                .text
                .split_whitespace()
                .find_map(|w| w.parse().ok())
                .ok_or_else(|| label_err("resolver client count", &doc.text))?,
        },
        "queried-public-resolver" => Fact::QueriedPublicResolver { resolver: peer()? },
        "proxy-for" => Fact::ProxyFor { client: peer()? },
        "via-proxy" => Fact::ViaProxy { proxy: peer()? },
        other => return Err(label_err("learned fact", other)),
    })
}

/// Adds `f` to a fact set: one resolver client count (the largest) per host.
fn add_fact(facts: &mut BTreeSet<Fact>, f: Fact) {
    if let Fact::AnsweredClients { clients } = f {
        let old: Vec<Fact> = facts
            .iter()
            .filter(|o| matches!(o, Fact::AnsweredClients { .. }))
            .copied()
            .collect();
        let mut most = clients;
        for o in old {
            if let Fact::AnsweredClients { clients } = o {
                most = most.max(clients);
            }
            facts.remove(&o);
        }
        facts.insert(Fact::AnsweredClients { clients: most });
    } else {
        facts.insert(f);
    }
}

/// The identity of an evidence entry.
type EvidenceId = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn evidence_id(e: &EvidenceDoc) -> EvidenceId {
    (
        e.source.clone(),
        e.detail.clone(),
        e.origin.clone(),
        e.rule.clone(),
        e.name.clone(),
        e.peer.clone(),
        e.input.clone(),
    )
}

fn min_opt(a: &Option<String>, b: &Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b).clone()),
        (a, b) => a.clone().or_else(|| b.clone()),
    }
}

fn max_opt(a: &Option<String>, b: &Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b).clone()),
        (a, b) => a.clone().or_else(|| b.clone()),
    }
}

fn confidence(label: &str) -> Result<Confidence, MergeError> {
    Confidence::ALL
        .iter()
        .copied()
        .find(|c| c.label() == label)
        .ok_or_else(|| label_err("confidence", label))
}

/// One host being merged.
struct Merging {
    ip: IpAddr,
    vlans: Vec<u16>,
    asset: Option<AssetDoc>,
    internal: bool,
    first_seen: String,
    last_seen: String,
    macs: BTreeSet<String>,
    dns_servers: BTreeSet<IpAddr>,
    evidence: BTreeMap<EvidenceId, EvidenceDoc>,
    facts: BTreeSet<Fact>,
    evidence_dropped: u64,
}

/// Everything merged about the hosts, as [`Peers`] for deciding again.
struct MergedPeers {
    facts: HashMap<IpAddr, BTreeSet<Fact>>,
    roles: HashMap<IpAddr, Role>,
    internal: BTreeSet<IpAddr>,
    names: NameTable,
}

impl Peers for MergedPeers {
    fn asset_role(&self, ip: IpAddr) -> Option<Role> {
        self.roles.get(&ip).copied()
    }
    fn internal_address(&self, ip: IpAddr) -> bool {
        self.internal.contains(&ip)
    }
    fn learned(&self, ip: IpAddr) -> LearnedRoles {
        self.facts.get(&ip).map_or_else(LearnedRoles::default, |f| {
            LearnedRoles::of(&f.iter().copied().collect::<Vec<_>>())
        })
    }
    fn name(&self, id: NameId) -> Option<Arc<str>> {
        self.names.shared(id)
    }
}

fn role(label: &str) -> Result<Role, MergeError> {
    Role::ALL
        .iter()
        .copied()
        .find(|r| r.label() == label)
        .ok_or_else(|| label_err("inventory role", label))
}

/// Sums counters key by key (numbers add, objects merge); under `limits` the largest value
/// wins (a configured limit, not a count).
fn sum_counts(into: &mut Value, from: &Value, key: &str) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) => sum_counts(slot, v, if key == "limits" { key } else { k }),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot @ Value::Number(_), Value::Number(b)) => {
            let (x, y) = (slot.as_u64().unwrap_or(0), b.as_u64().unwrap_or(0));
            *slot = Value::from(if key == "limits" {
                x.max(y)
            } else {
                x.saturating_add(y)
            });
        }
        _ => {}
    }
}

/// Merges saved reports (see the module documentation).
pub fn merge(
    mut reports: Vec<ReportDoc>,
    allow_mixed_rules: bool,
) -> Result<ReportDoc, MergeError> {
    if reports.is_empty() {
        return Err(MergeError::NoReports);
    }
    // A canonical order, whatever order the files were given in.
    let mut keyed: Vec<(String, ReportDoc)> =
        reports.drain(..).map(|r| (r.to_json_text(), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let reports: Vec<ReportDoc> = keyed.into_iter().map(|(_, r)| r).collect();

    // Rule sets.
    let mut rule_sets: BTreeMap<String, RuleSetDoc> = BTreeMap::new();
    for r in &reports {
        let e = rule_sets
            .entry(r.head.rules.sha256.clone())
            .or_insert(RuleSetDoc {
                reports: 0,
                rule_count: r.head.rules.rule_count,
                sha256: r.head.rules.sha256.clone(),
            });
        e.reports += 1;
    }
    if rule_sets.len() > 1 && !allow_mixed_rules {
        return Err(MergeError::MixedRules(rule_sets.keys().cloned().collect()));
    }

    // Inputs.
    let mut inputs: Vec<InputDoc> = Vec::new();
    for r in &reports {
        for i in &r.head.inputs {
            // The same bytes: the same whole-file digest, or (without one) the same size and
            // first and last MiB.
            if let Some(identity) = i.identity() {
                if inputs
                    .iter()
                    .any(|o| o.identity().as_ref() == Some(&identity))
                {
                    return Err(MergeError::SameInput {
                        name: i.name.clone(),
                        identity,
                    });
                }
            }
            if inputs.iter().any(|o| o.name == i.name) {
                return Err(MergeError::SameName(i.name.clone()));
            }
            inputs.push(i.clone());
        }
    }
    inputs.sort_by(|a, b| (&a.name, &a.sha256).cmp(&(&b.name, &b.sha256)));
    let input_index: HashMap<String, usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.clone(), i))
        .collect();

    // Hosts and peers.
    let mut names = NameTable::new();
    let mut hosts: BTreeMap<(IpAddr, Vec<u16>), Merging> = BTreeMap::new();
    let mut peer_docs: BTreeMap<IpAddr, (bool, Option<String>, BTreeSet<Fact>)> = BTreeMap::new();
    let mut names_managers = false;
    for r in &reports {
        names_managers |= r.head.verdict_context.inventory_names_managers;
        for p in &r.head.verdict_context.peers {
            let addr = ip("peer address", &p.address)?;
            let entry = peer_docs
                .entry(addr)
                .or_insert((false, None, BTreeSet::new()));
            entry.0 |= p.internal;
            entry.1 = entry.1.take().or_else(|| p.inventory_role.clone());
            for f in &p.learned {
                add_fact(&mut entry.2, fact(f, &mut names)?);
            }
        }
        for h in &r.hosts {
            let addr = ip("host address", &h.ip)?;
            let m = hosts
                .entry((addr, h.vlans.clone()))
                .or_insert_with(|| Merging {
                    ip: addr,
                    vlans: h.vlans.clone(),
                    asset: None,
                    internal: false,
                    first_seen: h.first_seen.clone(),
                    last_seen: h.last_seen.clone(),
                    macs: BTreeSet::new(),
                    dns_servers: BTreeSet::new(),
                    evidence: BTreeMap::new(),
                    facts: BTreeSet::new(),
                    evidence_dropped: 0,
                });
            m.asset = m.asset.take().or_else(|| h.asset.clone());
            m.internal |= h.internal;
            m.first_seen = m.first_seen.clone().min(h.first_seen.clone());
            m.last_seen = m.last_seen.clone().max(h.last_seen.clone());
            for mac in &h.macs {
                if m.macs.len() < MAX_MACS_PER_HOST || m.macs.contains(mac) {
                    m.macs.insert(mac.clone());
                }
            }
            for s in &h.dns_servers {
                let s = ip("DNS server", s)?;
                if m.dns_servers.len() < MAX_DNS_SERVERS_PER_HOST {
                    m.dns_servers.insert(s);
                }
            }
            m.evidence_dropped = m.evidence_dropped.saturating_add(h.evidence_dropped_by_cap);
            for e in &h.evidence {
                let id = evidence_id(e);
                if let Some(old) = m.evidence.get_mut(&id) {
                    old.count = old.count.saturating_add(e.count);
                    old.first = min_opt(&old.first, &e.first);
                    old.last = max_opt(&old.last, &e.last);
                    if confidence(&e.confidence)? > confidence(&old.confidence)? {
                        old.confidence = e.confidence.clone();
                    }
                } else if m.evidence.len() < MAX_EVIDENCE_PER_HOST {
                    m.evidence.insert(id, e.clone());
                } else {
                    m.evidence_dropped = m.evidence_dropped.saturating_add(1);
                }
            }
            for f in &h.learned {
                let f = fact(f, &mut names)?;
                if m.facts.len() < MAX_FACTS_PER_HOST || m.facts.contains(&f) {
                    add_fact(&mut m.facts, f);
                }
            }
        }
    }

    let mut peers = MergedPeers {
        facts: HashMap::new(),
        roles: HashMap::new(),
        internal: BTreeSet::new(),
        names,
    };
    for (addr, (internal, inv_role, facts)) in &peer_docs {
        let slot = peers.facts.entry(*addr).or_default();
        for f in facts {
            add_fact(slot, *f);
        }
        if *internal {
            peers.internal.insert(*addr);
        }
        if let Some(r) = inv_role {
            peers.roles.entry(*addr).or_insert(role(r)?);
        }
    }
    for m in hosts.values() {
        let slot = peers.facts.entry(m.ip).or_default();
        for f in &m.facts {
            add_fact(slot, *f);
        }
        if m.internal {
            peers.internal.insert(m.ip);
        }
        if let Some(r) = m.asset.as_ref().and_then(|a| a.role.as_deref()) {
            peers.roles.insert(m.ip, role(r)?);
        }
    }

    // Decide every host again.
    let mut docs: Vec<(crate::inventory::Verdict, IpAddr, Vec<u16>, HostDoc)> = Vec::new();
    for m in hosts.values() {
        let facts: Vec<Fact> = m.facts.iter().copied().collect();
        let roles = LearnedRoles::of(&facts);
        let mut evidence: Vec<(EvidenceKind, EvidenceDoc)> = Vec::new();
        for e in m.evidence.values() {
            evidence.push((evidence_kind(e)?, e.clone()));
        }
        let mut summaries: Vec<EvidenceSummary> = Vec::new();
        for (kind, e) in &mut evidence {
            let peer = e
                .peer
                .as_deref()
                .map(|p| ip("evidence peer", p))
                .transpose()?;
            // An update from a server that is neither a Kaspersky name nor address counts
            // only if that server is a mirror: the one classification that depends on other
            // hosts, so it is made again from the merged view.
            if let EvidenceKind::UpdatePath(_, Origin::Server)
            | EvidenceKind::UpdatePayload(_, Origin::Server) = kind
            {
                let mirror = peer.is_some_and(|p| is_mirror(&peers, p));
                e.install = mirror;
                e.direct = mirror;
            }
            let family_label = e.family.as_deref().unwrap_or("");
            summaries.push(EvidenceSummary {
                kind: *kind,
                family: Family::ALL
                    .iter()
                    .copied()
                    .find(|f| f.label() == family_label)
                    .ok_or_else(|| label_err("evidence family", family_label))?,
                product: ProductClass::from_label(e.product.as_deref().unwrap_or("")).ok_or_else(
                    || label_err("product class", e.product.as_deref().unwrap_or("")),
                )?,
                confidence: confidence(&e.confidence)?,
                install: e.install,
                direct: e.direct,
                name: e.name.as_deref().map(Arc::from),
                peer,
                count: e.count,
            });
        }
        let summary = HostSummary {
            ip: m.ip,
            internal: m.internal || roles.wakes_agents,
            asset_role: m
                .asset
                .as_ref()
                .and_then(|a| a.role.as_deref())
                .map(role)
                .transpose()?,
            inventory_names_managers: names_managers,
            roles,
            evidence: summaries,
            managers: managers_of(&facts, &peers),
        };
        let Some(decision) = decide(&summary) else {
            continue;
        };
        // Report order: kind, rule id, name (shortest first, then bytes), peer, input.
        let mut ordered: Vec<(EvidenceKind, EvidenceDoc)> = evidence;
        let mut keyed: Vec<_> = Vec::with_capacity(ordered.len());
        for (kind, e) in ordered.drain(..) {
            let name = e.name.clone().unwrap_or_default();
            let peer = e
                .peer
                .as_deref()
                .map(|p| ip("evidence peer", p))
                .transpose()?;
            let input = e.input.as_ref().and_then(|i| input_index.get(i)).copied();
            keyed.push((
                (
                    kind,
                    e.rule.clone(),
                    e.name.is_some(),
                    name.len(),
                    name,
                    peer,
                    input,
                ),
                e,
            ));
        }
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let evidence: Vec<EvidenceDoc> = keyed.into_iter().map(|(_, e)| e).collect();
        let mut rules: BTreeMap<String, u64> = BTreeMap::new();
        let mut categories: BTreeSet<String> = BTreeSet::new();
        for e in &evidence {
            if let Some(r) = &e.rule {
                let n = rules.entry(r.clone()).or_insert(0);
                *n = n.saturating_add(e.count);
            }
            if let Some(c) = &e.category {
                categories.insert(c.clone());
            }
        }
        let managed_by: Vec<_> = decision
            .managed_by
            .iter()
            .map(|mg| serde_json::from_value(manager_json(mg)))
            .collect::<Result<_, _>>()
            .map_err(|e| label_err("manager", &e.to_string()))?;
        let learned: Vec<FactDoc> = facts
            .iter()
            .map(|f| serde_json::from_value(fact_json(f, &peers.names)))
            .collect::<Result<_, _>>()
            .map_err(|e| label_err("fact", &e.to_string()))?;
        let doc = HostDoc {
            asset: m.asset.clone(),
            categories: categories.into_iter().collect(),
            certainty: decision.certainty.map(|c| c.label().to_string()),
            dns_servers: m.dns_servers.iter().map(|s| s.to_string()).collect(),
            evidence,
            evidence_dropped_by_cap: m.evidence_dropped,
            first_seen: m.first_seen.clone(),
            internal: summary.internal,
            ip: m.ip.to_string(),
            last_seen: m.last_seen.clone(),
            learned,
            macs: m.macs.iter().cloned().collect(),
            managed_by,
            product: decision.product.map(|p| p.label().to_string()),
            reason: super::describe::reason(&summary, &decision, &facts),
            roles: role_labels(&summary.roles)
                .into_iter()
                .map(String::from)
                .collect(),
            rules,
            verdict: decision.verdict.label().to_string(),
            vlans: m.vlans.iter().copied().take(MAX_VLANS_PER_HOST).collect(),
        };
        docs.push((decision.verdict, m.ip, m.vlans.clone(), doc));
    }
    docs.sort_by(|a, b| (a.0, a.1, &a.2).cmp(&(b.0, b.1, &b.2)));
    let hosts_out: Vec<HostDoc> = docs.into_iter().map(|(.., d)| d).collect();

    // Peers the merged hosts depend on that are not reported themselves.
    let reported: BTreeSet<IpAddr> = hosts_out.iter().filter_map(|h| h.ip.parse().ok()).collect();
    let mut wanted: BTreeSet<IpAddr> = BTreeSet::new();
    for h in &hosts_out {
        for f in &h.learned {
            if matches!(
                f.fact.as_str(),
                "ksc-session-to" | "ksc-wakeup-from" | "ksc-notice-to" | "fetched-updates-from"
            ) {
                wanted.extend(f.peer.as_deref().and_then(|p| p.parse::<IpAddr>().ok()));
            }
        }
        for e in &h.evidence {
            if e.origin.as_deref() == Some(Origin::Server.label()) {
                wanted.extend(e.peer.as_deref().and_then(|p| p.parse::<IpAddr>().ok()));
            }
        }
    }
    let mut peers_out: Vec<PeerDoc> = Vec::new();
    for addr in wanted.difference(&reported) {
        let facts = peers.facts.get(addr).cloned().unwrap_or_default();
        let learned: Vec<FactDoc> = facts
            .iter()
            .map(|f| serde_json::from_value(fact_json(f, &peers.names)))
            .collect::<Result<_, _>>()
            .map_err(|e| label_err("fact", &e.to_string()))?;
        peers_out.push(PeerDoc {
            address: addr.to_string(),
            internal: peers.internal.contains(addr),
            inventory_role: peers.roles.get(addr).map(|r| r.label().to_string()),
            learned,
        });
    }

    // Head.
    let mut caps: BTreeMap<String, u64> = BTreeMap::new();
    let mut counters = Value::Object(serde_json::Map::new());
    let mut events: Option<Value> = None;
    let mut first: Option<String> = None;
    let mut last: Option<String> = None;
    let mut merged: Vec<MergedReportDoc> = Vec::new();
    for r in &reports {
        for (k, v) in &r.head.caps {
            let slot = caps.entry(k.clone()).or_insert(0);
            *slot = (*slot).max(*v);
        }
        sum_counts(&mut counters, &r.head.counters, "");
        if let Some(e) = &r.head.events {
            match &mut events {
                Some(into) => sum_counts(into, e, ""),
                None => events = Some(e.clone()),
            }
        }
        first = min_opt(&first, &r.head.time_range.first);
        last = max_opt(&last, &r.head.time_range.last);
        merged.push(MergedReportDoc {
            inputs: r.head.inputs.iter().map(|i| i.name.clone()).collect(),
            rules_sha256: r.head.rules.sha256.clone(),
            sensor_version: r.head.sensor.version.clone(),
        });
    }
    merged.sort_by(|a, b| {
        a.inputs
            .cmp(&b.inputs)
            .then(a.rules_sha256.cmp(&b.rules_sha256))
    });
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    for h in &hosts_out {
        *verdicts.entry(h.verdict.clone()).or_insert(0) += 1;
    }
    // One rule set, or with --allow-mixed-rules the one with the smallest hash (all are
    // listed under `merge.rule_sets`).
    let rules = rule_sets
        .keys()
        .next()
        .and_then(|sha| reports.iter().find(|r| &r.head.rules.sha256 == sha))
        .map(|r| r.head.rules.clone())
        .ok_or(MergeError::NoReports)?;
    let head = ReportHead {
        caps,
        counters,
        events,
        inputs,
        merge: Some(MergeDoc {
            note: CROSS_FILE_NOTE.to_string(),
            reports: merged,
            rule_sets: rule_sets.into_values().collect(),
        }),
        rules,
        sensor: SensorDoc {
            name: "ksensor".to_string(),
            report_schema: REPORT_SCHEMA,
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        time_range: TimeRangeDoc { first, last },
        verdict_context: VerdictContextDoc {
            inventory_names_managers: names_managers,
            peers: peers_out,
        },
        verdicts,
    };
    Ok(ReportDoc {
        head,
        hosts: hosts_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> ReportDoc {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(format!("{name}.report.json"));
        let text = std::fs::read_to_string(&path).expect("golden");
        ReportDoc::from_json(text.as_bytes()).expect("report")
    }

    /// Merging one report with nothing else decides every host again and gives the same
    /// hosts: every evidence label and fact parses back, and `decide` over the merged view
    /// agrees with the run's inventory.
    #[test]
    fn a_report_merged_alone_keeps_its_hosts() {
        for name in [
            "staged-enterprise.pcap",
            "staged-network.pcap",
            "dns-udp.pcap",
        ] {
            let doc = golden(name);
            let merged = merge(vec![doc.clone()], false).expect("merge");
            assert_eq!(merged.hosts, doc.hosts, "{name}");
            assert_eq!(merged.head.verdicts, doc.head.verdicts, "{name}");
            assert_eq!(
                merged.head.verdict_context, doc.head.verdict_context,
                "{name}"
            );
            assert_eq!(merged.head.counters, doc.head.counters, "{name}");
        }
    }

    #[test]
    fn the_same_capture_twice_and_mixed_rules_are_refused() {
        let doc = golden("dns-udp.pcap");
        assert!(matches!(
            merge(vec![doc.clone(), doc.clone()], false),
            Err(MergeError::SameInput { .. })
        ));
        let mut other = golden("tls-sni.pcap");
        other.head.rules.sha256 = "0".repeat(64);
        assert!(matches!(
            merge(vec![doc.clone(), other.clone()], false),
            Err(MergeError::MixedRules(_))
        ));
        let merged = merge(vec![doc, other], true).expect("allowed");
        assert_eq!(merged.head.merge.map(|m| m.rule_sets.len()), Some(2));
    }

    /// Verdicts, reasons and the rest of the decision come from `decide`, not from the input:
    /// a report whose decisions were overwritten merges into the true ones.
    #[test]
    fn verdicts_are_decided_again_not_copied() {
        let mut doc = golden("staged-enterprise.pcap");
        for h in &mut doc.hosts {
            h.verdict = "website-only".to_string();
            h.reason = "copied".to_string();
        }
        let merged = merge(vec![doc], false).expect("merge");
        let want = golden("staged-enterprise.pcap");
        assert_eq!(merged.hosts, want.hosts);
    }
}
