//! Structured logs on standard error, one logfmt line per event:
//! `ts=2024-05-01T12:00:00.000000Z level=info msg="rules reloaded" rules=212 sha256=ab12…`.
//!
//! Values are quoted when they contain spaces, quotes, `=` or control characters, with `"`,
//! `\` and newlines escaped, so every record stays on one line and `grep level=error` works.
//! Each line is written with one `write_all` on a locked stderr: lines from threads never mix.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::time::Timestamp;

/// Longest value logged (bytes); a longer one (a pathological libpcap message) is cut.
pub const MAX_VALUE_LEN: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

fn push_value(line: &mut String, value: &str) {
    let mut end = value.len().min(MAX_VALUE_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let value = value.get(..end).unwrap_or("");
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if plain {
        line.push_str(value);
        return;
    }
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// Formats one record (without the trailing newline).
pub fn format(ts: Timestamp, level: Level, msg: &str, fields: &[(&str, &str)]) -> String {
    let mut line = String::with_capacity(128);
    let _ = write!(
        line,
        "ts={} level={} msg=",
        ts.rfc3339_micros(),
        level.label()
    );
    push_value(&mut line, msg);
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        push_value(&mut line, value);
    }
    line
}

fn now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_secs_nanos(d.as_secs(), u64::from(d.subsec_nanos()))
}

/// Writes one record to standard error.
pub fn log(level: Level, msg: &str, fields: &[(&str, &str)]) {
    let mut line = format(now(), level, msg, fields);
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn info(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, &str)]) {
    log(Level::Error, msg, fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: Timestamp = Timestamp(1_714_564_800_000_000_000);

    #[test]
    fn plain_values_are_bare() {
        assert_eq!(
            format(
                TS,
                Level::Info,
                "started",
                &[("interface", "eth1"), ("workers", "2")]
            ),
            "ts=2024-05-01T12:00:00.000000Z level=info msg=started interface=eth1 workers=2"
        );
    }

    #[test]
    fn spaces_quotes_and_newlines_are_escaped_on_one_line() {
        let line = format(
            TS,
            Level::Error,
            "rule reload failed",
            &[("error", "a.toml:3: bad \"x\"\nmore")],
        );
        assert_eq!(
            line,
            "ts=2024-05-01T12:00:00.000000Z level=error msg=\"rule reload failed\" error=\"a.toml:3: bad \\\"x\\\"\\nmore\""
        );
    }

    #[test]
    fn empty_and_equals_values_are_quoted() {
        let line = format(TS, Level::Warn, "x", &[("a", ""), ("b", "k=v")]);
        assert!(line.ends_with("a=\"\" b=\"k=v\""), "{line}");
    }

    #[test]
    fn overlong_value_is_cut_at_a_char_boundary() {
        let long = "é".repeat(MAX_VALUE_LEN);
        let line = format(TS, Level::Info, "m", &[("v", &long)]);
        assert!(line.len() < MAX_VALUE_LEN + 100, "{}", line.len());
        let control = format(TS, Level::Info, "m", &[("v", "a\u{1}b")]);
        assert!(control.ends_with("v=\"a\\u{1}b\""), "{control}");
    }
}
