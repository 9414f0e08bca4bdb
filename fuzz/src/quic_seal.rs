//! Builds protected QUIC client Initial packets (RFC 9000 §17.2.2, RFC 9001 §5) around a
//! plaintext chosen by the fuzzer, so the QUIC target gets past AEAD authentication and reaches
//! the frame, CRYPTO reassembly and ClientHello code. Written from the RFC, independently of
//! `ksensor::proto::quic`, so that a key-schedule bug on either side shows up as a failure of
//! the sealed seeds to open.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;

/// QUIC versions the sealer can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    fn wire(self) -> u32 {
        match self {
            Version::V1 => 0x0000_0001,
            Version::V2 => 0x6b33_43cf,
        }
    }

    /// initial_salt: RFC 9001 §5.2, RFC 9369 §3.3.1.
    fn salt(self) -> [u8; 20] {
        match self {
            Version::V1 => [
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ],
            Version::V2 => [
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ],
        }
    }

    /// Label prefix of the packet protection keys: RFC 9001 §5.1, RFC 9369 §3.3.2.
    fn label_prefix(self) -> &'static [u8] {
        match self {
            Version::V1 => b"quic ",
            Version::V2 => b"quicv2 ",
        }
    }

    /// Long-header type bits of an Initial: 0b00 in v1 (RFC 9000 §17.2), 0b01 in v2
    /// (RFC 9369 §3.2).
    fn initial_type_bits(self) -> u8 {
        match self {
            Version::V1 => 0x00,
            Version::V2 => 0x10,
        }
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, into `out`.
fn expand_label(prk: &hkdf::Prk, label: &[&[u8]], out: &mut [u8]) -> Option<()> {
    let full_len: usize = label.iter().map(|p| p.len()).sum::<usize>() + 6;
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(full_len).ok()?];
    let mut info: Vec<&[u8]> = vec![&len, &label_len, b"tls13 "];
    info.extend_from_slice(label);
    info.push(&[0]);
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// The client's Initial packet key, IV and header protection key for `dcid`.
struct Keys {
    key: LessSafeKey,
    iv: [u8; 12],
    hp: aead::quic::HeaderProtectionKey,
}

fn client_keys(version: Version, dcid: &[u8]) -> Option<Keys> {
    let initial = hkdf::Salt::new(hkdf::HKDF_SHA256, &version.salt()).extract(dcid);
    let mut secret = [0u8; 32];
    expand_label(&initial, &[b"client in"], &mut secret)?;
    let secret = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret);
    let prefix = version.label_prefix();
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    let mut hp = [0u8; 16];
    expand_label(&secret, &[prefix, b"key"], &mut key)?;
    expand_label(&secret, &[prefix, b"iv"], &mut iv)?;
    expand_label(&secret, &[prefix, b"hp"], &mut hp)?;
    Some(Keys {
        key: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, &key).ok()?),
        iv,
        hp: aead::quic::HeaderProtectionKey::new(&aead::quic::AES_128, &hp).ok()?,
    })
}

/// Variable-length integer (RFC 9000 §16), always in the 4-byte form (values < 2^30).
fn varint4(out: &mut Vec<u8>, value: usize) {
    let v = u32::try_from(value.min((1 << 30) - 1)).unwrap_or(0) | 0x8000_0000;
    out.extend_from_slice(&v.to_be_bytes());
}

/// One protected client Initial: `dcid`, `scid` (each at most 20 bytes, longer ones are cut),
/// packet number `pn` in `pn_len` bytes (1–4), and `plaintext` (frames), padded with PADDING
/// frames so that the header protection sample exists (RFC 9001 §5.4.2). `None` only if `ring`
/// refuses a key, which it does not for these lengths.
pub fn seal_initial(
    version: Version,
    dcid: &[u8],
    scid: &[u8],
    pn: u32,
    pn_len: usize,
    plaintext: &[u8],
) -> Option<Vec<u8>> {
    let dcid = dcid.get(..dcid.len().min(20))?;
    let scid = scid.get(..scid.len().min(20))?;
    let pn_len = pn_len.clamp(1, 4);
    let keys = client_keys(version, dcid)?;

    let mut payload = plaintext.to_vec();
    // The sample is 16 bytes from pn_offset + 4; the tag gives 16 bytes after the payload.
    while pn_len + payload.len() < 4 {
        payload.push(0);
    }

    let mut packet = Vec::with_capacity(64 + payload.len());
    packet.push(0xc0 | version.initial_type_bits() | u8::try_from(pn_len - 1).ok()?);
    packet.extend_from_slice(&version.wire().to_be_bytes());
    packet.push(u8::try_from(dcid.len()).ok()?);
    packet.extend_from_slice(dcid);
    packet.push(u8::try_from(scid.len()).ok()?);
    packet.extend_from_slice(scid);
    packet.push(0); // Token Length (RFC 9000 §17.2.2).
    varint4(&mut packet, pn_len + payload.len() + 16);
    let pn_offset = packet.len();
    let pn_bytes = pn.to_be_bytes();
    packet.extend_from_slice(pn_bytes.get(4 - pn_len..)?);

    // RFC 9001 §5.3: nonce = IV xor packet number, left-padded.
    let mut nonce = keys.iv;
    for (n, p) in nonce.iter_mut().rev().zip(pn_bytes.iter().rev()) {
        *n ^= p;
    }
    let tag = keys.key.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(packet.as_slice()),
        &mut payload,
    );
    let tag = tag.ok()?;
    packet.extend_from_slice(&payload);
    packet.extend_from_slice(tag.as_ref());

    // RFC 9001 §5.4.1: mask the low 4 bits of the first byte and the packet number.
    let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
    let mask = keys.hp.new_mask(sample).ok()?;
    let [m0, rest @ ..] = mask;
    *packet.first_mut()? ^= m0 & 0x0f;
    for (b, m) in packet
        .get_mut(pn_offset..pn_offset + pn_len)?
        .iter_mut()
        .zip(rest)
    {
        *b ^= m;
    }
    Some(packet)
}

/// A CRYPTO frame (RFC 9000 §19.6) carrying `data` at stream `offset`.
pub fn crypto_frame(out: &mut Vec<u8>, offset: usize, data: &[u8]) {
    out.push(0x06);
    varint4(out, offset);
    varint4(out, data.len());
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksensor::proto::quic::{InitialState, QuicOutcome};
    use ksensor::proto::tls::ClientHelloOutcome;

    const HELLO: &[u8] = include_bytes!("../../sensor/proto/testdata/tls13_ds_kaspersky.bin");

    #[test]
    fn sealed_client_hello_opens_in_the_sensor() {
        for version in [Version::V1, Version::V2] {
            // The testdata file is a TLS record: strip its 5-byte header.
            let handshake = &HELLO[5..];
            let mut frames = Vec::new();
            crypto_frame(&mut frames, 0, handshake);
            frames.resize(frames.len() + 200, 0);
            let packet = seal_initial(version, &[1, 2, 3, 4, 5, 6, 7, 8], &[9], 0, 2, &frames)
                .expect("sealed");
            let mut state = InitialState::new();
            match state.process_datagram(&packet) {
                QuicOutcome::ClientHello(ClientHelloOutcome::Sni { name, .. }) => {
                    assert_eq!(name.as_str(), "ds.kaspersky.com", "{version:?}")
                }
                other => panic!("{version:?}: {other:?}"),
            }
        }
    }
}
