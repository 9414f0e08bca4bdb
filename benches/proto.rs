//! Protocol parser benchmarks: the TLS ClientHello SNI walker against tls-parser on real
//! captured hellos, and HTTP request-head / chunked-body parsing. Throughput is reported per
//! message (elements/s) or per body byte.
//!
//! Run with `cargo bench --bench proto`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ksensor::proto::{http, tls, HostName};

#[path = "../tests/oracles/tls_sni.rs"]
mod oracle;

/// curl 7.88 TLS 1.3 ClientHello for dnl-07.geo.kaspersky.com, 517 bytes, one record.
const CURL_HELLO: &[u8] =
    include_bytes!("../sensor/proto/testdata/curl_tls13_dnl07_geo_kaspersky.bin");
/// OpenSSL ClientHello with a 1024-byte ffdhe8192 key share (1298 bytes, the size of a
/// post-quantum hello).
const LARGE_HELLO: &[u8] =
    include_bytes!("../sensor/proto/testdata/tls13_ffdhe8192_ds_kaspersky.bin");

/// The handshake message of `record` re-framed as two records, as some stacks send large hellos.
fn two_records(record: &[u8], first: usize) -> Vec<u8> {
    let handshake = record.get(5..).unwrap_or_default();
    let mut out = Vec::new();
    for part in [&handshake[..first], &handshake[first..]] {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn tls_client_hello(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls_client_hello");
    group.throughput(Throughput::Elements(1));
    let split = two_records(LARGE_HELLO, 1000);
    let cases: [(&str, &[u8]); 3] = [
        ("curl_517B", CURL_HELLO),
        ("large_1298B", LARGE_HELLO),
        ("large_two_records", &split),
    ];
    for (label, stream) in cases {
        group.bench_function(format!("walker/{label}"), |b| {
            let mut scratch = Vec::new();
            b.iter(|| tls::sni_from_stream(black_box(stream), &mut scratch))
        });
        group.bench_function(format!("tls_parser/{label}"), |b| {
            b.iter(|| {
                oracle::sni(
                    black_box(stream),
                    tls::MAX_RECORDS_PER_CLIENT_HELLO,
                    |raw| {
                        HostName::parse(raw)
                            .ok()
                            .filter(|n| !oracle::numeric(n.as_bytes()))
                    },
                )
            })
        });
    }
    group.bench_function("walker/reject_http", |b| {
        let mut scratch = Vec::new();
        b.iter(|| tls::sni_from_stream(black_box(b"GET / HTTP/1.1\r\n"), &mut scratch))
    });
    group.finish();
}

/// curl's request to an update server.
const CURL_REQUEST: &[u8] = b"GET /index/u1313g.xml.dif HTTP/1.1\r\n\
    Host: dnl-07.geo.kaspersky.com\r\n\
    User-Agent: curl/7.88.1\r\n\
    Accept: */*\r\n\r\n";

/// A browser-shaped request with a dozen fields and a cookie, Host not first.
const BROWSER_REQUEST: &[u8] = b"GET /en/downloads?utm_source=x HTTP/1.1\r\n\
    Connection: keep-alive\r\n\
    Host: my.kaspersky.com\r\n\
    Upgrade-Insecure-Requests: 1\r\n\
    User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
    Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
    Accept-Encoding: gzip, deflate\r\n\
    Accept-Language: en-US,en;q=0.9\r\n\
    Cookie: session=0123456789abcdef0123456789abcdef; prefs=lang%3Den%26region%3Dus; _ga=GA1.2.123456789.1700000000\r\n\
    Cache-Control: max-age=0\r\n\
    DNT: 1\r\n\
    Sec-Fetch-Mode: navigate\r\n\
    Sec-Fetch-Site: none\r\n\r\n";

/// A request through a proxy in absolute form.
const PROXY_REQUEST: &[u8] =
    b"GET http://dnl-01.geo.kaspersky.com/bases/av/kdb/i386/kdb-i386-0607g.xml.dif HTTP/1.1\r\n\
    Host: dnl-01.geo.kaspersky.com\r\n\
    Proxy-Connection: Keep-Alive\r\n\r\n";

fn http_heads(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_request_head");
    group.throughput(Throughput::Elements(1));
    for (label, request) in [
        ("curl", CURL_REQUEST),
        ("browser", BROWSER_REQUEST),
        ("proxy_absolute_form", PROXY_REQUEST),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| http::parse_request_head(black_box(request)))
        });
    }
    group.bench_function("reject_tls", |b| {
        b.iter(|| http::parse_request_head(black_box(CURL_HELLO)))
    });
    group.finish();

    // A 64 KiB chunked update file in 4 KiB chunks.
    let mut body = Vec::new();
    for i in 0..16 {
        body.extend_from_slice(b"1000\r\n");
        let fill = if i == 0 { b'K' } else { b'x' };
        body.extend(std::iter::repeat_n(fill, 4096));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("http_chunked_body");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("skip_64KiB_in_1460B_segments", |b| {
        b.iter(|| {
            let mut chunked = http::ChunkedBody::new();
            for segment in black_box(&body).chunks(1460) {
                chunked.consume(segment);
            }
            chunked.is_done()
        })
    });
    group.finish();
}

criterion_group!(benches, tls_client_hello, http_heads);
criterion_main!(benches);
