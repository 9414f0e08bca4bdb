use std::fmt::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use super::*;

fn host(s: &str) -> HostName {
    HostName::parse(s.as_bytes()).unwrap()
}

/// One `[[rule]]` table; the product class follows the category (`none` for names that are
/// not install evidence, `kaspersky` otherwise).
fn rule_toml(id: &str, matches: &[&str], category: &str, confidence: &str) -> String {
    let product = match Category::from_label(category) {
        Some(c) if c.is_install_evidence() => "kaspersky",
        _ => "none",
    };
    rule_toml_product(id, matches, category, confidence, product)
}

/// One `[[rule]]` table with an explicit product class.
fn rule_toml_product(
    id: &str,
    matches: &[&str],
    category: &str,
    confidence: &str,
    product: &str,
) -> String {
    let list: Vec<String> = matches.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "[[rule]]\nid = {id:?}\nmatch = [{}]\ncategory = {category:?}\nconfidence = {confidence:?}\nproduct = {product:?}\nsource = \"test\"\n",
        list.join(", ")
    )
}

/// One `[[network]]` table.
fn network_toml(id: &str, asn: u32, prefixes: &[&str], use_: &str) -> String {
    let list: Vec<String> = prefixes.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[[network]]\nid = {id:?}\nasn = {asn}\nprefixes = [{}]\nuse = {use_:?}\nsource = \"test\"\nretrieved = \"2026-12-06\"\n",
        list.join(", ")
    )
}

fn set(text: &str) -> RuleSet {
    match RuleSet::parse("t.toml", text) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    }
}

fn err(text: &str) -> String {
    RuleSet::parse("t.toml", text).unwrap_err().to_string()
}

/// Id of the rule `lookup` returns.
fn found<'a>(set: &'a RuleSet, name: &str) -> Option<&'a str> {
    set.lookup(&host(name)).map(|i| set.rule(i).id.as_str())
}

const ONE_RULE: &str = "[[rule]]\nid = \"a\"\nmatch = [\"exact:a.example\"]\ncategory = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\nsource = \"test\"\n";

fn boundary_set() -> RuleSet {
    set(&[
        rule_toml("k", &["suffix:kaspersky.com"], "website", "low"),
        rule_toml("kl", &["suffix:kaspersky-labs.com"], "service", "medium"),
    ]
    .concat())
}

// ---- label boundaries, normalisation --------------------------------------------------------

#[test]
fn suffix_matches_the_name_itself_and_subdomains() {
    let s = boundary_set();
    assert_eq!(found(&s, "kaspersky.com"), Some("k"));
    assert_eq!(found(&s, "www.kaspersky.com"), Some("k"));
    assert_eq!(found(&s, "a.b.c.kaspersky.com"), Some("k"));
    assert_eq!(found(&s, "kaspersky-labs.com"), Some("kl"));
}

#[test]
fn suffix_needs_a_label_boundary_on_the_left() {
    let s = boundary_set();
    assert_eq!(found(&s, "notkaspersky.com"), None);
    assert_eq!(found(&s, "xkaspersky-labs.com"), None);
    assert_eq!(found(&s, "a.notkaspersky.com"), None);
    assert_eq!(found(&s, "kaspersky-labs.com-x.com"), None);
}

#[test]
fn suffix_needs_to_end_the_name() {
    let s = boundary_set();
    assert_eq!(found(&s, "kaspersky.com.attacker.example"), None);
    assert_eq!(found(&s, "kaspersky.comx"), None);
    assert_eq!(found(&s, "kaspersky"), None);
    assert_eq!(found(&s, "com"), None);
}

#[test]
fn case_and_trailing_dot_are_normalised_by_host_name() {
    let s = boundary_set();
    assert_eq!(found(&s, "WWW.Kaspersky.COM."), Some("k"));
    assert_eq!(found(&s, "DNL-01.GEO.KASPERSKY-LABS.COM"), Some("kl"));
}

#[test]
fn exact_matches_only_the_name() {
    let s = set(&rule_toml(
        "t",
        &["exact:touch.kaspersky.com"],
        "telemetry",
        "high",
    ));
    assert_eq!(found(&s, "touch.kaspersky.com"), Some("t"));
    assert_eq!(found(&s, "a.touch.kaspersky.com"), None);
    assert_eq!(found(&s, "kaspersky.com"), None);
    assert_eq!(found(&s, "xtouch.kaspersky.com"), None);
}

#[test]
fn names_that_are_not_host_names_match_nothing() {
    let s = set(&[
        rule_toml("k", &["suffix:kaspersky.com"], "website", "low"),
        rule_toml("kl", &["suffix:kaspersky-labs.com"], "service", "medium"),
        rule_toml("p", &["pattern:a*.kaspersky.com"], "update", "high"),
    ]
    .concat());
    assert_eq!(found(&s, "ab.kaspersky.com"), Some("p"));
    assert_eq!(found(&s, "a-b.kaspersky.com"), Some("p"));
    assert_eq!(found(&s, "xn--80ak6aa92e.kaspersky.com"), Some("k"));
    // `_` labels (SPF, DMARC, SRV owners) and hyphens at a label's edge are not host names.
    for name in [
        "_spf.kaspersky-labs.com",
        "_dmarc.kaspersky.com",
        "_ldap._tcp.kaspersky.com",
        "a_b.kaspersky.com",
        "x.a_b.kaspersky-labs.com",
        "-a.kaspersky.com",
        "a-.kaspersky.com",
        "a.-.kaspersky-labs.com",
        "-",
    ] {
        assert_eq!(found(&s, name), None, "{name}");
        assert_eq!(s.explain(&host(name)), None, "{name}");
    }
}

#[test]
fn host_name_check_is_ldh_with_inner_hyphens() {
    assert!(is_host_name(b"a"));
    assert!(is_host_name(b"a-b.c--d.e"));
    assert!(is_host_name(b"1-2.example"));
    assert!(!is_host_name(b"_spf.example"));
    assert!(!is_host_name(b"example_"));
    assert!(!is_host_name(b"-a.example"));
    assert!(!is_host_name(b"a-.example"));
    assert!(!is_host_name(b"a.example-"));
    assert!(!is_host_name(b"a.-example"));
    assert!(!is_host_name(b"-"));
}

// ---- patterns -------------------------------------------------------------------------------

#[test]
fn hash_pattern_requires_exactly_that_many_digits() {
    let s = set(&rule_toml(
        "dnl",
        &["pattern:dnl-##.geo.kaspersky.com"],
        "update",
        "high",
    ));
    assert_eq!(found(&s, "dnl-00.geo.kaspersky.com"), Some("dnl"));
    assert_eq!(found(&s, "dnl-19.geo.kaspersky.com"), Some("dnl"));
    assert_eq!(found(&s, "dnl-99.geo.kaspersky.com"), Some("dnl"));
    assert_eq!(found(&s, "dnl-1.geo.kaspersky.com"), None);
    assert_eq!(found(&s, "dnl-123.geo.kaspersky.com"), None);
    assert_eq!(found(&s, "dnl-ab.geo.kaspersky.com"), None);
    assert_eq!(found(&s, "x.dnl-01.geo.kaspersky.com"), None);
    assert_eq!(found(&s, "dnl-01.geo.kaspersky.com.evil.example"), None);
    assert_eq!(found(&s, "geo.kaspersky.com"), None);
}

#[test]
fn star_pattern_matches_within_one_label() {
    let s = set(&rule_toml(
        "ksn",
        &["pattern:ksn-*-geo.kaspersky-labs.com"],
        "ksn-cloud",
        "high",
    ));
    assert_eq!(found(&s, "ksn-file-geo.kaspersky-labs.com"), Some("ksn"));
    assert_eq!(
        found(&s, "ksn-crypto-wifiplus-geo.kaspersky-labs.com"),
        Some("ksn")
    );
    assert_eq!(found(&s, "ksn-geo.kaspersky-labs.com"), None);
    assert_eq!(found(&s, "ksn-a.b-geo.kaspersky-labs.com"), None);
    assert_eq!(found(&s, "a.ksn-file-geo.kaspersky-labs.com"), None);
}

#[test]
fn pattern_with_wildcards_in_several_labels() {
    let s = set(&rule_toml(
        "p",
        &["pattern:n#.*.upd.example"],
        "update",
        "high",
    ));
    assert_eq!(found(&s, "n1.eu.upd.example"), Some("p"));
    assert_eq!(found(&s, "n1.x.upd.example"), Some("p"));
    assert_eq!(found(&s, "n12.eu.upd.example"), None);
    assert_eq!(found(&s, "n1.upd.example"), None);
    assert_eq!(found(&s, "n1.a.b.upd.example"), None);
}

// ---- specificity ----------------------------------------------------------------------------

fn specificity_set() -> RuleSet {
    set(&[
        rule_toml("short", &["suffix:kaspersky.com"], "website", "low"),
        rule_toml("long", &["suffix:geo.kaspersky.com"], "service", "medium"),
        rule_toml(
            "pat",
            &["pattern:dnl-##.geo.kaspersky.com"],
            "update",
            "high",
        ),
        rule_toml(
            "ex",
            &["exact:dnl-07.geo.kaspersky.com"],
            "download",
            "medium",
        ),
        rule_toml(
            "wide-pat",
            &["pattern:dnl-*.kaspersky.com"],
            "update",
            "medium",
        ),
    ]
    .concat())
}

#[test]
fn exact_beats_pattern_and_suffix() {
    assert_eq!(
        found(&specificity_set(), "dnl-07.geo.kaspersky.com"),
        Some("ex")
    );
}

#[test]
fn pattern_beats_longer_suffix() {
    assert_eq!(
        found(&specificity_set(), "dnl-08.geo.kaspersky.com"),
        Some("pat")
    );
}

#[test]
fn pattern_with_shorter_literal_suffix_still_beats_any_suffix() {
    // `dnl-x.kaspersky.com`: suffix `kaspersky.com` matches first, but the pattern bucketed
    // under the same `kaspersky.com` key wins.
    assert_eq!(
        found(&specificity_set(), "dnl-x.kaspersky.com"),
        Some("wide-pat")
    );
    let s = set(&[
        rule_toml("long", &["suffix:b.example"], "service", "medium"),
        rule_toml("pat", &["pattern:a*.b.example"], "update", "high"),
        rule_toml("wide", &["pattern:a*.*.example"], "update", "low"),
    ]
    .concat());
    // `b.example` holds both a suffix and a pattern bucket: the pattern wins there; for
    // `ax.c.example` only the `example` bucket matches; `q.b.example` falls back to the suffix.
    assert_eq!(found(&s, "ax.b.example"), Some("pat"));
    assert_eq!(found(&s, "ax.c.example"), Some("wide"));
    assert_eq!(found(&s, "q.b.example"), Some("long"));
}

#[test]
fn longer_suffix_beats_shorter_suffix() {
    let s = specificity_set();
    assert_eq!(found(&s, "edge.geo.kaspersky.com"), Some("long"));
    assert_eq!(found(&s, "geo.kaspersky.com"), Some("long"));
    assert_eq!(found(&s, "www.kaspersky.com"), Some("short"));
}

#[test]
fn patterns_in_one_bucket_prefer_more_literal_bytes_then_definition_order() {
    let s = set(&[
        rule_toml("m", &["pattern:m*.example"], "ignore", "low"),
        rule_toml("mx", &["pattern:mx*.example"], "update", "high"),
        rule_toml("m2", &["pattern:*x#.example"], "update", "high"),
        rule_toml("m3", &["pattern:#x*.example"], "update", "high"),
    ]
    .concat());
    assert_eq!(found(&s, "mx1.example"), Some("mx"));
    assert_eq!(found(&s, "mail.example"), None); // `m` is an ignore rule
                                                 // `1x1` matches `*x#` and `#x*`, both with 9 literal bytes (`x.example`): m2 is first.
    assert_eq!(found(&s, "1x1.example"), Some("m2"));
}

#[test]
fn pattern_with_longer_literal_suffix_beats_other_patterns() {
    let s = set(&[
        rule_toml("wide", &["pattern:a*.*.example"], "update", "low"),
        rule_toml("narrow", &["pattern:a*.b.example"], "update", "high"),
    ]
    .concat());
    assert_eq!(found(&s, "ax.b.example"), Some("narrow"));
}

// ---- ignore ---------------------------------------------------------------------------------

#[test]
fn winning_ignore_rule_means_no_detection() {
    let s = set(&[
        rule_toml("kl", &["suffix:kaspersky-labs.com"], "service", "medium"),
        rule_toml("mail", &["pattern:mx*.kaspersky-labs.com"], "ignore", "low"),
    ]
    .concat());
    assert_eq!(found(&s, "mx13.kaspersky-labs.com"), None);
    assert_eq!(found(&s, "mx.kaspersky-labs.com"), None);
    let (idx, m) = s.explain(&host("mx13.kaspersky-labs.com")).unwrap();
    assert_eq!(s.rule(idx).id, "mail");
    assert_eq!(m.to_string(), "pattern:mx*.kaspersky-labs.com");
    assert_eq!(found(&s, "smx13.kaspersky-labs.com"), Some("kl"));
    assert_eq!(found(&s, "a.mx13.kaspersky-labs.com"), Some("kl"));
}

#[test]
fn explain_names_the_winning_match_string() {
    let s = set(&rule_toml(
        "two",
        &["exact:a.example", "suffix:b.example"],
        "update",
        "high",
    ));
    let (idx, m) = s.explain(&host("x.b.example")).unwrap();
    assert_eq!(
        (idx, m.to_string()),
        (RuleIdx(0), "suffix:b.example".to_owned())
    );
    assert_eq!(s.explain(&host("c.example")), None);
}

#[test]
fn rule_from_another_set_gives_placeholder_not_panic() {
    let s = set(ONE_RULE);
    assert_eq!(s.rule(RuleIdx(7)).id, "");
    assert_eq!(s.rule(RuleIdx(7)).category, Category::Ignore);
    assert_eq!(s.rule(RuleIdx(7)).product, ProductClass::None);
    assert_eq!(s.get(RuleIdx(7)), None);
    assert_eq!(s.rule(RuleIdx(0)).id, "a");
}

// ---- hostile names --------------------------------------------------------------------------

#[test]
fn longest_name_with_most_labels_is_looked_up() {
    let s = set(&[
        rule_toml("a", &["suffix:a"], "website", "low"),
        rule_toml("p", &["pattern:#.a"], "update", "high"),
    ]
    .concat());
    // 127 labels, 253 bytes: "a.a.…a"
    let longest = ["a"; 127].join(".");
    assert_eq!(longest.len(), 253);
    assert_eq!(found(&s, &longest), Some("a"));
    let digits = format!("{}.a", ["1"; 126].join("."));
    assert_eq!(digits.len(), 253);
    assert_eq!(found(&s, &digits), Some("a"));
    assert_eq!(found(&s, "1.a"), Some("p"));
}

#[test]
fn names_deeper_than_any_key_skip_to_matching_depth() {
    let s = boundary_set();
    let deep = format!("{}.kaspersky.com", ["x"; 100].join("."));
    assert_eq!(found(&s, &deep), Some("k"));
    let deep_miss = format!("{}.kaspersky.net", ["x"; 100].join("."));
    assert_eq!(found(&s, &deep_miss), None);
}

// ---- categories, confidences ----------------------------------------------------------------

#[test]
fn labels_round_trip() {
    for c in Category::ALL {
        assert_eq!(Category::from_label(c.label()), Some(*c));
    }
    for c in Confidence::ALL {
        assert_eq!(Confidence::from_label(c.label()), Some(*c));
    }
    for p in ProductClass::ALL {
        assert_eq!(ProductClass::from_label(p.label()), Some(*p));
    }
    assert_eq!(Category::ALL.len(), 13);
    assert_eq!(Category::KsnCloud.label(), "ksn-cloud");
    assert_eq!(Category::InjectedScript.label(), "injected-script");
    assert_eq!(Category::Mail.label(), "mail");
    let labels: Vec<&str> = ProductClass::ALL.iter().map(|p| p.label()).collect();
    assert_eq!(
        labels,
        ["antivirus", "antivirus-or-oem", "kaspersky", "oem", "none"]
    );
    assert_eq!(ProductClass::from_label("AV"), None);
    assert!(Confidence::Low < Confidence::Medium && Confidence::Medium < Confidence::High);
    assert_eq!(Confidence::from_label("HIGH"), None);
}

#[test]
fn install_evidence_is_what_products_contact() {
    let install: Vec<&str> = Category::ALL
        .iter()
        .filter(|c| c.is_install_evidence())
        .map(|c| c.label())
        .collect();
    assert_eq!(
        install,
        [
            "update",
            "ksn-cloud",
            "activation",
            "telemetry",
            "ksc-cloud",
            "certificate",
            "injected-script",
            "service"
        ]
    );
    for c in [
        Category::Portal,
        Category::Download,
        Category::Website,
        Category::Mail,
        Category::Ignore,
    ] {
        assert!(!c.is_install_evidence(), "{}", c.label());
    }
}

#[test]
fn rule_fields_are_kept() {
    let s = set(&format!(
        "# header\n\n{}",
        rule_toml(
            "k-1",
            &["suffix:kaspersky.com", "exact:kas.pr"],
            "website",
            "low"
        )
    ));
    let r = s.rule(RuleIdx(0));
    assert_eq!(r.id, "k-1");
    assert_eq!(r.category, Category::Website);
    assert_eq!(r.confidence, Confidence::Low);
    assert_eq!(r.product, ProductClass::None);
    assert_eq!(r.source, "test");
    assert_eq!(
        r.matches,
        vec![
            NameMatch::Suffix("kaspersky.com".into()),
            NameMatch::Exact("kas.pr".into())
        ]
    );
    assert_eq!((r.file, r.line), (0, 4));
    assert_eq!(s.location(RuleIdx(0)), "t.toml:4");
}

// ---- hashes ---------------------------------------------------------------------------------

#[test]
fn file_and_set_hashes() {
    let s = set(ONE_RULE);
    assert_eq!(
        s.files(),
        &[RuleFile {
            path: "t.toml".into(),
            sha256: "8556f3e97b536cadc852b7ad500e1f28c891aea18f79c39a75486aaf6090aa03".into(),
        }]
    );
    assert_eq!(
        s.sha256(),
        "c99a0343dccb5456ce83b9249664c43454a5742dbe6cae402a4919b08e457755"
    );
    let changed = set(&ONE_RULE.replace("test", "test2"));
    assert_ne!(changed.sha256(), s.sha256());
}

// ---- errors (exact text) --------------------------------------------------------------------

#[test]
fn error_toml_syntax_has_line() {
    let text = "[[rule]]\nid = \"a\"\nmatch = [\"exact:a.b\"\ncategory = \"update\"\n";
    assert_eq!(err(text), "t.toml:4: invalid array expected `]`");
    let e = RuleSet::parse("t.toml", text).unwrap_err();
    assert_eq!((e.kind, e.line), (RuleErrorKind::Syntax, Some(4)));
}

#[test]
fn error_unknown_key_in_rule() {
    let text = format!("{ONE_RULE}colour = \"red\"\n");
    assert_eq!(
        err(&text),
        "t.toml:8: unknown field `colour`, expected one of `id`, `match`, `category`, `confidence`, `product`, `source`"
    );
}

#[test]
fn error_unknown_top_level_table() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\n"),
        "t.toml:1: unknown field `rules`, expected `rule` or `network`"
    );
}

#[test]
fn error_missing_field() {
    let text = ONE_RULE.replace("source = \"test\"\n", "");
    assert_eq!(err(&text), "t.toml:1: missing field `source`");
}

#[test]
fn error_wrong_type() {
    let text = ONE_RULE.replace(
        "match = [\"exact:a.example\"]",
        "match = \"exact:a.example\"",
    );
    assert_eq!(
        err(&text),
        "t.toml:3: invalid type: string \"exact:a.example\", expected a sequence"
    );
}

#[test]
fn error_unknown_confidence() {
    let text = format!(
        "{ONE_RULE}\n{}",
        rule_toml("b", &["exact:b.example"], "update", "hgh")
    );
    assert_eq!(
        err(&text),
        r#"t.toml:13: unknown confidence "hgh" (expected high, medium or low)"#
    );
    let e = RuleSet::parse("t.toml", &text).unwrap_err();
    assert_eq!(e.kind, RuleErrorKind::UnknownConfidence);
}

#[test]
fn error_unknown_category() {
    let text = rule_toml("b", &["exact:b.example"], "updates", "high");
    assert_eq!(
        err(&text),
        "t.toml:4: unknown category \"updates\" (expected one of update, ksn-cloud, activation, \
         telemetry, portal, ksc-cloud, certificate, injected-script, download, service, website, \
         mail, ignore)"
    );
}

#[test]
fn error_duplicate_id_in_same_file() {
    let text = format!(
        "\n\n{ONE_RULE}\n{}",
        rule_toml("a", &["exact:b.example"], "update", "high")
    );
    assert_eq!(
        err(&text),
        r#"t.toml:12: duplicate rule id "a" (first defined at line 4)"#
    );
}

#[test]
fn error_duplicate_id_across_files() {
    let second = rule_toml("a", &["exact:b.example"], "update", "high");
    let e = RuleSet::parse_sources(&[("one.toml", ONE_RULE), ("two.toml", &second)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"two.toml:2: duplicate rule id "a" (first defined at one.toml:2)"#
    );
    assert_eq!(e.kind, RuleErrorKind::DuplicateId);
}

#[test]
fn error_duplicate_match_in_same_rule_and_across_rules() {
    let text = "[[rule]]\nid = \"a\"\nmatch = [\n  \"suffix:a.example\",\n  \"suffix:a.example\",\n]\ncategory = \"update\"\nconfidence = \"high\"\nproduct = \"kaspersky\"\nsource = \"x\"\n";
    assert_eq!(
        err(text),
        r#"t.toml:5: duplicate match "suffix:a.example" (first used by rule "a" at line 4)"#
    );
    let text = format!(
        "{ONE_RULE}{}",
        rule_toml("b", &["exact:a.example"], "update", "high")
    );
    assert_eq!(
        err(&text),
        r#"t.toml:10: duplicate match "exact:a.example" (first used by rule "a" at line 3)"#
    );
    let second = rule_toml("b", &["exact:a.example"], "update", "high");
    let e = RuleSet::parse_sources(&[("one.toml", ONE_RULE), ("two.toml", &second)]).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"two.toml:3: duplicate match "exact:a.example" (first used by rule "a" at one.toml:3)"#
    );
}

#[test]
fn same_name_as_exact_and_suffix_is_not_a_duplicate() {
    let s = set(&[
        rule_toml("e", &["exact:ksc.kaspersky.com"], "ksc-cloud", "medium"),
        rule_toml("s", &["suffix:ksc.kaspersky.com"], "ksc-cloud", "high"),
    ]
    .concat());
    assert_eq!(found(&s, "ksc.kaspersky.com"), Some("e"));
    assert_eq!(found(&s, "eu.ksc.kaspersky.com"), Some("s"));
}

#[test]
fn error_empty_suffix_name() {
    let text = rule_toml("a", &["suffix:"], "update", "high");
    assert_eq!(err(&text), r#"t.toml:3: match "suffix:" has an empty name"#);
}

#[test]
fn error_bad_match_strings_name_their_line() {
    let text = rule_toml("a", &["exact:Kaspersky.com"], "update", "high");
    assert_eq!(
        err(&text),
        r#"t.toml:3: match "exact:Kaspersky.com" has invalid character 'K' (expected a-z, 0-9, '-' or '.')"#
    );
    let text = rule_toml("a", &["glob:*.kaspersky.com"], "update", "high");
    assert_eq!(
        err(&text),
        r#"t.toml:3: match "glob:*.kaspersky.com" has unknown kind "glob" (expected exact, suffix or pattern)"#
    );
    let text = rule_toml("a", &["pattern:kaspersky.*"], "update", "high");
    assert_eq!(
        err(&text),
        r#"t.toml:3: match "pattern:kaspersky.*" must end in a label without '#' or '*'"#
    );
}

#[test]
fn error_no_match() {
    let text = rule_toml("a", &[], "update", "high");
    assert_eq!(err(&text), r#"t.toml:3: rule "a" has no match"#);
}

#[test]
fn error_too_many_matches() {
    let names: Vec<String> = (0..=MAX_MATCHES_PER_RULE)
        .map(|i| format!("exact:n{i}.example"))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let text = rule_toml("a", &refs, "update", "high");
    assert_eq!(
        err(&text),
        r#"t.toml:3: rule "a" has more than 1024 matches"#
    );
}

#[test]
fn error_bad_ids() {
    let text = rule_toml("Bad_Id", &["exact:a.example"], "update", "high");
    assert_eq!(
        err(&text),
        r#"t.toml:2: rule id "Bad_Id" has invalid character 'B' (expected a-z, 0-9 or '-')"#
    );
    let text = rule_toml("", &["exact:a.example"], "update", "high");
    assert_eq!(err(&text), "t.toml:2: rule id is empty");
    let long = "a".repeat(65);
    let text = rule_toml(&long, &["exact:a.example"], "update", "high");
    assert_eq!(
        err(&text),
        format!("t.toml:2: rule id {long:?} is longer than 64 characters")
    );
}

#[test]
fn error_empty_source() {
    let text = ONE_RULE.replace("source = \"test\"", "source = \"  \"");
    assert_eq!(
        err(&text),
        r#"t.toml:7: rule "a" has an empty source (say where the evidence comes from)"#
    );
}

#[test]
fn error_no_rules() {
    assert_eq!(
        err("# nothing here\n"),
        "t.toml: no rules (a rule file holds [[rule]] tables)"
    );
    let e = RuleSet::parse("t.toml", "").unwrap_err();
    assert_eq!((e.kind, e.line), (RuleErrorKind::NoRules, None));
}

#[test]
fn empty_file_among_others_is_fine() {
    let s = RuleSet::parse_sources(&[("empty.toml", "# local\n"), ("one.toml", ONE_RULE)]).unwrap();
    assert_eq!(s.files().len(), 2);
    assert_eq!(s.rule(RuleIdx(0)).file, 1);
}

#[test]
fn error_too_many_patterns_on_one_suffix() {
    let mut text = String::new();
    for i in 0..=MAX_PATTERNS_PER_SUFFIX {
        text.push_str(&rule_toml(
            &format!("p{i}"),
            &[&format!("pattern:n{i:03}-#.example")],
            "update",
            "high",
        ));
    }
    assert_eq!(
        err(&text),
        r#"t.toml:2: more than 32 patterns end in "example" (use exact names or a longer literal suffix)"#
    );
}

#[test]
fn error_display_without_line_and_kinds() {
    let e = RuleError {
        kind: RuleErrorKind::Io,
        origin: "x.toml".into(),
        line: None,
        message: "cannot read: boom".into(),
    };
    assert_eq!(e.to_string(), "x.toml: cannot read: boom");
    assert_eq!(e.kind.label(), "io");
}

// ---- products -------------------------------------------------------------------------------

#[test]
fn product_class_is_kept_and_required() {
    let s = set(&[
        rule_toml_product(
            "av",
            &["exact:a.example"],
            "injected-script",
            "high",
            "antivirus",
        ),
        rule_toml_product(
            "ao",
            &["exact:b.example"],
            "update",
            "high",
            "antivirus-or-oem",
        ),
        rule_toml_product("oem", &["exact:c.example"], "update", "high", "oem"),
    ]
    .concat());
    let products: Vec<ProductClass> = s.rules().iter().map(|r| r.product).collect();
    assert_eq!(
        products,
        [
            ProductClass::Antivirus,
            ProductClass::AntivirusOrOem,
            ProductClass::Oem
        ]
    );
    let missing = ONE_RULE.replace("product = \"kaspersky\"\n", "");
    assert_eq!(err(&missing), "t.toml:1: missing field `product`");
}

#[test]
fn error_unknown_product() {
    let text = rule_toml_product("a", &["exact:a.example"], "update", "high", "av");
    assert_eq!(
        err(&text),
        r#"t.toml:6: unknown product "av" (expected one of antivirus, antivirus-or-oem, kaspersky, oem, none)"#
    );
    let e = RuleSet::parse("t.toml", &text).unwrap_err();
    assert_eq!(e.kind, RuleErrorKind::UnknownProduct);
}

// ---- networks -------------------------------------------------------------------------------

fn with_rule(networks: &str) -> String {
    format!("{ONE_RULE}\n{networks}")
}

/// The id of the network holding `addr`.
fn net<'a>(set: &'a RuleSet, addr: &str) -> Option<&'a str> {
    let ip: IpAddr = addr.parse().unwrap();
    set.network_for(ip).map(|i| set.network(i).id.as_str())
}

#[test]
fn network_fields_are_kept() {
    let text = with_rule(&network_toml(
        "kl",
        200107,
        &["77.74.176.0/21", "2a03:2480:68::/47"],
        "corroborate",
    ));
    let s = set(&text);
    assert_eq!(s.networks().len(), 1);
    let n = s.network(NetworkIdx(0));
    assert_eq!(n.id, "kl");
    assert_eq!(n.asn, 200107);
    assert_eq!(n.use_, NetworkUse::Corroborate);
    assert_eq!(n.source, "test");
    assert_eq!(n.retrieved, "2026-12-06");
    let prefixes: Vec<String> = n.prefixes.iter().map(|p| p.to_string()).collect();
    assert_eq!(prefixes, ["77.74.176.0/21", "2a03:2480:68::/47"]);
    assert_eq!((n.file, n.line), (0, 10));
    assert_eq!(s.network_location(NetworkIdx(0)), "t.toml:10");
    assert_eq!(s.prefix_count(), 2);
    assert_eq!(s.get_network(NetworkIdx(1)), None);
    // An index from another set: an empty exclude network, never evidence.
    assert_eq!(s.network(NetworkIdx(9)).use_, NetworkUse::Exclude);
    assert_eq!(s.network(NetworkIdx(9)).id, "");
}

#[test]
fn network_lookup_is_longest_prefix_over_both_families() {
    let text = with_rule(
        &[
            network_toml(
                "wide",
                1,
                &["77.74.176.0/21", "2a03:2480::/33"],
                "corroborate",
            ),
            network_toml(
                "narrow",
                2,
                &["77.74.180.0/22", "2a03:2480:68::/47"],
                "corroborate",
            ),
            network_toml(
                "host",
                3,
                &["77.74.181.5/32", "2a03:2480:68::5/128"],
                "exclude",
            ),
        ]
        .join("\n"),
    );
    let s = set(&text);
    assert_eq!(net(&s, "77.74.176.0"), Some("wide"));
    assert_eq!(net(&s, "77.74.179.200"), Some("wide"));
    assert_eq!(net(&s, "77.74.180.0"), Some("narrow"));
    assert_eq!(net(&s, "77.74.181.4"), Some("narrow"));
    assert_eq!(net(&s, "77.74.181.5"), Some("host"));
    assert_eq!(net(&s, "77.74.181.6"), Some("narrow"));
    assert_eq!(net(&s, "77.74.183.255"), Some("narrow"));
    assert_eq!(net(&s, "77.74.184.0"), None);
    assert_eq!(net(&s, "77.74.175.255"), None);
    assert_eq!(
        net(&s, "2a03:2480:7fff:ffff:ffff:ffff:ffff:ffff"),
        Some("wide")
    );
    assert_eq!(net(&s, "2a03:2480:8000::"), None);
    assert_eq!(net(&s, "2a03:2480:69::1"), Some("narrow"));
    assert_eq!(net(&s, "2a03:2480:68::5"), Some("host"));
    assert_eq!(net(&s, "2a03:2480:68::4"), Some("narrow"));
    assert_eq!(net(&s, "::ffff:77.74.181.5"), Some("host"));
    let (idx, prefix) = s.explain_network("77.74.181.5".parse().unwrap()).unwrap();
    assert_eq!(s.network(idx).use_, NetworkUse::Exclude);
    assert_eq!(prefix.to_string(), "77.74.181.5/32");
    let (_, prefix) = s.explain_network("2a03:2480:1::".parse().unwrap()).unwrap();
    assert_eq!(prefix.to_string(), "2a03:2480::/33");
}

#[test]
fn exclude_inside_corroborate_ends_the_search() {
    let text = with_rule(
        &[
            network_toml("kl", 1, &["82.202.184.0/21"], "corroborate"),
            network_toml("kdp", 2, &["82.202.186.0/23"], "exclude"),
        ]
        .join("\n"),
    );
    let s = set(&text);
    let use_of = |a: &str| s.network_for(a.parse().unwrap()).map(|i| s.network(i).use_);
    assert_eq!(use_of("82.202.185.1"), Some(NetworkUse::Corroborate));
    assert_eq!(use_of("82.202.186.1"), Some(NetworkUse::Exclude));
    assert_eq!(use_of("82.202.187.255"), Some(NetworkUse::Exclude));
    assert_eq!(use_of("82.202.188.0"), Some(NetworkUse::Corroborate));
}

#[test]
fn sets_without_networks_and_network_only_files() {
    let s = set(ONE_RULE);
    assert!(s.networks().is_empty());
    assert_eq!(net(&s, "77.74.176.1"), None);
    // Networks may live in their own file; the set still needs a rule somewhere.
    let nets = network_toml("kl", 1, &["77.74.176.0/21"], "corroborate");
    let s = RuleSet::parse_sources(&[("n.toml", &nets), ("r.toml", ONE_RULE)]).unwrap();
    assert_eq!(s.networks().len(), 1);
    assert_eq!(s.network(NetworkIdx(0)).file, 0);
    assert_eq!(s.rule(RuleIdx(0)).file, 1);
    assert_eq!(net(&s, "77.74.177.1"), Some("kl"));
    assert_eq!(
        err(&nets),
        "t.toml: no rules (a rule file holds [[rule]] tables)"
    );
}

#[test]
fn network_files_change_the_set_hash() {
    let a = with_rule(&network_toml("kl", 1, &["77.74.176.0/21"], "corroborate"));
    let b = with_rule(&network_toml("kl", 1, &["77.74.176.0/22"], "corroborate"));
    assert_ne!(set(&a).sha256(), set(&b).sha256());
    assert_ne!(set(&a).sha256(), set(ONE_RULE).sha256());
}

#[test]
fn error_network_unknown_and_missing_keys() {
    let text = with_rule(&format!(
        "{}colour = \"red\"\n",
        network_toml("kl", 1, &["77.74.176.0/21"], "corroborate")
    ));
    assert_eq!(
        err(&text),
        "t.toml:16: unknown field `colour`, expected one of `id`, `asn`, `prefixes`, `use`, \
         `source`, `retrieved`"
    );
    let text = with_rule(
        &network_toml("kl", 1, &["77.74.176.0/21"], "corroborate")
            .replace("retrieved = \"2026-12-06\"\n", ""),
    );
    assert_eq!(err(&text), "t.toml:9: missing field `retrieved`");
    let text = with_rule("[network]\nid = \"x\"\n");
    assert_eq!(
        err(&text),
        "t.toml:9: invalid type: map, expected a sequence"
    );
}

#[test]
fn error_network_unknown_use() {
    let text = with_rule(&network_toml("kl", 1, &["77.74.176.0/21"], "ignore"));
    assert_eq!(
        err(&text),
        r#"t.toml:13: unknown use "ignore" (expected corroborate or exclude)"#
    );
    let e = RuleSet::parse("t.toml", &text).unwrap_err();
    assert_eq!(e.kind, RuleErrorKind::UnknownUse);
}

#[test]
fn error_network_bad_asn() {
    for (asn, shown) in [
        ("0", "0"),
        ("-1", "-1"),
        ("4294967295", "4294967295"),
        ("5000000000", "5000000000"),
    ] {
        let text = with_rule(&network_toml("kl", 7, &["77.74.176.0/21"], "corroborate"))
            .replace("asn = 7", &format!("asn = {asn}"));
        assert_eq!(
            err(&text),
            format!(
                r#"t.toml:11: network "kl" has asn {shown} (expected an AS number, 1 to 4294967294)"#
            )
        );
    }
    let text = with_rule(&network_toml("kl", 7, &["77.74.176.0/21"], "corroborate"))
        .replace("asn = 7", "asn = \"AS7\"");
    assert_eq!(
        err(&text),
        r#"t.toml:11: invalid type: string "AS7", expected i64"#
    );
}

#[test]
fn error_network_empty_source_and_bad_dates() {
    let text = with_rule(
        &network_toml("kl", 1, &["77.74.176.0/21"], "corroborate")
            .replace("source = \"test\"", "source = \" \""),
    );
    assert_eq!(
        err(&text),
        r#"t.toml:14: network "kl" has an empty source (say where the prefixes come from)"#
    );
    for date in [
        "2026-13-01",
        "2026-12-32",
        "2026-12-6",
        "06-12-2026",
        "yesterday",
        "",
        "2026-12-06 ",
    ] {
        let text = with_rule(
            &network_toml("kl", 1, &["77.74.176.0/21"], "corroborate").replace("2026-12-06", date),
        );
        assert_eq!(
            err(&text),
            format!(
                "t.toml:15: network \"kl\" has retrieved {date:?} (expected the date the prefixes \
                 were read, YYYY-MM-DD)"
            )
        );
        let e = RuleSet::parse("t.toml", &text).unwrap_err();
        assert_eq!(e.kind, RuleErrorKind::BadDate);
    }
}

#[test]
fn error_network_prefixes_name_their_line() {
    let text = with_rule(
        "[[network]]\nid = \"kl\"\nasn = 1\nprefixes = [\n  \"77.74.176.0/21\",\n  \"77.74.176.1/21\",\n]\nuse = \"corroborate\"\nsource = \"t\"\nretrieved = \"2026-12-06\"\n",
    );
    assert_eq!(
        err(&text),
        r#"t.toml:14: prefix "77.74.176.1/21" has bits set after the first 21 (did you mean 77.74.176.0/21?)"#
    );
    let e = RuleSet::parse("t.toml", &text).unwrap_err();
    assert_eq!(e.kind, RuleErrorKind::BadPrefix);
    let text = with_rule(&network_toml("kl", 1, &["0.0.0.0/0"], "corroborate"));
    assert_eq!(
        err(&text),
        r#"t.toml:12: prefix "0.0.0.0/0" is shorter than /8 (no single network is that large)"#
    );
    let text = with_rule(&network_toml("kl", 1, &[], "corroborate"));
    assert_eq!(err(&text), r#"t.toml:12: network "kl" has no prefix"#);
}

#[test]
fn error_duplicate_prefix_in_network_across_networks_and_files() {
    let text = with_rule(&network_toml(
        "kl",
        1,
        &["77.74.176.0/21", "77.74.176.0/21"],
        "corroborate",
    ));
    assert_eq!(
        err(&text),
        r#"t.toml:12: duplicate prefix 77.74.176.0/21 (first listed by network "kl" at line 12)"#
    );
    let text = with_rule(
        &[
            network_toml("na", 1, &["2a03:2480::/33"], "corroborate"),
            network_toml("nb", 2, &["2a03:2480:0::/33"], "exclude"),
        ]
        .join("\n"),
    );
    assert_eq!(
        err(&text),
        r#"t.toml:20: duplicate prefix 2a03:2480::/33 (first listed by network "na" at line 12)"#
    );
    let one = network_toml("na", 1, &["77.74.176.0/21"], "corroborate");
    let two = network_toml("nb", 1, &["77.74.176.0/21"], "exclude");
    let e = RuleSet::parse_sources(&[("r.toml", ONE_RULE), ("one.toml", &one), ("two.toml", &two)])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"two.toml:4: duplicate prefix 77.74.176.0/21 (first listed by network "na" at one.toml:4)"#
    );
    assert_eq!(e.kind, RuleErrorKind::DuplicatePrefix);
}

#[test]
fn error_network_id_shares_the_rule_namespace() {
    let text = with_rule(&network_toml("a", 1, &["77.74.176.0/21"], "corroborate"));
    assert_eq!(
        err(&text),
        r#"t.toml:10: duplicate network id "a" (first defined at line 2)"#
    );
    let text = with_rule(&network_toml("Bad", 1, &["77.74.176.0/21"], "corroborate"));
    assert_eq!(
        err(&text),
        r#"t.toml:10: network id "Bad" has invalid character 'B' (expected a-z, 0-9 or '-')"#
    );
    let text = with_rule(
        &[
            network_toml("n", 1, &["77.74.176.0/21"], "corroborate"),
            network_toml("n", 2, &["10.0.0.0/8"], "corroborate"),
        ]
        .join("\n"),
    );
    assert_eq!(
        err(&text),
        r#"t.toml:18: duplicate network id "n" (first defined at line 10)"#
    );
}

#[test]
fn error_too_many_prefixes_in_one_network() {
    let prefixes: Vec<String> = (0..=MAX_PREFIXES_PER_NETWORK)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let text = with_rule(&network_toml("big", 1, &refs, "corroborate"));
    assert_eq!(
        err(&text),
        r#"t.toml:12: network "big" has more than 16384 prefixes"#
    );
}

#[test]
fn error_too_many_prefixes_and_networks_in_a_set() {
    // The total cap, lowered to 5 (65 537 real prefixes would need several networks anyway).
    let a = network_toml(
        "na",
        1,
        &["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"],
        "corroborate",
    );
    let b = network_toml(
        "nb",
        2,
        &["10.0.3.0/24", "10.0.4.0/24", "10.0.5.0/24"],
        "corroborate",
    );
    let sources = [("r.toml", ONE_RULE), ("a.toml", &a[..]), ("b.toml", &b[..])];
    let e = load::parse_sources_with_caps(&sources, MAX_RULES, 5).unwrap_err();
    assert_eq!(e.to_string(), "b.toml:4: more than 5 prefixes");
    assert_eq!(e.kind, RuleErrorKind::TooMany);
    let ok = load::parse_sources_with_caps(&sources, MAX_RULES, 6).unwrap();
    assert_eq!(ok.prefix_count(), 6);
    // The network cap, for real: 1025 one-prefix networks.
    let mut text = String::from(ONE_RULE);
    for i in 0..=MAX_NETWORKS {
        text.push_str(&network_toml(
            &format!("n{i}"),
            1,
            &[&format!("10.{}.{}.0/24", i / 256, i % 256)],
            "corroborate",
        ));
    }
    let e = RuleSet::parse("t.toml", &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("t.toml:{}: more than 1024 networks", 9 + 1024 * 7)
    );
}

#[test]
fn many_prefixes_build_and_agree_with_a_scan() {
    // 4096 /24s in a /12, each network a /16 of them, plus host routes: the index answers
    // what a linear scan by longest prefix answers.
    let mut text = String::from(ONE_RULE);
    let mut all: Vec<(String, IpPrefix)> = Vec::new();
    for n in 0..16u32 {
        let mut prefixes = vec![format!("10.{}.0.0/16", 16 + n)];
        for c in (0..256u32).step_by(3) {
            prefixes.push(format!("10.{}.{c}.0/24", 16 + n));
        }
        prefixes.push(format!("10.{}.7.7/32", 16 + n));
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let id = format!("n{n}");
        text.push_str(&network_toml(&id, 1, &refs, "corroborate"));
        for p in &prefixes {
            all.push((id.clone(), IpPrefix::parse(p).unwrap()));
        }
    }
    let s = set(&text);
    let mut rng = crate::test_rng::XorShift(99);
    for _ in 0..20_000 {
        let k = 0x0a0e_0000u32.wrapping_add((rng.next() as u32) % 0x0014_0000);
        let ip = IpAddr::V4(std::net::Ipv4Addr::from(k));
        let want = all
            .iter()
            .filter(|(_, p)| p.contains(ip))
            .max_by_key(|(_, p)| p.prefix_len())
            .map(|(id, p)| (id.as_str(), *p));
        let got = s
            .explain_network(ip)
            .map(|(i, p)| (s.network(i).id.as_str(), p));
        assert_eq!(got, want, "{ip}");
    }
}

// ---- files and directories ------------------------------------------------------------------

#[test]
fn directory_loads_toml_files_sorted_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        rule_toml("from-b", &["exact:b.example"], "update", "high"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        rule_toml("from-a", &["exact:a.example"], "update", "high"),
    )
    .unwrap();
    std::fs::write(dir.path().join("c.txt"), "not a rule file").unwrap();
    std::fs::write(
        dir.path().join("10.toml"),
        rule_toml("from-10", &["exact:c.example"], "update", "high"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
    let s = RuleSet::load(&[dir.path().to_path_buf()]).unwrap();
    let ids: Vec<&str> = s.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["from-10", "from-a", "from-b"]);
    let names: Vec<String> = s
        .files()
        .iter()
        .map(|f| {
            PathBuf::from(&f.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["10.toml", "a.toml", "b.toml"]);
    let mut set_hash = String::new();
    for f in s.files() {
        writeln!(set_hash, "{}", f.sha256).unwrap();
    }
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(set_hash.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(s.sha256(), expected);
}

#[test]
fn files_and_directories_mix_in_given_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(
        d.join("x.toml"),
        rule_toml("in-dir", &["exact:x.example"], "update", "high"),
    )
    .unwrap();
    let f = dir.path().join("first.rules");
    std::fs::write(
        &f,
        rule_toml("single", &["exact:y.example"], "update", "high"),
    )
    .unwrap();
    let s = RuleSet::load(&[f.clone(), d]).unwrap();
    let ids: Vec<&str> = s.rules().iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["single", "in-dir"]);
    assert_eq!(s.files().first().unwrap().path, f.display().to_string());
}

#[test]
fn error_in_loaded_file_names_its_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, ONE_RULE.replace("\"high\"", "\"hgh\"")).unwrap();
    let e = RuleSet::load(std::slice::from_ref(&p)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            r#"{}:5: unknown confidence "hgh" (expected high, medium or low)"#,
            p.display()
        )
    );
}

#[test]
fn error_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("nope.toml");
    let e = RuleSet::load(std::slice::from_ref(&p)).unwrap_err();
    assert_eq!(e.kind, RuleErrorKind::Io);
    assert_eq!(e.line, None);
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read: ", p.display())));
}

#[test]
fn error_directory_without_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = RuleSet::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: directory has no *.toml rule files",
            dir.path().display()
        )
    );
}

#[test]
fn error_no_paths() {
    let e = RuleSet::load(&[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "(no rule paths): no rules (a rule file holds [[rule]] tables)"
    );
}

#[test]
fn error_not_utf8_names_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bin.toml");
    std::fs::write(&p, b"# ok\n# bad \xff\n").unwrap();
    let e = RuleSet::load(std::slice::from_ref(&p)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:2: file is not valid UTF-8", p.display())
    );
}

#[test]
fn error_file_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.toml");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(MAX_RULE_FILE_BYTES + 1).unwrap();
    let e = RuleSet::load(std::slice::from_ref(&p)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: file is larger than 8388608 bytes", p.display())
    );
}

// ---- scale ----------------------------------------------------------------------------------

/// `n` rules: thirds exact names, suffixes and patterns, each under its own zone.
fn synthetic_rules(ids: std::ops::Range<usize>) -> String {
    let mut text = String::with_capacity(ids.len() * 120);
    for i in ids {
        let m = match i % 3 {
            0 => format!("exact:host{i}.zone{i}.example"),
            1 => format!("suffix:zone{i}.example"),
            _ => format!("pattern:n##-*.zone{i}.example"),
        };
        let _ = write!(
            text,
            "[[rule]]\nid = \"r{i}\"\nmatch = [\"{m}\"]\ncategory = \"service\"\nconfidence = \"medium\"\nproduct = \"kaspersky\"\nsource = \"synthetic\"\n"
        );
    }
    text
}

#[test]
fn ten_thousand_rules_build_and_match() {
    let s = set(&synthetic_rules(0..10_000));
    assert_eq!(s.rules().len(), 10_000);
    assert_eq!(found(&s, "host0.zone0.example"), Some("r0"));
    assert_eq!(found(&s, "host9999.zone9999.example"), Some("r9999"));
    assert_eq!(found(&s, "x.host9999.zone9999.example"), None);
    assert_eq!(found(&s, "a.b.zone4.example"), Some("r4"));
    assert_eq!(found(&s, "zone9997.example"), Some("r9997"));
    assert_eq!(found(&s, "n12-abc.zone5.example"), Some("r5"));
    assert_eq!(found(&s, "n1-abc.zone5.example"), None);
    assert_eq!(found(&s, "zone10000.example"), None);
    assert_eq!(found(&s, "www.kaspersky.com"), None);
    assert_eq!(s.location(RuleIdx(9999)), "t.toml:69995");
}

#[test]
fn error_too_many_rules() {
    // The check itself, with a cap of 100 (100 001 real rules take ~25 s in a debug build).
    let a = synthetic_rules(0..50);
    let b = synthetic_rules(50..101);
    let e = load::parse_sources_capped(&[("a.toml", &a), ("b.toml", &b)], 100).unwrap_err();
    assert_eq!(e.to_string(), "b.toml:352: more than 100 rules");
    let ok = load::parse_sources_capped(&[("a.toml", &a), ("b.toml", &b)], 101).unwrap();
    assert_eq!(ok.rules().len(), 101);
    assert_eq!(e.kind, RuleErrorKind::TooMany);
}

// ---- the bundled rules ----------------------------------------------------------------------

#[test]
fn bundled_rules_match_real_names() {
    let s = RuleSet::load(&[RuleSet::bundled_dir()]).unwrap();
    use Category as C;
    use Confidence::{High, Low, Medium};
    use ProductClass as P;
    type Want = Option<(&'static str, Category, Confidence, ProductClass)>;
    let table: &[(&str, Want)] = &[
        // Update servers.
        (
            "dnl-01.geo.kaspersky.com",
            Some(("update-dnl-geo", C::Update, High, P::AntivirusOrOem)),
        ),
        (
            "DNL-19.GEO.KASPERSKY.COM.",
            Some(("update-dnl-geo", C::Update, High, P::AntivirusOrOem)),
        ),
        (
            "dnl-1.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium, P::Kaspersky)),
        ),
        (
            "dnl-123.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium, P::Kaspersky)),
        ),
        (
            "dnl-07.geo.kaspersky.ru",
            Some(("update-dnl-geo-ru", C::Update, Medium, P::AntivirusOrOem)),
        ),
        (
            "s00.upd.kaspersky.com",
            Some(("update-upd-s", C::Update, High, P::Kaspersky)),
        ),
        (
            "s19.upd.kaspersky.com",
            Some(("update-upd-s", C::Update, High, P::Kaspersky)),
        ),
        (
            "p07.upd.kaspersky.com",
            Some(("update-upd-p", C::Update, High, P::Kaspersky)),
        ),
        (
            "downloads.upd.kaspersky.com",
            Some(("update-downloads-upd", C::Update, High, P::Kaspersky)),
        ),
        (
            "cm.k.kaspersky-labs.com",
            Some(("update-cm-k", C::Update, High, P::Kaspersky)),
        ),
        (
            "downloads2.kaspersky-labs.com",
            Some((
                "update-downloads-kaspersky-labs",
                C::Update,
                Medium,
                P::Kaspersky,
            )),
        ),
        // KSN.
        (
            "dc1.ksn.kaspersky-labs.com",
            Some(("ksn-kaspersky-labs", C::KsnCloud, High, P::Kaspersky)),
        ),
        (
            "dc1-st.ksn.kaspersky-labs.com",
            Some(("ksn-kaspersky-labs", C::KsnCloud, High, P::Kaspersky)),
        ),
        (
            "ksn-file-geo.kaspersky-labs.com",
            Some(("ksn-geo-kaspersky-labs", C::KsnCloud, High, P::Kaspersky)),
        ),
        (
            "ksn-stat-geo.kaspersky-labs.com",
            Some(("ksn-geo-kaspersky-labs", C::KsnCloud, High, P::Kaspersky)),
        ),
        // The crypto family is what Check Point's Anti-Malware uses.
        (
            "ksn-crypto-file-geo.kaspersky-labs.com",
            Some(("ksn-crypto-geo", C::KsnCloud, High, P::AntivirusOrOem)),
        ),
        (
            "ksn-crypto-url-geo.kaspersky-labs.com",
            Some(("ksn-crypto-geo", C::KsnCloud, High, P::AntivirusOrOem)),
        ),
        (
            "ksn-crypto-wifiplus-geo.kaspersky-labs.com",
            Some(("ksn-crypto-geo", C::KsnCloud, High, P::AntivirusOrOem)),
        ),
        (
            "ksn-dc1-cert.geoksn.kaspersky.com",
            Some(("ksn-geoksn", C::KsnCloud, High, P::Kaspersky)),
        ),
        (
            "ksn-crypto-wifiplus.geoksn.kaspersky.com",
            Some(("ksn-geoksn", C::KsnCloud, High, P::Kaspersky)),
        ),
        // Activation, telemetry, certificates, services.
        (
            "activation-v2.kaspersky.com",
            Some(("activation-v2", C::Activation, High, P::Kaspersky)),
        ),
        (
            "refresh-bkg.activation-v2.kaspersky.com",
            Some(("activation-v2", C::Activation, High, P::Kaspersky)),
        ),
        (
            "activation-v2.geo.kaspersky.com",
            Some(("activation-v2", C::Activation, High, P::Kaspersky)),
        ),
        (
            "touch.kaspersky.com",
            Some(("telemetry-touch", C::Telemetry, High, P::Kaspersky)),
        ),
        (
            "statistic.content.ipm-klca.kaspersky.com",
            Some((
                "telemetry-ipm-statistic",
                C::Telemetry,
                Medium,
                P::Kaspersky,
            )),
        ),
        (
            "crl.kaspersky.com",
            Some(("certificate-crl", C::Certificate, High, P::Kaspersky)),
        ),
        (
            "ds.kaspersky.com",
            Some(("service-ds", C::Service, High, P::Kaspersky)),
        ),
        (
            "edge.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium, P::Kaspersky)),
        ),
        // Password Manager push: the application's own session.
        (
            "bosh4.ucp-ntfy.kaspersky-labs.com",
            Some(("service-ucp-ntfy", C::Service, Medium, P::Kaspersky)),
        ),
        (
            "37.ucp-ntfy.kaspersky-labs.com",
            Some(("service-ucp-ntfy", C::Service, Medium, P::Kaspersky)),
        ),
        // The catch-all product zone.
        (
            "mobile.kaspersky-labs.com",
            Some(("service-kaspersky-labs", C::Service, Medium, P::Kaspersky)),
        ),
        (
            "kaspersky-labs.com",
            Some(("service-kaspersky-labs", C::Service, Medium, P::Kaspersky)),
        ),
        // Antivirus only.
        (
            "gc.kis.v2.scr.kaspersky-labs.com",
            Some(("injected-script", C::InjectedScript, High, P::Antivirus)),
        ),
        (
            "ff.kis.scr.kaspersky-labs.com",
            Some(("injected-script", C::InjectedScript, High, P::Antivirus)),
        ),
        // Cloud Console: agents' names vs the administrators' web UI.
        (
            "eu1.ksc.kaspersky.com",
            Some(("ksc-cloud", C::KscCloud, High, P::Antivirus)),
        ),
        (
            "a.b.ksc.kaspersky.com",
            Some(("ksc-cloud", C::KscCloud, High, P::Antivirus)),
        ),
        (
            "ksc.kaspersky.com",
            Some(("ksc-cloud-console-web", C::Portal, Medium, P::None)),
        ),
        // OEM: the Kaspersky engine in Check Point products.
        (
            "kav8.checkpoint.com",
            Some(("oem-checkpoint-kav8", C::Update, High, P::Oem)),
        ),
        (
            "kav8.zonealarm.com",
            Some(("oem-checkpoint-kav8", C::Update, High, P::Oem)),
        ),
        ("checkpoint.com", None),
        ("x.kav8.zonealarm.com", None),
        // Portals, downloads, websites: not install evidence.
        (
            "my.kaspersky.com",
            Some(("portal-account", C::Portal, Medium, P::None)),
        ),
        (
            "center.kaspersky.com",
            Some(("portal-account", C::Portal, Medium, P::None)),
        ),
        (
            "hq.uis.kaspersky.com",
            Some(("portal-account", C::Portal, Medium, P::None)),
        ),
        (
            "activation.kaspersky.com",
            Some(("activation-web-portal", C::Portal, Low, P::None)),
        ),
        (
            "keyfile.kaspersky.com",
            Some(("activation-web-portal", C::Portal, Low, P::None)),
        ),
        (
            "products.s.kaspersky-labs.com",
            Some(("download-products", C::Download, Medium, P::None)),
        ),
        (
            "content.kaspersky-labs.com",
            Some(("website-kaspersky-labs-content", C::Website, Low, P::None)),
        ),
        (
            "click.kaspersky.com",
            Some(("website-click", C::Website, Low, P::None)),
        ),
        (
            "www.kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low, P::None)),
        ),
        (
            "support.kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low, P::None)),
        ),
        (
            "kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low, P::None)),
        ),
        (
            "www.kaspersky.co.uk",
            Some(("website-kaspersky-cctld", C::Website, Low, P::None)),
        ),
        (
            "kaspersky.com.cn",
            Some(("website-kaspersky-cctld", C::Website, Low, P::None)),
        ),
        (
            "support.kaspersky.cn",
            Some(("website-kaspersky-cctld", C::Website, Low, P::None)),
        ),
        (
            "kaspersky.ru",
            Some(("website-kaspersky-cctld", C::Website, Low, P::None)),
        ),
        (
            "securelist.com",
            Some(("website-securelist", C::Website, Low, P::None)),
        ),
        ("kas.pr", Some(("website-kas-pr", C::Website, Low, P::None))),
        (
            "media.kasperskycontenthub.com",
            Some(("website-kasperskycontenthub", C::Website, Low, P::None)),
        ),
        // Mail relays: mail, not install evidence.
        (
            "mx13.kaspersky-labs.com",
            Some(("mail-relays", C::Mail, Low, P::None)),
        ),
        (
            "mx9.kaspersky-labs.com",
            Some(("mail-relays", C::Mail, Low, P::None)),
        ),
        (
            "mailhub1-fb.kaspersky-labs.com",
            Some(("mail-relays", C::Mail, Low, P::None)),
        ),
        // Not host names: mail-policy and service owner names match nothing.
        ("_spf.kaspersky-labs.com", None),
        ("_spf.kaspersky.com", None),
        ("_dmarc.kaspersky.com", None),
        ("_domainkey.kaspersky-labs.com", None),
        ("x._domainkey.kaspersky.com", None),
        ("_xmpp-client._tcp.37.ucp-ntfy.kaspersky-labs.com", None),
        ("-.kaspersky.com", None),
        // Decoys.
        ("notkaspersky.com", None),
        ("kaspersky.com.attacker.example", None),
        ("xkaspersky-labs.com", None),
        ("kaspersky-labs.com.evil.example", None),
        ("ksc.kaspersky.com.example", None),
        ("kaspersky.co", None),
        ("kaspersky.example", None),
        ("securelist.com.example", None),
        ("example.com", None),
        ("dnl-01.geo.kaspersky.com.example", None),
    ];
    for (name, want) in table {
        let got = s.lookup(&host(name)).map(|i| {
            let r = s.rule(i);
            (r.id.as_str(), r.category, r.confidence, r.product)
        });
        assert_eq!(got, *want, "{name}");
    }
    let names: Vec<&str> = s
        .files()
        .iter()
        .map(|f| f.path.rsplit('/').next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["kaspersky-networks.toml", "kaspersky.toml"]);
    assert_eq!(s.sha256().len(), 64);
}

#[test]
fn bundled_rules_product_classes_follow_categories() {
    let s = RuleSet::load(&[RuleSet::bundled_dir()]).unwrap();
    for r in s.rules() {
        // A name no product contacts has no product class, and the other way round.
        assert_eq!(
            r.category.is_install_evidence(),
            r.product != ProductClass::None,
            "{}",
            r.id
        );
        // The reasoning for the class is in the source, and no UNVERIFIED name is high.
        assert!(
            r.source.contains("Product") || r.product == ProductClass::None,
            "{}",
            r.id
        );
        if r.source.starts_with("D") {
            assert_ne!(r.confidence, Confidence::High, "{}", r.id);
        }
    }
}

#[test]
fn bundled_networks_match_kaspersky_addresses() {
    let s = RuleSet::load(&[RuleSet::bundled_dir()]).unwrap();
    let ids: Vec<(&str, u32, NetworkUse, usize)> = s
        .networks()
        .iter()
        .map(|n| (n.id.as_str(), n.asn, n.use_, n.prefixes.len()))
        .collect();
    assert_eq!(
        ids,
        [
            ("as200107-kl-ext", 200107, NetworkUse::Corroborate, 30),
            ("as41983-kl-as", 41983, NetworkUse::Corroborate, 4),
            ("as209030-kl-kdp", 209030, NetworkUse::Exclude, 3),
        ]
    );
    assert_eq!(s.prefix_count(), 37);
    let table: &[(&str, Option<(&str, &str)>)] = &[
        // s19.upd.kaspersky.com and dc1-st.ksn.kaspersky-labs.com as seen in resolver data.
        ("37.203.129.5", Some(("as200107-kl-ext", "37.203.128.0/23"))),
        (
            "79.133.169.139",
            Some(("as200107-kl-ext", "79.133.168.0/22")),
        ),
        ("77.74.176.10", Some(("as200107-kl-ext", "77.74.176.0/21"))),
        ("77.74.179.255", Some(("as200107-kl-ext", "77.74.176.0/21"))),
        // AS41983's /22 inside AS200107's /21: the longer prefix wins.
        ("77.74.180.1", Some(("as41983-kl-as", "77.74.180.0/22"))),
        ("77.74.183.255", Some(("as41983-kl-as", "77.74.180.0/22"))),
        ("77.74.184.0", None),
        // The mail relay mx13.kaspersky-labs.com.
        ("91.103.66.164", Some(("as41983-kl-as", "91.103.64.0/21"))),
        ("80.173.149.7", Some(("as200107-kl-ext", "80.173.148.0/23"))),
        (
            "195.128.247.255",
            Some(("as200107-kl-ext", "195.128.246.0/23")),
        ),
        // DDoS protection: excluded, beside AS200107's 82.202.184.0/23.
        ("82.202.185.1", Some(("as200107-kl-ext", "82.202.184.0/23"))),
        ("82.202.186.1", Some(("as209030-kl-kdp", "82.202.186.0/23"))),
        ("82.202.187.1", Some(("as209030-kl-kdp", "82.202.186.0/23"))),
        ("82.202.190.9", Some(("as209030-kl-kdp", "82.202.188.0/22"))),
        (
            "168.113.251.80",
            Some(("as209030-kl-kdp", "168.113.251.0/24")),
        ),
        // IPv6: AS200107's /47 inside AS41983's /33, and AS200107's own /48s beyond it.
        (
            "2a03:2480:68::1",
            Some(("as200107-kl-ext", "2a03:2480:68::/47")),
        ),
        (
            "2a03:2480:69:ffff::1",
            Some(("as200107-kl-ext", "2a03:2480:68::/47")),
        ),
        ("2a03:2480:6a::1", Some(("as41983-kl-as", "2a03:2480::/33"))),
        ("2a03:2480:1::1", Some(("as41983-kl-as", "2a03:2480::/33"))),
        (
            "2a03:2480:8029:1::5",
            Some(("as200107-kl-ext", "2a03:2480:8028::/46")),
        ),
        (
            "2a03:2480:8103::1",
            Some(("as200107-kl-ext", "2a03:2480:8103::/48")),
        ),
        ("2a03:2480:8104::1", None),
        (
            "::ffff:77.74.176.10",
            Some(("as200107-kl-ext", "77.74.176.0/21")),
        ),
        // CDN and third-party mirrors that served Kaspersky updates are not Kaspersky's.
        ("94.75.236.122", None),
        ("43.249.37.43", None),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ];
    for (addr, want) in table {
        let ip: IpAddr = addr.parse().unwrap();
        let got = s
            .explain_network(ip)
            .map(|(idx, prefix)| (s.network(idx).id.as_str(), prefix.to_string()));
        let want = want.map(|(id, p)| (id, p.to_owned()));
        assert_eq!(got, want, "{addr}");
        assert_eq!(s.network_for(ip), s.explain_network(ip).map(|(idx, _)| idx));
    }
    let (idx, _) = s.explain_network("82.202.186.1".parse().unwrap()).unwrap();
    assert_eq!(s.network(idx).use_, NetworkUse::Exclude);
    assert!(s
        .network_location(idx)
        .ends_with("kaspersky-networks.toml:49"));
}

#[test]
fn bundled_rules_every_rule_is_reachable_and_sourced() {
    let s = RuleSet::load(&[RuleSet::bundled_dir()]).unwrap();
    for (i, r) in s.rules().iter().enumerate() {
        assert!(!r.source.trim().is_empty(), "{}", r.id);
        // Each literal match string wins for the name it names (exact) or for a name below it
        // (suffix; the suffix itself may be taken by a more specific exact rule).
        for m in &r.matches {
            let probe = match m {
                NameMatch::Exact(n) => n.clone(),
                NameMatch::Suffix(n) => format!("zz-probe.{n}"),
                NameMatch::Pattern(_) => continue,
            };
            let (idx, won) = s.explain(&host(&probe)).unwrap();
            assert_eq!((idx, won), (RuleIdx(i as u32), m), "{probe}");
        }
    }
}

// ---- hostile rule files ---------------------------------------------------------------------

#[test]
fn truncated_rule_file_at_every_offset_never_panics() {
    let text = format!(
        "{ONE_RULE}\n{}",
        rule_toml(
            "p",
            &["pattern:dnl-##.geo.example", "suffix:x.example"],
            "ignore",
            "low"
        )
    );
    let total_lines = u32::try_from(text.lines().count()).unwrap();
    for end in 0..text.len() {
        let cut = &text[..end];
        match RuleSet::parse("t.toml", cut) {
            Ok(set) => assert!(set.rules().len() <= 2, "cut at {end}"),
            Err(e) => {
                if let Some(line) = e.line {
                    assert!(line >= 1 && line <= total_lines + 1, "cut at {end}: {e}");
                }
            }
        }
    }
    assert_eq!(set(&text).rules().len(), 2);
}

#[test]
fn truncated_network_file_at_every_offset_never_panics() {
    let text = format!(
        "{ONE_RULE}\n{}",
        network_toml("n", 1, &["77.74.176.0/21", "2a03:2480::/33"], "exclude")
    );
    let total_lines = u32::try_from(text.lines().count()).unwrap();
    for end in 0..text.len() {
        match RuleSet::parse("t.toml", &text[..end]) {
            Ok(set) => assert!(set.networks().len() <= 1, "cut at {end}"),
            Err(e) => {
                if let Some(line) = e.line {
                    assert!(line >= 1 && line <= total_lines + 1, "cut at {end}: {e}");
                }
                assert!(!e.to_string().contains('\n'), "cut at {end}: {e}");
            }
        }
    }
    assert_eq!(set(&text).networks().len(), 1);
}

#[test]
fn rule_set_can_be_shared_between_workers() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RuleSet>();
}

/// The lookup that walks from the last label and stops at the first suffix no key ends in
/// gives what looking up every suffix gives: on the bundled rules and on a set with exact
/// names, patterns and suffixes at several depths, for every key, every key under extra
/// labels, cut keys, decoys and ordinary names.
#[test]
fn walking_from_the_last_label_finds_what_every_suffix_finds() {
    let mixed = RuleSet::parse(
        "t.toml",
        &[
            rule_toml(
                "a",
                &["suffix:example.com", "exact:www.example.com"],
                "update",
                "high",
            ),
            rule_toml(
                "b",
                &["pattern:s##.upd.example.com", "suffix:upd.example.com"],
                "update",
                "high",
            ),
            rule_toml(
                "c",
                &[
                    "pattern:*.x.deep.a.b.c.example.net",
                    "exact:a.b.c.example.net",
                ],
                "update",
                "high",
            ),
            rule_toml(
                "d",
                &["suffix:c.example.net", "pattern:n#.example.org"],
                "update",
                "high",
            ),
            rule_toml("e", &["exact:upd.example.com"], "ignore", "low"),
        ]
        .concat(),
    )
    .unwrap();
    let bundled = RuleSet::load(&[RuleSet::bundled_dir()]).unwrap();
    for set in [&mixed, &bundled] {
        let mut names: Vec<String> = set
            .by_name
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        names.sort();
        let keys = names.clone();
        for key in &keys {
            for extra in [
                "s05",
                "s5",
                "n1",
                "x",
                "www",
                "a.b",
                "dnl-01.geo",
                "_srv",
                "-bad",
            ] {
                names.push(format!("{extra}.{key}"));
            }
            if let Some((_, tail)) = key.split_once('.') {
                names.push(format!("not{tail}"));
            }
            names.push(format!("{key}.evil.example"));
        }
        for other in [
            "com",
            "net",
            "a",
            "cdn.example.net",
            "e1234.a.edge.example.net",
            "x.y.z.w.v.u.t",
            "notkaspersky.com",
            "kaspersky.com.attacker.example",
            "my-kaspersky.com",
        ] {
            names.push(other.to_string());
        }
        let mut matched = 0;
        for name in &names {
            let Ok(h) = HostName::parse(name.as_bytes()) else {
                continue;
            };
            let expected = set.resolve_every_suffix(&h);
            assert_eq!(set.resolve(&h), expected, "{name}");
            matched += usize::from(expected.is_some());
        }
        assert!(matched > 10, "only {matched} names matched");
    }
}
