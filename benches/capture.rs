//! Capture file reading speed: `ksensor::capture::file::FileSource` against libpcap's
//! `pcap_next_ex` (through the `pcap` crate) and against a bare `read()`-into-a-buffer walk of
//! the same records, which is the floor any reader can reach.
//!
//! Input: the classic pcap named by `KSENSOR_BENCH_PCAP`, or a 200 MB one generated with
//! `PcapWriter` into a temporary directory. Each reader runs `KSENSOR_BENCH_ROUNDS` times
//! (default 3) over the page-cached file; the best round is reported as packets/s and MB/s, by
//! CPU time of the benchmark thread (from `/proc/thread-self/schedstat`, so that other load on
//! a shared machine does not count) and by wall time.
//! Also reported: SHA-256 alone over the file, since `FileSource` hashes every byte it reads by
//! default, and `FileSource` with hashing turned off.
//!
//! Run with `cargo bench --bench capture`.

use std::error::Error;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ksensor::capture::file::{FileOptions, FileSource, PcapWriter, TsResolution};
use ksensor::capture::{LinkType, PacketSource, SourceStatus};
use ksensor::time::Timestamp;
use sha2::{Digest, Sha256};

/// Size of the generated capture: large enough that a round takes a good fraction of a second.
const GENERATED_BYTES: u64 = 200_000_000;
/// Read size of the bare walk and of the hash-only pass, the same as `FileSource`'s buffer.
const WALK_BUF_LEN: usize = 1 << 20;
/// Packets asked from `FileSource` per call, as the pipeline does.
const BATCH: usize = 256;

/// One way of reading the file.
type Reader = fn(&Path) -> Result<Tally, Box<dyn Error>>;

/// What one pass over the file saw; compared between readers so none can cheat.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Tally {
    packets: u64,
    bytes: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let rounds: usize = std::env::var("KSENSOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let _dir; // keeps a generated file alive until the end
    let path = match std::env::var_os("KSENSOR_BENCH_PCAP") {
        Some(p) => PathBuf::from(p),
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("bench.pcap");
            generate(&path)?;
            _dir = dir;
            path
        }
    };
    let size = std::fs::metadata(&path)?.len();
    println!("capture: {} ({:.1} MB)", path.display(), size as f64 / 1e6);
    // Warm the page cache so every reader starts alike.
    hash_only(&path)?;

    let mut expected = None;
    let readers: [(&str, Reader); 5] = [
        ("bare read() walk", bare_walk),
        ("sha256 only", hash_only),
        ("libpcap pcap_next_ex", libpcap),
        ("FileSource, no sha256", file_source_no_hash),
        ("FileSource (default, sha256)", file_source),
    ];
    println!(
        "{:<28} {:>9} {:>17} {:>9} {:>9}",
        "reader", "cpu ms", "packets/s (cpu)", "MB/s cpu", "wall ms"
    );
    for (name, reader) in readers {
        let mut best_cpu = Duration::MAX;
        let mut best_wall = Duration::MAX;
        let mut tally = Tally {
            packets: 0,
            bytes: 0,
        };
        for _ in 0..rounds.max(1) {
            let cpu = thread_cpu_time();
            let start = Instant::now();
            tally = reader(&path)?;
            best_wall = best_wall.min(start.elapsed());
            if let (Some(before), Some(after)) = (cpu, thread_cpu_time()) {
                best_cpu = best_cpu.min(after.saturating_sub(before));
            }
        }
        if tally.packets > 0 {
            match expected {
                None => expected = Some(tally),
                Some(want) if want != tally => {
                    return Err(format!("{name} saw {tally:?}, expected {want:?}").into())
                }
                Some(_) => {}
            }
        }
        if tally.packets == 0 && name == "bare read() walk" {
            println!("{name:<28} (only for little-endian classic pcap)");
            continue;
        }
        // Without schedstat (not Linux), fall back to wall time.
        let secs = if best_cpu == Duration::MAX {
            best_wall.as_secs_f64()
        } else {
            best_cpu.as_secs_f64()
        };
        let pps = if tally.packets > 0 {
            format!("{:.2} M", tally.packets as f64 / secs / 1e6)
        } else {
            "-".to_string()
        };
        println!(
            "{name:<28} {:>9.1} {pps:>17} {:>9.0} {:>9.1}",
            secs * 1e3,
            size as f64 / secs / 1e6,
            best_wall.as_secs_f64() * 1e3
        );
    }
    if let Some(t) = expected {
        println!(
            "{} packets, {} captured bytes, {rounds} rounds",
            t.packets, t.bytes
        );
    }
    Ok(())
}

/// Writes a capture of Ethernet-sized packets: a mix of ACK-sized, DNS-sized and full-MTU
/// frames, like the traffic the sensor watches.
fn generate(path: &Path) -> Result<(), Box<dyn Error>> {
    let sizes = [66usize, 1514, 120, 1514, 66, 590, 1514, 66];
    let frame = vec![0x42u8; 1514];
    let out = BufWriter::with_capacity(WALK_BUF_LEN, File::create(path)?);
    let mut w = PcapWriter::new(out, LinkType::ETHERNET, 65_535, TsResolution::Micros)?;
    let mut written = 0u64;
    let mut ts = Timestamp::from_secs_nanos(1_700_000_000, 0);
    let mut i = 0usize;
    while written < GENERATED_BYTES {
        let len = sizes[i % sizes.len()];
        w.write_packet(ts, &frame[..len], len as u32)?;
        written += 16 + len as u64;
        ts = Timestamp(ts.0 + 10_000);
        i += 1;
    }
    w.finish()?;
    Ok(())
}

fn file_source(path: &Path) -> Result<Tally, Box<dyn Error>> {
    read_with(path, FileOptions::default())
}

fn file_source_no_hash(path: &Path) -> Result<Tally, Box<dyn Error>> {
    read_with(
        path,
        FileOptions {
            digest: Default::default(),
        },
    )
}

fn read_with(path: &Path, options: FileOptions) -> Result<Tally, Box<dyn Error>> {
    let mut source = FileSource::open_with(path, 0, options).map_err(|e| e.to_string())?;
    let mut tally = Tally {
        packets: 0,
        bytes: 0,
    };
    let mut sink = |_meta: ksensor::capture::PacketMeta, data: &[u8]| {
        tally.packets += 1;
        tally.bytes += data.len() as u64;
        black_box(data);
    };
    while source
        .next_packets(BATCH, &mut sink)
        .map_err(|e| e.to_string())?
        != SourceStatus::End
    {}
    black_box(source.sha256_hex());
    Ok(tally)
}

fn libpcap(path: &Path) -> Result<Tally, Box<dyn Error>> {
    let mut cap = pcap::Capture::from_file(path)?;
    let mut tally = Tally {
        packets: 0,
        bytes: 0,
    };
    loop {
        match cap.next_packet() {
            Ok(p) => {
                tally.packets += 1;
                tally.bytes += p.data.len() as u64;
                black_box(p.data);
            }
            Err(pcap::Error::NoMorePackets) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(tally)
}

/// The floor: large reads into one buffer, 16-byte little-endian record headers walked in
/// place, a partial record moved to the front before the next read. No checks beyond bounds.
fn bare_walk(path: &Path) -> Result<Tally, Box<dyn Error>> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; WALK_BUF_LEN];
    let mut tally = Tally {
        packets: 0,
        bytes: 0,
    };
    // Only little-endian classic pcap (as generated); other formats report no packets.
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)?;
    if magic != [0xd4, 0xc3, 0xb2, 0xa1] && magic != [0x4d, 0x3c, 0xb2, 0xa1] {
        return Ok(tally);
    }
    // Skip the rest of the 24-byte file header.
    let (mut start, mut end) = (20usize, 0usize);
    loop {
        let n = file.read(&mut buf[end..])?;
        if n == 0 {
            break;
        }
        end += n;
        while end.saturating_sub(start) >= 16 {
            let hdr = &buf[start..start + 16];
            let caplen = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
            if end - start < 16 + caplen {
                break;
            }
            let data = &buf[start + 16..start + 16 + caplen];
            tally.packets += 1;
            tally.bytes += data.len() as u64;
            black_box(data);
            start += 16 + caplen;
        }
        if start <= end {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
    }
    Ok(tally)
}

fn hash_only(path: &Path) -> Result<Tally, Box<dyn Error>> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; WALK_BUF_LEN];
    let mut hasher = Sha256::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    black_box(hasher.finalize());
    Ok(Tally {
        packets: 0,
        bytes: 0,
    })
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds, first field).
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}
