//! DNS messages built byte by byte for tests that need to cut a response at an exact octet:
//! the unit tests of `flow::tcp` and the end-to-end test `tests/dns_tcp.rs`. Shared as a source
//! file (`#[path]` from each), like `tests/oracles/tls_sni.rs`, so that test code does not
//! become part of the library's API.

/// `name` in DNS wire form (RFC 1035 §3.1).
pub fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A DNS message (RFC 1035 §4.1) with id 0x4242, one question for `qname` (type A) and, in a
/// response, `answers` (owner, type, RDATA; class IN, TTL 3600), prefixed with its two-octet
/// length as DNS over TCP sends it (RFC 1035 §4.2.2).
pub fn dns_tcp(response: bool, qname: &str, answers: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
    let flags: u16 = if response { 0x8180 } else { 0x0100 };
    let mut m = vec![0x42, 0x42];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&wire_name(qname));
    m.extend_from_slice(&[0, 1, 0, 1]);
    for (owner, rtype, rdata) in answers {
        m.extend_from_slice(&wire_name(owner));
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0x0e, 0x10]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    let mut framed = (m.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&m);
    framed
}

/// An A record of `owner` (RFC 1035 §3.4.1).
pub fn a(owner: &str, ip: [u8; 4]) -> (&str, u16, Vec<u8>) {
    (owner, 1, ip.to_vec())
}

/// A CNAME record of `owner` (RFC 1035 §3.3.1).
#[allow(dead_code)] // not every includer uses it
pub fn cname<'n>(owner: &'n str, target: &str) -> (&'n str, u16, Vec<u8>) {
    (owner, 5, wire_name(target))
}
