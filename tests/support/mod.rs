//! Helpers for the hostile-input tests: run the real `ksensor` binary on files written to a temp
//! dir, build classic pcap and pcapng files byte by byte (so that they can be damaged exactly),
//! and read the packets of the committed captures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one `ksensor replay --report -` run gave.
pub struct Run {
    pub code: Option<i32>,
    pub report: Value,
    pub stderr: String,
}

impl Run {
    /// stderr lines that mention `needle` (a file name).
    pub fn stderr_lines_naming(&self, needle: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(needle)).collect()
    }

    pub fn input(&self, i: usize) -> &Value {
        &self.report["inputs"][i]
    }

    pub fn detections(&self) -> u64 {
        self.report["counters"]["detections"].as_u64().unwrap_or(0)
    }

    pub fn counter(&self, path: &[&str]) -> u64 {
        let mut v = &self.report["counters"];
        for p in path {
            v = &v[*p];
        }
        v.as_u64().unwrap_or(0)
    }
}

/// Runs `ksensor replay --quiet --workers 1 --report - [args] files…` from the repository root.
pub fn replay(files: &[&Path], args: &[&str]) -> Run {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_ksensor"))
        .current_dir(repo_root())
        .args(["replay", "--quiet", "--workers", "1", "--report", "-"])
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("running ksensor: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}; stderr: {stderr}",
            out.status.code()
        )
    });
    Run {
        code: out.status.code(),
        report,
        stderr,
    }
}

/// One packet of a capture: seconds, microseconds, captured bytes, original length.
#[derive(Clone, Debug)]
pub struct Packet {
    pub secs: u32,
    pub micros: u32,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

/// The packets of a committed little-endian microsecond pcap (the format of `pcaps/*.pcap`
/// written by tcpdump on this machine) and its link type.
pub fn read_pcap(name: &str) -> (u32, Vec<Packet>) {
    let path = repo_root().join("pcaps").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "{name}: not LE microsecond pcap"
    );
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let link = u32_at(&bytes, 20);
    let mut packets = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let caplen = u32_at(&bytes, off + 8) as usize;
        packets.push(Packet {
            secs: u32_at(&bytes, off),
            micros: u32_at(&bytes, off + 4),
            data: bytes[off + 16..off + 16 + caplen].to_vec(),
            orig_len: u32_at(&bytes, off + 12),
        });
        off += 16 + caplen;
    }
    (link, packets)
}

/// Classic pcap global header (draft-ietf-opsawg-pcap §4), little endian, microseconds.
pub fn pcap_header(link: u32, snaplen: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&link.to_le_bytes());
    out
}

/// One classic pcap record with explicit caplen (which may lie about `data`).
pub fn pcap_record(secs: u32, micros: u32, caplen: u32, orig_len: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + data.len());
    for v in [secs, micros, caplen, orig_len] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// A whole pcap file of `packets`.
pub fn pcap_file(link: u32, snaplen: u32, packets: &[Packet]) -> Vec<u8> {
    let mut out = pcap_header(link, snaplen);
    for p in packets {
        out.extend(pcap_record(
            p.secs,
            p.micros,
            p.data.len() as u32,
            p.orig_len,
            &p.data,
        ));
    }
    out
}

/// A pcapng block (draft-ietf-opsawg-pcapng §3.1), little endian, body padded to 4 bytes.
pub fn pcapng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// Section Header Block (§4.1) and one Interface Description Block (§4.2).
pub fn pcapng_start(link: u16, snaplen: u32) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut out = pcapng_block(0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&snaplen.to_le_bytes());
    out.extend(pcapng_block(1, &idb));
    out
}

/// Enhanced Packet Block (§4.3) on interface 0, microsecond timestamps.
pub fn pcapng_epb(p: &Packet) -> Vec<u8> {
    let ts = u64::from(p.secs) * 1_000_000 + u64::from(p.micros);
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(ts as u32).to_le_bytes());
    body.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
    body.extend_from_slice(&p.orig_len.to_le_bytes());
    body.extend_from_slice(&p.data);
    pcapng_block(6, &body)
}

/// A scratch directory and files in it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write capture");
        path
    }
}

/// A small deterministic generator (xorshift64*), so that "garbage" inputs are reproducible.
pub struct Garbage(u64);

impl Garbage {
    pub fn new(seed: u64) -> Self {
        Garbage(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
