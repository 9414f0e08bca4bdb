//! The collector: applies workers' observations in capture order.
//!
//! Contract: workers hand in observations tagged with packet sequence numbers, each batch with a
//! watermark ("I have processed every packet below this number"). [`Collector::offer`] holds
//! them until every worker has passed their position, then applies them in order to the
//! inventory and the event writer. So events and reports are the same for any number of
//! workers. Pending observations are bounded by the batches in flight.

use std::io;

use crate::inventory::Inventory;
use crate::output::events::EventWriter;
use crate::pipeline::observation::{Observation, Observed};

/// Applies observations to the inventory and writes events.
pub struct Collector {
    pub inventory: Inventory,
    events: Option<EventWriter>,
    /// Per worker: every packet with a lower sequence number has been processed.
    watermarks: Vec<u64>,
    pending: Vec<Observed>,
    /// First event-writing error (writing stops; the report still comes).
    pub event_error: Option<io::Error>,
    /// Events written.
    pub events_written: u64,
}

impl Collector {
    pub fn new(inventory: Inventory, events: Option<EventWriter>, workers: usize) -> Self {
        Collector {
            inventory,
            events,
            watermarks: vec![0; workers.max(1)],
            pending: Vec::new(),
            event_error: None,
            events_written: 0,
        }
    }

    /// Takes a worker's observations (in its packet order) and its new watermark, and applies
    /// everything that is now below every worker's watermark.
    pub fn offer(&mut self, worker: usize, observations: &mut Vec<Observed>, watermark: u64) {
        self.pending.append(observations);
        if let Some(w) = self.watermarks.get_mut(worker) {
            *w = (*w).max(watermark);
        }
        let low = self.watermarks.iter().copied().min().unwrap_or(0);
        if self.pending.iter().any(|o| o.order.packet < low) {
            self.pending.sort_by_key(|o| o.order);
            let ready = self.pending.partition_point(|o| o.order.packet < low);
            let batch: Vec<Observed> = self.pending.drain(..ready).collect();
            for obs in &batch {
                self.apply(obs);
            }
        }
    }

    /// Every packet below this sequence number has been processed by every worker.
    pub fn low_watermark(&self) -> u64 {
        self.watermarks.iter().copied().min().unwrap_or(0)
    }

    /// Applies one observation directly (single-worker runs, already in order).
    pub fn apply(&mut self, obs: &Observed) {
        let correlation = self.inventory.apply(obs);
        let wants_event = match &obs.what {
            Observation::Nameless { .. } => correlation.is_some(),
            Observation::DnsAnswer { .. } | Observation::KscContact { .. } => false,
            Observation::Name(_) | Observation::UpdatePayload { .. } => true,
        };
        if !wants_event || self.event_error.is_some() {
            return;
        }
        if let Some(events) = &mut self.events {
            match events.write(self.inventory.rules(), obs, correlation.as_ref()) {
                Ok(()) => self.events_written = events.written,
                Err(e) => self.event_error = Some(e),
            }
        }
    }

    /// Applies everything still pending (end of input) and flushes the events.
    pub fn finish(&mut self) {
        self.pending.sort_by_key(|o| o.order);
        let batch: Vec<Observed> = std::mem::take(&mut self.pending);
        for obs in &batch {
            self.apply(obs);
        }
        self.flush();
    }

    pub fn flush(&mut self) {
        if let Some(events) = &mut self.events {
            if let Err(e) = events.flush() {
                if self.event_error.is_none() {
                    self.event_error = Some(e);
                }
            }
        }
    }
}
