//! Address space: IP prefixes (`[[network]]` tables) and their longest-prefix index.
//!
//! Input: prefix strings from rule files (`77.74.176.0/21`, `2a03:2480::/33`). Output: a
//! validated [`IpPrefix`], or a one-line problem naming what is wrong (the caller adds file and
//! line); and, at the end of a load, a [`NetworkIndex`] answering "which network holds this
//! address, by the longest prefix?".
//!
//! The index flattens every prefix of an address family into sorted, disjoint address ranges,
//! each tagged with the most specific prefix covering it. Prefixes are aligned blocks, so two
//! prefixes either nest or do not overlap at all, and the flattening is one sweep over the
//! prefixes sorted by first address. A lookup is one binary search over that family's range
//! starts: at most ⌈log2(2 × prefixes + 1)⌉ comparisons (18 for [`super::MAX_PREFIXES`]),
//! no allocation, no hashing. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2)
//! are looked up as the IPv4 address they carry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reason_enum;

reason_enum! {
    /// What a match in a network means (rules key `use`).
    pub enum NetworkUse {
        /// Kaspersky's own address space: an outbound connection there is low-weight
        /// corroboration, never a verdict on its own (see `rules/README.md`).
        Corroborate => "corroborate",
        /// Address space that must explicitly count for nothing (Kaspersky's DDoS-protection
        /// network carries its customers' traffic): a match here ends the search, so a wider
        /// corroborating prefix cannot claim the address.
        Exclude => "exclude",
    }
}

impl NetworkUse {
    /// Every use, in declaration order.
    pub const ALL: &'static [NetworkUse] = <NetworkUse as crate::reason::Reason>::ALL;

    /// Stable label as written in rule files.
    pub fn label(self) -> &'static str {
        <NetworkUse as crate::reason::Reason>::label(self)
    }

    /// The use written as `label` in a rule file.
    pub fn from_label(label: &str) -> Option<NetworkUse> {
        Self::ALL.iter().copied().find(|u| u.label() == label)
    }
}

/// Shortest IPv4 prefix accepted. IANA hands IPv4 space to the regional registries in /8
/// blocks and no organisation holds more than that; a shorter prefix (say `0.0.0.0/0`) is a
/// typo that would make every address "Kaspersky".
pub const MIN_IPV4_PREFIX_LEN: u8 = 8;
/// Shortest IPv6 prefix accepted. IANA allocates IPv6 to the regional registries in /12
/// blocks (the unit of the IANA IPv6 unicast address space registry); anything shorter spans
/// several registries and cannot be one network.
pub const MIN_IPV6_PREFIX_LEN: u8 = 12;

/// A validated IP prefix: an address with every bit after `len` zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// Parses `ADDRESS/LENGTH`. The error is the problem only (the caller adds file and line).
    pub fn parse(text: &str) -> Result<IpPrefix, String> {
        let Some((addr_text, len_text)) = text.split_once('/') else {
            return Err(format!(
                "prefix {text:?} has no length (write ADDRESS/LENGTH, e.g. 77.74.176.0/21)"
            ));
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("prefix {text:?} has an invalid address {addr_text:?}"))?;
        let (max, min) = match addr {
            IpAddr::V4(_) => (32u8, MIN_IPV4_PREFIX_LEN),
            IpAddr::V6(_) => (128u8, MIN_IPV6_PREFIX_LEN),
        };
        let len = match len_text.parse::<u8>() {
            Ok(len) if len <= max && len_text.bytes().all(|b| b.is_ascii_digit()) => len,
            _ => {
                return Err(format!(
                    "prefix {text:?} has an invalid length {len_text:?} (0 to {max})"
                ))
            }
        };
        if len < min {
            return Err(format!(
                "prefix {text:?} is shorter than /{min} (no single network is that large)"
            ));
        }
        if let IpAddr::V6(v6) = addr {
            if v6.to_ipv4_mapped().is_some() {
                return Err(format!(
                    "prefix {text:?} is IPv4-mapped (write it as an IPv4 prefix)"
                ));
            }
        }
        let prefix = IpPrefix { addr, len };
        let (first, _) = prefix.bounds();
        if first != key(addr) {
            let base = IpPrefix {
                addr: from_key(addr, first),
                len,
            };
            return Err(format!(
                "prefix {text:?} has bits set after the first {len} (did you mean {base}?)"
            ));
        }
        Ok(prefix)
    }

    /// The first address of the prefix.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` (IPv4-mapped IPv6 taken as IPv4) lies in the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (first, last) = self.bounds();
        (first..=last).contains(&key(ip))
    }

    /// First and last address as integers of the family's width (IPv4 in the low 32 bits).
    fn bounds(&self) -> (u128, u128) {
        let width: u32 = if self.addr.is_ipv4() { 32 } else { 128 };
        let host_bits = width.saturating_sub(u32::from(self.len));
        // host_bits <= 128; a shift by 128 is out of range, hence checked_shl.
        let host_mask = 1u128
            .checked_shl(host_bits)
            .map_or(u128::MAX, |b| b.wrapping_sub(1));
        let first = key(self.addr) & !host_mask;
        (first, first | host_mask)
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of `like`'s family whose integer is `k` (IPv4 keeps the low 32 bits).
fn from_key(like: IpAddr, k: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(k as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(k)),
    }
}

/// Which network and which of its prefixes cover a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NetHit {
    pub(crate) network: u32,
    pub(crate) prefix: u32,
}

/// Disjoint address ranges of one family, sorted by first address, each with the most
/// specific prefix that covers it. Parallel vectors: the binary search walks `starts` only.
#[derive(Debug, Default)]
struct Ranges<K> {
    starts: Vec<K>,
    ends: Vec<K>,
    hits: Vec<NetHit>,
}

impl<K: Copy + Ord> Ranges<K> {
    fn find(&self, ip: K) -> Option<NetHit> {
        let after = self.starts.partition_point(|&s| s <= ip);
        let at = after.checked_sub(1)?;
        match self.ends.get(at) {
            Some(&end) if ip <= end => self.hits.get(at).copied(),
            _ => None,
        }
    }
}

/// The longest-prefix index over every loaded prefix.
#[derive(Debug, Default)]
pub(crate) struct NetworkIndex {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
}

/// One prefix to index: its bounds, length and what it belongs to.
pub(crate) struct Pending {
    pub(crate) prefix: IpPrefix,
    pub(crate) hit: NetHit,
}

impl NetworkIndex {
    /// Builds the index. Prefixes must be distinct (the loader rejects duplicates); nested
    /// prefixes are fine and the longer one wins inside it.
    pub(crate) fn build(prefixes: &[Pending]) -> NetworkIndex {
        let family = |v4: bool| -> Vec<(u128, u128, u8, NetHit)> {
            let mut list: Vec<(u128, u128, u8, NetHit)> = prefixes
                .iter()
                .filter(|p| p.prefix.addr.is_ipv4() == v4)
                .map(|p| {
                    let (first, last) = p.prefix.bounds();
                    (first, last, p.prefix.len, p.hit)
                })
                .collect();
            // By first address, wider first: a prefix comes before every prefix nested in it.
            list.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
            list
        };
        let v4 = flatten(&family(true));
        let v6 = flatten(&family(false));
        NetworkIndex {
            v4: Ranges {
                // IPv4 bounds fit in 32 bits by construction.
                starts: v4.starts.iter().map(|&k| k as u32).collect(),
                ends: v4.ends.iter().map(|&k| k as u32).collect(),
                hits: v4.hits,
            },
            v6,
        }
    }

    /// The most specific prefix holding `ip`.
    pub(crate) fn find(&self, ip: IpAddr) -> Option<NetHit> {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.find(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.find(u128::from(v6)),
        }
    }
}

/// Sweeps prefixes sorted by (first address, length) into disjoint ranges. Open prefixes form
/// a stack (each nested in the one below, since aligned blocks nest or are disjoint); the
/// range between the cursor and the next event belongs to the top of the stack.
fn flatten(sorted: &[(u128, u128, u8, NetHit)]) -> Ranges<u128> {
    let mut out = Ranges::<u128>::default();
    let mut emit = |start: u128, end: u128, hit: NetHit| {
        if start <= end {
            out.starts.push(start);
            out.ends.push(end);
            out.hits.push(hit);
        }
    };
    // Open prefixes: (last address, hit).
    let mut stack: Vec<(u128, NetHit)> = Vec::new();
    // Next address not yet assigned to a range; None once the end of the space was assigned.
    let mut cursor: Option<u128> = Some(0);
    for &(first, last, _, hit) in sorted {
        // Close the open prefixes that end before this one starts.
        while let Some(&(top_last, top_hit)) = stack.last() {
            if top_last >= first {
                break;
            }
            if let Some(c) = cursor {
                emit(c, top_last, top_hit);
            }
            cursor = top_last.checked_add(1);
            stack.pop();
        }
        // The part of the enclosing prefix before this one.
        if let (Some(&(_, top_hit)), Some(c)) = (stack.last(), cursor) {
            if c < first {
                emit(c, first.saturating_sub(1), top_hit);
            }
        }
        cursor = Some(first);
        stack.push((last, hit));
    }
    while let Some((top_last, top_hit)) = stack.pop() {
        if let Some(c) = cursor {
            emit(c, top_last, top_hit);
        }
        cursor = top_last.checked_add(1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        IpPrefix::parse(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn index(prefixes: &[&str]) -> NetworkIndex {
        let pending: Vec<Pending> = prefixes
            .iter()
            .enumerate()
            .map(|(i, s)| Pending {
                prefix: p(s),
                hit: NetHit {
                    network: i as u32,
                    prefix: 0,
                },
            })
            .collect();
        NetworkIndex::build(&pending)
    }

    fn which(idx: &NetworkIndex, addr: &str) -> Option<u32> {
        idx.find(ip(addr)).map(|h| h.network)
    }

    /// Longest-prefix match by brute force, for comparing with the index.
    fn brute(prefixes: &[&str], addr: IpAddr) -> Option<u32> {
        prefixes
            .iter()
            .enumerate()
            .filter(|(_, s)| p(s).contains(addr))
            .max_by_key(|(_, s)| p(s).prefix_len())
            .map(|(i, _)| i as u32)
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(p("77.74.176.0/21").to_string(), "77.74.176.0/21");
        assert_eq!(p("2a03:2480:68::/47").to_string(), "2a03:2480:68::/47");
        assert_eq!(p("10.0.0.1/32").prefix_len(), 32);
        assert_eq!(p("2a03:2480::1/128").prefix_len(), 128);
        assert_eq!(p("10.0.0.0/8").addr(), ip("10.0.0.0"));
    }

    #[test]
    fn rejects_bad_prefixes() {
        let err = |s: &str| IpPrefix::parse(s).unwrap_err();
        assert_eq!(
            err("77.74.176.0"),
            r#"prefix "77.74.176.0" has no length (write ADDRESS/LENGTH, e.g. 77.74.176.0/21)"#
        );
        assert_eq!(
            err("77.74.176/21"),
            r#"prefix "77.74.176/21" has an invalid address "77.74.176""#
        );
        assert_eq!(
            err("77.74.176.0/33"),
            r#"prefix "77.74.176.0/33" has an invalid length "33" (0 to 32)"#
        );
        assert_eq!(
            err("2a03::/129"),
            r#"prefix "2a03::/129" has an invalid length "129" (0 to 128)"#
        );
        assert_eq!(
            err("10.0.0.0/+8"),
            r#"prefix "10.0.0.0/+8" has an invalid length "+8" (0 to 32)"#
        );
        assert_eq!(
            err("10.0.0.0/"),
            r#"prefix "10.0.0.0/" has an invalid length "" (0 to 32)"#
        );
        assert_eq!(
            err("77.74.176.1/21"),
            r#"prefix "77.74.176.1/21" has bits set after the first 21 (did you mean 77.74.176.0/21?)"#
        );
        assert_eq!(
            err("2a03:2480:69::/47"),
            r#"prefix "2a03:2480:69::/47" has bits set after the first 47 (did you mean 2a03:2480:68::/47?)"#
        );
        assert_eq!(
            err("0.0.0.0/0"),
            r#"prefix "0.0.0.0/0" is shorter than /8 (no single network is that large)"#
        );
        assert_eq!(
            err("2000::/3"),
            r#"prefix "2000::/3" is shorter than /12 (no single network is that large)"#
        );
        assert_eq!(
            err("::ffff:77.74.176.0/117"),
            r#"prefix "::ffff:77.74.176.0/117" is IPv4-mapped (write it as an IPv4 prefix)"#
        );
        assert!(IpPrefix::parse("1.0.0.0/8").is_ok());
        assert!(IpPrefix::parse("2000::/12").is_ok());
    }

    #[test]
    fn contains_respects_family_and_bounds() {
        let v4 = p("77.74.176.0/21");
        assert!(v4.contains(ip("77.74.176.0")));
        assert!(v4.contains(ip("77.74.183.255")));
        assert!(!v4.contains(ip("77.74.184.0")));
        assert!(!v4.contains(ip("77.74.175.255")));
        assert!(v4.contains(ip("::ffff:77.74.177.5")));
        assert!(!v4.contains(ip("2a03:2480::1")));
        let all_v6 = p("2a03:2480:8000::/48");
        assert!(all_v6.contains(ip("2a03:2480:8000:ffff:ffff:ffff:ffff:ffff")));
        assert!(!all_v6.contains(ip("2a03:2480:8001::")));
        let host = p("255.255.255.255/32");
        assert!(host.contains(ip("255.255.255.255")));
        let top = p("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        assert!(top.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }

    #[test]
    fn longest_prefix_wins_inside_nested_prefixes() {
        let idx = index(&["77.74.176.0/21", "77.74.180.0/22", "77.74.181.0/24"]);
        assert_eq!(which(&idx, "77.74.176.10"), Some(0));
        assert_eq!(which(&idx, "77.74.179.255"), Some(0));
        assert_eq!(which(&idx, "77.74.180.0"), Some(1));
        assert_eq!(which(&idx, "77.74.181.7"), Some(2));
        assert_eq!(which(&idx, "77.74.182.0"), Some(1));
        assert_eq!(which(&idx, "77.74.183.255"), Some(1));
        assert_eq!(which(&idx, "77.74.184.0"), None);
        assert_eq!(which(&idx, "77.74.175.255"), None);
    }

    #[test]
    fn families_are_separate_and_mapped_addresses_are_ipv4() {
        let idx = index(&["91.103.64.0/21", "2a03:2480::/33", "2a03:2480:68::/47"]);
        assert_eq!(which(&idx, "91.103.66.164"), Some(0));
        assert_eq!(which(&idx, "::ffff:91.103.66.164"), Some(0));
        assert_eq!(which(&idx, "2a03:2480:1::1"), Some(1));
        assert_eq!(which(&idx, "2a03:2480:69:1::1"), Some(2));
        assert_eq!(which(&idx, "2a03:2480:8000::1"), None);
        // The IPv6 address whose low 32 bits equal an indexed IPv4 address is not it.
        assert_eq!(which(&idx, "::5b67:42a4"), None);
    }

    #[test]
    fn ends_of_the_address_space() {
        let idx = index(&[
            "255.0.0.0/8",
            "255.255.255.255/32",
            "1.0.0.0/8",
            "ff00::/12",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        ]);
        assert_eq!(which(&idx, "255.255.255.255"), Some(1));
        assert_eq!(which(&idx, "255.255.255.254"), Some(0));
        assert_eq!(which(&idx, "1.0.0.0"), Some(2));
        assert_eq!(which(&idx, "0.255.255.255"), None);
        assert_eq!(
            which(&idx, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            Some(4)
        );
        assert_eq!(which(&idx, "ff0f::"), Some(3));
        assert_eq!(which(&idx, "::"), None);
    }

    #[test]
    fn index_agrees_with_brute_force() {
        // Nested, adjacent and disjoint prefixes; every boundary address and its neighbours.
        let prefixes = [
            "10.0.0.0/8",
            "10.0.0.0/16",
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.3.0/24",
            "10.0.3.128/25",
            "10.128.0.0/9",
            "10.255.255.0/24",
            "11.0.0.0/8",
            "12.0.0.0/30",
            "12.0.0.4/31",
        ];
        let idx = index(&prefixes);
        let mut probes = Vec::new();
        for s in &prefixes {
            let (first, last) = p(s).bounds();
            for k in [first, last] {
                for d in [-1i64, 0, 1] {
                    let k = (k as i64 + d).clamp(0, u32::MAX as i64) as u32;
                    probes.push(IpAddr::V4(Ipv4Addr::from(k)));
                }
            }
        }
        let mut rng = crate::test_rng::XorShift(7);
        for _ in 0..2000 {
            let base: u32 = u32::from(Ipv4Addr::new(10, 0, 0, 0));
            let k = base.wrapping_add((rng.next() as u32) % (3 << 24));
            probes.push(IpAddr::V4(Ipv4Addr::from(k)));
        }
        for a in probes {
            assert_eq!(idx.find(a).map(|h| h.network), brute(&prefixes, a), "{a}");
        }
    }

    #[test]
    fn empty_index_finds_nothing() {
        let idx = NetworkIndex::build(&[]);
        assert_eq!(idx.find(ip("77.74.176.1")), None);
        assert_eq!(idx.find(ip("2a03:2480::1")), None);
    }

    #[test]
    fn use_labels_round_trip() {
        for u in NetworkUse::ALL {
            assert_eq!(NetworkUse::from_label(u.label()), Some(*u));
        }
        assert_eq!(NetworkUse::from_label("Exclude"), None);
    }
}
