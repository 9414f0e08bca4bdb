//! `--config FILE`: every `ksensor live` option in one TOML file; flags override it.
//!
//! Keys are the long flag names with `_` for `-` (`buffer_size`, `timeout_ms`, …), and
//! `interfaces` / `rules` are lists. Unknown keys are an error (a typo must not silently turn an
//! option off). The web config (`--web-config`) follows Prometheus's exporter web configuration
//! (`tls_server_config.cert_file`/`key_file`, `basic_auth_users` with bcrypt hashes), in TOML.
//! Both files are read once at start (`MAX_CONFIG_BYTES` at most) and give one error line,
//! `path: problem`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest config file read: a config is a screenful; anything larger is the wrong file.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most basic-auth users: a scraper or two and an operator.
pub const MAX_WEB_USERS: usize = 64;

/// The options of `ksensor live` as written in a config file. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    pub interfaces: Option<Vec<String>>,
    pub promisc: Option<bool>,
    pub snaplen: Option<u32>,
    pub buffer_size: Option<u32>,
    pub immediate: Option<bool>,
    pub timeout_ms: Option<u32>,
    pub bpf: Option<String>,
    pub fanout: Option<usize>,
    pub workers: Option<usize>,
    pub max_flows: Option<usize>,
    pub rules: Option<Vec<PathBuf>>,
    pub rule_poll_secs: Option<u64>,
    pub inventory: Option<PathBuf>,
    pub events: Option<String>,
    pub all_names: Option<bool>,
    pub listen: Option<String>,
    pub web_config: Option<PathBuf>,
    pub sensor: Option<String>,
}

/// TLS settings of the metrics listener.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// `--web-config`: TLS and basic auth for `/metrics` (and `/healthz`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    pub tls_server_config: Option<TlsServerConfig>,
    /// User name → bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
    #[serde(default)]
    pub basic_auth_users: BTreeMap<String, String>,
}

fn read_limited(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!("{shown}: larger than {MAX_CONFIG_BYTES} bytes"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))
}

fn one_line(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

impl LiveConfig {
    pub fn parse(origin: &str, text: &str) -> Result<LiveConfig, String> {
        toml::from_str(text).map_err(|e| format!("{origin}: {}", one_line(&e)))
    }

    pub fn load(path: &Path) -> Result<LiveConfig, String> {
        Self::parse(&path.display().to_string(), &read_limited(path)?)
    }
}

impl WebConfig {
    pub fn parse(origin: &str, text: &str) -> Result<WebConfig, String> {
        let c: WebConfig =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", one_line(&e)))?;
        if c.basic_auth_users.len() > MAX_WEB_USERS {
            return Err(format!(
                "{origin}: more than {MAX_WEB_USERS} basic_auth_users"
            ));
        }
        for (user, hash) in &c.basic_auth_users {
            if user.contains(':') || user.is_empty() {
                return Err(format!("{origin}: bad user name {user:?}"));
            }
            if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
                return Err(format!("{origin}: user {user}: not a bcrypt hash"));
            }
        }
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<WebConfig, String> {
        Self::parse(&path.display().to_string(), &read_limited(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_live_config_parses() {
        let c = LiveConfig::parse(
            "t.toml",
            r#"
interfaces = ["eth1", "eth2"]
promisc = false
snaplen = 2048
buffer_size = 1048576
immediate = true
timeout_ms = 50
bpf = "not port 22"
fanout = 2
workers = 4
max_flows = 1000
rules = ["/etc/ksensor/rules"]
rule_poll_secs = 10
inventory = "/etc/ksensor/assets.csv"
events = "/var/log/ksensor/events.jsonl"
all_names = false
listen = "127.0.0.1:9977"
web_config = "/etc/ksensor/web.toml"
sensor = "dc1-span"
"#,
        )
        .expect("parses");
        assert_eq!(
            c.interfaces,
            Some(vec!["eth1".to_string(), "eth2".to_string()])
        );
        assert_eq!(c.fanout, Some(2));
        assert_eq!(c.sensor.as_deref(), Some("dc1-span"));
        assert_eq!(c.promisc, Some(false));
    }

    #[test]
    fn unknown_key_is_one_line_error() {
        let e = LiveConfig::parse("t.toml", "interfacs = [\"eth1\"]\n").expect_err("typo");
        assert!(e.starts_with("t.toml: "), "{e}");
        assert!(e.contains("interfacs"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        assert!(LiveConfig::parse("t.toml", "snaplen = \"big\"\n").is_err());
    }

    #[test]
    fn web_config_parses_users_and_tls() {
        let c = WebConfig::parse(
            "w.toml",
            "[tls_server_config]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[basic_auth_users]\nprom = \"$2y$10$abcdefghijklmnopqrstuu5y5Pq3z7mC3oJ1X0oQ1e6Gg0x8b6l2\"\n",
        )
        .expect("parses");
        assert_eq!(c.basic_auth_users.len(), 1);
        assert_eq!(
            c.tls_server_config.map(|t| t.key_file),
            Some(PathBuf::from("k.pem"))
        );
    }

    #[test]
    fn web_config_rejects_plain_passwords_and_colons() {
        assert!(WebConfig::parse("w", "[basic_auth_users]\nprom = \"secret\"\n").is_err());
        assert!(WebConfig::parse("w", "[basic_auth_users]\n\"a:b\" = \"$2y$10$x\"\n").is_err());
    }

    #[test]
    fn shipped_examples_parse() {
        let live = LiveConfig::parse("ksensor.toml", include_str!("../../deploy/ksensor.toml"))
            .expect("deploy/ksensor.toml");
        assert_eq!(live.listen.as_deref(), Some("127.0.0.1:9977"));
        assert_eq!(live.interfaces, Some(vec!["eth1".to_string()]));
        let web = WebConfig::parse("web.toml", include_str!("../../deploy/web.toml"))
            .expect("deploy/web.toml");
        assert!(web.basic_auth_users.is_empty());
        assert!(web.tls_server_config.is_some());
    }

    #[test]
    fn oversized_config_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.toml");
        std::fs::write(&path, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).expect("write");
        let e = LiveConfig::load(&path).expect_err("too big");
        assert!(e.contains("larger than"), "{e}");
    }
}
