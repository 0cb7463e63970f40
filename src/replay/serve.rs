//! `smtprobe serve PATH`: loads the scenarios (a fixture file, or a folder of fixtures
//! and `.sequence` files), listens, serves connections concurrently, prints one verdict
//! per connection, and decides the exit code.
//!
//! stdout is the contract a CI script reads: first line `listening on ADDR` (with
//! `--json`, `{"event":"listening","address":"ADDR"}`), then one line per connection,
//! and a summary when stopped by SIGINT/SIGTERM. Diagnostics go to stderr.

use super::{
    read_fixture_file, Behaviour, ConnectionResult, LoadError, ReplayError, ReplayOptions,
};
use super::{ReplayServer, Scenarios};
use crate::fixture::Expect;
use crate::TlsMode;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinSet;

/// Exit codes of `serve`.
pub mod exit {
    /// Every served connection passed.
    pub const PASSED: i32 = 0;
    /// A connection failed, or no client came within `--accept-timeout`.
    pub const FAILED: i32 = 1;
    /// Bad flags, an unplayable fixture, an address or file that cannot be used.
    pub const USAGE: i32 = 2;
}

/// Options of `smtprobe serve` (the CLI maps its flags onto this).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// A fixture file or a folder of them.
    pub path: PathBuf,
    /// Where to listen (`--listen`, e.g. `127.0.0.1:2525`; port 0 picks one).
    pub listen: SocketAddr,
    /// Where to write the CA certificate in PEM (`--ca-out`).
    pub ca_out: Option<PathBuf>,
    /// Stop after this many connections (`--connections N`, `--once` = 1); `None`
    /// serves until SIGINT/SIGTERM.
    pub connections: Option<usize>,
    /// One JSON object per stdout line (`--json`).
    pub json: bool,
    /// Folder mode: the scenario a connection starts with (`--scenario`).
    pub scenario: Option<String>,
    /// Server behaviour (strict, findings, delay, deadlines, certificate).
    pub replay: ReplayOptions,
}

/// Loads `path`: one fixture, or a folder (every `*.fixture` and `*.sequence` in it).
pub fn load(path: &Path, default: Option<&str>) -> Result<Scenarios, LoadError> {
    if !path.is_dir() {
        let f = read_fixture_file(path)?;
        if let Some(d) = default {
            if d != f.header.name {
                return Err(LoadError::ScenarioNotInFile {
                    asked: d.to_owned(),
                    path: path.to_owned(),
                    plays: f.header.name,
                });
            }
        }
        return Scenarios::single(f).map_err(LoadError::fixture(path));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(LoadError::io(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut fixtures: Vec<(String, Arc<Behaviour>)> = Vec::new();
    for p in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "fixture"))
    {
        let f = read_fixture_file(p)?;
        let b = Behaviour::from_fixture(&f).map_err(LoadError::fixture(p))?;
        if fixtures.iter().any(|(n, _)| *n == b.name) {
            return Err(LoadError::DuplicateName {
                file: p.clone(),
                name: b.name,
                sequence: false,
            });
        }
        fixtures.push((b.name.clone(), Arc::new(b)));
    }
    if fixtures.is_empty() {
        return Err(LoadError::NoFixtures(path.to_owned()));
    }
    let mut entries: Vec<(String, Vec<Arc<Behaviour>>)> = fixtures
        .iter()
        .map(|(n, b)| (n.clone(), vec![b.clone()]))
        .collect();
    for p in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sequence"))
    {
        entries.push(read_sequence(p, &fixtures)?);
    }
    let default = match default {
        Some(d) => d.to_string(),
        None => default_scenario(&fixtures),
    };
    Scenarios::set(entries, &default)
}

/// A `.sequence` file: one scenario name per line (`#` comments), played on successive
/// connections; the last one repeats.
fn read_sequence(
    p: &Path,
    fixtures: &[(String, Arc<Behaviour>)],
) -> Result<(String, Vec<Arc<Behaviour>>), LoadError> {
    let meta = std::fs::metadata(p).map_err(LoadError::io(p))?;
    if meta.len() > 64 * 1024 {
        return Err(LoadError::SequenceTooLarge(p.to_owned()));
    }
    let text = std::fs::read_to_string(p).map_err(LoadError::io(p))?;
    let name = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut items: Vec<Arc<Behaviour>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let b = fixtures
            .iter()
            .find(|(n, _)| n == line)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| LoadError::UnknownInSequence {
                path: p.to_owned(),
                line: i + 1,
                name: line.to_owned(),
            })?;
        if let Some(first) = items.first() {
            if first.mode != b.mode {
                return Err(LoadError::MixedModes {
                    path: p.to_owned(),
                    line: i + 1,
                    name: line.to_owned(),
                    mode: b.mode,
                    first: first.mode,
                });
            }
        }
        items.push(b);
    }
    if items.is_empty() {
        return Err(LoadError::NoNamesInSequence(p.to_owned()));
    }
    if fixtures.iter().any(|(n, _)| *n == name) {
        return Err(LoadError::DuplicateName {
            file: p.to_owned(),
            name,
            sequence: true,
        });
    }
    Ok((name, items))
}

/// Folder mode without `--scenario`: a scenario named `default` if there is one, else
/// the first `expect: ok` STARTTLS fixture by name, else the first fixture.
fn default_scenario(fixtures: &[(String, Arc<Behaviour>)]) -> String {
    if fixtures.iter().any(|(n, _)| n == "default") {
        return "default".into();
    }
    fixtures
        .iter()
        .find(|(_, b)| b.expect == Expect::Ok && b.mode == TlsMode::Starttls)
        .or(fixtures.first())
        .map(|(n, _)| n.clone())
        .unwrap_or_default()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

fn print_result(r: &ConnectionResult, json: bool) {
    if json {
        say(&r.to_json());
    } else {
        say(&r.to_string());
    }
}

/// A load error for stderr; the two about the starting scenario name its flag.
fn load_error_line(e: &LoadError) -> String {
    match e {
        LoadError::NoSuchScenario(_) => format!("--scenario: {e}"),
        // "scenario NAME: …" becomes "--scenario NAME: …".
        LoadError::ScenarioNotInFile { .. } => format!("--{e}"),
        _ => e.to_string(),
    }
}

/// Runs `smtprobe serve` and returns the exit code ([`exit`]).
pub async fn serve_main(opts: ServeOptions) -> i32 {
    let scenarios = match load(&opts.path, opts.scenario.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtprobe serve: {}", load_error_line(&e));
            return exit::USAGE;
        }
    };
    if opts.replay.strict && scenarios.fixtures.is_empty() {
        eprintln!("smtprobe serve: --strict plays one fixture file, not a folder");
        return exit::USAGE;
    }
    let server =
        match ReplayServer::bind_scenarios(scenarios, opts.listen, opts.replay.clone()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("smtprobe serve: {}: {e}", opts.listen);
                return exit::USAGE;
            }
        };
    if let Some(path) = &opts.ca_out {
        if let Err(e) = std::fs::write(path, server.ca_pem()) {
            eprintln!("smtprobe serve: writing {}: {e}", path.display());
            return exit::USAGE;
        }
    }
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("smtprobe serve: {e}");
            return exit::USAGE;
        }
    };
    if opts.json {
        #[derive(serde::Serialize)]
        struct Listening {
            event: &'static str,
            address: String,
        }
        let line = Listening {
            event: "listening",
            address: addr.to_string(),
        };
        say(&serde_json::to_string(&line).unwrap_or_default());
    } else {
        say(&format!("listening on {addr}"));
    }
    let handler = server.handler();
    let mut tasks = JoinSet::new();
    let (mut accepted, mut done, mut failed) = (0usize, 0usize, 0usize);
    let limit = opts.connections;
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let more = limit.is_none_or(|n| accepted < n);
        if !more && tasks.is_empty() {
            return if failed == 0 {
                exit::PASSED
            } else {
                exit::FAILED
            };
        }
        tokio::select! {
            a = server.accept(), if more => match a {
                Ok((stream, peer)) => {
                    accepted += 1;
                    tasks.spawn(handler(stream, peer));
                }
                Err(ReplayError::AcceptTimeout) => {
                    let secs = opts.replay.accept_timeout.map_or(0.0, |d| d.as_secs_f64());
                    eprintln!("smtprobe serve: no client connected within {secs} s (--accept-timeout)");
                    // Let connections in progress finish and report first.
                    while let Some(r) = tasks.join_next().await {
                        if let Ok(r) = r {
                            done += 1;
                            failed += usize::from(!r.passed);
                            print_result(&r, opts.json);
                        }
                    }
                    summary(opts.json, done, failed, "accept-timeout");
                    return exit::FAILED;
                }
                Err(e) => {
                    eprintln!("smtprobe serve: {e}");
                    // A failed accept (e.g. too many open files) is not fatal: go on.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(r) = r {
                    done += 1;
                    failed += usize::from(!r.passed);
                    print_result(&r, opts.json);
                }
            }
            sig = &mut stop => {
                summary(opts.json, done, failed, sig);
                return if failed == 0 { exit::PASSED } else { exit::FAILED };
            }
        }
    }
}

fn summary(json: bool, done: usize, failed: usize, why: &str) {
    if json {
        #[derive(serde::Serialize)]
        struct Summary<'a> {
            event: &'static str,
            reason: &'a str,
            connections: usize,
            passed: usize,
            failed: usize,
        }
        let line = Summary {
            event: "summary",
            reason: why,
            connections: done,
            passed: done - failed,
            failed,
        };
        say(&serde_json::to_string(&line).unwrap_or_default());
    } else {
        say(&format!(
            "stopped ({why}): {done} connections, {} passed, {failed} failed",
            done - failed
        ));
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => tokio::select! {
                _ = t.recv() => "SIGTERM",
                _ = i.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder holding one fixture and `seq.sequence` with `sequence` in it.
    fn folder(tag: &str, sequence: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("smtprobe-load-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        std::fs::copy(
            format!("{fixtures}/gmail-587-bad-credentials.fixture"),
            dir.join("a.fixture"),
        )
        .unwrap();
        std::fs::write(dir.join("seq.sequence"), sequence).unwrap();
        dir
    }

    #[test]
    fn the_scenario_errors_name_their_flag_on_stderr() {
        let dir = folder("scenario", "gmail-587-bad-credentials\n");
        let e = load(&dir, Some("nope")).err().unwrap();
        assert_eq!(load_error_line(&e), "--scenario: no scenario named `nope`");
        let file = dir.join("a.fixture");
        let e = load(&file, Some("nope")).err().unwrap();
        assert!(
            load_error_line(&e).starts_with("--scenario nope: ")
                && e.to_string()
                    .ends_with("plays only `gmail-587-bad-credentials`"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_errors_name_the_file_and_line() {
        let dir = folder("unknown", "# comment\nno-such-scenario\n");
        let e = load(&dir, None).err().unwrap();
        match &e {
            LoadError::UnknownInSequence { path, line, name } => {
                assert_eq!(
                    (path.file_name().unwrap(), *line),
                    ("seq.sequence".as_ref(), 2)
                );
                assert_eq!(name, "no-such-scenario");
            }
            other => panic!("{other}"),
        }
        assert!(
            e.to_string()
                .ends_with("seq.sequence:2: no fixture named `no-such-scenario` in this folder"),
            "{e}"
        );

        let _ = std::fs::remove_dir_all(&dir);
        let dir = folder("empty", "# nothing\n");
        assert!(matches!(
            load(&dir, None),
            Err(LoadError::NoNamesInSequence(_))
        ));
        let missing = dir.join("missing.fixture");
        let e = load(&missing, None).err().unwrap();
        assert!(
            matches!(&e, LoadError::Io { path, .. } if *path == missing),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
