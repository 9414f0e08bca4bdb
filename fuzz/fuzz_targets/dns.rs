//! proto::dns::parse_message on one message, and next_tcp_frame on the same bytes as a stream.
//!
//! Properties: every kept name is a valid HostName (parsing its text again gives the same name)
//! and shorter than the message (compression pointers only point backwards, so a name uses each
//! message byte at most once); the caps on questions and answers hold; parsing is deterministic
//! with a reused `DnsMessage`; TCP framing cuts messages within the stream.
#![no_main]

use ksensor::proto::dns::{self, DnsMessage, RData, TcpFrame, MAX_ANSWERS, MAX_QUESTIONS};
use ksensor::proto::HostName;
use ksensor_fuzz::within;
use libfuzzer_sys::fuzz_target;

fn check_name(name: &HostName, msg: &[u8]) {
    assert_eq!(HostName::parse(name.as_bytes()), Ok(*name), "name does not round-trip");
    assert!(name.as_bytes().len() < msg.len(), "name longer than the message");
}

fn check(msg: &[u8], out: &DnsMessage) {
    assert!(out.questions.len() <= MAX_QUESTIONS);
    assert!(out.answers.len() <= MAX_ANSWERS);
    for q in &out.questions {
        check_name(&q.name, msg);
    }
    for a in &out.answers {
        check_name(&a.name, msg);
        if let RData::Cname(target) = &a.data {
            check_name(target, msg);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut out = DnsMessage::new();
    let first = dns::parse_message(data, &mut out);
    check(data, &out);
    let (questions, answers) = (out.questions.clone(), out.answers.clone());
    // Reusing the message must give the same result.
    let again = dns::parse_message(data, &mut out);
    assert_eq!(first, again);
    assert_eq!(out.questions, questions);
    assert_eq!(out.answers, answers);

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
