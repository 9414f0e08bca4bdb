//! HTTP/1.x message heads (RFC 9112 §2–§6): detection by content, the start line, field
//! lines, the host a request is for and how the body is delimited.

use memchr::memchr;

use super::{BodyLength, HttpSkip};
use crate::proto::HostName;

/// Result of parsing a request head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // the inline HostName: no allocation per message
pub enum RequestHead {
    /// The bytes do not start an HTTP/1.x request.
    NotHttp,
    /// A request has started; its head is not complete yet.
    NeedMore,
    /// A complete head of `head_len` bytes (empty line included). `host` is the name from the
    /// absolute-form or CONNECT target, else from the Host field, `None` when absent, empty, an
    /// IP literal or not a valid name; `literal` is the address when it is an IP literal
    /// (`10.0.0.1`, `[fd00::1]:8080`, RFC 3986 §3.2.2).
    Complete {
        host: Option<HostName>,
        literal: Option<std::net::IpAddr>,
        head_len: usize,
        body: BodyLength,
    },
    /// A request that is malformed.
    Invalid(HttpSkip),
}

/// Result of parsing a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseHead {
    /// The bytes do not start an HTTP/1.x response.
    NotHttp,
    /// A response has started; its head is not complete yet.
    NeedMore,
    /// A complete head of `head_len` bytes (empty line included).
    Complete {
        status: u16,
        head_len: usize,
        body: BodyLength,
    },
    /// A response that is malformed.
    Invalid(HttpSkip),
}

/// Largest message head (start line, fields and the empty line) looked at. Common servers refuse
/// heads past 8–32 KiB (Apache 8190 bytes per line, nginx 4 × 8 KiB buffers); Kaspersky updater
/// requests are a few hundred bytes. 16 KiB keeps browser requests with large cookies while
/// bounding what a flow buffers before it gives up.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// Most lines in a capped head: every line before the final empty one holds at least one byte
/// and its LF, so this is the structural bound of the line loop.
const MAX_HEAD_LINES: usize = MAX_HEAD_LEN / 2 + 1;

/// Empty lines skipped before a request line. RFC 9112 §2.2 asks servers to ignore at least
/// one (old clients send an extra CRLF after a POST body); two is enough for every known client
/// and keeps detection on other protocols quick.
pub const MAX_LEADING_EMPTY_LINES: usize = 2;

/// Request methods recognised when detecting HTTP by content: RFC 9110 §9.1, PATCH (RFC 5789)
/// and the WebDAV methods of RFC 4918 §9. Method names are case-sensitive (RFC 9110 §9.1).
const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"HEAD",
    b"PUT",
    b"CONNECT",
    b"OPTIONS",
    b"DELETE",
    b"TRACE",
    b"PATCH",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
];

/// Start of every HTTP/1.x version (RFC 9112 §2.3: "HTTP/" DIGIT "." DIGIT).
const HTTP1_PREFIX: &[u8] = b"HTTP/1.";
/// "HTTP/1.x".
const VERSION_LEN: usize = 8;

/// Parses the request head at the start of `stream`.
pub fn parse_request_head(stream: &[u8]) -> RequestHead {
    let window = stream.get(..MAX_HEAD_LEN).unwrap_or(stream);
    let mut start = 0usize;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        let rest = window.get(start..).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            start = start.saturating_add(2);
        } else if rest.starts_with(b"\n") {
            start = start.saturating_add(1);
        } else if rest == b"\r" {
            return RequestHead::NeedMore;
        } else {
            break;
        }
    }
    let rest = window.get(start..).unwrap_or_default();
    let method_len = match method_prefix(rest) {
        Prefix::Partial => return RequestHead::NeedMore,
        Prefix::Mismatch => return RequestHead::NotHttp,
        Prefix::Match(len) => len,
    };
    let Some((line, after_line)) = next_line(window, start) else {
        return incomplete_request(stream);
    };
    let Some((method, target)) = request_line(line, method_len) else {
        return RequestHead::Invalid(HttpSkip::BadRequestLine);
    };
    // RFC 9112 §3.2.2–3.2.3: the authority of an absolute-form or CONNECT target wins over Host.
    let target_authority = if method == b"CONNECT" {
        Some(target)
    } else {
        absolute_form_authority(target)
    };
    let fields = match scan_fields(window, after_line) {
        Scan::Incomplete => return incomplete_request(stream),
        Scan::Invalid(skip) => return RequestHead::Invalid(skip),
        Scan::Complete(fields) => fields,
    };
    // RFC 9112 §6.3: chunked must be the final coding of a request, else 400; without
    // Transfer-Encoding or Content-Length a request has no body.
    let body = match (fields.transfer_encoding, fields.content_length) {
        (Some(Coding::Chunked), _) => BodyLength::Chunked,
        (Some(Coding::Other), _) => return RequestHead::Invalid(HttpSkip::BadTransferEncoding),
        (None, Some(len)) => BodyLength::ContentLength(len),
        (None, None) => BodyLength::None,
    };
    let authority = target_authority.or(fields.host);
    let host = authority.and_then(host_of_authority);
    let literal = match host {
        Some(_) => None,
        None => authority.and_then(authority_ip),
    };
    RequestHead::Complete {
        host,
        literal,
        head_len: fields.head_len,
        body,
    }
}

/// The form of a request target (RFC 9112 §3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: a request to the origin server.
    Origin,
    /// `scheme://authority/path`: a request to a forward proxy (RFC 9112 §3.2.2).
    Absolute,
    /// `host:port` of a `CONNECT` (RFC 9112 §3.2.3).
    Authority,
    /// `*` of a server-wide `OPTIONS` (RFC 9112 §3.2.4), or anything else.
    Other,
}

/// The target of a request line: its form and its path (for an absolute-form target the part
/// after the authority; empty for CONNECT and `*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub form: TargetForm,
    pub path: &'a [u8],
    /// The authority of an absolute-form target or a CONNECT (`host[:port]`), else empty.
    pub authority: &'a [u8],
}

/// The target of the request whose head starts `head` (a head [`parse_request_head`] found
/// complete); `None` when the request line cannot be read. Reads the request line only.
pub fn request_target(head: &[u8]) -> Option<RequestTarget<'_>> {
    let window = head.get(..MAX_HEAD_LEN).unwrap_or(head);
    let mut start = 0usize;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        let rest = window.get(start..).unwrap_or_default();
        if rest.starts_with(b"\r\n") {
            start = start.saturating_add(2);
        } else if rest.starts_with(b"\n") {
            start = start.saturating_add(1);
        } else {
            break;
        }
    }
    let Prefix::Match(method_len) = method_prefix(window.get(start..)?) else {
        return None;
    };
    let (line, _) = next_line(window, start)?;
    let (method, target) = request_line(line, method_len)?;
    if method == b"CONNECT" {
        return Some(RequestTarget {
            form: TargetForm::Authority,
            path: &[],
            authority: target,
        });
    }
    if target.starts_with(b"/") {
        return Some(RequestTarget {
            form: TargetForm::Origin,
            path: target,
            authority: &[],
        });
    }
    match absolute_form_parts(target) {
        Some((authority, path)) => Some(RequestTarget {
            form: TargetForm::Absolute,
            path,
            authority,
        }),
        None => Some(RequestTarget {
            form: TargetForm::Other,
            path: &[],
            authority: &[],
        }),
    }
}

/// Parses the response head at the start of `stream`.
pub fn parse_response_head(stream: &[u8]) -> ResponseHead {
    let window = stream.get(..MAX_HEAD_LEN).unwrap_or(stream);
    // "HTTP/1." DIGIT SP decides whether this is a response at all.
    match version_prefix(window) {
        Prefix::Partial => return ResponseHead::NeedMore,
        Prefix::Mismatch => return ResponseHead::NotHttp,
        Prefix::Match(_) => {}
    }
    let Some((line, after_line)) = next_line(window, 0) else {
        return incomplete_response(stream);
    };
    let Some(status) = status_line(line) else {
        return ResponseHead::Invalid(HttpSkip::BadStatusLine);
    };
    let fields = match scan_fields(window, after_line) {
        Scan::Incomplete => return incomplete_response(stream),
        Scan::Invalid(skip) => return ResponseHead::Invalid(skip),
        Scan::Complete(fields) => fields,
    };
    // RFC 9112 §6.3 items 1, 3, 5 and 7 (HEAD and CONNECT are not known here).
    let body = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLength::None
    } else {
        match (fields.transfer_encoding, fields.content_length) {
            (Some(Coding::Chunked), _) => BodyLength::Chunked,
            (Some(Coding::Other), _) => BodyLength::UntilClose,
            (None, Some(len)) => BodyLength::ContentLength(len),
            (None, None) => BodyLength::UntilClose,
        }
    };
    ResponseHead::Complete {
        status,
        head_len: fields.head_len,
        body,
    }
}

/// How far the first bytes match an expected shape.
enum Prefix {
    /// All bytes so far match, more are needed to decide.
    Partial,
    /// These bytes cannot start the message.
    Mismatch,
    /// A match of this many bytes.
    Match(usize),
}

/// Matches `METHOD SP` at the start of `bytes`.
fn method_prefix(bytes: &[u8]) -> Prefix {
    let mut partial = false;
    for method in METHODS {
        let with_space = method.iter().chain(std::iter::once(&b' '));
        if with_space.zip(bytes).all(|(want, have)| want == have) {
            let len = method.len().saturating_add(1);
            if bytes.len() >= len {
                return Prefix::Match(len);
            }
            partial = true;
        }
    }
    if partial {
        Prefix::Partial
    } else {
        Prefix::Mismatch
    }
}

/// Matches `HTTP/1.` DIGIT SP at the start of `bytes`.
fn version_prefix(bytes: &[u8]) -> Prefix {
    if !HTTP1_PREFIX
        .iter()
        .zip(bytes)
        .all(|(want, have)| want == have)
    {
        return Prefix::Mismatch;
    }
    match bytes.get(HTTP1_PREFIX.len()) {
        None => return Prefix::Partial,
        Some(b) if b.is_ascii_digit() => {}
        Some(_) => return Prefix::Mismatch,
    }
    match bytes.get(VERSION_LEN) {
        None => Prefix::Partial,
        Some(b' ') => Prefix::Match(VERSION_LEN + 1),
        Some(_) => Prefix::Mismatch,
    }
}

/// The line starting at `start` (without its LF or CRLF) and the offset after it, or `None`
/// when no LF follows within `window`.
fn next_line(window: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let rest = window.get(start..)?;
    let lf = memchr(b'\n', rest)?;
    let line = rest.get(..lf)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, start.checked_add(lf)?.checked_add(1)?))
}

fn incomplete_request(stream: &[u8]) -> RequestHead {
    if stream.len() >= MAX_HEAD_LEN {
        RequestHead::Invalid(HttpSkip::HeadTooLarge)
    } else {
        RequestHead::NeedMore
    }
}

fn incomplete_response(stream: &[u8]) -> ResponseHead {
    if stream.len() >= MAX_HEAD_LEN {
        ResponseHead::Invalid(HttpSkip::HeadTooLarge)
    } else {
        ResponseHead::NeedMore
    }
}

/// Splits `method SP request-target SP HTTP-version` (RFC 9112 §3) into method and target.
fn request_line(line: &[u8], method_len: usize) -> Option<(&[u8], &[u8])> {
    let (method_sp, rest) = line.split_at_checked(method_len)?;
    let method = method_sp.strip_suffix(b" ")?;
    let space = memchr(b' ', rest)?;
    let (target, sp_version) = rest.split_at_checked(space)?;
    let version = sp_version.strip_prefix(b" ")?;
    let target_ok = !target.is_empty() && target.iter().all(|&b| b > b' ' && b != 0x7f);
    (target_ok && is_http1_version(version)).then_some((method, target))
}

fn is_http1_version(version: &[u8]) -> bool {
    match version.strip_prefix(HTTP1_PREFIX) {
        Some([minor]) => minor.is_ascii_digit(),
        _ => false,
    }
}

/// `HTTP-version SP 3DIGIT [SP reason-phrase]` (RFC 9112 §4). A missing SP before an empty
/// reason is accepted, as real servers send it.
fn status_line(line: &[u8]) -> Option<u16> {
    let (version, rest) = line.split_at_checked(VERSION_LEN)?;
    if !is_http1_version(version) {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (digits, reason) = rest.split_first_chunk::<3>()?;
    if !(reason.is_empty() || reason.starts_with(b" ")) {
        return None;
    }
    let mut status = 0u16;
    for d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        status = status.checked_mul(10)?.checked_add(u16::from(d - b'0'))?;
    }
    // RFC 9110 §15: status codes are 100–599.
    (100..=599).contains(&status).then_some(status)
}

/// What the field section said about the body's transfer coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    /// chunked is the final coding.
    Chunked,
    /// Transfer-Encoding present but chunked is not final (or no coding listed).
    Other,
}

/// The fields that matter, from a complete field section.
struct Fields<'a> {
    host: Option<&'a [u8]>,
    content_length: Option<u64>,
    transfer_encoding: Option<Coding>,
    head_len: usize,
}

enum Scan<'a> {
    Incomplete,
    Invalid(HttpSkip),
    Complete(Fields<'a>),
}

/// The field that the previous field line was, for obs-fold decisions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Previous {
    StartLine,
    /// Host, Content-Length or Transfer-Encoding.
    Sensitive,
    Other,
}

/// Reads field lines from `start` up to and including the empty line (RFC 9112 §5).
fn scan_fields(window: &[u8], start: usize) -> Scan<'_> {
    let mut fields = Fields {
        host: None,
        content_length: None,
        transfer_encoding: None,
        head_len: 0,
    };
    let mut pos = start;
    let mut previous = Previous::StartLine;
    for _ in 0..MAX_HEAD_LINES {
        let Some((line, next)) = next_line(window, pos) else {
            return Scan::Incomplete;
        };
        pos = next;
        if line.is_empty() {
            fields.head_len = pos;
            return Scan::Complete(fields);
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            // obs-fold (RFC 9112 §5.2), or whitespace before the first field (§2.2): ignored,
            // unless it would continue a field that frames the message or names the host.
            if previous == Previous::Sensitive {
                return Scan::Invalid(HttpSkip::FoldedField);
            }
            continue;
        }
        let Some(colon) = memchr(b':', line) else {
            return Scan::Invalid(HttpSkip::BadFieldLine);
        };
        let Some((name, colon_value)) = line.split_at_checked(colon) else {
            return Scan::Invalid(HttpSkip::BadFieldLine);
        };
        let value = trim_ows(colon_value.get(1..).unwrap_or_default());
        // RFC 9110 §5.1 field-name = token; RFC 9112 §5.1 forbids whitespace before the colon.
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Scan::Invalid(HttpSkip::BadFieldLine);
        }
        previous = Previous::Sensitive;
        if name.eq_ignore_ascii_case(b"host") {
            // RFC 9112 §3.2: more than one Host field line is a 400.
            if fields.host.replace(value).is_some() {
                return Scan::Invalid(HttpSkip::DuplicateHost);
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match merge_content_length(fields.content_length, value) {
                Some(len) => fields.content_length = Some(len),
                None => return Scan::Invalid(HttpSkip::BadContentLength),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            fields.transfer_encoding = Some(final_coding(value, fields.transfer_encoding));
        } else {
            previous = Previous::Other;
        }
    }
    Scan::Invalid(HttpSkip::HeadTooLarge)
}

/// Content-Length = 1*DIGIT; a list of identical values, or repeated identical fields, are
/// accepted as one (RFC 9110 §8.6). Returns `None` on anything else or on overflow.
fn merge_content_length(previous: Option<u64>, value: &[u8]) -> Option<u64> {
    let mut merged = previous;
    for element in value.split(|&b| b == b',') {
        let len = parse_decimal(trim_ows(element))?;
        if merged.is_some_and(|m| m != len) {
            return None;
        }
        merged = Some(len);
    }
    merged
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Folds one Transfer-Encoding field line into what is known: the last listed coding decides
/// (RFC 9112 §6.1, codings are applied in order; lines combine as one list).
fn final_coding(value: &[u8], previous: Option<Coding>) -> Coding {
    let last = value
        .split(|&b| b == b',')
        .map(trim_ows)
        .rfind(|coding| !coding.is_empty());
    match last {
        Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Coding::Chunked,
        Some(_) => Coding::Other,
        None => previous.unwrap_or(Coding::Other),
    }
}

fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// RFC 9110 §5.6.2 tchar, as a table: field names are checked byte by byte on every request.
// Built at compile time, where an out-of-range index is a compile error, not a panic.
#[allow(clippy::indexing_slicing)]
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

fn is_tchar(b: u8) -> bool {
    TCHAR.get(usize::from(b)).copied().unwrap_or(false)
}

/// The authority of an absolute-form target `scheme://authority[/path...]` (RFC 9112 §3.2.2),
/// or `None` when the target is not in absolute form.
fn absolute_form_authority(target: &[u8]) -> Option<&[u8]> {
    absolute_form_parts(target).map(|(authority, _)| authority)
}

/// The authority of an absolute-form target and what follows it (path, query, fragment).
fn absolute_form_parts(target: &[u8]) -> Option<(&[u8], &[u8])> {
    let separator = memchr::memmem::find(target, b"://")?;
    let (scheme, rest) = target.split_at_checked(separator)?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let [first, tail @ ..] = scheme else {
        return None;
    };
    if !first.is_ascii_alphabetic()
        || !tail
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let rest = rest.get(3..)?;
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    rest.split_at_checked(end)
}

/// The host name of an authority `[userinfo@]host[:port]` (RFC 3986 §3.2), `None` when it is
/// empty, an IP literal or not a valid name.
fn host_of_authority(authority: &[u8]) -> Option<HostName> {
    let host_port = match memchr::memrchr(b'@', authority) {
        Some(at) => authority.get(at.checked_add(1)?..)?,
        None => authority,
    };
    // "[...]" is an IP-literal (RFC 3986 §3.2.2).
    if host_port.starts_with(b"[") {
        return None;
    }
    let host = match memchr::memrchr(b':', host_port) {
        Some(colon) => {
            let (host, port) = host_port.split_at_checked(colon)?;
            let port = port.get(1..)?;
            if !port.iter().all(u8::is_ascii_digit) {
                return None;
            }
            host
        }
        None => host_port,
    };
    HostName::parse(host)
        .ok()
        .filter(|name| !is_numeric_host(name))
}

/// The address of an authority `[userinfo@]host[:port]` whose host is an IP literal
/// (`192.0.2.1`, `[2001:db8::1]:443`, RFC 3986 §3.2.2), else `None`.
pub fn authority_ip(authority: &[u8]) -> Option<std::net::IpAddr> {
    let host_port = match memchr::memrchr(b'@', authority) {
        Some(at) => authority.get(at.checked_add(1)?..)?,
        None => authority,
    };
    if let Some(addr) = super::super::ip_literal(host_port) {
        return Some(addr);
    }
    // With a port: after the closing bracket, or after the only colon of an IPv4 form.
    let colon = memchr::memrchr(b':', host_port)?;
    let (host, port) = host_port.split_at_checked(colon)?;
    let port = port.get(1..)?;
    if port.is_empty() || !port.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match host {
        [b'[', ..] => super::super::ip_literal(host),
        _ if !host.contains(&b':') => super::super::ip_literal(host),
        _ => None,
    }
}

/// True when the last label of `name` is all digits: an IPv4 literal such as `10.0.0.1`, or a
/// number such as `2130706433` that resolvers treat as an address. No real top-level domain is
/// numeric (RFC 3696 §2), so such a name never belongs to a rule.
pub(crate) fn is_numeric_host(name: &HostName) -> bool {
    let bytes = name.as_bytes();
    let last = match memchr::memrchr(b'.', bytes) {
        Some(dot) => bytes.get(dot.saturating_add(1)..).unwrap_or_default(),
        None => bytes,
    };
    !last.is_empty() && last.iter().all(u8::is_ascii_digit)
}
