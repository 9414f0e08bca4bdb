//! UDP: DNS messages (stateless, per datagram) and the scratch state the parsers share.
//!
//! Contract: [`emit_dns`] turns the message parsed into `Scratch::dns.message` into name
//! observations — every question of a query; for a response, the question names when the query
//! was not seen, every CNAME target, and the addresses answered (after CNAME chains) for names
//! that matched a rule. Whether a query was seen is remembered in a small direct-mapped cache,
//! not in the flow table, so DNS costs no flow state.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::flow::emit::Emitter;
use crate::flow::table::FlowKey;
use crate::pipeline::observation::{Endpoint, NameSource, MAX_ANSWER_ADDRS};
use crate::proto::dns::{DnsMessage, RData};
use crate::proto::HostName;
use crate::time::Timestamp;

/// CNAME links followed from a question name to its addresses (resolvers cap chains near 8-16).
pub const MAX_CNAME_CHAIN: usize = 16;

/// Queries remembered while waiting for their response, per worker. A resolver link of a few
/// hundred thousand queries per second has far fewer than this in flight within
/// [`QUERY_LIFETIME`]; when full, the oldest query is forgotten (counted), so its response counts
/// as answer-only.
pub const MAX_PENDING_QUERIES: usize = 1 << 16;
/// How long a query waits for its response. Stub resolvers retry after 1-5 s; a response later
/// than this is treated as answer-only.
pub const QUERY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Outstanding queries by (flow, id, question). Decisions depend only on the capture times of
/// a query and its response (never on which other flows share the worker), so results are the
/// same for any number of workers unless the cap is hit.
#[derive(Default)]
pub struct QueryCache {
    pending: HashMap<u64, Timestamp, foldhash::fast::FixedState>,
    /// Arrival order, for expiry and eviction; entries whose tag was answered are skipped.
    order: VecDeque<(Timestamp, u64)>,
    /// Queries forgotten because the cache was full.
    pub evicted: u64,
}

impl QueryCache {
    /// Hashes the name's bytes, not the whole inline [`HostName`] (whose derived `Hash` covers
    /// all 253 bytes of its buffer, used or not).
    fn tag(key: &FlowKey, id: u16, name: &HostName) -> u64 {
        foldhash::fast::FixedState::with_seed(0x646e73).hash_one((key, id, name.as_bytes()))
    }

    /// Drops queries older than the lifetime, and the oldest while over the cap.
    fn expire(&mut self, now: Timestamp) {
        if self.order.len() > 2 * MAX_PENDING_QUERIES {
            // Mostly answered queries: compact (amortised over the pushes that filled it).
            let pending = &self.pending;
            self.order.retain(|(ts, tag)| pending.get(tag) == Some(ts));
        }
        while let Some(&(ts, tag)) = self.order.front() {
            let stale = now.saturating_sub(ts) > QUERY_LIFETIME;
            let full = self.pending.len() >= MAX_PENDING_QUERIES;
            if !stale && !full {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&tag) == Some(&ts) {
                self.pending.remove(&tag);
                if !stale {
                    self.evicted += 1;
                }
            }
        }
    }

    pub fn remember(&mut self, key: &FlowKey, id: u16, name: &HostName, now: Timestamp) {
        self.expire(now);
        let tag = Self::tag(key, id, name);
        self.pending.insert(tag, now);
        self.order.push_back((now, tag));
    }

    /// Whether the query was seen within the lifetime; forgets it (a response answers once).
    pub fn take(&mut self, key: &FlowKey, id: u16, name: &HostName, now: Timestamp) -> bool {
        match self.pending.remove(&Self::tag(key, id, name)) {
            Some(asked) => now.saturating_sub(asked) <= QUERY_LIFETIME,
            None => false,
        }
    }
}

/// DNS parsing state reused across messages.
#[derive(Default)]
pub struct DnsScratch {
    pub message: DnsMessage,
    pub queries: QueryCache,
    /// Addresses answered for the name being emitted (at most [`MAX_ANSWER_ADDRS`]); reused so
    /// that a response costs no allocation unless it becomes an observation.
    pub addrs: Vec<IpAddr>,
}

/// Per-worker buffers and caches shared by the parsers.
#[derive(Default)]
pub struct Scratch {
    /// ClientHello pieces when it spans TLS records.
    pub tls: Vec<u8>,
    pub dns: DnsScratch,
}

/// Whether two names are equal, comparing only their used bytes.
fn same_name(a: &HostName, b: &HostName) -> bool {
    a.as_bytes() == b.as_bytes()
}

/// Addresses (and smallest TTL) answered for `name` in `msg`, following CNAME chains.
fn answers_for(msg: &DnsMessage, name: &HostName, addrs: &mut Vec<IpAddr>) -> Option<u32> {
    addrs.clear();
    // The chain borrows names from the message: no 256-byte name is copied.
    let mut chain: [&HostName; MAX_CNAME_CHAIN] = [name; MAX_CNAME_CHAIN];
    let mut chain_len = 1usize;
    let in_chain = |chain: &[&HostName], len: usize, n: &HostName| {
        chain.iter().take(len).any(|c| same_name(c, n))
    };
    let mut ttl: Option<u32> = None;
    // Answers are usually in chain order; a few passes cover any order.
    for _ in 0..MAX_CNAME_CHAIN {
        let mut grew = false;
        for answer in &msg.answers {
            if let RData::Cname(target) = &answer.data {
                if in_chain(&chain, chain_len, &answer.name) && !in_chain(&chain, chain_len, target)
                {
                    if let Some(slot) = chain.get_mut(chain_len) {
                        *slot = target;
                        chain_len += 1;
                        grew = true;
                        ttl = Some(ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
                    }
                }
            }
        }
        if !grew {
            break;
        }
    }
    for answer in &msg.answers {
        let ip = match answer.data {
            RData::A(v4) => IpAddr::V4(v4),
            RData::Aaaa(v6) => IpAddr::V6(v6),
            _ => continue,
        };
        if in_chain(&chain, chain_len, &answer.name)
            && addrs.len() < MAX_ANSWER_ADDRS
            && !addrs.contains(&ip)
        {
            addrs.push(ip);
            ttl = Some(ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
        }
    }
    ttl
}

/// Emits the names of the DNS message in `scratch.dns.message`, sent from `src` to `dst` over
/// transport `proto` (17 or 6). Each name costs one rule lookup; the answered addresses are
/// gathered only for names that become observations.
pub fn emit_dns(
    scratch: &mut Scratch,
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    emit: &mut Emitter<'_>,
) {
    let now = emit.ctx.ts;
    let DnsScratch {
        message: msg,
        queries,
        addrs,
    } = &mut scratch.dns;
    let (key, _) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, proto);
    if !msg.is_response {
        for q in &msg.questions {
            queries.remember(&key, msg.id, &q.name, now);
            emit.name(q.name, NameSource::DnsQuery, src, dst, &[], None);
        }
        return;
    }
    // A response: the querier is the destination.
    let (client, server) = (dst, src);
    for q in &msg.questions {
        let query_seen = queries.take(&key, msg.id, &q.name, now);
        let rule = emit.lookup(&q.name);
        if !query_seen {
            let ttl = if emit.keeps(rule) {
                answers_for(msg, &q.name, addrs)
            } else {
                addrs.clear();
                None
            };
            emit.name_with_rule(
                q.name,
                rule,
                NameSource::DnsAnswer,
                client,
                server,
                addrs,
                ttl,
            );
        } else if rule.is_some() {
            let ttl = answers_for(msg, &q.name, addrs);
            if !addrs.is_empty() {
                emit.dns_answer_with_rule(q.name, rule, client, server, addrs, ttl);
            }
        }
    }
    for answer in &msg.answers {
        if let RData::Cname(target) = &answer.data {
            let rule = emit.lookup(target);
            let ttl = if emit.keeps(rule) {
                answers_for(msg, target, addrs)
            } else {
                addrs.clear();
                None
            };
            emit.name_with_rule(
                *target,
                rule,
                NameSource::DnsAnswer,
                client,
                server,
                addrs,
                ttl,
            );
        }
    }
}
