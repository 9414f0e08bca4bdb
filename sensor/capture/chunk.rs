//! Shared read buffers: how a file reader lends packet bytes to other threads without copying.
//!
//! Contract: a [`Chunk`] is a reference-counted read buffer. Its owner (the file reader) writes
//! into it only while it holds the sole reference ([`Chunk::get_mut`]); a consumer that keeps a
//! clone (a worker batch) sees bytes that never change. When the reader needs to read on while
//! a chunk is still lent out, it takes another buffer from its [`ChunkPool`] and copies only the
//! partial record at the end across. When the last reference goes, the buffer goes back to the
//! pool it came from, so buffers are allocated only while the number in flight grows; the pool
//! keeps at most [`POOLED_BUFFERS`] idle ones and hands out the most recently returned first
//! (its memory is the likeliest to still be in cache when the next `read()` fills it).

use std::sync::{Arc, Mutex};

/// Idle buffers a pool keeps for reuse. The pipeline keeps at most a few dozen chunks in flight
/// (workers × queued batches, each batch spanning one or two chunks); beyond this, returned
/// buffers are freed rather than hoarded.
pub const POOLED_BUFFERS: usize = 64;

/// Idle buffers, most recently returned last.
type Idle = Arc<Mutex<Vec<Vec<u8>>>>;

/// A read buffer and the pool it returns to.
struct ChunkBuf {
    data: Vec<u8>,
    home: Option<Idle>,
}

impl Drop for ChunkBuf {
    fn drop(&mut self) {
        let Some(home) = &self.home else { return };
        // A full pool (or a poisoned lock): the buffer is simply freed.
        if let Ok(mut idle) = home.lock() {
            if idle.len() < POOLED_BUFFERS {
                idle.push(std::mem::take(&mut self.data));
            }
        }
    }
}

/// A read buffer that can be lent out: cloning it is one reference-count increment.
#[derive(Clone)]
pub struct Chunk(Arc<ChunkBuf>);

impl Chunk {
    /// A chunk not tied to any pool (tests, one-off buffers).
    pub fn standalone(data: Vec<u8>) -> Chunk {
        Chunk(Arc::new(ChunkBuf { data, home: None }))
    }

    /// The whole buffer.
    pub fn bytes(&self) -> &[u8] {
        &self.0.data
    }

    /// The buffer for writing, while nobody else holds this chunk.
    pub fn get_mut(&mut self) -> Option<&mut Vec<u8>> {
        Arc::get_mut(&mut self.0).map(|b| &mut b.data)
    }

    /// Where `part` starts in this chunk, when it lies entirely inside it.
    pub fn offset_of(&self, part: &[u8]) -> Option<usize> {
        let base = self.0.data.as_ptr() as usize;
        let start = (part.as_ptr() as usize).checked_sub(base)?;
        let end = start.checked_add(part.len())?;
        (end <= self.0.data.len()).then_some(start)
    }

    /// Whether both are the same buffer.
    pub fn same(&self, other: &Chunk) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Idle buffers of one reader, shared with the buffers lent out (their way home).
#[derive(Default)]
pub struct ChunkPool {
    idle: Idle,
}

impl ChunkPool {
    /// A chunk of at least `len` bytes (contents unspecified), reused when one is idle.
    pub fn take(&self, len: usize) -> Chunk {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut data = reused.unwrap_or_default();
        if data.len() < len {
            data.resize(len, 0);
        }
        Chunk(Arc::new(ChunkBuf {
            data,
            home: Some(self.idle.clone()),
        }))
    }

    /// Idle buffers waiting for reuse.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writable_only_while_unshared() {
        let pool = ChunkPool::default();
        let mut chunk = pool.take(16);
        assert!(chunk.get_mut().is_some());
        let lent = chunk.clone();
        assert!(chunk.get_mut().is_none());
        drop(lent);
        assert!(chunk.get_mut().is_some());
    }

    #[test]
    fn last_reference_returns_the_buffer_to_its_pool() {
        let pool = ChunkPool::default();
        let mut chunk = pool.take(8);
        if let Some(b) = chunk.get_mut() {
            b.copy_from_slice(b"abcdefgh");
        }
        let lent = chunk.clone();
        drop(chunk);
        assert_eq!(pool.idle(), 0);
        drop(lent);
        assert_eq!(pool.idle(), 1);
        // Reused: same capacity, not reallocated to the smaller request.
        let again = pool.take(4);
        assert_eq!(again.bytes(), b"abcdefgh");
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn pool_keeps_at_most_its_cap() {
        let pool = ChunkPool::default();
        let chunks: Vec<Chunk> = (0..POOLED_BUFFERS + 5).map(|_| pool.take(1)).collect();
        drop(chunks);
        assert_eq!(pool.idle(), POOLED_BUFFERS);
    }

    #[test]
    fn offset_of_accepts_only_slices_inside() {
        let chunk = Chunk::standalone(vec![1, 2, 3, 4, 5, 6]);
        let inner = chunk.bytes().get(2..5).unwrap();
        assert_eq!(chunk.offset_of(inner), Some(2));
        assert_eq!(chunk.offset_of(chunk.bytes()), Some(0));
        let other = [1u8, 2, 3];
        assert_eq!(chunk.offset_of(&other), None);
        let bigger = Chunk::standalone(vec![0; 64]);
        assert_eq!(chunk.offset_of(bigger.bytes()), None);
        assert!(chunk.same(&chunk.clone()));
        assert!(!chunk.same(&bigger));
    }
}
