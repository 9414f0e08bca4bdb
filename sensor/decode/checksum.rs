//! The Internet checksum (RFC 1071) of TCP and UDP with their pseudo-headers: IPv4 (RFC 9293
//! §3.1, RFC 768) and IPv6 (RFC 8200 §8.1).
//!
//! Input: a [`Decoded`] view; reads `ip`, `l4` and `l4_bytes`, copies nothing. Work is one pass
//! over the transport bytes, which the IP length bounds (64 KiB, or a jumbogram as captured).

use std::net::IpAddr;

use super::ip::{PROTO_TCP, PROTO_UDP};
use super::{Decoded, L4};

/// See [`super::transport_checksum_ok`].
pub fn transport_ok(decoded: &Decoded<'_>) -> Option<bool> {
    let (proto, checksum_offset) = match decoded.l4 {
        L4::Tcp(_) => (PROTO_TCP, 16),
        L4::Udp(_) => (PROTO_UDP, 6),
        L4::Fragment(_) | L4::Other { .. } => return None,
    };
    let bytes = decoded.l4_bytes;
    let length = u32::try_from(bytes.len()).ok()?;
    if length != decoded.l4_wire_len || decoded.routed {
        return None;
    }
    let transmitted = bytes.get(checksum_offset..)?.first_chunk::<2>()?;
    let (src, dst): (&[u8], &[u8]) = match (&decoded.ip.src, &decoded.ip.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            // RFC 768: an all-zero UDP checksum over IPv4 means none was computed.
            if proto == PROTO_UDP && *transmitted == [0, 0] {
                return None;
            }
            (&src.octets(), &dst.octets())
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            // RFC 8200 §8.1: a zero UDP checksum over IPv6 is invalid.
            if proto == PROTO_UDP && *transmitted == [0, 0] {
                return Some(false);
            }
            (&src.octets(), &dst.octets())
        }
        _ => return None,
    };
    // Pseudo-header: addresses, protocol and length. IPv4 lays them out as zero, protocol,
    // 16-bit length; IPv6 as 32-bit length, three zero bytes, next header: the same words
    // once summed.
    let sum = [
        sum_words(src),
        sum_words(dst),
        u64::from(proto),
        u64::from(length),
        sum_words(bytes),
    ]
    .into_iter()
    .fold(0, add_ones);
    Some(fold(sum) == 0xFFFF)
}

/// Ones' complement addition in 64 bits: the carry out wraps around (RFC 1071 §2(B)), so the
/// sum never overflows whatever the input length.
fn add_ones(a: u64, b: u64) -> u64 {
    let (sum, carry) = a.overflowing_add(b);
    // After a carry out, sum <= 2^64 - 2: adding 1 cannot wrap.
    sum.wrapping_add(u64::from(carry))
}

/// Sum of big-endian 16-bit words (an odd last byte is padded with zero, RFC 1071 §4.1), not
/// yet folded. Reads 4 bytes at a time; 32-bit words fold to the same 16-bit sum. The words
/// are added plainly, without end-around carries: fewer than 2^32 words of less than 2^32 each
/// cannot overflow 64 bits (the input would have to exceed 16 GiB; capture records are capped
/// far below), and a plain sum of independent terms lets the compiler vectorise the loop.
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(4);
    let sum = chunks
        .by_ref()
        .map(|c| match c.first_chunk::<4>() {
            Some(word) => u64::from(u32::from_be_bytes(*word)),
            None => 0,
        })
        .fold(0u64, u64::wrapping_add);
    let tail = match *chunks.remainder() {
        [a, b, c] => u64::from(u32::from_be_bytes([a, b, c, 0])),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a] => u64::from(a) << 8,
        _ => 0,
    };
    add_ones(sum, tail)
}

/// Folds a wide ones' complement sum to 16 bits.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xFFFF {
        sum = add_ones(sum & 0xFFFF, sum >> 16);
    }
    // The loop leaves sum <= 0xFFFF.
    u16::try_from(sum).unwrap_or(0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes: 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&bytes)), 0xddf2);
    }

    #[test]
    fn odd_lengths_pad_with_zero() {
        assert_eq!(fold(sum_words(&[0x12])), 0x1200);
        assert_eq!(fold(sum_words(&[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
        assert_eq!(
            fold(sum_words(&[0x12, 0x34, 0x56, 0x78, 0x9a])),
            fold(0x1234 + 0x5678 + 0x9a00)
        );
    }

    #[test]
    fn word_sum_matches_two_byte_sum() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let slow: u64 = bytes
            .chunks(2)
            .map(|c| u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0)))
            .sum();
        assert_eq!(fold(sum_words(&bytes)), fold(slow));
    }

    /// The largest words, over more than a 64 KiB datagram: the plain 64-bit sum still folds to
    /// the ones' complement sum of 16-bit words.
    #[test]
    fn word_sum_of_all_ones_matches_two_byte_sum() {
        for len in [65_536 + 3, 262_144, 7] {
            let bytes = vec![0xFFu8; len];
            let slow = bytes
                .chunks(2)
                .map(|c| u64::from(c[0]) << 8 | u64::from(*c.get(1).unwrap_or(&0)))
                .fold(0, add_ones);
            assert_eq!(fold(sum_words(&bytes)), fold(slow), "{len}");
        }
    }
}
