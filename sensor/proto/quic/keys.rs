//! Client Initial packet protection: versions, key derivation and removal of header and packet
//! protection (RFC 9001 §5; RFC 9369 §3.3 for QUIC v2; draft-ietf-quic-tls-29 §5.2).
//!
//! All cryptography is `ring`'s: HKDF-SHA256 for the key schedule, AES-128-GCM for the payload
//! and AES-128 (ECB of the sample) for the header protection mask. Only the client's keys are
//! derived: this stage looks at datagrams sent by the client.

use ring::aead::{self, quic, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

use super::QuicSkip;

/// QUIC v1 (RFC 9000).
pub const VERSION_1: u32 = 0x0000_0001;
/// QUIC v2 (RFC 9369 §3.1).
pub const VERSION_2: u32 = 0x6b33_43cf;
/// draft-ietf-quic-transport-29, still sent by some older clients.
pub const VERSION_DRAFT_29: u32 = 0xff00_001d;
/// Google QUIC Q050 ("Q050" in ASCII): IETF invariant header, QUIC-crypto CHLO in CRYPTO frames.
pub const VERSION_Q050: u32 = 0x5130_3530;
/// Google QUIC T050 and T051: IETF invariant header, a TLS 1.3 ClientHello in CRYPTO frames.
pub const VERSION_T050: u32 = 0x5430_3530;
pub const VERSION_T051: u32 = 0x5430_3531;

/// Frame layouts of the payload of an Initial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Frames {
    /// IETF QUIC frames (RFC 9000 §19).
    Ietf,
    /// Google QUIC frames (Chromium `quic_framer.cc` for versions without IETF frames):
    /// PADDING 0x00, PING 0x07, CRYPTO 0x08.
    Google,
}

/// Long-header packet types, as decoded from bits 4–5 of the first byte. The mapping from bits
/// to type depends on the version (RFC 9369 §3.2 renumbers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LongType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// What differs between the versions we decrypt.
#[derive(Debug)]
pub(super) struct Version {
    pub(super) wire: u32,
    /// `initial_salt` (RFC 9001 §5.2, RFC 9369 §3.3.1, draft-29 §5.2).
    salt: [u8; 20],
    /// HKDF labels for the packet key, IV and header protection key (RFC 9001 §5.1,
    /// RFC 9369 §3.3.2).
    key_label: &'static [u8],
    iv_label: &'static [u8],
    hp_label: &'static [u8],
    /// Packet types indexed by the two type bits of the first byte (RFC 9000 §17.2 Table 5,
    /// RFC 9369 §3.2).
    types: [LongType; 4],
    pub(super) frames: Frames,
}

const V1_TYPES: [LongType; 4] = [
    LongType::Initial,
    LongType::ZeroRtt,
    LongType::Handshake,
    LongType::Retry,
];

/// A version that derives its Initial keys as QUIC v1 does (RFC 9001 §5.1 labels, v1 packet
/// types) from its own salt.
const fn v1_like(wire: u32, salt: [u8; 20], frames: Frames) -> Version {
    Version {
        wire,
        salt,
        key_label: b"quic key",
        iv_label: b"quic iv",
        hp_label: b"quic hp",
        types: V1_TYPES,
        frames,
    }
}

/// The versions whose client Initials we can open.
/// Google's versions take the v1 key derivation with their own salts (the same values in
/// Chromium's `quic/core/quic_versions.cc` and Wireshark's `packet-quic.c`).
static VERSIONS: [Version; 6] = [
    v1_like(
        VERSION_1,
        [
            0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
            0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
        ],
        Frames::Ietf,
    ),
    // QUIC v2 (RFC 9369 §3.3.1, §3.3.2, §3.2): its own labels and packet type bits.
    Version {
        wire: VERSION_2,
        salt: [
            0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
            0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
        ],
        key_label: b"quicv2 key",
        iv_label: b"quicv2 iv",
        hp_label: b"quicv2 hp",
        types: [
            LongType::Retry,
            LongType::Initial,
            LongType::ZeroRtt,
            LongType::Handshake,
        ],
        frames: Frames::Ietf,
    },
    v1_like(
        VERSION_DRAFT_29,
        [
            0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61,
            0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99,
        ],
        Frames::Ietf,
    ),
    v1_like(
        VERSION_Q050,
        [
            0x50, 0x45, 0x74, 0xef, 0xd0, 0x66, 0xfe, 0x2f, 0x9d, 0x94, 0x5c, 0xfc, 0xdb, 0xd3,
            0xa7, 0xf0, 0xd3, 0xb5, 0x6b, 0x45,
        ],
        Frames::Google,
    ),
    v1_like(
        VERSION_T050,
        [
            0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2,
            0x36, 0x7c, 0x60, 0x48, 0x83, 0x10,
        ],
        Frames::Google,
    ),
    v1_like(
        VERSION_T051,
        [
            0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f,
            0xc8, 0xcc, 0xda, 0x6e, 0x03, 0x3d,
        ],
        Frames::Google,
    ),
];

/// The version with this wire value, if we can open its Initials.
pub(super) fn version(wire: u32) -> Option<&'static Version> {
    VERSIONS.iter().find(|v| v.wire == wire)
}

impl Version {
    /// Packet type of a long-header first byte.
    pub(super) fn long_type(&self, first: u8) -> LongType {
        let bits = usize::from((first >> 4) & 0x03);
        self.types.get(bits).copied().unwrap_or(LongType::Retry)
    }
}

/// AES-128-GCM key and IV lengths, and the header protection key length (RFC 9001 §5.3, §5.4.3).
const KEY_LEN: usize = 16;
const IV_LEN: usize = 12;
const HP_LEN: usize = 16;
/// Length of the header protection sample (RFC 9001 §5.4.2).
const SAMPLE_LEN: usize = 16;
/// The sample starts this many bytes after the start of the packet number field, as if the
/// packet number were 4 bytes long (RFC 9001 §5.4.2).
const SAMPLE_OFFSET: usize = 4;

/// Raw client Initial secrets, kept apart from the `ring` key objects so tests can compare them
/// with the RFC vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RawKeys {
    pub(super) secret: [u8; 32],
    pub(super) key: [u8; KEY_LEN],
    pub(super) iv: [u8; IV_LEN],
    pub(super) hp: [u8; HP_LEN],
}

/// Output length for `ring::hkdf`.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label with an empty context (RFC 8446 §7.1, as used by RFC 9001 §5.1): the info
/// is `u16 length || u8 label length || "tls13 " || label || u8 0`.
fn expand_label(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    const PREFIX: &[u8] = b"tls13 ";
    let out_len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(PREFIX.len().checked_add(label.len())?).ok()?];
    let info: [&[u8]; 5] = [&out_len, &label_len, PREFIX, label, &[0]];
    prk.expand(&info, OutLen(out.len())).ok()?.fill(out).ok()
}

/// Derives the client Initial secrets for a Destination Connection ID (RFC 9001 §5.2).
pub(super) fn derive_raw(version: &Version, dcid: &[u8]) -> Option<RawKeys> {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &version.salt).extract(dcid);
    let mut raw = RawKeys {
        secret: [0; 32],
        key: [0; KEY_LEN],
        iv: [0; IV_LEN],
        hp: [0; HP_LEN],
    };
    expand_label(&initial, b"client in", &mut raw.secret)?;
    let client = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &raw.secret);
    expand_label(&client, version.key_label, &mut raw.key)?;
    expand_label(&client, version.iv_label, &mut raw.iv)?;
    expand_label(&client, version.hp_label, &mut raw.hp)?;
    Some(raw)
}

/// Keys that open one client's Initial packets.
pub(super) struct ClientKeys {
    packet: LessSafeKey,
    iv: [u8; IV_LEN],
    header: quic::HeaderProtectionKey,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKeys")
    }
}

/// A packet whose protection was removed.
#[derive(Debug)]
pub(super) struct Opened<'s> {
    pub(super) packet_number: u64,
    /// Decrypted frames (the authentication tag removed).
    pub(super) payload: &'s [u8],
}

impl ClientKeys {
    pub(super) fn derive(version: &Version, dcid: &[u8]) -> Option<ClientKeys> {
        ClientKeys::from_raw(&derive_raw(version, dcid)?)
    }

    pub(super) fn from_raw(raw: &RawKeys) -> Option<ClientKeys> {
        let packet = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &raw.key).ok()?);
        let header = quic::HeaderProtectionKey::new(&quic::AES_128, &raw.hp).ok()?;
        Some(ClientKeys {
            packet,
            iv: raw.iv,
            header,
        })
    }

    /// Removes header protection (RFC 9001 §5.4.1) and packet protection (§5.3) from one long
    /// header packet. `packet` spans exactly the packet (first byte to the end of its Length),
    /// `pn_offset` is the offset of the packet number field. The packet is copied into
    /// `scratch` (reused, grows to the largest packet seen) and decrypted there.
    pub(super) fn open<'s>(
        &self,
        packet: &[u8],
        pn_offset: usize,
        largest_pn: Option<u64>,
        scratch: &'s mut Vec<u8>,
    ) -> Result<Opened<'s>, QuicSkip> {
        let sample_start = pn_offset
            .checked_add(SAMPLE_OFFSET)
            .ok_or(QuicSkip::BadHeader)?;
        let sample_end = sample_start
            .checked_add(SAMPLE_LEN)
            .ok_or(QuicSkip::BadHeader)?;
        let sample = packet
            .get(sample_start..sample_end)
            .ok_or(QuicSkip::BadHeader)?;
        let mask = self
            .header
            .new_mask(sample)
            .map_err(|_| QuicSkip::DecryptFailed)?;
        let [mask0, pn_mask @ ..] = mask;

        scratch.clear();
        scratch.extend_from_slice(packet);
        let first = scratch.first_mut().ok_or(QuicSkip::BadHeader)?;
        // Long header: the low four bits are protected (RFC 9001 §5.4.1).
        *first ^= mask0 & 0x0f;
        let pn_len = usize::from(*first & 0x03) + 1;
        let pn_end = pn_offset.checked_add(pn_len).ok_or(QuicSkip::BadHeader)?;
        let pn_bytes = scratch
            .get_mut(pn_offset..pn_end)
            .ok_or(QuicSkip::BadHeader)?;
        let mut truncated = 0u64;
        for (b, m) in pn_bytes.iter_mut().zip(pn_mask) {
            *b ^= m;
            truncated = (truncated << 8) | u64::from(*b);
        }
        let packet_number = decode_packet_number(largest_pn, truncated, pn_len);

        // Nonce: the IV XORed with the packet number, left-padded (RFC 9001 §5.3).
        let mut nonce = self.iv;
        let pn_be = packet_number.to_be_bytes();
        let tail = nonce.len().saturating_sub(pn_be.len());
        for (n, p) in nonce.iter_mut().skip(tail).zip(pn_be) {
            *n ^= p;
        }

        let (header, ciphertext) = scratch
            .split_at_mut_checked(pn_end)
            .ok_or(QuicSkip::BadHeader)?;
        let payload = self
            .packet
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&*header),
                ciphertext,
            )
            .map_err(|_| QuicSkip::DecryptFailed)?;
        // The reserved bits (0x0c) must be zero after removing protection (RFC 9000 §17.2);
        // a server would close the connection, but the ClientHello is authentic either way,
        // so they are not checked.
        Ok(Opened {
            packet_number,
            payload,
        })
    }
}

/// Reconstructs a full packet number from its truncated encoding (RFC 9000 §17.1 and the
/// algorithm of Appendix A.3). With no packet received yet, the expected number is 0.
pub(super) fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    // Packet numbers are below 2^62 (RFC 9000 §12.3).
    const MAX_PN: u64 = (1 << 62) - 1;
    let expected = largest.map_or(0, |l| l.saturating_add(1)).min(MAX_PN);
    let bits = (pn_len.clamp(1, 4) * 8) as u32;
    let window = 1u64 << bits;
    let half = window / 2;
    let mask = window - 1;
    let candidate = (expected & !mask) | (truncated & mask);
    if candidate.saturating_add(half) <= expected && candidate < (1u64 << 62).saturating_sub(window)
    {
        candidate.saturating_add(window)
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, hex};
    use super::*;

    fn check_raw(wire: u32, secret: Option<&str>, key: &str, iv: &str, hp: &str) {
        let raw = derive_raw(version(wire).unwrap(), &hex(vectors::DCID)).unwrap();
        if let Some(secret) = secret {
            assert_eq!(raw.secret.to_vec(), hex(secret));
        }
        assert_eq!(raw.key.to_vec(), hex(key));
        assert_eq!(raw.iv.to_vec(), hex(iv));
        assert_eq!(raw.hp.to_vec(), hex(hp));
    }

    #[test]
    fn v1_client_keys_match_rfc9001_appendix_a1() {
        check_raw(
            VERSION_1,
            Some(vectors::V1_CLIENT_SECRET),
            vectors::V1_CLIENT_KEY,
            vectors::V1_CLIENT_IV,
            vectors::V1_CLIENT_HP,
        );
    }

    #[test]
    fn v2_client_keys_match_rfc9369_appendix_a1() {
        check_raw(
            VERSION_2,
            Some(vectors::V2_CLIENT_SECRET),
            vectors::V2_CLIENT_KEY,
            vectors::V2_CLIENT_IV,
            vectors::V2_CLIENT_HP,
        );
    }

    #[test]
    fn draft29_client_keys_match_draft_appendix_a1() {
        check_raw(
            VERSION_DRAFT_29,
            None,
            vectors::D29_CLIENT_KEY,
            vectors::D29_CLIENT_IV,
            vectors::D29_CLIENT_HP,
        );
    }

    #[test]
    fn empty_dcid_still_derives_keys() {
        assert!(derive_raw(version(VERSION_1).unwrap(), &[]).is_some());
    }

    #[test]
    fn unknown_versions_are_not_supported() {
        assert!(version(0).is_none());
        assert!(version(0xff00_0020).is_none());
        assert!(version(0x0a0a_0a0a).is_none());
    }

    #[test]
    fn v2_renumbers_long_packet_types() {
        let v1 = version(VERSION_1).unwrap();
        let v2 = version(VERSION_2).unwrap();
        assert_eq!(v1.long_type(0xc0), LongType::Initial);
        assert_eq!(v1.long_type(0xf0), LongType::Retry);
        assert_eq!(v2.long_type(0xd0), LongType::Initial);
        assert_eq!(v2.long_type(0xc0), LongType::Retry);
        assert_eq!(v2.long_type(0xe0), LongType::ZeroRtt);
        assert_eq!(v2.long_type(0xf0), LongType::Handshake);
    }

    #[test]
    fn packet_number_example_of_rfc9000_appendix_a3() {
        assert_eq!(
            decode_packet_number(Some(0xa82f_30ea), 0x9b32, 2),
            0xa82f_9b32
        );
    }

    #[test]
    fn packet_number_first_packet_and_wraps() {
        assert_eq!(decode_packet_number(None, 2, 4), 2);
        assert_eq!(decode_packet_number(None, 0, 1), 0);
        assert_eq!(decode_packet_number(Some(0xff), 0x00, 1), 0x100);
        assert_eq!(decode_packet_number(Some(0x100), 0xff, 1), 0xff);
        assert_eq!(decode_packet_number(Some(u64::MAX), 0xff, 1), (1 << 62) - 1);
    }

    #[test]
    fn open_rejects_packets_too_short_for_a_sample() {
        let keys = ClientKeys::derive(version(VERSION_1).unwrap(), &[1; 8]).unwrap();
        let mut scratch = Vec::new();
        let packet = [0xc0u8; 30];
        assert_eq!(
            keys.open(&packet, 11, None, &mut scratch).unwrap_err(),
            QuicSkip::BadHeader
        );
        assert_eq!(
            keys.open(&packet, usize::MAX, None, &mut scratch)
                .unwrap_err(),
            QuicSkip::BadHeader
        );
        assert_eq!(
            keys.open(&packet, 10, None, &mut scratch).unwrap_err(),
            QuicSkip::DecryptFailed
        );
    }
}
