//! DNS messages (RFC 1035 §4), as carried by unicast DNS (port 53), mDNS (RFC 6762, port 5353)
//! and LLMNR (RFC 4795, port 5355), over UDP or TCP (RFC 1035 §4.2.2, RFC 7766).
//!
//! Contract:
//! * Input: one DNS message, borrowed (a UDP payload, or a message cut out of a TCP stream by
//!   [`next_tcp_frame`]). The bytes are hostile.
//! * Output: [`parse_message`] fills a caller-owned [`DnsMessage`]: header fields, the question
//!   names, the answer-section records (A, AAAA and CNAME data decoded; other types kept as
//!   [`RData::Other`]) and the owner names of the authority and additional sections (for an
//!   UPDATE, RFC 2136 §2: zone, prerequisite, update and additional sections in those places).
//! * Copies: each name is decoded once, straight into the message's name text: labels are
//!   copied, lower-cased and checked as host-name bytes in one pass. Questions, owners and CNAME
//!   targets hold an 8-byte [`NameRef`] into that text; an owner that is a pointer to a name
//!   already decoded reuses its reference. Nothing else is copied. Callers borrow a name with
//!   [`DnsMessage::name`] or copy it into a reused [`HostName`] with
//!   [`DnsMessage::host_name_into`]. The vectors of [`DnsMessage`] keep their capacity across
//!   [`DnsMessage::clear`], so steady-state parsing does not allocate.
//! * Laxness: on error (a message cut by the snap length, a TCP stream that stops inside a
//!   message) the message keeps every question and record decoded before the error.
//!   Names that are valid DNS names but not host names (spaces, binary bytes, mDNS service
//!   instance names, RFC 2181 §11) are kept too, in DNS presentation form
//!   ([`crate::proto::push_escaped`]) and marked ([`NameRef::is_host`]), at most
//!   [`MAX_ODD_NAMES`] per message; further ones are counted in [`DnsMessage::invalid_names`].
//! * Caps: [`MAX_QUESTIONS`], [`MAX_ANSWERS`], [`MAX_OTHER_RECORDS`] records per message,
//!   [`MAX_ODD_NAMES`] names that are not host names, [`MAX_NAME_WIRE_LEN`]
//!   octets per name, [`MAX_POINTER_HOPS`] compression pointers per name, and so at most
//!   [`MAX_NAME_TEXT_LEN`] bytes of name text per message. Compression pointers
//!   must point strictly before the start of the label run that contains them, so every name
//!   walk terminates.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{HostName, MAX_ESCAPED_NAME_LEN, MAX_HOST_NAME_LEN, MAX_LABEL_LEN};

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
/// (RFC 6762 §8.3), still well under 100; a zone transfer message (RFC 5936 §2.2) packs as
/// many records as fit in 64 KiB, hundreds of host records. 1024 keeps such a message whole
/// up to about 60 bytes per record, and bounds the name text (see [`MAX_NAME_TEXT_LEN`]).
/// Parsing stops at the cap.
pub const MAX_ANSWERS: usize = 1024;

/// Authority and additional records whose owner names are kept per message. Responses carry a
/// few (an SOA, NS records and their glue, an OPT record, which has the root as owner and is
/// not kept); an UPDATE carries its update records there (RFC 2136 §2.5). 64 covers a busy
/// UPDATE; reading stops at the cap.
pub const MAX_OTHER_RECORDS: usize = 64;
/// Names that are not host names kept per message, each up to [`MAX_ESCAPED_NAME_LEN`] bytes
/// of text. Real messages hold one or two (a DNS-SD instance name, a tunnelled query); 16
/// bounds the text such names can take (16 KB).
pub const MAX_ODD_NAMES: usize = 16;

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
    len: u16,
    /// Whether the text is a host name (else: presentation form with escapes).
    host: bool,
}

impl NameRef {
    /// Whether the name is a host name ([`DnsMessage::host_name_into`] can fill a
    /// [`HostName`] from it); otherwise its text is the escaped presentation form.
    pub fn is_host(self) -> bool {
        self.host
    }

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

/// Where a record of [`DnsMessage::others`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// Authority section (an UPDATE's update section, RFC 2136 §2.5).
    Authority,
    Additional,
}

/// The owner of an authority or additional record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtherRecord {
    pub name: NameRef,
    pub rtype: u16,
    pub section: Section,
}

/// Most names decoded from one message: each kept question, the owner and CNAME target of
/// each kept answer, and each kept authority or additional owner.
const MAX_NAMES_PER_MESSAGE: usize = MAX_QUESTIONS + 2 * MAX_ANSWERS + MAX_OTHER_RECORDS;
/// Bytes a name being decoded may need past the kept text: its presentation form, at most 254
/// octets of labels and dots for 255 wire octets (253 for a name that is kept).
const NAME_DECODE_ROOM: usize = MAX_NAME_WIRE_LEN;
/// The room an odd name needs while it is written in presentation form.
const ESCAPED_DECODE_ROOM: usize = MAX_ESCAPED_NAME_LEN;
/// Largest name text of one message: every name it can keep at the longest host name, the odd
/// names it can keep at their longest escaped form, plus the room to decode one more.
/// ≈ 560 KB; a message only grows the buffer to what it uses
/// (a typical response needs a few hundred bytes), and the buffer is kept across messages.
pub const MAX_NAME_TEXT_LEN: usize = MAX_NAMES_PER_MESSAGE * MAX_HOST_NAME_LEN
    + MAX_ODD_NAMES * MAX_ESCAPED_NAME_LEN
    + ESCAPED_DECODE_ROOM;

/// A parsed DNS message, reused across calls.
#[derive(Clone, Debug, Default)]
pub struct DnsMessage {
    pub id: u16,
    /// The header's flags word as sent (RFC 1035 §4.1.1: QR, Opcode, AA, TC, RD, RA, Z, RCODE;
    /// RFC 4035 §3.2: AD, CD). The fields below decode the parts the sensor acts on.
    pub flags: u16,
    /// QR bit (RFC 1035 §4.1.1).
    pub is_response: bool,
    pub opcode: u8,
    /// The 4-bit header RCODE (the EDNS extended bits live in the additional section).
    pub rcode: u8,
    /// TC bit: the sender truncated the message.
    pub truncated_flag: bool,
    /// Questions, in message order, at most [`MAX_QUESTIONS`] (for an UPDATE: the zone).
    pub questions: Vec<Question>,
    /// Answer records (an UPDATE's prerequisites), in message order, at most [`MAX_ANSWERS`].
    pub answers: Vec<Answer>,
    /// Owners of authority and additional records, in message order, at most
    /// [`MAX_OTHER_RECORDS`]. Records owned by the root (EDNS OPT) are not kept.
    pub others: Vec<OtherRecord>,
    /// Names skipped because they are not host names and [`MAX_ODD_NAMES`] were already kept.
    /// The root name is skipped without being counted: it is a normal DNS name (priming
    /// queries, OPT records).
    pub invalid_names: u16,
    /// Kept names that are not host names.
    pub odd_names: u16,
    /// The authority or additional section ran past the end of the message (or held a bad
    /// name): the owners read before are kept. Not an error: the question and answer sections
    /// are complete.
    pub others_cut: bool,
    /// A, AAAA or CNAME records whose RDATA was malformed (wrong length, or a target name that
    /// runs outside RDATA or does not decode); they are kept as [`RData::Other`].
    pub bad_rdata: u16,
    /// True when [`MAX_QUESTIONS`], [`MAX_ANSWERS`] or [`MAX_OTHER_RECORDS`] cut the message.
    pub capped: bool,
    /// The text of every kept name, back to back: lower-case host names as [`HostName::parse`]
    /// would make them, each decoded once, and odd names in presentation form. `names[..names_len]` is in use; the rest is scratch
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
        self.flags = 0;
        self.is_response = false;
        self.opcode = 0;
        self.rcode = 0;
        self.truncated_flag = false;
        self.questions.clear();
        self.answers.clear();
        self.others.clear();
        self.invalid_names = 0;
        self.odd_names = 0;
        self.others_cut = false;
        self.bad_rdata = 0;
        self.capped = false;
        self.names_len = 0;
    }

    /// The text of a name of this message: a valid host name, lower-case, without a trailing
    /// dot, or for an odd name ([`NameRef::is_host`] false) its presentation form (empty for a
    /// reference from another message that falls outside this one's text).
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
    #[inline]
    pub fn host_name_into(&self, name: NameRef, out: &mut HostName) -> bool {
        if !name.host {
            return false;
        }
        let text = self.name(name);
        if self.odd_names > 0 {
            return self.checked_host_name_into(text, out);
        }
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

    /// [`DnsMessage::host_name_into`] for a message that also holds escaped names, which a
    /// reference from another message could cut into: every byte is checked.
    #[cold]
    fn checked_host_name_into(&self, text: &[u8], out: &mut HostName) -> bool {
        out.assign(text).is_ok()
    }

    /// Whether `a` and `b` are the same name of this message: the same reference, or the same
    /// kind (host or escaped) and text.
    #[inline]
    pub fn same_name(&self, a: NameRef, b: NameRef) -> bool {
        a == b || (a.len == b.len && a.host == b.host && self.name(a) == self.name(b))
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
    out.flags = flags;
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
            TextName::Invalid => {
                if let Some(name) = keep_odd_name(msg, name_start, out) {
                    out.questions.push(Question { name, qtype });
                }
            }
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
            TextName::Text(name) => {
                if known.is_none() {
                    // Kept before the RDATA is read: a CNAME target is decoded after it.
                    out.keep_name(name);
                }
                name
            }
            TextName::Root => continue,
            TextName::Invalid => match keep_odd_name(msg, owner_start, out) {
                Some(name) => name,
                None => continue,
            },
        };
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
        if known.is_none() && name.host {
            memo.add(owner_start, owner_hops, name);
        }
        if let RData::Cname(target) = data {
            if target.host {
                memo.add(fixed_end, hops, target);
            }
        }
    }

    // Authority and additional sections: only the owners are read (RDATA is skipped whole).
    // These sections were not read before; a message cut inside them (a short snap length) is
    // noted, not an error: everything the answer section had is complete.
    // When MAX_ANSWERS cut the answer section, `pos` is not at its end: stop there. Most
    // messages end with nothing but an EDNS OPT record (RFC 6891 §6.1.2), owned by the root:
    // nothing to keep.
    let opt_only = nscount == 0 && (arcount == 0 || (arcount == 1 && msg.get(pos) == Some(&0)));
    if ancount > MAX_ANSWERS || opt_only {
        return Ok(());
    }
    if read_other_sections(msg, pos, [nscount, arcount], out, &mut memo).is_err() {
        out.others_cut = true;
    }
    Ok(())
}

/// Reads the owners of the `counts[0]` authority and `counts[1]` additional records that
/// start at `pos` into `out.others`.
fn read_other_sections(
    msg: &[u8],
    mut pos: usize,
    counts: [usize; 2],
    out: &mut DnsMessage,
    memo: &mut NameMemo,
) -> Result<(), DnsSkip> {
    let mut hops = 0usize;
    let sections = [
        (Section::Authority, counts[0]),
        (Section::Additional, counts[1]),
    ];
    for (section, count) in sections {
        for _ in 0..count {
            if out.others.len() >= MAX_OTHER_RECORDS {
                out.capped = true;
                return Ok(());
            }
            let owner_start = pos;
            // The root owner (an EDNS OPT record, RFC 6891 §6.1.2: most messages end with
            // one) needs no name walk.
            let root = msg.get(pos) == Some(&0);
            let known = if root { None } else { memo.find(msg, pos) };
            let (owner, end) = match known {
                _ if root => (TextName::Root, pos.saturating_add(1)),
                Some((name, end)) => (TextName::Text(name), end),
                None => read_name_text(msg, pos, &mut out.names, out.names_len, &mut hops)?,
            };
            let fixed_end = end
                .checked_add(RR_FIXED_LEN)
                .ok_or(DnsSkip::TruncatedRecord)?;
            let (rtype, rdlength) = match msg.get(end..fixed_end) {
                Some(&[t0, t1, _, _, _, _, _, _, r0, r1]) => (
                    u16::from_be_bytes([t0, t1]),
                    usize::from(u16::from_be_bytes([r0, r1])),
                ),
                _ => return Err(DnsSkip::TruncatedRecord),
            };
            pos = fixed_end
                .checked_add(rdlength)
                .filter(|&e| e <= msg.len())
                .ok_or(DnsSkip::TruncatedRecord)?;
            let name = match owner {
                TextName::Text(name) => {
                    if known.is_none() {
                        out.keep_name(name);
                        memo.add(owner_start, hops, name);
                    }
                    name
                }
                TextName::Root => continue,
                TextName::Invalid => match keep_odd_name(msg, owner_start, out) {
                    Some(name) => name,
                    None => continue,
                },
            };
            out.others.push(OtherRecord {
                name,
                rtype,
                section,
            });
        }
    }
    Ok(())
}

/// Keeps the name at `start` (one [`read_name_text`] found valid DNS but not a host name) in
/// presentation form, while fewer than [`MAX_ODD_NAMES`] are kept; counts it in
/// `invalid_names` otherwise.
fn keep_odd_name(msg: &[u8], start: usize, out: &mut DnsMessage) -> Option<NameRef> {
    if usize::from(out.odd_names) >= MAX_ODD_NAMES {
        out.invalid_names = out.invalid_names.saturating_add(1);
        return None;
    }
    match read_name_escaped(msg, start, &mut out.names, out.names_len) {
        Some(name) => {
            out.keep_name(name);
            out.odd_names = out.odd_names.saturating_add(1);
            Some(name)
        }
        None => {
            out.invalid_names = out.invalid_names.saturating_add(1);
            None
        }
    }
}

/// Writes the name at `start` into `names` at `at` in DNS presentation form (labels joined by
/// dots, each byte as [`crate::proto::escaped_byte`] writes it, a dot inside a label escaped).
/// Only for a name that [`read_name_text`] walked without error: the same walk (the same
/// pointer rule and caps) is repeated, and any surprise gives `None`.
fn read_name_escaped(msg: &[u8], start: usize, names: &mut Vec<u8>, at: usize) -> Option<NameRef> {
    let room = at.checked_add(ESCAPED_DECODE_ROOM)?;
    if room > MAX_NAME_TEXT_LEN {
        return None;
    }
    if names.len() < room {
        names.resize(room, 0);
    }
    let text = names.get_mut(at..room)?;
    let mut len = 0usize;
    let mut pos = start;
    let mut run_start = start;
    let mut hops = 0usize;
    let mut wire_len = 0usize;
    loop {
        let &len_octet = msg.get(pos)?;
        match len_octet & 0xc0 {
            0x00 if len_octet == 0 => break,
            0x00 => {
                let label_len = usize::from(len_octet);
                wire_len = wire_len.checked_add(label_len)?.checked_add(1)?;
                if wire_len >= MAX_NAME_WIRE_LEN {
                    return None;
                }
                let label_start = pos.checked_add(1)?;
                let label_end = label_start.checked_add(label_len)?;
                let label = msg.get(label_start..label_end)?;
                if len > 0 {
                    *text.get_mut(len)? = b'.';
                    len = len.checked_add(1)?;
                }
                for &b in label {
                    let (bytes, n) = super::escaped_byte(b, true);
                    let end = len.checked_add(n)?;
                    text.get_mut(len..end)?.copy_from_slice(bytes.get(..n)?);
                    len = end;
                }
                pos = label_end;
            }
            0xc0 => {
                let &low = msg.get(pos.checked_add(1)?)?;
                let target = usize::from(u16::from_be_bytes([len_octet & 0x3f, low]));
                hops = hops.saturating_add(1);
                if target >= run_start || hops > MAX_POINTER_HOPS {
                    return None;
                }
                pos = target;
                run_start = target;
            }
            _ => return None,
        }
    }
    Some(NameRef {
        start: u32::try_from(at).ok()?,
        len: u16::try_from(len).ok()?,
        host: false,
    })
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
                match keep_odd_name(msg, start, out) {
                    Some(target) => RData::Cname(target),
                    None => RData::Other,
                }
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
                        (Ok(start), Ok(len)) => TextName::Text(NameRef {
                            start,
                            len: u16::from(len),
                            host: true,
                        }),
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
mod tests;
