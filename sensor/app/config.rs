//! `--config FILE`: every `ksensor live` option in one TOML file; flags override it.
//!
//! Keys are the long flag names with `_` for `-` (`buffer_size`, `timeout_ms`, …), and
//! `interfaces` / `rules` are lists. Unknown keys are an error (a typo must not silently turn an
//! option off). The web config (`--web-config`) follows Prometheus's exporter web configuration
//! (`tls_server_config.cert_file`/`key_file`, `basic_auth_users` with bcrypt hashes), in TOML;
//! as there, relative certificate and key paths are relative to the web config file. Loading
//! it checks everything the listener will need, so a web config that loads is one the listener
//! starts with: every hash is a well-formed bcrypt hash of a sane cost, and the certificate and
//! key load and match (`app::web::tls`). Both files are read once at start
//! (`MAX_CONFIG_BYTES` at most) and give one error line, `path: problem`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest config file read: a config is a screenful; anything larger is the wrong file.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Most basic-auth users: a scraper or two and an operator.
pub const MAX_WEB_USERS: usize = 64;
/// Highest bcrypt cost accepted. Every step doubles the time of one verification (cost 10, the
/// usual `htpasswd -B -C 10`, is tens of milliseconds); at 14 a first login or a wrong password
/// already holds the listener's single verification thread for about a second, and beyond it
/// a first scrape queued behind a few others would miss Prometheus's default 10 s timeout.
pub const MAX_BCRYPT_COST: u32 = 14;
/// Lowest cost bcrypt defines (its key schedule runs 2^cost rounds, at least 2^4).
pub const MIN_BCRYPT_COST: u32 = 4;

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
    pub reassembly_memory: Option<usize>,
    pub rules: Option<Vec<PathBuf>>,
    pub rule_poll_secs: Option<u64>,
    pub inventory: Option<PathBuf>,
    /// The operator's internal networks (CIDR), beside RFC 1918/4193, link-local and loopback.
    pub internal_nets: Option<Vec<String>>,
    pub events: Option<String>,
    pub all_names: Option<bool>,
    /// `native` or `eve` (checked when the settings are merged).
    pub events_format: Option<String>,
    pub event_rate: Option<u32>,
    pub event_rate_global: Option<u32>,
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

/// A CIDR block (`198.51.100.0/24`) or a single address, for `--internal-net` and
/// `internal_nets`.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    s.parse::<ipnet::IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| format!("internal network {s:?} is not a CIDR block such as 198.51.100.0/24"))
}

fn read_limited(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| crate::fs_error::at(path, &e))?;
    if meta.is_dir() {
        return Err(format!("{shown}: is a directory"));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(format!("{shown}: larger than {MAX_CONFIG_BYTES} bytes"));
    }
    std::fs::read_to_string(path).map_err(|e| crate::fs_error::at(path, &e))
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
        let c: LiveConfig =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", one_line(&e)))?;
        c.internal_nets().map_err(|e| format!("{origin}: {e}"))?;
        Ok(c)
    }

    /// `internal_nets` parsed (CIDR blocks, or single addresses).
    pub fn internal_nets(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.internal_nets
            .iter()
            .flatten()
            .map(|s| parse_net(s))
            .collect()
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
            // RFC 7617 §2: the user-id cannot contain a colon.
            if user.contains(':') || user.is_empty() {
                return Err(format!("{origin}: bad user name {user:?}"));
            }
            check_bcrypt(hash).map_err(|e| format!("{origin}: user {user}: {e}"))?;
        }
        Ok(c)
    }

    /// Parses the file, makes relative certificate and key paths relative to its directory
    /// (as Prometheus's exporter toolkit does), and checks that the TLS files load and match.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let mut c = Self::parse(&path.display().to_string(), &read_limited(path)?)?;
        if let Some(tls) = &mut c.tls_server_config {
            let dir = path.parent().unwrap_or(Path::new(""));
            tls.cert_file = dir.join(&tls.cert_file);
            tls.key_file = dir.join(&tls.key_file);
            crate::app::web::tls::server_config(tls)?;
        }
        Ok(c)
    }
}

/// Whether `hash` is a bcrypt hash ksensor can verify: `$2a$`, `$2b$` or `$2y$`, a two-digit
/// cost in `MIN_BCRYPT_COST..=MAX_BCRYPT_COST`, `$`, then 22 characters of salt and 31 of hash
/// in bcrypt's base64 (OpenBSD's `bcrypt(3)` format, the one `htpasswd -B` writes).
pub fn check_bcrypt(hash: &str) -> Result<(), String> {
    use base64::Engine as _;
    const FORM: &str = "not a bcrypt hash (expected $2y$10$ and 53 characters; make one with \
                        htpasswd -nbBC 10 \"\" PASSWORD)";
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))
        .ok_or(FORM)?;
    let (cost, rest) = rest.split_once('$').ok_or(FORM)?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FORM.to_string());
    }
    let cost: u32 = cost.parse().map_err(|_| FORM)?;
    if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(format!(
            "bcrypt cost {cost} is outside {MIN_BCRYPT_COST}..={MAX_BCRYPT_COST} (each \
             step doubles the work of every login; 10 is usual)"
        ));
    }
    let (salt, digest) = rest.split_at_checked(22).ok_or(FORM)?;
    let salt_ok = bcrypt::BASE_64.decode(salt).is_ok_and(|s| s.len() == 16);
    let digest_ok =
        digest.len() == 31 && bcrypt::BASE_64.decode(digest).is_ok_and(|d| d.len() == 23);
    if !(salt_ok && digest_ok) {
        return Err(format!("{FORM}: bad salt or hash characters"));
    }
    Ok(())
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
internal_nets = ["198.51.100.0/24", "2001:db8::1"]
events = "/var/log/ksensor/events.jsonl"
all_names = false
events_format = "eve"
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
        assert_eq!(c.events_format.as_deref(), Some("eve"));
        let nets: Vec<String> = c
            .internal_nets()
            .expect("nets")
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["198.51.100.0/24", "2001:db8::1/128"]);
    }

    #[test]
    fn a_bad_internal_network_is_one_line_error() {
        let e = LiveConfig::parse("t.toml", "internal_nets = [\"10.0.0.0/33\"]\n")
            .expect_err("bad net");
        assert_eq!(
            e,
            "t.toml: internal network \"10.0.0.0/33\" is not a CIDR block such as 198.51.100.0/24"
        );
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
            &format!("[tls_server_config]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n[basic_auth_users]\nprom = \"{GOOD_HASH}\"\n"),
        )
        .expect("parses");
        assert_eq!(c.basic_auth_users.len(), 1);
        assert_eq!(
            c.tls_server_config.map(|t| t.key_file),
            Some(PathBuf::from("k.pem"))
        );
    }

    /// `glibc crypt("ksensor-test", "$2b$10$...")`: a real cost-10 hash.
    const GOOD_HASH: &str = "$2b$10$lzGQ8E5f3V9FLA5qeyLqI.QCJx6yrLIAVoLFbMe11ZZk7WmrrfnXG";

    #[test]
    fn web_config_rejects_plain_passwords_and_colons() {
        assert!(WebConfig::parse("w", "[basic_auth_users]\nprom = \"secret\"\n").is_err());
        let e = WebConfig::parse(
            "w",
            &format!("[basic_auth_users]\n\"a:b\" = \"{GOOD_HASH}\"\n"),
        )
        .expect_err("colon");
        assert!(e.contains("bad user name"), "{e}");
    }

    #[test]
    fn malformed_bcrypt_hashes_are_refused_in_words() {
        assert_eq!(check_bcrypt(GOOD_HASH), Ok(()));
        assert_eq!(check_bcrypt(&GOOD_HASH.replace("$2b$", "$2y$")), Ok(()));
        let cut = &GOOD_HASH[..GOOD_HASH.len() - 1];
        let long = format!("{GOOD_HASH}x");
        let bad_char = GOOD_HASH.replace('.', "!");
        // The salt's last character carries 2 unused bits; a non-zero one is not canonical.
        let noncanonical = format!(
            "{}{}",
            &GOOD_HASH[..28],
            &GOOD_HASH[28..].replacen('.', "/", 1)
        );
        for bad in [
            "$2y$10$x",
            "$2x$10$lzGQ8E5f3V9FLA5qeyLqI.oWt9ZHOyw6Jc8V.qQf5gCSrv5zjOAbm",
            "$2b$1$lzGQ8E5f3V9FLA5qeyLqI.oWt9ZHOyw6Jc8V.qQf5gCSrv5zjOAbm",
            "$2b$$10$lzGQ8E5f3V9FLA5qeyLqI.oWt9ZHOyw6Jc8V.qQf5gCSrv5zjOAbm",
            cut,
            &long,
            &bad_char,
            &noncanonical,
            "",
        ] {
            let e = check_bcrypt(bad).expect_err(bad);
            assert!(e.contains("not a bcrypt hash"), "{bad}: {e}");
        }
        for cost in ["03", "15", "31"] {
            let h = GOOD_HASH.replace("$10$", &format!("${cost}$"));
            let e = check_bcrypt(&h).expect_err(&h);
            assert!(e.contains("cost"), "{e}");
        }
        let e = WebConfig::parse("w.toml", "[basic_auth_users]\nprom = \"$2y$10$short\"\n")
            .expect_err("short");
        assert!(e.starts_with("w.toml: user prom: not a bcrypt hash"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn web_config_tls_paths_are_relative_to_the_file_and_checked_on_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let web = dir.path().join("web.toml");
        std::fs::write(
            &web,
            "[tls_server_config]\ncert_file = \"tls/c.pem\"\nkey_file = \"tls/k.pem\"\n",
        )
        .expect("write");
        let e = WebConfig::load(&web).expect_err("no such files");
        let expected = dir.path().join("tls/c.pem");
        assert_eq!(
            e,
            format!("{}: no such file or directory", expected.display())
        );
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
