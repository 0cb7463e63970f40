//! Exit codes, listed in the README, and the code for a finished check: shared by
//! the CLI, `batch`, `discover` and `web`, so none of them imports another for it.

use crate::report::Report;
use crate::stage::Stage;

/// Exit codes, listed in the README. Decided in one place.
pub mod code {
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
}

/// The exit code for a finished check.
pub fn exit_code(report: &Report) -> i32 {
    match report.failed_stage {
        None => code::OK,
        Some(Stage::Dns | Stage::Proxy | Stage::Connect) => code::NETWORK,
        Some(Stage::Tls | Stage::Starttls) => code::TLS,
        Some(Stage::Greeting | Stage::Ehlo | Stage::Quit) => code::DIALOGUE,
        Some(Stage::Auth) => code::AUTH,
        Some(Stage::Mail | Stage::Rcpt | Stage::Data) => code::SEND,
    }
}
