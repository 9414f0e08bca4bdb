//! Damaged and hostile capture files through the real binary.
//!
//! Each case writes a crafted file to a temp dir, runs `ksensor replay --report -` on it and
//! checks the contract of the README ("Exit codes"): damage that stops reading gives exactly one
//! stderr line naming the file and where (byte offset and packet), exit code 3, the damage in
//! the report's `inputs[].error`, and every detection made before the damage kept; damage that
//! does not stop reading is a counted note (`inputs[].notes`) or a counted skip
//! (`counters.skipped`), exit code 0. Most cases start from `pcaps/tls-sni.pcap`, whose 144
//! packets carry four Kaspersky ClientHellos, so "results before the damage kept" is checked
//! against a known count.

mod support;

use std::path::Path;

use support::{
    pcap_file, pcap_header, pcap_record, pcapng_block, pcapng_epb, pcapng_start, read_pcap, replay,
    Garbage, Packet, Run, Scratch,
};

/// The base capture and what it yields.
const BASE: &str = "tls-sni.pcap";
const BASE_PACKETS: u64 = 144;
const BASE_DETECTIONS: u64 = 4;
/// Its file length (24-byte header and 144 records): where appended damage starts.
const BASE_FILE_LEN: u64 = 47363;

fn base() -> (u32, Vec<Packet>) {
    read_pcap(BASE)
}

fn base_file() -> Vec<u8> {
    let (link, packets) = base();
    let file = pcap_file(link, 262_144, &packets);
    assert_eq!(file.len() as u64, BASE_FILE_LEN);
    file
}

/// Exit code 3, one stderr line naming the file that contains every `words`, the same error in
/// the report, and the packets and detections before the damage kept.
fn assert_damaged(run: &Run, file: &Path, input: usize, words: &[&str]) {
    let name = file.display().to_string();
    assert_eq!(run.code, Some(3), "exit code; stderr: {}", run.stderr);
    let lines = run.stderr_lines_naming(&name);
    assert_eq!(lines.len(), 1, "stderr lines naming {name}: {}", run.stderr);
    for w in words {
        assert!(lines[0].contains(w), "{w:?} missing from {:?}", lines[0]);
    }
    let error = run.input(input)["error"].as_str().unwrap_or_default();
    assert!(
        !error.is_empty(),
        "no error in the report: {}",
        run.input(input)
    );
    assert!(
        lines[0].ends_with(error),
        "stderr {:?} vs report {error:?}",
        lines[0]
    );
}

fn assert_clean(run: &Run) {
    assert_eq!(run.code, Some(0), "exit code; stderr: {}", run.stderr);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
    assert!(run.input(0)["error"].is_null());
}

fn note(run: &Run, label: &str) -> u64 {
    run.input(0)["notes"][label].as_u64().unwrap_or(0)
}

#[test]
fn the_base_capture_is_clean() {
    let s = Scratch::new();
    let path = s.write("base.pcap", &base_file());
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(run.input(0)["packets"], BASE_PACKETS);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn empty_file() {
    let s = Scratch::new();
    let path = s.write("empty.pcap", b"");
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["empty"]);
    assert_eq!(run.input(0)["packets"], 0);
}

#[test]
fn wrong_magic() {
    let s = Scratch::new();
    let mut file = base_file();
    file[..4].copy_from_slice(b"GET ");
    let path = s.write("http.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["not a pcap"]);
    assert_eq!(run.detections(), 0);
}

#[test]
fn truncated_global_header() {
    let s = Scratch::new();
    for len in [1, 4, 10, 23] {
        let path = s.write(&format!("header{len}.pcap"), &base_file()[..len]);
        let run = replay(&[&path], &[]);
        assert_damaged(&run, &path, 0, &["truncated", "offset 0"]);
    }
}

#[test]
fn truncated_record_header_keeps_earlier_detections() {
    let s = Scratch::new();
    let mut file = base_file();
    file.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
    let path = s.write("cut-header.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["truncated", "offset 47363", "packet 145"]);
    assert_eq!(run.input(0)["packets"], BASE_PACKETS);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn truncated_record_body_keeps_earlier_detections() {
    let s = Scratch::new();
    let mut file = base_file();
    file.extend(pcap_record(1, 0, 1000, 1000, &[0xab; 100]));
    let path = s.write("cut-body.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["truncated", "offset 47363", "packet 145"]);
    assert_eq!(run.detections(), BASE_DETECTIONS);
    // The whole file was still hashed.
    assert_eq!(run.input(0)["file_bytes"], BASE_FILE_LEN + 116);
}

#[test]
fn file_cut_at_every_record_boundary_and_inside() {
    // Cut the base capture inside its last ClientHello record: the detections of the earlier
    // hellos stay, the error names the record that was cut.
    let s = Scratch::new();
    let file = base_file();
    for cut in [24 + 8, file.len() / 2, file.len() - 1] {
        let path = s.write(&format!("cut{cut}.pcap"), &file[..cut]);
        let run = replay(&[&path], &[]);
        assert_damaged(&run, &path, 0, &["truncated", "packet"]);
        assert!(run.detections() <= BASE_DETECTIONS);
    }
    let run = replay(&[&s.write("last.pcap", &file[..file.len() - 1])], &[]);
    assert_eq!(run.detections(), BASE_DETECTIONS);
    assert_eq!(run.input(0)["packets"], BASE_PACKETS - 1);
}

#[test]
fn captured_length_over_256_kib_is_corrupt() {
    let s = Scratch::new();
    let mut file = base_file();
    file.extend(pcap_record(1, 0, 300_000, 300_000, &[0; 64]));
    let path = s.write("huge.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_damaged(
        &run,
        &path,
        0,
        &[
            "corrupt",
            "captured length too large",
            "offset 47363",
            "packet 145",
        ],
    );
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn captured_length_over_snaplen_is_noted_and_delivered() {
    let s = Scratch::new();
    let (link, packets) = base();
    // A snap length below the largest packet: every longer packet is over it.
    let file = pcap_file(link, 200, &packets);
    let over = packets.iter().filter(|p| p.data.len() > 200).count() as u64;
    assert!(over > 0);
    let path = s.write("snaplen.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(note(&run, "caplen_over_snaplen"), over);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn zero_length_packets_are_skipped_and_counted() {
    let s = Scratch::new();
    let (link, packets) = base();
    let mut file = pcap_header(link, 262_144);
    for p in &packets {
        file.extend(pcap_record(p.secs, p.micros, 0, 60, &[]));
        file.extend(pcap_record(
            p.secs,
            p.micros,
            p.data.len() as u32,
            p.orig_len,
            &p.data,
        ));
    }
    let path = s.write("zero.pcap", &file);
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(note(&run, "zero_length_packet"), BASE_PACKETS);
    assert_eq!(run.input(0)["packets"], BASE_PACKETS);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn timestamps_going_backwards_are_noted() {
    let s = Scratch::new();
    let (link, mut packets) = base();
    // Every 10th packet an hour in the past.
    let mut backwards = 0;
    for (i, p) in packets.iter_mut().enumerate() {
        if i % 10 == 5 {
            p.secs -= 3600;
            backwards += 1;
        }
    }
    let path = s.write("backwards.pcap", &pcap_file(link, 262_144, &packets));
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(note(&run, "timestamp_backwards"), backwards);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn pcapng_unknown_block_types_are_skipped_and_counted() {
    let s = Scratch::new();
    let (link, packets) = base();
    let mut file = pcapng_start(link as u16, 0);
    for (i, p) in packets.iter().enumerate() {
        if i % 3 == 0 {
            file.extend(pcapng_block(0x0000_7777, b"not a block we know"));
        }
        file.extend(pcapng_epb(p));
    }
    let path = s.write("unknown.pcapng", &file);
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(note(&run, "unknown_block_type"), BASE_PACKETS.div_ceil(3));
    assert_eq!(run.input(0)["packets"], BASE_PACKETS);
    assert_eq!(run.detections(), BASE_DETECTIONS);
}

#[test]
fn pcapng_bad_block_lengths_are_corrupt() {
    let s = Scratch::new();
    let (link, packets) = base();
    let mut good = pcapng_start(link as u16, 0);
    for p in &packets {
        good.extend(pcapng_epb(p));
    }
    let damage_at = good.len();
    let cases: [(&str, Vec<u8>); 3] = [
        // Total length below the 12-byte minimum.
        (
            "short",
            [6u32, 8, 8].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        // Not a multiple of 4.
        ("unaligned", {
            let mut b = pcapng_epb(&packets[0]);
            let n = b.len() as u32 + 1;
            b[4..8].copy_from_slice(&n.to_le_bytes());
            b
        }),
        // Trailing length differs from the leading one.
        ("trailer", {
            let mut b = pcapng_epb(&packets[0]);
            let n = b.len();
            b[n - 4..].copy_from_slice(&4u32.to_le_bytes());
            b
        }),
    ];
    for (what, damage) in cases {
        let mut file = good.clone();
        file.extend(damage);
        file.extend(pcapng_epb(&packets[0]));
        let path = s.write(&format!("{what}.pcapng"), &file);
        let run = replay(&[&path], &[]);
        assert_damaged(
            &run,
            &path,
            0,
            &[
                "bad block length",
                &format!("offset {damage_at}"),
                "packet 145",
            ],
        );
        assert_eq!(run.input(0)["packets"], BASE_PACKETS, "{what}");
        assert_eq!(run.detections(), BASE_DETECTIONS, "{what}");
    }
}

#[test]
fn snaplen_truncated_packets_headers_only() {
    // Cut every packet to its Ethernet, IPv4 and TCP headers (the snap length tcpdump -s 66
    // would give): no name can be found, nothing fails, the cuts are counted.
    let s = Scratch::new();
    let (link, mut packets) = base();
    for p in &mut packets {
        p.data.truncate(66);
    }
    let path = s.write("headers.pcap", &pcap_file(link, 66, &packets));
    let run = replay(&[&path], &[]);
    assert_clean(&run);
    assert_eq!(run.counter(&["packets"]), BASE_PACKETS);
    // SYNs carry 20 bytes of TCP options: their TCP header itself is cut, a counted skip.
    let cut_header = run.counter(&["skipped", "decode", "truncated_transport"]);
    assert!(cut_header > 0);
    assert_eq!(run.counter(&["decoded"]) + cut_header, BASE_PACKETS);
    let cut_payload = packets.iter().filter(|p| p.orig_len > 66).count() as u64 - cut_header;
    assert!(cut_payload > 0);
    assert_eq!(run.counter(&["truncated_by_snaplen"]), cut_payload);
    assert_eq!(run.detections(), 0);
}

#[test]
fn every_link_type_with_garbage_payload() {
    // Each supported link type (and one unsupported), 500 packets of random bytes of random
    // lengths: every packet is decoded or counted under a decode skip, exit 0.
    const PACKETS: u64 = 500;
    let s = Scratch::new();
    for link in [0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147] {
        let mut g = Garbage::new(u64::from(link) + 1);
        let packets: Vec<Packet> = (0..PACKETS)
            .map(|i| {
                let len = 1 + (g.next_u64() % 1600) as usize;
                let data = g.bytes(len);
                Packet {
                    secs: 1_700_000_000,
                    micros: i as u32,
                    orig_len: len as u32,
                    data,
                }
            })
            .collect();
        let path = s.write(
            &format!("garbage-{link}.pcap"),
            &pcap_file(link, 65535, &packets),
        );
        let run = replay(&[&path], &[]);
        assert_clean(&run);
        assert_eq!(run.counter(&["packets"]), PACKETS, "link {link}");
        let skipped: u64 = run.report["counters"]["skipped"]["decode"]
            .as_object()
            .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
            .unwrap_or(0);
        assert_eq!(
            run.counter(&["decoded"]) + skipped,
            PACKETS,
            "link {link}: decoded + skipped"
        );
        if link == 147 {
            assert_eq!(
                run.report["counters"]["skipped"]["decode"]["unsupported_link_type"],
                PACKETS
            );
        }
    }
}

#[test]
fn missing_file() {
    let s = Scratch::new();
    let path = s.dir.path().join("no-such.pcap");
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["no such file or directory"]);
    assert!(!run.stderr.contains("entity"), "{}", run.stderr);
}

#[test]
fn directory_given_as_a_file() {
    let s = Scratch::new();
    let path = s.dir.path().join("adir");
    std::fs::create_dir(&path).expect("mkdir");
    let run = replay(&[&path], &[]);
    assert_damaged(&run, &path, 0, &["is a directory"]);
}

#[test]
fn second_file_damaged_keeps_the_first_files_detections() {
    let s = Scratch::new();
    let first = s.write("good.pcap", &base_file());
    let mut damaged = base_file();
    damaged.truncate(BASE_FILE_LEN as usize / 3);
    let second = s.write("bad.pcap", &damaged);
    let run = replay(&[&first, &second], &[]);
    assert_damaged(&run, &second, 1, &["truncated", "packet"]);
    assert!(run.stderr_lines_naming("good.pcap").is_empty());
    assert!(run.input(0)["error"].is_null());
    assert_eq!(run.input(0)["packets"], BASE_PACKETS);
    assert!(run.detections() >= BASE_DETECTIONS);
}

#[test]
fn damaged_file_between_good_ones_does_not_stop_the_run() {
    let s = Scratch::new();
    let good = s.write("good.pcap", &base_file());
    let bad = s.write("bad.pcap", b"\xd4\xc3\xb2");
    let run = replay(&[&good, &bad, &good], &[]);
    assert_damaged(&run, &bad, 1, &["truncated"]);
    assert_eq!(run.input(2)["packets"], BASE_PACKETS);
    assert!(run.input(2)["error"].is_null());
}
