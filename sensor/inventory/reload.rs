//! Rule reload: rule indexes of one rule set translated into another by rule id, in stored
//! evidence, answered addresses and per-rule counts.

use std::sync::Arc;

use super::Inventory;
use crate::rules::{RuleIdx, RuleSet};

/// Translates rule indexes of one rule set into another by rule id (live reload). A rule that
/// is gone from the new set maps to `None`. Built once per reload: one entry per old rule.
pub struct RuleRemap {
    map: Vec<Option<RuleIdx>>,
}

impl RuleRemap {
    pub fn new(old: &RuleSet, new: &RuleSet) -> Self {
        let by_id: std::collections::HashMap<&str, RuleIdx> = new
            .rules()
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((r.id.as_str(), RuleIdx(u32::try_from(i).ok()?))))
            .collect();
        RuleRemap {
            map: old
                .rules()
                .iter()
                .map(|r| by_id.get(r.id.as_str()).copied())
                .collect(),
        }
    }

    /// The index in the new set of the rule `idx` named in the old set.
    pub fn get(&self, idx: RuleIdx) -> Option<RuleIdx> {
        self.map
            .get(usize::try_from(idx.0).ok()?)
            .copied()
            .flatten()
    }
}

impl Inventory {
    /// Switches to a new rule set (live reload): every stored rule index is translated by rule
    /// id. Evidence of a rule that is gone keeps its counts without a rule; answered addresses
    /// of a gone rule are forgotten.
    pub fn set_rules(&mut self, rules: Arc<RuleSet>) {
        let remap = RuleRemap::new(&self.rules, &rules);
        let mut merged = 0usize;
        for host in self.hosts.values_mut() {
            let evidence = &mut host.evidence;
            for e in evidence.iter_mut() {
                e.key.rule = e.key.rule.and_then(|r| remap.get(r));
            }
            evidence.sort_by_key(|e| e.key);
            let before = evidence.len();
            // Two entries that now have the same key (two rules mapped to one) become one.
            evidence.dedup_by(|later, kept| {
                if later.key == kept.key {
                    kept.stat.merge(&later.stat);
                    true
                } else {
                    false
                }
            });
            merged = merged.saturating_add(before.saturating_sub(evidence.len()));
        }
        self.budget.evidence_entries = self.budget.evidence_entries.saturating_sub(merged);
        self.answered.retain(|_, a| match remap.get(a.rule) {
            Some(r) => {
                a.rule = r;
                true
            }
            None => false,
        });
        let answered = &self.answered;
        self.answered_order.retain(|key| answered.contains_key(key));
        self.per_rule = std::mem::take(&mut self.per_rule)
            .into_iter()
            .filter_map(|(r, n)| Some((remap.get(r)?, n)))
            .collect();
        self.rules = rules;
    }
}
