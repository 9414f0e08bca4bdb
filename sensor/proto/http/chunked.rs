//! Chunked transfer coding (RFC 9112 §7.1): a body fed in arbitrary pieces is skipped without
//! buffering, its first data bytes kept for update-file detection.

use memchr::memchr;

use super::head::MAX_HEAD_LEN;
use super::HttpSkip;

/// Longest chunk-size line (size, extensions, CRLF). Chunk extensions are practically unused;
/// the cap stops a body that never ends its size line from being skipped forever.
pub const MAX_CHUNK_LINE_LEN: usize = 1024;

/// Largest trailer section after the last chunk; same budget as a head.
pub const MAX_TRAILER_LEN: usize = MAX_HEAD_LEN;

/// Body bytes kept by [`ChunkedBody`] for magic detection (all current magics are 4 bytes).
pub const FIRST_DATA_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Bytes of the input that belong to the body (all of it unless `done` or `invalid`).
    pub consumed: usize,
    /// The body, trailers included, has ended; the next message starts after `consumed`.
    pub done: bool,
    /// The body is malformed at input offset `consumed`; the stream cannot be followed.
    pub invalid: Option<HttpSkip>,
}

/// Where a chunked body parser is (RFC 9112 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// In chunk-size hex digits; `digits` counts them.
    Size {
        value: u64,
        digits: usize,
    },
    /// After the size: chunk extensions or whitespace, up to LF.
    SizeLine {
        value: u64,
    },
    /// In chunk data.
    Data {
        remaining: u64,
    },
    /// After chunk data: expecting CR or LF.
    DataEnd,
    /// After chunk data and CR: expecting LF.
    DataEndLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line, up to LF.
    TrailerLine,
    /// CR at the start of a line after the last chunk: expecting LF.
    FinalLf,
    Done,
    Failed(HttpSkip),
}

/// Skips a chunked body fed in arbitrary pieces; keeps its first [`FIRST_DATA_LEN`] data bytes.
#[derive(Clone, Debug)]
pub struct ChunkedBody {
    state: ChunkState,
    /// Bytes of the current chunk-size line so far.
    line_len: usize,
    /// Bytes of trailer section so far.
    trailer_len: usize,
    first: [u8; FIRST_DATA_LEN],
    first_len: usize,
}

impl Default for ChunkedBody {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedBody {
    pub fn new() -> Self {
        ChunkedBody {
            state: ChunkState::Size {
                value: 0,
                digits: 0,
            },
            line_len: 0,
            trailer_len: 0,
            first: [0; FIRST_DATA_LEN],
            first_len: 0,
        }
    }

    /// The first data bytes of the body (up to [`FIRST_DATA_LEN`]), across chunks.
    pub fn first_data(&self) -> &[u8] {
        self.first.get(..self.first_len).unwrap_or_default()
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Why the body could not be followed, if it could not.
    pub fn invalid(&self) -> Option<HttpSkip> {
        match self.state {
            ChunkState::Failed(skip) => Some(skip),
            _ => None,
        }
    }

    /// Feeds the next bytes of the body. Stops at the end of the body (the rest of `bytes`
    /// belongs to the next message) or at the first malformed byte. Once done or failed, further
    /// calls consume nothing.
    pub fn consume(&mut self, bytes: &[u8]) -> ChunkProgress {
        let mut rest = bytes;
        // Each iteration consumes at least one byte or returns, so the loop is bounded by
        // `bytes.len()`.
        loop {
            match self.state {
                ChunkState::Done => return self.progress(bytes, rest),
                ChunkState::Failed(_) => return self.progress(bytes, rest),
                ChunkState::Data { remaining } => {
                    if rest.is_empty() {
                        return self.progress(bytes, rest);
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (data, tail) = rest.split_at_checked(n).unwrap_or((rest, &[]));
                    self.keep_first(data);
                    rest = tail;
                    let remaining = remaining.saturating_sub(n as u64);
                    self.state = if remaining == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data { remaining }
                    };
                }
                ChunkState::SizeLine { value } => {
                    // Skip chunk extensions up to LF without looking at them.
                    let (skipped, found) = match memchr(b'\n', rest) {
                        Some(lf) => (lf.saturating_add(1), true),
                        None => (rest.len(), false),
                    };
                    // Fail at the byte that crosses the cap, wherever the input was split.
                    let room = MAX_CHUNK_LINE_LEN.saturating_sub(self.line_len);
                    if skipped > room {
                        self.line_len = MAX_CHUNK_LINE_LEN;
                        rest = rest.get(room..).unwrap_or_default();
                        self.state = ChunkState::Failed(HttpSkip::ChunkLineTooLong);
                        continue;
                    }
                    self.line_len = self.line_len.saturating_add(skipped);
                    rest = rest.get(skipped..).unwrap_or_default();
                    if !found {
                        return self.progress(bytes, rest);
                    }
                    self.end_size_line(value);
                }
                ChunkState::TrailerLine => {
                    let (skipped, found) = match memchr(b'\n', rest) {
                        Some(lf) => (lf.saturating_add(1), true),
                        None => (rest.len(), false),
                    };
                    let room = MAX_TRAILER_LEN.saturating_sub(self.trailer_len);
                    if skipped > room {
                        self.trailer_len = MAX_TRAILER_LEN;
                        rest = rest.get(room..).unwrap_or_default();
                        self.state = ChunkState::Failed(HttpSkip::TrailerTooLarge);
                        continue;
                    }
                    self.trailer_len = self.trailer_len.saturating_add(skipped);
                    rest = rest.get(skipped..).unwrap_or_default();
                    if !found {
                        return self.progress(bytes, rest);
                    }
                    self.state = ChunkState::TrailerStart;
                }
                state => {
                    let Some((&b, tail)) = rest.split_first() else {
                        return self.progress(bytes, rest);
                    };
                    // On failure the byte is not consumed: `consumed` points at it.
                    if let Some(next) = self.step(state, b) {
                        self.state = next;
                        rest = tail;
                    }
                }
            }
        }
    }

    /// One byte in a byte-at-a-time state. Returns the next state, or `None` after recording a
    /// failure (the byte is then not consumed).
    fn step(&mut self, state: ChunkState, b: u8) -> Option<ChunkState> {
        let fail = |this: &mut Self, skip| {
            this.state = ChunkState::Failed(skip);
            None
        };
        match state {
            ChunkState::Size { value, digits } => {
                self.line_len = self.line_len.saturating_add(1);
                if self.line_len > MAX_CHUNK_LINE_LEN {
                    return fail(self, HttpSkip::ChunkLineTooLong);
                }
                if let Some(d) = hex_value(b) {
                    return match value.checked_mul(16).and_then(|v| v.checked_add(d)) {
                        Some(value) => Some(ChunkState::Size {
                            value,
                            digits: digits.saturating_add(1),
                        }),
                        None => fail(self, HttpSkip::BadChunkSize),
                    };
                }
                // chunk-size = 1*HEXDIG, then [BWS chunk-ext] CRLF.
                if digits == 0 {
                    return fail(self, HttpSkip::BadChunkSize);
                }
                match b {
                    b'\n' => {
                        self.end_size_line(value);
                        Some(self.state)
                    }
                    b'\r' | b';' | b' ' | b'\t' => Some(ChunkState::SizeLine { value }),
                    _ => fail(self, HttpSkip::BadChunkSize),
                }
            }
            ChunkState::DataEnd => match b {
                b'\r' => Some(ChunkState::DataEndLf),
                b'\n' => Some(self.start_size_line()),
                _ => fail(self, HttpSkip::BadChunkEnd),
            },
            ChunkState::DataEndLf => match b {
                b'\n' => Some(self.start_size_line()),
                _ => fail(self, HttpSkip::BadChunkEnd),
            },
            ChunkState::TrailerStart => match b {
                b'\r' => Some(ChunkState::FinalLf),
                b'\n' => Some(ChunkState::Done),
                _ => {
                    self.trailer_len = self.trailer_len.saturating_add(1);
                    Some(ChunkState::TrailerLine)
                }
            },
            ChunkState::FinalLf => match b {
                b'\n' => Some(ChunkState::Done),
                _ => fail(self, HttpSkip::BadChunkEnd),
            },
            // Handled in `consume`.
            other => Some(other),
        }
    }

    fn start_size_line(&mut self) -> ChunkState {
        self.line_len = 0;
        ChunkState::Size {
            value: 0,
            digits: 0,
        }
    }

    /// The size line has ended: data follows, or the trailer section after the last chunk.
    fn end_size_line(&mut self, value: u64) {
        self.state = if value == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data { remaining: value }
        };
    }

    fn keep_first(&mut self, data: &[u8]) {
        let free = self.first.get_mut(self.first_len..).unwrap_or_default();
        let n = free.len().min(data.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
            self.first_len = self.first_len.saturating_add(n);
        }
    }

    fn progress(&self, bytes: &[u8], rest: &[u8]) -> ChunkProgress {
        ChunkProgress {
            consumed: bytes.len().saturating_sub(rest.len()),
            done: self.state == ChunkState::Done,
            invalid: self.invalid(),
        }
    }
}

fn hex_value(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}
