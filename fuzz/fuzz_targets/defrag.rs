//! flow::defrag::Defragmenter with arbitrary fragment sequences.
//!
//! Input: records `[flags][id][offset u16][len][time step][bytes]`. Fragment bytes are either a
//! pattern derived from (datagram, position), so that overlapping fragments agree and datagrams
//! complete, or taken from the input (conflicts). Addresses, IPv4/IPv6, protocol and the more
//! fragments flag come from `flags`; time moves forward or backward by the time step.
//!
//! Properties: datagrams in flight and buffered bytes stay within their caps; a completed
//! datagram is no longer than MAX_DATAGRAM_LEN, has the protocol of its fragments, and each of
//! its bytes was sent at that position by a fragment of that datagram; every dropped fragment is
//! counted.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ksensor::decode::IpFragment;
use ksensor::flow::defrag::{
    DefragOutcome, Defragmenter, MAX_BUFFERED_BYTES, MAX_DATAGRAMS_IN_FLIGHT, MAX_DATAGRAM_LEN,
};
use ksensor::time::Timestamp;
use ksensor_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

/// Fragments per input: enough to fill the datagram cap (1024) and evict.
const MAX_FRAGMENTS: usize = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

struct Sent {
    key: Key,
    offset: usize,
    bytes: Vec<u8>,
}

fn pattern(id: u32, pos: usize) -> u8 {
    (id as usize).wrapping_mul(31).wrapping_add(pos.wrapping_mul(7)) as u8
}

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let mut d = Defragmenter::new();
    let mut sent: Vec<Sent> = Vec::new();
    let mut now = 1_000_000u64;
    let mut dropped = 0u64;
    for _ in 0..MAX_FRAGMENTS {
        if cursor.is_empty() {
            break;
        }
        let flags = cursor.u8();
        let id_low = cursor.u8();
        let offset = usize::from(cursor.u16() % 8192) * 8;
        let len_units = usize::from(cursor.u8());
        let step = cursor.u8();
        // Time: mostly small steps forward, sometimes a jump past the timeout, or backwards.
        now = match step {
            0..=239 => now + u64::from(step) / 16,
            240..=247 => now + 31,
            _ => now.saturating_sub(u64::from(step - 247)),
        };
        let v6 = flags & 0x01 != 0;
        let more = flags & 0x02 != 0;
        let raw = flags & 0x04 != 0;
        let odd = flags & 0x08 != 0;
        // Many ids when bit 4 is set, so the in-flight cap is reached.
        let id = if flags & 0x10 != 0 {
            u32::from(id_low) | u32::from(flags) << 8 | (len_units as u32) << 16
        } else {
            u32::from(id_low)
        };
        let proto = if flags & 0x20 != 0 { 17 } else { 6 };
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            (
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(flags >> 6)).into(),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9).into(),
            )
        } else {
            (
                Ipv4Addr::new(10, 0, 0, flags >> 6).into(),
                Ipv4Addr::new(10, 0, 0, 9).into(),
            )
        };
        let len = len_units * 8 + usize::from(odd);
        let bytes: Vec<u8> = if raw {
            cursor.take(len).to_vec()
        } else {
            (offset..offset + len).map(|pos| pattern(id, pos)).collect()
        };
        let key = Key { src, dst, id, proto };
        let frag = IpFragment {
            id,
            offset: offset as u32,
            more_fragments: more,
            proto,
            payload: &bytes,
        };
        let atomic = offset == 0 && !more;
        let outcome = d.push(Timestamp::from_secs_nanos(now, 0), src, dst, &frag);
        match outcome {
            DefragOutcome::Incomplete => {}
            DefragOutcome::Dropped(_) => dropped += 1,
            DefragOutcome::Complete { proto: p, payload } => {
                assert_eq!(p, proto, "protocol of the completed datagram");
                assert!(payload.len() <= MAX_DATAGRAM_LEN, "datagram over the cap");
                if atomic {
                    assert_eq!(payload, bytes.as_slice(), "atomic fragment changed");
                } else {
                    let pieces: Vec<(usize, &[u8])> = std::iter::once((offset, bytes.as_slice()))
                        .chain(
                            sent.iter()
                                .filter(|s| s.key == key)
                                .map(|s| (s.offset, s.bytes.as_slice())),
                        )
                        .collect();
                    for (pos, &b) in payload.iter().enumerate() {
                        let ok = pieces
                            .iter()
                            .any(|(o, s)| pos.checked_sub(*o).and_then(|i| s.get(i)) == Some(&b));
                        assert!(ok, "byte {pos} of a datagram was never sent there");
                    }
                    sent.retain(|s| s.key != key);
                }
            }
        }
        if !atomic && !matches!(outcome, DefragOutcome::Complete { .. }) {
            sent.push(Sent {
                key,
                offset,
                bytes,
            });
        }
        assert!(d.in_flight() <= MAX_DATAGRAMS_IN_FLIGHT, "datagrams over the cap");
        assert!(d.buffered_bytes() <= MAX_BUFFERED_BYTES, "bytes over the cap");
        assert!(d.skips().total() >= dropped, "a dropped fragment was not counted");
    }
});
