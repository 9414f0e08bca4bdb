//! rules::RuleSet::parse on arbitrary text.
//!
//! Properties: an error names a line within the text and is one line of text; a loaded set has
//! every rule's line within the text, and every `exact:` name looks up to its own rule (or to
//! nothing when the rule is an `ignore` rule), since exact names are unique and beat suffixes
//! and patterns.
#![no_main]

use ksensor::proto::HostName;
use ksensor::rules::{Category, NameMatch, RuleIdx, RuleSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = u32::try_from(text.lines().count().max(1) + 1).unwrap_or(u32::MAX);
    match RuleSet::parse("fuzz.toml", &text) {
        Err(e) => {
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= lines, "error line {line} of {lines}: {e}");
            }
            assert!(!e.to_string().contains('\n'), "multi-line error: {e:?}");
        }
        Ok(set) => {
            for (i, rule) in set.rules().iter().enumerate() {
                assert!(rule.line >= 1 && rule.line <= lines, "rule line {}", rule.line);
                let idx = RuleIdx(u32::try_from(i).expect("rule count"));
                for m in &rule.matches {
                    let NameMatch::Exact(name) = m else { continue };
                    let name = HostName::parse(name.as_bytes()).expect("exact name validated");
                    let want = (rule.category != Category::Ignore).then_some(idx);
                    assert_eq!(set.lookup(&name), want, "exact {name} of rule {}", rule.id);
                }
            }
        }
    }
});
