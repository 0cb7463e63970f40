//! The fuzz harnesses (`fuzz/harness.rs`) run deterministically in the ordinary test
//! suite: every input the fuzzer ever crashed on (`tests/fuzz_regressions/TARGET-*`),
//! and a few thousand pseudo-random inputs per target from a seeded xorshift generator
//! built from SMTP-shaped tokens, so the invariants are checked on every `cargo test`
//! even where cargo-fuzz cannot run. Coverage-guided runs: `scripts/fuzz.sh`.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::Path;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces a hostile server's byte stream is made of.
const TOKENS: &[&[u8]] = &[
    b"220 ",
    b"220-",
    b"250-",
    b"250 ",
    b"334 ",
    b"235 ",
    b"421 ",
    b"354 ",
    b"535 ",
    b"503 ",
    b"501 ",
    b"221 ",
    b"454 ",
    b"600 ",
    b"2x0",
    b"250",
    b"STARTTLS",
    b"AUTH PLAIN LOGIN XOAUTH2",
    b"AUTH LOGIN",
    b"PIPELINING",
    b"SIZE 100",
    b"VXNlcm5hbWU6",
    b"UGFzc3dvcmQ6",
    b"!!",
    b"mx",
    b"\r\n",
    b"\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b"\x1b[2J",
    b"\xff",
    b" ",
    b"-",
];

fn smtp_stream(rng: &mut XorShift, header: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    for _ in 0..rng.below(80) {
        if rng.below(8) == 0 {
            v.push(rng.next() as u8);
        } else {
            v.extend_from_slice(TOKENS[rng.below(TOKENS.len())]);
        }
    }
    v
}

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")))
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Replays every stored crash input of every target.
#[test]
fn fuzz_regressions_stay_fixed() {
    let mut n = 0;
    for (target, run) in [
        ("reply_parser", harness::reply_parser as fn(&[u8])),
        ("session", harness::session),
        ("fixture", harness::fixture),
    ] {
        for (name, data) in regressions(target) {
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name} fails again");
            n += 1;
        }
    }
    assert!(n > 0, "no stored regression inputs found");
}

#[test]
fn reply_parser_properties_on_pseudo_random_streams() {
    let mut rng = XorShift(0x5eed_0001);
    for _ in 0..3000 {
        let header = [rng.next() as u8, rng.next() as u8];
        harness::reply_parser(&smtp_stream(&mut rng, &header));
    }
    // An endless line and an endless multi-line reply, past the caps.
    harness::reply_parser(
        &[7, 31]
            .iter()
            .chain(&[b'a'; 4096])
            .copied()
            .collect::<Vec<_>>(),
    );
    let mut endless = vec![9, 31];
    endless.extend(b"250-x\r\n".repeat(600));
    harness::reply_parser(&endless);
}

#[test]
fn session_properties_on_pseudo_random_streams() {
    let mut rng = XorShift(0x5eed_0002);
    for _ in 0..3000 {
        let header = [rng.next() as u8, rng.next() as u8, rng.next() as u8 % 4];
        harness::session(&smtp_stream(&mut rng, &header));
    }
    // Every configuration through a plausible conversation, whole and byte by byte.
    let convo = b"220 mx\r\n250-mx\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n220 go\r\n250-mx\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n221 bye\r\n";
    for flags in 0..=255u8 {
        for seed in [0u8, 1] {
            let mut input = vec![flags, seed, 0];
            input.extend_from_slice(convo);
            harness::session(&input);
        }
    }
}

#[test]
fn fixture_properties_on_bundled_and_mutated_fixtures() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut rng = XorShift(0x5eed_0003);
    let mut parsed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("fixture") {
            continue;
        }
        let text = std::fs::read(&path).unwrap();
        assert!(smtprobe::Fixture::parse_bytes(&text).is_ok(), "{path:?}");
        harness::fixture(&text);
        parsed += 1;
        for _ in 0..200 {
            let mut m = text.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(m.len());
                match rng.below(4) {
                    0 => m[i] = rng.next() as u8,
                    1 => m.insert(i, b" \\\n\r{}<>"[rng.below(8)]),
                    2 => {
                        m.remove(i);
                    }
                    _ => {
                        let j = (i + rng.below(40)).min(m.len());
                        let piece = m[i..j].to_vec();
                        m.splice(i..i, piece);
                    }
                }
            }
            harness::fixture(&m);
        }
    }
    assert!(parsed > 10, "bundled fixtures found: {parsed}");
}
