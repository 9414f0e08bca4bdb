//! Reading and validating rule files, and building the name and address indexes.
//!
//! Input: paths or (origin, text) pairs. Output: a [`RuleSet`] or the first [`RuleError`].
//! Rule files are operator input, read once at start or reload, never on the packet path; the
//! caps in the parent module bound what one load may read and build.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::network::{IpPrefix, NetHit, NetworkIndex, NetworkUse, Pending};
use super::pattern::{self, NameMatch};
use super::{
    Category, CompiledPattern, Confidence, Entry, Hit, Network, ProductClass, Rule, RuleError,
    RuleErrorKind, RuleFile, RuleIdx, RuleSet, MAX_MATCHES_PER_RULE, MAX_NETWORKS,
    MAX_PATTERNS_PER_SUFFIX, MAX_PREFIXES, MAX_PREFIXES_PER_NETWORK, MAX_RULES, MAX_RULE_FILES,
    MAX_RULE_FILE_BYTES, MAX_RULE_ID_LEN,
};

/// A rule file: `[[rule]]` and `[[network]]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    network: Vec<RawNetwork>,
}

/// One `[[rule]]` table as written; values are checked by [`Builder::add_rule`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(rename = "match")]
    matches: Spanned<Vec<Spanned<String>>>,
    category: Spanned<String>,
    confidence: Spanned<String>,
    product: Spanned<String>,
    source: Spanned<String>,
}

/// One `[[network]]` table as written; values are checked by [`Builder::add_network`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    id: Spanned<String>,
    asn: Spanned<i64>,
    prefixes: Spanned<Vec<Spanned<String>>>,
    #[serde(rename = "use")]
    use_: Spanned<String>,
    source: Spanned<String>,
    retrieved: Spanned<String>,
}

/// Byte offset → 1-based line, by binary search over the newline offsets of one text.
struct Lines {
    newlines: Vec<usize>,
}

impl Lines {
    fn new(text: &[u8]) -> Lines {
        Lines {
            newlines: memchr::memchr_iter(b'\n', text).collect(),
        }
    }

    fn line(&self, offset: usize) -> u32 {
        let before = self.newlines.partition_point(|&nl| nl < offset);
        u32::try_from(before).unwrap_or(u32::MAX).saturating_add(1)
    }
}

/// Where a rule, network, match string or prefix was first defined, for duplicate messages.
/// `rule` is the index of the rule (or network) in its own list.
#[derive(Clone, Copy)]
struct Defined {
    rule: u32,
    file: u32,
    line: u32,
}

struct Builder {
    /// [`MAX_RULES`], lowered by tests so that the cap check runs without 100 000 rules.
    max_rules: usize,
    /// [`MAX_PREFIXES`], lowered by tests likewise.
    max_prefixes: usize,
    rules: Vec<Rule>,
    networks: Vec<Network>,
    prefix_count: usize,
    files: Vec<RuleFile>,
    /// Rule and network ids share one namespace: both are metric labels and report keys.
    ids: HashMap<String, Defined>,
    matches: HashMap<NameMatch, Defined>,
    prefixes: HashMap<IpPrefix, Defined>,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            max_rules: MAX_RULES,
            max_prefixes: MAX_PREFIXES,
            rules: Vec::new(),
            networks: Vec::new(),
            prefix_count: 0,
            files: Vec::new(),
            ids: HashMap::new(),
            matches: HashMap::new(),
            prefixes: HashMap::new(),
        }
    }
}

pub(super) fn load(paths: &[PathBuf]) -> Result<RuleSet, RuleError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| io_error(&origin, &e))?;
        if meta.is_dir() {
            let listed = toml_files_in(path, &origin)?;
            if listed.is_empty() {
                return Err(error(
                    RuleErrorKind::NoRules,
                    &origin,
                    None,
                    "directory has no *.toml rule files".to_owned(),
                ));
            }
            files.extend(listed);
        } else {
            files.push(path.clone());
        }
        if files.len() > MAX_RULE_FILES {
            return Err(error(
                RuleErrorKind::TooMany,
                &origin,
                None,
                format!("more than {MAX_RULE_FILES} rule files"),
            ));
        }
    }
    let mut builder = Builder::default();
    for path in &files {
        let origin = path.display().to_string();
        let text = read_rule_file(path, &origin)?;
        builder.add_source(&origin, &text)?;
    }
    let first = files
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no rule paths)".to_owned());
    builder.finish(&first)
}

pub(super) fn parse_sources(sources: &[(&str, &str)]) -> Result<RuleSet, RuleError> {
    parse_sources_capped(sources, MAX_RULES)
}

/// [`parse_sources`] with a lower rule cap (`max_rules` ≤ [`MAX_RULES`]).
pub(super) fn parse_sources_capped(
    sources: &[(&str, &str)],
    max_rules: usize,
) -> Result<RuleSet, RuleError> {
    parse_sources_with_caps(sources, max_rules, MAX_PREFIXES)
}

/// [`parse_sources`] with lower rule and prefix caps (each at most the real cap).
pub(super) fn parse_sources_with_caps(
    sources: &[(&str, &str)],
    max_rules: usize,
    max_prefixes: usize,
) -> Result<RuleSet, RuleError> {
    let mut builder = Builder {
        max_rules: max_rules.min(MAX_RULES),
        max_prefixes: max_prefixes.min(MAX_PREFIXES),
        ..Builder::default()
    };
    for (origin, text) in sources {
        builder.add_source(origin, text)?;
    }
    let first = sources.first().map_or("(no rule sources)", |s| s.0);
    builder.finish(first)
}

/// The `*.toml` files directly in `dir`, sorted by file name (byte order).
fn toml_files_in(dir: &Path, origin: &str) -> Result<Vec<PathBuf>, RuleError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(origin, &e))? {
        let entry = entry.map_err(|e| io_error(origin, &e))?;
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
            if out.len() >= MAX_RULE_FILES {
                return Err(error(
                    RuleErrorKind::TooMany,
                    origin,
                    None,
                    format!("more than {MAX_RULE_FILES} rule files"),
                ));
            }
            out.push(path);
        }
    }
    out.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(out)
}

fn read_rule_file(path: &Path, origin: &str) -> Result<String, RuleError> {
    let file = fs::File::open(path).map_err(|e| io_error(origin, &e))?;
    let mut bytes = Vec::new();
    file.take(MAX_RULE_FILE_BYTES.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(origin, &e))?;
    if bytes.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(error(
            RuleErrorKind::TooLarge,
            origin,
            None,
            format!("file is larger than {MAX_RULE_FILE_BYTES} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = Lines::new(e.as_bytes()).line(e.utf8_error().valid_up_to());
        error(
            RuleErrorKind::NotUtf8,
            origin,
            Some(line),
            "file is not valid UTF-8".to_owned(),
        )
    })
}

fn io_error(origin: &str, e: &std::io::Error) -> RuleError {
    error(
        RuleErrorKind::Io,
        origin,
        None,
        format!("cannot read: {}", crate::fs_error::describe(e)),
    )
}

fn error(kind: RuleErrorKind, origin: &str, line: Option<u32>, message: String) -> RuleError {
    RuleError {
        kind,
        origin: origin.to_owned(),
        line,
        message,
    }
}

impl Builder {
    fn add_source(&mut self, origin: &str, text: &str) -> Result<(), RuleError> {
        if self.files.len() >= MAX_RULE_FILES {
            return Err(error(
                RuleErrorKind::TooMany,
                origin,
                None,
                format!("more than {MAX_RULE_FILES} rule files"),
            ));
        }
        if text.len() as u64 > MAX_RULE_FILE_BYTES {
            return Err(error(
                RuleErrorKind::TooLarge,
                origin,
                None,
                format!("file is larger than {MAX_RULE_FILE_BYTES} bytes"),
            ));
        }
        let lines = Lines::new(text.as_bytes());
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| lines.line(span.start));
            // toml messages may span lines; a rule error is one line.
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            error(RuleErrorKind::Syntax, origin, line, message)
        })?;
        let file = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        self.files.push(RuleFile {
            path: origin.to_owned(),
            sha256: crate::hex::lower_hex(&Sha256::digest(text.as_bytes())),
        });
        for raw_rule in raw.rule {
            self.add_rule(origin, &lines, file, raw_rule)?;
        }
        for raw_network in raw.network {
            self.add_network(origin, &lines, file, raw_network)?;
        }
        Ok(())
    }

    /// Checks the id of a `what` ("rule" or "network"): charset, length, and uniqueness
    /// across rules and networks.
    fn check_new_id(
        &self,
        what: &str,
        origin: &str,
        file: u32,
        id: &str,
        id_line: u32,
    ) -> Result<(), RuleError> {
        check_id(what, id).map_err(|m| error(RuleErrorKind::BadId, origin, Some(id_line), m))?;
        if let Some(first) = self.ids.get(id) {
            return Err(error(
                RuleErrorKind::DuplicateId,
                origin,
                Some(id_line),
                format!(
                    "duplicate {what} id {id:?} (first defined at {})",
                    self.place(file, *first)
                ),
            ));
        }
        Ok(())
    }

    /// `line 3` in the same file, `path:3` in another.
    fn place(&self, file: u32, defined: Defined) -> String {
        if defined.file == file {
            format!("line {}", defined.line)
        } else {
            let path = self
                .files
                .get(defined.file as usize)
                .map_or("?", |f| f.path.as_str());
            format!("{path}:{}", defined.line)
        }
    }

    fn add_rule(
        &mut self,
        origin: &str,
        lines: &Lines,
        file: u32,
        raw: RawRule,
    ) -> Result<(), RuleError> {
        let at = |span: std::ops::Range<usize>| Some(lines.line(span.start));
        let id_line = lines.line(raw.id.span().start);
        let id = raw.id.get_ref().as_str();
        if self.rules.len() >= self.max_rules {
            return Err(error(
                RuleErrorKind::TooMany,
                origin,
                Some(id_line),
                format!("more than {} rules", self.max_rules),
            ));
        }
        self.check_new_id("rule", origin, file, id, id_line)?;
        let category = Category::from_label(raw.category.get_ref()).ok_or_else(|| {
            let expected: Vec<&str> = Category::ALL.iter().map(|c| c.label()).collect();
            error(
                RuleErrorKind::UnknownCategory,
                origin,
                at(raw.category.span()),
                format!(
                    "unknown category {:?} (expected one of {})",
                    raw.category.get_ref(),
                    expected.join(", ")
                ),
            )
        })?;
        let confidence = Confidence::from_label(raw.confidence.get_ref()).ok_or_else(|| {
            error(
                RuleErrorKind::UnknownConfidence,
                origin,
                at(raw.confidence.span()),
                format!(
                    "unknown confidence {:?} (expected high, medium or low)",
                    raw.confidence.get_ref()
                ),
            )
        })?;
        let product = ProductClass::from_label(raw.product.get_ref()).ok_or_else(|| {
            let expected: Vec<&str> = ProductClass::ALL.iter().map(|p| p.label()).collect();
            error(
                RuleErrorKind::UnknownProduct,
                origin,
                at(raw.product.span()),
                format!(
                    "unknown product {:?} (expected one of {})",
                    raw.product.get_ref(),
                    expected.join(", ")
                ),
            )
        })?;
        if raw.source.get_ref().trim().is_empty() {
            return Err(error(
                RuleErrorKind::EmptySource,
                origin,
                at(raw.source.span()),
                format!("rule {id:?} has an empty source (say where the evidence comes from)"),
            ));
        }
        let raw_matches = raw.matches.get_ref();
        if raw_matches.is_empty() {
            return Err(error(
                RuleErrorKind::BadMatch,
                origin,
                at(raw.matches.span()),
                format!("rule {id:?} has no match"),
            ));
        }
        if raw_matches.len() > MAX_MATCHES_PER_RULE {
            return Err(error(
                RuleErrorKind::TooMany,
                origin,
                at(raw.matches.span()),
                format!("rule {id:?} has more than {MAX_MATCHES_PER_RULE} matches"),
            ));
        }
        let rule_idx = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        let mut matches = Vec::with_capacity(raw_matches.len());
        for raw_match in raw_matches {
            let line = lines.line(raw_match.span().start);
            let parsed = NameMatch::parse(raw_match.get_ref())
                .map_err(|m| error(RuleErrorKind::BadMatch, origin, Some(line), m))?;
            if let Some(first) = self.matches.get(&parsed) {
                let first_id = self
                    .rules
                    .get(first.rule as usize)
                    .map_or(id, |r| r.id.as_str());
                return Err(error(
                    RuleErrorKind::DuplicateMatch,
                    origin,
                    Some(line),
                    format!(
                        "duplicate match \"{parsed}\" (first used by rule {first_id:?} at {})",
                        self.place(file, *first)
                    ),
                ));
            }
            self.matches.insert(
                parsed.clone(),
                Defined {
                    rule: rule_idx,
                    file,
                    line,
                },
            );
            matches.push(parsed);
        }
        self.ids.insert(
            id.to_owned(),
            Defined {
                rule: rule_idx,
                file,
                line: id_line,
            },
        );
        self.rules.push(Rule {
            id: id.to_owned(),
            category,
            confidence,
            product,
            source: raw.source.into_inner(),
            matches,
            file,
            line: id_line,
        });
        Ok(())
    }

    fn add_network(
        &mut self,
        origin: &str,
        lines: &Lines,
        file: u32,
        raw: RawNetwork,
    ) -> Result<(), RuleError> {
        let at = |span: std::ops::Range<usize>| Some(lines.line(span.start));
        let id_line = lines.line(raw.id.span().start);
        let id = raw.id.get_ref().as_str();
        if self.networks.len() >= MAX_NETWORKS {
            return Err(error(
                RuleErrorKind::TooMany,
                origin,
                Some(id_line),
                format!("more than {MAX_NETWORKS} networks"),
            ));
        }
        self.check_new_id("network", origin, file, id, id_line)?;
        // AS 0 is reserved (RFC 7607 §4), 4294967295 too (RFC 7300 §3).
        let asn = match u32::try_from(*raw.asn.get_ref()) {
            Ok(asn) if asn != 0 && asn != u32::MAX => asn,
            _ => {
                return Err(error(
                    RuleErrorKind::BadAsn,
                    origin,
                    at(raw.asn.span()),
                    format!(
                        "network {id:?} has asn {} (expected an AS number, 1 to 4294967294)",
                        raw.asn.get_ref()
                    ),
                ))
            }
        };
        let use_ = NetworkUse::from_label(raw.use_.get_ref()).ok_or_else(|| {
            error(
                RuleErrorKind::UnknownUse,
                origin,
                at(raw.use_.span()),
                format!(
                    "unknown use {:?} (expected corroborate or exclude)",
                    raw.use_.get_ref()
                ),
            )
        })?;
        if raw.source.get_ref().trim().is_empty() {
            return Err(error(
                RuleErrorKind::EmptySource,
                origin,
                at(raw.source.span()),
                format!("network {id:?} has an empty source (say where the prefixes come from)"),
            ));
        }
        if !is_date(raw.retrieved.get_ref()) {
            return Err(error(
                RuleErrorKind::BadDate,
                origin,
                at(raw.retrieved.span()),
                format!(
                    "network {id:?} has retrieved {:?} (expected the date the prefixes were \
                     read, YYYY-MM-DD)",
                    raw.retrieved.get_ref()
                ),
            ));
        }
        let raw_prefixes = raw.prefixes.get_ref();
        if raw_prefixes.is_empty() {
            return Err(error(
                RuleErrorKind::BadPrefix,
                origin,
                at(raw.prefixes.span()),
                format!("network {id:?} has no prefix"),
            ));
        }
        if raw_prefixes.len() > MAX_PREFIXES_PER_NETWORK {
            return Err(error(
                RuleErrorKind::TooMany,
                origin,
                at(raw.prefixes.span()),
                format!("network {id:?} has more than {MAX_PREFIXES_PER_NETWORK} prefixes"),
            ));
        }
        let network_idx = u32::try_from(self.networks.len()).unwrap_or(u32::MAX);
        let mut prefixes = Vec::with_capacity(raw_prefixes.len());
        for raw_prefix in raw_prefixes {
            let line = lines.line(raw_prefix.span().start);
            if self.prefix_count >= self.max_prefixes {
                return Err(error(
                    RuleErrorKind::TooMany,
                    origin,
                    Some(line),
                    format!("more than {} prefixes", self.max_prefixes),
                ));
            }
            let prefix = IpPrefix::parse(raw_prefix.get_ref())
                .map_err(|m| error(RuleErrorKind::BadPrefix, origin, Some(line), m))?;
            if let Some(first) = self.prefixes.get(&prefix) {
                let first_id = self
                    .networks
                    .get(first.rule as usize)
                    .map_or(id, |n| n.id.as_str());
                return Err(error(
                    RuleErrorKind::DuplicatePrefix,
                    origin,
                    Some(line),
                    format!(
                        "duplicate prefix {prefix} (first listed by network {first_id:?} at {})",
                        self.place(file, *first)
                    ),
                ));
            }
            self.prefixes.insert(
                prefix,
                Defined {
                    rule: network_idx,
                    file,
                    line,
                },
            );
            self.prefix_count = self.prefix_count.saturating_add(1);
            prefixes.push(prefix);
        }
        self.ids.insert(
            id.to_owned(),
            Defined {
                rule: network_idx,
                file,
                line: id_line,
            },
        );
        self.networks.push(Network {
            id: id.to_owned(),
            asn,
            use_,
            source: raw.source.into_inner(),
            retrieved: raw.retrieved.into_inner(),
            prefixes,
            file,
            line: id_line,
        });
        Ok(())
    }

    /// Builds the index. `first_origin` names the source in the "no rules" error.
    fn finish(self, first_origin: &str) -> Result<RuleSet, RuleError> {
        if self.rules.is_empty() {
            return Err(error(
                RuleErrorKind::NoRules,
                first_origin,
                None,
                "no rules (a rule file holds [[rule]] tables)".to_owned(),
            ));
        }
        let mut by_name: foldhash::HashMap<Box<[u8]>, Entry> = foldhash::HashMap::default();
        // (literal suffix, literal bytes, rule, pattern prefix, hit), sorted into buckets below.
        let mut pending: Vec<(&str, usize, &str, Hit)> = Vec::new();
        for (rule_pos, rule) in self.rules.iter().enumerate() {
            let rule_idx = RuleIdx(u32::try_from(rule_pos).unwrap_or(u32::MAX));
            for (match_pos, m) in rule.matches.iter().enumerate() {
                let hit = Hit {
                    rule: rule_idx,
                    matcher: u32::try_from(match_pos).unwrap_or(u32::MAX),
                };
                match m {
                    // Duplicates were rejected in add_rule, so each slot is set once.
                    NameMatch::Exact(name) => {
                        by_name
                            .entry(name.as_str().as_bytes().into())
                            .or_default()
                            .exact = Some(hit);
                    }
                    NameMatch::Suffix(name) => {
                        by_name
                            .entry(name.as_str().as_bytes().into())
                            .or_default()
                            .suffix = Some(hit);
                    }
                    NameMatch::Pattern(p) => {
                        // NameMatch::parse guarantees a wildcard label and a literal last label.
                        if let Some((prefix, literal_suffix)) = pattern::split_pattern(p) {
                            pending.push((literal_suffix, pattern::literal_len(p), prefix, hit));
                        }
                    }
                }
            }
        }
        // Bucket order: same literal suffix together; within it, more literal bytes first,
        // then definition order (rule, then match position).
        pending.sort_by(|a, b| {
            a.0.cmp(b.0)
                .then(b.1.cmp(&a.1))
                .then(a.3.rule.cmp(&b.3.rule))
                .then(a.3.matcher.cmp(&b.3.matcher))
        });
        let mut patterns: Vec<CompiledPattern> = Vec::with_capacity(pending.len());
        for bucket in pending.chunk_by(|a, b| a.0 == b.0) {
            let Some(first) = bucket.first() else {
                continue;
            };
            if bucket.len() > MAX_PATTERNS_PER_SUFFIX {
                let rule = self.rules.get(first.3.rule.0 as usize);
                let origin = rule
                    .and_then(|r| self.files.get(r.file as usize))
                    .map_or(first_origin, |f| f.path.as_str());
                return Err(error(
                    RuleErrorKind::TooMany,
                    origin,
                    rule.map(|r| r.line),
                    format!(
                        "more than {MAX_PATTERNS_PER_SUFFIX} patterns end in {:?} \
                         (use exact names or a longer literal suffix)",
                        first.0
                    ),
                ));
            }
            let entry = by_name.entry(first.0.as_bytes().into()).or_default();
            entry.patterns_start = u32::try_from(patterns.len()).unwrap_or(u32::MAX);
            entry.patterns_len = u32::try_from(bucket.len()).unwrap_or(u32::MAX);
            patterns.extend(bucket.iter().map(|p| CompiledPattern {
                prefix: p.2.into(),
                hit: p.3,
            }));
        }
        let labels = |key: &[u8]| key.iter().filter(|&&b| b == b'.').count().saturating_add(1);
        let max_key_labels = by_name.keys().map(|k| labels(k)).max().unwrap_or(0);
        let min_pattern_key_labels = by_name
            .iter()
            .filter(|(_, e)| e.patterns_len > 0)
            .map(|(k, _)| labels(k))
            .min()
            .unwrap_or(usize::MAX);
        // Every label suffix of a key, as an entry matching nothing (see `Entry`); after the
        // counts above, which are about keys.
        let keys: Vec<Box<[u8]>> = by_name.keys().cloned().collect();
        for key in keys {
            let mut rest: &[u8] = &key;
            while let Some(dot) = memchr::memchr(b'.', rest) {
                let tail = rest.get(dot.saturating_add(1)..).unwrap_or(&[]);
                by_name.entry(tail.into()).or_default();
                rest = tail;
            }
        }
        let mut set_hash = Sha256::new();
        for f in &self.files {
            set_hash.update(f.sha256.as_bytes());
            set_hash.update(b"\n");
        }
        let pending: Vec<Pending> = self
            .networks
            .iter()
            .enumerate()
            .flat_map(|(n, network)| {
                network
                    .prefixes
                    .iter()
                    .enumerate()
                    .map(move |(i, prefix)| Pending {
                        prefix: *prefix,
                        hit: NetHit {
                            network: u32::try_from(n).unwrap_or(u32::MAX),
                            prefix: u32::try_from(i).unwrap_or(u32::MAX),
                        },
                    })
            })
            .collect();
        Ok(RuleSet {
            sha256: crate::hex::lower_hex(&set_hash.finalize()),
            rules: self.rules,
            files: self.files,
            by_name,
            patterns,
            max_key_labels,
            min_pattern_key_labels,
            network_index: NetworkIndex::build(&pending),
            networks: self.networks,
        })
    }
}

/// Rule and network ids: 1–64 bytes of `[a-z0-9-]` (they are metric labels).
fn check_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} id is empty"));
    }
    if id.len() > MAX_RULE_ID_LEN {
        return Err(format!(
            "{what} id {id:?} is longer than {MAX_RULE_ID_LEN} characters"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        return Err(format!(
            "{what} id {id:?} has invalid character {c:?} (expected a-z, 0-9 or '-')"
        ));
    }
    Ok(())
}

/// `YYYY-MM-DD` with a month 01–12 and a day 01–31 (a retrieval date, not a calendar check).
fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b.get(r)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u32>().ok())
    };
    b.len() == 10
        && b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && digits(0..4).is_some()
        && digits(5..7).is_some_and(|m| (1..=12).contains(&m))
        && digits(8..10).is_some_and(|d| (1..=31).contains(&d))
}
