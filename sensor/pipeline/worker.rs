//! A worker: decode → flow → parsers → rule matching for the packets of its flows.
//!
//! Contract: [`Worker::process`] takes a packet by reference (no copy) with its global sequence
//! number; observations accumulate in the worker until [`Worker::take_observations`]. Counters
//! are worker-local and merged by the caller; nothing is shared on the per-packet path except
//! the read-only rule set.

use std::sync::Arc;

use crate::capture::PacketMeta;
use crate::decode::{self, DecodeSkip};
use crate::flow::emit::{Emitter, NameCounters};
use crate::flow::{FlowCounters, FlowEngine, FlowGauges};
use crate::pipeline::observation::{Observed, PacketContext};
use crate::reason::ReasonCounts;
use crate::rules::RuleSet;

/// Packet-level counters of one worker (or of all, merged).
#[derive(Clone, Debug, Default)]
pub struct PacketCounters {
    pub packets: u64,
    pub bytes: u64,
    /// Packets decoded down to a transport header (or an IP fragment).
    pub decoded: u64,
    pub decode_skips: ReasonCounts<DecodeSkip>,
    /// Packets cut short by the capture's snap length.
    pub truncated: u64,
}

impl PacketCounters {
    pub fn merge(&mut self, o: &PacketCounters) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.decoded += o.decoded;
        self.decode_skips.merge(&o.decode_skips);
        self.truncated += o.truncated;
    }
}

/// Everything a worker counts.
#[derive(Clone, Debug, Default)]
pub struct WorkerCounters {
    pub packets: PacketCounters,
    pub flow: FlowCounters,
    pub names: NameCounters,
}

impl WorkerCounters {
    pub fn merge(&mut self, o: &WorkerCounters) {
        self.packets.merge(&o.packets);
        self.flow.merge(&o.flow);
        self.names.merge(&o.names);
    }
}

/// One worker's state.
pub struct Worker {
    rules: Arc<RuleSet>,
    all_names: bool,
    flow: FlowEngine,
    packets: PacketCounters,
    names: NameCounters,
    out: Vec<Observed>,
}

impl Worker {
    pub fn new(rules: Arc<RuleSet>, all_names: bool, max_flows: usize) -> Self {
        Worker {
            rules,
            all_names,
            flow: FlowEngine::new(max_flows),
            packets: PacketCounters::default(),
            names: NameCounters::default(),
            out: Vec::new(),
        }
    }

    /// Swaps in a new rule set (live reload); flows keep their state.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        self.rules = rules;
        self.flow.rules_changed();
    }

    pub fn rules(&self) -> &Arc<RuleSet> {
        &self.rules
    }

    /// Handles packet number `seq` (global, 0-based).
    pub fn process(&mut self, seq: u64, meta: &PacketMeta, data: &[u8]) {
        self.packets.packets += 1;
        self.packets.bytes += u64::from(meta.orig_len);
        self.flow.tick(meta.ts);
        let decoded = match decode::decode_packet(meta.link, data) {
            Ok(d) => d,
            Err(reason) => {
                self.packets.decode_skips.incr(reason);
                return;
            }
        };
        self.packets.decoded += 1;
        if decoded.truncated {
            self.packets.truncated += 1;
        }
        let outer = decoded
            .outer
            .first()
            .copied()
            .flatten()
            .filter(|_| decoded.outer_len > 0)
            .map(|hop| (hop.src, hop.dst));
        let ctx = PacketContext {
            ts: meta.ts,
            input: meta.input,
            client_mac: None,
            vlan: decoded.link.vlan,
            outer,
        };
        let mut emit = Emitter::new(
            &self.rules,
            self.all_names,
            seq,
            ctx,
            &mut self.out,
            &mut self.names,
            decoded.ip.src,
            decoded.link.src_mac,
            decoded.link.dst_mac,
        );
        self.flow.on_packet(&decoded, meta.ts, &mut emit);
    }

    /// Observations since the last call, in packet order.
    pub fn take_observations(&mut self) -> Vec<Observed> {
        std::mem::take(&mut self.out)
    }

    /// Moves the observations into `into` (keeps this worker's buffer capacity).
    pub fn drain_observations_into(&mut self, into: &mut Vec<Observed>) {
        into.append(&mut self.out);
    }

    /// Counters since the last call.
    pub fn take_counters(&mut self) -> WorkerCounters {
        WorkerCounters {
            packets: std::mem::take(&mut self.packets),
            flow: self.flow.take_counters(),
            names: std::mem::take(&mut self.names),
        }
    }

    pub fn gauges(&self) -> FlowGauges {
        self.flow.gauges()
    }
}
