//! The stages refer only to what sits below them.
//!
//! `sensor/lib.rs` lists the crate's modules in layers, bottom to top (its numbered list). This
//! test reads that list, then every `.rs` file under `sensor/`, and finds the top-level modules
//! each file refers to: `crate::x` paths (in `use` lines and inline, `use crate::{x, y}` groups
//! included) and `super::` chains that climb to the crate root, outside comments and string
//! literals, test code included. A file may refer to its own module and to modules of lower
//! layers; a reference to a module of its own layer or of a layer above fails the test, naming
//! the file and the line. Every module declared in `lib.rs` must be in exactly one layer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers of `lib.rs`'s docs: lines `//! N. ` followed by backticked module names up to
/// the first `:`. Returns module → layer number.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.strip_prefix("//! ") else {
            continue;
        };
        let Some((number, rest)) = rest.split_once(". ") else {
            continue;
        };
        let Ok(layer) = number.parse::<usize>() else {
            continue;
        };
        let names = rest.split(':').next().unwrap_or("");
        for name in names.split('`').skip(1).step_by(2) {
            let name = name.trim_matches(|c| c == '[' || c == ']');
            let before = out.insert(name.to_string(), layer);
            assert!(before.is_none(), "lib.rs lists `{name}` twice");
        }
    }
    out
}

/// Modules declared at the crate root (`mod x;`, `pub mod x;`).
fn declared_modules(lib: &str) -> Vec<String> {
    lib.lines()
        .map(str::trim)
        .filter_map(|l| {
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// Items defined at the crate root by a module rather than declared as modules: exported
/// macros, with the module that defines them.
const ROOT_ITEMS: &[(&str, &str)] = &[("reason_enum", "reason")];

/// `src` with comments, string literals and character literals replaced by spaces (newlines
/// kept, so line numbers still match).
fn code_only(src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"…", r#"…"#, br"…" (the `r` not part of a longer identifier).
        let raw_start = c == 'r' && !prev.is_some_and(|p| is_ident(p) && p != 'b')
            || (c == 'r' && prev == Some('b') && !(i >= 2 && is_ident(chars[i - 2])));
        if raw_start {
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let hashes = j - i - 1;
                out.push(' ');
                for _ in 0..hashes {
                    out.push(' ');
                }
                out.push(' ');
                j += 1;
                loop {
                    match chars.get(j) {
                        None => break,
                        Some('"') if (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) => {
                            for _ in 0..=hashes {
                                out.push(' ');
                            }
                            j += hashes + 1;
                            break;
                        }
                        Some(&ch) => {
                            out.push(blank(ch));
                            j += 1;
                        }
                    }
                }
                i = j;
                continue;
            }
        }
        if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        out.push(' ');
                        if let Some(&e) = chars.get(i + 1) {
                            out.push(blank(e));
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    ch => {
                        out.push(blank(ch));
                        i += 1;
                    }
                }
            }
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}'), else a lifetime or label.
            let end = if next == Some('\\') {
                (i + 3..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for _ in i..=end {
                    out.push(' ');
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A reference to a top-level item: the item's name and the line (1-based).
#[derive(Debug, PartialEq, Eq)]
struct Reference {
    line: usize,
    item: String,
}

/// The top-level items `code` (comments and literals blanked) refers to, for a file whose
/// module path has `depth` components (`flow/mod.rs` 1, `flow/tcp.rs` 2).
fn references(code: &str, depth: usize) -> Vec<Reference> {
    let chars: Vec<char> = code.chars().collect();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let word_at =
        |i: usize| -> String { chars[i..].iter().take_while(|&&c| is_ident(c)).collect() };
    let skip_ws = |mut i: usize| {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        i
    };
    // `::` after optional whitespace: the index after it.
    let path_sep = |i: usize| {
        let i = skip_ws(i);
        (chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':')).then(|| skip_ws(i + 2))
    };
    let line_of = |i: usize| chars[..i].iter().filter(|&&c| c == '\n').count() + 1;

    let mut refs = Vec::new();
    // Brace depths at which inline `mod x {` blocks opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut pending_mod = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => {
                braces += 1;
                if pending_mod {
                    inline_mods.push(braces);
                    pending_mod = false;
                }
                i += 1;
                continue;
            }
            '}' => {
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
                braces = braces.saturating_sub(1);
                i += 1;
                continue;
            }
            ';' => {
                pending_mod = false;
                i += 1;
                continue;
            }
            _ => {}
        }
        let starts_word = is_ident(c) && (i == 0 || !is_ident(chars[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let word = word_at(i);
        let after = i + word.chars().count();
        match word.as_str() {
            "mod" => pending_mod = true,
            "crate" => {
                if let Some(j) = path_sep(after) {
                    push_path_heads(&chars, j, line_of(i), &mut refs);
                }
            }
            "super" => {
                let mut climbs = 1;
                let mut j = after;
                let mut head = None;
                while let Some(k) = path_sep(j) {
                    if word_at(k) == "super" {
                        climbs += 1;
                        j = k + "super".len();
                    } else {
                        head = Some(k);
                        break;
                    }
                }
                if let Some(k) = head {
                    if climbs >= depth + inline_mods.len() {
                        push_path_heads(&chars, k, line_of(i), &mut refs);
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i = after;
    }
    refs
}

/// Records the first segment of the path at `i` (an identifier, or each item of a `{…}` group).
fn push_path_heads(chars: &[char], i: usize, line: usize, refs: &mut Vec<Reference>) {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    if chars.get(i) != Some(&'{') {
        let item: String = chars[i..].iter().take_while(|&&c| is_ident(c)).collect();
        if !item.is_empty() {
            refs.push(Reference { line, item });
        }
        return;
    }
    // A group: the first identifier after `{` and after every `,` at depth 1.
    let mut depth = 0;
    let mut expect_head = false;
    let mut j = i;
    let mut lines = 0;
    while j < chars.len() {
        let c = chars[j];
        match c {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_head = true,
            '\n' => lines += 1,
            c if expect_head && is_ident(c) => {
                let item: String = chars[j..].iter().take_while(|&&c| is_ident(c)).collect();
                j += item.chars().count();
                expect_head = false;
                if item != "self" {
                    refs.push(Reference {
                        line: line + lines,
                        item,
                    });
                }
                continue;
            }
            _ => {}
        }
        j += 1;
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read sensor/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_refers_to_a_layer_above_its_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("sensor");
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("read lib.rs");
    let layers = layers(&lib);
    let declared = declared_modules(&lib);
    assert!(declared.len() > 10, "found only {declared:?} in lib.rs");
    for m in &declared {
        assert!(
            layers.contains_key(m),
            "module `{m}` is declared in lib.rs but in none of its layers"
        );
    }
    for m in layers.keys() {
        assert!(
            declared.contains(m),
            "lib.rs's layers list `{m}`, which it does not declare"
        );
    }
    let layer_of = |item: &str| -> Option<(&str, usize)> {
        let module = ROOT_ITEMS
            .iter()
            .find(|(name, _)| *name == item)
            .map_or(item, |(_, m)| m);
        layers.get_key_value(module).map(|(m, l)| (m.as_str(), *l))
    };

    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in &files {
        let rel = path.strip_prefix(&root).expect("under sensor/");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        let Some(module) = parts.first().cloned() else {
            continue;
        };
        // The crate root and the binary sit above every layer.
        if module == "lib" || module == "main" {
            continue;
        }
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod"));
        let Some((_, own)) = layer_of(&module) else {
            problems.push(format!(
                "sensor/{}: module `{module}` has no layer",
                rel.display()
            ));
            continue;
        };
        let src = std::fs::read_to_string(path).expect("read source");
        for r in references(&code_only(&src), depth) {
            checked += 1;
            let Some((target, layer)) = layer_of(&r.item) else {
                problems.push(format!(
                    "sensor/{}:{}: refers to `crate::{}`, which is in no layer of lib.rs",
                    rel.display(),
                    r.line,
                    r.item
                ));
                continue;
            };
            if target != module && layer >= own {
                problems.push(format!(
                    "sensor/{}:{}: `{module}` (layer {own}) refers to `{target}` (layer {layer})",
                    rel.display(),
                    r.line
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} references found: the scan is broken"
    );
    assert!(
        problems.is_empty(),
        "imports up (or across) the stack:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scan_finds_paths_and_skips_comments_and_literals() {
    let src = r###"
use crate::flow::Flow;
use crate::{decode::{self, L4}, proto::HostName,
    rules};
// use crate::hidden;
/* crate::hidden /* nested */ crate::hidden */
const S: &str = "crate::hidden";
const R: &str = r#"crate::hidden "quoted""#;
const C: char = '"';
const Q: char = '\'';
fn f<'a>(x: &'a u8) -> usize { crate::inventory::MAX_HOSTS + super::super::metrics::X }
mod tests {
    use super::*;
    use super::super::super::pipeline;
    use super::super::flow;
}
"###;
    let refs = references(&code_only(src), 2);
    let found: Vec<(usize, &str)> = refs.iter().map(|r| (r.line, r.item.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (2, "flow"),
            (3, "decode"),
            (3, "proto"),
            (4, "rules"),
            (11, "inventory"),
            (11, "metrics"),
            (14, "pipeline"),
        ]
    );
}

#[test]
fn the_layers_are_read_from_numbered_doc_lines() {
    let lib = "//! Layers:\n//!\n//! 1. [`time`], `hex`: base\n//! 2. [`capture`]: packets, not `decode`\n//! 3x. `no`\npub mod time;\nmod hex;\n";
    let l = layers(lib);
    assert_eq!(
        l.into_iter().collect::<Vec<_>>(),
        vec![
            ("capture".to_string(), 2),
            ("hex".to_string(), 1),
            ("time".to_string(), 1)
        ]
    );
    assert_eq!(declared_modules(lib), vec!["time", "hex"]);
}
