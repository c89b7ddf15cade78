//! `service --check-config` and start-up configuration errors, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::io::Write;

#[test]
fn check_config_prints_the_effective_configuration_and_exits_0() {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    writeln!(
        file,
        "service:\n  port: 9400\nhosted_ai:\n  api_key: file-secret-123"
    )
    .unwrap();
    let out = common::command()
        .arg("--check-config")
        .env("HARPOON_CONFIG", file.path())
        .env("HOSTED_AI_BASE_URL", "https://panel.example/api")
        .env("HARPOON__SERVICE__REQUEST_TIMEOUT_SECS", "77")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["service"]["port"], 9400);
    assert_eq!(printed["service"]["request_timeout_secs"], 77);
    assert_eq!(
        printed["hosted_ai"]["base_url"],
        "https://panel.example/api"
    );
    assert_eq!(printed["hosted_ai"]["api_key"], "<redacted>");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&file.path().display().to_string()),
        "{stderr}"
    );
}

#[test]
fn secrets_never_appear_in_any_output() {
    for args in [
        &["--check-config"][..],
        &["--check-config", "--config", "/missing.yaml"][..],
    ] {
        let out = common::command()
            .args(args)
            .env("HOSTED_AI_API_KEY", "env-secret-456")
            .output()
            .unwrap();
        let all = [out.stdout, out.stderr].concat();
        assert!(
            !String::from_utf8_lossy(&all).contains("env-secret-456"),
            "secret leaked with {args:?}"
        );
    }
}

#[test]
fn bad_configuration_exits_2_naming_key_and_reason() {
    let cases: &[(&str, &str, &str)] = &[
        ("HARPOON__SERVICE__PORTT", "1", "service.portt"),
        ("SERVICE_PORT", "eighty", "service.port"),
        (
            "HARPOON__SERVICE__REQUEST_TIMEOUT_SECS",
            "0",
            "service.request_timeout_secs",
        ),
    ];
    for (name, value, key) in cases {
        let out = common::command()
            .arg("--check-config")
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{name}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing printed as configuration");
    }
    let reasons = common::command()
        .arg("--check-config")
        .env("HARPOON__SERVICE__PORTT", "1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&reasons.stderr).contains("unknown field"));
}

#[test]
fn a_corrupt_router_artefact_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken-router.bin");
    std::fs::write(&path, b"HRPROUTE but not really").unwrap();
    for args in [&["--check-config"][..], &[][..]] {
        let out = common::command()
            .args(args)
            .env("HARPOON__ROUTER__MODEL_PATH", &path)
            .env("SERVICE_PORT", common::free_port().to_string())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("broken-router.bin"), "{stderr}");
    }
}

#[test]
fn serving_with_bad_configuration_exits_2_before_binding() {
    let out = common::command()
        .env("HARPOON__MODELS__QWEN__TEMPERATURE", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("models.qwen.temperature"));
}
