//! rules::RuleSet::parse on arbitrary text.
//!
//! Properties: an error names a line within the text and is one line of text; a loaded set has
//! every rule's and network's line within the text; every `exact:` name looks up to its own rule
//! (or to nothing when the rule is an `ignore` rule), since exact names are unique and beat
//! suffixes and patterns, and the same name under a `_` label matches nothing (not a host
//! name); every prefix's first and last address look up to a prefix that contains them and is
//! at least as long (longest prefix wins).
#![no_main]

use std::net::IpAddr;

use ksensor::proto::HostName;
use ksensor::rules::{Category, IpPrefix, NameMatch, RuleIdx, RuleSet};
use libfuzzer_sys::fuzz_target;

/// The last address of a prefix.
fn last(prefix: &IpPrefix) -> IpAddr {
    let host_bits = |width: u32| width.saturating_sub(u32::from(prefix.prefix_len()));
    match prefix.addr() {
        IpAddr::V4(a) => {
            let mask = 1u32.checked_shl(host_bits(32)).map_or(u32::MAX, |b| b - 1);
            IpAddr::V4((u32::from(a) | mask).into())
        }
        IpAddr::V6(a) => {
            let mask = 1u128
                .checked_shl(host_bits(128))
                .map_or(u128::MAX, |b| b - 1);
            IpAddr::V6((u128::from(a) | mask).into())
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = u32::try_from(text.lines().count().max(1) + 1).unwrap_or(u32::MAX);
    match RuleSet::parse("fuzz.toml", &text) {
        Err(e) => {
            if let Some(line) = e.line {
                assert!(
                    line >= 1 && line <= lines,
                    "error line {line} of {lines}: {e}"
                );
            }
            assert!(!e.to_string().contains('\n'), "multi-line error: {e:?}");
        }
        Ok(set) => {
            for (i, rule) in set.rules().iter().enumerate() {
                assert!(
                    rule.line >= 1 && rule.line <= lines,
                    "rule line {}",
                    rule.line
                );
                let idx = RuleIdx(u32::try_from(i).expect("rule count"));
                for m in &rule.matches {
                    let NameMatch::Exact(name) = m else { continue };
                    let host = HostName::parse(name.as_bytes()).expect("exact name validated");
                    let want = (rule.category != Category::Ignore).then_some(idx);
                    assert_eq!(set.lookup(&host), want, "exact {host} of rule {}", rule.id);
                    if let Ok(owner) = HostName::parse(format!("_x.{name}").as_bytes()) {
                        assert_eq!(set.lookup(&owner), None, "{owner} is not a host name");
                    }
                }
            }
            for network in set.networks() {
                assert!(
                    network.line >= 1 && network.line <= lines,
                    "network line {}",
                    network.line
                );
                for prefix in &network.prefixes {
                    for addr in [prefix.addr(), last(prefix)] {
                        let (idx, hit) = set.explain_network(addr).expect("own prefix covers it");
                        assert!(hit.contains(addr), "{hit} does not hold {addr}");
                        assert!(
                            hit.prefix_len() >= prefix.prefix_len(),
                            "{hit} shorter than {prefix}"
                        );
                        assert_eq!(set.network_for(addr), Some(idx));
                    }
                }
            }
        }
    }
});
