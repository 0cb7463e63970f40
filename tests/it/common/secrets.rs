//! The one list of the forms a secret travels in, for every suite that proves a
//! password or token never reaches an output (issue 10 item 5: it was copied five
//! times, each copy a little different).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// A secret form and what it is, for the failure message.
pub type Needle = (String, String);

/// The password raw and every base64 form it travels in: LOGIN's password line,
/// PLAIN's `\0user\0password` (with and without an authorization identity, RFC 4616
/// §2), and a base64 run of the password alone at each alignment inside a longer
/// payload. With a token: the token raw and the XOAUTH2 and OAUTHBEARER initial
/// responses (RFC 7628 §3.1).
pub fn needles(user: &str, password: &str, token: Option<&str>) -> Vec<Needle> {
    let b = |s: &str| B64.encode(s.as_bytes());
    let mut v: Vec<Needle> = vec![
        ("password".into(), password.into()),
        ("LOGIN base64 password".into(), b(password)),
        ("PLAIN base64".into(), b(&format!("\0{user}\0{password}"))),
        (
            "PLAIN base64 with authzid".into(),
            b(&format!("{user}\0{user}\0{password}")),
        ),
    ];
    // Inside a longer payload the password's base64 depends on its offset mod 3; the
    // 16 characters after the first 4 are the password's alone.
    for (what, pad) in [("offset 1", "\0"), ("offset 2", "\0\0")] {
        let run = b(&format!("{pad}{password}"));
        if run.len() >= 20 {
            v.push((format!("base64 of the password, {what}"), run[4..20].into()));
        }
    }
    if let Some(token) = token {
        v.extend([
            ("token".into(), token.into()),
            (
                "XOAUTH2 base64".into(),
                b(&format!("user={user}\x01auth=Bearer {token}\x01\x01")),
            ),
            (
                "OAUTHBEARER base64".into(),
                b(&format!("n,a={user},\x01auth=Bearer {token}\x01\x01")),
            ),
        ]);
    }
    v
}

/// The needle labelled `what` (a test that checks one form did travel, e.g. to the
/// server).
pub fn needle<'a>(needles: &'a [Needle], what: &str) -> &'a str {
    &needles
        .iter()
        .find(|(w, _)| w == what)
        .unwrap_or_else(|| panic!("no needle {what:?}"))
        .1
}

/// Which needles occur in `bytes`, as "WHAT in LABEL".
pub fn leaks(label: &str, bytes: &[u8], needles: &[Needle]) -> Vec<String> {
    needles
        .iter()
        .filter(|(_, n)| bytes.windows(n.len()).any(|w| w == n.as_bytes()))
        .map(|(what, _)| format!("{what} in {label}"))
        .collect()
}

/// Fails when any needle is on the process's stdout or stderr.
pub fn assert_no_secret(out: &std::process::Output, needles: &[Needle]) {
    let mut found = leaks("stdout", &out.stdout, needles);
    found.extend(leaks("stderr", &out.stderr, needles));
    assert!(
        found.is_empty(),
        "secrets leaked: {found:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
