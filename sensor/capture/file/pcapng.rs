//! pcapng (draft-ietf-opsawg-pcapng): sections, interfaces and packet blocks, and the block
//! loop of [`FileSource`]. Each section has its own byte order and interfaces; each interface
//! its own link type, snap length and timestamp units.

use super::{
    field, len_usize, ByteOrder, FileSkip, FileSource, FileStats, Format, MAX_BLOCK_LEN,
    MAX_INTERFACES, MAX_PACKET_LEN,
};
use crate::capture::chunk::Chunk;
use crate::capture::{CaptureError, CorruptKind, LinkType, PacketMeta, SourceStatus};
use crate::time::Timestamp;

/// pcapng block types (draft-ietf-opsawg-pcapng §10.1).
pub(super) const BLOCK_SHB: u32 = 0x0a0d_0d0a;
pub(super) const BLOCK_IDB: u32 = 0x0000_0001;
pub(super) const BLOCK_PB: u32 = 0x0000_0002;
pub(super) const BLOCK_SPB: u32 = 0x0000_0003;
pub(super) const BLOCK_NRB: u32 = 0x0000_0004;
pub(super) const BLOCK_ISB: u32 = 0x0000_0005;
pub(super) const BLOCK_EPB: u32 = 0x0000_0006;
pub(super) const BLOCK_DSB: u32 = 0x0000_000a;
pub(super) const BLOCK_CUSTOM: u32 = 0x0000_0bad;
pub(super) const BLOCK_CUSTOM_NO_COPY: u32 = 0x4000_0bad;
/// Byte-order magic of a Section Header Block, read as little endian from a little-endian file.
pub(super) const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Block type + block total length; the trailing length is 4 more.
pub(super) const BLOCK_HEADER_LEN: usize = 8;
pub(super) const BLOCK_TRAILER_LEN: usize = 4;
/// Smallest block: header and trailer with an empty body.
pub(super) const MIN_BLOCK_LEN: usize = BLOCK_HEADER_LEN + BLOCK_TRAILER_LEN;
/// SHB body before options: magic, major, minor, section length (§4.1).
pub(super) const SHB_FIXED_LEN: usize = 16;
/// IDB body before options: link type, reserved, snap length (§4.2).
pub(super) const IDB_FIXED_LEN: usize = 8;
/// EPB / obsolete PB body before the packet: interface, timestamp (2 × 4), caplen, len (§4.3).
pub(super) const EPB_FIXED_LEN: usize = 20;
/// SPB body before the packet: original length (§4.4).
pub(super) const SPB_FIXED_LEN: usize = 4;
/// IDB options we use (§4.2): timestamp resolution and offset.
pub(super) const OPT_END: u16 = 0;
pub(super) const OPT_IF_TSRESOL: u16 = 9;
pub(super) const OPT_IF_TSOFFSET: u16 = 14;

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
pub(super) struct Interface {
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
pub(super) struct PcapngState {
    pub(super) order: ByteOrder,
    pub(super) interfaces: Vec<Interface>,
}

impl FileSource {
    pub(super) fn next_pcapng<F: FnMut(PacketMeta, &[u8], Option<&Chunk>) + ?Sized>(
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

/// Byte order of a section from its byte-order magic (§4.1).
pub(super) fn section_byte_order(magic: [u8; 4]) -> Option<ByteOrder> {
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
