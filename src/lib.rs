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
//! `Err` ([`UnsafeValue`]) only for a configuration it refuses to
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
//! Data flows down, each layer in a file or folder named after it: the command line
//! (`src/app/`) → the probe (one check: resolve, connect with Happy Eyeballs, the
//! diagnose-only probes) → the transport (tokio TCP and rustls, a deadline on every
//! wait) → the session (a sans-IO state machine that alone decides the outcome) →
//! [`protocol`] (the sans-IO codec shared with the replay server); [`transcript`],
//! [`diagnosis`] and [`report`] describe the result; [`discover`] finds an address's
//! submission settings (provider table, MX, SRV, autoconfig, each probed).
//!
//! What is public is what an embedding program uses: the items at the crate root, and
//! the modules [`diagnosis`] (codes, explanations, provider knowledge), [`discover`],
//! [`failure`] (the typed evidence in a [`Report`]), [`fixture`], [`protocol`],
//! [`replay`], [`report`] and [`transcript`]. The probe, transport and session are
//! internal. Two hidden modules are not part of the API and carry no semver promise:
//! `app`, the binary's implementation (it lives in the library so the tests drive the
//! web server and demo in-process), and `session`, public only for the fuzz harness.
//!
//! The command line sits behind the default `cli` feature: a program that embeds the
//! check depends on
//! `smtprobe = { version = "0.1", default-features = false }` and pulls no clap, no
//! terminal prompt, no tracing subscriber and no HTTP server.
#![warn(missing_docs)]

// The `smtprobe` binary's implementation (CLI, batch, demo, web): not the embedding API,
// exempt from semver, compiled only with the default `cli` feature (see its module doc).
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod app;
pub(crate) mod certs;
mod config_builder;
pub mod diagnosis;
pub mod discover;
pub mod failure;
pub mod fixture;
pub(crate) mod message;
pub(crate) mod probe;
pub mod protocol;
pub(crate) mod proxy;
pub mod replay;
pub mod report;
pub(crate) mod secret;
pub(crate) mod setting;
// The sans-IO client itself, public only for the fuzz harness (`fuzz/harness.rs`, shared
// with `tests/it/fuzz_properties.rs`), which drives it byte by byte. Not the embedding
// API and exempt from semver: embed [`check`] instead.
#[doc(hidden)]
pub mod session;
pub(crate) mod stage;
pub(crate) mod tls_mode;
pub mod transcript;
pub(crate) mod transport;

/// What smtprobe's own test suites and fuzz harness share with the library (not the
/// embedding API, exempt from semver): the one list of forms a secret can leak in.
#[doc(hidden)]
pub mod testing {
    pub use crate::secret::leak_needles;
}

// The front door: everything a program needs to configure one check and read its result
// is named here, at the crate root (one `use smtprobe::{…}` line).
pub use diagnosis::{Code, Diagnosis};
pub use failure::Failure;
pub use fixture::Fixture;
pub use message::{MessageError, MessageSpec};
pub use probe::{check, Config, MailTarget, TlsChoice};
pub use protocol::command::UnsafeValue;
pub use proxy::{ProxyConfig, ProxyUrlError};
pub use replay::ReplayServer;
pub use report::{Report, Settings};
pub use secret::Secret;
pub use session::{AuthChoice, AuthConfig, Credential};
pub use setting::Setting;
pub use stage::Stage;
pub use tls_mode::TlsMode;
pub use transport::{
    load_ca_file, ClientCert, IpVersion, Observer, PemFileError, Progress, StageResult, TlsInfo,
};
