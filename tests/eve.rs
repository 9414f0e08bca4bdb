//! EVE events (`--events-format eve`) against a real Suricata.
//!
//! `tests/golden/eve/<capture>.eve.json` is what Suricata 7.0.10 logged for each bundled
//! capture it can read (`pcaps/make/suricata-eve.sh`, config `tests/golden/eve/suricata.yaml`;
//! recipe in `pcaps/README.md`). For every capture, ksensor replays it with `--all-names` and
//! `--events-format eve`, and:
//!
//! 1. every ksensor `dns`/`tls`/`http`/`quic` record is matched to Suricata's record of the
//!    same event type, flow tuple (source and destination address and port, transport) and
//!    name (`dns.rrname` and `dns.type`, plus `dns.id`; `tls.sni`; `http.hostname`;
//!    `quic.sni`), and every field both records have must agree: `community_id`, `vlan`,
//!    `timestamp` and `pcap_cnt` (equal for UDP, where both log the packet that carried the
//!    name; for TCP Suricata logs when the transaction completes, so ksensor's must not be
//!    later), and the protocol object field by field;
//! 2. every Suricata record that names something (a DNS query or answer, a TLS or QUIC SNI,
//!    an HTTP host) is matched by a ksensor record.
//!
//! The differences Suricata makes are allowed only where the README's "EVE events" section
//! justifies them, each checked precisely (a DNS record on a port other than 53; Suricata's
//! extra QinQ tag; `rdata` of record types ksensor does not decode; a pseudo-packet without
//! `pcap_cnt`; the Host header's case and an IPv6 literal's brackets; a DNS name that is not
//! a host name, in presentation form (RFC 1035 §5.1) where Suricata writes its bytes; the answer to a query
//! that matched no rule; an UPDATE's other names, an inverse query's answer owner; the answer
//! of a response the capture cuts, checked in the capture; a T050/T051 QUIC Initial; flows
//! Suricata parses no application layer for, [`UNPARSED_FLOWS`]), and counted in the summary
//! this test prints (`cargo test --release --test eve -- --nocapture`). A capture Suricata
//! logs nothing for has an empty reference, and all of ksensor's records there must be such
//! justified extras.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use common::{pcaps_dir, repo_root, run_replay};

/// A record's flow tuple as Suricata writes it.
type Tuple = (String, u64, String, u64, String);

fn tuple(v: &Value) -> Tuple {
    (
        str_of(v, "src_ip"),
        v["src_port"].as_u64().unwrap_or(0),
        str_of(v, "dest_ip"),
        v["dest_port"].as_u64().unwrap_or(0),
        str_of(v, "proto"),
    )
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// What a record names, lower-cased: `(event_type, dns type or "", name, dns id)`.
type NameKey = (String, String, String, u64);

fn name_key(v: &Value) -> Option<NameKey> {
    let event_type = str_of(v, "event_type");
    let (kind, name, id) = match event_type.as_str() {
        "dns" => (
            str_of(&v["dns"], "type"),
            v["dns"]["rrname"].as_str()?.to_string(),
            v["dns"]["id"].as_u64()?,
        ),
        "tls" => (String::new(), v["tls"]["sni"].as_str()?.to_string(), 0),
        "quic" => (String::new(), v["quic"]["sni"].as_str()?.to_string(), 0),
        "http" => (
            String::new(),
            v["http"]["hostname"].as_str()?.to_string(),
            0,
        ),
        _ => return None,
    };
    Some((event_type, kind, name.to_ascii_lowercase(), id))
}

fn suricata_records(capture: &str) -> Vec<Value> {
    let path = repo_root()
        .join("tests/golden/eve")
        .join(format!("{capture}.eve.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn ksensor_records(capture: &str) -> Vec<Value> {
    let out = run_replay(
        &pcaps_dir().join(capture),
        &["--events", "-", "--events-format", "eve", "--all-names"],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad EVE line {l:?}: {e}")))
        .collect()
}

/// Allowed differences, counted per kind for the summary.
#[derive(Default)]
struct Tally {
    /// Suricata's records of the capture.
    suricata: usize,
    matched: usize,
    fields: usize,
    notes: BTreeMap<&'static str, usize>,
    problems: Vec<String>,
}

impl Tally {
    fn note(&mut self, what: &'static str) {
        *self.notes.entry(what).or_default() += 1;
    }

    /// Compares `key` in both objects; a field only one side has is not compared.
    fn same(&mut self, ctx: &str, key: &str, ours: &Value, theirs: &Value) {
        let (a, b) = (&ours[key], &theirs[key]);
        if a.is_null() || b.is_null() {
            return;
        }
        self.fields += 1;
        if a != b {
            self.problems
                .push(format!("{ctx}: {key}: ksensor {a} vs Suricata {b}"));
        }
    }

    /// Compares `key`, which both sides must have or both lack.
    fn same_presence(&mut self, ctx: &str, key: &str, ours: &Value, theirs: &Value) {
        self.fields += 1;
        if ours[key] != theirs[key] {
            self.problems.push(format!(
                "{ctx}: {key}: ksensor {} vs Suricata {}",
                ours[key], theirs[key]
            ));
        }
    }
}

/// Record types ksensor's DNS parser decodes the data of (`proto::dns::RData`).
const DECODED_RRTYPES: [&str; 3] = ["A", "AAAA", "CNAME"];

fn compare_dns(t: &mut Tally, ctx: &str, ours: &Value, theirs: &Value) {
    let (a, b) = (&ours["dns"], &theirs["dns"]);
    for key in ["version", "type", "id", "rrname", "rrtype", "opcode"] {
        t.same_presence(ctx, key, a, b);
    }
    if a["type"] != "answer" {
        return;
    }
    for key in [
        "flags", "qr", "aa", "tc", "rd", "ra", "z", "ad", "cd", "rcode",
    ] {
        t.same_presence(ctx, key, a, b);
    }
    // Records of the types ksensor decodes must agree one for one, in order. Records of other
    // types agree by owner, type and TTL, not by count: Suricata 7 logs a TXT record once per
    // character-string (RFC 1035 §3.3.14), and ksensor does not read their data.
    let empty = Vec::new();
    let split = |v: &Value| -> (Vec<Value>, std::collections::BTreeSet<String>) {
        let mut decoded = Vec::new();
        let mut other = std::collections::BTreeSet::new();
        for r in v["answers"].as_array().unwrap_or(&empty) {
            if DECODED_RRTYPES.contains(&r["rrtype"].as_str().unwrap_or_default()) {
                decoded.push(r.clone());
            } else {
                other.insert(format!("{} {} {}", r["rrname"], r["rrtype"], r["ttl"]));
            }
        }
        (decoded, other)
    };
    let ((ours_rr, ours_other), (theirs_rr, theirs_other)) = (split(a), split(b));
    t.fields += 1;
    if ours_rr != theirs_rr {
        t.problems.push(format!(
            "{ctx}: answers {ours_rr:?} vs Suricata {theirs_rr:?}"
        ));
    }
    t.fields += 1;
    if ours_other != theirs_other {
        t.problems.push(format!(
            "{ctx}: other answers {ours_other:?} vs Suricata {theirs_other:?}"
        ));
    } else if !theirs_other.is_empty() {
        t.note("dns answers of a type ksensor does not decode: no rdata, one per record");
    }
    let empty_map = serde_json::Map::new();
    let ours_g = a["grouped"].as_object().unwrap_or(&empty_map);
    let theirs_g = b["grouped"].as_object().unwrap_or(&empty_map);
    for (rrtype, list) in theirs_g {
        t.fields += 1;
        if DECODED_RRTYPES.contains(&rrtype.as_str()) {
            if ours_g.get(rrtype) != Some(list) {
                t.problems.push(format!(
                    "{ctx}: grouped.{rrtype}: {:?} vs {list}",
                    ours_g.get(rrtype)
                ));
            }
        } else if ours_g.contains_key(rrtype) {
            t.problems
                .push(format!("{ctx}: grouped.{rrtype} without decoded data"));
        } else {
            t.note("dns grouped entry of a record type ksensor does not decode");
        }
    }
    for rrtype in ours_g.keys() {
        if !theirs_g.contains_key(rrtype) {
            t.problems
                .push(format!("{ctx}: grouped.{rrtype} only in ksensor"));
        }
    }
}

fn compare(t: &mut Tally, ctx: &str, ours: &Value, theirs: &Value) {
    t.matched += 1;
    t.same_presence(ctx, "community_id", ours, theirs);
    // ksensor keeps the innermost VLAN tag (the client's); Suricata lists every tag.
    t.fields += 1;
    match (ours["vlan"].as_array(), theirs["vlan"].as_array()) {
        (None, None) => {}
        (Some(a), Some(b)) if a.len() == 1 && a.last() == b.last() => {
            if b.len() > 1 {
                t.note("vlan: Suricata also lists the outer (S-)tag");
            }
        }
        (a, b) => t
            .problems
            .push(format!("{ctx}: vlan {a:?} vs Suricata {b:?}")),
    }
    let (ts_a, ts_b) = (str_of(ours, "timestamp"), str_of(theirs, "timestamp"));
    let udp = str_of(ours, "proto") == "UDP";
    t.fields += 1;
    // Same format and offset on both sides, so the strings order like the times.
    if udp && ts_a != ts_b {
        t.problems
            .push(format!("{ctx}: timestamp {ts_a} vs Suricata {ts_b}"));
    } else if !udp && ts_a > ts_b {
        t.problems
            .push(format!("{ctx}: timestamp {ts_a} after Suricata's {ts_b}"));
    } else if ts_a != ts_b {
        t.note("timestamp: Suricata logs the TCP transaction when it completes, later");
    }
    match theirs["pcap_cnt"].as_u64() {
        Some(theirs_cnt) => {
            let ours_cnt = ours["pcap_cnt"].as_u64().unwrap_or(0);
            t.fields += 1;
            if (udp && ours_cnt != theirs_cnt) || (!udp && ours_cnt > theirs_cnt) {
                t.problems.push(format!(
                    "{ctx}: pcap_cnt {ours_cnt} vs Suricata {theirs_cnt}"
                ));
            }
        }
        // Suricata logs a decapsulated, defragmented or end-of-flow pseudo-packet, which has
        // no number in the capture.
        None if theirs["pkt_src"] != "wire/pcap" || !udp => {
            t.note("pcap_cnt: Suricata logged from a pseudo-packet (tunnel, defrag, flow end)")
        }
        None => t.problems.push(format!("{ctx}: Suricata has no pcap_cnt")),
    }
    match str_of(ours, "event_type").as_str() {
        "dns" => compare_dns(t, ctx, ours, theirs),
        "tls" => t.same_presence(ctx, "sni", &ours["tls"], &theirs["tls"]),
        "quic" => t.same_presence(ctx, "sni", &ours["quic"], &theirs["quic"]),
        "http" => {
            let (a, b) = (&ours["http"]["hostname"], &theirs["http"]["hostname"]);
            t.fields += 1;
            if a != b {
                let folded = |v: &Value| v.as_str().map(str::to_ascii_lowercase);
                // An IPv6 literal: Suricata keeps the brackets of the URI's IP-literal (RFC 3986
                // §3.2.2); ksensor writes the address and marks it a literal.
                let bracketed = ours["ksensor"]["literal"] == true
                    && a.as_str().map(|a| format!("[{a}]")).as_deref() == b.as_str();
                if folded(a) == folded(b) {
                    t.note("http.hostname: Suricata keeps the Host header's case");
                } else if bracketed {
                    t.note("http.hostname: Suricata keeps the brackets of an IPv6 literal");
                } else {
                    t.problems
                        .push(format!("{ctx}: hostname {a} vs Suricata {b}"));
                }
            }
            t.same(ctx, "http_method", &ours["http"], &theirs["http"]);
        }
        other => t
            .problems
            .push(format!("{ctx}: unexpected event_type {other}")),
    }
}

fn off_port_53(r: &Value) -> bool {
    r["dest_port"] != 53 && r["src_port"] != 53
}

/// Whether two records are of the same flow, in either direction.
fn same_flow(a: &Value, b: &Value) -> bool {
    let (x, y) = (tuple(a), tuple(b));
    x == y || (x.2.clone(), x.3, x.0.clone(), x.1, x.4.clone()) == y
}

/// Captures where Suricata parses no application layer on some flows, and why (README, "EVE
/// events"): a ksensor record on such a flow, of the event type and transport given, is allowed
/// when Suricata logged nothing at all for the flow.
const UNPARSED_FLOWS: [(&str, &str, &str, &str); 6] = [
    (
        "tls-starttls.pcap",
        "tls",
        "TCP",
        "ksensor-only: TLS after an in-band upgrade Suricata 7 does not follow",
    ),
    (
        "tls-prefix.pcap",
        "tls",
        "TCP",
        "ksensor-only: TLS after a clear-text prefix Suricata 7 detected no protocol in",
    ),
    (
        "tcp-midstream.pcap",
        "",
        "TCP",
        "ksensor-only: a TCP flow captured without its handshake (Suricata: midstream off)",
    ),
    (
        "tcp-simopen.pcap",
        "tls",
        "TCP",
        "ksensor-only: TLS in a simultaneous open begun by the TLS server's SYN",
    ),
    (
        "quic-variants.pcap",
        "quic",
        "UDP",
        "ksensor-only: QUIC on a port other than 443 (Suricata detects it on 443 only)",
    ),
    (
        "link-capwap.pcap",
        "",
        "",
        "ksensor-only: inside CAPWAP (RFC 5415), which Suricata 7 does not decapsulate",
    ),
];

/// Google QUIC versions whose Initial salt Suricata 7 lacks (`rust/src/quic/crypto.rs` knows
/// Q050's, the IETF drafts', v1's and v2's): it logs their version but no SNI.
const QUIC_VERSIONS_WITHOUT_SALT: [&str; 2] = ["54303530", "54303531"]; // T050, T051

/// Why Suricata has no record matching ksensor's record `r`, when the README ("EVE events")
/// justifies it. Each case is checked against Suricata's records of the capture (and for a cut
/// message, against the capture itself); `Err` says why none applies.
fn justified_extra(capture: &str, r: &Value, theirs: &[Value]) -> Result<&'static str, String> {
    let event_type = str_of(r, "event_type");
    let dns = &r["dns"];
    let same_id = |x: &Value| tuple(x) == tuple(r) && x["dns"]["id"] == dns["id"];
    if event_type == "dns" && dns["opcode"] == 5 && r["ksensor"]["source"] == "dns-update" {
        // RFC 2136 §2.3: an UPDATE's zone section is in the question's place; Suricata logs
        // the zone as the query record and not the prerequisite and update sections' names.
        return theirs
            .iter()
            .any(|x| same_id(x) && x["dns"]["type"] == "query" && x["dns"]["opcode"] == 5)
            .then_some("ksensor-only: a name of an UPDATE's prerequisite or update section")
            .ok_or_else(|| "an UPDATE name without Suricata's record of the zone".to_string());
    }
    if event_type == "dns" && dns["opcode"] == 1 && dns["type"] == "query" {
        // RFC 1035 §6.4.1: an inverse query has no question, only an answer record; Suricata
        // logs one query record per question.
        return (dns["rrtype"].is_null() && !theirs.iter().any(same_id))
            .then_some("ksensor-only: the answer owner of an inverse query (no question)")
            .ok_or_else(|| "an inverse query Suricata logged".to_string());
    }
    let query_logged = theirs
        .iter()
        .any(|x| same_id(x) && x["dns"]["type"] == "query");
    if event_type == "dns" && dns["type"] == "answer" && query_logged {
        let answer_logged = theirs
            .iter()
            .any(|x| same_id(x) && x["dns"]["type"] == "answer");
        let n = r["pcap_cnt"].as_u64().unwrap_or(0);
        let cut = message_cut(capture, n, &str_of(r, "proto"))?;
        return (!answer_logged && cut)
            .then_some("ksensor-only: the answer of a DNS response the capture cuts")
            .ok_or_else(|| format!("answer logged {answer_logged}, message cut {cut}"));
    }
    if event_type == "quic" {
        let unsalted = theirs.iter().any(|x| {
            same_flow(x, r)
                && x["quic"]["sni"].is_null()
                && QUIC_VERSIONS_WITHOUT_SALT.contains(&x["quic"]["version"].as_str().unwrap_or(""))
        });
        if unsalted {
            return Ok("quic.sni: a T050/T051 Initial Suricata 7 cannot decrypt");
        }
    }
    if theirs.iter().any(|x| same_flow(x, r)) {
        return Err("Suricata logged the flow".to_string());
    }
    UNPARSED_FLOWS
        .iter()
        .find(|(c, e, proto, _)| {
            *c == capture
                && (e.is_empty() || *e == event_type)
                && (proto.is_empty() || *proto == str_of(r, "proto"))
        })
        .map(|&(c, _, _, why)| {
            // CAPWAP: the record is of a decapsulated packet, which names the tunnel.
            if c == "link-capwap.pcap" && r["ksensor"]["outer"].is_null() {
                return Err("no tunnel endpoints".to_string());
            }
            Ok(why)
        })
        .unwrap_or_else(|| Err("Suricata logged nothing for the flow".to_string()))
}

/// The records of a classic pcap file: (captured bytes, original length).
fn pcap_records(capture: &str) -> Vec<(Vec<u8>, usize)> {
    let path = pcaps_dir().join(capture);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let u32_at = |at: usize, little: bool| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        let v = if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        };
        usize::try_from(v).ok()
    };
    let little = match u32_at(0, true) {
        Some(0xa1b2_c3d4 | 0xa1b2_3c4d) => true,
        Some(0xd4c3_b2a1 | 0x4d3c_b2a1) => false,
        other => panic!("{capture}: not a classic pcap ({other:?})"),
    };
    let mut records = Vec::new();
    let mut at = 24;
    while let (Some(incl), Some(orig)) = (u32_at(at + 8, little), u32_at(at + 12, little)) {
        let data = bytes
            .get(at + 16..at + 16 + incl)
            .unwrap_or_else(|| panic!("{capture}: record at {at} runs past the end"));
        records.push((data.to_vec(), orig));
        at += 16 + incl;
    }
    records
}

/// An IPv4 address and a port.
type Endpoint = ([u8; 4], u16);

/// An Ethernet/IPv4/TCP frame's source, destination and payload.
fn tcp_segment(frame: &[u8]) -> Option<(Endpoint, Endpoint, &[u8])> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = frame.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
    if *ip.get(9)? != 6 {
        return None;
    }
    let tcp = ip.get(ihl..total)?;
    let data_offset = usize::from(tcp.get(12)? >> 4) * 4;
    let port = |at: usize| Some(u16::from_be_bytes(tcp.get(at..at + 2)?.try_into().ok()?));
    Some((
        (ip.get(12..16)?.try_into().ok()?, port(0)?),
        (ip.get(16..20)?.try_into().ok()?, port(2)?),
        tcp.get(data_offset..)?,
    ))
}

/// Whether the DNS message in capture record `n` (1-based) is cut: over UDP, the snap length
/// cut the packet; over TCP, the message's length prefix (RFC 1035 §4.2.2) runs past the
/// segment and no later packet of the connection carries data.
fn message_cut(capture: &str, n: u64, proto: &str) -> Result<bool, String> {
    let records = pcap_records(capture);
    let index = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
    let Some((frame, orig)) = index.and_then(|i| records.get(i)) else {
        return Err(format!("no capture record {n}"));
    };
    if proto == "UDP" {
        return Ok(frame.len() < *orig);
    }
    let Some((a, b, payload)) = tcp_segment(frame) else {
        return Err(format!("capture record {n} is not Ethernet/IPv4/TCP"));
    };
    let Some(len) = payload
        .get(..2)
        .and_then(|p| p.try_into().ok())
        .map(|p: [u8; 2]| usize::from(u16::from_be_bytes(p)))
    else {
        return Ok(false);
    };
    let later_data = records.iter().skip(index.unwrap_or(0) + 1).any(|(f, _)| {
        tcp_segment(f)
            .is_some_and(|(x, y, data)| ((x, y) == (a, b) || (x, y) == (b, a)) && !data.is_empty())
    });
    Ok(len > payload.len().saturating_sub(2) && !later_data)
}

/// The bytes of a DNS name in presentation form (RFC 1035 §5.1: `\DDD` is the byte DDD in
/// decimal, `\X` the character X, so `\.` is a dot inside a label); `None` when an escape is
/// malformed.
fn presentation_bytes(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let first = bytes.next()?;
        if !first.is_ascii_digit() {
            out.push(first);
            continue;
        }
        let mut value = u32::from(first - b'0');
        for _ in 0..2 {
            let d = bytes.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(d - b'0');
        }
        out.push(u8::try_from(value).ok()?);
    }
    Some(out)
}

/// A DNS name as Suricata 7 writes it: the name's bytes (labels joined by dots), the string
/// itself when they are UTF-8, otherwise each ASCII byte as itself and any other as `\xNN`
/// (its JSON builder's `set_string_from_bytes`). A dot inside a label and a dot between labels
/// look the same there.
fn suricata_name(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b).to_string()
                } else {
                    format!("\\x{b:02x}")
                }
            })
            .collect(),
    }
}

/// ksensor writes a DNS name that is not a host name in presentation form (RFC 1035 §5.1,
/// README "EVE events"), Suricata the name's bytes: rewrites `dns.rrname` of ksensor's
/// records into Suricata's form, so that the records pair and compare. Checked: only a name
/// with an escape is rewritten, its escapes are well formed, and a query record that holds
/// one says `host_name: false` and has it as its `ksensor.name`.
fn to_suricata_names(t: &mut Tally, capture: &str, records: &mut [Value]) {
    for (n, r) in records.iter_mut().enumerate() {
        let Some(text) = r["dns"]["rrname"].as_str().map(str::to_string) else {
            continue;
        };
        if !text.contains('\\') {
            continue;
        }
        let ctx = format!("{capture}: ksensor record {n} (dns {text})");
        let Some(bytes) = presentation_bytes(&text) else {
            t.problems
                .push(format!("{ctx}: malformed presentation form"));
            continue;
        };
        if r["dns"]["type"] == "query"
            && (r["ksensor"]["host_name"] != false || r["ksensor"]["name"] != text.as_str())
        {
            t.problems.push(format!(
                "{ctx}: an escaped question without host_name: false"
            ));
        }
        r["dns"]["rrname"] = Value::String(suricata_name(&bytes));
        t.note("dns.rrname: ksensor writes presentation form (RFC 1035 §5.1), Suricata the bytes");
    }
}

/// Compares one capture; returns the tally.
fn check_capture(capture: &str) -> Tally {
    let mut ours = ksensor_records(capture);
    let theirs = suricata_records(capture);
    let mut t = Tally {
        suricata: theirs.len(),
        ..Tally::default()
    };
    // Suricata's records by (tuple, name key), in time order.
    let mut index: BTreeMap<(Tuple, NameKey), Vec<usize>> = BTreeMap::new();
    for (i, r) in theirs.iter().enumerate() {
        if let Some(key) = name_key(r) {
            index.entry((tuple(r), key)).or_default().push(i);
        }
    }
    to_suricata_names(&mut t, capture, &mut ours);
    let mut used = vec![false; theirs.len()];
    // Queries of ksensor's records, to tell which Suricata answers ksensor leaves out.
    let mut ours_queries: BTreeMap<(Tuple, u64), bool> = BTreeMap::new();
    for r in &ours {
        if r["event_type"] == "dns" && r["dns"]["type"] == "query" {
            let id = r["dns"]["id"].as_u64().unwrap_or(0);
            ours_queries.insert((tuple(r), id), !r["ksensor"]["rule"].is_null());
        }
    }
    for (n, r) in ours.iter().enumerate() {
        let Some(key) = name_key(r) else {
            if r["event_type"] == "dns" && off_port_53(r) {
                // An mDNS response has no question section (RFC 6762 §6), so its answer
                // record has no `rrname`; Suricata does not parse port 5353 at all.
                t.note("ksensor-only: DNS on a port other than 53 (mDNS, LLMNR)");
                continue;
            }
            if r["event_type"] != "ksensor" {
                t.problems
                    .push(format!("{capture}: ksensor record {n} names nothing: {r}"));
                continue;
            }
            // A correlated connection or an update payload: Suricata has no such record, but
            // it may have logged the same flow (a TLS record without SNI).
            t.note("ksensor-only record (correlated connection or update payload)");
            if let Some(same_flow) = theirs.iter().find(|x| tuple(x) == tuple(r)) {
                let ctx = format!("{capture}: ksensor record {n} (event_type ksensor)");
                t.same_presence(&ctx, "community_id", r, same_flow);
            }
            continue;
        };
        let ctx = format!("{capture}: ksensor record {n} ({} {})", key.0, key.2);
        let answer = key.1 == "answer";
        let mut candidates = index
            .get(&(tuple(r), key.clone()))
            .cloned()
            .unwrap_or_default();
        // An IPv6 literal Host: Suricata's record has it in brackets (`compare` checks it).
        let bracketed = key.0 == "http"
            && r["ksensor"]["literal"] == true
            && key.2.parse::<std::net::Ipv6Addr>().is_ok();
        if candidates.is_empty() && bracketed {
            let key = (key.0.clone(), key.1.clone(), format!("[{}]", key.2), key.3);
            candidates = index.get(&(tuple(r), key)).cloned().unwrap_or_default();
        }
        // The earliest unused Suricata record not before ours: keep-alive requests and
        // retransmitted queries pair in order. A response's several names (question, CNAME
        // targets) all describe the one Suricata answer record.
        let ts = str_of(r, "timestamp");
        let pick = candidates
            .iter()
            .copied()
            .find(|&i| (answer || !used[i]) && str_of(&theirs[i], "timestamp") >= ts)
            .or_else(|| candidates.iter().copied().find(|&i| answer || !used[i]));
        match pick {
            Some(i) => {
                used[i] = true;
                compare(&mut t, &ctx, r, &theirs[i]);
            }
            // Suricata's DNS parser runs on port 53 only (`detection-ports`, as in its shipped
            // suricata.yaml); ksensor also reads mDNS (5353) and LLMNR (5355).
            None if key.0 == "dns" && off_port_53(r) => {
                t.note("ksensor-only: DNS on a port other than 53 (mDNS, LLMNR)")
            }
            None => match justified_extra(capture, r, &theirs) {
                Ok(why) => t.note(why),
                Err(e) => t.problems.push(format!("{ctx}: no Suricata record ({e})")),
            },
        }
    }
    for (i, r) in theirs.iter().enumerate() {
        if used[i] {
            continue;
        }
        let Some(key) = name_key(r) else {
            // A TLS or QUIC record without SNI (no name to compare), or the server's QUIC
            // Initial.
            t.note("Suricata-only record without a name");
            continue;
        };
        let id = r["dns"]["id"].as_u64().unwrap_or(0);
        if key.1 == "answer" && ours_queries.get(&(tuple(r), id)) == Some(&false) {
            t.note("Suricata-only: the answer to a query that matched no rule");
            continue;
        }
        t.problems.push(format!(
            "{capture}: Suricata record {i} ({} {} {}) has no ksensor record",
            key.0, key.1, key.2
        ));
    }
    t
}

/// Every capture with a Suricata reference, in `tests/golden/eve/`.
fn captures_with_reference() -> Vec<String> {
    let dir = repo_root().join("tests/golden/eve");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".eve.json")
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn eve_agrees_with_suricata_on_every_capture_it_reads() {
    let captures = captures_with_reference();
    // The brief's minimum: DNS over UDP and TCP, TLS, HTTP, QUIC and the staged network.
    for needed in [
        "dns-udp.pcap",
        "dns-tcp.pcap",
        "tls-sni.pcap",
        "http-host.pcap",
        "quic-aioquic.pcap",
        "quic-chromium.pcap",
        "staged-network.pcap",
    ] {
        assert!(
            captures.iter().any(|c| c == needed),
            "no Suricata reference for {needed}"
        );
    }
    let mut problems = Vec::new();
    let mut total = Tally::default();
    for capture in &captures {
        assert!(
            Path::new(repo_root()).join("pcaps").join(capture).exists(),
            "tests/golden/eve/{capture}.eve.json has no capture"
        );
        let t = check_capture(capture);
        let notes: Vec<String> = t.notes.iter().map(|(k, v)| format!("{v}× {k}")).collect();
        println!(
            "{capture}: {} records matched, {} fields compared, {} problems; {}",
            t.matched,
            t.fields,
            t.problems.len(),
            notes.join("; ")
        );
        // A capture Suricata logs nothing for has an empty reference: then every ksensor
        // record must be a justified extra (counted in the notes), and there must be some.
        assert!(
            t.matched > 0 || (t.suricata == 0 && !t.notes.is_empty()),
            "{capture}: nothing matched"
        );
        total.matched += t.matched;
        total.fields += t.fields;
        for (k, v) in t.notes {
            *total.notes.entry(k).or_default() += v;
        }
        problems.extend(t.problems);
    }
    println!(
        "total: {} captures, {} records matched, {} fields compared",
        captures.len(),
        total.matched,
        total.fields
    );
    for (k, v) in &total.notes {
        println!("  {v}× {k}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn eve_output_is_the_same_for_any_number_of_workers() {
    let capture = pcaps_dir().join("staged-network.pcap");
    let run = |workers: &str| {
        run_replay(
            &capture,
            &[
                "--events",
                "-",
                "--events-format",
                "eve",
                "--all-names",
                "--workers",
                workers,
            ],
        )
        .stdout
    };
    let one = run("1");
    assert!(!one.is_empty());
    assert_eq!(one, run("3"), "EVE events differ between 1 and 3 workers");
}

#[test]
fn native_stays_the_default() {
    let capture = pcaps_dir().join("dns-udp.pcap");
    let default = run_replay(&capture, &["--events", "-"]).stdout;
    let native = run_replay(&capture, &["--events", "-", "--events-format", "native"]).stdout;
    assert_eq!(default, native);
    let first: Value =
        serde_json::from_slice(default.split(|&b| b == b'\n').next().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.get("kind").is_some() && first.get("event_type").is_none());
}

#[test]
fn unknown_events_format_is_refused() {
    let out = common::ksensor()
        .current_dir(repo_root())
        .args([
            "replay",
            "--events",
            "-",
            "--events-format",
            "xml",
            "pcaps/dns-udp.pcap",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2), "clap rejects the value");
    assert!(out.stdout.is_empty());
    // The live config key is checked when the settings are merged: one line, exit 1, before
    // any interface is opened.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("ksensor.toml");
    std::fs::write(&config, "interfaces = [\"lo\"]\nevents_format = \"xml\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = common::ksensor()
        .args(["live", "--listen", "off", "--config"])
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("events_format") && err.contains("xml"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn eve_carries_every_native_event() {
    for capture in [
        "staged-network.pcap",
        "staged-enterprise.pcap",
        "dns-udp.pcap",
        // Names that are not host names, mDNS/LLMNR sources, UPDATE and NOTIFY messages.
        "dns-odd.pcap",
        "dns-opcodes.pcap",
        "http-host.pcap",
        "quic-chromium.pcap",
        "tunnel-vxlan.pcap",
    ] {
        let path = pcaps_dir().join(capture);
        // No rate limits: EVE's answer records spend tokens native lines do not, so under the
        // limits the two formats may admit different lines (`eve_lines_pass_the_rate_limits`).
        let unlimited = [
            "--all-names",
            "--event-rate",
            "0",
            "--event-rate-global",
            "0",
        ];
        let native = common::replay_events(&path, &unlimited);
        let eve = common::replay_events(
            &path,
            &[&unlimited[..], &["--events-format", "eve"]].concat(),
        );
        let mut used = vec![false; eve.len()];
        for e in &native {
            let found = eve.iter().enumerate().position(|(i, r)| {
                let k = &r["ksensor"];
                !used[i]
                    && r["timestamp"].as_str().map(|t| t.replace("+0000", "Z"))
                        == e["ts"].as_str().map(str::to_string)
                    && k["kind"] == e["kind"]
                    && k["name"] == e["name"]
                    // Native update-payload events have no `source`.
                    && (e["source"].is_null() || k["source"] == e["source"])
                    && k["magic"] == e["magic"]
                    && ["id", "category", "confidence"]
                        .iter()
                        .all(|f| k["rule"][f] == e["rule"][f])
                    && k["input"] == e["input"]
                    && r["src_port"] == e["client"]["port"]
                    && r["dest_port"] == e["server"]["port"]
                    && r["vlan"][0] == e["client"]["vlan"]
                    && k["client_mac"] == e["client"]["mac"]
                    && ["literal", "kaspersky_space", "host_name"]
                        .iter()
                        .all(|f| k[f] == e[f])
            });
            let Some(i) = found else {
                panic!("{capture}: native event {e} has no EVE record");
            };
            used[i] = true;
            // What the rule says beyond the native event's three fields.
            let rule = &eve[i]["ksensor"]["rule"];
            if !rule.is_null() {
                assert!(rule["product"].is_string(), "{capture}: {rule}");
                assert!(rule["install_evidence"].is_boolean(), "{capture}: {rule}");
            }
        }
        // What EVE adds: the responses to reported queries.
        let flagged = |f: &str| eve.iter().filter(|r| !r["ksensor"][f].is_null()).count();
        let native_flagged = |f: &str| native.iter().filter(|e| !e[f].is_null()).count();
        for f in ["literal", "host_name"] {
            assert_eq!(flagged(f), native_flagged(f), "{capture}: {f}");
        }
        if capture == "dns-odd.pcap" {
            assert!(
                flagged("host_name") > 0,
                "dns-odd.pcap has names that are not host names"
            );
        }
        if capture == "staged-enterprise.pcap" {
            assert!(
                flagged("literal") > 0,
                "staged-enterprise.pcap has literal Hosts"
            );
        }
        for (i, r) in eve.iter().enumerate().filter(|(i, _)| !used[*i]) {
            assert!(
                r["dns"]["type"] == "answer" && r["ksensor"]["source"] == "dns-answer",
                "{capture}: EVE record {i} is not a native event: {r}"
            );
        }
    }
}

/// A replay writing EVE events and the JSON report into `dir`; returns both.
fn eve_and_report(dir: &Path, capture: &str, args: &[&str]) -> (Vec<Value>, Value) {
    let events = dir.join(format!("{capture}.eve.json"));
    let report = dir.join(format!("{capture}.report.json"));
    let (e, r) = (
        events.to_str().unwrap_or_else(|| panic!("path")),
        report.to_str().unwrap_or_else(|| panic!("path")),
    );
    let mut all = vec!["--events", e, "--events-format", "eve", "--report", r];
    all.extend_from_slice(args);
    run_replay(&pcaps_dir().join(capture), &all);
    let text = std::fs::read_to_string(&events).unwrap_or_else(|e| panic!("{e}"));
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad EVE line {l:?}: {e}")))
        .collect();
    let report = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}"));
    let report = serde_json::from_str(&report).unwrap_or_else(|e| panic!("bad report: {e}"));
    (records, report)
}

#[test]
fn eve_evidence_is_what_the_report_files() {
    // The staged enterprise network has every kind of evidence an event can carry: address
    // lookups and TXT/MX lookups, TLS and HTTP names, proxied names, a Cloud Console session,
    // a correlated connection and update payloads from Kaspersky names, a Kaspersky address
    // and an internal mirror.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (records, report) = eve_and_report(dir.path(), "staged-enterprise.pcap", &[]);
    let hosts = report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("hosts"));
    let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
    let (mut not_install, mut undecided) = (0, 0);
    for r in &records {
        let k = &r["ksensor"];
        let ev = &k["evidence"];
        if ev.is_null() {
            // Not evidence: a name that matched no rule, the response to a reported query
            // (EVE's answer record; it feeds correlation only), a `DIFF` body outside an
            // update path.
            let unmatched = k["rule"].is_null() && k["kind"] != "correlated";
            let answer_record = r["dns"]["type"] == "answer" && k["source"] == "dns-answer";
            let diff = k["magic"] == "DIFF";
            assert!(
                unmatched || answer_record || diff,
                "record without evidence: {r}"
            );
            continue;
        }
        let ip = r["src_ip"].as_str().unwrap_or_else(|| panic!("src_ip"));
        let host = hosts
            .iter()
            .find(|h| h["ip"] == ip)
            .unwrap_or_else(|| panic!("{ip} has evidence in {r} but is not in the report"));
        let entry = host["evidence"]
            .as_array()
            .unwrap_or_else(|| panic!("evidence"))
            .iter()
            .find(|e| {
                e["source"] == ev["source"]
                    && e["rule"] == k["rule"]["id"]
                    && e["origin"] == ev["origin"]
            })
            .unwrap_or_else(|| panic!("{ip}: no report evidence like {ev} (record {r})"));
        for field in ["family", "product"] {
            assert_eq!(ev[field], entry[field], "{field} of {r} vs {entry}");
        }
        match (&ev["install"], &ev["direct"]) {
            (Value::Null, Value::Null) => {
                // Decided with the verdict: the payload came from a server that is not
                // Kaspersky's, and only a mirror's count.
                assert_eq!(ev["origin"], "server", "{r}");
                undecided += 1;
            }
            (install, direct) => {
                assert_eq!(install, &entry["install"], "install of {r} vs {entry}");
                assert_eq!(direct, &entry["direct"], "direct of {r} vs {entry}");
                if install == &Value::Bool(false) {
                    not_install += 1;
                }
            }
        }
        // The rule's own product class and install-evidence flag, as the rule files say.
        let category = k["rule"]["category"].as_str().unwrap_or_default();
        let contacted_by_products = !matches!(
            category,
            "portal" | "download" | "website" | "mail" | "ignore" | ""
        );
        if !k["rule"].is_null() {
            assert_eq!(k["rule"]["install_evidence"], contacted_by_products, "{r}");
            assert_eq!(k["rule"]["category"], entry["category"], "{r}");
        }
        *by_source
            .entry(ev["source"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    println!("EVE evidence checked against the report: {by_source:?}, not install evidence {not_install}, decided later {undecided}");
    for source in [
        "dns-query",
        "dns-other-lookup",
        "tls-sni",
        "http-host",
        "http-connect",
        "http-absolute-uri",
        "cloud-console-session",
        "dns-correlated-connection",
        "update-payload",
    ] {
        assert!(
            by_source.contains_key(source),
            "no {source} evidence in {by_source:?}"
        );
    }
    assert!(
        not_install > 0,
        "a TXT/MX lookup or a website name is not install evidence"
    );
    assert!(
        undecided > 0,
        "the mirror's payloads are decided with the verdict"
    );
}

#[test]
fn eve_lines_pass_the_rate_limits() {
    // One admission path for both formats: with a per-client limit of one line a second (a
    // burst of ten), the EVE lines written plus those the report counts as suppressed are
    // exactly the lines of an unlimited run, and the written ones are its first lines per
    // client.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let capture = "dns-udp.pcap";
    let (all, _) = eve_and_report(
        dir.path(),
        capture,
        &[
            "--all-names",
            "--event-rate",
            "0",
            "--event-rate-global",
            "0",
        ],
    );
    let limited_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (some, report) = eve_and_report(
        limited_dir.path(),
        capture,
        &[
            "--all-names",
            "--event-rate",
            "1",
            "--event-rate-global",
            "0",
        ],
    );
    let events = &report["events"];
    let suppressed = events["suppressed"]["per_source"].as_u64().unwrap_or(0);
    assert!(suppressed > 0, "the limit bites: {events}");
    assert_eq!(
        events["written"].as_u64(),
        Some(some.len() as u64),
        "{events}"
    );
    assert_eq!(some.len() as u64 + suppressed, all.len() as u64, "{events}");
    // Written lines are unlimited lines, in the same order (a subsequence)...
    let mut rest = all.iter();
    for r in &some {
        assert!(
            rest.any(|a| a == r),
            "not a line of the unlimited run, or out of order: {r}"
        );
    }
    // ...and each client's first ten (its burst) are all written.
    let mut per_client: BTreeMap<String, usize> = BTreeMap::new();
    for r in &all {
        let seen = per_client.entry(str_of(r, "src_ip")).or_default();
        *seen += 1;
        if *seen <= 10 {
            assert!(some.contains(r), "within the burst but suppressed: {r}");
        }
    }
}

#[test]
fn presentation_names_map_to_what_suricata_logs() {
    // Pairs from dns-odd.pcap: kdig's query names in presentation form, and the rrname
    // Suricata 7.0.10 logged for each (tests/golden/eve/dns-odd.pcap.eve.json).
    for (presentation, suricata) in [
        ("a\\.b.example.org", "a.b.example.org"),
        ("a\\000b.t.example.org", "a\u{0}b.t.example.org"),
        ("\\200\\201.t.example.org", "\\xc8\\xc9.t.example.org"),
        (
            "x\\255y\\031z.t.example.org",
            "x\\xffy\u{1f}z.t.example.org",
        ),
        ("b\\195\\188cher.example.org", "bücher.example.org"),
        ("hello world.example.org", "hello world.example.org"),
    ] {
        let bytes = presentation_bytes(presentation).unwrap_or_else(|| panic!("{presentation}"));
        assert_eq!(suricata_name(&bytes), suricata, "{presentation}");
    }
    for malformed in ["a\\", "a\\25", "a\\2x5", "a\\256"] {
        assert_eq!(presentation_bytes(malformed), None, "{malformed}");
    }
}
