//! `smtprobe batch` end to end: the real binary against servers on 127.0.0.1 — the
//! replay server playing a bundled fixture (STARTTLS, generated certificate), and a
//! small counting server that records how many connections are open at once.

use crate::common::secrets::{assert_no_secret, needles, Needle};
use crate::common::smtprobe;
use smtprobe::replay::{read_fixture_file, ReplayOptions, ReplayServer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const PW: &str = "pw-never-shown-7f3a";
const INLINE_PW: &str = "inline-never-shown-91c2";

/// A plain-text SMTP server that counts open sessions. A session counts from accept
/// until the server has read QUIT (it is decremented *before* the 221 goes out), so a
/// client can only start its next check after the count went down: the maximum it
/// records is exact, never inflated by a closing connection.
struct Counting {
    addr: SocketAddr,
    max: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

async fn counting_server(reply_delay: Duration) -> Counting {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let (n, m, t) = (now.clone(), max.clone(), total.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let open = n.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(open, Ordering::SeqCst);
            t.fetch_add(1, Ordering::SeqCst);
            let n = n.clone();
            tokio::spawn(async move {
                let mut counted = true;
                let (r, mut w) = stream.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 counting.test ESMTP\r\n").await;
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
                {
                    let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-counting.test\r\n250 AUTH PLAIN\r\n",
                        "AUTH" => b"235 2.7.0 Accepted\r\n",
                        "QUIT" => {
                            n.fetch_sub(1, Ordering::SeqCst);
                            counted = false;
                            let _ = w.write_all(b"221 2.0.0 Bye\r\n").await;
                            break;
                        }
                        _ => b"500 5.5.2 What\r\n",
                    };
                    tokio::time::sleep(reply_delay).await;
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
                if counted {
                    n.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    Counting { addr, max, total }
}

/// A replay server playing `gmail-587-plain-auth-ok` concurrently; returns its address
/// and a CA file trusting it.
async fn replay_server(delay: Duration, dir: &Path, name: &str) -> (SocketAddr, PathBuf) {
    let fixture = read_fixture_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gmail-587-plain-auth-ok.fixture"),
    )
    .unwrap();
    let opts = ReplayOptions {
        delay,
        read_timeout: Duration::from_secs(10),
        ..ReplayOptions::default()
    };
    let server = ReplayServer::bind(fixture, "127.0.0.1:0".parse().unwrap(), opts)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, server.ca_pem()).unwrap();
    tokio::spawn(server.run_forever(|_| {}));
    (addr, ca)
}

/// Writes the profiles file with the given mode.
fn profiles(dir: &Path, lines: &[String], mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("profiles.jsonl");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A row for the counting server (plain text, AUTH PLAIN allowed by the batch flags).
fn plain_row(id: &str, host: &str, port: u16) -> String {
    format!(
        r#"{{"id":"{id}","host":"{host}","port":{port},"tls":"none","user":"u@example.test","password_env":"BATCH_PW"}}"#
    )
}

async fn batch(path: &Path, extra: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = vec![
        "batch".into(),
        path.display().to_string(),
        "--timeout".into(),
        "10".into(),
        "--allow-plaintext-auth".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    smtprobe(args, vec![("BATCH_PW", PW.to_string())]).await
}

fn results(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Both passwords in every form they travel in (`common::secrets`), for each user the
/// rows log in as, and the value a bad row put in the wrong field.
fn no_secret(out: &std::process::Output) {
    let mut n: Vec<Needle> = ["u@example.test", "you@gmail.com"]
        .iter()
        .flat_map(|user| [needles(user, PW, None), needles(user, INLINE_PW, None)])
        .flatten()
        .collect();
    n.push((
        "a value in the wrong field".into(),
        "SECRET-IN-WRONG-FIELD".into(),
    ));
    assert_no_secret(out, &n);
}

#[tokio::test]
async fn concurrency_limit_is_respected_and_every_row_reports() {
    let server = counting_server(Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<String> = (0..12)
        .map(|i| plain_row(&format!("r{i}"), "localhost", server.addr.port()))
        .collect();
    let path = profiles(dir.path(), &rows, 0o600);
    let out = batch(&path, &["--concurrency", "3", "--per-host", "100"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let max = server.max.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} sessions at once with --concurrency 3");
    assert!(max >= 2, "checks did not overlap at all (max {max})");
    assert_eq!(server.total.load(Ordering::SeqCst), 12);
    let r = results(&out);
    assert_eq!(r.len(), 12);
    assert!(r.iter().all(|j| j["outcome"] == "ok"), "{r:?}");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("12 passed"), "{summary}");
    assert!(summary.contains("ok"), "{summary}");
    no_secret(&out);
}

#[tokio::test]
async fn per_host_limit_is_respected_for_each_host_name() {
    let a = counting_server(Duration::from_millis(60)).await;
    let b = counting_server(Duration::from_millis(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for i in 0..8 {
        rows.push(plain_row(&format!("a{i}"), "localhost", a.addr.port()));
        // Another spelling is another host name: its own limit.
        rows.push(plain_row(&format!("b{i}"), "127.0.0.1", b.addr.port()));
    }
    let path = profiles(dir.path(), &rows, 0o600);
    let out = batch(&path, &["--concurrency", "10", "--per-host", "2"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, s) in [("localhost", &a), ("127.0.0.1", &b)] {
        let max = s.max.load(Ordering::SeqCst);
        assert!(
            max <= 2,
            "{max} sessions at once to {name} with --per-host 2"
        );
        assert_eq!(s.total.load(Ordering::SeqCst), 8);
    }
    assert_eq!(results(&out).len(), 16);
}

#[tokio::test]
async fn shards_partition_the_rows_completely_and_disjointly() {
    // A port nobody listens on: every check ends quickly with connect.refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rows: Vec<String> = (0..30)
        .map(|i| format!(r#"{{"id":"row-{i}","host":"127.0.0.1","port":{closed}}}"#))
        .collect();
    rows.push("not json".into());
    rows.push(r#"{"host":"127.0.0.1"}"#.into());
    rows.push(r#"{"id":"no-host"}"#.into());
    let path = profiles(dir.path(), &rows, 0o600);
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut non_empty = 0;
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = batch(&path, &["--shard", &shard]).await;
        assert_eq!(out.status.code(), Some(8), "shard {shard}");
        let r = results(&out);
        if !r.is_empty() {
            non_empty += 1;
        }
        for j in r {
            *seen.entry(j["line"].as_u64().unwrap()).or_default() += 1;
        }
    }
    let want: BTreeMap<u64, usize> = (1..=rows.len() as u64).map(|l| (l, 1)).collect();
    assert_eq!(seen, want, "every line exactly once across the shards");
    assert!(
        non_empty >= 2,
        "the hash spread 30 ids over at least 2 shards"
    );

    for bad in ["3/3", "1/0", "a/b", "2"] {
        let out = batch(&path, &["--shard", bad]).await;
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
    }
}

#[tokio::test]
async fn inline_password_needs_a_file_only_its_owner_can_read() {
    let server = counting_server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let row = format!(
        r#"{{"id":"inline","host":"localhost","port":{},"tls":"none","user":"u@example.test","password":"{INLINE_PW}"}}"#,
        server.addr.port()
    );
    let path = profiles(dir.path(), std::slice::from_ref(&row), 0o644);
    let out = batch(&path, &[]).await;
    assert_eq!(out.status.code(), Some(8));
    let r = results(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["outcome"], "error");
    assert_eq!(r[0]["id"], "inline");
    let err = r[0]["error"].as_str().unwrap();
    assert!(
        err.starts_with("line 1:") && err.contains("chmod 600"),
        "{err}"
    );
    assert_eq!(server.total.load(Ordering::SeqCst), 0, "nothing was sent");
    no_secret(&out);

    for mode in [0o600, 0o400] {
        let path = profiles(dir.path(), std::slice::from_ref(&row), mode);
        let out = batch(&path, &[]).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "mode {mode:o}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(results(&out)[0]["outcome"], "ok");
        no_secret(&out);
    }
}

#[tokio::test]
async fn bad_rows_are_reported_by_line_and_never_stop_the_batch() {
    let server = counting_server(Duration::ZERO).await;
    let port = server.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        plain_row("first", "localhost", port),
        r#"{"id":"broken", "host": "#.into(),
        r#"{"host":"localhost"}"#.into(),
        r#"{"id":"no-host"}"#.into(),
        r#"{"id":"crlf","host":"localhost\r\nRCPT TO:<x@y>"}"#.into(),
        String::new(),
        "[1,2,3]".into(),
        r#"{"id":"typo","host":"localhost","passwd":"x"}"#.into(),
        r#"{"id":"wrong-type","host":"localhost","port":"SECRET-IN-WRONG-FIELD"}"#.into(),
        r#"{"id":"no-password","host":"localhost","user":"u@example.test"}"#.into(),
        r#"{"id":"crlf-user","host":"localhost","user":"u\n@x","password_env":"BATCH_PW"}"#.into(),
        plain_row("last", "localhost", port),
    ];
    let path = profiles(dir.path(), &rows, 0o600);
    let out = batch(&path, &[]).await;
    assert_eq!(out.status.code(), Some(8), "some rows were bad");
    let r = results(&out);
    let by_line: BTreeMap<u64, &serde_json::Value> =
        r.iter().map(|j| (j["line"].as_u64().unwrap(), j)).collect();
    // Line 6 is blank: skipped, no result.
    assert_eq!(
        by_line.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    );
    assert_eq!(by_line[&1]["outcome"], "ok");
    assert_eq!(by_line[&12]["outcome"], "ok");
    let expect = [
        (2, "not valid JSON"),
        (3, "missing field \"id\""),
        (4, "missing field \"host\""),
        (5, "CR or LF"),
        (7, "not a JSON object"),
        (8, "unknown field \"passwd\""),
        (9, "\"port\" must be a number"),
        (10, "needs \"password_env\""),
        (11, "CR or LF"),
    ];
    for (line, needle) in expect {
        let j = by_line[&line];
        assert_eq!(j["outcome"], "error", "line {line}: {j}");
        let err = j["error"].as_str().unwrap();
        assert!(
            err.starts_with(&format!("line {line}: ")) && err.contains(needle),
            "line {line}: {err}"
        );
    }
    assert_eq!(by_line[&5]["id"], "crlf");
    assert_eq!(
        server.total.load(Ordering::SeqCst),
        2,
        "only the good rows ran"
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("9 bad rows"), "{summary}");
    no_secret(&out);
}

#[tokio::test]
async fn results_stream_in_order_of_completion_over_starttls() {
    let dir = tempfile::tempdir().unwrap();
    let (slow, slow_ca) = replay_server(Duration::from_millis(300), dir.path(), "slow").await;
    let (fast, fast_ca) = replay_server(Duration::ZERO, dir.path(), "fast").await;
    let row = |id: &str, port: u16, ca: &Path| {
        format!(
            r#"{{"id":"{id}","host":"localhost","port":{port},"tls":"starttls","user":"you@gmail.com","password_env":"BATCH_PW","ca_file":"{}"}}"#,
            ca.display()
        )
    };
    let rows = vec![
        row("slow", slow.port(), &slow_ca),
        row("fast", fast.port(), &fast_ca),
    ];
    let path = profiles(dir.path(), &rows, 0o600);
    let out = batch(&path, &["--concurrency", "2"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = results(&out);
    let ids: Vec<&str> = r.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["fast", "slow"],
        "printed as they finish, not in file order"
    );
    for j in &r {
        assert_eq!(j["outcome"], "ok");
        assert_eq!(j["tls"]["version"], "TLSv1.3");
        assert_eq!(j["settings"]["mechanism"], "PLAIN");
    }
    assert_eq!(r[1]["line"], 1);
    no_secret(&out);
}
