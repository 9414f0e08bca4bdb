//! The operator's inventory of managed assets (`--inventory FILE`).
//!
//! CSV with the header `address,label,role`: `address` is an IP address, a CIDR block or a MAC
//! address; `label` a free asset name; `role` one of `endpoint`, `ksc-server`,
//! `distribution-point`, `update-mirror`, `resolver`, `proxy`. Blank lines and lines starting
//! with `#` are ignored. Labels may be quoted (`"a, b"`) when they contain commas.
//!
//! With the inventory come the operator's internal networks (`--internal-net CIDR`, config key
//! `internal_nets`): an address is *internal* when it is private or local by RFC (RFC 1918,
//! RFC 4193 unique local, link-local, loopback) or inside one of them. Only internal servers
//! are reported with a learned role, and without an inventory only an internal KSC server or
//! mirror makes its clients "managed by us".

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// What an asset is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Endpoint,
    KscServer,
    /// A Kaspersky Security Center distribution point (a Network Agent that relays updates
    /// and accepts agent connections).
    DistributionPoint,
    UpdateMirror,
    Resolver,
    /// A forward proxy: what it fetches upstream, it fetches for its clients.
    Proxy,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Endpoint,
        Role::KscServer,
        Role::DistributionPoint,
        Role::UpdateMirror,
        Role::Resolver,
        Role::Proxy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Role::Endpoint => "endpoint",
            Role::KscServer => "ksc-server",
            Role::DistributionPoint => "distribution-point",
            Role::UpdateMirror => "update-mirror",
            Role::Resolver => "resolver",
            Role::Proxy => "proxy",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.label() == s)
    }

    /// A role whose clients are managed by us: a KSC server, distribution point or update
    /// mirror of ours.
    pub fn manages(self) -> bool {
        matches!(
            self,
            Role::KscServer | Role::DistributionPoint | Role::UpdateMirror
        )
    }
}

/// How an asset is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetAddress {
    Net(IpNet),
    Mac([u8; 6]),
}

/// One inventory line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asset {
    pub address: AssetAddress,
    pub label: String,
    pub role: Role,
    pub line: usize,
}

/// A bad inventory file: `path:line: problem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetError {
    pub path: String,
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.problem)
    }
}

impl std::error::Error for AssetError {}

/// The parsed inventory, and the operator's internal networks.
#[derive(Clone, Debug, Default)]
pub struct Assets {
    assets: Vec<Asset>,
    internal_nets: Vec<IpNet>,
}

/// Whether `ip` is private or local by RFC: RFC 1918 private IPv4, RFC 4193 unique local IPv6
/// (fc00::/7), link-local (169.254.0.0/16, fe80::/10) and loopback. An IPv4-mapped IPv6
/// address is judged as its IPv4 address.
pub fn is_private_or_local(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        IpAddr::V6(v6) => {
            let first = v6.segments().first().copied().unwrap_or(0);
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || v6.is_loopback()
        }
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn parse_address(s: &str) -> Option<AssetAddress> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(AssetAddress::Net(IpNet::from(ip)));
    }
    if let Ok(net) = s.parse::<IpNet>() {
        return Some(AssetAddress::Net(net.trunc()));
    }
    parse_mac(s).map(AssetAddress::Mac)
}

/// Splits one CSV line into fields (RFC 4180 quoting).
fn split_csv(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            (false, '"') if field.trim().is_empty() && !was_quoted => {
                field.clear();
                quoted = true;
                was_quoted = true;
            }
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field");
    }
    fields.push(field);
    Ok(fields)
}

impl Assets {
    /// Parses an inventory; `path` names the file in errors.
    pub fn parse(path: &str, text: &str) -> Result<Assets, AssetError> {
        let err = |line: usize, problem: String| AssetError {
            path: path.to_string(),
            line,
            problem,
        };
        let mut assets = Vec::new();
        let mut header_seen = false;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line).map_err(|p| err(line_no, p.to_string()))?;
            let fields: Vec<&str> = fields.iter().map(|f| f.trim()).collect();
            if !header_seen {
                if fields != ["address", "label", "role"] {
                    return Err(err(
                        line_no,
                        "expected the header line `address,label,role`".into(),
                    ));
                }
                header_seen = true;
                continue;
            }
            let [address, label, role] = fields.as_slice() else {
                return Err(err(
                    line_no,
                    format!("expected 3 fields, found {}", fields.len()),
                ));
            };
            let address = parse_address(address).ok_or_else(|| {
                err(
                    line_no,
                    format!("{address:?} is not an IP address, CIDR block or MAC address"),
                )
            })?;
            let role = Role::parse(role).ok_or_else(|| {
                err(
                    line_no,
                    format!(
                        "unknown role {role:?} (expected endpoint, ksc-server, \
                         distribution-point, update-mirror, resolver or proxy)"
                    ),
                )
            })?;
            assets.push(Asset {
                address,
                label: label.to_string(),
                role,
                line: line_no,
            });
        }
        if !header_seen {
            return Err(err(
                1,
                "empty inventory: expected the header line `address,label,role`".into(),
            ));
        }
        Ok(Assets {
            assets,
            internal_nets: Vec::new(),
        })
    }

    /// The same inventory with the operator's internal networks (`--internal-net`).
    pub fn with_internal_nets(mut self, nets: &[IpNet]) -> Assets {
        self.internal_nets = nets.iter().map(IpNet::trunc).collect();
        self
    }

    /// The operator's internal networks.
    pub fn internal_nets(&self) -> &[IpNet] {
        &self.internal_nets
    }

    /// Whether `ip` is internal: private or local by RFC ([`is_private_or_local`]) or inside
    /// one of the operator's internal networks.
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        is_private_or_local(ip) || self.internal_nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether the inventory names any server that manages endpoints (KSC server,
    /// distribution point, update mirror). Only then does "managed by us" mean "managed by a
    /// server in the inventory"; an inventory without any (only endpoints, say) leaves the
    /// internal-address rule in force.
    pub fn names_managers(&self) -> bool {
        self.assets.iter().any(|a| a.role.manages())
    }

    pub fn load(path: &std::path::Path) -> Result<Assets, AssetError> {
        let text = std::fs::read_to_string(path).map_err(|e| AssetError {
            path: path.display().to_string(),
            line: 0,
            problem: format!("cannot read: {}", crate::fs_error::describe(&e)),
        })?;
        Assets::parse(&path.display().to_string(), &text)
    }

    pub fn len(&self) -> usize {
        self.assets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// The asset for a host: an exact MAC first, then the most specific IP block.
    pub fn find<'a>(
        &'a self,
        ip: IpAddr,
        macs: impl IntoIterator<Item = &'a [u8; 6]> + Clone,
    ) -> Option<&'a Asset> {
        let by_mac = self.assets.iter().find(|a| match a.address {
            AssetAddress::Mac(m) => macs.clone().into_iter().any(|h| *h == m),
            AssetAddress::Net(_) => false,
        });
        by_mac.or_else(|| {
            self.assets
                .iter()
                .filter(|a| matches!(a.address, AssetAddress::Net(n) if n.contains(&ip)))
                .max_by_key(|a| match a.address {
                    AssetAddress::Net(n) => n.prefix_len(),
                    AssetAddress::Mac(_) => 0,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_cidr_mac_and_quoted_labels() {
        let text = "address,label,role\n10.0.0.5,ksc01,ksc-server\n10.1.0.0/16,\"office, floor 2\",endpoint\n\
                    # comment\n\n02:00:00:aa:bb:cc,mirror,update-mirror\n10.1.2.3,dns1,resolver\n";
        let a = Assets::parse("inv.csv", text).unwrap();
        assert_eq!(a.len(), 4);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(a.find(ip("10.0.0.5"), []).unwrap().role, Role::KscServer);
        assert_eq!(a.find(ip("10.1.9.9"), []).unwrap().label, "office, floor 2");
        // Most specific block wins.
        assert_eq!(a.find(ip("10.1.2.3"), []).unwrap().role, Role::Resolver);
        let mac = [2, 0, 0, 0xaa, 0xbb, 0xcc];
        assert_eq!(
            a.find(ip("192.0.2.1"), [&mac]).unwrap().role,
            Role::UpdateMirror
        );
        assert!(a.find(ip("192.0.2.1"), []).is_none());
    }

    #[test]
    fn distribution_points_proxies_and_internal_networks() {
        let text = "address,label,role\n10.70.0.12,dp,distribution-point\n10.70.0.40,proxy,proxy\n";
        let a = Assets::parse("inv.csv", text).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            a.find(ip("10.70.0.12"), []).unwrap().role,
            Role::DistributionPoint
        );
        assert_eq!(a.find(ip("10.70.0.40"), []).unwrap().role, Role::Proxy);
        assert!(a.names_managers());
        let only_endpoints =
            Assets::parse("i", "address,label,role\n10.0.0.0/8,lan,endpoint\n").unwrap();
        assert!(!only_endpoints.names_managers());
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "127.0.0.1",
            "fd00::1",
            "fe80::1",
            "::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(a.is_internal(ip(private)), "{private}");
        }
        for public in [
            "198.51.100.10",
            "77.74.176.10",
            "8.8.8.8",
            "2a03:2480:68::1",
            "100.64.0.1",
        ] {
            assert!(!a.is_internal(ip(public)), "{public}");
        }
        let a = a.with_internal_nets(&["198.51.100.0/24".parse().unwrap()]);
        assert!(a.is_internal(ip("198.51.100.10")));
        assert!(!a.is_internal(ip("198.51.101.10")));
    }

    #[test]
    fn reports_bad_lines_with_their_number() {
        let e = Assets::parse(
            "inv.csv",
            "address,label,role\n10.0.0.1,a,endpoint\n10.0.0.300,b,endpoint\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "inv.csv:3: \"10.0.0.300\" is not an IP address, CIDR block or MAC address"
        );
        let e = Assets::parse("inv.csv", "address,label,role\n10.0.0.1,a,server\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "inv.csv:2: unknown role \"server\" (expected endpoint, ksc-server, distribution-point, \
             update-mirror, resolver or proxy)"
        );
        let e = Assets::parse("inv.csv", "address,label,role\n10.0.0.1,a\n").unwrap_err();
        assert_eq!(e.to_string(), "inv.csv:2: expected 3 fields, found 2");
        let e = Assets::parse("inv.csv", "ip,name\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "inv.csv:1: expected the header line `address,label,role`"
        );
        let e =
            Assets::parse("inv.csv", "address,label,role\n10.0.0.1,\"a,endpoint\n").unwrap_err();
        assert_eq!(e.to_string(), "inv.csv:2: unterminated quoted field");
    }
}
