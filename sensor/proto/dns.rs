//! DNS messages (RFC 1035 §4), as carried by unicast DNS (port 53), mDNS (RFC 6762, port 5353)
//! and LLMNR (RFC 4795, port 5355), over UDP or TCP (RFC 1035 §4.2.2, RFC 7766).
//!
//! Contract:
//! * Input: one DNS message, borrowed (a UDP payload, or a message cut out of a TCP stream by
//!   [`next_tcp_frame`]). The bytes are hostile.
//! * Output: [`parse_message`] fills a caller-owned [`DnsMessage`]: header fields, the question
//!   names and the answer-section records (A, AAAA and CNAME data decoded; other types kept as
//!   [`RData::Other`]). The authority and additional sections are not read.
//! * Copies: each name is decoded once, straight into the message's name text: labels are
//!   copied, lower-cased and checked as host-name bytes in one pass. Questions, owners and CNAME
//!   targets hold an 8-byte [`NameRef`] into that text; an owner that is a pointer to a name
//!   already decoded reuses its reference. Nothing else is copied. Callers borrow a name with
//!   [`DnsMessage::name`] or copy it into a reused [`HostName`] with
//!   [`DnsMessage::host_name_into`]. The vectors of [`DnsMessage`] keep their capacity across
//!   [`DnsMessage::clear`], so steady-state parsing does not allocate.
//! * Laxness: on error the message keeps every question and answer decoded before the error.
//!   Names that are valid DNS names but not host names (spaces, binary bytes, mDNS service
//!   instance names) are counted in [`DnsMessage::invalid_names`] and skipped, not errors.
//! * Caps: [`MAX_QUESTIONS`], [`MAX_ANSWERS`] records per message, [`MAX_NAME_WIRE_LEN`]
//!   octets per name, [`MAX_POINTER_HOPS`] compression pointers per name, and so at most
//!   [`MAX_NAME_TEXT_LEN`] bytes of name text per message. Compression pointers
//!   must point strictly before the start of the label run that contains them, so every name
//!   walk terminates.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{HostName, MAX_HOST_NAME_LEN, MAX_LABEL_LEN};

/// Fixed header length (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;
/// Type, class of a question (RFC 1035 §4.1.2).
const QUESTION_FIXED_LEN: usize = 4;
/// Type, class, TTL, RDLENGTH of a resource record (RFC 1035 §4.1.3).
const RR_FIXED_LEN: usize = 10;
/// Smallest question: the root name (one zero octet) plus type and class.
const MIN_QUESTION_LEN: usize = 1 + QUESTION_FIXED_LEN;
/// Smallest resource record: the root name plus the fixed fields and empty RDATA.
const MIN_RR_LEN: usize = 1 + RR_FIXED_LEN;
/// Largest DNS message: the TCP length prefix is 16 bits (RFC 1035 §4.2.2) and a UDP payload is
/// smaller still. Header counts that cannot fit in this many octets are not DNS.
const MAX_MESSAGE_LEN: usize = 65535;

/// Longest name on the wire, length octets and the final root octet included
/// (RFC 1035 §2.3.4, §3.1).
pub const MAX_NAME_WIRE_LEN: usize = 255;
/// Most compression pointers followed while decoding one name. A name of at most 255 octets has
/// at most 127 labels, and an encoder never needs more than one pointer per label; more hops
/// than that would only be pointers to pointers, which no encoder writes. The backward-only
/// rule already guarantees termination; this cap bounds the work per name to a few hundred
/// steps so that a message full of pointer chains cannot make parsing quadratic.
pub const MAX_POINTER_HOPS: usize = 127;
/// Most questions kept per message. Unicast queries carry exactly one (RFC 9619); mDNS queries
/// ask several at once (RFC 6762 §5, §7.1) but rarely more than a dozen. Further questions are
/// walked over (so the answer section is still found) but not decoded.
pub const MAX_QUESTIONS: usize = 32;
/// Most answer records kept per message. Unicast answers are a CNAME chain plus an address set,
/// typically under 20 records; mDNS announcements of a host with many services carry more
/// (RFC 6762 §8.3), still well under 100. Parsing stops at the cap.
pub const MAX_ANSWERS: usize = 128;

/// Resource record types decoded here (RFC 1035 §3.2.2, RFC 3596 §2.1).
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
/// Class IN (RFC 1035 §3.2.4). A and AAAA RDATA formats are defined for this class only.
const CLASS_IN: u16 = 1;
/// mDNS uses the top bit of the class as the cache-flush bit (RFC 6762 §10.2).
const CLASS_MASK: u16 = 0x7fff;
/// Opcode QUERY (RFC 1035 §4.1.1).
const OPCODE_QUERY: u8 = 0;

crate::reason_enum! {
    /// Why a DNS message could not be parsed to the end of its answer section.
    pub enum DnsSkip {
        /// Fewer than 12 octets: no header (RFC 1035 §4.1.1).
        TruncatedHeader => "truncated_header",
        /// A question, record or name runs past the end of the message.
        TruncatedRecord => "truncated_record",
        /// The header is not plausible for a DNS message: counts that cannot fit in the
        /// datagram or in any DNS message, or a standard query without a question.
        NotDns => "not_dns",
        /// A compression pointer points at itself or back into the label run containing it,
        /// which would loop forever.
        PointerLoop => "pointer_loop",
        /// A compression pointer points after itself (every two-pointer loop contains one).
        ForwardPointer => "forward_pointer",
        /// More than [`MAX_POINTER_HOPS`] pointers in one name.
        TooManyPointerHops => "too_many_pointer_hops",
        /// A name longer than 255 octets on the wire (RFC 1035 §2.3.4).
        NameTooLong => "name_too_long",
        /// A label type 0x40 (extended, RFC 6891 §5) or 0x80 (reserved); this also covers
        /// label lengths of 64 and more, which can only be written with these bits.
        BadLabelType => "bad_label_type",
    }
}

/// A host name decoded into a [`DnsMessage`]: where its text lies in the message's name text.
/// Read it with [`DnsMessage::name`] or [`DnsMessage::host_name`]; it refers to the message
/// that produced it, until that message is parsed into again. Eight bytes instead of a
/// 254-byte inline [`HostName`], so questions and answers are cheap to push and copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameRef {
    start: u32,
    len: u8,
}

impl NameRef {
    fn range(self) -> std::ops::Range<usize> {
        // u32 -> usize is lossless on the 32- and 64-bit targets the sensor runs on.
        let start = self.start as usize;
        start..start.saturating_add(usize::from(self.len))
    }
}

/// One question (RFC 1035 §4.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub name: NameRef,
    pub qtype: u16,
}

/// Decoded RDATA of an answer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RData {
    /// Class IN type A (RFC 1035 §3.4.1).
    A(Ipv4Addr),
    /// Class IN type AAAA (RFC 3596 §2.2).
    Aaaa(Ipv6Addr),
    /// CNAME target (RFC 1035 §3.3.1).
    Cname(NameRef),
    /// Any other type or class, or A/AAAA/CNAME data that did not decode (counted in
    /// [`DnsMessage::bad_rdata`] or [`DnsMessage::invalid_names`]).
    Other,
}

/// One answer-section record (RFC 1035 §4.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub name: NameRef,
    pub rtype: u16,
    /// Seconds; values with the top bit set are read as 0 (RFC 2181 §8).
    pub ttl: u32,
    pub data: RData,
}

/// Most host names decoded from one message: each kept question, and the owner and CNAME
/// target of each kept answer.
const MAX_NAMES_PER_MESSAGE: usize = MAX_QUESTIONS + 2 * MAX_ANSWERS;
/// Bytes a name being decoded may need past the kept text: its presentation form, at most 254
/// octets of labels and dots for 255 wire octets (253 for a name that is kept).
const NAME_DECODE_ROOM: usize = MAX_NAME_WIRE_LEN;
/// Largest name text of one message: every name it can keep at the longest host name, plus
/// the room to decode one more. ≈ 73 KB; a message only grows the buffer to what it uses
/// (a typical response needs a few hundred bytes), and the buffer is kept across messages.
pub const MAX_NAME_TEXT_LEN: usize = MAX_NAMES_PER_MESSAGE * MAX_HOST_NAME_LEN + NAME_DECODE_ROOM;

/// A parsed DNS message, reused across calls.
#[derive(Clone, Debug, Default)]
pub struct DnsMessage {
    pub id: u16,
    /// QR bit (RFC 1035 §4.1.1).
    pub is_response: bool,
    pub opcode: u8,
    /// The 4-bit header RCODE (the EDNS extended bits live in the additional section).
    pub rcode: u8,
    /// TC bit: the sender truncated the message.
    pub truncated_flag: bool,
    /// Questions whose name is a host name, in message order, at most [`MAX_QUESTIONS`].
    pub questions: Vec<Question>,
    /// Answer records whose owner is a host name, in message order, at most [`MAX_ANSWERS`].
    pub answers: Vec<Answer>,
    /// Owner, question or CNAME target names skipped because they are not host names. The root
    /// name is skipped without being counted: it is a normal DNS name (priming queries).
    pub invalid_names: u16,
    /// A, AAAA or CNAME records whose RDATA was malformed (wrong length, or a target name that
    /// runs outside RDATA or does not decode); they are kept as [`RData::Other`].
    pub bad_rdata: u16,
    /// True when [`MAX_QUESTIONS`] or [`MAX_ANSWERS`] cut the message.
    pub capped: bool,
    /// The text of every kept name, back to back: lower-case host names as [`HostName::parse`]
    /// would make them, each decoded once. `names[..names_len]` is in use; the rest is scratch
    /// for the name being decoded. Only grows (to at most [`MAX_NAME_TEXT_LEN`]).
    names: Vec<u8>,
    names_len: usize,
}

impl DnsMessage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resets every field; the vectors keep their capacity.
    pub fn clear(&mut self) {
        self.id = 0;
        self.is_response = false;
        self.opcode = 0;
        self.rcode = 0;
        self.truncated_flag = false;
        self.questions.clear();
        self.answers.clear();
        self.invalid_names = 0;
        self.bad_rdata = 0;
        self.capped = false;
        self.names_len = 0;
    }

    /// The text of a name of this message: a valid host name, lower-case, without a trailing
    /// dot (empty for a reference from another message that falls outside this one's text).
    pub fn name(&self, name: NameRef) -> &[u8] {
        self.names
            .get(name.range())
            .filter(|_| name.range().end <= self.names_len)
            .unwrap_or(&[])
    }

    /// A name of this message as an owned [`HostName`] (a copy; the hot path borrows
    /// [`DnsMessage::name`] or fills a reused name with [`DnsMessage::host_name_into`]).
    pub fn host_name(&self, name: NameRef) -> Option<HostName> {
        HostName::parse(self.name(name)).ok()
    }

    /// Copies a name of this message into `out` (only its bytes) without checking its
    /// characters again: everything the parser keeps in the name text is lower-case host
    /// names back to back, so a reference of this message is already a host name. A reference
    /// from another message may cut across names; the few checks that catch that (a dot at
    /// either end, too long, a label over 63 bytes) are made, and false leaves `out` as it was.
    pub fn host_name_into(&self, name: NameRef, out: &mut HostName) -> bool {
        let text = self.name(name);
        let ends_ok = match (text.first(), text.last()) {
            (Some(&first), Some(&last)) => first != b'.' && last != b'.',
            _ => false,
        };
        // A name cut from the middle of two names has no ".." (none holds one, none starts
        // or ends with a dot), but its labels may join across a boundary: only a name longer
        // than a label can hold a label that long.
        let labels_ok = text.len() <= MAX_LABEL_LEN
            || text.split(|&b| b == b'.').all(|l| l.len() <= MAX_LABEL_LEN);
        if !ends_ok || !labels_ok || text.len() > MAX_HOST_NAME_LEN {
            return false;
        }
        out.set_checked(text);
        true
    }

    /// Keeps the text of a name just decoded by [`read_name_text`] at `names_len`.
    fn keep_name(&mut self, name: NameRef) {
        self.names_len = name.range().end;
    }
}

/// Parses one DNS message into `out` (cleared first). On error, `out` keeps the header and every
/// question and answer decoded before the error.
pub fn parse_message(msg: &[u8], out: &mut DnsMessage) -> Result<(), DnsSkip> {
    out.clear();
    let header = msg.get(..HEADER_LEN).ok_or(DnsSkip::TruncatedHeader)?;
    let word = |i: usize| -> u16 {
        match header.get(i..i.saturating_add(2)) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    };
    // RFC 1035 §4.1.1: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
    let flags = word(2);
    let qdcount = usize::from(word(4));
    let ancount = usize::from(word(6));
    let nscount = usize::from(word(8));
    let arcount = usize::from(word(10));
    out.id = word(0);
    out.is_response = flags & 0x8000 != 0;
    out.opcode = ((flags >> 11) & 0x0f) as u8;
    out.truncated_flag = flags & 0x0200 != 0;
    out.rcode = (flags & 0x000f) as u8;

    let body_len = msg.len().saturating_sub(HEADER_LEN);
    // Questions come first: if they cannot all fit, the datagram is not a DNS message (a
    // snaplen cut inside the question section would leave nothing to keep anyway).
    if qdcount.saturating_mul(MIN_QUESTION_LEN) > body_len {
        return Err(DnsSkip::NotDns);
    }
    // Counts that no DNS message of any size could hold. Counts that merely exceed this
    // datagram are read lazily instead, so that a capture cut by the snaplen keeps its prefix.
    let min_len = HEADER_LEN
        .saturating_add(qdcount.saturating_mul(MIN_QUESTION_LEN))
        .saturating_add(
            ancount
                .saturating_add(nscount)
                .saturating_add(arcount)
                .saturating_mul(MIN_RR_LEN),
        );
    if min_len > MAX_MESSAGE_LEN {
        return Err(DnsSkip::NotDns);
    }
    // A standard query asks at least one question; the only question-less form is the
    // cookie-only query (RFC 7873 §5.4: one OPT record in the additional section).
    let cookie_only_shape = ancount == 0 && nscount == 0 && arcount <= 1;
    if !out.is_response && out.opcode == OPCODE_QUERY && qdcount == 0 && !cookie_only_shape {
        return Err(DnsSkip::NotDns);
    }

    // Names are decoded straight into `out.names`; questions and answers only hold where.
    let mut memo = NameMemo::default();
    let mut hops = 0usize;
    let mut pos = HEADER_LEN;
    for index in 0..qdcount {
        if index >= MAX_QUESTIONS {
            out.capped = true;
            pos = skip_name(msg, pos)?;
            pos = pos
                .checked_add(QUESTION_FIXED_LEN)
                .filter(|&end| end <= msg.len())
                .ok_or(DnsSkip::TruncatedRecord)?;
            continue;
        }
        let name_start = pos;
        let (name, end) = read_name_text(msg, pos, &mut out.names, out.names_len, &mut hops)?;
        let fixed = end
            .checked_add(QUESTION_FIXED_LEN)
            .and_then(|fixed_end| msg.get(end..fixed_end))
            .ok_or(DnsSkip::TruncatedRecord)?;
        let qtype = match fixed {
            &[hi, lo, _, _] => u16::from_be_bytes([hi, lo]),
            _ => return Err(DnsSkip::TruncatedRecord),
        };
        pos = end.saturating_add(QUESTION_FIXED_LEN);
        match name {
            TextName::Text(name) => {
                out.keep_name(name);
                out.questions.push(Question { name, qtype });
                memo.add(name_start, hops, name);
            }
            TextName::Root => {}
            TextName::Invalid => out.invalid_names = out.invalid_names.saturating_add(1),
        }
    }

    for index in 0..ancount {
        if index >= MAX_ANSWERS {
            out.capped = true;
            break;
        }
        let owner_start = pos;
        // An owner that is only a pointer to a name decoded before reuses its text.
        let known = memo.find(msg, pos);
        let (owner, end) = match known {
            Some((name, end)) => (TextName::Text(name), end),
            None => read_name_text(msg, pos, &mut out.names, out.names_len, &mut hops)?,
        };
        let fixed_end = end
            .checked_add(RR_FIXED_LEN)
            .ok_or(DnsSkip::TruncatedRecord)?;
        let (rtype, class, ttl, rdlength) = match msg.get(end..fixed_end) {
            Some(&[t0, t1, c0, c1, l0, l1, l2, l3, r0, r1]) => (
                u16::from_be_bytes([t0, t1]),
                u16::from_be_bytes([c0, c1]),
                u32::from_be_bytes([l0, l1, l2, l3]),
                usize::from(u16::from_be_bytes([r0, r1])),
            ),
            _ => return Err(DnsSkip::TruncatedRecord),
        };
        let rdata_end = fixed_end
            .checked_add(rdlength)
            .filter(|&e| e <= msg.len())
            .ok_or(DnsSkip::TruncatedRecord)?;
        pos = rdata_end;
        let name = match owner {
            TextName::Text(name) => name,
            TextName::Root => continue,
            TextName::Invalid => {
                out.invalid_names = out.invalid_names.saturating_add(1);
                continue;
            }
        };
        if known.is_none() {
            // Kept before the RDATA is read: a CNAME target is decoded after it.
            out.keep_name(name);
        }
        let owner_hops = hops;
        let data = read_rdata(msg, rtype, class, fixed_end, rdata_end, out, &mut hops);
        // RFC 2181 §8: a TTL with the most significant bit set is treated as zero.
        let ttl = if ttl & 0x8000_0000 != 0 { 0 } else { ttl };
        out.answers.push(Answer {
            name,
            rtype,
            ttl,
            data,
        });
        if known.is_none() {
            memo.add(owner_start, owner_hops, name);
        }
        if let RData::Cname(target) = data {
            memo.add(fixed_end, hops, target);
        }
    }
    Ok(())
}

/// Names decoded so far in one message, remembered by the wire offset they start at, for
/// [`NameMemo::find`]. A response repeats its names as compression pointers: each answer's
/// owner points at the question or at the previous CNAME target. Sixteen entries cover the
/// question and a CNAME chain of typical length; later names are decoded in full.
const NAME_MEMO_LEN: usize = 16;

/// A remembered name: its start offset, the pointer hops its walk took, and its text.
#[derive(Clone, Copy, Debug)]
struct MemoEntry {
    start: usize,
    hops: usize,
    name: NameRef,
}

#[derive(Default)]
struct NameMemo {
    entries: [Option<MemoEntry>; NAME_MEMO_LEN],
    len: usize,
}

impl NameMemo {
    /// Remembers the host name that starts at `start`; ignored once full.
    fn add(&mut self, start: usize, hops: usize, name: NameRef) {
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = Some(MemoEntry { start, hops, name });
            self.len = self.len.saturating_add(1);
        }
    }

    /// The name at `pos` and the offset after it, when `pos` holds only a compression pointer
    /// to a remembered name. The full walk would give the same name: it follows the pointer
    /// (backwards, as the pointer rule requires) and then walks exactly the remembered name,
    /// with one hop more, so names whose walk already used the whole hop cap are not taken.
    fn find(&self, msg: &[u8], pos: usize) -> Option<(NameRef, usize)> {
        let (&[hi, lo], _) = msg.get(pos..)?.split_first_chunk::<2>()?;
        if hi & 0xc0 != 0xc0 {
            return None;
        }
        let target = usize::from(u16::from_be_bytes([hi & 0x3f, lo]));
        if target >= pos {
            return None;
        }
        let entry = self
            .entries
            .iter()
            .take(self.len)
            .flatten()
            .find(|e| e.start == target && e.hops < MAX_POINTER_HOPS)?;
        Some((entry.name, pos.saturating_add(2)))
    }
}

/// Decodes the RDATA at `msg[start..end]` (bounds already checked) of a record of `rtype` and
/// `class`, counting malformed A/AAAA/CNAME data in `out`. A CNAME target is decoded into
/// `out`'s name text, and the pointer hops its walk took go to `hops` (for [`NameMemo`]).
fn read_rdata(
    msg: &[u8],
    rtype: u16,
    class: u16,
    start: usize,
    end: usize,
    out: &mut DnsMessage,
    hops: &mut usize,
) -> RData {
    let Some(rdata) = msg.get(start..end) else {
        return RData::Other;
    };
    let is_in = class & CLASS_MASK == CLASS_IN;
    match rtype {
        TYPE_A if is_in => match <[u8; 4]>::try_from(rdata) {
            Ok(octets) => RData::A(Ipv4Addr::from(octets)),
            Err(_) => {
                out.bad_rdata = out.bad_rdata.saturating_add(1);
                RData::Other
            }
        },
        TYPE_AAAA if is_in => match <[u8; 16]>::try_from(rdata) {
            Ok(octets) => RData::Aaaa(Ipv6Addr::from(octets)),
            Err(_) => {
                out.bad_rdata = out.bad_rdata.saturating_add(1);
                RData::Other
            }
        },
        // CNAME RDATA is a name in any class (RFC 1035 §3.3.1); it may be compressed, but its
        // in-place labels must stay inside RDATA.
        TYPE_CNAME => match read_name_text(msg, start, &mut out.names, out.names_len, hops) {
            Ok((TextName::Text(target), name_end)) if name_end == end => {
                out.keep_name(target);
                RData::Cname(target)
            }
            Ok((TextName::Invalid, name_end)) if name_end == end => {
                out.invalid_names = out.invalid_names.saturating_add(1);
                RData::Other
            }
            _ => {
                out.bad_rdata = out.bad_rdata.saturating_add(1);
                RData::Other
            }
        },
        _ => RData::Other,
    }
}

/// What [`read_name_text`] decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TextName {
    /// A host name: its labels joined by dots, lower-cased, every byte checked. Its text is in
    /// the name buffer but not yet kept ([`DnsMessage::keep_name`]).
    Text(NameRef),
    /// The root name (a single zero octet).
    Root,
    /// A well-formed DNS name that cannot be a host name (a label holds a byte outside
    /// `[A-Za-z0-9_-]`, such as a space, a '.' or binary data).
    Invalid,
}

/// A name read from the wire.
// Inline on purpose: a test helper that compares whole names.
#[cfg(test)]
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WireName {
    Host(HostName),
    /// The root name (a single zero octet).
    Root,
    /// A well-formed DNS name that is not a host name.
    Invalid,
}

/// The name at `start` validated as a host name, and the offset just after it (tests).
#[cfg(test)]
fn read_name(msg: &[u8], start: usize) -> Result<(WireName, usize), DnsSkip> {
    let mut names = Vec::new();
    let (name, end) = read_name_text(msg, start, &mut names, 0, &mut 0)?;
    let name = match name {
        TextName::Text(name) => names
            .get(name.range())
            .and_then(|text| HostName::parse(text).ok())
            .map_or(WireName::Invalid, WireName::Host),
        TextName::Root => WireName::Root,
        TextName::Invalid => WireName::Invalid,
    };
    Ok((name, end))
}

/// Reads the (possibly compressed) name starting at `start` into `names` at offset `at`
/// (growing `names` if it is shorter than `at` + [`NAME_DECODE_ROOM`]): its labels joined by
/// dots, each label lower-cased and checked as it is copied, so a host name needs no second
/// pass. Returns what it is and the offset just after it in place (after its zero octet or its
/// first pointer).
///
/// Pointer rule (RFC 1035 §4.1.4 allows any earlier offset; encoders only ever point back to
/// names already written): a pointer must point strictly before the start of the label run
/// that contains it (the name's start, or the previous pointer's target). Run starts therefore
/// strictly decrease, so the walk ends even without the hop cap.
fn read_name_text(
    msg: &[u8],
    start: usize,
    names: &mut Vec<u8>,
    at: usize,
    hops_out: &mut usize,
) -> Result<(TextName, usize), DnsSkip> {
    let room = at.saturating_add(NAME_DECODE_ROOM);
    if names.len() < room {
        // Cannot happen: at most MAX_NAMES_PER_MESSAGE names of at most 253 bytes are kept.
        if room > MAX_NAME_TEXT_LEN {
            return Err(DnsSkip::NameTooLong);
        }
        names.resize(room, 0);
    }
    let text = names.get_mut(at..room).ok_or(DnsSkip::NameTooLong)?;
    let mut text_len = 0usize;
    // Wire octets so far, length octets included, final root octet not yet included.
    let mut wire_len = 0usize;
    let mut pos = start;
    let mut run_start = start;
    let mut end = None;
    let mut hops = 0usize;
    // Every byte so far is a host-name byte; a label holding a '.' octet fails this too (it
    // would otherwise be split in two when the text is read back).
    let mut host = true;
    loop {
        let &len_octet = msg.get(pos).ok_or(DnsSkip::TruncatedRecord)?;
        match len_octet & 0xc0 {
            0x00 => {
                let label_len = usize::from(len_octet);
                let label_start = pos.saturating_add(1);
                if label_len == 0 {
                    let end = end.unwrap_or(label_start);
                    *hops_out = hops;
                    if text_len == 0 {
                        return Ok((TextName::Root, end));
                    }
                    if !host {
                        return Ok((TextName::Invalid, end));
                    }
                    // A wire name of at most 255 octets has at most 253 bytes of text
                    // (RFC 1035 §2.3.4), so both conversions succeed.
                    let name = match (u32::try_from(at), u8::try_from(text_len)) {
                        (Ok(start), Ok(len)) => TextName::Text(NameRef { start, len }),
                        _ => TextName::Invalid,
                    };
                    return Ok((name, end));
                }
                // +1 for this label's length octet, +1 for the root octet still to come.
                wire_len = wire_len.saturating_add(1).saturating_add(label_len);
                if wire_len.saturating_add(1) > MAX_NAME_WIRE_LEN {
                    return Err(DnsSkip::NameTooLong);
                }
                let label_end = label_start.saturating_add(label_len);
                let label = msg
                    .get(label_start..label_end)
                    .ok_or(DnsSkip::TruncatedRecord)?;
                if text_len > 0 {
                    *text.get_mut(text_len).ok_or(DnsSkip::NameTooLong)? = b'.';
                    text_len = text_len.saturating_add(1);
                }
                let text_end = text_len.saturating_add(label_len);
                if text_end > MAX_NAME_WIRE_LEN {
                    return Err(DnsSkip::NameTooLong);
                }
                // One pass per label: copied, lower-cased and checked together.
                let dst = text
                    .get_mut(text_len..text_end)
                    .ok_or(DnsSkip::NameTooLong)?;
                host &= super::copy_host_label(dst, label);
                text_len = text_end;
                pos = label_end;
            }
            0xc0 => {
                let &low = msg
                    .get(pos.saturating_add(1))
                    .ok_or(DnsSkip::TruncatedRecord)?;
                let target = usize::from(u16::from_be_bytes([len_octet & 0x3f, low]));
                if target > pos {
                    return Err(DnsSkip::ForwardPointer);
                }
                if target >= run_start {
                    return Err(DnsSkip::PointerLoop);
                }
                hops = hops.saturating_add(1);
                if hops > MAX_POINTER_HOPS {
                    return Err(DnsSkip::TooManyPointerHops);
                }
                end.get_or_insert(pos.saturating_add(2));
                pos = target;
                run_start = target;
            }
            _ => return Err(DnsSkip::BadLabelType),
        }
    }
}

/// Walks over the name at `start` without following pointers or copying it; returns the offset
/// just after it in place. Bounded by [`MAX_NAME_WIRE_LEN`].
fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsSkip> {
    let mut pos = start;
    let mut wire_len = 0usize;
    loop {
        let &len_octet = msg.get(pos).ok_or(DnsSkip::TruncatedRecord)?;
        match len_octet & 0xc0 {
            0x00 if len_octet == 0 => return Ok(pos.saturating_add(1)),
            0x00 => {
                let label_len = usize::from(len_octet);
                wire_len = wire_len.saturating_add(1).saturating_add(label_len);
                if wire_len.saturating_add(1) > MAX_NAME_WIRE_LEN {
                    return Err(DnsSkip::NameTooLong);
                }
                pos = pos.saturating_add(1).saturating_add(label_len);
            }
            0xc0 => {
                let end = pos.saturating_add(2);
                return if end <= msg.len() {
                    Ok(end)
                } else {
                    Err(DnsSkip::TruncatedRecord)
                };
            }
            _ => return Err(DnsSkip::BadLabelType),
        }
    }
}

/// One step of cutting DNS messages out of a TCP byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpFrame<'a> {
    /// The stream does not yet hold a whole length-prefixed message.
    NeedMore,
    /// A whole message (possibly empty); `consumed` = 2 + `msg.len()` octets of the stream.
    Message { msg: &'a [u8], consumed: usize },
}

/// Length of the TCP message prefix (RFC 1035 §4.2.2).
const TCP_PREFIX_LEN: usize = 2;

/// Cuts the first message out of a DNS-over-TCP stream: a two-octet big-endian length, then
/// that many octets (RFC 1035 §4.2.2, RFC 7766 §8). A zero length yields an empty message.
pub fn next_tcp_frame(stream: &[u8]) -> TcpFrame<'_> {
    let Some((&[hi, lo], rest)) = stream.split_first_chunk::<TCP_PREFIX_LEN>() else {
        return TcpFrame::NeedMore;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    match rest.get(..len) {
        Some(msg) => TcpFrame::Message {
            msg,
            consumed: TCP_PREFIX_LEN.saturating_add(len),
        },
        None => TcpFrame::NeedMore,
    }
}

/// Ports whose traffic is parsed as DNS: DNS (53), mDNS (5353, RFC 6762), LLMNR (5355,
/// RFC 4795).
pub fn is_dns_port(port: u16) -> bool {
    matches!(port, 53 | 5353 | 5355)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> HostName {
        HostName::parse(s.as_bytes()).unwrap()
    }

    /// An answer with its names read back as [`HostName`]s, to compare whole records.
    #[derive(Debug, PartialEq)]
    struct Rec {
        name: HostName,
        rtype: u16,
        ttl: u32,
        data: Data,
    }

    // Inline like `Rec`'s name: these only compare parse results in tests.
    #[allow(clippy::large_enum_variant)]
    #[derive(Debug, PartialEq)]
    enum Data {
        A(Ipv4Addr),
        Aaaa(Ipv6Addr),
        Cname(HostName),
        Other,
    }

    fn name_of(out: &DnsMessage, name: NameRef) -> HostName {
        out.host_name(name).expect("kept names are host names")
    }

    fn answers(out: &DnsMessage) -> Vec<Rec> {
        out.answers
            .iter()
            .map(|a| Rec {
                name: name_of(out, a.name),
                rtype: a.rtype,
                ttl: a.ttl,
                data: match a.data {
                    RData::A(v4) => Data::A(v4),
                    RData::Aaaa(v6) => Data::Aaaa(v6),
                    RData::Cname(target) => Data::Cname(name_of(out, target)),
                    RData::Other => Data::Other,
                },
            })
            .collect()
    }

    fn questions(out: &DnsMessage) -> Vec<(HostName, u16)> {
        out.questions
            .iter()
            .map(|q| (name_of(out, q.name), q.qtype))
            .collect()
    }

    fn parse(msg: &[u8]) -> (Result<(), DnsSkip>, DnsMessage) {
        let mut out = DnsMessage::new();
        let res = parse_message(msg, &mut out);
        (res, out)
    }

    /// Header with the given flags and counts.
    fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        [id, flags, qd, an, ns, ar]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    }

    /// Standard query, RD set, for dnl-01.geo.kaspersky.com IN A.
    const QUERY: [u8; 42] = [
        0x1a, 0x2b, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // header
        0x06, b'd', b'n', b'l', b'-', b'0', b'1', // offset 12
        0x03, b'g', b'e', b'o', // 19
        0x09, b'k', b'a', b's', b'p', b'e', b'r', b's', b'k', b'y', // 23
        0x03, b'c', b'o', b'm', 0x00, // 33, root at 37
        0x00, 0x01, 0x00, 0x01, // QTYPE A, QCLASS IN
    ];

    /// Response to QUERY: dnl-01.geo.kaspersky.com CNAME cdn.kaspersky.com (compressed against
    /// the question), then cdn.kaspersky.com A and AAAA, owners pointing into the CNAME RDATA
    /// which itself points into the question (a two-hop chain).
    const RESPONSE: [u8; 104] = [
        0x1a, 0x2b, 0x81, 0x80, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, // header
        0x06, b'd', b'n', b'l', b'-', b'0', b'1', // 12
        0x03, b'g', b'e', b'o', // 19
        0x09, b'k', b'a', b's', b'p', b'e', b'r', b's', b'k', b'y', // 23
        0x03, b'c', b'o', b'm', 0x00, // 33
        0x00, 0x01, 0x00, 0x01, // 38: QTYPE A, QCLASS IN
        // 42: answer 1, owner -> 12, CNAME IN, TTL 300, RDLENGTH 6
        0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x06,
        // 54: "cdn" + pointer to 23 ("kaspersky.com")
        0x03, b'c', b'd', b'n', 0xc0, 0x17,
        // 60: answer 2, owner -> 54, A IN, TTL 60, RDLENGTH 4, 203.0.113.10
        0xc0, 0x36, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 203, 0, 113, 10,
        // 76: answer 3, owner -> 54, AAAA IN, TTL 60, RDLENGTH 16, 2001:db8::10
        0xc0, 0x36, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x10, 0x20, 0x01, 0x0d,
        0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    /// Offsets where the question and each answer of RESPONSE end.
    const RESPONSE_QUESTION_END: usize = 42;
    const RESPONSE_ANSWER_ENDS: [usize; 3] = [60, 76, 104];

    fn expected_answers() -> [Rec; 3] {
        [
            Rec {
                name: host("dnl-01.geo.kaspersky.com"),
                rtype: TYPE_CNAME,
                ttl: 300,
                data: Data::Cname(host("cdn.kaspersky.com")),
            },
            Rec {
                name: host("cdn.kaspersky.com"),
                rtype: TYPE_A,
                ttl: 60,
                data: Data::A(Ipv4Addr::new(203, 0, 113, 10)),
            },
            Rec {
                name: host("cdn.kaspersky.com"),
                rtype: TYPE_AAAA,
                ttl: 60,
                data: Data::Aaaa("2001:db8::10".parse().unwrap()),
            },
        ]
    }

    /// A query header followed by `name` and QTYPE A / QCLASS IN.
    fn query_with_name(name: &[u8]) -> Vec<u8> {
        let mut msg = header(7, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(name);
        msg.extend_from_slice(&[0, 1, 0, 1]);
        msg
    }

    #[test]
    fn query_for_kaspersky_name() {
        let (res, out) = parse(&QUERY);
        assert_eq!(res, Ok(()));
        assert_eq!(out.id, 0x1a2b);
        assert!(!out.is_response);
        assert_eq!(out.opcode, 0);
        assert_eq!(out.rcode, 0);
        assert!(!out.truncated_flag);
        assert_eq!(
            questions(&out),
            vec![(host("dnl-01.geo.kaspersky.com"), TYPE_A)]
        );
        assert_eq!(out.name(out.questions[0].name), b"dnl-01.geo.kaspersky.com");
        assert!(out.answers.is_empty());
        assert_eq!(out.invalid_names, 0);
        assert!(!out.capped);
    }

    #[test]
    fn response_with_cname_chain_and_compression() {
        let (res, out) = parse(&RESPONSE);
        assert_eq!(res, Ok(()));
        assert!(out.is_response);
        assert_eq!(out.rcode, 0);
        assert_eq!(out.questions.len(), 1);
        assert_eq!(
            name_of(&out, out.questions[0].name),
            host("dnl-01.geo.kaspersky.com")
        );
        assert_eq!(answers(&out), expected_answers());
        // Owners that point at the question and at the CNAME target reuse their text.
        assert_eq!(out.answers[0].name, out.questions[0].name);
        assert_eq!(out.answers[1].name, out.answers[2].name);
        assert_eq!(RData::Cname(out.answers[1].name), out.answers[0].data);
        assert_eq!(out.invalid_names, 0);
        assert_eq!(out.bad_rdata, 0);
    }

    /// Every name a message keeps: questions, answer owners, then CNAME targets.
    fn kept_names(out: &DnsMessage) -> impl Iterator<Item = NameRef> + '_ {
        let questions = out.questions.iter().map(|q| q.name);
        let owners = out.answers.iter().map(|a| a.name);
        let targets = out.answers.iter().filter_map(|a| match a.data {
            RData::Cname(target) => Some(target),
            _ => None,
        });
        questions.chain(owners).chain(targets)
    }

    #[test]
    fn host_name_into_copies_every_kept_name() {
        let (_, out) = parse(&RESPONSE);
        let mut name = HostName::scratch();
        let mut seen = Vec::new();
        for r in kept_names(&out) {
            assert!(out.host_name_into(r, &mut name));
            assert_eq!(Some(name), out.host_name(r));
            seen.push(name.to_string());
        }
        assert_eq!(
            seen,
            [
                "dnl-01.geo.kaspersky.com",
                "dnl-01.geo.kaspersky.com",
                "cdn.kaspersky.com",
                "cdn.kaspersky.com",
                "cdn.kaspersky.com",
            ]
        );
        // Upper-case on the wire is lower-case in the text (RFC 4343 §3: case-insensitive).
        let mut msg = QUERY;
        msg[13] = b'D';
        msg[24] = b'K';
        let (_, out) = parse(&msg);
        assert!(out.host_name_into(out.questions[0].name, &mut name));
        assert_eq!(name.as_str(), "dnl-01.geo.kaspersky.com");
    }

    #[test]
    fn host_name_into_refuses_references_cutting_across_names() {
        let (_, out) = parse(&RESPONSE);
        // The text is "dnl-01.geo.kaspersky.com" then "cdn.kaspersky.com" (41 bytes).
        assert_eq!(out.names_len, 41);
        let mut name = HostName::parse(b"unchanged.example").unwrap();
        let cut = |start: u32, len: u8| NameRef { start, len };
        for bad in [
            cut(6, 4),   // ".geo": starts with a dot
            cut(0, 7),   // "dnl-01.": ends with a dot
            cut(0, 0),   // empty
            cut(40, 2),  // runs past the kept text
            cut(500, 3), // outside the buffer
        ] {
            assert!(!out.host_name_into(bad, &mut name), "{bad:?}");
            assert_eq!(name.as_str(), "unchanged.example");
        }
        // Across the boundary the labels join: still a host name.
        assert!(out.host_name_into(cut(11, 16), &mut name));
        assert_eq!(name.as_str(), "kaspersky.comcdn");
        // Two 63-byte labels back to back make a 126-byte label: refused.
        let mut msg = header(1, 0x0000, 2, 0, 0, 0);
        for byte in [b'a', b'b'] {
            msg.push(63);
            msg.extend(std::iter::repeat_n(byte, 63));
            msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        }
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.host_name_into(out.questions[1].name, &mut name));
        assert!(!out.host_name_into(cut(0, 126), &mut name));
        assert!(!out.host_name_into(cut(1, 64), &mut name));
        assert!(out.host_name_into(cut(1, 63), &mut name));
        assert_eq!(name.as_bytes(), [&[b'a'; 62][..], b"b"].concat());
    }

    #[test]
    fn header_flags_are_decoded() {
        // QR, opcode 5 (UPDATE), AA, TC, RCODE 3 (NXDOMAIN).
        let mut msg = RESPONSE;
        msg[2] = 0x80 | (5 << 3) | 0x04 | 0x02;
        msg[3] = 0x03;
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.is_response);
        assert_eq!(out.opcode, 5);
        assert!(out.truncated_flag);
        assert_eq!(out.rcode, 3);
    }

    #[test]
    fn reuse_clears_previous_message() {
        let mut out = DnsMessage::new();
        assert_eq!(parse_message(&RESPONSE, &mut out), Ok(()));
        let capacity = out.answers.capacity();
        assert_eq!(parse_message(&QUERY, &mut out), Ok(()));
        assert_eq!(out.answers.len(), 0);
        assert_eq!(out.questions.len(), 1);
        assert!(!out.is_response);
        assert_eq!(out.answers.capacity(), capacity);
    }

    #[test]
    fn truncated_header() {
        for cut in 0..HEADER_LEN {
            let (res, out) = parse(&QUERY[..cut]);
            assert_eq!(res, Err(DnsSkip::TruncatedHeader), "cut {cut}");
            assert!(out.questions.is_empty());
        }
    }

    #[test]
    fn truncation_at_every_offset_keeps_prefix() {
        for cut in 0..=RESPONSE.len() {
            let (res, out) = parse(&RESPONSE[..cut]);
            let expected_err = if cut < HEADER_LEN {
                Some(DnsSkip::TruncatedHeader)
            } else if cut < HEADER_LEN + MIN_QUESTION_LEN {
                Some(DnsSkip::NotDns)
            } else if cut < RESPONSE.len() {
                Some(DnsSkip::TruncatedRecord)
            } else {
                None
            };
            assert_eq!(res.err(), expected_err, "cut {cut}");
            let questions = usize::from(cut >= RESPONSE_QUESTION_END);
            assert_eq!(out.questions.len(), questions, "cut {cut}");
            let kept = RESPONSE_ANSWER_ENDS.iter().filter(|&&e| e <= cut).count();
            assert_eq!(answers(&out)[..], expected_answers()[..kept], "cut {cut}");
        }
    }

    #[test]
    fn self_pointer() {
        // The question name is a pointer to its own offset (12).
        let (res, out) = parse(&query_with_name(&[0xc0, 0x0c]));
        assert_eq!(res, Err(DnsSkip::PointerLoop));
        assert!(out.questions.is_empty());
    }

    #[test]
    fn pointer_back_into_own_label_run() {
        // "a" at 12, then a pointer at 14 back to 12: earlier than itself, but inside the run
        // being read, so following it would loop.
        let (res, _) = parse(&query_with_name(&[0x01, b'a', 0xc0, 0x0c]));
        assert_eq!(res, Err(DnsSkip::PointerLoop));
    }

    #[test]
    fn two_pointer_loop() {
        // Offset 12: pointer to 14; offset 14: pointer to 12. The question starts at 12, so
        // its first pointer is the forward one; an answer owner at 14 follows 14 -> 12 and then
        // meets the same forward pointer.
        let (res, _) = parse(&query_with_name(&[0xc0, 0x0e, 0xc0, 0x0c]));
        assert_eq!(res, Err(DnsSkip::ForwardPointer));
        assert_eq!(
            read_name(
                &[0u8; 12]
                    .iter()
                    .copied()
                    .chain([0xc0, 0x0e, 0xc0, 0x0c])
                    .collect::<Vec<_>>(),
                14
            ),
            Err(DnsSkip::ForwardPointer)
        );
    }

    #[test]
    fn forward_pointer() {
        // A pointer to offset 16, after itself, where a valid name "a" does lie.
        let (res, out) = parse(&query_with_name(&[
            0xc0, 0x10, 0x00, 0x00, 0x01, b'a', 0x00,
        ]));
        assert_eq!(res, Err(DnsSkip::ForwardPointer));
        assert!(out.questions.is_empty());
    }

    #[test]
    fn pointer_past_end() {
        let (res, _) = parse(&query_with_name(&[0xff, 0xff]));
        assert_eq!(res, Err(DnsSkip::ForwardPointer));
    }

    #[test]
    fn pointer_cut_after_first_octet() {
        let mut msg = header(7, 0x0100, 1, 0, 0, 0);
        msg.extend_from_slice(&[0x01, b'a', 0x00, 0x00, 0x01, 0x00, 0x01]);
        msg.push(0xc0);
        // The question is complete; the answer section claims nothing, so the stray byte is
        // ignored.
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert_eq!(out.questions.len(), 1);
        assert_eq!(
            read_name(&msg, msg.len() - 1),
            Err(DnsSkip::TruncatedRecord)
        );
    }

    #[test]
    fn too_many_pointer_hops() {
        // "a" at 12, then a chain of pointers each pointing at the one before it.
        let mut msg = header(7, 0x8180, 0, 1, 0, 0);
        msg.extend_from_slice(&[0x01, b'a', 0x00]); // 12..15
        let mut prev = 12u16;
        let mut start = 0;
        for _ in 0..=MAX_POINTER_HOPS {
            start = msg.len();
            msg.extend_from_slice(&(0xc000 | prev).to_be_bytes());
            prev = start as u16;
        }
        // One hop fewer is fine.
        let (name, _) = read_name(&msg, start - 2).unwrap();
        assert_eq!(name, WireName::Host(host("a")));
        assert_eq!(read_name(&msg, start), Err(DnsSkip::TooManyPointerHops));
    }

    /// A response whose second and third owners are pointers: the second to a 128-cell
    /// pointer chain (in the RDATA of an unknown-type first answer) at cell `cell`, the third to
    /// the second owner. Every owner reads as "a".
    fn pointer_owner_response(cell: usize) -> Vec<u8> {
        let mut msg = header(9, 0x8180, 0, 3, 0, 0);
        msg.extend_from_slice(&[0x01, b'a', 0x00]); // owner 0 at 12
        msg.extend_from_slice(&[0x00, 0x63, 0x00, 0x01, 0, 0, 0, 60, 0x01, 0x00]); // type 99
        let base = msg.len();
        for k in 0..128usize {
            let to = if k == 0 { 12 } else { base + 2 * (k - 1) };
            msg.extend_from_slice(&(0xc000 | to as u16).to_be_bytes());
        }
        let owner1 = msg.len();
        msg.extend_from_slice(&(0xc000 | (base + 2 * cell) as u16).to_be_bytes());
        msg.extend_from_slice(&[
            0x00, 0x01, 0x00, 0x01, 0, 0, 0, 60, 0x00, 0x04, 192, 0, 2, 1,
        ]);
        msg.extend_from_slice(&(0xc000 | owner1 as u16).to_be_bytes());
        msg.extend_from_slice(&[
            0x00, 0x01, 0x00, 0x01, 0, 0, 0, 60, 0x00, 0x04, 192, 0, 2, 2,
        ]);
        msg
    }

    /// An owner that points at an earlier owner is copied from it (the memo), but only when the
    /// full walk would stay within the hop cap: at 126 + 1 hops it reads, at 127 + 1 it fails
    /// exactly as the full walk does.
    #[test]
    fn pointer_to_earlier_owner_respects_the_hop_cap() {
        // Cell 124: owner 1 takes 126 hops, owner 2 one more (127, the cap).
        let (res, out) = parse(&pointer_owner_response(124));
        assert_eq!(res, Ok(()));
        assert_eq!(out.answers.len(), 3);
        for answer in &out.answers {
            assert_eq!(name_of(&out, answer.name), host("a"));
        }
        assert_eq!(out.answers[2].data, RData::A(Ipv4Addr::new(192, 0, 2, 2)));
        // Cell 125: owner 1 takes 127 hops (allowed), owner 2 would take 128.
        let (res, out) = parse(&pointer_owner_response(125));
        assert_eq!(res, Err(DnsSkip::TooManyPointerHops));
        assert_eq!(out.answers.len(), 2);
    }

    /// Owners that point at the question and at the previous CNAME target (what every encoder
    /// writes) read the same names as a full decode.
    #[test]
    fn memo_copies_match_full_decode() {
        let (res, out) = parse(&RESPONSE);
        assert_eq!(res, Ok(()));
        for (i, answer) in out.answers.iter().enumerate() {
            let start = if i == 0 {
                RESPONSE_QUESTION_END
            } else {
                RESPONSE_ANSWER_ENDS[i - 1]
            };
            let (name, _) = read_name(&RESPONSE, start).unwrap();
            assert_eq!(
                name,
                WireName::Host(name_of(&out, answer.name)),
                "answer {i}"
            );
        }
    }

    #[test]
    fn label_length_64_and_more() {
        for len_octet in [0x40u8, 0x41, 0x7f] {
            let mut name = vec![len_octet];
            name.extend_from_slice(&[b'a'; 0x7f]);
            name.push(0);
            let (res, _) = parse(&query_with_name(&name));
            assert_eq!(res, Err(DnsSkip::BadLabelType), "length {len_octet:#x}");
        }
    }

    #[test]
    fn reserved_label_types() {
        for len_octet in [0x40u8, 0x80, 0xbf] {
            let (res, _) = parse(&query_with_name(&[len_octet, 0x00, 0x00]));
            assert_eq!(res, Err(DnsSkip::BadLabelType), "type {len_octet:#x}");
        }
    }

    /// Wire name of labels of the given lengths, each made of 'a'.
    fn wire_name(label_lens: &[usize]) -> Vec<u8> {
        let mut name = Vec::new();
        for &len in label_lens {
            name.push(len as u8);
            name.extend(std::iter::repeat_n(b'a', len));
        }
        name.push(0);
        name
    }

    #[test]
    fn name_of_255_octets_is_accepted() {
        let name = wire_name(&[63, 63, 63, 61]);
        assert_eq!(name.len(), 255);
        let (res, out) = parse(&query_with_name(&name));
        assert_eq!(res, Ok(()));
        assert_eq!(out.name(out.questions[0].name).len(), 253);
    }

    #[test]
    fn name_longer_than_255_octets() {
        let name = wire_name(&[63, 63, 63, 62]);
        assert_eq!(name.len(), 256);
        let (res, out) = parse(&query_with_name(&name));
        assert_eq!(res, Err(DnsSkip::NameTooLong));
        assert!(out.questions.is_empty());
        let name = wire_name(&[63; 5]);
        assert_eq!(parse(&query_with_name(&name)).0, Err(DnsSkip::NameTooLong));
    }

    #[test]
    fn name_longer_than_255_octets_through_pointers() {
        // The question is 200 octets; the answer owner adds 60 octets in front of a pointer to
        // it, 260 in all.
        let mut msg = header(7, 0x8180, 1, 1, 0, 0);
        msg.extend_from_slice(&wire_name(&[63, 63, 63, 7])); // 12..212
        msg.extend_from_slice(&[0, 1, 0, 1]);
        let mut owner = wire_name(&[59]);
        owner.pop();
        msg.extend_from_slice(&owner);
        msg.extend_from_slice(&[0xc0, 0x0c]);
        msg.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        let (res, out) = parse(&msg);
        assert_eq!(res, Err(DnsSkip::NameTooLong));
        assert_eq!(out.questions.len(), 1);
        assert!(out.answers.is_empty());
    }

    #[test]
    fn question_count_larger_than_message() {
        let mut msg = QUERY;
        msg[5] = 7; // 7 questions need at least 35 octets; 30 are there.
        let (res, out) = parse(&msg);
        assert_eq!(res, Err(DnsSkip::NotDns));
        assert!(out.questions.is_empty());
    }

    #[test]
    fn answer_count_larger_than_message_keeps_prefix() {
        let mut msg = RESPONSE;
        msg[7] = 10; // 10 answers claimed, 3 present
        let (res, out) = parse(&msg);
        assert_eq!(res, Err(DnsSkip::TruncatedRecord));
        assert_eq!(out.questions.len(), 1);
        assert_eq!(answers(&out), expected_answers());
    }

    #[test]
    fn counts_no_message_could_hold() {
        let mut msg = RESPONSE;
        msg[6] = 0xff;
        msg[7] = 0xff;
        let (res, out) = parse(&msg);
        assert_eq!(res, Err(DnsSkip::NotDns));
        assert!(out.questions.is_empty());
        let (res, _) = parse(&header(1, 0x8180, 0, 0, 0x3000, 0x3000));
        assert_eq!(res, Err(DnsSkip::NotDns));
    }

    #[test]
    fn query_without_question_is_not_dns() {
        let (res, _) = parse(&header(1, 0x0100, 0, 1, 0, 0));
        assert_eq!(res, Err(DnsSkip::NotDns));
        // Cookie-only query shape (RFC 7873 §5.4): accepted, carries no names. The OPT record
        // itself is in the additional section, which is not read.
        let (res, out) = parse(&header(1, 0x0000, 0, 0, 0, 1));
        assert_eq!(res, Ok(()));
        assert!(out.questions.is_empty());
        // DSO (opcode 6, RFC 8490 §5.4) messages have no question.
        let (res, _) = parse(&header(1, 6 << 11, 0, 0, 0, 0));
        assert_eq!(res, Ok(()));
    }

    #[test]
    fn question_with_invalid_hostname_bytes() {
        let mut msg = header(7, 0x0000, 3, 0, 0, 0);
        for name in [
            &b"\x0amy printer\x05local\x00"[..],
            b"\x03a\x00b\x00",
            b"\x03a.b\x00",
        ] {
            msg.extend_from_slice(name);
            msg.extend_from_slice(&[0, 1, 0, 1]);
        }
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.questions.is_empty());
        assert_eq!(out.invalid_names, 3);
    }

    #[test]
    fn root_question_is_skipped_without_counting() {
        let mut msg = header(7, 0x0000, 1, 0, 0, 0);
        msg.extend_from_slice(&[0x00, 0x00, 0x02, 0x00, 0x01]); // ". NS"
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.questions.is_empty());
        assert_eq!(out.invalid_names, 0);
    }

    #[test]
    fn mdns_announcement_with_service_instance_name() {
        // Unsolicited mDNS response (RFC 6762 §8.3): no question, answers with the
        // cache-flush bit in the class.
        let mut msg = header(0, 0x8400, 0, 3, 0, 0);
        // 12: _ipp._tcp.local PTR My Printer._ipp._tcp.local
        msg.extend_from_slice(b"\x04_ipp\x04_tcp\x05local\x00"); // 12..29
        msg.extend_from_slice(&[0x00, 0x0c, 0x00, 0x01, 0, 0, 0x11, 0x94, 0x00, 0x0d]);
        // 39..52: PTR RDATA.
        msg.extend_from_slice(b"\x0aMy Printer\xc0\x0c");
        // 52: My Printer._ipp._tcp.local SRV 0 0 631 printer.local, cache-flush class.
        let srv = [
            0xc0, 0x27, 0x00, 0x21, 0x80, 0x01, 0, 0, 0, 0x78, 0x00, 0x10,
        ];
        msg.extend_from_slice(&srv);
        msg.extend_from_slice(&[0, 0, 0, 0, 0x02, 0x77]);
        // 70..80: SRV target.
        msg.extend_from_slice(b"\x07printer\xc0\x16");
        // 80: printer.local A 192.168.1.20, cache-flush class.
        let a = [
            0xc0, 0x46, 0x00, 0x01, 0x80, 0x01, 0, 0, 0, 0x78, 0x00, 0x04,
        ];
        msg.extend_from_slice(&a);
        msg.extend_from_slice(&[192, 168, 1, 20]);
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert_eq!(out.invalid_names, 1);
        assert_eq!(
            answers(&out),
            vec![
                Rec {
                    name: host("_ipp._tcp.local"),
                    rtype: 12,
                    ttl: 4500,
                    data: Data::Other
                },
                Rec {
                    name: host("printer.local"),
                    rtype: TYPE_A,
                    ttl: 120,
                    data: Data::A(Ipv4Addr::new(192, 168, 1, 20))
                },
            ]
        );
    }

    /// A response to a query for "a" whose single answer is `owner TYPE IN TTL rdata`.
    fn response_with_answer(rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut msg = header(7, 0x8180, 1, 1, 0, 0);
        msg.extend_from_slice(&[0x01, b'a', 0x00, 0x00, 0x01, 0x00, 0x01]); // 12..19
        msg.extend_from_slice(&[0xc0, 0x0c]);
        msg.extend_from_slice(&rtype.to_be_bytes());
        msg.extend_from_slice(&class.to_be_bytes());
        msg.extend_from_slice(&ttl.to_be_bytes());
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(rdata);
        msg
    }

    #[test]
    fn a_record_with_wrong_length() {
        let (res, out) = parse(&response_with_answer(
            TYPE_A,
            CLASS_IN,
            60,
            &[1, 2, 3, 4, 5],
        ));
        assert_eq!(res, Ok(()));
        assert_eq!(out.bad_rdata, 1);
        assert_eq!(out.answers[0].data, RData::Other);
        let (_, out) = parse(&response_with_answer(TYPE_AAAA, CLASS_IN, 60, &[0; 4]));
        assert_eq!(out.bad_rdata, 1);
        assert_eq!(out.answers[0].data, RData::Other);
    }

    #[test]
    fn a_record_in_other_class_is_not_decoded() {
        // Class CH (3): the A RDATA format differs (RFC 1035 §3.4.1 is for IN only).
        let (res, out) = parse(&response_with_answer(TYPE_A, 3, 60, &[1, 2, 3, 4]));
        assert_eq!(res, Ok(()));
        assert_eq!(out.bad_rdata, 0);
        assert_eq!(out.answers[0].data, RData::Other);
    }

    #[test]
    fn ttl_with_top_bit_reads_as_zero() {
        let (_, out) = parse(&response_with_answer(
            TYPE_A,
            CLASS_IN,
            0x8000_0001,
            &[1, 2, 3, 4],
        ));
        assert_eq!(out.answers[0].ttl, 0);
        assert_eq!(out.answers[0].data, RData::A(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn cname_target_running_outside_rdata() {
        // RDLENGTH 2 but the name "b" takes 3 octets; the next octet happens to be its root.
        let mut msg = response_with_answer(TYPE_CNAME, CLASS_IN, 60, &[0x01, b'b']);
        msg.push(0x00);
        let (res, out) = parse(&msg);
        // The answer is kept as Other; the stray octet after it is not part of any record.
        assert_eq!(res, Ok(()));
        assert_eq!(out.bad_rdata, 1);
        assert_eq!(out.answers[0].data, RData::Other);
    }

    #[test]
    fn cname_target_with_pointer_loop_is_bad_rdata() {
        // The CNAME RDATA at offset 31 is a pointer to itself.
        let msg = response_with_answer(TYPE_CNAME, CLASS_IN, 60, &[0xc0, 31]);
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert_eq!(out.bad_rdata, 1);
        assert_eq!(name_of(&out, out.answers[0].name), host("a"));
        assert_eq!(out.answers[0].data, RData::Other);
    }

    #[test]
    fn cname_target_invalid_hostname() {
        let (res, out) = parse(&response_with_answer(
            TYPE_CNAME,
            CLASS_IN,
            60,
            b"\x03a b\x00",
        ));
        assert_eq!(res, Ok(()));
        assert_eq!(out.invalid_names, 1);
        assert_eq!(out.bad_rdata, 0);
        assert_eq!(out.answers[0].data, RData::Other);
    }

    #[test]
    fn rdata_longer_than_message() {
        let mut msg = response_with_answer(TYPE_A, CLASS_IN, 60, &[1, 2, 3, 4]);
        let rdlength_at = msg.len() - 6;
        msg[rdlength_at + 1] = 5;
        let (res, out) = parse(&msg);
        assert_eq!(res, Err(DnsSkip::TruncatedRecord));
        assert_eq!(out.questions.len(), 1);
        assert!(out.answers.is_empty());
    }

    #[test]
    fn questions_over_cap_are_walked_not_kept() {
        let count = MAX_QUESTIONS + 3;
        let mut msg = header(0, 0x8400, count as u16, 1, 0, 0);
        for _ in 0..count {
            msg.extend_from_slice(&[0x01, b'q', 0x00, 0x00, 0x01, 0x00, 0x01]);
        }
        msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]);
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.capped);
        assert_eq!(out.questions.len(), MAX_QUESTIONS);
        assert_eq!(out.answers.len(), 1);
        assert_eq!(out.answers[0].data, RData::A(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn answers_over_cap_stop_parsing() {
        let count = MAX_ANSWERS + 1;
        let mut msg = header(0, 0x8400, 0, count as u16, 0, 0);
        msg.extend_from_slice(&[0x01, b'h', 0x00, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 0]);
        for i in 1..count {
            msg.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, i as u8]);
        }
        let (res, out) = parse(&msg);
        assert_eq!(res, Ok(()));
        assert!(out.capped);
        assert_eq!(out.answers.len(), MAX_ANSWERS);
        assert_eq!(
            out.answers[MAX_ANSWERS - 1].data,
            RData::A(Ipv4Addr::new(10, 0, 0, (MAX_ANSWERS - 1) as u8))
        );
    }

    #[test]
    fn tcp_frames() {
        assert_eq!(next_tcp_frame(&[]), TcpFrame::NeedMore);
        assert_eq!(next_tcp_frame(&[0x00]), TcpFrame::NeedMore);
        assert_eq!(
            next_tcp_frame(&[0x00, 0x00, 0xaa]),
            TcpFrame::Message {
                msg: &[],
                consumed: 2
            }
        );
        let mut stream = (QUERY.len() as u16).to_be_bytes().to_vec();
        stream.extend_from_slice(&QUERY);
        stream.extend_from_slice(&[0x00, 0x68, 0x1a]); // next message begun
        for cut in 0..QUERY.len() + 2 {
            assert_eq!(
                next_tcp_frame(&stream[..cut]),
                TcpFrame::NeedMore,
                "cut {cut}"
            );
        }
        let TcpFrame::Message { msg, consumed } = next_tcp_frame(&stream) else {
            panic!("no message");
        };
        assert_eq!(msg, &QUERY[..]);
        assert_eq!(consumed, QUERY.len() + 2);
        assert_eq!(next_tcp_frame(&stream[consumed..]), TcpFrame::NeedMore);
        let max = [&[0xff, 0xff][..], &[0u8; 65535]].concat();
        assert_eq!(
            next_tcp_frame(&max),
            TcpFrame::Message {
                msg: &max[2..],
                consumed: 65537
            }
        );
    }

    #[test]
    fn dns_ports() {
        assert!(is_dns_port(53));
        assert!(is_dns_port(5353));
        assert!(is_dns_port(5355));
        assert!(!is_dns_port(0));
        assert!(!is_dns_port(853));
        assert!(!is_dns_port(443));
    }

    #[test]
    fn skip_reason_labels() {
        use crate::reason::Reason;
        assert_eq!(DnsSkip::ALL.len(), 8);
        assert_eq!(DnsSkip::ForwardPointer.label(), "forward_pointer");
        assert_eq!(DnsSkip::NotDns.label(), "not_dns");
    }

    use crate::test_rng::XorShift;

    fn check_invariants(input: &[u8], out: &DnsMessage) {
        assert!(out.questions.len() <= MAX_QUESTIONS);
        assert!(out.answers.len() <= MAX_ANSWERS);
        for name in kept_names(out) {
            let text = out.name(name);
            let host = HostName::parse(text).expect("kept names are host names");
            assert_eq!(host.as_bytes(), text);
            assert!(text.len() <= input.len());
        }
        assert!(out.names_len <= MAX_NAME_TEXT_LEN);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut out = DnsMessage::new();
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            let len = (rng.next() % 300) as usize;
            buf.clear();
            buf.extend((0..len).map(|_| rng.next() as u8));
            // Keep the counts small half of the time so that the body is reached.
            if buf.len() >= HEADER_LEN && rng.next() % 2 == 0 {
                for i in [4, 6, 8, 10] {
                    buf[i] = 0;
                    buf[i + 1] &= 0x07;
                }
            }
            let _ = parse_message(&buf, &mut out);
            check_invariants(&buf, &out);
        }
    }

    #[test]
    fn mutated_responses_never_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut out = DnsMessage::new();
        let mut kept = 0usize;
        for _ in 0..20_000 {
            let mut msg = RESPONSE.to_vec();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % msg.len();
                msg[at] = rng.next() as u8;
            }
            let cut = (rng.next() as usize) % (msg.len() + 1);
            msg.truncate(cut.max(msg.len() - 8));
            let _ = parse_message(&msg, &mut out);
            check_invariants(&msg, &out);
            kept += out.answers.len();
        }
        // Most mutations leave some answers intact: the loop does reach the record code.
        assert!(kept > 10_000, "kept {kept}");
    }
}
