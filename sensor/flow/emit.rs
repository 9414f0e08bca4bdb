//! Where the flow stage puts what it finds.

use std::net::IpAddr;

use crate::flow::udp::DnsAbout;
use crate::observation::{
    Endpoint, NameSighting, NameSource, NamelessReason, ObsOrder, Observation, Observed,
    PacketContext,
};
use crate::proto::update::UpdateMagic;
use crate::proto::{HostName, NameKind};
use crate::rules::{RuleIdx, RuleSet};

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
    /// Sender of the packet and the MACs of its frame: the client MAC is the source MAC when
    /// the client sent the packet, the destination MAC otherwise.
    sender: IpAddr,
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    sub: u32,
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
            sender,
            src_mac,
            dst_mac,
            sub: 0,
        }
    }

    fn push(&mut self, client: Endpoint, what: Observation) {
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

    /// Whether `name` matches a rule (without emitting anything).
    pub fn is_detection(&self, name: &HostName) -> bool {
        self.rules.lookup(name).is_some()
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
                dns: dns
                    .filter(|_| self.dns_facts)
                    .map(|about| Box::new(about.facts())),
            }),
        );
    }

    /// Addresses answered for a matched name whose query was already reported.
    pub fn dns_answer(
        &mut self,
        name: HostName,
        client: Endpoint,
        server: Endpoint,
        answers: &[IpAddr],
        ttl: Option<u32>,
    ) {
        let rule = self.rules.lookup(&name);
        self.dns_answer_with_rule(&name, rule, client, server, answers, ttl, None);
    }

    /// [`Emitter::dns_answer`] with the rule lookup already done; copies the name (and the
    /// facts of the response `dns` names) only when it matched.
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
                    dns: dns
                        .filter(|_| self.dns_facts)
                        .map(|about| Box::new(about.facts())),
                },
            );
        }
    }

    pub fn nameless(&mut self, client: Endpoint, server: Endpoint, reason: NamelessReason) {
        self.push(
            client,
            Observation::Nameless {
                client,
                server,
                reason,
            },
        );
    }

    pub fn ksc_contact(&mut self, client: Endpoint, server: Endpoint, udp: bool) {
        self.push(
            client,
            Observation::KscContact {
                client,
                server,
                udp,
            },
        );
    }

    pub fn update_payload(
        &mut self,
        client: Endpoint,
        server: Endpoint,
        magic: UpdateMagic,
        host: Option<HostName>,
    ) {
        self.push(
            client,
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host,
            },
        );
    }
}
