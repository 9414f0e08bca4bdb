//! Google QUIC: the client hello of the versions still seen on networks.
//!
//! * Q043 and older (public header) and Q046 (its own long header) send the CHLO in the clear:
//!   a header, a 12-byte message authentication hash, then frames; the CHLO rides in STREAM
//!   frames of stream 1 ([`clear_payload`], [`walk_stream_frames`]). Layouts: Chromium
//!   `quic/core/quic_framer.cc` and Wireshark's `packet-gquic.c`.
//! * Q050, T050 and T051 use the IETF invariant header and Initial packet protection with their
//!   own salts (`keys.rs`), and Google frame types: the CHLO (Q050) or a TLS ClientHello
//!   (T050, T051) rides in CRYPTO frames ([`walk_crypto_frames`]).
//! * [`chlo_len`] and [`sni_from_chlo`] read the CHLO message itself.
//!
//! Input is one datagram's bytes, borrowed and hostile; CRYPTO and STREAM data are copied into
//! the caller's [`CryptoStream`] (bounded by its cap).

use super::crypto_stream::CryptoStream;
use super::cursor::Cursor;
use super::frames::{Walk, MAX_FRAMES_PER_PACKET};
use super::QuicSkip;
use crate::proto::tls::{self, ClientHelloOutcome};

/// Public flags of the pre-IETF header (Q043 and older).
const PUBLIC_FLAG_VERSION: u8 = 0x01;
const PUBLIC_FLAG_RESET: u8 = 0x02;
const PUBLIC_FLAG_NONCE: u8 = 0x04;
const PUBLIC_FLAG_8BYTE_CID: u8 = 0x08;
/// The message authentication hash before the frames of an unencrypted packet (FNV-1a 128,
/// truncated to 96 bits).
const HASH_LEN: usize = 12;
/// The stream that carries the crypto handshake.
const CRYPTO_STREAM_ID: u64 = 1;

/// Google frame types (Chromium `quic_frame.h`).
const PADDING: u8 = 0x00;
const PING: u8 = 0x07;
const CRYPTO: u8 = 0x08;
/// STREAM frames: 1FDOOOSS (FIN, data length present, offset length, stream id length).
const STREAM_BIT: u8 = 0x80;

/// A clear client packet's frames: `Some` for a Q0xx packet with the version flag (the client's
/// first packets carry it) of version 43 or below (public header) or 44 to 46 (long header).
pub(super) fn clear_payload(datagram: &[u8]) -> Option<&[u8]> {
    let mut c = Cursor::new(datagram);
    let first = c.u8()?;
    if first & 0x80 != 0 {
        // Q044–Q046 long header: type bits (Initial is 0) and packet-number length in the
        // first byte; version; one byte of connection ID lengths (4 bits each, +3 unless 0).
        let version = c.bytes(4)?;
        if !matches!(version, [b'Q', b'0', b'4', b'4'..=b'6']) || first & 0x30 != 0 {
            return None;
        }
        let lens = c.u8()?;
        let cid_len = |nibble: u8| {
            if nibble == 0 {
                0
            } else {
                usize::from(nibble) + 3
            }
        };
        c.bytes(cid_len(lens >> 4))?;
        c.bytes(cid_len(lens & 0x0f))?;
        c.bytes(usize::from(first & 0x03) + 1)?;
    } else {
        if first & PUBLIC_FLAG_VERSION == 0 || first & PUBLIC_FLAG_RESET != 0 {
            return None;
        }
        if first & PUBLIC_FLAG_8BYTE_CID != 0 {
            c.bytes(8)?;
        }
        let version = c.bytes(4)?;
        match version {
            [b'Q', b'0', tens @ b'0'..=b'4', ones @ b'0'..=b'9'] => {
                if (tens - b'0') * 10 + (ones - b'0') > 43 {
                    return None;
                }
            }
            _ => return None,
        }
        // A diversification nonce only travels from server to client.
        if first & PUBLIC_FLAG_NONCE != 0 {
            return None;
        }
        let pn_len = match (first >> 4) & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => 6,
        };
        c.bytes(pn_len)?;
    }
    c.bytes(HASH_LEN)?;
    Some(c.rest())
}

/// Walks the frames of a clear packet, copying the data of STREAM frames on stream 1 into
/// `crypto`. Stops at the first frame type it does not know.
pub(super) fn walk_stream_frames(payload: &[u8], crypto: &mut CryptoStream) -> Walk {
    let mut c = Cursor::new(payload);
    let mut walk = Walk {
        frames: 0,
        skip: None,
    };
    while let Some(kind) = c.u8() {
        if walk.frames as usize >= MAX_FRAMES_PER_PACKET {
            walk.skip.get_or_insert(QuicSkip::TooManyFrames);
            break;
        }
        walk.frames += 1;
        match kind {
            // Padding runs to the end of the packet.
            PADDING => break,
            PING => {}
            k if k & STREAM_BIT != 0 => {
                let has_len = k & 0x20 != 0;
                let offset_len = match (k >> 2) & 0x07 {
                    0 => 0,
                    n => usize::from(n) + 1,
                };
                let id_len = usize::from(k & 0x03) + 1;
                let (Some(id), Some(offset)) = (be(&mut c, id_len), be(&mut c, offset_len)) else {
                    walk.skip.get_or_insert(QuicSkip::BadFrame);
                    break;
                };
                let data = if has_len {
                    be(&mut c, 2).and_then(|n| c.bytes_u64(n))
                } else {
                    c.bytes(c.rest().len())
                };
                let Some(data) = data else {
                    walk.skip.get_or_insert(QuicSkip::BadFrame);
                    break;
                };
                if id == CRYPTO_STREAM_ID {
                    if let Some(note) = crypto.insert(offset, data) {
                        walk.skip.get_or_insert(note);
                    }
                }
            }
            _ => {
                walk.skip.get_or_insert(QuicSkip::BadFrame);
                break;
            }
        }
    }
    walk
}

/// Walks the frames of a decrypted Q050/T050/T051 Initial: PADDING, PING and CRYPTO (offset
/// and length as IETF varints), copying CRYPTO data into `crypto`.
pub(super) fn walk_crypto_frames(payload: &[u8], crypto: &mut CryptoStream) -> Walk {
    let mut c = Cursor::new(payload);
    let mut walk = Walk {
        frames: 0,
        skip: None,
    };
    while let Some(kind) = c.u8() {
        if walk.frames as usize >= MAX_FRAMES_PER_PACKET {
            walk.skip.get_or_insert(QuicSkip::TooManyFrames);
            break;
        }
        walk.frames += 1;
        match kind {
            PADDING => break,
            PING => {}
            CRYPTO => {
                let frame = c
                    .varint()
                    .and_then(|offset| Some((offset, c.varint()?)))
                    .and_then(|(offset, len)| Some((offset, c.bytes_u64(len)?)));
                let Some((offset, data)) = frame else {
                    walk.skip.get_or_insert(QuicSkip::BadFrame);
                    break;
                };
                if let Some(note) = crypto.insert(offset, data) {
                    walk.skip.get_or_insert(note);
                }
            }
            _ => {
                walk.skip.get_or_insert(QuicSkip::BadFrame);
                break;
            }
        }
    }
    walk
}

/// A big-endian integer of `len` (0 to 8) bytes.
fn be(c: &mut Cursor<'_>, len: usize) -> Option<u64> {
    let bytes = c.bytes(len)?;
    Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// The tag of a client hello message (QUIC crypto, Chromium `crypto_protocol.h`).
pub(super) const CHLO_TAG: [u8; 4] = *b"CHLO";
/// Tag, entry count, padding.
const CHLO_HEADER_LEN: usize = 8;
/// Tag and end offset of one entry of the index.
const CHLO_ENTRY_LEN: usize = 8;
/// Most entries accepted: Chromium's framer refuses more than 128 (`kMaxEntries`); real client
/// hellos carry about 20.
pub const MAX_CHLO_ENTRIES: usize = 128;
const SNI_TAG: [u8; 4] = *b"SNI\0";

/// Total length of the CHLO message at the start of `bytes` (header, index, values): `Ok(None)`
/// while its index is incomplete, `Err` when it is not a CHLO or its index is impossible (more
/// than [`MAX_CHLO_ENTRIES`] entries, end offsets that go back).
pub(super) fn chlo_len(bytes: &[u8]) -> Result<Option<usize>, QuicSkip> {
    let Some(&[t0, t1, t2, t3, n0, n1, _, _]) = bytes.first_chunk::<CHLO_HEADER_LEN>() else {
        return Ok(None);
    };
    if [t0, t1, t2, t3] != CHLO_TAG {
        return Err(QuicSkip::NotClientHello);
    }
    let count = usize::from(u16::from_le_bytes([n0, n1]));
    if count > MAX_CHLO_ENTRIES {
        return Err(QuicSkip::NotClientHello);
    }
    // count <= 128: no overflow.
    let index_end = CHLO_HEADER_LEN + count * CHLO_ENTRY_LEN;
    let Some(index) = bytes.get(CHLO_HEADER_LEN..index_end) else {
        return Ok(None);
    };
    let mut last = 0u32;
    for entry in index.chunks_exact(CHLO_ENTRY_LEN) {
        let end = match entry {
            &[_, _, _, _, e0, e1, e2, e3] => u32::from_le_bytes([e0, e1, e2, e3]),
            _ => return Err(QuicSkip::NotClientHello),
        };
        if end < last {
            return Err(QuicSkip::NotClientHello);
        }
        last = end;
    }
    let values = usize::try_from(last).map_err(|_| QuicSkip::CryptoBufferFull)?;
    Ok(Some(index_end.saturating_add(values)))
}

/// The server name of a complete CHLO message (its `SNI` tag), classified like a TLS server
/// name ([`tls::server_name_outcome`]).
pub(super) fn sni_from_chlo(msg: &[u8]) -> ClientHelloOutcome {
    let total = match chlo_len(msg) {
        Ok(Some(total)) if total <= msg.len() => total,
        Ok(_) => return ClientHelloOutcome::NeedMore,
        Err(_) => return ClientHelloOutcome::NotClientHello,
    };
    let count = msg
        .get(4..6)
        .and_then(|c| c.first_chunk::<2>())
        .map_or(0, |c| usize::from(u16::from_le_bytes(*c)));
    let index_end = CHLO_HEADER_LEN + count.min(MAX_CHLO_ENTRIES) * CHLO_ENTRY_LEN;
    let (Some(index), Some(values)) = (
        msg.get(CHLO_HEADER_LEN..index_end),
        msg.get(index_end..total),
    ) else {
        return ClientHelloOutcome::NotClientHello;
    };
    let mut start = 0usize;
    for entry in index.chunks_exact(CHLO_ENTRY_LEN) {
        let (tag, end) = match entry {
            &[a, b, c, d, e0, e1, e2, e3] => (
                [a, b, c, d],
                usize::try_from(u32::from_le_bytes([e0, e1, e2, e3])).unwrap_or(usize::MAX),
            ),
            _ => return ClientHelloOutcome::NotClientHello,
        };
        if tag == SNI_TAG {
            return match values.get(start..end) {
                Some(raw) => tls::server_name_outcome(raw, false),
                None => ClientHelloOutcome::NotClientHello,
            };
        }
        start = end;
    }
    ClientHelloOutcome::NoSni { ech: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CHLO with these (tag, value) entries, sorted by tag as a little-endian number.
    pub(crate) fn chlo(entries: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut sorted = entries.to_vec();
        sorted.sort_by_key(|(t, _)| u32::from_le_bytes(**t));
        let mut m = b"CHLO".to_vec();
        m.extend((sorted.len() as u16).to_le_bytes());
        m.extend([0, 0]);
        let mut end = 0u32;
        for (tag, value) in &sorted {
            end += value.len() as u32;
            m.extend_from_slice(*tag);
            m.extend(end.to_le_bytes());
        }
        for (_, value) in &sorted {
            m.extend_from_slice(value);
        }
        m
    }

    #[test]
    fn chlo_server_name() {
        let m = chlo(&[
            (b"PAD\0", &[b'-'; 50]),
            (b"SNI\0", b"DS.Kaspersky.com"),
            (b"VER\0", b"Q043"),
        ]);
        assert_eq!(chlo_len(&m), Ok(Some(m.len())));
        match sni_from_chlo(&m) {
            ClientHelloOutcome::Sni { name, ech: false } => {
                assert_eq!(name.as_str(), "ds.kaspersky.com");
            }
            other => panic!("{other:?}"),
        }
        let no_sni = chlo(&[(b"VER\0", b"Q043")]);
        assert_eq!(
            sni_from_chlo(&no_sni),
            ClientHelloOutcome::NoSni { ech: false }
        );
        // Every cut is incomplete, never a panic or a name.
        for cut in 0..m.len() {
            assert_eq!(
                sni_from_chlo(&m[..cut]),
                ClientHelloOutcome::NeedMore,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn impossible_chlo_indexes_are_refused() {
        let mut m = chlo(&[(b"SNI\0", b"a.example"), (b"VER\0", b"Q043")]);
        m[0] = b'X';
        assert_eq!(chlo_len(&m), Err(QuicSkip::NotClientHello));
        let mut many = b"CHLO".to_vec();
        many.extend(((MAX_CHLO_ENTRIES + 1) as u16).to_le_bytes());
        many.extend([0, 0]);
        assert_eq!(chlo_len(&many), Err(QuicSkip::NotClientHello));
        // End offsets that go back.
        let mut back = chlo(&[(b"SNI\0", b"a.example"), (b"VER\0", b"Q043")]);
        back[12..16].copy_from_slice(&20u32.to_le_bytes());
        back[20..24].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(chlo_len(&back), Err(QuicSkip::NotClientHello));
    }

    #[test]
    fn clear_headers_of_q043_and_q046() {
        let mut q043 = vec![0x09];
        q043.extend([1u8; 8]);
        q043.extend(b"Q043");
        q043.push(1);
        q043.extend([0u8; HASH_LEN]);
        q043.extend([0xA0, 1, 0, 3, b'a', b'b', b'c']);
        assert_eq!(
            clear_payload(&q043),
            Some(&[0xA0, 1, 0, 3, b'a', b'b', b'c'][..])
        );
        let mut q046 = vec![0xC3];
        q046.extend(b"Q046");
        q046.push(0x50);
        q046.extend([2u8; 8]);
        q046.extend([0, 0, 0, 1]);
        q046.extend([0u8; HASH_LEN]);
        q046.push(0x07);
        assert_eq!(clear_payload(&q046), Some(&[0x07][..]));
        // Versions that are not clear-text Q04x, a reset, a server's nonce: not ours.
        let mut q050 = q043.clone();
        q050[9..13].copy_from_slice(b"Q050");
        assert_eq!(clear_payload(&q050), None);
        let mut reset = q043.clone();
        reset[0] |= PUBLIC_FLAG_RESET;
        assert_eq!(clear_payload(&reset), None);
        let mut nonce = q043.clone();
        nonce[0] |= PUBLIC_FLAG_NONCE;
        assert_eq!(clear_payload(&nonce), None);
        for cut in 0..q043.len() - 7 {
            assert_eq!(clear_payload(&q043[..cut]), None, "cut {cut}");
        }
    }

    #[test]
    fn stream_frames_feed_the_crypto_stream() {
        let m = chlo(&[(b"SNI\0", b"s01.upd.kaspersky.com")]);
        let (a, b) = m.split_at(10);
        let mut crypto = CryptoStream::default();
        // Second half first: offset 10 (2-byte offset field), stream id 1, with length.
        let mut p = vec![0xA4, 1, 0, 10];
        p.extend((b.len() as u16).to_be_bytes());
        p.extend_from_slice(b);
        // A frame on another stream is skipped; then the first half without a length
        // (runs to the end of the packet).
        p.extend([0xA0, 3, 0, 1, 0xff]);
        p.extend([0x80, 1]);
        p.extend_from_slice(a);
        let walk = walk_stream_frames(&p, &mut crypto);
        assert_eq!(walk.skip, None);
        assert_eq!(crypto.contiguous_len(), m.len());
    }
}
