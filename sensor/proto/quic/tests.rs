//! Datagram-level tests of [`InitialState`]: the RFC sample packets, and packets sealed here
//! with `ring` to exercise splitting, reordering, coalescing and connection ID changes.

use ring::aead::{quic as hp, Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};

use super::vectors::{self, hex};
use super::*;

/// Payload length of the RFC sample Initials (RFC 9001 Appendix A.2).
const SAMPLE_PAYLOAD_LEN: usize = 1162;
/// The server's connection ID in the RFC samples (Appendix A.3).
const SERVER_CID: &str = "f067a5502a4262b5";

/// The ClientHello of the RFC samples: the CRYPTO frame without its 4-byte frame header
/// (type 0x06, offset 0x00, 2-byte length 0x40f1).
fn sample_client_hello() -> Vec<u8> {
    hex(vectors::CLIENT_CRYPTO_FRAME)[4..].to_vec()
}

/// Frames padded with PADDING to `len` bytes.
pub(crate) fn padded(mut frames: Vec<u8>, len: usize) -> Vec<u8> {
    assert!(frames.len() <= len);
    frames.resize(len, 0);
    frames
}

/// A CRYPTO frame (RFC 9000 §19.6) with 2-byte varint offset and length.
pub(crate) fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06, 0x40 | (offset >> 8) as u8, offset as u8];
    f.extend([0x40 | (data.len() >> 8) as u8, data.len() as u8]);
    f.extend_from_slice(data);
    f
}

/// How to build a client Initial.
pub(crate) struct Seal<'a> {
    pub(crate) version: u32,
    /// The DCID the keys come from.
    pub(crate) keys_dcid: &'a [u8],
    /// The DCID written in the header.
    pub(crate) dcid: &'a [u8],
    pub(crate) scid: &'a [u8],
    pub(crate) token: &'a [u8],
    pub(crate) pn: u32,
    pub(crate) pn_len: usize,
    /// Clear the fixed bit (RFC 9287 greasing).
    pub(crate) grease_fixed_bit: bool,
}

impl Seal<'_> {
    pub(crate) fn v1() -> Seal<'static> {
        Seal {
            version: VERSION_1,
            keys_dcid: &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08],
            dcid: &[0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08],
            scid: &[],
            token: &[],
            pn: 2,
            pn_len: 4,
            grease_fixed_bit: false,
        }
    }

    /// Protects `payload` as RFC 9001 §5.3 and §5.4 say, using `ring`.
    /// The unprotected header and the offset of its packet number.
    fn header(&self, payload_len: usize) -> (Vec<u8>, usize) {
        let type_bits = if self.version == VERSION_2 { 1 } else { 0 };
        let fixed_bit = if self.grease_fixed_bit { 0 } else { 0x40 };
        let mut header = vec![0x80 | fixed_bit | type_bits << 4 | (self.pn_len as u8 - 1)];
        header.extend(self.version.to_be_bytes());
        header.push(self.dcid.len() as u8);
        header.extend_from_slice(self.dcid);
        header.push(self.scid.len() as u8);
        header.extend_from_slice(self.scid);
        assert!(self.token.len() < 64);
        header.push(self.token.len() as u8);
        header.extend_from_slice(self.token);
        let length = self.pn_len + payload_len + 16;
        assert!(length < 1 << 14);
        header.extend([0x40 | (length >> 8) as u8, length as u8]);
        let pn_offset = header.len();
        header.extend(&self.pn.to_be_bytes()[4 - self.pn_len..]);
        (header, pn_offset)
    }

    pub(crate) fn seal(&self, payload: &[u8]) -> Vec<u8> {
        let version = keys::version(self.version).unwrap();
        let raw = keys::derive_raw(version, self.keys_dcid).unwrap();
        let (mut header, pn_offset) = self.header(payload.len());

        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &raw.key).unwrap());
        let mut nonce = raw.iv;
        for (n, p) in nonce[4..].iter_mut().zip(u64::from(self.pn).to_be_bytes()) {
            *n ^= p;
        }
        let mut body = payload.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header),
            &mut body,
        )
        .unwrap();

        let hp_key = hp::HeaderProtectionKey::new(&hp::AES_128, &raw.hp).unwrap();
        let sample_start = 4 - self.pn_len;
        let mask = hp_key
            .new_mask(&body[sample_start..sample_start + 16])
            .unwrap();
        header[0] ^= mask[0] & 0x0f;
        for i in 0..self.pn_len {
            header[pn_offset + i] ^= mask[1 + i];
        }
        header.extend(body);
        header
    }
}

/// A tiny ClientHello walker for these tests only (the real one lives in `proto::tls`):
/// returns the host_name of the server_name extension (RFC 8446 §4.1.2, RFC 6066 §3).
fn test_sni(hello: &[u8]) -> Option<String> {
    fn u16_at(b: &[u8], i: usize) -> Option<usize> {
        Some(usize::from(*b.get(i)?) << 8 | usize::from(*b.get(i + 1)?))
    }
    let body = hello.get(4..)?;
    let mut i = 2 + 32; // legacy_version, random
    i += 1 + usize::from(*body.get(i)?); // legacy_session_id
    i += 2 + u16_at(body, i)?; // cipher_suites
    i += 1 + usize::from(*body.get(i)?); // legacy_compression_methods
    let ext_len = u16_at(body, i)?;
    let exts = body.get(i + 2..i + 2 + ext_len)?;
    let mut j = 0;
    while j + 4 <= exts.len() {
        let (kind, len) = (u16_at(exts, j)?, u16_at(exts, j + 2)?);
        let data = exts.get(j + 4..j + 4 + len)?;
        if kind == 0 {
            // server_name_list length, name_type (0 = host_name), name length, name.
            let name_len = u16_at(data, 3)?;
            return String::from_utf8(data.get(5..5 + name_len)?.to_vec()).ok();
        }
        j += 4 + len;
    }
    None
}

/// The outcome a complete sample ClientHello yields (whatever `proto::tls` makes of it).
fn hello_outcome(hello: &[u8]) -> QuicOutcome {
    QuicOutcome::ClientHello(tls::sni_from_handshake(hello))
}

fn assert_sample_hello(state: &InitialState) {
    let hello = state.client_hello().expect("complete ClientHello");
    assert_eq!(hello, &sample_client_hello()[..]);
    assert_eq!(test_sni(hello).as_deref(), Some("example.com"));
}

// --- RFC sample packets -------------------------------------------------------------------

#[test]
fn rfc9001_a2_sample_client_hello_bytes() {
    let hello = sample_client_hello();
    assert_eq!(hello.len(), 241);
    assert_eq!(hello[..8], [0x01, 0x00, 0x00, 0xed, 0x03, 0x03, 0xeb, 0xf8]);
    assert_eq!(test_sni(&hello).as_deref(), Some("example.com"));
}

#[test]
fn rfc9001_a2_client_initial_opens() {
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    assert_eq!(packet.len(), 1200);
    let mut state = InitialState::new();
    let hello = sample_client_hello();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
    assert_sample_hello(&state);
    assert_eq!(state.version(), Some(VERSION_1));
    assert_eq!(state.dcid(), &hex(vectors::DCID)[..]);
    assert_eq!(state.packets(), 1);
    assert_eq!(state.frames(), 2); // CRYPTO, then one PADDING run
    assert_eq!(state.largest_pn, Some(2));
    assert!(state.is_finished());
}

#[test]
fn rfc9369_a2_v2_client_initial_opens() {
    let packet = hex(vectors::V2_CLIENT_INITIAL);
    assert_eq!(packet.len(), 1200);
    let mut state = InitialState::new();
    let hello = sample_client_hello();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
    assert_sample_hello(&state);
    assert_eq!(state.version(), Some(VERSION_2));
    assert_eq!(state.packets(), 1);
}

#[test]
fn test_sealer_reproduces_rfc_sample_packets() {
    let payload = padded(hex(vectors::CLIENT_CRYPTO_FRAME), SAMPLE_PAYLOAD_LEN);
    let v2 = Seal {
        version: VERSION_2,
        ..Seal::v1()
    };
    assert_eq!(
        Seal::v1().header(payload.len()).0,
        hex(vectors::V1_CLIENT_HEADER)
    );
    assert_eq!(v2.header(payload.len()).0, hex(vectors::V2_CLIENT_HEADER));
    assert_eq!(Seal::v1().seal(&payload), hex(vectors::V1_CLIENT_INITIAL));
    assert_eq!(v2.seal(&payload), hex(vectors::V2_CLIENT_INITIAL));
}

#[test]
fn truncated_sample_packet_at_every_offset() {
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    for n in 0..packet.len() {
        let mut state = InitialState::new();
        let expected = if n == 0 {
            QuicOutcome::NotQuic
        } else {
            QuicOutcome::Failed(QuicSkip::BadHeader)
        };
        assert_eq!(state.process_datagram(&packet[..n]), expected, "{n} bytes");
        assert_eq!(state.client_hello(), None);
        assert_eq!(state.version(), None);
    }
}

#[test]
fn flipped_ciphertext_bit_fails_to_decrypt() {
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    for index in [22, 100, 600, 1183, 1199] {
        let mut bad = packet.clone();
        bad[index] ^= 0x01;
        let mut state = InitialState::new();
        assert_eq!(
            state.process_datagram(&bad),
            QuicOutcome::Failed(QuicSkip::DecryptFailed),
            "byte {index}"
        );
        assert_eq!(state.client_hello(), None);
        assert_eq!(state.version(), None);
        assert_eq!(state.packets(), 0);
        // The genuine packet still opens afterwards.
        assert!(matches!(
            state.process_datagram(&packet),
            QuicOutcome::ClientHello(_)
        ));
    }
}

#[test]
fn flipped_protected_header_bit_fails_to_decrypt() {
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    // A packet number byte (18) and a DCID byte (6, which also changes the keys).
    for index in [6, 18, 21] {
        let mut bad = packet.clone();
        bad[index] ^= 0x80;
        let mut state = InitialState::new();
        assert_eq!(
            state.process_datagram(&bad),
            QuicOutcome::Failed(QuicSkip::DecryptFailed),
            "byte {index}"
        );
    }
}

// --- Splitting and reordering -------------------------------------------------------------

#[test]
fn crypto_split_in_two_packets_delivered_in_reverse_order() {
    let hello = sample_client_hello();
    let first = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let second = Seal {
        pn: 1,
        ..Seal::v1()
    }
    .seal(&padded(crypto(100, &hello[100..]), 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&second), QuicOutcome::Pending);
    assert_eq!(state.client_hello(), None);
    assert_eq!(state.process_datagram(&first), hello_outcome(&hello));
    assert_sample_hello(&state);
    assert_eq!(state.packets(), 2);
    assert_eq!(state.largest_pn, Some(1));
}

#[test]
fn crypto_split_and_reordered_within_one_packet() {
    // Chrome-style: CRYPTO pieces out of order, overlapping, between PING, ACK and PADDING.
    let hello = sample_client_hello();
    let mut frames = vec![0x01];
    frames.extend(crypto(150, &hello[150..]));
    frames.extend([0x00; 7]);
    frames.extend(crypto(0, &hello[..60]));
    frames.extend([0x01, 0x02, 0x00, 0x00, 0x00, 0x00]);
    frames.extend(crypto(40, &hello[40..160]));
    frames.extend([0x1c, 0x00, 0x00, 0x00]);
    let packet = Seal::v1().seal(&padded(frames, 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
    assert_sample_hello(&state);
    assert_eq!(state.frames(), 9);
}

#[test]
fn crypto_spread_over_three_packets_any_order() {
    let hello = sample_client_hello();
    let pieces = [(0, 80), (80, 160), (160, hello.len())];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let mut state = InitialState::new();
        for (k, &i) in order.iter().enumerate() {
            let (a, b) = pieces[i];
            let packet = Seal {
                pn: i as u32,
                ..Seal::v1()
            }
            .seal(&padded(crypto(a, &hello[a..b]), 1162));
            let out = state.process_datagram(&packet);
            if k < 2 {
                assert_eq!(out, QuicOutcome::Pending, "{order:?}");
            } else {
                assert_eq!(out, hello_outcome(&hello), "{order:?}");
            }
        }
        assert_sample_hello(&state);
    }
}

#[test]
fn one_byte_packet_numbers_and_a_token() {
    let hello = sample_client_hello();
    let token = [0xaa; 20];
    let mut state = InitialState::new();
    let first = Seal {
        pn: 0,
        pn_len: 1,
        token: &token,
        ..Seal::v1()
    };
    let second = Seal {
        pn: 1,
        pn_len: 2,
        token: &token,
        ..Seal::v1()
    };
    let a = first.seal(&padded(crypto(0, &hello[..10]), 1100));
    let b = second.seal(&padded(crypto(10, &hello[10..]), 1100));
    assert_eq!(state.process_datagram(&a), QuicOutcome::Pending);
    assert_eq!(state.process_datagram(&b), hello_outcome(&hello));
    assert_sample_hello(&state);
}

#[test]
fn retransmitted_packet_is_harmless() {
    let hello = sample_client_hello();
    let first = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let second = Seal {
        pn: 1,
        ..Seal::v1()
    }
    .seal(&padded(crypto(100, &hello[100..]), 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&first), QuicOutcome::Pending);
    assert_eq!(state.process_datagram(&first), QuicOutcome::Pending);
    assert_eq!(state.process_datagram(&second), hello_outcome(&hello));
    assert_eq!(state.packets(), 3);
}

// --- Coalescing -----------------------------------------------------------------------------

/// A v1 long-header packet of the given type bits with `len` bytes after its Length field.
fn long_packet(type_bits: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0xc0 | type_bits << 4, 0, 0, 0, 1, 8];
    p.extend(hex(vectors::DCID));
    p.push(0);
    p.extend([0x40 | (len >> 8) as u8, len as u8]);
    p.extend(vec![0x5a; len]);
    p
}

#[test]
fn coalesced_initial_then_garbage() {
    let hello = sample_client_hello();
    for garbage in [vec![0xff; 50], vec![0x00; 50], vec![0x40; 3], vec![0xc0]] {
        let mut datagram = hex(vectors::V1_CLIENT_INITIAL);
        datagram.extend(&garbage);
        let mut state = InitialState::new();
        assert_eq!(state.process_datagram(&datagram), hello_outcome(&hello));
        assert_sample_hello(&state);
    }
}

#[test]
fn garbage_then_initial_is_not_walked() {
    let mut datagram = vec![0x00; 20];
    datagram.extend(hex(vectors::V1_CLIENT_INITIAL));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&datagram), QuicOutcome::NotQuic);
}

#[test]
fn coalesced_handshake_and_zero_rtt_packets_are_skipped() {
    let hello = sample_client_hello();
    let initial = Seal::v1().seal(&padded(crypto(0, &hello), 400));
    let mut datagram = long_packet(2, 40); // Handshake
    datagram.extend(long_packet(1, 30)); // 0-RTT
    datagram.extend(&initial);
    datagram.extend(long_packet(1, 100));
    datagram.extend(hex(vectors::V1_SHORT_HEADER));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&datagram), hello_outcome(&hello));
    assert_sample_hello(&state);
}

#[test]
fn two_initials_in_one_datagram() {
    let hello = sample_client_hello();
    let mut datagram = Seal {
        pn: 1,
        ..Seal::v1()
    }
    .seal(&padded(crypto(120, &hello[120..]), 300));
    datagram.extend(
        Seal {
            pn: 0,
            ..Seal::v1()
        }
        .seal(&padded(crypto(0, &hello[..120]), 300)),
    );
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&datagram), hello_outcome(&hello));
    assert_eq!(state.packets(), 2);
}

#[test]
fn only_non_initial_long_packets() {
    let mut state = InitialState::new();
    let mut datagram = long_packet(2, 40);
    datagram.extend(long_packet(1, 40));
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::NotClientInitial
    );
}

#[test]
fn too_many_coalesced_packets() {
    let mut datagram = Vec::new();
    for _ in 0..MAX_PACKETS_PER_DATAGRAM {
        datagram.extend(long_packet(2, 10));
    }
    datagram.extend(hex(vectors::V1_CLIENT_INITIAL));
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::Failed(QuicSkip::TooManyPackets)
    );
    // One fewer leaves room for the Initial.
    let start = long_packet(2, 10).len();
    let mut state = InitialState::new();
    assert!(matches!(
        state.process_datagram(&datagram[start..]),
        QuicOutcome::ClientHello(_)
    ));
}

#[test]
fn initial_length_past_datagram_is_bad_header() {
    let mut datagram = long_packet(0, 100);
    datagram.truncate(90);
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::Failed(QuicSkip::BadHeader)
    );
}

#[test]
fn initial_too_short_for_sample_is_bad_header() {
    let datagram = long_packet(0, 19);
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::Failed(QuicSkip::BadHeader)
    );
}

#[test]
fn oversized_initial_is_refused() {
    let len = MAX_PACKET_LEN;
    let mut datagram = vec![0xc0, 0, 0, 0, 1, 8];
    datagram.extend(hex(vectors::DCID));
    datagram.extend([0, 0, 0x80, 0, (len >> 8) as u8, len as u8]);
    datagram.resize(datagram.len() + len, 0x11);
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::Failed(QuicSkip::PacketTooLarge)
    );
}

#[test]
fn connection_id_longer_than_20_is_bad_header() {
    for (dcid_len, scid_len) in [(21u8, 0u8), (8, 21), (255, 0)] {
        let mut datagram = vec![0xc0, 0, 0, 0, 1, dcid_len];
        datagram.resize(6 + usize::from(dcid_len), 7);
        datagram.push(scid_len);
        datagram.resize(1200, 0);
        let mut state = InitialState::new();
        assert_eq!(
            state.process_datagram(&datagram),
            QuicOutcome::Failed(QuicSkip::BadHeader)
        );
        assert!(!looks_like_initial(&datagram));
    }
}

#[test]
fn token_length_past_datagram_is_bad_header() {
    let mut datagram = vec![0xc0, 0, 0, 0, 1, 0, 0, 0x80, 0x00, 0x10, 0x00];
    datagram.resize(1200, 0);
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::Failed(QuicSkip::BadHeader)
    );
}

// --- Other packet types and versions --------------------------------------------------------

#[test]
fn short_header_is_not_quic() {
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&hex(vectors::V1_SHORT_HEADER)),
        QuicOutcome::NotQuic
    );
    assert_eq!(state.process_datagram(&[]), QuicOutcome::NotQuic);
}

#[test]
fn version_negotiation_is_ignored() {
    // RFC 9000 §17.2.1: version 0, then both connection IDs and a list of versions.
    let mut datagram = vec![0x80 | 0x2a, 0, 0, 0, 0, 0];
    datagram.push(8);
    datagram.extend(hex(vectors::DCID));
    datagram.extend([0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf]);
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&datagram),
        QuicOutcome::NotClientInitial
    );
    assert!(!looks_like_initial(&datagram));
}

#[test]
fn retry_is_ignored_without_breaking_state() {
    let hello = sample_client_hello();
    let first = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let second = Seal {
        pn: 1,
        ..Seal::v1()
    }
    .seal(&padded(crypto(100, &hello[100..]), 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&first), QuicOutcome::Pending);
    for retry in [vectors::V1_RETRY, vectors::V2_RETRY] {
        let retry = hex(retry);
        assert!(!looks_like_initial(&retry));
        assert_eq!(
            state.process_datagram(&retry),
            QuicOutcome::NotClientInitial
        );
    }
    assert_eq!(state.process_datagram(&second), hello_outcome(&hello));
}

#[test]
fn new_dcid_after_retry_resets_keys_and_stream() {
    let hello = sample_client_hello();
    let new_dcid = hex("1122334455667788");
    let after = Seal {
        keys_dcid: &new_dcid,
        dcid: &new_dcid,
        token: b"retry-token",
        ..Seal::v1()
    };
    let old = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let new_tail = Seal { pn: 0, ..after }.seal(&padded(crypto(100, &hello[100..]), 1162));
    let new_head = Seal { pn: 1, ..after }.seal(&padded(crypto(0, &hello[..100]), 1162));

    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&old), QuicOutcome::Pending);
    assert_eq!(
        state.process_datagram(&hex(vectors::V1_RETRY)),
        QuicOutcome::NotClientInitial
    );
    // The old stream's first 100 bytes are forgotten: only the tail is known now.
    assert_eq!(state.process_datagram(&new_tail), QuicOutcome::Pending);
    assert_eq!(state.dcid(), &new_dcid[..]);
    assert_eq!(state.crypto.contiguous_len(), 0);
    assert_eq!(state.process_datagram(&new_head), hello_outcome(&hello));
    assert_sample_hello(&state);
}

#[test]
fn server_chosen_dcid_keeps_original_keys() {
    // After the server's first Initial the client addresses the server's connection ID but
    // keeps the keys of its original DCID (RFC 9001 §5.2).
    let hello = sample_client_hello();
    let server_cid = hex(SERVER_CID);
    let first = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let second = Seal {
        pn: 1,
        dcid: &server_cid,
        ..Seal::v1()
    }
    .seal(&padded(crypto(100, &hello[100..]), 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&first), QuicOutcome::Pending);
    assert_eq!(state.process_datagram(&second), hello_outcome(&hello));
    assert_eq!(state.dcid(), &hex(vectors::DCID)[..]);
}

#[test]
fn server_initial_does_not_open_with_client_keys() {
    let hello = sample_client_hello();
    let first = Seal {
        pn: 0,
        ..Seal::v1()
    }
    .seal(&padded(crypto(0, &hello[..100]), 1162));
    let second = Seal {
        pn: 1,
        ..Seal::v1()
    }
    .seal(&padded(crypto(100, &hello[100..]), 1162));
    for server in [vectors::V1_SERVER_INITIAL, vectors::V2_SERVER_INITIAL] {
        let server = hex(server);
        assert!(looks_like_initial(&server));
        let mut fresh = InitialState::new();
        assert_eq!(
            fresh.process_datagram(&server),
            QuicOutcome::Failed(QuicSkip::DecryptFailed)
        );
        assert_eq!(fresh.version(), None);

        let mut state = InitialState::new();
        assert_eq!(state.process_datagram(&first), QuicOutcome::Pending);
        assert_eq!(
            state.process_datagram(&server),
            QuicOutcome::Failed(QuicSkip::DecryptFailed)
        );
        assert_eq!(state.dcid(), &hex(vectors::DCID)[..]);
        assert_eq!(state.process_datagram(&second), hello_outcome(&hello));
    }
}

#[test]
fn unsupported_version_fails() {
    let mut packet = hex(vectors::V1_CLIENT_INITIAL);
    packet[1..5].copy_from_slice(&0xff00_0020u32.to_be_bytes());
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&packet),
        QuicOutcome::Failed(QuicSkip::UnsupportedVersion)
    );
    assert!(!looks_like_initial(&packet));
}

#[test]
fn draft29_initial_opens() {
    let hello = sample_client_hello();
    let packet = Seal {
        version: VERSION_DRAFT_29,
        ..Seal::v1()
    }
    .seal(&padded(hex(vectors::CLIENT_CRYPTO_FRAME), 1162));
    assert!(looks_like_initial(&packet));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
    assert_eq!(state.version(), Some(VERSION_DRAFT_29));
    assert_sample_hello(&state);
}

#[test]
fn greased_fixed_bit_is_accepted() {
    // RFC 9287: a client may clear the fixed bit. looks_like_initial misses it, but the state
    // opens it: the packet authenticates all the same.
    let hello = sample_client_hello();
    let packet = Seal {
        grease_fixed_bit: true,
        ..Seal::v1()
    }
    .seal(&padded(hex(vectors::CLIENT_CRYPTO_FRAME), 1162));
    assert_eq!(packet[0] & 0x40, 0);
    assert!(!looks_like_initial(&packet));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
    // The first byte is authenticated: clearing the bit on the RFC sample breaks it.
    let mut sample = hex(vectors::V1_CLIENT_INITIAL);
    sample[0] &= !0x40;
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&sample),
        QuicOutcome::Failed(QuicSkip::DecryptFailed)
    );
}

// --- Final states ---------------------------------------------------------------------------

#[test]
fn finished_state_ignores_later_datagrams() {
    let mut state = InitialState::new();
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    assert!(matches!(
        state.process_datagram(&packet),
        QuicOutcome::ClientHello(_)
    ));
    assert_eq!(state.process_datagram(&packet), QuicOutcome::Finished);
    assert_eq!(state.packets(), 1);
    assert_sample_hello(&state);
}

#[test]
fn stream_not_starting_with_client_hello_is_final() {
    let packet = Seal::v1().seal(&padded(crypto(0, &[2, 0, 0, 2, 3, 3]), 1162));
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&packet),
        QuicOutcome::Failed(QuicSkip::NotClientHello)
    );
    assert!(state.is_finished());
    assert_eq!(state.process_datagram(&packet), QuicOutcome::Finished);
}

#[test]
fn client_hello_larger_than_cap_is_final() {
    let packet = Seal::v1().seal(&padded(crypto(0, &[1, 0x01, 0x00, 0x00, 3, 3]), 1162));
    let mut state = InitialState::new();
    assert_eq!(
        state.process_datagram(&packet),
        QuicOutcome::Failed(QuicSkip::CryptoBufferFull)
    );
    assert!(state.is_finished());
}

#[test]
fn crypto_past_cap_leaves_state_pending() {
    let packet = Seal::v1().seal(&padded(crypto(MAX_CRYPTO_BYTES - 1, &[1, 2, 3]), 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&packet), QuicOutcome::Pending);
    assert!(!state.is_finished());
}

#[test]
fn bad_frame_after_complete_crypto_still_yields_hello() {
    let hello = sample_client_hello();
    let mut frames = hex(vectors::CLIENT_CRYPTO_FRAME);
    frames.push(0x08); // STREAM is not allowed in Initial packets
    let packet = Seal::v1().seal(&padded(frames, 1162));
    let mut state = InitialState::new();
    assert_eq!(state.process_datagram(&packet), hello_outcome(&hello));
}

// --- looks_like_initial ---------------------------------------------------------------------

#[test]
fn looks_like_initial_accepts_client_initials() {
    assert!(looks_like_initial(&hex(vectors::V1_CLIENT_INITIAL)));
    assert!(looks_like_initial(&hex(vectors::V2_CLIENT_INITIAL)));
    // Size is only a hint.
    assert!(looks_like_initial(
        &hex(vectors::V1_CLIENT_INITIAL)[..7 + 8]
    ));
}

#[test]
fn looks_like_initial_rejects_others() {
    let v1 = hex(vectors::V1_CLIENT_INITIAL);
    assert!(!looks_like_initial(&[]));
    assert!(!looks_like_initial(&v1[..5]));
    assert!(!looks_like_initial(&v1[..14])); // DCID cut short
    assert!(!looks_like_initial(&hex(vectors::V1_SHORT_HEADER)));
    assert!(!looks_like_initial(&long_packet(2, 40))); // Handshake
                                                       // v2 type bits on a v1 packet: a 0-RTT packet for v1.
    let mut renumbered = v1.clone();
    renumbered[0] = (renumbered[0] & 0xcf) | 0x10;
    assert!(!looks_like_initial(&renumbered));
    // v1 Initial type bits under the v2 version number: a v2 Retry.
    let mut v2_retry = v1;
    v2_retry[1..5].copy_from_slice(&VERSION_2.to_be_bytes());
    assert!(!looks_like_initial(&v2_retry));
}

// --- Hostile bytes --------------------------------------------------------------------------

/// xorshift64: deterministic pseudo-random bytes for the hostile-input loops below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutated_sample_datagrams_never_panic() {
    let packet = hex(vectors::V1_CLIENT_INITIAL);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut state = InitialState::new();
    for _ in 0..3000 {
        let mut d = packet.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(d.len());
            d[i] = rng.next() as u8;
        }
        d.truncate(rng.below(d.len() + 1));
        let _ = looks_like_initial(&d);
        let out = state.process_datagram(&d);
        assert!(!matches!(out, QuicOutcome::ClientHello(_)) || state.client_hello().is_some());
        if state.is_finished() {
            state = InitialState::new();
        }
    }
}

#[test]
fn authentic_packets_with_random_frames_never_panic() {
    // Hostile bytes behind valid packet protection: the frame walker and the CRYPTO stream
    // see arbitrary plaintext.
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let frame_starts = [0x00u8, 0x01, 0x02, 0x03, 0x06, 0x1c, 0x08, 0x40, 0xff];
    for round in 0..300 {
        let mut payload = Vec::new();
        while payload.len() < 40 + rng.below(300) {
            if rng.below(3) == 0 {
                payload.push(frame_starts[rng.below(frame_starts.len())]);
            } else {
                payload.push(rng.next() as u8);
            }
        }
        let packet = Seal {
            pn: round,
            ..Seal::v1()
        }
        .seal(&payload);
        let mut state = InitialState::new();
        let out = state.process_datagram(&packet);
        assert!(
            !matches!(
                out,
                QuicOutcome::NotQuic
                    | QuicOutcome::NotClientInitial
                    | QuicOutcome::Finished
                    | QuicOutcome::Failed(QuicSkip::DecryptFailed | QuicSkip::BadHeader)
            ),
            "{out:?}"
        );
        assert_eq!(state.packets(), 1);
    }
}
