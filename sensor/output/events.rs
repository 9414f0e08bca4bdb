//! JSON-lines events: one object per detection (and per name with `--all-names`).
//!
//! Fields: `ts` (RFC 3339 UTC, microseconds), `kind` (`dns`, `tls`, `quic`, `http`, or
//! `correlated` for a nameless connection attributed through a DNS answer, `update-payload` for
//! an update file seen in an HTTP body), `name`, `source` (which protocol field), `client`
//! `{ip, port, mac, vlan}`, `server` `{ip, port}`, `rule` `{id, category, confidence}` when a rule
//! matched, `input` (the capture file or interface), and per kind: `answers`/`ttl` (DNS
//! responses), `opcode` (DNS messages other than QUERY), `outer` (tunnel endpoints),
//! `correlation` (why a nameless connection counts). mDNS and LLMNR names have their own
//! `source` labels (`mdns-query`, `llmnr-answer`, …).
//!
//! Names that are not host names (no rule matches them; `--all-names`, or a literal in
//! Kaspersky's address space) carry `"literal": true`, the address as `name` and
//! `"kaspersky_space"` (whether a `corroborate` network of the rules holds it, on a connection
//! the server accepted) when they are an IPv4/IPv6 literal (an HTTP `Host` or request target,
//! a TLS/QUIC server name), or `"host_name": false` when they hold bytes a host name cannot
//! (DNS service labels with spaces, tunnels, raw UTF-8). Their `name` is escaped like a DNS
//! name in presentation form (RFC 1035 §5.1; the OpenTelemetry `dns.question.name`
//! convention): a byte below 0x20 or above 0x7E as `\DDD` (three decimal digits), a backslash
//! as `\\`, a double quote as `\"`, and a dot inside a DNS label as `\.`; ASCII letters are
//! lower-cased, as for host names.
//!
//! With [`EventFormat::Eve`] the same events (and the DNS responses to reported queries) are
//! written as Suricata-style EVE records instead; `output::eve` renders them.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::inventory::Correlation;
use crate::observation::{DnsInfo, Endpoint, Observation, Observed, OtherNameForm, PacketContext};
use crate::rules::{RuleIdx, RuleSet};

use super::describe::magic_label;
use super::eve::{EveRenderer, EveSource};
use super::mac_string;

/// The shape of each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventFormat {
    /// ksensor's own events (described above).
    #[default]
    Native,
    /// Suricata-compatible EVE records (`output::eve`); `pcap_cnt` for files, `in_iface` for
    /// interfaces.
    Eve(EveSource),
}

impl EventFormat {
    /// The names accepted by `--events-format` and the `events_format` config key.
    pub const NAMES: [&'static str; 2] = ["native", "eve"];

    /// The format called `name`, for inputs of kind `source`.
    pub fn from_name(name: &str, source: EveSource) -> Option<EventFormat> {
        match name {
            "native" => Some(EventFormat::Native),
            "eve" => Some(EventFormat::Eve(source)),
            _ => None,
        }
    }
}

/// Writes events to a sink, one JSON object per line, in either format. Each line is rendered
/// whole first and handed to the sink with one `write_all`, so a buffered sink (a `BufWriter`)
/// only ever passes whole lines to the file: a process that stops at any moment (a second
/// SIGTERM during the drain exits at once) leaves no cut line behind.
pub struct EventWriter {
    out: Box<dyn Write + Send>,
    inputs: Vec<String>,
    format: EventFormat,
    /// The line being rendered (reused).
    line: Vec<u8>,
    pub written: u64,
}

fn client_json(ep: &Endpoint, ctx: &PacketContext) -> Value {
    json!({
        "ip": ep.ip.to_string(),
        "port": ep.port,
        "mac": ctx.client_mac.as_ref().map(mac_string),
        "vlan": ctx.vlan,
    })
}

fn server_json(ep: &Endpoint) -> Value {
    json!({ "ip": ep.ip.to_string(), "port": ep.port })
}

fn rule_json(rules: &RuleSet, idx: RuleIdx, confidence_override: Option<&str>) -> Value {
    let rule = rules.rule(idx);
    json!({
        "id": rule.id,
        "category": rule.category.label(),
        "confidence": confidence_override.unwrap_or(rule.confidence.label()),
    })
}

/// Renders `value` and its newline into `line` (cleared first).
fn render_line(line: &mut Vec<u8>, value: &impl Serialize) -> io::Result<()> {
    line.clear();
    serde_json::to_writer(&mut *line, value)?;
    line.push(b'\n');
    Ok(())
}

impl EventWriter {
    pub fn new(out: Box<dyn Write + Send>, inputs: Vec<String>) -> Self {
        EventWriter {
            out,
            inputs,
            format: EventFormat::Native,
            line: Vec::new(),
            written: 0,
        }
    }

    /// Writes `format` instead of the native events.
    pub fn with_format(mut self, format: EventFormat) -> Self {
        self.format = format;
        self
    }

    /// Whether `obs` is an event line in this writer's format. The collector asks this before
    /// the rate limiter ([`crate::output::limit`]), so one place decides which observations
    /// become lines and are admitted, whatever the format; the formats only render. Both write
    /// names, update payloads and correlated nameless connections; EVE also writes the
    /// response to each reported query (a `dns` answer record, as Suricata does), which the
    /// native format folds into correlation only.
    pub fn is_event(&self, obs: &Observed, correlation: Option<&Correlation>) -> bool {
        match &obs.what {
            Observation::Name(_)
            | Observation::OtherName(_)
            | Observation::UpdatePayload { .. } => true,
            Observation::Nameless { .. } => correlation.is_some(),
            Observation::DnsAnswer { dns_facts, .. } => {
                matches!(self.format, EventFormat::Eve(_)) && dns_facts.is_some()
            }
            Observation::KscSession { .. }
            | Observation::KscDatagram { .. }
            | Observation::UpdateRequest { .. } => false,
        }
    }

    fn base(&self, obs: &Observed, kind: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "ts".into(),
            Value::String(obs.ctx.ts.rfc3339_micros().to_string()),
        );
        m.insert("kind".into(), Value::String(kind.into()));
        m
    }

    fn finish(&mut self, obs: &Observed, mut m: Map<String, Value>) -> io::Result<()> {
        if let Some((src, dst)) = obs.ctx.outer {
            m.insert(
                "outer".into(),
                json!({ "src": src.to_string(), "dst": dst.to_string() }),
            );
        }
        let input = self
            .inputs
            .get(usize::from(obs.ctx.input))
            .cloned()
            .unwrap_or_default();
        m.insert("input".into(), Value::String(input));
        self.write_line(&Value::Object(m))
    }

    /// Renders `value` and its newline into the line buffer, then writes the whole line at once.
    fn write_line(&mut self, value: &Value) -> io::Result<()> {
        render_line(&mut self.line, value)?;
        self.write_rendered()
    }

    /// Writes the line in the buffer with one `write_all`.
    fn write_rendered(&mut self) -> io::Result<()> {
        self.out.write_all(&self.line)?;
        self.written += 1;
        Ok(())
    }

    /// Renders the EVE record of `obs` into the line buffer and writes it (see
    /// [`EventWriter::write_line`]).
    fn write_eve(
        &mut self,
        source: EveSource,
        rules: &RuleSet,
        obs: &Observed,
        correlation: Option<&Correlation>,
    ) -> io::Result<()> {
        let renderer = EveRenderer {
            rules,
            inputs: &self.inputs,
            source,
        };
        let Some(record) = renderer.record(obs, correlation) else {
            return Ok(());
        };
        render_line(&mut self.line, &record)?;
        self.write_rendered()
    }

    /// Writes the event line for an observation, if [`EventWriter::is_event`] says it is one.
    /// `correlation` is what the inventory found for a nameless connection.
    pub fn write(
        &mut self,
        rules: &RuleSet,
        obs: &Observed,
        correlation: Option<&Correlation>,
    ) -> io::Result<()> {
        if let EventFormat::Eve(source) = self.format {
            return self.write_eve(source, rules, obs, correlation);
        }
        match &obs.what {
            Observation::Name(s) => {
                let mut m = self.base(obs, s.source.kind().label());
                m.insert("name".into(), Value::String(s.name.to_string()));
                m.insert(
                    "source".into(),
                    Value::String(DnsInfo::source_label(s.dns, s.source).into()),
                );
                m.insert("client".into(), client_json(&s.client, &obs.ctx));
                m.insert("server".into(), server_json(&s.server));
                if let Some(idx) = s.rule {
                    m.insert("rule".into(), rule_json(rules, idx, None));
                }
                if let Some(info) = s.dns.filter(|i| i.opcode != 0) {
                    m.insert("opcode".into(), json!(info.opcode));
                }
                if !s.answers.is_empty() {
                    let answers: Vec<String> = s.answers.iter().map(|a| a.to_string()).collect();
                    m.insert("answers".into(), json!(answers));
                    m.insert("ttl".into(), json!(s.ttl));
                }
                self.finish(obs, m)
            }
            Observation::OtherName(s) => {
                let mut m = self.base(obs, s.source.kind().label());
                m.insert("name".into(), Value::String(s.text.to_string()));
                match s.form {
                    OtherNameForm::Literal(_) => {
                        m.insert("literal".into(), Value::Bool(true));
                        m.insert("kaspersky_space".into(), Value::Bool(s.kaspersky_space));
                    }
                    OtherNameForm::NotHostName => {
                        m.insert("host_name".into(), Value::Bool(false));
                    }
                }
                m.insert(
                    "source".into(),
                    Value::String(DnsInfo::source_label(s.dns, s.source).into()),
                );
                m.insert("client".into(), client_json(&s.client, &obs.ctx));
                m.insert("server".into(), server_json(&s.server));
                if let Some(info) = s.dns.filter(|i| i.opcode != 0) {
                    m.insert("opcode".into(), json!(info.opcode));
                }
                self.finish(obs, m)
            }
            Observation::Nameless {
                client,
                server,
                reason,
                ..
            } => {
                let Some(c) = correlation else { return Ok(()) };
                let mut m = self.base(obs, "correlated");
                m.insert("name".into(), Value::String(c.name.to_string()));
                m.insert("source".into(), Value::String("dns-answer-address".into()));
                m.insert("client".into(), client_json(client, &obs.ctx));
                m.insert("server".into(), server_json(server));
                m.insert(
                    "rule".into(),
                    rule_json(rules, c.rule, Some(c.confidence.label())),
                );
                m.insert(
                    "correlation".into(),
                    json!({
                        "reason": reason.label(),
                        "answered_at": c.answered_at.rfc3339_micros().to_string(),
                    }),
                );
                self.finish(obs, m)
            }
            Observation::UpdatePayload {
                client,
                server,
                magic,
                host,
                rule,
                ..
            } => {
                let mut m = self.base(obs, "update-payload");
                if let Some(h) = host {
                    m.insert("name".into(), Value::String(h.to_string()));
                }
                if let Some(idx) = rule {
                    m.insert("rule".into(), rule_json(rules, *idx, None));
                }
                m.insert("magic".into(), Value::String(magic_label(*magic).into()));
                m.insert("client".into(), client_json(client, &obs.ctx));
                m.insert("server".into(), server_json(server));
                self.finish(obs, m)
            }
            Observation::DnsAnswer { .. }
            | Observation::KscSession { .. }
            | Observation::KscDatagram { .. }
            | Observation::UpdateRequest { .. } => Ok(()),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes the current sink and writes to `out` from now on (log rotation on SIGHUP).
    pub fn reopen(&mut self, out: Box<dyn Write + Send>) -> io::Result<()> {
        let flushed = self.out.flush();
        self.out = out;
        flushed
    }
}
