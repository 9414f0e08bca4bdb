//! capture::file::FileSource over arbitrary bytes, read whole and in small reads.
//!
//! Properties: every packet is non-empty and within the packet cap; the packets together never
//! hold more bytes than the input; the statistics match what was delivered and never count more
//! bytes than the input; an error offset lies within the input; every call makes progress (no
//! hang); and reading through a reader that returns a few bytes at a time gives exactly the same
//! packets, statistics and error as reading at once (the buffer refill and compaction paths).
//! A classic pcap input is also written to a file and walked in segments of a few bytes
//! (`capture::segmented`, how workers read files): the same packets and the same error.
#![no_main]

use std::io::{Cursor as IoCursor, Read};

use ksensor::capture::chunk::ChunkPool;
use ksensor::capture::file::{FileOptions, FileSource, MAX_PACKET_LEN};
use ksensor::capture::segmented::SegmentedPcap;
use ksensor::capture::{CaptureError, PacketMeta, PacketSource, SourceStatus};
use ksensor_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

/// A reader that returns at most `step` bytes per call.
struct Trickle {
    data: IoCursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.step);
        self.data.read(buf.get_mut(..n).unwrap_or_default())
    }
}

/// What one read of the input delivered. (`FileStats::bytes_read` is not compared: once damage
/// ends the source it counts what was physically read, which depends on the read sizes.)
struct Run {
    packets: Vec<(PacketMeta, Vec<u8>)>,
    error: Option<CaptureError>,
}

fn read_all(reader: Box<dyn Read + Send>, input_len: usize) -> Option<Run> {
    let options = FileOptions {
        digest: Default::default(),
    };
    let mut source = match FileSource::from_reader_with(reader, 0, options) {
        Ok(source) => source,
        Err(e) => {
            if let CaptureError::Truncated { offset, .. } | CaptureError::Corrupt { offset, .. } = e
            {
                assert!(offset <= input_len as u64, "error offset past the input");
            }
            return None;
        }
    };
    let mut packets = Vec::new();
    let mut error = None;
    let mut delivered_bytes = 0usize;
    // Each call consumes at least one record or block header (>= 8 bytes) or ends.
    let mut calls = 0usize;
    loop {
        calls += 1;
        assert!(calls <= input_len + 2, "no progress after {calls} calls");
        let status = source.next_packets(7, &mut |meta, bytes| {
            assert!(!bytes.is_empty(), "empty packet delivered");
            assert!(bytes.len() <= MAX_PACKET_LEN, "packet over the cap");
            delivered_bytes += bytes.len();
            packets.push((meta, bytes.to_vec()));
        });
        match status {
            Ok(SourceStatus::More) | Ok(SourceStatus::Idle) => {}
            Ok(SourceStatus::End) => break,
            Err(e) => {
                if let CaptureError::Truncated { offset, .. } | CaptureError::Corrupt { offset, .. } = e
                {
                    assert!(offset <= input_len as u64, "error offset past the input");
                }
                error = Some(e);
                break;
            }
        }
    }
    assert!(delivered_bytes <= input_len, "more packet bytes than input bytes");
    let stats = source.stats();
    assert_eq!(stats.packets, packets.len() as u64);
    assert_eq!(stats.captured_bytes, delivered_bytes as u64);
    assert!(stats.bytes_read <= input_len as u64, "read more than the input");
    Some(Run { packets, error })
}

/// Classic pcap magic numbers (microseconds, nanoseconds, modified), in either byte order.
fn is_classic_pcap(file: &[u8]) -> bool {
    const MAGICS: [u32; 3] = [0xa1b2_c3d4, 0xa1b2_3c4d, 0xa1b2_cd34];
    let Some(magic) = file.first_chunk::<4>() else {
        return false;
    };
    let (le, be) = (u32::from_le_bytes(*magic), u32::from_be_bytes(*magic));
    MAGICS.contains(&le) || MAGICS.contains(&be)
}

/// The input written to a file and walked in segments of `step` bytes; `None` when the segmented
/// reader does not take it (not a classic pcap file with a valid header).
fn walk_segments(file: &[u8], step: usize) -> Option<Run> {
    // Writing a file costs far more than a run: only for inputs the segmented reader may take.
    if !is_classic_pcap(file) {
        return None;
    }
    let path = std::env::temp_dir().join(format!("ksensor-fuzz-pcap-{}", std::process::id()));
    std::fs::write(&path, file).expect("writing the input file");
    let segmented = SegmentedPcap::open(&path, 0);
    // The open file stays readable; no input file is left behind.
    let _ = std::fs::remove_file(&path);
    let segmented = segmented?.with_segment_len(step);
    let pool = ChunkPool::default();
    let mut cursor = segmented.start_cursor();
    let mut packets = Vec::new();
    let mut error = None;
    for k in 0..segmented.segments() {
        let mut segment = segmented.read(k, &pool).expect("reading a segment");
        let walked = segmented.walk(&mut segment, &mut cursor, &mut |r, data: &[u8]| {
            assert_eq!(r.len, data.len(), "packet length");
            packets.push((r.meta, data.to_vec()));
        });
        if let Err(e) = walked {
            error = Some(e);
            break;
        }
    }
    assert_eq!(cursor.stats.packets, packets.len() as u64);
    Some(Run { packets, error })
}

fuzz_target!(|data: &[u8]| {
    let mut cursor = Cursor::new(data);
    let step = usize::from(cursor.u8()).max(1);
    let file = cursor.rest().to_vec();
    let len = file.len();
    let whole = read_all(Box::new(IoCursor::new(file.clone())), len);
    // Segments of at least 16 bytes: boundaries fall everywhere in a small input without a
    // `pread` per byte.
    let segment_len = step + 15;
    if let Some(segments) = walk_segments(&file, segment_len) {
        let whole = whole.as_ref().expect("the stream reader takes what the segmented one does");
        let what = format!("in {segment_len}-byte segments");
        assert_eq!(whole.error, segments.error, "error differs {what}");
        assert!(whole.packets == segments.packets, "packets differ {what}");
    }
    let trickled = read_all(
        Box::new(Trickle {
            data: IoCursor::new(file),
            step,
        }),
        len,
    );
    let (whole, trickled) = match (whole, trickled) {
        (Some(w), Some(t)) => (w, t),
        (None, None) => return,
        _ => panic!("header read differs with {step}-byte reads"),
    };
    assert_eq!(whole.error, trickled.error, "error differs with {step}-byte reads");
    assert_eq!(whole.packets.len(), trickled.packets.len(), "packet count differs");
    for (i, (a, b)) in whole.packets.iter().zip(&trickled.packets).enumerate() {
        assert!(a == b, "packet {i} differs with {step}-byte reads");
    }
});
