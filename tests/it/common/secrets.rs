//! The one list of the forms a secret travels in, for every suite that proves a
//! password or token never reaches an output (issue 10 item 5: it was copied five
//! times, each copy a little different).

/// A secret form and what it is, for the failure message.
pub type Needle = (String, String);

/// Every form the password (and the token, when given) could leak in, from the
/// library's one list ([`smtprobe::testing::leak_needles`]: in clear, base64 at each
/// alignment inside a longer payload, and the LOGIN, PLAIN with and without authzid
/// (RFC 4616 §2), XOAUTH2 and OAUTHBEARER (RFC 7628 §3.1) payloads), labelled
/// `password: …` / `token: …`.
pub fn needles(user: &str, password: &str, token: Option<&str>) -> Vec<Needle> {
    let label = |whose: &'static str, secret: &str| {
        smtprobe::testing::leak_needles(user, secret)
            .into_iter()
            .map(move |(what, form)| (format!("{whose}: {what}"), form))
    };
    let mut v: Vec<Needle> = label("password", password).collect();
    if let Some(token) = token {
        v.extend(label("token", token));
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
