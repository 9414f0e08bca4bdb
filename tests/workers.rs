//! Results do not depend on the number of workers, on an input large enough that the file
//! reader lends many read buffers to the workers (zero-copy hand-over, `capture::chunk`) with one
//! worker, and that the workers read many segments of it themselves with several
//! (`pipeline::walk`).
//!
//! The input is made from the real captures in `pcaps/`: every Ethernet packet of them, replayed
//! in rounds an hour of capture time apart (so each round's flows start afresh) until the file
//! is several times the reader's buffer size.

mod common;

use std::io::BufWriter;
use std::path::Path;
use std::time::Duration;

use common::{ksensor, pcaps_dir, repo_root};
use ksensor::capture::file::{FileSource, PcapWriter, TsResolution, READ_BUF_LEN};
use ksensor::capture::segmented::SEGMENT_LEN;
use ksensor::capture::{LinkType, PacketSource, SourceStatus};
use ksensor::time::Timestamp;

/// Capture time between rounds: longer than every flow timeout, so rounds do not interact.
const ROUND_GAP: Duration = Duration::from_secs(3_600);
/// Size the built input must reach: several read buffers of the stream reader, several
/// segments of the workers' walk.
const INPUT_BYTES: usize = if 6 * READ_BUF_LEN > 4 * SEGMENT_LEN {
    6 * READ_BUF_LEN
} else {
    4 * SEGMENT_LEN
};

/// Every Ethernet packet of the bundled captures, in file-name order, with times relative to
/// the start of its capture.
fn real_packets() -> Vec<(Duration, Vec<u8>)> {
    let mut names: Vec<_> = std::fs::read_dir(repo_root().join(pcaps_dir()))
        .expect("pcaps/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    names.sort();
    let mut packets = Vec::new();
    for path in names {
        let Ok(mut source) = FileSource::open(&path, 0) else {
            continue;
        };
        let mut first: Option<Timestamp> = None;
        while let Ok(SourceStatus::More) = source.next_packets(256, &mut |meta, data| {
            if meta.link == LinkType::ETHERNET {
                let start = *first.get_or_insert(meta.ts);
                packets.push((meta.ts.saturating_sub(start), data.to_vec()));
            }
        }) {}
    }
    packets
}

/// Writes the rounds; returns how many.
fn build_input(path: &Path) -> u64 {
    let packets = real_packets();
    let round_bytes: usize = packets.iter().map(|(_, d)| d.len() + 16).sum();
    assert!(
        round_bytes > 10_000,
        "too few real packets: {round_bytes} bytes"
    );
    let file = std::fs::File::create(path).expect("create input");
    let mut w = PcapWriter::new(
        BufWriter::new(file),
        LinkType::ETHERNET,
        262_144,
        TsResolution::Micros,
    )
    .expect("pcap header");
    let start = Timestamp::from_secs_nanos(1_790_000_000, 0);
    let rounds = INPUT_BYTES.div_ceil(round_bytes) as u64;
    for round in 0..rounds {
        let base = start.saturating_add(ROUND_GAP * round as u32);
        for (offset, data) in &packets {
            w.write_packet(base.saturating_add(*offset), data, data.len() as u32)
                .expect("write packet");
        }
    }
    w.finish().expect("flush input");
    rounds
}

fn replay(dir: &Path, input: &Path, workers: &str) -> (String, String) {
    let (events, report) = (dir.join("events.json"), dir.join("report.json"));
    let out = ksensor()
        .args(["replay", "--quiet", "--workers", workers])
        .arg("--events")
        .arg(&events)
        .arg("--report")
        .arg(&report)
        .arg(input)
        .output()
        .expect("running ksensor");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| std::fs::read_to_string(p).expect("output file");
    (read(&events), read(&report))
}

#[test]
fn lent_read_buffers_give_the_same_results_for_any_worker_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("rounds.pcap");
    let rounds = build_input(&input);
    let size = std::fs::metadata(&input).expect("input").len();
    assert!(size > INPUT_BYTES as u64, "{size}");

    let (events, report) = replay(dir.path(), &input, "1");
    // Every round detects what the bundled captures hold: at least one event per round.
    let lines = events.lines().count() as u64;
    assert!(lines >= rounds, "{lines} events for {rounds} rounds");
    for workers in ["2", "3", "8"] {
        let (e, r) = replay(dir.path(), &input, workers);
        assert!(e == events, "events differ with --workers {workers}");
        assert!(r == report, "report differs with --workers {workers}");
    }
}
