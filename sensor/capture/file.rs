//! Capture files: classic pcap and pcapng, read in place.
//!
//! Contract:
//! * Input: any byte stream ([`FileSource::open`] for a path, [`FileSource::from_reader`] for
//!   standard input). The format is chosen from the first four bytes: the classic pcap magics
//!   (microsecond, nanosecond and the modified "Kuznetzov" variant, either byte order;
//!   draft-ietf-opsawg-pcap §4) or a pcapng Section Header Block (draft-ietf-opsawg-pcapng §4.1),
//!   whose sections may each use their own byte order.
//! * Output: one [`PacketMeta`] and one `&[u8]` per packet record, borrowed from the read buffer:
//!   no copy and no allocation per packet. pcapng interfaces each keep their own link type,
//!   snap length, `if_tsresol` and `if_tsoffset`, so mixed link types in one file are normal.
//! * Copies: the file is read with large `read()` calls into one buffer of [`READ_BUF_LEN`]
//!   bytes allocated at open; when a record straddles the end of the buffer, only that partial
//!   record is moved to the front before the next read. Through
//!   [`PacketSource::next_packets_shared`] the buffer can be lent to other threads as a
//!   [`Chunk`]; while it is lent, reading goes on in another buffer from the source's pool (the
//!   partial record is copied there), so lent bytes never change.
//! * Caps: [`MAX_PACKET_LEN`] captured bytes per packet, [`MAX_BLOCK_LEN`] bytes for a pcapng
//!   block held whole (longer blocks that carry nothing we need are skipped in a stream),
//!   [`MAX_INTERFACES`] interfaces per pcapng section.
//! * Damage that does not stop reading is counted in [`FileStats::skipped`] ([`FileSkip`]).
//!   Damage that does ends the source with a [`CaptureError`] naming the byte offset of the
//!   record and the 1-based packet number (the frame number Wireshark would show; for a
//!   non-packet pcapng block, the number of the next packet; 0 for the file header). Packets
//!   handed out before the error stay valid.
//! * Every byte read is fed to SHA-256 as it is read, on a thread beside the reader that hashes
//!   the read buffers themselves ([`BackgroundDigest`]: lent, never copied or read twice). When
//!   the source ends on damage, the rest of the input is still read into the hash, so
//!   [`FileSource::sha256_hex`] is always the hash of the whole file; it is `None` until the
//!   end is reached, and stays `None` when a read error made the whole file unreadable. Hashing
//!   is the main cost of reading and can be turned off with [`FileOptions::sha256`].
// Packet and file bytes are hostile: no unwrap/expect/panic, no unchecked indexing (issue 8).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::chunk::{Chunk, ChunkPool};
use super::digest::BackgroundDigest;
use super::{
    CaptureError, CorruptKind, LinkType, PacketMeta, PacketSource, SharedSink, SourceStatus,
};
use crate::reason::ReasonCounts;
use crate::reason_enum;
use crate::time::Timestamp;

/// Largest captured length accepted for one packet: 256 KiB, libpcap's `MAXIMUM_SNAPLEN` (the
/// largest snap length tcpdump will use). A classic pcap record above it is damage: the header
/// cannot be trusted to find the next record, so reading stops.
pub const MAX_PACKET_LEN: usize = 262_144;

/// Size of one `read()`, and of each read buffer. 256 KiB makes the per-`read()` cost
/// negligible per packet (a few hundred packets per call) while the bytes just copied in still
/// sit in the core's L2 cache when the records are walked (measured against 1 MiB, which spills
/// to L3). A record longer than this ([`MAX_PACKET_LEN`] plus its header, or a pcapng block up to
/// [`MAX_BLOCK_LEN`]) grows the buffer to fit it.
pub const READ_BUF_LEN: usize = 1 << 18;

/// Largest pcapng block held whole in the buffer. Packet blocks need [`MAX_PACKET_LEN`] plus a
/// header and options; 1 MiB leaves ample room for options. Longer blocks of types we skip
/// anyway (statistics, name resolution, secrets, unknown) are skipped in a stream; a longer
/// section or interface header is damage.
pub const MAX_BLOCK_LEN: usize = 1 << 20;

/// Interfaces declared in one pcapng section. Real captures have a handful (mergecap of a few
/// hundred files at most); 4096 bounds the table at about 100 KiB against a hostile file.
pub const MAX_INTERFACES: usize = 4096;

/// Classic pcap record header: ts_sec, ts_frac, caplen, len (draft-ietf-opsawg-pcap §5).
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// The modified ("Kuznetzov") format appends ifindex (4), protocol (2), pkt_type (1), pad (1).
const PCAP_MODIFIED_RECORD_HEADER_LEN: usize = 24;
/// Classic pcap file header (draft-ietf-opsawg-pcap §4).
pub(super) const PCAP_FILE_HEADER_LEN: usize = 24;

const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
/// Only the upper 6 bits carry FCS information (draft-ietf-opsawg-pcap §4: FCS length, F bit);
/// libpcap's `LT_LINKTYPE` masks them off the same way.
const PCAP_LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// pcapng block types (draft-ietf-opsawg-pcapng §10.1).
const BLOCK_SHB: u32 = 0x0a0d_0d0a;
const BLOCK_IDB: u32 = 0x0000_0001;
const BLOCK_PB: u32 = 0x0000_0002;
const BLOCK_SPB: u32 = 0x0000_0003;
const BLOCK_NRB: u32 = 0x0000_0004;
const BLOCK_ISB: u32 = 0x0000_0005;
const BLOCK_EPB: u32 = 0x0000_0006;
const BLOCK_DSB: u32 = 0x0000_000a;
const BLOCK_CUSTOM: u32 = 0x0000_0bad;
const BLOCK_CUSTOM_NO_COPY: u32 = 0x4000_0bad;
/// Byte-order magic of a Section Header Block, read as little endian from a little-endian file.
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Block type + block total length; the trailing length is 4 more.
const BLOCK_HEADER_LEN: usize = 8;
const BLOCK_TRAILER_LEN: usize = 4;
/// Smallest block: header and trailer with an empty body.
const MIN_BLOCK_LEN: usize = BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN;
/// SHB body before options: magic, major, minor, section length (§4.1).
const SHB_FIXED_LEN: usize = 16;
/// IDB body before options: link type, reserved, snap length (§4.2).
const IDB_FIXED_LEN: usize = 8;
/// EPB / obsolete PB body before the packet: interface, timestamp (2 × 4), caplen, len (§4.3).
const EPB_FIXED_LEN: usize = 20;
/// SPB body before the packet: original length (§4.4).
const SPB_FIXED_LEN: usize = 4;
/// IDB options we use (§4.2): timestamp resolution and offset.
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

reason_enum! {
    /// Things in a capture file that are skipped or only noted; reading goes on.
    pub enum FileSkip {
        /// A packet record with no captured bytes (skipped).
        ZeroLengthPacket => "zero_length_packet",
        /// Captured length above the file's or interface's snap length (delivered).
        CaplenOverSnaplen => "caplen_over_snaplen",
        /// Captured length above the original length (delivered).
        CaplenOverOrigLen => "caplen_over_orig_len",
        /// Timestamp earlier than the previous packet's (delivered).
        TimestampBackwards => "timestamp_backwards",
        /// pcapng packet with more than [`MAX_PACKET_LEN`] captured bytes (skipped).
        PacketTooLarge => "packet_too_large",
        /// pcapng block of a type we do not know (skipped).
        UnknownBlockType => "unknown_block_type",
        /// pcapng Interface Statistics Block (skipped).
        InterfaceStatsBlock => "interface_stats_block",
        /// pcapng Name Resolution Block (skipped).
        NameResolutionBlock => "name_resolution_block",
        /// pcapng Decryption Secrets Block (skipped).
        DecryptionSecretsBlock => "decryption_secrets_block",
        /// pcapng Custom Block (skipped).
        CustomBlock => "custom_block",
        /// pcapng Interface Description Block beyond [`MAX_INTERFACES`] (ignored).
        TooManyInterfaces => "too_many_interfaces",
        /// pcapng options that run past their block (the rest of the options is ignored).
        MalformedOptions => "malformed_options",
    }
}

/// Statistics of one capture file, updated as it is read.
#[derive(Clone, Debug, Default)]
pub struct FileStats {
    /// Packets handed to the sink.
    pub packets: u64,
    /// Captured bytes handed to the sink.
    pub captured_bytes: u64,
    /// Bytes read from the file (header, records and skipped blocks included).
    pub bytes_read: u64,
    /// Earliest packet timestamp seen.
    pub earliest_ts: Option<Timestamp>,
    /// Latest packet timestamp seen.
    pub latest_ts: Option<Timestamp>,
    /// pcapng sections seen (0 for classic pcap).
    pub sections: u64,
    /// pcapng interfaces declared, all sections together (0 for classic pcap).
    pub interfaces: u64,
    /// Records and blocks skipped or noted, by reason.
    pub skipped: ReasonCounts<FileSkip>,
    /// Timestamp of the previous packet, to notice time going backwards.
    previous_ts: Option<Timestamp>,
}

impl FileStats {
    fn note_packet(&mut self, ts: Timestamp, captured: usize) {
        self.packets = self.packets.saturating_add(1);
        self.captured_bytes = self
            .captured_bytes
            .saturating_add(u64::try_from(captured).unwrap_or(u64::MAX));
        if self.previous_ts.is_some_and(|prev| ts < prev) {
            self.skipped.incr(FileSkip::TimestampBackwards);
        }
        self.previous_ts = Some(ts);
        if self.earliest_ts.is_none_or(|t| ts < t) {
            self.earliest_ts = Some(ts);
        }
        if self.latest_ts.is_none_or(|t| ts > t) {
            self.latest_ts = Some(ts);
        }
    }
}

/// How a [`FileSource`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// Hash every byte read with SHA-256 ([`FileSource::sha256_hex`]). On by default. It runs on
    /// a second thread, but it is still the main cost of reading (about 1.5 GB/s per core with
    /// SHA-NI, against about 10 GB/s for walking the records): a run is at best as fast as the
    /// hash, so callers that do not report the hash can turn it off.
    pub sha256: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions { sha256: true }
    }
}

/// Timestamp resolution of a classic pcap file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    Micros,
    Nanos,
}

/// The format of a capture file, as found in its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// Classic pcap; `modified` is the Kuznetzov variant with 24-byte record headers.
    Pcap {
        resolution: TsResolution,
        big_endian: bool,
        modified: bool,
    },
    /// pcapng (byte order may change per section).
    Pcapng,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            ByteOrder::Little => u16::from_le_bytes(b),
            ByteOrder::Big => u16::from_be_bytes(b),
        }
    }

    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            ByteOrder::Little => u32::from_le_bytes(b),
            ByteOrder::Big => u32::from_be_bytes(b),
        }
    }

    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            ByteOrder::Little => u64::from_le_bytes(b),
            ByteOrder::Big => u64::from_be_bytes(b),
        }
    }
}

/// `N` bytes of `bytes` at `at`, or `None` past the end.
fn field<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    bytes.get(at..end)?.try_into().ok()
}

/// `usize` from a length read from the file (saturates on 16-bit targets: caps then reject it).
fn len_usize(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// The classic pcap file header, as needed per record.
#[derive(Clone, Copy, Debug)]
pub(super) struct PcapHeader {
    order: ByteOrder,
    /// Nanoseconds per unit of the fractional timestamp field (1000 or 1).
    frac_ns: u64,
    pub(super) record_header_len: usize,
    snaplen: u32,
    pub(super) link: LinkType,
}

/// A classic pcap record header, read and checked against the caps.
#[derive(Clone, Copy, Debug)]
pub(super) struct PcapRecordHeader {
    pub(super) ts: Timestamp,
    caplen: u32,
    pub(super) orig_len: u32,
    /// Captured bytes (at most [`MAX_PACKET_LEN`]).
    pub(super) captured: usize,
}

impl PcapRecordHeader {
    /// Bytes of the whole record, header included.
    pub(super) fn len(&self, header: &PcapHeader) -> usize {
        header.record_header_len.saturating_add(self.captured)
    }
}

impl PcapHeader {
    /// Reads the record header at the start of `bytes` (which hold at least
    /// `record_header_len` bytes), found at file `offset` as record number `packet` (1-based).
    /// A captured length over [`MAX_PACKET_LEN`] is damage that stops reading: the header
    /// cannot be trusted to find the next record.
    pub(super) fn record_header(
        &self,
        bytes: &[u8],
        offset: u64,
        packet: u64,
    ) -> Result<PcapRecordHeader, CaptureError> {
        // Record header (draft-ietf-opsawg-pcap §5): ts_sec, ts_frac, caplen, len.
        let (Some(sec), Some(frac), Some(caplen), Some(orig_len)) = (
            field::<4>(bytes, 0),
            field::<4>(bytes, 4),
            field::<4>(bytes, 8),
            field::<4>(bytes, 12),
        ) else {
            return Err(CaptureError::Truncated { offset, packet });
        };
        let caplen = self.order.u32(caplen);
        let captured = len_usize(caplen);
        if captured > MAX_PACKET_LEN {
            return Err(CaptureError::Corrupt {
                offset,
                packet,
                what: CorruptKind::CapturedLengthTooLarge,
            });
        }
        let ts = Timestamp::from_secs_nanos(
            u64::from(self.order.u32(sec)),
            u64::from(self.order.u32(frac)).saturating_mul(self.frac_ns),
        );
        Ok(PcapRecordHeader {
            ts,
            caplen,
            orig_len: self.order.u32(orig_len),
            captured,
        })
    }

    /// Counts a whole record in `stats`; returns whether its packet is delivered (a record
    /// without captured bytes is not).
    pub(super) fn note_record(&self, record: &PcapRecordHeader, stats: &mut FileStats) -> bool {
        if record.captured == 0 {
            stats.skipped.incr(FileSkip::ZeroLengthPacket);
            return false;
        }
        if self.snaplen != 0 && record.caplen > self.snaplen {
            stats.skipped.incr(FileSkip::CaplenOverSnaplen);
        }
        if record.caplen > record.orig_len {
            stats.skipped.incr(FileSkip::CaplenOverOrigLen);
        }
        stats.note_packet(record.ts, record.captured);
        true
    }
}

/// How to turn pcapng timestamp units into nanoseconds (`if_tsresol`, §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsScale {
    /// Units coarser than or equal to 1 ns: multiply.
    Mul(u64),
    /// Decimal units finer than 1 ns: divide.
    Div(u64),
    /// Binary units 2^-n s: ns = units × 10^9 / 2^n.
    Pow2(u32),
    /// Units so fine (below 10^-28 s) that every timestamp is 0 ns.
    Zero,
}

impl TsScale {
    /// From the `if_tsresol` byte: MSB clear = 10^-n, MSB set = 2^-n (§4.2).
    fn from_tsresol(v: u8) -> TsScale {
        let n = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            return TsScale::Pow2(n);
        }
        match 9u32.checked_sub(n) {
            Some(up) => TsScale::Mul(10u64.pow(up)),
            None => n
                .checked_sub(9)
                .and_then(|down| 10u64.checked_pow(down))
                .map_or(TsScale::Zero, TsScale::Div),
        }
    }

    fn to_ns(self, units: u64) -> u64 {
        match self {
            TsScale::Mul(m) => units.saturating_mul(m),
            TsScale::Div(d) => units.checked_div(d).unwrap_or(0),
            TsScale::Pow2(n) => {
                let ns = u128::from(units).saturating_mul(1_000_000_000) >> n.min(127);
                u64::try_from(ns).unwrap_or(u64::MAX)
            }
            TsScale::Zero => 0,
        }
    }
}

/// One pcapng interface (IDB).
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    scale: TsScale,
    /// `if_tsoffset`: seconds added to every timestamp (§4.2).
    offset_secs: i64,
}

impl Interface {
    fn timestamp(&self, units: u64) -> Timestamp {
        let ns = self.scale.to_ns(units);
        if self.offset_secs == 0 {
            return Timestamp(ns);
        }
        let shifted = i128::from(ns)
            .saturating_add(i128::from(self.offset_secs).saturating_mul(1_000_000_000));
        Timestamp(u64::try_from(shifted.max(0)).unwrap_or(u64::MAX))
    }
}

/// Per-section pcapng state.
#[derive(Debug)]
struct PcapngState {
    order: ByteOrder,
    interfaces: Vec<Interface>,
}

#[derive(Debug)]
enum Format {
    Pcap(PcapHeader),
    Pcapng(PcapngState),
}

/// The byte stream, its read buffer and its running hash.
struct Input {
    reader: Box<dyn Read + Send>,
    /// The read buffer. It may be lent out (see [`Chunk`]): then the next read goes to a fresh
    /// buffer from `pool`, never into this one.
    buf: Chunk,
    pool: ChunkPool,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    bytes_read: u64,
    /// `None` when the caller turned hashing off ([`FileOptions::sha256`]).
    hasher: Option<BackgroundDigest>,
}

impl Input {
    fn new(reader: Box<dyn Read + Send>, sha256: bool) -> Input {
        let pool = ChunkPool::default();
        Input {
            reader,
            buf: pool.take(READ_BUF_LEN),
            pool,
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            bytes_read: 0,
            hasher: sha256.then(BackgroundDigest::start),
        }
    }

    /// Unconsumed bytes.
    fn available(&self) -> &[u8] {
        self.buf.bytes().get(self.start..self.end).unwrap_or(&[])
    }

    fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// File offset of the first unconsumed byte.
    fn offset(&self) -> u64 {
        self.buf_offset
            .saturating_add(u64::try_from(self.start).unwrap_or(u64::MAX))
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
    }

    /// Makes at least `need` bytes available, reading as needed. `Ok(false)`: the input ended
    /// with fewer. Callers bound `need` by their caps; the buffer grows to `need` at most.
    #[inline]
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.len() >= need {
            return Ok(true);
        }
        self.fill_slow(need)
    }

    /// The reading part of [`Input::fill`], kept out of line so the per-record check stays small.
    #[inline(never)]
    fn fill_slow(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.eof {
            return Ok(false);
        }
        // Move the partial record (always shorter than `need`) to the front, so that each read
        // gets the whole rest of the buffer: in place while the buffer is ours alone, else into
        // a fresh buffer (the lent one must not change under its borrowers).
        // Invariant start <= end <= buf.len(); checked so that a slip cannot panic.
        let (start, end) = (self.start, self.end);
        if self.buf.get_mut().is_none() {
            let mut fresh = self.pool.take(need.max(READ_BUF_LEN));
            let partial = self.buf.bytes().get(start..end).unwrap_or(&[]);
            if let Some(to) = fresh.get_mut().and_then(|b| b.get_mut(..partial.len())) {
                to.copy_from_slice(partial);
            }
            self.buf = fresh;
            self.rebase(start);
        } else if start > 0 {
            if let Some(buf) = self
                .buf
                .get_mut()
                .filter(|b| start <= end && end <= b.len())
            {
                buf.copy_within(start..end, 0);
                self.rebase(start);
            }
        }
        let from = self.end;
        let result = self.read_until(need);
        // Every byte read goes to the hash, also when the read then failed (the digest is
        // dropped then anyway).
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&self.buf, from, self.end.saturating_sub(from));
        }
        result
    }

    /// Reads into the buffer (ours alone) after `end` until `need` bytes are unconsumed.
    fn read_until(&mut self, need: usize) -> Result<bool, CaptureError> {
        let Input {
            reader,
            buf,
            end,
            start,
            eof,
            bytes_read,
            ..
        } = self;
        let Some(buf) = buf.get_mut() else {
            // Unreachable: the caller made the buffer ours.
            return Err(CaptureError::Io(io::ErrorKind::Other));
        };
        if buf.len() < need {
            buf.resize(need, 0);
        }
        while end.saturating_sub(*start) < need {
            let Some(space) = buf.get_mut(*end..) else {
                return Ok(false);
            };
            match reader.read(space) {
                Ok(0) => {
                    *eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    let n = n.min(space.len());
                    *end = end.saturating_add(n);
                    *bytes_read = bytes_read.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CaptureError::Io(e.kind())),
            }
        }
        Ok(true)
    }

    /// The unconsumed bytes, which started at `start`, now start at the front of the buffer.
    fn rebase(&mut self, start: usize) {
        self.buf_offset = self
            .buf_offset
            .saturating_add(u64::try_from(start).unwrap_or(u64::MAX));
        self.end = self.len();
        self.start = 0;
    }

    /// Consumes `n` bytes without keeping them (they are still hashed). `Ok(false)`: the input
    /// ended first.
    fn skip(&mut self, mut n: u64) -> Result<bool, CaptureError> {
        loop {
            let have = u64::try_from(self.len()).unwrap_or(u64::MAX);
            if have >= n {
                self.consume(usize::try_from(n).unwrap_or(usize::MAX));
                return Ok(true);
            }
            n = n.saturating_sub(have);
            self.start = self.end;
            if !self.fill(1)? {
                return Ok(false);
            }
        }
    }

    /// Reads the rest of the input into the hash.
    fn drain(&mut self) -> Result<(), CaptureError> {
        loop {
            self.start = self.end;
            if !self.fill(1)? {
                return Ok(());
            }
        }
    }
}

/// A pcap or pcapng file (or stream) read in place. See the module docs for the contract.
pub struct FileSource {
    input: Input,
    format: Format,
    file_format: FileFormat,
    stats: FileStats,
    /// Packet records seen so far (delivered or skipped): the number of the last one.
    records: u64,
    input_index: u16,
    finished: bool,
    digest: Option<[u8; 32]>,
}

impl FileSource {
    /// Opens a capture file and reads its header, with the default [`FileOptions`].
    pub fn open(path: &Path, input: u16) -> Result<FileSource, CaptureError> {
        FileSource::open_with(path, input, FileOptions::default())
    }

    /// Opens a capture file and reads its header.
    pub fn open_with(
        path: &Path,
        input: u16,
        options: FileOptions,
    ) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError::Io(e.kind()))?;
        FileSource::from_reader_with(Box::new(file), input, options)
    }

    /// Reads a capture from any byte stream (standard input for `-`) and reads its header, with
    /// the default [`FileOptions`].
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        input: u16,
    ) -> Result<FileSource, CaptureError> {
        FileSource::from_reader_with(reader, input, FileOptions::default())
    }

    /// Reads a capture from any byte stream and reads its header.
    pub fn from_reader_with(
        reader: Box<dyn Read + Send>,
        input: u16,
        options: FileOptions,
    ) -> Result<FileSource, CaptureError> {
        let mut input_stream = Input::new(reader, options.sha256);
        let (format, file_format) = read_file_header(&mut input_stream)?;
        let mut source = FileSource {
            input: input_stream,
            format,
            file_format,
            stats: FileStats::default(),
            records: 0,
            input_index: input,
            finished: false,
            digest: None,
        };
        source.stats.bytes_read = source.input.bytes_read;
        Ok(source)
    }

    /// Statistics so far.
    pub fn stats(&self) -> &FileStats {
        &self.stats
    }

    /// The format found in the file header.
    pub fn format(&self) -> FileFormat {
        self.file_format
    }

    /// SHA-256 of the whole file in lower-case hex, once the source has ended (cleanly or on
    /// damage). `None` before the end, when a read error kept part of the file unread, or when
    /// hashing was turned off.
    pub fn sha256_hex(&self) -> Option<String> {
        self.digest.as_ref().map(|d| crate::hex::lower_hex(d))
    }

    /// Ends the source: reads the rest of the input into the hash unless reading failed or
    /// there is no hash to complete.
    fn finish(&mut self, read_failed: bool) {
        self.finished = true;
        if read_failed || self.input.hasher.is_none() || self.input.drain().is_err() {
            return;
        }
        if let Some(hasher) = self.input.hasher.take() {
            self.digest = hasher.finish();
        }
    }

    fn next_pcap<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &mut self,
        header: PcapHeader,
        max: usize,
        sink: &mut F,
    ) -> Result<SourceStatus, CaptureError> {
        let hdr_len = header.record_header_len;
        for _ in 0..max {
            let offset = self.input.offset();
            let packet = self.records.saturating_add(1);
            let truncated = CaptureError::Truncated { offset, packet };
            if !self.input.fill(hdr_len)? {
                return if self.input.len() == 0 {
                    Ok(SourceStatus::End)
                } else {
                    Err(truncated)
                };
            }
            let record = header.record_header(self.input.available(), offset, packet)?;
            let record_len = record.len(&header);
            if !self.input.fill(record_len)? {
                return Err(truncated);
            }
            self.records = packet;
            if !header.note_record(&record, &mut self.stats) {
                self.input.consume(record_len);
                continue;
            }
            let ts = record.ts;
            let orig_len = record.orig_len;
            let Some(data) = self.input.available().get(hdr_len..record_len) else {
                return Err(truncated);
            };
            let meta = PacketMeta {
                ts,
                link: header.link,
                orig_len,
                input: self.input_index,
            };
            sink(meta, data, Some(&self.input.buf));
            self.input.consume(record_len);
        }
        Ok(SourceStatus::More)
    }

    fn next_pcapng<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &mut self,
        max: usize,
        sink: &mut F,
    ) -> Result<SourceStatus, CaptureError> {
        let FileSource {
            input,
            format,
            stats,
            records,
            input_index,
            ..
        } = self;
        let Format::Pcapng(ng) = format else {
            return Ok(SourceStatus::End);
        };
        for _ in 0..max {
            let offset = input.offset();
            let packet = records.saturating_add(1);
            let truncated = CaptureError::Truncated { offset, packet };
            let corrupt = |what| CaptureError::Corrupt {
                offset,
                packet,
                what,
            };
            if !input.fill(BLOCK_HEADER_LEN)? {
                return if input.len() == 0 {
                    Ok(SourceStatus::End)
                } else {
                    Err(truncated)
                };
            }
            let Some(type_bytes) = field::<4>(input.available(), 0) else {
                return Err(truncated);
            };
            // The SHB type is a palindrome: it reads the same in both byte orders (§4.1).
            let block_type = ng.order.u32(type_bytes);
            if block_type == BLOCK_SHB {
                // A new section may switch byte order: read it before the block length.
                if !input.fill(BLOCK_HEADER_LEN + 4)? {
                    return Err(truncated);
                }
                let magic = field::<4>(input.available(), BLOCK_HEADER_LEN);
                ng.order = magic
                    .and_then(section_byte_order)
                    .ok_or(corrupt(CorruptKind::Version))?;
            }
            let Some(len_bytes) = field::<4>(input.available(), 4) else {
                return Err(truncated);
            };
            let block_len_u32 = ng.order.u32(len_bytes);
            let block_len = len_usize(block_len_u32);
            // §3.1: the total length includes header and trailer and is a multiple of 4.
            if block_len < MIN_BLOCK_LEN || block_len % 4 != 0 {
                return Err(corrupt(CorruptKind::BlockLength));
            }
            let is_packet = matches!(block_type, BLOCK_EPB | BLOCK_SPB | BLOCK_PB);
            if block_len > MAX_BLOCK_LEN {
                // Too long to hold: skip it in a stream if we can do without it.
                match block_type {
                    BLOCK_SHB | BLOCK_IDB => return Err(corrupt(CorruptKind::BlockLength)),
                    _ if is_packet => {
                        *records = packet;
                        stats.skipped.incr(FileSkip::PacketTooLarge);
                    }
                    other => stats.skipped.incr(skipped_block_reason(other)),
                }
                let body_and_header = u64::from(block_len_u32).saturating_sub(4);
                if !input.skip(body_and_header)? || !input.fill(BLOCK_TRAILER_LEN)? {
                    return Err(truncated);
                }
                let trailer = field::<4>(input.available(), 0).map(|b| ng.order.u32(b));
                if trailer != Some(block_len_u32) {
                    return Err(corrupt(CorruptKind::BlockLength));
                }
                input.consume(BLOCK_TRAILER_LEN);
                continue;
            }
            if !input.fill(block_len)? {
                return Err(truncated);
            }
            let Some(block) = input.available().get(..block_len) else {
                return Err(truncated);
            };
            let trailer_at = block_len.saturating_sub(BLOCK_TRAILER_LEN);
            let trailer = field::<4>(block, trailer_at).map(|b| ng.order.u32(b));
            if trailer != Some(block_len_u32) {
                return Err(corrupt(CorruptKind::BlockLength));
            }
            let body = block.get(BLOCK_HEADER_LEN..trailer_at).unwrap_or(&[]);
            match block_type {
                BLOCK_SHB => {
                    // §4.1: magic, major (1), minor, section length, options.
                    let major = field::<2>(body, 4).map(|b| ng.order.u16(b));
                    if body.len() < SHB_FIXED_LEN {
                        return Err(corrupt(CorruptKind::BlockLength));
                    }
                    if major != Some(1) {
                        return Err(corrupt(CorruptKind::Version));
                    }
                    ng.interfaces.clear();
                    stats.sections = stats.sections.saturating_add(1);
                }
                BLOCK_IDB => {
                    let iface = parse_idb(body, ng.order, stats)
                        .ok_or(corrupt(CorruptKind::BlockLength))?;
                    stats.interfaces = stats.interfaces.saturating_add(1);
                    if ng.interfaces.len() < MAX_INTERFACES {
                        ng.interfaces.push(iface);
                    } else {
                        stats.skipped.incr(FileSkip::TooManyInterfaces);
                    }
                }
                BLOCK_EPB | BLOCK_PB | BLOCK_SPB => {
                    *records = packet;
                    let Some(pkt) = parse_packet_block(block_type, body, ng).map_err(corrupt)?
                    else {
                        // Interface lookups succeeded but the packet is skipped.
                        stats.skipped.incr(FileSkip::PacketTooLarge);
                        input.consume(block_len);
                        continue;
                    };
                    let captured = pkt.data.len();
                    if captured == 0 {
                        stats.skipped.incr(FileSkip::ZeroLengthPacket);
                    } else {
                        if pkt.snaplen != 0 && captured > len_usize(pkt.snaplen) {
                            stats.skipped.incr(FileSkip::CaplenOverSnaplen);
                        }
                        if captured > len_usize(pkt.orig_len) {
                            stats.skipped.incr(FileSkip::CaplenOverOrigLen);
                        }
                        // A Simple Packet Block has no timestamp: keep the clock where it was.
                        let ts = pkt.ts.or(stats.previous_ts).unwrap_or(Timestamp::ZERO);
                        stats.note_packet(ts, captured);
                        let meta = PacketMeta {
                            ts,
                            link: pkt.link,
                            orig_len: pkt.orig_len,
                            input: *input_index,
                        };
                        sink(meta, pkt.data, Some(&input.buf));
                    }
                }
                other => stats.skipped.incr(skipped_block_reason(other)),
            }
            input.consume(block_len);
        }
        Ok(SourceStatus::More)
    }
}

impl PacketSource for FileSource {
    fn next_packets(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(PacketMeta, &[u8]),
    ) -> Result<SourceStatus, CaptureError> {
        self.read_lent(max, &mut |meta, data, _| sink(meta, data))
    }

    fn next_packets_shared(
        &mut self,
        max: usize,
        sink: &mut SharedSink<'_>,
    ) -> Result<SourceStatus, CaptureError> {
        self.read_lent(max, sink)
    }
}

impl FileSource {
    /// [`PacketSource::next_packets_shared`] with a sink the compiler can inline into the record
    /// loop (the replay loop's hot path: no indirect call per packet).
    pub fn read_lent<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &mut self,
        max: usize,
        sink: &mut F,
    ) -> Result<SourceStatus, CaptureError> {
        if self.finished {
            return Ok(SourceStatus::End);
        }
        let result = match &self.format {
            Format::Pcap(header) => {
                let header = *header;
                self.next_pcap(header, max, sink)
            }
            Format::Pcapng(_) => self.next_pcapng(max, sink),
        };
        match result {
            Ok(SourceStatus::End) => self.finish(false),
            Err(CaptureError::Io(_)) => self.finish(true),
            Err(_) => self.finish(false),
            Ok(_) => {}
        }
        self.stats.bytes_read = self.input.bytes_read;
        result
    }
}

/// Reads the pcap file header, or checks the first pcapng block header (left unconsumed: the
/// block walker parses the Section Header Block like any later one).
fn read_file_header(input: &mut Input) -> Result<(Format, FileFormat), CaptureError> {
    let header_truncated = CaptureError::Truncated {
        offset: 0,
        packet: 0,
    };
    if !input.fill(4)? {
        let head = input.available();
        if head.is_empty() {
            return Err(CaptureError::Empty);
        }
        return if is_magic_prefix(head) {
            Err(header_truncated)
        } else {
            Err(CaptureError::NotACapture)
        };
    }
    let magic = field::<4>(input.available(), 0).ok_or(header_truncated)?;
    if u32::from_le_bytes(magic) == BLOCK_SHB {
        if !input.fill(BLOCK_HEADER_LEN + 4)? {
            return Err(header_truncated);
        }
        let order = field::<4>(input.available(), BLOCK_HEADER_LEN)
            .and_then(section_byte_order)
            .ok_or(CaptureError::NotACapture)?;
        let state = PcapngState {
            order,
            interfaces: Vec::new(),
        };
        return Ok((Format::Pcapng(state), FileFormat::Pcapng));
    }
    let (order, value) = if is_pcap_magic(u32::from_le_bytes(magic)) {
        (ByteOrder::Little, u32::from_le_bytes(magic))
    } else if is_pcap_magic(u32::from_be_bytes(magic)) {
        (ByteOrder::Big, u32::from_be_bytes(magic))
    } else {
        return Err(CaptureError::NotACapture);
    };
    if !input.fill(PCAP_FILE_HEADER_LEN)? {
        return Err(header_truncated);
    }
    let (header, file_format) = parse_pcap_file_header(input.available(), order, value)?;
    input.consume(PCAP_FILE_HEADER_LEN);
    Ok((Format::Pcap(header), file_format))
}

/// The classic pcap file header at the start of `head`, whose magic number reads `magic` in
/// byte order `order`.
fn parse_pcap_file_header(
    head: &[u8],
    order: ByteOrder,
    magic: u32,
) -> Result<(PcapHeader, FileFormat), CaptureError> {
    let header_truncated = CaptureError::Truncated {
        offset: 0,
        packet: 0,
    };
    // §4: magic, major, minor, reserved1 (thiszone), reserved2 (sigfigs), snaplen, link type.
    let (Some(major), Some(snaplen), Some(link)) = (
        field::<2>(head, 4),
        field::<4>(head, 16),
        field::<4>(head, 20),
    ) else {
        return Err(header_truncated);
    };
    if order.u16(major) != 2 {
        return Err(CaptureError::Corrupt {
            offset: 0,
            packet: 0,
            what: CorruptKind::Version,
        });
    }
    let resolution = if magic == PCAP_MAGIC_NANOS {
        TsResolution::Nanos
    } else {
        TsResolution::Micros
    };
    let modified = magic == PCAP_MAGIC_MODIFIED;
    let header = PcapHeader {
        order,
        frac_ns: if resolution == TsResolution::Nanos {
            1
        } else {
            1_000
        },
        record_header_len: if modified {
            PCAP_MODIFIED_RECORD_HEADER_LEN
        } else {
            PCAP_RECORD_HEADER_LEN
        },
        snaplen: order.u32(snaplen),
        link: LinkType(order.u32(link) & PCAP_LINKTYPE_MASK),
    };
    let file_format = FileFormat::Pcap {
        resolution,
        big_endian: order == ByteOrder::Big,
        modified,
    };
    Ok((header, file_format))
}

/// The classic pcap file header, when `head` (the first bytes of a file) holds a whole and
/// valid one; `None` for anything else (pcapng, damage: [`FileSource`] reports those).
pub(super) fn classic_pcap_header(head: &[u8]) -> Option<PcapHeader> {
    let magic = field::<4>(head, 0)?;
    let (order, value) = if is_pcap_magic(u32::from_le_bytes(magic)) {
        (ByteOrder::Little, u32::from_le_bytes(magic))
    } else if is_pcap_magic(u32::from_be_bytes(magic)) {
        (ByteOrder::Big, u32::from_be_bytes(magic))
    } else {
        return None;
    };
    let (header, _) =
        parse_pcap_file_header(head.get(..PCAP_FILE_HEADER_LEN)?, order, value).ok()?;
    Some(header)
}

fn is_pcap_magic(v: u32) -> bool {
    matches!(
        v,
        PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS | PCAP_MAGIC_MODIFIED
    )
}

/// Whether a file shorter than 4 bytes starts like one of the magics (then it is truncated
/// rather than something else).
fn is_magic_prefix(head: &[u8]) -> bool {
    let magics = [
        PCAP_MAGIC_MICROS,
        PCAP_MAGIC_NANOS,
        PCAP_MAGIC_MODIFIED,
        BLOCK_SHB,
    ];
    magics
        .iter()
        .any(|m| m.to_le_bytes().starts_with(head) || m.to_be_bytes().starts_with(head))
}

/// Byte order of a section from its byte-order magic (§4.1).
fn section_byte_order(magic: [u8; 4]) -> Option<ByteOrder> {
    if u32::from_le_bytes(magic) == PCAPNG_BYTE_ORDER_MAGIC {
        Some(ByteOrder::Little)
    } else if u32::from_be_bytes(magic) == PCAPNG_BYTE_ORDER_MAGIC {
        Some(ByteOrder::Big)
    } else {
        None
    }
}

fn skipped_block_reason(block_type: u32) -> FileSkip {
    match block_type {
        BLOCK_ISB => FileSkip::InterfaceStatsBlock,
        BLOCK_NRB => FileSkip::NameResolutionBlock,
        BLOCK_DSB => FileSkip::DecryptionSecretsBlock,
        BLOCK_CUSTOM | BLOCK_CUSTOM_NO_COPY => FileSkip::CustomBlock,
        _ => FileSkip::UnknownBlockType,
    }
}

/// Parses an Interface Description Block body (§4.2). `None` if shorter than its fixed part.
fn parse_idb(body: &[u8], order: ByteOrder, stats: &mut FileStats) -> Option<Interface> {
    let link = order.u16(field::<2>(body, 0)?);
    let snaplen = order.u32(field::<4>(body, 4)?);
    let mut iface = Interface {
        link: LinkType(u32::from(link)),
        snaplen,
        scale: TsScale::Mul(1_000), // default: microseconds
        offset_secs: 0,
    };
    // Options (§3.5): code, length, value padded to 4 bytes, until opt_endofopt. Each option
    // takes at least 4 bytes, so the block length (≤ MAX_BLOCK_LEN) bounds this loop.
    let mut opts = body.get(IDB_FIXED_LEN..).unwrap_or(&[]);
    while !opts.is_empty() {
        let (Some(code), Some(len)) = (field::<2>(opts, 0), field::<2>(opts, 2)) else {
            stats.skipped.incr(FileSkip::MalformedOptions);
            break;
        };
        let code = order.u16(code);
        let len = usize::from(order.u16(len));
        if code == OPT_END {
            break;
        }
        let padded = len.saturating_add(3) & !3;
        let Some(value) = opts.get(4..4usize.saturating_add(len)) else {
            stats.skipped.incr(FileSkip::MalformedOptions);
            break;
        };
        match code {
            OPT_IF_TSRESOL => {
                if let Some(&v) = value.first() {
                    iface.scale = TsScale::from_tsresol(v);
                }
            }
            OPT_IF_TSOFFSET => {
                if let Some(v) = field::<8>(value, 0) {
                    // A signed 64-bit count of seconds: reinterpret the two's complement bits.
                    iface.offset_secs = order.u64(v) as i64;
                }
            }
            _ => {}
        }
        opts = opts.get(4usize.saturating_add(padded)..).unwrap_or(&[]);
    }
    Some(iface)
}

/// One packet out of a packet block.
struct BlockPacket<'a> {
    data: &'a [u8],
    /// `None` for a Simple Packet Block.
    ts: Option<Timestamp>,
    orig_len: u32,
    link: LinkType,
    snaplen: u32,
}

/// Parses an EPB (§4.3), SPB (§4.4) or obsolete PB (Appendix A) body. `Ok(None)`: the packet is
/// longer than [`MAX_PACKET_LEN`] and skipped.
fn parse_packet_block<'a>(
    block_type: u32,
    body: &'a [u8],
    ng: &PcapngState,
) -> Result<Option<BlockPacket<'a>>, CorruptKind> {
    let order = ng.order;
    if block_type == BLOCK_SPB {
        let orig_len = order.u32(field::<4>(body, 0).ok_or(CorruptKind::BlockLength)?);
        let iface = ng.interfaces.first().ok_or(CorruptKind::UnknownInterface)?;
        // §4.4: the captured length is the smallest of the original length, the snap length
        // and what the block holds (which includes padding).
        let room = body.len().saturating_sub(SPB_FIXED_LEN);
        let mut captured = room.min(len_usize(orig_len));
        if iface.snaplen != 0 {
            captured = captured.min(len_usize(iface.snaplen));
        }
        if captured > MAX_PACKET_LEN {
            return Ok(None);
        }
        let end = SPB_FIXED_LEN.saturating_add(captured);
        let data = body
            .get(SPB_FIXED_LEN..end)
            .ok_or(CorruptKind::BlockLength)?;
        return Ok(Some(BlockPacket {
            data,
            ts: None,
            orig_len,
            link: iface.link,
            snaplen: iface.snaplen,
        }));
    }
    let iface_id = if block_type == BLOCK_PB {
        // The obsolete Packet Block has a 16-bit interface id followed by a drops count.
        u32::from(order.u16(field::<2>(body, 0).ok_or(CorruptKind::BlockLength)?))
    } else {
        order.u32(field::<4>(body, 0).ok_or(CorruptKind::BlockLength)?)
    };
    let (Some(ts_high), Some(ts_low), Some(caplen), Some(orig_len)) = (
        field::<4>(body, 4),
        field::<4>(body, 8),
        field::<4>(body, 12),
        field::<4>(body, 16),
    ) else {
        return Err(CorruptKind::BlockLength);
    };
    let iface = ng
        .interfaces
        .get(len_usize(iface_id))
        .ok_or(CorruptKind::UnknownInterface)?;
    let captured = len_usize(order.u32(caplen));
    let room = body.len().saturating_sub(EPB_FIXED_LEN);
    if captured > room {
        return Err(CorruptKind::BlockLength);
    }
    if captured > MAX_PACKET_LEN {
        return Ok(None);
    }
    let end = EPB_FIXED_LEN.saturating_add(captured);
    let data = body
        .get(EPB_FIXED_LEN..end)
        .ok_or(CorruptKind::BlockLength)?;
    let units = (u64::from(order.u32(ts_high)) << 32) | u64::from(order.u32(ts_low));
    Ok(Some(BlockPacket {
        data,
        ts: Some(iface.timestamp(units)),
        orig_len: order.u32(orig_len),
        link: iface.link,
        snaplen: iface.snaplen,
    }))
}

/// Writes classic pcap files (little endian, microsecond or nanosecond timestamps).
pub struct PcapWriter<W: Write> {
    out: W,
    resolution: TsResolution,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (draft-ietf-opsawg-pcap §4, version 2.4).
    pub fn new(
        mut out: W,
        link: LinkType,
        snaplen: u32,
        resolution: TsResolution,
    ) -> io::Result<PcapWriter<W>> {
        let magic = match resolution {
            TsResolution::Micros => PCAP_MAGIC_MICROS,
            TsResolution::Nanos => PCAP_MAGIC_NANOS,
        };
        let mut header = [0u8; PCAP_FILE_HEADER_LEN];
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&link.0.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, resolution })
    }

    /// Writes one record: `data` is the captured bytes, `orig_len` the length on the wire.
    /// Fails with `InvalidInput` if the seconds or the length do not fit in 32 bits.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let secs = u32::try_from(ts.secs()).map_err(|_| invalid("timestamp after 2106"))?;
        let frac = match self.resolution {
            TsResolution::Micros => ts.subsec_nanos() / 1_000,
            TsResolution::Nanos => ts.subsec_nanos(),
        };
        let caplen = u32::try_from(data.len()).map_err(|_| invalid("packet over 4 GiB"))?;
        let mut header = [0u8; PCAP_RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&frac.to_le_bytes());
        header[8..12].copy_from_slice(&caplen.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(data)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

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
    fn hashing_can_be_turned_off() {
        let file = written(
            TsResolution::Micros,
            LinkType::ETHERNET,
            &[(1_000, b"a", 1)],
        );
        let mut bad = file.clone();
        bad.extend_from_slice(&[1, 2, 3]);
        for bytes in [file, bad] {
            let options = FileOptions { sha256: false };
            let mut source =
                FileSource::from_reader_with(Box::new(Cursor::new(bytes.clone())), 0, options)
                    .unwrap();
            let mut n = 0;
            while let Ok(SourceStatus::More) = source.next_packets(8, &mut |_, _| n += 1) {}
            assert_eq!(n, 1);
            assert_eq!(source.sha256_hex(), None);
            assert_eq!(source.stats().bytes_read, bytes.len() as u64);
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
}
