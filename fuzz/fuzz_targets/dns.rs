//! proto::dns::parse_message on one message, and next_tcp_frame on the same bytes as a stream.
//!
//! Properties: every kept host name's text is a valid HostName in final form (parsing it gives
//! the same bytes, and `host_name_into` gives the same name) and shorter than the message
//! (compression pointers only point backwards, so a name uses each message byte at most once);
//! every other kept name (not a host name) is refused by `host_name_into` and is printable,
//! lower-case presentation form within `MAX_ESCAPED_NAME_LEN`; authority and additional
//! owners are checked the same way;
//! the caps on questions and answers hold; parsing is deterministic with a reused `DnsMessage`;
//! TCP framing cuts messages within the stream.
#![no_main]

use ksensor::proto::dns::{
    self, DnsMessage, NameRef, RData, TcpFrame, MAX_ANSWERS, MAX_OTHER_RECORDS, MAX_QUESTIONS,
};
use ksensor::proto::{HostName, MAX_ESCAPED_NAME_LEN};
use ksensor_fuzz::within;
use libfuzzer_sys::fuzz_target;

fn check_name(out: &DnsMessage, name: NameRef, msg: &[u8]) {
    let text = out.name(name);
    if !name.is_host() {
        let mut copy = HostName::scratch();
        assert!(
            !out.host_name_into(name, &mut copy),
            "host_name_into took an odd name"
        );
        assert!(
            text.iter()
                .all(|b| (0x20..=0x7e).contains(b) && !b.is_ascii_uppercase()),
            "odd name not in lower-case presentation form: {text:?}"
        );
        assert!(text.len() <= MAX_ESCAPED_NAME_LEN, "odd name too long");
        return;
    }
    let parsed = HostName::parse(text).expect("kept name is not a host name");
    assert_eq!(
        parsed.as_bytes(),
        text,
        "kept name is not in final (lower-case) form"
    );
    let mut copy = HostName::scratch();
    assert!(
        out.host_name_into(name, &mut copy),
        "host_name_into refused a kept name"
    );
    assert_eq!(copy, parsed, "host_name_into differs from parse");
    assert!(text.len() < msg.len(), "name longer than the message");
}

fn check(msg: &[u8], out: &DnsMessage) {
    assert!(out.questions.len() <= MAX_QUESTIONS);
    assert!(out.answers.len() <= MAX_ANSWERS);
    for q in &out.questions {
        check_name(out, q.name, msg);
    }
    for a in &out.answers {
        check_name(out, a.name, msg);
        if let RData::Cname(target) = a.data {
            check_name(out, target, msg);
        }
    }
    assert!(out.others.len() <= MAX_OTHER_RECORDS);
    for o in &out.others {
        check_name(out, o.name, msg);
    }
}

/// The names of a parsed message as text, to compare two parses.
fn texts(out: &DnsMessage) -> Vec<Vec<u8>> {
    out.questions
        .iter()
        .map(|q| q.name)
        .chain(out.answers.iter().map(|a| a.name))
        .map(|n| out.name(n).to_vec())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut out = DnsMessage::new();
    let first = dns::parse_message(data, &mut out);
    check(data, &out);
    let (questions, answers, names) = (out.questions.clone(), out.answers.clone(), texts(&out));
    // Reusing the message must give the same result.
    let again = dns::parse_message(data, &mut out);
    assert_eq!(first, again);
    assert_eq!(out.questions, questions);
    assert_eq!(out.answers, answers);
    assert_eq!(texts(&out), names);

    // The same bytes as a DNS-over-TCP stream (RFC 1035 §4.2.2), message after message.
    let mut rest = data;
    while let TcpFrame::Message { msg, consumed } = dns::next_tcp_frame(rest) {
        assert!(within(msg, rest));
        assert_eq!(consumed, msg.len() + 2);
        let _ = dns::parse_message(msg, &mut out);
        check(msg, &out);
        rest = rest.get(consumed..).expect("consumed within the stream");
    }
});
