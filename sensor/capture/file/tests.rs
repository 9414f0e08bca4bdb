//! Tests of the capture file reader and writer: crafted pcap and pcapng files, damage at
//! every offset, reads of every size.

use std::io::{self, Cursor, Read};

use super::pcap::*;
use super::pcapng::*;
use super::*;
use crate::capture::digest::{DigestAlgorithm, DigestOptions, EdgeHashes, FileDigest};
use crate::capture::{CorruptKind, LinkType};

/// One delivered packet, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Got {
    ts: u64,
    link: u32,
    orig_len: u32,
    data: Vec<u8>,
}

fn got(ts: u64, link: u32, orig_len: u32, data: &[u8]) -> Got {
    Got {
        ts,
        link,
        orig_len,
        data: data.to_vec(),
    }
}

/// Everything one read of a capture produced.
struct Run {
    packets: Vec<Got>,
    end: Result<(), CaptureError>,
    stats: FileStats,
    sha: Option<String>,
    format: Option<FileFormat>,
}

/// Reads at most this many batches, so a looping reader fails the test instead of hanging.
const TEST_MAX_BATCHES: usize = 1_000_000;

fn run_reader(reader: Box<dyn Read + Send>, batch: usize) -> Run {
    let mut source = match FileSource::from_reader(reader, 3) {
        Ok(source) => source,
        Err(e) => {
            return Run {
                packets: Vec::new(),
                end: Err(e),
                stats: FileStats::default(),
                sha: None,
                format: None,
            }
        }
    };
    let mut packets = Vec::new();
    let mut end = Ok(());
    let mut sink = |meta: PacketMeta, data: &[u8]| {
        assert_eq!(meta.input, 3);
        packets.push(got(meta.ts.0, meta.link.0, meta.orig_len, data));
    };
    let mut batches = 0;
    loop {
        assert!(batches < TEST_MAX_BATCHES, "source never ends");
        batches += 1;
        assert_eq!(source.sha256_hex(), None, "hash before the end");
        match source.next_packets(batch, &mut sink) {
            Ok(SourceStatus::More) => {}
            Ok(SourceStatus::Idle) => panic!("a file is never idle"),
            Ok(SourceStatus::End) => break,
            Err(e) => {
                end = Err(e);
                break;
            }
        }
    }
    // A finished source stays finished.
    assert_eq!(source.next_packets(batch, &mut sink), Ok(SourceStatus::End));
    Run {
        packets,
        end,
        stats: source.stats().clone(),
        sha: source.sha256_hex(),
        format: Some(source.format()),
    }
}

fn run(bytes: &[u8]) -> Run {
    run_reader(Box::new(Cursor::new(bytes.to_vec())), 64)
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hands out at most `chunk` bytes per `read()` call.
struct ChunkReader {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.at..).unwrap_or(&[]);
        let n = rest.len().min(out.len()).min(self.chunk);
        out[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

fn chunked(bytes: &[u8], chunk: usize) -> Box<dyn Read + Send> {
    Box::new(ChunkReader {
        data: bytes.to_vec(),
        at: 0,
        chunk,
    })
}

/// Gives `good` bytes, then fails every read with `kind`.
struct FailingReader {
    good: Cursor<Vec<u8>>,
    kind: io::ErrorKind,
}

impl Read for FailingReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.good.read(out)? {
            0 => Err(io::Error::new(self.kind, "test")),
            n => Ok(n),
        }
    }
}

/// Fails every other read with `Interrupted`, and reads 100 bytes at a time.
struct InterruptingReader {
    data: Cursor<Vec<u8>>,
    interrupt: bool,
}

impl Read for InterruptingReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "signal"));
        }
        let n = out.len().min(100);
        self.data.read(&mut out[..n])
    }
}

// ---- classic pcap builders ----

fn written(resolution: TsResolution, link: LinkType, packets: &[(u64, &[u8], u32)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), link, 65_535, resolution).unwrap();
    for (ts, data, orig) in packets {
        w.write_packet(Timestamp(*ts), data, *orig).unwrap();
    }
    w.finish().unwrap()
}

fn put16(v: &mut Vec<u8>, order: ByteOrder, x: u16) {
    match order {
        ByteOrder::Little => v.extend_from_slice(&x.to_le_bytes()),
        ByteOrder::Big => v.extend_from_slice(&x.to_be_bytes()),
    }
}

fn put32(v: &mut Vec<u8>, order: ByteOrder, x: u32) {
    match order {
        ByteOrder::Little => v.extend_from_slice(&x.to_le_bytes()),
        ByteOrder::Big => v.extend_from_slice(&x.to_be_bytes()),
    }
}

fn put64(v: &mut Vec<u8>, order: ByteOrder, x: u64) {
    match order {
        ByteOrder::Little => v.extend_from_slice(&x.to_le_bytes()),
        ByteOrder::Big => v.extend_from_slice(&x.to_be_bytes()),
    }
}

fn pcap_header(order: ByteOrder, magic: u32, snaplen: u32, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    put32(&mut v, order, magic);
    put16(&mut v, order, 2);
    put16(&mut v, order, 4);
    put32(&mut v, order, 0);
    put32(&mut v, order, 0);
    put32(&mut v, order, snaplen);
    put32(&mut v, order, link);
    v
}

fn pcap_record(order: ByteOrder, sec: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
    let mut v = Vec::new();
    put32(&mut v, order, sec);
    put32(&mut v, order, frac);
    put32(&mut v, order, data.len() as u32);
    put32(&mut v, order, orig);
    v.extend_from_slice(data);
    v
}

// ---- pcapng builders (draft-ietf-opsawg-pcapng) ----

use ByteOrder::{Big, Little};

fn block(order: ByteOrder, block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = (body.len() + 3) & !3;
    let len = (MIN_BLOCK_LEN + padded) as u32;
    let mut v = Vec::new();
    put32(&mut v, order, block_type);
    put32(&mut v, order, len);
    v.extend_from_slice(body);
    v.resize(BLOCK_HEADER_LEN + padded, 0);
    put32(&mut v, order, len);
    v
}

fn shb(order: ByteOrder) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, order, PCAPNG_BYTE_ORDER_MAGIC);
    put16(&mut body, order, 1);
    put16(&mut body, order, 0);
    put64(&mut body, order, u64::MAX); // section length unknown
    block(order, BLOCK_SHB, &body)
}

fn idb(order: ByteOrder, link: u16, snaplen: u32, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    put16(&mut body, order, link);
    put16(&mut body, order, 0);
    put32(&mut body, order, snaplen);
    for (code, value) in options {
        put16(&mut body, order, *code);
        put16(&mut body, order, value.len() as u16);
        body.extend_from_slice(value);
        body.resize((body.len() + 3) & !3, 0);
    }
    if !options.is_empty() {
        put32(&mut body, order, 0); // opt_endofopt
    }
    block(order, BLOCK_IDB, &body)
}

fn epb(order: ByteOrder, iface: u32, units: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, order, iface);
    put32(&mut body, order, (units >> 32) as u32);
    put32(&mut body, order, units as u32);
    put32(&mut body, order, data.len() as u32);
    put32(&mut body, order, orig);
    body.extend_from_slice(data);
    block(order, BLOCK_EPB, &body)
}

fn pb(order: ByteOrder, iface: u16, units: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Vec::new();
    put16(&mut body, order, iface);
    put16(&mut body, order, 0); // drops count
    put32(&mut body, order, (units >> 32) as u32);
    put32(&mut body, order, units as u32);
    put32(&mut body, order, data.len() as u32);
    put32(&mut body, order, orig);
    body.extend_from_slice(data);
    block(order, BLOCK_PB, &body)
}

fn spb(order: ByteOrder, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put32(&mut body, order, orig);
    body.extend_from_slice(data);
    block(order, BLOCK_SPB, &body)
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn corrupt(offset: u64, packet: u64, what: CorruptKind) -> Result<(), CaptureError> {
    Err(CaptureError::Corrupt {
        offset,
        packet,
        what,
    })
}

fn truncated(offset: u64, packet: u64) -> Result<(), CaptureError> {
    Err(CaptureError::Truncated { offset, packet })
}

// ---- classic pcap ----

#[test]
fn round_trip_micros() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[
            (1_700_000_000_123_456_000, b"first packet", 60),
            (1_700_000_001_000_001_000, b"second", 6),
        ],
    );
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![
            got(1_700_000_000_123_456_000, 1, 60, b"first packet"),
            got(1_700_000_001_000_001_000, 1, 6, b"second"),
        ]
    );
    assert_eq!(
        r.format,
        Some(FileFormat::Pcap {
            resolution: TsResolution::Micros,
            big_endian: false,
            modified: false
        })
    );
    assert_eq!(r.stats.packets, 2);
    assert_eq!(r.stats.captured_bytes, 18);
    assert_eq!(r.stats.bytes_read, file.len() as u64);
    assert_eq!(
        r.stats.earliest_ts,
        Some(Timestamp(1_700_000_000_123_456_000))
    );
    assert_eq!(
        r.stats.latest_ts,
        Some(Timestamp(1_700_000_001_000_001_000))
    );
    assert_eq!(r.stats.skipped.total(), 0);
    assert_eq!(r.sha, Some(sha_hex(&file)));
}

#[test]
fn writer_drops_sub_microsecond_digits() {
    let file = written(TsResolution::Micros, LinkType::RAW, &[(1_999, b"x", 1)]);
    assert_eq!(run(&file).packets, vec![got(1_000, 101, 1, b"x")]);
}

#[test]
fn round_trip_nanos() {
    let file = written(
        TsResolution::Nanos,
        LinkType::LINUX_SLL2,
        &[(1_700_000_000_123_456_789, b"abc", 3)],
    );
    assert_eq!(
        u32::from_le_bytes(file[0..4].try_into().unwrap()),
        PCAP_MAGIC_NANOS
    );
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![got(1_700_000_000_123_456_789, 276, 3, b"abc")]
    );
}

#[test]
fn writer_rejects_seconds_past_2106() {
    let mut w = PcapWriter::new(Vec::new(), LinkType::RAW, 0, TsResolution::Micros).unwrap();
    let err = w
        .write_packet(Timestamp::from_secs_nanos(1 << 32, 0), b"x", 1)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn big_endian_micros() {
    let file = cat(&[
        &pcap_header(Big, PCAP_MAGIC_MICROS, 65_535, 1),
        &pcap_record(Big, 10, 20, b"be-us", 5),
    ]);
    assert_eq!(file[0..4], [0xa1, 0xb2, 0xc3, 0xd4]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(10_000_020_000, 1, 5, b"be-us")]);
    assert_eq!(
        r.format,
        Some(FileFormat::Pcap {
            resolution: TsResolution::Micros,
            big_endian: true,
            modified: false
        })
    );
}

#[test]
fn big_endian_nanos() {
    let file = cat(&[
        &pcap_header(Big, PCAP_MAGIC_NANOS, 65_535, 101),
        &pcap_record(Big, 10, 20, b"be-ns", 9),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(10_000_000_020, 101, 9, b"be-ns")]);
}

#[test]
fn little_endian_nanos_by_hand() {
    let file = cat(&[
        &pcap_header(Little, PCAP_MAGIC_NANOS, 65_535, 1),
        &pcap_record(Little, 1, 999_999_999, b"le-ns", 5),
    ]);
    assert_eq!(run(&file).packets, vec![got(1_999_999_999, 1, 5, b"le-ns")]);
}

#[test]
fn modified_kuznetzov_magic_has_longer_record_headers() {
    let mut file = pcap_header(Little, PCAP_MAGIC_MODIFIED, 65_535, 1);
    for (sec, data) in [(7u32, &b"one"[..]), (8, b"two!")] {
        let mut rec = pcap_record(Little, sec, 5, data, data.len() as u32);
        // ifindex, protocol, pkt_type, pad go between the header and the data.
        let extra = [2, 0, 0, 0, 0x08, 0x00, 4, 0];
        rec.splice(16..16, extra);
        file.extend_from_slice(&rec);
    }
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![
            got(7_000_005_000, 1, 3, b"one"),
            got(8_000_005_000, 1, 4, b"two!")
        ]
    );
}

#[test]
fn fcs_bits_are_masked_from_link_type() {
    // FCS length 4 (bits 28-31) and the F bit (26) set on Ethernet.
    let file = cat(&[
        &pcap_header(Little, PCAP_MAGIC_MICROS, 65_535, 0x4400_0001),
        &pcap_record(Little, 1, 0, b"eth", 3),
    ]);
    assert_eq!(run(&file).packets, vec![got(1_000_000_000, 1, 3, b"eth")]);
}

#[test]
fn unsupported_major_version() {
    let mut file = pcap_header(Little, PCAP_MAGIC_MICROS, 65_535, 1);
    file[4] = 1;
    assert_eq!(run(&file).end, corrupt(0, 0, CorruptKind::Version));
}

#[test]
fn empty_file() {
    assert_eq!(run(&[]).end, Err(CaptureError::Empty));
}

#[test]
fn wrong_magic() {
    assert_eq!(
        run(b"GET / HTTP/1.1\r\n\r\n").end,
        Err(CaptureError::NotACapture)
    );
    assert_eq!(run(b"GE").end, Err(CaptureError::NotACapture));
}

#[test]
fn pcapng_type_with_bad_byte_order_magic_is_not_a_capture() {
    let mut file = shb(Little);
    file[8..12].copy_from_slice(b"ABCD");
    assert_eq!(run(&file).end, Err(CaptureError::NotACapture));
}

#[test]
fn truncated_global_header_at_every_offset() {
    let file = written(TsResolution::Micros, LinkType::ETHERNET, &[]);
    assert_eq!(file.len(), PCAP_FILE_HEADER_LEN);
    for cut in 1..PCAP_FILE_HEADER_LEN {
        assert_eq!(run(&file[..cut]).end, truncated(0, 0), "cut at {cut}");
    }
    let r = run(&file);
    assert_eq!((r.end, r.packets.len()), (Ok(()), 0));
}

#[test]
fn truncated_record_at_every_offset() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[
            (1_000, &[1; 10], 10),
            (2_000, &[2; 20], 20),
            (3_000, &[3; 30], 30),
        ],
    );
    // Records start at 24, 50, 86 and the file ends at 132.
    let starts = [24usize, 50, 86, 132];
    assert_eq!(file.len(), 132);
    for cut in PCAP_FILE_HEADER_LEN..=file.len() {
        let r = run(&file[..cut]);
        let complete = starts.iter().skip(1).filter(|&&s| s <= cut).count();
        assert_eq!(r.packets.len(), complete, "cut at {cut}");
        if starts.contains(&cut) {
            assert_eq!(r.end, Ok(()), "cut at {cut}");
        } else {
            assert_eq!(
                r.end,
                truncated(starts[complete] as u64, complete as u64 + 1),
                "cut at {cut}"
            );
        }
        assert_eq!(r.sha, Some(sha_hex(&file[..cut])), "cut at {cut}");
        assert_eq!(r.stats.bytes_read, cut as u64);
    }
}

#[test]
fn captured_length_over_cap_stops_reading() {
    let big = vec![0u8; MAX_PACKET_LEN + 1];
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[
            (1_000, b"ok", 2),
            (2_000, &big, 70_000),
            (3_000, b"never", 5),
        ],
    );
    let r = run(&file);
    assert_eq!(r.packets, vec![got(1_000, 1, 2, b"ok")]);
    assert_eq!(r.end, corrupt(42, 2, CorruptKind::CapturedLengthTooLarge));
    // The hash still covers the whole file.
    assert_eq!(r.sha, Some(sha_hex(&file)));
    assert_eq!(r.stats.bytes_read, file.len() as u64);
}

#[test]
fn captured_length_at_cap_is_delivered() {
    let big = vec![0x5a; MAX_PACKET_LEN];
    let file = written(TsResolution::Micros, LinkType::RAW, &[(0, &big, 300_000)]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(0, 101, 300_000, &big)]);
}

#[test]
fn huge_captured_length_is_corrupt_not_allocated() {
    let mut file = pcap_header(Little, PCAP_MAGIC_MICROS, 65_535, 1);
    let mut rec = pcap_record(Little, 1, 0, b"", 0);
    rec[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    file.extend_from_slice(&rec);
    assert_eq!(
        run(&file).end,
        corrupt(24, 1, CorruptKind::CapturedLengthTooLarge)
    );
}

#[test]
fn zero_length_packet_is_skipped_but_numbered() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(1_000, b"", 0), (2_000, b"x", 1)],
    );
    let mut cut = file.clone();
    cut.extend_from_slice(&[0; 5]); // a third record header cut short
    let r = run(&cut);
    assert_eq!(r.packets, vec![got(2_000, 1, 1, b"x")]);
    assert_eq!(r.stats.skipped.get(FileSkip::ZeroLengthPacket), 1);
    assert_eq!(r.stats.packets, 1);
    assert_eq!(r.end, truncated(file.len() as u64, 3));
}

#[test]
fn timestamps_going_backwards_are_counted_and_delivered() {
    let s = 1_000_000_000;
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(5 * s, b"a", 1), (3 * s, b"b", 1), (4 * s, b"c", 1)],
    );
    let r = run(&file);
    assert_eq!(r.packets.len(), 3);
    assert_eq!(r.stats.skipped.get(FileSkip::TimestampBackwards), 1);
    assert_eq!(r.stats.earliest_ts, Some(Timestamp(3 * s)));
    assert_eq!(r.stats.latest_ts, Some(Timestamp(5 * s)));
}

#[test]
fn caplen_over_snaplen_and_orig_len_are_counted_and_delivered() {
    let file = cat(&[
        &pcap_header(Little, PCAP_MAGIC_MICROS, 4, 1),
        &pcap_record(Little, 1, 0, b"12345", 5),
        &pcap_record(Little, 1, 0, b"123", 2),
    ]);
    let r = run(&file);
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.stats.skipped.get(FileSkip::CaplenOverSnaplen), 1);
    assert_eq!(r.stats.skipped.get(FileSkip::CaplenOverOrigLen), 1);
}

#[test]
fn max_bounds_each_batch() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(1, b"a", 1), (2, b"b", 1), (3, b"c", 1)],
    );
    let mut source = FileSource::from_reader(Box::new(Cursor::new(file)), 0).unwrap();
    let mut n = 0;
    let mut sink = |_: PacketMeta, _: &[u8]| n += 1;
    assert_eq!(source.next_packets(2, &mut sink), Ok(SourceStatus::More));
    assert_eq!(source.next_packets(0, &mut sink), Ok(SourceStatus::More));
    // The last packet and the end of the file come in the same batch.
    assert_eq!(source.next_packets(2, &mut sink), Ok(SourceStatus::End));
    assert_eq!(source.next_packets(2, &mut sink), Ok(SourceStatus::End));
    assert_eq!(n, 3);
}

/// Several buffers' worth of records, read in odd chunks and small batches, so records
/// straddle every kind of buffer boundary.
#[test]
fn file_larger_than_buffer_reads_whole() {
    let packets: Vec<(u64, Vec<u8>)> = (0..2_600u64)
        .map(|i| {
            (
                i * 1_000,
                vec![(i % 251) as u8; 600 + (i as usize * 7) % 900],
            )
        })
        .collect();
    let refs: Vec<(u64, &[u8], u32)> = packets
        .iter()
        .map(|(ts, d)| (*ts, d.as_slice(), d.len() as u32))
        .collect();
    let file = written(TsResolution::Micros, LinkType::ETHERNET, &refs);
    assert!(file.len() > 2 * READ_BUF_LEN);
    let want: Vec<Got> = refs.iter().map(|(ts, d, o)| got(*ts, 1, *o, d)).collect();
    for r in [
        run(&file),
        run_reader(chunked(&file, 4093), 7),
        run_reader(chunked(&file, 65_536), 1),
    ] {
        assert_eq!(r.end, Ok(()));
        assert_eq!(r.packets.len(), want.len());
        assert!(r.packets == want);
        assert_eq!(r.sha, Some(sha_hex(&file)));
    }
}

#[test]
fn one_byte_reads() {
    let file = written(
        TsResolution::Nanos,
        LinkType::ETHERNET,
        &[(1, b"abc", 3), (2, b"defgh", 5)],
    );
    let r = run_reader(chunked(&file, 1), 1);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![got(1, 1, 3, b"abc"), got(2, 1, 5, b"defgh")]
    );
    assert_eq!(r.sha, Some(sha_hex(&file)));
}

#[test]
fn interrupted_reads_are_retried() {
    let file = written(
        TsResolution::Micros,
        LinkType::RAW,
        &[(1_000, &[9; 300], 300)],
    );
    let reader = InterruptingReader {
        data: Cursor::new(file.clone()),
        interrupt: false,
    };
    let r = run_reader(Box::new(reader), 8);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(1_000, 101, 300, &[9; 300])]);
}

#[test]
fn read_error_keeps_earlier_packets_and_has_no_hash() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(1_000, b"a", 1), (2_000, b"b", 1)],
    );
    let reader = FailingReader {
        good: Cursor::new(file[..45].to_vec()),
        kind: io::ErrorKind::Other,
    };
    let r = run_reader(Box::new(reader), 8);
    assert_eq!(r.packets, vec![got(1_000, 1, 1, b"a")]);
    assert_eq!(r.end, Err(CaptureError::Io(io::ErrorKind::Other)));
    assert_eq!(r.sha, None);
}

#[test]
fn open_missing_file_is_io_error() {
    let err = FileSource::open(Path::new("/nonexistent/ksensor.pcap"), 0).err();
    assert_eq!(err, Some(CaptureError::Io(io::ErrorKind::NotFound)));
}

#[test]
fn open_reads_a_file_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pcap");
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(1_000, b"disk", 4)],
    );
    std::fs::write(&path, &file).unwrap();
    let mut source = FileSource::open(&path, 1).unwrap();
    let mut seen = Vec::new();
    let status = source.next_packets(10, &mut |meta, data| {
        seen.push((meta.input, data.to_vec()));
    });
    assert_eq!(status, Ok(SourceStatus::End));
    assert_eq!(seen, vec![(1, b"disk".to_vec())]);
    assert_eq!(source.sha256_hex(), Some(sha_hex(&file)));
}

// ---- pcapng, hand-built ----

const OPT_TSRESOL_NS: (u16, &[u8]) = (OPT_IF_TSRESOL, &[9]);

#[test]
fn pcapng_little_endian_default_microseconds() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &epb(Little, 0, 1_500_000, b"packet", 60),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.format, Some(FileFormat::Pcapng));
    assert_eq!(r.packets, vec![got(1_500_000_000, 1, 60, b"packet")]);
    assert_eq!((r.stats.sections, r.stats.interfaces), (1, 1));
    assert_eq!(r.sha, Some(sha_hex(&file)));
}

#[test]
fn pcapng_big_endian_section() {
    let file = cat(&[
        &shb(Big),
        &idb(Big, 101, 0, &[OPT_TSRESOL_NS]),
        &epb(Big, 0, (3 << 32) | 7, b"be", 2),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got((3 << 32) | 7, 101, 2, b"be")]);
}

#[test]
fn pcapng_sections_switch_byte_order_and_reset_interfaces() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &epb(Little, 0, 1, b"le", 2),
        &shb(Big),
        &idb(Big, 113, 0, &[]),
        &epb(Big, 0, 2, b"be", 2),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![got(1_000, 1, 2, b"le"), got(2_000, 113, 2, b"be")]
    );
    assert_eq!((r.stats.sections, r.stats.interfaces), (2, 2));
}

#[test]
fn pcapng_interface_from_previous_section_is_unknown() {
    let head = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &idb(Little, 1, 0, &[]),
        &shb(Big),
        &idb(Big, 1, 0, &[]),
    ]);
    let file = cat(&[&head, &epb(Big, 1, 2, b"x", 1)]);
    let r = run(&file);
    assert_eq!(r.packets, vec![]);
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::UnknownInterface)
    );
}

#[test]
fn pcapng_mixed_link_types_in_one_section() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &idb(Little, 276, 0, &[OPT_TSRESOL_NS]),
        &epb(Little, 1, 5, b"sll2", 4),
        &epb(Little, 0, 5, b"eth", 3),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![got(5, 276, 4, b"sll2"), got(5_000, 1, 3, b"eth")]
    );
    assert_eq!(r.stats.skipped.get(FileSkip::TimestampBackwards), 0);
}

fn one_packet_with_idb_options(options: &[(u16, &[u8])], units: u64) -> Run {
    run(&cat(&[
        &shb(Little),
        &idb(Little, 1, 0, options),
        &epb(Little, 0, units, b"p", 1),
    ]))
}

#[test]
fn pcapng_tsresol_powers_of_ten() {
    let ts = |resol: u8, units| {
        one_packet_with_idb_options(&[(OPT_IF_TSRESOL, &[resol])], units).packets[0].ts
    };
    assert_eq!(ts(0, 7), 7_000_000_000); // seconds
    assert_eq!(ts(3, 7), 7_000_000); // milliseconds
    assert_eq!(ts(6, 7), 7_000); // microseconds
    assert_eq!(ts(9, 7), 7); // nanoseconds
    assert_eq!(ts(12, 7_000), 7); // picoseconds
    assert_eq!(ts(28, u64::MAX), 1); // 10^-28 s: 1.8e19 units ≈ 1.8e-9 s
    assert_eq!(ts(29, u64::MAX), 0); // below any u64 divisor: always 0
    assert_eq!(ts(127, u64::MAX), 0);
}

#[test]
fn pcapng_tsresol_powers_of_two() {
    let ts = |resol: u8, units| {
        one_packet_with_idb_options(&[(OPT_IF_TSRESOL, &[resol])], units).packets[0].ts
    };
    assert_eq!(ts(0x80 | 10, 1024 * 3), 3_000_000_000); // 2^-10 s
    assert_eq!(ts(0x80 | 30, 1 << 29), 500_000_000); // 2^-30 s
    assert_eq!(ts(0x80, 2), 2_000_000_000); // 2^0 s
    assert_eq!(ts(0x80 | 127, u64::MAX), 0);
    assert_eq!(ts(0x80, u64::MAX), u64::MAX); // saturates
}

#[test]
fn pcapng_tsoffset_shifts_and_clamps() {
    let plus = 100i64.to_le_bytes();
    let minus = (-100i64).to_le_bytes();
    let r = one_packet_with_idb_options(&[(OPT_IF_TSOFFSET, &plus)], 1);
    assert_eq!(r.packets[0].ts, 100_000_001_000);
    let r = one_packet_with_idb_options(
        &[(OPT_IF_TSOFFSET, &minus), OPT_TSRESOL_NS],
        150_000_000_000,
    );
    assert_eq!(r.packets[0].ts, 50_000_000_000);
    let r = one_packet_with_idb_options(&[(OPT_IF_TSOFFSET, &minus)], 1);
    assert_eq!(r.packets[0].ts, 0);
}

#[test]
fn pcapng_malformed_options_keep_the_interface() {
    let mut block = idb(Little, 1, 0, &[OPT_TSRESOL_NS]);
    // Make the option claim 200 bytes: it runs past the block.
    block[IDB_FIXED_LEN + BLOCK_HEADER_LEN + 2] = 200;
    let file = cat(&[&shb(Little), &block, &epb(Little, 0, 2, b"p", 1)]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(2_000, 1, 1, b"p")]);
    assert_eq!(r.stats.skipped.get(FileSkip::MalformedOptions), 1);
}

#[test]
fn pcapng_simple_packet_block_uses_interface_zero() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 101, 4, &[]),
        &idb(Little, 1, 0, &[]),
        &epb(Little, 1, 9, b"e", 1),
        &spb(Little, 10, b"0123456789"), // snap length 4 cuts it
        &spb(Little, 3, b"abc"),         // padding is not data
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![
            got(9_000, 1, 1, b"e"),
            got(9_000, 101, 10, b"0123"),
            got(9_000, 101, 3, b"abc"),
        ]
    );
    assert_eq!(r.stats.skipped.get(FileSkip::TimestampBackwards), 0);
}

#[test]
fn pcapng_simple_packet_block_without_interface() {
    let head = shb(Little);
    let r = run(&cat(&[&head, &spb(Little, 1, b"x")]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::UnknownInterface)
    );
}

#[test]
fn pcapng_obsolete_packet_block() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &idb(Little, 228, 0, &[]),
        &pb(Little, 1, 4, b"v4", 2),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(4_000, 228, 2, b"v4")]);
}

#[test]
fn pcapng_unknown_and_skipped_blocks_are_counted() {
    let file = cat(&[
        &shb(Little),
        &block(Little, 0x1234_5678, b"unknown!"),
        &idb(Little, 1, 0, &[]),
        &block(Little, BLOCK_NRB, &[0; 4]),
        &block(Little, BLOCK_ISB, &[0; 12]),
        &block(Little, BLOCK_DSB, &[0; 8]),
        &block(Little, BLOCK_CUSTOM, &[0; 4]),
        &block(Little, BLOCK_CUSTOM_NO_COPY, &[]),
        &epb(Little, 0, 1, b"after", 5),
    ]);
    let r = run(&file);
    assert_eq!(r.end, Ok(()));
    assert_eq!(r.packets, vec![got(1_000, 1, 5, b"after")]);
    let s = &r.stats.skipped;
    assert_eq!(s.get(FileSkip::UnknownBlockType), 1);
    assert_eq!(s.get(FileSkip::NameResolutionBlock), 1);
    assert_eq!(s.get(FileSkip::InterfaceStatsBlock), 1);
    assert_eq!(s.get(FileSkip::DecryptionSecretsBlock), 1);
    assert_eq!(s.get(FileSkip::CustomBlock), 2);
    assert_eq!(s.total(), 6);
}

#[test]
fn pcapng_block_length_not_multiple_of_four() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let mut bad = epb(Little, 0, 1, b"abcd", 4);
    bad[4..8].copy_from_slice(&37u32.to_le_bytes());
    let r = run(&cat(&[&head, &bad]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_block_length_shorter_than_header() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    for len in [0u32, 4, 8] {
        let mut bad = block(Little, BLOCK_EPB, &[]);
        bad[4..8].copy_from_slice(&len.to_le_bytes());
        let r = run(&cat(&[&head, &bad]));
        assert_eq!(
            r.end,
            corrupt(head.len() as u64, 1, CorruptKind::BlockLength),
            "len {len}"
        );
    }
}

#[test]
fn pcapng_trailing_length_mismatch() {
    let head = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &epb(Little, 0, 1, b"ok", 2),
    ]);
    let mut bad = epb(Little, 0, 2, b"bad", 3);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&(n as u32 + 4).to_le_bytes());
    let r = run(&cat(&[&head, &bad, &epb(Little, 0, 3, b"never", 5)]));
    assert_eq!(r.packets, vec![got(1_000, 1, 2, b"ok")]);
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 2, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_epb_names_undeclared_interface() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let r = run(&cat(&[&head, &epb(Little, 1, 1, b"x", 1)]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::UnknownInterface)
    );
    let r = run(&cat(&[&head, &epb(Little, u32::MAX, 1, b"x", 1)]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::UnknownInterface)
    );
}

#[test]
fn pcapng_epb_captured_length_past_block() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let mut bad = epb(Little, 0, 1, b"abcd", 4);
    // caplen 5 in a block holding 4 data bytes.
    bad[20..24].copy_from_slice(&5u32.to_le_bytes());
    let r = run(&cat(&[&head, &bad]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_epb_shorter_than_fixed_fields() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let r = run(&cat(&[&head, &block(Little, BLOCK_EPB, &[0; 8])]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_idb_shorter_than_fixed_fields() {
    let head = shb(Little);
    let r = run(&cat(&[&head, &block(Little, BLOCK_IDB, &[1, 0])]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_packet_over_cap_is_skipped_and_numbered() {
    let big = vec![7u8; MAX_PACKET_LEN + 1];
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let file = cat(&[
        &head,
        &epb(Little, 0, 1, &big, big.len() as u32),
        &epb(Little, 0, 2, b"after", 5),
        &[0, 0, 0],
    ]);
    let r = run(&file);
    assert_eq!(r.packets, vec![got(2_000, 1, 5, b"after")]);
    assert_eq!(r.stats.skipped.get(FileSkip::PacketTooLarge), 1);
    assert_eq!(r.end, truncated(file.len() as u64 - 3, 3));
}

#[test]
fn pcapng_block_over_buffer_is_streamed_past() {
    let huge = vec![0u8; MAX_BLOCK_LEN + 100];
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &block(Little, BLOCK_DSB, &huge),
        &epb(Little, 0, 1, &huge, 1),
        &epb(Little, 0, 2, b"after", 5),
    ]);
    for r in [run(&file), run_reader(chunked(&file, 10_000), 3)] {
        assert_eq!(r.end, Ok(()));
        assert_eq!(r.packets, vec![got(2_000, 1, 5, b"after")]);
        assert_eq!(r.stats.skipped.get(FileSkip::DecryptionSecretsBlock), 1);
        assert_eq!(r.stats.skipped.get(FileSkip::PacketTooLarge), 1);
        assert_eq!(r.stats.bytes_read, file.len() as u64);
        assert_eq!(r.sha, Some(sha_hex(&file)));
    }
}

#[test]
fn pcapng_streamed_block_checks_its_trailer() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let mut huge = block(Little, 0x4242, &vec![0u8; MAX_BLOCK_LEN]);
    let n = huge.len();
    huge[n - 4..].copy_from_slice(&0u32.to_le_bytes());
    let r = run(&cat(&[&head, &huge]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
    // Cut short inside the streamed body.
    let r = run(&cat(&[&head, &huge[..n / 2]]));
    assert_eq!(r.end, truncated(head.len() as u64, 1));
}

#[test]
fn pcapng_interface_block_over_buffer_is_corrupt() {
    let head = shb(Little);
    let mut body = vec![0u8; MAX_BLOCK_LEN];
    body[0] = 1;
    let r = run(&cat(&[&head, &block(Little, BLOCK_IDB, &body)]));
    assert_eq!(
        r.end,
        corrupt(head.len() as u64, 1, CorruptKind::BlockLength)
    );
}

#[test]
fn pcapng_unsupported_section_version() {
    let mut file = shb(Little);
    file[12] = 2; // major version 2
    assert_eq!(run(&file).end, corrupt(0, 1, CorruptKind::Version));
}

#[test]
fn pcapng_later_section_with_bad_byte_order_magic() {
    let head = cat(&[&shb(Little), &idb(Little, 1, 0, &[])]);
    let mut bad = shb(Little);
    bad[8..12].copy_from_slice(b"ABCD");
    assert_eq!(
        run(&cat(&[&head, &bad])).end,
        corrupt(head.len() as u64, 1, CorruptKind::Version)
    );
}

#[test]
fn pcapng_zero_length_packet_is_skipped() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 0, &[]),
        &epb(Little, 0, 1, b"", 0),
        &epb(Little, 0, 2, b"x", 1),
    ]);
    let r = run(&file);
    assert_eq!(r.packets, vec![got(2_000, 1, 1, b"x")]);
    assert_eq!(r.stats.skipped.get(FileSkip::ZeroLengthPacket), 1);
}

#[test]
fn pcapng_caplen_over_snaplen_is_counted() {
    let file = cat(&[
        &shb(Little),
        &idb(Little, 1, 2, &[]),
        &epb(Little, 0, 1, b"abc", 3),
    ]);
    let r = run(&file);
    assert_eq!(r.packets, vec![got(1_000, 1, 3, b"abc")]);
    assert_eq!(r.stats.skipped.get(FileSkip::CaplenOverSnaplen), 1);
}

#[test]
fn pcapng_too_many_interfaces() {
    let mut file = shb(Little);
    let one = idb(Little, 1, 0, &[]);
    for _ in 0..=MAX_INTERFACES {
        file.extend_from_slice(&one);
    }
    let at = file.len() as u64;
    file.extend_from_slice(&epb(Little, (MAX_INTERFACES - 1) as u32, 1, b"last", 4));
    file.extend_from_slice(&epb(Little, MAX_INTERFACES as u32, 1, b"over", 4));
    let r = run(&file);
    assert_eq!(r.packets, vec![got(1_000, 1, 4, b"last")]);
    assert_eq!(r.stats.interfaces, MAX_INTERFACES as u64 + 1);
    assert_eq!(r.stats.skipped.get(FileSkip::TooManyInterfaces), 1);
    assert_eq!(r.end, corrupt(at + 36, 2, CorruptKind::UnknownInterface));
}

#[test]
fn pcapng_truncated_at_every_offset() {
    let parts = [
        shb(Little),
        idb(Little, 1, 0, &[OPT_TSRESOL_NS]),
        epb(Little, 0, 1, b"first", 5),
        block(Little, BLOCK_ISB, &[0; 12]),
        epb(Little, 0, 2, b"second!", 7),
    ];
    let file = parts.concat();
    let mut starts = vec![0usize];
    for p in &parts {
        starts.push(starts.last().unwrap() + p.len());
    }
    let packet_ends = [starts[3], starts[5]];
    for cut in 1..=file.len() {
        let r = run(&file[..cut]);
        let delivered = packet_ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(r.packets.len(), delivered, "cut at {cut}");
        let block_start = *starts.iter().rfind(|&&s| s <= cut).unwrap();
        let want = if cut < 12 {
            truncated(0, 0)
        } else if block_start == cut {
            Ok(())
        } else {
            truncated(block_start as u64, delivered as u64 + 1)
        };
        assert_eq!(r.end, want, "cut at {cut}");
        if cut >= 12 {
            assert_eq!(r.sha, Some(sha_hex(&file[..cut])), "cut at {cut}");
        }
    }
}

#[test]
fn pcapng_one_byte_reads() {
    let file = cat(&[
        &shb(Big),
        &idb(Big, 1, 0, &[]),
        &epb(Big, 0, 1, b"first", 5),
        &spb(Big, 6, b"second"),
    ]);
    let r = run_reader(chunked(&file, 1), 1);
    assert_eq!(r.end, Ok(()));
    assert_eq!(
        r.packets,
        vec![got(1_000, 1, 5, b"first"), got(1_000, 1, 6, b"second")]
    );
    assert_eq!(r.sha, Some(sha_hex(&file)));
}

// ---- real captures (see testdata/README.md) ----

fn fixture(name: &str) -> Run {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sensor/capture/testdata")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    let whole = run_reader(Box::new(File::open(&path).unwrap()), 64);
    let trickled = run_reader(chunked(&bytes, 1), 1);
    assert_eq!(whole.packets, trickled.packets, "{name}");
    assert_eq!(whole.sha, trickled.sha, "{name}");
    whole
}

/// UDP destination port of an IPv4/UDP packet behind `link_header` bytes.
fn udp_dst_port(data: &[u8], link_header: usize) -> u16 {
    let at = link_header + 20 + 2;
    u16::from_be_bytes([data[at], data[at + 1]])
}

const LO_TS: [u64; 2] = [1_795_938_549_670_888_000, 1_795_938_549_671_793_000];
const ANY_TS: [u64; 2] = [1_795_938_549_671_821_000, 1_795_938_549_671_844_000];
const SLL2_HEADER_LEN: usize = 20;
const ETHERNET_HEADER_LEN: usize = 14;

#[test]
fn fixture_tcpdump_loopback_ethernet_pcap() {
    let r = fixture("lo.pcap");
    assert_eq!(r.end, Ok(()));
    let summary: Vec<_> = r
        .packets
        .iter()
        .map(|p| (p.ts, p.link, p.orig_len, p.data.len()))
        .collect();
    assert_eq!(summary, vec![(LO_TS[0], 1, 84, 84), (LO_TS[1], 1, 71, 71)]);
    assert_eq!(udp_dst_port(&r.packets[0].data, ETHERNET_HEADER_LEN), 5399);
    assert_eq!(
        r.sha.as_deref(),
        Some("ad1f93e20b16dc40b4846156be43d2580d8c0dcd714f21793f27b766a0cb6011")
    );
}

#[test]
fn fixture_tcpdump_any_sll2_pcap() {
    let r = fixture("any.pcap");
    assert_eq!(r.end, Ok(()));
    let summary: Vec<_> = r
        .packets
        .iter()
        .map(|p| (p.ts, p.link, p.orig_len, p.data.len()))
        .collect();
    assert_eq!(
        summary,
        vec![(ANY_TS[0], 276, 99, 99), (ANY_TS[1], 276, 77, 77)]
    );
    assert_eq!(udp_dst_port(&r.packets[1].data, SLL2_HEADER_LEN), 5398);
}

#[test]
fn fixture_editcap_pcapng_matches_pcap() {
    let ng = fixture("lo.pcapng");
    assert_eq!(ng.end, Ok(()));
    assert_eq!(ng.packets, fixture("lo.pcap").packets);
    assert_eq!((ng.stats.sections, ng.stats.interfaces), (1, 1));
    assert_eq!(
        ng.sha.as_deref(),
        Some("758bc908467ca162d661ac6927a82110a2c19137428afbe90dff3f5f839efb0f")
    );
}

#[test]
fn fixture_mergecap_two_link_types() {
    let r = fixture("mixed.pcapng");
    assert_eq!(r.end, Ok(()));
    let summary: Vec<_> = r.packets.iter().map(|p| (p.ts, p.link)).collect();
    assert_eq!(
        summary,
        vec![
            (LO_TS[0], 1),
            (LO_TS[1], 1),
            (ANY_TS[0], 276),
            (ANY_TS[1], 276)
        ]
    );
    let lo = fixture("lo.pcap").packets;
    let any = fixture("any.pcap").packets;
    assert_eq!(r.packets, [lo, any].concat());
    assert_eq!((r.stats.sections, r.stats.interfaces), (1, 2));
    assert_eq!(r.stats.skipped.get(FileSkip::TimestampBackwards), 0);
}

#[test]
fn fixture_dumpcap_nanoseconds_and_statistics_block() {
    let r = fixture("dumpcap_lo.pcapng");
    assert_eq!(r.end, Ok(()));
    let summary: Vec<_> = r
        .packets
        .iter()
        .map(|p| (p.ts, p.link, p.orig_len))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1_795_938_549_671_874_661, 1, 76),
            (1_795_938_549_671_894_277, 1, 71)
        ]
    );
    assert_eq!(udp_dst_port(&r.packets[0].data, ETHERNET_HEADER_LEN), 5397);
    assert_eq!(r.stats.skipped.get(FileSkip::InterfaceStatsBlock), 1);
    assert_eq!(r.stats.skipped.total(), 1);
    assert_eq!(r.stats.bytes_read, 584);
    assert_eq!(
        r.sha.as_deref(),
        Some("6f382c247ca20b96b7f9e73853181249763bfef55fdac325db36900c81600d7c")
    );
}

#[test]
fn a_whole_file_digest_only_when_asked_the_edges_always() {
    let file = written(
        TsResolution::Micros,
        LinkType::ETHERNET,
        &[(1_000, b"a", 1)],
    );
    let mut bad = file.clone();
    bad.extend_from_slice(&[1, 2, 3]);
    for bytes in [file, bad] {
        let whole: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
        for full in [
            None,
            Some(DigestAlgorithm::Sha256),
            Some(DigestAlgorithm::Blake3),
        ] {
            let options = FileOptions {
                digest: DigestOptions { full },
            };
            let mut source =
                FileSource::from_reader_with(Box::new(Cursor::new(bytes.clone())), 0, options)
                    .unwrap();
            let mut n = 0;
            while let Ok(SourceStatus::More) = source.next_packets(8, &mut |_, _| n += 1) {}
            assert_eq!(n, 1);
            assert_eq!(source.stats().bytes_read, bytes.len() as u64);
            let digests = source.digests();
            let expected = full.map(|algorithm| FileDigest {
                algorithm,
                value: match algorithm {
                    DigestAlgorithm::Sha256 => whole,
                    DigestAlgorithm::Blake3 => *blake3::hash(&bytes).as_bytes(),
                },
            });
            assert_eq!(digests.full, expected);
            // A small file: both edges are the whole file.
            assert_eq!(
                digests.edges,
                Some(EdgeHashes {
                    span: bytes.len() as u64,
                    whole: true,
                    head: whole,
                    tail: whole
                })
            );
        }
    }
}

/// Packets of varied sizes and contents, so a changed byte anywhere shows.
fn varied_packets(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = 40 + (i * 7919) % 1_460;
            (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
        })
        .collect()
}

/// Reads `reader` through `next_packets_shared`, keeping every packet as (chunk, offset,
/// length) only; checks afterwards that the lent bytes are still the packets.
fn assert_lent_chunks_hold(reader: Box<dyn Read + Send>, expected: &[Vec<u8>]) {
    let mut source = FileSource::from_reader(reader, 0).unwrap();
    let mut kept: Vec<(Chunk, usize, usize)> = Vec::new();
    let mut copied = 0;
    loop {
        let status = source.next_packets_shared(100, &mut |_, data, chunk| match chunk {
            Some(c) => kept.push((c.clone(), c.offset_of(data).unwrap(), data.len())),
            None => copied += 1,
        });
        match status.unwrap() {
            SourceStatus::More => {}
            _ => break,
        }
    }
    assert_eq!(copied, 0, "a file source lends every packet");
    assert_eq!(kept.len(), expected.len());
    for (i, ((chunk, at, len), want)) in kept.iter().zip(expected).enumerate() {
        assert_eq!(&chunk.bytes()[*at..at + len], &want[..], "packet {i}");
    }
    let distinct = kept.windows(2).filter(|w| !w[0].0.same(&w[1].0)).count() + 1;
    assert!(
        distinct > 3,
        "the reader moved on to fresh buffers ({distinct})"
    );
}

#[test]
fn lent_pcap_chunks_never_change() {
    let packets = varied_packets(6_000);
    let records: Vec<(u64, &[u8], u32)> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64 * 1_000, &p[..], p.len() as u32))
        .collect();
    let file = written(TsResolution::Micros, LinkType::ETHERNET, &records);
    assert!(file.len() > 3 * READ_BUF_LEN);
    // Reads of an odd size make records straddle buffer ends.
    assert_lent_chunks_hold(chunked(&file, 100_003), &packets);
    assert_lent_chunks_hold(Box::new(Cursor::new(file)), &packets);
}

#[test]
fn lent_pcapng_chunks_never_change() {
    let order = ByteOrder::Little;
    let packets = varied_packets(6_000);
    let mut file = cat(&[&shb(order), &idb(order, 1, 0, &[])]);
    for (i, p) in packets.iter().enumerate() {
        file.extend_from_slice(&epb(order, 0, i as u64, p, p.len() as u32));
    }
    assert!(file.len() > 3 * READ_BUF_LEN);
    assert_lent_chunks_hold(chunked(&file, 65_537), &packets);
}
