//! SMTP reply parsing (RFC 5321 §4.2), resumable and bounded.
//!
//! Bytes arrive in arbitrary chunks; [`ReplyParser::push`] buffers them and
//! [`ReplyParser::next_reply`] yields a complete, validated [`Reply`] once its last line
//! (`NNN SP text` or a bare `NNN`) has arrived. Lines end in CRLF, but a bare LF is
//! tolerated because real servers send it. Bytes are kept as received: text that is not
//! UTF-8 is shown escaped, never rejected.
//!
//! Memory is bounded: a line longer than [`MAX_LINE`] or a reply larger than
//! [`MAX_REPLY`] (or with more than [`MAX_LINES`] lines) is an error, not an allocation.

use super::enhanced::EnhancedCode;
use super::escape::escape_bytes;
use std::fmt;

/// Longest reply line accepted, CRLF included. RFC 5321 §4.5.3.1.5 says 512 octets, but
/// real servers exceed it (long Gmail 5.7.14 URLs, Exchange diagnostics), so we allow 16×.
pub const MAX_LINE: usize = 8192;
/// Largest reply accepted, all lines together.
pub const MAX_REPLY: usize = 64 * 1024;
/// Most lines in one reply (EHLO lists are the longest real replies: a few dozen lines).
pub const MAX_LINES: usize = 256;

/// One complete server reply: a three-digit code and one or more lines.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    code: u16,
    /// Each line as received, without its line ending (`250-SIZE 35882577`).
    lines: Vec<Vec<u8>>,
}

impl Reply {
    /// Builds a reply from lines of text (each without CRLF); used by tests and the replay
    /// server. Returns an error when the lines do not form one valid reply.
    pub fn from_lines<S: AsRef<[u8]>>(lines: &[S]) -> Result<Reply, ReplyError> {
        let mut p = ReplyParser::new();
        for l in lines {
            p.push(l.as_ref());
            p.push(b"\r\n");
        }
        match p.next_reply() {
            Some(Ok(r)) if p.buffered() == 0 => Ok(r),
            Some(Ok(_)) => Err(ReplyError::Malformed {
                line: String::new(),
                reason: "more than one reply",
            }),
            Some(Err(e)) => Err(e),
            None => Err(ReplyError::Malformed {
                line: String::new(),
                reason: "reply not terminated (last line must be `NNN text`)",
            }),
        }
    }

    /// The reply code, 200..=599 (RFC 5321 §4.2.1 allows 2yz to 5yz; 1yz is unused).
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The first digit: 2 positive, 3 intermediate, 4 transient, 5 permanent.
    pub fn class(&self) -> u8 {
        (self.code / 100) as u8
    }

    /// True for 2yz.
    pub fn is_positive(&self) -> bool {
        self.class() == 2
    }

    /// The raw lines as received, without line endings.
    pub fn raw_lines(&self) -> &[Vec<u8>] {
        &self.lines
    }

    /// The raw text of each line after the code and separator (`SIZE 35882577`).
    pub fn raw_texts(&self) -> impl Iterator<Item = &[u8]> {
        self.lines.iter().map(|l| l.get(4..).unwrap_or(&[]))
    }

    /// Each line after the code and separator, lossily decoded (for matching).
    pub fn texts(&self) -> Vec<String> {
        self.raw_texts()
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .collect()
    }

    /// All line texts joined by spaces, lossily decoded: what diagnosis matches words in.
    pub fn joined_text(&self) -> String {
        self.texts().join(" ")
    }

    /// Each full line, escaped for display (control bytes and non-UTF-8 shown as `\x..`).
    pub fn display_lines(&self) -> Vec<String> {
        self.lines.iter().map(|l| escape_bytes(l)).collect()
    }

    /// The RFC 3463 enhanced status code at the start of the first line's text, if any
    /// (RFC 2034 §3: it must match the reply class).
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        let first = self.raw_texts().next()?;
        let e = EnhancedCode::parse_prefix(first)?;
        (e.class == self.class()).then_some(e)
    }

    /// Serializes the reply for the wire (CRLF line ends).
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in &self.lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("lines", &self.display_lines())
            .finish()
    }
}

/// Why bytes from the server are not a valid reply. Carries the offending line (escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line exceeded [`MAX_LINE`] bytes without a line ending.
    LineTooLong {
        /// The first bytes of the line, escaped.
        start: String,
    },
    /// The reply exceeded [`MAX_REPLY`] bytes or [`MAX_LINES`] lines.
    ReplyTooLarge {
        /// How many lines had arrived.
        lines: usize,
    },
    /// A line does not start with a valid code and separator, or codes differ within the reply.
    Malformed {
        /// The offending line, escaped.
        line: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong { start } => write!(
                f,
                "reply line longer than {MAX_LINE} bytes (starts {start:?})"
            ),
            ReplyError::ReplyTooLarge { lines } => write!(
                f,
                "reply larger than {MAX_REPLY} bytes or {MAX_LINES} lines ({lines} lines so far)"
            ),
            ReplyError::Malformed { line, reason } => {
                write!(f, "malformed reply line {line:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ReplyError {}

/// Splits a byte stream into lines (CRLF or bare LF), with a length cap.
///
/// Shared by the client's reply parser and the replay server's command reader, so both
/// sides frame lines the same way.
#[derive(Debug, Default, Clone)]
pub struct LineReader {
    buf: Vec<u8>,
    /// How far `buf` has been scanned for LF without finding one (avoids rescanning).
    scanned: usize,
    max_line: usize,
    /// True when the last line returned ended in a bare LF (no CR before it).
    bare_lf: bool,
}

/// What [`LineReader::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without its line ending.
    Line(Vec<u8>),
    /// The buffered line exceeded the cap; the reader is now unusable (the stream is
    /// out of sync and the connection must be dropped).
    TooLong(Vec<u8>),
}

impl LineReader {
    /// A reader that accepts lines up to `max_line` bytes including the line ending.
    pub fn new(max_line: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            scanned: 0,
            max_line,
            bare_lf: false,
        }
    }

    /// True when the line last returned by [`LineReader::next_line`] ended in a bare
    /// LF instead of CRLF (RFC 5321 §2.3.8: a server may judge it; the replay server
    /// reports it).
    pub fn last_line_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes every buffered byte out (used when STARTTLS discards the clear-text buffer).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        self.scanned = 0;
        std::mem::take(&mut self.buf)
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Option<LineEvent> {
        let from = self.scanned;
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = from + i;
                if end + 1 > self.max_line {
                    let start = self.buf[..64.min(self.buf.len())].to_vec();
                    self.buf.clear();
                    self.scanned = 0;
                    return Some(LineEvent::TooLong(start));
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop(); // LF
                self.bare_lf = line.last() != Some(&b'\r');
                if !self.bare_lf {
                    line.pop();
                }
                self.scanned = 0;
                Some(LineEvent::Line(line))
            }
            None => {
                if self.buf.len() >= self.max_line {
                    let start = self.buf[..64.min(self.buf.len())].to_vec();
                    self.buf.clear();
                    self.scanned = 0;
                    return Some(LineEvent::TooLong(start));
                }
                self.scanned = self.buf.len();
                None
            }
        }
    }
}

/// Resumable reply parser: feed bytes with [`push`](Self::push), take replies with
/// [`next_reply`](Self::next_reply).
#[derive(Debug, Clone)]
pub struct ReplyParser {
    lines: LineReader,
    pending: Vec<Vec<u8>>,
    pending_code: Option<u16>,
    pending_bytes: usize,
    failed: bool,
}

impl Default for ReplyParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplyParser {
    /// A parser with the default caps.
    pub fn new() -> Self {
        ReplyParser {
            lines: LineReader::new(MAX_LINE),
            pending: Vec::new(),
            pending_code: None,
            pending_bytes: 0,
            failed: false,
        }
    }

    /// Appends bytes received from the server. After an error they are dropped: the
    /// stream cannot be resynchronised, and a server that keeps sending must not grow
    /// the buffer past the caps.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.lines.push(bytes);
        }
    }

    /// Bytes received that are not part of any complete reply yet (a partial line, or the
    /// lines of an unfinished multi-line reply).
    pub fn buffered(&self) -> usize {
        self.lines.buffered() + self.pending_bytes
    }

    /// True when no partial reply is buffered.
    pub fn is_idle(&self) -> bool {
        self.buffered() == 0
    }

    /// Drops everything buffered and returns it (RFC 3207 §4.2: nothing received before
    /// the TLS handshake may be used after it).
    pub fn discard(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        for l in self.pending.drain(..) {
            out.extend_from_slice(&l);
            out.extend_from_slice(b"\r\n");
        }
        out.extend(self.lines.take_buffered());
        self.pending_code = None;
        self.pending_bytes = 0;
        out
    }

    /// The next complete reply, an error, or `None` when more bytes are needed.
    /// After an error the parser stays failed: the stream cannot be resynchronised.
    pub fn next_reply(&mut self) -> Option<Result<Reply, ReplyError>> {
        if self.failed {
            return None;
        }
        loop {
            let line = match self.lines.next_line()? {
                LineEvent::Line(l) => l,
                LineEvent::TooLong(start) => {
                    return Some(self.fail(ReplyError::LineTooLong {
                        start: escape_bytes(&start),
                    }))
                }
            };
            let (code, last) = match parse_line_head(&line) {
                Ok(h) => h,
                Err(reason) => {
                    return Some(self.fail(ReplyError::Malformed {
                        line: escape_bytes(&line),
                        reason,
                    }))
                }
            };
            if let Some(prev) = self.pending_code {
                if prev != code {
                    return Some(self.fail(ReplyError::Malformed {
                        line: escape_bytes(&line),
                        reason: "reply code differs from the previous line of the same reply",
                    }));
                }
            }
            self.pending_code = Some(code);
            self.pending_bytes += line.len() + 2;
            self.pending.push(line);
            if self.pending_bytes > MAX_REPLY || self.pending.len() > MAX_LINES {
                let lines = self.pending.len();
                return Some(self.fail(ReplyError::ReplyTooLarge { lines }));
            }
            if last {
                let lines = std::mem::take(&mut self.pending);
                self.pending_code = None;
                self.pending_bytes = 0;
                return Some(Ok(Reply { code, lines }));
            }
        }
    }

    fn fail(&mut self, e: ReplyError) -> Result<Reply, ReplyError> {
        self.failed = true;
        self.pending.clear();
        self.pending_bytes = 0;
        self.lines.take_buffered();
        Err(e)
    }
}

/// One reply line on its own (`250-SIZE 35882577`), as the parser reads it: the code,
/// whether the reply ends with this line, and the text after the separator. `None` when
/// the line is not a valid reply line (RFC 5321 §4.2). For views that see one line at a
/// time (the annotator); a connection's replies go through [`ReplyParser`].
pub fn parse_line(line: &[u8]) -> Option<(u16, bool, &[u8])> {
    let (code, last) = parse_line_head(line).ok()?;
    Some((code, last, line.get(4..).unwrap_or_default()))
}

/// The reply code of one reply line (`334 ` gives 334), `None` when the line is not a
/// valid reply line (RFC 5321 §4.2).
pub fn code_of(line: &[u8]) -> Option<u16> {
    parse_line(line).map(|(code, _, _)| code)
}

/// Parses `NNN`, `NNN text`, `NNN-text`: returns the code and whether this is the last line.
fn parse_line_head(line: &[u8]) -> Result<(u16, bool), &'static str> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err("does not start with a three-digit reply code");
    }
    let code = u16::from(line[0] - b'0') * 100
        + u16::from(line[1] - b'0') * 10
        + u16::from(line[2] - b'0');
    // RFC 5321 §4.2: first digit 2..5, second digit 0..5.
    if !(2..=5).contains(&(code / 100)) || (code / 10) % 10 > 5 {
        return Err("reply code out of range (RFC 5321 §4.2: 2yz to 5yz, y in 0..5)");
    }
    match line.get(3) {
        None | Some(b' ') => Ok((code, true)),
        Some(b'-') => Ok((code, false)),
        // Some servers send TAB; RFC 5321 says SP, but accepting it costs nothing.
        Some(b'\t') => Ok((code, true)),
        Some(_) => Err("reply code not followed by space or hyphen"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the reply-parser property test (fuzz/harness.rs): after a line-too-long
    /// error every further push was buffered and never drained, so an endless server
    /// line grew memory without bound for a caller that kept reading.
    #[test]
    fn bytes_pushed_after_an_error_are_not_buffered() {
        let mut p = ReplyParser::new();
        p.push(&[b'a'; MAX_LINE]);
        assert!(matches!(
            p.next_reply(),
            Some(Err(ReplyError::LineTooLong { .. }))
        ));
        for _ in 0..100 {
            p.push(&[b'a'; 4096]);
            assert_eq!(p.next_reply(), None);
        }
        assert_eq!(p.buffered(), 0);
    }

    /// Feeds `input` whole, one byte at a time, and in chunks of several sizes; all must
    /// give the same replies (DESIGN habit 3).
    fn parse_all(input: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let whole = parse_chunked(input, input.len().max(1));
        for size in [1, 2, 3, 5, 7, 13, 64] {
            assert_eq!(parse_chunked(input, size), whole, "chunk size {size}");
        }
        // Pseudo-random chunking (deterministic xorshift).
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..20 {
            let mut p = ReplyParser::new();
            let mut out = Vec::new();
            let mut i = 0;
            while i < input.len() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = 1 + (seed % 17) as usize;
                let end = (i + n).min(input.len());
                p.push(&input[i..end]);
                while let Some(r) = p.next_reply() {
                    out.push(r);
                }
                i = end;
            }
            assert_eq!(out, whole, "random chunks");
        }
        whole
    }

    fn parse_chunked(input: &[u8], size: usize) -> Vec<Result<Reply, ReplyError>> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            p.push(chunk);
            while let Some(r) = p.next_reply() {
                out.push(r);
            }
        }
        out
    }

    #[test]
    fn gmail_ehlo_reply_is_one_multiline_reply() {
        let input = b"250-smtp.gmail.com at your service, [203.0.113.7]\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";
        let out = parse_all(input);
        assert_eq!(out.len(), 1);
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.code(), 250);
        assert_eq!(r.raw_lines().len(), 8);
        assert_eq!(r.texts()[1], "SIZE 35882577");
        assert_eq!(r.to_wire(), input.to_vec());
    }

    #[test]
    fn enhanced_code_from_first_line_only_when_class_matches() {
        let out = parse_all(b"535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials x - gsmtp\r\n");
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.enhanced().unwrap().to_string(), "5.7.8");
        let r = Reply::from_lines(&["250 4.0.0 odd"]).unwrap();
        assert_eq!(r.enhanced(), None, "class mismatch is not an enhanced code");
    }

    #[test]
    fn code_only_line_and_bare_lf_and_tab() {
        let out = parse_all(b"334\n250\tok\r\n220 \r\n");
        let codes: Vec<u16> = out.iter().map(|r| r.as_ref().unwrap().code()).collect();
        assert_eq!(codes, vec![334, 250, 220]);
    }

    #[test]
    fn pipelined_replies_arrive_in_order() {
        let out = parse_all(b"250 2.1.0 OK\r\n250 2.1.5 OK\r\n354  Go ahead\r\n");
        let codes: Vec<u16> = out.iter().map(|r| r.as_ref().unwrap().code()).collect();
        assert_eq!(codes, vec![250, 250, 354]);
    }

    #[test]
    fn mixed_codes_are_malformed() {
        let out = parse_all(b"250-first\r\n251 second\r\n");
        assert!(matches!(out[0], Err(ReplyError::Malformed { .. })));
        assert_eq!(out.len(), 1, "parser stops after an error");
    }

    #[test]
    fn out_of_range_and_garbage_codes_are_malformed() {
        for input in [
            &b"600 no\r\n"[..],
            b"199 no\r\n",
            b"260 second digit too big\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
            b"22\r\n",
            b"250x\r\n",
            b"\x16\x03\x01\x00\x05hello\r\n",
        ] {
            let out = parse_all(input);
            assert!(
                matches!(out.first(), Some(Err(ReplyError::Malformed { .. }))),
                "{input:?} gave {out:?}"
            );
        }
    }

    #[test]
    fn endless_line_is_bounded() {
        let mut p = ReplyParser::new();
        let chunk = vec![b'A'; 1000];
        let mut result = None;
        p.push(b"250-");
        for _ in 0..100 {
            p.push(&chunk);
            if let Some(r) = p.next_reply() {
                result = Some(r);
                break;
            }
            assert!(p.buffered() <= MAX_LINE + chunk.len());
        }
        assert!(matches!(result, Some(Err(ReplyError::LineTooLong { .. }))));
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn endless_multiline_reply_is_bounded() {
        let mut p = ReplyParser::new();
        let mut got = None;
        for _ in 0..10_000 {
            p.push(b"250-more capabilities for you\r\n");
            if let Some(r) = p.next_reply() {
                got = Some(r);
                break;
            }
        }
        assert!(matches!(got, Some(Err(ReplyError::ReplyTooLarge { .. }))));
    }

    #[test]
    fn long_lines_beyond_512_are_accepted() {
        let long = format!("550 5.7.1 {}\r\n", "x".repeat(600));
        let out = parse_all(long.as_bytes());
        assert_eq!(out[0].as_ref().unwrap().code(), 550);
    }

    #[test]
    fn non_utf8_and_escapes_are_kept_and_displayed_escaped() {
        let out = parse_all(b"220 caf\xe9 \x1b[31mred\x00\r\n");
        let r = out[0].as_ref().unwrap();
        assert_eq!(r.raw_lines()[0], b"220 caf\xe9 \x1b[31mred\x00".to_vec());
        let shown = &r.display_lines()[0];
        assert!(!shown.contains('\x1b') && !shown.contains('\0'), "{shown}");
        assert!(
            shown.contains("\\x1b") && shown.contains("\\xe9"),
            "{shown}"
        );
    }

    #[test]
    fn discard_returns_what_was_buffered() {
        let mut p = ReplyParser::new();
        p.push(b"220 Ready\r\n250-injected\r\n250 par");
        assert_eq!(p.next_reply().unwrap().unwrap().code(), 220);
        assert!(p.next_reply().is_none());
        assert!(!p.is_idle());
        let gone = p.discard();
        assert_eq!(gone, b"250-injected\r\n250 par".to_vec());
        assert!(p.is_idle());
    }

    #[test]
    fn line_reader_frames_commands() {
        let mut r = LineReader::new(16);
        r.push(b"EHLO a\r\nQUIT\nxxxxxxxxxxxxxxxxxxxxxx");
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"EHLO a".to_vec())));
        assert_eq!(r.next_line(), Some(LineEvent::Line(b"QUIT".to_vec())));
        assert!(matches!(r.next_line(), Some(LineEvent::TooLong(_))));
    }
}
