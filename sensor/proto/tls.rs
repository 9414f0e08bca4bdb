//! TLS ClientHello server name (RFC 8446 §4.1.2, RFC 6066 §3).
//!
//! Input: the first bytes of a client-to-server TCP stream, record layer included
//! ([`sni_from_stream`]), or a bare handshake message as carried in QUIC CRYPTO frames
//! ([`sni_from_handshake`], RFC 9001 §4). Output: a [`ClientHelloOutcome`]: the server_name
//! host_name as a validated [`HostName`] and whether encrypted_client_hello was offered, or a
//! reason why there is no name.
//!
//! Copies: none when the ClientHello lies inside the first record (the common case, parsed in
//! place). When it spans several records, the handshake fragments are copied into the caller's
//! `scratch` buffer, which never grows past `4 + MAX_CLIENT_HELLO_LEN` bytes. The name itself is
//! copied into the inline `HostName`. Nothing is allocated otherwise.
//!
//! Detection by content: the first six bytes (record header and handshake type) decide
//! [`ClientHelloOutcome::NotClientHello`], so HTTP, SSH or random binary is rejected after one to
//! six bytes. Anything wrong after those six bytes is [`ClientHelloOutcome::Invalid`].
//!
//! Completeness: the outcome is [`ClientHelloOutcome::NeedMore`] until the whole ClientHello
//! message has arrived; a name is never reported from a partial message.
//!
//! Caps: [`MAX_RECORD_LEN`] per record, [`MAX_CLIENT_HELLO_LEN`] per ClientHello body; every loop
//! is bounded by a named constant derived from them.
//!
//! Leniency: record-layer versions are checked only for plausibility (RFC 8446 §5.1 says they are
//! to be ignored); GREASE values (RFC 8701) are ordinary unknown values; unknown extensions and
//! unknown server name types are skipped by their length.
//! Strictness: lengths must nest exactly (a ClientHello whose extension block or server_name list
//! does not fill its container is invalid), two server_name extensions or two host_name entries
//! are invalid (RFC 8446 §4.2, RFC 6066 §3), and an IPv4 literal as a name is invalid (RFC 6066
//! §3 forbids literal addresses in HostName).

use super::http::is_numeric_host;
use super::HostName;

crate::reason_enum! {
    /// Why a ClientHello yielded no name.
    pub enum TlsSkip {
        BadRecord => "bad_record",
        BadHandshake => "bad_handshake",
        BadExtension => "bad_extension",
        InvalidServerName => "invalid_server_name",
        TooLarge => "client_hello_too_large",
        DuplicateServerName => "duplicate_server_name",
    }
}

/// Result of looking for a ClientHello's server name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // the inline HostName: no allocation per message
pub enum ClientHelloOutcome {
    /// The bytes do not start a TLS handshake record / ClientHello.
    NotClientHello,
    /// A ClientHello has started but more bytes are needed.
    NeedMore,
    /// The server name. `ech` is true when an encrypted_client_hello extension was present, so
    /// `name` is the public (outer) name, not the one the client really wants.
    Sni { name: HostName, ech: bool },
    /// A server name that is an IPv4 or IPv6 address literal, which RFC 6066 §3 forbids but
    /// clients send (`openssl s_client -servername 10.0.0.1`). Not a host name: never matched
    /// against name rules.
    Literal { addr: std::net::IpAddr, ech: bool },
    /// A complete ClientHello without a server_name extension (or with ECH and no outer name).
    NoSni { ech: bool },
    /// A ClientHello that is malformed.
    Invalid(TlsSkip),
}

/// Largest ClientHello body accepted (the handshake length field, without its 4-byte header).
/// Ordinary hellos are 200–600 bytes; post-quantum hybrids (X25519MLKEM768, a 1216-byte key
/// share) reach about 1.8 KB, and adding resumption tickets and ECH stays under 4 KB. 16 KiB
/// (one full record's worth, 2^14) leaves room for any real client while bounding what a flow
/// may buffer while a ClientHello is reassembled: one hello, never megabytes.
pub const MAX_CLIENT_HELLO_LEN: usize = 16 * 1024;

/// Largest record length accepted: 2^14 bytes of plaintext (RFC 8446 §5.1) plus 2048 bytes of
/// slack, the expansion TLS 1.2 allows for a record (RFC 5246 §6.2.3), because some stacks are
/// lax about the plaintext limit. Anything longer is not a TLS record.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// Record header: type (1), legacy_record_version (2), length (2). RFC 8446 §5.1.
const RECORD_HEADER_LEN: usize = 5;
/// Handshake header: msg_type (1), length (3). RFC 8446 §4.
const HANDSHAKE_HEADER_LEN: usize = 4;
/// Most records one ClientHello can span: records are never empty (RFC 8446 §5.1 forbids
/// zero-length handshake fragments), so the worst legal split is one byte per record.
pub const MAX_RECORDS_PER_CLIENT_HELLO: usize = HANDSHAKE_HEADER_LEN + MAX_CLIENT_HELLO_LEN;
/// Extension header: extension_type (2), extension_data length (2). RFC 8446 §4.2.
const EXTENSION_HEADER_LEN: usize = 4;
/// Most extensions that fit in a capped ClientHello (each takes at least its header); one more
/// iteration notices the end of the block.
const MAX_EXTENSIONS: usize = MAX_CLIENT_HELLO_LEN / EXTENSION_HEADER_LEN + 1;
/// ServerName entry header: name_type (1), length (2). RFC 6066 §3.
const SERVER_NAME_HEADER_LEN: usize = 3;
/// Most ServerName entries that fit in a capped ClientHello, plus one to notice the end.
const MAX_SERVER_NAMES: usize = MAX_CLIENT_HELLO_LEN / SERVER_NAME_HEADER_LEN + 1;

/// ContentType handshake(22). RFC 8446 §5.1.
const CONTENT_TYPE_HANDSHAKE: u8 = 22;
/// Major byte of every SSL 3.0 / TLS ProtocolVersion (0x0300–0x0304).
const VERSION_MAJOR: u8 = 3;
/// Highest minor version byte: TLS 1.3 is 0x0304 (RFC 8446 §5.1 allows 0x0300–0x0304 here).
const MAX_VERSION_MINOR: u8 = 4;
/// HandshakeType client_hello(1). RFC 8446 §4.
const HANDSHAKE_TYPE_CLIENT_HELLO: u8 = 1;
/// ClientHello.random. RFC 8446 §4.1.2.
const RANDOM_LEN: usize = 32;
/// legacy_session_id<0..32>. RFC 8446 §4.1.2.
const MAX_SESSION_ID_LEN: usize = 32;
/// ExtensionType server_name(0). RFC 6066 §3.
const EXTENSION_SERVER_NAME: u16 = 0;
/// ExtensionType encrypted_client_hello (draft-ietf-tls-esni-18 §11.1, IANA 0xfe0d).
pub const EXTENSION_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
/// NameType host_name(0). RFC 6066 §3.
const NAME_TYPE_HOST_NAME: u8 = 0;

/// Looks for a ClientHello at the start of a client-to-server TLS byte stream (record layer).
/// The ClientHello may span several records; when it does, its pieces are copied into
/// `scratch` (cleared first, bounded by the ClientHello cap).
pub fn sni_from_stream(stream: &[u8], scratch: &mut Vec<u8>) -> ClientHelloOutcome {
    scratch.clear();
    let record_len = match record_header(stream) {
        RecordHeader::Truncated => return ClientHelloOutcome::NeedMore,
        RecordHeader::NotHandshake => return ClientHelloOutcome::NotClientHello,
        RecordHeader::Handshake { len } => len,
    };
    let body = stream.get(RECORD_HEADER_LEN..).unwrap_or_default();
    let fragment = body.get(..record_len).unwrap_or(body);
    match fragment.first() {
        None => return ClientHelloOutcome::NeedMore,
        Some(&HANDSHAKE_TYPE_CLIENT_HELLO) => {}
        Some(_) => return ClientHelloOutcome::NotClientHello,
    }
    // Common case: the whole message lies inside the first record, so parse it in place.
    if let Some(len) = handshake_body_len(fragment) {
        if HANDSHAKE_HEADER_LEN.saturating_add(len) <= record_len {
            return sni_from_handshake(fragment);
        }
    }
    sni_from_records(stream, scratch)
}

/// Looks for the server name in a handshake message (starting at its 4-byte handshake header,
/// no record layer), as carried in QUIC CRYPTO frames.
pub fn sni_from_handshake(handshake: &[u8]) -> ClientHelloOutcome {
    let mut r = Reader(handshake);
    match r.u8() {
        None => return ClientHelloOutcome::NeedMore,
        Some(HANDSHAKE_TYPE_CLIENT_HELLO) => {}
        Some(_) => return ClientHelloOutcome::NotClientHello,
    }
    let Some(len) = r.u24() else {
        return ClientHelloOutcome::NeedMore;
    };
    if len > MAX_CLIENT_HELLO_LEN {
        return ClientHelloOutcome::Invalid(TlsSkip::TooLarge);
    }
    match r.take(len) {
        None => ClientHelloOutcome::NeedMore,
        Some(body) => client_hello_outcome(body),
    }
}

/// What the first bytes of a record say.
enum RecordHeader {
    /// Fewer than five bytes, all plausible so far.
    Truncated,
    /// Not a handshake record of a plausible TLS version and length.
    NotHandshake,
    /// A handshake record header announcing `len` bytes of fragment.
    Handshake { len: usize },
}

/// Checks a record header byte by byte, so that non-TLS bytes are rejected as early as possible.
fn record_header(bytes: &[u8]) -> RecordHeader {
    match bytes.first() {
        None => return RecordHeader::Truncated,
        Some(&CONTENT_TYPE_HANDSHAKE) => {}
        Some(_) => return RecordHeader::NotHandshake,
    }
    match bytes.get(1) {
        None => return RecordHeader::Truncated,
        Some(&VERSION_MAJOR) => {}
        Some(_) => return RecordHeader::NotHandshake,
    }
    match bytes.get(2) {
        None => return RecordHeader::Truncated,
        Some(&minor) if minor <= MAX_VERSION_MINOR => {}
        Some(_) => return RecordHeader::NotHandshake,
    }
    let Some(&[hi, lo]) = bytes
        .get(3..RECORD_HEADER_LEN)
        .and_then(|s| s.first_chunk::<2>())
    else {
        return RecordHeader::Truncated;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    // Zero-length handshake fragments are forbidden (RFC 8446 §5.1).
    if len == 0 || len > MAX_RECORD_LEN {
        return RecordHeader::NotHandshake;
    }
    RecordHeader::Handshake { len }
}

/// The 24-bit body length of a handshake message, if its header is complete.
fn handshake_body_len(handshake: &[u8]) -> Option<usize> {
    let mut r = Reader(handshake);
    r.u8()?;
    r.u24()
}

/// Slow path: gathers the handshake message from consecutive records into `scratch`
/// (RFC 8446 §5.1: a handshake message may be fragmented across records, which then carry
/// nothing else until it is complete).
fn sni_from_records(stream: &[u8], scratch: &mut Vec<u8>) -> ClientHelloOutcome {
    let mut rest = stream;
    // Header plus body length, known once the 4-byte handshake header is gathered.
    let mut message_len: Option<usize> = None;
    for _ in 0..MAX_RECORDS_PER_CLIENT_HELLO {
        let record_len = match record_header(rest) {
            RecordHeader::Truncated => return ClientHelloOutcome::NeedMore,
            // The first record passed this check already; a later one is not allowed to be
            // anything but a handshake fragment.
            RecordHeader::NotHandshake => return ClientHelloOutcome::Invalid(TlsSkip::BadRecord),
            RecordHeader::Handshake { len } => len,
        };
        let body = rest.get(RECORD_HEADER_LEN..).unwrap_or_default();
        let record_complete = body.len() >= record_len;
        let (mut fragment, next) = body.split_at_checked(record_len).unwrap_or((body, &[]));
        if message_len.is_none() {
            fragment = fill(scratch, fragment, HANDSHAKE_HEADER_LEN);
            if let Some(len) = handshake_body_len(scratch) {
                if len > MAX_CLIENT_HELLO_LEN {
                    return ClientHelloOutcome::Invalid(TlsSkip::TooLarge);
                }
                message_len = Some(HANDSHAKE_HEADER_LEN.saturating_add(len));
            }
        }
        if let Some(total) = message_len {
            fill(scratch, fragment, total);
            if scratch.len() >= total {
                return sni_from_handshake(scratch);
            }
        }
        if !record_complete {
            return ClientHelloOutcome::NeedMore;
        }
        rest = next;
    }
    // Unreachable: every record adds at least one byte and the message is capped.
    ClientHelloOutcome::Invalid(TlsSkip::TooLarge)
}

/// Appends to `scratch` as much of `fragment` as brings it to `target` bytes; returns the rest.
fn fill<'a>(scratch: &mut Vec<u8>, fragment: &'a [u8], target: usize) -> &'a [u8] {
    let want = target.saturating_sub(scratch.len());
    let (now, later) = fragment.split_at_checked(want).unwrap_or((fragment, &[]));
    scratch.extend_from_slice(now);
    later
}

/// Decides the outcome for a complete ClientHello body.
fn client_hello_outcome(body: &[u8]) -> ClientHelloOutcome {
    let extensions = match client_hello_extensions(body) {
        Err(skip) => return ClientHelloOutcome::Invalid(skip),
        // TLS 1.2 and older allow a ClientHello without extensions (RFC 5246 §7.4.1.2).
        Ok(None) => return ClientHelloOutcome::NoSni { ech: false },
        Ok(Some(extensions)) => extensions,
    };
    let (server_name, ech) = match walk_extensions(extensions) {
        Err(skip) => return ClientHelloOutcome::Invalid(skip),
        Ok(found) => found,
    };
    let Some(server_name) = server_name else {
        return ClientHelloOutcome::NoSni { ech };
    };
    match host_name_entry(server_name) {
        Err(skip) => ClientHelloOutcome::Invalid(skip),
        Ok(None) => ClientHelloOutcome::NoSni { ech },
        Ok(Some(raw)) => server_name_outcome(raw, ech),
    }
}

/// The outcome for the HostName bytes of a server_name entry: a host name, an address literal,
/// or invalid. Shared with Google QUIC's CHLO `SNI` tag.
pub fn server_name_outcome(raw: &[u8], ech: bool) -> ClientHelloOutcome {
    if let Some(addr) = super::ip_literal(raw) {
        return ClientHelloOutcome::Literal { addr, ech };
    }
    match HostName::parse(raw) {
        Ok(name) if !is_numeric_host(&name) => ClientHelloOutcome::Sni { name, ech },
        _ => ClientHelloOutcome::Invalid(TlsSkip::InvalidServerName),
    }
}

/// Walks the fixed fields of a ClientHello body (RFC 8446 §4.1.2) and returns its extension
/// block, or `None` when the body ends after compression methods.
fn client_hello_extensions(body: &[u8]) -> Result<Option<&[u8]>, TlsSkip> {
    const BAD: TlsSkip = TlsSkip::BadHandshake;
    let mut r = Reader(body);
    let [major, _minor] = r.array::<2>().ok_or(BAD)?;
    if major != VERSION_MAJOR {
        return Err(BAD);
    }
    r.take(RANDOM_LEN).ok_or(BAD)?;
    let session_id_len = usize::from(r.u8().ok_or(BAD)?);
    if session_id_len > MAX_SESSION_ID_LEN {
        return Err(BAD);
    }
    r.take(session_id_len).ok_or(BAD)?;
    // cipher_suites<2..2^16-2>: two bytes per suite.
    let suites_len = usize::from(r.u16().ok_or(BAD)?);
    if suites_len == 0 || suites_len % 2 != 0 {
        return Err(BAD);
    }
    r.take(suites_len).ok_or(BAD)?;
    // legacy_compression_methods<1..2^8-1>.
    let compression_len = usize::from(r.u8().ok_or(BAD)?);
    if compression_len == 0 {
        return Err(BAD);
    }
    r.take(compression_len).ok_or(BAD)?;
    if r.is_empty() {
        return Ok(None);
    }
    let extensions_len = usize::from(r.u16().ok_or(TlsSkip::BadExtension)?);
    let extensions = r.take(extensions_len).ok_or(TlsSkip::BadExtension)?;
    if !r.is_empty() {
        return Err(TlsSkip::BadExtension);
    }
    Ok(Some(extensions))
}

/// Walks the extension list (RFC 8446 §4.2); returns the server_name extension data and whether
/// encrypted_client_hello was present.
fn walk_extensions(extensions: &[u8]) -> Result<(Option<&[u8]>, bool), TlsSkip> {
    const BAD: TlsSkip = TlsSkip::BadExtension;
    let mut r = Reader(extensions);
    let mut server_name = None;
    let mut ech = false;
    for _ in 0..MAX_EXTENSIONS {
        if r.is_empty() {
            return Ok((server_name, ech));
        }
        let kind = r.u16().ok_or(BAD)?;
        let len = usize::from(r.u16().ok_or(BAD)?);
        let data = r.take(len).ok_or(BAD)?;
        match kind {
            EXTENSION_SERVER_NAME => {
                // RFC 8446 §4.2: no more than one extension of the same type.
                if server_name.is_some() {
                    return Err(TlsSkip::DuplicateServerName);
                }
                server_name = Some(data);
            }
            EXTENSION_ENCRYPTED_CLIENT_HELLO => ech = true,
            _ => {}
        }
    }
    Err(BAD)
}

/// The host_name entry of a ServerNameList (RFC 6066 §3), if any.
fn host_name_entry(server_name: &[u8]) -> Result<Option<&[u8]>, TlsSkip> {
    const BAD: TlsSkip = TlsSkip::BadExtension;
    let mut r = Reader(server_name);
    let list_len = usize::from(r.u16().ok_or(BAD)?);
    let list = r.take(list_len).ok_or(BAD)?;
    // server_name_list<1..2^16-1>, filling the extension exactly.
    if list.is_empty() || !r.is_empty() {
        return Err(BAD);
    }
    let mut r = Reader(list);
    let mut host_name = None;
    for _ in 0..MAX_SERVER_NAMES {
        if r.is_empty() {
            return Ok(host_name);
        }
        let kind = r.u8().ok_or(BAD)?;
        let len = usize::from(r.u16().ok_or(BAD)?);
        let name = r.take(len).ok_or(BAD)?;
        // RFC 6066 §3: at most one name of each type. Other types are skipped by length.
        if kind == NAME_TYPE_HOST_NAME && host_name.replace(name).is_some() {
            return Err(TlsSkip::DuplicateServerName);
        }
    }
    Err(BAD)
}

/// A cursor over borrowed bytes; every read is checked and leaves the cursor unchanged on
/// failure.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (taken, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    fn u24(&mut self) -> Option<usize> {
        self.array::<3>()
            .map(|[a, b, c]| usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
    }
}

/// The tls-parser reading the tests hold the walker to (a dev-dependency, shared with the fuzz
/// target and the benchmark).
#[cfg(test)]
#[path = "../../tests/oracles/tls_sni.rs"]
mod oracle;

#[cfg(test)]
mod tests {
    use super::*;

    /// The server name tls-parser finds (the oracle), by the walker's rules for a name.
    fn sni_via_tls_parser(stream: &[u8]) -> Option<HostName> {
        oracle::sni(stream, MAX_RECORDS_PER_CLIENT_HELLO, |raw| {
            HostName::parse(raw)
                .ok()
                .filter(|n| !oracle::numeric(n.as_bytes()))
        })
    }

    const DS: &[u8] = include_bytes!("testdata/tls13_ds_kaspersky.bin");
    const FFDHE8192: &[u8] = include_bytes!("testdata/tls13_ffdhe8192_ds_kaspersky.bin");
    const TLS12: &[u8] = include_bytes!("testdata/tls12_dnl01_geo_kaspersky.bin");
    const NO_SNI: &[u8] = include_bytes!("testdata/tls13_no_sni.bin");
    const CURL: &[u8] = include_bytes!("testdata/curl_tls13_dnl07_geo_kaspersky.bin");

    /// Every captured hello with the name it carries.
    const REAL: &[(&[u8], Option<&str>)] = &[
        (DS, Some("ds.kaspersky.com")),
        (FFDHE8192, Some("ds.kaspersky.com")),
        (TLS12, Some("dnl-01.geo.kaspersky.com")),
        (NO_SNI, None),
        (CURL, Some("dnl-07.geo.kaspersky.com")),
    ];

    fn name(s: &str) -> HostName {
        HostName::parse(s.as_bytes()).unwrap()
    }

    fn sni(s: &str, ech: bool) -> ClientHelloOutcome {
        ClientHelloOutcome::Sni { name: name(s), ech }
    }

    fn expected(want: Option<&str>) -> ClientHelloOutcome {
        match want {
            Some(s) => sni(s, false),
            None => ClientHelloOutcome::NoSni { ech: false },
        }
    }

    fn run(stream: &[u8]) -> ClientHelloOutcome {
        sni_from_stream(stream, &mut Vec::new())
    }

    /// The handshake message inside a single-record capture.
    fn handshake_of(record: &[u8]) -> &[u8] {
        &record[RECORD_HEADER_LEN..]
    }

    /// Wraps `handshake` in records carrying at most `size` bytes each.
    fn records(handshake: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in handshake.chunks(size) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    /// Wraps `handshake` in two records, the first carrying `first` bytes.
    fn two_records(handshake: &[u8], first: usize) -> Vec<u8> {
        let (a, b) = handshake.split_at(first);
        let mut out = records(a, a.len());
        out.extend_from_slice(&records(b, b.len()));
        out
    }

    fn u16_prefixed(data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(data);
        out
    }

    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend_from_slice(&u16_prefixed(data));
        out
    }

    /// server_name extension with the given (type, name) entries.
    fn server_name_ext(entries: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (kind, name) in entries {
            list.push(*kind);
            list.extend_from_slice(&u16_prefixed(name));
        }
        extension(EXTENSION_SERVER_NAME, &u16_prefixed(&list))
    }

    /// A ClientHello handshake message (header included) with the given extension block.
    fn hello_with_block(block: Option<&[u8]>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x5a; RANDOM_LEN]);
        body.push(32);
        body.extend_from_slice(&[0x11; 32]);
        body.extend_from_slice(&u16_prefixed(&[0x13, 0x01, 0x13, 0x02]));
        body.extend_from_slice(&[1, 0]);
        if let Some(block) = block {
            body.extend_from_slice(&u16_prefixed(block));
        }
        let len = (body.len() as u32).to_be_bytes();
        let mut out = vec![HANDSHAKE_TYPE_CLIENT_HELLO, len[1], len[2], len[3]];
        out.extend_from_slice(&body);
        out
    }

    fn hello(extensions: &[Vec<u8>]) -> Vec<u8> {
        hello_with_block(Some(&extensions.concat()))
    }

    // ---- real captures ----

    #[test]
    fn real_client_hellos_single_record() {
        for (bytes, want) in REAL {
            let mut scratch = Vec::new();
            assert_eq!(sni_from_stream(bytes, &mut scratch), expected(*want));
            // The single-record case parses in place and never touches scratch.
            assert_eq!(scratch.capacity(), 0);
        }
    }

    #[test]
    fn real_client_hellos_as_bare_handshake() {
        for (bytes, want) in REAL {
            assert_eq!(sni_from_handshake(handshake_of(bytes)), expected(*want));
        }
    }

    #[test]
    fn tls_parser_agrees_on_real_client_hellos() {
        for (bytes, want) in REAL {
            assert_eq!(sni_via_tls_parser(bytes), want.map(name));
            let split = records(handshake_of(bytes), 100);
            assert_eq!(sni_via_tls_parser(&split), want.map(name));
        }
    }

    #[test]
    fn large_hello_split_in_two_records_at_every_offset() {
        let handshake = handshake_of(FFDHE8192);
        assert_eq!(handshake.len(), 1293);
        let mut scratch = Vec::new();
        for first in 1..handshake.len() {
            let stream = two_records(handshake, first);
            assert_eq!(
                sni_from_stream(&stream, &mut scratch),
                sni("ds.kaspersky.com", false),
                "split at {first}"
            );
            assert_eq!(scratch.as_slice(), handshake, "split at {first}");
        }
    }

    #[test]
    fn hello_in_one_byte_records() {
        let stream = records(handshake_of(CURL), 1);
        assert_eq!(run(&stream), sni("dnl-07.geo.kaspersky.com", false));
        assert_eq!(
            sni_via_tls_parser(&stream),
            Some(name("dnl-07.geo.kaspersky.com"))
        );
    }

    #[test]
    fn bytes_after_the_hello_in_its_last_record_are_ignored() {
        // A ChangeCipherSpec-like tail inside the same record: the hello is complete.
        let mut handshake = handshake_of(DS).to_vec();
        handshake.extend_from_slice(&[20, 0, 0, 1, 1]);
        assert_eq!(
            run(&records(&handshake, 4096)),
            sni("ds.kaspersky.com", false)
        );
        assert_eq!(
            run(&two_records(&handshake, 100)),
            sni("ds.kaspersky.com", false)
        );
    }

    #[test]
    fn truncation_at_every_offset_single_record() {
        for (bytes, _) in REAL {
            for end in 0..bytes.len() {
                assert_eq!(
                    run(&bytes[..end]),
                    ClientHelloOutcome::NeedMore,
                    "end {end}"
                );
                let hs = handshake_of(bytes);
                if end < hs.len() {
                    assert_eq!(sni_from_handshake(&hs[..end]), ClientHelloOutcome::NeedMore);
                }
            }
        }
    }

    #[test]
    fn truncation_at_every_offset_split_records() {
        for stream in [
            two_records(handshake_of(FFDHE8192), 700),
            two_records(handshake_of(DS), 2),
            records(handshake_of(TLS12), 7),
        ] {
            let mut scratch = Vec::new();
            for end in 0..stream.len() {
                assert_eq!(
                    sni_from_stream(&stream[..end], &mut scratch),
                    ClientHelloOutcome::NeedMore,
                    "end {end}"
                );
            }
            assert!(matches!(run(&stream), ClientHelloOutcome::Sni { .. }));
        }
    }

    // ---- detection by content ----

    #[test]
    fn empty_stream_needs_more() {
        assert_eq!(run(b""), ClientHelloOutcome::NeedMore);
        assert_eq!(sni_from_handshake(b""), ClientHelloOutcome::NeedMore);
    }

    #[test]
    fn http_is_not_tls_after_one_byte() {
        assert_eq!(run(b"G"), ClientHelloOutcome::NotClientHello);
        assert_eq!(
            run(b"GET / HTTP/1.1\r\n"),
            ClientHelloOutcome::NotClientHello
        );
    }

    #[test]
    fn ssh_is_not_tls_after_one_byte() {
        assert_eq!(run(b"S"), ClientHelloOutcome::NotClientHello);
        assert_eq!(
            run(b"SSH-2.0-OpenSSH_9.2\r\n"),
            ClientHelloOutcome::NotClientHello
        );
    }

    #[test]
    fn zeros_are_not_tls() {
        assert_eq!(run(&[0]), ClientHelloOutcome::NotClientHello);
        assert_eq!(run(&[0; 64]), ClientHelloOutcome::NotClientHello);
    }

    #[test]
    fn other_record_types_are_not_client_hellos() {
        // change_cipher_spec(20), alert(21), application_data(23).
        for kind in [20u8, 21, 23] {
            assert_eq!(
                run(&[kind, 3, 3, 0, 2, 1, 0]),
                ClientHelloOutcome::NotClientHello
            );
        }
    }

    #[test]
    fn implausible_record_versions_are_not_tls() {
        assert_eq!(run(&[22, 2]), ClientHelloOutcome::NotClientHello);
        assert_eq!(run(&[22, 3, 5]), ClientHelloOutcome::NotClientHello);
        assert_eq!(run(&[22, 0xfe, 0xfd]), ClientHelloOutcome::NotClientHello); // DTLS 1.2
        assert_eq!(run(&[22, 3]), ClientHelloOutcome::NeedMore);
        assert_eq!(run(&[22, 3, 0, 0]), ClientHelloOutcome::NeedMore);
    }

    #[test]
    fn zero_or_oversized_first_record_is_not_tls() {
        assert_eq!(run(&[22, 3, 1, 0, 0]), ClientHelloOutcome::NotClientHello);
        let too_long = (MAX_RECORD_LEN as u16 + 1).to_be_bytes();
        assert_eq!(
            run(&[22, 3, 1, too_long[0], too_long[1], 1]),
            ClientHelloOutcome::NotClientHello
        );
        let max = (MAX_RECORD_LEN as u16).to_be_bytes();
        assert_eq!(
            run(&[22, 3, 1, max[0], max[1], 1]),
            ClientHelloOutcome::NeedMore
        );
    }

    #[test]
    fn server_hello_is_not_a_client_hello() {
        assert_eq!(
            run(&[22, 3, 3, 0, 90, 2]),
            ClientHelloOutcome::NotClientHello
        );
        assert_eq!(
            sni_from_handshake(&[2, 0, 0, 4]),
            ClientHelloOutcome::NotClientHello
        );
    }

    // ---- lengths ----

    #[test]
    fn hello_larger_than_cap_is_too_large() {
        let len = (MAX_CLIENT_HELLO_LEN as u32 + 1).to_be_bytes();
        let header = [1, len[1], len[2], len[3]];
        assert_eq!(
            sni_from_handshake(&header),
            ClientHelloOutcome::Invalid(TlsSkip::TooLarge)
        );
        // Announced in a first record that carries only the header: rejected before the data.
        assert_eq!(
            run(&records(&header, 4)),
            ClientHelloOutcome::Invalid(TlsSkip::TooLarge)
        );
        // Handshake header itself split over records.
        assert_eq!(
            run(&records(&header, 1)),
            ClientHelloOutcome::Invalid(TlsSkip::TooLarge)
        );
    }

    #[test]
    fn hello_exactly_at_cap_is_accepted() {
        let base = hello(&[
            server_name_ext(&[(0, b"ds.kaspersky.com")]),
            extension(21, &[]),
        ]);
        let pad = MAX_CLIENT_HELLO_LEN + HANDSHAKE_HEADER_LEN - base.len();
        let handshake = hello(&[
            server_name_ext(&[(0, b"ds.kaspersky.com")]),
            extension(21, &vec![0; pad]),
        ]);
        assert_eq!(handshake.len(), HANDSHAKE_HEADER_LEN + MAX_CLIENT_HELLO_LEN);
        assert_eq!(
            run(&two_records(&handshake, 9000)),
            sni("ds.kaspersky.com", false)
        );
        assert_eq!(
            sni_from_handshake(&handshake),
            sni("ds.kaspersky.com", false)
        );
    }

    #[test]
    fn hello_length_beyond_record_without_next_record_needs_more() {
        // First record complete, message continues: wait for the next record.
        let stream = records(&handshake_of(DS)[..100], 100);
        assert_eq!(run(&stream), ClientHelloOutcome::NeedMore);
    }

    #[test]
    fn hello_body_too_short_for_fixed_fields() {
        let handshake = [1, 0, 0, 10, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadHandshake)
        );
        assert_eq!(
            run(&records(&handshake, 100)),
            ClientHelloOutcome::Invalid(TlsSkip::BadHandshake)
        );
    }

    #[test]
    fn legacy_version_must_be_ssl3_family() {
        let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
        handshake[4] = 0xfe;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadHandshake)
        );
    }

    #[test]
    fn session_id_longer_than_32_is_invalid() {
        let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
        handshake[4 + 2 + RANDOM_LEN] = 33;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadHandshake)
        );
    }

    #[test]
    fn odd_or_empty_cipher_suites_are_invalid() {
        let at = 4 + 2 + RANDOM_LEN + 1 + 32;
        for len in [0u8, 3] {
            let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
            handshake[at + 1] = len;
            assert_eq!(
                sni_from_handshake(&handshake),
                ClientHelloOutcome::Invalid(TlsSkip::BadHandshake),
                "suites len {len}"
            );
        }
    }

    #[test]
    fn empty_compression_methods_are_invalid() {
        let at = 4 + 2 + RANDOM_LEN + 1 + 32 + 2 + 4;
        let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
        handshake[at] = 0;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadHandshake)
        );
    }

    #[test]
    fn hello_without_extensions_has_no_sni() {
        let handshake = hello_with_block(None);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::NoSni { ech: false }
        );
        assert_eq!(
            run(&records(&handshake, 4096)),
            ClientHelloOutcome::NoSni { ech: false }
        );
    }

    #[test]
    fn extension_block_longer_than_hello_is_invalid() {
        let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
        let at = handshake.len() - server_name_ext(&[(0, b"a.com")]).len() - 2;
        handshake[at + 1] += 1;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn trailing_bytes_after_extension_block_are_invalid() {
        let mut handshake = hello(&[server_name_ext(&[(0, b"a.com")])]);
        handshake.push(0);
        handshake[3] += 1;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn one_stray_byte_instead_of_extension_block_is_invalid() {
        let mut handshake = hello_with_block(None);
        handshake.push(0);
        handshake[3] += 1;
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn extension_length_overrunning_block_is_invalid() {
        // An extension announcing 200 bytes inside a block of 8.
        let block = [0x00, 0x17, 0x00, 0xc8, 0, 0, 0, 0];
        let handshake = hello_with_block(Some(&block));
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn second_record_of_another_type_is_invalid() {
        let handshake = handshake_of(DS);
        let mut stream = records(&handshake[..50], 50);
        stream.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        assert_eq!(
            run(&stream),
            ClientHelloOutcome::Invalid(TlsSkip::BadRecord)
        );
    }

    #[test]
    fn empty_second_record_is_invalid() {
        let mut stream = records(&handshake_of(DS)[..50], 50);
        stream.extend_from_slice(&[22, 3, 3, 0, 0]);
        stream.extend_from_slice(&records(&handshake_of(DS)[50..], 4096));
        assert_eq!(
            run(&stream),
            ClientHelloOutcome::Invalid(TlsSkip::BadRecord)
        );
    }

    // ---- server_name ----

    #[test]
    fn no_server_name_extension() {
        let handshake = hello(&[extension(10, &[0, 2, 0, 0x1d])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::NoSni { ech: false }
        );
    }

    #[test]
    fn ech_with_public_name() {
        let handshake = hello(&[
            server_name_ext(&[(0, b"cloudflare-ech.com")]),
            extension(
                EXTENSION_ENCRYPTED_CLIENT_HELLO,
                &[0, 0, 1, 0, 1, 0x42, 0, 0, 0, 0],
            ),
        ]);
        assert_eq!(
            sni_from_handshake(&handshake),
            sni("cloudflare-ech.com", true)
        );
        assert_eq!(
            run(&records(&handshake, 4096)),
            sni("cloudflare-ech.com", true)
        );
    }

    #[test]
    fn ech_before_server_name_is_still_noted() {
        let handshake = hello(&[
            extension(EXTENSION_ENCRYPTED_CLIENT_HELLO, &[1]),
            server_name_ext(&[(0, b"public.example")]),
        ]);
        assert_eq!(sni_from_handshake(&handshake), sni("public.example", true));
    }

    #[test]
    fn ech_without_server_name() {
        let handshake = hello(&[extension(EXTENSION_ENCRYPTED_CLIENT_HELLO, &[1])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::NoSni { ech: true }
        );
    }

    #[test]
    fn grease_extensions_are_plain_values() {
        let handshake = hello(&[
            extension(0x0a0a, &[]),
            server_name_ext(&[(0, b"ds.kaspersky.com")]),
            extension(0xfafa, &[0]),
        ]);
        assert_eq!(
            sni_from_handshake(&handshake),
            sni("ds.kaspersky.com", false)
        );
        assert_eq!(
            sni_via_tls_parser(&records(&handshake, 4096)),
            Some(name("ds.kaspersky.com"))
        );
    }

    #[test]
    fn server_name_is_lower_cased_and_trailing_dot_dropped() {
        let handshake = hello(&[server_name_ext(&[(0, b"DS.Kaspersky.COM.")])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            sni("ds.kaspersky.com", false)
        );
    }

    #[test]
    fn server_name_with_invalid_bytes() {
        for raw in [
            &b"ds.kasp ersky.com"[..],
            b"ds.kaspersky.com\0",
            b"\xff\xfe",
            b"d\xc3\xa9.com",
            b"a..b",
            b"",
        ] {
            let handshake = hello(&[server_name_ext(&[(0, raw)])]);
            assert_eq!(
                sni_from_handshake(&handshake),
                ClientHelloOutcome::Invalid(TlsSkip::InvalidServerName),
                "{raw:?}"
            );
            assert_eq!(sni_via_tls_parser(&records(&handshake, 4096)), None);
        }
    }

    #[test]
    fn server_name_ip_literal_is_a_literal_not_a_name() {
        for (raw, addr) in [
            (&b"10.0.0.1"[..], "10.0.0.1"),
            (b"::1", "::1"),
            (b"[fd77::2]", "fd77::2"),
        ] {
            let handshake = hello(&[server_name_ext(&[(0, raw)])]);
            assert_eq!(
                sni_from_handshake(&handshake),
                ClientHelloOutcome::Literal {
                    addr: addr.parse().unwrap(),
                    ech: false
                },
                "{raw:?}"
            );
        }
        // Numeric but not an address literal: neither a name nor an address.
        for raw in [&b"192.168.1.10."[..], b"2130706433", b"10.0.0.256"] {
            let handshake = hello(&[server_name_ext(&[(0, raw)])]);
            assert_eq!(
                sni_from_handshake(&handshake),
                ClientHelloOutcome::Invalid(TlsSkip::InvalidServerName),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn server_name_too_long_is_invalid() {
        let long = [b"a.".repeat(127), b"com".to_vec()].concat();
        let handshake = hello(&[server_name_ext(&[(0, &long)])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::InvalidServerName)
        );
    }

    #[test]
    fn duplicate_server_name_extension_is_invalid() {
        let handshake = hello(&[
            server_name_ext(&[(0, b"ds.kaspersky.com")]),
            server_name_ext(&[(0, b"example.com")]),
        ]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::DuplicateServerName)
        );
    }

    #[test]
    fn duplicate_host_name_entry_is_invalid() {
        let handshake = hello(&[server_name_ext(&[
            (0, b"ds.kaspersky.com"),
            (0, b"example.com"),
        ])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::DuplicateServerName)
        );
    }

    #[test]
    fn unknown_name_type_is_skipped() {
        let handshake = hello(&[server_name_ext(&[
            (7, b"\x00\x01opaque"),
            (0, b"ds.kaspersky.com"),
        ])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            sni("ds.kaspersky.com", false)
        );
        let only_unknown = hello(&[server_name_ext(&[(7, b"x")])]);
        assert_eq!(
            sni_from_handshake(&only_unknown),
            ClientHelloOutcome::NoSni { ech: false }
        );
    }

    #[test]
    fn empty_server_name_extension_is_invalid() {
        let handshake = hello(&[extension(EXTENSION_SERVER_NAME, &[])]);
        assert_eq!(
            sni_from_handshake(&handshake),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
        let empty_list = hello(&[extension(EXTENSION_SERVER_NAME, &[0, 0])]);
        assert_eq!(
            sni_from_handshake(&empty_list),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn server_name_list_length_mismatch_is_invalid() {
        // List says 30 bytes, extension holds 19.
        let mut ext = server_name_ext(&[(0, b"ds.kaspersky.com")]);
        ext[5] = 30;
        assert_eq!(
            sni_from_handshake(&hello(&[ext.clone()])),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
        // List shorter than the extension: trailing bytes.
        ext[5] = 10;
        assert_eq!(
            sni_from_handshake(&hello(&[ext])),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    #[test]
    fn host_name_length_overrunning_list_is_invalid() {
        let mut ext = server_name_ext(&[(0, b"ds.kaspersky.com")]);
        ext[8] = 40;
        assert_eq!(
            sni_from_handshake(&hello(&[ext])),
            ClientHelloOutcome::Invalid(TlsSkip::BadExtension)
        );
    }

    /// Any change to the record or handshake header either yields the original name or no name.
    #[test]
    fn mutated_record_headers_never_yield_another_name() {
        for (bytes, want) in REAL {
            for at in 0..RECORD_HEADER_LEN + HANDSHAKE_HEADER_LEN {
                for flip in 1..=255u8 {
                    let mut mutated = bytes.to_vec();
                    mutated[at] ^= flip;
                    // Other outcomes are fine: a shortened handshake length can even end the hello
                    // right after its compression methods, a valid hello without extensions.
                    if let ClientHelloOutcome::Sni { name: got, .. } = run(&mutated) {
                        assert_eq!(Some(got), want.map(name), "at {at} flip {flip:#x}");
                    }
                }
            }
        }
    }

    /// Found by the `tls` fuzz target: a hello without server_name followed, in the same
    /// record, by a second hello with one. The walker answers for the first hello; the
    /// tls-parser oracle used to skip to the second and report its name.
    #[test]
    fn oracle_answers_for_the_first_client_hello_only() {
        let mut handshake = handshake_of(NO_SNI).to_vec();
        handshake.extend_from_slice(handshake_of(CURL));
        let stream = records(&handshake, 1 << 14);
        let mut scratch = Vec::new();
        assert_eq!(
            sni_from_stream(&stream, &mut scratch),
            ClientHelloOutcome::NoSni { ech: false }
        );
        assert_eq!(sni_via_tls_parser(&stream), None);
    }

    // ---- agreement with tls-parser on mutated inputs ----

    /// Flips bytes of the handshake messages of real hellos (records re-framed around them) and
    /// checks that whenever this walker reports a name or its absence, tls-parser agrees
    /// (about 19 000 such cases), and that it disagrees only by being stricter.
    #[test]
    fn tls_parser_agrees_on_mutated_hellos() {
        let mut compared = 0usize;
        let mut scratch = Vec::new();
        for (bytes, _) in REAL {
            let handshake = handshake_of(bytes);
            for at in 0..handshake.len() {
                for flip in [0x01u8, 0x20, 0x80, 0xff] {
                    let mut mutated = handshake.to_vec();
                    mutated[at] ^= flip;
                    for stream in [records(&mutated, 4096), records(&mutated, 64)] {
                        let ours = sni_from_stream(&stream, &mut scratch);
                        let theirs = sni_via_tls_parser(&stream);
                        match ours {
                            ClientHelloOutcome::Sni { name, .. } => {
                                assert_eq!(theirs, Some(name), "at {at} flip {flip:#x}");
                                compared += 1;
                            }
                            ClientHelloOutcome::NoSni { .. } => {
                                assert_eq!(theirs, None, "at {at} flip {flip:#x}");
                                compared += 1;
                            }
                            // tls-parser is laxer about nested lengths and duplicates: where it still
                            // finds a name, this walker must have called the hello invalid.
                            other => assert!(
                                theirs.is_none() || matches!(other, ClientHelloOutcome::Invalid(_)),
                                "at {at} flip {flip:#x}: {other:?} vs {theirs:?}"
                            ),
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000, "only {compared} comparable mutations");
    }
}
