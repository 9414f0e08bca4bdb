//! QUIC client Initial packets: decryption and CRYPTO reassembly up to the ClientHello
//! (RFC 9000 §17.2.2, §19.6; RFC 9001 §5; RFC 9369 for QUIC v2; draft-29), and Google QUIC's
//! client hellos ([`gquic`]: the clear CHLO of Q043 and Q046, the sealed CHLO of Q050 and the
//! sealed TLS ClientHello of T050 and T051).
//!
//! Contract:
//! * Input: UDP payloads **sent by the client endpoint** of one flow, one call per datagram, in
//!   capture order. The caller decides who the client is (the side that sent the first Initial)
//!   and never feeds server datagrams; a server Initial fed anyway fails to open with client
//!   keys, is counted `decrypt_failed` and leaves the state untouched.
//! * Output: a [`QuicOutcome`] per datagram; once the ClientHello is complete, the server name as
//!   a [`ClientHelloOutcome`] from [`crate::proto::tls::sni_from_handshake`], after which the
//!   state is finished and the caller should bypass the flow.
//! * State ([`InitialState`], owned by the caller's flow entry): the client's Initial keys
//!   (derived once per Destination Connection ID and version), the reassembled CRYPTO stream
//!   (copied, at most [`MAX_CRYPTO_BYTES`]) and one scratch buffer into which each packet is
//!   copied to be decrypted in place. Both buffers are reused: no allocation per datagram once
//!   they have grown to the flow's largest packet / ClientHello.
//! * Caps: [`MAX_PACKETS_PER_DATAGRAM`] coalesced packets, [`MAX_PACKET_LEN`] bytes per packet,
//!   [`MAX_CRYPTO_BYTES`] of CRYPTO stream, [`MAX_CRYPTO_RANGES`] gaps, [`MAX_FRAMES_PER_PACKET`]
//!   frames and [`MAX_ACK_RANGES`] ACK ranges per packet.
//!
//! Connection IDs: Initial keys come from the Destination Connection ID of the client's first
//! Initial (RFC 9001 §5.2). The client later switches to the server's connection ID but keeps
//! those keys, so an Initial with another DCID is first tried with the current keys; if that
//! fails, keys are derived from its own DCID and, if they open it, they replace the old ones
//! and the CRYPTO stream starts over (the client's new Initial after a Retry, RFC 9000
//! §17.2.5.2). A packet that opens with neither is counted `decrypt_failed`.

mod crypto_stream;
mod cursor;
mod frames;
mod gquic;
mod keys;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod vectors;

pub use crypto_stream::{MAX_CRYPTO_BYTES, MAX_CRYPTO_RANGES};
pub use frames::{MAX_ACK_RANGES, MAX_FRAMES_PER_PACKET};
pub use gquic::MAX_CHLO_ENTRIES;
pub use keys::{VERSION_1, VERSION_2, VERSION_DRAFT_29, VERSION_Q050, VERSION_T050, VERSION_T051};

use crypto_stream::{CryptoStream, HelloState};
use cursor::Cursor;
use keys::{ClientKeys, Frames, LongType, Version};

use super::tls::{self, ClientHelloOutcome};

/// Longest connection ID in QUIC v1 and v2 (RFC 9000 §17.2).
pub const MAX_CID_LEN: usize = 20;

/// Coalesced packets walked in one datagram (RFC 9000 §12.2). A datagram holds at most one
/// packet per long-header type plus a short-header one; 8 allows for padding-like junk packets
/// and bounds the work per datagram.
pub const MAX_PACKETS_PER_DATAGRAM: usize = 8;

/// Largest packet opened. Client Initials fill one datagram sized to the path MTU (1200–1500
/// bytes in practice); 16 KiB covers jumbo frames and loopback tests while bounding the copy
/// into the scratch buffer.
pub const MAX_PACKET_LEN: usize = 16 * 1024;

crate::reason_enum! {
    /// Why a datagram, packet or frame yielded nothing.
    pub enum QuicSkip {
        /// Truncated or malformed long header, Length past the datagram, or a packet too short
        /// for the header protection sample.
        BadHeader => "bad_header",
        /// A long-header version we cannot open (anything but v1, v2, draft-29, Q050, T050 and
        /// T051).
        UnsupportedVersion => "unsupported_version",
        /// The packet did not authenticate with the client's Initial keys.
        DecryptFailed => "decrypt_failed",
        /// A truncated frame or a frame type not allowed in Initial packets.
        BadFrame => "bad_frame",
        /// More than `MAX_FRAMES_PER_PACKET` frames in one packet.
        TooManyFrames => "too_many_frames",
        /// More than `MAX_PACKETS_PER_DATAGRAM` coalesced packets.
        TooManyPackets => "too_many_packets",
        /// A packet longer than `MAX_PACKET_LEN`.
        PacketTooLarge => "packet_too_large",
        /// CRYPTO data past `MAX_CRYPTO_BYTES`, dropped.
        CryptoOutOfRange => "crypto_out_of_range",
        /// CRYPTO data dropped because `MAX_CRYPTO_RANGES` gaps were already tracked.
        CryptoTooFragmented => "crypto_too_fragmented",
        /// The ClientHello declares more than `MAX_CRYPTO_BYTES`.
        CryptoBufferFull => "crypto_buffer_full",
        /// The CRYPTO stream does not start with a ClientHello.
        NotClientHello => "not_client_hello",
    }
}

/// What one datagram did to an [`InitialState`]. Large (the host name is inline, as in
/// [`ClientHelloOutcome`]) so that returning a name never allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuicOutcome {
    /// Not a QUIC long-header packet (a short-header packet cannot be told from noise).
    NotQuic,
    /// QUIC, but no client Initial in it: Version Negotiation, Retry, 0-RTT or Handshake
    /// packets only.
    NotClientInitial,
    /// At least one Initial opened; the ClientHello is not complete yet.
    Pending,
    /// The ClientHello is complete; this is what the TLS parser found in it. Returned once.
    ClientHello(ClientHelloOutcome),
    /// The state already returned `ClientHello` or a final failure; the datagram was ignored.
    Finished,
    /// Nothing opened, or the CRYPTO stream is unusable (`not_client_hello`,
    /// `crypto_buffer_full`: final, the state is finished).
    Failed(QuicSkip),
}

/// A cheap test for "this datagram starts with a client Initial we could open": long header
/// and fixed bit set (RFC 9000 §17.2), a version we know (v1, v2, draft-29), the Initial type
/// for that version (RFC 9369 §3.2 renumbers types) and connection ID lengths of at most 20.
/// Size is not checked (see [`MIN_CLIENT_INITIAL_DATAGRAM`]); server Initials pass too. Clients
/// that grease the fixed bit (RFC 9287) are not recognised here, though
/// [`InitialState::process_datagram`] accepts them.
pub fn looks_like_initial(datagram: &[u8]) -> bool {
    if gquic::clear_payload(datagram).is_some() {
        return true;
    }
    let mut c = Cursor::new(datagram);
    let (Some(first), Some(wire)) = (c.u8(), c.u32()) else {
        return false;
    };
    if first & 0xc0 != 0xc0 {
        return false;
    }
    let Some(version) = keys::version(wire) else {
        return false;
    };
    if version.long_type(first) != LongType::Initial {
        return false;
    }
    let Some(dcid_len) = c.u8().map(usize::from) else {
        return false;
    };
    if dcid_len > MAX_CID_LEN || c.bytes(dcid_len).is_none() {
        return false;
    }
    matches!(c.u8(), Some(scid_len) if usize::from(scid_len) <= MAX_CID_LEN)
}

/// A long-header packet located in a datagram.
enum Packet<'a> {
    /// First byte without the long-header bit: a short-header packet (or padding), which runs
    /// to the end of the datagram.
    Short,
    /// Version Negotiation (version 0, RFC 9000 §17.2.1): runs to the end of the datagram.
    VersionNegotiation,
    /// Retry (RFC 9000 §17.2.5): no Length field, runs to the end of the datagram.
    Retry,
    /// 0-RTT or Handshake: skipped.
    Other { len: usize },
    Initial {
        version: &'static Version,
        dcid: &'a [u8],
        /// The whole packet, first byte to the end of its Length.
        bytes: &'a [u8],
        pn_offset: usize,
    },
}

/// Locates the first packet of `datagram` (RFC 9000 §17.2, §17.2.2).
fn next_packet(datagram: &[u8]) -> Result<Packet<'_>, QuicSkip> {
    let mut c = Cursor::new(datagram);
    let first = c.u8().ok_or(QuicSkip::BadHeader)?;
    if first & 0x80 == 0 {
        return Ok(Packet::Short);
    }
    let wire = c.u32().ok_or(QuicSkip::BadHeader)?;
    if wire == 0 {
        return Ok(Packet::VersionNegotiation);
    }
    // Past the version, the layout is version-specific (RFC 8999 §5.1).
    let version = keys::version(wire).ok_or(QuicSkip::UnsupportedVersion)?;
    let dcid_len = usize::from(c.u8().ok_or(QuicSkip::BadHeader)?);
    if dcid_len > MAX_CID_LEN {
        return Err(QuicSkip::BadHeader);
    }
    let dcid = c.bytes(dcid_len).ok_or(QuicSkip::BadHeader)?;
    let scid_len = usize::from(c.u8().ok_or(QuicSkip::BadHeader)?);
    if scid_len > MAX_CID_LEN {
        return Err(QuicSkip::BadHeader);
    }
    c.bytes(scid_len).ok_or(QuicSkip::BadHeader)?;
    let kind = version.long_type(first);
    match kind {
        LongType::Retry => return Ok(Packet::Retry),
        LongType::Initial => {
            let token_len = c.varint().ok_or(QuicSkip::BadHeader)?;
            c.bytes_u64(token_len).ok_or(QuicSkip::BadHeader)?;
        }
        LongType::ZeroRtt | LongType::Handshake => {}
    }
    let length =
        usize::try_from(c.varint().ok_or(QuicSkip::BadHeader)?).map_err(|_| QuicSkip::BadHeader)?;
    let pn_offset = datagram.len().saturating_sub(c.rest().len());
    let len = pn_offset.checked_add(length).ok_or(QuicSkip::BadHeader)?;
    let bytes = datagram.get(..len).ok_or(QuicSkip::BadHeader)?;
    if kind != LongType::Initial {
        return Ok(Packet::Other { len });
    }
    if len > MAX_PACKET_LEN {
        return Err(QuicSkip::PacketTooLarge);
    }
    Ok(Packet::Initial {
        version,
        dcid,
        bytes,
        pn_offset,
    })
}

/// The frames of a decrypted Initial of `version`, into `crypto`.
fn walk_frames(version: &Version, payload: &[u8], crypto: &mut CryptoStream) -> frames::Walk {
    match version.frames {
        Frames::Ietf => frames::walk(payload, crypto),
        Frames::Google => gquic::walk_crypto_frames(payload, crypto),
    }
}

/// Per-connection client Initial state; see the module documentation.
pub struct InitialState {
    /// Keys for `version` and `dcid`, once an Initial has opened.
    keys: Option<ClientKeys>,
    version: u32,
    dcid: [u8; MAX_CID_LEN],
    dcid_len: usize,
    largest_pn: Option<u64>,
    crypto: CryptoStream,
    /// Each packet is copied here and decrypted in place.
    scratch: Vec<u8>,
    packets: u32,
    frames: u32,
    finished: bool,
}

impl Default for InitialState {
    fn default() -> Self {
        InitialState::new()
    }
}

impl std::fmt::Debug for InitialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialState")
            .field("version", &self.version())
            .field("dcid_len", &self.dcid_len)
            .field("packets", &self.packets)
            .field("frames", &self.frames)
            .field("crypto_contiguous", &self.crypto.contiguous_len())
            .field("finished", &self.finished)
            .finish()
    }
}

/// What one datagram's packets did, before deciding the outcome.
#[derive(Default)]
struct Tally {
    opened: bool,
    saw_long_header: bool,
    first_skip: Option<QuicSkip>,
}

impl Tally {
    fn skip(&mut self, skip: QuicSkip) {
        self.first_skip.get_or_insert(skip);
    }
}

impl InitialState {
    /// An empty state; allocates nothing until an Initial opens.
    pub fn new() -> Self {
        InitialState {
            keys: None,
            version: 0,
            dcid: [0; MAX_CID_LEN],
            dcid_len: 0,
            largest_pn: None,
            crypto: CryptoStream::default(),
            scratch: Vec::new(),
            packets: 0,
            frames: 0,
            finished: false,
        }
    }

    /// Heap bytes this state holds: the CRYPTO stream buffer (up to [`MAX_CRYPTO_BYTES`]) and
    /// the packet scratch (up to [`MAX_PACKET_LEN`]), by capacity. A flow pays for them from the
    /// reassembly budget (`flow::budget`).
    pub fn held_bytes(&self) -> usize {
        self.crypto
            .capacity()
            .saturating_add(self.scratch.capacity())
    }

    /// Processes one datagram sent by the client: walks its coalesced packets (RFC 9000 §12.2)
    /// by their Length fields, opens the Initial ones, skips 0-RTT and Handshake packets and
    /// stops at a short header, a Version Negotiation or Retry packet, or an unknown version.
    pub fn process_datagram(&mut self, datagram: &[u8]) -> QuicOutcome {
        if self.finished {
            return QuicOutcome::Finished;
        }
        let mut tally = Tally::default();
        if let Some(payload) = gquic::clear_payload(datagram) {
            // Q043/Q046: the CHLO in the clear, on stream 1.
            tally.saw_long_header = true;
            tally.opened = true;
            self.packets = self.packets.saturating_add(1);
            let walk = gquic::walk_stream_frames(payload, &mut self.crypto);
            self.frames = self.frames.saturating_add(walk.frames);
            if let Some(skip) = walk.skip {
                tally.skip(skip);
            }
            return self.outcome(&tally);
        }
        let mut rest = datagram;
        let mut walked = 0usize;
        while !rest.is_empty() {
            if walked >= MAX_PACKETS_PER_DATAGRAM {
                tally.skip(QuicSkip::TooManyPackets);
                break;
            }
            walked += 1;
            let packet = match next_packet(rest) {
                Ok(packet) => packet,
                Err(skip) => {
                    tally.saw_long_header = true;
                    tally.skip(skip);
                    break;
                }
            };
            match packet {
                Packet::Short => break,
                Packet::VersionNegotiation | Packet::Retry => {
                    tally.saw_long_header = true;
                    break;
                }
                Packet::Other { len } => {
                    tally.saw_long_header = true;
                    rest = rest.get(len..).unwrap_or(&[]);
                }
                Packet::Initial {
                    version,
                    dcid,
                    bytes,
                    pn_offset,
                } => {
                    tally.saw_long_header = true;
                    match self.open_initial(version, dcid, bytes, pn_offset) {
                        Ok(skip) => {
                            tally.opened = true;
                            if let Some(skip) = skip {
                                tally.skip(skip);
                            }
                        }
                        Err(skip) => tally.skip(skip),
                    }
                    rest = rest.get(bytes.len()..).unwrap_or(&[]);
                }
            }
        }
        self.outcome(&tally)
    }

    /// Opens one Initial packet and feeds its frames to the CRYPTO stream. `Ok` carries a
    /// non-fatal note from the frame walk.
    fn open_initial(
        &mut self,
        version: &'static Version,
        dcid: &[u8],
        packet: &[u8],
        pn_offset: usize,
    ) -> Result<Option<QuicSkip>, QuicSkip> {
        let same_version = self.version == version.wire;
        let same_dcid = self.dcid() == dcid;
        // Current keys: the same connection, possibly with the server-chosen DCID.
        if let (Some(keys), true) = (&self.keys, same_version) {
            match keys.open(packet, pn_offset, self.largest_pn, &mut self.scratch) {
                Ok(opened) => {
                    self.largest_pn = Some(
                        self.largest_pn
                            .map_or(opened.packet_number, |l| l.max(opened.packet_number)),
                    );
                    self.packets = self.packets.saturating_add(1);
                    let walk = walk_frames(version, opened.payload, &mut self.crypto);
                    self.frames = self.frames.saturating_add(walk.frames);
                    return Ok(walk.skip);
                }
                Err(skip) if same_dcid => return Err(skip),
                Err(_) => {}
            }
        }
        // Keys from this packet's own DCID: the first Initial, or a new one after a Retry.
        let keys = ClientKeys::derive(version, dcid).ok_or(QuicSkip::DecryptFailed)?;
        let opened = keys.open(packet, pn_offset, None, &mut self.scratch)?;
        let dcid_slot = self.dcid.get_mut(..dcid.len()).ok_or(QuicSkip::BadHeader)?;
        dcid_slot.copy_from_slice(dcid);
        self.dcid_len = dcid.len();
        self.version = version.wire;
        self.keys = Some(keys);
        self.largest_pn = Some(opened.packet_number);
        self.crypto.reset();
        self.packets = self.packets.saturating_add(1);
        let walk = walk_frames(version, opened.payload, &mut self.crypto);
        self.frames = self.frames.saturating_add(walk.frames);
        Ok(walk.skip)
    }

    fn outcome(&mut self, tally: &Tally) -> QuicOutcome {
        if tally.opened {
            match self.crypto.hello_state() {
                HelloState::Complete => {
                    self.finished = true;
                    let hello = self.crypto.client_hello().unwrap_or(&[]);
                    let outcome = if hello.starts_with(&gquic::CHLO_TAG) {
                        gquic::sni_from_chlo(hello)
                    } else {
                        tls::sni_from_handshake(hello)
                    };
                    return QuicOutcome::ClientHello(outcome);
                }
                HelloState::Unusable(skip) => {
                    self.finished = true;
                    return QuicOutcome::Failed(skip);
                }
                HelloState::Incomplete => return QuicOutcome::Pending,
            }
        }
        match (tally.first_skip, tally.saw_long_header) {
            (Some(skip), _) => QuicOutcome::Failed(skip),
            (None, true) => QuicOutcome::NotClientInitial,
            (None, false) => QuicOutcome::NotQuic,
        }
    }

    /// The complete ClientHello (handshake header included), once all its bytes arrived.
    pub fn client_hello(&self) -> Option<&[u8]> {
        self.crypto.client_hello()
    }

    /// The version of the Initials opened so far.
    pub fn version(&self) -> Option<u32> {
        self.keys.as_ref().map(|_| self.version)
    }

    /// The Destination Connection ID the current keys were derived from (empty before any
    /// Initial opened).
    pub fn dcid(&self) -> &[u8] {
        self.dcid.get(..self.dcid_len).unwrap_or(&[])
    }

    /// Initial packets opened.
    pub fn packets(&self) -> u32 {
        self.packets
    }

    /// Frames parsed in opened packets (a PADDING run counts once).
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// True once the state returned `ClientHello` or a final failure.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}
