//! Rules: which host names and addresses are Kaspersky infrastructure, and what a sighting of
//! each says about the host that contacted it.
//!
//! Contract:
//! * Load: [`RuleSet::load`] reads TOML rule files (a path may be a file or a directory, whose
//!   `*.toml` files are read in file-name order), validates every `[[rule]]` and `[[network]]`
//!   table and builds one index for names and one for addresses. Bad input gives one
//!   [`RuleError`] line, `file:line: problem`; nothing is half-loaded. The format, the tiers
//!   and the product classes are described in `rules/README.md`; the bundled files live in
//!   [`RuleSet::bundled_dir`].
//! * Names: [`RuleSet::lookup`] takes a validated [`HostName`] and returns the index of the
//!   most specific matching rule, or `None` when nothing matches, an `ignore` rule wins, or the
//!   name is not a host name in the sense of RFC 952 / RFC 1123 §2.1 (a byte outside
//!   letters, digits and hyphen, such as the `_` of `_spf.` or `_dmarc.` owner names, or a
//!   label that starts or ends with `-`): no Kaspersky product contacts such a name as a
//!   server, so it is never evidence. It borrows the name, copies nothing and never allocates.
//! * Specificity: `exact:` beats `pattern:`, which beats `suffix:`; a longer suffix beats a
//!   shorter one. Between two patterns matching the same name, the one with the longer literal
//!   suffix (labels after its last wildcard label) wins, then the one with more literal bytes,
//!   then the one defined first. The same match string twice is rejected at load, so the other
//!   cases cannot tie.
//! * Addresses: [`RuleSet::network_for`] returns the network holding an address by the longest
//!   prefix, IPv4 and IPv6, `exclude` networks included (so a caller can say "explicitly not
//!   evidence"); see `network.rs`.
//! * What a rule says: its [`Category`] (and [`Category::is_install_evidence`]), its
//!   [`Confidence`] and its [`ProductClass`]. The rules say what a name *is*; what a sighting
//!   means for a host (query type, port, direction) is decided by the inventory.
//! * Cost: one hash probe per label-boundary suffix of the name, only for suffixes with no more
//!   labels than the longest key in the index (usually 3–5 probes, never more than 127), plus at
//!   most [`MAX_PATTERNS_PER_SUFFIX`] pattern checks per probe. Independent of the rule count.
//!   An address lookup is one binary search over that family's disjoint ranges.
//!
//! Caps (all checked at load): [`MAX_RULE_FILE_BYTES`], [`MAX_RULE_FILES`], [`MAX_RULES`],
//! [`MAX_MATCHES_PER_RULE`], [`MAX_RULE_ID_LEN`], [`MAX_PATTERNS_PER_SUFFIX`],
//! [`MAX_NETWORKS`], [`MAX_PREFIXES_PER_NETWORK`], [`MAX_PREFIXES`].

mod load;
mod network;
mod pattern;

use std::net::IpAddr;
use std::path::Path;
use std::path::PathBuf;

use crate::proto::HostName;
use crate::reason::Reason;
use crate::reason_enum;

pub use network::{IpPrefix, NetworkUse, MIN_IPV4_PREFIX_LEN, MIN_IPV6_PREFIX_LEN};
pub use pattern::NameMatch;

/// Largest rule file read (8 MiB). The bundled file is ~10 KiB and a 10 000-rule file ~1 MiB;
/// anything far larger is a mistake (a pcap or a log passed as a rule file).
pub const MAX_RULE_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Most rule files in one load (directories included). Rule sets are a handful of curated
/// files; this stops a wrong directory (say `/`) from being walked file by file.
pub const MAX_RULE_FILES: usize = 256;
/// Most rules in one set. Rule ids become metric labels, so the set must stay small enough
/// for Prometheus (100 000 series is already a lot); it also keeps [`RuleIdx`] far from `u32`.
pub const MAX_RULES: usize = 100_000;
/// Most match strings in one rule. The widest bundled rule (the ccTLD websites) has ~40; more
/// than this means the rule should be split so that its id says what it covers.
pub const MAX_MATCHES_PER_RULE: usize = 1024;
/// Longest rule id. Ids are metric labels and report keys: short, stable words.
pub const MAX_RULE_ID_LEN: usize = 64;
/// Most patterns sharing one literal suffix. Every lookup that reaches that suffix tries them
/// all, so this bounds the per-name work regardless of the rule count; more patterns under one
/// suffix should become exact names or a narrower literal suffix.
pub const MAX_PATTERNS_PER_SUFFIX: usize = 32;
/// Most `[[network]]` tables in one set. A network is one autonomous system or one list an
/// operator keeps; the bundled file has three. Network ids share the rule-id namespace.
pub const MAX_NETWORKS: usize = 1024;
/// Most prefixes in one network. The largest autonomous systems originate a few thousand
/// prefixes; more in one table is a full routing table pasted by mistake.
pub const MAX_PREFIXES_PER_NETWORK: usize = 16_384;
/// Most prefixes in one set. Bounds the index (at most 2 ranges per prefix, 36 bytes per IPv6
/// range: under 5 MiB) and keeps a lookup at 18 comparisons or fewer.
pub const MAX_PREFIXES: usize = 65_536;

reason_enum! {
    /// What a matched name is for. Closed set: categories are metric labels.
    pub enum Category {
        /// Database and module update servers (`dnl-NN.geo`, `sNN.upd`, …).
        Update => "update",
        /// Kaspersky Security Network cloud reputation and statistics.
        KsnCloud => "ksn-cloud",
        /// Licence activation and refresh.
        Activation => "activation",
        /// In-product messaging, statistics and telemetry.
        Telemetry => "telemetry",
        /// Accounts, My Kaspersky, password-manager sync.
        Portal => "portal",
        /// Kaspersky Security Center Cloud Console.
        KscCloud => "ksc-cloud",
        /// Certificate revocation and trust for Kaspersky's own PKI.
        Certificate => "certificate",
        /// Names of the script the product injects into web pages.
        InjectedScript => "injected-script",
        /// Installer and product downloads.
        Download => "download",
        /// Kaspersky infrastructure whose purpose is not documented.
        Service => "service",
        /// Websites a person may browse: weak evidence of an install.
        Website => "website",
        /// Kaspersky's mail relays: a mail server resolving them delivers mail to Kaspersky,
        /// it runs no Kaspersky product.
        Mail => "mail",
        /// Kaspersky-owned but not evidence of anything: a winning `ignore` rule makes
        /// [`RuleSet::lookup`] return `None`.
        Ignore => "ignore",
    }
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: &'static [Category] = <Category as Reason>::ALL;

    /// Stable label as written in rule files and metrics.
    pub fn label(self) -> &'static str {
        <Category as Reason>::label(self)
    }

    /// The category written as `label` in a rule file.
    pub fn from_label(label: &str) -> Option<Category> {
        Self::ALL.iter().copied().find(|c| c.label() == label)
    }

    /// Whether a sighting of a name of this category can support an install verdict: names
    /// the product itself contacts. Portal, download and website names are reached by people
    /// in a browser, mail names by mail servers; `ignore` names by nobody that matters.
    pub fn is_install_evidence(self) -> bool {
        match self {
            Category::Update
            | Category::KsnCloud
            | Category::Activation
            | Category::Telemetry
            | Category::KscCloud
            | Category::Certificate
            | Category::InjectedScript
            | Category::Service => true,
            Category::Portal
            | Category::Download
            | Category::Website
            | Category::Mail
            | Category::Ignore => false,
        }
    }
}

reason_enum! {
    /// Which Kaspersky products contact a name (rules key `product`): what a sighting can
    /// say about the product on the host. Closed set: product classes are metric labels.
    pub enum ProductClass {
        /// Only the antivirus / endpoint-protection family (the injected web-protection
        /// script, Kaspersky Security Center management, the Cloud Console's agent ports).
        Antivirus => "antivirus",
        /// Among Kaspersky products only the antivirus family, but other vendors that license
        /// the Kaspersky engine contact it too (Check Point's Anti-Malware).
        AntivirusOrOem => "antivirus-or-oem",
        /// Shared infrastructure: the VPN, Password Manager, Safe Kids or Who Calls contact
        /// it as well as the antivirus.
        Kaspersky => "kaspersky",
        /// The Kaspersky engine inside another vendor's product, not a Kaspersky product.
        Oem => "oem",
        /// No product: websites, portals, downloads, mail.
        None => "none",
    }
}

impl ProductClass {
    /// Every product class, in declaration order.
    pub const ALL: &'static [ProductClass] = <ProductClass as Reason>::ALL;

    /// Stable label as written in rule files and metrics.
    pub fn label(self) -> &'static str {
        <ProductClass as Reason>::label(self)
    }

    /// The product class written as `label` in a rule file.
    pub fn from_label(label: &str) -> Option<ProductClass> {
        Self::ALL.iter().copied().find(|p| p.label() == label)
    }
}

reason_enum! {
    /// How strongly a match says "this host runs Kaspersky". Ordered: `Low < Medium < High`.
    pub enum Confidence {
        /// A website a person may browse.
        Low => "low",
        /// Kaspersky infrastructure that is mostly, but not only, reached by the product.
        Medium => "medium",
        /// Only the product contacts it.
        High => "high",
    }
}

impl Confidence {
    /// Every confidence, lowest first.
    pub const ALL: &'static [Confidence] = <Confidence as Reason>::ALL;

    /// Stable label as written in rule files and metrics.
    pub fn label(self) -> &'static str {
        <Confidence as Reason>::label(self)
    }

    /// The confidence written as `label` in a rule file.
    pub fn from_label(label: &str) -> Option<Confidence> {
        Self::ALL.iter().copied().find(|c| c.label() == label)
    }
}

reason_enum! {
    /// Why a rule set failed to load (a metric label for reload failures).
    pub enum RuleErrorKind {
        Io => "io",
        TooLarge => "too_large",
        NotUtf8 => "not_utf8",
        Syntax => "syntax",
        BadId => "bad_id",
        DuplicateId => "duplicate_id",
        UnknownCategory => "unknown_category",
        UnknownConfidence => "unknown_confidence",
        UnknownProduct => "unknown_product",
        EmptySource => "empty_source",
        BadMatch => "bad_match",
        DuplicateMatch => "duplicate_match",
        TooMany => "too_many",
        NoRules => "no_rules",
        UnknownUse => "unknown_use",
        BadAsn => "bad_asn",
        BadPrefix => "bad_prefix",
        DuplicatePrefix => "duplicate_prefix",
        BadDate => "bad_date",
    }
}

/// A rule file problem: `origin:line: message` (or `origin: message` without a line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub kind: RuleErrorKind,
    /// The file path as given, or the origin passed to [`RuleSet::parse`].
    pub origin: String,
    /// 1-based line, when the problem has a position.
    pub line: Option<u32>,
    /// One line, no trailing period.
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.origin, line, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

impl std::error::Error for RuleError {}

/// Index of a rule in its [`RuleSet`] (valid only for the set that returned it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleIdx(pub u32);

/// One rule, as loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Unique, `[a-z0-9-]`, stable: a metric label.
    pub id: String,
    pub category: Category,
    pub confidence: Confidence,
    /// Which products contact the names.
    pub product: ProductClass,
    /// Where the evidence comes from (tags and source references, see `rules/README.md`).
    pub source: String,
    pub matches: Vec<NameMatch>,
    /// Index into [`RuleSet::files`] of the file that defines the rule.
    pub file: u32,
    /// 1-based line of the rule's `id`.
    pub line: u32,
}

/// Placeholder returned by [`RuleSet::rule`] for an index from another set (never a panic).
static NO_RULE: Rule = Rule {
    id: String::new(),
    category: Category::Ignore,
    confidence: Confidence::Low,
    product: ProductClass::None,
    source: String::new(),
    matches: Vec::new(),
    file: 0,
    line: 0,
};

/// Index of a network in its [`RuleSet`] (valid only for the set that returned it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkIdx(pub u32);

/// One `[[network]]` table, as loaded: address space and what a match there means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Unique among rule and network ids, `[a-z0-9-]`, stable: a metric label.
    pub id: String,
    /// The autonomous system the prefixes are announced by.
    pub asn: u32,
    pub use_: NetworkUse,
    /// Where the prefixes come from.
    pub source: String,
    /// When the prefixes were retrieved from `source` (`YYYY-MM-DD`).
    pub retrieved: String,
    /// In file order.
    pub prefixes: Vec<IpPrefix>,
    /// Index into [`RuleSet::files`] of the file that defines the network.
    pub file: u32,
    /// 1-based line of the network's `id`.
    pub line: u32,
}

/// Placeholder returned by [`RuleSet::network`] for an index from another set: an `exclude`
/// network, so that a stale index can never count as evidence.
static NO_NETWORK: Network = Network {
    id: String::new(),
    asn: 0,
    use_: NetworkUse::Exclude,
    source: String::new(),
    retrieved: String::new(),
    prefixes: Vec::new(),
    file: 0,
    line: 0,
};

/// One loaded rule file and the SHA-256 of its bytes (lower-case hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFile {
    pub path: String,
    pub sha256: String,
}

/// Which rule and which of its match strings produced a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    rule: RuleIdx,
    matcher: u32,
}

/// What the index knows about one literal name: it may be an exact name, a suffix, and the
/// literal suffix of a run of patterns (`patterns[start..start + len]`, most specific first).
/// The index also holds every label suffix of those names (`kaspersky.com` and `com` for
/// `geo.kaspersky.com`) as an entry that matches nothing, so that a lookup walking a name from
/// its last label leftwards stops at the first suffix the index lacks: no longer suffix of the
/// name can be a key then.
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    exact: Option<Hit>,
    suffix: Option<Hit>,
    patterns_start: u32,
    patterns_len: u32,
}

impl Entry {
    /// Whether this name matches something itself (not only as the end of a longer key).
    fn matches_something(&self) -> bool {
        self.exact.is_some() || self.suffix.is_some() || self.patterns_len > 0
    }
}

/// A pattern's labels up to its last wildcard label; the rest is the key of its bucket.
#[derive(Clone, Debug)]
struct CompiledPattern {
    prefix: Box<str>,
    hit: Hit,
}

/// A validated, indexed set of rules.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    files: Vec<RuleFile>,
    sha256: String,
    /// Keys are names as bytes (ASCII host names), so a lookup needs no UTF-8 check.
    by_name: foldhash::HashMap<Box<[u8]>, Entry>,
    patterns: Vec<CompiledPattern>,
    /// Most labels in any key of `by_name`: longer suffixes of a name cannot be keys.
    max_key_labels: usize,
    /// Fewest labels in any pattern bucket key (`usize::MAX` without patterns): once a suffix
    /// rule has matched and the remaining suffixes are shorter than this, nothing can beat it.
    min_pattern_key_labels: usize,
    networks: Vec<Network>,
    network_index: network::NetworkIndex,
}

impl RuleSet {
    /// The repository's bundled `rules/` directory, the default rule source.
    pub fn bundled_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"))
    }

    /// Loads rule files and directories (each directory: its `*.toml` files sorted by name).
    pub fn load(paths: &[PathBuf]) -> Result<RuleSet, RuleError> {
        load::load(paths)
    }

    /// Parses one rule file's text; `origin` names it in errors and in [`RuleSet::files`].
    pub fn parse(origin: &str, text: &str) -> Result<RuleSet, RuleError> {
        load::parse_sources(&[(origin, text)])
    }

    /// Parses several rule files' texts as one set, in order.
    pub fn parse_sources(sources: &[(&str, &str)]) -> Result<RuleSet, RuleError> {
        load::parse_sources(sources)
    }

    /// The most specific rule for `name`, or `None` when nothing matches, an `ignore` rule
    /// wins, or `name` is not a host name (see [`is_host_name`]).
    pub fn lookup(&self, name: &HostName) -> Option<RuleIdx> {
        let hit = self.resolve(name)?;
        match self.rules.get(hit.rule.0 as usize) {
            Some(rule) if rule.category != Category::Ignore => Some(hit.rule),
            _ => None,
        }
    }

    /// Like [`RuleSet::lookup`] but also returns `ignore` winners and the match string that
    /// won: for `ksensor rules check` and for explaining a verdict.
    pub fn explain(&self, name: &HostName) -> Option<(RuleIdx, &NameMatch)> {
        let hit = self.resolve(name)?;
        let rule = self.rules.get(hit.rule.0 as usize)?;
        let matcher = rule.matches.get(hit.matcher as usize)?;
        Some((hit.rule, matcher))
    }

    /// The rule at `idx`. An index from another set gives an empty `ignore` placeholder.
    pub fn rule(&self, idx: RuleIdx) -> &Rule {
        self.get(idx).unwrap_or(&NO_RULE)
    }

    /// The rule at `idx`, if this set has it.
    pub fn get(&self, idx: RuleIdx) -> Option<&Rule> {
        self.rules.get(idx.0 as usize)
    }

    /// Every rule, in load order (`RuleIdx(i)` is `rules()[i]`).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The files the rules came from, in load order.
    /// Shows files under `root` as `shown_as/<rest>` in [`RuleSet::files`] (reports name the
    /// bundled rules the same way on every machine). The rule-set hash does not change: it is
    /// over the files' contents.
    pub fn display_root(mut self, root: &Path, shown_as: &str) -> Self {
        let root = root.display().to_string();
        for file in &mut self.files {
            if let Some(rest) = file.path.strip_prefix(&root) {
                file.path = format!("{shown_as}/{}", rest.trim_start_matches('/'));
            }
        }
        self
    }

    pub fn files(&self) -> &[RuleFile] {
        &self.files
    }

    /// Identity of the rule set for reports: SHA-256 (lower-case hex) over each file's hex
    /// digest followed by `\n`, in load order.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Where rule `idx` is defined: `path:line`.
    pub fn location(&self, idx: RuleIdx) -> String {
        let rule = self.rule(idx);
        self.place(rule.file, rule.line)
    }

    /// The network holding `ip` by the longest prefix (IPv4-mapped IPv6 addresses are taken as
    /// IPv4), `exclude` networks included, or `None` outside every network.
    pub fn network_for(&self, ip: IpAddr) -> Option<NetworkIdx> {
        self.network_index
            .find(ip)
            .map(|hit| NetworkIdx(hit.network))
    }

    /// Like [`RuleSet::network_for`], also naming the prefix that matched: for explaining a
    /// verdict ("77.74.176.10 is in 77.74.176.0/21, AS200107").
    pub fn explain_network(&self, ip: IpAddr) -> Option<(NetworkIdx, IpPrefix)> {
        let hit = self.network_index.find(ip)?;
        let network = self.networks.get(hit.network as usize)?;
        let prefix = network.prefixes.get(hit.prefix as usize)?;
        Some((NetworkIdx(hit.network), *prefix))
    }

    /// The network at `idx`. An index from another set gives an empty `exclude` placeholder.
    pub fn network(&self, idx: NetworkIdx) -> &Network {
        self.get_network(idx).unwrap_or(&NO_NETWORK)
    }

    /// The network at `idx`, if this set has it.
    pub fn get_network(&self, idx: NetworkIdx) -> Option<&Network> {
        self.networks.get(idx.0 as usize)
    }

    /// Every network, in load order (`NetworkIdx(i)` is `networks()[i]`).
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// Number of prefixes over every network.
    pub fn prefix_count(&self) -> usize {
        self.networks.iter().map(|n| n.prefixes.len()).sum()
    }

    /// Where network `idx` is defined: `path:line`.
    pub fn network_location(&self, idx: NetworkIdx) -> String {
        let network = self.network(idx);
        self.place(network.file, network.line)
    }

    fn place(&self, file: u32, line: u32) -> String {
        let path = self
            .files
            .get(file as usize)
            .map_or("?", |f| f.path.as_str());
        format!("{path}:{line}")
    }

    /// The winning match, `ignore` rules included; nothing for names that are not host names.
    fn resolve(&self, host: &HostName) -> Option<Hit> {
        // Keys are looked up as bytes: a host name is ASCII, and the text form is needed only
        // to match a pattern's prefix.
        let bytes = host.as_bytes();
        // From the last label leftwards, the longest suffix of the name that the index holds
        // (a key or the end of one) and whether any of them matches something. Most names
        // on a link match nothing and stop after one or two short lookups (`net`,
        // `example.net`), where the walk below would look up every suffix.
        let mut deepest = None;
        let mut labels_left = 0usize;
        let mut any_match = false;
        let mut at = memchr::memrchr(b'.', bytes).map_or(0, |dot| dot.saturating_add(1));
        while let Some(entry) = bytes.get(at..).and_then(|key| self.by_name.get(key)) {
            deepest = Some(at);
            labels_left = labels_left.saturating_add(1);
            any_match |= entry.matches_something();
            let Some(dot) = at.checked_sub(1) else {
                break;
            };
            at = bytes
                .get(..dot)
                .and_then(|head| memchr::memrchr(b'.', head))
                .map_or(0, |d| d.saturating_add(1));
        }
        let deepest = deepest.filter(|_| any_match)?;
        if !is_host_name(bytes) {
            return None;
        }
        // Longest suffix first, as rules rank them: an exact name, then the most specific
        // pattern, then the longest suffix rule.
        let mut best_suffix: Option<Hit> = None;
        let mut start = Some(deepest);
        // One iteration per label boundary: at most 127 for a 253-byte name (RFC 1035 §2.3.4).
        while let Some(at) = start {
            let rest = bytes.get(at..).unwrap_or(&[]);
            start = memchr::memchr(b'.', rest)
                .and_then(|dot| dot.checked_add(1))
                .and_then(|skip| at.checked_add(skip));
            let labels = labels_left;
            labels_left = labels_left.saturating_sub(1);
            if labels > self.max_key_labels {
                continue;
            }
            if best_suffix.is_some() && labels < self.min_pattern_key_labels {
                break;
            }
            let Some(entry) = bytes.get(at..).and_then(|key| self.by_name.get(key)) else {
                continue;
            };
            if at == 0 {
                if let Some(hit) = entry.exact {
                    return Some(hit);
                }
            } else if entry.patterns_len > 0 {
                let name_prefix = host.as_str().get(..at.saturating_sub(1)).unwrap_or("");
                let from = entry.patterns_start as usize;
                let to = from.saturating_add(entry.patterns_len as usize);
                for p in self.patterns.get(from..to).unwrap_or(&[]) {
                    if pattern::prefix_matches(&p.prefix, name_prefix) {
                        return Some(p.hit);
                    }
                }
            }
            if best_suffix.is_none() {
                best_suffix = entry.suffix;
            }
        }
        best_suffix
    }
}

#[cfg(test)]
impl RuleSet {
    /// [`RuleSet::resolve`] as it was before the walk from the last label: every suffix of the
    /// name looked up, longest first. The tests compare the two.
    fn resolve_every_suffix(&self, host: &HostName) -> Option<Hit> {
        let bytes = host.as_bytes();
        if !is_host_name(bytes) {
            return None;
        }
        let mut labels_left = memchr::memchr_iter(b'.', bytes).count().saturating_add(1);
        let mut best_suffix: Option<Hit> = None;
        let mut start = Some(0usize);
        while let Some(at) = start {
            let rest = bytes.get(at..).unwrap_or(&[]);
            start = memchr::memchr(b'.', rest)
                .and_then(|dot| dot.checked_add(1))
                .and_then(|skip| at.checked_add(skip));
            let labels = labels_left;
            labels_left = labels_left.saturating_sub(1);
            if labels > self.max_key_labels {
                continue;
            }
            if best_suffix.is_some() && labels < self.min_pattern_key_labels {
                break;
            }
            let Some(entry) = bytes.get(at..).and_then(|key| self.by_name.get(key)) else {
                continue;
            };
            if at == 0 {
                if let Some(hit) = entry.exact {
                    return Some(hit);
                }
            } else if entry.patterns_len > 0 {
                let name_prefix = host.as_str().get(..at.saturating_sub(1)).unwrap_or("");
                let from = entry.patterns_start as usize;
                let to = from.saturating_add(entry.patterns_len as usize);
                for p in self.patterns.get(from..to).unwrap_or(&[]) {
                    if pattern::prefix_matches(&p.prefix, name_prefix) {
                        return Some(p.hit);
                    }
                }
            }
            if best_suffix.is_none() {
                best_suffix = entry.suffix;
            }
        }
        best_suffix
    }
}

/// Whether `name` (already a [`HostName`]: labels of `[a-z0-9_-]`, 1–63 bytes) is a host name
/// as servers are named (RFC 952, RFC 1123 §2.1): letters, digits and hyphens only, no label
/// starting or ending with a hyphen. `_` appears in DNS owner names that are not hosts
/// (`_spf.`, `_dmarc.`, `_ldap._tcp.`, RFC 8552 §1.1), looked up for TXT or SRV records by mail
/// and directory software, never contacted by a Kaspersky product. One `memchr2` scan visits
/// only the `_` and `-` bytes.
pub fn is_host_name(name: &[u8]) -> bool {
    memchr::memchr2_iter(b'_', b'-', name).all(|at| {
        let before = at.checked_sub(1).and_then(|i| name.get(i));
        let after = at.checked_add(1).and_then(|i| name.get(i));
        // Only `-` reaches the second test: `_` fails the first.
        name.get(at) == Some(&b'-')
            && matches!(before, Some(b) if *b != b'.')
            && matches!(after, Some(b) if *b != b'.')
    })
}

/// A rule set for tests elsewhere in the crate: one high-confidence update rule per id, matching
/// `<id>.example` and its subdomains, in the order given (so rule indexes follow `ids`).
#[cfg(test)]
pub(crate) fn suffix_rules_for_tests(ids: &[&str]) -> std::sync::Arc<RuleSet> {
    let text: String = ids
        .iter()
        .map(|id| {
            format!(
                "[[rule]]\nid = \"{id}\"\nmatch = [\"suffix:{id}.example\"]\n\
                 category = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\n\
                 source = \"t\"\n\n"
            )
        })
        .collect();
    std::sync::Arc::new(RuleSet::parse("t.toml", &text).expect("rules"))
}

#[cfg(test)]
mod tests;
