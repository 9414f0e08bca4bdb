//! Verdicts on the staged enterprise capture (`pcaps/staged-enterprise.pcap`, see
//! `pcaps/README.md`): the exact verdict, certainty, product and manager of every host, with and
//! without the operator's inventory (`pcaps/staged-enterprise-inventory.csv`), and what must
//! never be reported (scanned, broadcast, multicast and dead addresses, internet servers).

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{pcaps_dir, replay_events, replay_report};

const CAPTURE: &str = "staged-enterprise.pcap";
const INVENTORY: &str = "pcaps/staged-enterprise-inventory.csv";

/// (verdict, certainty, product, managed_by) of one host.
type Decision = (String, String, String, String);

/// Every reported host. Reviewed row by row against the capture's table in `pcaps/README.md`
/// (the host's software and what it did), in host order. `managed_by` lists addresses, or
/// `cloud-console:NAME`. Rows marked *inventory* differ with the inventory.
///
/// - .10 ksc: completed sessions from agents (13000, 14000) and consoles (13291, 13299),
///   notices from three agents: ksc-server.
/// - .11 mirror: served KLZF on a signature path (`/bases/av/…`) with an IP-literal Host:
///   update-mirror.
/// - .12 dp: accepts .23's 13000 session and is itself an agent of .10; multicasts on 15001:
///   distribution-point, shown with its own manager .10.
/// - .15 rogue KSC: accepts .27's session: ksc-server (not inventoried, still what it is).
/// - .20, .24: console sessions (13299, 13291) only: ksc-console.
/// - .21 agent1: 13000 session with .10, wake-up from .10, notice to .10; s03.upd and
///   ksn-file-geo by name: three families, antivirus by KSC management, managed by .10.
/// - .22 agent2: 14000 session, wake-up and notice; KLZF and the update index from the mirror
///   .11: managed by .10 and .11, confirmed (management + update).
/// - .23 agent3: 13000 session with the DP .12 and a notice to .10; its 15000 broadcasts mark
///   nobody: one family (management) with a session: likely; managed by .12 and .10.
/// - .25: session with the external KSC 198.51.100.10 and s05.upd: externally managed,
///   confirmed.
/// - .26: the Cloud Console on 23101 (SNI eu1.ksc.kaspersky.com) and dc1.ksn: externally
///   managed by the Cloud Console, confirmed.
/// - .27: session with the rogue KSC .15 only: likely; managed by us without an inventory
///   (an internal KSC), *inventory*: externally managed (.15 is not listed).
/// - .31 person: portal, Cloud Console web UI on 443 and an installer download: website-only.
/// - .32 mail server: TXT `_spf…` (not a host name, matches nothing) and MX kaspersky.com:
///   website-only (a mail check).
/// - .33: s09.upd by lookup and SNI: one high family of shared infrastructure: likely,
///   kaspersky.
/// - .36: s09.upd by its own lookup (answered from the resolver's cache) and a TLS connection
///   without SNI to the address it was given: likely (its lookup is direct evidence; the
///   correlation adds no family).
/// - .41, .43: CONNECT through the proxy and the tunnelled ClientHello: likely, kaspersky.
/// - .42: absolute-form GET of a signature base from dnl-03 through the proxy, KLZF relayed:
///   an update file from a Kaspersky name: confirmed, antivirus (signature path).
/// - .44: activation, updates, KSN by SNI: three families: confirmed, kaspersky.
/// - .45: the portal (not install evidence) and the Password Manager's push name (medium):
///   possible, kaspersky.
/// - .46: the web-protection script lookup, s07.upd, KLZF from dnl-05: confirmed, antivirus.
/// - .47: dnl-01 index, ksn-crypto-file-geo and kav8.zonealarm.com (Check Point): update and
///   KSN families: confirmed; the OEM name and the antivirus-or-OEM names alone: oem.
/// - .49: KLZF on a signature path by IP literal from 77.74.176.10 (Kaspersky's space):
///   confirmed, antivirus.
/// - .50: s10.upd straight to 8.8.8.8: likely, kaspersky.
/// - .53 resolver: forwards clients' lookups: resolver.
/// - .61: TLS without a name to 77.74.176.10: address only: possible, kaspersky.
fn expected(with_inventory: bool) -> BTreeMap<String, Decision> {
    let rogue_agent = if with_inventory {
        (
            "externally-managed-install",
            "likely",
            "antivirus",
            "10.70.0.15",
        )
    } else {
        ("managed-install", "likely", "antivirus", "10.70.0.15")
    };
    [
        ("10.70.0.10", ("ksc-server", "", "", "")),
        ("10.70.0.11", ("update-mirror", "", "", "")),
        ("10.70.0.12", ("distribution-point", "", "", "10.70.0.10")),
        ("10.70.0.15", ("ksc-server", "", "", "")),
        ("10.70.0.20", ("ksc-console", "", "", "")),
        (
            "10.70.0.21",
            ("managed-install", "confirmed", "antivirus", "10.70.0.10"),
        ),
        (
            "10.70.0.22",
            (
                "managed-install",
                "confirmed",
                "antivirus",
                "10.70.0.10 10.70.0.11",
            ),
        ),
        (
            "10.70.0.23",
            (
                "managed-install",
                "likely",
                "antivirus",
                "10.70.0.12 10.70.0.10",
            ),
        ),
        ("10.70.0.24", ("ksc-console", "", "", "")),
        (
            "10.70.0.25",
            (
                "externally-managed-install",
                "confirmed",
                "antivirus",
                "198.51.100.10",
            ),
        ),
        (
            "10.70.0.26",
            (
                "externally-managed-install",
                "confirmed",
                "antivirus",
                "cloud-console:eu1.ksc.kaspersky.com",
            ),
        ),
        ("10.70.0.27", rogue_agent),
        ("10.70.0.31", ("website-only", "", "", "")),
        ("10.70.0.32", ("website-only", "", "", "")),
        (
            "10.70.0.33",
            ("unmanaged-install", "likely", "kaspersky", ""),
        ),
        (
            "10.70.0.36",
            ("unmanaged-install", "likely", "kaspersky", ""),
        ),
        ("10.70.0.40", ("proxy", "", "", "")),
        (
            "10.70.0.41",
            ("unmanaged-install", "likely", "kaspersky", ""),
        ),
        (
            "10.70.0.42",
            ("unmanaged-install", "confirmed", "antivirus", ""),
        ),
        (
            "10.70.0.43",
            ("unmanaged-install", "likely", "kaspersky", ""),
        ),
        (
            "10.70.0.44",
            ("unmanaged-install", "confirmed", "kaspersky", ""),
        ),
        (
            "10.70.0.45",
            ("unmanaged-install", "possible", "kaspersky", ""),
        ),
        (
            "10.70.0.46",
            ("unmanaged-install", "confirmed", "antivirus", ""),
        ),
        ("10.70.0.47", ("unmanaged-install", "confirmed", "oem", "")),
        (
            "10.70.0.49",
            ("unmanaged-install", "confirmed", "antivirus", ""),
        ),
        (
            "10.70.0.50",
            ("unmanaged-install", "likely", "kaspersky", ""),
        ),
        ("10.70.0.53", ("resolver", "", "", "")),
        (
            "10.70.0.61",
            ("unmanaged-install", "possible", "kaspersky", ""),
        ),
    ]
    .into_iter()
    .map(|(ip, (v, c, p, m))| {
        (
            ip.to_string(),
            (v.to_string(), c.to_string(), p.to_string(), m.to_string()),
        )
    })
    .collect()
}

fn hosts(report: &Value) -> BTreeMap<String, Value> {
    report["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no hosts"))
        .iter()
        .map(|h| (h["ip"].as_str().unwrap_or_default().to_string(), h.clone()))
        .collect()
}

fn decisions(report: &Value) -> BTreeMap<String, Decision> {
    hosts(report)
        .into_iter()
        .map(|(ip, h)| {
            let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            let managed_by: Vec<String> = h["managed_by"]
                .as_array()
                .into_iter()
                .flatten()
                .map(
                    |m| match (m["cloud_console"].as_str(), m["address"].as_str()) {
                        (Some(name), _) => format!("cloud-console:{name}"),
                        (None, Some(a)) => a.to_string(),
                        (None, None) => "?".to_string(),
                    },
                )
                .collect();
            (
                ip,
                (
                    text("verdict"),
                    text("certainty"),
                    text("product"),
                    managed_by.join(" "),
                ),
            )
        })
        .collect()
}

fn report(with_inventory: bool, workers: &str) -> Value {
    let mut args = vec!["--workers", workers];
    if with_inventory {
        args.extend(["--inventory", INVENTORY]);
    }
    replay_report(&pcaps_dir().join(CAPTURE), &args)
}

/// Compares host by host, so a failure names the host.
fn assert_decisions(got: &BTreeMap<String, Decision>, want: &BTreeMap<String, Decision>) {
    for (ip, w) in want {
        assert_eq!(got.get(ip), Some(w), "host {ip}");
    }
    let extra: Vec<&String> = got.keys().filter(|ip| !want.contains_key(*ip)).collect();
    assert!(
        extra.is_empty(),
        "hosts that must not be reported: {extra:?}"
    );
}

#[test]
fn every_host_without_the_inventory() {
    let report = report(false, "1");
    assert_decisions(&decisions(&report), &expected(false));
}

#[test]
fn every_host_with_the_inventory() {
    let report = report(true, "1");
    assert_decisions(&decisions(&report), &expected(true));
    let hosts = hosts(&report);
    for (ip, role) in [
        ("10.70.0.10", "ksc-server"),
        ("10.70.0.11", "update-mirror"),
        ("10.70.0.12", "distribution-point"),
        ("10.70.0.40", "proxy"),
        ("10.70.0.53", "resolver"),
        ("10.70.0.21", "endpoint"),
    ] {
        assert_eq!(hosts[ip]["asset"]["role"], role, "{ip}");
    }
}

#[test]
fn the_same_verdicts_with_several_workers() {
    for workers in ["2", "3"] {
        assert_decisions(&decisions(&report(true, workers)), &expected(true));
    }
}

#[test]
fn groups_scanned_and_internet_addresses_are_never_hosts() {
    let report = report(false, "1");
    let hosts = hosts(&report);
    for never in [
        // Broadcasts and the DP's multicast group.
        "10.70.0.255",
        "255.255.255.255",
        "239.255.13.1",
        // The scanner, the router that answered its probes, and dead addresses.
        "10.70.0.30",
        "10.70.0.1",
        "10.70.0.5",
        "10.70.0.6",
        "203.0.113.99",
        // Chrome with GREASE ECH on a shared CDN, a refused SYN, a DIFF decoy, the web server
        // Kaspersky's link checker fetched from.
        "10.70.0.34",
        "10.70.0.35",
        "10.70.0.48",
        "10.70.0.60",
        // Internet servers: the external KSC is only someone's manager; Kaspersky's own
        // addresses; the shared CDN; the public resolver.
        "198.51.100.10",
        "77.74.176.10",
        "77.74.177.5",
        "203.0.113.50",
        "8.8.8.8",
    ] {
        assert!(!hosts.contains_key(never), "{never} is reported");
    }
    assert!(
        report["counters"]["group_addresses_ignored"]
            .as_u64()
            .is_some_and(|n| n >= 2),
        "{}",
        report["counters"]
    );
}

#[test]
fn each_host_says_why_and_carries_what_its_verdict_rests_on() {
    let report = report(true, "1");
    let hosts = hosts(&report);
    for (ip, h) in &hosts {
        let reason = h["reason"].as_str().unwrap_or_default();
        assert!(
            reason.ends_with('.') && reason.len() > 30,
            "{ip}: {reason:?}"
        );
        for e in h["evidence"].as_array().into_iter().flatten() {
            for key in [
                "kind",
                "source",
                "family",
                "product",
                "confidence",
                "install",
                "direct",
                "count",
                "first",
                "last",
            ] {
                assert!(!e[key].is_null(), "{ip}: evidence without {key}: {e}");
            }
        }
        for f in h["learned"].as_array().into_iter().flatten() {
            assert!(f["fact"].is_string() && f["text"].is_string(), "{ip}: {f}");
        }
    }
    let reason = |ip: &str| hosts[ip]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason("10.70.0.21").starts_with("Kaspersky antivirus, confirmed: managed by us"));
    assert!(reason("10.70.0.25").contains("198.51.100.10 (outside our networks)"));
    assert!(reason("10.70.0.26").contains("Cloud Console (eu1.ksc.kaspersky.com)"));
    assert!(reason("10.70.0.27").contains("10.70.0.15, which is not in the inventory"));
    assert!(
        reason("10.70.0.32").contains("MX records"),
        "{}",
        reason("10.70.0.32")
    );
    assert!(reason("10.70.0.31").starts_with("Only visited Kaspersky websites"));
    assert!(reason("10.70.0.40").starts_with("Forward proxy"));
    assert!(reason("10.70.0.61").contains("Kaspersky's address space"));
    // The proxy's upstream legs are listed on the proxy, the clients keep their own.
    let sources = |ip: &str| -> Vec<String> {
        hosts[ip]["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{} {}",
                    e["source"].as_str().unwrap_or(""),
                    e["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    assert!(sources("10.70.0.40").contains(&"tls-sni s12.upd.kaspersky.com".to_string()));
    assert!(sources("10.70.0.41").contains(&"http-connect s12.upd.kaspersky.com".to_string()));
    assert!(
        sources("10.70.0.42").contains(&"http-absolute-uri dnl-03.geo.kaspersky.com".to_string())
    );
    // hostD's connection without a name is tied to its own answer.
    let corr: Vec<&Value> = hosts["10.70.0.36"]["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["source"] == "dns-correlated-connection")
        .collect();
    assert_eq!(corr.len(), 1);
    assert_eq!(corr[0]["peer"], "203.0.113.50");
    assert_eq!(corr[0]["name"], "s09.upd.kaspersky.com");
    assert_eq!(corr[0]["direct"], false);
}

#[test]
fn an_internal_network_of_ours_makes_its_ksc_ours() {
    let report = replay_report(
        &pcaps_dir().join(CAPTURE),
        &["--workers", "1", "--internal-net", "198.51.100.0/24"],
    );
    let d = decisions(&report);
    assert_eq!(
        d.get("10.70.0.25"),
        Some(&(
            "managed-install".to_string(),
            "confirmed".to_string(),
            "antivirus".to_string(),
            "198.51.100.10".to_string()
        ))
    );
    assert_eq!(
        d.get("198.51.100.10").map(|v| v.0.as_str()),
        Some("ksc-server")
    );
    // A bad block is one line and exit 2 (a usage error), before anything is read.
    let out = common::ksensor()
        .current_dir(common::repo_root())
        .args([
            "replay",
            "--internal-net",
            "10.0.0.0/33",
            "pcaps/staged-enterprise.pcap",
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a CIDR block"));
}

/// The literal Hosts of the capture (10.70.0.11 twice, 10.70.0.60 twice, 77.74.176.10 once)
/// are reported as literals and judged only by Kaspersky's address space: only .49's request
/// to 77.74.176.10 is in it, and it is reported without `--all-names`; the others only with it.
/// .49's verdict rests on that address (a KLZF on a signature path from Kaspersky's space),
/// never on a name rule.
#[test]
fn literal_hosts_are_judged_by_the_address_space() {
    let capture = pcaps_dir().join(CAPTURE);
    let literals = |args: &[&str]| -> Vec<(String, String, bool)> {
        replay_events(&capture, args)
            .into_iter()
            .filter(|e| e["literal"] == true)
            .map(|e| {
                assert!(e.get("rule").is_none(), "a literal matched a rule: {e}");
                (
                    e["client"]["ip"].as_str().unwrap_or_default().to_string(),
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e["kaspersky_space"].as_bool().expect("kaspersky_space"),
                )
            })
            .collect()
    };
    let t = |c: &str, n: &str, k: bool| (c.to_string(), n.to_string(), k);
    assert_eq!(literals(&[]), vec![t("10.70.0.49", "77.74.176.10", true)]);
    assert_eq!(
        literals(&["--all-names"]),
        vec![
            t("10.70.0.22", "10.70.0.11", false),
            t("10.70.0.22", "10.70.0.11", false),
            t("10.70.0.48", "10.70.0.60", false),
            t("10.70.0.49", "77.74.176.10", true),
            // Inbound from Kaspersky's space: the address named is ours, not Kaspersky's.
            t("77.74.177.5", "10.70.0.60", false),
        ]
    );
    let hosts = hosts(&report(false, "1"));
    let sources: Vec<(&str, &str)> = hosts["10.70.0.49"]["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["source"].as_str().unwrap_or_default(),
                e["origin"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        sources
            .iter()
            .all(|(_, origin)| *origin != "kaspersky-name"),
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|(_, origin)| *origin == "kaspersky-address"),
        "{sources:?}"
    );
    // The literal conversation itself: weak address-space evidence, as a nameless one.
    assert!(sources.contains(&("kaspersky-address", "")), "{sources:?}");
    assert!(!hosts.contains_key("77.74.177.5"));
}
