//! A second, independent reading of a ClientHello's server name, on top of the `tls-parser`
//! crate: the oracle the unit tests of `proto::tls`, the `tls` fuzz target and the `proto`
//! benchmark hold the walker to. It is shared as a source file (`#[path]` from each of them),
//! so that tls-parser stays a dev-dependency (and a dependency of the fuzz crate) and never
//! reaches the shipped binary. It depends on nothing of ksensor: the caller says which raw
//! names it accepts.

use tls_parser::{
    parse_tls_extensions, parse_tls_message_handshake, parse_tls_plaintext, parse_tls_raw_record,
    SNIType, TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType,
};

/// The first `host_name` of the ClientHello at the start of `stream` that `accept` turns into a
/// name, if the hello is complete: in one record, or spread over at most `max_records` records.
/// Only the first ClientHello counts. Allocates; not for the hot path.
pub fn sni<N>(stream: &[u8], max_records: usize, accept: impl Fn(&[u8]) -> Option<N>) -> Option<N> {
    // One record holding the whole hello.
    if let Ok((_, plaintext)) = parse_tls_plaintext(stream) {
        let hello = plaintext.msg.iter().find_map(|message| match message {
            TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)) => Some(hello),
            _ => None,
        })?;
        return host_name(hello.ext?, &accept);
    }
    // A hello spanning records: concatenate the fragments and retry after each record.
    let mut handshake = Vec::new();
    let mut rest = stream;
    for _ in 0..max_records {
        let (next, record) = parse_tls_raw_record(rest).ok()?;
        if record.hdr.record_type != TlsRecordType::Handshake {
            return None;
        }
        handshake.extend_from_slice(record.data);
        match parse_tls_message_handshake(&handshake) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)))) => {
                return host_name(hello.ext?, &accept);
            }
            Err(tls_parser::Err::Incomplete(_)) => rest = next,
            _ => return None,
        }
    }
    None
}

/// Whether the last label of `name` (one trailing dot ignored) is all digits: an IPv4 literal
/// or a number resolvers read as an address, never a registered name (RFC 3696 §2).
pub fn numeric(name: &[u8]) -> bool {
    let name = name.strip_suffix(b".").unwrap_or(name);
    let last = name.rsplit(|&b| b == b'.').next().unwrap_or(name);
    !last.is_empty() && last.iter().all(u8::is_ascii_digit)
}

fn host_name<N>(extensions: &[u8], accept: &impl Fn(&[u8]) -> Option<N>) -> Option<N> {
    let (_, extensions) = parse_tls_extensions(extensions).ok()?;
    extensions.iter().find_map(|extension| match extension {
        TlsExtension::SNI(names) => names
            .iter()
            .find(|(kind, _)| *kind == SNIType::HostName)
            .and_then(|(_, raw)| accept(raw)),
        _ => None,
    })
}
