//! SHA-256 of a capture computed beside the reader, from the reader's own buffers.
//!
//! Contract: [`BackgroundDigest::update`] lends a stretch of a read buffer ([`Chunk`]) to a
//! hashing thread; the bytes are hashed in the order lent and never copied or read twice. A
//! lent chunk is never written again (see [`Chunk`]), so the reader goes on in other buffers
//! while the hash catches up. At most [`HASH_QUEUE`] stretches wait: a reader faster than
//! SHA-256 (about 1.5 GB/s per core with SHA-NI) waits for the hash rather than piling up
//! buffers, so memory stays bounded. [`BackgroundDigest::finish`] returns the digest of
//! everything lent.

use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Sender};
use sha2::{Digest, Sha256};

use super::Chunk;

/// Stretches of read buffers waiting for the hash (4 MiB of the stream reader's 256 KiB reads,
/// 16 MiB of the workers' 1 MiB segments).
pub const HASH_QUEUE: usize = 16;

/// A running SHA-256 on its own thread.
pub struct BackgroundDigest {
    sender: Option<Sender<(Chunk, usize, usize)>>,
    handle: Option<JoinHandle<[u8; 32]>>,
    /// Hashing on this thread when no thread could be started.
    fallback: Option<Sha256>,
}

impl BackgroundDigest {
    pub fn start() -> BackgroundDigest {
        let (sender, stretches) = bounded::<(Chunk, usize, usize)>(HASH_QUEUE);
        let spawned = std::thread::Builder::new()
            .name("ksensor-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for (chunk, start, len) in stretches {
                    let end = start.saturating_add(len);
                    hasher.update(chunk.bytes().get(start..end).unwrap_or_default());
                }
                hasher.finalize().into()
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
                fallback: Some(Sha256::new()),
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
    pub fn finish(mut self) -> Option<[u8; 32]> {
        if let Some(hasher) = self.fallback.take() {
            return Some(hasher.finalize().into());
        }
        drop(self.sender.take());
        self.handle.take()?.join().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_lent_stretches_is_the_digest_of_their_concatenation() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut digest = BackgroundDigest::start();
        // Uneven stretches of several chunks, some empty, some from the middle of a chunk.
        let mut at = 0;
        for (i, len) in [1usize, 0, 4095, 70_000, 3, 125_901]
            .into_iter()
            .enumerate()
        {
            let mut buf = vec![0xAAu8; i * 10];
            buf.extend_from_slice(&data[at..at + len]);
            buf.extend_from_slice(&[0x55; 17]);
            digest.update(&Chunk::standalone(buf), i * 10, len);
            at += len;
        }
        assert_eq!(at, data.len());
        let expected: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(digest.finish(), Some(expected));
    }
}
