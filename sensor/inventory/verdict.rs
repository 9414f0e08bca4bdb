//! Verdicts: what a host is, how sure we are, which product, and who manages it.
//!
//! Two steps, so that a verdict can be recomputed from saved data:
//! 1. [`Inventory::summary`] gathers one host into a plain [`HostSummary`]: each evidence entry
//!    with its family, product class, confidence and whether it can support an install
//!    ([`classify`]); the roles learned from the host's facts; its managers (the KSC servers,
//!    distribution points and update mirrors it is an agent or client of, or the Cloud
//!    Console), each with its inventory role, learned role and whether it is internal.
//! 2. [`decide`] is a pure function of that summary: the closed-set [`Verdict`], and for
//!    installs the [`Certainty`], the [`Product`] and `managed_by`.
//!
//! The rules of [`decide`]:
//! * Precedence: an inventory role (other than `endpoint`); else a learned role of an internal
//!   host (ksc-server > distribution-point > update-mirror > proxy > resolver); else an install
//!   verdict if any evidence can support one; else `ksc-console`; else `website-only` when
//!   there is evidence of a person's visits (portals, downloads, websites) or of mail lookups;
//!   else nothing (update files from a server that is no mirror count for nothing).
//! * Managed means managed by us. When the inventory names management servers, a host is
//!   `managed-install` if one of its managers is an inventoried KSC server, distribution point
//!   or update mirror (or it is an inventoried endpoint with no foreign manager); without one,
//!   if one of its managers is internal. Any other manager (external, not inventoried, the
//!   Cloud Console) makes it `externally-managed-install`; no manager, `unmanaged-install`.
//! * Certainty. Direct evidence is install evidence that is not a DNS correlation, not an
//!   address and not the public-resolver fallback; its families are counted (KSC management is
//!   one family). `confirmed`: two families with a high-confidence one, a KLZF/KLD2 update
//!   file from a Kaspersky name or address, or a completed KSC agent session with another
//!   family. `likely`: one high-confidence family, or a completed KSC agent or Cloud Console
//!   session alone. `possible`: anything less (medium only, KSC datagrams only, correlation
//!   only, address only).
//! * Product. `antivirus` on any antivirus-only signal (the web-protection script, KSC or
//!   Cloud Console management, signature-base paths, an update file from a mirror or from a
//!   name shared by Kaspersky's products); else `oem` on an OEM name, or on antivirus-or-OEM
//!   names (dnl-##, ksn-crypto) with nothing shared beside them (Check Point's pattern); else
//!   `antivirus` when antivirus-or-OEM names come with shared ones; else `kaspersky` (shared
//!   infrastructure: the VPN, Password Manager, Safe Kids or the antivirus).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use super::assets::{Assets, Role};
use super::host::{EvidenceKind, Fact, Host, Origin};
use super::{Inventory, NOTICE_MIN_AGENTS, PROXY_MIN_CLIENTS};
use crate::observation::{KSC_AGENT_PORTS, KSC_CONSOLE_PORTS};
use crate::proto::update::{UpdateMagic, UpdatePath};
use crate::rules::{Category, Confidence, ProductClass, RuleSet};

/// A host's verdict. Closed set: verdicts are metric labels. Ordered as reports list them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    UnmanagedInstall,
    ExternallyManagedInstall,
    ManagedInstall,
    KscServer,
    DistributionPoint,
    UpdateMirror,
    Proxy,
    Resolver,
    KscConsole,
    WebsiteOnly,
}

impl Verdict {
    pub const ALL: [Verdict; 10] = [
        Verdict::UnmanagedInstall,
        Verdict::ExternallyManagedInstall,
        Verdict::ManagedInstall,
        Verdict::KscServer,
        Verdict::DistributionPoint,
        Verdict::UpdateMirror,
        Verdict::Proxy,
        Verdict::Resolver,
        Verdict::KscConsole,
        Verdict::WebsiteOnly,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Verdict::UnmanagedInstall => "unmanaged-install",
            Verdict::ExternallyManagedInstall => "externally-managed-install",
            Verdict::ManagedInstall => "managed-install",
            Verdict::KscServer => "ksc-server",
            Verdict::DistributionPoint => "distribution-point",
            Verdict::UpdateMirror => "update-mirror",
            Verdict::Proxy => "proxy",
            Verdict::Resolver => "resolver",
            Verdict::KscConsole => "ksc-console",
            Verdict::WebsiteOnly => "website-only",
        }
    }

    /// An install verdict (it carries a certainty and a product).
    pub fn is_install(self) -> bool {
        matches!(
            self,
            Verdict::UnmanagedInstall | Verdict::ExternallyManagedInstall | Verdict::ManagedInstall
        )
    }

    fn of_role(role: Role) -> Option<Verdict> {
        match role {
            Role::Endpoint => None,
            Role::KscServer => Some(Verdict::KscServer),
            Role::DistributionPoint => Some(Verdict::DistributionPoint),
            Role::UpdateMirror => Some(Verdict::UpdateMirror),
            Role::Resolver => Some(Verdict::Resolver),
            Role::Proxy => Some(Verdict::Proxy),
        }
    }
}

/// How sure an install verdict is. Closed set (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Certainty {
    Confirmed,
    Likely,
    Possible,
}

impl Certainty {
    pub const ALL: [Certainty; 3] = [Certainty::Confirmed, Certainty::Likely, Certainty::Possible];

    pub fn label(self) -> &'static str {
        match self {
            Certainty::Confirmed => "confirmed",
            Certainty::Likely => "likely",
            Certainty::Possible => "possible",
        }
    }
}

/// Which product an install is. Closed set (a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Product {
    /// Kaspersky's antivirus / endpoint protection family.
    Antivirus,
    /// Some Kaspersky product: shared infrastructure (VPN, Password Manager, Safe Kids, or the
    /// antivirus).
    Kaspersky,
    /// The Kaspersky engine inside another vendor's product.
    Oem,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Antivirus, Product::Kaspersky, Product::Oem];

    pub fn label(self) -> &'static str {
        match self {
            Product::Antivirus => "antivirus",
            Product::Kaspersky => "kaspersky",
            Product::Oem => "oem",
        }
    }
}

/// What kind of thing an evidence entry shows: a rule category, KSC management, or Kaspersky's
/// address space. Closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Update,
    KsnCloud,
    Activation,
    Telemetry,
    InjectedScript,
    KscCloud,
    Certificate,
    Service,
    Portal,
    Download,
    Website,
    Mail,
    Management,
    Address,
}

impl Family {
    pub const ALL: [Family; 14] = [
        Family::Update,
        Family::KsnCloud,
        Family::Activation,
        Family::Telemetry,
        Family::InjectedScript,
        Family::KscCloud,
        Family::Certificate,
        Family::Service,
        Family::Portal,
        Family::Download,
        Family::Website,
        Family::Mail,
        Family::Management,
        Family::Address,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Family::Update => "update",
            Family::KsnCloud => "ksn-cloud",
            Family::Activation => "activation",
            Family::Telemetry => "telemetry",
            Family::InjectedScript => "injected-script",
            Family::KscCloud => "ksc-cloud",
            Family::Certificate => "certificate",
            Family::Service => "service",
            Family::Portal => "portal",
            Family::Download => "download",
            Family::Website => "website",
            Family::Mail => "mail",
            Family::Management => "management",
            Family::Address => "address",
        }
    }

    fn of(category: Category) -> Family {
        match category {
            Category::Update => Family::Update,
            Category::KsnCloud => Family::KsnCloud,
            Category::Activation => Family::Activation,
            Category::Telemetry => Family::Telemetry,
            Category::InjectedScript => Family::InjectedScript,
            Category::KscCloud => Family::KscCloud,
            Category::Certificate => Family::Certificate,
            Category::Service => Family::Service,
            Category::Portal => Family::Portal,
            Category::Download => Family::Download,
            Category::Website | Category::Ignore => Family::Website,
            Category::Mail => Family::Mail,
        }
    }
}

/// Roles learned from a host's facts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LearnedRoles {
    /// Accepted a completed agent or console session, or shutdown notices from
    /// [`NOTICE_MIN_AGENTS`] agents (and is not a distribution point).
    pub ksc_server: bool,
    /// Accepts agent sessions on 13000 and is itself an agent of a server, or multicasts to
    /// agents on UDP 15001.
    pub distribution_point: bool,
    /// Served update files on update paths without a Kaspersky name or address.
    pub update_mirror: bool,
    /// Received CONNECT or absolute-form requests from [`PROXY_MIN_CLIENTS`] clients.
    pub proxy: bool,
    /// Forwarded a client's Kaspersky lookup, or answered several clients' ones.
    pub resolver: bool,
    /// Completed a session to a KSC console port.
    pub ksc_console: bool,
    /// Sent KSC wake-ups or multicast to agents: only a server or distribution point in the
    /// same LAN does, so the host is internal.
    pub wakes_agents: bool,
}

impl LearnedRoles {
    /// The roles a host's facts show.
    pub fn of(facts: &[Fact]) -> LearnedRoles {
        let mut agent_sessions_on_13000 = false;
        let mut sessions_from = false;
        let mut agent_of = false;
        let mut notices_from = 0usize;
        let mut proxy_clients = 0usize;
        let mut roles = LearnedRoles::default();
        for fact in facts {
            match *fact {
                Fact::KscSessionFrom { port, .. } => {
                    sessions_from = true;
                    agent_sessions_on_13000 |= port == KSC_AGENT_PORTS[0];
                }
                Fact::KscSessionTo { port, .. } => {
                    if KSC_CONSOLE_PORTS.contains(&port) {
                        roles.ksc_console = true;
                    } else {
                        agent_of = true;
                    }
                }
                Fact::KscNoticeFrom { .. } => notices_from += 1,
                Fact::KscMulticast { .. } => {
                    roles.distribution_point = true;
                    roles.wakes_agents = true;
                }
                Fact::KscWakeupTo { .. } => roles.wakes_agents = true,
                Fact::ServedUpdate { .. } => roles.update_mirror = true,
                Fact::ForwardedFor { .. } | Fact::AnsweredClients { .. } => roles.resolver = true,
                Fact::ProxyFor { .. } => proxy_clients += 1,
                _ => {}
            }
        }
        roles.distribution_point |= agent_sessions_on_13000 && agent_of;
        roles.ksc_server =
            (sessions_from || notices_from >= NOTICE_MIN_AGENTS) && !roles.distribution_point;
        roles.proxy = proxy_clients >= PROXY_MIN_CLIENTS;
        roles
    }

    /// The strongest learned role as a verdict, in precedence order.
    pub fn verdict(&self) -> Option<Verdict> {
        if self.ksc_server {
            Some(Verdict::KscServer)
        } else if self.distribution_point {
            Some(Verdict::DistributionPoint)
        } else if self.update_mirror {
            Some(Verdict::UpdateMirror)
        } else if self.proxy {
            Some(Verdict::Proxy)
        } else if self.resolver {
            Some(Verdict::Resolver)
        } else {
            None
        }
    }

    /// A role whose clients it manages (KSC server, distribution point, update mirror).
    pub fn manages(&self) -> bool {
        self.ksc_server || self.distribution_point || self.update_mirror
    }
}

/// One evidence entry, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceSummary {
    pub kind: EvidenceKind,
    pub family: Family,
    pub product: ProductClass,
    pub confidence: Confidence,
    /// Whether the entry can support an install verdict.
    pub install: bool,
    /// Install evidence seen directly (not a correlation, an address or the DNS fallback).
    pub direct: bool,
    pub name: Option<Arc<str>>,
    pub peer: Option<IpAddr>,
    pub count: u64,
}

/// How a host is tied to a manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ManagerLink {
    /// Completed KSC agent sessions to it.
    KscSession,
    /// Received KSC wake-ups from it.
    KscWakeup,
    /// Sent KSC shutdown notices to it (a KSC server).
    KscNotice,
    /// Fetched Kaspersky updates from it (an update mirror).
    UpdateMirror,
    /// Contacted the Cloud Console on an agent port.
    CloudConsole,
}

impl ManagerLink {
    pub fn label(self) -> &'static str {
        match self {
            ManagerLink::KscSession => "ksc-session",
            ManagerLink::KscWakeup => "ksc-wakeup",
            ManagerLink::KscNotice => "ksc-shutdown-notice",
            ManagerLink::UpdateMirror => "update-mirror",
            ManagerLink::CloudConsole => "cloud-console",
        }
    }
}

/// Who manages a host: an address (a KSC server, distribution point or update mirror) or the
/// Cloud Console by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manager {
    pub address: Option<IpAddr>,
    /// The Cloud Console name (`eu1.ksc.kaspersky.com`), for [`ManagerLink::CloudConsole`].
    pub cloud_console: Option<Arc<str>>,
    /// The strongest link to it.
    pub link: ManagerLink,
    /// Its role in the operator's inventory.
    pub asset_role: Option<Role>,
    /// Its learned role (ksc-server, distribution-point or update-mirror), if any.
    pub learned: Option<Verdict>,
    pub internal: bool,
}

/// Everything [`decide`] needs about one host: plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSummary {
    pub ip: IpAddr,
    /// RFC 1918/4193, link-local, loopback, an `--internal-net`, or a sender of KSC wake-ups.
    pub internal: bool,
    pub asset_role: Option<Role>,
    /// The operator's inventory names KSC servers, distribution points or update mirrors:
    /// "ours" means inventoried.
    pub inventory_names_managers: bool,
    pub roles: LearnedRoles,
    pub evidence: Vec<EvidenceSummary>,
    pub managers: Vec<Manager>,
}

/// A host's verdict and what it rests on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// For install verdicts.
    pub certainty: Option<Certainty>,
    /// For install verdicts.
    pub product: Option<Product>,
    /// For installs: the managers that make it managed (ours) or externally managed (theirs).
    /// For a distribution point: the servers it is an agent of.
    pub managed_by: Vec<Manager>,
    /// The distinct families of the direct install evidence (installs only).
    pub families: Vec<Family>,
}

/// What an evidence entry is worth. `mirror(peer)` says whether a server that served updates
/// without a Kaspersky name or address is an update mirror (inventoried, or learned and
/// internal).
pub fn classify(
    kind: EvidenceKind,
    rule: Option<&crate::rules::Rule>,
    server_port_console: bool,
    mirror: impl Fn() -> bool,
) -> (Family, ProductClass, bool, bool) {
    let rule_family = rule.map_or(Family::Website, |r| Family::of(r.category));
    let rule_product = rule.map_or(ProductClass::None, |r| r.product);
    let rule_install = rule.is_some_and(|r| r.category.is_install_evidence());
    let (family, product, install, direct) = match kind {
        EvidenceKind::Name(source) => {
            let by_name = source.kind() != crate::proto::NameKind::Dns;
            if by_name && rule.is_some_and(|r| r.category == Category::KscCloud) {
                // A Cloud Console name off its agent ports: the web console in a browser.
                (Family::Portal, ProductClass::None, false, false)
            } else {
                (rule_family, rule_product, rule_install, rule_install)
            }
        }
        EvidenceKind::DnsOtherLookup(qtype) => {
            // TXT (16), MX (15) and SPF (99) lookups are what mail servers make.
            let family = if matches!(qtype, 15 | 16 | 99) {
                Family::Mail
            } else {
                rule_family
            };
            (family, ProductClass::None, false, false)
        }
        EvidenceKind::CloudConsole => (Family::KscCloud, ProductClass::Antivirus, true, true),
        EvidenceKind::UpdatePath(path, origin) => update_worth(
            Some(path),
            false,
            origin,
            rule_install,
            rule_product,
            mirror,
        ),
        EvidenceKind::UpdatePayload(_, origin) => {
            update_worth(None, true, origin, rule_install, rule_product, mirror)
        }
        EvidenceKind::KscSession(_) => {
            let install = !server_port_console;
            let product = if install {
                ProductClass::Antivirus
            } else {
                ProductClass::None
            };
            (Family::Management, product, install, install)
        }
        EvidenceKind::KscWakeup | EvidenceKind::KscNotice => {
            (Family::Management, ProductClass::Antivirus, true, true)
        }
        EvidenceKind::Correlated(_) => (rule_family, rule_product, rule_install, false),
        EvidenceKind::KasperskyAddress(_) => {
            (Family::Address, ProductClass::Kaspersky, true, false)
        }
        EvidenceKind::PublicResolver => (rule_family, rule_product, rule_install, false),
    };
    (family, product, install, direct)
}

/// What an update path (`path`) or an update payload is worth, by where it came from.
fn update_worth(
    path: Option<UpdatePath>,
    payload: bool,
    origin: Origin,
    rule_install: bool,
    rule_product: ProductClass,
    mirror: impl Fn() -> bool,
) -> (Family, ProductClass, bool, bool) {
    let counts = match origin {
        Origin::KasperskyName => rule_install,
        Origin::KasperskyAddress => true,
        Origin::Server => mirror(),
    };
    let product = if rule_product == ProductClass::Oem {
        ProductClass::Oem
    } else if path == Some(UpdatePath::SignatureBases) {
        ProductClass::Antivirus
    } else {
        match origin {
            Origin::Server => ProductClass::Antivirus,
            Origin::KasperskyAddress => ProductClass::AntivirusOrOem,
            // Update files from a name all Kaspersky products share are the antivirus's
            // signature databases.
            Origin::KasperskyName if payload && rule_product == ProductClass::Kaspersky => {
                ProductClass::Antivirus
            }
            Origin::KasperskyName => rule_product,
        }
    };
    (Family::Update, product, counts, counts)
}

/// What deciding a host needs to know about the other hosts it is tied to (its KSC servers,
/// distribution points and update servers): the inventory at the end of a run, or the hosts
/// and peers of saved reports merged together (`output::merge`).
pub trait Peers {
    /// Its role in the operator's inventory.
    fn asset_role(&self, ip: IpAddr) -> Option<Role>;
    /// Inside our networks by address (without what its facts show).
    fn internal_address(&self, ip: IpAddr) -> bool;
    /// The roles learned from its facts.
    fn learned(&self, ip: IpAddr) -> LearnedRoles;
    /// The text of an interned name.
    fn name(&self, id: super::NameId) -> Option<Arc<str>>;
}

/// Whether `ip` is an update mirror: inventoried as one (or as a distribution point), or
/// learned from the update files it served and internal.
pub fn is_mirror(peers: &dyn Peers, ip: IpAddr) -> bool {
    if matches!(
        peers.asset_role(ip),
        Some(Role::UpdateMirror | Role::DistributionPoint)
    ) {
        return true;
    }
    let roles = peers.learned(ip);
    roles.update_mirror && (peers.internal_address(ip) || roles.wakes_agents)
}

/// Whether `ip` is internal: by address, or because it wakes agents.
fn is_internal(peers: &dyn Peers, ip: IpAddr) -> bool {
    peers.internal_address(ip) || peers.learned(ip).wakes_agents
}

fn manager(peers: &dyn Peers, ip: IpAddr, link: ManagerLink) -> Manager {
    let learned = peers.learned(ip);
    let learned = if learned.ksc_server {
        Some(Verdict::KscServer)
    } else if learned.distribution_point {
        Some(Verdict::DistributionPoint)
    } else if learned.update_mirror {
        Some(Verdict::UpdateMirror)
    } else {
        None
    };
    Manager {
        address: Some(ip),
        cloud_console: None,
        link,
        asset_role: peers.asset_role(ip),
        learned,
        internal: is_internal(peers, ip),
    }
}

/// The managers a host's facts tie it to, each once with its strongest link.
pub fn managers_of(facts: &[Fact], peers: &dyn Peers) -> Vec<Manager> {
    let mut managers: Vec<Manager> = Vec::new();
    let add = |m: Manager, managers: &mut Vec<Manager>| {
        let same = managers
            .iter_mut()
            .find(|o| o.address == m.address && o.cloud_console == m.cloud_console);
        match same {
            Some(o) => o.link = o.link.min(m.link),
            None => managers.push(m),
        }
    };
    for fact in facts {
        match *fact {
            Fact::KscSessionTo { server, port } if !KSC_CONSOLE_PORTS.contains(&port) => add(
                manager(peers, server, ManagerLink::KscSession),
                &mut managers,
            ),
            Fact::KscWakeupFrom { server } => add(
                manager(peers, server, ManagerLink::KscWakeup),
                &mut managers,
            ),
            Fact::KscNoticeTo { server } => {
                let m = manager(peers, server, ManagerLink::KscNotice);
                let is_server = matches!(
                    m.asset_role,
                    Some(Role::KscServer | Role::DistributionPoint)
                ) || matches!(
                    m.learned,
                    Some(Verdict::KscServer | Verdict::DistributionPoint)
                );
                if is_server {
                    add(m, &mut managers);
                }
            }
            Fact::FetchedUpdates { server } if is_mirror(peers, server) => add(
                manager(peers, server, ManagerLink::UpdateMirror),
                &mut managers,
            ),
            Fact::CloudConsole { name } => add(
                Manager {
                    address: None,
                    cloud_console: peers.name(name),
                    link: ManagerLink::CloudConsole,
                    asset_role: None,
                    learned: None,
                    internal: false,
                },
                &mut managers,
            ),
            _ => {}
        }
    }
    managers
}

/// The inventory at the end of a run, seen as [`Peers`].
struct InventoryPeers<'a> {
    inventory: &'a Inventory,
    assets: &'a Assets,
}

impl Peers for InventoryPeers<'_> {
    fn asset_role(&self, ip: IpAddr) -> Option<Role> {
        let macs = self.inventory.hosts.get(&ip).map_or(&[][..], |h| h.macs());
        self.assets.find(ip, macs.iter()).map(|a| a.role)
    }

    fn internal_address(&self, ip: IpAddr) -> bool {
        self.assets.is_internal(ip)
    }

    fn learned(&self, ip: IpAddr) -> LearnedRoles {
        self.inventory
            .hosts
            .get(&ip)
            .map(|h| LearnedRoles::of(h.facts()))
            .unwrap_or_default()
    }

    fn name(&self, id: super::NameId) -> Option<Arc<str>> {
        self.inventory.budget.names.shared(id)
    }
}

impl Inventory {
    /// One host gathered for [`decide`].
    pub fn summary(&self, host: &Host, assets: &Assets) -> HostSummary {
        let rules: &RuleSet = &self.rules;
        let peers = InventoryPeers {
            inventory: self,
            assets,
        };
        let roles = LearnedRoles::of(host.facts());
        let evidence = host
            .evidence()
            .iter()
            .map(|e| {
                let rule = e.key.rule.and_then(|r| rules.get(r));
                let console = match e.key.kind {
                    EvidenceKind::KscSession(port) => KSC_CONSOLE_PORTS.contains(&port),
                    _ => false,
                };
                let mirror = || e.key.peer.is_some_and(|peer| is_mirror(&peers, peer));
                let (family, product, install, direct) =
                    classify(e.key.kind, rule, console, mirror);
                EvidenceSummary {
                    kind: e.key.kind,
                    family,
                    product,
                    confidence: e.stat.confidence,
                    install,
                    direct,
                    name: e.key.name.and_then(|n| self.budget.names.shared(n)),
                    peer: e.key.peer,
                    count: e.stat.count,
                }
            })
            .collect();
        let managers = managers_of(host.facts(), &peers);
        HostSummary {
            ip: host.ip,
            internal: assets.is_internal(host.ip) || roles.wakes_agents,
            asset_role: assets.find(host.ip, host.macs().iter()).map(|a| a.role),
            inventory_names_managers: assets.names_managers(),
            roles,
            evidence,
            managers,
        }
    }

    /// A host's summary and decision, or `None` for a host not worth reporting.
    pub fn decision(&self, host: &Host, assets: &Assets) -> Option<(HostSummary, Decision)> {
        let summary = self.summary(host, assets);
        let decision = decide(&summary)?;
        Some((summary, decision))
    }
}

/// The verdict for one host, from its summary alone.
pub fn decide(s: &HostSummary) -> Option<Decision> {
    let plain = |verdict: Verdict, managed_by: Vec<Manager>| Decision {
        verdict,
        certainty: None,
        product: None,
        managed_by,
        families: Vec::new(),
    };
    // What a distribution point is an agent of, shown as its manager.
    let upstream = || -> Vec<Manager> {
        s.managers
            .iter()
            .filter(|m| m.link == ManagerLink::KscSession)
            .cloned()
            .collect()
    };
    if let Some(verdict) = s.asset_role.and_then(Verdict::of_role) {
        let managed_by = if verdict == Verdict::DistributionPoint {
            upstream()
        } else {
            Vec::new()
        };
        return Some(plain(verdict, managed_by));
    }
    if s.internal || s.asset_role.is_some() {
        if let Some(verdict) = s.roles.verdict() {
            let managed_by = if verdict == Verdict::DistributionPoint {
                upstream()
            } else {
                Vec::new()
            };
            return Some(plain(verdict, managed_by));
        }
    }
    let install: Vec<&EvidenceSummary> = s.evidence.iter().filter(|e| e.install).collect();
    if !install.is_empty() {
        let mut families: BTreeMap<Family, Confidence> = BTreeMap::new();
        for e in install.iter().filter(|e| e.direct) {
            let c = families.entry(e.family).or_insert(e.confidence);
            *c = (*c).max(e.confidence);
        }
        let high = families.values().any(|c| *c == Confidence::High);
        let agent_session = install.iter().any(|e| {
            e.direct
                && matches!(e.kind, EvidenceKind::KscSession(p) if !KSC_CONSOLE_PORTS.contains(&p))
        });
        let cloud = install
            .iter()
            .any(|e| e.direct && e.kind == EvidenceKind::CloudConsole);
        let kaspersky_payload = install.iter().any(|e| {
            matches!(
                e.kind,
                EvidenceKind::UpdatePayload(
                    UpdateMagic::Klzf | UpdateMagic::Kld2,
                    Origin::KasperskyName | Origin::KasperskyAddress
                )
            )
        });
        let certainty = if (families.len() >= 2 && high) || kaspersky_payload {
            Certainty::Confirmed
        } else if high || agent_session || cloud {
            Certainty::Likely
        } else {
            Certainty::Possible
        };
        let has = |p: ProductClass| install.iter().any(|e| e.product == p);
        let product = if has(ProductClass::Antivirus) {
            Product::Antivirus
        } else if has(ProductClass::Oem)
            || (has(ProductClass::AntivirusOrOem) && !has(ProductClass::Kaspersky))
        {
            Product::Oem
        } else if has(ProductClass::AntivirusOrOem) {
            Product::Antivirus
        } else {
            Product::Kaspersky
        };
        let ours = |m: &Manager| {
            if s.inventory_names_managers {
                m.asset_role.is_some_and(Role::manages)
            } else {
                m.internal
            }
        };
        let (mine, theirs): (Vec<Manager>, Vec<Manager>) =
            s.managers.iter().cloned().partition(|m| ours(m));
        let (verdict, managed_by) = if !mine.is_empty() {
            (Verdict::ManagedInstall, mine)
        } else if !theirs.is_empty() {
            (Verdict::ExternallyManagedInstall, theirs)
        } else if s.inventory_names_managers && s.asset_role == Some(Role::Endpoint) {
            (Verdict::ManagedInstall, Vec::new())
        } else {
            (Verdict::UnmanagedInstall, Vec::new())
        };
        return Some(Decision {
            verdict,
            certainty: Some(certainty),
            product: Some(product),
            managed_by,
            families: families.into_keys().collect(),
        });
    }
    if s.roles.ksc_console {
        return Some(plain(Verdict::KscConsole, Vec::new()));
    }
    // Website-only: names a person reaches (portals, downloads, websites) or lookups that are
    // not address lookups (mail checks). Update files or paths that count for nothing (from a
    // server that is no mirror) do not make a host worth reporting.
    let visited = s.evidence.iter().any(|e| {
        matches!(e.kind, EvidenceKind::DnsOtherLookup(_))
            || matches!(
                e.family,
                Family::Portal | Family::Download | Family::Website | Family::Mail
            )
    });
    if visited {
        return Some(plain(Verdict::WebsiteOnly, Vec::new()));
    }
    None
}
