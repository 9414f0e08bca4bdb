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
//! * Every byte read is fed, as it is read, to the input's hashes ([`InputDigest`]: the SHA-256
//!   of the first and last MiB always, a digest of the whole input in the algorithm of
//!   [`FileOptions::digest`] on a thread beside the reader, which hashes the read buffers
//!   themselves: lent, never copied or read twice). When the source ends on damage, the rest of
//!   the input is still read into the hashes, so [`FileSource::digests`] always describe the
//!   whole file; they are empty until the end is reached, and stay empty when a read error made
//!   part of the file unreadable.
//!
//! Layout: `pcap.rs` reads classic pcap (file header, record headers), `pcapng.rs` walks pcapng
//! blocks (sections, interfaces, packet blocks), `input.rs` is the lending, hashing read buffer
//! both read from, `writer.rs` writes classic pcap files (tests, benchmarks, corpora), and
//! `tests.rs` holds the tests.

mod input;
mod pcap;
mod pcapng;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::chunk::Chunk;
use super::digest::{DigestAlgorithm, DigestOptions, InputDigests};
use super::{CaptureError, PacketMeta, PacketSource, SharedSink, SourceStatus};
use crate::reason::ReasonCounts;
use crate::reason_enum;
use crate::time::Timestamp;

use input::Input;
pub(in crate::capture) use pcap::{
    classic_pcap_header, PcapHeader, PcapRecordHeader, PCAP_FILE_HEADER_LEN,
};
use pcap::{
    is_pcap_magic, parse_pcap_file_header, PCAP_MAGIC_MICROS, PCAP_MAGIC_MODIFIED, PCAP_MAGIC_NANOS,
};
use pcapng::{section_byte_order, PcapngState, BLOCK_HEADER_LEN, BLOCK_SHB};
pub use writer::PcapWriter;

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
    /// Which hashes of the input to compute ([`FileSource::digests`]). The library's default is
    /// a whole-file SHA-256 (tests and tools compare it with `sha256sum`); it runs on a second
    /// thread but bounds the speed of reading (about 1.3 GB/s per core with SHA-NI, against
    /// about 10 GB/s for walking the records), so `ksensor replay` asks for it only when told.
    pub digest: DigestOptions,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            digest: DigestOptions {
                full: Some(DigestAlgorithm::Sha256),
            },
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

#[derive(Debug)]
enum Format {
    Pcap(PcapHeader),
    Pcapng(PcapngState),
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
    digests: InputDigests,
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
        // A regular file gives its last MiB back at the end (see `capture::digest`); a pipe or
        // device named by path is a stream.
        let again = file
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|_| file.try_clone().ok());
        FileSource::start(Box::new(file), again, input, options)
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
        FileSource::start(reader, None, input, options)
    }

    fn start(
        reader: Box<dyn Read + Send>,
        file: Option<File>,
        input: u16,
        options: FileOptions,
    ) -> Result<FileSource, CaptureError> {
        let mut input_stream = Input::new(reader, file, options.digest);
        let (format, file_format) = read_file_header(&mut input_stream)?;
        let mut source = FileSource {
            input: input_stream,
            format,
            file_format,
            stats: FileStats::default(),
            records: 0,
            input_index: input,
            finished: false,
            digests: InputDigests::default(),
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

    /// The input's hashes once the source has ended (cleanly or on damage): those of the whole
    /// file. Empty before the end and when a read error kept part of the file unread; no full
    /// digest unless one was asked for.
    pub fn digests(&self) -> InputDigests {
        self.digests
    }

    /// SHA-256 of the whole file in lower-case hex, when that is the full digest computed (see
    /// [`FileSource::digests`]).
    pub fn sha256_hex(&self) -> Option<String> {
        self.digests
            .full
            .filter(|d| d.algorithm == DigestAlgorithm::Sha256)
            .map(|d| crate::hex::lower_hex(&d.value))
    }

    /// Ends the source: reads the rest of the input into the hashes unless reading failed.
    fn finish(&mut self, read_failed: bool) {
        self.finished = true;
        if read_failed || self.input.digest.is_none() || self.input.drain().is_err() {
            self.input.digest = None;
            return;
        }
        if let Some(digest) = self.input.digest.take() {
            self.digests = digest.finish();
        }
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
