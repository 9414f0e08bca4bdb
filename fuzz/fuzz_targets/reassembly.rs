//! flow::reassembly::StreamReassembler with arbitrary segment sequences.
//!
//! Input: a 4-byte initial sequence number, then records `[op][offset u16][len u8][bytes]`: a
//! data segment (or a SYN with data, or a RST with data) at a fuzzer-chosen offset from the
//! initial sequence number, scaled so that offsets reach past the buffer window and wrap around
//! 2^32; or a bare SYN. After each delivery the consumer parses a fuzzer-chosen share of it and
//! hands the rest back (`keep` after an in-place delivery, a partial `consume` after a buffered
//! one), as the TLS and HTTP parsers do.
//!
//! Properties: the buffer never exceeds MAX_BUFFERED_BYTES; every delivery starts at the
//! consumer's first unconsumed byte and ends at `next_seq()`; every delivered byte was sent at
//! that stream position by some segment; RST payloads are never delivered; after an overflow the
//! stream is finished, holds nothing and delivers nothing more; the reassembly budget holds
//! exactly the capacity of the stream's buffers, within twice the bytes held, and gets all of
//! it back when the stream is dropped.
#![no_main]

use ksensor::decode::TcpSegment;
use ksensor::flow::budget::WorkerBudget;
use ksensor::flow::reassembly::{Delivery, StreamReassembler, MAX_BUFFERED_BYTES, MAX_OOO_SEGMENTS};
use ksensor_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

/// Operations per input; enough to hit the out-of-order and too-far-ahead caps several times.
const MAX_OPS: usize = 512;

struct Sent {
    seq: u32,
    bytes: Vec<u8>,
}

/// Whether some segment carried `byte` at sequence number `seq`.
fn was_sent(sent: &[Sent], seq: u32, byte: u8) -> bool {
    sent.iter().any(|s| {
        let at = seq.wrapping_sub(s.seq) as usize;
        s.bytes.get(at) == Some(&byte)
    })
}

/// A delivery copied out of the reassembler, so it can be used after the next call.
#[derive(Debug, PartialEq)]
enum Owned {
    InPlace(Vec<u8>),
    Buffered(Vec<u8>),
    Nothing,
    Overflow,
}

fn own(d: Delivery<'_>) -> Owned {
    match d {
        Delivery::InPlace(b) => Owned::InPlace(b.to_vec()),
        Delivery::Buffered(b) => Owned::Buffered(b.to_vec()),
        Delivery::Nothing => Owned::Nothing,
        Delivery::Overflow(_) => Owned::Overflow,
    }
}

fn segment(seq: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
    TcpSegment {
        src_port: 40000,
        dst_port: 443,
        seq,
        ack: 0,
        flags,
        payload,
        wire_payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let isn = cursor.u32();
    let budget = WorkerBudget::standalone(1 << 30);
    let mut r = StreamReassembler::new();
    let mut sent: Vec<Sent> = Vec::new();
    // Sequence number of the consumer's first unconsumed byte, once the stream has started.
    let mut next: Option<u32> = None;
    for _ in 0..MAX_OPS {
        if cursor.is_empty() {
            break;
        }
        let op = cursor.u8();
        let offset = u32::from(cursor.u16());
        let len = usize::from(cursor.u8());
        // Offsets step by 1, 2, 4 … 128 bytes (op bits 5–7) so they reach 8 MiB and beyond.
        let seq = isn.wrapping_add(offset << (op >> 5));
        let payload = cursor.take(len).to_vec();
        let was_finished = r.is_finished();
        let delivery = match op & 0x03 {
            0 => {
                r.on_syn(seq);
                continue;
            }
            1 => {
                sent.push(Sent {
                    seq: seq.wrapping_add(1),
                    bytes: payload.clone(),
                });
                own(r.push_segment(&segment(seq, TcpSegment::SYN, &payload), &budget))
            }
            2 => {
                let d = r.push_segment(
                    &segment(seq, TcpSegment::RST | TcpSegment::ACK, &payload),
                    &budget,
                );
                assert_eq!(d, Delivery::Nothing, "RST payload delivered");
                continue;
            }
            _ => {
                sent.push(Sent {
                    seq,
                    bytes: payload.clone(),
                });
                own(r.push_segment(&segment(seq, TcpSegment::ACK, &payload), &budget))
            }
        };
        assert!(r.buffered_bytes() <= MAX_BUFFERED_BYTES, "buffer over the cap");
        assert_eq!(budget.held(), r.charged_bytes(), "budget and charge differ");
        if was_finished {
            assert_eq!(delivery, Owned::Nothing, "finished stream delivered");
        }
        let (bytes, in_place) = match &delivery {
            Owned::Nothing => continue,
            Owned::Overflow => {
                assert!(r.is_finished());
                assert_eq!(r.buffered_bytes(), 0, "overflow kept its buffer");
                continue;
            }
            Owned::InPlace(bytes) => (bytes, true),
            Owned::Buffered(bytes) => (bytes, false),
        };
        assert!(!bytes.is_empty(), "empty delivery");
        if !in_place {
            assert!(bytes.len() <= MAX_BUFFERED_BYTES, "buffered delivery over the cap");
        }
        let end = r.next_seq().expect("stream start known after a delivery");
        let start = end.wrapping_sub(bytes.len() as u32);
        if let Some(n) = next {
            assert_eq!(start, n, "delivery does not start at the first unconsumed byte");
        }
        for (i, &b) in bytes.iter().enumerate() {
            let at = start.wrapping_add(i as u32);
            assert!(was_sent(&sent, at, b), "byte {b:#x} at seq {at} was never sent there");
        }
        // The consumer parses all but a quarter, half or three quarters (op bits 2–3).
        let unparsed = usize::from((op >> 2) & 0x03) * bytes.len() / 4;
        let parsed = bytes.len() - unparsed;
        next = Some(start.wrapping_add(parsed as u32));
        if in_place {
            let tail = bytes.get(parsed..).unwrap_or_default();
            if r.keep(tail, &budget).is_err() {
                assert!(r.is_finished());
            }
        } else {
            r.consume(parsed);
        }
        if !r.is_finished() {
            assert_eq!(r.next_seq(), Some(end), "next_seq moved by keep/consume");
        }
        assert_eq!(budget.held(), r.charged_bytes(), "budget and charge differ");
        // Sized to what it holds: the buffer within twice its bytes, plus the run list.
        assert!(
            r.charged_bytes() <= 2 * r.buffered_bytes() + (MAX_OOO_SEGMENTS + 1) * 8,
            "{} budget bytes for {} bytes held",
            r.charged_bytes(),
            r.buffered_bytes()
        );
    }
    drop(r);
    assert_eq!(budget.held(), 0, "a dropped stream kept budget");
});
