//! Pipeline wiring: one reader, N workers, one collector.
//!
//! (A classic pcap file replayed with several workers has no reader thread: the workers read
//! it themselves, see [`walk`] and [`Pipeline::replay_file`]. Everything else, live capture,
//! pcapng and standard input, comes through the reader described here.)
//!
//! Contract: a packet source pushes packets into [`Pipeline::push`] (borrowed bytes) or
//! [`Pipeline::push_shared`] (bytes in a lent [`Chunk`]). With one worker everything runs inline
//! on the caller's thread (no copy, no queue). With N workers the caller's thread becomes the
//! reader: it decodes just enough to find the packet's innermost address pair, picks a worker by
//! a symmetric hash of it (both directions and every fragment of a flow reach the same worker),
//! adds the packet to that worker's batch (with the reading of a plain TCP segment,
//! [`decode::dispatch_reading`], so that the worker handles a segment of a bypassed flow without
//! reading its bytes) and hands full batches over bounded
//! `crossbeam-channel` queues. A packet in a chunk travels as a reference into it (the batch
//! holds the chunk: no copy, the file reader's own buffer is what the worker reads); other
//! packets (live capture) are copied into the batch's buffer. Batches are flushed to all workers at the
//! same sequence numbers, each with a watermark, so the [`Collector`] can apply observations in
//! capture order: results do not depend on N. Batch buffers and lent chunks are recycled: no
//! allocation per packet once warm.
//!
//! Memory in flight: the reader runs at most `QUEUE_DEPTH + 2` flush rounds ahead of the slowest
//! worker (queued, being processed, being filled), and a round holds at most
//! `workers × (BATCH_BYTES + one packet)` bytes, copied or lent. Lent chunks are contiguous
//! stretches of the file, so the chunks pinned by unprocessed packets span at most that much
//! plus one read buffer: about 25 MB with 2 workers, whatever the input.
//!
//! Live runs: workers publish their counters with their results at most every
//! [`COUNTER_PUBLISH_INTERVAL`] (so metrics move while capture runs; [`Pipeline::take_counters`]
//! hands out what was published since the last call, [`Pipeline::finish`] the rest: totals are
//! the same however they were split). [`Pipeline::set_rules`] swaps the rule set without a
//! restart: the new set travels to each worker with its next batch, every result carries the
//! set its worker used, and the collector remaps rule indexes of results made with an older set.

pub mod collector;
pub mod replay;
pub mod walk;
pub mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::capture::digest::DigestOptions;
use crate::capture::segmented::SegmentedPcap;
use crate::capture::{Chunk, PacketMeta};
use crate::decode;
use crate::flow::budget::ReassemblyBudget;
use crate::flow::table::worker_for_bits;
use crate::flow::{FlowGauges, WorkerCounters};
use crate::observation::Observed;
use crate::rules::RuleSet;
use walk::{FileWalk, WalkOutcome};

pub use collector::Collector;
pub use worker::Worker;

/// Packets per worker batch. Large enough to amortise a channel hand-over (~100 ns) to well
/// under a nanosecond per packet, small enough to keep batches in L2 cache.
pub const BATCH_PACKETS: usize = 512;
/// Bytes per worker batch buffer before it is flushed early (jumbo frames, big snap lengths).
pub const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per worker. Bounds memory at `workers × QUEUE_DEPTH × BATCH_BYTES` and lets
/// the reader run ahead of a momentarily slow worker.
pub const QUEUE_DEPTH: usize = 8;
/// Shortest time between two counter publications of a worker: often enough for metrics
/// scraped every few seconds, rare enough that the allocation of a fresh counter set is noise.
pub const COUNTER_PUBLISH_INTERVAL: Duration = Duration::from_millis(250);

/// Most worker threads. Each worker may hold, at its caps, about 32 MiB of flow state
/// (`flow::MAX_FLOWS_PER_WORKER` flows), 8 MiB of queued batches (`QUEUE_DEPTH` ×
/// `BATCH_BYTES`) and 4 MiB of IP fragments, about 50 MiB in all: 64 workers stay within the
/// systemd unit's `MemoryMax=4G` (`deploy/ksensor.service`) with the reassembly budget on top,
/// and more threads than that buy nothing on a capture host. `--workers 100000` is a typo.
pub const MAX_WORKERS: usize = 64;
/// Most flows per worker accepted by `--max-flows`: 16 M flows of about 500 bytes is 8 GiB for
/// one worker, more than any sensor has to give; a larger value is a typo.
pub const MAX_FLOWS_SETTING: usize = 1 << 24;
/// Largest `--reassembly-memory`: 64 GiB, more than a sensor has; a larger value is a typo.
pub const MAX_REASSEMBLY_BYTES: usize = 1 << 36;

/// Worker threads when none are asked for: the machine's cores, at most [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

/// Checks the numbers a pipeline is set up with (flags or config keys): one line naming the
/// flag when one is out of its range.
pub fn check_settings(
    workers: usize,
    max_flows: usize,
    reassembly_bytes: usize,
) -> Result<(), String> {
    use crate::flow::budget::MIN_REASSEMBLY_BYTES;
    if workers == 0 || workers > MAX_WORKERS {
        return Err(format!(
            "--workers must be 1..={MAX_WORKERS}, not {workers}"
        ));
    }
    if max_flows == 0 || max_flows > MAX_FLOWS_SETTING {
        return Err(format!(
            "--max-flows must be 1..={MAX_FLOWS_SETTING}, not {max_flows}"
        ));
    }
    if !(MIN_REASSEMBLY_BYTES..=MAX_REASSEMBLY_BYTES).contains(&reassembly_bytes) {
        return Err(format!(
            "--reassembly-memory must be {MIN_REASSEMBLY_BYTES}..={MAX_REASSEMBLY_BYTES} bytes, \
             not {reassembly_bytes}"
        ));
    }
    Ok(())
}

/// How the pipeline is set up.
#[derive(Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    pub rules: Arc<RuleSet>,
    pub all_names: bool,
    pub max_flows_per_worker: usize,
    /// Bytes all workers' stream buffers may hold together ([`ReassemblyBudget`]).
    pub reassembly_bytes: usize,
    /// DNS observations carry the message they came from ([`crate::observation::DnsFacts`]):
    /// the EVE events need it; without them the copy is not made.
    pub dns_facts: bool,
}

struct BatchPacket {
    seq: u64,
    meta: PacketMeta,
    /// Index into [`Batch::plain`] of the reader's [`decode::plain_tcp`] reading of the packet,
    /// or [`NOT_PLAIN`]. (Kept aside so that the many packets without one, such as DNS, keep
    /// a small entry: the worker reads every entry from another core's cache.)
    plain: u32,
    /// Index into [`Batch::chunks`], or [`COPIED`]: the bytes are in [`Batch::data`].
    chunk: u32,
    start: usize,
    len: usize,
}

/// [`BatchPacket::chunk`] of a packet copied into the batch.
const COPIED: u32 = u32::MAX;
/// [`BatchPacket::plain`] of a packet that is not a plain TCP segment.
const NOT_PLAIN: u32 = u32::MAX;

/// Packets for one worker: copied into one buffer, or referenced in lent chunks.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// The chunks the packets refer to, each once, in the order first used.
    chunks: Vec<Chunk>,
    packets: Vec<BatchPacket>,
    /// Readings of the batch's plain TCP segments.
    plain: Vec<decode::PlainTcp>,
    /// Packet bytes in the batch, copied or referenced (the flush threshold).
    bytes: usize,
    /// Every packet below this sequence number has been dispatched.
    watermark: u64,
    /// A new rule set the worker switches to before processing this batch.
    rules: Option<Arc<RuleSet>>,
}

impl Batch {
    /// Adds a packet: a reference when its bytes lie in `chunk`, else a copy. Returns whether
    /// the batch is full.
    fn add(
        &mut self,
        seq: u64,
        meta: PacketMeta,
        plain: Option<decode::PlainTcp>,
        data: &[u8],
        chunk: Option<&Chunk>,
    ) -> bool {
        let lent = chunk.and_then(|c| Some((c, c.offset_of(data)?)));
        let (index, start) = match lent {
            Some((c, start)) => {
                let known = self.chunks.last().is_some_and(|last| last.same(c));
                if !known {
                    self.chunks.push(c.clone());
                }
                let index = u32::try_from(self.chunks.len() - 1).unwrap_or(COPIED);
                (index, start)
            }
            None => {
                let start = self.data.len();
                self.data.extend_from_slice(data);
                (COPIED, start)
            }
        };
        self.push(seq, meta, plain, index, start, data.len());
        self.packets.len() >= BATCH_PACKETS || self.bytes >= BATCH_BYTES
    }

    /// Adds a packet whose bytes are `len` bytes at `start` of the chunk that the caller adds
    /// to [`Batch::chunks`] (as its first) once it has added the packets: a file walk still
    /// reads into the chunk while it adds them.
    fn add_lent(
        &mut self,
        seq: u64,
        meta: PacketMeta,
        plain: Option<decode::PlainTcp>,
        start: usize,
        len: usize,
    ) {
        self.push(seq, meta, plain, 0, start, len);
    }

    /// Appends a packet entry (and its plain reading) for bytes in place `chunk` (an index into
    /// [`Batch::chunks`], or [`COPIED`]).
    fn push(
        &mut self,
        seq: u64,
        meta: PacketMeta,
        plain: Option<decode::PlainTcp>,
        chunk: u32,
        start: usize,
        len: usize,
    ) {
        let plain = match plain {
            Some(reading) => {
                self.plain.push(reading);
                u32::try_from(self.plain.len() - 1).unwrap_or(NOT_PLAIN)
            }
            None => NOT_PLAIN,
        };
        self.packets.push(BatchPacket {
            seq,
            meta,
            plain,
            chunk,
            start,
            len,
        });
        self.bytes = self.bytes.saturating_add(len);
    }

    /// The bytes of one of this batch's packets.
    fn packet_bytes(&self, p: &BatchPacket) -> Option<&[u8]> {
        let end = p.start.checked_add(p.len)?;
        match p.chunk {
            COPIED => self.data.get(p.start..end),
            i => self.chunks.get(i as usize)?.bytes().get(p.start..end),
        }
    }

    fn clear(&mut self) {
        self.data.clear();
        // Dropping the references hands the chunks back to their reader's pool.
        self.chunks.clear();
        self.packets.clear();
        self.plain.clear();
        self.bytes = 0;
        self.rules = None;
    }
}

struct WorkerResult {
    worker: usize,
    observations: Vec<Observed>,
    watermark: u64,
    /// The rule set the observations' rule indexes refer to.
    rules: Arc<RuleSet>,
    /// Counters since the worker's previous publication, when one was due.
    counters: Option<Box<WorkerCounters>>,
    gauges: FlowGauges,
}

/// What a worker thread is handed.
enum Work {
    /// Packets to process.
    Batch(Batch),
    /// A file to read and process together with the other workers.
    Walk(Arc<FileWalk>),
}

struct Threads {
    batches: Vec<Batch>,
    senders: Vec<Sender<Work>>,
    recycled: Receiver<Batch>,
    results: Receiver<WorkerResult>,
    handles: Vec<JoinHandle<WorkerCounters>>,
}

impl Threads {
    /// Adds a packet to the batch of the worker its flow belongs to; says whether that batch
    /// is full (time to flush). Out of line: the reader's per-packet work, kept apart from the
    /// inline mode's.
    #[inline(never)]
    fn dispatch(&mut self, seq: u64, meta: PacketMeta, data: &[u8], chunk: Option<&Chunk>) -> bool {
        let n = self.batches.len();
        // Common shapes are read at fixed offsets; the rest take the full decode. A plain TCP
        // segment's reading travels with it: the worker need not read again.
        let (plain, pair) = decode::dispatch_reading(meta.link, data);
        let target = match pair {
            Some((src, dst)) => worker_for_bits(src, dst, n),
            None => 0,
        };
        match self.batches.get_mut(target) {
            Some(batch) => batch.add(seq, meta, plain, data, chunk),
            None => false,
        }
    }
}

enum Mode {
    Inline {
        worker: Box<Worker>,
        since_offer: usize,
    },
    Threaded(Threads),
}

/// The running pipeline.
pub struct Pipeline {
    mode: Mode,
    next_seq: u64,
    collector: Collector,
    /// Counters published by workers and not yet taken.
    published: WorkerCounters,
    /// Latest gauges of each threaded worker.
    gauges: Vec<FlowGauges>,
    /// The reassembly budget the workers share.
    budget: Arc<ReassemblyBudget>,
}

/// Applies one worker result: counters, gauges, observations.
fn absorb(
    collector: &mut Collector,
    published: &mut WorkerCounters,
    gauges: &mut [FlowGauges],
    mut r: WorkerResult,
) {
    if let Some(c) = r.counters.take() {
        published.merge(&c);
    }
    if let Some(g) = gauges.get_mut(r.worker) {
        *g = r.gauges;
    }
    collector.offer_from(&r.rules, r.worker, &mut r.observations, r.watermark);
}

/// A worker thread: its worker, and where its results and used batches go.
struct WorkerThread {
    index: usize,
    worker: Worker,
    recycle: Sender<Batch>,
    results: Sender<WorkerResult>,
    last_publish: Instant,
}

impl WorkerThread {
    /// Processes one batch and sends its result; returns the batch, emptied.
    fn process(&mut self, mut batch: Batch) -> Batch {
        let worker = &mut self.worker;
        if let Some(rules) = batch.rules.take() {
            worker.set_rules(rules);
        }
        for p in &batch.packets {
            if let Some(bytes) = batch.packet_bytes(p) {
                let plain = batch.plain.get(p.plain as usize).copied();
                worker.process_read(p.seq, &p.meta, bytes, plain);
            }
        }
        let observations = worker.take_observations();
        let counters = if self.last_publish.elapsed() >= COUNTER_PUBLISH_INTERVAL {
            self.last_publish = Instant::now();
            Some(Box::new(worker.take_counters()))
        } else {
            None
        };
        // The collector may be gone only when the run is being torn down.
        let _ = self.results.send(WorkerResult {
            worker: self.index,
            observations,
            watermark: batch.watermark,
            rules: worker.rules().clone(),
            counters,
            gauges: worker.gauges(),
        });
        batch.clear();
        batch
    }

    /// Takes part in a file walk until the file has no more segments for this worker.
    fn walk(&mut self, walk: &FileWalk) {
        /// Leaves the walk however this ends: on a panic as a failure, so that the other
        /// workers do not wait forever for this one.
        struct Leave<'a>(&'a FileWalk);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.leave(std::thread::panicking());
            }
        }
        let guard = Leave(walk);
        let mut segment = 0u64;
        while let Some(batch) = walk.take(self.index, segment) {
            let used = self.process(batch);
            walk.give_back(used);
            segment += 1;
        }
        drop(guard);
        // Wakes the thread that waits for the walk's end (it watches the result queue).
        let _ = self.results.send(WorkerResult {
            worker: self.index,
            observations: Vec::new(),
            watermark: 0,
            rules: self.worker.rules().clone(),
            counters: None,
            gauges: self.worker.gauges(),
        });
    }
}

fn worker_loop(mut thread: WorkerThread, work: Receiver<Work>) -> WorkerCounters {
    for item in work {
        match item {
            Work::Batch(batch) => {
                let used = thread.process(batch);
                let _ = thread.recycle.send(used);
            }
            Work::Walk(walk) => thread.walk(&walk),
        }
    }
    thread.worker.take_counters()
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, collector: Collector) -> Pipeline {
        let workers = config.workers.max(1);
        let budget = ReassemblyBudget::new(config.reassembly_bytes, workers);
        let make_worker = || {
            Worker::with_budget(
                config.rules.clone(),
                config.all_names,
                config.max_flows_per_worker,
                budget.worker(),
            )
            .with_dns_facts(config.dns_facts)
        };
        let mode = if workers == 1 {
            Mode::Inline {
                worker: Box::new(make_worker()),
                since_offer: 0,
            }
        } else {
            let (recycle_tx, recycled) = unbounded();
            let (results_tx, results) = unbounded();
            let mut senders = Vec::new();
            let mut handles = Vec::new();
            for index in 0..workers {
                let (tx, rx) = bounded(QUEUE_DEPTH);
                senders.push(tx);
                let thread = WorkerThread {
                    index,
                    worker: make_worker(),
                    recycle: recycle_tx.clone(),
                    results: results_tx.clone(),
                    last_publish: Instant::now(),
                };
                // Spawning fails only when the system refuses a thread at start-up (no input has
                // been read yet); the run cannot go on without its workers.
                #[allow(clippy::expect_used)]
                let handle = std::thread::Builder::new()
                    .name(format!("ksensor-worker-{index}"))
                    .spawn(move || worker_loop(thread, rx))
                    .expect("spawning a worker thread");
                handles.push(handle);
            }
            let batches = (0..workers).map(|_| Batch::default()).collect();
            Mode::Threaded(Threads {
                batches,
                senders,
                recycled,
                results,
                handles,
            })
        };
        Pipeline {
            mode,
            next_seq: 0,
            collector,
            published: WorkerCounters::default(),
            gauges: vec![FlowGauges::default(); workers],
            budget,
        }
    }

    /// The reassembly budget the workers share (its total, and what is held now).
    pub fn reassembly_budget(&self) -> &ReassemblyBudget {
        &self.budget
    }

    /// Counters published since the last call (live metrics). Whatever is not taken here is
    /// returned by [`Pipeline::finish`].
    pub fn take_counters(&mut self) -> WorkerCounters {
        match &mut self.mode {
            Mode::Inline { worker, .. } => self.published.merge(&worker.take_counters()),
            Mode::Threaded(t) => {
                while let Ok(r) = t.results.try_recv() {
                    absorb(
                        &mut self.collector,
                        &mut self.published,
                        &mut self.gauges,
                        r,
                    );
                }
            }
        }
        std::mem::take(&mut self.published)
    }

    /// Flow-table gauges summed over the workers (as of their latest results).
    pub fn flow_gauges(&self) -> FlowGauges {
        let mut sum = FlowGauges::default();
        let mut add = |g: FlowGauges| {
            sum.flows = sum.flows.saturating_add(g.flows);
            sum.fragments_in_flight = sum
                .fragments_in_flight
                .saturating_add(g.fragments_in_flight);
            sum.buffered_fragment_bytes = sum
                .buffered_fragment_bytes
                .saturating_add(g.buffered_fragment_bytes);
            sum.reassembly_bytes = sum.reassembly_bytes.saturating_add(g.reassembly_bytes);
        };
        match &self.mode {
            Mode::Inline { worker, .. } => add(worker.gauges()),
            Mode::Threaded(_) => self.gauges.iter().copied().for_each(add),
        }
        sum
    }

    /// Switches every worker and the collector to a new rule set (live reload). Observations
    /// made with the old set are remapped by rule id; flows keep their state.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        match &mut self.mode {
            Mode::Inline {
                worker,
                since_offer,
            } => {
                *since_offer = 0;
                let mut obs = worker.take_observations();
                self.collector.offer(0, &mut obs, self.next_seq);
                worker.set_rules(rules.clone());
            }
            Mode::Threaded(t) => {
                for batch in &mut t.batches {
                    batch.rules = Some(rules.clone());
                }
            }
        }
        self.collector.set_rules(rules);
    }

    pub fn collector_mut(&mut self) -> &mut Collector {
        &mut self.collector
    }

    /// Packets pushed so far.
    pub fn packets(&self) -> u64 {
        self.next_seq
    }

    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// Handles one packet.
    pub fn push(&mut self, meta: PacketMeta, data: &[u8]) {
        self.push_shared(meta, data, None);
    }

    /// Handles one packet whose bytes may lie in a lent `chunk` (see
    /// [`crate::capture::PacketSource::next_packets_shared`]): workers then read them there.
    #[inline(always)]
    pub fn push_shared(&mut self, meta: PacketMeta, data: &[u8], chunk: Option<&Chunk>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        match &mut self.mode {
            Mode::Inline {
                worker,
                since_offer,
            } => {
                worker.process(seq, &meta, data);
                *since_offer += 1;
                if *since_offer >= BATCH_PACKETS {
                    *since_offer = 0;
                    let mut obs = worker.take_observations();
                    self.collector.offer(0, &mut obs, seq + 1);
                }
            }
            Mode::Threaded(t) => {
                if t.dispatch(seq, meta, data, chunk) {
                    self.flush();
                }
            }
        }
    }

    /// Hands every staged packet to the workers and applies the results that are ready.
    pub fn flush(&mut self) {
        let watermark = self.next_seq;
        match &mut self.mode {
            Mode::Inline {
                worker,
                since_offer,
            } => {
                *since_offer = 0;
                let mut obs = worker.take_observations();
                self.collector.offer(0, &mut obs, watermark);
            }
            Mode::Threaded(t) => {
                for (batch, sender) in t.batches.iter_mut().zip(&t.senders) {
                    let fresh = t.recycled.try_recv().unwrap_or_default();
                    let mut full = std::mem::replace(batch, fresh);
                    full.watermark = watermark;
                    // A worker only goes away when it panicked; its packets are lost either way.
                    let _ = sender.send(Work::Batch(full));
                }
                while let Ok(r) = t.results.try_recv() {
                    absorb(
                        &mut self.collector,
                        &mut self.published,
                        &mut self.gauges,
                        r,
                    );
                }
            }
        }
    }

    /// Whether packets go to worker threads (more than one worker).
    pub fn is_threaded(&self) -> bool {
        matches!(self.mode, Mode::Threaded(_))
    }

    /// Replays a whole classic pcap file with every worker reading it ([`walk`]): the same
    /// results as pushing its packets one by one, without a reader thread in between. The
    /// file's packets follow those pushed before. `progress` is called with the packets
    /// processed so far while the walk runs. Needs worker threads: with one worker, the file
    /// comes back untouched.
    pub fn replay_file(
        &mut self,
        file: SegmentedPcap,
        digest: DigestOptions,
        progress: &mut dyn FnMut(u64),
    ) -> Result<WalkOutcome, SegmentedPcap> {
        // Staged packets go first: each worker handles its queue in order.
        self.flush();
        let Mode::Threaded(t) = &mut self.mode else {
            return Err(file);
        };
        let walk = Arc::new(FileWalk::new(file, t.senders.len(), self.next_seq, digest));
        for sender in &t.senders {
            // A worker that is gone (it panicked) never joins: the walk must not wait for it.
            if sender.send(Work::Walk(walk.clone())).is_err() {
                walk.leave(true);
            }
        }
        while walk.active() > 0 {
            match t.results.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => absorb(
                    &mut self.collector,
                    &mut self.published,
                    &mut self.gauges,
                    r,
                ),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            progress(self.collector.low_watermark());
        }
        let outcome = walk.finish();
        self.next_seq = self.next_seq.saturating_add(outcome.stats.packets);
        Ok(outcome)
    }

    /// Waits until every packet pushed so far has been processed and its observations applied.
    pub fn drain(&mut self) {
        self.flush();
        if let Mode::Threaded(t) = &mut self.mode {
            let target = self.next_seq;
            while self.collector.low_watermark() < target {
                match t.results.recv() {
                    Ok(r) => absorb(
                        &mut self.collector,
                        &mut self.published,
                        &mut self.gauges,
                        r,
                    ),
                    Err(_) => break,
                }
            }
        }
    }

    /// Processes everything, stops the workers and returns the collector and the counters not
    /// yet handed out by [`Pipeline::take_counters`].
    pub fn finish(mut self) -> (Collector, WorkerCounters) {
        self.drain();
        let mut counters = std::mem::take(&mut self.published);
        match self.mode {
            Mode::Inline { mut worker, .. } => {
                let mut obs = worker.take_observations();
                self.collector.offer(0, &mut obs, self.next_seq);
                counters.merge(&worker.take_counters());
            }
            Mode::Threaded(t) => {
                drop(t.senders);
                for handle in t.handles {
                    if let Ok(c) = handle.join() {
                        counters.merge(&c);
                    }
                }
                for r in t.results.try_iter() {
                    absorb(&mut self.collector, &mut counters, &mut self.gauges, r);
                }
            }
        }
        self.collector.finish();
        (self.collector, counters)
    }
}

/// The named caps on state, with their values, for reports (every cap that bounds memory).
pub fn named_caps() -> Vec<(&'static str, u64)> {
    use crate::flow::{defrag, reassembly, udp};
    vec![
        ("flows_per_worker", crate::flow::MAX_FLOWS_PER_WORKER as u64),
        (
            "flow_idle_timeout_active_secs",
            crate::flow::tcp::ACTIVE_IDLE_TIMEOUT.as_secs(),
        ),
        (
            "flow_idle_timeout_bypassed_secs",
            crate::flow::BYPASSED_IDLE_TIMEOUT.as_secs(),
        ),
        (
            "flow_idle_timeout_closed_secs",
            crate::flow::CLOSED_IDLE_TIMEOUT.as_secs(),
        ),
        (
            "quic_idle_timeout_secs",
            crate::flow::QUIC_IDLE_TIMEOUT.as_secs(),
        ),
        (
            "stream_buffered_bytes",
            reassembly::MAX_BUFFERED_BYTES as u64,
        ),
        (
            "dns_stream_buffered_bytes",
            reassembly::MAX_DNS_BUFFERED_BYTES as u64,
        ),
        (
            "stream_out_of_order_segments",
            reassembly::MAX_OOO_SEGMENTS as u64,
        ),
        (
            "ip_datagrams_in_flight",
            defrag::MAX_DATAGRAMS_IN_FLIGHT as u64,
        ),
        (
            "ip_fragments_per_datagram",
            u64::from(defrag::MAX_FRAGMENTS_PER_DATAGRAM),
        ),
        (
            "ip_fragment_buffered_bytes",
            defrag::MAX_BUFFERED_BYTES as u64,
        ),
        (
            "ip_fragment_timeout_secs",
            defrag::FRAGMENT_TIMEOUT.as_secs(),
        ),
        (
            "quic_crypto_bytes",
            crate::proto::quic::MAX_CRYPTO_BYTES as u64,
        ),
        ("dns_pending_queries", udp::MAX_PENDING_QUERIES as u64),
        (
            "dns_pointer_hops",
            crate::proto::dns::MAX_POINTER_HOPS as u64,
        ),
        (
            "tls_client_hello_bytes",
            crate::proto::tls::MAX_CLIENT_HELLO_LEN as u64,
        ),
        ("http_head_bytes", crate::proto::http::MAX_HEAD_LEN as u64),
        ("tunnel_depth", crate::decode::MAX_TUNNEL_DEPTH as u64),
        ("inventory_hosts", crate::inventory::MAX_HOSTS as u64),
        (
            "evidence_per_host",
            crate::inventory::MAX_EVIDENCE_PER_HOST as u64,
        ),
        (
            "inventory_evidence_entries",
            crate::inventory::MAX_EVIDENCE_ENTRIES as u64,
        ),
        ("inventory_facts", crate::inventory::MAX_FACTS as u64),
        (
            "inventory_names",
            crate::inventory::names::MAX_DISTINCT_NAMES as u64,
        ),
        (
            "dns_answered_addresses",
            crate::inventory::MAX_ANSWERED_ADDRS as u64,
        ),
        (
            "read_buffers_pooled",
            crate::capture::chunk::POOLED_BUFFERS as u64,
        ),
        (
            "read_buffers_queued_for_hash",
            crate::capture::digest::HASH_QUEUE as u64,
        ),
        (
            "read_segment_bytes",
            crate::capture::segmented::SEGMENT_LEN as u64,
        ),
        ("read_segments_ahead_per_worker", walk::AHEAD_PER_WORKER),
        ("batch_packets", BATCH_PACKETS as u64),
        ("queue_depth_batches", QUEUE_DEPTH as u64),
    ]
}
