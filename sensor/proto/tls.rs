//! TLS ClientHello SNI (RFC 8446 §4.1.2, RFC 6066 §3). (Being written: signatures are fixed.)

use super::HostName;

crate::reason_enum! {
    /// Why a ClientHello yielded no name.
    pub enum TlsSkip {
        BadRecord => "bad_record",
        BadHandshake => "bad_handshake",
        BadExtension => "bad_extension",
        InvalidServerName => "invalid_server_name",
        TooLarge => "client_hello_too_large",
    }
}

/// Result of looking for a ClientHello's server name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientHelloOutcome {
    /// The bytes do not start a TLS handshake record / ClientHello.
    NotClientHello,
    /// A ClientHello has started but more bytes are needed.
    NeedMore,
    /// The server name. `ech` is true when an encrypted_client_hello extension was present, so
    /// `name` is the public (outer) name, not the one the client really wants.
    Sni { name: HostName, ech: bool },
    /// A complete ClientHello without a server_name extension (or with ECH and no outer name).
    NoSni { ech: bool },
    /// A ClientHello that is malformed.
    Invalid(TlsSkip),
}

/// Looks for a ClientHello at the start of a client-to-server TLS byte stream (record layer).
/// The ClientHello may span several records; when it does, its pieces are copied into
/// `scratch` (cleared first, bounded by the ClientHello cap).
pub fn sni_from_stream(stream: &[u8], scratch: &mut Vec<u8>) -> ClientHelloOutcome {
    let _ = (stream, scratch);
    ClientHelloOutcome::NotClientHello
}

/// Looks for the server name in a handshake message (starting at its 4-byte handshake header,
/// no record layer), as carried in QUIC CRYPTO frames.
pub fn sni_from_handshake(handshake: &[u8]) -> ClientHelloOutcome {
    let _ = handshake;
    ClientHelloOutcome::NotClientHello
}
