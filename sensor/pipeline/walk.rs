//! Replaying one classic pcap file with every worker reading it: no reader thread in between.
//!
//! Why: with one reader thread, the reader's `read()` copies and per-packet dispatch are a
//! serial stage that the workers wait on, and on a 2-core machine the reader and two workers
//! share two cores. Here the workers themselves are the readers. The file is cut into
//! [`SEGMENT_LEN`](crate::capture::segmented::SEGMENT_LEN) segments ([`SegmentedPcap`]), and
//! each segment is *prepared* by whichever worker is free:
//! 1. it reads the segment (`pread`, at the same time as other workers read other segments);
//! 2. it waits for the [`PcapCursor`] that the walk of the previous segment left (walks run one
//!    at a time, in segment order) and walks the segment's records; in the same pass it picks
//!    each packet's worker with the same symmetric flow hash and fixed-offset reading as the
//!    reader thread ([`decode::dispatch_reading`]) and adds the packet to that worker's
//!    [`Batch`] for the segment (one pass: the bytes are read once, while in cache);
//! 3. it hands the cursor on and publishes the batches.
//!
//! Every worker processes, segment after segment in file order, its own batch of each. So each
//! worker sees exactly the packets, in exactly the order, with exactly the sequence numbers the
//! reader thread would have given it: results and counters are the same (tested against the
//! reader thread on every committed capture, at several segment sizes, and on damaged files).
//!
//! Bounds: segments are prepared at most [`AHEAD_PER_WORKER`] × workers beyond the slowest
//! worker's position, so memory stays a few segment buffers per worker whatever the file.
//!
//! Termination: a walk that meets damage stops the file there (the packets before it are
//! processed, like the stream reader's); a worker that fails (panics) abandons the walk, so
//! the others stop instead of waiting for a segment that will never come.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::Batch;
use crate::capture::chunk::ChunkPool;
use crate::capture::digest::{DigestOptions, InputDigest, InputDigests};
use crate::capture::file::FileStats;
use crate::capture::segmented::{PcapCursor, SegmentRecord, SegmentedPcap};
use crate::capture::CaptureError;
use crate::capture::Chunk;
use crate::decode;
use crate::flow::table::worker_for_bits;

/// Segments prepared ahead of the slowest worker, per worker: enough that a worker finds its
/// next segment ready while another one is being read, few enough to keep memory small.
pub const AHEAD_PER_WORKER: u64 = 3;

/// What the walk of a file yields besides the workers' results.
pub struct WalkOutcome {
    /// The file's statistics (`bytes_read` included).
    pub stats: FileStats,
    /// Damage or a read error that ended the file early.
    pub error: Option<CaptureError>,
    /// The file's hashes (`capture::digest`): none when part of it could not be read.
    pub digests: InputDigests,
}

/// What the walks hand along, one walk at a time: the cursor and the running hashes (fed in
/// segment order).
struct Chain {
    cursor: PcapCursor,
    digest: Option<InputDigest>,
    /// Bytes of the file read by the walks so far (its header included).
    read_to: u64,
}

struct WalkState {
    /// The next segment to prepare.
    next_claim: u64,
    /// The chain, while no walk holds it; it is at the start of segment `chain_at`.
    chain: Option<Chain>,
    chain_at: u64,
    /// Segments from here on are not processed (the file ended or is damaged before them).
    stop_at: u64,
    error: Option<CaptureError>,
    /// Prepared segments not yet taken by every worker: one batch per worker.
    prepared: BTreeMap<u64, Vec<Option<Batch>>>,
    /// Per worker, the next segment it will take.
    progress: Vec<u64>,
    /// Workers still in the walk.
    active: usize,
}

/// One file being walked by all workers. Shared by reference count between them and the
/// thread that started the walk.
pub struct FileWalk {
    file: SegmentedPcap,
    workers: usize,
    /// Sequence number of the file's first packet in the whole run.
    seq_base: u64,
    pool: ChunkPool,
    state: Mutex<WalkState>,
    changed: Condvar,
    /// Emptied batches, for the next segments (their vectors keep their capacity).
    spare: Mutex<Vec<Batch>>,
}

impl FileWalk {
    /// A walk of `file` for `workers` workers; its packets are numbered from `seq_base`.
    pub fn new(
        file: SegmentedPcap,
        workers: usize,
        seq_base: u64,
        digest: DigestOptions,
    ) -> FileWalk {
        let workers = workers.max(1);
        let mut digest = InputDigest::start_with_file(digest, file.try_clone_file());
        let header = Chunk::standalone(file.header_bytes().to_vec());
        digest.update(&header, 0, header.bytes().len());
        let chain = Chain {
            cursor: file.start_cursor(),
            digest: Some(digest),
            read_to: file.header_bytes().len() as u64,
        };
        let state = WalkState {
            next_claim: 0,
            chain: Some(chain),
            chain_at: 0,
            stop_at: file.segments(),
            error: None,
            prepared: BTreeMap::new(),
            progress: vec![0; workers],
            active: workers,
        };
        FileWalk {
            file,
            workers,
            seq_base,
            pool: ChunkPool::default(),
            state: Mutex::new(state),
            changed: Condvar::new(),
            spare: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WalkState> {
        // A poisoned lock means a worker panicked while holding it: the state is still
        // consistent (every update is a few field writes), and the walk is abandoned anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, WalkState>) -> MutexGuard<'a, WalkState> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    /// Worker `me`'s batch of segment `k`, preparing segments while it waits; `None` once the
    /// file has no segment `k` to process.
    pub(super) fn take(&self, me: usize, k: u64) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if k >= state.stop_at {
                return None;
            }
            if let Some(batches) = state.prepared.get_mut(&k) {
                let batch = batches.get_mut(me).and_then(Option::take);
                if batches.iter().all(Option::is_none) {
                    state.prepared.remove(&k);
                }
                if let Some(p) = state.progress.get_mut(me) {
                    *p = k.saturating_add(1);
                }
                self.changed.notify_all();
                return Some(batch.unwrap_or_default());
            }
            let slowest = state.progress.iter().copied().min().unwrap_or(0);
            let ahead = AHEAD_PER_WORKER.saturating_mul(self.workers as u64);
            let claim = state.next_claim;
            if claim < state.stop_at && claim < slowest.saturating_add(ahead) {
                state.next_claim = claim.saturating_add(1);
                drop(state);
                self.prepare(claim);
                state = self.lock();
                continue;
            }
            state = self.wait(state);
        }
    }

    /// Reads, walks and splits segment `k` into one batch per worker.
    fn prepare(&self, k: u64) {
        let read = self.file.read(k, &self.pool);
        // Wait for the chain: the walk of segment k starts where that of k - 1 ended.
        let mut state = self.lock();
        while state.chain_at != k && k < state.stop_at {
            state = self.wait(state);
        }
        if k >= state.stop_at {
            return;
        }
        let Some(mut chain) = state.chain.take() else {
            return;
        };
        drop(state);
        // One pass over the segment finds its records and splits them by flow: the bytes are
        // read once, while they are still in this core's cache.
        let mut batches = self.spare_batches();
        let (segment, error) = match read {
            Ok(mut segment) => {
                let mut split = |r: SegmentRecord, data: &[u8]| {
                    let (plain, pair) = decode::dispatch_reading(r.meta.link, data);
                    let target =
                        pair.map_or(0, |(src, dst)| worker_for_bits(src, dst, self.workers));
                    if let Some(batch) = batches.get_mut(target) {
                        let seq = self.seq_base.saturating_add(r.seq);
                        batch.add_lent(seq, r.meta, plain, r.start, r.len);
                    }
                };
                let walked = self.file.walk(&mut segment, &mut chain.cursor, &mut split);
                chain.read_to = chain.read_to.max(segment.file_end());
                if let Some(digest) = &mut chain.digest {
                    digest.update(segment.chunk(), 0, segment.len());
                }
                (Some(segment), walked.err())
            }
            Err(e) => (None, Some(e)),
        };
        let end_seq = self.seq_base.saturating_add(chain.cursor.stats.packets);
        let mut state = self.lock();
        if let Some(e) = error {
            if matches!(e, CaptureError::Io(_)) {
                // Part of the file is unreadable: no hash describes the whole file.
                chain.digest = None;
            }
            state.error = Some(e);
            state.stop_at = state.stop_at.min(k.saturating_add(1));
        }
        state.chain = Some(chain);
        state.chain_at = k.saturating_add(1);
        self.changed.notify_all();
        drop(state);
        // The packets before damage in this segment are processed too. The batches refer to
        // the segment's buffer only now that the walk (which may still read into it) is done.
        let prepared = batches
            .into_iter()
            .map(|mut batch| {
                if let Some(segment) = segment.as_ref().filter(|_| !batch.packets.is_empty()) {
                    batch.chunks.push(segment.chunk().clone());
                }
                batch.watermark = end_seq;
                Some(batch)
            })
            .collect();
        let mut state = self.lock();
        state.prepared.insert(k, prepared);
        self.changed.notify_all();
    }

    /// An empty batch per worker, reused when possible.
    fn spare_batches(&self) -> Vec<Batch> {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        (0..self.workers)
            .map(|_| spare.pop().unwrap_or_default())
            .collect()
    }

    /// Takes back a processed batch (emptied) for reuse. At most the batches of the segments in
    /// flight are kept.
    pub(super) fn give_back(&self, batch: Batch) {
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        let cap = (AHEAD_PER_WORKER as usize + 2).saturating_mul(self.workers * self.workers);
        if spare.len() < cap {
            spare.push(batch);
        }
    }

    /// Worker `me` is done with the walk (it saw the last segment, or it is failing).
    pub fn leave(&self, failed: bool) {
        let mut state = self.lock();
        if failed {
            // Nobody waits for segments this worker would have prepared or processed.
            state.stop_at = 0;
        }
        state.active = state.active.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Workers still walking.
    pub fn active(&self) -> usize {
        self.lock().active
    }

    /// Waits until every worker has left, then finishes the hash and returns what the file
    /// yielded. Hashing the rest of a damaged file happens here.
    pub fn finish(&self) -> WalkOutcome {
        let mut state = self.lock();
        while state.active > 0 {
            state = self.wait(state);
        }
        let error = state.error;
        let chain = state.chain.take();
        drop(state);
        let Some(mut chain) = chain else {
            // A failed worker held the chain: nothing about the file can be vouched for.
            return WalkOutcome {
                stats: FileStats::default(),
                error: Some(CaptureError::Io(std::io::ErrorKind::Other)),
                digests: InputDigests::default(),
            };
        };
        if let Some(mut digest) = chain.digest.take() {
            let mut rest_ok = true;
            if error.is_some() {
                let from = chain.read_to;
                let mut feed = |c: &Chunk, len: usize| digest.update(c, 0, len);
                rest_ok = self.file.read_rest(from, &self.pool, &mut feed).is_ok();
                if rest_ok {
                    chain.read_to = self.file.len();
                }
            }
            chain.digest = rest_ok.then_some(digest);
        }
        let mut stats = chain.cursor.stats;
        stats.bytes_read = chain.read_to;
        WalkOutcome {
            stats,
            error,
            digests: chain.digest.map(InputDigest::finish).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::Path;
    use std::sync::Arc;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::capture::digest::{DigestAlgorithm, EdgeHashes, FileDigest, EDGE_LEN};
    use crate::capture::file::{FileOptions, FileSource, MAX_PACKET_LEN};
    use crate::capture::segmented::{committed_classic_pcaps, SEGMENT_LEN};
    use crate::capture::SourceStatus;
    use crate::inventory::Inventory;
    use crate::output::events::EventWriter;
    use crate::pipeline::{Collector, Pipeline, PipelineConfig};
    use crate::rules::RuleSet;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a run leaves: the events written, the counters, the error that ended the file.
    #[derive(Debug, PartialEq)]
    struct Run {
        events: String,
        counters: String,
        error: Option<CaptureError>,
    }

    fn pipeline(workers: usize, sink: &Sink) -> Pipeline {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let rules = Arc::new(RuleSet::load(&[root.join("rules")]).unwrap());
        let events = EventWriter::new(Box::new(sink.clone()), vec!["f.pcap".into()]);
        let collector = Collector::new(Inventory::new(rules.clone()), Some(events), workers);
        let config = PipelineConfig {
            workers,
            rules,
            all_names: true,
            max_flows_per_worker: 1 << 16,
            reassembly_bytes: crate::flow::budget::DEFAULT_REASSEMBLY_BYTES,
            dns_facts: false,
        };
        Pipeline::new(&config, collector)
    }

    fn finish(p: Pipeline, sink: Sink, error: Option<CaptureError>) -> Run {
        let (mut collector, counters) = p.finish();
        collector.flush();
        let events = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        Run {
            events,
            counters: format!("{counters:?}"),
            error,
        }
    }

    /// Pushes a file's packets through the reader thread; returns the error that ended it.
    fn push_file(p: &mut Pipeline, path: &Path) -> Option<CaptureError> {
        let options = FileOptions {
            digest: DigestOptions::default(),
        };
        let mut src = FileSource::open_with(path, 0, options).unwrap();
        loop {
            match src.read_lent(64, &mut |m, d, c| p.push_shared(m, d, c)) {
                Ok(SourceStatus::End) => return None,
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    }

    /// The file through the reader thread.
    fn by_reader(path: &Path, workers: usize) -> Run {
        let sink = Sink::default();
        let mut p = pipeline(workers, &sink);
        let error = push_file(&mut p, path);
        finish(p, sink, error)
    }

    /// The file walked by the workers, cut every `segment_len` bytes; also its hashes.
    fn by_walk(path: &Path, workers: usize, segment_len: usize) -> (Run, InputDigests) {
        let sink = Sink::default();
        let mut p = pipeline(workers, &sink);
        let file = SegmentedPcap::open(path, 0)
            .unwrap()
            .with_segment_len(segment_len);
        let options = DigestOptions {
            full: Some(DigestAlgorithm::Sha256),
        };
        let Ok(outcome) = p.replay_file(file, options, &mut |_| {}) else {
            panic!("a threaded pipeline takes the file");
        };
        (finish(p, sink, outcome.error), outcome.digests)
    }

    /// The whole file's SHA-256 and the SHA-256 of its first and last MiB.
    fn digests_of(path: &Path) -> InputDigests {
        let bytes = std::fs::read(path).unwrap();
        let span = bytes.len().min(EDGE_LEN);
        InputDigests {
            edges: Some(EdgeHashes {
                span: span as u64,
                whole: span == bytes.len(),
                head: Sha256::digest(&bytes[..span]).into(),
                tail: Sha256::digest(&bytes[bytes.len() - span..]).into(),
            }),
            full: Some(FileDigest {
                algorithm: DigestAlgorithm::Sha256,
                value: Sha256::digest(&bytes).into(),
            }),
        }
    }

    #[test]
    fn walked_files_give_the_results_of_the_reader_thread() {
        let mut checked = 0;
        for path in committed_classic_pcaps() {
            for workers in [2, 3] {
                let expected = by_reader(&path, workers);
                for len in [100, 1500, SEGMENT_LEN] {
                    let (got, digests) = by_walk(&path, workers, len);
                    let what = format!("{}: {workers} workers, every {len} bytes", path.display());
                    assert_eq!(got, expected, "{what}");
                    assert_eq!(digests, digests_of(&path), "{what}");
                }
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} classic pcap captures");
    }

    #[test]
    fn a_damaged_file_is_processed_up_to_the_damage_and_hashed_whole() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let mut bytes = std::fs::read(root.join("staged-network.pcap")).unwrap();
        let whole = bytes.len();
        // A record header claiming more than a packet may hold, then more bytes.
        let mut bad = Vec::new();
        for v in [1u32, 0, MAX_PACKET_LEN as u32 + 1, 100] {
            bad.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&bad);
        bytes.extend(vec![7u8; 30_000]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.pcap");
        std::fs::write(&path, &bytes).unwrap();
        let expected = by_reader(&path, 2);
        assert!(
            matches!(expected.error, Some(CaptureError::Corrupt { offset, .. }) if offset == whole as u64),
            "{:?}",
            expected.error
        );
        assert!(
            !expected.events.is_empty(),
            "the packets before the damage count"
        );
        for len in [100, 1500, SEGMENT_LEN] {
            let (got, digests) = by_walk(&path, 2, len);
            assert_eq!(got, expected, "every {len} bytes");
            assert_eq!(digests, digests_of(&path), "every {len} bytes");
        }
    }

    #[test]
    fn a_walk_follows_the_packets_pushed_before_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let (first, second) = (root.join("dns-udp.pcap"), root.join("staged-network.pcap"));
        let sink = Sink::default();
        let mut p = pipeline(2, &sink);
        assert_eq!(push_file(&mut p, &first), None);
        assert_eq!(push_file(&mut p, &second), None);
        let expected = finish(p, sink, None);
        let sink = Sink::default();
        let mut p = pipeline(2, &sink);
        assert_eq!(push_file(&mut p, &first), None);
        let before = p.packets();
        let file = SegmentedPcap::open(&second, 0)
            .unwrap()
            .with_segment_len(700);
        let Ok(outcome) = p.replay_file(file, DigestOptions::default(), &mut |_| {}) else {
            panic!("a threaded pipeline takes the file");
        };
        assert_eq!(p.packets(), before + outcome.stats.packets);
        assert_eq!(finish(p, sink, None), expected);
    }

    #[test]
    fn a_failing_worker_ends_the_walk_for_the_others() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
        let file = SegmentedPcap::open(&root.join("staged-network.pcap"), 0)
            .unwrap()
            .with_segment_len(100);
        assert!(file.segments() > 10);
        let walk = FileWalk::new(file, 2, 0, DigestOptions::default());
        assert!(walk.take(0, 0).is_some());
        walk.leave(true);
        assert!(
            walk.take(0, 1).is_none(),
            "the walk goes on without worker 1"
        );
        walk.leave(false);
        assert_eq!(walk.active(), 0);
    }
}
