//! Writing classic pcap files: tests, benchmarks and generated corpora make their captures
//! with it; the sensor itself never writes one.

use std::io::{self, Write};

use super::pcap::{PCAP_MAGIC_MICROS, PCAP_MAGIC_NANOS, PCAP_RECORD_HEADER_LEN};
use super::{TsResolution, PCAP_FILE_HEADER_LEN};
use crate::capture::LinkType;
use crate::time::Timestamp;

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
