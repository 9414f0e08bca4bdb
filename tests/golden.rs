//! Golden tests over the real captures in `pcaps/`.
//!
//! Two independent checks per capture:
//! 1. Oracle: the names ksensor extracts (`--all-names`) are compared with what tshark, an
//!    independent dissector, extracted from the same capture (`pcaps/expected/*.tshark.txt`, see
//!    `pcaps/README.md`): TLS, QUIC and HTTP names as multisets (each ClientHello, each request),
//!    DNS names as sets (tshark lists every record owner, ksensor questions and CNAME targets).
//! 2. Golden: the exact events (detections only) and JSON report are compared with the files in
//!    `tests/golden/`, which were checked by hand against the oracle when blessed. Set
//!    `KSENSOR_BLESS=1` to rewrite them after an intended change, and review the diff.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{ksensor, pcaps_dir, replay_events, replay_report};

/// Multiset of `(kind, name)`.
type Names = BTreeMap<(String, String), usize>;

/// A name as both sides can compare it: the bytes it stands for, read as UTF-8 (invalid bytes
/// become U+FFFD, as tshark prints them), lower case, without a trailing dot, an HTTP `:port`
/// or IPv6 brackets. tshark writes a control byte as `\ooo` (octal); ksensor writes a byte
/// outside printable ASCII as `\DDD` (decimal, RFC 1035 §5.1) and a dot inside a label as
/// `\.` (`pcaps/README.md`, oracle notes).
fn normalise(kind: &str, name: &str, from_tshark: bool) -> String {
    let raw = if from_tshark {
        unescape(name.trim(), 8)
    } else {
        unescape(name.trim(), 10)
    };
    let text = String::from_utf8_lossy(&raw).to_lowercase();
    let text = text.trim_end_matches('.').to_string();
    // `http.host` keeps a `:port`; literals keep brackets.
    let unbracket = |t: &str| -> Option<String> {
        let inner = t.strip_prefix('[')?;
        let (addr, rest) = inner.split_once(']')?;
        (rest.is_empty() || (kind == "http" && rest.starts_with(':'))).then(|| addr.to_string())
    };
    if let Some(addr) = unbracket(&text) {
        return addr;
    }
    match text.rsplit_once(':') {
        Some((host, port))
            if kind == "http"
                && port.chars().all(|c| c.is_ascii_digit())
                && !host.contains(':') =>
        {
            host.to_string()
        }
        _ => text,
    }
}

/// The bytes of `name`, whose escapes are a backslash and three digits in `radix` (8 for
/// tshark, 10 for ksensor) or a backslash and any other character (that character).
fn unescape(name: &str, radix: u32) -> Vec<u8> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() {
            let digits = bytes
                .get(i + 1..i + 4)
                .and_then(|d| std::str::from_utf8(d).ok());
            if let Some(v) = digits
                .filter(|d| d.chars().all(|c| c.is_digit(radix)))
                .and_then(|d| u32::from_str_radix(d, radix).ok())
                .filter(|v| *v < 256)
            {
                out.push(v as u8);
                i += 4;
                continue;
            }
            out.push(bytes[i + 1]);
            i += 2;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

fn tshark_names(capture: &str) -> Names {
    let path = common::repo_root()
        .join(pcaps_dir())
        .join("expected")
        .join(format!("{capture}.tshark.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut names = Names::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, name) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad oracle line {line:?}"));
        *names
            .entry((kind.to_string(), normalise(kind, name, true)))
            .or_default() += 1;
    }
    names
}

fn ksensor_names(capture: &str) -> Names {
    let events = replay_events(
        &pcaps_dir().join(capture),
        &["--all-names", "--workers", "1"],
    );
    let mut names = Names::new();
    for e in &events {
        let kind = e["kind"].as_str().unwrap_or_default().to_string();
        if let Some(name) = e["name"].as_str() {
            let name = normalise(&kind, name, false);
            *names.entry((kind, name)).or_default() += 1;
        }
    }
    names
}

fn of_kind(names: &Names, kind: &str) -> Names {
    names
        .iter()
        .filter(|((k, _), _)| k == kind)
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn set(names: &Names) -> BTreeSet<String> {
    names.keys().map(|(_, n)| n.clone()).collect()
}

/// Names ksensor finds that tshark does not, listed in `pcaps/expected/<capture>.ahead.txt`
/// (`kind name` lines; `#` starts a comment saying why tshark misses them). Missing file: none.
fn ahead_names(capture: &str) -> Names {
    let path = common::repo_root()
        .join(pcaps_dir())
        .join("expected")
        .join(format!("{capture}.ahead.txt"));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Names::new();
    };
    let mut names = Names::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (kind, name) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?} in {}", path.display()));
        *names
            .entry((kind.to_string(), normalise(kind, name.trim(), false)))
            .or_default() += 1;
    }
    names
}

fn check_against_oracle(capture: &str) {
    let theirs = tshark_names(capture);
    let ahead = ahead_names(capture);
    let ours = ksensor_names(capture);
    for kind in ["tls", "quic", "http"] {
        let mut want = of_kind(&theirs, kind);
        for (k, n) in of_kind(&ahead, kind) {
            *want.entry(k).or_default() += n;
        }
        assert_eq!(
            of_kind(&ours, kind),
            want,
            "{capture}: {kind} names differ from tshark's (and the listed ones it misses)"
        );
    }
    let (our_dns, their_dns) = (set(&of_kind(&ours, "dns")), set(&of_kind(&theirs, "dns")));
    let ahead_dns = set(&of_kind(&ahead, "dns"));
    // Every name ksensor reports, tshark saw, or is listed as one tshark misses; every name
    // tshark saw as a question or record owner, ksensor reports, except authority-section zone
    // names (a parent of a reported name).
    for name in &our_dns {
        assert!(
            their_dns.contains(name) || ahead_dns.contains(name),
            "{capture}: ksensor reports DNS name {name:?} that tshark does not"
        );
    }
    for name in &ahead_dns {
        assert!(
            our_dns.contains(name) && !their_dns.contains(name),
            "{capture}: {name:?} is listed as a DNS name only ksensor finds"
        );
    }
    for name in &their_dns {
        let parent_zone = our_dns.iter().any(|n| n.ends_with(&format!(".{name}")));
        assert!(
            our_dns.contains(name) || parent_zone,
            "{capture}: ksensor misses DNS name {name:?}"
        );
    }
}

fn check_golden(capture: &str) {
    let path = pcaps_dir().join(capture);
    let events = replay_events(&path, &["--workers", "1"]);
    let mut events_text = String::new();
    for e in &events {
        events_text.push_str(&serde_json::to_string(e).unwrap_or_default());
        events_text.push('\n');
    }
    let report = replay_report(&path, &["--workers", "1"]);
    let report_text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let ev_path = golden.join(format!("{capture}.events.jsonl"));
    let rep_path = golden.join(format!("{capture}.report.json"));
    if std::env::var_os("KSENSOR_BLESS").is_some() {
        std::fs::create_dir_all(&golden).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&ev_path, &events_text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&rep_path, &report_text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let want_events =
        std::fs::read_to_string(&ev_path).unwrap_or_else(|e| panic!("{}: {e}", ev_path.display()));
    assert_eq!(
        events_text,
        want_events,
        "{capture}: events differ from {}",
        ev_path.display()
    );
    let want_report = std::fs::read_to_string(&rep_path)
        .unwrap_or_else(|e| panic!("{}: {e}", rep_path.display()));
    assert_eq!(
        report_text,
        want_report,
        "{capture}: report differs from {}",
        rep_path.display()
    );
}

macro_rules! golden {
    ($($test:ident => $file:literal),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_against_oracle($file);
                check_golden($file);
            }
        )+
    };
}

golden! {
    dns_udp => "dns-udp.pcap",
    dns_tcp => "dns-tcp.pcap",
    dns_frag => "dns-frag.pcap",
    dns_frag6 => "dns-frag6.pcap",
    tls_sni => "tls-sni.pcap",
    staged_network => "staged-network.pcap",
    tls_sni_pcapng => "tls-sni.pcapng",
    tls_sni_nsec => "tls-sni-nsec.pcap",
    tls_sni_be => "tls-sni-be.pcap",
    tls_sni_nsec_be => "tls-sni-nsec-be.pcap",
    tls_sni_sll => "tls-sni-sll.pcap",
    tls_sni_sll2 => "tls-sni-sll2.pcap",
    tls_sni_rawip => "tls-sni-rawip.pcap",
    mixed_linktypes => "mixed-linktypes.pcapng",
    http_host => "http-host.pcap",
    http_host_sll => "http-host-sll.pcap",
    http_split => "http-split.pcap",
    http_body => "http-body.pcap",
    http_body_reordered => "http-body-reordered.pcap",
    chromium_pq => "chromium-pq.pcap",
    tls_reordered => "tls-reordered.pcap",
    tls_dup => "tls-dup.pcap",
    tls_overlap => "tls-overlap.pcap",
    quic_chromium => "quic-chromium.pcap",
    quic_aioquic => "quic-aioquic.pcap",
    tunnel_vxlan => "tunnel-vxlan.pcap",
    tunnel_inner => "tunnel-inner.pcap",
    tunnel_gre => "tunnel-gre.pcap",
    tunnel_gretap => "tunnel-gretap.pcap",
    tunnel_erspan => "tunnel-erspan.pcap",
    tunnel_geneve => "tunnel-geneve.pcap",
    tunnel_gtpu => "tunnel-gtpu.pcap",
    tunnel_ipip => "tunnel-ipip.pcap",
    tunnel_sit => "tunnel-sit.pcap",
    tunnel_ip6ip6 => "tunnel-ip6ip6.pcap",
    tunnel_teredo => "tunnel-teredo.pcap",
    tunnel_mpls => "tunnel-mpls.pcap",
    tunnel_pppoe => "tunnel-pppoe.pcap",
    vlan_8021q => "vlan-8021q.pcap",
    vlan_qinq => "vlan-qinq.pcap",
    // Names ksensor once missed: TLS anywhere, literals, odd and cut DNS, QUIC variants,
    // link types, TCP edge cases (pcaps/README.md, "Live captures of unusual cases").
    tls_starttls => "tls-starttls.pcap",
    tls_ports => "tls-ports.pcap",
    tls_prefix => "tls-prefix.pcap",
    literal_names => "literal-names.pcap",
    dns_odd => "dns-odd.pcap",
    dns_opcodes => "dns-opcodes.pcap",
    dns_cut => "dns-cut.pcap",
    dns_snaplen => "dns-snaplen.pcap",
    dns_cut_tcp => "dns-cut-tcp.pcap",
    quic_variants => "quic-variants.pcap",
    quic_dcid => "quic-dcid.pcap",
    gquic => "gquic.pcap",
    tcp_fastopen => "tcp-fastopen.pcap",
    tcp_midstream => "tcp-midstream.pcap",
    tcp_simopen => "tcp-simopen.pcap",
    link_chdlc => "link-chdlc.pcap",
    link_ppp => "link-ppp.pcap",
    link_ppp_hdlc => "link-ppp-hdlc.pcap",
    link_80211 => "link-80211.pcap",
    link_radiotap => "link-radiotap.pcap",
    link_capwap => "link-capwap.pcap",
    link_misc => "link-misc.pcapng",
    link_unknown => "link-unknown.pcap",
    // Its HTTP requests whose Host is an IP literal (10.70.0.11, 10.70.0.60, 77.74.176.10)
    // are compared like any name: ksensor reports literals as names with `--all-names`.
    staged_enterprise => "staged-enterprise.pcap",
}

#[test]
fn every_capture_has_a_golden_test() {
    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden.rs"))
            .unwrap_or_default();
    for entry in std::fs::read_dir(common::repo_root().join(pcaps_dir()))
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.ends_with(".pcap") || name.ends_with(".pcapng") {
            assert!(
                source.contains(&format!("\"{name}\"")),
                "pcaps/{name} has no golden test"
            );
        }
    }
    let _ = ksensor();
}
