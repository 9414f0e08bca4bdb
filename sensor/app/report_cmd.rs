//! `ksensor report`: re-render one saved JSON report, or merge several, without the captures.
//!
//! Contract: [`run`] checks every output path before reading anything (one line and exit 1
//! for a bad one), reads each report ([`ReportDoc::from_json`]: a file that is not a ksensor
//! report, or one of another report schema, is one line and exit 1), merges them when asked
//! ([`crate::output::merge`]; mixed rule sets are one line and exit 1 unless allowed) and
//! writes the JSON, Markdown, CSV and HTML reports from the one resulting model. Exit 4 when
//! writing an output failed (the others are still written).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::fs_error;
use crate::output::{html, merge, model::ReportDoc, render};

/// Where to write what.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// JSON report (`-`: standard output).
    pub report: Option<String>,
    pub report_md: Option<PathBuf>,
    pub report_csv: Option<PathBuf>,
    pub report_html: Option<PathBuf>,
}

/// Why `ksensor report` stopped, with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

fn user(message: String) -> Failure {
    Failure { code: 1, message }
}

/// Reads `files` (one to re-render, or several to merge when `merge` is set) and writes
/// `outputs`. Returns the messages of outputs that failed to write (exit 4) on success of the
/// rest.
pub fn run(
    files: &[PathBuf],
    do_merge: bool,
    allow_mixed_rules: bool,
    outputs: &Outputs,
) -> Result<Vec<String>, Failure> {
    let mut checked: Vec<(&str, &Path)> = Vec::new();
    for (flag, path) in [
        ("--report", outputs.report.as_deref().map(Path::new)),
        ("--report-md", outputs.report_md.as_deref()),
        ("--report-csv", outputs.report_csv.as_deref()),
        ("--report-html", outputs.report_html.as_deref()),
    ] {
        let Some(path) = path.filter(|p| *p != Path::new("-")) else {
            continue;
        };
        fs_error::check_output(path).map_err(user)?;
        if let Some((other, _)) = checked.iter().find(|(_, p)| *p == path) {
            return Err(user(format!(
                "{other} and {flag} both name {}",
                path.display()
            )));
        }
        if files.iter().any(|f| f == path) {
            return Err(user(format!(
                "{flag} {} is also a report to read",
                path.display()
            )));
        }
        checked.push((flag, path));
    }
    if checked.is_empty() && outputs.report.is_none() {
        return Err(user(
            "nothing to write: give --report, --report-md, --report-csv or --report-html"
                .to_string(),
        ));
    }
    let mut docs = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| user(fs_error::at(path, &e)))?;
        let doc =
            ReportDoc::from_json(&bytes).map_err(|e| user(format!("{}: {e}", path.display())))?;
        docs.push(doc);
    }
    let doc = if do_merge {
        merge::merge(docs, allow_mixed_rules).map_err(|e| user(e.to_string()))?
    } else {
        docs.into_iter()
            .next()
            .ok_or_else(|| user("no report to render".to_string()))?
    };
    let mut failed = Vec::new();
    fn write(failed: &mut Vec<String>, path: &Path, text: &str) {
        if let Err(e) = std::fs::write(path, text) {
            failed.push(fs_error::at(path, &e));
        }
    }
    if let Some(path) = &outputs.report {
        let text = doc.to_json_text();
        if path == "-" {
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                failed.push(format!("standard output: {e}"));
            }
        } else {
            write(&mut failed, Path::new(path), &text);
        }
    }
    if let Some(path) = &outputs.report_md {
        write(&mut failed, path, &render::markdown(&doc.head, &doc.hosts));
    }
    if let Some(path) = &outputs.report_csv {
        write(&mut failed, path, &render::csv(&doc.hosts));
    }
    if let Some(path) = &outputs.report_html {
        write(&mut failed, path, &html::render(&doc.head, &doc.hosts));
    }
    Ok(failed)
}
