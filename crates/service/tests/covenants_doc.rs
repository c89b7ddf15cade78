//! `docs/covenants.md` does what it says: its shell blocks, run in order as
//! one script against the real binary, print every `# …` promise they make.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::{path::PathBuf, process::Command};

#[test]
fn the_covenants_walkthrough_runs_as_written() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/covenants.md"),
    )
    .unwrap();
    let mut script = String::new();
    let mut promises = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        match (inside, line) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, l) if l.starts_with("# ") => promises.push(l[2..].to_owned()),
            (true, l) => {
                script.push_str(l);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        promises.len() >= 5,
        "the page promises outputs: {promises:?}"
    );

    let svc = common::Service::start(&[("HARPOON__BRIDGE__ALLOW_LOCAL_REMOTES", "true")]);
    let demo = tempfile::tempdir().unwrap();
    let script = script.replace("localhost:8080", &format!("127.0.0.1:{}", svc.port));
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DEMO", demo.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the walkthrough failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for promise in promises {
        assert!(
            stdout.contains(&promise),
            "promised {promise}\n got {stdout}"
        );
    }
}

/// Runs curl and returns (status, JSON body).
fn call(method: &str, url: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", b]);
    }
    let out = String::from_utf8(cmd.output().unwrap().stdout).unwrap();
    let (body, status) = out.rsplit_once('\n').unwrap();
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn bad_covenants_are_422_naming_the_field_and_unknown_ids_are_404() {
    let svc = common::Service::start(&[]);
    let (status, body) = call(
        "POST",
        &svc.url("/v2/covenant"),
        Some(
            r#"{"description":"d","reality_state":{"description":"r"},"target_state":{"description":"t"}}"#,
        ),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("title"),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        &svc.url("/v2/covenant"),
        Some(
            r#"{"title":"t","description":"d","reality_state":{"description":" "},"target_state":{"description":"t"}}"#,
        ),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["error"]["details"]["field"],
        "reality_state.description"
    );
    for (method, path) in [
        ("GET", "/v2/covenant/cov_nope"),
        ("DELETE", "/v2/covenant/cov_nope"),
        ("POST", "/v2/covenant/cov_nope/harmony"),
        ("GET", "/v2/strike/run_nope"),
        ("GET", "/v2/strike/run_nope/events"),
        ("POST", "/v2/strike/run_nope/cancel"),
    ] {
        let (status, body) = call(method, &svc.url(path), None);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = call(
        "POST",
        &svc.url("/v2/strike"),
        Some(r#"{"covenant_id":"cov_nope"}"#),
    );
    assert_eq!(status, 404);
    let (status, body) = call("GET", &svc.url("/v2/covenants?limit=500"), None);
    assert_eq!(status, 422, "{body}");
}
