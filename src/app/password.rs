//! Passwords from where they live: a command's output (`--password-command`, like
//! msmtp's `passwordeval`) and `~/.netrc` (`--netrc`, like curl).
//!
//! The password is wrapped in a [`Secret`] the moment it is read; it is never put on a
//! command line, and errors describe what went wrong without its content.

use crate::secret::Secret;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most bytes read from a password command's output.
pub const MAX_COMMAND_OUTPUT: usize = 64 * 1024;

/// Why a password command gave no password. It never holds the command's output.
#[derive(Debug)]
#[non_exhaustive]
pub enum PasswordCommandError {
    /// `sh` could not be started.
    Spawn(std::io::Error),
    /// The child's stdout pipe was missing.
    NoStdout,
    /// Waiting for the child failed.
    Wait(std::io::Error),
    /// The command ran past the deadline; it was killed with its process group.
    Timeout(Duration),
    /// The command exited with this non-zero status.
    ExitStatus(i32),
    /// The command was killed by a signal.
    Signalled,
    /// The command exited, but something it started kept its output open.
    OutputLeftOpen,
    /// The first line of its output is empty.
    Empty,
    /// The first line of its output is not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for PasswordCommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordCommandError::Spawn(e) => write!(f, "cannot run sh: {e}"),
            PasswordCommandError::NoStdout => f.write_str("no stdout"),
            PasswordCommandError::Wait(e) => write!(f, "waiting for the command: {e}"),
            PasswordCommandError::Timeout(t) => write!(
                f,
                "the command did not finish within {}s (the check's timeout); it was stopped",
                t.as_secs_f64()
            ),
            PasswordCommandError::ExitStatus(c) => {
                write!(f, "the command failed (exit status {c})")
            }
            PasswordCommandError::Signalled => f.write_str("the command was killed by a signal"),
            PasswordCommandError::OutputLeftOpen => {
                f.write_str("the command exited but left its output open (a background process?)")
            }
            PasswordCommandError::Empty => {
                f.write_str("the command printed nothing on its first line")
            }
            PasswordCommandError::NotUtf8 => {
                f.write_str("the command printed a first line that is not UTF-8")
            }
        }
    }
}

impl std::error::Error for PasswordCommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PasswordCommandError::Spawn(e) | PasswordCommandError::Wait(e) => Some(e),
            _ => None,
        }
    }
}

/// Runs `cmd` with `sh -c` (stdin closed, stderr passed through so the tool can say why
/// it failed) and returns the first line of its output. A command that exits non-zero,
/// prints nothing, or runs past `timeout` (it is killed, with its process group) is an
/// error naming what happened.
pub fn from_command(cmd: &str, timeout: Duration) -> Result<Secret, PasswordCommandError> {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Its own process group, so a timeout kills the pipeline, not only `sh`.
        command.process_group(0);
    }
    let mut child = command.spawn().map_err(PasswordCommandError::Spawn)?;
    let mut stdout = child.stdout.take().ok_or(PasswordCommandError::NoStdout)?;
    // Read on a thread: the pipe may stay open after a timeout (a grandchild holds it).
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = (&mut stdout)
            .take(MAX_COMMAND_OUTPUT as u64)
            .read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                return Err(PasswordCommandError::Timeout(timeout));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(PasswordCommandError::Wait(e)),
        }
    };
    if !status.success() {
        kill_group(&mut child);
        return Err(match status.code() {
            Some(c) => PasswordCommandError::ExitStatus(c),
            None => PasswordCommandError::Signalled,
        });
    }
    // The command exited; its output is complete unless a background child keeps the
    // pipe open, so wait for the reader only until the deadline.
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !reader.is_finished() {
        kill_group(&mut child);
        return Err(PasswordCommandError::OutputLeftOpen);
    }
    let mut out = reader.join().unwrap_or_default();
    let line_end = out.iter().position(|&b| b == b'\n').unwrap_or(out.len());
    let mut first = out[..line_end].to_vec();
    out.fill(0);
    if first.last() == Some(&b'\r') {
        first.pop();
    }
    if first.is_empty() {
        return Err(PasswordCommandError::Empty);
    }
    match String::from_utf8(first) {
        Ok(s) => Ok(Secret::new(s)),
        Err(e) => {
            let mut b = e.into_bytes();
            b.fill(0);
            Err(PasswordCommandError::NotUtf8)
        }
    }
}

fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // kill(1) with a negative pid signals the whole group (process_group(0) above).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Finds the login and password for `host` in netrc text: the first `machine host`
/// entry (whose login matches `user`, when given), else the `default` entry. `macdef`
/// bodies are skipped.
pub fn netrc_lookup(text: &str, host: &str, user: Option<&str>) -> Option<(String, Secret)> {
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        for w in line.split_whitespace() {
            if w == "macdef" {
                // A macro body runs to the next empty line.
                for l in lines.by_ref() {
                    if l.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if w.starts_with('#') && tokens.is_empty() {
                break;
            }
            tokens.push(w);
        }
    }
    let mut entries: Vec<(Option<&str>, Option<&str>, Option<&str>)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i] {
            "machine" => {
                entries.push((tokens.get(i + 1).copied(), None, None));
                i += 2;
            }
            "default" => {
                entries.push((None, None, None));
                i += 1;
            }
            "login" => {
                if let Some(e) = entries.last_mut() {
                    e.1 = tokens.get(i + 1).copied();
                }
                i += 2;
            }
            "password" => {
                if let Some(e) = entries.last_mut() {
                    e.2 = tokens.get(i + 1).copied();
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    let fits = |e: &(Option<&str>, Option<&str>, Option<&str>)| {
        e.1.is_some() && e.2.is_some() && user.is_none_or(|u| e.1 == Some(u))
    };
    let found = entries
        .iter()
        .find(|e| e.0.is_some_and(|m| m.eq_ignore_ascii_case(host)) && fits(e))
        .or_else(|| entries.iter().find(|e| e.0.is_none() && fits(e)))?;
    Some((found.1?.to_owned(), Secret::new(found.2?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_first_line_is_the_password() {
        let s = from_command("printf 'hunter2\\nsecond\\n'", Duration::from_secs(5)).unwrap();
        assert_eq!(s.expose(), "hunter2");
        let s = from_command("printf 'p w\\r\\n'", Duration::from_secs(5)).unwrap();
        assert_eq!(s.expose(), "p w");
    }

    #[test]
    fn failing_hanging_or_silent_commands_are_clear_errors() {
        let e = from_command("echo leaked; exit 3", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, PasswordCommandError::ExitStatus(3)), "{e}");
        let e = e.to_string();
        assert!(e.contains("exit status 3") && !e.contains("leaked"), "{e}");
        let e = from_command("true", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("printed nothing"), "{e}");
        let e = from_command("printf '\\nlater\\n'", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("printed nothing"), "{e}");
        let start = Instant::now();
        let e = from_command("sleep 30 | cat", Duration::from_millis(300))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did not finish within 0.3s"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
        let e = from_command("printf '\\377\\376\\n'", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn netrc_by_host_then_default() {
        let text = "# comment\nmachine other.test login a password b\n\
                    machine smtp.example.org\n  login me@example.org\n  password s3cret\n\
                    macdef init\ncd /\n\n\
                    default login anon password guest\n";
        let (u, p) = netrc_lookup(text, "SMTP.example.org", None).unwrap();
        assert_eq!((u.as_str(), p.expose()), ("me@example.org", "s3cret"));
        let (u, _) = netrc_lookup(text, "smtp.example.org", Some("anon")).unwrap();
        assert_eq!(u, "anon");
        let (u, p) = netrc_lookup(text, "nowhere.test", None).unwrap();
        assert_eq!((u.as_str(), p.expose()), ("anon", "guest"));
        assert!(netrc_lookup("machine x login y", "x", None).is_none());
    }
}
