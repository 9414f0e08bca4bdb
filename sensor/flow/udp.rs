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
use crate::rules::RuleIdx;
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

/// A query waiting for its response: when it was asked and the rule lookup of its question
/// (with the rule-set epoch it was made under), so the response's question is not looked up
/// again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    asked: Timestamp,
    rule: Option<RuleIdx>,
    rules_epoch: u32,
}

/// What a response's question learns from the query cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asked {
    /// The query was seen within [`QUERY_LIFETIME`].
    pub seen: bool,
    /// The query's rule lookup, when it was made with the current rule set.
    pub rule: Option<Option<RuleIdx>>,
}

/// Outstanding queries by (flow, id, question). Decisions depend only on the capture times of
/// a query and its response (never on which other flows share the worker), so results are the
/// same for any number of workers unless the cap is hit.
#[derive(Default)]
pub struct QueryCache {
    pending: HashMap<u64, Pending, foldhash::fast::FixedState>,
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
            self.order
                .retain(|(ts, tag)| pending.get(tag).map(|p| p.asked) == Some(*ts));
        }
        while let Some(&(ts, tag)) = self.order.front() {
            let stale = now.saturating_sub(ts) > QUERY_LIFETIME;
            let full = self.pending.len() >= MAX_PENDING_QUERIES;
            if !stale && !full {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&tag).map(|p| p.asked) == Some(ts) {
                self.pending.remove(&tag);
                if !stale {
                    self.evicted += 1;
                }
            }
        }
    }

    /// Remembers a query and the rule lookup of its question under rule-set `rules_epoch`.
    pub fn remember(
        &mut self,
        key: &FlowKey,
        id: u16,
        name: &HostName,
        now: Timestamp,
        rule: Option<RuleIdx>,
        rules_epoch: u32,
    ) {
        self.expire(now);
        let tag = Self::tag(key, id, name);
        let pending = Pending {
            asked: now,
            rule,
            rules_epoch,
        };
        self.pending.insert(tag, pending);
        self.order.push_back((now, tag));
    }

    /// Whether the query was seen within the lifetime, and its rule lookup if it was made under
    /// `rules_epoch`; forgets the query (a response answers once).
    pub fn take(
        &mut self,
        key: &FlowKey,
        id: u16,
        name: &HostName,
        now: Timestamp,
        rules_epoch: u32,
    ) -> Asked {
        match self.pending.remove(&Self::tag(key, id, name)) {
            Some(p) => Asked {
                seen: now.saturating_sub(p.asked) <= QUERY_LIFETIME,
                rule: (p.rules_epoch == rules_epoch).then_some(p.rule),
            },
            None => Asked {
                seen: false,
                rule: None,
            },
        }
    }
}

/// DNS parsing state reused across messages.
#[derive(Default)]
pub struct DnsScratch {
    pub message: DnsMessage,
    pub queries: QueryCache,
    /// Bumped whenever the worker switches rule sets: rule lookups cached with queries under
    /// an older epoch are not reused.
    pub rules_epoch: u32,
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
        rules_epoch,
        addrs,
    } = &mut scratch.dns;
    let epoch = *rules_epoch;
    let (key, _) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, proto);
    if !msg.is_response {
        for q in &msg.questions {
            let rule = emit.lookup(&q.name);
            queries.remember(&key, msg.id, &q.name, now, rule, epoch);
            emit.name_with_rule(q.name, rule, NameSource::DnsQuery, src, dst, &[], None);
        }
        return;
    }
    // A response: the querier is the destination.
    let (client, server) = (dst, src);
    for q in &msg.questions {
        let asked = queries.take(&key, msg.id, &q.name, now, epoch);
        let query_seen = asked.seen;
        let rule = match asked.rule {
            Some(rule) => rule,
            None => emit.lookup(&q.name),
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn key() -> FlowKey {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 255, 53));
        FlowKey::new(a, 40000, b, 53, 17).0
    }

    fn name(s: &str) -> HostName {
        HostName::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn response_reuses_the_query_lookup_under_the_same_rule_set() {
        let mut cache = QueryCache::default();
        let t0 = Timestamp::from_secs_nanos(100, 0);
        let n = name("dnl-01.geo.kaspersky.com");
        cache.remember(&key(), 7, &n, t0, Some(RuleIdx(3)), 0);
        let asked = cache.take(&key(), 7, &n, t0, 0);
        assert_eq!(
            asked,
            Asked {
                seen: true,
                rule: Some(Some(RuleIdx(3)))
            }
        );
        // Answered once: a second response finds nothing.
        assert_eq!(
            cache.take(&key(), 7, &n, t0, 0),
            Asked {
                seen: false,
                rule: None
            }
        );
    }

    #[test]
    fn lookup_made_under_an_older_rule_set_is_not_reused() {
        let mut cache = QueryCache::default();
        let t0 = Timestamp::from_secs_nanos(100, 0);
        let n = name("example.com");
        cache.remember(&key(), 9, &n, t0, None, 4);
        let asked = cache.take(&key(), 9, &n, t0, 5);
        assert_eq!(
            asked,
            Asked {
                seen: true,
                rule: None
            }
        );
    }

    #[test]
    fn late_response_is_not_seen_but_keeps_the_lookup() {
        let mut cache = QueryCache::default();
        let t0 = Timestamp::from_secs_nanos(100, 0);
        let late = t0.saturating_add(QUERY_LIFETIME + std::time::Duration::from_millis(1));
        let n = name("example.com");
        cache.remember(&key(), 1, &n, t0, None, 0);
        assert_eq!(
            cache.take(&key(), 1, &n, late, 0),
            Asked {
                seen: false,
                rule: Some(None)
            }
        );
        // Other ids and names do not match.
        cache.remember(&key(), 2, &n, t0, None, 0);
        assert!(!cache.take(&key(), 3, &n, t0, 0).seen);
        assert!(!cache.take(&key(), 2, &name("example.org"), t0, 0).seen);
    }
}
