//! Tests of the DNS parser: real messages, every truncation offset, hostile names and pointers,
//! TCP framing.

use super::*;

/// A name read from the wire.
// Inline on purpose: a test helper that compares whole names.
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
    0xc0, 0x36, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
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
    let others = out.others.iter().map(|o| o.name);
    questions.chain(owners).chain(targets).chain(others)
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
    let cut = |start: u32, len: u8| NameRef {
        start,
        len: u16::from(len),
        host: true,
    };
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
    // The OPT record itself is missing here: noted, not an error.
    assert!(out.others_cut);
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
    // Kept in presentation form (RFC 1035 §5.1), marked as not host names.
    let texts: Vec<&[u8]> = out.questions.iter().map(|q| out.name(q.name)).collect();
    assert_eq!(texts, [&b"my printer.local"[..], b"a\\000b", b"a\\.b"]);
    assert!(out.questions.iter().all(|q| !q.name.is_host()));
    assert_eq!(out.invalid_names, 0);
    assert_eq!(out.odd_names, 3);
    // A reused HostName cannot be filled from them.
    let mut h = HostName::scratch();
    assert!(!out.host_name_into(out.questions[0].name, &mut h));
}

#[test]
fn odd_names_beyond_the_cap_are_counted() {
    let n = MAX_ODD_NAMES + 3;
    let mut msg = header(7, 0x0000, n as u16, 0, 0, 0);
    for _ in 0..n {
        msg.extend_from_slice(b"\x03a b\x00\x00\x01\x00\x01");
    }
    let (res, out) = parse(&msg);
    assert_eq!(res, Ok(()));
    assert_eq!(out.questions.len(), MAX_ODD_NAMES);
    assert_eq!(usize::from(out.odd_names), MAX_ODD_NAMES);
    assert_eq!(out.invalid_names, 3);
}

#[test]
fn every_byte_of_an_odd_label_round_trips() {
    // One label holding every byte value but the dot-free host alphabet's, read back from
    // its escapes: the text is lossless.
    let mut label: Vec<u8> = (0..=255u8)
        .filter(|b| !b.is_ascii_alphanumeric())
        .take(63)
        .collect();
    label.insert(0, b' ');
    label.truncate(63);
    let mut msg = header(7, 0x0000, 1, 0, 0, 0);
    msg.push(label.len() as u8);
    msg.extend_from_slice(&label);
    msg.extend_from_slice(&[0, 0, 1, 0, 1]);
    let (res, out) = parse(&msg);
    assert_eq!(res, Ok(()));
    let text = out.name(out.questions[0].name);
    let mut back = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' {
            if text[i + 1].is_ascii_digit() {
                let d = std::str::from_utf8(&text[i + 1..i + 4]).unwrap();
                back.push(d.parse::<u8>().unwrap());
                i += 4;
            } else {
                back.push(text[i + 1]);
                i += 2;
            }
        } else {
            back.push(text[i]);
            i += 1;
        }
    }
    assert_eq!(back, label);
    assert!(text.iter().all(|b| (0x20..=0x7e).contains(b)));
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
    assert_eq!(out.invalid_names, 0);
    // The instance name is kept, escaped, as the SRV owner.
    let srv = out.answers[1];
    assert!(!srv.name.is_host());
    assert_eq!(out.name(srv.name), b"my printer._ipp._tcp.local");
    let mut out = out;
    out.answers.remove(1);
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
    assert_eq!(out.invalid_names, 0);
    assert_eq!(out.bad_rdata, 0);
    let RData::Cname(target) = out.answers[0].data else {
        panic!("CNAME kept");
    };
    assert!(!target.is_host());
    assert_eq!(out.name(target), b"a b");
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
    assert!(out.others.len() <= MAX_OTHER_RECORDS);
    assert!(usize::from(out.odd_names) <= MAX_ODD_NAMES);
    for name in kept_names(out) {
        let text = out.name(name);
        if name.is_host() {
            let host = HostName::parse(text).expect("host names are host names");
            assert_eq!(host.as_bytes(), text);
            assert!(text.len() <= input.len());
        } else {
            // Presentation form: printable ASCII only, at most four characters per octet.
            assert!(text.iter().all(|b| (0x20..=0x7e).contains(b)));
            assert!(text.len() <= MAX_ESCAPED_NAME_LEN);
            assert!(!text.is_empty());
        }
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
