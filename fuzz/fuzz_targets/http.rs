//! proto::http: request and response heads, and the chunked body skipper.
//!
//! Properties: a complete head has `head_len` within the input and the cap, ends with LF, and
//! parsing exactly `head_len` bytes gives the same result (the head does not depend on what
//! follows) while one byte fewer needs more; hosts are valid names; the chunked body skipper
//! gives the same result fed at once or in pieces of a fuzzer-chosen size, and never claims
//! more bytes than it was given.
#![no_main]

use ksensor::proto::http::{
    parse_request_head, parse_response_head, ChunkedBody, RequestHead, ResponseHead, MAX_HEAD_LEN,
};
use ksensor::proto::HostName;
use ksensor_fuzz::Cursor;
use libfuzzer_sys::fuzz_target;

fn check_head_len(data: &[u8], head_len: usize) {
    assert!(head_len <= data.len(), "head_len past the input");
    assert!(head_len <= MAX_HEAD_LEN, "head_len past the cap");
    assert_eq!(data.get(head_len.wrapping_sub(1)), Some(&b'\n'), "head does not end with LF");
}

fn request(data: &[u8]) {
    let head = parse_request_head(data);
    if let RequestHead::Complete { host, head_len, .. } = head {
        check_head_len(data, head_len);
        if let Some(host) = host {
            assert_eq!(HostName::parse(host.as_bytes()), Ok(host));
        }
        let exact = data.get(..head_len).unwrap_or_default();
        assert_eq!(parse_request_head(exact), head, "head depends on the bytes after it");
        let short = data.get(..head_len - 1).unwrap_or_default();
        assert_eq!(parse_request_head(short), RequestHead::NeedMore, "one byte short");
    }
}

fn response(data: &[u8]) {
    let head = parse_response_head(data);
    if let ResponseHead::Complete { head_len, .. } = head {
        check_head_len(data, head_len);
        let exact = data.get(..head_len).unwrap_or_default();
        assert_eq!(parse_response_head(exact), head, "head depends on the bytes after it");
        let short = data.get(..head_len - 1).unwrap_or_default();
        assert_eq!(parse_response_head(short), ResponseHead::NeedMore, "one byte short");
    }
}

fn chunked(piece: usize, body: &[u8]) {
    let mut whole = ChunkedBody::new();
    let at_once = whole.consume(body);
    assert!(at_once.consumed <= body.len());

    let mut split = ChunkedBody::new();
    let mut consumed = 0usize;
    for chunk in body.chunks(piece) {
        let p = split.consume(chunk);
        assert!(p.consumed <= chunk.len());
        consumed += p.consumed;
        if p.done || p.invalid.is_some() {
            break;
        }
    }
    assert_eq!(consumed, at_once.consumed, "consumed differs with pieces of {piece}");
    assert_eq!(split.is_done(), whole.is_done());
    assert_eq!(split.invalid(), whole.invalid());
    assert_eq!(split.first_data(), whole.first_data());
}

fuzz_target!(|data: &[u8]| {
    request(data);
    response(data);
    let mut cursor = Cursor::new(data);
    let piece = usize::from(cursor.u8()).max(1);
    chunked(piece, cursor.rest());
});
