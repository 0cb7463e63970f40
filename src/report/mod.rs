//! A finished check, rendered for people (stage list, transcript, verdict), as JSON and
//! as one self-contained HTML file ([`html`]).

pub mod html;

use crate::diagnosis::Diagnosis;
use crate::failure::{ConnectAttempt, Failure};
use crate::protocol::Reply;
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use crate::transcript::{Direction, Transcript};
use crate::transport::{StageResult, TlsInfo};
use serde::Serialize;
use std::fmt::Write as _;

/// The settings that worked, ready to copy into an app's SMTP profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Settings {
    /// SMTP server.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Security mode.
    pub security: TlsMode,
    /// User name, as it was accepted.
    pub username: Option<String>,
    /// SASL mechanism.
    pub mechanism: Option<String>,
}

/// Everything one check found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Report {
    /// The host checked.
    pub host: String,
    /// The port checked.
    pub port: u16,
    /// The TLS mode of the last connection.
    pub mode: TlsMode,
    /// The stage that failed, if any.
    pub failed_stage: Option<Stage>,
    /// The verdict.
    pub diagnosis: Diagnosis,
    /// The reply that failed the check.
    pub reply: Option<Reply>,
    /// Each stage with its time.
    pub stages: Vec<StageResult>,
    /// TLS details of the last completed handshake.
    pub tls: Option<TlsInfo>,
    /// Everything said.
    pub transcript: Transcript,
    /// Every TCP connect attempt, per address.
    pub connect_attempts: Vec<ConnectAttempt>,
    /// True when credentials were given (the auth stage ran or was meant to).
    pub auth_tested: bool,
    /// The working settings, on success.
    pub settings: Option<Settings>,
    /// The server's final EHLO capabilities (`SIZE 35882577`, `AUTH LOGIN PLAIN`, …).
    pub capabilities: Vec<String>,
    /// Notes from the probe (mode switches).
    pub notes: Vec<String>,
    /// The typed failure (not serialized; the diagnosis carries what a reader needs).
    pub failure: Option<Failure>,
}

impl Report {
    /// True when every requested stage passed.
    pub fn ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The JSON document (`--json`).
    pub fn to_json(&self) -> serde_json::Value {
        let reply = self.reply.as_ref().map(|r| {
            serde_json::json!({
                "code": r.code(),
                "enhanced": r.enhanced().map(|e| e.to_string()),
                "lines": r.display_lines(),
            })
        });
        serde_json::json!({
            "outcome": if self.ok() { "ok" } else { "failed" },
            "failed_stage": self.failed_stage,
            "diagnosis": {
                "code": self.diagnosis.code,
                "summary": self.diagnosis.summary,
                "fix": self.diagnosis.fix,
                "evidence": self.diagnosis.evidence,
                "hints": self.diagnosis.hints,
                "provider": self.diagnosis.provider,
            },
            "reply": reply,
            "target": { "host": self.host, "port": self.port, "tls": self.mode },
            "auth_tested": self.auth_tested,
            "stages": self.stages,
            "tls": self.tls,
            "connect_attempts": self.connect_attempts,
            "capabilities": self.capabilities,
            "settings": self.settings,
            "notes": self.notes,
            "transcript": self.transcript,
        })
    }

    /// The human report.
    pub fn render(&self, style: Style) -> String {
        let mut out = String::new();
        let p = Paint(style.color);
        let _ = writeln!(
            out,
            "{} {}:{} ({})",
            p.bold("smtprobe check"),
            self.host,
            self.port,
            mode_words(self.mode)
        );
        out.push('\n');
        let _ = writeln!(out, "{}", p.bold("Stages"));
        for s in &self.stages {
            let mark = if s.ok { p.green("✓") } else { p.red("✗") };
            let _ = writeln!(out, "  {mark} {:<9} {:>8.1} ms", s.stage.as_str(), s.ms);
        }
        if !self.auth_tested && self.ok() {
            let _ = writeln!(out, "  - auth      not tested (no --user given)");
        }
        out.push('\n');
        let _ = writeln!(out, "{}", p.bold("Transcript"));
        let mut annotator = crate::diagnosis::annotate::Annotator::new();
        for e in self.transcript.entries() {
            let lock = if e.tls { "🔒" } else { "  " };
            let (marker, text) = match e.dir {
                Direction::Client => (p.cyan("C:"), e.text.clone()),
                Direction::Server => (p.yellow("S:"), e.text.clone()),
                Direction::Event => (p.dim("* "), p.dim(&e.text)),
            };
            let _ = writeln!(out, "  {:>8.1} {lock} {marker} {text}", e.ms);
            if style.annotate {
                if let Some(note) = annotator.annotate(e) {
                    let _ = writeln!(out, "  {:>8} {}", "", p.dim(&format!("   ↳ {note}")));
                }
            }
        }
        if let Some(t) = &self.tls {
            out.push('\n');
            let _ = writeln!(out, "{}", p.bold("TLS"));
            let _ = writeln!(out, "  version   {}", t.version);
            let _ = writeln!(out, "  cipher    {}", t.cipher);
            let _ = writeln!(out, "  verified  {}", if t.verified { "yes" } else { "no" });
            if let Some(c) = &t.certificate {
                write_certificate(&mut out, c);
            }
        }
        if let Some(Failure::Tls(t)) = &self.failure {
            if let Some(c) = &t.certificate {
                out.push('\n');
                let _ = writeln!(out, "{}", p.bold("Certificate presented"));
                write_certificate(&mut out, c);
            }
        }
        out.push('\n');
        let _ = writeln!(out, "{}", p.bold("Verdict"));
        let d = &self.diagnosis;
        if self.ok() {
            let _ = writeln!(out, "  {} {}", p.green("OK"), d.summary);
        } else {
            let stage = self.failed_stage.map(Stage::as_str).unwrap_or("?");
            let _ = writeln!(out, "  {} at stage {stage}: {}", p.red("FAILED"), d.summary);
        }
        let _ = writeln!(out, "  code      {}", d.code);
        if let Some(ev) = &d.evidence {
            for (i, line) in ev.lines().enumerate() {
                let label = if i == 0 { "evidence" } else { "" };
                let _ = writeln!(out, "  {label:<9} {line}");
            }
        }
        if !d.fix.is_empty() {
            let _ = writeln!(out, "  fix       {}", wrap(&d.fix, 70, 12));
        }
        for h in &d.hints {
            let _ = writeln!(out, "  hint      {}", wrap(h, 70, 12));
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note      {}", wrap(n, 70, 12));
        }
        if !self.ok() {
            let _ = writeln!(out, "  more      smtprobe explain {}", d.code);
        }
        if let Some(s) = &self.settings {
            out.push('\n');
            let _ = writeln!(out, "{}", p.bold("Working settings"));
            let _ = writeln!(out, "  SMTP server   {}", s.host);
            let _ = writeln!(out, "  Port          {}", s.port);
            let _ = writeln!(out, "  Security      {}", mode_words(s.security));
            if let Some(u) = &s.username {
                let _ = writeln!(out, "  Username      {u}");
            }
            if let Some(m) = &s.mechanism {
                let _ = writeln!(out, "  Auth method   {m}");
            }
        }
        out
    }
}

fn write_certificate(out: &mut String, c: &crate::failure::CertSummary) {
    let _ = writeln!(out, "  subject   {}", c.subject);
    let _ = writeln!(out, "  issuer    {}", c.issuer);
    let _ = writeln!(out, "  names     {}", c.sans.join(", "));
    let _ = writeln!(out, "  valid     {} to {}", c.not_before, c.not_after);
}

/// Human words for a TLS mode, as mail apps label them.
pub fn mode_words(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Implicit => "SSL/TLS (implicit TLS)",
        TlsMode::None => "none (no encryption)",
    }
}

/// How to render the human report.
#[derive(Clone, Copy)]
pub struct Style {
    /// ANSI colour (only on a terminal, and not with NO_COLOR).
    pub color: bool,
    /// Explain each transcript line (the diagnosis layer's teaching view).
    pub annotate: bool,
}

impl Style {
    /// Plain text, no annotations.
    pub fn plain() -> Style {
        Style {
            color: false,
            annotate: false,
        }
    }
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn cyan(&self, s: &str) -> String {
        self.wrap("36", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Wraps text at `width` columns, indenting continuation lines by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    for (pi, para) in text.split('\n').enumerate() {
        if pi > 0 {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
        }
        let mut col = 0;
        for word in para.split(' ') {
            if col > 0 && col + word.len() + 1 > width {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                col = 0;
            } else if col > 0 {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += word.chars().count();
        }
    }
    out
}
