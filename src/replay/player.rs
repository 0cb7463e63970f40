//! The I/O around [`Server`]: one TCP connection, TLS when it asks, deadlines on every
//! wait. All decisions are the state machine's; this only moves bytes.

use super::server::{Action, Server};
use super::{clean_io_error, linger_with, Conn, ConnectionResult, ReplayOptions, Scenarios, Tls};
use crate::certs::ServerCert;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Plays one connection as a server and returns its verdict.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    scenarios: &std::sync::Arc<Scenarios>,
    tls: &Tls,
    opts: &ReplayOptions,
) -> ConnectionResult {
    // Replies are small writes that follow each other: without TCP_NODELAY, Nagle holds
    // the second until the client's delayed ACK (~40 ms).
    let _ = stream.set_nodelay(true);
    let mut m = Server::new(scenarios.first(), scenarios.catalog());
    if opts.certificate != ServerCert::Valid {
        m = m.with_certificate(opts.certificate);
    }
    let mut conn = Conn::Plain(stream);
    let mut out: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 8192];
    'conn: loop {
        while let Some(a) = m.poll() {
            match a {
                Action::Write(w) => out.extend_from_slice(&w),
                Action::Trickle(w, gap) => {
                    if flush(&mut conn, &mut out, opts).await.is_err()
                        || super::trickle(&mut conn, &w, gap, opts.read_timeout)
                            .await
                            .is_err()
                    {
                        break 'conn;
                    }
                }
                Action::Pause(d) => {
                    if flush(&mut conn, &mut out, opts).await.is_err() {
                        break 'conn;
                    }
                    tokio::time::sleep(d).await;
                }
                Action::StartTls(which) => {
                    if flush(&mut conn, &mut out, opts).await.is_err() {
                        break 'conn;
                    }
                    m.take_early_bytes();
                    let Conn::Plain(tcp) = conn else {
                        break 'conn;
                    };
                    let acceptor = tls.acceptor(which);
                    match timeout(opts.read_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => {
                            conn = Conn::Tls(Box::new(s));
                            m.tls_started();
                        }
                        Ok(Err(e)) => {
                            m.tls_failed(&clean_io_error(&e));
                            log(&mut m);
                            break 'conn;
                        }
                        Err(_) => {
                            m.tls_failed("no TLS handshake before the deadline");
                            log(&mut m);
                            break 'conn;
                        }
                    }
                }
                Action::Close => {
                    let _ = flush(&mut conn, &mut out, opts).await;
                    log(&mut m);
                    linger_with(&mut conn, |bytes| m.push(bytes)).await;
                    break 'conn;
                }
                Action::Silence => {
                    let _ = flush(&mut conn, &mut out, opts).await;
                    super::silence(&mut conn, opts.read_timeout).await;
                    break 'conn;
                }
            }
        }
        log(&mut m);
        if flush(&mut conn, &mut out, opts).await.is_err() {
            break;
        }
        match timeout(opts.read_timeout, conn.io().read(&mut buf)).await {
            Err(_) => m.timed_out(),
            Ok(Ok(0)) | Ok(Err(_)) => {
                m.closed_by_client();
                break;
            }
            Ok(Ok(n)) => m.push(&buf[..n]),
        }
    }
    log(&mut m);
    let verdict = m.verdict();
    let passed = verdict.passed(opts.fail_on_findings);
    let result = ConnectionResult {
        peer: Some(peer),
        followed: passed,
        deviations: Vec::new(),
        steps_played: 0,
        steps_total: 0,
        scenario: verdict.scenario,
        expect: verdict.expect,
        result_delivered: verdict.result_delivered,
        findings: verdict.findings,
        passed,
        strict: false,
    };
    tracing::info!(target: "smtprobe::replay", "{result}");
    result
}

/// The machine's log lines (already redacted) go to tracing.
fn log(m: &mut Server) {
    for l in m.take_log() {
        tracing::debug!(target: "smtprobe::replay", "{l}");
    }
}

async fn flush(conn: &mut Conn, out: &mut Vec<u8>, opts: &ReplayOptions) -> Result<(), ()> {
    if out.is_empty() {
        return Ok(());
    }
    if !opts.delay.is_zero() {
        tokio::time::sleep(opts.delay).await;
    }
    let io = conn.io();
    let r = timeout(opts.read_timeout, async {
        io.write_all(out).await?;
        io.flush().await
    })
    .await;
    out.clear();
    match r {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
