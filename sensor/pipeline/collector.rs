//! The collector: applies workers' observations in capture order.
//!
//! Contract: workers hand in observations tagged with packet sequence numbers, each batch with a
//! watermark ("I have processed every packet below this number"). [`Collector::offer`] holds
//! them until every worker has passed their position, then applies them in order to the
//! inventory and the event writer. So events and reports are the same for any number of
//! workers. Pending observations are bounded by the batches in flight.
//!
//! Event lines pass the rate limits ([`crate::output::limit`]) after the inventory has taken
//! the observation: a suppressed line is counted, and the detection stays in the inventory.
//! The limits run on capture time in capture order, so they too give the same events for any
//! number of workers.
//!
//! Rule reload: observations name rules by index in the set their worker used; results made
//! with another set than the inventory's are remapped by rule id on arrival
//! ([`Collector::offer_from`]), so evidence never points at the wrong rule.

use std::io;
use std::sync::Arc;

use crate::inventory::{Inventory, RuleRemap};
use crate::observation::{Observation, Observed};
use crate::output::events::EventWriter;
use crate::output::limit::{event_source, EventLimiter, EventLimits, LimiterCounts};
use crate::rules::RuleSet;

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
    /// Decides which event lines are written (rate limits).
    limiter: EventLimiter,
    /// The last remap used for results made with an older rule set: (from, to, remap).
    remap: Option<(Arc<RuleSet>, Arc<RuleSet>, RuleRemap)>,
}

/// Translates the rule indexes of one observation; `false` when it no longer means anything.
fn remap_observation(obs: &mut Observed, remap: &RuleRemap) -> bool {
    match &mut obs.what {
        Observation::Name(s) => {
            s.rule = s.rule.and_then(|r| remap.get(r));
            true
        }
        Observation::DnsAnswer { rule, .. } => match remap.get(*rule) {
            Some(r) => {
                *rule = r;
                true
            }
            None => false,
        },
        Observation::UpdateRequest { rule, .. } | Observation::UpdatePayload { rule, .. } => {
            *rule = rule.and_then(|r| remap.get(r));
            true
        }
        Observation::OtherName(_)
        | Observation::Nameless { .. }
        | Observation::KscSession { .. }
        | Observation::KscDatagram { .. } => true,
    }
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
            limiter: EventLimiter::new(EventLimits::default()),
            remap: None,
        }
    }

    /// Limits event lines to `limits` instead of the defaults.
    pub fn with_event_limits(mut self, limits: EventLimits) -> Self {
        self.limiter = EventLimiter::new(limits);
        self
    }

    /// Event lines suppressed by the rate limits, and the limiter's table evictions.
    pub fn event_limits(&self) -> &LimiterCounts {
        &self.limiter.counts
    }

    /// Like [`Collector::offer`], for observations whose rule indexes refer to `rules`.
    pub fn offer_from(
        &mut self,
        rules: &Arc<RuleSet>,
        worker: usize,
        observations: &mut Vec<Observed>,
        watermark: u64,
    ) {
        let current = self.inventory.rules().clone();
        if !Arc::ptr_eq(rules, &current) && !observations.is_empty() {
            let fresh = match &self.remap {
                Some((from, to, _)) => !Arc::ptr_eq(from, rules) || !Arc::ptr_eq(to, &current),
                None => true,
            };
            if fresh {
                let remap = RuleRemap::new(rules, &current);
                self.remap = Some((rules.clone(), current, remap));
            }
            if let Some((_, _, remap)) = &self.remap {
                observations.retain_mut(|o| remap_observation(o, remap));
            }
        }
        self.offer(worker, observations, watermark);
    }

    /// Switches to a new rule set: the inventory and pending observations are remapped.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        let remap = RuleRemap::new(self.inventory.rules(), &rules);
        self.pending.retain_mut(|o| remap_observation(o, &remap));
        self.inventory.set_rules(rules);
        self.remap = None;
    }

    /// The event writer, if events are written (live runs reopen it on SIGHUP).
    pub fn events_mut(&mut self) -> Option<&mut EventWriter> {
        self.events.as_mut()
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
        if self.event_error.is_some() {
            return;
        }
        let Some(events) = &mut self.events else {
            return;
        };
        // Which observations are lines is the writer's to say (its format decides); whether a
        // line is written is the limiter's, for every format alike.
        if !events.is_event(obs, correlation.as_ref()) {
            return;
        }
        if !self.limiter.admit(event_source(obs), obs.ctx.ts) {
            return;
        }
        match events.write(self.inventory.rules(), obs, correlation.as_ref()) {
            Ok(()) => self.events_written = events.written,
            Err(e) => self.event_error = Some(e),
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;

    use super::*;
    use crate::observation::{Endpoint, NameSighting, NameSource, ObsOrder, PacketContext};
    use crate::proto::HostName;
    use crate::rules::RuleIdx;
    use crate::time::Timestamp;

    use crate::rules::suffix_rules_for_tests as rules;

    fn sighting(packet: u64, name: &str, rule: Option<u32>) -> Observed {
        let ep = |last: u8, port| Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
            port,
        };
        Observed {
            order: ObsOrder { packet, sub: 0 },
            ctx: PacketContext {
                ts: Timestamp::from_secs_nanos(1_000 + packet, 0),
                input: 0,
                client_mac: None,
                vlan: None,
                outer: None,
                ip_proto: 6,
            },
            what: Observation::Name(NameSighting {
                name: HostName::parse(name.as_bytes()).expect("name"),
                source: NameSource::TlsSni,
                client: ep(5, 40_000),
                server: ep(9, 443),
                rule: rule.map(RuleIdx),
                answers: Vec::new(),
                ttl: None,
                dns: None,
                qtype: None,
                dns_facts: None,
            }),
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reload_remaps_inventory_pending_and_late_results_by_rule_id() {
        let old = rules(&["a", "b"]);
        let new = rules(&["b", "c"]);
        let sink = Sink::default();
        let events = EventWriter::new(Box::new(sink.clone()), vec!["eth1".into()]);
        let mut c = Collector::new(Inventory::new(old.clone()), Some(events), 1);
        // Rule "b" is index 1 in the old set.
        c.offer_from(&old, 0, &mut vec![sighting(0, "x.b.example", Some(1))], 1);
        assert_eq!(c.inventory.per_rule.get(&RuleIdx(1)), Some(&1));

        c.set_rules(new.clone());
        // "b" is index 0 now; "a" is gone.
        assert_eq!(c.inventory.per_rule.get(&RuleIdx(0)), Some(&1));
        assert_eq!(c.inventory.per_rule.len(), 1);
        let host = c
            .inventory
            .host(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)))
            .expect("host");
        let rule_keys: Vec<_> = host.evidence().iter().map(|e| e.key.rule).collect();
        assert_eq!(rule_keys, vec![Some(RuleIdx(0))]);

        // A worker still on the old set reports "b" (old index 1) and "a" (old index 0).
        c.offer_from(&old, 0, &mut vec![sighting(1, "y.b.example", Some(1))], 2);
        c.offer_from(&old, 0, &mut vec![sighting(2, "z.a.example", Some(0))], 3);
        // A worker on the new set reports "c" (new index 1).
        c.offer_from(&new, 0, &mut vec![sighting(3, "w.c.example", Some(1))], 4);
        c.finish();
        assert_eq!(c.inventory.per_rule.get(&RuleIdx(0)), Some(&2));
        assert_eq!(c.inventory.per_rule.get(&RuleIdx(1)), Some(&1));
        assert_eq!(c.inventory.counters.detections, 3);

        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf-8");
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json");
                format!("{} {}", v["name"], v["rule"]["id"])
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                "\"x.b.example\" \"b\"",
                "\"y.b.example\" \"b\"",
                "\"z.a.example\" null",
                "\"w.c.example\" \"c\"",
            ]
        );
    }

    #[test]
    fn reload_remaps_pending_observations() {
        let old = rules(&["a", "b"]);
        let new = rules(&["b"]);
        // Two workers: worker 1 has not caught up, so worker 0's observation stays pending.
        let mut c = Collector::new(Inventory::new(old.clone()), None, 2);
        c.offer_from(&old, 0, &mut vec![sighting(0, "x.b.example", Some(1))], 5);
        assert_eq!(c.inventory.counters.detections, 0);
        c.set_rules(new);
        c.offer(1, &mut Vec::new(), 5);
        assert_eq!(c.inventory.per_rule.get(&RuleIdx(0)), Some(&1));
    }

    #[test]
    fn reload_remaps_the_rule_of_update_payloads() {
        let old = rules(&["a", "b"]);
        let new = rules(&["b"]);
        let mut c = Collector::new(Inventory::new(new.clone()), None, 1);
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
        let payload = |packet: u64, host: &str, rule: u32| {
            let mut obs = sighting(packet, host, None);
            obs.what = Observation::UpdatePayload {
                client: Endpoint {
                    ip: client,
                    port: 40_000,
                },
                server: Endpoint {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)),
                    port: 80,
                },
                magic: crate::proto::update::UpdateMagic::Klzf,
                host: Some(HostName::parse(host.as_bytes()).expect("name")),
                rule: Some(RuleIdx(rule)),
                path: None,
                kaspersky_space: false,
                origin: None,
            };
            obs
        };
        // Made with the old set: "b" is index 1 there and 0 in the new set; "a" is gone.
        let mut late = vec![payload(0, "x.b.example", 1), payload(1, "y.a.example", 0)];
        c.offer_from(&old, 0, &mut late, 2);
        c.finish();
        let host = c.inventory.host(client).expect("host");
        let mut rule_keys: Vec<_> = host.evidence().iter().map(|e| e.key.rule).collect();
        rule_keys.sort();
        assert_eq!(rule_keys, vec![None, Some(RuleIdx(0))]);
    }

    #[test]
    fn rule_remap_maps_by_id_and_drops_gone_rules() {
        let remap = RuleRemap::new(&rules(&["a", "b", "c"]), &rules(&["c", "a"]));
        assert_eq!(remap.get(RuleIdx(0)), Some(RuleIdx(1)));
        assert_eq!(remap.get(RuleIdx(1)), None);
        assert_eq!(remap.get(RuleIdx(2)), Some(RuleIdx(0)));
        assert_eq!(remap.get(RuleIdx(99)), None);
    }
}
