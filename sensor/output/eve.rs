//! EVE-compatible events (`--events-format eve`): one JSON object per line, shaped like the
//! records Suricata 7 writes to `eve.json`, so a SIEM that already parses Suricata's EVE reads
//! ksensor's events with the same mapping.
//!
//! Contract: a pure rendering of one observation (with the rule set, the inventory's
//! correlation and the input names) into one [`EveRecord`]; it reads nothing else and parses
//! nothing. The record carries what Suricata would log for the same name where ksensor knows
//! it, and a `ksensor` object with what only ksensor knows (the rule, its category and
//! confidence, which protocol field the name came from, the input). The README section "EVE
//! events" documents every field and the Suricata fields that are not produced, and why.
//!
//! References: Suricata 7.0 user guide, "Eve JSON Format" (common section, DNS version 2,
//! TLS, HTTP, QUIC records); Suricata 7.0 `rust/src/dns/log.rs` (DNS version 2 query and
//! answer records, rrtype and rcode names); the Community ID specification
//! (<https://github.com/corelight/community-id-spec>).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use std::cell::Cell;

use crate::inventory::verdict::classify;
use crate::inventory::{name_evidence_kind, origin, Correlation, EvidenceKind};
use crate::observation::{
    DnsFacts, DnsInfo, DnsRecordData, Endpoint, NameSighting, NameSource, Observation, Observed,
    OtherNameForm, OtherNameSighting,
};
use crate::proto::update::UpdateMagic;
use crate::proto::NameKind;
use crate::rules::{RuleIdx, RuleSet};

use super::describe::{evidence_origin, magic_label};
use super::mac_string;

/// Where the observations come from: it decides between Suricata's `pcap_cnt` (replay) and
/// `in_iface` (live capture).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EveSource {
    /// Capture files: `pcap_cnt` is the 1-based number of the packet over all inputs.
    Files,
    /// Interfaces: `in_iface` names the interface.
    Interfaces,
}

/// One EVE line. Field order follows Suricata's.
#[derive(Serialize)]
pub struct EveRecord<'a> {
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_iface: Option<&'a str>,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<[u16; 1]>,
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: String,
    pub community_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<EveDns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<EveSni<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<EveHttp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic: Option<EveSni<'a>>,
    pub ksensor: KsensorFields<'a>,
}

/// `tls` and `quic`: the ClientHello's server name.
#[derive(Serialize)]
pub struct EveSni<'a> {
    pub sni: &'a str,
}

/// `http`: the request's host; `http_method` only when ksensor knows it (a `CONNECT`).
#[derive(Serialize)]
pub struct EveHttp<'a> {
    pub hostname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_method: Option<&'static str>,
}

/// `dns`, version 2 (Suricata 7): a query or an answer record.
#[derive(Serialize)]
#[serde(untagged)]
pub enum EveDns {
    Query(EveDnsQuery),
    Answer(EveDnsAnswer),
}

#[derive(Serialize)]
pub struct EveDnsQuery {
    pub version: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: u16,
    pub rrname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrtype: Option<String>,
    pub opcode: u8,
}

#[derive(Serialize)]
pub struct EveDnsAnswer {
    pub version: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: u16,
    /// The header flags word in hexadecimal without `0x` (Suricata's `{:x}`).
    pub flags: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aa: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rd: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ra: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub z: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cd: Option<bool>,
    pub opcode: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rrtype: Option<String>,
    pub rcode: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<EveDnsRecord>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grouped: BTreeMap<String, Vec<String>>,
}

/// One answer record ("detailed" format).
#[derive(Serialize)]
pub struct EveDnsRecord {
    pub rrname: String,
    pub rrtype: String,
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rdata: Option<String>,
}

/// What only ksensor knows.
#[derive(Serialize)]
pub struct KsensorFields<'a> {
    /// The native event kind: `dns`, `tls`, `quic`, `http`, `correlated`, `update-payload`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<EveRule<'a>>,
    /// What the verdict model makes of this sighting, as the report's evidence entries say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EveEvidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outer: Option<EveOuter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<EveCorrelation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magic: Option<&'static str>,
    /// DNS answer records past `observation::MAX_DNS_FACT_RECORDS` (not in `dns.answers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers_left_out: Option<u16>,
    /// The name is an IPv4/IPv6 address literal (never matched against name rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub literal: Option<bool>,
    /// For a literal: its address is in Kaspersky's address space, on a connection the server
    /// accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kaspersky_space: Option<bool>,
    /// `false`: the name holds bytes a host name cannot (escaped as in DNS presentation form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_name: Option<bool>,
    pub input: &'a str,
}

/// The rule a name matched: what it says about every sighting of the name.
#[derive(Serialize)]
pub struct EveRule<'a> {
    pub id: &'a str,
    pub category: &'static str,
    pub confidence: &'static str,
    /// Which products contact the name (`rules::ProductClass`).
    pub product: &'static str,
    /// The category is one the products themselves contact (`Category::is_install_evidence`),
    /// not one a person reaches in a browser or a mail server resolves.
    pub install_evidence: bool,
}

/// The sighting as the verdict model files it (`inventory::verdict::classify`): the same
/// labels as an evidence entry of the JSON report.
#[derive(Serialize)]
pub struct EveEvidence {
    /// The evidence source (`dns-query`, `dns-other-lookup`, `cloud-console-session`,
    /// `dns-correlated-connection`, `update-payload`, …).
    pub source: &'static str,
    /// For update payloads: `kaspersky-name`, `kaspersky-address` or `server`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
    pub family: &'static str,
    /// What the sighting says about the product (`antivirus`, `kaspersky`, `none`, …).
    pub product: &'static str,
    /// Whether it can support an install verdict, and whether it does so directly (not only
    /// as corroboration). Absent for an update payload from a server that is not Kaspersky's:
    /// that counts only if the server is an update mirror, which the verdict decides later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
}

#[derive(Serialize)]
pub struct EveOuter {
    pub src: String,
    pub dst: String,
}

#[derive(Serialize)]
pub struct EveCorrelation {
    pub reason: &'static str,
    pub answered_at: String,
}

/// Suricata's timestamp: microseconds and a numeric UTC offset,
/// `2024-01-01T00:00:00.000000+0000` (ksensor always writes UTC).
pub fn eve_timestamp(ts: crate::time::Timestamp) -> String {
    let mut s = ts.rfc3339_micros().to_string();
    if s.ends_with('Z') {
        s.pop();
    }
    s.push_str("+0000");
    s
}

/// An address as Suricata writes it: IPv4 dotted, IPv6 as eight groups of four lower-case hex
/// digits (no `::` compression).
pub fn eve_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!(
                "{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}:{:04x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
    }
}

/// Transport names as Suricata prints them (its protocol table, upper case); others as the
/// decimal protocol number.
fn proto_name(proto: u8) -> String {
    match proto {
        6 => "TCP".into(),
        17 => "UDP".into(),
        132 => "SCTP".into(),
        other => other.to_string(),
    }
}

/// Community ID v1 with seed 0: `1:` and the base64 of SHA-1 over seed, the smaller
/// endpoint's address, the other address, protocol, a zero byte, then the two ports in the
/// same order (community-id-spec README, "Pseudo code" and "Technical details").
pub fn community_id(a: Endpoint, b: Endpoint, proto: u8) -> String {
    let (lo, hi) = if (a.ip, a.port) <= (b.ip, b.port) {
        (a, b)
    } else {
        (b, a)
    };
    let mut input = Vec::with_capacity(2 + 16 + 16 + 2 + 4);
    input.extend_from_slice(&0u16.to_be_bytes());
    for ip in [lo.ip, hi.ip] {
        match ip {
            IpAddr::V4(v4) => input.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => input.extend_from_slice(&v6.octets()),
        }
    }
    input.extend_from_slice(&[proto, 0]);
    input.extend_from_slice(&lo.port.to_be_bytes());
    input.extend_from_slice(&hi.port.to_be_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    format!("1:{}", base64(digest.as_ref()))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |i: u32| char::from(ALPHABET.get((i & 63) as usize).copied().unwrap_or(b'='));
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
}

/// Record type mnemonics (IANA "Resource Record (RR) TYPEs") for the types Suricata 7 names;
/// others, as in Suricata, by decimal number. Suricata 7.0.10 spells three of them differently
/// (`ND` for MD, `NSAPPT` for NSAP-PTR, `CDSNKEY` for CDNSKEY); these are IANA's.
pub fn rrtype_name(rtype: u16) -> String {
    let name = match rtype {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        55 => "HIP",
        59 => "CDS",
        60 => "CDNSKEY",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        other => return other.to_string(),
    };
    name.to_string()
}

/// Response codes (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 6895 §2.3) as Suricata names them;
/// only the header's four bits exist here.
pub fn rcode_name(rcode: u8) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        other => return other.to_string(),
    };
    name.to_string()
}

fn query_record(name: &str, facts: Option<&DnsFacts>) -> EveDns {
    EveDns::Query(EveDnsQuery {
        version: 2,
        kind: "query",
        id: facts.map_or(0, |f| f.id),
        rrname: name.to_string(),
        rrtype: facts
            .and_then(|f| f.question.as_ref())
            .map(|q| rrtype_name(q.qtype)),
        opcode: facts.map_or(0, DnsFacts::opcode),
    })
}

fn answer_record(facts: &DnsFacts) -> EveDns {
    // RFC 1035 §4.1.1 and RFC 4035 §3.2: QR 0x8000, AA 0x0400, TC 0x0200, RD 0x0100,
    // RA 0x0080, Z 0x0040, AD 0x0020, CD 0x0010. Suricata writes a flag only when it is set.
    let bit = |mask: u16| (facts.flags & mask != 0).then_some(true);
    let mut answers = Vec::with_capacity(facts.answers.len());
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &facts.answers {
        let rrtype = rrtype_name(r.rtype);
        let rdata = match r.data {
            DnsRecordData::Addr(ip) => Some(eve_ip(ip)),
            DnsRecordData::Name(target) => Some(target.to_string()),
            DnsRecordData::Undecoded => None,
        };
        if let Some(data) = &rdata {
            grouped
                .entry(rrtype.clone())
                .or_default()
                .push(data.clone());
        }
        answers.push(EveDnsRecord {
            rrname: r.owner.to_string(),
            rrtype,
            ttl: r.ttl,
            rdata,
        });
    }
    EveDns::Answer(EveDnsAnswer {
        version: 2,
        kind: "answer",
        id: facts.id,
        flags: format!("{:x}", facts.flags),
        qr: bit(0x8000),
        aa: bit(0x0400),
        tc: bit(0x0200),
        rd: bit(0x0100),
        ra: bit(0x0080),
        z: bit(0x0040),
        ad: bit(0x0020),
        cd: bit(0x0010),
        opcode: facts.opcode(),
        rrname: facts.question.as_ref().map(|q| q.name.to_string()),
        rrtype: facts.question.as_ref().map(|q| rrtype_name(q.qtype)),
        rcode: rcode_name(facts.rcode()),
        answers,
        grouped,
    })
}

fn rule_fields<'r>(
    rules: &'r RuleSet,
    idx: RuleIdx,
    confidence: Option<&'static str>,
) -> EveRule<'r> {
    let rule = rules.rule(idx);
    EveRule {
        id: &rule.id,
        category: rule.category.label(),
        confidence: confidence.unwrap_or(rule.confidence.label()),
        product: rule.product.label(),
        install_evidence: rule.category.is_install_evidence(),
    }
}

/// What the verdict model makes of evidence of `kind` for `rule`. Only an update from a server
/// that is not Kaspersky's asks whether the server is a mirror; the answer is not known when
/// the event is written, so `install` and `direct` are left out then.
fn evidence_fields(rules: &RuleSet, kind: EvidenceKind, rule: Option<RuleIdx>) -> EveEvidence {
    let asked_mirror = Cell::new(false);
    let (family, product, install, direct) =
        classify(kind, rule.map(|idx| rules.rule(idx)), false, || {
            asked_mirror.set(true);
            false
        });
    let known = !asked_mirror.get();
    EveEvidence {
        source: kind.label(),
        origin: evidence_origin(kind),
        family: family.label(),
        product: product.label(),
        install: known.then_some(install),
        direct: known.then_some(direct),
    }
}

/// Renders observations for one run.
pub struct EveRenderer<'a> {
    pub rules: &'a RuleSet,
    pub inputs: &'a [String],
    pub source: EveSource,
}

impl<'a> EveRenderer<'a> {
    fn base(
        &self,
        obs: &'a Observed,
        event_type: &'static str,
        client: Endpoint,
        server: Endpoint,
        kind: &'static str,
        source: &'static str,
    ) -> EveRecord<'a> {
        let input = self
            .inputs
            .get(usize::from(obs.ctx.input))
            .map_or("", String::as_str);
        let (pcap_cnt, in_iface) = match self.source {
            EveSource::Files => (Some(obs.order.packet.saturating_add(1)), None),
            EveSource::Interfaces => (None, Some(input)),
        };
        EveRecord {
            timestamp: eve_timestamp(obs.ctx.ts),
            pcap_cnt,
            in_iface,
            event_type,
            vlan: obs.ctx.vlan.map(|v| [v]),
            src_ip: eve_ip(client.ip),
            src_port: client.port,
            dest_ip: eve_ip(server.ip),
            dest_port: server.port,
            proto: proto_name(obs.ctx.ip_proto),
            community_id: community_id(client, server, obs.ctx.ip_proto),
            dns: None,
            tls: None,
            http: None,
            quic: None,
            ksensor: KsensorFields {
                kind,
                name: None,
                source,
                rule: None,
                evidence: None,
                client_mac: obs.ctx.client_mac.as_ref().map(mac_string),
                outer: obs.ctx.outer.map(|(src, dst)| EveOuter {
                    src: eve_ip(src),
                    dst: eve_ip(dst),
                }),
                correlation: None,
                magic: None,
                answers_left_out: None,
                literal: None,
                kaspersky_space: None,
                host_name: None,
                input,
            },
        }
    }

    /// The record of a name of `source` (a host name, or the text of another name), seen in
    /// the DNS message `facts` describes when it is a DNS name.
    #[allow(clippy::too_many_arguments)]
    fn named_record(
        &self,
        obs: &'a Observed,
        source: NameSource,
        dns: Option<DnsInfo>,
        client: Endpoint,
        server: Endpoint,
        name: &'a str,
        facts: Option<&DnsFacts>,
    ) -> EveRecord<'a> {
        let kind = source.kind();
        let source_label = DnsInfo::source_label(dns, source);
        let mut rec = self.base(
            obs,
            kind.label(),
            client,
            server,
            kind.label(),
            source_label,
        );
        match kind {
            NameKind::Dns => {
                // A name from a response (its question, an answer's owner or CNAME target, an
                // authority or additional record) is described by the response's answer
                // record; a query's question by its query record.
                rec.dns = Some(match facts {
                    Some(f) if f.is_response() => answer_record(f),
                    _ => query_record(name, facts),
                });
                rec.ksensor.answers_left_out = facts.map(|f| f.answers_left_out).filter(|&n| n > 0);
            }
            NameKind::Tls => rec.tls = Some(EveSni { sni: name }),
            NameKind::Quic => rec.quic = Some(EveSni { sni: name }),
            NameKind::Http => {
                rec.http = Some(EveHttp {
                    hostname: name,
                    http_method: (source == NameSource::HttpConnect).then_some("CONNECT"),
                })
            }
        }
        rec.ksensor.name = Some(name.to_string());
        rec
    }

    fn name_record(&self, obs: &'a Observed, s: &'a NameSighting) -> EveRecord<'a> {
        let mut rec = self.named_record(
            obs,
            s.source,
            s.dns,
            s.client,
            s.server,
            s.name.as_str(),
            s.dns_facts.as_deref(),
        );
        if let Some(idx) = s.rule {
            rec.ksensor.rule = Some(rule_fields(self.rules, idx, None));
            let kind = name_evidence_kind(s, self.rules.rule(idx).category);
            rec.ksensor.evidence = Some(evidence_fields(self.rules, kind, Some(idx)));
        }
        rec
    }

    /// A name that is not a host name: an address literal (`literal`, `kaspersky_space`) or
    /// bytes a host name cannot hold (`host_name: false`). No rule matches either.
    fn other_record(&self, obs: &'a Observed, s: &'a OtherNameSighting) -> EveRecord<'a> {
        let mut rec = self.named_record(
            obs,
            s.source,
            s.dns,
            s.client,
            s.server,
            &s.text,
            s.dns_facts.as_deref(),
        );
        match s.form {
            OtherNameForm::Literal(_) => {
                rec.ksensor.literal = Some(true);
                rec.ksensor.kaspersky_space = Some(s.kaspersky_space);
            }
            OtherNameForm::NotHostName => rec.ksensor.host_name = Some(false),
        }
        rec
    }

    /// The record for an observation, or `None` when it is not an event: the same selection
    /// as the native format, plus the responses to reported queries (`dns` answer records),
    /// which Suricata logs too.
    pub fn record(
        &self,
        obs: &'a Observed,
        correlation: Option<&'a Correlation>,
    ) -> Option<EveRecord<'a>> {
        match &obs.what {
            Observation::Name(s) => Some(self.name_record(obs, s)),
            Observation::OtherName(s) => Some(self.other_record(obs, s)),
            Observation::DnsAnswer {
                name,
                rule,
                client,
                server,
                dns_facts,
                ..
            } => {
                let facts = dns_facts.as_deref()?;
                let mut rec = self.base(obs, "dns", *client, *server, "dns", "dns-answer");
                rec.dns = Some(answer_record(facts));
                rec.ksensor.name = Some(name.to_string());
                rec.ksensor.rule = Some(rule_fields(self.rules, *rule, None));
                rec.ksensor.answers_left_out = Some(facts.answers_left_out).filter(|&n| n > 0);
                Some(rec)
            }
            Observation::Nameless {
                client,
                server,
                reason,
                ..
            } => {
                let c = correlation?;
                let mut rec = self.base(
                    obs,
                    "ksensor",
                    *client,
                    *server,
                    "correlated",
                    "dns-answer-address",
                );
                rec.ksensor.name = Some(c.name.to_string());
                rec.ksensor.rule =
                    Some(rule_fields(self.rules, c.rule, Some(c.confidence.label())));
                rec.ksensor.correlation = Some(EveCorrelation {
                    reason: reason.label(),
                    answered_at: eve_timestamp(c.answered_at),
                });
                rec.ksensor.evidence = Some(evidence_fields(
                    self.rules,
                    EvidenceKind::Correlated(*reason),
                    Some(c.rule),
                ));
                Some(rec)
            }
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host,
                rule,
                path,
                kaspersky_space,
                ..
            } => {
                let mut rec = self.base(
                    obs,
                    "ksensor",
                    *client,
                    *server,
                    "update-payload",
                    "http-response-body",
                );
                rec.ksensor.name = host.map(|h| h.to_string());
                rec.ksensor.rule = rule.map(|idx| rule_fields(self.rules, idx, None));
                rec.ksensor.magic = Some(magic_label(*magic));
                // A `DIFF` body outside an update path is no evidence (the inventory ignores it).
                if *magic != UpdateMagic::Diff || path.is_some() {
                    let kind = EvidenceKind::UpdatePayload(*magic, origin(*rule, *kaspersky_space));
                    rec.ksensor.evidence = Some(evidence_fields(self.rules, kind, *rule));
                }
                Some(rec)
            }
            Observation::KscSession { .. }
            | Observation::KscDatagram { .. }
            | Observation::UpdateRequest { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::time::Timestamp;

    fn ep(ip: IpAddr, port: u16) -> Endpoint {
        Endpoint { ip, port }
    }

    #[test]
    fn community_id_matches_the_spec_baseline() {
        // community-id-spec `baseline/`: TCP 128.232.110.120:34855 -> 66.35.250.204:80.
        let a = ep(IpAddr::V4(Ipv4Addr::new(128, 232, 110, 120)), 34855);
        let b = ep(IpAddr::V4(Ipv4Addr::new(66, 35, 250, 204)), 80);
        assert_eq!(community_id(a, b, 6), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        // Direction-free.
        assert_eq!(community_id(b, a, 6), community_id(a, b, 6));
        // IPv6 TCP, UDP, and SCTP with equal ports (the addresses decide).
        let v6 = |s: &str| s.parse::<IpAddr>().expect("address");
        assert_eq!(
            community_id(
                ep(v6("2001:470:e5bf:dead:4957:2174:e82c:4887"), 63943),
                ep(v6("2607:f8b0:400c:c03::1a"), 25),
                6
            ),
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="
        );
        assert_eq!(
            community_id(ep(v6("8.8.8.8"), 53), ep(v6("192.168.1.52"), 54585), 17),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
        assert_eq!(
            community_id(ep(v6("192.168.170.56"), 7), ep(v6("192.168.170.8"), 7), 132),
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="
        );
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        // RFC 4648 §10 test vectors.
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn ipv6_is_written_uncompressed() {
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1));
        assert_eq!(eve_ip(v6), "fd77:0000:0000:0000:0000:0000:0000:0001");
        assert_eq!(eve_ip(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1))), "10.77.0.1");
    }

    #[test]
    fn timestamp_has_a_numeric_offset() {
        let ts = Timestamp::from_secs_nanos(1_704_067_200, 1_000);
        assert_eq!(eve_timestamp(ts), "2024-01-01T00:00:00.000001+0000");
    }

    #[test]
    fn unknown_types_and_rcodes_are_numbers() {
        assert_eq!(rrtype_name(28), "AAAA");
        assert_eq!(rrtype_name(65), "HTTPS");
        // Suricata 7 has no name for SVCB or CAA either.
        assert_eq!(rrtype_name(64), "64");
        assert_eq!(rrtype_name(257), "257");
        assert_eq!(rrtype_name(65_280), "65280");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(15), "15");
    }
}
