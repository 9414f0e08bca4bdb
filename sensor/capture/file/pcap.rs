//! Classic pcap (draft-ietf-opsawg-pcap): the file header, record headers, and the record
//! loop of [`FileSource`]. Also used by [`crate::capture::segmented`], which reads records at
//! offsets of its own.

use super::{
    field, len_usize, ByteOrder, FileFormat, FileSkip, FileSource, FileStats, TsResolution,
    MAX_PACKET_LEN,
};
use crate::capture::chunk::Chunk;
use crate::capture::{CaptureError, CorruptKind, LinkType, PacketMeta, SourceStatus};
use crate::time::Timestamp;

/// Classic pcap record header: ts_sec, ts_frac, caplen, len (draft-ietf-opsawg-pcap §5).
pub(super) const PCAP_RECORD_HEADER_LEN: usize = 16;
/// The modified ("Kuznetzov") format appends ifindex (4), protocol (2), pkt_type (1), pad (1).
pub(super) const PCAP_MODIFIED_RECORD_HEADER_LEN: usize = 24;
/// Classic pcap file header (draft-ietf-opsawg-pcap §4).
pub(in crate::capture) const PCAP_FILE_HEADER_LEN: usize = 24;

pub(super) const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub(super) const PCAP_MAGIC_NANOS: u32 = 0xa1b2_3c4d;
pub(super) const PCAP_MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
/// Only the upper 6 bits carry FCS information (draft-ietf-opsawg-pcap §4: FCS length, F bit);
/// libpcap's `LT_LINKTYPE` masks them off the same way.
pub(super) const PCAP_LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// The classic pcap file header, as needed per record.
#[derive(Clone, Copy, Debug)]
pub(in crate::capture) struct PcapHeader {
    order: ByteOrder,
    /// Nanoseconds per unit of the fractional timestamp field (1000 or 1).
    frac_ns: u64,
    pub(in crate::capture) record_header_len: usize,
    snaplen: u32,
    pub(in crate::capture) link: LinkType,
}

/// A classic pcap record header, read and checked against the caps.
#[derive(Clone, Copy, Debug)]
pub(in crate::capture) struct PcapRecordHeader {
    pub(in crate::capture) ts: Timestamp,
    caplen: u32,
    pub(in crate::capture) orig_len: u32,
    /// Captured bytes (at most [`MAX_PACKET_LEN`]).
    pub(in crate::capture) captured: usize,
}

impl PcapRecordHeader {
    /// Bytes of the whole record, header included.
    pub(in crate::capture) fn len(&self, header: &PcapHeader) -> usize {
        header.record_header_len.saturating_add(self.captured)
    }
}

impl PcapHeader {
    /// Reads the record header at the start of `bytes` (which hold at least
    /// `record_header_len` bytes), found at file `offset` as record number `packet` (1-based).
    /// A captured length over [`MAX_PACKET_LEN`] is damage that stops reading: the header
    /// cannot be trusted to find the next record.
    pub(in crate::capture) fn record_header(
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
    pub(in crate::capture) fn note_record(
        &self,
        record: &PcapRecordHeader,
        stats: &mut FileStats,
    ) -> bool {
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

    /// Counts a whole record ([`PcapHeader::note_record`]) and hands its packet, `data` in
    /// `chunk`, to `sink`, unless the record holds none.
    #[inline(always)]
    fn hand_out<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &self,
        record: &PcapRecordHeader,
        data: &[u8],
        stats: &mut FileStats,
        input: u16,
        chunk: &Chunk,
        sink: &mut F,
    ) {
        if self.note_record(record, stats) {
            let meta = PacketMeta {
                ts: record.ts,
                link: self.link,
                orig_len: record.orig_len,
                input,
            };
            sink(meta, data, Some(chunk));
        }
    }
}

impl FileSource {
    pub(super) fn next_pcap<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &mut self,
        header: PcapHeader,
        max: usize,
        sink: &mut F,
    ) -> Result<SourceStatus, CaptureError> {
        let hdr_len = header.record_header_len;
        let mut left = max;
        while left > 0 {
            left -= self.deliver_buffered(&header, left, sink)?;
            if left == 0 {
                break;
            }
            // The next record is not wholly in the buffer: read on, one record at a time.
            left -= 1;
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
            let Some(data) = self.input.available().get(hdr_len..record_len) else {
                return Err(truncated);
            };
            self.records = packet;
            let input = self.input_index;
            header.hand_out(&record, data, &mut self.stats, input, &self.input.buf, sink);
            self.input.consume(record_len);
        }
        Ok(SourceStatus::More)
    }

    /// Delivers up to `max` records that lie wholly in the read buffer (most of them: a
    /// 256 KiB read holds hundreds), with one bounds check per record and no reads; returns
    /// how many it took. Stops at the first record that is not all there (the caller reads
    /// on) or whose header is damaged (the error, after the records before it were
    /// delivered and consumed, as the record-by-record path would).
    #[inline]
    fn deliver_buffered<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
        &mut self,
        header: &PcapHeader,
        max: usize,
        sink: &mut F,
    ) -> Result<usize, CaptureError> {
        let FileSource {
            input,
            stats,
            records,
            input_index,
            ..
        } = self;
        let hdr_len = header.record_header_len;
        let start = input.offset();
        let bytes = input.available();
        let (mut pos, mut taken) = (0usize, 0usize);
        let mut damage = None;
        while taken < max {
            let rest = bytes.get(pos..).unwrap_or_default();
            if rest.len() < hdr_len {
                break;
            }
            let offset = start.saturating_add(pos as u64);
            let packet = records.saturating_add(1);
            let record = match header.record_header(rest, offset, packet) {
                Ok(record) => record,
                Err(e) => {
                    damage = Some(e);
                    break;
                }
            };
            let record_len = record.len(header);
            let Some(data) = rest.get(hdr_len..record_len) else {
                break;
            };
            *records = packet;
            taken += 1;
            pos += record_len;
            header.hand_out(&record, data, stats, *input_index, &input.buf, sink);
        }
        input.consume(pos);
        match damage {
            Some(e) => Err(e),
            None => Ok(taken),
        }
    }
}

/// The classic pcap file header at the start of `head`, whose magic number reads `magic` in
/// byte order `order`.
pub(super) fn parse_pcap_file_header(
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
pub(in crate::capture) fn classic_pcap_header(head: &[u8]) -> Option<PcapHeader> {
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

pub(super) fn is_pcap_magic(v: u32) -> bool {
    matches!(
        v,
        PCAP_MAGIC_MICROS | PCAP_MAGIC_NANOS | PCAP_MAGIC_MODIFIED
    )
}
