//! A worker: decode → flow → parsers → rule matching for the packets of its flows.
//!
//! Contract: [`Worker::process`] takes a packet by reference (no copy) with its global sequence
//! number; observations accumulate in the worker until [`Worker::take_observations`]. Counters
//! are worker-local and merged by the caller; nothing is shared on the per-packet path except
//! the read-only rule set. Fast path: a plain TCP segment ([`decode::plain_tcp`]: fixed offsets,
//! no options, nothing cut) of a bypassed flow, a SYN, an ACK of a flow being parsed, or a
//! segment inside an HTTP body costs that reading and one flow lookup, with the same outcome and
//! counters as the full decode (`FlowEngine::on_plain_tcp`; tested on every committed capture).

use std::sync::Arc;

use crate::capture::PacketMeta;
use crate::decode::{self, PacketCounters};
use crate::flow::budget::WorkerBudget;
use crate::flow::emit::{Emitter, NameCounters};
use crate::flow::{FlowEngine, FlowGauges, WorkerCounters};
use crate::observation::{Observed, PacketContext};
use crate::rules::RuleSet;

/// One worker's state.
pub struct Worker {
    rules: Arc<RuleSet>,
    all_names: bool,
    /// DNS observations carry their message's facts (EVE events).
    dns_facts: bool,
    flow: FlowEngine,
    packets: PacketCounters,
    names: NameCounters,
    out: Vec<Observed>,
    /// Tests turn the fast path off to compare it with the full path.
    #[cfg(test)]
    full_path_only: bool,
    /// Packets the fast path took (tests check it is exercised).
    #[cfg(test)]
    fast_path_packets: u64,
}

impl Worker {
    /// Makes DNS observations carry the facts of their message (`observation::DnsFacts`).
    pub fn with_dns_facts(mut self, on: bool) -> Self {
        self.dns_facts = on;
        self
    }

    /// A worker with a reassembly budget of its own (see [`FlowEngine::new`]).
    pub fn new(rules: Arc<RuleSet>, all_names: bool, max_flows: usize) -> Self {
        Self::with_flow(rules, all_names, FlowEngine::new(max_flows))
    }

    /// A worker whose stream buffers are paid for from `budget` (a pipeline's shared budget).
    pub fn with_budget(
        rules: Arc<RuleSet>,
        all_names: bool,
        max_flows: usize,
        budget: WorkerBudget,
    ) -> Self {
        Self::with_flow(rules, all_names, FlowEngine::with_budget(max_flows, budget))
    }

    fn with_flow(rules: Arc<RuleSet>, all_names: bool, flow: FlowEngine) -> Self {
        Worker {
            rules,
            all_names,
            dns_facts: false,
            flow,
            packets: PacketCounters::default(),
            names: NameCounters::default(),
            out: Vec::new(),
            #[cfg(test)]
            full_path_only: false,
            #[cfg(test)]
            fast_path_packets: 0,
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
    #[inline]
    pub fn process(&mut self, seq: u64, meta: &PacketMeta, data: &[u8]) {
        #[cfg(test)]
        let plain = if self.full_path_only {
            None
        } else {
            decode::plain_tcp(meta.link, data)
        };
        #[cfg(not(test))]
        let plain = decode::plain_tcp(meta.link, data);
        self.process_read(seq, meta, data, plain);
    }

    /// [`Worker::process`] of a packet whose [`decode::plain_tcp`] reading the caller already
    /// made (the multi-worker reader reads those bytes to pick the worker): a plain TCP segment
    /// of a bypassed flow is then handled without touching the packet's bytes at all.
    #[inline]
    pub fn process_read(
        &mut self,
        seq: u64,
        meta: &PacketMeta,
        data: &[u8],
        plain: Option<decode::PlainTcp>,
    ) {
        self.packets.packets += 1;
        self.packets.bytes += u64::from(meta.orig_len);
        self.flow.tick(meta.ts);
        // The fast path: a plain TCP segment of a bypassed flow (or a SYN, an ACK or body
        // bytes of a flow being parsed) is done after one lookup; the rest take the full path.
        if let Some(seg) = plain {
            if self.flow.on_plain_tcp(&seg, meta.ts) {
                self.packets.decoded += 1;
                #[cfg(test)]
                {
                    self.fast_path_packets += 1;
                }
                return;
            }
        }
        self.process_decoded(seq, meta, data);
    }

    /// The full path: decodes the packet and hands it to the flow engine. Out of line, so that
    /// a packet the fast path takes does not pay for this path's registers and stack.
    #[inline(never)]
    fn process_decoded(&mut self, seq: u64, meta: &PacketMeta, data: &[u8]) {
        // Borrowed where it was built: moving the ~250-byte view out of the result costs a
        // copy per packet.
        let result = decode::decode_packet(meta.link, data);
        let decoded = match &result {
            Ok(d) => d,
            Err(reason) => {
                self.packets.decode_skips.incr(*reason);
                if *reason == decode::DecodeSkip::UnsupportedLinkType {
                    self.packets.unsupported_link_types.add(meta.link.0, 1);
                }
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
            ip_proto: decoded.ip.proto,
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
        emit.dns_facts = self.dns_facts;
        self.flow.on_packet(decoded, meta.ts, &mut emit);
    }

    /// Observations since the last call, in packet order.
    pub fn take_observations(&mut self) -> Vec<Observed> {
        std::mem::take(&mut self.out)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::capture::{PacketSource, SourceStatus};

    /// An Ethernet/IPv4/UDP packet from 10.0.0.2:40000 to 10.0.0.1:53 asking for `name` (A),
    /// with its UDP checksum right or off by one.
    fn dns_query(name: &str, checksum_right: bool) -> Vec<u8> {
        let mut dns = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            dns.push(label.len() as u8);
            dns.extend_from_slice(label.as_bytes());
        }
        dns.extend_from_slice(&[0, 0, 1, 0, 1]);
        let (src, dst) = ([10, 0, 0, 2], [10, 0, 0, 1]);
        let udp_len = (8 + dns.len()) as u16;
        let mut udp = Vec::new();
        udp.extend_from_slice(&40000u16.to_be_bytes());
        udp.extend_from_slice(&53u16.to_be_bytes());
        udp.extend_from_slice(&udp_len.to_be_bytes());
        udp.extend_from_slice(&[0, 0]);
        udp.extend_from_slice(&dns);
        // RFC 768: ones' complement sum over the pseudo-header and the datagram.
        let mut words: Vec<u8> = [&src[..], &dst[..], &[0, 17], &udp_len.to_be_bytes()].concat();
        words.extend_from_slice(&udp);
        if words.len() % 2 == 1 {
            words.push(0);
        }
        let mut sum: u32 = words
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let checksum = !(sum as u16);
        let checksum = if checksum_right {
            checksum
        } else {
            checksum ^ 1
        };
        udp[6..8].copy_from_slice(&checksum.to_be_bytes());
        let total = (20 + udp.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&udp);
        frame
    }

    /// The checksum is computed for packets that gave evidence, and only for them: a wrong
    /// one is counted there, and a packet that gave nothing is not looked at. A name kept only
    /// because every name is wanted is no evidence: `--all-names` does not change the count.
    #[test]
    fn bad_checksums_are_counted_on_packets_that_gave_evidence() {
        let rules = crate::rules::suffix_rules_for_tests(&["upd"]);
        let count_with = |all_names: bool, packets: &[Vec<u8>]| {
            let mut worker = Worker::new(rules.clone(), all_names, 1 << 10);
            for (seq, data) in packets.iter().enumerate() {
                let meta = PacketMeta {
                    ts: crate::time::Timestamp::from_secs_nanos(10 + seq as u64, 0),
                    link: crate::capture::LinkType::ETHERNET,
                    orig_len: data.len() as u32,
                    input: 0,
                };
                worker.process(seq as u64, &meta, data);
            }
            let observed = worker.take_observations().len();
            (observed, worker.take_counters().flow.bad_checksums)
        };
        let count = |packets: &[Vec<u8>]| count_with(false, packets);
        assert_eq!(count(&[dns_query("s1.upd.example", true)]), (1, 0));
        assert_eq!(count(&[dns_query("s1.upd.example", false)]), (1, 1));
        assert_eq!(count(&[dns_query("www.other.example", false)]), (0, 0));
        assert_eq!(
            count(&[
                dns_query("www.other.example", false),
                dns_query("s2.upd.example", false),
                dns_query("s3.upd.example", true),
            ]),
            (2, 1)
        );
        // With every name wanted, the unmatched name is reported, not counted.
        assert_eq!(
            count_with(true, &[dns_query("www.other.example", false)]),
            (1, 0)
        );
        assert_eq!(
            count_with(true, &[dns_query("s1.upd.example", false)]),
            (1, 1)
        );
    }

    /// Every committed capture through two workers, one with the fast path and one without:
    /// the same observations and the same counters, packet for packet of input.
    #[test]
    fn fast_path_changes_nothing_on_every_committed_capture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let rules = Arc::new(RuleSet::load(&[root.join("rules")]).unwrap());
        let mut entries: Vec<_> = std::fs::read_dir(root.join("pcaps"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
            .collect();
        entries.sort();
        let mut bypassed = 0;
        let mut fast_taken = 0;
        let mut fast_acks = 0;
        let mut fast_bodies = 0;
        let mut fast_syns = 0;
        for path in entries {
            let mut fast = Worker::new(rules.clone(), true, 1 << 16);
            let mut full = Worker::new(rules.clone(), true, 1 << 16);
            full.full_path_only = true;
            let mut src = FileSource::open(&path, 0).unwrap();
            let mut seq = 0;
            while let Ok(SourceStatus::More) = src.next_packets(64, &mut |meta, data| {
                fast.process(seq, &meta, data);
                full.process(seq, &meta, data);
                seq += 1;
            }) {}
            let name = path.display();
            assert_eq!(
                format!("{:?}", fast.gauges()),
                format!("{:?}", full.gauges()),
                "{name}"
            );
            fast_taken += fast.fast_path_packets;
            fast_acks += fast.flow.fast_acks;
            fast_bodies += fast.flow.fast_bodies;
            fast_syns += fast.flow.fast_syns;
            assert_eq!(full.fast_path_packets, 0);
            assert_eq!(fast.take_observations(), full.take_observations(), "{name}");
            let (a, b) = (fast.take_counters(), full.take_counters());
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{name}");
            bypassed += a.flow.bypassed_packets;
        }
        assert!(
            bypassed > 100,
            "{bypassed} bypassed packets: the fast path was not exercised"
        );
        // Empty segments of flows being parsed and of unknown flows take it too.
        assert!(
            fast_acks > 100 && fast_taken > fast_acks,
            "{fast_taken} fast-path packets, {fast_acks} of them not of bypassed flows"
        );
        // And segments inside HTTP bodies (downloads in the committed captures).
        assert!(
            fast_bodies > 10,
            "{fast_bodies} HTTP body segments skipped on the fast path"
        );
        // And SYNs and SYN-ACKs, which open nearly every flow.
        assert!(fast_syns > 100, "{fast_syns} SYNs on the fast path");
        eprintln!(
            "fast path: {fast_taken} packets, {fast_acks} of flows being parsed, \
             {fast_bodies} body segments, {fast_syns} SYNs"
        );
    }
}
