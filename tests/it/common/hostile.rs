//! A table runner for hostile-server cases: each case is a scripted server (fixture
//! text played lock-step by the replay server, `fixture_server`), the flags
//! for `smtprobe check`, and what the user must get back. Every case also gets the
//! checks that hold for any server, however malicious: the exit code is one of the
//! documented ones (never a panic's 101), stdout is a JSON report, the check ends within
//! a generous bound, no raw control byte reaches the terminal, the password never appears
//! in any output, and credentials reach the server only where the case allows it.

use super::*;
use base64::Engine as _;
use smtprobe::replay::ServerCert;
use smtprobe::replay::{Identity, ReplayOptions};
use std::time::Duration;
use std::time::Instant;

/// The user name every case logs in with.
pub const USER: &str = "you@example.com";
/// The password every case uses (passed through `SMTPROBE_PASSWORD`).
pub const PASSWORD: &str = "H0stile-Secret-42";
/// The OAuth token (passed through `HOSTILE_TOKEN` for `--oauth2-token-env`).
pub const TOKEN: &str = "ya29.H0stileT0ken-Sentinel";
/// Generous upper bound for one check with `--timeout 1`: it terminated, not "it is fast".
pub const BOUND: Duration = Duration::from_secs(10);

/// Every encoding of the password and token a client could leak (`common::secrets`).
pub fn secret_forms() -> Vec<Needle> {
    needles(USER, PASSWORD, Some(TOKEN))
}

/// base64 of the user name, as LOGIN's first response carries it.
pub fn user_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(USER)
}

/// What a case may let through to the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Creds {
    /// No AUTH command, no user name, no password in any form.
    Never,
    /// The credentials may be sent (the exchange was encrypted and legitimate so far).
    MaySend,
}

/// What the user gets back from one run.
pub struct Outcome {
    pub out: Output,
    pub json: serde_json::Value,
    pub seen: Seen,
    pub elapsed: Duration,
}

impl Outcome {
    /// The transcript texts from the JSON report.
    pub fn transcript(&self) -> Vec<String> {
        self.json["transcript"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Lines the server received that start with `prefix` (case-insensitive).
    pub fn received(&self, prefix: &str) -> usize {
        let p = prefix.to_ascii_uppercase();
        self.seen
            .lines
            .iter()
            .filter(|l| l.to_ascii_uppercase().starts_with(&p))
            .count()
    }
}

/// A per-case extra check: `Err` says what is wrong.
pub type Check = Box<dyn Fn(&Outcome) -> Result<(), String> + Send + Sync>;

/// One hostile server and what smtprobe must make of it.
pub struct Case {
    pub name: &'static str,
    /// Fixture text per connection (fragments of fixture lines, joined).
    pub scripts: Vec<String>,
    pub cert: ServerCert,
    /// A hand-made certificate and key (PEM) instead of `cert`.
    pub tls_config: Option<(String, String)>,
    /// Flags after the common ones (`--json --timeout 1 --user …` are always given
    /// unless `no_user`).
    pub flags: Vec<String>,
    pub no_user: bool,
    pub exit: i32,
    pub stage: Option<&'static str>,
    pub code: &'static str,
    pub creds: Creds,
    pub checks: Vec<Check>,
}

impl Case {
    /// A STARTTLS case (the usual submission setup) expecting this result.
    pub fn new(
        name: &'static str,
        script: Vec<String>,
        exit: i32,
        stage: Option<&'static str>,
        code: &'static str,
    ) -> Case {
        Case {
            name,
            scripts: vec![script.join("\n")],
            cert: ServerCert::Valid,
            tls_config: None,
            flags: vec!["--tls".into(), "starttls".into()],
            no_user: false,
            exit,
            stage,
            code,
            creds: Creds::Never,
            checks: Vec::new(),
        }
    }

    /// Replaces the flags after the common ones.
    pub fn flags(mut self, flags: &[&str]) -> Case {
        self.flags = flags.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Runs without `--user`.
    pub fn no_user(mut self) -> Case {
        self.no_user = true;
        self
    }

    /// The credentials may legitimately reach this server.
    pub fn creds_may_be_sent(mut self) -> Case {
        self.creds = Creds::MaySend;
        self
    }

    /// Adds a per-case check.
    pub fn check(
        mut self,
        f: impl Fn(&Outcome) -> Result<(), String> + Send + Sync + 'static,
    ) -> Case {
        self.checks.push(Box::new(f));
        self
    }

    /// Presents this certificate chain and key (PEM) instead of the test PKI's.
    pub fn tls_config(mut self, cert_and_key: (String, String)) -> Case {
        self.tls_config = Some(cert_and_key);
        self
    }

    /// Adds further connections (a probe may open a second, credential-free one).
    pub fn also(mut self, script: Vec<String>) -> Case {
        self.scripts.push(script.join("\n"));
        self
    }
}

/// A check that the server never received a line starting with `prefix`.
pub fn never_received(prefix: &'static str) -> impl Fn(&Outcome) -> Result<(), String> {
    move |o| match o.received(prefix) {
        0 => Ok(()),
        n => Err(format!("server received {n} line(s) starting {prefix:?}")),
    }
}

/// A check that the transcript has a line containing `needle`.
pub fn transcript_has(needle: &'static str) -> impl Fn(&Outcome) -> Result<(), String> {
    move |o| {
        if o.transcript().iter().any(|t| t.contains(needle)) {
            Ok(())
        } else {
            Err(format!(
                "no transcript line contains {needle:?}: {:#?}",
                o.transcript()
            ))
        }
    }
}

/// Runs every case concurrently (each against its own server) and fails with the list of
/// every case that went wrong.
pub async fn run_cases(cases: Vec<Case>) {
    let mut names = std::collections::HashSet::new();
    let mut set = tokio::task::JoinSet::new();
    for case in cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        set.spawn(async move {
            let name = case.name;
            let errors = run_case(case).await;
            (name, errors)
        });
    }
    let mut failures = Vec::new();
    let mut ran = 0;
    while let Some(done) = set.join_next().await {
        let (name, errors) = done.expect("case task panicked");
        ran += 1;
        if !errors.is_empty() {
            failures.push(format!("── {name}\n   {}", errors.join("\n   ")));
        }
    }
    assert!(ran > 0);
    eprintln!("{ran} hostile cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} hostile cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn run_case(case: Case) -> Vec<String> {
    let cert = smtprobe::fixture::cert_mode_name(case.cert);
    let scripts: Vec<String> = case
        .scripts
        .iter()
        .map(|s| format!("# certificate: {cert}\n{s}"))
        .collect();
    let scripts: Vec<&str> = scripts.iter().map(String::as_str).collect();
    let files = tempfile::tempdir().unwrap();
    let mut opts = ReplayOptions::default();
    if let Some((cert, key)) = &case.tls_config {
        let (c, k) = (files.path().join("cert.pem"), files.path().join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        opts.identity = Identity::Files { cert: c, key: k };
    }
    let server = FixtureServer::start_with(opts, &scripts).await;
    let mut a = args(&server, &server.ca, &["--json"]);
    set_timeout(&mut a, "1");
    if !case.no_user {
        a.extend(["--user".to_owned(), USER.to_owned()]);
    }
    a.extend(case.flags.iter().cloned());
    let started = Instant::now();
    let env = vec![
        ("SMTPROBE_PASSWORD", PASSWORD.to_owned()),
        ("HOSTILE_TOKEN", TOKEN.to_owned()),
    ];
    let out = smtprobe(a, env).await;
    let elapsed = started.elapsed();
    let seen = server.seen_when_ended(Duration::from_secs(3)).await;
    let mut errors = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    let code = out.status.code();
    if !matches!(code, Some(0..=7)) {
        errors.push(format!(
            "exit code {code:?} is not a documented one (0-7); stderr:\n{stderr}"
        ));
    }
    if code != Some(case.exit) {
        errors.push(format!("exit code {code:?}, expected {}", case.exit));
    }
    if elapsed > BOUND {
        errors.push(format!(
            "took {elapsed:?} with --timeout 1 (bound {BOUND:?})"
        ));
    }
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        if let Some(b) = bytes.iter().find(|&&b| b == 0x1b || b == 0 || b == 0x07) {
            errors.push(format!("raw control byte {b:#04x} on {stream}"));
        }
        errors.extend(leaks(stream, bytes, &secret_forms()));
    }
    let json: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(j) => j,
        Err(e) => {
            errors.push(format!(
                "stdout is not a JSON report ({e}): {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            ));
            serde_json::Value::Null
        }
    };
    if let Some(bad) = control_in_strings(&json) {
        errors.push(format!(
            "a JSON string carries a raw control character: {bad:?}"
        ));
    }
    let stage = json["failed_stage"].as_str();
    if stage != case.stage {
        errors.push(format!("failed_stage {stage:?}, expected {:?}", case.stage));
    }
    let dcode = json["diagnosis"]["code"].as_str().unwrap_or_default();
    if dcode != case.code {
        errors.push(format!(
            "diagnosis {dcode:?}, expected {:?} (summary: {})",
            case.code, json["diagnosis"]["summary"]
        ));
    }
    match case.creds {
        Creds::Never => {
            for l in &seen.lines {
                let upper = l.to_ascii_uppercase();
                if upper.starts_with("AUTH") || l.contains(&user_b64()) {
                    errors.push(format!("credentials sent: server received {l:?}"));
                }
            }
        }
        Creds::MaySend => {}
    }
    for l in &seen.lines {
        if l.contains(PASSWORD) {
            errors.push(format!("the raw password reached the server: {l:?}"));
        }
    }
    let outcome = Outcome {
        out,
        json,
        seen,
        elapsed,
    };
    for check in &case.checks {
        if let Err(e) = check(&outcome) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        errors.push(format!(
            "server received: {:?}\ntranscript: {:#?}",
            outcome.seen.lines,
            outcome.transcript()
        ));
    }
    errors
}

/// The first JSON string value that holds a raw control character other than LF (serde
/// escapes it as `\u001b` in the document, but a consumer printing the value gets the
/// raw byte: server text must arrive already escaped).
pub fn control_in_strings(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => s
            .chars()
            .any(|c| c.is_control() && c != '\n')
            .then(|| s.clone()),
        serde_json::Value::Array(a) => a.iter().find_map(control_in_strings),
        serde_json::Value::Object(o) => o.values().find_map(control_in_strings),
        _ => None,
    }
}

/// A check that no form of the password (nor LOGIN's base64 user name) reached the server.
pub fn no_secret_received(o: &Outcome) -> Result<(), String> {
    let found = leaks(
        "what the server received",
        o.seen.lines.join("\n").as_bytes(),
        &secret_forms(),
    );
    match found.is_empty() {
        true => Ok(()),
        false => Err(found.join(", ")),
    }
}

/// A self-signed certificate (and its key, PEM) whose subject, issuer and
/// subjectAltName carry `text` (IA5String and UTF8String allow control characters).
pub fn certificate_saying(text: &str) -> (String, String) {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, text);
    params.subject_alt_names = vec![
        SanType::DnsName(text.try_into().unwrap()),
        SanType::DnsName("localhost".try_into().unwrap()),
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}
