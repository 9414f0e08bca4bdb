//! UDP: DNS messages (stateless, per datagram) and the scratch state the parsers share.
//!
//! Contract: [`emit_dns`] turns the message parsed into `Scratch::dns.message` into name
//! observations — every question of a query (with its QTYPE); for a response, the question
//! names when the query was not seen, every CNAME target, and the response to each query that
//! matched a rule (with the addresses answered after CNAME chains; without any only when DNS
//! facts are wanted). Whether a query was seen is remembered in a small direct-mapped cache,
//! not in the flow table, so DNS costs no flow state.
//!
//! Copies: names are borrowed from the parsed message; each name that needs a rule lookup is
//! copied once into the worker's reusable [`DnsScratch::name`] (only its own bytes), and into an
//! observation only when it is reported. A response to a query seen before reuses the query's
//! lookup and copies nothing unless the query matched a rule.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::flow::emit::Emitter;
use crate::flow::table::FlowKey;
use crate::observation::{
    DnsFacts, DnsInfo, DnsName, DnsQuestion, DnsRecord, DnsRecordData, DnsService, Endpoint,
    NameSource, MAX_ANSWER_ADDRS, MAX_DNS_FACT_RECORDS,
};
use crate::proto::dns::{Answer, DnsMessage, NameRef, Question, RData, Section};
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
    /// Hashes the name's text (as the parser keeps it: lower-case, no trailing dot).
    fn tag(key: &FlowKey, id: u16, name: &[u8]) -> u64 {
        foldhash::fast::FixedState::with_seed(0x646e73).hash_one((key, id, name))
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
        name: &[u8],
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
        name: &[u8],
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
pub struct DnsScratch {
    pub message: DnsMessage,
    pub queries: QueryCache,
    /// Bumped whenever the worker switches rule sets: rule lookups cached with queries under
    /// an older epoch are not reused.
    pub rules_epoch: u32,
    /// Addresses answered for the name being emitted (at most [`MAX_ANSWER_ADDRS`]); reused so
    /// that a response costs no allocation unless it becomes an observation.
    pub addrs: Vec<IpAddr>,
    /// The name being looked up or emitted, filled in place from the message's name text.
    pub name: HostName,
    /// Names of the message being emitted so far, so that each is reported once per message.
    pub listed: Vec<NameRef>,
    /// Addresses an earlier read of the same message gave the name being emitted (at most
    /// [`MAX_ANSWER_ADDRS`]; see [`emit_dns_read`]).
    pub earlier_addrs: Vec<IpAddr>,
}

impl Default for DnsScratch {
    fn default() -> Self {
        DnsScratch {
            message: DnsMessage::default(),
            queries: QueryCache::default(),
            rules_epoch: 0,
            addrs: Vec::new(),
            name: HostName::scratch(),
            listed: Vec::new(),
            earlier_addrs: Vec::new(),
        }
    }
}

/// Per-worker buffers and caches shared by the parsers.
#[derive(Default)]
pub struct Scratch {
    /// ClientHello pieces when it spans TLS records.
    pub tls: Vec<u8>,
    pub dns: DnsScratch,
}

/// The message a DNS name came from and, for a query, the question that held it. Cheap to
/// pass along; [`DnsAbout::facts`] copies what it describes only for names that become
/// observations.
#[derive(Clone, Copy)]
pub struct DnsAbout<'m> {
    pub msg: &'m DnsMessage,
    /// The question that gave the name (a query), or the first question (a response).
    pub question: Option<Question>,
}

impl<'m> DnsAbout<'m> {
    /// A query's question.
    pub fn query(msg: &'m DnsMessage, question: Question) -> Self {
        DnsAbout {
            msg,
            question: Some(question),
        }
    }

    /// A response (or an UPDATE, for the names of its other sections), described by its first
    /// question.
    pub fn response(msg: &'m DnsMessage) -> Self {
        DnsAbout {
            msg,
            question: msg.questions.first().copied(),
        }
    }

    /// Copies the header, the question and (for a response) at most [`MAX_DNS_FACT_RECORDS`]
    /// answer records out of the message.
    pub fn facts(self) -> DnsFacts {
        let msg = self.msg;
        // RFC 1035 §4.1.2: the QTYPE is the question's whatever bytes its name holds.
        let question = self.question.and_then(|q| {
            let name = if q.name.is_host() {
                DnsName::Host(msg.host_name(q.name)?)
            } else {
                DnsName::Other(String::from_utf8_lossy(msg.name(q.name)).into())
            };
            Some(DnsQuestion {
                name,
                qtype: q.qtype,
            })
        });
        let mut answers = Vec::new();
        let mut left_out = 0u16;
        if msg.is_response {
            for answer in &msg.answers {
                let Some(owner) = msg.host_name(answer.name) else {
                    continue;
                };
                if answers.len() >= MAX_DNS_FACT_RECORDS {
                    left_out = left_out.saturating_add(1);
                    continue;
                }
                let data = match answer.data {
                    RData::A(v4) => DnsRecordData::Addr(IpAddr::V4(v4)),
                    RData::Aaaa(v6) => DnsRecordData::Addr(IpAddr::V6(v6)),
                    RData::Cname(target) => msg
                        .host_name(target)
                        .map_or(DnsRecordData::Undecoded, DnsRecordData::Name),
                    RData::Other => DnsRecordData::Undecoded,
                };
                answers.push(DnsRecord {
                    owner,
                    rtype: answer.rtype,
                    ttl: answer.ttl,
                    data,
                });
            }
        }
        DnsFacts {
            id: msg.id,
            flags: msg.flags,
            question,
            answers,
            answers_left_out: left_out,
        }
    }
}

/// Addresses (and smallest TTL) answered for `name` in `msg`, following CNAME chains.
fn answers_for(msg: &DnsMessage, name: NameRef, addrs: &mut Vec<IpAddr>) -> Option<u32> {
    answers_among(msg, &msg.answers, name, addrs)
}

/// [`answers_for`] as far as the answer records `answers` (a prefix of `msg.answers`) go.
fn answers_among(
    msg: &DnsMessage,
    answers: &[Answer],
    name: NameRef,
    addrs: &mut Vec<IpAddr>,
) -> Option<u32> {
    addrs.clear();
    let mut chain: [NameRef; MAX_CNAME_CHAIN] = [name; MAX_CNAME_CHAIN];
    let mut chain_len = 1usize;
    // Two references to the same text are the same name; others compare their text.
    let in_chain = |chain: &[NameRef], len: usize, n: NameRef| {
        chain
            .iter()
            .take(len)
            .any(|&c| c == n || msg.name(c) == msg.name(n))
    };
    let mut ttl: Option<u32> = None;
    // Answers are usually in chain order; a few passes cover any order.
    for _ in 0..MAX_CNAME_CHAIN {
        let mut grew = false;
        for answer in answers {
            if let RData::Cname(target) = answer.data {
                if in_chain(&chain, chain_len, answer.name) && !in_chain(&chain, chain_len, target)
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
    for answer in answers {
        let ip = match answer.data {
            RData::A(v4) => IpAddr::V4(v4),
            RData::Aaaa(v6) => IpAddr::V6(v6),
            _ => continue,
        };
        if in_chain(&chain, chain_len, answer.name)
            && addrs.len() < MAX_ANSWER_ADDRS
            && !addrs.contains(&ip)
        {
            addrs.push(ip);
            ttl = Some(ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
        }
    }
    ttl
}

/// DNS opcodes (RFC 1035 §4.1.1, RFC 2136 §1).
const OPCODE_UPDATE: u8 = 5;

/// The DNS service of a message between these ports (RFC 6762 §3, RFC 4795 §2.5).
fn dns_service(src: Endpoint, dst: Endpoint) -> DnsService {
    match (src.port, dst.port) {
        (5353, _) | (_, 5353) => DnsService::Mdns,
        (5355, _) | (_, 5355) => DnsService::Llmnr,
        _ => DnsService::Unicast,
    }
}

/// Emits the names of the DNS message in `scratch.dns.message`, sent from `src` to `dst` over
/// transport `proto` (17 or 6), each distinct name once: the questions (a query's, or a
/// response's whose query was not seen), then per answer record its owner and CNAME target,
/// then the owners of authority and additional records. For an UPDATE (RFC 2136 §2) the
/// prerequisite and update owners are [`NameSource::DnsUpdate`]; other authority and
/// additional owners are [`NameSource::DnsRecord`] and never matched. Names that are not host
/// names go out as other names. Each host name costs at most one rule lookup (none for the
/// question of a response whose query was seen); answered addresses are gathered only for
/// names that become observations.
///
/// For a message read whole (a datagram); a DNS-over-TCP message read in prefixes goes through
/// [`emit_dns_read`].
pub fn emit_dns(
    scratch: &mut Scratch,
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    emit: &mut Emitter<'_>,
) {
    emit_dns_read(scratch, src, dst, proto, emit, ReadSoFar::default());
}

/// How far the reads of a DNS message made so far went: a DNS-over-TCP message is read before
/// its end arrives ([`emit_dns_read`]), and each read of a longer prefix of it emits only what
/// the earlier ones did not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSoFar {
    /// Names emitted, numbered in message order (see [`emit_dns_read`]).
    pub names: usize,
    /// Answer records the last read held (at most `proto::dns::MAX_ANSWERS`).
    pub answers: usize,
}

/// Emits the names of the DNS message in `scratch.dns.message` as [`emit_dns`] does, for a
/// message that may have been read before. Its names, in [`emit_dns`]'s order, are numbered
/// from 0; those below `before.names` were emitted by an earlier read of a prefix of the same
/// message (a DNS-over-TCP message read before its end arrived) and are not emitted again.
/// Such a name that matched a rule may have been answered with addresses in records the
/// earlier reads did not hold (those past `before.answers`): the addresses they did not give go
/// out then as a [`crate::observation::Observation::DnsAnswer`] without facts, for correlation
/// only (its name and event went out with the earlier read). So every address answered for a
/// matched name reaches correlation however the message is cut. Returns how far this read
/// went.
pub fn emit_dns_read(
    scratch: &mut Scratch,
    src: Endpoint,
    dst: Endpoint,
    proto: u8,
    emit: &mut Emitter<'_>,
    before: ReadSoFar,
) -> ReadSoFar {
    let now = emit.ctx.ts;
    let DnsScratch {
        message: msg,
        queries,
        rules_epoch,
        addrs,
        name,
        listed,
        earlier_addrs,
    } = &mut scratch.dns;
    let from = before.names;
    let epoch = *rules_epoch;
    let (key, _) = FlowKey::new(src.ip, src.port, dst.ip, dst.port, proto);
    emit.dns = Some(DnsInfo {
        opcode: msg.opcode,
        service: dns_service(src, dst),
    });
    listed.clear();
    let mut index = 0usize;
    // A query names the client as sender; a response, as receiver.
    let (client, server) = if msg.is_response {
        (dst, src)
    } else {
        (src, dst)
    };
    let update = msg.opcode == OPCODE_UPDATE;
    // Records read since the last read that may answer an earlier name with an address (a
    // new address, or a CNAME that extends a chain): the earlier names are looked at again.
    let late = from > 0
        && msg.is_response
        && msg.answers.get(before.answers..).is_some_and(|new| {
            new.iter()
                .any(|a| matches!(a.data, RData::A(_) | RData::Aaaa(_) | RData::Cname(_)))
        });
    let late_read = late.then(|| LateRead {
        earlier: msg.answers.get(..before.answers).unwrap_or(&msg.answers),
        client,
        server,
    });
    for q in &msg.questions {
        let fresh = index >= from;
        index += 1;
        listed.push(q.name);
        if !fresh {
            if let Some(seen) = late_read {
                seen.answers(emit, msg, q.name, name, addrs, earlier_addrs);
            }
            continue;
        }
        let text = msg.name(q.name);
        if !msg.is_response {
            if !q.name.is_host() {
                queries.remember(&key, msg.id, text, now, None, epoch);
                emit_other(
                    emit,
                    msg,
                    q.name,
                    NameSource::DnsQuery,
                    client,
                    server,
                    DnsAbout::query(msg, *q),
                );
                continue;
            }
            if !msg.host_name_into(q.name, name) {
                continue;
            }
            let rule = emit.lookup(name);
            queries.remember(&key, msg.id, text, now, rule, epoch);
            emit.qtype = Some(q.qtype);
            emit.name_with_rule(
                name,
                rule,
                NameSource::DnsQuery,
                src,
                dst,
                &[],
                None,
                Some(DnsAbout::query(msg, *q)),
            );
            emit.qtype = None;
            continue;
        }
        let asked = queries.take(&key, msg.id, text, now, epoch);
        if !q.name.is_host() {
            if !asked.seen {
                emit_other(
                    emit,
                    msg,
                    q.name,
                    NameSource::DnsAnswer,
                    client,
                    server,
                    DnsAbout::response(msg),
                );
            }
            continue;
        }
        let query_seen = asked.seen;
        let rule = match asked.rule {
            Some(rule) => rule,
            None => {
                if !msg.host_name_into(q.name, name) {
                    continue;
                }
                emit.lookup(name)
            }
        };
        if query_seen && rule.is_none() {
            // Reported with its query, and no addresses to remember: the common case.
            continue;
        }
        if asked.rule.is_some() && !msg.host_name_into(q.name, name) {
            continue;
        }
        if !query_seen {
            emit.qtype = Some(q.qtype);
            emit_answered_name(emit, msg, q.name, name, rule, client, server, addrs);
            emit.qtype = None;
        } else {
            // Without addresses (NXDOMAIN, TXT) only for the facts: the response is an EVE
            // record, but there is nothing to correlate.
            let ttl = answers_for(msg, q.name, addrs);
            if !addrs.is_empty() || emit.dns_facts {
                let about = Some(DnsAbout::response(msg));
                emit.dns_answer_with_rule(name, rule, client, server, addrs, ttl, about);
            }
        }
    }
    let owner_source = if update {
        NameSource::DnsUpdate
    } else {
        NameSource::DnsAnswer
    };
    for answer in &msg.answers {
        let target = match answer.data {
            RData::Cname(target) => Some((target, NameSource::DnsAnswer)),
            _ => None,
        };
        for (at, source) in std::iter::once((answer.name, owner_source)).chain(target) {
            if is_listed(msg, listed, at) {
                continue;
            }
            listed.push(at);
            let fresh = index >= from;
            index += 1;
            if !fresh {
                if let Some(seen) = late_read.filter(|_| source == NameSource::DnsAnswer) {
                    seen.answers(emit, msg, at, name, addrs, earlier_addrs);
                }
                continue;
            }
            if !at.is_host() {
                emit_other(
                    emit,
                    msg,
                    at,
                    source,
                    client,
                    server,
                    DnsAbout::response(msg),
                );
            } else if msg.host_name_into(at, name) {
                let rule = emit.lookup(name);
                emit_answered_name_as(emit, msg, at, name, rule, source, client, server, addrs);
            }
        }
    }
    for record in &msg.others {
        if is_listed(msg, listed, record.name) {
            continue;
        }
        listed.push(record.name);
        let fresh = index >= from;
        index += 1;
        if !fresh {
            continue;
        }
        let matched = update && record.section == Section::Authority;
        let source = if matched {
            NameSource::DnsUpdate
        } else {
            NameSource::DnsRecord
        };
        if !record.name.is_host() {
            emit_other(
                emit,
                msg,
                record.name,
                source,
                client,
                server,
                DnsAbout::response(msg),
            );
        } else if msg.host_name_into(record.name, name) {
            // Context names (zone apexes, glue) are reported, never matched.
            let rule = if matched { emit.lookup(name) } else { None };
            let at = record.name;
            emit_answered_name_as(emit, msg, at, name, rule, source, client, server, addrs);
        }
    }
    emit.dns = None;
    ReadSoFar {
        names: index,
        answers: msg.answers.len(),
    }
}

/// What an earlier read of a message held, for a later read of a longer prefix of it
/// ([`emit_dns_read`]).
#[derive(Clone, Copy)]
struct LateRead<'m> {
    /// The answer records the earlier reads held (a prefix of the message's).
    earlier: &'m [Answer],
    client: Endpoint,
    server: Endpoint,
}

impl LateRead<'_> {
    /// `at`, a name emitted by an earlier read: when it matches a rule, the addresses the
    /// message now answers for it that the earlier records did not go out as a `DnsAnswer`
    /// without facts (correlation only). One rule lookup; addresses gathered only when matched.
    fn answers(
        self,
        emit: &mut Emitter<'_>,
        msg: &DnsMessage,
        at: NameRef,
        name: &mut HostName,
        addrs: &mut Vec<IpAddr>,
        earlier_addrs: &mut Vec<IpAddr>,
    ) {
        if !at.is_host() || !msg.host_name_into(at, name) {
            return;
        }
        let Some(rule) = emit.lookup(name) else {
            return;
        };
        let ttl = answers_for(msg, at, addrs);
        if addrs.is_empty() {
            return;
        }
        answers_among(msg, self.earlier, at, earlier_addrs);
        addrs.retain(|a| !earlier_addrs.contains(a));
        if !addrs.is_empty() {
            let (client, server) = (self.client, self.server);
            emit.dns_answer_with_rule(name, Some(rule), client, server, addrs, ttl, None);
        }
    }
}

/// Whether `at` is already among `listed` (names of the same message). The most recent ones
/// are checked first: an answer's owner is usually the previous record's owner or CNAME target.
#[inline]
fn is_listed(msg: &DnsMessage, listed: &[NameRef], at: NameRef) -> bool {
    listed.iter().rev().any(|&l| msg.same_name(l, at))
}

/// A name of `msg` that is not a host name, as an other name (its text is already escaped).
/// `about` is the message (and question) it came from.
#[allow(clippy::too_many_arguments)]
fn emit_other(
    emit: &mut Emitter<'_>,
    msg: &DnsMessage,
    at: NameRef,
    source: NameSource,
    client: Endpoint,
    server: Endpoint,
    about: DnsAbout<'_>,
) {
    let text = msg.name(at);
    emit.other_name(
        || String::from_utf8_lossy(text).into_owned(),
        source,
        client,
        server,
        Some(about),
    );
}

/// Emits `name` (the text of `at` in `msg`) as seen in a response, with the addresses the
/// response gives for it when the name becomes an observation (they are not gathered
/// otherwise).
#[allow(clippy::too_many_arguments)]
fn emit_answered_name(
    emit: &mut Emitter<'_>,
    msg: &DnsMessage,
    at: NameRef,
    name: &HostName,
    rule: Option<RuleIdx>,
    client: Endpoint,
    server: Endpoint,
    addrs: &mut Vec<IpAddr>,
) {
    let ttl = if emit.keeps(rule) {
        answers_for(msg, at, addrs)
    } else {
        addrs.clear();
        None
    };
    emit.name_with_rule(
        name,
        rule,
        NameSource::DnsAnswer,
        client,
        server,
        addrs,
        ttl,
        Some(DnsAbout::response(msg)),
    );
}

/// A name of a response with its source: an answer ([`NameSource::DnsAnswer`]) goes out as
/// [`emit_answered_name`], with the addresses answered for it; any other (an UPDATE's owners,
/// authority and additional owners) without addresses.
#[allow(clippy::too_many_arguments)]
fn emit_answered_name_as(
    emit: &mut Emitter<'_>,
    msg: &DnsMessage,
    at: NameRef,
    name: &HostName,
    rule: Option<RuleIdx>,
    source: NameSource,
    client: Endpoint,
    server: Endpoint,
    addrs: &mut Vec<IpAddr>,
) {
    if source == NameSource::DnsAnswer {
        return emit_answered_name(emit, msg, at, name, rule, client, server, addrs);
    }
    emit.name_with_rule(
        name,
        rule,
        source,
        client,
        server,
        &[],
        None,
        Some(DnsAbout::response(msg)),
    );
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

    fn name(s: &str) -> &[u8] {
        s.as_bytes()
    }

    /// A query with one question of `labels` and `qtype` (RFC 1035 §4.1.1, §4.1.2).
    fn query_bytes(labels: &[&[u8]], qtype: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in labels {
            m.push(u8::try_from(label.len()).unwrap_or(0));
            m.extend_from_slice(label);
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    #[test]
    fn facts_keep_the_qtype_of_a_question_that_is_not_a_host_name() {
        // RFC 1035 §4.1.2: the QTYPE does not depend on the name's bytes. A NUL and a dot
        // inside labels: the name is kept in presentation form (RFC 1035 §5.1).
        let bytes = query_bytes(&[b"a\0b", b"x.y", b"example"], 16);
        let mut msg = DnsMessage::default();
        assert!(crate::proto::dns::parse_message(&bytes, &mut msg).is_ok());
        let q = *msg.questions.first().expect("one question");
        assert!(!q.name.is_host());
        let facts = DnsAbout::query(&msg, q).facts();
        let question = facts.question.expect("the question is kept");
        assert_eq!(question.qtype, 16);
        assert_eq!(question.name.to_string(), "a\\000b.x\\.y.example");
        // A host name stays a host name.
        let bytes = query_bytes(&[b"ds", b"kaspersky", b"com"], 1);
        assert!(crate::proto::dns::parse_message(&bytes, &mut msg).is_ok());
        let q = *msg.questions.first().expect("one question");
        let facts = DnsAbout::query(&msg, q).facts();
        let question = facts.question.expect("the question is kept");
        assert!(matches!(question.name, DnsName::Host(_)));
        assert_eq!(
            (question.name.to_string().as_str(), question.qtype),
            ("ds.kaspersky.com", 1)
        );
    }

    #[test]
    fn response_reuses_the_query_lookup_under_the_same_rule_set() {
        let mut cache = QueryCache::default();
        let t0 = Timestamp::from_secs_nanos(100, 0);
        let n = name("dnl-01.geo.kaspersky.com");
        cache.remember(&key(), 7, n, t0, Some(RuleIdx(3)), 0);
        let asked = cache.take(&key(), 7, n, t0, 0);
        assert_eq!(
            asked,
            Asked {
                seen: true,
                rule: Some(Some(RuleIdx(3)))
            }
        );
        // Answered once: a second response finds nothing.
        assert_eq!(
            cache.take(&key(), 7, n, t0, 0),
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
        cache.remember(&key(), 9, n, t0, None, 4);
        let asked = cache.take(&key(), 9, n, t0, 5);
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
        cache.remember(&key(), 1, n, t0, None, 0);
        assert_eq!(
            cache.take(&key(), 1, n, late, 0),
            Asked {
                seen: false,
                rule: Some(None)
            }
        );
        // Other ids and names do not match.
        cache.remember(&key(), 2, n, t0, None, 0);
        assert!(!cache.take(&key(), 3, n, t0, 0).seen);
        assert!(!cache.take(&key(), 2, name("example.org"), t0, 0).seen);
    }
}
