//! Reply parser throughput (criterion): a Gmail EHLO reply (8 lines) fed whole and one
//! byte at a time, and a stream of short single-line replies. `cargo bench --bench
//! reply_parser`; figures in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use smtprobe::protocol::ReplyParser;
use std::hint::black_box;

const EHLO: &[u8] = b"250-smtp.gmail.com at your service, [203.0.113.7]\r\n\
250-SIZE 35882577\r\n\
250-8BITMIME\r\n\
250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n\
250-CHUNKING\r\n\
250 SMTPUTF8\r\n";

/// Parses every reply in `input`, fed in chunks of `chunk` bytes; returns the count.
fn parse_all(input: &[u8], chunk: usize) -> usize {
    let mut parser = ReplyParser::new();
    let mut n = 0;
    for piece in input.chunks(chunk) {
        parser.push(piece);
        while let Some(r) = parser.next_reply() {
            if r.is_ok() {
                n += 1;
            }
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let short: Vec<u8> = b"250 2.1.0 OK t66sm6271302pjb.45 - gsmtp\r\n".repeat(100);
    let mut g = c.benchmark_group("reply_parser");
    for (name, input, chunk) in [
        ("ehlo-8-lines/whole", EHLO, EHLO.len()),
        ("ehlo-8-lines/1-byte-chunks", EHLO, 1),
        ("100-short-replies/whole", &short[..], short.len()),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
            b.iter(|| parse_all(black_box(input), chunk))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
