//! A read cursor over a borrowed byte slice: fixed-size integers and QUIC variable-length
//! integers (RFC 9000 §16). Every read is checked; a short input yields `None` and consumes
//! nothing.

/// Reads from the front of a borrowed slice.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Cursor { rest: bytes }
    }

    /// Bytes not read yet.
    pub(super) fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        let (&first, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(first)
    }

    /// Next byte without consuming it.
    pub(super) fn peek_u8(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.rest.split_first_chunk::<4>()?;
        self.rest = rest;
        Some(u32::from_be_bytes(*head))
    }

    /// The next `len` bytes.
    pub(super) fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(head)
    }

    /// Like [`Cursor::bytes`] with a length read off the wire as a `u64`.
    pub(super) fn bytes_u64(&mut self, len: u64) -> Option<&'a [u8]> {
        self.bytes(usize::try_from(len).ok()?)
    }

    /// A variable-length integer (RFC 9000 §16): the two high bits of the first byte give the
    /// length (1, 2, 4 or 8 bytes), the remaining bits are the value, big-endian.
    pub(super) fn varint(&mut self) -> Option<u64> {
        let first = self.peek_u8()?;
        let len = 1usize << (first >> 6);
        let bytes = self.bytes(len)?;
        let mut value = u64::from(first & 0x3f);
        for &b in bytes.iter().skip(1) {
            value = (value << 8) | u64::from(b);
        }
        Some(value)
    }

    /// Skips `count` variable-length integers.
    pub(super) fn skip_varints(&mut self, count: usize) -> Option<()> {
        for _ in 0..count {
            self.varint()?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut c = Cursor::new(bytes);
        let v = c.varint()?;
        Some((v, bytes.len() - c.rest().len()))
    }

    #[test]
    fn varint_examples_of_rfc9000_appendix_a1() {
        assert_eq!(
            varint(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]),
            Some((151_288_809_941_952_652, 8))
        );
        assert_eq!(varint(&[0x9d, 0x7f, 0x3e, 0x7d]), Some((494_878_333, 4)));
        assert_eq!(varint(&[0x7b, 0xbd]), Some((15_293, 2)));
        assert_eq!(varint(&[0x25]), Some((37, 1)));
        assert_eq!(varint(&[0x40, 0x25]), Some((37, 2)));
    }

    #[test]
    fn varint_truncated_consumes_nothing() {
        for (bytes, cut) in [(&[0x40u8, 0x25][..], 1), (&[0x9d, 0x7f, 0x3e, 0x7d][..], 3)] {
            for n in 0..=cut {
                let mut c = Cursor::new(&bytes[..n]);
                assert_eq!(c.varint(), None, "{n} bytes");
                assert_eq!(c.rest().len(), n);
            }
        }
        let mut c = Cursor::new(&[0xff; 7]);
        assert_eq!(c.varint(), None);
    }

    #[test]
    fn varint_max_value() {
        assert_eq!(varint(&[0xff; 8]), Some(((1u64 << 62) - 1, 8)));
    }

    #[test]
    fn bytes_and_u32_are_checked() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.u32(), None);
        assert_eq!(c.bytes(4), None);
        assert_eq!(c.bytes_u64(u64::MAX), None);
        assert_eq!(c.bytes(2), Some(&[1u8, 2][..]));
        assert_eq!(c.u8(), Some(3));
        assert_eq!(c.u8(), None);
        assert!(c.is_empty());
    }
}
