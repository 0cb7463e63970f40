//! Every bundled scenario replayed against the real probe, in-process, on 127.0.0.1:
//! the probe must reach the fixture's expected stage and code, and (for the fixture
//! scenarios) follow the fixture to its end. Also `--record` round trips and `explain`.

use smtprobe::app::demo;

#[test]
fn bundled_list_matches_the_fixtures_folder() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.strip_suffix(".fixture").map(str::to_owned)
            })
            .collect();
    on_disk.sort();
    let bundled: Vec<String> = demo::BUNDLED.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(bundled, on_disk, "add new fixtures to demo::BUNDLED");
    assert!(bundled.len() >= 20);
}

#[tokio::test]
async fn every_scenario_reaches_its_expected_stage_and_code() {
    let scenarios = demo::scenarios().unwrap();
    assert!(scenarios.len() >= 25);
    for s in &scenarios {
        let o = demo::run(s).await.unwrap();
        assert_eq!(
            (o.report.failed_stage, o.report.diagnosis.code.as_str()),
            (s.expect.0, s.expect.1.as_str()),
            "{}: {:?}",
            s.name,
            o.report.failure
        );
        let fixture_scenario = demo::BUNDLED.iter().any(|(n, _)| *n == s.name);
        if fixture_scenario {
            let conn = o
                .server
                .first()
                .unwrap_or_else(|| panic!("{}: no connection", s.name));
            assert!(
                conn.followed,
                "{}: client deviated: {:?}",
                s.name, conn.deviations
            );
        }
        // Demo credentials never leak into any output.
        let json = serde_json::to_string(&o.report.to_json()).unwrap();
        assert!(!json.contains("demo-app-password") && !json.contains("ZGVtby1hcHAtcGFzc3dvcmQ"));
    }
}

#[tokio::test]
async fn recorded_session_replays_to_the_same_verdict_and_transcript() {
    let scenarios = demo::scenarios().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "gmail-587-plain-send-ok",
        "gmail-587-bad-credentials",
        "gmail-465-login-ok",
    ] {
        let s = scenarios.iter().find(|s| s.name == name).unwrap();
        let first = demo::run(s).await.unwrap();
        let path = dir.path().join(format!("{name}.fixture"));
        smtprobe::app::cli::record(&first.report, &path).unwrap();
        // 0600 and never overwritten.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(smtprobe::app::cli::record(&first.report, &path).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("demo-app-password") && !text.contains("ZGVtby1hcHAtcGFzc3dvcmQ"));
        let recorded = smtprobe::Fixture::parse(&text).unwrap();
        let mut again = s.clone();
        again.fixture = recorded;
        let second = demo::run(&again).await.unwrap();
        assert_eq!(
            second.report.diagnosis.code, first.report.diagnosis.code,
            "{name}"
        );
        assert!(
            second.server[0].followed,
            "{name}: {:?}",
            second.server[0].deviations
        );
        let lines = |r: &smtprobe::Report| -> Vec<String> {
            r.transcript
                .entries()
                .iter()
                .filter(|e| !e.dir.is_event())
                .map(|e| e.text.clone())
                .collect()
        };
        assert_eq!(lines(&second.report), lines(&first.report), "{name}");
    }
}

#[tokio::test]
async fn explain_codes_reply_codes_and_enhanced_codes() {
    for (q, needle) in [
        ("auth.app-password-required", "app password"),
        ("535", "535"),
        ("5.7.8", "5.7.8"),
    ] {
        let out = crate::common::smtprobe(vec!["explain".into(), q.into()], vec![]).await;
        assert_eq!(out.status.code(), Some(0), "{q}");
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(text.contains(needle), "{q}: {text}");
    }
    let out =
        crate::common::smtprobe(vec!["explain".into(), "auth.bad-credential".into()], vec![]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.bad-credentials"));
}

#[tokio::test]
async fn annotate_explains_prompts_capabilities_and_the_tls_boundary() {
    let out = crate::common::smtprobe(
        vec![
            "demo".into(),
            "gmail-587-plain-auth-ok".into(),
            "--annotate".into(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("Messages up to 35 MB"), "{text}");
    assert!(text.contains("RFC 2920"), "PIPELINING explained: {text}");
    assert!(
        text.contains("RFC 3207"),
        "the STARTTLS boundary is explained: {text}"
    );
    let out = crate::common::smtprobe(
        vec![
            "demo".into(),
            "gmail-465-login-ok".into(),
            "--annotate".into(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"Username:\"") && text.contains("\"Password:\""),
        "{text}"
    );
}

/// `demo NAME --json` is a JSON document on stdout and nothing else, so it can be piped
/// to jq: the scenario's story line is for humans only.
#[tokio::test]
async fn demo_json_stdout_is_only_json() {
    let out = crate::common::smtprobe(
        vec![
            "demo".into(),
            "gmail-587-app-password-required".into(),
            "--json".into(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"));
    assert_eq!(
        doc["diagnosis"]["code"], "auth.app-password-required",
        "{text}"
    );
}
