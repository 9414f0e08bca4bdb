//! Frames of a decrypted Initial packet (RFC 9000 §12.4, §19). Only PADDING, PING, ACK,
//! CRYPTO and CONNECTION_CLOSE (0x1c) may appear in Initial packets (RFC 9000 §12.4 Table 3,
//! §17.2.2); CRYPTO data is handed to the [`CryptoStream`], the others are only measured to
//! reach the frames after them.

use super::crypto_stream::CryptoStream;
use super::cursor::Cursor;
use super::QuicSkip;

/// Frames walked in one packet. A client Initial fits one datagram (at most
/// [`super::MAX_PACKET_LEN`] bytes); real ones carry a few CRYPTO frames plus PING/PADDING
/// (Chrome interleaves them on purpose), and a run of PADDING counts as one frame. 256 is far
/// above that and bounds the work a crafted packet can ask for.
pub const MAX_FRAMES_PER_PACKET: usize = 256;

/// ACK ranges accepted in one ACK frame. A client acknowledges a few server Initials; each
/// range costs at least two bytes, so this only bounds a crafted frame.
pub const MAX_ACK_RANGES: u64 = 256;

const PADDING: u8 = 0x00;
const PING: u8 = 0x01;
const ACK: u8 = 0x02;
const ACK_ECN: u8 = 0x03;
const CRYPTO: u8 = 0x06;
const CONNECTION_CLOSE: u8 = 0x1c;

/// What walking one packet's frames did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Frames parsed (a PADDING run counts once).
    pub(crate) frames: u32,
    /// Why the walk stopped early or dropped CRYPTO data (the first such reason).
    pub(crate) skip: Option<QuicSkip>,
}

/// Walks the frames of a decrypted Initial payload, copying CRYPTO data into `crypto`. Keeps
/// whatever was parsed before an error (lax: the CRYPTO bytes are authentic even if a later
/// frame is not).
pub(super) fn walk(payload: &[u8], crypto: &mut CryptoStream) -> Walk {
    let mut cursor = Cursor::new(payload);
    let mut walk = Walk {
        frames: 0,
        skip: None,
    };
    while !cursor.is_empty() {
        if walk.frames as usize >= MAX_FRAMES_PER_PACKET {
            walk.skip.get_or_insert(QuicSkip::TooManyFrames);
            break;
        }
        walk.frames += 1;
        match frame(&mut cursor, crypto) {
            Ok(None) => {}
            Ok(Some(note)) => {
                walk.skip.get_or_insert(note);
            }
            Err(skip) => {
                walk.skip.get_or_insert(skip);
                break;
            }
        }
    }
    walk
}

/// Parses one frame. `Ok(Some(_))` is a non-fatal note from the CRYPTO stream.
fn frame(cursor: &mut Cursor<'_>, crypto: &mut CryptoStream) -> Result<Option<QuicSkip>, QuicSkip> {
    // Frame types are varints encoded in the shortest form (RFC 9000 §12.4); every type allowed
    // in an Initial is below 0x40, so it is one byte and any longer form is an error.
    let kind = cursor.u8().ok_or(QuicSkip::BadFrame)?;
    match kind {
        PADDING => {
            // RFC 9000 §19.1: one byte each; skip the whole run at once.
            let run = cursor.rest().iter().take_while(|&&b| b == PADDING).count();
            cursor.bytes(run).ok_or(QuicSkip::BadFrame)?;
        }
        PING => {} // RFC 9000 §19.2: type only.
        ACK | ACK_ECN => {
            // RFC 9000 §19.3: Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range,
            // then (Gap, ACK Range Length) per range, then three ECN counts for type 0x03.
            cursor.skip_varints(2).ok_or(QuicSkip::BadFrame)?;
            let ranges = cursor.varint().ok_or(QuicSkip::BadFrame)?;
            if ranges > MAX_ACK_RANGES {
                return Err(QuicSkip::BadFrame);
            }
            cursor.varint().ok_or(QuicSkip::BadFrame)?;
            for _ in 0..ranges {
                cursor.skip_varints(2).ok_or(QuicSkip::BadFrame)?;
            }
            if kind == ACK_ECN {
                cursor.skip_varints(3).ok_or(QuicSkip::BadFrame)?;
            }
        }
        CRYPTO => {
            // RFC 9000 §19.6: Offset, Length, Crypto Data.
            let offset = cursor.varint().ok_or(QuicSkip::BadFrame)?;
            let len = cursor.varint().ok_or(QuicSkip::BadFrame)?;
            let data = cursor.bytes_u64(len).ok_or(QuicSkip::BadFrame)?;
            return Ok(crypto.insert(offset, data));
        }
        CONNECTION_CLOSE => {
            // RFC 9000 §19.19: Error Code, Frame Type, Reason Phrase Length, Reason Phrase.
            cursor.skip_varints(2).ok_or(QuicSkip::BadFrame)?;
            let len = cursor.varint().ok_or(QuicSkip::BadFrame)?;
            cursor.bytes_u64(len).ok_or(QuicSkip::BadFrame)?;
        }
        _ => return Err(QuicSkip::BadFrame),
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(payload: &[u8]) -> (Walk, CryptoStream) {
        let mut crypto = CryptoStream::default();
        let walk = walk(payload, &mut crypto);
        (walk, crypto)
    }

    /// A CRYPTO frame with 2-byte varints for offset and length.
    fn crypto_frame(offset: u16, data: &[u8]) -> Vec<u8> {
        let mut f = vec![CRYPTO, 0x40 | (offset >> 8) as u8, offset as u8];
        f.extend([0x40 | (data.len() >> 8) as u8, data.len() as u8]);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn crypto_between_ping_ack_padding_and_close() {
        let mut p = vec![PING, PADDING, PADDING, PADDING];
        p.extend([ACK, 0x05, 0x00, 0x01, 0x00, 0x01, 0x01]); // one extra range
        p.extend(crypto_frame(4, b"worl"));
        p.extend([ACK_ECN, 0x05, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03]);
        p.extend([CONNECTION_CLOSE, 0x0a, 0x00, 0x02, b'n', b'o']);
        p.extend(crypto_frame(0, &[1, 0, 0, 4]));
        p.extend([PADDING; 20]);
        let (walk, crypto) = run(&p);
        assert_eq!(
            walk,
            Walk {
                frames: 8,
                skip: None
            }
        );
        assert_eq!(
            crypto.client_hello(),
            Some(&[1, 0, 0, 4, b'w', b'o', b'r', b'l'][..])
        );
    }

    #[test]
    fn padding_only() {
        let (walk, _) = run(&[0; 1162]);
        assert_eq!(
            walk,
            Walk {
                frames: 1,
                skip: None
            }
        );
    }

    #[test]
    fn frames_not_allowed_in_initial_are_bad() {
        // STREAM (0x08), NEW_CONNECTION_ID (0x18), CONNECTION_CLOSE 0x1d, HANDSHAKE_DONE (0x1e),
        // and a two-byte (non-minimal) encoding of PING.
        for kind in [0x08u8, 0x18, 0x1d, 0x1e, 0x40] {
            let (walk, _) = run(&[PING, kind, 0x01, 0x00]);
            assert_eq!(
                walk,
                Walk {
                    frames: 2,
                    skip: Some(QuicSkip::BadFrame)
                },
                "{kind:#x}"
            );
        }
    }

    #[test]
    fn crypto_before_a_bad_frame_is_kept() {
        let mut p = crypto_frame(0, &[1, 0, 0, 1, 9]);
        p.push(0x08);
        let (walk, crypto) = run(&p);
        assert_eq!(walk.skip, Some(QuicSkip::BadFrame));
        assert_eq!(crypto.client_hello(), Some(&[1, 0, 0, 1, 9][..]));
    }

    #[test]
    fn truncated_frames_at_every_offset() {
        let mut p = crypto_frame(0, &[1, 0, 0, 2, 7, 7]);
        let crypto_len = p.len();
        p.extend([
            ACK_ECN, 0x05, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x03,
        ]);
        p.extend([CONNECTION_CLOSE, 0x0a, 0x00, 0x02, b'n', b'o']);
        for n in 0..p.len() {
            let (walk, crypto) = run(&p[..n]);
            let complete = crypto.client_hello().is_some();
            assert_eq!(complete, n >= crypto_len, "{n}");
            let ends_on_frame = [0, crypto_len, crypto_len + 10].contains(&n);
            assert_eq!(walk.skip.is_none(), ends_on_frame, "{n}");
            if !ends_on_frame {
                assert_eq!(walk.skip, Some(QuicSkip::BadFrame), "{n}");
            }
        }
    }

    #[test]
    fn crypto_length_past_payload_is_bad() {
        let p = [CRYPTO, 0x00, 0x80, 0x00, 0x10, 0x00, 1, 2, 3];
        let (walk, crypto) = run(&p);
        assert_eq!(walk.skip, Some(QuicSkip::BadFrame));
        assert_eq!(crypto.contiguous_len(), 0);
        let p = [CRYPTO, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(run(&p).0.skip, Some(QuicSkip::BadFrame));
    }

    #[test]
    fn crypto_past_cap_is_noted_and_walk_continues() {
        // Offset 2^30 - 1 (4-byte varint), length 1.
        let mut p = vec![CRYPTO, 0xbf, 0xff, 0xff, 0xff, 0x01, 0xaa];
        p.extend(crypto_frame(0, &[1, 0, 0, 0]));
        let (walk, crypto) = run(&p);
        assert_eq!(
            walk,
            Walk {
                frames: 2,
                skip: Some(QuicSkip::CryptoOutOfRange)
            }
        );
        assert_eq!(crypto.client_hello(), Some(&[1, 0, 0, 0][..]));
    }

    #[test]
    fn ack_with_too_many_ranges_is_bad() {
        let p = [ACK, 0x05, 0x00, 0x41, 0x01, 0x00]; // 257 ranges
        assert_eq!(run(&p).0.skip, Some(QuicSkip::BadFrame));
    }

    #[test]
    fn ack_with_max_ranges_is_fine() {
        let mut p = vec![ACK, 0x45, 0x00, 0x00, 0x41, 0x00, 0x00]; // 256 ranges, largest 0x500
        p.extend([0x00; 512]);
        assert_eq!(
            run(&p).0,
            Walk {
                frames: 1,
                skip: None
            }
        );
    }

    #[test]
    fn connection_close_reason_past_payload_is_bad() {
        let p = [CONNECTION_CLOSE, 0x0a, 0x00, 0x05, b'n', b'o'];
        assert_eq!(run(&p).0.skip, Some(QuicSkip::BadFrame));
    }

    #[test]
    fn too_many_frames_stop_the_walk() {
        let mut p = vec![PING; MAX_FRAMES_PER_PACKET];
        p.extend(crypto_frame(0, &[1, 0, 0, 0]));
        let (walk, crypto) = run(&p);
        assert_eq!(
            walk,
            Walk {
                frames: MAX_FRAMES_PER_PACKET as u32,
                skip: Some(QuicSkip::TooManyFrames)
            }
        );
        assert_eq!(crypto.client_hello(), None);
    }
}
