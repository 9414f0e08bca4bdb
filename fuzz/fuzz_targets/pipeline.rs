//! The whole per-packet path: arbitrary bytes as packets of several link types through
//! pipeline::Worker::process (decode, defrag, flow table, reassembly, every parser, rules).
//!
//! Input: records `[link][time step][len u16][bytes]`. A worker with a small flow table (so
//! eviction runs) and the bundled rules processes them in order.
//!
//! Properties: no panic; every packet is either decoded or counted under a decode skip
//! (`packets == decoded + skipped`); the flow and fragment gauges stay within their caps;
//! observations refer to packets already seen, in order, carry valid host names and rule indexes
//! of the loaded set, and DNS facts within their cap; every observation renders as an EVE
//! record (`output::eve`) that is valid JSON.
#![no_main]

use std::sync::{Arc, OnceLock};

use ksensor::capture::PacketMeta;
use ksensor::flow::defrag::MAX_DATAGRAMS_IN_FLIGHT;
use ksensor::observation::{DnsFacts, DnsName, Observation, MAX_ANSWER_ADDRS, MAX_DNS_FACT_RECORDS};
use ksensor::output::eve::{EveRenderer, EveSource};
use ksensor::pipeline::Worker;
use ksensor::proto::HostName;
use ksensor::rules::RuleSet;
use ksensor::time::Timestamp;
use ksensor_fuzz::{link_type, Cursor};
use libfuzzer_sys::fuzz_target;

/// Packets per input.
const MAX_PACKETS: usize = 256;
/// A small table, so that flow eviction under pressure is exercised.
const MAX_FLOWS: usize = 16;

fn rules() -> Arc<RuleSet> {
    static RULES: OnceLock<Arc<RuleSet>> = OnceLock::new();
    RULES
        .get_or_init(|| Arc::new(RuleSet::load(&[RuleSet::bundled_dir()]).expect("bundled rules")))
        .clone()
}

fn valid(name: &HostName) {
    assert_eq!(HostName::parse(name.as_bytes()), Ok(*name));
}

fn valid_facts(facts: Option<&DnsFacts>) {
    let Some(f) = facts else { return };
    assert!(f.answers.len() <= MAX_DNS_FACT_RECORDS, "DNS facts over their cap");
    if let Some(q) = &f.question {
        match &q.name {
            DnsName::Host(name) => valid(name),
            // Presentation form (RFC 1035 §5.1): printable ASCII, every other byte escaped.
            DnsName::Other(text) => assert!(
                text.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "a question name not in presentation form: {text:?}"
            ),
        }
    }
    for r in &f.answers {
        valid(&r.owner);
    }
}

fuzz_target!(|data: &[u8]| {
    let rules = rules();
    let mut worker = Worker::new(rules.clone(), true, MAX_FLOWS).with_dns_facts(true);
    let mut cursor = Cursor::new(data);
    let mut secs = 1_700_000_000u64;
    let mut seq = 0u64;
    while !cursor.is_empty() && (seq as usize) < MAX_PACKETS {
        let link = link_type(cursor.u8());
        let step = cursor.u8();
        // Mostly milliseconds apart; sometimes past the flow and fragment timeouts.
        secs += match step {
            0..=249 => 0,
            _ => u64::from(step - 249) * 20,
        };
        let len = usize::from(cursor.u16() % 2048);
        let packet = cursor.take(len);
        let meta = PacketMeta {
            ts: Timestamp::from_secs_nanos(secs, u64::from(step) * 1_000_000),
            link,
            orig_len: u32::try_from(packet.len()).unwrap_or(u32::MAX),
            input: 0,
        };
        worker.process(seq, &meta, packet);
        seq += 1;
        let gauges = worker.gauges();
        assert!(gauges.flows <= MAX_FLOWS, "flows over the table size");
        assert!(gauges.fragments_in_flight <= MAX_DATAGRAMS_IN_FLIGHT);
    }
    let counters = worker.take_counters();
    let p = &counters.packets;
    assert_eq!(p.packets, seq);
    assert_eq!(p.packets, p.decoded + p.decode_skips.total(), "packets != decoded + skipped");
    assert!(p.truncated <= p.decoded);

    let inputs = vec!["fuzz".to_string()];
    let eve = EveRenderer {
        rules: &rules,
        inputs: &inputs,
        source: EveSource::Files,
    };
    let mut last = 0u64;
    for obs in worker.take_observations() {
        if let Some(record) = eve.record(&obs, None) {
            let line = serde_json::to_string(&record).expect("EVE record serialises");
            let _: serde_json::Value = serde_json::from_str(&line).expect("EVE record is JSON");
        }
        assert!(obs.order.packet < seq, "observation of a packet not yet seen");
        assert!(obs.order.packet >= last, "observations out of order");
        last = obs.order.packet;
        match &obs.what {
            Observation::Name(s) => {
                valid(&s.name);
                assert!(s.answers.len() <= MAX_ANSWER_ADDRS);
                valid_facts(s.dns_facts.as_deref());
                if let Some(rule) = s.rule {
                    assert!(rules.get(rule).is_some(), "rule index from another set");
                }
            }
            Observation::DnsAnswer { name, rule, answers, dns_facts, .. } => {
                valid(name);
                valid_facts(dns_facts.as_deref());
                assert!(rules.get(*rule).is_some());
                assert!(answers.len() <= MAX_ANSWER_ADDRS);
            }
            Observation::UpdatePayload { host: Some(h), .. } => valid(h),
            _ => {}
        }
    }
});
