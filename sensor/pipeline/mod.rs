//! Pipeline wiring: one reader, N workers, one collector.
//!
//! Contract: a packet source pushes packets into [`Pipeline::push`] (borrowed bytes). With one
//! worker everything runs inline on the caller's thread (no copy, no queue). With N workers the
//! caller's thread becomes the reader: it decodes just enough to find the packet's innermost
//! address pair, picks a worker by a symmetric hash of it (both directions and every fragment of
//! a flow reach the same worker), copies the packet into that worker's batch and hands full
//! batches over bounded `crossbeam-channel` queues. Batches are flushed to all workers at the
//! same sequence numbers, each with a watermark, so the [`Collector`] can apply observations in
//! capture order: results do not depend on N. Batch buffers are recycled: no allocation per
//! packet once warm.

pub mod collector;
pub mod observation;
pub mod replay;
pub mod worker;

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::capture::PacketMeta;
use crate::decode;
use crate::flow::table::worker_for;
use crate::rules::RuleSet;

pub use collector::Collector;
use observation::Observed;
pub use worker::{Worker, WorkerCounters};

/// Packets per worker batch. Large enough to amortise a channel hand-over (~100 ns) to well
/// under a nanosecond per packet, small enough to keep batches in L2 cache.
pub const BATCH_PACKETS: usize = 512;
/// Bytes per worker batch buffer before it is flushed early (jumbo frames, big snap lengths).
pub const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per worker. Bounds memory at `workers × QUEUE_DEPTH × BATCH_BYTES` and lets
/// the reader run ahead of a momentarily slow worker.
pub const QUEUE_DEPTH: usize = 8;

/// How the pipeline is set up.
#[derive(Clone)]
pub struct PipelineConfig {
    pub workers: usize,
    pub rules: Arc<RuleSet>,
    pub all_names: bool,
    pub max_flows_per_worker: usize,
}

struct BatchPacket {
    seq: u64,
    meta: PacketMeta,
    start: usize,
    len: usize,
}

/// Packets for one worker, in one buffer.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    packets: Vec<BatchPacket>,
    /// Every packet below this sequence number has been dispatched.
    watermark: u64,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
    }
}

struct WorkerResult {
    worker: usize,
    observations: Vec<Observed>,
    watermark: u64,
}

struct Threads {
    batches: Vec<Batch>,
    senders: Vec<Sender<Batch>>,
    recycled: Receiver<Batch>,
    results: Receiver<WorkerResult>,
    handles: Vec<JoinHandle<WorkerCounters>>,
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
}

fn worker_loop(
    index: usize,
    mut worker: Worker,
    batches: Receiver<Batch>,
    recycle: Sender<Batch>,
    results: Sender<WorkerResult>,
) -> WorkerCounters {
    for mut batch in batches {
        for p in &batch.packets {
            if let Some(bytes) = batch.data.get(p.start..p.start + p.len) {
                worker.process(p.seq, &p.meta, bytes);
            }
        }
        let observations = worker.take_observations();
        let watermark = batch.watermark;
        // The collector may be gone only when the run is being torn down.
        let _ = results.send(WorkerResult {
            worker: index,
            observations,
            watermark,
        });
        batch.clear();
        let _ = recycle.send(batch);
    }
    worker.take_counters()
}

impl Pipeline {
    pub fn new(config: &PipelineConfig, collector: Collector) -> Pipeline {
        let workers = config.workers.max(1);
        let make_worker = || {
            Worker::new(
                config.rules.clone(),
                config.all_names,
                config.max_flows_per_worker,
            )
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
                let worker = make_worker();
                let (recycle, results) = (recycle_tx.clone(), results_tx.clone());
                let handle = std::thread::Builder::new()
                    .name(format!("ksensor-worker-{index}"))
                    .spawn(move || worker_loop(index, worker, rx, recycle, results))
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
        }
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
                let n = t.batches.len();
                let target = match decode::decode_packet(meta.link, data) {
                    Ok(d) => worker_for(d.ip.src, d.ip.dst, n),
                    Err(_) => 0,
                };
                let full = match t.batches.get_mut(target) {
                    Some(batch) => {
                        let start = batch.data.len();
                        batch.data.extend_from_slice(data);
                        batch.packets.push(BatchPacket {
                            seq,
                            meta,
                            start,
                            len: data.len(),
                        });
                        batch.packets.len() >= BATCH_PACKETS || batch.data.len() >= BATCH_BYTES
                    }
                    None => false,
                };
                if full {
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
                    let _ = sender.send(full);
                }
                while let Ok(mut r) = t.results.try_recv() {
                    self.collector
                        .offer(r.worker, &mut r.observations, r.watermark);
                }
            }
        }
    }

    /// Waits until every packet pushed so far has been processed and its observations applied.
    pub fn drain(&mut self) {
        self.flush();
        if let Mode::Threaded(t) = &mut self.mode {
            let target = self.next_seq;
            while self.collector.low_watermark() < target {
                match t.results.recv() {
                    Ok(mut r) => self
                        .collector
                        .offer(r.worker, &mut r.observations, r.watermark),
                    Err(_) => break,
                }
            }
        }
    }

    /// Processes everything, stops the workers and returns the collector and the counters.
    pub fn finish(mut self) -> (Collector, WorkerCounters) {
        self.drain();
        let mut counters = WorkerCounters::default();
        match self.mode {
            Mode::Inline { mut worker, .. } => {
                let mut obs = worker.take_observations();
                self.collector.offer(0, &mut obs, self.next_seq);
                counters = worker.take_counters();
            }
            Mode::Threaded(t) => {
                drop(t.senders);
                for handle in t.handles {
                    if let Ok(c) = handle.join() {
                        counters.merge(&c);
                    }
                }
                for mut r in t.results.try_iter() {
                    self.collector
                        .offer(r.worker, &mut r.observations, r.watermark);
                }
            }
        }
        self.collector.finish();
        (self.collector, counters)
    }
}

/// The named caps on state, with their values, for reports (every cap that bounds memory).
pub fn named_caps() -> Vec<(&'static str, u64)> {
    vec![
        ("flows_per_worker", crate::flow::MAX_FLOWS_PER_WORKER as u64),
        ("tunnel_depth", crate::decode::MAX_TUNNEL_DEPTH as u64),
        ("inventory_hosts", crate::inventory::MAX_HOSTS as u64),
        (
            "evidence_per_host",
            crate::inventory::MAX_EVIDENCE_PER_HOST as u64,
        ),
        (
            "dns_answered_addresses",
            crate::inventory::MAX_ANSWERED_ADDRS as u64,
        ),
        ("batch_packets", BATCH_PACKETS as u64),
        ("queue_depth_batches", QUEUE_DEPTH as u64),
    ]
}
