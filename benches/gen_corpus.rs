//! Deterministic synthetic corpus for the end-to-end benchmarks (`benches/compare.sh`).
//!
//! ```text
//! cargo run --release --example gen_corpus -- --profile enterprise --out bench-data [--seed N] [--scale F]
//! ```
//!
//! Contract: input is a profile name, a seed and a scale; output is `<out>/<profile>.pcap`
//! (classic pcap, microsecond timestamps, LINKTYPE_ETHERNET, valid IPv4/TCP/UDP checksums) and
//! `<out>/<profile>.truth.json`, the number of Kaspersky name occurrences ksensor should report
//! per kind (the counting rules are in `benches/README.md`). The same seed, scale and profile
//! always give byte-identical files: the PRNG is our own splitmix64, not `rand`, whose streams
//! change between versions, and nothing depends on the clock or on hash-map iteration order.
//!
//! Profiles:
//! * `enterprise`: span port of an office uplink. ~20k concurrent TCP flows from 2000 clients
//!   to 5000 servers (TLS on 443 and a few other ports, HTTP on 80) with handshakes, a
//!   ClientHello (1 in 10 with an X25519MLKEM768 key share, spanning two segments) or an HTTP
//!   request, bulk server data in full-size segments, delayed ACKs and FIN exchanges; DNS
//!   lookups before connections; undecryptable QUIC-looking UDP 443 noise; 30% of clients on
//!   802.1Q VLANs. ~1.5 GB at scale 1.
//! * `dns`: resolver-side mirror: DNS only (A, AAAA, CNAME chains, NXDOMAIN, EDNS), ~4 million
//!   packets at scale 1.
//! * `handshakes`: many short TLS connections, ~5 million packets at scale 1.
//!
//! Memory is bounded by the concurrent flows (a few KB each); packets are written through one
//! large buffer as they are made.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;

/// Size of the output buffer: large writes keep generation disk-bound, not syscall-bound.
const WRITE_BUFFER_BYTES: usize = 8 << 20;
/// Random bytes reused for payloads (encrypted records, QUIC noise, keys). Slices start at random
/// offsets, so repetition is invisible to parsers; 1 MiB costs nothing to make.
const RANDOM_POOL_BYTES: usize = 1 << 20;
/// TCP payload of a full segment: 1500 MTU - 20 IP - 20 TCP - 12 timestamp option (Linux default).
const MSS: usize = 1448;
/// Largest TLS application-data record (RFC 8446 §5.2: 2^14 plaintext + 256 expansion; we use
/// 2^14 + 17, what AES-GCM records carry).
const TLS_RECORD_PAYLOAD: usize = 16384 + 17;
/// Largest scale accepted: scale 20 of `enterprise` is 30 GB, more than any bench disk wants.
const MAX_SCALE: f64 = 20.0;
/// Upper bound of concurrently open flows in any profile; also bounds generator memory (~3 KB
/// per flow).
const MAX_CONCURRENT_FLOWS: usize = 20_000;
/// A DNS response is written at most this many packets after its query. Few queries are then in
/// flight at once, far below ksensor's 4096-slot query cache, so a response is almost never
/// mistaken for one whose query was not seen (see README, "caveats").
const DNS_RESPONSE_DELAY_MAX: u64 = 4;
/// First timestamp: 2025-03-03 09:00:00 UTC, a Monday morning.
const EPOCH_US: u64 = 1_740_992_400 * 1_000_000;

// ---------------------------------------------------------------------------------------------
// PRNG

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and its stream never changes.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0), by multiply-shift (Lemire).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64) * (1.0 / (1u64 << 53) as f64) < p
    }

    fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    /// A fresh generator for a sub-stream, so that adding draws in one place does not shift
    /// another.
    fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

// ---------------------------------------------------------------------------------------------
// Names

/// Names only the Kaspersky product contacts or that belong to Kaspersky; every one matches a
/// rule of `rules/kaspersky.toml` (all are under `kaspersky.com` or `kaspersky-labs.com`, and
/// none is an `ignore` mail relay).
const KASPERSKY_NAMES: &[&str] = &[
    "dnl-01.geo.kaspersky.com",
    "dnl-02.geo.kaspersky.com",
    "dnl-03.geo.kaspersky.com",
    "dnl-05.geo.kaspersky.com",
    "dnl-19.geo.kaspersky.com",
    "s05.upd.kaspersky.com",
    "p01.upd.kaspersky.com",
    "downloads.upd.kaspersky.com",
    "dc1.ksn.kaspersky-labs.com",
    "dc1-st.ksn.kaspersky-labs.com",
    "ksn-file-geo.kaspersky-labs.com",
    "ksn-url-geo.kaspersky-labs.com",
    "ksn-info-geo.kaspersky-labs.com",
    "ds.kaspersky.com",
    "activation-v2.kaspersky.com",
    "activation-v2.geo.kaspersky.com",
    "touch.kaspersky.com",
    "crl.kaspersky.com",
    "gc.kis.v2.scr.kaspersky-labs.com",
    "cm.k.kaspersky-labs.com",
    "downloads.kaspersky-labs.com",
    "my.kaspersky.com",
    "www.kaspersky.com",
];

/// Kaspersky names fetched over plain HTTP (update mirrors).
const KASPERSKY_HTTP_NAMES: &[&str] = &[
    "dnl-01.geo.kaspersky.com",
    "dnl-02.geo.kaspersky.com",
    "dnl-03.geo.kaspersky.com",
    "dnl-05.geo.kaspersky.com",
    "dnl-19.geo.kaspersky.com",
    "s05.upd.kaspersky.com",
    "p01.upd.kaspersky.com",
    "downloads.upd.kaspersky.com",
];

/// Names that look like Kaspersky but are not (label boundary, other registrable domain). A
/// sensor that counts any of these is wrong.
const DECOY_NAMES: &[&str] = &[
    "notkaspersky.com",
    "kaspersky.com.attacker.example",
    "xkaspersky-labs.com",
    "www.kaspersky-labs.com.evil.example.net",
    "dnl-01.geo.kaspersky.com.cdn.example.net",
    "my-kaspersky.com",
];

const ORDINARY_PREFIXES: &[&str] = &[
    "www",
    "api",
    "cdn",
    "static",
    "img",
    "login",
    "mail",
    "updates",
    "assets",
    "m",
    "app",
    "files",
    "edge",
    "auth",
    "telemetry",
    "ws",
    "video",
    "news",
    "shop",
    "docs",
];

const ORDINARY_DOMAINS: &[&str] = &[
    "example.com",
    "example.net",
    "example.org",
    "contoso.com",
    "fabrikam.com",
    "northwindtraders.com",
    "adatum.com",
    "tailspintoys.com",
    "wingtiptoys.com",
    "woodgrovebank.com",
];

/// Ordinary names whose DNS answer is a CNAME to a Kaspersky name (a local mirror alias): the
/// CNAME target is a Kaspersky occurrence, the question is not.
const ALIASES_TO_KASPERSKY: &[(&str, &str)] = &[
    ("av-updates.example.org", "dnl-03.geo.kaspersky.com"),
    ("kav-mirror.contoso.com", "s05.upd.kaspersky.com"),
];

/// Kaspersky names whose DNS answer is a CNAME to another Kaspersky name: two occurrences.
const KASPERSKY_TO_KASPERSKY: &[(&str, &str)] = &[(
    "activation-v2.kaspersky.com",
    "activation-v2.geo.kaspersky.com",
)];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NameClass {
    Kaspersky,
    Decoy,
    Ordinary,
}

/// Picks a name for a connection or a query; `kaspersky_host` clients run the product.
fn pick_name(rng: &mut Rng, kaspersky_host: bool, http: bool, out: &mut String) -> NameClass {
    out.clear();
    // Kaspersky hosts fetch updates over plain HTTP more often than they browse.
    if kaspersky_host && rng.chance(if http { 0.30 } else { 0.10 }) {
        let list = if http {
            KASPERSKY_HTTP_NAMES
        } else {
            KASPERSKY_NAMES
        };
        out.push_str(list[rng.index(list.len())]);
        return NameClass::Kaspersky;
    }
    if rng.chance(0.005) {
        out.push_str(DECOY_NAMES[rng.index(DECOY_NAMES.len())]);
        return NameClass::Decoy;
    }
    // Skewed towards the first domains, as real traffic is.
    let d = rng.index(ORDINARY_DOMAINS.len());
    let d = rng.index(d + 1);
    out.push_str(ORDINARY_PREFIXES[rng.index(ORDINARY_PREFIXES.len())]);
    out.push('.');
    out.push_str(ORDINARY_DOMAINS[d]);
    NameClass::Ordinary
}

/// The Kaspersky verdict for a name, by the same label-boundary rule as ksensor's suffix rules.
/// Used by tests and as a guard: every name the generator labels Kaspersky must pass it.
fn is_kaspersky(name: &str) -> bool {
    ["kaspersky.com", "kaspersky-labs.com"]
        .iter()
        .any(|s| name == *s || name.strip_suffix(s).is_some_and(|p| p.ends_with('.')))
}

// ---------------------------------------------------------------------------------------------
// Ground truth

#[derive(Default)]
struct Truth {
    dns: u64,
    /// DNS occurrences that are query questions (the rest are CNAME targets in responses).
    dns_queries: u64,
    tls: u64,
    http: u64,
    names: BTreeMap<String, u64>,
    hosts: BTreeSet<[u8; 4]>,
}

impl Truth {
    fn occurrence(&mut self, kind: Kind, name: &str, client: [u8; 4]) {
        debug_assert!(is_kaspersky(name), "{name}");
        match kind {
            Kind::Dns => self.dns += 1,
            Kind::Tls => self.tls += 1,
            Kind::Http => self.http += 1,
        }
        *self.names.entry(name.to_string()).or_insert(0) += 1;
        self.hosts.insert(client);
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Dns,
    Tls,
    Http,
}

// ---------------------------------------------------------------------------------------------
// Packet writing

/// Link and IP addresses of one direction of a conversation.
#[derive(Clone, Copy)]
struct Path4 {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
    src: [u8; 4],
    dst: [u8; 4],
}

impl Path4 {
    fn reverse(&self) -> Path4 {
        Path4 {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            vlan: self.vlan,
            src: self.dst,
            dst: self.src,
        }
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// Internet checksum (RFC 1071) partial sum over `data`, big-endian 16-bit words.
fn sum16(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (v >> 48) + ((v >> 32) & 0xffff) + ((v >> 16) & 0xffff) + (v & 0xffff);
    }
    let mut pairs = chunks.remainder().chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The pcap file being written, with counters.
struct PcapOut<W: Write> {
    w: W,
    frame: Vec<u8>,
    ts_us: u64,
    packets: u64,
    bytes: u64,
    ip_id: u16,
    pool: Vec<u8>,
    rng: Rng,
}

impl<W: Write> PcapOut<W> {
    fn new(mut w: W, rng: &mut Rng) -> Result<Self> {
        // Classic pcap global header (libpcap file format): magic, v2.4, zone 0, sigfigs 0,
        // snaplen 65535, LINKTYPE_ETHERNET (1). Written little-endian.
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&65535u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        w.write_all(&h)?;
        let mut prng = rng.fork();
        let mut pool = Vec::with_capacity(RANDOM_POOL_BYTES);
        while pool.len() < RANDOM_POOL_BYTES {
            pool.extend_from_slice(&prng.next_u64().to_le_bytes());
        }
        Ok(PcapOut {
            w,
            frame: Vec::with_capacity(2048),
            ts_us: EPOCH_US,
            packets: 0,
            bytes: 24,
            ip_id: 1,
            pool,
            rng: rng.fork(),
        })
    }

    /// `len` random-looking bytes from the pool.
    fn random_slice(&mut self, len: usize) -> &[u8] {
        let len = len.min(RANDOM_POOL_BYTES);
        let start = self.rng.index(RANDOM_POOL_BYTES - len + 1);
        &self.pool[start..start + len]
    }

    /// Starts a frame: Ethernet (+802.1Q), IPv4 header with lengths and checksum left zero.
    /// Returns the offset of the IP header.
    fn begin(&mut self, p: &Path4, proto: u8) -> usize {
        let f = &mut self.frame;
        f.clear();
        f.extend_from_slice(&p.dst_mac);
        f.extend_from_slice(&p.src_mac);
        if let Some(vid) = p.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let ip = f.len();
        self.ip_id = self.ip_id.wrapping_add(1);
        // RFC 791 §3.1: version 4, IHL 5, DSCP 0, total length (later), id, DF, TTL, proto.
        f.extend_from_slice(&[0x45, 0x00, 0, 0]);
        f.extend_from_slice(&self.ip_id.to_be_bytes());
        f.extend_from_slice(&[0x40, 0x00, 64, proto, 0, 0]);
        f.extend_from_slice(&p.src);
        f.extend_from_slice(&p.dst);
        ip
    }

    /// Fills IP and transport lengths and checksums, writes the record, advances the clock.
    fn finish(&mut self, ip: usize, proto: u8, gap_us: u64) -> Result<()> {
        let f = &mut self.frame;
        let total = f.len() - ip;
        let l4 = ip + 20;
        let l4_len = total - 20;
        f[ip + 2..ip + 4].copy_from_slice(&(total as u16).to_be_bytes());
        let csum = fold(sum16(&f[ip..ip + 20], 0));
        f[ip + 10..ip + 12].copy_from_slice(&csum.to_be_bytes());
        if proto == 17 {
            f[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        }
        // RFC 793 §3.1 / RFC 768: pseudo-header of addresses, protocol and length.
        let mut acc = sum16(&f[ip + 12..ip + 20], 0);
        acc += u64::from(proto) + l4_len as u64;
        let mut csum = fold(sum16(&f[l4..], acc));
        let at = if proto == 6 { l4 + 16 } else { l4 + 6 };
        if proto == 17 && csum == 0 {
            csum = 0xffff;
        }
        f[at..at + 2].copy_from_slice(&csum.to_be_bytes());

        let len = f.len() as u32;
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&len.to_le_bytes());
        rec[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&rec)?;
        self.w.write_all(f)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(len);
        self.ts_us += 1 + self.rng.below(2 * gap_us.max(1));
        Ok(())
    }

    /// One TCP segment; `payload` appends the segment's data to the frame.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        p: &Path4,
        ports: (u16, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        opts: &[u8],
        gap_us: u64,
        payload: impl FnOnce(&mut Self),
    ) -> Result<()> {
        let ip = self.begin(p, 6);
        let f = &mut self.frame;
        f.extend_from_slice(&ports.0.to_be_bytes());
        f.extend_from_slice(&ports.1.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&ack.to_be_bytes());
        // RFC 9293 §3.1: data offset in 32-bit words; window 502 (scaled by 2^7 after SYN).
        let doff = ((20 + opts.len()) / 4) as u8;
        f.extend_from_slice(&[doff << 4, flags]);
        let win: u16 = if flags & TCP_SYN != 0 { 64240 } else { 502 };
        f.extend_from_slice(&win.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(opts);
        payload(self);
        self.finish(ip, 6, gap_us)
    }

    /// One UDP datagram; `payload` appends its data.
    fn udp(
        &mut self,
        p: &Path4,
        ports: (u16, u16),
        gap_us: u64,
        payload: impl FnOnce(&mut Self),
    ) -> Result<()> {
        let ip = self.begin(p, 17);
        let f = &mut self.frame;
        f.extend_from_slice(&ports.0.to_be_bytes());
        f.extend_from_slice(&ports.1.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 0]);
        payload(self);
        self.finish(ip, 17, gap_us)
    }
}

/// TCP options of a SYN / SYN-ACK (RFC 9293 MSS, RFC 2018 SACK-permitted, RFC 7323 timestamps
/// and window scale 7), 20 bytes.
fn syn_options(tsval: u32, tsecr: u32) -> [u8; 20] {
    let mut o = [0u8; 20];
    o[..6].copy_from_slice(&[2, 4, 0x05, 0xb4, 4, 2]);
    o[6] = 8;
    o[7] = 10;
    o[8..12].copy_from_slice(&tsval.to_be_bytes());
    o[12..16].copy_from_slice(&tsecr.to_be_bytes());
    o[16..20].copy_from_slice(&[1, 3, 3, 7]);
    o
}

/// NOP, NOP, timestamps (RFC 7323 §3): what every later segment carries, 12 bytes.
fn ts_options(tsval: u32, tsecr: u32) -> [u8; 12] {
    let mut o = [0u8; 12];
    o[..4].copy_from_slice(&[1, 1, 8, 10]);
    o[4..8].copy_from_slice(&tsval.to_be_bytes());
    o[8..12].copy_from_slice(&tsecr.to_be_bytes());
    o
}

// ---------------------------------------------------------------------------------------------
// Application payloads

fn push_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u16).to_be_bytes());
}

fn push_u24(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
}

/// A GREASE value (RFC 8701 §2): 0x?a?a.
fn grease(rng: &mut Rng) -> u16 {
    let n = rng.below(16) as u16;
    (n << 12) | 0x0a00 | (n << 4) | 0x0a
}

/// A TLS 1.3 ClientHello record shaped like a current browser's (RFC 8446 §4.1.2): GREASE,
/// 16 cipher suites, SNI, supported_groups, key_share, ALPN, supported_versions... With `pq`
/// the key share carries an X25519MLKEM768 share (1216 bytes), so the record is ~1.8 KB and
/// spans two TCP segments; otherwise it is padded to 512 bytes (RFC 7685).
fn client_hello(rng: &mut Rng, pool: &[u8], name: &str, pq: bool, out: &mut Vec<u8>) {
    let rand_bytes = |rng: &mut Rng, n: usize| -> &[u8] {
        let start = rng.index(pool.len() - n);
        &pool[start..start + n]
    };
    let mut ext: Vec<u8> = Vec::with_capacity(2048);
    let g1 = grease(rng);
    ext.extend_from_slice(&g1.to_be_bytes());
    ext.extend_from_slice(&[0, 0]);
    // server_name (RFC 6066 §3).
    ext.extend_from_slice(&[0x00, 0x00]);
    push_u16(&mut ext, name.len() + 5);
    push_u16(&mut ext, name.len() + 3);
    ext.push(0);
    push_u16(&mut ext, name.len());
    ext.extend_from_slice(name.as_bytes());
    // extended_master_secret, renegotiation_info, session_ticket, SCT: empty-ish.
    ext.extend_from_slice(&[0x00, 0x17, 0, 0, 0xff, 0x01, 0, 1, 0, 0x00, 0x23, 0, 0]);
    // supported_groups (RFC 8446 §4.2.7).
    let gg = grease(rng);
    let mut groups = vec![gg];
    if pq {
        groups.push(0x11ec);
    }
    groups.extend_from_slice(&[0x001d, 0x0017, 0x0018]);
    ext.extend_from_slice(&[0x00, 0x0a]);
    push_u16(&mut ext, groups.len() * 2 + 2);
    push_u16(&mut ext, groups.len() * 2);
    for g in &groups {
        ext.extend_from_slice(&g.to_be_bytes());
    }
    // ec_point_formats, status_request.
    ext.extend_from_slice(&[0x00, 0x0b, 0, 2, 1, 0, 0x00, 0x05, 0, 5, 1, 0, 0, 0, 0]);
    // ALPN (RFC 7301): h2, http/1.1.
    ext.extend_from_slice(&[0x00, 0x10, 0, 14, 0, 12, 2, b'h', b'2', 8]);
    ext.extend_from_slice(b"http/1.1");
    // signature_algorithms.
    let sigs: [u16; 8] = [
        0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
    ];
    ext.extend_from_slice(&[0x00, 0x0d]);
    push_u16(&mut ext, sigs.len() * 2 + 2);
    push_u16(&mut ext, sigs.len() * 2);
    for s in sigs {
        ext.extend_from_slice(&s.to_be_bytes());
    }
    ext.extend_from_slice(&[0x00, 0x12, 0, 0]);
    // key_share (RFC 8446 §4.2.8): GREASE (1 byte), [X25519MLKEM768 1216 bytes], X25519 32.
    let mut shares: Vec<u8> = Vec::with_capacity(1400);
    shares.extend_from_slice(&gg.to_be_bytes());
    shares.extend_from_slice(&[0, 1, 0]);
    if pq {
        shares.extend_from_slice(&[0x11, 0xec]);
        push_u16(&mut shares, 1216);
        shares.extend_from_slice(rand_bytes(rng, 1216));
    }
    shares.extend_from_slice(&[0x00, 0x1d, 0, 32]);
    shares.extend_from_slice(rand_bytes(rng, 32));
    ext.extend_from_slice(&[0x00, 0x33]);
    push_u16(&mut ext, shares.len() + 2);
    push_u16(&mut ext, shares.len());
    ext.extend_from_slice(&shares);
    // psk_key_exchange_modes, supported_versions (GREASE, 1.3, 1.2), compress_certificate.
    ext.extend_from_slice(&[0x00, 0x2d, 0, 2, 1, 1, 0x00, 0x2b, 0, 7, 6]);
    ext.extend_from_slice(&grease(rng).to_be_bytes());
    ext.extend_from_slice(&[3, 4, 3, 3, 0x00, 0x1b, 0, 3, 2, 0, 2]);
    let g2 = grease(rng);
    let g2 = if g2 == g1 { g2 ^ 0x1010 } else { g2 };
    ext.extend_from_slice(&g2.to_be_bytes());
    ext.extend_from_slice(&[0, 1, 0]);

    let mut ciphers: Vec<u16> = vec![grease(rng)];
    ciphers.extend_from_slice(&[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014,
        0x009c, 0x009d, 0x002f, 0x0035,
    ]);
    // Fixed part of the body: version 2 + random 32 + sid 1+32 + ciphers 2+n + comp 2 + ext 2.
    let fixed = 2 + 32 + 33 + 2 + ciphers.len() * 2 + 2 + 2;
    if !pq {
        // padding (RFC 7685) so the handshake message is 508 bytes, record 512.
        let body = fixed + ext.len();
        if body + 4 <= 508 {
            let pad = 508 - body - 4;
            ext.extend_from_slice(&[0x00, 0x15]);
            push_u16(&mut ext, pad);
            ext.resize(ext.len() + pad, 0);
        }
    }
    let body_len = fixed + ext.len();
    out.clear();
    out.extend_from_slice(&[0x16, 0x03, 0x01]);
    push_u16(out, body_len + 4);
    out.push(0x01);
    push_u24(out, body_len);
    out.extend_from_slice(&[0x03, 0x03]);
    out.extend_from_slice(rand_bytes(rng, 32));
    out.push(32);
    out.extend_from_slice(rand_bytes(rng, 32));
    push_u16(out, ciphers.len() * 2);
    for c in &ciphers {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(&[1, 0]);
    push_u16(out, ext.len());
    out.extend_from_slice(&ext);
}

/// ServerHello (TLS 1.3, x25519) and ChangeCipherSpec records: the start of the server stream.
fn server_hello(rng: &mut Rng, pool: &[u8], out: &mut Vec<u8>) {
    let start = rng.index(pool.len() - 96);
    let r = &pool[start..start + 96];
    out.clear();
    out.extend_from_slice(&[
        0x16, 0x03, 0x03, 0x00, 0x7a, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03,
    ]);
    out.extend_from_slice(&r[..32]);
    out.push(32);
    out.extend_from_slice(&r[32..64]);
    out.extend_from_slice(&[
        0x13, 0x01, 0x00, 0x00, 0x2e, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
    ]);
    out.extend_from_slice(&[0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
    out.extend_from_slice(&r[64..96]);
    out.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
}

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Microsoft-Delivery-Optimization/10.0",
];

/// An HTTP/1.1 request (RFC 9112 §3) with a Host header (RFC 9110 §7.2).
fn http_request(rng: &mut Rng, name: &str, kaspersky: bool, out: &mut Vec<u8>) {
    out.clear();
    let path = if kaspersky {
        format!(
            "/diffs/bases/av/kdb/i386/kdb-i386-{:04x}g.dat.dif",
            rng.below(0x10000)
        )
    } else {
        format!("/static/js/app.{:08x}.js", rng.u32())
    };
    let ua = if kaspersky {
        ""
    } else {
        USER_AGENTS[rng.index(USER_AGENTS.len())]
    };
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\r\n");
    if !ua.is_empty() {
        out.extend_from_slice(b"User-Agent: ");
        out.extend_from_slice(ua.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        b"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n",
    );
}

fn http_response_head(body: usize, out: &mut Vec<u8>) {
    out.clear();
    let h = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 03 Mar 2025 09:00:00 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: {body}\r\nConnection: keep-alive\r\n\r\n"
    );
    out.extend_from_slice(h.as_bytes());
}

/// Appends a DNS name in wire form (RFC 1035 §3.1).
fn push_dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

const QTYPE_A: u16 = 1;
const QTYPE_CNAME: u16 = 5;
const QTYPE_AAAA: u16 = 28;

/// A DNS query (RFC 1035 §4.1) with one question, optionally an EDNS OPT RR (RFC 6891 §6.1.2).
fn dns_query(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16, edns: bool) {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    push_dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    if edns {
        out.extend_from_slice(&[0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
}

/// An answer record of a response.
enum Rr<'a> {
    Cname(&'a str),
    A([u8; 4]),
    Aaaa([u8; 16]),
}

/// A DNS response to `dns_query(id, name, qtype, edns)`: the question, then `answers` as a
/// chain: the first owner is the question (pointer 0xc00c, RFC 1035 §4.1.4), each later owner
/// is a pointer to the previous CNAME target.
#[allow(clippy::too_many_arguments)]
fn dns_response(
    out: &mut Vec<u8>,
    id: u16,
    name: &str,
    qtype: u16,
    edns: bool,
    rcode: u8,
    answers: &[Rr<'_>],
    ttl: u32,
) {
    out.clear();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x81, 0x80 | rcode, 0, 1]);
    push_u16(out, answers.len());
    out.extend_from_slice(&[0, 0, 0, u8::from(edns)]);
    push_dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    let mut owner: u16 = 12;
    for rr in answers {
        out.extend_from_slice(&(0xc000 | owner).to_be_bytes());
        let (ty, rdata_at) = match rr {
            Rr::Cname(_) => (QTYPE_CNAME, out.len() + 10),
            Rr::A(_) => (QTYPE_A, 0),
            Rr::Aaaa(_) => (QTYPE_AAAA, 0),
        };
        out.extend_from_slice(&ty.to_be_bytes());
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(&ttl.to_be_bytes());
        match rr {
            Rr::Cname(t) => {
                push_u16(out, t.len() + 2);
                push_dns_name(out, t);
                owner = rdata_at as u16;
            }
            Rr::A(a) => {
                push_u16(out, 4);
                out.extend_from_slice(a);
            }
            Rr::Aaaa(a) => {
                push_u16(out, 16);
                out.extend_from_slice(a);
            }
        }
    }
    if edns {
        out.extend_from_slice(&[0, 0x00, 0x29, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
}

// ---------------------------------------------------------------------------------------------
// Hosts

struct Client {
    ip: [u8; 4],
    mac: [u8; 6],
    vlan: Option<u16>,
    kaspersky: bool,
}

const GATEWAY_MAC: [u8; 6] = [0x00, 0x1c, 0x73, 0x00, 0x00, 0x01];
const RESOLVERS: [[u8; 4]; 2] = [[10, 0, 255, 53], [10, 0, 255, 54]];

fn make_clients(rng: &mut Rng, n: usize, vlan_fraction: f64) -> Vec<Client> {
    (0..n)
        .map(|i| {
            // 10.0.0.0/16, skipping .0 and .255 host bytes.
            let ip = [10, 0, (1 + i / 250) as u8, (1 + i % 250) as u8];
            let mac = [0x02, 0x4b, 0x53, ip[1], ip[2], ip[3]];
            // VLANs per /24 "floor": a third of the floors are tagged.
            let vlan = if ((ip[2] as f64 * 0.618_034) % 1.0) < vlan_fraction {
                Some(100 + u16::from(ip[2]))
            } else {
                None
            };
            Client {
                ip,
                mac,
                vlan,
                kaspersky: rng.chance(0.10),
            }
        })
        .collect()
}

/// Public-looking server addresses outside private, loopback, CGNAT and multicast space.
fn make_servers(rng: &mut Rng, n: usize) -> Vec<[u8; 4]> {
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        let a = rng.range(11, 223) as u8;
        if matches!(a, 100 | 127 | 169 | 172 | 192) {
            continue;
        }
        v.push([a, rng.u32() as u8, rng.u32() as u8, rng.range(1, 254) as u8]);
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Flows

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum App {
    Tls,
    Http,
    Quic,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Dns,
    Syn,
    SynAck,
    Ack,
    ClientFirst,
    Data,
    ClientFin,
    ServerFin,
    LastAck,
    Quic,
    Done,
}

/// One connection being written, packet by packet.
struct Flow {
    app: App,
    client: usize,
    c2s: Path4,
    ports: (u16, u16),
    name: String,
    class: NameClass,
    stage: Stage,
    cseq: u32,
    sseq: u32,
    ts_c: u32,
    ts_s: u32,
    /// Last TSval each side sent: the peer echoes it in TSecr (RFC 7323 §3.2).
    echo_c: u32,
    echo_s: u32,
    /// Client's first payload: ClientHello or HTTP request.
    first: Vec<u8>,
    first_sent: usize,
    /// Server stream head: ServerHello+CCS or the HTTP response head.
    head: Vec<u8>,
    server_total: usize,
    server_sent: usize,
    segs_sent: usize,
    unacked: usize,
    client2_sent: bool,
    quic_left: u32,
    dns_before: bool,
}

/// Knobs of the TCP profiles.
struct TcpProfile {
    budget_bytes: Option<u64>,
    budget_packets: Option<u64>,
    concurrency: usize,
    clients: usize,
    servers: usize,
    vlan_fraction: f64,
    /// Probability that a new TCP flow is preceded by a DNS lookup of its name.
    dns_before_flow: f64,
    http_fraction: f64,
    other_port_fraction: f64,
    quic_fraction: f64,
    pq_fraction: f64,
    /// Server stream bytes: short handshakes or bulk downloads.
    bulk: bool,
    gap_us: u64,
}

type PendingResponse = (u64, Path4, (u16, u16), Vec<u8>);

struct Gen<W: Write> {
    out: PcapOut<W>,
    rng: Rng,
    truth: Truth,
    /// DNS responses waiting to be written: (due step, path, ports, message).
    pending: VecDeque<PendingResponse>,
    step: u64,
    scratch: Vec<u8>,
    dns_id: u16,
}

impl<W: Write> Gen<W> {
    fn new(w: W, seed: u64) -> Result<Self> {
        let mut rng = Rng(seed);
        let out = PcapOut::new(w, &mut rng)?;
        Ok(Gen {
            out,
            rng: rng.fork(),
            truth: Truth::default(),
            pending: VecDeque::new(),
            step: 0,
            scratch: Vec::with_capacity(2048),
            dns_id: 0,
        })
    }

    /// Writes DNS responses whose time has come. Returns whether one was written.
    fn flush_due(&mut self, gap_us: u64, all: bool) -> Result<bool> {
        let due = self
            .pending
            .front()
            .is_some_and(|(at, ..)| all || *at <= self.step);
        if !due {
            return Ok(false);
        }
        if let Some((_, path, ports, msg)) = self.pending.pop_front() {
            self.out
                .udp(&path, ports, gap_us, |o| o.frame.extend_from_slice(&msg))?;
            self.step += 1;
        }
        Ok(true)
    }

    /// A DNS exchange: the query now, the response queued a few packets later. Counts the
    /// Kaspersky occurrences (query name, CNAME targets).
    #[allow(clippy::too_many_arguments)]
    fn dns_exchange(
        &mut self,
        client: &Client,
        c2r: Path4,
        name: &str,
        qtype: u16,
        answers: &[Rr<'_>],
        rcode: u8,
        gap_us: u64,
    ) -> Result<()> {
        self.dns_id = self.dns_id.wrapping_add(1 + (self.rng.u16() & 0x3ff));
        let id = self.dns_id;
        let sport = self.rng.range(1024, 65535) as u16;
        let edns = self.rng.chance(0.6);
        let mut q = std::mem::take(&mut self.scratch);
        dns_query(&mut q, id, name, qtype, edns);
        self.out
            .udp(&c2r, (sport, 53), gap_us, |o| o.frame.extend_from_slice(&q))?;
        self.step += 1;
        self.scratch = q;
        if is_kaspersky(name) {
            self.truth.occurrence(Kind::Dns, name, client.ip);
            self.truth.dns_queries += 1;
        }
        for rr in answers {
            if let Rr::Cname(t) = rr {
                if is_kaspersky(t) {
                    self.truth.occurrence(Kind::Dns, t, client.ip);
                }
            }
        }
        let mut r = Vec::with_capacity(256);
        let ttl = self.rng.range(30, 3600) as u32;
        dns_response(&mut r, id, name, qtype, edns, rcode, answers, ttl);
        let delay = self.rng.range(1, DNS_RESPONSE_DELAY_MAX);
        self.pending
            .push_back((self.step + delay, c2r.reverse(), (53, sport), r));
        Ok(())
    }

    /// Writes the next packet of `f`.
    fn advance(&mut self, f: &mut Flow, clients: &[Client], gap_us: u64) -> Result<()> {
        let c2s = f.c2s;
        let s2c = c2s.reverse();
        let (cp, sp) = f.ports;
        let tick = (self.out.ts_us / 1000) as u32;
        let (tsc, tss) = (f.ts_c.wrapping_add(tick), f.ts_s.wrapping_add(tick));
        self.step += 1;
        match f.stage {
            Stage::Dns => {
                self.step -= 1;
                let client = &clients[f.client];
                let resolver = RESOLVERS[f.client % RESOLVERS.len()];
                let c2r = Path4 {
                    dst: resolver,
                    ..c2s
                };
                let answer = [Rr::A(c2s.dst)];
                let name = std::mem::take(&mut f.name);
                self.dns_exchange(client, c2r, &name, QTYPE_A, &answer, 0, gap_us)?;
                f.name = name;
                f.stage = if f.app == App::Quic {
                    Stage::Quic
                } else {
                    Stage::Syn
                };
            }
            Stage::Syn => {
                let o = syn_options(tsc, 0);
                f.echo_c = tsc;
                self.out.tcp(
                    &c2s,
                    (cp, sp),
                    f.cseq.wrapping_sub(1),
                    0,
                    TCP_SYN,
                    &o,
                    gap_us,
                    |_| {},
                )?;
                f.stage = Stage::SynAck;
            }
            Stage::SynAck => {
                let o = syn_options(tss, f.echo_c);
                f.echo_s = tss;
                self.out.tcp(
                    &s2c,
                    (sp, cp),
                    f.sseq.wrapping_sub(1),
                    f.cseq,
                    TCP_SYN | TCP_ACK,
                    &o,
                    gap_us,
                    |_| {},
                )?;
                f.stage = Stage::Ack;
            }
            Stage::Ack => {
                let o = ts_options(tsc, f.echo_s);
                f.echo_c = tsc;
                self.out
                    .tcp(&c2s, (cp, sp), f.cseq, f.sseq, TCP_ACK, &o, gap_us, |_| {})?;
                f.stage = Stage::ClientFirst;
            }
            Stage::ClientFirst => {
                let o = ts_options(tsc, f.echo_s);
                f.echo_c = tsc;
                let end = (f.first_sent + MSS).min(f.first.len());
                let chunk = &f.first[f.first_sent..end];
                self.out.tcp(
                    &c2s,
                    (cp, sp),
                    f.cseq,
                    f.sseq,
                    TCP_PSH | TCP_ACK,
                    &o,
                    gap_us,
                    |o| o.frame.extend_from_slice(chunk),
                )?;
                f.cseq = f.cseq.wrapping_add(chunk.len() as u32);
                f.first_sent = end;
                if f.first_sent >= f.first.len() {
                    f.stage = Stage::Data;
                    if f.class == NameClass::Kaspersky {
                        let kind = if f.app == App::Http {
                            Kind::Http
                        } else {
                            Kind::Tls
                        };
                        self.truth.occurrence(kind, &f.name, clients[f.client].ip);
                    }
                }
            }
            Stage::Data => {
                let nsegs = f.server_total.div_ceil(MSS);
                let o_c = ts_options(tsc, f.echo_s);
                if f.app == App::Tls && !f.client2_sent && f.segs_sent >= nsegs.min(3) {
                    // Client Finished (CCS + 53-byte record) and its first request record.
                    let req = self.rng.range(200, 700) as usize;
                    let mut p = std::mem::take(&mut self.scratch);
                    p.clear();
                    p.extend_from_slice(&[
                        0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03, 0x00, 0x35,
                    ]);
                    p.extend_from_slice(self.out.random_slice(0x35));
                    p.extend_from_slice(&[0x17, 0x03, 0x03]);
                    push_u16(&mut p, req);
                    let body = self.out.random_slice(req).to_vec();
                    p.extend_from_slice(&body);
                    self.out.tcp(
                        &c2s,
                        (cp, sp),
                        f.cseq,
                        f.sseq,
                        TCP_PSH | TCP_ACK,
                        &o_c,
                        gap_us,
                        |o| o.frame.extend_from_slice(&p),
                    )?;
                    f.cseq = f.cseq.wrapping_add(p.len() as u32);
                    self.scratch = p;
                    f.echo_c = tsc;
                    f.client2_sent = true;
                    f.unacked = 0;
                } else if f.unacked >= 2 {
                    self.out.tcp(
                        &c2s,
                        (cp, sp),
                        f.cseq,
                        f.sseq,
                        TCP_ACK,
                        &o_c,
                        gap_us,
                        |_| {},
                    )?;
                    f.echo_c = tsc;
                    f.unacked = 0;
                } else if f.segs_sent < nsegs {
                    let o = ts_options(tss, f.echo_c);
                    f.echo_s = tss;
                    let len = (f.server_total - f.server_sent).min(MSS);
                    let (off, head, total, app) = (f.server_sent, &f.head, f.server_total, f.app);
                    let flags = if f.segs_sent + 1 == nsegs {
                        TCP_PSH | TCP_ACK
                    } else {
                        TCP_ACK
                    };
                    self.out
                        .tcp(&s2c, (sp, cp), f.sseq, f.cseq, flags, &o, gap_us, |o| {
                            server_stream(o, head, total, app, off, len)
                        })?;
                    f.sseq = f.sseq.wrapping_add(len as u32);
                    f.server_sent += len;
                    f.segs_sent += 1;
                    f.unacked += 1;
                } else {
                    self.step -= 1;
                    f.stage = Stage::ClientFin;
                    return self.advance(f, clients, gap_us);
                }
            }
            Stage::ClientFin => {
                let o = ts_options(tsc, f.echo_s);
                f.echo_c = tsc;
                self.out.tcp(
                    &c2s,
                    (cp, sp),
                    f.cseq,
                    f.sseq,
                    TCP_FIN | TCP_ACK,
                    &o,
                    gap_us,
                    |_| {},
                )?;
                f.cseq = f.cseq.wrapping_add(1);
                f.stage = Stage::ServerFin;
            }
            Stage::ServerFin => {
                let o = ts_options(tss, f.echo_c);
                f.echo_s = tss;
                self.out.tcp(
                    &s2c,
                    (sp, cp),
                    f.sseq,
                    f.cseq,
                    TCP_FIN | TCP_ACK,
                    &o,
                    gap_us,
                    |_| {},
                )?;
                f.sseq = f.sseq.wrapping_add(1);
                f.stage = Stage::LastAck;
            }
            Stage::LastAck => {
                let o = ts_options(tsc, f.echo_s);
                f.echo_c = tsc;
                self.out
                    .tcp(&c2s, (cp, sp), f.cseq, f.sseq, TCP_ACK, &o, gap_us, |_| {})?;
                f.stage = Stage::Done;
            }
            Stage::Quic => {
                // RFC 9000 §17.2: long header 0xc3 (Initial, 4-byte packet number), version 1,
                // DCID 8, SCID 0, token 0, 2-byte length; the rest is undecryptable noise. The
                // first two client packets are Initials (padded to 1250, RFC 9000 §14.1), the
                // rest short-header packets (§17.3) both ways.
                let sent = f.segs_sent;
                let from_client = sent < 2 || self.rng.chance(0.3);
                let (path, ports) = if from_client {
                    (c2s, (cp, sp))
                } else {
                    (s2c, (sp, cp))
                };
                let len: usize = if sent < 2 || !from_client {
                    1250
                } else {
                    self.rng.range(40, 80) as usize
                };
                let mut p = std::mem::take(&mut self.scratch);
                p.clear();
                if sent < 2 {
                    p.extend_from_slice(&[0xc3, 0, 0, 0, 1, 8]);
                    p.extend_from_slice(&f.first[..8]);
                    p.extend_from_slice(&[0, 0]);
                    let rest = 0x4000 | (len - p.len() - 2);
                    push_u16(&mut p, rest);
                } else {
                    p.push(0x40 | (self.rng.u32() as u8 & 0x3f));
                    if from_client {
                        p.extend_from_slice(&f.first[8..16]);
                    }
                }
                let rest = len - p.len();
                p.extend_from_slice(self.out.random_slice(rest));
                self.out
                    .udp(&path, ports, gap_us, |o| o.frame.extend_from_slice(&p))?;
                self.scratch = p;
                f.segs_sent += 1;
                if f.segs_sent as u32 >= f.quic_left {
                    f.stage = Stage::Done;
                }
            }
            Stage::Done => self.step -= 1,
        }
        Ok(())
    }

    fn new_flow(&mut self, p: &TcpProfile, clients: &[Client], servers: &[[u8; 4]]) -> Flow {
        let rng = &mut self.rng;
        let ci = rng.index(clients.len());
        let client = &clients[ci];
        let app = if rng.chance(p.quic_fraction) {
            App::Quic
        } else if rng.chance(p.http_fraction) {
            App::Http
        } else {
            App::Tls
        };
        let mut name = String::with_capacity(64);
        let class = pick_name(rng, client.kaspersky, app == App::Http, &mut name);
        // Kaspersky names live on a small pool of servers, others anywhere (skewed).
        let server = if class == NameClass::Kaspersky {
            servers[rng.index(32.min(servers.len()))]
        } else {
            let x = rng.below(1 << 20) as f64 / (1u64 << 20) as f64;
            servers[((x * x * servers.len() as f64) as usize).min(servers.len() - 1)]
        };
        let dport = match app {
            App::Http => 80,
            App::Quic => 443,
            App::Tls if rng.chance(p.other_port_fraction) => [8443u16, 993][rng.index(2)],
            App::Tls => 443,
        };
        let c2s = Path4 {
            src_mac: client.mac,
            dst_mac: GATEWAY_MAC,
            vlan: client.vlan,
            src: client.ip,
            dst: server,
        };
        let mut first = Vec::with_capacity(2048);
        let mut head = Vec::with_capacity(256);
        let server_total;
        let mut quic_left = 0;
        // Server bytes: short handshakes are one TLS 1.3 flight (~4 KB) and a ticket; bulk is
        // a mix of small objects and downloads (mean ~35 KB) so that the average packet is
        // 700-900 bytes.
        let bulk = if p.bulk {
            let r = rng.below(100);
            if r < 50 {
                rng.range(1_000, 12_000)
            } else if r < 90 {
                rng.range(12_000, 60_000)
            } else {
                rng.range(60_000, 300_000)
            }
        } else {
            rng.range(3_400, 5_500)
        } as usize;
        match app {
            App::Tls => {
                let pq = rng.chance(p.pq_fraction);
                let mut crng = rng.fork();
                client_hello(&mut crng, &self.out.pool, &name, pq, &mut first);
                server_hello(&mut crng, &self.out.pool, &mut head);
                server_total = tls_stream_len(head.len(), bulk);
            }
            App::Http => {
                http_request(rng, &name, class == NameClass::Kaspersky, &mut first);
                http_response_head(bulk, &mut head);
                server_total = head.len() + bulk;
            }
            App::Quic => {
                for _ in 0..2 {
                    first.extend_from_slice(&rng.next_u64().to_le_bytes());
                }
                quic_left = rng.range(6, 30) as u32;
                server_total = 0;
            }
        }
        let dns_before = rng.chance(p.dns_before_flow);
        Flow {
            app,
            client: ci,
            c2s,
            ports: (rng.range(32768, 60999) as u16, dport),
            name,
            class,
            stage: if dns_before {
                Stage::Dns
            } else if app == App::Quic {
                Stage::Quic
            } else {
                Stage::Syn
            },
            cseq: rng.u32() | 1,
            sseq: rng.u32() | 1,
            ts_c: rng.u32(),
            ts_s: rng.u32(),
            echo_c: 0,
            echo_s: 0,
            first,
            first_sent: 0,
            head,
            server_total,
            server_sent: 0,
            segs_sent: 0,
            unacked: 0,
            client2_sent: false,
            quic_left,
            dns_before,
        }
    }
}

/// Estimated bytes and packets of a flow, for the size budget.
fn flow_estimate(f: &Flow) -> (u64, u64) {
    if f.app == App::Quic {
        return (u64::from(f.quic_left) * 1000, u64::from(f.quic_left));
    }
    let segs = f.server_total.div_ceil(MSS) as u64;
    let pkts = 8 + segs + segs / 2 + u64::from(f.dns_before) * 2;
    (
        f.server_total as u64 + f.first.len() as u64 + pkts * 90,
        pkts,
    )
}

/// Server stream length for a TLS flow: head, then application-data records totalling at least
/// `bulk` bytes, the last record at least 6 bytes long (a header and one byte).
fn tls_stream_len(head: usize, bulk: usize) -> usize {
    let rec = 5 + TLS_RECORD_PAYLOAD;
    let last = bulk % rec;
    if last > 0 && last < 6 {
        head + bulk + 6 - last
    } else {
        head + bulk
    }
}

/// Appends bytes `off..off+len` of a server stream: `head`, then for TLS application-data
/// records (header 17 03 03 len, random payload), for HTTP a random body.
fn server_stream<W: Write>(
    o: &mut PcapOut<W>,
    head: &[u8],
    total: usize,
    app: App,
    mut off: usize,
    mut len: usize,
) {
    while len > 0 && off < head.len() {
        let n = (head.len() - off).min(len);
        o.frame.extend_from_slice(&head[off..off + n]);
        off += n;
        len -= n;
    }
    if len == 0 {
        return;
    }
    if app != App::Tls {
        let start = o.rng.index(RANDOM_POOL_BYTES - len);
        o.frame.extend_from_slice(&o.pool[start..start + len]);
        return;
    }
    let rec = 5 + TLS_RECORD_PAYLOAD;
    let body_total = total - head.len();
    while len > 0 {
        let rel = off - head.len();
        let idx = rel / rec;
        let within = rel % rec;
        let rec_start = idx * rec;
        let rec_len = (body_total - rec_start).min(rec);
        if within < 5 {
            let payload = (rec_len - 5) as u16;
            let hdr = [0x17, 0x03, 0x03, (payload >> 8) as u8, payload as u8];
            let n = (5 - within).min(len);
            o.frame.extend_from_slice(&hdr[within..within + n]);
            off += n;
            len -= n;
        } else {
            let n = (rec_len - within).min(len);
            let start = o.rng.index(RANDOM_POOL_BYTES - n);
            o.frame.extend_from_slice(&o.pool[start..start + n]);
            off += n;
            len -= n;
        }
    }
}

/// The TCP profiles: flows interleaved at random until the budget is written.
fn run_tcp_profile<W: Write>(g: &mut Gen<W>, p: &TcpProfile) -> Result<()> {
    let mut crng = g.rng.fork();
    let clients = make_clients(&mut crng, p.clients, p.vlan_fraction);
    let servers = make_servers(&mut crng, p.servers);
    let mut active: Vec<Flow> = Vec::with_capacity(p.concurrency);
    let mut committed_bytes = 0u64;
    let mut committed_packets = 0u64;
    let within_budget = |b: u64, n: u64| {
        p.budget_bytes.is_none_or(|max| b < max) && p.budget_packets.is_none_or(|max| n < max)
    };
    // Standalone lookups (AAAA, names without a connection) top DNS up to ~3% of packets.
    let extra_dns = if p.dns_before_flow > 0.0 { 0.006 } else { 0.0 };
    loop {
        while active.len() < p.concurrency && within_budget(committed_bytes, committed_packets) {
            let f = g.new_flow(p, &clients, &servers);
            let (b, n) = flow_estimate(&f);
            committed_bytes += b;
            committed_packets += n;
            active.push(f);
        }
        if g.flush_due(p.gap_us, false)? {
            continue;
        }
        if active.is_empty() {
            break;
        }
        if extra_dns > 0.0 && g.rng.chance(extra_dns) {
            let ci = g.rng.index(clients.len());
            let c = &clients[ci];
            let mut name = String::new();
            pick_name(&mut g.rng, c.kaspersky, false, &mut name);
            let c2r = Path4 {
                src_mac: c.mac,
                dst_mac: GATEWAY_MAC,
                vlan: c.vlan,
                src: c.ip,
                dst: RESOLVERS[ci % RESOLVERS.len()],
            };
            // AAAA with no IPv6 address (NODATA: NOERROR, no answers) or A.
            if g.rng.chance(0.5) {
                g.dns_exchange(c, c2r, &name, QTYPE_AAAA, &[], 0, p.gap_us)?;
            } else {
                let a = servers[g.rng.index(servers.len())];
                g.dns_exchange(c, c2r, &name, QTYPE_A, &[Rr::A(a)], 0, p.gap_us)?;
            }
            continue;
        }
        let i = g.rng.index(active.len());
        let mut f = active.swap_remove(i);
        g.advance(&mut f, &clients, p.gap_us)?;
        if f.stage == Stage::Done {
            // Later flows replace it (the budget loop at the top).
        } else {
            active.push(f);
            let last = active.len() - 1;
            active.swap(i.min(last), last);
        }
    }
    while g.flush_due(p.gap_us, true)? {}
    Ok(())
}

/// The `dns` profile: a resolver's view. Clients across 10.0.0.0/12 behind routers, one
/// resolver, A/AAAA queries, CNAME chains, NXDOMAIN.
fn run_dns_profile<W: Write>(g: &mut Gen<W>, budget_packets: u64) -> Result<()> {
    const CLIENTS: usize = 50_000;
    let gap_us = 10;
    let mut crng = g.rng.fork();
    let clients: Vec<Client> = (0..CLIENTS)
        .map(|i| {
            let ip = [10, (i >> 16) as u8 & 0x0f, (i >> 8) as u8, (i as u8).max(1)];
            Client {
                ip,
                mac: [0x02, 0x52, 0x54, 0, 0, 1],
                vlan: None,
                kaspersky: crng.chance(0.10),
            }
        })
        .collect();
    let resolver_mac = [0x02, 0x52, 0x54, 0, 0, 0x53];
    let mut name = String::with_capacity(128);
    let mut cname1 = String::with_capacity(128);
    let mut cname2 = String::with_capacity(128);
    while g.out.packets < budget_packets {
        if g.flush_due(gap_us, false)? {
            continue;
        }
        let rng = &mut g.rng;
        let ci = rng.index(CLIENTS);
        let c = &clients[ci];
        let path = Path4 {
            src_mac: GATEWAY_MAC,
            dst_mac: resolver_mac,
            vlan: None,
            src: c.ip,
            dst: [10, 255, 255, 53],
        };
        let qtype = if rng.chance(0.3) { QTYPE_AAAA } else { QTYPE_A };
        let roll = rng.below(1000);
        let mut a4 = [0u8; 4];
        let mut a6 = [0u8; 16];
        a4.copy_from_slice(&rng.next_u64().to_be_bytes()[..4]);
        a4[0] = rng.range(11, 99) as u8;
        a6[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0]);
        a6[8..].copy_from_slice(&rng.next_u64().to_be_bytes());
        let addr = if qtype == QTYPE_A {
            Rr::A(a4)
        } else {
            Rr::Aaaa(a6)
        };
        let mut rcode = 0;
        let mut answers: Vec<Rr<'_>> = Vec::with_capacity(4);
        if c.kaspersky && roll < 10 {
            // A Kaspersky host's update mirror alias: CNAME to a Kaspersky name.
            let (alias, target) = ALIASES_TO_KASPERSKY[rng.index(ALIASES_TO_KASPERSKY.len())];
            name.clear();
            name.push_str(alias);
            cname1.clear();
            cname1.push_str(target);
            answers.push(Rr::Cname(&cname1));
            answers.push(addr);
        } else if c.kaspersky && roll < 30 {
            let (from, target) = KASPERSKY_TO_KASPERSKY[0];
            name.clear();
            name.push_str(from);
            cname1.clear();
            cname1.push_str(target);
            answers.push(Rr::Cname(&cname1));
            answers.push(addr);
        } else {
            let class = pick_name(rng, c.kaspersky, false, &mut name);
            let r = rng.below(100);
            if r < 4 && class == NameClass::Ordinary {
                // A typo or a search-list suffix: NXDOMAIN (RFC 1035 §4.1.1 rcode 3).
                name.insert_str(0, "wpad.");
                rcode = 3;
            } else if r < 30 {
                // CDN chain: name -> name.edge.example.net -> eNNNN.a.edge.example.net.
                cname1.clear();
                cname1.push_str(&name);
                cname1.push_str(".edge.example.net");
                cname2.clear();
                cname2.push_str(&format!("e{}.a.edge.example.net", rng.below(10_000)));
                answers.push(Rr::Cname(&cname1));
                answers.push(Rr::Cname(&cname2));
                answers.push(addr);
            } else if qtype == QTYPE_AAAA && r < 45 {
                // NODATA.
            } else {
                answers.push(addr);
                if r > 80 {
                    let mut b = a4;
                    b[3] = b[3].wrapping_add(1);
                    answers.push(if qtype == QTYPE_A {
                        Rr::A(b)
                    } else {
                        Rr::Aaaa(a6)
                    });
                }
            }
        }
        g.dns_exchange(&clients[ci], path, &name, qtype, &answers, rcode, gap_us)?;
    }
    while g.flush_due(gap_us, true)? {}
    Ok(())
}

fn enterprise(scale: f64) -> TcpProfile {
    TcpProfile {
        budget_bytes: Some((1.5e9 * scale) as u64),
        budget_packets: None,
        concurrency: ((20_000.0 * scale) as usize).clamp(50, MAX_CONCURRENT_FLOWS),
        clients: 2000,
        servers: 5000,
        vlan_fraction: 0.3,
        dns_before_flow: 0.5,
        http_fraction: 0.10,
        other_port_fraction: 0.03,
        quic_fraction: 0.03,
        pq_fraction: 0.10,
        bulk: true,
        gap_us: 5,
    }
}

fn handshakes(scale: f64) -> TcpProfile {
    TcpProfile {
        budget_bytes: None,
        budget_packets: Some((5e6 * scale) as u64),
        concurrency: ((5_000.0 * scale) as usize).clamp(50, MAX_CONCURRENT_FLOWS),
        clients: 5000,
        servers: 5000,
        vlan_fraction: 0.0,
        dns_before_flow: 0.0,
        http_fraction: 0.0,
        other_port_fraction: 0.0,
        quic_fraction: 0.0,
        pq_fraction: 0.10,
        bulk: false,
        gap_us: 3,
    }
}

#[derive(Parser)]
#[command(
    about = "Writes a deterministic synthetic pcap and its ground truth for benches/compare.sh"
)]
struct Args {
    /// enterprise, dns or handshakes.
    #[arg(long)]
    profile: String,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Size factor: 1 is the full corpus, 0.05 a quick one.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

/// Writes `<out>/<profile>.pcap` and returns the truth JSON.
fn generate<W: Write>(
    w: W,
    profile: &str,
    seed: u64,
    scale: f64,
) -> Result<(serde_json::Value, W)> {
    let mut g = Gen::new(w, seed)?;
    match profile {
        "enterprise" => run_tcp_profile(&mut g, &enterprise(scale))?,
        "handshakes" => run_tcp_profile(&mut g, &handshakes(scale))?,
        "dns" => run_dns_profile(&mut g, (4e6 * scale) as u64)?,
        other => bail!("unknown profile {other:?} (expected enterprise, dns or handshakes)"),
    }
    let t = &g.truth;
    let frame_bytes = g.out.bytes - 24 - 16 * g.out.packets;
    let truth = serde_json::json!({
        "profile": profile,
        "seed": seed,
        "scale": scale,
        "packets": g.out.packets,
        "bytes": frame_bytes,
        "file_bytes": g.out.bytes,
        "detections": { "dns": t.dns, "tls": t.tls, "http": t.http, "quic": 0 },
        "dns_by_source": { "query": t.dns_queries, "cname_target": t.dns - t.dns_queries },
        "kaspersky_names": t.names,
        "hosts_with_kaspersky": t.hosts.len(),
    });
    g.out.w.flush()?;
    Ok((truth, g.out.w))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.scale > 0.0 && args.scale <= MAX_SCALE) {
        bail!("--scale must be in (0, {MAX_SCALE}], got {}", args.scale);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let pcap_path = args.out.join(format!("{}.pcap", args.profile));
    let truth_path = args.out.join(format!("{}.truth.json", args.profile));
    let tmp = pcap_path.with_extension("pcap.tmp");
    let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let started = std::time::Instant::now();
    let (truth, w) = generate(
        BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        &args.profile,
        args.seed,
        args.scale,
    )?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &pcap_path)?;
    write_json(&truth_path, &truth)?;
    eprintln!(
        "{}: {} packets, {} bytes in {:.1}s; truth {}",
        pcap_path.display(),
        truth["packets"],
        truth["file_bytes"],
        started.elapsed().as_secs_f64(),
        truth["detections"]
    );
    Ok(())
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen_bytes(profile: &str, seed: u64, scale: f64) -> (Vec<u8>, serde_json::Value) {
        let (truth, w) = generate(Vec::new(), profile, seed, scale).expect("generate");
        (w, truth)
    }

    /// Walks the pcap records: (frame slices).
    fn frames(pcap: &[u8]) -> Vec<&[u8]> {
        let mut v = Vec::new();
        let mut off = 24;
        while off + 16 <= pcap.len() {
            let len = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
            v.push(&pcap[off + 16..off + 16 + len]);
            off += 16 + len;
        }
        assert_eq!(off, pcap.len(), "trailing bytes");
        v
    }

    #[test]
    fn splitmix64_reference_stream() {
        // First outputs for seed 0 (Vigna's reference splitmix64.c).
        let mut r = Rng(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement 220d).
        assert_eq!(
            fold(sum16(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0)),
            !0xddf2
        );
        // Odd length pads with a zero byte.
        assert_eq!(fold(sum16(&[0x01], 0)), !0x0100);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, ta) = gen_bytes("enterprise", 7, 0.002);
        let (b, tb) = gen_bytes("enterprise", 7, 0.002);
        let (c, _) = gen_bytes("enterprise", 8, 0.002);
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_ne!(a, c);
    }

    #[test]
    fn every_frame_has_valid_checksums() {
        for profile in ["enterprise", "dns", "handshakes"] {
            let (pcap, truth) = gen_bytes(profile, 3, 0.002);
            let fs = frames(&pcap);
            assert_eq!(fs.len() as u64, truth["packets"].as_u64().unwrap());
            for f in fs {
                let p = etherparse::SlicedPacket::from_ethernet(f).expect("parses");
                let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
                    panic!("not ipv4")
                };
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                match &p.transport {
                    Some(etherparse::TransportSlice::Tcp(t)) => {
                        let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
                        assert_eq!(t.checksum(), want);
                    }
                    Some(etherparse::TransportSlice::Udp(u)) => {
                        let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
                        assert_eq!(u.checksum(), want);
                        assert_eq!(usize::from(u.length()), 8 + u.payload().len());
                    }
                    _ => panic!("no transport"),
                }
            }
        }
    }

    #[test]
    fn client_hello_parses_with_the_sni() {
        let mut rng = Rng(5);
        let pool: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        for pq in [false, true] {
            let mut ch = Vec::new();
            client_hello(&mut rng, &pool, "dc1.ksn.kaspersky-labs.com", pq, &mut ch);
            if pq {
                assert!(ch.len() > MSS && ch.len() < 2 * MSS, "{}", ch.len());
            } else {
                assert_eq!(ch.len(), 5 + 512);
            }
            let (rest, rec) = tls_parser::parse_tls_plaintext(&ch).expect("record");
            assert!(rest.is_empty());
            let Some(tls_parser::TlsMessage::Handshake(
                tls_parser::TlsMessageHandshake::ClientHello(hello),
            )) = rec.msg.first()
            else {
                panic!("not a ClientHello")
            };
            let (rest, exts) = tls_parser::parse_tls_client_hello_extensions(hello.ext.unwrap())
                .expect("extensions");
            assert!(rest.is_empty());
            let sni: Vec<&[u8]> = exts
                .iter()
                .filter_map(|e| match e {
                    tls_parser::TlsExtension::SNI(v) => Some(v[0].1),
                    _ => None,
                })
                .collect();
            assert_eq!(sni, vec![&b"dc1.ksn.kaspersky-labs.com"[..]]);
        }
    }

    #[test]
    fn dns_response_chain_uses_pointers() {
        let mut m = Vec::new();
        let answers = [Rr::Cname("b.example.net"), Rr::A([1, 2, 3, 4])];
        dns_response(
            &mut m,
            0x1234,
            "a.example.com",
            QTYPE_A,
            false,
            0,
            &answers,
            60,
        );
        // Header: id, flags 8180, 1 question, 2 answers.
        assert_eq!(&m[..12], &[0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]);
        let q_end = 12 + 15 + 4;
        assert_eq!(&m[q_end..q_end + 2], &[0xc0, 0x0c]);
        // The A record's owner points at the CNAME target (after 2+2+2+4+2 bytes of the RR).
        let target_at = q_end + 12;
        let a_at = target_at + 15;
        assert_eq!(
            &m[a_at..a_at + 2],
            &(0xc000u16 | target_at as u16).to_be_bytes()
        );
        assert_eq!(&m[m.len() - 4..], &[1, 2, 3, 4]);
    }

    #[test]
    fn kaspersky_lists_are_kaspersky_and_decoys_are_not() {
        for n in KASPERSKY_NAMES.iter().chain(KASPERSKY_HTTP_NAMES) {
            assert!(is_kaspersky(n), "{n}");
        }
        for (_, t) in ALIASES_TO_KASPERSKY.iter().chain(KASPERSKY_TO_KASPERSKY) {
            assert!(is_kaspersky(t), "{t}");
        }
        for n in DECOY_NAMES
            .iter()
            .chain(ALIASES_TO_KASPERSKY.iter().map(|(a, _)| a))
        {
            assert!(!is_kaspersky(n), "{n}");
        }
    }

    #[test]
    fn tls_server_stream_records_tile_the_stream() {
        let mut rng = Rng(1);
        let mut o = PcapOut::new(Vec::new(), &mut rng).unwrap();
        let head = vec![0xaa; 133];
        for bulk in [1usize, 5, 16406, 16407, 16410, 40_000] {
            let total = tls_stream_len(head.len(), bulk);
            o.frame.clear();
            let mut off = 0;
            while off < total {
                let n = (total - off).min(MSS);
                server_stream(&mut o, &head, total, App::Tls, off, n);
                off += n;
            }
            assert_eq!(o.frame.len(), total);
            // Walk the records after the head: they end exactly at the stream end.
            let mut at = head.len();
            while at < total {
                assert_eq!(&o.frame[at..at + 3], &[0x17, 3, 3], "bulk {bulk} at {at}");
                at += 5 + usize::from(u16::from_be_bytes([o.frame[at + 3], o.frame[at + 4]]));
            }
            assert_eq!(at, total, "bulk {bulk}");
        }
    }
}
