//! Protocol parsers: bytes in, names out.
//!
//! Contract: each parser reads a borrowed byte slice (a datagram or a reassembled stream prefix),
//! never panics, never allocates per call in steady state, and returns either what it found or a
//! small `Copy` reason. Parsers never format output and never touch counters or flow state.
//! Names leave the parsers as [`HostName`]: validated, lower-case, without a trailing dot. The
//! DNS parser keeps a message's names as checked text inside its [`dns::DnsMessage`] and
//! hands out references; callers borrow the text or fill a reused `HostName` from it.
//!
//! Parsers: [`dns`] (messages, RFC 1035), [`tls`] (ClientHello), [`quic`] (Initial packets,
//! RFC 9000/9001), [`http`] (HTTP/1.x heads and chunked bodies) and [`update`] (Kaspersky update
//! files, by their first bytes).

pub mod dns;
pub mod http;
pub mod quic;
pub mod tls;
pub mod update;

use std::fmt;

/// Where a name was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NameKind {
    Dns,
    Tls,
    Quic,
    Http,
}

impl NameKind {
    pub const ALL: [NameKind; 4] = [NameKind::Dns, NameKind::Tls, NameKind::Quic, NameKind::Http];

    pub fn label(self) -> &'static str {
        match self {
            NameKind::Dns => "dns",
            NameKind::Tls => "tls",
            NameKind::Quic => "quic",
            NameKind::Http => "http",
        }
    }
}

/// Longest DNS name in presentation form without the trailing dot (RFC 1035 §2.3.4: 255 octets
/// on the wire, which is 253 characters of text).
pub const MAX_HOST_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated host name: 1–253 bytes of `[a-z0-9_-]` labels (1–63 bytes each) joined by dots,
/// lower-case, no trailing dot. Stored inline so that extracting a name never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName {
    len: u8,
    bytes: [u8; MAX_HOST_NAME_LEN],
}

/// Why bytes are not a host name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidName {
    Empty,
    TooLong,
    EmptyLabel,
    LabelTooLong,
    BadCharacter,
}

/// Each byte's lower-case form when it may appear in a host-name label (`[A-Za-z0-9_-]`, the
/// alphabet [`HostName::parse`] accepts), 0 otherwise (the dot included). One table load per
/// byte replaces a chain of range tests, so the per-byte loops below have no branches.
// Built at compile time with `b < 256`, the table's length: an index out of bounds would stop
// the build, it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
static HOST_LABEL_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// The lower-case form of `b` if it may appear in a host-name label, 0 otherwise.
fn host_label_byte(b: u8) -> u8 {
    // Always in bounds: the table has an entry for every u8.
    HOST_LABEL_BYTE.get(usize::from(b)).copied().unwrap_or(0)
}

/// Copies `label` into `dst` (of the same length) lower-cased, and says whether every byte
/// is a host-name byte (`[A-Za-z0-9_-]`, the alphabet [`HostName::parse`] accepts): a parser
/// copying labels out of a message copies, lower-cases and checks them in one branch-free
/// pass, eight bytes at a time ([`lower_host_word`]) and the rest byte by byte. When it
/// returns false the copy's content is unspecified. Copies nothing if the lengths differ.
pub fn copy_host_label(dst: &mut [u8], label: &[u8]) -> bool {
    if dst.len() != label.len() {
        return false;
    }
    let mut ok = true;
    let mut dst_words = dst.chunks_exact_mut(8);
    let mut label_words = label.chunks_exact(8);
    for (d, l) in (&mut dst_words).zip(&mut label_words) {
        if let Some(word) = l.first_chunk::<8>() {
            let (lower, good) = lower_host_word(u64::from_le_bytes(*word));
            ok &= good;
            d.copy_from_slice(&lower.to_le_bytes());
        }
    }
    for (d, &b) in dst_words
        .into_remainder()
        .iter_mut()
        .zip(label_words.remainder())
    {
        let lower = host_label_byte(b);
        ok &= lower != 0;
        *d = lower;
    }
    ok
}

/// Eight label bytes (little-endian in a word) lower-cased, and whether all eight are
/// host-name bytes, in a few word operations instead of eight table lookups (a name's labels
/// are copied on every DNS message). For bytes below 0x80, adding `0x80 - lo` to each sets its
/// top bit exactly when the byte is at least `lo`, and no addition carries into the next byte
/// (at most 0x7f + 0x80): so ranges and equalities are tested in all bytes at once. A byte of
/// 0x80 or more makes the word invalid before any of that matters.
fn lower_host_word(x: u64) -> (u64, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ascii = x & HIGH == 0;
    let at_least = |lo: u64| x.wrapping_add(ONES.wrapping_mul(0x80 - lo));
    let above = |hi: u64| x.wrapping_add(ONES.wrapping_mul(0x7f - hi));
    let within = |lo: u64, hi: u64| at_least(lo) & !above(hi) & HIGH;
    let equal = |c: u64| !(x ^ ONES.wrapping_mul(c)).wrapping_add(ONES.wrapping_mul(0x7f)) & HIGH;
    let upper = within(u64::from(b'A'), u64::from(b'Z'));
    let valid = upper
        | within(u64::from(b'a'), u64::from(b'z'))
        | within(u64::from(b'0'), u64::from(b'9'))
        | equal(u64::from(b'-'))
        | equal(u64::from(b'_'));
    // 0x80 >> 2 is 0x20, the case bit of an ASCII letter.
    (x | upper >> 2, ascii && valid == HIGH)
}

/// Checks `raw` (one trailing dot already dropped) as a host name, without copying it: one
/// branch-free pass for the common case, and the exact first problem found by
/// [`first_problem`] only when that pass saw one.
fn check_host_name(raw: &[u8]) -> Result<(), InvalidName> {
    if raw.is_empty() {
        return Err(InvalidName::Empty);
    }
    if raw.len() > MAX_HOST_NAME_LEN {
        return Err(InvalidName::TooLong);
    }
    let mut ok = true;
    // The name starts like a label that just ended: a leading dot is an empty label.
    let mut after_dot = true;
    let mut label_len = 0usize;
    for &b in raw {
        let dot = b == b'.';
        ok &= dot | (host_label_byte(b) != 0);
        ok &= !(dot & after_dot);
        // raw.len() <= 253, so these cannot overflow.
        label_len = if dot { 0 } else { label_len + 1 };
        ok &= label_len <= MAX_LABEL_LEN;
        after_dot = dot;
    }
    ok &= !after_dot;
    if ok {
        Ok(())
    } else {
        Err(first_problem(raw))
    }
}

/// The first problem of a name that is not a host name, scanning from the left (the error
/// [`HostName::parse`] has always reported).
fn first_problem(raw: &[u8]) -> InvalidName {
    let mut label_len = 0usize;
    for &b in raw {
        match b {
            b'.' => {
                if label_len == 0 {
                    return InvalidName::EmptyLabel;
                }
                label_len = 0;
            }
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'A'..=b'Z' => {
                label_len += 1;
                if label_len > MAX_LABEL_LEN {
                    return InvalidName::LabelTooLong;
                }
            }
            _ => return InvalidName::BadCharacter,
        }
    }
    // Only a trailing dot is left (the caller saw a problem).
    InvalidName::EmptyLabel
}

impl HostName {
    /// Validates and normalises `raw`: ASCII letters are lower-cased and one trailing dot is
    /// dropped. Letters, digits, `-` and `_` are accepted in labels (`_` appears in real DNS
    /// names such as SRV owners); anything else is rejected.
    pub fn parse(raw: &[u8]) -> Result<HostName, InvalidName> {
        let mut name = HostName {
            len: 0,
            bytes: [0; MAX_HOST_NAME_LEN],
        };
        name.assign(raw)?;
        Ok(name)
    }

    /// A name to fill with [`HostName::assign`]: holds `a` until then. For callers that keep
    /// one name buffer per worker instead of building a name per call.
    pub fn scratch() -> HostName {
        let mut bytes = [0; MAX_HOST_NAME_LEN];
        if let Some(first) = bytes.first_mut() {
            *first = b'a';
        }
        HostName { len: 1, bytes }
    }

    /// [`HostName::parse`] into an existing name, for callers that keep one name buffer and
    /// reuse it (no 253-byte value is built and moved per name): copies only `raw`'s bytes
    /// and clears what is left of the previous name. On error the name is unchanged.
    pub fn assign(&mut self, raw: &[u8]) -> Result<(), InvalidName> {
        let raw = raw.strip_suffix(b".").unwrap_or(raw);
        check_host_name(raw)?;
        let new_len = raw.len();
        let old_len = usize::from(self.len);
        for (slot, &b) in self.bytes.iter_mut().zip(raw) {
            *slot = b.to_ascii_lowercase();
        }
        // Bytes past the length stay zero: the derived `Eq`, `Hash` and `Ord` compare the
        // whole buffer.
        if let Some(stale) = self.bytes.get_mut(new_len..old_len) {
            stale.fill(0);
        }
        // new_len <= 253 was checked by `check_host_name`.
        self.len = new_len as u8;
        Ok(())
    }

    /// Copies `text` in without checking it again, for the parsers of this module that built
    /// it as a host name in final form (checked and lower-cased as they copied it). Clears
    /// what is left of the previous name. Text longer than a host name is cut (never happens
    /// for checked text).
    fn set_checked(&mut self, text: &[u8]) {
        debug_assert!(
            check_host_name(text).is_ok() && !text.iter().any(u8::is_ascii_uppercase),
            "not a checked host name: {text:?}"
        );
        let new_len = text.len().min(MAX_HOST_NAME_LEN);
        let old_len = usize::from(self.len);
        if let (Some(dst), Some(src)) = (self.bytes.get_mut(..new_len), text.get(..new_len)) {
            dst.copy_from_slice(src);
        }
        if let Some(stale) = self.bytes.get_mut(new_len..old_len) {
            stale.fill(0);
        }
        // new_len <= 253.
        self.len = new_len as u8;
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII was admitted by `parse`.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostName({:?})", self.as_str())
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The address in `raw` when it is an IP address literal as clients write one where a host
/// name belongs: dotted-quad IPv4 (RFC 3986 §3.2.2 IPv4address), or IPv6 (RFC 4291 §2.2),
/// bare or in brackets (RFC 3986 §3.2.2 IP-literal). Without port; IPv6 zone identifiers and
/// the future IPvFuture form are not addresses here.
pub fn ip_literal(raw: &[u8]) -> Option<std::net::IpAddr> {
    let raw = match raw {
        [b'[', inner @ .., b']'] => inner,
        _ => raw,
    };
    // The longest IPv6 text form (with an embedded IPv4 address) is 45 characters.
    if raw.len() > 45 || raw.is_empty() {
        return None;
    }
    // Every name of every ClientHello and request comes here: most are host names, which
    // neither end in a digit (as dotted-quad IPv4 does) nor hold a ':' (as IPv6 always does).
    let could_be =
        raw.last().is_some_and(u8::is_ascii_digit) || memchr::memchr(b':', raw).is_some();
    if !could_be {
        return None;
    }
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// Longest escaped form of a name kept as text: every octet of a 255-octet wire name written
/// as a four-character `\DDD` escape.
pub const MAX_ESCAPED_NAME_LEN: usize = 4 * 255;

/// Appends `byte` of a name label to `out` in DNS presentation form (RFC 1035 §5.1; the
/// OpenTelemetry `dns.question.name` convention): ASCII letters lower-cased (names compare
/// without case, RFC 4343), printable ASCII kept, `\` and `"` escaped with a backslash, and a
/// byte below 0x20 or above 0x7E as `\DDD` (three decimal digits). A `.` is escaped as `\.`
/// when `dot_is_data` (a dot inside a DNS label, RFC 4343 §2.1), kept otherwise.
pub fn push_escaped(out: &mut String, byte: u8, dot_is_data: bool) {
    let (bytes, len) = escaped_byte(byte, dot_is_data);
    for &b in bytes.get(..len).unwrap_or(&[]) {
        out.push(char::from(b));
    }
}

/// The presentation form of one byte, as [`push_escaped`] writes it: up to 4 ASCII bytes and
/// how many of them are used.
pub fn escaped_byte(byte: u8, dot_is_data: bool) -> ([u8; 4], usize) {
    match byte {
        b'\\' | b'"' => ([b'\\', byte, 0, 0], 2),
        b'.' if dot_is_data => ([b'\\', b'.', 0, 0], 2),
        0x20..=0x7e => ([byte.to_ascii_lowercase(), 0, 0, 0], 1),
        _ => (
            [
                b'\\',
                b'0' + byte / 100,
                b'0' + byte / 10 % 10,
                b'0' + byte % 10,
            ],
            4,
        ),
    }
}

/// `raw` (a server name or `Host` value whose dots separate labels) in presentation form, at
/// most [`MAX_ESCAPED_NAME_LEN`] characters (longer values are cut there).
pub fn escape_name(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_ESCAPED_NAME_LEN));
    for &b in raw {
        if out.len() + 4 > MAX_ESCAPED_NAME_LEN {
            break;
        }
        push_escaped(&mut out, b, false);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_follows_dns_presentation_form() {
        assert_eq!(
            escape_name(b"Hello World.example.org"),
            "hello world.example.org"
        );
        assert_eq!(escape_name(b"a\\b\"c"), "a\\\\b\\\"c");
        assert_eq!(
            escape_name(&[b'x', 0, 0x1f, 0x7f, 0x80, 0xff]),
            "x\\000\\031\\127\\128\\255"
        );
        let mut label = String::new();
        push_escaped(&mut label, b'.', true);
        push_escaped(&mut label, b'.', false);
        assert_eq!(label, "\\..");
        // Every byte has one escaped form, and the longest name fits the cap.
        assert_eq!(escape_name(&[0xff; 300]).len(), MAX_ESCAPED_NAME_LEN);
    }

    #[test]
    fn normalises_case_and_trailing_dot() {
        let n = HostName::parse(b"DNL-01.Geo.Kaspersky.COM.").unwrap();
        assert_eq!(n.as_str(), "dnl-01.geo.kaspersky.com");
    }

    #[test]
    fn assign_reuses_the_buffer_and_clears_the_old_tail() {
        assert_eq!(HostName::scratch(), HostName::parse(b"a").unwrap());
        let mut n = HostName::parse(b"dnl-01.geo.kaspersky.com").unwrap();
        n.assign(b"A.B").unwrap();
        assert_eq!(n.as_str(), "a.b");
        // Equal (derived over the whole buffer) to a freshly parsed name.
        assert_eq!(n, HostName::parse(b"a.b").unwrap());
        // A failed assign leaves the name as it was.
        assert_eq!(n.assign(b"a b"), Err(InvalidName::BadCharacter));
        assert_eq!(n.assign(b""), Err(InvalidName::Empty));
        assert_eq!(n, HostName::parse(b"a.b").unwrap());
        n.assign(b"longer-than-before.example.").unwrap();
        assert_eq!(n, HostName::parse(b"longer-than-before.example").unwrap());
    }

    /// The shortcut for names that cannot be addresses changes no answer: every form the
    /// standard parser reads is still found, and host names are not.
    #[test]
    fn ip_literal_agrees_with_the_standard_parser() {
        for text in [
            "192.0.2.1",
            "0.0.0.0",
            "::",
            "::1",
            "2001:db8::ff",
            "::ffff:192.0.2.1",
            "fe80::1",
            "2001:DB8::A",
            "1.2.3",
            "1.2.3.256",
            "www.example.com",
            "example.com1",
            "a:b",
            "1",
            "ff",
            "::ff:",
            "[::1]",
            "[192.0.2.1]",
            "",
        ] {
            let inner = text.trim_start_matches('[').trim_end_matches(']');
            let expected = inner.parse::<std::net::IpAddr>().ok();
            assert_eq!(ip_literal(text.as_bytes()), expected, "{text}");
        }
    }

    #[test]
    fn copy_host_label_copies_lower_case_and_checks() {
        let mut dst = [0u8; 6];
        assert!(copy_host_label(&mut dst, b"Ab-_9Z"));
        assert_eq!(&dst, b"ab-_9z");
        assert!(!copy_host_label(&mut dst, b"ab.cd_"));
        assert!(!copy_host_label(&mut dst, b"ab cd_"));
        // Lengths must agree; nothing is copied otherwise.
        let mut dst = [7u8; 3];
        assert!(!copy_host_label(&mut dst, b"ab"));
        assert_eq!(dst, [7; 3]);
        for bad in [
            b'.', b' ', 0, 0x80, 0xc1, b'@', b'[', b'`', b'{', b'/', b':',
        ] {
            let mut dst = [0u8; 3];
            assert!(
                !copy_host_label(&mut dst, &[b'a', bad, b'B']),
                "byte {bad:#x}"
            );
            assert_eq!(dst[2], b'b');
        }
        // The same alphabet as `HostName::parse`, byte by byte.
        for b in 0..=255u8 {
            let mut one = [0u8];
            assert_eq!(
                copy_host_label(&mut one, &[b]),
                HostName::parse(&[b]).is_ok(),
                "byte {b:#x}"
            );
        }
        assert!(copy_host_label(&mut [], &[]));
    }

    /// The word-at-a-time copy against the byte table: every byte value at every position of
    /// labels long enough to take the word path, and labels of every length up to 63.
    #[test]
    fn copy_host_label_by_words_agrees_with_the_byte_table() {
        let reference = |label: &[u8]| -> (Vec<u8>, bool) {
            let lower: Vec<u8> = label.iter().map(|&b| host_label_byte(b)).collect();
            let ok = lower.iter().all(|&b| b != 0);
            (lower, ok)
        };
        for len in [8usize, 9, 16, 23] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut label = b"aZ9-_mQx".repeat(3);
                    label.truncate(len);
                    label[at] = b;
                    let mut dst = vec![0u8; len];
                    let ok = copy_host_label(&mut dst, &label);
                    let (lower, expected) = reference(&label);
                    assert_eq!(ok, expected, "byte {b:#x} at {at} of {len}");
                    if ok {
                        assert_eq!(dst, lower, "byte {b:#x} at {at} of {len}");
                    }
                }
            }
        }
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in 0..=63usize {
            for _ in 0..200 {
                let label: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly host-name bytes, sometimes anything.
                        let alphabet = b"abcXYZ019-_.";
                        if x % 16 == 0 {
                            (x >> 8) as u8
                        } else {
                            alphabet[(x >> 8) as usize % alphabet.len()]
                        }
                    })
                    .collect();
                let mut dst = vec![0u8; len];
                let ok = copy_host_label(&mut dst, &label);
                let (lower, expected) = reference(&label);
                assert_eq!(ok, expected, "{label:?}");
                if ok {
                    assert_eq!(dst, lower, "{label:?}");
                }
            }
        }
    }

    /// The checks `HostName::parse` made before the branch-free pass (one test per rule is
    /// in `rejects_bad_names`; this compares every verdict and error on many names).
    fn reference_check(raw: &[u8]) -> Result<(), InvalidName> {
        let raw = raw.strip_suffix(b".").unwrap_or(raw);
        if raw.is_empty() {
            return Err(InvalidName::Empty);
        }
        if raw.len() > MAX_HOST_NAME_LEN {
            return Err(InvalidName::TooLong);
        }
        let mut label_len = 0usize;
        for &b in raw {
            match b {
                b'.' if label_len == 0 => return Err(InvalidName::EmptyLabel),
                b'.' => label_len = 0,
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'A'..=b'Z' => {
                    label_len += 1;
                    if label_len > MAX_LABEL_LEN {
                        return Err(InvalidName::LabelTooLong);
                    }
                }
                _ => return Err(InvalidName::BadCharacter),
            }
        }
        if label_len == 0 {
            return Err(InvalidName::EmptyLabel);
        }
        Ok(())
    }

    #[test]
    fn branch_free_check_agrees_with_the_reference_on_random_names() {
        let alphabet = b"aZ9-_. \0\xff";
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1du64);
        let mut next = move || rng.next();
        let mut raw = Vec::new();
        let (mut mismatches, mut kinds) = (0, std::collections::HashSet::new());
        for i in 0..200_000u32 {
            raw.clear();
            let len = (next() % 80) as usize + if i % 4 == 0 { 190 } else { 0 };
            // Some names are mostly letters with rare dots, so that labels of 63 and 64
            // bytes and names of 253 and 254 bytes come up.
            let other = if i % 2 == 0 { 8 } else { 64 };
            for _ in 0..len {
                let r = (next() % other) as usize;
                raw.push(alphabet.get(r).copied().unwrap_or(b'a'));
            }
            let parsed = HostName::parse(&raw);
            let expected = reference_check(&raw);
            if parsed.map(|_| ()) != expected {
                mismatches += 1;
            }
            kinds.insert(format!("{expected:?}"));
            if let Ok(name) = parsed {
                let want = raw.strip_suffix(b".").unwrap_or(&raw).to_ascii_lowercase();
                assert_eq!(name.as_bytes(), &want[..]);
            }
        }
        assert_eq!(mismatches, 0);
        // Every verdict came up.
        assert_eq!(kinds.len(), 6, "{kinds:?}");
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(HostName::parse(b""), Err(InvalidName::Empty));
        assert_eq!(HostName::parse(b"."), Err(InvalidName::Empty));
        assert_eq!(HostName::parse(b"a..b"), Err(InvalidName::EmptyLabel));
        assert_eq!(HostName::parse(b".a"), Err(InvalidName::EmptyLabel));
        assert_eq!(HostName::parse(b"a b"), Err(InvalidName::BadCharacter));
        assert_eq!(HostName::parse(b"a\0b"), Err(InvalidName::BadCharacter));
        assert_eq!(HostName::parse(&[b'a'; 64]), Err(InvalidName::LabelTooLong));
        assert!(HostName::parse(&[b'a'; 63]).is_ok());
        let long = [b"a.".repeat(126), b"ab".to_vec()].concat(); // 254 bytes
        assert_eq!(HostName::parse(&long), Err(InvalidName::TooLong));
        assert!(HostName::parse(&long[1..]).is_err_and(|e| e == InvalidName::EmptyLabel));
        assert!(HostName::parse(&long[2..]).is_ok());
    }
}
