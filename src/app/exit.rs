//! How each command ended, and the one mapping to the exit codes listed in the README.
//!
//! Every run function returns a [`Finished`]; only `src/main.rs` turns it into a process
//! exit code, through [`code`], after printing the error a failed command carries.

use crate::stage::Stage;

/// Exit codes, listed in the README. Decided in one place: [`code`].
pub mod codes {
    /// Every requested stage passed.
    pub const OK: i32 = 0;
    /// smtprobe itself failed (I/O on a local file, an internal error).
    pub const INTERNAL: i32 = 1;
    /// Bad flags or input: nothing was sent.
    pub const USAGE: i32 = 2;
    /// DNS, the proxy or TCP connect failed.
    pub const NETWORK: i32 = 3;
    /// TLS or STARTTLS failed.
    pub const TLS: i32 = 4;
    /// The SMTP dialogue failed (greeting, EHLO, malformed or missing replies, QUIT).
    pub const DIALOGUE: i32 = 5;
    /// Authentication failed.
    pub const AUTH: i32 = 6;
    /// Sending the test message failed (MAIL, RCPT, DATA).
    pub const SEND: i32 = 7;
    /// `batch`: at least one row failed its check or was a bad row.
    pub const BATCH_SOME_FAILED: i32 = 8;
    /// `batch`: stopped by Ctrl-C before every row ran.
    pub const BATCH_INTERRUPTED: i32 = 130;
    /// `serve`: a connection failed its judgement, or no client came within
    /// `--accept-timeout` (`fixtures/README.md`, "Replay server"; the number CI scripts
    /// have always read).
    pub const SERVE_FAILED: i32 = 1;
    /// `demo`: a scenario ended otherwise than it should.
    pub const DEMO_UNEXPECTED: i32 = 1;
}

/// How a command ended.
#[derive(Debug)]
pub enum Finished {
    /// It did what it was asked: help, completions, explain, providers, every demo
    /// scenario as expected, every batch row passed, `web` stopped by Ctrl-C,
    /// `discover` found settings.
    Ok,
    /// A check ran to its end (`check`, `check ADDRESS`, `demo NAME`): the stage it
    /// failed at, if any.
    Checked(Option<Stage>),
    /// `discover`, or the discovery of `check ADDRESS`: nothing found that answers.
    NothingFound,
    /// `batch`: at least one row failed its check or was a bad row.
    SomeRowsFailed,
    /// `batch`: stopped by Ctrl-C before every row ran.
    Interrupted,
    /// `serve` served: how many connections, how many failed, why it stopped.
    Served(crate::app::serve::Served),
    /// Bad flags whose error clap has already printed (it prints its errors itself).
    UsagePrinted,
    /// `demo`: a scenario ended otherwise than it should.
    DemoUnexpected,
    /// Bad flags or input, nothing was sent (the error says what).
    Usage(CommandError),
    /// smtprobe itself failed: a local file, the runtime, the listener.
    Internal(CommandError),
}

/// What a failed command prints on stderr: `"{command}: {message}"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// `smtprobe`, `smtprobe batch`, `smtprobe web`, …
    pub command: &'static str,
    /// What went wrong, naming the flag or file.
    pub message: String,
}

impl CommandError {
    /// An error of `command` (`"smtprobe"`, `"smtprobe batch"`, …).
    pub fn new(command: &'static str, message: impl std::fmt::Display) -> CommandError {
        CommandError {
            command,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.command, self.message)
    }
}

impl std::error::Error for CommandError {}

impl Finished {
    /// A usage error of `smtprobe` itself (`check`, `explain`, `demo`, `discover`).
    pub fn usage(message: impl std::fmt::Display) -> Finished {
        Finished::Usage(CommandError::new("smtprobe", message))
    }

    /// An internal error of `smtprobe` itself.
    pub fn internal(message: impl std::fmt::Display) -> Finished {
        Finished::Internal(CommandError::new("smtprobe", message))
    }

    /// The error to print, if the command failed.
    pub fn error(&self) -> Option<&CommandError> {
        match self {
            Finished::Usage(e) | Finished::Internal(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs `f` on a runtime from `builder` (`batch` and `web` use a multi-threaded one, the
/// other commands a current-thread one); the one rendering of a runtime that cannot start.
pub fn block_on(
    builder: &mut tokio::runtime::Builder,
    f: impl std::future::Future<Output = Finished>,
) -> Finished {
    match builder.enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => Finished::internal(format_args!("cannot start the async runtime: {e}")),
    }
}

/// The exit code of a finished command: the one place that decides them.
pub fn code(finished: &Finished) -> i32 {
    match finished {
        Finished::Ok | Finished::Checked(None) => codes::OK,
        Finished::Checked(Some(stage)) => stage_code(*stage),
        Finished::NothingFound => codes::NETWORK,
        Finished::SomeRowsFailed => codes::BATCH_SOME_FAILED,
        Finished::Interrupted => codes::BATCH_INTERRUPTED,
        Finished::Served(served) if served.passed() => codes::OK,
        Finished::Served(_) => codes::SERVE_FAILED,
        Finished::DemoUnexpected => codes::DEMO_UNEXPECTED,
        Finished::Internal(_) => codes::INTERNAL,
        Finished::Usage(_) | Finished::UsagePrinted => codes::USAGE,
    }
}

fn stage_code(stage: Stage) -> i32 {
    match stage {
        Stage::Dns | Stage::Proxy | Stage::Connect => codes::NETWORK,
        Stage::Tls | Stage::Starttls => codes::TLS,
        Stage::Greeting | Stage::Ehlo | Stage::Quit => codes::DIALOGUE,
        Stage::Auth => codes::AUTH,
        Stage::Mail | Stage::Rcpt | Stage::Data => codes::SEND,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_are_the_readme_s() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme
            .find("## Exit codes")
            .expect("README lists exit codes")..];
        let err = || CommandError::new("smtprobe", "x");
        let served = |failed, stop| {
            Finished::Served(crate::app::serve::Served {
                connections: 1,
                failed,
                stop,
            })
        };
        use crate::app::serve::Stop;
        for (finished, n) in [
            (Finished::Ok, 0),
            (Finished::Internal(err()), 1),
            (Finished::Usage(err()), 2),
            (Finished::Checked(Some(Stage::Dns)), 3),
            (Finished::NothingFound, 3),
            (Finished::Checked(Some(Stage::Starttls)), 4),
            (Finished::Checked(Some(Stage::Greeting)), 5),
            (Finished::Checked(Some(Stage::Auth)), 6),
            (Finished::Checked(Some(Stage::Rcpt)), 7),
            (Finished::SomeRowsFailed, 8),
            (Finished::Interrupted, 130),
            (served(0, Stop::Served), 0),
            (served(0, Stop::Signal("SIGTERM")), 0),
            (served(1, Stop::Served), 1),
            (served(0, Stop::AcceptTimeout), 1),
            (Finished::DemoUnexpected, 1),
        ] {
            assert_eq!(code(&finished), n, "{finished:?}");
            assert!(table.contains(&format!("| {n} |")), "README misses {n}");
        }
    }
}
