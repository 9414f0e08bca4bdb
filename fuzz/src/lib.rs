//! Helpers shared by the fuzz targets: a cursor that cuts structured inputs out of the fuzzer's
//! bytes, a "slice lies within" check for borrowed views, the link types the decode and pipeline
//! targets choose from, TLS record framing and a QUIC v1 client Initial sealer.
//!
//! Everything here runs on fuzzer bytes, so it is as panic-free as the code under test: a panic
//! in a helper would be reported as a finding in the parser.
#![forbid(unsafe_code)]

use ksensor::capture::LinkType;

pub mod quic_seal;

/// Reads structured values off the front of the fuzzer's input; every read past the end yields
/// zeros / empty slices, so a target never has to special-case short inputs.
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

/// Whether `inner` is a sub-slice of `outer` (same memory). Empty slices are always accepted:
/// an empty view may legitimately point anywhere.
pub fn within(inner: &[u8], outer: &[u8]) -> bool {
    if inner.is_empty() {
        return true;
    }
    let start = outer.as_ptr() as usize;
    let end = start.saturating_add(outer.len());
    let at = inner.as_ptr() as usize;
    at >= start && at.saturating_add(inner.len()) <= end
}

/// Link types the sensor decodes, plus one it does not (to cover the refusal path). The decode
/// and pipeline targets pick one per packet with a byte of input.
pub const LINK_TYPES: [LinkType; 16] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::RAW_DLT12,
    LinkType::RAW_DLT14,
    LinkType(147), // LINKTYPE_USER0: not supported, must be refused cleanly.
    // Appended after the first eleven so that committed seeds keep their link type.
    LinkType::C_HDLC,
    LinkType::PPP,
    LinkType::PPP_HDLC,
    LinkType::IEEE802_11,
    LinkType::IEEE802_11_RADIOTAP,
];

/// The link type chosen by `selector`.
pub fn link_type(selector: u8) -> LinkType {
    let i = usize::from(selector) % LINK_TYPES.len();
    LINK_TYPES.get(i).copied().unwrap_or(LinkType::ETHERNET)
}

/// Wraps `handshake` in TLS handshake records (RFC 8446 §5.1) of at most `size` bytes each
/// (`size` is clamped to 1..=2^14).
pub fn tls_records(handshake: &[u8], size: usize) -> Vec<u8> {
    let size = size.clamp(1, 1 << 14);
    let mut out = Vec::with_capacity(handshake.len() + handshake.len() / size * 5 + 5);
    for chunk in handshake.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}
