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
//!   record is moved to the front before the next read.
//! * Caps: [`MAX_PACKET_LEN`] captured bytes per packet, [`MAX_BLOCK_LEN`] bytes for a pcapng
//!   block held whole (longer blocks that carry nothing we need are skipped in a stream),
//!   [`MAX_INTERFACES`] interfaces per pcapng section.
//! * Damage that does not stop reading is counted in [`FileStats::skipped`] ([`FileSkip`]).
//!   Damage that does ends the source with a [`CaptureError`] naming the byte offset of the
//!   record and the 1-based packet number (the frame number Wireshark would show; for a
//!   non-packet pcapng block, the number of the next packet; 0 for the file header). Packets
//!   handed out before the error stay valid.
//! * Every byte read is fed to SHA-256 as it is read. When the source ends on damage, the rest
//!   of the input is still read into the hash, so [`FileSource::sha256_hex`] is always the hash
//!   of the whole file; it is `None` until the end is reached, and stays `None` when a read
//!   error made the whole file unreadable.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{CaptureError, CorruptKind, LinkType, PacketMeta, PacketSource, SourceStatus};
use crate::reason::ReasonCounts;
use crate::reason_enum;
use crate::time::Timestamp;

/// Largest captured length accepted for one packet: 256 KiB, libpcap's `MAXIMUM_SNAPLEN` (the
/// largest snap length tcpdump will use). A classic pcap record above it is damage: the header
/// cannot be trusted to find the next record, so reading stops.
pub const MAX_PACKET_LEN: usize = 262_144;

/// Size of the read buffer, allocated once per source. 1 MiB makes the per-`read()` cost
/// negligible per packet and holds any record we keep whole ([`MAX_BLOCK_LEN`]), so in practice
/// the buffer never grows.
pub const READ_BUF_LEN: usize = 1 << 20;

/// Largest pcapng block held whole in the buffer. Packet blocks need [`MAX_PACKET_LEN`] plus a
/// header and options; 1 MiB leaves ample room for options. Longer blocks of types we skip
/// anyway (statistics, name resolution, secrets, unknown) are skipped in a stream; a longer
/// section or interface header is damage.
pub const MAX_BLOCK_LEN: usize = READ_BUF_LEN;

/// Interfaces declared in one pcapng section. Real captures have a handful (mergecap of a few
/// hundred files at most); 4096 bounds the table at about 100 KiB against a hostile file.
pub const MAX_INTERFACES: usize = 4096;

/// Classic pcap record header: ts_sec, ts_frac, caplen, len (draft-ietf-opsawg-pcap §5).
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// The modified ("Kuznetzov") format appends ifindex (4), protocol (2), pkt_type (1), pad (1).
const PCAP_MODIFIED_RECORD_HEADER_LEN: usize = 24;
/// Classic pcap file header (draft-ietf-opsawg-pcap §4).
const PCAP_FILE_HEADER_LEN: usize = 24;

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
        if self.earliest_ts.map_or(true, |t| ts < t) {
            self.earliest_ts = Some(ts);
        }
        if self.latest_ts.map_or(true, |t| ts > t) {
            self.latest_ts = Some(ts);
        }
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
struct PcapHeader {
    order: ByteOrder,
    /// Nanoseconds per unit of the fractional timestamp field (1000 or 1).
    frac_ns: u64,
    record_header_len: usize,
    snaplen: u32,
    link: LinkType,
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
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    buf_offset: u64,
    eof: bool,
    bytes_read: u64,
    hasher: Sha256,
}

impl Input {
    fn new(reader: Box<dyn Read + Send>) -> Input {
        Input {
            reader,
            buf: vec![0; READ_BUF_LEN],
            start: 0,
            end: 0,
            buf_offset: 0,
            eof: false,
            bytes_read: 0,
            hasher: Sha256::new(),
        }
    }

    /// Unconsumed bytes.
    fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
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
    fn fill(&mut self, need: usize) -> Result<bool, CaptureError> {
        if self.len() >= need {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        // Move the partial record (always shorter than `need`) to the front, so that each read
        // gets the whole rest of the buffer.
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.buf_offset = self
                .buf_offset
                .saturating_add(u64::try_from(self.start).unwrap_or(u64::MAX));
            self.end = self.len();
            self.start = 0;
        }
        if self.buf.len() < need {
            self.buf.resize(need, 0);
        }
        while self.len() < need {
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.reader.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    let n = n.min(space.len());
                    self.hasher.update(space.get(..n).unwrap_or(&[]));
                    self.end = self.end.saturating_add(n);
                    self.bytes_read = self
                        .bytes_read
                        .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(CaptureError::Io(e.kind())),
            }
        }
        Ok(true)
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
    /// Opens a capture file and reads its header.
    pub fn open(path: &Path, input: u16) -> Result<FileSource, CaptureError> {
        let file = File::open(path).map_err(|e| CaptureError::Io(e.kind()))?;
        FileSource::from_reader(Box::new(file), input)
    }

    /// Reads a capture from any byte stream (standard input for `-`) and reads its header.
    pub fn from_reader(
        reader: Box<dyn Read + Send>,
        input: u16,
    ) -> Result<FileSource, CaptureError> {
        let mut input_stream = Input::new(reader);
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
    /// damage). `None` before the end, or when a read error kept part of the file unread.
    pub fn sha256_hex(&self) -> Option<String> {
        use std::fmt::Write as _;
        let digest = self.digest.as_ref()?;
        let mut hex = String::with_capacity(64);
        for b in digest {
            let _ = write!(hex, "{b:02x}");
        }
        Some(hex)
    }

    /// Ends the source: reads the rest of the input into the hash unless reading failed.
    fn finish(&mut self, read_failed: bool) {
        self.finished = true;
        if read_failed || self.input.drain().is_err() {
            return;
        }
        let hasher = std::mem::take(&mut self.input.hasher);
        self.digest = Some(hasher.finalize().into());
    }

    fn next_pcap(
        &mut self,
        header: PcapHeader,
        max: usize,
        sink: &mut dyn FnMut(PacketMeta, &[u8]),
    ) -> Result<SourceStatus, CaptureError> {
        let hdr_len = header.record_header_len;
        let order = header.order;
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
            // Record header (draft-ietf-opsawg-pcap §5): ts_sec, ts_frac, caplen, len.
            let avail = self.input.available();
            let (Some(sec), Some(frac), Some(caplen), Some(orig_len)) = (
                field::<4>(avail, 0),
                field::<4>(avail, 4),
                field::<4>(avail, 8),
                field::<4>(avail, 12),
            ) else {
                return Err(truncated);
            };
            let caplen = order.u32(caplen);
            let orig_len = order.u32(orig_len);
            let captured = len_usize(caplen);
            if captured > MAX_PACKET_LEN {
                return Err(CaptureError::Corrupt {
                    offset,
                    packet,
                    what: CorruptKind::CapturedLengthTooLarge,
                });
            }
            let record_len = hdr_len.saturating_add(captured);
            if !self.input.fill(record_len)? {
                return Err(truncated);
            }
            self.records = packet;
            if captured == 0 {
                self.stats.skipped.incr(FileSkip::ZeroLengthPacket);
                self.input.consume(record_len);
                continue;
            }
            if header.snaplen != 0 && caplen > header.snaplen {
                self.stats.skipped.incr(FileSkip::CaplenOverSnaplen);
            }
            if caplen > orig_len {
                self.stats.skipped.incr(FileSkip::CaplenOverOrigLen);
            }
            let ts = Timestamp::from_secs_nanos(
                u64::from(order.u32(sec)),
                u64::from(order.u32(frac)).saturating_mul(header.frac_ns),
            );
            self.stats.note_packet(ts, captured);
            let Some(data) = self.input.available().get(hdr_len..record_len) else {
                return Err(truncated);
            };
            let meta = PacketMeta {
                ts,
                link: header.link,
                orig_len,
                input: self.input_index,
            };
            sink(meta, data);
            self.input.consume(record_len);
        }
        Ok(SourceStatus::More)
    }

    fn next_pcapng(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(PacketMeta, &[u8]),
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
                    let Some(pkt) =
                        parse_packet_block(block_type, body, ng).map_err(|what| corrupt(what))?
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
                        sink(meta, pkt.data);
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
    // §4: magic, major, minor, reserved1 (thiszone), reserved2 (sigfigs), snaplen, link type.
    let head = input.available();
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
    let resolution = if value == PCAP_MAGIC_NANOS {
        TsResolution::Nanos
    } else {
        TsResolution::Micros
    };
    let modified = value == PCAP_MAGIC_MODIFIED;
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
    input.consume(PCAP_FILE_HEADER_LEN);
    let file_format = FileFormat::Pcap {
        resolution,
        big_endian: order == ByteOrder::Big,
        modified,
    };
    Ok((Format::Pcap(header), file_format))
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
