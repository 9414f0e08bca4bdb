//! Classic pcap files read in segments, so that several threads can read one file.
//!
//! Contract: [`SegmentedPcap::open`] accepts a regular file that starts with a whole, valid
//! classic pcap header (anything else is `None`: [`super::file::FileSource`] reads it and
//! reports its damage). The records after the header are cut into segments of
//! [`SEGMENT_LEN`] bytes of the file. [`SegmentedPcap::read`] reads one segment with
//! `pread` into a pooled [`Chunk`]; any thread may read any segment, in any order, at the same
//! time. [`SegmentedPcap::walk`] then finds the records that *start* in that segment (reading
//! the tail of the last one from the next segment's bytes when it straddles the end), given a
//! [`PcapCursor`]: the file offset of the segment's first record and the counts so far. Walks
//! must run one after another in segment order, each taking the cursor the previous one left;
//! they are cheap (record headers only). A walk reports damage exactly as
//! [`super::file::FileSource`] does (same offset, same packet number, same statistics up to it),
//! because both read records with the same [`PcapHeader`] methods.
//!
//! The file is read up to the length it had when opened; a file that shrinks under the reader
//! ends in a truncated record, like a stream that ends early.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::chunk::{Chunk, ChunkPool};
use super::file::{
    classic_pcap_header, FileStats, PcapHeader, PcapRecordHeader, MAX_PACKET_LEN,
    PCAP_FILE_HEADER_LEN,
};
use super::{CaptureError, PacketMeta};

/// Bytes of the file per segment: large enough that a segment's fixed costs (two lock
/// hand-overs, one `pread`) are noise, small enough that a segment stays in L2/L3 cache between
/// being read and being processed, and more than a record can span (so every segment holds the
/// start of a record).
pub const SEGMENT_LEN: usize = 1 << 20;

/// Longest record header (the modified pcap format's).
const MAX_RECORD_HEADER_LEN: usize = 24;

/// Bytes a segment buffer holds beyond the segment's own: the tail of a record that starts in
/// it.
const TAIL_LEN: usize = MAX_RECORD_HEADER_LEN + MAX_PACKET_LEN;

/// A classic pcap file open for segmented reading.
pub struct SegmentedPcap {
    file: File,
    header: PcapHeader,
    /// File length when opened.
    len: u64,
    input: u16,
    /// The file header's bytes (the first of the file's hash).
    head: [u8; PCAP_FILE_HEADER_LEN],
    /// [`SEGMENT_LEN`], except in tests that cut small files into many segments.
    segment_len: usize,
}

/// Where the walk stands between two segments: the offset of the next record and the counts of
/// everything before it.
#[derive(Clone, Debug, Default)]
pub struct PcapCursor {
    /// File offset of the next record.
    pub offset: u64,
    /// Records seen (delivered or skipped): the number of the last one.
    pub records: u64,
    /// Statistics of the records walked so far (`bytes_read` is left to the caller).
    pub stats: FileStats,
}

/// One segment's bytes.
pub struct Segment {
    chunk: Chunk,
    /// File offset of the chunk's first byte (the segment's start).
    start: u64,
    /// The segment's own bytes read (`chunk[..len]`; fewer than [`SEGMENT_LEN`] only at the
    /// end of the file).
    len: usize,
    /// File offset where the next segment starts (the file length for the last one): the
    /// segment's records are those that start before it.
    end: u64,
    /// Bytes read into the chunk, the segment's own and any read after them.
    valid: usize,
}

impl Segment {
    /// The buffer the segment's records point into.
    pub fn chunk(&self) -> &Chunk {
        &self.chunk
    }

    /// The segment's own bytes: `chunk()[..len()]`.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// File offset just after the segment's own bytes.
    pub fn file_end(&self) -> u64 {
        self.start.saturating_add(self.len as u64)
    }
}

/// A packet found by [`SegmentedPcap::walk`]: its bytes are `chunk[start..start + len]`.
#[derive(Clone, Copy, Debug)]
pub struct SegmentRecord {
    /// Sequence number of the packet within the file (0-based, delivered packets only).
    pub seq: u64,
    pub meta: PacketMeta,
    pub start: usize,
    pub len: usize,
}

impl SegmentedPcap {
    /// Opens `path` for segmented reading when it is a regular file with a valid classic pcap
    /// header; `None` otherwise (including when it cannot be opened: the stream reader says why).
    pub fn open(path: &Path, input: u16) -> Option<SegmentedPcap> {
        let file = File::open(path).ok()?;
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() {
            return None;
        }
        let mut head = [0u8; PCAP_FILE_HEADER_LEN];
        let got = read_full_at(&file, &mut head, 0).ok()?;
        let header = classic_pcap_header(head.get(..got)?)?;
        Some(SegmentedPcap {
            file,
            header,
            len: metadata.len(),
            input,
            head,
            segment_len: SEGMENT_LEN,
        })
    }

    /// Another handle on the file (for reading its last MiB back, `capture::digest`).
    pub fn try_clone_file(&self) -> Option<File> {
        self.file.try_clone().ok()
    }

    /// The same file cut into segments of `len` bytes (at least 1): for tests and fuzzing,
    /// which need many segment boundaries in small files.
    pub fn with_segment_len(mut self, len: usize) -> SegmentedPcap {
        self.segment_len = len.max(1);
        self
    }

    /// The file header's bytes.
    pub fn header_bytes(&self) -> &[u8] {
        &self.head
    }

    /// File length when opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= PCAP_FILE_HEADER_LEN as u64
    }

    /// Number of segments after the file header.
    pub fn segments(&self) -> u64 {
        let body = self.len.saturating_sub(PCAP_FILE_HEADER_LEN as u64);
        body.div_ceil(self.segment_len as u64)
    }

    /// File offset where segment `k` starts.
    fn segment_start(&self, k: u64) -> u64 {
        (PCAP_FILE_HEADER_LEN as u64).saturating_add(k.saturating_mul(self.segment_len as u64))
    }

    /// The cursor before the first record.
    pub fn start_cursor(&self) -> PcapCursor {
        PcapCursor {
            offset: PCAP_FILE_HEADER_LEN as u64,
            ..PcapCursor::default()
        }
    }

    /// Reads segment `k` into a buffer from `pool`. A segment past the end is empty.
    pub fn read(&self, k: u64, pool: &ChunkPool) -> Result<Segment, CaptureError> {
        let start = self.segment_start(k).min(self.len);
        let end = self.segment_start(k.saturating_add(1)).min(self.len);
        let want = usize::try_from(end - start).unwrap_or(self.segment_len);
        let mut chunk = pool.take(self.buf_len());
        let buf = chunk
            .get_mut()
            .and_then(|b| b.get_mut(..want))
            .ok_or(CaptureError::Io(io::ErrorKind::Other))?;
        let got = read_full_at(&self.file, buf, start).map_err(|e| CaptureError::Io(e.kind()))?;
        Ok(Segment {
            chunk,
            start,
            len: got,
            end,
            valid: got,
        })
    }

    /// Bytes of a segment buffer.
    fn buf_len(&self) -> usize {
        self.segment_len.saturating_add(TAIL_LEN)
    }

    /// Makes `seg.chunk[..need]` hold file bytes, reading past the segment's own bytes (never
    /// past the length at open). `Ok(false)`: the file ends first.
    fn extend(&self, seg: &mut Segment, need: usize) -> Result<bool, CaptureError> {
        if seg.valid >= need {
            return Ok(true);
        }
        let file_end = usize::try_from(self.len.saturating_sub(seg.start)).unwrap_or(usize::MAX);
        if need > file_end.min(self.buf_len()) {
            return Ok(false);
        }
        let Some(buf) = seg.chunk.get_mut().and_then(|b| b.get_mut(seg.valid..need)) else {
            return Err(CaptureError::Io(io::ErrorKind::Other));
        };
        let at = seg.start.saturating_add(seg.valid as u64);
        let got = read_full_at(&self.file, buf, at).map_err(|e| CaptureError::Io(e.kind()))?;
        seg.valid = seg.valid.saturating_add(got);
        Ok(seg.valid >= need)
    }

    /// Finds the records that start in `seg` from `cursor` on, hands each packet to
    /// `on_packet` with its bytes (in the segment's buffer, at the record's `start`) and leaves
    /// `cursor` at the first record of the next segment. On damage the cursor stays at the
    /// damaged record; the packets before it have been handed out.
    pub fn walk<F: FnMut(SegmentRecord, &[u8])>(
        &self,
        seg: &mut Segment,
        cursor: &mut PcapCursor,
        on_packet: &mut F,
    ) -> Result<(), CaptureError> {
        let header = self.header;
        let hdr_len = header.record_header_len;
        while cursor.offset < seg.end {
            self.walk_read(seg, cursor, on_packet)?;
            if cursor.offset >= seg.end {
                break;
            }
            // The next record is not wholly read yet: read on, one record at a time.
            let offset = cursor.offset;
            let packet = cursor.records.saturating_add(1);
            let truncated = CaptureError::Truncated { offset, packet };
            // The segment start is at or before the cursor: walks go in order.
            let Some(at) = offset
                .checked_sub(seg.start)
                .and_then(|a| usize::try_from(a).ok())
            else {
                return Err(CaptureError::Io(io::ErrorKind::Other));
            };
            if !self.extend(seg, at.saturating_add(hdr_len))? {
                return Err(truncated);
            }
            let bytes = seg.chunk.bytes().get(at..).unwrap_or_default();
            let record = header.record_header(bytes, offset, packet)?;
            let record_len = record.len(&header);
            if !self.extend(seg, at.saturating_add(record_len))? {
                return Err(truncated);
            }
            let Some(data) = seg
                .chunk
                .bytes()
                .get(at.saturating_add(hdr_len)..at.saturating_add(record_len))
            else {
                return Err(truncated);
            };
            cursor.records = packet;
            cursor.offset = offset.saturating_add(record_len as u64);
            self.hand_out(&record, at, data, cursor, on_packet);
        }
        Ok(())
    }

    /// Counts the record just walked (at `at` in the segment, `data` its packet bytes) and
    /// hands its packet to `on_packet`, unless the record holds none.
    #[inline(always)]
    fn hand_out<F: FnMut(SegmentRecord, &[u8])>(
        &self,
        record: &PcapRecordHeader,
        at: usize,
        data: &[u8],
        cursor: &mut PcapCursor,
        on_packet: &mut F,
    ) {
        let seq = cursor.stats.packets;
        if self.header.note_record(record, &mut cursor.stats) {
            let meta = PacketMeta {
                ts: record.ts,
                link: self.header.link,
                orig_len: record.orig_len,
                input: self.input,
            };
            let segment_record = SegmentRecord {
                seq,
                meta,
                start: at.saturating_add(self.header.record_header_len),
                len: record.captured,
            };
            on_packet(segment_record, data);
        }
    }

    /// The records of `seg` from `cursor` on that lie wholly in the bytes read so far (nearly
    /// all of a segment's), walked with one bounds check each and no read; stops at the first
    /// that is not all there (the caller reads on) and on damage (the error, with the cursor at
    /// the damaged record, as [`SegmentedPcap::walk`] promises).
    #[inline]
    fn walk_read<F: FnMut(SegmentRecord, &[u8])>(
        &self,
        seg: &Segment,
        cursor: &mut PcapCursor,
        on_packet: &mut F,
    ) -> Result<(), CaptureError> {
        let header = &self.header;
        let hdr_len = header.record_header_len;
        // The segment start is at or before the cursor: walks go in order (the caller's
        // record-by-record path reports it otherwise).
        let Some(mut at) = cursor
            .offset
            .checked_sub(seg.start)
            .and_then(|a| usize::try_from(a).ok())
        else {
            return Ok(());
        };
        let bytes = seg.chunk.bytes().get(..seg.valid).unwrap_or_default();
        while cursor.offset < seg.end {
            let rest = bytes.get(at..).unwrap_or_default();
            if rest.len() < hdr_len {
                break;
            }
            let packet = cursor.records.saturating_add(1);
            let record = header.record_header(rest, cursor.offset, packet)?;
            let record_len = record.len(header);
            let Some(data) = rest.get(hdr_len..record_len) else {
                break;
            };
            cursor.records = packet;
            cursor.offset = cursor.offset.saturating_add(record_len as u64);
            self.hand_out(&record, at, data, cursor, on_packet);
            at += record_len;
        }
        Ok(())
    }

    /// Reads `[from, len at open)` in pieces and hands each to `sink` (the hash of a file whose
    /// records stopped early still covers the whole file).
    pub fn read_rest(
        &self,
        from: u64,
        pool: &ChunkPool,
        sink: &mut dyn FnMut(&Chunk, usize),
    ) -> Result<(), CaptureError> {
        let mut at = from;
        while at < self.len {
            let want = usize::try_from(self.len - at)
                .unwrap_or(self.segment_len)
                .min(self.segment_len);
            let mut chunk = pool.take(want);
            let buf = chunk
                .get_mut()
                .and_then(|b| b.get_mut(..want))
                .ok_or(CaptureError::Io(io::ErrorKind::Other))?;
            let got = read_full_at(&self.file, buf, at).map_err(|e| CaptureError::Io(e.kind()))?;
            if got == 0 {
                break;
            }
            sink(&chunk, got);
            at = at.saturating_add(got as u64);
        }
        Ok(())
    }
}

/// The committed captures in `pcaps/` that the segmented reader takes (for tests), in name
/// order.
#[cfg(test)]
pub(crate) fn committed_classic_pcaps() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let mut paths: Vec<_> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| SegmentedPcap::open(p, 0).is_some())
        .collect();
    paths.sort();
    paths
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match file.read_at(rest, offset.saturating_add(got as u64)) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::capture::{PacketSource, SourceStatus};

    /// What a reader yields: packets, statistics (without `bytes_read`, which depends on how
    /// far ahead each reader reads) and the error that ended it.
    #[derive(Debug, PartialEq)]
    struct Yield {
        packets: Vec<(PacketMeta, Vec<u8>)>,
        stats: String,
        notes: Vec<(String, u64)>,
        error: Option<CaptureError>,
    }

    fn stats_text(stats: &FileStats) -> String {
        let mut stats = stats.clone();
        stats.bytes_read = 0;
        format!("{stats:?}")
    }

    fn notes(stats: &FileStats) -> Vec<(String, u64)> {
        let notes = stats.skipped.iter().filter(|(_, n)| *n > 0);
        notes.map(|(l, n)| (l.to_string(), n)).collect()
    }

    fn by_stream(path: &Path) -> Yield {
        let options = crate::capture::file::FileOptions {
            digest: Default::default(),
        };
        let mut src = FileSource::open_with(path, 3, options).unwrap();
        let mut packets = Vec::new();
        let error = loop {
            match src.next_packets(100, &mut |m, d| packets.push((m, d.to_vec()))) {
                Ok(SourceStatus::End) => break None,
                Ok(_) => {}
                Err(e) => break Some(e),
            }
        };
        Yield {
            packets,
            stats: stats_text(src.stats()),
            notes: notes(src.stats()),
            error,
        }
    }

    /// Reads the segments in groups of three, each group in reverse order (threads read in any
    /// order), and walks them in order.
    fn by_segments(path: &Path, segment_len: usize) -> Yield {
        let file = SegmentedPcap::open(path, 3)
            .unwrap()
            .with_segment_len(segment_len);
        let pool = ChunkPool::default();
        let mut cursor = file.start_cursor();
        let mut packets = Vec::new();
        let mut error = None;
        let mut group = 0;
        'walk: while group < file.segments() {
            let last = (group + 3).min(file.segments());
            let mut segments: Vec<Segment> = (group..last)
                .rev()
                .map(|k| file.read(k, &pool).unwrap())
                .collect();
            segments.reverse();
            for seg in &mut segments {
                let mut records = Vec::new();
                let walked = file.walk(seg, &mut cursor, &mut |r, data: &[u8]| {
                    assert_eq!(data.len(), r.len);
                    records.push((r, data.to_vec()));
                });
                for (r, data) in records {
                    assert_eq!(r.seq, packets.len() as u64);
                    assert_eq!(seg.chunk().bytes()[r.start..r.start + r.len], data);
                    packets.push((r.meta, data));
                }
                if let Err(e) = walked {
                    error = Some(e);
                    break 'walk;
                }
            }
            group = last;
        }
        Yield {
            packets,
            stats: stats_text(&cursor.stats),
            notes: notes(&cursor.stats),
            error,
        }
    }

    const SEGMENT_LENS: [usize; 6] = [1, 7, 100, 1500, 65_536, SEGMENT_LEN];

    #[test]
    fn segments_yield_what_the_stream_reader_yields_on_every_committed_capture() {
        let mut checked = 0;
        for path in committed_classic_pcaps() {
            let expected = by_stream(&path);
            assert!(!expected.packets.is_empty(), "{}", path.display());
            // Tiny segments (a `pread` each) only on small files, to keep the test quick.
            let small = std::fs::metadata(&path).unwrap().len() < 100_000;
            for len in SEGMENT_LENS.into_iter().filter(|&l| small || l >= 100) {
                let got = by_segments(&path, len);
                assert!(got == expected, "{} cut every {len} bytes", path.display());
            }
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} classic pcap captures");
    }

    fn record(sec: u32, usec: u32, data: &[u8], caplen: u32, orig: u32) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [sec, usec, caplen, orig] {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r.extend_from_slice(data);
        r
    }

    fn header(snaplen: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&snaplen.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        h
    }

    /// Records of every kind the reader notes: ordinary, zero-length, over the snap length,
    /// over the original length, going back in time, and one as long as a packet may be.
    fn noted_records() -> Vec<u8> {
        let mut f = header(2000);
        f.extend(record(10, 0, &[1; 60], 60, 60));
        f.extend(record(11, 0, &[], 0, 60));
        f.extend(record(12, 0, &[2; 2100], 2100, 3000));
        f.extend(record(13, 0, &[3; 80], 80, 40));
        f.extend(record(9, 5, &[4; 70], 70, 70));
        let big = vec![5u8; MAX_PACKET_LEN];
        f.extend(record(
            14,
            0,
            &big,
            MAX_PACKET_LEN as u32,
            MAX_PACKET_LEN as u32,
        ));
        f.extend(record(15, 0, &[6; 61], 61, 61));
        f
    }

    fn check_file(bytes: &[u8], what: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pcap");
        std::fs::write(&path, bytes).unwrap();
        let expected = by_stream(&path);
        // Tiny segments (a `pread` each) only on small files, to keep the test quick.
        let small = bytes.len() < 100_000;
        for len in SEGMENT_LENS.into_iter().filter(|&l| small || l >= 100) {
            let got = by_segments(&path, len);
            assert!(got == expected, "{what}, cut every {len} bytes");
        }
    }

    #[test]
    fn noted_records_are_counted_alike() {
        let f = noted_records();
        check_file(&f, "noted records");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pcap");
        std::fs::write(&path, &f).unwrap();
        let y = by_segments(&path, 100);
        assert_eq!(y.packets.len(), 6);
        assert!(y.error.is_none());
        let expected = [
            ("zero_length_packet", 1),
            ("caplen_over_snaplen", 2),
            ("caplen_over_orig_len", 1),
            ("timestamp_backwards", 1),
        ];
        let expected: Vec<(String, u64)> =
            expected.iter().map(|(l, n)| (l.to_string(), *n)).collect();
        assert_eq!(y.notes, expected);
    }

    #[test]
    fn a_file_cut_anywhere_in_its_last_record_ends_alike() {
        let f = noted_records();
        let last = f.len() - (16 + 61);
        for cut in last + 1..f.len() {
            check_file(&f[..cut], &format!("cut at {cut}"));
        }
        // Cut inside the long record too, and right after the header.
        let long_start = last - (16 + MAX_PACKET_LEN);
        for cut in [long_start + 3, long_start + 16, long_start + 5000, 24] {
            check_file(&f[..cut], &format!("cut at {cut}"));
        }
    }

    #[test]
    fn an_oversized_record_stops_both_readers_at_the_same_place() {
        let mut f = noted_records();
        let at = f.len();
        f.extend(record(16, 0, &[], MAX_PACKET_LEN as u32 + 1, 70_000));
        f.extend(vec![0u8; 5000]);
        check_file(&f, "oversized record");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.pcap");
        std::fs::write(&path, &f).unwrap();
        let y = by_segments(&path, 1500);
        assert_eq!(y.packets.len(), 6);
        assert!(
            matches!(y.error, Some(CaptureError::Corrupt { offset, packet: 8, .. }) if offset == at as u64),
            "{:?}",
            y.error
        );
    }

    #[test]
    fn only_regular_files_with_a_valid_pcap_header_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut h = header(65535);
        for (bytes, taken) in [
            (h.clone(), true),
            (h[..23].to_vec(), false),
            (Vec::new(), false),
            (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00".to_vec(), false),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(SegmentedPcap::open(&path, 0).is_some(), taken, "{bytes:?}");
        }
        h[4] = 3; // version 3.4
        std::fs::write(&path, &h).unwrap();
        assert!(SegmentedPcap::open(&path, 0).is_none());
        assert!(SegmentedPcap::open(dir.path(), 0).is_none());
        assert!(SegmentedPcap::open(&dir.path().join("missing"), 0).is_none());
        std::fs::write(&path, header(65535)).unwrap();
        let file = SegmentedPcap::open(&path, 0).unwrap();
        assert_eq!(file.segments(), 0);
    }
}
