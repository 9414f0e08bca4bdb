//! Interned host names: each distinct name the inventory keeps is stored once.
//!
//! Contract: [`NameTable::intern`] takes a validated [`HostName`] and returns a small
//! [`NameId`] (4 bytes) that evidence, answered addresses and recent queries hold instead of the
//! 254-byte inline name; [`NameTable::name`] gives the text back. The table only grows: ids stay
//! valid for the whole run, so nothing that holds one can dangle. It copies each distinct name
//! once (one `Arc<str>` shared by the id → name vector and the name → id map) and holds at most
//! [`MAX_DISTINCT_NAMES`]; a name arriving when the table is full is refused (`None`) and the
//! caller counts it.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::HostName;

/// Distinct names the inventory keeps. Kaspersky products talk to a few hundred names (the
/// generated dns profile, 5 000 hosts, uses 23); sixteen thousand leaves room for per-install
/// subdomains while bounding what a flood of random matching names can take.
/// Worst case: 16 384 × (253-byte name + 16-byte `Arc` header + 16-byte vector slot + ~25-byte
/// map slot) ≈ 5.1 MB.
pub const MAX_DISTINCT_NAMES: usize = 16_384;

/// A name in a [`NameTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameId(u32);

/// The distinct names kept by the inventory.
pub struct NameTable {
    names: Vec<Arc<str>>,
    /// Keyed by a per-process random hash: names come off the wire, so an attacker must not be
    /// able to pick colliding ones.
    ids: HashMap<Arc<str>, NameId, foldhash::fast::RandomState>,
}

impl Default for NameTable {
    fn default() -> Self {
        NameTable::new()
    }
}

impl NameTable {
    pub fn new() -> Self {
        NameTable {
            names: Vec::new(),
            ids: HashMap::default(),
        }
    }

    /// The id of `name`, if it is in the table (never adds it).
    pub fn get(&self, name: &HostName) -> Option<NameId> {
        self.ids.get(name.as_str()).copied()
    }

    /// The id of `name`, adding it if needed; `None` when the table is full.
    pub fn intern(&mut self, name: &HostName) -> Option<NameId> {
        if let Some(id) = self.get(name) {
            return Some(id);
        }
        if self.names.len() >= MAX_DISTINCT_NAMES {
            return None;
        }
        let id = NameId(u32::try_from(self.names.len()).ok()?);
        let text: Arc<str> = Arc::from(name.as_str());
        self.names.push(text.clone());
        self.ids.insert(text, id);
        Some(id)
    }

    /// The text of a name (`None` only for an id from another table).
    pub fn name(&self, id: NameId) -> Option<&str> {
        self.names
            .get(usize::try_from(id.0).ok()?)
            .map(|n| n.as_ref())
    }

    /// The text of a name, shared (a reference count, no copy): for summaries that outlive a
    /// borrow of the table.
    pub fn shared(&self, id: NameId) -> Option<Arc<str>> {
        self.names.get(usize::try_from(id.0).ok()?).cloned()
    }

    /// The name as a [`HostName`] again (a copy on the stack, no allocation).
    pub fn host_name(&self, id: NameId) -> Option<HostName> {
        HostName::parse(self.name(id)?.as_bytes()).ok()
    }

    /// Number of distinct names held.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Orders two optional names the way [`HostName`]'s derived `Ord` does (length first, then
    /// bytes; no name first), so reports list evidence in the same order as before interning.
    pub fn cmp(&self, a: Option<NameId>, b: Option<NameId>) -> Ordering {
        let text = |id: Option<NameId>| id.and_then(|id| self.name(id));
        match (text(a), text(b)) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => (x.len(), x.as_bytes()).cmp(&(y.len(), y.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> HostName {
        HostName::parse(s.as_bytes()).expect("valid name")
    }

    #[test]
    fn same_name_same_id_and_text_round_trips() {
        let mut t = NameTable::new();
        let a = t.intern(&name("dnl-01.geo.kaspersky.com")).expect("room");
        let b = t.intern(&name("ksn.kaspersky-labs.com")).expect("room");
        assert_eq!(t.intern(&name("DNL-01.geo.kaspersky.com.")), Some(a));
        assert_ne!(a, b);
        assert_eq!(t.len(), 2);
        assert_eq!(t.name(a), Some("dnl-01.geo.kaspersky.com"));
        assert_eq!(t.host_name(b), Some(name("ksn.kaspersky-labs.com")));
        assert_eq!(t.get(&name("other.example")), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn full_table_refuses_new_names_but_finds_old_ones() {
        let mut t = NameTable::new();
        for i in 0..MAX_DISTINCT_NAMES {
            assert!(t.intern(&name(&format!("h{i}.kaspersky.com"))).is_some());
        }
        assert_eq!(t.intern(&name("one-more.kaspersky.com")), None);
        assert_eq!(t.len(), MAX_DISTINCT_NAMES);
        assert_eq!(
            t.intern(&name("h7.kaspersky.com")),
            t.get(&name("h7.kaspersky.com"))
        );
        assert!(t.get(&name("h7.kaspersky.com")).is_some());
    }

    #[test]
    fn unknown_id_has_no_text() {
        let t = NameTable::new();
        assert_eq!(t.name(NameId(0)), None);
        assert_eq!(t.name(NameId(u32::MAX)), None);
    }

    #[test]
    fn order_matches_host_name_order() {
        let mut t = NameTable::new();
        let texts = [
            "b.example",
            "aa.example",
            "a.example",
            "zz.example",
            "c.example",
        ];
        let ids: Vec<NameId> = texts
            .iter()
            .map(|s| t.intern(&name(s)).expect("room"))
            .collect();
        let mut by_table: Vec<Option<NameId>> = ids.iter().copied().map(Some).collect();
        by_table.push(None);
        by_table.sort_by(|a, b| t.cmp(*a, *b));
        let mut by_host_name: Vec<Option<HostName>> = texts.iter().map(|s| Some(name(s))).collect();
        by_host_name.push(None);
        by_host_name.sort();
        let shown: Vec<Option<String>> = by_table
            .iter()
            .map(|id| id.and_then(|id| t.name(id)).map(str::to_string))
            .collect();
        let expected: Vec<Option<String>> = by_host_name
            .iter()
            .map(|n| n.map(|n| n.to_string()))
            .collect();
        assert_eq!(shown, expected);
    }
}
