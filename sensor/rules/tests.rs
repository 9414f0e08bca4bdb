use std::fmt::Write;
use std::path::PathBuf;

use super::*;

fn host(s: &str) -> HostName {
    HostName::parse(s.as_bytes()).unwrap()
}

/// One `[[rule]]` table.
fn rule_toml(id: &str, matches: &[&str], category: &str, confidence: &str) -> String {
    let list: Vec<String> = matches.iter().map(|m| format!("{m:?}")).collect();
    format!(
        "[[rule]]\nid = {id:?}\nmatch = [{}]\ncategory = {category:?}\nconfidence = {confidence:?}\nsource = \"test\"\n",
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

const ONE_RULE: &str = "[[rule]]\nid = \"a\"\nmatch = [\"exact:a.example\"]\ncategory = \"update\"\nconfidence = \"high\"\nsource = \"test\"\n";

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
fn underscore_names_match_suffixes_but_not_stars() {
    let s = set(&[
        rule_toml("k", &["suffix:kaspersky.com"], "website", "low"),
        rule_toml("p", &["pattern:a*.kaspersky.com"], "update", "high"),
    ]
    .concat());
    assert_eq!(found(&s, "_srv.kaspersky.com"), Some("k"));
    assert_eq!(found(&s, "ab.kaspersky.com"), Some("p"));
    assert_eq!(found(&s, "a_b.kaspersky.com"), Some("k"));
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
    assert_eq!(Category::ALL.len(), 12);
    assert_eq!(Category::KsnCloud.label(), "ksn-cloud");
    assert_eq!(Category::InjectedScript.label(), "injected-script");
    assert!(Confidence::Low < Confidence::Medium && Confidence::Medium < Confidence::High);
    assert_eq!(Confidence::from_label("HIGH"), None);
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
            sha256: "50089d8e298950dd42827d4bb985f341f5995793d8491bd00945f4d452ea70dd".into(),
        }]
    );
    assert_eq!(
        s.sha256(),
        "9eb73da800311c6de02a31e8ea3f94c4128e0ef62a564d5ea9908bab2e5e445c"
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
        "t.toml:7: unknown field `colour`, expected one of `id`, `match`, `category`, `confidence`, `source`"
    );
}

#[test]
fn error_unknown_top_level_table() {
    assert_eq!(
        err("[[rules]]\nid = \"a\"\n"),
        "t.toml:1: unknown field `rules`, expected `rule`"
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
        r#"t.toml:12: unknown confidence "hgh" (expected high, medium or low)"#
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
         ignore)"
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
        r#"t.toml:11: duplicate rule id "a" (first defined at line 4)"#
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
    let text = "[[rule]]\nid = \"a\"\nmatch = [\n  \"suffix:a.example\",\n  \"suffix:a.example\",\n]\ncategory = \"update\"\nconfidence = \"high\"\nsource = \"x\"\n";
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
        r#"t.toml:9: duplicate match "exact:a.example" (first used by rule "a" at line 3)"#
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
        r#"t.toml:3: match "exact:Kaspersky.com" has invalid character 'K' (expected a-z, 0-9, '-', '_' or '.')"#
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
        r#"t.toml:6: rule "a" has an empty source (say where the evidence comes from)"#
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
            "[[rule]]\nid = \"r{i}\"\nmatch = [\"{m}\"]\ncategory = \"service\"\nconfidence = \"medium\"\nsource = \"synthetic\"\n"
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
    assert_eq!(s.location(RuleIdx(9999)), "t.toml:59996");
}

#[test]
fn error_too_many_rules() {
    // The check itself, with a cap of 100 (100 001 real rules take ~25 s in a debug build).
    let a = synthetic_rules(0..50);
    let b = synthetic_rules(50..101);
    let e = load::parse_sources_capped(&[("a.toml", &a), ("b.toml", &b)], 100).unwrap_err();
    assert_eq!(e.to_string(), "b.toml:302: more than 100 rules");
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
    type Want = Option<(&'static str, Category, Confidence)>;
    let table: &[(&str, Want)] = &[
        (
            "dnl-01.geo.kaspersky.com",
            Some(("update-dnl-geo", C::Update, High)),
        ),
        (
            "DNL-19.GEO.KASPERSKY.COM.",
            Some(("update-dnl-geo", C::Update, High)),
        ),
        (
            "dnl-1.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium)),
        ),
        (
            "dnl-123.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium)),
        ),
        (
            "dnl-07.geo.kaspersky.ru",
            Some(("update-dnl-geo-ru", C::Update, Medium)),
        ),
        (
            "s00.upd.kaspersky.com",
            Some(("update-upd-s", C::Update, High)),
        ),
        (
            "s19.upd.kaspersky.com",
            Some(("update-upd-s", C::Update, High)),
        ),
        (
            "p07.upd.kaspersky.com",
            Some(("update-upd-p", C::Update, High)),
        ),
        (
            "downloads.upd.kaspersky.com",
            Some(("update-downloads-upd", C::Update, High)),
        ),
        (
            "cm.k.kaspersky-labs.com",
            Some(("update-cm-k", C::Update, High)),
        ),
        (
            "dc1.ksn.kaspersky-labs.com",
            Some(("ksn-kaspersky-labs", C::KsnCloud, High)),
        ),
        (
            "dc1-st.ksn.kaspersky-labs.com",
            Some(("ksn-kaspersky-labs", C::KsnCloud, High)),
        ),
        (
            "ksn-file-geo.kaspersky-labs.com",
            Some(("ksn-geo-kaspersky-labs", C::KsnCloud, High)),
        ),
        (
            "ksn-crypto-wifiplus-geo.kaspersky-labs.com",
            Some(("ksn-geo-kaspersky-labs", C::KsnCloud, High)),
        ),
        (
            "ksn-dc1-cert.geoksn.kaspersky.com",
            Some(("ksn-geoksn", C::KsnCloud, High)),
        ),
        (
            "activation-v2.kaspersky.com",
            Some(("activation-v2", C::Activation, High)),
        ),
        (
            "refresh-bkg.activation-v2.kaspersky.com",
            Some(("activation-v2", C::Activation, High)),
        ),
        (
            "activation-v2.geo.kaspersky.com",
            Some(("activation-v2", C::Activation, High)),
        ),
        (
            "touch.kaspersky.com",
            Some(("telemetry-touch", C::Telemetry, High)),
        ),
        (
            "gc.kis.v2.scr.kaspersky-labs.com",
            Some(("injected-script", C::InjectedScript, High)),
        ),
        (
            "ff.kis.scr.kaspersky-labs.com",
            Some(("injected-script", C::InjectedScript, High)),
        ),
        (
            "bosh4.ucp-ntfy.kaspersky-labs.com",
            Some(("portal-ucp-ntfy", C::Portal, High)),
        ),
        (
            "eu1.ksc.kaspersky.com",
            Some(("ksc-cloud", C::KscCloud, High)),
        ),
        (
            "ksc.kaspersky.com",
            Some(("ksc-cloud-console-web", C::KscCloud, Medium)),
        ),
        (
            "crl.kaspersky.com",
            Some(("certificate-crl", C::Certificate, High)),
        ),
        ("ds.kaspersky.com", Some(("service-ds", C::Service, High))),
        (
            "edge.geo.kaspersky.com",
            Some(("service-geo", C::Service, Medium)),
        ),
        (
            "downloads2.kaspersky-labs.com",
            Some(("update-downloads-kaspersky-labs", C::Update, Medium)),
        ),
        (
            "products.s.kaspersky-labs.com",
            Some(("download-products", C::Download, Medium)),
        ),
        (
            "statistic.content.ipm-klca.kaspersky.com",
            Some(("telemetry-ipm-statistic", C::Telemetry, Medium)),
        ),
        (
            "my.kaspersky.com",
            Some(("portal-account", C::Portal, Medium)),
        ),
        (
            "hq.uis.kaspersky.com",
            Some(("portal-account", C::Portal, Medium)),
        ),
        (
            "mobile.kaspersky-labs.com",
            Some(("service-kaspersky-labs", C::Service, Medium)),
        ),
        (
            "kaspersky-labs.com",
            Some(("service-kaspersky-labs", C::Service, Medium)),
        ),
        (
            "content.kaspersky-labs.com",
            Some(("website-kaspersky-labs-content", C::Website, Low)),
        ),
        (
            "activation.kaspersky.com",
            Some(("activation-web-portal", C::Activation, Low)),
        ),
        (
            "click.kaspersky.com",
            Some(("website-click", C::Website, Low)),
        ),
        (
            "www.kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low)),
        ),
        (
            "support.kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low)),
        ),
        (
            "kaspersky.com",
            Some(("website-kaspersky-com", C::Website, Low)),
        ),
        (
            "www.kaspersky.co.uk",
            Some(("website-kaspersky-cctld", C::Website, Low)),
        ),
        (
            "kaspersky.com.cn",
            Some(("website-kaspersky-cctld", C::Website, Low)),
        ),
        (
            "support.kaspersky.cn",
            Some(("website-kaspersky-cctld", C::Website, Low)),
        ),
        (
            "kaspersky.ru",
            Some(("website-kaspersky-cctld", C::Website, Low)),
        ),
        (
            "securelist.com",
            Some(("website-securelist", C::Website, Low)),
        ),
        ("kas.pr", Some(("website-kas-pr", C::Website, Low))),
        (
            "media.kasperskycontenthub.com",
            Some(("website-kasperskycontenthub", C::Website, Low)),
        ),
        // Mail relays: Kaspersky-owned, ignored.
        ("mx13.kaspersky-labs.com", None),
        ("mailhub1-fb.kaspersky-labs.com", None),
        // Decoys.
        ("notkaspersky.com", None),
        ("kaspersky.com.attacker.example", None),
        ("xkaspersky-labs.com", None),
        ("kaspersky-labs.com.evil.example", None),
        ("kaspersky.co", None),
        ("kaspersky.example", None),
        ("securelist.com.example", None),
        ("example.com", None),
        ("dnl-01.geo.kaspersky.com.example", None),
    ];
    for (name, want) in table {
        let got = s.lookup(&host(name)).map(|i| {
            let r = s.rule(i);
            (r.id.as_str(), r.category, r.confidence)
        });
        assert_eq!(got, *want, "{name}");
    }
    let (idx, _) = s.explain(&host("mx9.kaspersky-labs.com")).unwrap();
    assert_eq!(s.rule(idx).id, "ignore-mail-relays");
    assert_eq!(s.files().len(), 1);
    assert!(s.files()[0].path.ends_with("rules/kaspersky.toml"));
    assert_eq!(s.sha256().len(), 64);
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
fn rule_set_can_be_shared_between_workers() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RuleSet>();
}
