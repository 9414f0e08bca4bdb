//! Match strings (`exact:`, `suffix:`, `pattern:`): parsing, validation and label matching.
//!
//! Input: one match string from a rule file. Output: a [`NameMatch`] that owns its (validated,
//! lower-case) name, or a one-line problem naming what is wrong. Matching a name against a
//! pattern works on borrowed `&str` labels and never allocates.
//!
//! Names are host names (RFC 952, RFC 1123 §2.1, the letters-digits-hyphen rule of RFC 1035
//! §2.3.1): `[a-z0-9-]` labels of 1–63 bytes that neither start nor end with `-`, joined by
//! dots, at most 253 bytes (RFC 1035 §2.3.4). `_` is refused: [`super::RuleSet::lookup`] never
//! matches a name holding one (such owner names, `_spf.` or `_dmarc.`, are not servers), so a
//! rule naming one could never fire. Rule names must already be lower-case and carry no
//! trailing dot, so what is written in the file is exactly what is compared.
//! A pattern label may also hold `#` (exactly one ASCII digit) and at most one `*` (any run,
//! possibly empty, of `[a-z0-9-]` inside that label; never a dot, so a `*` cannot span labels).

use std::fmt;

use crate::proto::{MAX_HOST_NAME_LEN, MAX_LABEL_LEN};

/// How a rule names the hosts it covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NameMatch {
    /// `exact:NAME`: only NAME itself.
    Exact(String),
    /// `suffix:NAME`: NAME and every name ending in `.NAME` (label boundary).
    Suffix(String),
    /// `pattern:PATTERN`: names with as many labels as PATTERN, each label matching the pattern
    /// label (`#` = one digit, `*` = any run of `[a-z0-9-]`).
    Pattern(String),
}

impl NameMatch {
    /// The kind as written in the rule file: `exact`, `suffix` or `pattern`.
    pub fn kind(&self) -> &'static str {
        match self {
            NameMatch::Exact(_) => "exact",
            NameMatch::Suffix(_) => "suffix",
            NameMatch::Pattern(_) => "pattern",
        }
    }

    /// The name or pattern after the `kind:` prefix.
    pub fn name(&self) -> &str {
        match self {
            NameMatch::Exact(n) | NameMatch::Suffix(n) | NameMatch::Pattern(n) => n,
        }
    }

    /// Parses `kind:name`. The error is the problem only (the caller adds file and line).
    pub fn parse(text: &str) -> Result<NameMatch, String> {
        let Some((kind, name)) = text.split_once(':') else {
            return Err(format!(
                "match {text:?} has no kind (expected exact:NAME, suffix:NAME or pattern:PATTERN)"
            ));
        };
        let wildcards_allowed = match kind {
            "exact" | "suffix" => false,
            "pattern" => true,
            _ => {
                return Err(format!(
                    "match {text:?} has unknown kind {kind:?} (expected exact, suffix or pattern)"
                ))
            }
        };
        check_name(text, name, wildcards_allowed)?;
        let name = name.to_owned();
        Ok(match kind {
            "exact" => NameMatch::Exact(name),
            "suffix" => NameMatch::Suffix(name),
            _ => NameMatch::Pattern(name),
        })
    }
}

impl fmt::Display for NameMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.name())
    }
}

/// Checks the name part of match string `text`; patterns may use `#` and one `*` per label and
/// must contain at least one of them and end in at least one literal label.
fn check_name(text: &str, name: &str, wildcards_allowed: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("match {text:?} has an empty name"));
    }
    if name.len() > MAX_HOST_NAME_LEN {
        return Err(format!(
            "match {text:?} is longer than {MAX_HOST_NAME_LEN} characters"
        ));
    }
    let mut wildcard_labels = 0usize;
    let mut last_label_is_literal = false;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("match {text:?} has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "match {text:?} has a label longer than {MAX_LABEL_LEN} characters"
            ));
        }
        let mut stars = 0usize;
        let mut wild = false;
        for c in label.chars() {
            match c {
                'a'..='z' | '0'..='9' | '-' => {}
                '#' | '*' if wildcards_allowed => {
                    wild = true;
                    if c == '*' {
                        stars += 1;
                    }
                }
                _ => {
                    let expected = if wildcards_allowed {
                        "a-z, 0-9, '-', '.', '#' or '*'"
                    } else {
                        "a-z, 0-9, '-' or '.'"
                    };
                    return Err(format!(
                        "match {text:?} has invalid character {c:?} (expected {expected})"
                    ));
                }
            }
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "match {text:?} has a label starting or ending with '-' (host names do not, \
                 RFC 952)"
            ));
        }
        if stars > 1 {
            return Err(format!(
                "match {text:?} has more than one '*' in label {label:?}"
            ));
        }
        if wild {
            wildcard_labels += 1;
        }
        last_label_is_literal = !wild;
    }
    if wildcards_allowed {
        if wildcard_labels == 0 {
            return Err(format!(
                "match {text:?} has no '#' or '*' (use exact: for a plain name)"
            ));
        }
        if !last_label_is_literal {
            return Err(format!(
                "match {text:?} must end in a label without '#' or '*'"
            ));
        }
    }
    Ok(())
}

/// A pattern split at its last wildcard label: `prefix` holds the labels up to and including the
/// last label with `#`/`*`, `literal_suffix` the plain labels after it (never empty, checked by
/// [`NameMatch::parse`]). `dnl-##.geo.kaspersky.com` → (`dnl-##`, `geo.kaspersky.com`).
pub(crate) fn split_pattern(pattern: &str) -> Option<(&str, &str)> {
    let mut end_of_last_wild = None;
    let mut start = 0usize;
    for label in pattern.split('.') {
        let end = start.checked_add(label.len())?;
        if label.contains(['#', '*']) {
            end_of_last_wild = Some(end);
        }
        start = end.checked_add(1)?;
    }
    let end = end_of_last_wild?;
    let prefix = pattern.get(..end)?;
    let literal_suffix = pattern.get(end.checked_add(1)?..)?;
    if literal_suffix.is_empty() {
        return None;
    }
    Some((prefix, literal_suffix))
}

/// Bytes of a pattern that are not wildcards: used to order patterns sharing a literal suffix
/// (more literal bytes = more specific).
pub(crate) fn literal_len(pattern: &str) -> usize {
    pattern
        .bytes()
        .filter(|b| !matches!(b, b'#' | b'*'))
        .count()
}

/// Whether the labels of `name_prefix` match the labels of `pattern_prefix` one for one.
pub(crate) fn prefix_matches(pattern_prefix: &str, name_prefix: &str) -> bool {
    let mut pattern_labels = pattern_prefix.split('.');
    let mut name_labels = name_prefix.split('.');
    loop {
        match (pattern_labels.next(), name_labels.next()) {
            (Some(p), Some(n)) => {
                if !label_matches(p.as_bytes(), n.as_bytes()) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// What a `*` may absorb: the LDH characters of RFC 1035 §2.3.1 (not `_`, not `.`).
fn star_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

/// Pattern bytes without `*` against label bytes of the same length: `#` is one digit.
fn fixed_matches(pattern: &[u8], label: &[u8]) -> bool {
    pattern.len() == label.len()
        && pattern.iter().zip(label).all(|(&p, &l)| {
            if p == b'#' {
                l.is_ascii_digit()
            } else {
                p == l
            }
        })
}

/// One pattern label (at most one `*`, enforced at load) against one name label.
fn label_matches(pattern: &[u8], label: &[u8]) -> bool {
    let Some(star) = pattern.iter().position(|&b| b == b'*') else {
        return fixed_matches(pattern, label);
    };
    let (head, rest) = pattern.split_at(star);
    let tail = rest.get(1..).unwrap_or(&[]);
    let Some(fixed) = head.len().checked_add(tail.len()) else {
        return false;
    };
    let Some(middle_len) = label.len().checked_sub(fixed) else {
        return false;
    };
    let Some((label_head, rest)) = label.split_at_checked(head.len()) else {
        return false;
    };
    let Some((middle, label_tail)) = rest.split_at_checked(middle_len) else {
        return false;
    };
    fixed_matches(head, label_head)
        && fixed_matches(tail, label_tail)
        && middle.iter().all(|&b| star_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern_matches(pattern: &str, name: &str) -> bool {
        let (prefix, suffix) = split_pattern(pattern).unwrap();
        match name.strip_suffix(suffix) {
            Some(rest) => match rest.strip_suffix('.') {
                Some(name_prefix) => prefix_matches(prefix, name_prefix),
                None => false,
            },
            None => false,
        }
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            NameMatch::parse("exact:a.example"),
            Ok(NameMatch::Exact("a.example".into()))
        );
        assert_eq!(
            NameMatch::parse("suffix:example"),
            Ok(NameMatch::Suffix("example".into()))
        );
        assert_eq!(
            NameMatch::parse("pattern:dnl-##.geo.kaspersky.com"),
            Ok(NameMatch::Pattern("dnl-##.geo.kaspersky.com".into()))
        );
        assert_eq!(
            NameMatch::parse("pattern:mx*.kaspersky-labs.com")
                .unwrap()
                .to_string(),
            "pattern:mx*.kaspersky-labs.com"
        );
    }

    #[test]
    fn rejects_bad_match_strings() {
        let err = |s: &str| NameMatch::parse(s).unwrap_err();
        assert_eq!(err("suffix:"), r#"match "suffix:" has an empty name"#);
        assert_eq!(
            err("kaspersky.com"),
            r#"match "kaspersky.com" has no kind (expected exact:NAME, suffix:NAME or pattern:PATTERN)"#
        );
        assert_eq!(
            err("regex:a.b"),
            r#"match "regex:a.b" has unknown kind "regex" (expected exact, suffix or pattern)"#
        );
        assert_eq!(
            err("exact:a..b"),
            r#"match "exact:a..b" has an empty label"#
        );
        assert_eq!(
            err("suffix:kaspersky.com."),
            r#"match "suffix:kaspersky.com." has an empty label"#
        );
        assert_eq!(
            err("suffix:.kaspersky.com"),
            r#"match "suffix:.kaspersky.com" has an empty label"#
        );
        assert_eq!(
            err("exact:Kaspersky.com"),
            r#"match "exact:Kaspersky.com" has invalid character 'K' (expected a-z, 0-9, '-' or '.')"#
        );
        assert_eq!(
            err("suffix:*.kaspersky.com"),
            r#"match "suffix:*.kaspersky.com" has invalid character '*' (expected a-z, 0-9, '-' or '.')"#
        );
        assert_eq!(
            err("pattern:a b.com"),
            r#"match "pattern:a b.com" has invalid character ' ' (expected a-z, 0-9, '-', '.', '#' or '*')"#
        );
        assert_eq!(
            err("exact:_spf.kaspersky-labs.com"),
            r#"match "exact:_spf.kaspersky-labs.com" has invalid character '_' (expected a-z, 0-9, '-' or '.')"#
        );
        assert_eq!(
            err("pattern:a_*.example"),
            r#"match "pattern:a_*.example" has invalid character '_' (expected a-z, 0-9, '-', '.', '#' or '*')"#
        );
        assert_eq!(
            err("suffix:-x.example"),
            r#"match "suffix:-x.example" has a label starting or ending with '-' (host names do not, RFC 952)"#
        );
        assert_eq!(
            err("exact:x.example-"),
            r#"match "exact:x.example-" has a label starting or ending with '-' (host names do not, RFC 952)"#
        );
        assert_eq!(
            err("pattern:-*.example"),
            r#"match "pattern:-*.example" has a label starting or ending with '-' (host names do not, RFC 952)"#
        );
        assert!(NameMatch::parse("pattern:ksn-*-geo.kaspersky-labs.com").is_ok());
        assert!(NameMatch::parse("exact:xn--80ak6aa92e.com").is_ok());
        assert_eq!(
            err("pattern:a*b*.com"),
            r#"match "pattern:a*b*.com" has more than one '*' in label "a*b*""#
        );
        assert_eq!(
            err("pattern:www.kaspersky.com"),
            r#"match "pattern:www.kaspersky.com" has no '#' or '*' (use exact: for a plain name)"#
        );
        assert_eq!(
            err("pattern:kaspersky.*"),
            r#"match "pattern:kaspersky.*" must end in a label without '#' or '*'"#
        );
        let long_label = format!("exact:{}.com", "a".repeat(64));
        assert_eq!(
            err(&long_label),
            format!("match {long_label:?} has a label longer than 63 characters")
        );
        let long_name = format!("exact:{}bb", "a.".repeat(126));
        assert_eq!(
            err(&long_name),
            format!("match {long_name:?} is longer than 253 characters")
        );
        assert!(NameMatch::parse(&format!("exact:{}", "a".repeat(63))).is_ok());
    }

    #[test]
    fn splits_pattern_at_last_wildcard_label() {
        assert_eq!(
            split_pattern("dnl-##.geo.kaspersky.com"),
            Some(("dnl-##", "geo.kaspersky.com"))
        );
        assert_eq!(
            split_pattern("a*.b.c#.d.example"),
            Some(("a*.b.c#", "d.example"))
        );
        assert_eq!(split_pattern("a.b.example"), None);
        assert_eq!(split_pattern("a.b*"), None);
    }

    #[test]
    fn hash_is_exactly_one_digit() {
        let p = "dnl-##.geo.kaspersky.com";
        assert!(pattern_matches(p, "dnl-01.geo.kaspersky.com"));
        assert!(pattern_matches(p, "dnl-19.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "dnl-1.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "dnl-123.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "dnl-ab.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "dnl-0a.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "xdnl-01.geo.kaspersky.com"));
        assert!(!pattern_matches(p, "a.dnl-01.geo.kaspersky.com"));
    }

    #[test]
    fn star_stays_inside_one_label() {
        let p = "ksn-*-geo.kaspersky-labs.com";
        assert!(pattern_matches(p, "ksn-file-geo.kaspersky-labs.com"));
        assert!(pattern_matches(p, "ksn-crypto-url-geo.kaspersky-labs.com"));
        assert!(pattern_matches(p, "ksn--geo.kaspersky-labs.com"));
        assert!(!pattern_matches(p, "ksn-geo.kaspersky-labs.com"));
        assert!(!pattern_matches(p, "ksn-a.b-geo.kaspersky-labs.com"));
        assert!(!pattern_matches(p, "ksn-a_b-geo.kaspersky-labs.com"));
        assert!(!pattern_matches(p, "ksn-file-geox.kaspersky-labs.com"));
        let mx = "mx*.kaspersky-labs.com";
        assert!(pattern_matches(mx, "mx.kaspersky-labs.com"));
        assert!(pattern_matches(mx, "mx13.kaspersky-labs.com"));
        assert!(!pattern_matches(mx, "smx13.kaspersky-labs.com"));
        assert!(!pattern_matches(mx, "a.mx13.kaspersky-labs.com"));
    }

    #[test]
    fn star_and_hash_combine() {
        assert!(label_matches(b"#*#", b"12"));
        assert!(label_matches(b"#*#", b"1ab2"));
        assert!(!label_matches(b"#*#", b"1"));
        assert!(!label_matches(b"#*#", b"1abc"));
        assert!(label_matches(b"*", b""));
        assert!(label_matches(b"*", b"abc-9"));
        assert!(!label_matches(b"*", b"a_b"));
        assert!(!label_matches(b"abc*abc", b"abcab"));
    }

    #[test]
    fn label_count_must_be_equal() {
        assert!(prefix_matches("a*.b", "ax.b"));
        assert!(!prefix_matches("a*.b", "ax"));
        assert!(!prefix_matches("a*", "ax.b"));
    }

    #[test]
    fn literal_len_ignores_wildcards() {
        assert_eq!(literal_len("dnl-##.geo"), 8);
        assert_eq!(literal_len("mx*.k"), 4);
    }
}
