//! The byte stream under a [`super::FileSource`]: one read buffer filled by large `read()`
//! calls, lent out as a [`Chunk`] without copying (reading then goes on in a fresh buffer from
//! the pool), and every byte read handed to the input's hashes ([`InputDigest`]).

use std::io::{self, Read};

use super::READ_BUF_LEN;
use crate::capture::chunk::{Chunk, ChunkPool};
use crate::capture::digest::{DigestOptions, InputDigest};
use crate::capture::CaptureError;

/// The byte stream, its read buffer and its running hash.
pub(super) struct Input {
    reader: Box<dyn Read + Send>,
    /// The read buffer. It may be lent out (see [`Chunk`]): then the next read goes to a fresh
    /// buffer from `pool`, never into this one.
    pub(super) buf: Chunk,
    pool: ChunkPool,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    pub(super) bytes_read: u64,
    /// `None` once finished, or after a read error (no hash describes a file read in part).
    pub(super) digest: Option<InputDigest>,
}

impl Input {
    pub(super) fn new(
        reader: Box<dyn Read + Send>,
        file: Option<std::fs::File>,
        digest: DigestOptions,
    ) -> Input {
        let pool = ChunkPool::default();
        Input {
            reader,
            buf: pool.take(READ_BUF_LEN),
            pool,
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            bytes_read: 0,
            digest: Some(InputDigest::start_with_file(digest, file)),
        }
    }

    /// Unconsumed bytes.
    pub(super) fn available(&self) -> &[u8] {
        self.buf.bytes().get(self.start..self.end).unwrap_or(&[])
    }

    pub(super) fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// File offset of the first unconsumed byte.
    pub(super) fn offset(&self) -> u64 {
        self.buf_offset
            .saturating_add(u64::try_from(self.start).unwrap_or(u64::MAX))
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Makes at least `need` bytes available, reading as needed. `Ok(false)`: the input ended
    /// with fewer. Callers bound `need` by their caps; the buffer grows to `need` at most.
    #[inline]
    pub(super) fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.len() >= need {
            return Ok(true);
        }
        self.fill_slow(need)
    }

    /// The reading part of [`Input::fill`], kept out of line so the per-record check stays small.
    #[inline(never)]
    fn fill_slow(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.eof {
            return Ok(false);
        }
        // Move the partial record (always shorter than `need`) to the front, so that each read
        // gets the whole rest of the buffer: in place while the buffer is ours alone, else into
        // a fresh buffer (the lent one must not change under its borrowers).
        // Invariant start <= end <= buf.len(); checked so that a slip cannot panic.
        let (start, end) = (self.start, self.end);
        if self.buf.get_mut().is_none() {
            let mut fresh = self.pool.take(need.max(READ_BUF_LEN));
            let partial = self.buf.bytes().get(start..end).unwrap_or(&[]);
            if let Some(to) = fresh.get_mut().and_then(|b| b.get_mut(..partial.len())) {
                to.copy_from_slice(partial);
            }
            self.buf = fresh;
            self.rebase(start);
        } else if start > 0 {
            if let Some(buf) = self
                .buf
                .get_mut()
                .filter(|b| start <= end && end <= b.len())
            {
                buf.copy_within(start..end, 0);
                self.rebase(start);
            }
        }
        let from = self.end;
        let result = self.read_until(need);
        // Every byte read goes to the hash, also when the read then failed (the digest is
        // dropped then anyway).
        if let Some(digest) = &mut self.digest {
            digest.update(&self.buf, from, self.end.saturating_sub(from));
        }
        result
    }

    /// Reads into the buffer (ours alone) after `end` until `need` bytes are unconsumed.
    fn read_until(&mut self, need: usize) -> Result<bool, CaptureError> {
        let Input {
            reader,
            buf,
            end,
            start,
            eof,
            bytes_read,
            ..
        } = self;
        let Some(buf) = buf.get_mut() else {
            // Unreachable: the caller made the buffer ours.
            return Err(CaptureError::Io(io::ErrorKind::Other));
        };
        if buf.len() < need {
            buf.resize(need, 0);
        }
        while end.saturating_sub(*start) < need {
            let Some(space) = buf.get_mut(*end..) else {
                return Ok(false);
            };
            match reader.read(space) {
                Ok(0) => {
                    *eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    let n = n.min(space.len());
                    *end = end.saturating_add(n);
                    *bytes_read = bytes_read.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CaptureError::Io(e.kind())),
            }
        }
        Ok(true)
    }

    /// The unconsumed bytes, which started at `start`, now start at the front of the buffer.
    fn rebase(&mut self, start: usize) {
        self.buf_offset = self
            .buf_offset
            .saturating_add(u64::try_from(start).unwrap_or(u64::MAX));
        self.end = self.len();
        self.start = 0;
    }

    /// Consumes `n` bytes without keeping them (they are still hashed). `Ok(false)`: the input
    /// ended first.
    pub(super) fn skip(&mut self, mut n: u64) -> Result<bool, CaptureError> {
        loop {
            let have = u64::try_from(self.len()).unwrap_or(u64::MAX);
            if have >= n {
                self.consume(usize::try_from(n).unwrap_or(usize::MAX));
                return Ok(true);
            }
            n = n.saturating_sub(have);
            self.start = self.end;
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }

    /// Reads the rest of the input into the hashes.
    pub(super) fn drain(&mut self) -> Result<(), CaptureError> {
        loop {
            self.start = self.end;
            if !self.fill(1)? {
                return Ok(());
            }
        }
    }
}
