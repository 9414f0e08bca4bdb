//! Capture stage: packet sources.
//!
//! Contract: a [`PacketSource`] hands out packets one at a time to a sink closure, borrowing the
//! bytes from its own buffer (no copy). Files are read by [`file::FileSource`] (pcap and pcapng,
//! every byte order and timestamp resolution, mixed link types); live interfaces by
//! [`live::LiveSource`] (libpcap). Damage in a file ends that file with a [`CaptureError`] that
//! names the offset and packet number; everything handed out before it stays valid.

pub mod chunk;
pub mod digest;
pub mod file;
pub mod live;
pub mod segmented;

pub use chunk::Chunk;

use crate::time::Timestamp;

/// A LINKTYPE_* value (<https://www.tcpdump.org/linktypes.html>), as stored in the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order of the capturing machine.
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// PPP (RFC 1661), with or without HDLC-like framing (RFC 1662).
    pub const PPP: LinkType = LinkType(9);
    /// PPP in HDLC-like framing, or Cisco PPP with HDLC framing.
    pub const PPP_HDLC: LinkType = LinkType(50);
    /// DLT_RAW on most platforms.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// DLT_RAW on OpenBSD.
    pub const RAW_DLT14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    /// Cisco HDLC (routers' serial links).
    pub const C_HDLC: LinkType = LinkType(104);
    /// IEEE 802.11 frames without a radio header.
    pub const IEEE802_11: LinkType = LinkType(105);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// IEEE 802.11 frames behind a radiotap header.
    pub const IEEE802_11_RADIOTAP: LinkType = LinkType(127);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// What a source knows about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Length on the wire; may exceed the captured bytes when the snap length cut the packet.
    pub orig_len: u32,
    /// Index of the input (file or interface) in the order given on the command line.
    pub input: u16,
}

/// What [`PacketSource::next_packets_shared`] hands each packet to: its metadata, its bytes and,
/// when the bytes lie in a lendable read buffer, that buffer.
pub type SharedSink<'a> = dyn FnMut(PacketMeta, &[u8], Option<&Chunk>) + 'a;

/// Whether a source has more to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    /// More packets may follow immediately.
    More,
    /// A live source timed out with nothing to deliver; call again.
    Idle,
    /// The input ended cleanly.
    End,
}

/// A source of packets: a file, standard input or an interface.
pub trait PacketSource {
    /// Hands up to `max` packets to `sink` and reports whether more may follow. On error, the
    /// packets already handed out remain valid and the source is finished.
    fn next_packets(
        &mut self,
        max: usize,
        sink: &mut dyn FnMut(PacketMeta, &[u8]),
    ) -> Result<SourceStatus, CaptureError>;

    /// Like [`PacketSource::next_packets`], and each packet also comes with the [`Chunk`] its
    /// bytes are borrowed from when the source reads into shared buffers (files do; libpcap's
    /// buffer cannot be shared). A consumer on another thread may keep a clone of the chunk
    /// instead of copying the bytes: the source never writes into a chunk that is lent out.
    fn next_packets_shared(
        &mut self,
        max: usize,
        sink: &mut SharedSink<'_>,
    ) -> Result<SourceStatus, CaptureError> {
        self.next_packets(max, &mut |meta, data| sink(meta, data, None))
    }
}

/// Why reading a capture stopped early. Small and `Copy`: the file name is added by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureError {
    /// The file could not be opened or read (an `std::io::ErrorKind`).
    Io(std::io::ErrorKind),
    /// Empty input: no global header / section header.
    Empty,
    /// The first bytes are not a pcap or pcapng magic number.
    NotACapture,
    /// A header or record ended before its declared length (`offset` of the record start).
    Truncated { offset: u64, packet: u64 },
    /// A record or block whose lengths are inconsistent (negative, over the cap, misaligned).
    Corrupt {
        offset: u64,
        packet: u64,
        what: CorruptKind,
    },
    /// A live capture failed (interface gone, permission).
    Live(LiveErrorKind),
}

/// What was inconsistent in a corrupt record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptKind {
    /// Captured length larger than the cap for one packet (see `file::MAX_PACKET_LEN`).
    CapturedLengthTooLarge,
    /// pcapng block length shorter than its header, not a multiple of 4, or trailer mismatch.
    BlockLength,
    /// A pcapng packet refers to an interface that was never described.
    UnknownInterface,
    /// Unsupported pcap major version or timestamp format.
    Version,
}

/// Kinds of live capture failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveErrorKind {
    NoSuchDevice,
    PermissionDenied,
    InterfaceDown,
    Other,
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Io(kind) => {
                write!(f, "cannot read: {}", crate::fs_error::describe_kind(*kind))
            }
            CaptureError::Empty => write!(f, "empty file: no capture header"),
            CaptureError::NotACapture => {
                write!(f, "not a pcap or pcapng capture (unknown magic number)")
            }
            CaptureError::Truncated { offset, packet } => {
                write!(f, "truncated at byte offset {offset} (packet {packet})")
            }
            CaptureError::Corrupt {
                offset,
                packet,
                what,
            } => {
                let what = match what {
                    CorruptKind::CapturedLengthTooLarge => "captured length too large",
                    CorruptKind::BlockLength => "bad block length",
                    CorruptKind::UnknownInterface => "packet names an undeclared interface",
                    CorruptKind::Version => "unsupported format version",
                };
                write!(
                    f,
                    "corrupt record at byte offset {offset} (packet {packet}): {what}"
                )
            }
            CaptureError::Live(kind) => write!(f, "live capture failed: {kind:?}"),
        }
    }
}
