//! proto::tls: the ClientHello walker on arbitrary streams and on a handshake message re-framed
//! into records of a fuzzer-chosen size.
//!
//! Properties: whenever the walker reports a name (or a complete hello without one),
//! `sni_via_tls_parser` (the tls-parser crate) agrees; the scratch buffer stays within its cap;
//! splitting the same handshake into one record or many records gives the same outcome; the bare
//! handshake entry point (used by QUIC) agrees with the stream entry point.
#![no_main]

use ksensor::proto::tls::{
    sni_from_handshake, sni_from_stream, ClientHelloOutcome, MAX_CLIENT_HELLO_LEN,
    MAX_RECORDS_PER_CLIENT_HELLO,
};
use ksensor::proto::HostName;
use ksensor_fuzz::{tls_records, Cursor};
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/oracles/tls_sni.rs"]
mod oracle;

/// The server name tls-parser finds (the oracle), by the walker's rules for a name.
fn sni_via_tls_parser(stream: &[u8]) -> Option<HostName> {
    oracle::sni(stream, MAX_RECORDS_PER_CLIENT_HELLO, |raw| {
        HostName::parse(raw)
            .ok()
            .filter(|n| !oracle::numeric(n.as_bytes()))
    })
}

/// Whether `stream` is a sequence of whole TLS records (RFC 8446 §5.1 headers and bodies).
fn whole_records(mut stream: &[u8]) -> bool {
    while let Some((header, rest)) = stream.split_first_chunk::<5>() {
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        match rest.get(len..) {
            Some(next) => stream = next,
            None => return false,
        }
    }
    stream.is_empty()
}

/// The handshake bytes carried by whole records (RFC 8446 §5.1), concatenated.
fn handshake_of(mut stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((header, rest)) = stream.split_first_chunk::<5>() {
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let Some((body, next)) = rest.split_at_checked(len) else {
            break;
        };
        out.extend_from_slice(body);
        stream = next;
    }
    out
}

/// Whether tls-parser parses the first message as a ClientHello whose extension block it reads
/// to the end. It stops at extension data it finds malformed (say, a non-empty
/// extended_master_secret, RFC 7627 §5.1) and then never sees a server_name after it, while the
/// walker skips extensions it does not use by their length: there its answer is no oracle.
fn tls_parser_reads_all_extensions(stream: &[u8]) -> bool {
    use tls_parser::{parse_tls_extensions, parse_tls_message_handshake};
    use tls_parser::{TlsMessage, TlsMessageHandshake};
    let handshake = handshake_of(stream);
    match parse_tls_message_handshake(&handshake) {
        Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello)))) => match hello.ext {
            None => true,
            Some(ext) => matches!(parse_tls_extensions(ext), Ok((rest, _)) if rest.is_empty()),
        },
        _ => true,
    }
}

/// The agreement contract of the tests in tls.rs: a name or "complete, no name" from the walker
/// must be what tls-parser finds; elsewhere the walker may only be stricter. The walker answers
/// as soon as the ClientHello is complete, before the rest of its record has arrived, while
/// tls-parser needs whole records: the comparison is made on whole records only.
fn agree(stream: &[u8], scratch: &mut Vec<u8>) -> ClientHelloOutcome {
    let ours = sni_from_stream(stream, scratch);
    assert!(scratch.len() <= 4 + MAX_CLIENT_HELLO_LEN, "scratch over its cap");
    if let ClientHelloOutcome::Sni { name, .. } = ours {
        assert_eq!(HostName::parse(name.as_bytes()), Ok(name));
        assert!(ksensor::proto::ip_literal(name.as_bytes()).is_none(), "a literal as a name");
    }
    if !whole_records(stream) || !tls_parser_reads_all_extensions(stream) {
        return ours;
    }
    match ours {
        ClientHelloOutcome::Sni { name, .. } => {
            assert_eq!(sni_via_tls_parser(stream), Some(name), "tls-parser disagrees");
        }
        ClientHelloOutcome::NoSni { .. } | ClientHelloOutcome::Literal { .. } => {
            // tls-parser's side keeps host names only: an address literal is not one.
            assert_eq!(sni_via_tls_parser(stream), None, "tls-parser finds a name");
        }
        _ => {}
    }
    ours
}

fuzz_target!(|data: &[u8]| {
    let mut scratch = Vec::new();
    // 1. The input as a raw client stream.
    agree(data, &mut scratch);

    // 2. The input after one selector byte as a handshake message, framed two ways.
    let mut cursor = Cursor::new(data);
    let split = usize::from(cursor.u8()).max(1);
    let handshake = cursor.rest();
    if handshake.len() > 1 << 14 {
        return;
    }
    let whole = agree(&tls_records(handshake, 1 << 14), &mut scratch);
    let pieces = agree(&tls_records(handshake, split), &mut scratch);
    if matches!(
        whole,
        ClientHelloOutcome::Sni { .. }
            | ClientHelloOutcome::NoSni { .. }
            | ClientHelloOutcome::Literal { .. }
    ) {
        assert_eq!(whole, pieces, "one record vs records of {split} bytes");
        assert_eq!(sni_from_handshake(handshake), whole, "handshake vs stream entry point");
    }
});
