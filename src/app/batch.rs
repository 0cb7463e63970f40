//! `smtprobe batch PROFILES.jsonl`: many checks, concurrently, with a per-host limit.
//!
//! The profiles file is streamed (one JSON object per line, never read whole), so memory
//! is bounded by `--concurrency`, not by the file's size: a reader task parses rows and
//! hands them over a bounded channel; at most `2 × concurrency` rows are admitted at a
//! time; each admitted row waits for a slot of its host (`--per-host`), then a global
//! slot (`--concurrency`), then runs [`crate::check`]. Results are written to stdout as
//! they finish (one compact JSON object per line: the check's JSON plus `id` and `line`),
//! a summary goes to stderr at the end.
//!
//! A bad row (not JSON, missing or mistyped field, CR/LF in a value, unknown field, an
//! inline password in a file others can read) becomes an error result naming its line;
//! it never stops the batch. Error messages name fields, never their values, so a
//! password typed in the wrong place is not echoed.
//!
//! Ctrl-C stops admitting rows and lets the running checks finish (a second Ctrl-C
//! abandons them). `--shard K/N` (K from 0 to N-1) keeps the rows whose `id` hashes
//! (64-bit FNV-1a, stable across runs and machines) to K modulo N; a row without a
//! readable id is sharded by the hash of its raw line, so the N outputs concatenate to
//! exactly one result per line of the file.

use crate::app::args::{
    config_from_spec, timeout_from_secs, AuthArg, CheckSpec, ConnectionArgs, PasswordSource,
    UsageError,
};
use crate::app::exit::{CommandError, Finished};
use crate::app::fields::{check_known, FieldError, Fields};
use crate::report::Report;
use crate::secret::Secret;
use clap::Args;
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// The longest profiles line accepted (longer lines are a row error).
pub const MAX_LINE: usize = 64 * 1024;

/// `--shard K/N`: run only the rows whose id hashes to K modulo N (K from 0 to N-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0 to `count - 1`.
    pub index: u64,
    /// N, at least 1.
    pub count: u64,
}

impl FromStr for Shard {
    type Err = UsageError;

    fn from_str(s: &str) -> Result<Shard, UsageError> {
        if s == "auto" {
            return Shard::from_env(|k| std::env::var(k).ok());
        }
        let bad = || {
            UsageError(format!(
                "--shard wants K/N with 0 <= K < N (e.g. 0/4), not {s:?}"
            ))
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// `--shard auto`: K and N from the environment a job engine sets, first match wins:
    /// - `SMTPROBE_SHARD_INDEX` and `SMTPROBE_SHARD_COUNT` (set them from any CI matrix);
    /// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (0-based, set by Kubernetes,
    ///   <https://kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode>)
    ///   and `SMTPROBE_SHARD_COUNT` (the Job's `completions`: Kubernetes does not export
    ///   it, the manifest in the README sets it);
    /// - GitLab CI `parallel:`: `CI_NODE_INDEX` (1-based) and `CI_NODE_TOTAL`
    ///   (<https://docs.gitlab.com/ci/variables/predefined_variables/>).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Shard, UsageError> {
        let bad = UsageError;
        let num = |k: &str| -> Result<Option<u64>, UsageError> {
            match get(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| bad(format!("--shard auto: {k} is not a whole number"))),
            }
        };
        let count_var = "SMTPROBE_SHARD_COUNT";
        let (index, count, from) = if let Some(i) = num("SMTPROBE_SHARD_INDEX")? {
            (i, num(count_var)?, "SMTPROBE_SHARD_INDEX")
        } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            (i, num(count_var)?, "JOB_COMPLETION_INDEX")
        } else if let Some(i) = num("CI_NODE_INDEX")? {
            if i == 0 {
                return Err(bad(
                    "--shard auto: CI_NODE_INDEX counts from 1, it is 0".into()
                ));
            }
            (i - 1, num("CI_NODE_TOTAL")?, "CI_NODE_INDEX")
        } else {
            return Err(bad("--shard auto: none of SMTPROBE_SHARD_INDEX, JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or CI_NODE_INDEX (GitLab parallel) is set".into()));
        };
        let count = count.ok_or_else(|| {
            let want = if from == "CI_NODE_INDEX" {
                "CI_NODE_TOTAL"
            } else {
                count_var
            };
            bad(format!(
                "--shard auto: {from} is set but {want} (the number of shards) is not"
            ))
        })?;
        if count == 0 || index >= count {
            return Err(bad(format!(
                "--shard auto: index {index} from {from} is not below the count {count}"
            )));
        }
        Ok(Shard { index, count })
    }

    /// True when `key` (a row's id, or its raw line) belongs to this shard.
    pub fn contains(&self, key: &[u8]) -> bool {
        fnv1a64(key) % self.count == self.index
    }
}

/// 64-bit FNV-1a: a stable hash (std's `DefaultHasher` is seeded per process).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Flags of `smtprobe batch`. The check flags are defaults for every row; a row's own
/// field wins.
#[derive(Debug, Args, Clone)]
pub struct BatchArgs {
    /// JSON Lines file of profiles (`-` reads standard input). Each line: {"id", "host",
    /// "port", "tls", "user", "password_env" | "password_file" | "password", …}.
    pub profiles: PathBuf,
    /// Checks running at once.
    #[arg(long, value_name = "N", default_value = "32", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Checks running at once against one host name (case-insensitive).
    #[arg(long, value_name = "N", default_value = "4", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub per_host: u32,
    /// Run only the rows whose id hashes (FNV-1a) to K modulo N; K counts from 0.
    /// `auto` reads K and N from the job engine (see [`Shard::from_env`]).
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<Shard>,
    /// Also write a self-contained HTML report: counts per diagnosis code and a
    /// filterable, sortable table of rows (the first 100000 rows).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Every row's defaults (a row's own field wins); --ca-file is read once.
    #[command(flatten)]
    pub conn: ConnectionArgs,
}

/// Runs `smtprobe batch` on its own multi-threaded runtime.
pub fn run(args: BatchArgs) -> Finished {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    crate::app::exit::block_on(
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads),
        run_async(args),
    )
}

/// What every row shares: the check flags as a template, the trust anchors read once,
/// and whether inline passwords are allowed.
struct Defaults {
    template: CheckSpec,
    roots: Vec<CertificateDer<'static>>,
    /// `None` when inline passwords are allowed, else why not.
    inline_refused: Option<String>,
}

/// A row ready to run.
struct Row {
    line: u64,
    id: String,
    host_key: String,
    config: crate::Config,
}

/// A row that cannot run.
pub(crate) struct RowError {
    line: u64,
    id: Option<String>,
    pub(crate) message: String,
}

enum Item {
    Row(Box<Row>),
    Error(RowError),
}

/// What became of an admitted row.
enum RowResult {
    Checked(Box<Report>),
    NotRun,
    Invalid(String),
}

struct Done {
    line: u64,
    id: String,
    host: String,
    ms: f64,
    result: RowResult,
}

fn usage(e: impl std::fmt::Display) -> Finished {
    Finished::Usage(CommandError::new("smtprobe batch", e))
}

/// The profiles file (or standard input) and its size, when known (for the progress bar).
type Profiles = (Box<dyn AsyncBufRead + Unpin + Send>, Option<u64>);

async fn open_profiles(path: &std::path::Path) -> Result<Profiles, Finished> {
    if path.as_os_str() == "-" {
        return Ok((
            Box::new(tokio::io::BufReader::new(tokio::io::stdin())),
            None,
        ));
    }
    let f = tokio::fs::File::open(path)
        .await
        .map_err(|e| usage(format_args!("cannot read {}: {e}", path.display())))?;
    let len = f.metadata().await.ok().map(|m| m.len());
    Ok((
        Box::new(tokio::io::BufReader::with_capacity(64 * 1024, f)),
        len,
    ))
}

async fn run_async(args: BatchArgs) -> Finished {
    let defaults = match defaults(&args) {
        Ok(d) => Arc::new(d),
        Err(e) => return usage(e),
    };
    let (input, total_bytes) = match open_profiles(&args.profiles).await {
        Ok(p) => p,
        Err(finished) => return finished,
    };
    let concurrency = args.concurrency as usize;
    let bytes_read = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Item>(concurrency);
    let reader = tokio::spawn(read_rows(
        input,
        tx,
        defaults.clone(),
        args.shard,
        bytes_read.clone(),
    ));
    let mut rx = Some(rx);

    let global = Arc::new(Semaphore::new(concurrency));
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut sink = Sink {
        out: std::io::BufWriter::new(std::io::stdout().lock()),
        summary: Summary::new(Instant::now()),
        progress: Progress::new(std::io::stderr().is_terminal(), total_bytes),
        html: args.html.as_ref().map(|_| HtmlRows::default()),
    };
    let mut interrupts = 0u32;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());

    while rx.is_some() || !tasks.is_empty() {
        let admit = rx.is_some() && tasks.len() < 2 * concurrency;
        // Whether this turn closed stdout (`| head`): then stop like Ctrl-C.
        let written = tokio::select! {
            _ = &mut ctrl_c, if interrupts < 2 => {
                interrupts += 1;
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
                rx = None;
                stop.store(true, Ordering::SeqCst);
                if interrupts == 1 {
                    sink.progress.clear();
                    eprintln!(
                        "smtprobe batch: interrupted: no new checks; waiting for the {} running (Ctrl-C again to abandon them)",
                        concurrency - global.available_permits()
                    );
                } else {
                    tasks.abort_all();
                }
                continue;
            }
            done = tasks.join_next(), if !tasks.is_empty() => match done {
                Some(Ok(done)) => {
                    if let Some(sem) = hosts.get(&done.host) {
                        // Only the map still holds it: forget the host (bounded memory).
                        if Arc::strong_count(sem) == 1 {
                            hosts.remove(&done.host);
                        }
                    }
                    sink.finished(&done)
                }
                // Aborted by a second Ctrl-C, or a panic inside a check: nothing to print.
                Some(Err(e)) => {
                    sink.lost(e.is_panic());
                    continue;
                }
                None => continue,
            },
            item = async { rx.as_mut().expect("guarded by admit").recv().await }, if admit => match item {
                None => {
                    rx = None;
                    continue;
                }
                Some(Item::Error(err)) => sink.bad_row(&err),
                Some(Item::Row(row)) => {
                    let per_host = hosts
                        .entry(row.host_key.clone())
                        .or_insert_with(|| Arc::new(Semaphore::new(args.per_host as usize)))
                        .clone();
                    tasks.spawn(run_row(*row, per_host, global.clone(), stop.clone()));
                    continue;
                }
            },
        };
        if written.is_err() {
            rx = None;
            stop.store(true, Ordering::SeqCst);
        }
        sink.progress.draw(
            &sink.summary,
            concurrency - global.available_permits(),
            bytes_read.load(Ordering::Relaxed),
        );
    }
    // The reader ends when its channel closes; a stopped batch does not wait for it.
    reader.abort();
    sink.finish(&args, interrupts > 0)
}

/// Where finished rows go: stdout (one JSON line each), the counts, the progress bar and
/// the HTML report's table.
struct Sink {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    summary: Summary,
    progress: Progress,
    html: Option<HtmlRows>,
}

impl Sink {
    /// A row that ran (or was admitted and not run); `Err` when stdout is closed.
    fn finished(&mut self, done: &Done) -> std::io::Result<()> {
        let line = self.summary.record(done);
        if let Some(rows) = &mut self.html {
            rows.keep(html_row(done));
        }
        match line {
            Some(line) => emit(&mut self.out, &line),
            None => Ok(()),
        }
    }

    /// A row that could not run; `Err` when stdout is closed.
    fn bad_row(&mut self, err: &RowError) -> std::io::Result<()> {
        self.summary.bad_rows += 1;
        if let Some(rows) = &mut self.html {
            let row =
                crate::report::html::BatchRow::invalid(err.id.as_deref(), err.line, &err.message);
            rows.keep(Some(row));
        }
        emit(&mut self.out, &error_json(err))
    }

    /// A check task that ended without a result: a panic, or abandoned by Ctrl-C.
    fn lost(&mut self, panicked: bool) {
        if panicked {
            self.summary.internal += 1;
        } else {
            self.summary.not_run += 1;
        }
    }

    /// The summary on stderr, the HTML report, and how the batch ended.
    fn finish(mut self, args: &BatchArgs, interrupted: bool) -> Finished {
        let _ = self.out.flush();
        drop(self.out);
        self.progress.clear();
        eprint!("{}", self.summary.render(interrupted));
        if let (Some(path), Some(rows)) = (&args.html, &self.html) {
            let title = args.profiles.display().to_string();
            let html =
                crate::report::html::batch(&title, &rows.rows, rows.omitted, &Default::default());
            if let Err(e) = crate::report::html::write_file(path, &html) {
                return Finished::Internal(CommandError::new(
                    "smtprobe batch",
                    format_args!("--html: {e}"),
                ));
            }
            eprintln!(
                "smtprobe batch: wrote the HTML report to {}",
                path.display()
            );
        }
        if interrupted {
            Finished::Interrupted
        } else if self.summary.all_passed() {
            Finished::Ok
        } else {
            Finished::SomeRowsFailed
        }
    }
}

/// Rows the HTML report's table holds; the rest are counted (memory stays bounded).
const HTML_ROWS: usize = 100_000;

/// The HTML report's rows: the first [`HTML_ROWS`], and how many more there were.
#[derive(Default)]
struct HtmlRows {
    rows: Vec<crate::report::html::BatchRow>,
    omitted: u64,
}

impl HtmlRows {
    fn keep(&mut self, row: Option<crate::report::html::BatchRow>) {
        if let Some(row) = row {
            if self.rows.len() < HTML_ROWS {
                self.rows.push(row);
            } else {
                self.omitted += 1;
            }
        }
    }
}

fn html_row(done: &Done) -> Option<crate::report::html::BatchRow> {
    use crate::report::html::BatchRow;
    match &done.result {
        RowResult::NotRun => None,
        RowResult::Invalid(m) => Some(BatchRow::invalid(Some(&done.id), done.line, m)),
        RowResult::Checked(r) => Some(BatchRow::checked(&done.id, done.line, r, done.ms)),
    }
}

fn emit(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Runs one row once its host and the batch have a free slot.
async fn run_row(
    row: Row,
    per_host: Arc<Semaphore>,
    global: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
) -> Done {
    // Host first, then the global slot: a global slot is never held by a row that is
    // only waiting for its host.
    let host_permit = per_host.acquire_owned().await;
    let global_permit = global.acquire_owned().await;
    let mut done = Done {
        line: row.line,
        id: row.id,
        host: row.host_key,
        ms: 0.0,
        result: RowResult::NotRun,
    };
    if stop.load(Ordering::SeqCst) || host_permit.is_err() || global_permit.is_err() {
        return done;
    }
    let start = Instant::now();
    done.result = match crate::check(row.config).await {
        Ok(report) => RowResult::Checked(Box::new(report)),
        Err(e) => RowResult::Invalid(e.to_string()),
    };
    done.ms = start.elapsed().as_secs_f64() * 1000.0;
    drop(global_permit);
    drop(host_permit);
    done
}

fn defaults(args: &BatchArgs) -> Result<Defaults, UsageError> {
    // The flags every row starts from; checked once, before any row.
    let mut t = args.conn.spec();
    timeout_from_secs(t.timeout)?;
    if let Some(h) = &t.helo {
        crate::protocol::command::check_helo_name(h)?;
    }
    // Read once for every row; a row's own `ca_file` replaces them.
    let roots = match t.ca_file.take() {
        Some(p) => {
            crate::transport::load_ca_file(&p).map_err(|e| UsageError(format!("--ca-file: {e}")))?
        }
        None => Vec::new(),
    };
    Ok(Defaults {
        template: t,
        roots,
        inline_refused: inline_password_refusal(&args.profiles),
    })
}

/// Inline passwords are accepted only from a file its owner alone can read (0600/0400).
fn inline_password_refusal(path: &std::path::Path) -> Option<String> {
    if path.as_os_str() == "-" {
        return Some(
            "inline \"password\" is refused on standard input: use password_env or password_file"
                .into(),
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 == 0 => None,
            Ok(m) => Some(format!(
                "inline \"password\" is refused: {} has mode {:04o}, readable by others; chmod 600 it, or use password_env or password_file",
                path.display(),
                m.permissions().mode() & 0o7777
            )),
            Err(e) => Some(format!("inline \"password\" is refused: cannot stat the profiles file: {e}")),
        }
    }
    #[cfg(not(unix))]
    {
        Some(
            "inline \"password\" is refused on this platform: use password_env or password_file"
                .into(),
        )
    }
}

/// Reads lines up to [`MAX_LINE`], parses and shards them, and sends them on `tx` until
/// the input ends or the receiver is gone.
async fn read_rows(
    mut input: Box<dyn AsyncBufRead + Unpin + Send>,
    tx: mpsc::Sender<Item>,
    defaults: Arc<Defaults>,
    shard: Option<Shard>,
    bytes_read: Arc<AtomicU64>,
) {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        let line = match read_capped_line(&mut input, &mut buf, &bytes_read).await {
            Ok(Some(too_long)) => too_long,
            Ok(None) => return,
            Err(e) => {
                let _ = tx
                    .send(Item::Error(RowError {
                        line: line_no + 1,
                        id: None,
                        message: format!("reading the profiles stopped: {e}"),
                    }))
                    .await;
                return;
            }
        };
        line_no += 1;
        let too_long = line;
        if !too_long && buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = if too_long {
            Item::Error(RowError {
                line: line_no,
                id: None,
                message: format!("line {line_no}: longer than {MAX_LINE} bytes"),
            })
        } else {
            match parse_row(line_no, &buf, &defaults) {
                Ok(row) => Item::Row(Box::new(row)),
                Err(e) => Item::Error(e),
            }
        };
        if let Some(shard) = shard {
            let key: &[u8] = match &item {
                Item::Row(r) => r.id.as_bytes(),
                Item::Error(RowError { id: Some(id), .. }) => id.as_bytes(),
                Item::Error(_) => &buf,
            };
            if !shard.contains(key) {
                continue;
            }
        }
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

/// Reads one line (without its LF or CRLF) into `buf`, keeping at most [`MAX_LINE`]
/// bytes. `Ok(Some(true))`: the line was longer and was skipped; `Ok(None)`: the end.
async fn read_capped_line(
    input: &mut (impl AsyncBufRead + Unpin + ?Sized),
    buf: &mut Vec<u8>,
    bytes_read: &AtomicU64,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let avail = input.fill_buf().await?;
        if avail.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, used, end) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..i], i + 1, true),
            None => (avail, avail.len(), false),
        };
        if buf.len() + chunk.len() > MAX_LINE {
            too_long = true;
            buf.clear();
        } else if !too_long {
            buf.extend_from_slice(chunk);
        }
        input.consume(used);
        bytes_read.fetch_add(used as u64, Ordering::Relaxed);
        if end {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(too_long));
        }
    }
}

/// The fields a row may carry.
const FIELDS: &[&str] = &[
    "id",
    "host",
    "port",
    "tls",
    "user",
    "password_env",
    "password_file",
    "password",
    "oauth2_token_env",
    "auth",
    "from",
    "to",
    "ca_file",
    "connect_to",
    "timeout",
    "helo",
    "allow_plaintext_auth",
    "pipelining",
    "client_cert",
    "client_key",
    "quit_after",
    "proxy",
];

/// Parses one profiles line into a validated check configuration. Messages name the
/// field, never its value.
fn parse_row(line: u64, text: &[u8], d: &Defaults) -> Result<Row, RowError> {
    let fail = |id: Option<&str>, message: String| RowError {
        line,
        id: id.map(str::to_owned),
        message: format!("line {line}: {message}"),
    };
    let map = row_object(text).map_err(|e| fail(None, e.message))?;
    let id = row_id(&map).map_err(|e| fail(None, e.message))?;
    let fail = |e: FieldError| fail(Some(&id), e.message);
    check_known(&map, FIELDS, &[]).map_err(&fail)?;
    let spec = row_spec(&Fields { map: &map }, d).map_err(&fail)?;
    let mut config = config_from_spec(&spec).map_err(|e| fail(FieldError::new(e.0)))?;
    // The template's `ca_file` was taken out by `defaults`, so the spec's is the row's.
    if spec.ca_file.is_none() {
        config.extra_roots = d.roots.clone();
    }
    Ok(Row {
        line,
        host_key: config.host.to_ascii_lowercase(),
        id,
        config,
    })
}

/// One row (a JSON object) as a check configuration, over the flags' defaults (tests).
#[cfg(test)]
pub(crate) fn row_config(json: &str) -> Result<crate::Config, RowError> {
    let d = Defaults {
        template: CheckSpec::default(),
        roots: Vec::new(),
        inline_refused: None,
    };
    parse_row(1, json.as_bytes(), &d).map(|row| row.config)
}

/// A line as a JSON object; syntax errors give their position, never the text.
fn row_object(text: &[u8]) -> Result<Map<String, Value>, FieldError> {
    let text = std::str::from_utf8(text).map_err(|_| FieldError::new("not UTF-8 text"))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        FieldError::new(format!(
            "not valid JSON ({:?} error at column {})",
            e.classify(),
            e.column()
        ))
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(FieldError::new("not a JSON object")),
    }
}

/// A row's `id`: 1 to 256 characters, no control characters.
fn row_id(map: &Map<String, Value>) -> Result<String, FieldError> {
    match map.get("id") {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control) =>
        {
            Ok(s.clone())
        }
        Some(Value::String(_)) => Err(FieldError::new(
            "field \"id\" must be 1 to 256 characters without control characters",
        )),
        Some(_) => Err(FieldError::new("field \"id\" must be a string")),
        None => Err(FieldError::new("missing field \"id\"")),
    }
}

/// A row's fields merged over the batch's flags.
fn row_spec(f: &Fields<'_>, d: &Defaults) -> Result<CheckSpec, FieldError> {
    let mut a = d.template.clone();
    // First, as the row's errors have always been ordered.
    a.ca_file = f.string("ca_file")?.map(PathBuf::from);
    a.host = Some(
        f.string("host")?
            .ok_or_else(|| FieldError::new("missing field \"host\""))?,
    );
    f.merge_common(&mut a)?;
    // Paths and names only: the key file's content is read by ClientCert::load.
    a.client_cert = f
        .string("client_cert")?
        .map(PathBuf::from)
        .or(a.client_cert);
    a.client_key = f.string("client_key")?.map(PathBuf::from).or(a.client_key);
    if a.client_cert.is_some() != a.client_key.is_some() {
        return Err(FieldError::new(
            "\"client_cert\" and \"client_key\" go together",
        ));
    }
    if let Some(p) = f.secret("proxy")? {
        // A secret: the URL may carry the proxy's password.
        a.proxy = Some(p);
    }
    a.user = f.string("user")?;
    if a.from.is_some() && a.to.is_empty() {
        return Err(FieldError::new("\"from\" needs \"to\""));
    }
    if let Some(ip) = f.string("connect_to")? {
        a.connect_to = Some(
            ip.parse()
                .map_err(|_| FieldError::new("field \"connect_to\" must be an IP address"))?,
        );
    }
    if let Some(t) = f.number("timeout")? {
        a.timeout = t;
    }
    if let Some(b) = f.boolean("allow_plaintext_auth")? {
        a.allow_plaintext_auth = b;
    }
    a.oauth2_token_env = f.string("oauth2_token_env")?;
    a.password = row_password(f, &a, d)?;
    Ok(a)
}

/// Exactly one password source for a user; never the prompt or SMTPROBE_PASSWORD.
fn row_password(f: &Fields<'_>, a: &CheckSpec, d: &Defaults) -> Result<PasswordSource, FieldError> {
    let env = f.string("password_env")?;
    let file = f.string("password_file")?;
    let inline = f.secret("password")?;
    let sources = [
        env.is_some(),
        file.is_some(),
        inline.is_some(),
        a.oauth2_token_env.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if sources > 1 {
        return Err(FieldError::new(
            "give one of \"password_env\", \"password_file\", \"password\", \"oauth2_token_env\"",
        ));
    }
    if sources == 1 && a.user.is_none() {
        return Err(FieldError::new("a password needs \"user\""));
    }
    if sources == 0 && a.user.is_some() && a.auth != AuthArg::External {
        return Err(FieldError::new(
            "\"user\" needs \"password_env\", \"password_file\" or \"password\"",
        ));
    }
    if let Some(var) = env {
        let secret = std::env::var(&var).map_err(|_| {
            FieldError::new(format!(
                "environment variable {var} (password_env) is not set"
            ))
        })?;
        return Ok(PasswordSource::Given(Secret::new(secret)));
    }
    if let Some(secret) = inline {
        if let Some(why) = &d.inline_refused {
            return Err(FieldError::new(why.clone()));
        }
        return Ok(PasswordSource::Given(secret));
    }
    Ok(file.map_or(PasswordSource::Ask, |p| {
        PasswordSource::File(PathBuf::from(p))
    }))
}

fn error_json(e: &RowError) -> String {
    serde_json::json!({
        "id": e.id,
        "line": e.line,
        "outcome": "error",
        "error": e.message,
    })
    .to_string()
}

/// Counts for the summary; bounded (diagnosis codes are a fixed registry, five slowest).
struct Summary {
    started: Instant,
    passed: u64,
    failed: u64,
    bad_rows: u64,
    not_run: u64,
    internal: u64,
    codes: HashMap<&'static str, u64>,
    slowest: Vec<(f64, String, String)>,
}

impl Summary {
    fn new(started: Instant) -> Summary {
        Summary {
            started,
            passed: 0,
            failed: 0,
            bad_rows: 0,
            not_run: 0,
            internal: 0,
            codes: HashMap::new(),
            slowest: Vec::new(),
        }
    }

    fn all_passed(&self) -> bool {
        self.failed == 0 && self.bad_rows == 0 && self.not_run == 0 && self.internal == 0
    }

    /// Counts a finished row and returns its output line (none for a row not run).
    fn record(&mut self, done: &Done) -> Option<String> {
        match &done.result {
            RowResult::NotRun => {
                self.not_run += 1;
                None
            }
            RowResult::Invalid(message) => {
                self.bad_rows += 1;
                Some(error_json(&RowError {
                    line: done.line,
                    id: Some(done.id.clone()),
                    message: format!("line {}: {message}", done.line),
                }))
            }
            RowResult::Checked(report) => {
                if report.ok() {
                    self.passed += 1;
                } else {
                    self.failed += 1;
                }
                *self
                    .codes
                    .entry(report.diagnosis.code.as_str())
                    .or_default() += 1;
                self.slowest
                    .push((done.ms, done.host.clone(), done.id.clone()));
                self.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
                self.slowest.truncate(5);
                let mut v = report.to_json();
                if let Value::Object(m) = &mut v {
                    m.insert("id".into(), Value::String(done.id.clone()));
                    m.insert("line".into(), Value::from(done.line));
                }
                Some(v.to_string())
            }
        }
    }

    fn render(&self, interrupted: bool) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let checked = self.passed + self.failed;
        let _ = write!(
            s,
            "smtprobe batch: {} checked in {:.1} s: {} passed, {} failed; {} bad rows",
            checked,
            self.started.elapsed().as_secs_f64(),
            self.passed,
            self.failed,
            self.bad_rows
        );
        if self.not_run > 0 || interrupted {
            let _ = write!(s, "; interrupted, {} admitted rows not run", self.not_run);
        }
        if self.internal > 0 {
            let _ = write!(s, "; {} internal errors", self.internal);
        }
        s.push('\n');
        let mut codes: Vec<_> = self.codes.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if !codes.is_empty() {
            s.push_str("  diagnosis codes:\n");
            for (code, n) in codes {
                let _ = writeln!(s, "    {n:>7}  {code}");
            }
        }
        if !self.slowest.is_empty() {
            s.push_str("  slowest checks:\n");
            for (ms, host, id) in &self.slowest {
                let _ = writeln!(
                    s,
                    "    {ms:>9.1} ms  {host}  (id {})",
                    crate::protocol::escape_bytes(id.as_bytes())
                );
            }
        }
        s
    }
}

/// A one-line progress bar on stderr, only on a terminal; redrawn at most 10 times a
/// second.
struct Progress {
    on: bool,
    total: Option<u64>,
    last: Option<Instant>,
}

impl Progress {
    fn new(on: bool, total: Option<u64>) -> Progress {
        Progress {
            on,
            total,
            last: None,
        }
    }

    fn draw(&mut self, s: &Summary, running: usize, read: u64) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let done = s.passed + s.failed + s.bad_rows;
        let bar = match self.total.filter(|&t| t > 0) {
            Some(t) => {
                let frac = (read as f64 / t as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                format!(
                    "[{}{}] {:>3.0}% ",
                    "#".repeat(filled),
                    ".".repeat(30 - filled),
                    frac * 100.0
                )
            }
            None => String::new(),
        };
        eprint!(
            "\r\x1b[2K{bar}{done} done ({} failed, {} bad), {running} running",
            s.failed, s.bad_rows
        );
    }

    fn clear(&mut self) {
        if self.on && self.last.is_some() {
            eprint!("\r\x1b[2K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13's row fields: client certificate, EXTERNAL, quit_after, proxy.
    #[test]
    fn rows_take_client_certificates_quit_after_and_a_proxy() {
        let d = Defaults {
            template: CheckSpec::default(),
            roots: vec![],
            inline_refused: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let row = |json: String| parse_row(1, json.as_bytes(), &d);
        let ok = row(format!(
            r#"{{"id":"a","host":"h.test","auth":"external","client_cert":{:?},"client_key":{:?},"quit_after":"rcpt"}}"#,
            c.display().to_string(),
            k.display().to_string()
        ))
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert!(ok.config.client_cert.is_some());
        assert!(matches!(
            ok.config.auth.as_ref().map(|a| &a.credential),
            Some(crate::session::Credential::External)
        ));
        assert_eq!(ok.config.quit_after, Some(crate::stage::Stage::Rcpt));
        let proxied = row(
            r#"{"id":"b","host":"h.test","proxy":"socks5://u:pw-sentinel@127.0.0.1:1080"}"#.into(),
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            proxied.config.proxy.as_ref().map(|p| p.shown()),
            Some("socks5://127.0.0.1:1080".into())
        );
        for (bad, says) in [
            (
                r#"{"id":"c","host":"h.test","client_cert":"x.pem"}"#,
                "go together",
            ),
            (
                r#"{"id":"d","host":"h.test","quit_after":"data"}"#,
                "quit_after",
            ),
            (
                r#"{"id":"e","host":"h.test","proxy":"socks5://u:pw-sentinel@h"}"#,
                "port",
            ),
            (
                r#"{"id":"f","host":"h.test","auth":"scram-md5"}"#,
                "scram-sha-256",
            ),
        ] {
            let e = row(bad.into()).err().unwrap().message;
            assert!(e.contains(says) && !e.contains("pw-sentinel"), "{e}");
        }
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[tokio::test]
    async fn an_overlong_line_is_skipped_whole_and_the_next_one_is_read() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\r\nlast");
        let mut r = &input[..];
        let mut buf = Vec::new();
        let read = AtomicU64::new(0);
        assert_eq!(
            read_capped_line(&mut r, &mut buf, &read).await.unwrap(),
            Some(true)
        );
        assert_eq!(
            read_capped_line(&mut r, &mut buf, &read).await.unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"next");
        assert_eq!(
            read_capped_line(&mut r, &mut buf, &read).await.unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"last");
        assert_eq!(
            read_capped_line(&mut r, &mut buf, &read).await.unwrap(),
            None
        );
        assert_eq!(read.load(Ordering::Relaxed), input.len() as u64);
    }

    #[test]
    fn shard_auto_reads_the_job_engine() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("SMTPROBE_SHARD_COUNT", "5")]);
        assert_eq!(Shard::from_env(k8s), Ok(Shard { index: 2, count: 5 }));
        let gitlab = env(&[("CI_NODE_INDEX", "1"), ("CI_NODE_TOTAL", "3")]);
        assert_eq!(Shard::from_env(gitlab), Ok(Shard { index: 0, count: 3 }));
        let ours = env(&[
            ("SMTPROBE_SHARD_INDEX", "0"),
            ("SMTPROBE_SHARD_COUNT", "1"),
            ("JOB_COMPLETION_INDEX", "7"),
        ]);
        assert_eq!(Shard::from_env(ours), Ok(Shard { index: 0, count: 1 }));
        let no_count = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err();
        assert!(no_count.0.contains("SMTPROBE_SHARD_COUNT"), "{no_count}");
        let too_big = Shard::from_env(env(&[
            ("JOB_COMPLETION_INDEX", "4"),
            ("SMTPROBE_SHARD_COUNT", "4"),
        ]))
        .unwrap_err();
        assert!(too_big.0.contains("not below"), "{too_big}");
        let none = Shard::from_env(env(&[])).unwrap_err();
        assert!(none.0.contains("JOB_COMPLETION_INDEX"), "{none}");
        let junk = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "x")])).unwrap_err();
        assert!(junk.0.contains("not a whole number"), "{junk}");
    }

    #[test]
    fn shard_parses_k_of_n_from_zero() {
        assert_eq!("0/4".parse(), Ok(Shard { index: 0, count: 4 }));
        assert_eq!("3/4".parse(), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
