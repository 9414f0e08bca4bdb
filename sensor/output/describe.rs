//! Report and event wording: a sentence per learned fact, a label per update-file magic, and
//! the one plain reason sentence per reported host (what was seen, why this verdict, product,
//! certainty). Kept here so that the inventory holds data and the output stage words it.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::inventory::assets::Role;
use crate::inventory::names::NameTable;
use crate::inventory::verdict::{Decision, EvidenceSummary, HostSummary, Manager, ManagerLink};
use crate::inventory::{EvidenceKind, Fact, Family, Origin, Product, Verdict};
use crate::observation::{NameSource, KSC_CONSOLE_PORTS};
use crate::proto::update::{UpdateMagic, UpdatePath};

/// Evidence items a reason sentence lists before "and N more".
const REASON_ITEMS: usize = 4;

/// The sentence a report gives for a learned fact.
pub fn describe_fact(fact: &Fact, names: &NameTable) -> String {
    match *fact {
        Fact::KscSessionTo { server, port } if KSC_CONSOLE_PORTS.contains(&port) => {
            format!(
                "completed Kaspersky Security Center console sessions with {server} on port {port}"
            )
        }
        Fact::KscSessionTo { server, port } => {
            format!(
                "completed Kaspersky Security Center agent sessions with {server} on port {port}"
            )
        }
        Fact::KscSessionFrom { client, port } => {
            format!(
                "accepted completed Kaspersky Security Center sessions (port {port}) from {client}"
            )
        }
        Fact::KscWakeupFrom { server } => {
            format!("received Kaspersky Security Center wake-ups (UDP 15000) from {server}")
        }
        Fact::KscWakeupTo { agent } => {
            format!("sent Kaspersky Security Center wake-ups (UDP 15000) to agent {agent}")
        }
        Fact::KscNoticeTo { server } => {
            format!("sent Kaspersky Security Center shutdown notices (UDP 13000) to {server}")
        }
        Fact::KscNoticeFrom { agent } => {
            format!("received Kaspersky Security Center shutdown notices (UDP 13000) from {agent}")
        }
        Fact::KscMulticast { group } => {
            format!("sent distribution-point multicast (UDP 15001) to group {group}")
        }
        Fact::CloudConsole { name } => format!(
            "talks to the Kaspersky Security Center Cloud Console {} on an agent port",
            names.name(name).unwrap_or("?")
        ),
        Fact::FetchedUpdates { server } => {
            format!("fetched Kaspersky update paths or files from {server}")
        }
        Fact::ServedUpdate { client, magic } => {
            format!(
                "served a Kaspersky update file ({}) on an update path over HTTP to {client}",
                magic_label(magic)
            )
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
        Fact::ProxyFor { client } => {
            format!("relayed {client}'s CONNECT or absolute-form request for a Kaspersky name")
        }
        Fact::ViaProxy { proxy } => {
            format!("sent CONNECT or absolute-form requests for Kaspersky names to proxy {proxy}")
        }
    }
}

/// A stable machine label per fact kind (JSON `fact`).
pub fn fact_label(fact: &Fact) -> &'static str {
    match fact {
        Fact::KscSessionTo { .. } => "ksc-session-to",
        Fact::KscSessionFrom { .. } => "ksc-session-from",
        Fact::KscWakeupFrom { .. } => "ksc-wakeup-from",
        Fact::KscWakeupTo { .. } => "ksc-wakeup-to",
        Fact::KscNoticeTo { .. } => "ksc-notice-to",
        Fact::KscNoticeFrom { .. } => "ksc-notice-from",
        Fact::KscMulticast { .. } => "ksc-multicast",
        Fact::CloudConsole { .. } => "cloud-console",
        Fact::FetchedUpdates { .. } => "fetched-updates-from",
        Fact::ServedUpdate { .. } => "served-update",
        Fact::ForwardedFor { .. } => "forwarded-for",
        Fact::AnsweredClients { .. } => "answered-clients",
        Fact::QueriedPublicResolver { .. } => "queried-public-resolver",
        Fact::ProxyFor { .. } => "proxy-for",
        Fact::ViaProxy { .. } => "via-proxy",
    }
}

/// How an update file's magic is written in events and reports: the bytes themselves.
pub fn magic_label(magic: UpdateMagic) -> &'static str {
    match magic {
        UpdateMagic::Klzf => "KLZF",
        UpdateMagic::Kld2 => "KLD2",
        UpdateMagic::Diff => "DIFF",
    }
}

/// The usual name of a DNS query type (RFC 1035 §3.2.2 and later registrations), or its
/// number.
pub fn qtype_label(qtype: u16) -> String {
    let known = match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        255 => "ANY",
        257 => "CAA",
        _ => return format!("TYPE{qtype}"),
    };
    known.to_string()
}

/// What an evidence entry's `detail` says: why a connection had no name, the update file or
/// path kind, the query type, the KSC port.
pub fn evidence_detail(kind: EvidenceKind) -> Option<String> {
    match kind {
        EvidenceKind::Correlated(reason) | EvidenceKind::KasperskyAddress(reason) => {
            Some(reason.label().to_string())
        }
        EvidenceKind::UpdatePayload(magic, _) => Some(magic_label(magic).to_string()),
        EvidenceKind::UpdatePath(path, _) => Some(path.label().to_string()),
        EvidenceKind::DnsOtherLookup(q) => Some(qtype_label(q)),
        EvidenceKind::KscSession(port) => Some(port.to_string()),
        _ => None,
    }
}

/// The coarse kind of an evidence entry (JSON `kind`): the protocol of a name, or what else.
pub fn evidence_group(kind: EvidenceKind) -> &'static str {
    match kind {
        EvidenceKind::Name(source) => source.kind().label(),
        EvidenceKind::DnsOtherLookup(_) | EvidenceKind::PublicResolver => "dns",
        EvidenceKind::UpdatePath(..) => "http",
        EvidenceKind::UpdatePayload(..) => "update-payload",
        EvidenceKind::CloudConsole
        | EvidenceKind::KscSession(_)
        | EvidenceKind::KscWakeup
        | EvidenceKind::KscNotice => "ksc",
        EvidenceKind::Correlated(_) => "correlated",
        EvidenceKind::KasperskyAddress(_) => "address",
    }
}

/// The origin label of an update entry, if it is one.
pub fn evidence_origin(kind: EvidenceKind) -> Option<&'static str> {
    match kind {
        EvidenceKind::UpdatePath(_, origin) | EvidenceKind::UpdatePayload(_, origin) => {
            Some(origin.label())
        }
        _ => None,
    }
}

/// How a manager is named in a sentence.
fn manager_phrase(m: &Manager, inventory_names_managers: bool) -> String {
    if let Some(name) = &m.cloud_console {
        return format!("the Kaspersky Security Center Cloud Console ({name})");
    }
    let Some(address) = m.address else {
        return "an unknown manager".to_string();
    };
    let what = match (m.asset_role, m.learned, m.link) {
        (Some(Role::DistributionPoint), ..) | (_, Some(Verdict::DistributionPoint), _) => {
            "distribution point"
        }
        (Some(Role::UpdateMirror), ..) | (_, _, ManagerLink::UpdateMirror) => "update mirror",
        _ => "KSC server",
    };
    let mut phrase = format!("{what} {address}");
    if !m.internal && m.asset_role.is_none() {
        phrase.push_str(" (outside our networks)");
    } else if inventory_names_managers && !m.asset_role.is_some_and(Role::manages) {
        phrase.push_str(", which is not in the inventory");
    }
    phrase
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn name_or_peer(e: &EvidenceSummary) -> String {
    match (&e.name, e.peer) {
        (Some(name), _) => name.to_string(),
        (None, Some(peer)) => peer.to_string(),
        (None, None) => "an unnamed server".to_string(),
    }
}

/// One evidence entry as a phrase ("TLS to s03.upd.kaspersky.com").
fn evidence_phrase(e: &EvidenceSummary) -> String {
    let name = name_or_peer(e);
    let peer = e.peer.map_or_else(|| "?".to_string(), |p| p.to_string());
    match e.kind {
        EvidenceKind::Name(NameSource::DnsQuery | NameSource::DnsAnswer) => {
            if e.family == Family::InjectedScript {
                format!("looked up the web-protection script name {name}")
            } else {
                format!("looked up {name}")
            }
        }
        EvidenceKind::Name(NameSource::DnsUpdate) => format!("sent a DNS update naming {name}"),
        EvidenceKind::Name(NameSource::DnsRecord) => format!("received a DNS record of {name}"),
        EvidenceKind::Name(NameSource::TlsSni | NameSource::TlsSniEchOuter) => {
            format!("TLS to {name}")
        }
        EvidenceKind::Name(NameSource::QuicSni) => format!("QUIC to {name}"),
        EvidenceKind::Name(NameSource::HttpHost) => format!("HTTP to {name}"),
        EvidenceKind::Name(NameSource::HttpConnect) => {
            format!("CONNECT to {name} through a proxy")
        }
        EvidenceKind::Name(NameSource::HttpAbsoluteUri) => {
            format!("fetched http://{name}/ through a proxy")
        }
        EvidenceKind::DnsOtherLookup(q) => format!("{} lookup of {name}", qtype_label(q)),
        EvidenceKind::CloudConsole => format!("agent session with the Cloud Console {name}"),
        EvidenceKind::UpdatePath(path, origin) => {
            let what = match path {
                UpdatePath::SignatureBases => "signature bases",
                UpdatePath::Bases => "update bases",
                UpdatePath::Index => "the update index",
                UpdatePath::Updater => "the updater index",
            };
            format!(
                "requested {what} from {}",
                origin_phrase(origin, &name, &peer)
            )
        }
        EvidenceKind::UpdatePayload(magic, origin) => format!(
            "received a {} update file from {}",
            magic_label(magic),
            origin_phrase(origin, &name, &peer)
        ),
        EvidenceKind::KscSession(port) => {
            format!("completed KSC agent sessions with {peer} (port {port})")
        }
        EvidenceKind::KscWakeup => format!("received KSC wake-ups from {peer}"),
        EvidenceKind::KscNotice => format!("sent KSC shutdown notices to {peer}"),
        EvidenceKind::Correlated(_) => {
            format!("a connection without a name to {peer}, an address it was given for {name}")
        }
        EvidenceKind::KasperskyAddress(_) => {
            format!("a connection without a name to {peer} in Kaspersky's address space")
        }
        EvidenceKind::PublicResolver => {
            format!("sent Kaspersky lookups straight to public resolver {peer}")
        }
    }
}

fn origin_phrase(origin: Origin, name: &str, peer: &str) -> String {
    match origin {
        Origin::KasperskyName => name.to_string(),
        Origin::KasperskyAddress => format!("{peer} in Kaspersky's address space"),
        Origin::Server => format!("mirror {peer}"),
    }
}

/// Up to [`REASON_ITEMS`] distinct phrases of `entries`, strongest first, and how many more.
fn phrases<'e>(entries: impl Iterator<Item = &'e EvidenceSummary>) -> (Vec<String>, usize) {
    let mut sorted: Vec<&EvidenceSummary> = entries.collect();
    sorted.sort_by(|a, b| {
        (b.direct, b.confidence, rank(a.family), a.kind)
            .cmp(&(a.direct, a.confidence, rank(b.family), b.kind))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut out: Vec<String> = Vec::new();
    for e in sorted {
        let p = evidence_phrase(e);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    let more = out.len().saturating_sub(REASON_ITEMS);
    out.truncate(REASON_ITEMS);
    (out, more)
}

/// Which families a reason names first: those that tell the most about the product and who
/// manages it.
fn rank(family: Family) -> u8 {
    match family {
        Family::Management => 0,
        Family::KscCloud => 1,
        Family::InjectedScript => 2,
        Family::Update => 3,
        Family::KsnCloud => 4,
        Family::Activation => 5,
        _ => 6,
    }
}

fn seen(entries: &[&EvidenceSummary]) -> String {
    let (items, more) = phrases(entries.iter().copied());
    let mut s = list(&items);
    if more > 0 {
        let _ = write!(s, " (and {more} more)");
    }
    s
}

fn product_phrase(product: Option<Product>) -> &'static str {
    match product {
        Some(Product::Antivirus) => "Kaspersky antivirus",
        Some(Product::Kaspersky) => {
            "A Kaspersky product whose traffic the antivirus, VPN, Password Manager and Safe Kids share"
        }
        Some(Product::Oem) => "The Kaspersky engine inside another vendor's product (OEM)",
        None => "A Kaspersky product",
    }
}

/// Distinct peers of the facts `pick` selects.
fn peers(facts: &[Fact], pick: impl Fn(&Fact) -> Option<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = facts.iter().filter_map(pick).collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn count_phrase(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The role part of a reason: what the host does for others.
fn role_reason(verdict: Verdict, s: &HostSummary, d: &Decision, facts: &[Fact]) -> String {
    let listed = s
        .asset_role
        .map(|r| format!(" (listed in the inventory as {})", r.label()))
        .unwrap_or_default();
    match verdict {
        Verdict::KscServer => {
            let agents = peers(facts, |f| match *f {
                Fact::KscSessionFrom { client, port } if !KSC_CONSOLE_PORTS.contains(&port) => {
                    Some(client)
                }
                _ => None,
            });
            let consoles = peers(facts, |f| match *f {
                Fact::KscSessionFrom { client, port } if KSC_CONSOLE_PORTS.contains(&port) => {
                    Some(client)
                }
                _ => None,
            });
            let notices = peers(facts, |f| match *f {
                Fact::KscNoticeFrom { agent } => Some(agent),
                _ => None,
            });
            let mut parts = Vec::new();
            if !agents.is_empty() {
                parts.push(format!(
                    "{} completed agent sessions with it",
                    count_phrase(agents.len(), "agent", "agents")
                ));
            }
            if !consoles.is_empty() {
                parts.push(format!(
                    "{} connected to it",
                    count_phrase(consoles.len(), "console", "consoles")
                ));
            }
            if !notices.is_empty() {
                parts.push(format!(
                    "{} sent it shutdown notices",
                    count_phrase(notices.len(), "agent", "agents")
                ));
            }
            if parts.is_empty() {
                format!("Kaspersky Security Center Administration Server{listed}.")
            } else {
                format!(
                    "Kaspersky Security Center Administration Server{listed}: {}.",
                    list(&parts)
                )
            }
        }
        Verdict::DistributionPoint => {
            let agents = peers(facts, |f| match *f {
                Fact::KscSessionFrom { client, .. } => Some(client),
                _ => None,
            });
            let groups = peers(facts, |f| match *f {
                Fact::KscMulticast { group } => Some(group),
                _ => None,
            });
            let mut parts = Vec::new();
            if !agents.is_empty() {
                parts.push(format!(
                    "accepted agent sessions from {}",
                    count_phrase(agents.len(), "agent", "agents")
                ));
            }
            if !groups.is_empty() {
                let g: Vec<String> = groups.iter().map(IpAddr::to_string).collect();
                parts.push(format!("multicast to agents on UDP 15001 ({})", list(&g)));
            }
            let upstream: Vec<String> = d
                .managed_by
                .iter()
                .map(|m| manager_phrase(m, false))
                .collect();
            if !upstream.is_empty() {
                parts.push(format!("is itself an agent of {}", list(&upstream)));
            }
            if parts.is_empty() {
                format!("Kaspersky Security Center distribution point{listed}.")
            } else {
                format!(
                    "Kaspersky Security Center distribution point{listed}: {}.",
                    list(&parts)
                )
            }
        }
        Verdict::UpdateMirror => {
            let clients = peers(facts, |f| match *f {
                Fact::ServedUpdate { client, .. } => Some(client),
                _ => None,
            });
            if clients.is_empty() {
                format!("Kaspersky update mirror{listed}.")
            } else {
                format!(
                    "Internal Kaspersky update mirror{listed}: served Kaspersky update files on update paths to {}.",
                    count_phrase(clients.len(), "client", "clients")
                )
            }
        }
        Verdict::Proxy => {
            let clients = peers(facts, |f| match *f {
                Fact::ProxyFor { client } => Some(client),
                _ => None,
            });
            let mut s = format!("Forward proxy{listed}");
            if !clients.is_empty() {
                let _ = write!(
                    s,
                    ": {} sent CONNECT or absolute-form requests for Kaspersky names through it",
                    count_phrase(clients.len(), "client", "clients")
                );
            }
            s.push_str("; the Kaspersky traffic it sends upstream is its clients', not its own.");
            s
        }
        Verdict::Resolver => {
            let forwarded = peers(facts, |f| match *f {
                Fact::ForwardedFor { client } => Some(client),
                _ => None,
            });
            let mut s = format!("DNS resolver{listed}");
            if !forwarded.is_empty() {
                let _ = write!(
                    s,
                    ": forwarded Kaspersky lookups of {}",
                    count_phrase(forwarded.len(), "client", "clients")
                );
            }
            s.push_str("; the Kaspersky lookups it makes are its clients', not its own.");
            s
        }
        _ => String::new(),
    }
}

/// The one plain sentence that explains a host's verdict, from its summary, its decision and
/// its learned facts (sorted).
pub fn reason(s: &HostSummary, d: &Decision, facts: &[Fact]) -> String {
    match d.verdict {
        Verdict::UnmanagedInstall | Verdict::ExternallyManagedInstall | Verdict::ManagedInstall => {
            let certainty = d.certainty.map_or("", |c| c.label());
            let managers: Vec<String> = d
                .managed_by
                .iter()
                .map(|m| manager_phrase(m, s.inventory_names_managers))
                .collect();
            let management = match d.verdict {
                Verdict::ManagedInstall if managers.is_empty() => {
                    "managed by us (listed in the inventory as an endpoint)".to_string()
                }
                Verdict::ManagedInstall => format!("managed by us through {}", list(&managers)),
                Verdict::ExternallyManagedInstall => {
                    format!("managed, but not by us: by {}", list(&managers))
                }
                _ => "not managed by us: no KSC server or update mirror of ours manages it"
                    .to_string(),
            };
            let install: Vec<&EvidenceSummary> = s.evidence.iter().filter(|e| e.install).collect();
            let mut text = format!(
                "{}, {certainty}: {management}; seen: {}",
                product_phrase(d.product),
                seen(&install)
            );
            let direct = install.iter().any(|e| e.direct);
            if !direct {
                text.push_str(" (no direct sighting: this is indirect evidence only)");
            }
            text.push('.');
            text
        }
        Verdict::KscConsole => {
            let servers = peers(facts, |f| match *f {
                Fact::KscSessionTo { server, port } if KSC_CONSOLE_PORTS.contains(&port) => {
                    Some(server)
                }
                _ => None,
            });
            let s: Vec<String> = servers.iter().map(IpAddr::to_string).collect();
            format!(
                "Kaspersky Security Center console: completed console sessions with {}; no product traffic.",
                list(&s)
            )
        }
        Verdict::WebsiteOnly => {
            let all: Vec<&EvidenceSummary> = s.evidence.iter().collect();
            let mail = all.iter().all(|e| e.family == Family::Mail);
            let mut names: Vec<String> = all.iter().map(|e| name_or_peer(e)).collect();
            names.sort();
            names.dedup();
            let more = names.len().saturating_sub(REASON_ITEMS);
            names.truncate(REASON_ITEMS);
            let mut shown = list(&names);
            if more > 0 {
                let _ = write!(shown, " and {more} more");
            }
            if mail {
                let mut types: Vec<String> = all
                    .iter()
                    .filter_map(|e| match e.kind {
                        EvidenceKind::DnsOtherLookup(q) => Some(qtype_label(q)),
                        _ => None,
                    })
                    .collect();
                types.sort();
                types.dedup();
                format!(
                    "Looked up {} records of Kaspersky names ({shown}), as mail servers do; not a client of any Kaspersky service.",
                    list(&types)
                )
            } else {
                format!(
                    "Only visited Kaspersky websites, the account portal or downloads ({shown}); no product traffic."
                )
            }
        }
        role => role_reason(role, s, d, facts),
    }
}
