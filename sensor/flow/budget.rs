//! The reassembly byte budget: one total for the buffered stream bytes of every worker.
//!
//! Contract: a [`ReassemblyBudget`] is created once per pipeline with a total in bytes (the
//! `--reassembly-memory` flag, default [`DEFAULT_REASSEMBLY_BYTES`]) and hands each worker a
//! [`WorkerBudget`]. A stream reassembler takes bytes from its worker's share before its buffer
//! grows and gives them back when the buffer shrinks or is freed; so the bytes that all TCP
//! stream buffers hold together (their capacity, what the allocator really gave them) never
//! exceed the total, however many workers run and however many flows each tracks. A take that
//! would pass the total is refused: the caller counts it (`budget_exhausted`) and stops buffering
//! that stream.
//!
//! QUIC flows pay too: the Initial state of a flow still waiting for its ClientHello holds a
//! CRYPTO stream buffer and a packet scratch (`proto::quic::InitialState::held_bytes`), each
//! up to 16 KiB, which one small datagram can make it allocate (a CRYPTO frame at a high
//! offset). Their [`Charge`] is settled after each datagram; a refusal drops the flow's state
//! at once (counted `budget_exhausted` with the stream refusals). So beyond the total, at most
//! one flow's Initial buffers per worker are held uncharged, for the time of one datagram.
//!
//! Defence in depth: with several workers, one worker may hold at most half of the total, so a
//! flood that hashes onto one worker (one attacker address and one target: the dispatch hash is
//! by address pair) leaves the other half to the other workers. The per-stream window
//! (`reassembly::MAX_BUFFERED_BYTES`; a stream carrying DNS over TCP,
//! `reassembly::MAX_DNS_BUFFERED_BYTES`, one whole 64 KiB message) and the per-worker flow cap
//! stay as they were.
//!
//! Cost: one relaxed atomic add (and, when a take fails, a subtract) on a counter shared by the
//! workers per buffer growth or release; a stream whose segments arrive in order and whole never
//! grows a buffer and never touches it. Buffers grow geometrically (see
//! `reassembly::StreamReassembler`), so a stream makes a handful of takes however it is cut.
//!
//! When the total is exhausted, results depend on which worker took the last bytes first, so a
//! replay that hits it may differ from run to run and with the number of workers; the counted
//! refusals say that it happened (a replay that never hits it is unaffected).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Default total for all stream buffers: 256 MiB. The systemd unit (`deploy/ksensor.service`)
/// caps the sensor at `MemoryMax=4G`; this leaves well over 3 GiB for the flow tables (about
/// 32 MiB per worker at `MAX_FLOWS_PER_WORKER`), batch queues, defragmentation and the
/// inventory, with up to the 64 workers `--workers` accepts. It holds 16 000 streams at the
/// full 16 KiB window at once (4 000 DNS-over-TCP streams each holding a whole 64 KiB
/// message); real traffic buffers only the few ClientHellos, request heads and DNS messages
/// that span segments, for one round trip each.
pub const DEFAULT_REASSEMBLY_BYTES: usize = 256 << 20;

/// Smallest total accepted, 1 MiB (64 full stream windows): anything smaller is a typo
/// (`--reassembly-memory 64`), refused rather than turning reassembly off.
pub const MIN_REASSEMBLY_BYTES: usize = 1 << 20;

/// The shared total; see the module docs.
#[derive(Debug)]
pub struct ReassemblyBudget {
    total: usize,
    used: AtomicUsize,
    /// Most one worker may hold.
    per_worker: usize,
}

impl ReassemblyBudget {
    /// A budget of `total` bytes for `workers` workers.
    pub fn new(total: usize, workers: usize) -> Arc<ReassemblyBudget> {
        let per_worker = if workers > 1 { total / 2 } else { total };
        Arc::new(ReassemblyBudget {
            total,
            used: AtomicUsize::new(0),
            per_worker,
        })
    }

    /// A worker's handle on the budget.
    pub fn worker(self: &Arc<Self>) -> WorkerBudget {
        WorkerBudget(Arc::new(WorkerShare {
            shared: Arc::clone(self),
            held: AtomicUsize::new(0),
        }))
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes held by all workers now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) <= self.total {
            return true;
        }
        self.used.fetch_sub(n, Ordering::Relaxed);
        false
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One worker's share: what it holds, and the shared total.
#[derive(Debug)]
pub struct WorkerShare {
    shared: Arc<ReassemblyBudget>,
    /// Written only by the worker's own thread (its flows live and die there); an atomic only
    /// so that the handle can be sent to that thread.
    held: AtomicUsize,
}

/// A worker's handle, cloned into a stream's reassembler (or a QUIC flow's [`Charge`]) when it
/// first buffers (not per packet, not per flow).
#[derive(Clone, Debug)]
pub struct WorkerBudget(Arc<WorkerShare>);

impl WorkerBudget {
    /// A budget of its own for one stand-alone worker (tests, benches, fuzzing).
    pub fn standalone(total: usize) -> WorkerBudget {
        ReassemblyBudget::new(total, 1).worker()
    }

    /// Takes `n` bytes; `false` (nothing taken) when the worker's share or the total would be
    /// passed.
    pub fn take(&self, n: usize) -> bool {
        let share = &self.0;
        let held = share.held.load(Ordering::Relaxed);
        let Some(after) = held.checked_add(n) else {
            return false;
        };
        if after > share.shared.per_worker || !share.shared.take(n) {
            return false;
        }
        share.held.store(after, Ordering::Relaxed);
        true
    }

    /// Takes `n` bytes even past the limits: only for the few bytes an allocator may add to a
    /// capacity that was paid for (see `reassembly::StreamReassembler`), so that what is
    /// counted stays what is held.
    pub fn take_anyway(&self, n: usize) {
        let share = &self.0;
        let held = share.held.load(Ordering::Relaxed);
        share.held.store(held.saturating_add(n), Ordering::Relaxed);
        share.shared.used.fetch_add(n, Ordering::Relaxed);
    }

    /// Gives back `n` bytes taken earlier.
    pub fn give_back(&self, n: usize) {
        let share = &self.0;
        let held = share.held.load(Ordering::Relaxed);
        share.held.store(held.saturating_sub(n), Ordering::Relaxed);
        share.shared.give_back(n.min(held));
    }

    /// Bytes this worker holds now.
    pub fn held(&self) -> usize {
        self.0.held.load(Ordering::Relaxed)
    }

    /// The budget all workers share.
    pub fn shared(&self) -> &Arc<ReassemblyBudget> {
        &self.0.shared
    }
}

/// What one holder whose buffers grow outside a stream reassembler (a QUIC flow's Initial
/// state: CRYPTO stream and packet scratch) has taken from its worker's budget. The holder
/// settles the charge to what it holds after each change; the charge is given back whole when
/// it is dropped (the flow finished, bypassed, expired or evicted).
#[derive(Debug, Default)]
pub struct Charge {
    /// The worker's budget, kept from the first take (so that drop can give it back).
    budget: Option<WorkerBudget>,
    held: usize,
}

impl Charge {
    /// Makes the charge `now` bytes: takes the growth from `budget`, or gives back the
    /// shrink. `false` when the budget refuses the growth: nothing was taken, and the holder
    /// must free what it holds beyond its charge (drop it).
    pub fn settle(&mut self, budget: &WorkerBudget, now: usize) -> bool {
        if now > self.held {
            let budget = self.budget.get_or_insert_with(|| budget.clone());
            if !budget.take(now - self.held) {
                return false;
            }
        } else if let Some(budget) = &self.budget {
            budget.give_back(self.held - now);
        }
        self.held = now;
        true
    }

    /// Bytes charged now.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.give_back(self.held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_stop_at_the_total_and_come_back() {
        let b = ReassemblyBudget::new(1000, 1);
        let w = b.worker();
        assert!(w.take(600));
        assert!(!w.take(401), "over the total");
        assert_eq!(b.used(), 600, "a refused take leaves nothing behind");
        assert!(w.take(400));
        assert_eq!(b.used(), 1000);
        w.give_back(1000);
        assert_eq!((b.used(), w.held()), (0, 0));
    }

    #[test]
    fn one_of_several_workers_holds_at_most_half() {
        let b = ReassemblyBudget::new(1000, 4);
        let (w1, w2, w3) = (b.worker(), b.worker(), b.worker());
        assert!(w1.take(500));
        assert!(!w1.take(1), "one worker is at its half");
        assert!(w2.take(300));
        assert!(!w3.take(201), "the total is shared");
        assert!(w3.take(200));
        assert_eq!(b.used(), 1000);
    }

    #[test]
    fn the_total_holds_with_threads_racing() {
        let b = ReassemblyBudget::new(10_000, 1);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let w = b.worker();
                std::thread::spawn(move || {
                    let mut took = 0;
                    for _ in 0..10_000 {
                        if w.take(7) {
                            took += 7;
                        }
                    }
                    took
                })
            })
            .collect();
        let took: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(took <= 10_000 && took > 10_000 - 7, "took {took}");
        assert_eq!(b.used(), took);
    }

    #[test]
    fn a_charge_follows_what_is_held_and_goes_back_when_dropped() {
        let b = ReassemblyBudget::new(1000, 1);
        let w = b.worker();
        let mut c = Charge::default();
        assert!(c.settle(&w, 600));
        assert_eq!((b.used(), c.held()), (600, 600));
        assert!(!c.settle(&w, 1100), "past the total");
        assert_eq!((b.used(), c.held()), (600, 600), "a refusal takes nothing");
        assert!(c.settle(&w, 200));
        assert_eq!(b.used(), 200);
        let mut other = Charge::default();
        assert!(other.settle(&w, 800));
        assert!(!other.settle(&w, 801));
        drop(c);
        assert_eq!(b.used(), 800);
        drop(other);
        assert_eq!((b.used(), w.held()), (0, 0));
    }

    #[test]
    fn giving_back_more_than_held_cannot_underflow_the_total() {
        let b = ReassemblyBudget::new(100, 1);
        let (w1, w2) = (b.worker(), b.worker());
        assert!(w1.take(50));
        assert!(w2.take(10));
        w2.give_back(60);
        assert_eq!(b.used(), 50);
    }
}
