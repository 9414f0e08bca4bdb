//! Protocol parsers: bytes in, names out.
//!
//! Contract: each parser reads a borrowed byte slice (a datagram or a reassembled stream prefix),
//! never panics, never allocates per call in steady state, and returns either what it found or a
//! small `Copy` reason. Parsers never format output and never touch counters or flow state.
//! Names leave the parsers as [`HostName`]: validated, lower-case, without a trailing dot.
// Packet and file bytes are hostile: no unwrap/expect/panic, no unchecked indexing (issue 8).
// Lint levels are inherited, so this covers every submodule of this stage.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod dns;
pub mod http;
pub mod quic;
pub mod tls;

use std::fmt;

/// Where a name was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    Dns,
    Tls,
    Quic,
    Http,
}

impl NameKind {
    pub const ALL: [NameKind; 4] = [NameKind::Dns, NameKind::Tls, NameKind::Quic, NameKind::Http];

    pub fn label(self) -> &'static str {
        match self {
            NameKind::Dns => "dns",
            NameKind::Tls => "tls",
            NameKind::Quic => "quic",
            NameKind::Http => "http",
        }
    }
}

/// Longest DNS name in presentation form without the trailing dot (RFC 1035 §2.3.4: 255 octets
/// on the wire, which is 253 characters of text).
pub const MAX_HOST_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated host name: 1–253 bytes of `[a-z0-9_-]` labels (1–63 bytes each) joined by dots,
/// lower-case, no trailing dot. Stored inline so that extracting a name never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName {
    len: u8,
    bytes: [u8; MAX_HOST_NAME_LEN],
}

/// Why bytes are not a host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidName {
    Empty,
    TooLong,
    EmptyLabel,
    LabelTooLong,
    BadCharacter,
}

impl HostName {
    /// Validates and normalises `raw`: ASCII letters are lower-cased and one trailing dot is
    /// dropped. Letters, digits, `-` and `_` are accepted in labels (`_` appears in real DNS
    /// names such as SRV owners); anything else is rejected.
    pub fn parse(raw: &[u8]) -> Result<HostName, InvalidName> {
        let raw = raw.strip_suffix(b".").unwrap_or(raw);
        if raw.is_empty() {
            return Err(InvalidName::Empty);
        }
        if raw.len() > MAX_HOST_NAME_LEN {
            return Err(InvalidName::TooLong);
        }
        let mut name = HostName {
            len: 0,
            bytes: [0; MAX_HOST_NAME_LEN],
        };
        let mut label_len = 0usize;
        for (slot, &b) in name.bytes.iter_mut().zip(raw) {
            match b {
                b'.' => {
                    if label_len == 0 {
                        return Err(InvalidName::EmptyLabel);
                    }
                    label_len = 0;
                }
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'A'..=b'Z' => {
                    label_len += 1;
                    if label_len > MAX_LABEL_LEN {
                        return Err(InvalidName::LabelTooLong);
                    }
                }
                _ => return Err(InvalidName::BadCharacter),
            }
            *slot = b.to_ascii_lowercase();
        }
        if label_len == 0 {
            return Err(InvalidName::EmptyLabel);
        }
        // raw.len() <= 253 was checked above.
        name.len = raw.len() as u8;
        Ok(name)
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was admitted by `parse`.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostName({:?})", self.as_str())
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_trailing_dot() {
        let n = HostName::parse(b"DNL-01.Geo.Kaspersky.COM.").unwrap();
        assert_eq!(n.as_str(), "dnl-01.geo.kaspersky.com");
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(HostName::parse(b""), Err(InvalidName::Empty));
        assert_eq!(HostName::parse(b"."), Err(InvalidName::Empty));
        assert_eq!(HostName::parse(b"a..b"), Err(InvalidName::EmptyLabel));
        assert_eq!(HostName::parse(b".a"), Err(InvalidName::EmptyLabel));
        assert_eq!(HostName::parse(b"a b"), Err(InvalidName::BadCharacter));
        assert_eq!(HostName::parse(b"a\0b"), Err(InvalidName::BadCharacter));
        assert_eq!(HostName::parse(&[b'a'; 64]), Err(InvalidName::LabelTooLong));
        assert!(HostName::parse(&[b'a'; 63]).is_ok());
        let long = [b"a.".repeat(126), b"ab".to_vec()].concat(); // 254 bytes
        assert_eq!(HostName::parse(&long), Err(InvalidName::TooLong));
        assert!(HostName::parse(&long[1..]).is_err_and(|e| e == InvalidName::EmptyLabel));
        assert!(HostName::parse(&long[2..]).is_ok());
    }
}
