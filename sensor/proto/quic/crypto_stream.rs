//! Reassembly of the Initial CRYPTO stream (RFC 9000 §19.6, §2.2): byte ranges arrive by offset,
//! in any order, possibly overlapping, and are copied into one buffer until the ClientHello at
//! offset 0 is complete.
//!
//! Caps: bytes past [`MAX_CRYPTO_BYTES`] are dropped, and at most [`MAX_CRYPTO_RANGES`]
//! disjoint received ranges are tracked. The buffer grows to the highest offset received (never
//! past the cap) and is reused after [`CryptoStream::reset`].

use super::QuicSkip;

/// Highest CRYPTO stream offset kept. A client's Initial CRYPTO stream carries one ClientHello;
/// common ones are 250–600 bytes and post-quantum ones (ML-KEM key shares) about 1.8 KB. 16 KiB
/// leaves room for very large ones (many extensions, big session tickets) while bounding what
/// one flow can hold.
pub const MAX_CRYPTO_BYTES: usize = 16 * 1024;

/// Disjoint received ranges tracked at once. Chrome splits its ClientHello into a handful of
/// CRYPTO frames (often under 10) across one or two packets; every range that touches another
/// merges with it, so only gaps cost entries. 32 leaves room for odd clients while keeping the
/// table small and inline.
pub const MAX_CRYPTO_RANGES: usize = 32;

/// TLS handshake message header: type (1 byte) and 24-bit length (RFC 8446 §4).
const HANDSHAKE_HEADER_LEN: usize = 4;
/// HandshakeType client_hello (RFC 8446 §4).
const CLIENT_HELLO: u8 = 1;

/// The state of the message at offset 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HelloState {
    /// Not all of the ClientHello has arrived yet (or not even its header).
    Incomplete,
    /// The whole ClientHello is in the buffer.
    Complete,
    /// The stream does not start with a ClientHello (or declares one larger than the cap).
    Unusable(QuicSkip),
}

/// One connection's Initial CRYPTO stream.
#[derive(Debug)]
pub(super) struct CryptoStream {
    /// Stream bytes `[0, data.len())`; bytes not covered by `ranges` are zero.
    data: Vec<u8>,
    /// Received `[start, end)` ranges: sorted, disjoint and not touching.
    ranges: [(u32, u32); MAX_CRYPTO_RANGES],
    range_count: usize,
}

impl Default for CryptoStream {
    fn default() -> Self {
        CryptoStream {
            data: Vec::new(),
            ranges: [(0, 0); MAX_CRYPTO_RANGES],
            range_count: 0,
        }
    }
}

// Ranges are stored as u32: the cap must fit.
const _: () = assert!(MAX_CRYPTO_BYTES <= u32::MAX as usize);

impl CryptoStream {
    /// Forgets all data, keeping the buffer's capacity.
    pub(super) fn reset(&mut self) {
        self.data.clear();
        self.range_count = 0;
    }

    /// Heap bytes the stream's buffer holds (its capacity), for the reassembly budget.
    pub(super) fn capacity(&self) -> usize {
        self.data.capacity()
    }

    fn ranges(&self) -> &[(u32, u32)] {
        self.ranges.get(..self.range_count).unwrap_or(&[])
    }

    /// Copies the CRYPTO frame data `bytes` found at stream offset `offset`. Returns a reason
    /// when some or all of it was dropped: past [`MAX_CRYPTO_BYTES`] (`crypto_out_of_range`) or
    /// because the range table is full (`crypto_too_fragmented`). Data sent again at the same
    /// offset overwrites what was there (RFC 9000 §2.2 says it must not change).
    pub(super) fn insert(&mut self, offset: u64, bytes: &[u8]) -> Option<QuicSkip> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let end = offset.saturating_add(len);
        let cap = MAX_CRYPTO_BYTES as u64;
        let clipped = end > cap;
        let end = end.min(cap);
        if offset >= end {
            return clipped.then_some(QuicSkip::CryptoOutOfRange);
        }
        // Both are at most MAX_CRYPTO_BYTES, which fits in u32 and usize.
        let (Ok(start), Ok(end)) = (u32::try_from(offset), u32::try_from(end)) else {
            return Some(QuicSkip::CryptoOutOfRange);
        };
        if !self.add_range(start, end) {
            return Some(QuicSkip::CryptoTooFragmented);
        }
        let (start, end) = (start as usize, end as usize);
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let source = bytes.get(..end.saturating_sub(start));
        let target = self.data.get_mut(start..end);
        if let (Some(source), Some(target)) = (source, target) {
            target.copy_from_slice(source);
        }
        clipped.then_some(QuicSkip::CryptoOutOfRange)
    }

    /// Merges `[start, end)` into the range table; false (table unchanged) when the result would
    /// need more than [`MAX_CRYPTO_RANGES`] entries.
    fn add_range(&mut self, start: u32, end: u32) -> bool {
        let mut merged = [(0u32, 0u32); MAX_CRYPTO_RANGES];
        let mut count = 0usize;
        let mut new = (start, end);
        let mut placed = false;
        for &(s, e) in self.ranges() {
            let entry = if e < new.0 {
                (s, e)
            } else if s > new.1 {
                if !placed {
                    match merged.get_mut(count) {
                        Some(slot) => *slot = new,
                        None => return false,
                    }
                    count += 1;
                    placed = true;
                }
                (s, e)
            } else {
                // Overlapping or touching: absorb into the new range.
                new = (new.0.min(s), new.1.max(e));
                continue;
            };
            match merged.get_mut(count) {
                Some(slot) => *slot = entry,
                None => return false,
            }
            count += 1;
        }
        if !placed {
            match merged.get_mut(count) {
                Some(slot) => *slot = new,
                None => return false,
            }
            count += 1;
        }
        self.ranges = merged;
        self.range_count = count;
        true
    }

    /// Length of the contiguous prefix received from offset 0.
    pub(super) fn contiguous_len(&self) -> usize {
        match self.ranges().first() {
            Some(&(0, end)) => end as usize,
            _ => 0,
        }
    }

    /// What the stream's first message looks like so far.
    pub(super) fn hello_state(&self) -> HelloState {
        let prefix = self.data.get(..self.contiguous_len()).unwrap_or(&[]);
        let Some(&[kind, a, b, c]) = prefix.first_chunk::<HANDSHAKE_HEADER_LEN>() else {
            return HelloState::Incomplete;
        };
        // Google QUIC's crypto handshake (Q043–Q050) starts with a CHLO message instead.
        if [kind, a, b, c] == super::gquic::CHLO_TAG {
            return match super::gquic::chlo_len(prefix) {
                Err(skip) => HelloState::Unusable(skip),
                Ok(Some(total)) if total > MAX_CRYPTO_BYTES => {
                    HelloState::Unusable(QuicSkip::CryptoBufferFull)
                }
                Ok(Some(total)) if prefix.len() >= total => HelloState::Complete,
                Ok(_) => HelloState::Incomplete,
            };
        }
        if kind != CLIENT_HELLO {
            return HelloState::Unusable(QuicSkip::NotClientHello);
        }
        let body = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        let total = HANDSHAKE_HEADER_LEN.saturating_add(body);
        if total > MAX_CRYPTO_BYTES {
            HelloState::Unusable(QuicSkip::CryptoBufferFull)
        } else if prefix.len() >= total {
            HelloState::Complete
        } else {
            HelloState::Incomplete
        }
    }

    /// The complete ClientHello (handshake header included), once it has all arrived.
    pub(super) fn client_hello(&self) -> Option<&[u8]> {
        if self.hello_state() != HelloState::Complete {
            return None;
        }
        if self.data.starts_with(&super::gquic::CHLO_TAG) {
            let total = super::gquic::chlo_len(&self.data).ok().flatten()?;
            return self.data.get(..total);
        }
        let header = self.data.get(1..HANDSHAKE_HEADER_LEN)?;
        let body = header
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        self.data.get(..HANDSHAKE_HEADER_LEN.checked_add(body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello-shaped message of `total` bytes: header then a counting body.
    fn hello(total: usize) -> Vec<u8> {
        let body = total - 4;
        let mut m = vec![1, (body >> 16) as u8, (body >> 8) as u8, body as u8];
        m.extend((0..body).map(|i| i as u8));
        m
    }

    #[test]
    fn in_order_completes() {
        let m = hello(300);
        let mut s = CryptoStream::default();
        assert_eq!(s.insert(0, &m[..100]), None);
        assert_eq!(s.hello_state(), HelloState::Incomplete);
        assert_eq!(s.client_hello(), None);
        assert_eq!(s.insert(100, &m[100..]), None);
        assert_eq!(s.hello_state(), HelloState::Complete);
        assert_eq!(s.client_hello(), Some(&m[..]));
    }

    #[test]
    fn reverse_order_completes() {
        let m = hello(300);
        let mut s = CryptoStream::default();
        for start in (0..300).step_by(50).rev() {
            assert_eq!(s.hello_state(), HelloState::Incomplete);
            assert_eq!(s.insert(start as u64, &m[start..start + 50]), None);
        }
        assert_eq!(s.client_hello(), Some(&m[..]));
        assert_eq!(s.ranges(), &[(0, 300)]);
    }

    #[test]
    fn overlapping_and_duplicate_ranges_merge() {
        let m = hello(200);
        let mut s = CryptoStream::default();
        assert_eq!(s.insert(50, &m[50..120]), None);
        assert_eq!(s.insert(50, &m[50..120]), None);
        assert_eq!(s.insert(100, &m[100..200]), None);
        assert_eq!(s.ranges(), &[(50, 200)]);
        assert_eq!(s.insert(0, &m[0..60]), None);
        assert_eq!(s.ranges(), &[(0, 200)]);
        assert_eq!(s.client_hello(), Some(&m[..]));
    }

    #[test]
    fn gaps_keep_separate_ranges() {
        let mut s = CryptoStream::default();
        s.insert(10, &[1; 10]);
        s.insert(40, &[1; 10]);
        s.insert(25, &[1; 5]);
        assert_eq!(s.ranges(), &[(10, 20), (25, 30), (40, 50)]);
        s.insert(20, &[1; 5]);
        assert_eq!(s.ranges(), &[(10, 30), (40, 50)]);
        assert_eq!(s.contiguous_len(), 0);
    }

    #[test]
    fn empty_frame_is_ignored() {
        let mut s = CryptoStream::default();
        assert_eq!(s.insert(5, &[]), None);
        assert_eq!(s.ranges(), &[]);
        assert_eq!(s.insert(u64::MAX, &[]), Some(QuicSkip::CryptoOutOfRange));
    }

    #[test]
    fn data_past_the_cap_is_dropped() {
        let mut s = CryptoStream::default();
        let cap = MAX_CRYPTO_BYTES as u64;
        assert_eq!(s.insert(cap, &[1]), Some(QuicSkip::CryptoOutOfRange));
        assert_eq!(
            s.insert(u64::MAX, &[1; 4]),
            Some(QuicSkip::CryptoOutOfRange)
        );
        assert_eq!(
            s.insert((1 << 62) - 1, &[1]),
            Some(QuicSkip::CryptoOutOfRange)
        );
        assert_eq!(s.ranges(), &[]);
        assert_eq!(s.insert(cap - 2, &[7; 4]), Some(QuicSkip::CryptoOutOfRange));
        assert_eq!(
            s.ranges(),
            &[(MAX_CRYPTO_BYTES as u32 - 2, MAX_CRYPTO_BYTES as u32)]
        );
        assert_eq!(s.data.len(), MAX_CRYPTO_BYTES);
    }

    #[test]
    fn too_many_gaps_are_refused_without_damage() {
        let mut s = CryptoStream::default();
        for i in 0..MAX_CRYPTO_RANGES as u64 {
            assert_eq!(s.insert(10 + i * 10, &[1; 5]), None);
        }
        assert_eq!(s.insert(5, &[1]), Some(QuicSkip::CryptoTooFragmented));
        assert_eq!(s.range_count, MAX_CRYPTO_RANGES);
        // One that merges with an existing range still fits.
        assert_eq!(s.insert(15, &[1; 5]), None);
        assert_eq!(s.range_count, MAX_CRYPTO_RANGES - 1);
        // And one that bridges all of them collapses the table.
        assert_eq!(s.insert(0, &[1; 400]), None);
        assert_eq!(s.ranges(), &[(0, 400)]);
    }

    #[test]
    fn stream_not_starting_with_client_hello_is_unusable() {
        let mut s = CryptoStream::default();
        s.insert(0, &[2, 0, 0, 1, 0]);
        assert_eq!(
            s.hello_state(),
            HelloState::Unusable(QuicSkip::NotClientHello)
        );
        assert_eq!(s.client_hello(), None);
    }

    #[test]
    fn client_hello_larger_than_cap_is_unusable() {
        let mut s = CryptoStream::default();
        let body = MAX_CRYPTO_BYTES - 3;
        s.insert(0, &[1, (body >> 16) as u8, (body >> 8) as u8, body as u8]);
        assert_eq!(
            s.hello_state(),
            HelloState::Unusable(QuicSkip::CryptoBufferFull)
        );
        let mut s = CryptoStream::default();
        s.insert(0, &[1, 0xff, 0xff, 0xff]);
        assert_eq!(
            s.hello_state(),
            HelloState::Unusable(QuicSkip::CryptoBufferFull)
        );
    }

    #[test]
    fn largest_client_hello_that_fits() {
        let m = hello(MAX_CRYPTO_BYTES);
        let mut s = CryptoStream::default();
        assert_eq!(s.insert(0, &m), None);
        assert_eq!(s.client_hello().map(<[u8]>::len), Some(MAX_CRYPTO_BYTES));
    }

    #[test]
    fn header_split_across_frames() {
        let m = hello(10);
        let mut s = CryptoStream::default();
        s.insert(2, &m[2..]);
        assert_eq!(s.hello_state(), HelloState::Incomplete);
        s.insert(0, &m[..2]);
        assert_eq!(s.client_hello(), Some(&m[..]));
    }

    #[test]
    fn reset_forgets_everything() {
        let m = hello(10);
        let mut s = CryptoStream::default();
        s.insert(0, &m);
        s.reset();
        assert_eq!(s.client_hello(), None);
        assert_eq!(s.contiguous_len(), 0);
        s.insert(4, &m[4..]);
        assert_eq!(s.hello_state(), HelloState::Incomplete);
    }
}
