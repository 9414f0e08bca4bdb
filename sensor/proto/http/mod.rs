//! HTTP/1.x request and response heads (RFC 9112), recognised by content on any port.
//!
//! Input: the start of one direction of a TCP stream, positioned where a message head should
//! begin (the start of the stream, or `head_len` plus the body after the previous message).
//! Output: [`RequestHead`] / [`ResponseHead`]: the host name a request is for, the head length
//! and how its body is delimited (RFC 9112 §6.3), or why there is none; [`request_target`]:
//! the form of a complete request's target (origin, absolute, authority) and its path.
//! [`ChunkedBody`] skips a chunked body (RFC 9112 §7.1) fed in pieces, keeping its first bytes
//! so that [`crate::proto::update`] can recognise Kaspersky update files.
//!
//! Copies: nothing but the host name (into the inline [`HostName`]) and the first
//! [`FIRST_DATA_LEN`] body bytes of a chunked body. No allocation.
//!
//! Detection: a request must start with a method token from RFC 9110 §9 (plus PATCH and WebDAV
//! methods) followed by SP, a response with `HTTP/1.`; anything else is `NotHttp` after at most
//! ten bytes. Once a message has started, defects are [`HttpSkip`] reasons.
//!
//! Caps: [`MAX_HEAD_LEN`] bytes of head (past it, [`HttpSkip::HeadTooLarge`]);
//! [`MAX_CHUNK_LINE_LEN`] bytes per chunk-size line and [`MAX_TRAILER_LEN`] bytes of trailer
//! section in a chunked body.
//!
//! Leniency (RFC 9112 §2.2): a bare LF ends a line like CRLF; up to
//! [`MAX_LEADING_EMPTY_LINES`] empty lines before a request line are skipped; obs-fold
//! continuation lines are ignored, except after `Host`, `Content-Length` or `Transfer-Encoding`
//! where they make the message invalid (RFC 9112 §5.2 allows rejecting them, and a folded framing
//! field is a request-smuggling vector).
//!
//! Layout: `head.rs` parses request and response heads (detection, start line, fields, host,
//! body framing), `chunked.rs` follows chunked bodies, `tests.rs` holds the tests of both.

mod chunked;
mod head;
#[cfg(test)]
mod tests;

pub use chunked::{
    ChunkProgress, ChunkedBody, FIRST_DATA_LEN, MAX_CHUNK_LINE_LEN, MAX_TRAILER_LEN,
};
pub(crate) use head::is_numeric_host;
pub use head::{
    authority_ip, parse_request_head, parse_response_head, request_target, RequestHead,
    RequestTarget, ResponseHead, TargetForm, MAX_HEAD_LEN, MAX_LEADING_EMPTY_LINES,
};

crate::reason_enum! {
    /// Why an HTTP message head or body could not be followed.
    pub enum HttpSkip {
        BadRequestLine => "bad_request_line",
        BadStatusLine => "bad_status_line",
        BadFieldLine => "bad_field_line",
        HeadTooLarge => "head_too_large",
        DuplicateHost => "duplicate_host",
        FoldedField => "folded_field",
        BadContentLength => "bad_content_length",
        BadTransferEncoding => "bad_transfer_encoding",
        BadChunkSize => "bad_chunk_size",
        ChunkLineTooLong => "chunk_line_too_long",
        BadChunkEnd => "bad_chunk_end",
        TrailerTooLarge => "trailer_too_large",
    }
}

/// How the body after a head is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: a request without Content-Length or Transfer-Encoding, or a 1xx, 204 or 304
    /// response.
    None,
    /// Exactly this many bytes (may be 0).
    ContentLength(u64),
    /// Chunked transfer coding: feed the bytes after the head to a [`ChunkedBody`].
    Chunked,
    /// A response whose body runs until the connection closes.
    UntilClose,
}
