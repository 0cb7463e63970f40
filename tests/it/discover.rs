//! `smtprobe discover ADDRESS` / `smtprobe check ADDRESS` against real parts on loopback:
//! a real DNS server (dnsmasq, started here on a free port with test zones only), replay
//! SMTP servers on the candidate ports (reached through SRV ports or the `--port-map`
//! testing aid), and an HTTPS server with a test CA for the autoconfig file. Real DNS is
//! never contacted: every run passes `--dns-server`.
//!
//! Without dnsmasq these tests print "skipped" and pass; with `CI` set they fail.

use crate::common::smtprobe;
use smtprobe::replay::TestPki;
use smtprobe::replay::{ConnectionResult, ReplayOptions, ReplayServer};
use smtprobe::Fixture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A dnsmasq serving only the records given, authoritative for `.test` (unknown names
/// there get NXDOMAIN), never forwarding anywhere (`--no-resolv`).
pub(crate) struct Dnsmasq {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    pub(crate) fn start(test: &str, records: &[String]) -> Option<Dnsmasq> {
        let found = Command::new("dnsmasq")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: CI is set but dnsmasq is not installed (declared in .ci/apt-packages.txt)"
            );
            eprintln!("{test}: skipped (dnsmasq is not installed)");
            return None;
        }
        for _ in 0..5 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("dnsmasq")
                .args([
                    "--keep-in-foreground",
                    "--conf-file=/dev/null",
                    "--no-resolv",
                    "--no-hosts",
                    "--pid-file",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--local=/test/",
                ])
                .args(records)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start dnsmasq");
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken: try another
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Some(Dnsmasq { child, addr });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{test}: dnsmasq did not start");
    }
}

/// A replay server playing `fixture` for every connection, with the fixture's host set
/// to `host` (its certificate names it). Returns the address, the CA and the results.
async fn replay(
    fixture: &str,
    host: &str,
) -> (SocketAddr, String, Arc<Mutex<Vec<ConnectionResult>>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    // The login tests log in as me@acme.test.
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("you@gmail.com", "me@acme.test");
    let mut f = Fixture::parse(&text).unwrap();
    f.header.host = host.to_owned();
    let opts = ReplayOptions {
        read_timeout: Duration::from_secs(10),
        ..ReplayOptions::default()
    };
    let server = ReplayServer::bind(f, "127.0.0.1:0".parse().unwrap(), opts)
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let ca = server.ca_pem();
    let results = Arc::new(Mutex::new(Vec::new()));
    let sink = results.clone();
    tokio::spawn(server.run_forever(move |r| sink.lock().unwrap().push(r)));
    (addr, ca, results)
}

/// A loopback port where nothing listens (connect is refused).
pub(crate) fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listening socket whose accept queue is full: the kernel drops further SYNs, so a
/// connect gets no answer, like a firewall that drops (a "filtered" port).
struct Filtered {
    _listener: TcpListener,
    _held: Vec<TcpStream>,
    addr: SocketAddr,
}

async fn filtered(bind: SocketAddr) -> Filtered {
    let socket = if bind.is_ipv6() {
        TcpSocket::new_v6()
    } else {
        TcpSocket::new_v4()
    }
    .unwrap();
    socket.bind(bind).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    // Fill the queue until a connect hangs.
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the accept queue of {addr}: {e}"),
            Err(_) => {
                return Filtered {
                    _listener: listener,
                    _held: held,
                    addr,
                }
            }
        }
    }
    panic!("{addr}: a full accept queue did not make connects hang on this kernel");
}

fn ca_file(dir: &tempfile::TempDir, pems: &[&str]) -> PathBuf {
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pems.concat()).unwrap();
    path
}

fn base_args(cmd: &str, address: &str, dns: &Dnsmasq, ca: &Path) -> Vec<String> {
    [
        cmd,
        address,
        "--dns-server",
        &dns.addr.to_string(),
        "--ca-file",
        &ca.display().to_string(),
        "--timeout",
        "2",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn port_map(args: &mut Vec<String>, maps: &[(u16, u16)]) {
    for (from, to) in maps {
        args.push("--port-map".into());
        args.push(format!("{from}={to}"));
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    crate::common::json(out)
}

fn said(d: &serde_json::Value, source: &str) -> String {
    d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == source)
        .flat_map(|s| s["said"].as_array().unwrap().iter())
        .map(|l| l.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn row<'a>(d: &'a serde_json::Value, host: &str, port: u16) -> &'a serde_json::Value {
    d["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["candidate"]["host"] == host && r["candidate"]["port"] == port)
        .unwrap_or_else(|| panic!("no probe of {host}:{port} in {d:#}"))
}

fn best(d: &serde_json::Value) -> &serde_json::Value {
    let i = d["best"]
        .as_u64()
        .unwrap_or_else(|| panic!("no best in {d:#}")) as usize;
    &d["probes"][i]
}

#[tokio::test]
async fn workspace_domain_found_by_mx_and_probed_on_every_port() {
    let (a465, ca465, _) = replay("gmail-465-login-ok.fixture", "smtp.gmail.com").await;
    let (a587, ca587, _) = replay("gmail-587-plain-auth-ok.fixture", "smtp.gmail.com").await;
    let Some(dns) = Dnsmasq::start(
        "workspace_domain_found_by_mx",
        &[
            "--mx-host=acme.test,aspmx.l.google.com,1".into(),
            "--mx-host=acme.test,alt1.aspmx.l.google.com,5".into(),
            "--host-record=smtp.gmail.com,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&dir, &[&ca465, &ca587]);
    let mut a = base_args("discover", "me@acme.test", &dns, &ca);
    let closed = closed_port();
    port_map(
        &mut a,
        &[
            (465, a465.port()),
            (587, a587.port()),
            (25, closed),
            (2525, closed),
        ],
    );
    let out = smtprobe(a, vec![]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let d = json(&out);
    assert!(said(&d, "provider-table").contains("no entry for acme.test"));
    let mx = said(&d, "mx");
    assert!(mx.contains("aspmx.l.google.com (1)"), "{mx}");
    assert!(mx.contains("Google Workspace"), "{mx}");
    let r465 = row(&d, "smtp.gmail.com", 465);
    assert_eq!(r465["status"], "open", "{r465:#}");
    assert_eq!(r465["certificate_valid"], true);
    assert!(r465["auth"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "PLAIN"));
    assert_eq!(row(&d, "smtp.gmail.com", 587)["status"], "open");
    assert_eq!(row(&d, "smtp.gmail.com", 25)["status"], "refused");
    assert_eq!(row(&d, "smtp.gmail.com", 2525)["status"], "refused");
    // Google documents 587 first.
    assert_eq!(best(&d)["candidate"]["port"], 587);
    assert_eq!(d["username"], "me@acme.test");
}

#[tokio::test]
async fn srv_records_give_host_and_port() {
    let (a, ca, _) = replay("gmail-465-login-ok.fixture", "mail.srv.test").await;
    let Some(dns) = Dnsmasq::start(
        "srv_records_give_host_and_port",
        &[
            format!(
                "--srv-host=_submissions._tcp.srv.test,mail.srv.test,{},0,1",
                a.port()
            ),
            "--host-record=mail.srv.test,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cafile = ca_file(&dir, &[&ca]);
    let mut args = base_args("discover", "me@srv.test", &dns, &cafile);
    let closed = closed_port();
    port_map(
        &mut args,
        &[(465, closed), (587, closed), (25, closed), (2525, closed)],
    );
    let out = smtprobe(args, vec![]).await;
    let d = json(&out);
    let srv = said(&d, "srv");
    assert!(
        srv.contains(&format!(
            "_submissions._tcp.srv.test: mail.srv.test:{}",
            a.port()
        )),
        "{srv}"
    );
    assert!(srv.contains("_submission._tcp.srv.test: none"), "{srv}");
    let b = best(&d);
    assert_eq!(b["candidate"]["port"], a.port());
    assert_eq!(b["candidate"]["mode"], "implicit");
    assert_eq!(b["candidate"]["source"], "srv");
    assert_eq!(row(&d, "mail.srv.test", 587)["status"], "refused");
}

/// An HTTPS server for autoconfig files, with its own test CA; answers by Host header.
async fn https_server(names: &[&str]) -> (u16, String) {
    let pki = TestPki::generate(names).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16384 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let host = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or("")
                    .to_owned();
                let resp = respond(&host);
                let _ = tls.write_all(&resp).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, pki.ca_pem())
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

const AUTOCONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="auto.test">
    <domain>auto.test</domain>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

fn respond(host: &str) -> Vec<u8> {
    match host {
        "autoconfig.auto.test" => http(
            "200 OK",
            "Content-Type: text/xml\r\n",
            AUTOCONFIG.as_bytes(),
        ),
        "autoconfig.big.test" => http("200 OK", "", &vec![b' '; 200 * 1024]),
        "autoconfig.bad.test" => http(
            "200 OK",
            "",
            b"<clientConfig><outgoingServer type=\"smtp\"><hostname>x",
        ),
        "autoconfig.redir.test" => http(
            "302 Found",
            "Location: https://config.elsewhere.test/mail/config-v1.1.xml\r\n",
            b"",
        ),
        _ => http("404 Not Found", "", b"not here"),
    }
}

#[tokio::test]
async fn autoconfig_file_over_verified_https() {
    let (a, ca, _) = replay("gmail-465-login-ok.fixture", "smtp.auto.test").await;
    let (https_port, https_ca) = https_server(&["autoconfig.auto.test", "auto.test"]).await;
    let Some(dns) = Dnsmasq::start(
        "autoconfig_file_over_verified_https",
        &[
            "--host-record=auto.test,127.0.0.1".into(),
            "--host-record=autoconfig.auto.test,127.0.0.1".into(),
            "--host-record=smtp.auto.test,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let closed = closed_port();
    let maps = [(465, a.port()), (587, closed), (25, closed), (2525, closed)];

    // Without the test CA the certificate does not verify: the file is not used.
    let only_smtp = ca_file(&dir, &[&ca]);
    let mut args = base_args("discover", "me@auto.test", &dns, &only_smtp);
    port_map(&mut args, &maps);
    args.extend(["--https-port".into(), https_port.to_string()]);
    let d = json(&smtprobe(args, vec![]).await);
    let auto = said(&d, "autoconfig");
    assert!(auto.contains("the certificate is verified"), "{auto}");
    // The guess smtp.auto.test still finds the server, but not from the file.
    assert_eq!(best(&d)["candidate"]["source"], "guess", "{d:#}");

    let both = dir.path().join("both.pem");
    std::fs::write(&both, [ca.as_str(), https_ca.as_str()].concat()).unwrap();
    let mut args = base_args("discover", "me@auto.test", &dns, &both);
    port_map(&mut args, &maps);
    args.extend(["--https-port".into(), https_port.to_string()]);
    let d = json(&smtprobe(args, vec![]).await);
    let auto = said(&d, "autoconfig");
    assert!(auto.contains("smtp.auto.test:465"), "{auto}");
    let b = best(&d);
    assert_eq!(b["candidate"]["host"], "smtp.auto.test");
    assert_eq!(b["candidate"]["source"], "autoconfig");
    assert_eq!(d["username"], "me@auto.test");
}

#[tokio::test]
async fn bad_autoconfig_files_get_a_clear_line_each() {
    let (https_port, https_ca) = https_server(&[
        "autoconfig.big.test",
        "autoconfig.bad.test",
        "autoconfig.redir.test",
        "big.test",
        "bad.test",
        "redir.test",
    ])
    .await;
    let Some(dns) = Dnsmasq::start(
        "bad_autoconfig_files",
        &["big", "bad", "redir"]
            .iter()
            .flat_map(|d| {
                [
                    format!("--host-record={d}.test,127.0.0.1"),
                    format!("--host-record=autoconfig.{d}.test,127.0.0.1"),
                ]
            })
            .chain(["--host-record=config.elsewhere.test,127.0.0.1".to_string()])
            .collect::<Vec<_>>(),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&dir, &[&https_ca]);
    let closed = closed_port();
    for (domain, says) in [
        ("big.test", "larger than 64 kB"),
        ("bad.test", "not well-formed XML"),
        ("redir.test", "outside redir.test"),
    ] {
        let mut args = base_args("discover", &format!("me@{domain}"), &dns, &ca);
        port_map(
            &mut args,
            &[(465, closed), (587, closed), (25, closed), (2525, closed)],
        );
        args.extend(["--https-port".into(), https_port.to_string()]);
        let out = smtprobe(args, vec![]).await;
        let d = json(&out);
        let auto = said(&d, "autoconfig");
        assert!(auto.contains(says), "{domain}: {auto}");
        // The second location is asked as well and answers 404.
        assert!(auto.contains("no file (HTTP 404)"), "{domain}: {auto}");
    }
}

#[tokio::test]
async fn a_domain_with_nothing_says_what_was_tried() {
    let Some(dns) = Dnsmasq::start(
        "a_domain_with_nothing",
        &["--host-record=nothing.test,127.0.0.1".into()],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&dir, &[]);
    let mut args = base_args("discover", "me@nothing.test", &dns, &ca);
    args.retain(|a| a != "--json");
    // An empty CA file is refused: use none.
    let i = args.iter().position(|a| a == "--ca-file").unwrap();
    args.drain(i..i + 2);
    args.extend(["--https-port".into(), closed_port().to_string()]);
    let out = smtprobe(args, vec![]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("Could not find working SMTP settings for nothing.test"),
        "{text}"
    );
    for tried in [
        "provider table (no entry for nothing.test)",
        "nothing.test has no MX records",
        "_submissions._tcp.nothing.test: none",
        "autoconfig.nothing.test: no such domain",
        "smtp.nothing.test: no such domain",
        "mail.nothing.test: no such domain",
    ] {
        assert!(text.contains(tried), "missing {tried:?} in\n{text}");
    }
    // A domain that does not exist at all stops at MX with that reason.
    let out = smtprobe(
        vec![
            "discover".into(),
            "me@missing.test".into(),
            "--dns-server".into(),
            dns.addr.to_string(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("missing.test does not exist (NXDOMAIN)"),
        "{text}"
    );
}

#[tokio::test]
async fn null_mx_and_cname_mx_are_named() {
    let Some(dns) = Dnsmasq::start(
        "null_mx_and_cname_mx",
        &[
            // RFC 7505: MX 0 "." (type 15, preference 0, root name).
            "--dns-rr=null.test,15,000000".into(),
            "--mx-host=cname.test,mxalias.cname.test,10".into(),
            "--cname=mxalias.cname.test,real.cname.test".into(),
            "--host-record=real.cname.test,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let run = |addr: &str| {
        vec![
            "discover".to_string(),
            addr.to_string(),
            "--dns-server".into(),
            dns.addr.to_string(),
            "--json".into(),
            "--https-port".into(),
            closed_port().to_string(),
        ]
    };
    let d = json(&smtprobe(run("me@null.test"), vec![]).await);
    assert!(said(&d, "mx").contains("null MX (RFC 7505): this domain accepts no mail"));
    assert!(d["notes"][0].as_str().unwrap().contains("accepts no mail"));
    let d = json(&smtprobe(run("me@cname.test"), vec![]).await);
    let mx = said(&d, "mx");
    assert!(
        mx.contains("mxalias.cname.test is an alias (CNAME) of real.cname.test"),
        "{mx}"
    );
}

#[tokio::test]
async fn filtered_587_with_working_465_gets_the_hosting_block_explanation() {
    let (a465, ca465, _) = replay("gmail-465-login-ok.fixture", "smtp.gmail.com").await;
    let drop587 = filtered("127.0.0.1:0".parse().unwrap()).await;
    let Some(dns) = Dnsmasq::start(
        "filtered_587",
        &[
            "--mx-host=blocked.test,smtp.google.com,1".into(),
            "--host-record=smtp.gmail.com,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&dir, &[&ca465]);
    let mut args = base_args("discover", "me@blocked.test", &dns, &ca);
    let closed = closed_port();
    port_map(
        &mut args,
        &[
            (465, a465.port()),
            (587, drop587.addr.port()),
            (25, closed),
            (2525, closed),
        ],
    );
    let d = json(&smtprobe(args, vec![]).await);
    assert_eq!(row(&d, "smtp.gmail.com", 587)["status"], "filtered");
    assert_eq!(best(&d)["candidate"]["port"], 465);
    let notes = d["notes"].to_string();
    assert!(
        notes.contains("port 587 gets no answer while port 465"),
        "{notes}"
    );
    assert!(notes.contains("hosting providers block"), "{notes}");
}

#[tokio::test]
async fn check_address_logs_in_once_on_the_best_candidate() {
    let (a465, ca465, r465) = replay("gmail-465-login-ok.fixture", "smtp.gmail.com").await;
    let (a587, ca587, r587) = replay("gmail-587-plain-auth-ok.fixture", "smtp.gmail.com").await;
    let Some(dns) = Dnsmasq::start(
        "check_address_logs_in_once",
        &[
            "--mx-host=acme.test,smtp.google.com,1".into(),
            "--host-record=smtp.gmail.com,127.0.0.1".into(),
        ],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = ca_file(&dir, &[&ca465, &ca587]);
    let mut args = base_args("check", "me@acme.test", &dns, &ca);
    let closed = closed_port();
    port_map(
        &mut args,
        &[
            (465, a465.port()),
            (587, a587.port()),
            (25, closed),
            (2525, closed),
        ],
    );
    let out = smtprobe(args, vec![("SMTPROBE_PASSWORD", "abcdefghijklmnop".into())]).await;
    let j = json(&out);
    assert_eq!(out.status.code(), Some(0), "{:#}", j["check"]["transcript"]);
    assert_eq!(j["check"]["outcome"], "ok", "{j:#}");
    assert_eq!(j["check"]["settings"]["username"], "me@acme.test");
    assert_eq!(j["check"]["settings"]["security"], "starttls");
    assert!(!out.stdout.windows(16).any(|w| w == b"abcdefghijklmnop"));
    // Give the servers a moment to record the last connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all: Vec<ConnectionResult> = r465
        .lock()
        .unwrap()
        .iter()
        .chain(r587.lock().unwrap().iter())
        .cloned()
        .collect();
    // The credential-free probes stop before AUTH (QUIT instead); exactly one
    // connection logged in.
    assert_eq!(all.iter().filter(|r| r.followed).count(), 1, "{all:#?}");
    assert!(all.len() >= 3, "{all:#?}");
    assert!(
        all.iter()
            .flat_map(|r| &r.deviations)
            .all(|d| !d.got.to_ascii_uppercase().contains("AUTH")),
        "{all:#?}"
    );
}

#[tokio::test]
async fn ipv6_black_hole_costs_one_attempt_delay_and_is_reported() {
    let (a, ca, _) = replay("gmail-465-login-ok.fixture", "dual.test").await;
    // Same port on ::1, where SYNs are dropped.
    let hole = match std::net::TcpListener::bind(("::1", 0)) {
        Ok(probe) => {
            drop(probe);
            filtered(format!("[::1]:{}", a.port()).parse().unwrap()).await
        }
        Err(e) => {
            eprintln!("ipv6_black_hole: skipped (no ::1 on this machine: {e})");
            return;
        }
    };
    let Some(dns) = Dnsmasq::start(
        "ipv6_black_hole",
        &["--host-record=dual.test,127.0.0.1,::1".into()],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cafile = ca_file(&dir, &[&ca]);
    let out = smtprobe(
        vec![
            "check".into(),
            "dual.test".into(),
            "--port".into(),
            a.port().to_string(),
            "--tls".into(),
            "implicit".into(),
            "--dns-server".into(),
            dns.addr.to_string(),
            "--ca-file".into(),
            cafile.display().to_string(),
            "--json".into(),
        ],
        vec![],
    )
    .await;
    let j = json(&out);
    assert_eq!(j["outcome"], "ok", "{j:#}");
    let attempts = j["connect_attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    assert_eq!(attempts[0]["addr"], hole.addr.to_string());
    assert!(
        attempts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("abandoned when 127.0.0.1"),
        "{attempts:#?}"
    );
    assert_eq!(attempts[1]["addr"], a.to_string());
    assert!(attempts[1]["error"].is_null());
}

#[tokio::test]
async fn starttls_on_an_implicit_port_is_diagnosed_after_the_greeting_grace() {
    let (a, ca, _) = replay("gmail-465-login-ok.fixture", "smtp.gmail.com").await;
    let dir = tempfile::tempdir().unwrap();
    let cafile = ca_file(&dir, &[&ca]);
    let base = |tls: &str| {
        vec![
            "check".to_string(),
            "smtp.gmail.com".into(),
            "--connect-to".into(),
            "127.0.0.1".into(),
            "--port".into(),
            a.port().to_string(),
            "--tls".into(),
            tls.into(),
            "--ca-file".into(),
            cafile.display().to_string(),
            // The verdict must not wait for this.
            "--timeout".into(),
            "60".into(),
            "--json".into(),
        ]
    };
    let j = json(&smtprobe(base("starttls"), vec![]).await);
    assert_eq!(
        j["diagnosis"]["code"], "tls.starttls-on-implicit-port",
        "{j:#}"
    );
    let transcript = j["transcript"].to_string();
    assert!(transcript.contains("no greeting after 1s"), "{transcript}");
    // --tls auto on an implicit port other than 465 switches just as soon.
    let j = json(&smtprobe(base("auto"), vec![]).await);
    assert_eq!(j["outcome"], "ok", "{j:#}");
    assert_eq!(j["settings"]["security"], "implicit", "{j:#}");
    assert!(j["notes"][0]
        .as_str()
        .unwrap()
        .contains("expects TLS from the first byte"));
}

#[tokio::test]
async fn address_input_errors_are_named() {
    for (addr, says) in [
        ("me@", "no domain"),
        ("me", "no @"),
        ("me@acme.test\r\nRSET", "line break"),
    ] {
        let out = smtprobe(vec!["discover".into(), addr.into()], vec![]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr:?}: {err}");
        assert!(err.contains(says), "{addr:?}: {err}");
    }
}

#[tokio::test]
async fn idn_domain_is_shown_in_both_forms() {
    let Some(dns) = Dnsmasq::start("idn_domain", &[]) else {
        return;
    };
    let out = smtprobe(
        vec![
            "discover".into(),
            "jörg@bücher.test".into(),
            "--dns-server".into(),
            dns.addr.to_string(),
            "--https-port".into(),
            closed_port().to_string(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bücher.test (IDNA: xn--bcher-kva.test)"),
        "{text}"
    );
    assert!(text.contains("xn--bcher-kva.test does not exist"), "{text}");
}

#[tokio::test]
async fn a_slow_genuine_greeting_still_wins_over_the_tls_probe() {
    use crate::common::fixture_server::FixtureServer;
    use crate::common::{args, json as report_json};
    // A server that greets after 1.5 s (past the 1 s grace), on every connection: the
    // diagnose-only second connection gets clear text, never a handshake.
    let main = "
        ~ 1500ms
        S: 220 mx ESMTP slow
        C: EHLO {any}
        S: 250-mx
        S: 250-STARTTLS
        S: 250 SIZE 1000
        C: STARTTLS
        S: 220 go
        * TLS
        C: EHLO {any}
        S: 250-mx
        S: 250 AUTH PLAIN
        C: QUIT
        S: 221 bye";
    let probe = "
        ~ 1500ms
        S: 220 mx ESMTP slow";
    let server = FixtureServer::start(&[main, probe]).await;
    let out = smtprobe(
        args(&server, &server.ca, &["--tls", "starttls", "--json"]),
        vec![],
    )
    .await;
    let j = report_json(&out);
    assert_eq!(j["outcome"], "ok", "{j:#}");
    let transcript = j["transcript"].to_string();
    assert!(transcript.contains("no greeting after 1s"), "{transcript}");
    assert!(transcript.contains("220 mx ESMTP slow"), "{transcript}");
}
