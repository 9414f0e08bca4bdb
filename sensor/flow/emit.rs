//! Where the flow stage puts what it finds.
//!
//! Every rule lookup of a name and every address lookup (is a server in Kaspersky's address
//! space) is made here, once, and rides along in the observation: the collector, the
//! inventory and the event writer never look anything up again.

use std::net::IpAddr;

use crate::flow::udp::DnsAbout;
use crate::observation::{
    DnsInfo, Endpoint, NameSighting, NameSource, NamelessReason, ObsOrder, Observation, Observed,
    OtherNameForm, OtherNameSighting, PacketContext,
};
use crate::proto::update::{UpdateMagic, UpdatePath};
use crate::proto::{HostName, NameKind};
use crate::rules::{NetworkUse, RuleIdx, RuleSet};

/// Names extracted per kind, and detections, counted by the worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameCounters {
    /// Indexed like [`NameKind::ALL`].
    pub extracted: [u64; 4],
    /// Names that matched a rule, per kind.
    pub matched: [u64; 4],
}

impl NameCounters {
    pub fn merge(&mut self, other: &NameCounters) {
        for (a, b) in self.extracted.iter_mut().zip(other.extracted) {
            *a += b;
        }
        for (a, b) in self.matched.iter_mut().zip(other.matched) {
            *a += b;
        }
    }
}

fn kind_index(kind: NameKind) -> usize {
    match kind {
        NameKind::Dns => 0,
        NameKind::Tls => 1,
        NameKind::Quic => 2,
        NameKind::Http => 3,
    }
}

/// Collects observations of one packet: matches names against the rules, numbers observations
/// in packet order, and drops unmatched names unless every name is wanted.
pub struct Emitter<'a> {
    pub rules: &'a RuleSet,
    pub all_names: bool,
    /// DNS observations carry the facts of their message (`observation::DnsFacts`); only the
    /// EVE events need them, so by default the copy is not made.
    pub dns_facts: bool,
    pub packet: u64,
    pub ctx: PacketContext,
    pub out: &'a mut Vec<Observed>,
    pub names: &'a mut NameCounters,
    /// Opcode and service of the DNS message whose names are being emitted (set by the DNS
    /// emitter around a message, copied into each of its names).
    pub dns: Option<DnsInfo>,
    /// QTYPE of the DNS question whose name is being emitted (set by the DNS emitter around
    /// each question, copied into its name sighting).
    pub qtype: Option<u16>,
    /// Sender of the packet and the MACs of its frame: the client MAC is the source MAC when
    /// the client sent the packet, the destination MAC otherwise.
    sender: IpAddr,
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    sub: u32,
    /// See [`Emitter::evidence`].
    evidence: u32,
}

impl<'a> Emitter<'a> {
    #[allow(clippy::too_many_arguments)] // one packet's whole context, passed once per packet
    pub fn new(
        rules: &'a RuleSet,
        all_names: bool,
        packet: u64,
        ctx: PacketContext,
        out: &'a mut Vec<Observed>,
        names: &'a mut NameCounters,
        sender: IpAddr,
        src_mac: Option<[u8; 6]>,
        dst_mac: Option<[u8; 6]>,
    ) -> Self {
        Emitter {
            rules,
            all_names,
            dns_facts: false,
            packet,
            ctx,
            out,
            names,
            dns: None,
            qtype: None,
            sender,
            src_mac,
            dst_mac,
            sub: 0,
            evidence: 0,
        }
    }

    /// Evidence observations made by this emitter so far: a caller compares the count before
    /// and after a parser to learn whether a packet gave any. Evidence is what the inventory
    /// can use, whatever `--all-names` says: every observation except names kept only because
    /// every name is wanted (no rule matched, not in Kaspersky's address space) and connections
    /// that never conversed.
    #[inline]
    pub fn evidence(&self) -> u32 {
        self.evidence
    }

    fn push(&mut self, client: Endpoint, what: Observation) {
        let evidence = match &what {
            Observation::Name(s) => s.rule.is_some(),
            Observation::OtherName(o) => o.kaspersky_space,
            Observation::Nameless { conversed, .. } => *conversed,
            _ => true,
        };
        self.evidence = self.evidence.saturating_add(u32::from(evidence));
        let order = ObsOrder {
            packet: self.packet,
            sub: self.sub,
        };
        self.sub = self.sub.saturating_add(1);
        let mut ctx = self.ctx;
        ctx.client_mac = if client.ip == self.sender {
            self.src_mac
        } else {
            self.dst_mac
        };
        self.out.push(Observed { order, ctx, what });
    }

    /// The rule `name` matches, if any (one rule lookup; pass the result to
    /// [`Emitter::name_with_rule`] or [`Emitter::dns_answer_with_rule`] so it is not repeated).
    pub fn lookup(&self, name: &HostName) -> Option<RuleIdx> {
        self.rules.lookup(name)
    }

    /// Whether a name with this lookup result becomes an observation (matched, or every name is
    /// wanted). Callers skip building what only an observation needs (DNS answers) otherwise.
    pub fn keeps(&self, rule: Option<RuleIdx>) -> bool {
        rule.is_some() || self.all_names
    }

    /// A name was seen; `answers`/`ttl` only for DNS responses.
    pub fn name(
        &mut self,
        name: HostName,
        source: NameSource,
        client: Endpoint,
        server: Endpoint,
        answers: &[IpAddr],
        ttl: Option<u32>,
    ) {
        let rule = self.rules.lookup(&name);
        self.name_with_rule(&name, rule, source, client, server, answers, ttl, None);
    }

    /// [`Emitter::name`] with the rule lookup already done by [`Emitter::lookup`]. Counts the
    /// name; borrows it, and copies it into an observation only when [`Emitter::keeps`] says
    /// so (most names on a busy link are counted and dropped). `dns` names the message a DNS
    /// name came from; its facts are copied only into an observation.
    #[allow(clippy::too_many_arguments)]
    pub fn name_with_rule(
        &mut self,
        name: &HostName,
        rule: Option<RuleIdx>,
        source: NameSource,
        client: Endpoint,
        server: Endpoint,
        answers: &[IpAddr],
        ttl: Option<u32>,
        dns: Option<DnsAbout<'_>>,
    ) {
        let k = kind_index(source.kind());
        if let Some(slot) = self.names.extracted.get_mut(k) {
            *slot += 1;
        }
        if rule.is_some() {
            if let Some(slot) = self.names.matched.get_mut(k) {
                *slot += 1;
            }
        } else if !self.all_names {
            return;
        }
        self.push(
            client,
            Observation::Name(NameSighting {
                name: *name,
                source,
                client,
                server,
                rule,
                answers: answers.to_vec(),
                ttl,
                dns: self.dns,
                qtype: self.qtype,
                dns_facts: dns
                    .filter(|_| self.dns_facts)
                    .map(|about| Box::new(about.facts())),
            }),
        );
    }

    /// A name that is not a host name: bytes a host name cannot hold (`text` already escaped).
    /// Counted with its kind; kept only when every name is wanted, since no rule can match it.
    /// `text` is built only when it is kept (`make_text`).
    /// `dns` names the message a DNS name came from; its facts are copied only into an
    /// observation, and only when DNS facts are wanted.
    pub fn other_name(
        &mut self,
        make_text: impl FnOnce() -> String,
        source: NameSource,
        client: Endpoint,
        server: Endpoint,
        dns: Option<DnsAbout<'_>>,
    ) {
        let form = OtherNameForm::NotHostName;
        self.other_sighting(form, make_text, source, (client, server), false, dns);
    }

    /// An address literal where a host name belongs (an HTTP `Host` or request target, a TLS
    /// or QUIC server name). Never matched against name rules: its address is looked up in
    /// Kaspersky's address space instead, when `conversed` (as for a connection without a
    /// name, [`Emitter::nameless_to`]). Counted with its kind; kept when every name is wanted
    /// or when it is in that space. The caller reports the connection as nameless with the
    /// literal as its origin, which carries the address-space evidence to the inventory.
    pub fn literal(
        &mut self,
        addr: IpAddr,
        source: NameSource,
        client: Endpoint,
        server: Endpoint,
        conversed: bool,
    ) {
        let space = conversed && self.in_kaspersky_space(addr);
        let form = OtherNameForm::Literal(addr);
        self.other_sighting(
            form,
            || addr.to_string(),
            source,
            (client, server),
            space,
            None,
        );
    }

    fn other_sighting(
        &mut self,
        form: OtherNameForm,
        make_text: impl FnOnce() -> String,
        source: NameSource,
        (client, server): (Endpoint, Endpoint),
        kaspersky_space: bool,
        dns_about: Option<DnsAbout<'_>>,
    ) {
        let k = kind_index(source.kind());
        if let Some(slot) = self.names.extracted.get_mut(k) {
            *slot += 1;
        }
        if !self.all_names && !kaspersky_space {
            return;
        }
        let dns = self.dns;
        self.push(
            client,
            Observation::OtherName(OtherNameSighting {
                text: make_text().into_boxed_str(),
                form,
                source,
                client,
                server,
                dns,
                kaspersky_space,
                dns_facts: dns_about
                    .filter(|_| self.dns_facts)
                    .map(|about| Box::new(about.facts())),
            }),
        );
    }

    /// Addresses answered for a matched name whose query was already reported (`rule` is the
    /// lookup made with the query); copies the name (and the facts of the response `dns` names)
    /// only when it matched.
    #[allow(clippy::too_many_arguments)]
    pub fn dns_answer_with_rule(
        &mut self,
        name: &HostName,
        rule: Option<RuleIdx>,
        client: Endpoint,
        server: Endpoint,
        answers: &[IpAddr],
        ttl: Option<u32>,
        dns: Option<DnsAbout<'_>>,
    ) {
        if let Some(rule) = rule {
            let answers = answers.to_vec();
            self.push(
                client,
                Observation::DnsAnswer {
                    name: *name,
                    rule,
                    client,
                    server,
                    answers,
                    ttl,
                    dns_facts: dns
                        .filter(|_| self.dns_facts)
                        .map(|about| Box::new(about.facts())),
                },
            );
        }
    }

    /// Whether `ip` is in a `corroborate` network of the rule set (Kaspersky's own address
    /// space; an `exclude` network is explicitly nothing).
    pub fn in_kaspersky_space(&self, ip: IpAddr) -> bool {
        self.rules
            .network_for(ip)
            .is_some_and(|n| self.rules.network(n).use_ == NetworkUse::Corroborate)
    }

    /// A connection that gave no usable name; `conversed` when the server accepted it and the
    /// client sent data (only then is the server's address looked up).
    pub fn nameless(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        reason: NamelessReason,
        conversed: bool,
    ) {
        self.nameless_to(client, server, reason, conversed, None);
    }

    /// [`Emitter::nameless`] for a connection that names an address: `origin` is the address
    /// literal the client asked for (the origin server of an absolute-form request, which a
    /// proxy forwards; a CONNECT authority; a `Host` field; a TLS or QUIC server name), judged
    /// for the address space instead of the server it connected to (on a direct connection
    /// they are the same address).
    pub fn nameless_to(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        reason: NamelessReason,
        conversed: bool,
        origin: Option<IpAddr>,
    ) {
        let kaspersky_space = conversed && self.in_kaspersky_space(origin.unwrap_or(server.ip));
        self.push(
            client,
            Observation::Nameless {
                client,
                server,
                reason,
                conversed,
                kaspersky_space,
                origin,
            },
        );
    }

    /// A completed session on a Kaspersky Security Center TCP port.
    pub fn ksc_session(&mut self, client: Endpoint, server: Endpoint) {
        self.push(client, Observation::KscSession { client, server });
    }

    /// A datagram to a Kaspersky Security Center UDP port. The destination is a group when its
    /// address says so or when the frame went to an Ethernet group address (the I/G bit, the
    /// low bit of the first octet: IEEE 802-2014 §8.2), which is how a subnet-directed
    /// broadcast such as 10.0.0.255 shows.
    pub fn ksc_datagram(&mut self, src: Endpoint, dst: Endpoint) {
        let mac_group = self.sender == src.ip
            && self
                .dst_mac
                .is_some_and(|mac| mac.first().is_some_and(|b| b & 1 == 1));
        let dst_group = mac_group || is_group_address(dst.ip);
        self.push(
            src,
            Observation::KscDatagram {
                src,
                dst,
                dst_group,
            },
        );
    }

    /// An HTTP request for an update path; `request` holds the request's name, the lookup
    /// already made for its name sighting and the IP-literal origin of an absolute-form request.
    pub fn update_request(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        path: UpdatePath,
        request: RequestFacts,
    ) {
        let RequestFacts {
            host, rule, origin, ..
        } = request;
        let kaspersky_space = self.in_kaspersky_space(origin.unwrap_or(server.ip));
        self.push(
            client,
            Observation::UpdateRequest {
                client,
                server,
                path,
                host,
                rule,
                kaspersky_space,
                origin,
            },
        );
    }

    /// An update-file magic at the start of a response body; `host`, `rule` and `path` come
    /// from the request it answers.
    pub fn update_payload(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        magic: UpdateMagic,
        request: RequestFacts,
    ) {
        let kaspersky_space = self.in_kaspersky_space(request.origin.unwrap_or(server.ip));
        self.push(
            client,
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host: request.host,
                rule: request.rule,
                path: request.path,
                kaspersky_space,
                origin: request.origin,
            },
        );
    }
}

/// What a request said: its host name, the rule that name matched, its update path, and when
/// its host is an IP literal (an absolute-form target a proxy fetches, or the `Host` field),
/// that origin address, judged for the address space instead of the server's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestFacts {
    pub host: Option<HostName>,
    pub rule: Option<RuleIdx>,
    pub path: Option<UpdatePath>,
    pub origin: Option<IpAddr>,
}

/// Addresses that are groups whatever the link says: IPv4 limited broadcast 255.255.255.255 and
/// unspecified 0.0.0.0 (RFC 919, RFC 1122 §3.2.1.3), IPv4 multicast 224.0.0.0/4 (RFC 5771),
/// IPv6 multicast ff00::/8 (RFC 4291 §2.7) and unspecified `::` (RFC 4291 §2.5.2). They never
/// stand for one host.
pub fn is_group_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_unspecified() || v4.is_multicast(),
        IpAddr::V6(v6) => v6.is_multicast() || v6.is_unspecified(),
    }
}
