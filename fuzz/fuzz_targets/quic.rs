//! proto::quic::InitialState::process_datagram over a sequence of datagrams.
//!
//! Input: a sequence of records `[kind][len u16][bytes]`. Kind selects a raw datagram (header
//! parsing, decryption failures) or a client Initial sealed here around the bytes as plaintext
//! frames (QUIC v1 or v2, fuzzer-chosen packet number and length), optionally with one byte of
//! the protected packet flipped or another packet coalesced after it.
//!
//! Properties: once the state reports a ClientHello (or finishes), every later datagram is
//! `Finished`; the reported ClientHello outcome is what `sni_from_handshake` finds in
//! `client_hello()` (for a Google QUIC CHLO: a reported name is in the message); names are
//! valid host names; counters only grow; the DCID stays within the cap.
#![no_main]

use ksensor::proto::quic::{InitialState, QuicOutcome, MAX_CID_LEN};
use ksensor::proto::tls::{sni_from_handshake, ClientHelloOutcome};
use ksensor::proto::HostName;
use ksensor_fuzz::quic_seal::{seal_initial, Version};
use ksensor_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

/// Datagrams per input: a client sends a handful of Initials; 64 is plenty and bounds the run.
const MAX_DATAGRAMS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let dcid_len = usize::from(cursor.u8() % 21);
    let dcid = cursor.take(dcid_len).to_vec();
    let mut state = InitialState::new();
    let mut done = false;
    let (mut packets, mut frames) = (0u32, 0u32);
    for _ in 0..MAX_DATAGRAMS {
        if cursor.is_empty() {
            break;
        }
        let kind = cursor.u8();
        let len = usize::from(cursor.u16() % 4096);
        let body = cursor.take(len);
        let datagram = if kind & 0x80 == 0 {
            body.to_vec()
        } else {
            let version = if kind & 0x40 == 0 { Version::V1 } else { Version::V2 };
            let pn = u32::from(kind & 0x0f);
            let pn_len = usize::from((kind >> 4) & 0x03) + 1;
            let Some(mut packet) = seal_initial(version, &dcid, &[7; 4], pn, pn_len, body) else {
                continue;
            };
            if kind & 0x0f == 0x0f {
                // Damage one byte, position from the body's first byte.
                let at = usize::from(body.first().copied().unwrap_or(0)) % packet.len().max(1);
                if let Some(b) = packet.get_mut(at) {
                    *b ^= 0x5a;
                }
            }
            packet
        };
        let outcome = state.process_datagram(&datagram);
        if done {
            assert_eq!(outcome, QuicOutcome::Finished, "datagram after the end");
        }
        assert!(state.dcid().len() <= MAX_CID_LEN);
        assert!(state.packets() >= packets && state.frames() >= frames);
        packets = state.packets();
        frames = state.frames();
        match outcome {
            QuicOutcome::ClientHello(found) => {
                assert!(state.is_finished());
                let hello = state.client_hello().expect("a ClientHello was reported");
                if hello.starts_with(b"CHLO") {
                    // A Google QUIC CHLO (its own tag-value message): a name it reports is
                    // the value of its SNI tag, so it is in the message.
                    assert_ne!(found, ClientHelloOutcome::NeedMore, "a complete CHLO");
                    if let ClientHelloOutcome::Sni { name, .. } = found {
                        let lower = hello.to_ascii_lowercase();
                        assert!(
                            lower.windows(name.as_bytes().len()).any(|w| w == name.as_bytes()),
                            "CHLO name not in the message"
                        );
                    }
                } else {
                    assert_eq!(
                        sni_from_handshake(hello),
                        found,
                        "outcome vs client_hello()"
                    );
                }
                if let ClientHelloOutcome::Sni { name, .. } = found {
                    assert_eq!(HostName::parse(name.as_bytes()), Ok(name));
                }
                done = true;
            }
            QuicOutcome::Finished => assert!(state.is_finished()),
            _ => done = state.is_finished(),
        }
    }
});
