//! `smtprobe serve PATH`: loads the scenarios ([`crate::replay::load`]), listens, serves
//! connections concurrently, prints one verdict per connection, and says how it ended
//! ([`Finished`]; the exit code is [`super::exit::code`]'s).
//!
//! stdout is the contract a CI script reads: first line `listening on ADDR` (with
//! `--json`, `{"event":"listening","address":"ADDR"}`), then one line per connection,
//! and a summary when stopped by SIGINT/SIGTERM. Diagnostics go to stderr.

use super::exit::{CommandError, Finished};
use crate::replay::{self, ConnectionResult, LoadError, ReplayError, ReplayOptions, ReplayServer};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::task::JoinSet;

/// Options of `smtprobe serve` (`cli::run_serve` maps its flags onto this).
#[derive(Debug, Clone)]
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

/// Why serving stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `--connections N` / `--once`: N connections were served.
    Served,
    /// SIGINT or SIGTERM (its name).
    Signal(&'static str),
    /// No client connected within `--accept-timeout`.
    AcceptTimeout,
}

/// How `smtprobe serve` ended: [`super::exit::code`] maps it (0 when every connection
/// passed and serving stopped as asked, 1 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Connections served to their end.
    pub connections: usize,
    /// How many of them failed their judgement.
    pub failed: usize,
    /// Why serving stopped.
    pub stop: Stop,
}

impl Served {
    /// Every connection passed, and serving stopped as asked (not for want of a client).
    pub fn passed(&self) -> bool {
        self.failed == 0 && self.stop != Stop::AcceptTimeout
    }
}

fn usage(message: impl std::fmt::Display) -> Finished {
    Finished::Usage(CommandError::new("smtprobe serve", message))
}

fn say(line: &str) {
    crate::app::cli::print(&format!("{line}\n"));
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

/// Runs `smtprobe serve`: [`Finished::Served`] once it served, or the usage error that
/// kept it from starting (an unplayable fixture, an address or file it cannot use).
pub async fn serve(opts: ServeOptions) -> Finished {
    let scenarios = match replay::load(&opts.path, opts.scenario.as_deref()) {
        Ok(s) => s,
        Err(e) => return usage(load_error_line(&e)),
    };
    if opts.replay.strict && !scenarios.can_play_strict() {
        return usage("--strict plays one fixture file, not a folder");
    }
    let server =
        match ReplayServer::bind_scenarios(scenarios, opts.listen, opts.replay.clone()).await {
            Ok(s) => s,
            Err(e) => return usage(format_args!("{}: {e}", opts.listen)),
        };
    if let Some(path) = &opts.ca_out {
        if let Err(e) = std::fs::write(path, server.ca_pem()) {
            return usage(format_args!("writing {}: {e}", path.display()));
        }
    }
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => return usage(e),
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
    Finished::Served(accept_loop(&server, &opts).await)
}

/// Tallies the connections served and prints each one's line.
struct Tally {
    json: bool,
    done: usize,
    failed: usize,
}

impl Tally {
    fn add(&mut self, r: &ConnectionResult) {
        self.done += 1;
        self.failed += usize::from(!r.passed);
        say(&if self.json {
            r.to_json()
        } else {
            r.to_string()
        });
    }

    fn served(&self, stop: Stop) -> Served {
        Served {
            connections: self.done,
            failed: self.failed,
            stop,
        }
    }

    /// The summary line printed when stopped by a signal or the accept timeout.
    fn summary(&self, stop: Stop) -> Served {
        let why = match stop {
            Stop::Signal(name) => name,
            Stop::AcceptTimeout => "accept-timeout",
            Stop::Served => "served",
        };
        let (done, failed) = (self.done, self.failed);
        if self.json {
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
        self.served(stop)
    }
}

async fn accept_loop(server: &ReplayServer, opts: &ServeOptions) -> Served {
    let handler = server.handler();
    let mut tasks = JoinSet::new();
    let mut accepted = 0usize;
    let mut tally = Tally {
        json: opts.json,
        done: 0,
        failed: 0,
    };
    let limit = opts.connections;
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let more = limit.is_none_or(|n| accepted < n);
        if !more && tasks.is_empty() {
            return tally.served(Stop::Served);
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
                            tally.add(&r);
                        }
                    }
                    return tally.summary(Stop::AcceptTimeout);
                }
                Err(e) => {
                    eprintln!("smtprobe serve: {e}");
                    // A failed accept (e.g. too many open files) is not fatal: go on.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(r) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(r) = r {
                    tally.add(&r);
                }
            }
            sig = &mut stop => return tally.summary(Stop::Signal(sig)),
        }
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

    #[test]
    fn the_scenario_errors_name_their_flag_on_stderr() {
        let dir = std::env::temp_dir().join(format!("smtprobe-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.fixture");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/gmail-587-bad-credentials.fixture"
            ),
            &file,
        )
        .unwrap();
        let e = replay::load(&dir, Some("nope")).err().unwrap();
        assert_eq!(load_error_line(&e), "--scenario: no scenario named `nope`");
        let e = replay::load(&file, Some("nope")).err().unwrap();
        assert!(
            load_error_line(&e).starts_with("--scenario nope: ")
                && e.to_string()
                    .ends_with("plays only `gmail-587-bad-credentials`"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_connection_or_no_client_is_not_a_pass() {
        let s = |failed, stop| Served {
            connections: 2,
            failed,
            stop,
        };
        assert!(s(0, Stop::Served).passed());
        assert!(s(0, Stop::Signal("SIGTERM")).passed());
        assert!(!s(1, Stop::Served).passed());
        assert!(!s(1, Stop::Signal("SIGINT")).passed());
        assert!(!s(0, Stop::AcceptTimeout).passed());
    }
}
