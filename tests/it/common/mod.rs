//! Helpers for the integration tests: scripted SMTP servers on loopback, written as
//! fixtures and played by the replay server (`fixture_server`: there is no second
//! script language), a runner for the `smtprobe` binary, and the one list of secret
//! forms (`secrets`). Only 127.0.0.1 is ever used.
#![allow(dead_code)]

use smtprobe::replay::TestPki;
use std::process::{Command, Output};

pub mod fixture_server;
pub mod hostile;
pub mod secrets;

pub use fixture_server::{
    fixture, gmail_starttls, raw, replies, FixtureServer, GMAIL_BEFORE_TLS,
    IMPLICIT_GREETING_THEN_QUIT,
};
pub use secrets::{assert_no_secret, leaks, needle, needles, Needle};

/// What the server saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Every line received, as text (lossy).
    pub lines: Vec<String>,
    /// The body received after DATA.
    pub body: String,
    /// Connections accepted.
    pub connections: usize,
    /// True when a connection followed its fixture to the end, without a deviation.
    pub completed: bool,
    /// Connections that have ended (followed, deviated or timed out).
    pub ended: usize,
    /// Fixture servers: each ended connection's result (how the client followed the
    /// fixture, its deviations), for assertion messages.
    pub results: Vec<String>,
}

/// A test server the probe is pointed at.
pub trait Listening {
    /// Its port on 127.0.0.1.
    fn port(&self) -> u16;
}

/// The test PKI, generated once per test (names localhost and 127.0.0.1).
pub fn pki() -> TestPki {
    TestPki::generate(&["localhost", "127.0.0.1"]).expect("test PKI")
}

/// Runs the smtprobe binary with arguments and environment; never inherits a password.
pub async fn smtprobe(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smtprobe"));
        cmd.args(&args)
            .env_remove("SMTPROBE_PASSWORD")
            .env_remove("RUST_LOG")
            // smtprobe honours ALL_PROXY (issue 13): a CI machine's proxy must not
            // reroute loopback tests; a test that wants one passes it in `env`.
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// Arguments to check `localhost` through 127.0.0.1 on the server's port, trusting only
/// the web PKI roots.
pub fn args_without_ca(server: &impl Listening, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "check".into(),
        "localhost".into(),
        "--connect-to".into(),
        "127.0.0.1".into(),
        "--port".into(),
        server.port().to_string(),
        "--helo".into(),
        "client.test".into(),
        "--timeout".into(),
        "3".into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The usual arguments: [`args_without_ca`] plus `--ca-file` for the test CA.
pub fn args(server: &impl Listening, ca: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut v = args_without_ca(server, &["--ca-file", &ca.display().to_string()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Replaces the `--timeout` value in an argument list.
pub fn set_timeout(args: &mut [String], secs: &str) {
    if let Some(i) = args.iter().position(|x| x == "--timeout") {
        args[i + 1] = secs.into();
    }
}

/// Parses stdout as the JSON report.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
