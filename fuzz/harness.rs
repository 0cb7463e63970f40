//! The fuzz harnesses, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`) and
//! the main crate's deterministic property test (`tests/fuzz_properties.rs`, which also
//! replays every input the fuzzer found), so both check the same invariants.
//!
//! Input format, common to the byte-stream targets: `[seed, repeat, stream…]`. `seed`
//! drives a xorshift generator for chunk sizes (1..=64 bytes, or the whole stream when
//! the seed is 0); the stream is fed `1 + repeat % 32` times in a row, so a small input
//! reaches the parser's caps (8 KiB line, 64 KiB reply) without a huge corpus entry.
#![allow(dead_code)]

use smtprobe::fixture::Fixture;
use smtprobe::protocol::reply::{ReplyParser, MAX_LINE, MAX_LINES, MAX_REPLY};
use smtprobe::session::{
    AuthChoice, AuthConfig, Credential, Event, Io, MailConfig, Session, SessionConfig,
};
use smtprobe::transcript::lines_of;
use smtprobe::Secret;
use smtprobe::TlsMode;

/// Sentinel credentials: they must never show up where the invariants forbid.
pub const USER: &str = "fuzz@example.com";
pub const PASSWORD: &str = "S3ntinel-Pa55-ZZ";
pub const TOKEN: &str = "ya29.S3ntinel-T0ken";

/// Chunk sizes: the whole stream (seed 0); 1..=64 bytes but never past a line end (odd
/// seeds: a server that waits for each command, so the session gets past the greeting);
/// or 1..=64 bytes anywhere (even seeds: replies piling up, talking out of turn).
struct Chunks {
    state: u64,
    whole: bool,
    by_line: bool,
}

impl Chunks {
    fn new(seed: u8) -> Chunks {
        Chunks {
            state: 0x9e37_79b9_7f4a_7c15 ^ u64::from(seed).wrapping_mul(0x2545_f491_4f6c_dd1d),
            whole: seed == 0,
            by_line: seed % 2 == 1,
        }
    }

    fn next(&mut self, rest: &[u8]) -> usize {
        if self.whole {
            return rest.len();
        }
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        let n = ((x % 64) as usize + 1).min(rest.len());
        match rest[..n].iter().position(|&b| b == b'\n') {
            Some(i) if self.by_line => i + 1,
            _ => n,
        }
    }
}

/// Splits `[seed, repeat, stream…]` into the chunk generator, the full stream, and the
/// length of one period of it (the stream is the body repeated).
fn stream(data: &[u8]) -> Option<(Chunks, Vec<u8>, usize)> {
    let (&seed, rest) = data.split_first()?;
    let (&repeat, body) = rest.split_first()?;
    let times = 1 + usize::from(repeat % 32);
    Some((Chunks::new(seed), body.repeat(times), body.len()))
}

/// One parse result, comparable across chunkings.
type Parsed = Result<(u16, Vec<Vec<u8>>), String>;

fn parse(input: &[u8], mut chunks: Chunks) -> Vec<Parsed> {
    let mut p = ReplyParser::new();
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = chunks.next(rest);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        p.push(chunk);
        assert!(
            p.buffered() <= MAX_LINE + MAX_REPLY + chunk.len(),
            "buffered {} after a {}-byte chunk",
            p.buffered(),
            chunk.len()
        );
        while let Some(r) = p.next_reply() {
            out.push(match r {
                Ok(reply) => {
                    assert!((200..=599).contains(&reply.code()), "code {}", reply.code());
                    let lines = reply.raw_lines();
                    assert!(!lines.is_empty() && lines.len() <= MAX_LINES);
                    assert!(lines.iter().all(|l| l.len() + 2 <= MAX_LINE));
                    let total: usize = lines.iter().map(|l| l.len() + 2).sum();
                    assert!(total <= MAX_REPLY, "reply of {total} bytes");
                    Ok((reply.code(), lines.to_vec()))
                }
                Err(e) => Err(e.to_string()),
            });
        }
        assert!(
            p.buffered() <= MAX_LINE + MAX_REPLY,
            "buffered {} with no reply pending",
            p.buffered()
        );
    }
    out
}

/// Reply parser: no panic; `buffered()` within the caps plus one chunk; every reply's
/// code in 200..=599 and its size within the caps; chunking does not change the result.
pub fn reply_parser(data: &[u8]) {
    let Some((chunks, input, _)) = stream(data) else {
        return;
    };
    let chunked = parse(&input, chunks);
    let whole = parse(&input, Chunks::new(0));
    assert_eq!(chunked, whole, "chunking changed the parse");
}

/// Every encoding of the sentinel credentials a leak could take: the library's one list
/// ([`smtprobe::testing::leak_needles`]), for the password and for the token.
pub fn secret_forms() -> Vec<Vec<u8>> {
    [PASSWORD, TOKEN]
        .into_iter()
        .flat_map(|secret| smtprobe::testing::leak_needles(USER, secret))
        .map(|(_, form)| form.into_bytes())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The session configuration picked by the flag byte.
pub fn session_config(flags: u8) -> SessionConfig {
    let mode = match flags & 3 {
        0 => TlsMode::Starttls,
        1 => TlsMode::Implicit,
        _ => TlsMode::None,
    };
    let credential = match (flags >> 3) & 3 {
        0 => Credential::Password {
            secret: Secret::new(PASSWORD),
            choice: AuthChoice::Auto,
        },
        1 => Credential::Password {
            secret: Secret::new(PASSWORD),
            choice: AuthChoice::Plain,
        },
        2 => Credential::Password {
            secret: Secret::new(PASSWORD),
            choice: AuthChoice::Login,
        },
        _ => Credential::OAuthToken(Secret::new(TOKEN)),
    };
    SessionConfig {
        helo: "client.test".into(),
        mode,
        auth: Some(AuthConfig {
            user: USER.into(),
            credential,
        }),
        allow_plaintext_auth: flags & 4 != 0,
        mail: (flags & 32 != 0).then(|| MailConfig {
            from: USER.into(),
            to: vec!["a@example.org".into(), "b@example.org".into()],
            message: "Subject: fuzz\n\n.hidden dot\nbody\n".into(),
        }),
        pipelining: flags & 64 != 0,
        nonce: "fuzznonce".into(),
        quit_after: None,
    }
}

/// Client session fed a server byte stream `[flags, seed, repeat, stream…]` (flags pick
/// the configuration; bit 7 makes a requested TLS handshake fail; bit 7 of `repeat`
/// ends the stream with a timeout before the EOF). Invariants: no panic;
/// credentials never transmitted before TLS unless plaintext AUTH is allowed; the raw
/// password never on the wire (only encoded); no transcript record holds any form of
/// the credentials; nothing after `Finished`; EOF always ends the session.
pub fn session(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let timeout_at_end = rest.get(1).is_some_and(|r| r & 128 != 0);
    let Some((mut chunks, input, period)) = stream(rest) else {
        return;
    };
    let cfg = session_config(flags);
    let allow_plain = cfg.allow_plaintext_auth;
    let mut tls = cfg.mode == TlsMode::Implicit;
    let handshake_fails = flags & 128 != 0;
    // A server echoing a secret form itself is not a leak by the client. The stream is
    // periodic, so every short substring of it is in its first period plus 128 bytes.
    let probe = &input[..input.len().min(period + 128)];
    let forms: Vec<Vec<u8>> = secret_forms()
        .into_iter()
        .filter(|f| !contains(probe, f))
        .collect();
    let mut s = Session::new(cfg);
    let mut finished = 0;

    let drain = |s: &mut Session, tls: &mut bool, finished: &mut usize| {
        let mut start_tls = false;
        while let Some(ev) = s.poll_event() {
            assert_eq!(*finished, 0, "event after Finished: {ev:?}");
            if let Event::Finished(_) = ev {
                *finished += 1;
            }
            // The typed event (its Debug) and the transcript text made from it.
            let debug = format!("{ev:?}");
            let texts = lines_of(&ev).into_iter().map(|l| l.text);
            for text in texts.chain(std::iter::once(debug)) {
                for f in &forms {
                    assert!(!contains(text.as_bytes(), f), "secret in an event: {text}");
                }
            }
        }
        let mut closed = false;
        while let Some(io) = s.poll_io() {
            assert!(!closed, "I/O request after Close: {io:?}");
            match io {
                Io::Transmit(bytes) => {
                    for raw in [PASSWORD, TOKEN] {
                        assert!(!contains(&bytes, raw.as_bytes()), "raw credential sent");
                    }
                    if !*tls && !allow_plain {
                        assert!(
                            !bytes.to_ascii_uppercase().starts_with(b"AUTH"),
                            "AUTH before TLS: {:?}",
                            String::from_utf8_lossy(&bytes)
                        );
                        for f in &forms {
                            assert!(!contains(&bytes, f), "credentials before TLS");
                        }
                    }
                }
                Io::StartTls => start_tls = true,
                Io::Close => {
                    assert_eq!(*finished, 1, "Close without Finished");
                    closed = true;
                }
            }
        }
        start_tls
    };

    let mut rest: &[u8] = &input;
    while !rest.is_empty() && !s.is_done() {
        let n = chunks.next(rest);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        s.handle_input(chunk);
        while drain(&mut s, &mut tls, &mut finished) {
            if handshake_fails {
                s.handle_eof();
            } else {
                tls = true;
                s.handle_tls_established();
            }
        }
    }
    if timeout_at_end {
        s.handle_timeout();
        drain(&mut s, &mut tls, &mut finished);
    }
    s.handle_eof();
    drain(&mut s, &mut tls, &mut finished);
    assert!(s.is_done(), "EOF did not end the session");
    assert_eq!(finished, 1, "Finished reported {finished} times");
}

/// Fixture parser: no panic; whatever parses round-trips through `to_text()`: the same
/// header and steps (source line numbers aside: comments and blank lines are not kept),
/// and `to_text()` of the re-parsed fixture is the same text.
pub fn fixture(data: &[u8]) {
    let Ok(f) = Fixture::parse_bytes(data) else {
        return;
    };
    let text = f.to_text();
    let again = Fixture::parse(&text)
        .unwrap_or_else(|e| panic!("to_text() output does not parse: {e}\n{text}"));
    assert_eq!(
        again.header, f.header,
        "round trip changed the header:\n{text}"
    );
    let steps = |x: &Fixture| x.steps.iter().map(|s| s.step.clone()).collect::<Vec<_>>();
    assert_eq!(
        steps(&again),
        steps(&f),
        "round trip changed the steps:\n{text}"
    );
    assert_eq!(again.to_text(), text);
}
