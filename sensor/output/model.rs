//! The report model: the JSON audit report as typed, owned data that reads back what it wrote.
//!
//! Contract: a [`ReportDoc`] serialises to exactly the bytes of the JSON report a run writes
//! (`serde_json`'s pretty printer; every struct lists its fields in the sorted order of the
//! object keys, because the run builds its JSON as sorted `serde_json` maps), and any JSON
//! report of [`REPORT_SCHEMA`] deserialises into one. The Markdown, CSV and HTML renderers read
//! only this model ([`ReportHead`] plus [`HostDocs`]), so a report re-rendered or merged from
//! saved JSON looks like one rendered at the end of a run, and nothing a renderer shows is
//! computed a second time from the inventory.
//!
//! Labels (verdicts, kinds, roles) stay strings here: they are whatever the writing sensor
//! wrote. `report_cmd`-style consumers that need the enums back parse them
//! ([`crate::output::merge`]).
//!
//! Counters, caps and event figures are kept as plain JSON values: they are counts that a
//! merge sums key by key, and renderers walk them without knowing every key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of the JSON report's layout, written as `sensor.report_schema`. Raise it when
/// a field changes meaning or a field a merge needs is added; `ksensor report` refuses other
/// versions with one line.
pub const REPORT_SCHEMA: u64 = 1;

/// What every report says about the sensor that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorDoc {
    /// Always `ksensor`: how a report file is told from any other JSON.
    pub name: String,
    pub report_schema: u64,
    pub version: String,
}

/// One input (a capture file) of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputDoc {
    /// BLAKE3 of the file's bytes, when asked for (`--input-hash blake3`).
    #[serde(default)]
    pub blake3: Option<String>,
    pub captured_bytes: u64,
    /// Bytes hashed at each end of the file: `min(size, 1 MiB)` (`capture::digest`).
    #[serde(default)]
    pub edge_bytes: u64,
    /// Why reading stopped early, if it did.
    pub error: Option<String>,
    pub file_bytes: u64,
    pub first_ts: Option<String>,
    /// SHA-256 of the first `edge_bytes` bytes.
    #[serde(default)]
    pub head_sha256: Option<String>,
    pub last_ts: Option<String>,
    pub name: String,
    /// Things skipped or noticed while reading (label → count).
    pub notes: BTreeMap<String, u64>,
    pub packets: u64,
    /// SHA-256 of the file's bytes, when computed (`--input-hash sha256`, or an input of at
    /// most 1 MiB, hashed whole with its first MiB).
    pub sha256: Option<String>,
    /// SHA-256 of the last `edge_bytes` bytes.
    #[serde(default)]
    pub tail_sha256: Option<String>,
}

impl InputDoc {
    /// The input's whole-file digest as the reports show it (`sha256 …`, `blake3 …`).
    pub fn digest(&self) -> Option<(&'static str, &str)> {
        match (&self.sha256, &self.blake3) {
            (Some(d), _) => Some(("SHA-256", d)),
            (None, Some(d)) => Some(("BLAKE3", d)),
            (None, None) => None,
        }
    }

    /// What identifies the input's bytes in a report: its whole-file digests, else its size
    /// with the SHA-256 of its first and last MiB.
    pub fn identity(&self) -> Option<String> {
        if let Some((alg, d)) = self.digest() {
            return Some(format!("{alg} {d}"));
        }
        match (&self.head_sha256, &self.tail_sha256) {
            (Some(h), Some(t)) => Some(format!(
                "{} bytes, first/last {} bytes SHA-256 {h}/{t}",
                self.file_bytes, self.edge_bytes
            )),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleFileDoc {
    pub path: String,
    pub sha256: String,
}

/// The rule set a run matched with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesDoc {
    pub files: Vec<RuleFileDoc>,
    pub rule_count: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRangeDoc {
    pub first: Option<String>,
    pub last: Option<String>,
}

/// A peer a reported host's verdict depends on (a KSC server, distribution point or update
/// server it is tied to) that is not itself a reported host: what a later merge needs to
/// decide again whether it manages the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDoc {
    pub address: String,
    /// Inside our networks by address (RFC 1918/4193, link-local, loopback, `--internal-net`).
    pub internal: bool,
    /// Its role in the operator's inventory, if listed.
    pub inventory_role: Option<String>,
    /// What was learned about it (its facts), as in a host's `learned`.
    pub learned: Vec<FactDoc>,
}

/// What the verdicts rest on beyond the hosts' own entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictContextDoc {
    /// The operator's inventory names KSC servers, distribution points or update mirrors, so
    /// "managed by us" means "by an inventoried one".
    pub inventory_names_managers: bool,
    pub peers: Vec<PeerDoc>,
}

/// One report that went into a merge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedReportDoc {
    /// The inputs that report read, by name.
    pub inputs: Vec<String>,
    pub rules_sha256: String,
    pub sensor_version: String,
}

/// A rule set seen among merged reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetDoc {
    pub reports: u64,
    pub rule_count: u64,
    pub sha256: String,
}

/// How a merged report was made (only in merged reports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeDoc {
    /// What a merge cannot do, in words.
    pub note: String,
    pub reports: Vec<MergedReportDoc>,
    pub rule_sets: Vec<RuleSetDoc>,
}

/// A host's inventory entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AssetDoc {
    pub label: String,
    pub role: Option<String>,
}

/// One evidence entry of a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceDoc {
    pub category: Option<String>,
    pub confidence: String,
    pub count: u64,
    pub detail: Option<String>,
    pub direct: bool,
    pub family: Option<String>,
    pub first: Option<String>,
    pub input: Option<String>,
    pub install: bool,
    pub kind: String,
    pub last: Option<String>,
    pub name: Option<String>,
    pub origin: Option<String>,
    pub peer: Option<String>,
    pub product: Option<String>,
    pub rule: Option<String>,
    pub source: String,
}

/// One learned fact of a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactDoc {
    pub fact: String,
    pub name: Option<String>,
    pub peer: Option<String>,
    pub port: Option<u16>,
    pub text: String,
}

/// One manager of a host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerDoc {
    pub address: Option<String>,
    pub cloud_console: Option<String>,
    pub internal: bool,
    pub inventory_role: Option<String>,
    pub learned_role: Option<String>,
    pub link: String,
}

/// One reported host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDoc {
    pub asset: Option<AssetDoc>,
    pub categories: Vec<String>,
    pub certainty: Option<String>,
    pub dns_servers: Vec<String>,
    pub evidence: Vec<EvidenceDoc>,
    pub evidence_dropped_by_cap: u64,
    pub first_seen: String,
    pub internal: bool,
    pub ip: String,
    pub last_seen: String,
    pub learned: Vec<FactDoc>,
    pub macs: Vec<String>,
    pub managed_by: Vec<ManagerDoc>,
    pub product: Option<String>,
    pub reason: String,
    pub roles: Vec<String>,
    pub rules: BTreeMap<String, u64>,
    pub verdict: String,
    pub vlans: Vec<u16>,
}

/// Everything in a report but its hosts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportHead {
    pub caps: BTreeMap<String, u64>,
    pub counters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Value>,
    pub inputs: Vec<InputDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeDoc>,
    pub rules: RulesDoc,
    pub sensor: SensorDoc,
    pub time_range: TimeRangeDoc,
    pub verdict_context: VerdictContextDoc,
    pub verdicts: BTreeMap<String, u64>,
}

/// A whole report: what `--report` writes and `ksensor report` reads.
///
/// Serialised through [`ReportDoc::to_json_value`]-free `Serialize` below so that `hosts`
/// falls in its sorted place between `events` and `inputs`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportDoc {
    pub head: ReportHead,
    pub hosts: Vec<HostDoc>,
}

/// The hosts of a report, one at a time: a run builds each from the inventory when asked
/// (nothing is held for all hosts at once), a saved or merged report hands out its own.
pub trait HostDocs {
    fn for_each(&self, f: &mut dyn FnMut(&HostDoc));
}

impl HostDocs for [HostDoc] {
    fn for_each(&self, f: &mut dyn FnMut(&HostDoc)) {
        for h in self {
            f(h);
        }
    }
}

impl HostDocs for Vec<HostDoc> {
    fn for_each(&self, f: &mut dyn FnMut(&HostDoc)) {
        self.as_slice().for_each(f);
    }
}

/// The JSON report's key order with `hosts` in place; `head` and `hosts` are written by
/// `head_entry` and `hosts` respectively.
pub(crate) fn write_report<S, H>(
    serializer: S,
    head: &ReportHead,
    hosts: &H,
) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    H: Serialize + ?Sized,
{
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(None)?;
    map.serialize_entry("caps", &head.caps)?;
    map.serialize_entry("counters", &head.counters)?;
    if let Some(events) = &head.events {
        map.serialize_entry("events", events)?;
    }
    map.serialize_entry("hosts", hosts)?;
    map.serialize_entry("inputs", &head.inputs)?;
    if let Some(merge) = &head.merge {
        map.serialize_entry("merge", merge)?;
    }
    map.serialize_entry("rules", &head.rules)?;
    map.serialize_entry("sensor", &head.sensor)?;
    map.serialize_entry("time_range", &head.time_range)?;
    map.serialize_entry("verdict_context", &head.verdict_context)?;
    map.serialize_entry("verdicts", &head.verdicts)?;
    map.end()
}

impl Serialize for ReportDoc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        write_report(serializer, &self.head, &self.hosts)
    }
}

/// Why a file is not a report `ksensor report` can read.
#[derive(Debug)]
pub enum ReadError {
    /// Not JSON at all.
    NotJson(String),
    /// JSON, but not written by ksensor.
    NotAReport,
    /// A ksensor report of another layout version (0: written before versions were kept).
    Schema(u64),
    /// A ksensor report of this version with a field missing or of the wrong type.
    Invalid(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotJson(e) => write!(f, "not a ksensor JSON report (not JSON: {e})"),
            ReadError::NotAReport => {
                write!(
                    f,
                    "not a ksensor JSON report (no \"sensor\": {{\"name\": \"ksensor\"}})"
                )
            }
            ReadError::Schema(0) => write!(
                f,
                "a ksensor report without a report schema version (written by a sensor \
                 older than report schema {REPORT_SCHEMA}); replay its inputs again"
            ),
            ReadError::Schema(v) => write!(
                f,
                "a ksensor report of report schema {v}; this ksensor reads schema \
                 {REPORT_SCHEMA}"
            ),
            ReadError::Invalid(e) => write!(f, "a damaged ksensor report: {e}"),
        }
    }
}

impl ReportDoc {
    /// Reads a JSON report: one of [`ReadError`] unless it is a ksensor report of
    /// [`REPORT_SCHEMA`].
    pub fn from_json(bytes: &[u8]) -> Result<ReportDoc, ReadError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ReadError::NotJson(e.to_string()))?;
        let sensor = value.get("sensor");
        if sensor.and_then(|s| s.get("name")).and_then(Value::as_str) != Some("ksensor") {
            return Err(ReadError::NotAReport);
        }
        let schema = sensor
            .and_then(|s| s.get("report_schema"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if schema != REPORT_SCHEMA {
            return Err(ReadError::Schema(schema));
        }
        let Value::Object(mut map) = value else {
            return Err(ReadError::NotAReport);
        };
        let hosts = map.remove("hosts").unwrap_or(Value::Null);
        let hosts: Vec<HostDoc> =
            serde_json::from_value(hosts).map_err(|e| ReadError::Invalid(format!("hosts: {e}")))?;
        let head: ReportHead = serde_json::from_value(Value::Object(map))
            .map_err(|e| ReadError::Invalid(e.to_string()))?;
        Ok(ReportDoc { head, hosts })
    }

    /// The report as the JSON text `--report` writes (pretty, with a final newline).
    pub fn to_json_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bundled golden report reads back into the model and is written again byte for
    /// byte: the model holds every field the JSON report has, in the same order.
    #[test]
    fn golden_reports_round_trip_byte_for_byte() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("tests/golden") {
            let path = entry.expect("entry").path();
            if !path.to_string_lossy().ends_with(".report.json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            let doc = ReportDoc::from_json(text.as_bytes())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc.to_json_text(), text, "{}", path.display());
            seen += 1;
        }
        assert!(seen > 10, "only {seen} golden reports");
    }

    #[test]
    fn other_json_and_other_schemas_are_refused_with_a_reason() {
        assert!(matches!(
            ReportDoc::from_json(b"not json"),
            Err(ReadError::NotJson(_))
        ));
        assert!(matches!(
            ReportDoc::from_json(br#"{"hosts": []}"#),
            Err(ReadError::NotAReport)
        ));
        assert!(matches!(
            ReportDoc::from_json(br#"{"sensor": {"name": "ksensor", "version": "0.1.0"}}"#),
            Err(ReadError::Schema(0))
        ));
        assert!(matches!(
            ReportDoc::from_json(br#"{"sensor": {"name": "ksensor", "report_schema": 99}}"#),
            Err(ReadError::Schema(99))
        ));
        assert!(matches!(
            ReportDoc::from_json(br#"{"sensor": {"name": "ksensor", "report_schema": 1}}"#),
            Err(ReadError::Invalid(_))
        ));
    }
}
