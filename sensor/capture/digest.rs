//! What binds a report to the bytes of its inputs: the SHA-256 of each input's first and last
//! MiB always, and a digest of the whole input when one is asked for.
//!
//! Contract: an [`InputDigest`] is fed, in file order, every stretch of bytes the reader read
//! ([`InputDigest::update`] lends a stretch of a read buffer, a [`Chunk`], without copying; a
//! lent chunk is never written again). [`InputDigest::finish`] returns:
//! - [`EdgeHashes`]: SHA-256 of the first and of the last `min(size, EDGE_LEN)` bytes. They cost
//!   two MiB of hashing per input whatever its size (hashed here, on the reader's thread; the
//!   last MiB is read back from a regular file at the end, and held as lent stretches only for
//!   a stream, so that a file's reader keeps reusing its buffers while they are in cache) and
//!   are checked with `head -c N FILE | sha256sum` and `tail -c N FILE | sha256sum`; for an
//!   input of at most [`EDGE_LEN`] bytes both are the SHA-256 of the whole input, which the
//!   report then shows as that input's SHA-256 too.
//! - [`FileDigest`] when an algorithm was asked for: SHA-256 (`sha256sum`) or BLAKE3 (`b3sum`)
//!   of the whole input, computed on a thread of its own ([`BackgroundDigest`]).
//!
//! Why the full digest is not the default: on this project's reference machine (2 cores, SHA-NI,
//! AVX-512; `benches/RESULTS.md`) SHA-256 runs at ~1.3 GB/s and BLAKE3 at ~5-6 GB/s on one core,
//! while the pipeline with two workers reads an enterprise mix at ~5 GB/s: either hash costs
//! the workers a core's share they need (a replay 1.4-3× slower with SHA-256, ~1.5× with BLAKE3
//! on two workers). The size, packet count, first and last capture time and the edge hashes
//! bind a report to its inputs at no measurable cost; an audit that needs every byte vouched
//! for asks for `--input-hash sha256|blake3`.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use sha2::{Digest, Sha256};

use super::Chunk;

/// Stretches of read buffers waiting for the full hash (4 MiB of the stream reader's 256 KiB
/// reads, 16 MiB of the workers' 1 MiB segments).
pub const HASH_QUEUE: usize = 16;

/// Bytes hashed at each end of an input: one MiB is more than any pcap or pcapng file header
/// plus its first records, so the first edge covers the file's link types and start, and
/// hashing two of them takes ~1.5 ms, nothing next to a replay.
pub const EDGE_LEN: usize = 1 << 20;

/// A digest of a whole input that a standard tool recomputes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256 (FIPS 180-4): `sha256sum`.
    Sha256,
    /// BLAKE3 (<https://github.com/BLAKE3-team/BLAKE3-specs>): `b3sum` (Debian package `b3sum`).
    Blake3,
}

impl DigestAlgorithm {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Blake3 => "blake3",
        }
    }
}

impl std::str::FromStr for DigestAlgorithm {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "sha256" => Ok(DigestAlgorithm::Sha256),
            "blake3" => Ok(DigestAlgorithm::Blake3),
            _ => Err(format!(
                "'{name}' is not a digest ksensor computes (sha256 or blake3)"
            )),
        }
    }
}

/// Bytes read back at a time for the last edge of a file (on the stack).
const TAIL_PIECE: usize = 16 * 1024;

/// A whole input's digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub algorithm: DigestAlgorithm,
    pub value: [u8; 32],
}

/// SHA-256 of an input's first and last `span` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeHashes {
    /// `min(input size, EDGE_LEN)`.
    pub span: u64,
    /// The input is no longer than [`EDGE_LEN`]: `head` is the SHA-256 of all of it.
    pub whole: bool,
    pub head: [u8; 32],
    pub tail: [u8; 32],
}

/// What an input's reader computes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DigestOptions {
    /// A digest of the whole input, in this algorithm.
    pub full: Option<DigestAlgorithm>,
}

/// The running hashes of one input. See the module docs.
pub struct InputDigest {
    edges: EdgeDigest,
    full: Option<BackgroundDigest>,
}

/// What [`InputDigest::finish`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputDigests {
    pub edges: Option<EdgeHashes>,
    pub full: Option<FileDigest>,
}

impl InputDigest {
    /// Hashes of a stream.
    pub fn start(options: DigestOptions) -> InputDigest {
        InputDigest::start_with_file(options, None)
    }

    /// Hashes of an input that is `file` (a regular file, read from offset 0 on) when it is
    /// given: the last MiB is read back from it at the end.
    pub fn start_with_file(options: DigestOptions, file: Option<File>) -> InputDigest {
        InputDigest {
            edges: EdgeDigest {
                file,
                ..EdgeDigest::default()
            },
            full: options.full.map(BackgroundDigest::start),
        }
    }

    /// Hashes `chunk.bytes()[start..start + len]` next.
    pub fn update(&mut self, chunk: &Chunk, start: usize, len: usize) {
        if len == 0 {
            return;
        }
        self.edges.update(chunk, start, len);
        if let Some(full) = &mut self.full {
            full.update(chunk, start, len);
        }
    }

    /// Whether a digest of the whole input is being computed.
    pub fn has_full(&self) -> bool {
        self.full.is_some()
    }

    /// The hashes of everything lent (the full digest once its thread has caught up; `None` if
    /// that thread died; no edges if the last MiB could not be read back).
    pub fn finish(self) -> InputDigests {
        InputDigests {
            edges: self.edges.finish(),
            full: self.full.and_then(BackgroundDigest::finish),
        }
    }
}

/// SHA-256 of the first [`EDGE_LEN`] bytes as they pass; for the last ones, the file to read
/// them back from or, for a stream, the last stretches lent (held, not copied) until the end
/// says which bytes were the last [`EDGE_LEN`].
#[derive(Default)]
struct EdgeDigest {
    head: Sha256,
    head_len: usize,
    file: Option<File>,
    /// Without a file: the latest stretches, together at least `EDGE_LEN` bytes once that many
    /// were read.
    tail: VecDeque<(Chunk, usize, usize)>,
    tail_len: usize,
    total: u64,
}

impl EdgeDigest {
    fn update(&mut self, chunk: &Chunk, start: usize, len: usize) {
        let end = start.saturating_add(len);
        let Some(bytes) = chunk.bytes().get(start..end) else {
            return;
        };
        if self.head_len < EDGE_LEN {
            let take = bytes.len().min(EDGE_LEN - self.head_len);
            self.head.update(bytes.get(..take).unwrap_or_default());
            self.head_len += take;
        }
        self.total = self.total.saturating_add(len as u64);
        if self.file.is_some() {
            return;
        }
        self.tail.push_back((chunk.clone(), start, len));
        self.tail_len = self.tail_len.saturating_add(len);
        // Drop the oldest stretches that the last EDGE_LEN bytes no longer reach (the buffers
        // go back to their pool).
        while let Some(&(_, _, oldest)) = self.tail.front() {
            if self.tail_len.saturating_sub(oldest) < EDGE_LEN {
                break;
            }
            self.tail_len -= oldest;
            self.tail.pop_front();
        }
    }

    fn finish(self) -> Option<EdgeHashes> {
        let head = self.head.finalize().into();
        if let Some(file) = &self.file {
            let span = self.total.min(EDGE_LEN as u64);
            // Read back in small pieces: the end of a replay is when its memory peaks (every
            // flow still held), so no MiB buffer is added to it.
            let mut piece = [0u8; TAIL_PIECE];
            let mut tail = Sha256::new();
            let mut at = self.total.saturating_sub(span);
            while at < self.total {
                let left = self.total.saturating_sub(at);
                let n = usize::try_from(left).map_or(TAIL_PIECE, |n| n.min(TAIL_PIECE));
                let buf = piece.get_mut(..n)?;
                file.read_exact_at(buf, at).ok()?;
                tail.update(&*buf);
                at = at.saturating_add(n as u64);
            }
            return Some(EdgeHashes {
                span,
                whole: span == self.total,
                head,
                tail: tail.finalize().into(),
            });
        }
        let span = self.tail_len.min(EDGE_LEN);
        let mut skip = self.tail_len - span;
        let mut tail = Sha256::new();
        for (chunk, start, len) in &self.tail {
            let from = start.saturating_add(skip.min(*len));
            skip = skip.saturating_sub(*len);
            tail.update(
                chunk
                    .bytes()
                    .get(from..start.saturating_add(*len))
                    .unwrap_or_default(),
            );
        }
        Some(EdgeHashes {
            span: span as u64,
            whole: span as u64 == self.total,
            head,
            tail: tail.finalize().into(),
        })
    }
}

/// A hasher of either algorithm.
enum Hasher {
    Sha256(Box<Sha256>),
    Blake3(Box<blake3::Hasher>),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Hasher {
        match algorithm {
            DigestAlgorithm::Sha256 => Hasher::Sha256(Box::default()),
            DigestAlgorithm::Blake3 => Hasher::Blake3(Box::default()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    fn finish(self) -> FileDigest {
        match self {
            Hasher::Sha256(h) => FileDigest {
                algorithm: DigestAlgorithm::Sha256,
                value: h.finalize().into(),
            },
            Hasher::Blake3(h) => FileDigest {
                algorithm: DigestAlgorithm::Blake3,
                value: *h.finalize().as_bytes(),
            },
        }
    }
}

/// A running digest of a whole input on its own thread.
///
/// The bytes are hashed in the order lent and never copied or read twice. At most
/// [`HASH_QUEUE`] stretches wait: a reader faster than the hash waits for it rather than piling
/// up buffers, so memory stays bounded.
pub struct BackgroundDigest {
    sender: Option<Sender<(Chunk, usize, usize)>>,
    handle: Option<JoinHandle<FileDigest>>,
    /// Hashing on this thread when no thread could be started.
    fallback: Option<Hasher>,
}

impl BackgroundDigest {
    pub fn start(algorithm: DigestAlgorithm) -> BackgroundDigest {
        let (sender, stretches) = bounded::<(Chunk, usize, usize)>(HASH_QUEUE);
        let spawned = std::thread::Builder::new()
            .name(format!("ksensor-{}", algorithm.name()))
            .spawn(move || {
                let mut hasher = Hasher::new(algorithm);
                for (chunk, start, len) in stretches {
                    let end = start.saturating_add(len);
                    hasher.update(chunk.bytes().get(start..end).unwrap_or_default());
                }
                hasher.finish()
            });
        match spawned {
            Ok(handle) => BackgroundDigest {
                sender: Some(sender),
                handle: Some(handle),
                fallback: None,
            },
            Err(_) => BackgroundDigest {
                sender: None,
                handle: None,
                fallback: Some(Hasher::new(algorithm)),
            },
        }
    }

    /// Hashes `chunk.bytes()[start..start + len]` next.
    pub fn update(&mut self, chunk: &Chunk, start: usize, len: usize) {
        if len == 0 {
            return;
        }
        if let Some(hasher) = &mut self.fallback {
            let end = start.saturating_add(len);
            hasher.update(chunk.bytes().get(start..end).unwrap_or_default());
            return;
        }
        if let Some(sender) = &self.sender {
            // The thread only stops when the sender is dropped (or it panicked: no digest).
            let _ = sender.send((chunk.clone(), start, len));
        }
    }

    /// The digest of everything lent, once the hash has caught up. `None` if the hashing
    /// thread died.
    pub fn finish(mut self) -> Option<FileDigest> {
        if let Some(hasher) = self.fallback.take() {
            return Some(hasher.finish());
        }
        drop(self.sender.take());
        self.handle.take()?.join().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lends `data` in uneven stretches of several chunks (some empty, some from the middle
    /// of a chunk with other bytes around them).
    fn feed(digest: &mut InputDigest, data: &[u8], cuts: &[usize]) {
        let mut at = 0;
        for (i, &len) in cuts.iter().enumerate() {
            let mut buf = vec![0xAAu8; i * 10];
            buf.extend_from_slice(&data[at..at + len]);
            buf.extend_from_slice(&[0x55; 17]);
            digest.update(&Chunk::standalone(buf), i * 10, len);
            at += len;
        }
        assert_eq!(at, data.len(), "the cuts cover the data");
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn full_digests_of_lent_stretches_are_those_of_their_concatenation() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let cuts = [1usize, 0, 4095, 70_000, 3, 125_901];
        for algorithm in [DigestAlgorithm::Sha256, DigestAlgorithm::Blake3] {
            let mut digest = InputDigest::start(DigestOptions {
                full: Some(algorithm),
            });
            feed(&mut digest, &data, &cuts);
            let expected = match algorithm {
                DigestAlgorithm::Sha256 => sha(&data),
                DigestAlgorithm::Blake3 => *blake3::hash(&data).as_bytes(),
            };
            let got = digest.finish().full;
            assert_eq!(
                got,
                Some(FileDigest {
                    algorithm,
                    value: expected
                })
            );
        }
    }

    #[test]
    fn edges_are_the_first_and_last_mib() {
        let len = 3 * EDGE_LEN + 12_345;
        let data: Vec<u8> = (0..len as u32).map(|i| (i * 13 % 253) as u8).collect();
        // Stretches that straddle both edges, and one longer than an edge.
        let cuts = [
            100,
            EDGE_LEN - 200,
            300,
            EDGE_LEN + 5000,
            EDGE_LEN - 10_000,
            17_144,
            0,
            1,
        ];
        let mut digest = InputDigest::start(DigestOptions::default());
        feed(&mut digest, &data, &cuts);
        let got = digest.finish();
        assert_eq!(got.full, None, "no full digest unless asked");
        assert_eq!(
            got.edges,
            Some(EdgeHashes {
                span: EDGE_LEN as u64,
                whole: false,
                head: sha(&data[..EDGE_LEN]),
                tail: sha(&data[len - EDGE_LEN..]),
            })
        );
    }

    #[test]
    fn edges_of_a_file_read_back_are_those_of_a_stream() {
        use std::io::Write;
        for len in [0, 5000, EDGE_LEN, 2 * EDGE_LEN + 7] {
            let data: Vec<u8> = (0..len as u32).map(|i| (i * 31 % 241) as u8).collect();
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&data).unwrap();
            let mut digest = InputDigest::start_with_file(
                DigestOptions::default(),
                Some(file.try_clone().unwrap()),
            );
            feed(&mut digest, &data, &[len / 3, len - len / 3]);
            let span = len.min(EDGE_LEN);
            assert_eq!(
                digest.finish().edges,
                Some(EdgeHashes {
                    span: span as u64,
                    whole: len <= EDGE_LEN,
                    head: sha(&data[..span]),
                    tail: sha(&data[len - span..]),
                }),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn edges_of_a_small_input_are_its_sha256() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 256) as u8).collect();
        let mut digest = InputDigest::start(DigestOptions::default());
        feed(&mut digest, &data, &[10, 4000, 990]);
        let edges = digest.finish().edges;
        let whole = sha(&data);
        assert_eq!(
            edges,
            Some(EdgeHashes {
                span: 5000,
                whole: true,
                head: whole,
                tail: whole
            })
        );
        // Nothing read: the hashes of nothing.
        let empty = InputDigest::start(DigestOptions::default()).finish().edges;
        assert_eq!(
            empty,
            Some(EdgeHashes {
                span: 0,
                whole: true,
                head: sha(b""),
                tail: sha(b"")
            })
        );
    }
}
