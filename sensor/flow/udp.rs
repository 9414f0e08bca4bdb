//! UDP: DNS messages (stateless, per datagram) and the scratch state the parsers share.
//!
//! Contract: [`emit_dns`] turns the message parsed into `Scratch::dns.message` into name
//! observations — every question of a query; for a response, the question names when the query
//! was not seen, every CNAME target, and the addresses answered (after CNAME chains) for names
//! that matched a rule. Whether a query was seen is remembered in a small direct-mapped cache,
//! not in the flow table, so DNS costs no flow state.
// Packet and file bytes are hostile: no unwrap/expect/panic, no unchecked indexing (issue 8).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::net::IpAddr;

use crate::flow::emit::Emitter;
use crate::flow::table::FlowKey;
use crate::pipeline::observation::{Endpoint, NameSource, MAX_ANSWER_ADDRS};
use crate::proto::dns::{DnsMessage, RData};
use crate::proto::HostName;

/// Slots of the query cache. A response normally follows its query within milliseconds; 4096
/// slots hold every query in flight on a resolver link of a few hundred thousand queries per
/// second for longer than that. A collision only makes a response count as answer-only.
pub const QUERY_CACHE_SLOTS: usize = 4096;
/// CNAME links followed from a question name to its addresses (resolvers cap chains near 8-16).
pub const MAX_CNAME_CHAIN: usize = 16;

/// Remembers recent queries by (flow, id, question).
pub struct QueryCache {
    slots: Vec<u64>,
}

impl Default for QueryCache {
    fn default() -> Self {
        QueryCache {
            slots: vec![0; QUERY_CACHE_SLOTS],
        }
    }
}

impl QueryCache {
    fn tag(key: &FlowKey, id: u16, name: &HostName) -> u64 {
        use std::hash::BuildHasher;
        // Never 0, so that empty slots never match.
        foldhash::fast::FixedState::with_seed(0x646e73).hash_one((key, id, name)) | 1
    }

    fn slot(&mut self, tag: u64) -> Option<&mut u64> {
        let idx = (tag >> 20) as usize % QUERY_CACHE_SLOTS;
        self.slots.get_mut(idx)
    }

    pub fn remember(&mut self, key: &FlowKey, id: u16, name: &HostName) {
        let tag = Self::tag(key, id, name);
        if let Some(slot) = self.slot(tag) {
            *slot = tag;
        }
    }

    /// Whether the query was seen; forgets it (a response answers once).
    pub fn take(&mut self, key: &FlowKey, id: u16, name: &HostName) -> bool {
        let tag = Self::tag(key, id, name);
        match self.slot(tag) {
            Some(slot) if *slot == tag => {
                *slot = 0;
                true
            }
            _ => false,
        }
    }
}

/// DNS parsing state reused across messages.
#[derive(Default)]
pub struct DnsScratch {
    pub message: DnsMessage,
    pub queries: QueryCache,
}

/// Per-worker buffers and caches shared by the parsers.
#[derive(Default)]
pub struct Scratch {
    /// ClientHello pieces when it spans TLS records.
    pub tls: Vec<u8>,
    pub dns: DnsScratch,
}

/// Addresses (and smallest TTL) answered for `name` in `msg`, following CNAME chains.
fn answers_for(msg: &DnsMessage, name: &HostName, addrs: &mut Vec<IpAddr>) -> Option<u32> {
    addrs.clear();
    let mut chain: [Option<HostName>; MAX_CNAME_CHAIN] = [None; MAX_CNAME_CHAIN];
    let mut chain_len = 1usize;
    if let Some(first) = chain.get_mut(0) {
        *first = Some(*name);
    }
    let in_chain =
        |chain: &[Option<HostName>], n: &HostName| chain.iter().flatten().any(|c| c == n);
    let mut ttl: Option<u32> = None;
    // Answers are usually in chain order; a few passes cover any order.
    for _ in 0..MAX_CNAME_CHAIN {
        let mut grew = false;
        for answer in &msg.answers {
            if let RData::Cname(target) = &answer.data {
                if in_chain(&chain, &answer.name) && !in_chain(&chain, target) {
                    if let Some(slot) = chain.get_mut(chain_len) {
                        *slot = Some(*target);
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
        if in_chain(&chain, &answer.name) && addrs.len() < MAX_ANSWER_ADDRS && !addrs.contains(&ip)
        {
            addrs.push(ip);
            ttl = Some(ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
        }
    }
    ttl
}

/// Emits the names of the DNS message in `scratch.dns.message`, sent from `src` to `dst` over
/// transport `proto` (17 or 6).
pub fn emit_dns(
    scratch: &mut Scratch,
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    emit: &mut Emitter<'_>,
) {
    let DnsScratch {
        message: msg,
        queries,
    } = &mut scratch.dns;
    let (key, _) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, proto);
    if !msg.is_response {
        for q in &msg.questions {
            queries.remember(&key, msg.id, &q.name);
            emit.name(q.name, NameSource::DnsQuery, src, dst, &[], None);
        }
        return;
    }
    // A response: the querier is the destination.
    let (client, server) = (dst, src);
    let mut addrs: Vec<IpAddr> = Vec::new();
    for q in &msg.questions {
        let query_seen = queries.take(&key, msg.id, &q.name);
        let detection = emit.is_detection(&q.name);
        if !query_seen || detection {
            let ttl = answers_for(msg, &q.name, &mut addrs);
            if !query_seen {
                emit.name(q.name, NameSource::DnsAnswer, client, server, &addrs, ttl);
            } else if !addrs.is_empty() {
                emit.dns_answer(q.name, client, server, &addrs, ttl);
            }
        }
    }
    for answer in &msg.answers {
        if let RData::Cname(target) = &answer.data {
            let ttl = answers_for(msg, target, &mut addrs);
            emit.name(*target, NameSource::DnsAnswer, client, server, &addrs, ttl);
        }
    }
}
