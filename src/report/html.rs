//! The HTML report (`--html FILE` on `check`, `demo` and `batch`, and the report the
//! `smtprobe web` page shows): one self-contained file to attach to a support ticket.
//!
//! What holds for every document made here:
//! - No external request of any kind: the stylesheet is inline, the waterfall is inline
//!   SVG, there are no fonts, images or links that load anything. A strict
//!   Content-Security-Policy meta tag (`default-src 'none'`, the stylesheet and the one
//!   optional script allowed by their SHA-256 hash only) makes the browser enforce it.
//! - Readable without script: annotations are `<details>`, batch filtering is CSS
//!   (`:has()` on radio buttons); the batch's click-to-sort script is an extra.
//! - Escaped: markup is written through [`Html`], whose `raw` takes only `&'static str`
//!   (markup written in this file), so every run-time string — server text, certificate
//!   names, user names — goes through [`Html::text`], which escapes HTML's five special
//!   characters and, like the terminal escaper (`protocol::escape`), shows control and
//!   bidi-override characters as `\xNN` / `\u{..}` so they cannot reorder or hide text.
//! - Redacted: it renders only the [`Report`], whose transcript is redacted at capture.
//!
//! Hand-built rather than a template engine: the documents are loops over typed data,
//! the one property that matters (nothing dynamic reaches the output unescaped) is
//! enforced by the `&'static str` type of `raw`, and it costs no proc-macro build time.

use super::{mode_words, Report};
use crate::failure::{CertSummary, Failure};
use crate::transcript::Direction;
use base64::Engine as _;
use std::fmt::Write as _;
use std::sync::OnceLock;

/// An HTML document under construction. Markup goes in with [`Html::raw`] (static text
/// only), everything else with [`Html::text`] (escaped).
#[derive(Default)]
pub struct Html {
    out: String,
}

impl Html {
    /// An empty document.
    pub fn new() -> Html {
        Html::default()
    }

    /// Appends markup written in the source code.
    pub fn raw(&mut self, markup: &'static str) -> &mut Html {
        self.out.push_str(markup);
        self
    }

    /// Appends run-time text, escaped for element content and quoted attribute values.
    pub fn text(&mut self, s: &str) -> &mut Html {
        escape_into(&mut self.out, s);
        self
    }

    /// Appends a number (safe by construction).
    pub fn num(&mut self, n: f64, decimals: usize) -> &mut Html {
        let _ = write!(self.out, "{n:.decimals$}");
        self
    }

    /// Appends an identifier made only of `[a-z0-9-]` (other characters become `-`),
    /// for class names and ids derived from data (diagnosis codes).
    pub fn ident(&mut self, s: &str) -> &mut Html {
        self.out.push_str(&ident(s));
        self
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// `s` reduced to `[a-z0-9-]`.
pub fn ident(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Line breaks are layout in multi-line fields (evidence, explain pages).
            '\n' => out.push('\n'),
            // The terminal escaper's rules: controls and bidi overrides shown, not obeyed.
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let mut buf = [0u8; 4];
                out.push_str(&crate::protocol::escape_str(c.encode_utf8(&mut buf)));
            }
            c => out.push(c),
        }
    }
}

/// `'sha256-…'` for a CSP source list.
pub fn csp_hash(content: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, content.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

/// The stylesheet of every report.
pub const STYLE: &str = include_str!("report.css");

/// The CSP hash of [`STYLE`] (the web page allows it, so the report shows in its frame).
pub fn style_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| csp_hash(STYLE))
}

/// What the document says about itself besides the report.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// A heading line above the target (a demo scenario's story).
    pub story: Option<String>,
    /// When it was made (RFC 3339, UTC); `None` uses the current time.
    pub generated: Option<String>,
}

fn now_rfc3339() -> String {
    ::time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&::time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn head(h: &mut Html, title: &str, style: &str, script: Option<&str>) {
    h.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // `default-src 'none'`: nothing may load; the inline stylesheet (and script) only by
    // hash. `form-action` and `base-uri` are not covered by default-src.
    h.raw("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src ");
    h.text(&csp_hash(style));
    if let Some(js) = script {
        h.raw("; script-src ").text(&csp_hash(js));
    }
    h.raw("; img-src data:; base-uri 'none'; form-action 'none'\">\n");
    h.raw("<meta name=\"referrer\" content=\"no-referrer\">\n");
    h.raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.raw("<meta name=\"generator\" content=\"smtprobe ")
        .raw(env!("CARGO_PKG_VERSION"))
        .raw("\">\n<title>")
        .text(title)
        .raw("</title>\n<style>");
    // The stylesheet is ours (static, or built from identifiers); no escaping applies
    // inside <style>, so it is appended as is.
    h.out.push_str(style);
    h.raw("</style>\n</head>\n<body>\n");
}

fn footer(h: &mut Html, generated: &str) {
    h.raw("<footer>Made by smtprobe ")
        .raw(env!("CARGO_PKG_VERSION"))
        .raw(" at ")
        .text(generated)
        .raw(". Passwords, tokens and AUTH payloads are redacted where they are captured; this file loads nothing from the network.</footer>\n</body>\n</html>\n");
}

/// The HTML document for one check.
pub fn report(r: &Report, meta: &Meta) -> String {
    let mut h = Html::new();
    let d = &r.diagnosis;
    let title = format!(
        "smtprobe: {}:{} {}",
        r.host,
        r.port,
        if r.ok() { "OK" } else { d.code.as_str() }
    );
    head(&mut h, &title, STYLE, None);
    h.raw("<main>\n<header><p class=\"tool\">smtprobe check report</p><h1>");
    h.text(&r.host)
        .raw(":")
        .num(f64::from(r.port), 0)
        .raw(" <span class=\"mode\">")
        .text(mode_words(r.mode))
        .raw("</span></h1>\n");
    if let Some(s) = &meta.story {
        h.raw("<p class=\"story\">").text(s).raw("</p>\n");
    }
    h.raw("</header>\n");
    body(&mut h, r);
    h.raw("</main>\n");
    let generated = meta.generated.clone().unwrap_or_else(now_rfc3339);
    footer(&mut h, &generated);
    h.finish()
}

/// The body of one report (verdict, waterfall, transcript, TLS, details), shared by the
/// single-report document and the web page's live view.
fn body(h: &mut Html, r: &Report) {
    verdict(h, r);
    if let Some(s) = &r.settings {
        h.raw("<section class=\"settings\"><h2>Working settings</h2>\n<p class=\"hint\">Copy these into your app's SMTP settings.</p>\n<dl>");
        dl_row(h, "SMTP server", &s.host);
        dl_row(h, "Port", &s.port.to_string());
        dl_row(h, "Security", mode_words(s.security));
        if let Some(u) = &s.username {
            dl_row(h, "Username", u);
        }
        if let Some(m) = &s.mechanism {
            dl_row(h, "Auth method", m);
        }
        h.raw("</dl></section>\n");
    }
    waterfall(h, r);
    transcript(h, r);
    tls(h, r);
    details(h, r);
}

fn dl_row(h: &mut Html, k: &'static str, v: &str) {
    h.raw("<dt>").raw(k).raw("</dt><dd>").text(v).raw("</dd>");
}

fn verdict(h: &mut Html, r: &Report) {
    let d = &r.diagnosis;
    if r.ok() {
        h.raw("<section class=\"verdict ok\" id=\"verdict\"><p class=\"badge\">OK</p>");
    } else {
        h.raw("<section class=\"verdict failed\" id=\"verdict\"><p class=\"badge\">FAILED</p>");
    }
    h.raw("<h2 class=\"summary\">")
        .text(&d.summary)
        .raw("</h2>\n<dl class=\"facts\">");
    if let Some(stage) = r.failed_stage {
        dl_row(h, "Stage", stage.as_str());
    }
    h.raw("<dt>Code</dt><dd><code class=\"code\">")
        .text(d.code.as_str())
        .raw("</code></dd>");
    if let Some(reply) = &r.reply {
        let mut shown = reply.code().to_string();
        if let Some(e) = reply.enhanced() {
            shown.push(' ');
            shown.push_str(&e.to_string());
        }
        dl_row(h, "Reply", &shown);
    }
    if let Some(p) = d.provider {
        dl_row(h, "Provider", p);
    }
    if !r.auth_tested && r.ok() {
        dl_row(h, "Auth", "not tested (no user given)");
    }
    h.raw("</dl>\n");
    if !d.fix.is_empty() {
        h.raw("<div class=\"fix\"><h3>Fix</h3><p>")
            .text(&d.fix)
            .raw("</p></div>\n");
    }
    if let Some(ev) = &d.evidence {
        h.raw("<div class=\"evidence\"><h3>Evidence</h3><pre>")
            .text(ev)
            .raw("</pre></div>\n");
    }
    if !d.hints.is_empty() || !r.notes.is_empty() {
        h.raw("<ul class=\"hints\">");
        for hint in &d.hints {
            h.raw("<li>").text(hint).raw("</li>");
        }
        for n in &r.notes {
            h.raw("<li class=\"note\">").text(n).raw("</li>");
        }
        h.raw("</ul>\n");
    }
    if let Ok(page) = crate::diagnosis::explain::explain(d.code.as_str()) {
        h.raw("<details class=\"explain\"><summary>About <code>")
            .text(d.code.as_str())
            .raw("</code> (<code>smtprobe explain ")
            .text(d.code.as_str())
            .raw("</code>)</summary><pre>")
            .text(&page)
            .raw("</pre></details>\n");
    }
    h.raw("</section>\n");
}

/// Each stage as a bar at its start time, to scale (inline SVG: presentation attributes
/// are not styles, so the strict CSP needs no `'unsafe-inline'`).
fn waterfall(h: &mut Html, r: &Report) {
    if r.stages.is_empty() {
        return;
    }
    let total = r
        .stages
        .iter()
        .map(|s| s.start_ms + s.ms)
        .fold(0.0_f64, f64::max)
        .max(0.1);
    const LEFT: f64 = 100.0;
    const WIDTH: f64 = 760.0;
    const ROW: f64 = 24.0;
    let height = ROW * r.stages.len() as f64 + 28.0;
    h.raw("<section class=\"waterfall\"><h2>Stages</h2>\n<svg role=\"img\" aria-label=\"stage timings\" viewBox=\"0 0 960 ")
        .num(height, 0)
        .raw("\" xmlns=\"http://www.w3.org/2000/svg\">");
    for i in 0..=4 {
        let x = LEFT + WIDTH * f64::from(i) / 4.0;
        h.raw("<line class=\"tick\" x1=\"")
            .num(x, 1)
            .raw("\" x2=\"")
            .num(x, 1)
            .raw("\" y1=\"0\" y2=\"")
            .num(height - 16.0, 0)
            .raw("\"/><text class=\"axis\" x=\"")
            .num(x, 1)
            .raw("\" y=\"")
            .num(height - 3.0, 0)
            .raw("\" text-anchor=\"middle\">")
            .num(total * f64::from(i) / 4.0, if total < 40.0 { 1 } else { 0 })
            .raw(" ms</text>");
    }
    for (i, s) in r.stages.iter().enumerate() {
        let y = ROW * i as f64;
        let x = LEFT + WIDTH * (s.start_ms / total);
        let w = (WIDTH * (s.ms / total)).max(2.0);
        h.raw("<text class=\"label\" x=\"0\" y=\"")
            .num(y + 16.0, 0)
            .raw("\">")
            .text(s.stage.as_str())
            .raw("</text><rect class=\"")
            .raw(if s.ok { "bar" } else { "bar bad" })
            .raw("\" x=\"")
            .num(x, 1)
            .raw("\" y=\"")
            .num(y + 5.0, 0)
            .raw("\" width=\"")
            .num(w, 1)
            .raw("\" height=\"14\" rx=\"2\"/><text class=\"ms\" x=\"")
            .num((x + w + 6.0).min(900.0), 1)
            .raw("\" y=\"")
            .num(y + 16.0, 0)
            .raw("\">")
            .raw(if s.ok { "" } else { "✗ " })
            .num(s.ms, 1)
            .raw(" ms</text>");
    }
    h.raw("</svg></section>\n");
}

fn transcript(h: &mut Html, r: &Report) {
    h.raw("<section class=\"transcript\"><h2>Transcript</h2>\n<p class=\"hint\"><span class=\"dir c\">C:</span> smtprobe &nbsp; <span class=\"dir s\">S:</span> server &nbsp; <span class=\"dir e\">*</span> event &nbsp; <span class=\"lock\">TLS</span> encrypted. Lines with ▸ explain themselves: open them.</p>\n<table><tbody>\n");
    let mut annotator = crate::diagnosis::annotate::Annotator::new();
    for e in r.transcript.entries() {
        let (class, marker) = match e.dir {
            Direction::Client => ("c", "C:"),
            Direction::Server => ("s", "S:"),
            Direction::Event | Direction::Connected | Direction::TlsEstablished => ("e", "*"),
        };
        h.raw("<tr class=\"").raw(class).raw("\"><td class=\"t\">");
        h.num(e.ms, 1).raw("</td><td class=\"k\">");
        if e.tls {
            h.raw("<span class=\"lock\" title=\"inside TLS\">TLS</span>");
        }
        h.raw("</td><td class=\"dir ")
            .raw(class)
            .raw("\">")
            .raw(marker)
            .raw("</td><td class=\"x\">");
        match annotator.annotate(e) {
            Some(note) => {
                h.raw("<details><summary><code>")
                    .text(&e.text)
                    .raw("</code></summary><p class=\"ann\">")
                    .text(&note)
                    .raw("</p></details>");
            }
            None => {
                h.raw("<code>").text(&e.text).raw("</code>");
            }
        }
        h.raw("</td></tr>\n");
    }
    h.raw("</tbody></table></section>\n");
}

fn certificate(h: &mut Html, heading: &'static str, c: &CertSummary) {
    h.raw("<h3>").raw(heading).raw("</h3><dl>");
    dl_row(h, "Subject", &c.subject);
    dl_row(h, "Issuer", &c.issuer);
    dl_row(h, "Names", &c.sans.join(", "));
    dl_row(h, "Valid", &format!("{} to {}", c.not_before, c.not_after));
    h.raw("</dl>");
}

fn tls(h: &mut Html, r: &Report) {
    let failed_cert = match &r.failure {
        Some(Failure::Tls(t)) => t.certificate.as_ref(),
        _ => None,
    };
    if r.tls.is_none() && failed_cert.is_none() {
        return;
    }
    h.raw("<section class=\"tls\"><h2>TLS</h2>");
    if let Some(t) = &r.tls {
        h.raw("<dl>");
        dl_row(h, "Version", &t.version);
        dl_row(h, "Cipher", &t.cipher);
        dl_row(h, "Verified", if t.verified { "yes" } else { "no" });
        h.raw("</dl>");
        if let Some(c) = &t.certificate {
            certificate(h, "Certificate", c);
        }
    }
    if let Some(c) = failed_cert {
        certificate(h, "Certificate presented", c);
    }
    h.raw("</section>\n");
}

fn details(h: &mut Html, r: &Report) {
    if r.connect_attempts.is_empty() && r.capabilities.is_empty() {
        return;
    }
    h.raw("<section class=\"more\"><h2>Connection</h2>");
    if !r.connect_attempts.is_empty() {
        h.raw("<h3>Connect attempts</h3><ul>");
        for a in &r.connect_attempts {
            h.raw("<li><code>")
                .text(&a.addr.to_string())
                .raw("</code> ");
            if a.error.is_some() {
                h.raw("failed: ").text(&a.detail);
            } else {
                h.raw("connected");
            }
            h.raw(" (").num(a.ms, 1).raw(" ms)</li>");
        }
        h.raw("</ul>");
    }
    if !r.capabilities.is_empty() {
        h.raw("<h3>Server capabilities (last EHLO)</h3><ul class=\"caps\">");
        for c in &r.capabilities {
            h.raw("<li><code>").text(c).raw("</code></li>");
        }
        h.raw("</ul>");
    }
    h.raw("</section>\n");
}

/// One row of a batch report.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// The row's id.
    pub id: String,
    /// Line number in the profiles file.
    pub line: u64,
    /// Host checked (empty for a bad row).
    pub host: String,
    /// Port checked.
    pub port: u16,
    /// `ok`, `failed` or `error` (a bad row).
    pub outcome: &'static str,
    /// The failed stage.
    pub stage: Option<&'static str>,
    /// Diagnosis code (`row.invalid` for a bad row).
    pub code: String,
    /// Summary, or the row error.
    pub summary: String,
    /// The fix.
    pub fix: String,
    /// How long the check took.
    pub ms: f64,
}

impl BatchRow {
    /// The row for a finished check.
    pub fn checked(id: &str, line: u64, r: &Report, ms: f64) -> BatchRow {
        BatchRow {
            id: id.to_owned(),
            line,
            host: r.host.clone(),
            port: r.port,
            outcome: if r.ok() { "ok" } else { "failed" },
            stage: r.failed_stage.map(|s| s.as_str()),
            code: r.diagnosis.code.to_string(),
            summary: r.diagnosis.summary.clone(),
            fix: r.diagnosis.fix.clone(),
            ms,
        }
    }

    /// The row for a bad profiles line.
    pub fn invalid(id: Option<&str>, line: u64, message: &str) -> BatchRow {
        BatchRow {
            id: id.unwrap_or("").to_owned(),
            line,
            host: String::new(),
            port: 0,
            outcome: "error",
            stage: None,
            code: "row.invalid".into(),
            summary: message.to_owned(),
            fix: "Correct the profiles line.".into(),
            ms: 0.0,
        }
    }
}

/// Click-to-sort for the batch table (optional: the table is readable, and filterable
/// by CSS, without it).
const SORT_JS: &str = include_str!("sort.js");

/// The HTML document for a batch: counts per diagnosis code (each a CSS-only filter),
/// then one table row per profile, failures first. `omitted` counts rows left out of
/// the table (the counts include them).
pub fn batch(title: &str, rows: &[BatchRow], omitted: u64, meta: &Meta) -> String {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for r in rows {
        match counts.iter_mut().find(|(c, _)| *c == r.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.code.clone(), 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    // One rule per code: when its radio is checked, rows of other codes hide.
    let mut style = String::from(STYLE);
    for (code, _) in &counts {
        let id = ident(code);
        let _ = write!(
            style,
            "\nbody:has(#f-{id}:checked) tbody tr:not(.k-{id}){{display:none}}"
        );
    }
    let mut sorted: Vec<&BatchRow> = rows.iter().collect();
    let rank = |o: &str| match o {
        "failed" => 0,
        "error" => 1,
        _ => 2,
    };
    sorted.sort_by(|a, b| {
        rank(a.outcome)
            .cmp(&rank(b.outcome))
            .then(a.code.cmp(&b.code))
            .then(a.line.cmp(&b.line))
    });
    let mut h = Html::new();
    head(&mut h, title, &style, Some(SORT_JS));
    let passed = rows.iter().filter(|r| r.outcome == "ok").count();
    let failed = rows.iter().filter(|r| r.outcome == "failed").count();
    let bad = rows.len() - passed - failed;
    h.raw("<main class=\"wide\">\n<header><p class=\"tool\">smtprobe batch report</p><h1>")
        .text(title)
        .raw("</h1>");
    if let Some(s) = &meta.story {
        h.raw("<p class=\"story\">").text(s).raw("</p>");
    }
    h.raw("<p class=\"totals\"><span class=\"n\">")
        .num(rows.len() as f64 + omitted as f64, 0)
        .raw("</span> rows: <span class=\"okc\">")
        .num(passed as f64, 0)
        .raw(" passed</span>, <span class=\"badc\">")
        .num(failed as f64, 0)
        .raw(" failed</span>, ")
        .num(bad as f64, 0)
        .raw(" bad rows</p></header>\n");
    if omitted > 0 {
        h.raw("<p class=\"hint\">The table shows the first rows only; ")
            .num(omitted as f64, 0)
            .raw(" more are in the JSON output (and not in the counts below).</p>");
    }
    h.raw("<section class=\"counts\"><h2>Diagnosis codes</h2><p class=\"hint\">Pick a code to show only its rows.</p><form class=\"filter\"><label><input type=\"radio\" name=\"f\" id=\"f-all\" checked> all <span class=\"n\">")
        .num(rows.len() as f64, 0)
        .raw("</span></label>");
    for (code, n) in &counts {
        h.raw("<label><input type=\"radio\" name=\"f\" id=\"f-")
            .ident(code)
            .raw("\"> <code>")
            .text(code)
            .raw("</code> <span class=\"n\">")
            .num(*n as f64, 0)
            .raw("</span></label>");
    }
    h.raw("</form></section>\n<section class=\"rows\"><table class=\"sortable\"><thead><tr><th>id</th><th>line</th><th>host</th><th>port</th><th>outcome</th><th>stage</th><th>code</th><th>summary and fix</th><th>ms</th></tr></thead><tbody>\n");
    for r in sorted {
        h.raw("<tr class=\"k-")
            .ident(&r.code)
            .raw(" o-")
            .raw(r.outcome)
            .raw("\"><td>")
            .text(&r.id)
            .raw("</td><td class=\"r\">")
            .num(r.line as f64, 0)
            .raw("</td><td>")
            .text(&r.host)
            .raw("</td><td class=\"r\">");
        if r.port > 0 {
            h.num(f64::from(r.port), 0);
        }
        h.raw("</td><td><span class=\"pill ")
            .raw(r.outcome)
            .raw("\">")
            .raw(r.outcome)
            .raw("</span></td><td>")
            .text(r.stage.unwrap_or(""))
            .raw("</td><td><code>")
            .text(&r.code)
            .raw("</code></td><td><details><summary>")
            .text(&r.summary)
            .raw("</summary><p class=\"ann\">")
            .text(&r.fix)
            .raw("</p></details></td><td class=\"r\">")
            .num(r.ms, 0)
            .raw("</td></tr>\n");
    }
    h.raw("</tbody></table></section>\n</main>\n<script>");
    h.out.push_str(SORT_JS);
    h.raw("</script>\n");
    footer(&mut h, &meta.generated.clone().unwrap_or_else(now_rfc3339));
    h.finish()
}

/// A report file that could not be written: which file, and why.
#[derive(Debug)]
pub struct WriteError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What the system said.
    pub error: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Writes a document to `path`, saying which file could not be written.
pub fn write_file(path: &std::path::Path, html: &str) -> Result<(), WriteError> {
    std::fs::write(path, html).map_err(|error| WriteError {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_controls_and_bidi() {
        let s = escape_html("<script>\"'&\u{1b}[2J\u{202e}x\u{0}");
        assert_eq!(s, "&lt;script&gt;&quot;&#39;&amp;\\x1b[2J\\u{202e}x\\x00");
        assert_eq!(
            ident("auth.bad-credentials\"><x"),
            "auth-bad-credentials---x"
        );
    }

    #[test]
    fn csp_hash_is_the_base64_sha256() {
        // echo -n 'a' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            csp_hash("a"),
            "'sha256-ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs='"
        );
    }
}
