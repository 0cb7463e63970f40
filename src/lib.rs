//! smtprobe: tells you exactly why your SMTP submission setup fails, and how to fix it.
//!
//! The library runs the SMTP submission conversation itself — connect, greeting, EHLO,
//! STARTTLS or implicit TLS, EHLO again, AUTH, optionally a test message, QUIT — and ends
//! with a verdict: the failing stage, a stable diagnosis code, the evidence and the fix.
//!
//! # Embedding one check
//!
//! Configure the account with [`Config`]'s builder, run [`check`], read the
//! [`Report`]'s [`Diagnosis`]. The check never panics on what a server sends and every
//! network wait has a deadline ([`Config::timeout`], 15 s by default). `check` returns
//! `Err` ([`protocol::command::UnsafeValue`]) only for a configuration it refuses to
//! send (a host or user name with CR/LF in it), before touching the network.
//! Everything else — no such host, refused connection, certificate error, wrong
//! password — is a [`Report`] whose diagnosis names it.
//!
//! ```no_run
//! use smtprobe::{check, Config, Secret, Stage, TlsChoice};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::new("smtp.gmail.com")
//!         .port(587)
//!         .tls(TlsChoice::Starttls)
//!         // `Secret` keeps the password out of every `Debug`, log line and report.
//!         .login("you@gmail.com", Secret::new(std::env::var("SMTP_PASSWORD")?));
//!     let report = check(config).await?;
//!
//!     let d = &report.diagnosis;
//!     if report.ok() {
//!         println!("{}:{} works ({})", report.host, report.port, d.code); // code "ok"
//!     } else {
//!         // The stage that failed, a stable code, what happened, and what to do.
//!         let stage: Option<Stage> = report.failed_stage;
//!         println!("failed at {}", stage.map_or("?", Stage::as_str));
//!         println!("{}: {}", d.code, d.summary);
//!         if let Some(evidence) = &d.evidence {
//!             println!("server said: {evidence}");
//!         }
//!         println!("fix: {}", d.fix);
//!         // The code's registry entry: title, why it happens, the RFCs.
//!         if let Some(info) = d.info() {
//!             println!("{} ({})", info.title, info.rfcs.join(", "));
//!         }
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # The front door
//!
//! - [`check`] runs one check: connect (through [`Config::proxy`] if set), greeting,
//!   EHLO, STARTTLS (RFC 3207) or implicit TLS (RFC 8314), EHLO again, AUTH (one
//!   attempt, RFC 4954), optionally a test message ([`Config::send_test_message`]),
//!   QUIT. Certificates are verified against the host name (webpki roots plus
//!   [`Config::trust`]); credentials are never sent in clear unless
//!   [`Config::allow_plaintext_auth`] says so.
//! - [`Config`]: what to check. [`Config::new`] gives the defaults (auto TLS: implicit
//!   on 465, STARTTLS elsewhere, port 587, no login); the builder methods ([`port`],
//!   [`tls`], [`login`], [`oauth_token`], [`timeout`], [`connect_to`], [`trust`],
//!   [`quit_after`]) and the public fields set the rest.
//! - [`Report`]: the host, port and TLS mode checked, [`Report::ok`],
//!   [`Report::failed_stage`], the [`Diagnosis`], each stage's time, TLS details, the
//!   server's capabilities, the redacted transcript ([`transcript`]), and the typed
//!   [`Failure`]. [`Report::to_json`] is the `--json` document; [`Report::render`] the
//!   human report; [`report::html`] a self-contained HTML page.
//! - [`Diagnosis`]: `code`, `summary`, `evidence` (the escaped reply or the TLS/connect
//!   detail), `fix` (tailored to the provider when one is recognised), `hints`,
//!   `provider`.
//! - Codes: a diagnosis [`Code`] is a stable name such as `auth.bad-credentials` (it
//!   compares equal to its string and serializes as it); the
//!   registry [`diagnosis::codes`] is append-only, so a program may match on codes
//!   ([`diagnosis::codes::all`], [`diagnosis::codes::lookup`], a constant per code such
//!   as [`diagnosis::codes::AUTH_BAD_CREDENTIALS`]). `ok` means every tested stage
//!   passed. [`diagnosis::explain::explain`] gives a code's explanation page.
//! - [`Stage`]: where a check failed (`dns`, `proxy`, `connect`, `tls`, `greeting`,
//!   `ehlo`, `starttls`, `auth`, `mail`, `rcpt`, `data`, `quit`).
//! - [`Fixture`]: one SMTP conversation as text (`S:`/`C:` lines, see
//!   `fixtures/README.md`): a recording (`smtprobe check --record`), a scenario, or a
//!   test expectation (`# expect: auth auth.bad-credentials`).
//! - The replay server ([`ReplayServer`]) plays a fixture's server side on a local port,
//!   with a generated test CA ([`ReplayServer::pki`]), and judges what the client did
//!   ([`replay::ConnectionResult`]): test an application's SMTP client, or this crate,
//!   without any network.
//!
//! [`port`]: Config::port
//! [`tls`]: Config::tls
//! [`login`]: Config::login
//! [`oauth_token`]: Config::oauth_token
//! [`timeout`]: Config::timeout
//! [`connect_to`]: Config::connect_to
//! [`trust`]: Config::trust
//! [`quit_after`]: Config::quit_after
//!
//! # Checking against a fixture (no network)
//!
//! This runs as a test: the replay server plays Gmail refusing a password on
//! 127.0.0.1, and the check diagnoses it.
//!
//! ```
//! use smtprobe::replay::ReplayOptions;
//! use smtprobe::{check, Config, Fixture, ReplayServer, Secret, Stage, TlsChoice};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fixture = Fixture::parse(include_str!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/fixtures/gmail-587-bad-credentials.fixture"
//! )))?;
//! let opts = ReplayOptions::default();
//! let server = ReplayServer::bind(fixture, "127.0.0.1:0".parse()?, opts).await?;
//! let config = Config::new("smtp.gmail.com")
//!     .port(server.local_addr()?.port())
//!     .tls(TlsChoice::Starttls)
//!     .connect_to([127, 0, 0, 1].into()) // the certificate is still checked for the host
//!     .trust([server.pki().ca_der()])
//!     .login("you@gmail.com", Secret::new("not-the-password"));
//! let (report, served) = tokio::join!(check(config), server.serve_one());
//! let report = report?;
//! served?;
//! assert_eq!(report.failed_stage, Some(Stage::Auth));
//! assert_eq!(report.diagnosis.code, "auth.bad-credentials");
//! assert!(report.diagnosis.fix.contains("app password")); // Gmail-specific advice
//! # Ok(()) }
//! ```
//!
//! # Layers and features
//!
//! Data flows down: the command line → [`probe`] → [`transport`] → [`session`] (a
//! sans-IO state machine) → [`protocol`]; [`transcript`], [`diagnosis`] and [`report`]
//! describe the result; [`discover`] finds an address's submission settings (provider
//! table, MX, SRV, autoconfig, each probed). The command line (the hidden `app`
//! module: CLI, batch, demo, web) sits behind the default `cli` feature: a program that embeds
//! the check depends on
//! `smtprobe = { version = "0.1", default-features = false }` and pulls no clap, no
//! terminal prompt, no tracing subscriber and no HTTP server.
#![warn(missing_docs)]

// The `smtprobe` binary's implementation (CLI, batch, demo, web): not the embedding API,
// exempt from semver, compiled only with the default `cli` feature (see its module doc).
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod app;
pub mod certs;
mod config_builder;
pub mod diagnosis;
pub mod discover;
pub mod failure;
pub mod fixture;
pub mod message;
pub mod password;
pub mod probe;
pub mod protocol;
pub mod proxy;
pub mod replay;
pub mod report;
pub mod secret;
pub mod session;
pub mod stage;
pub mod tls_mode;
pub mod transcript;
pub mod transport;

pub use diagnosis::{Code, Diagnosis};
pub use failure::Failure;
pub use fixture::Fixture;
pub use probe::{check, Config, TlsChoice};
pub use replay::ReplayServer;
pub use report::Report;
pub use secret::Secret;
pub use stage::Stage;
pub use tls_mode::TlsMode;
