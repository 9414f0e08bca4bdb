//! Correlation memories: addresses answered for Kaspersky names, per querier (a later
//! conversation without a usable name from that querier — or from a client of that querier,
//! when the querier is its resolver — to one of them is attributed to the name), and recent
//! matched queries (a host that forwards a client's lookup is a resolver).
//!
//! Answers are remembered per (querier, address), not per address: a shared CDN address
//! answered to one host for an update name says nothing about another host's connection to it
//! (RFC 1034 §5.3.1: a stub's answers are its own).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::host::{insert_sorted, EvidenceKey, EvidenceKind, Fact, NameArg};
use super::{
    Inventory, NameId, FORWARD_WINDOW_SECS, MAX_ANSWERED_ADDRS, MAX_RECENT_QUERIES,
    MIN_ANSWER_LIFETIME_SECS, RESOLVER_MIN_CLIENTS,
};
use crate::proto::HostName;
use crate::rules::{Confidence, RuleIdx};
use crate::time::Timestamp;

/// Who was answered which address: the key of the answer memory.
pub(super) type AnswerKey = (IpAddr, IpAddr);

/// An address answered for a Kaspersky name.
#[derive(Clone, Copy, Debug)]
pub(super) struct Answered {
    pub(super) name: NameId,
    pub(super) rule: RuleIdx,
    pub(super) answered_at: Timestamp,
    pub(super) expires: Timestamp,
}

/// A matched DNS query, remembered briefly to recognise forwarding.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecentQuery {
    pub(super) name: NameId,
    pub(super) client: IpAddr,
    pub(super) server: IpAddr,
    pub(super) ts: Timestamp,
}

/// The last [`MAX_RECENT_QUERIES`] matched queries, in arrival order, with an index that finds
/// the newest query for a (name, server) pair in one hash probe.
///
/// Invariant: `newest` maps a (name, server) key to the sequence number of the newest query in
/// `order` with that key whose client is not its server, and holds no other entry. Eviction
/// pops the oldest query; the index entry goes with it only if it was that query (any newer
/// query of the key would have replaced it), so the index never outlives the queue.
#[derive(Default)]
pub(super) struct RecentQueries {
    pub(super) order: VecDeque<RecentQuery>,
    /// Sequence number of `order.front()`; query `seq` is at `order[seq - first_seq]`.
    pub(super) first_seq: u64,
    /// Keyed by a per-process random hash: names and servers come off the wire.
    pub(super) newest: HashMap<(NameId, IpAddr), u64, foldhash::fast::RandomState>,
}

impl RecentQueries {
    /// Remembers a query, forgetting the oldest when [`MAX_RECENT_QUERIES`] are held.
    pub(super) fn push(&mut self, query: RecentQuery) {
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
    pub(super) fn forwarded_from(
        &self,
        name: NameId,
        server: IpAddr,
        now: Timestamp,
    ) -> Option<IpAddr> {
        let seq = *self.newest.get(&(name, server))?;
        let at = usize::try_from(seq.wrapping_sub(self.first_seq)).ok()?;
        let query = self.order.get(at)?;
        (now.saturating_sub(query.ts).as_secs() <= FORWARD_WINDOW_SECS).then_some(query.client)
    }
}

impl Inventory {
    pub(super) fn on_matched_query(
        &mut self,
        name: &HostName,
        rule: RuleIdx,
        client: IpAddr,
        server: IpAddr,
        ts: Timestamp,
        input: u16,
    ) {
        let public = self.public_resolvers.contains(&server);
        self.with_host(client, ts, |h, budget, counters| {
            h.add_dns_server(server);
            if public {
                h.add_fact(
                    budget,
                    counters,
                    Fact::QueriedPublicResolver { resolver: server },
                );
                let key = EvidenceKey {
                    kind: EvidenceKind::PublicResolver,
                    rule: Some(rule),
                    name: None,
                    peer: Some(server),
                    input,
                };
                h.add_evidence(budget, counters, key, NameArg::None, ts, Confidence::Low);
            }
        });
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

    /// Remembers that `querier` was given `addrs` for `name` (matched `rule`).
    pub(super) fn remember_answers(
        &mut self,
        querier: IpAddr,
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
                    (querier, ip),
                    Answered {
                        name,
                        rule,
                        answered_at: ts,
                        expires,
                    },
                )
                .is_none()
            {
                self.answered_order.push_back((querier, ip));
            }
        }
    }

    /// The live answer that ties `client`'s conversation with `server` to a name: one given to
    /// the client itself, or to a DNS server the client sent Kaspersky lookups to (its
    /// resolver, which may have been answered upstream where the client's own answer was not
    /// seen).
    pub(super) fn answer_for(
        &self,
        client: IpAddr,
        server: IpAddr,
        ts: Timestamp,
    ) -> Option<Answered> {
        let live = |a: &Answered| ts >= a.answered_at && ts <= a.expires;
        if let Some(a) = self.answered.get(&(client, server)).filter(|a| live(a)) {
            return Some(*a);
        }
        let resolvers = self.hosts.get(&client).map(|h| h.dns_servers())?;
        resolvers
            .iter()
            .filter_map(|r| self.answered.get(&(*r, server)))
            .find(|a| live(a))
            .copied()
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
pub(super) fn lowered(c: Confidence) -> Confidence {
    match c {
        Confidence::High => Confidence::Medium,
        Confidence::Medium | Confidence::Low => Confidence::Low,
    }
}
