//! Configuration precedence and validation: defaults < file < environment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use service::settings::{LogFormat, Settings, SettingsError};
use std::{collections::HashMap, io::Write, path::Path};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn load(file: Option<&Path>, pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    Settings::load(file, &env(pairs)).map(|l| l.settings)
}

fn invalid_key(result: Result<Settings, SettingsError>) -> String {
    match result {
        Err(SettingsError::Invalid(e)) => e.key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn defaults_apply_without_file_or_environment() {
    let s = load(None, &[]).unwrap();
    assert_eq!(s.service.host, "127.0.0.1");
    assert_eq!(s.service.port, 8080);
    assert_eq!(s.service.body_limit_bytes, 1024 * 1024);
    assert_eq!(s.service.log_format, LogFormat::Text);
    assert!(s.models.0.contains_key("gemma") && s.models.0.contains_key("qwen"));
    assert_eq!(s.harpoon.max_iterations, 10);
    assert!(s.hosted_ai.base_url.is_none());
}

#[test]
fn file_overrides_defaults_and_environment_overrides_file() {
    let file = yaml(
        "service:\n  port: 9000\n  log_format: json\n  request_timeout_secs: 42\n\
         models:\n  qwen:\n    temperature: 0.2\n  extra:\n    repo: /models/extra\n\
         harpoon:\n  hygiene_threshold: 0.5\n",
    );
    let from_file = load(Some(file.path()), &[]).unwrap();
    assert_eq!(from_file.service.port, 9000);
    assert_eq!(from_file.service.log_format, LogFormat::Json);
    assert_eq!(from_file.service.request_timeout_secs, 42);
    // A file merges into the defaults rather than replacing whole sections.
    assert_eq!(from_file.service.host, "127.0.0.1");
    let qwen = &from_file.models.0["qwen"];
    assert_eq!(qwen.temperature, 0.2);
    assert_eq!(qwen.repo, "mlx-community/Qwen3-30B-A3B-4bit");
    assert_eq!(from_file.models.0["extra"].repo, "/models/extra");
    assert_eq!(from_file.harpoon.hygiene_threshold, 0.5);

    let from_env = load(
        Some(file.path()),
        &[
            ("HARPOON__SERVICE__PORT", "9100"),
            ("HARPOON__MODELS__QWEN__TEMPERATURE", "1.5"),
            (
                "HARPOON__SERVICE__CORS_ORIGINS",
                "https://a.example, http://b.example:3000",
            ),
        ],
    )
    .unwrap();
    assert_eq!(from_env.service.port, 9100);
    assert_eq!(from_env.service.request_timeout_secs, 42, "file value kept");
    assert_eq!(from_env.models.0["qwen"].temperature, 1.5);
    assert_eq!(
        from_env.service.cors_origins,
        ["https://a.example", "http://b.example:3000"]
    );
}

#[test]
fn seed_environment_names_work_and_port_falls_back_to_port() {
    let s = load(
        None,
        &[
            ("SERVICE_HOST", "0.0.0.0"),
            ("PORT", "7000"),
            ("RUST_LOG", "debug"),
            ("HOSTED_AI_BASE_URL", "https://panel.example/api"),
            ("HOSTED_AI_API_KEY", "000123"),
            ("HOSTED_AI_POOL_ID", "7"),
            ("HOSTED_AI_OVERCOMMIT", "true"),
        ],
    )
    .unwrap();
    assert_eq!(s.service.host, "0.0.0.0");
    assert_eq!(s.service.port, 7000);
    assert_eq!(s.service.log_level, "debug");
    assert_eq!(
        s.hosted_ai.base_url.as_deref(),
        Some("https://panel.example/api")
    );
    // Digit-only secrets stay strings, leading zeros included.
    assert_eq!(
        s.hosted_ai.api_key.as_ref().map(|k| k.expose()),
        Some("000123")
    );
    assert_eq!(s.hosted_ai.pool.ids(), Some(&["7".to_owned()][..]));
    assert!(s.hosted_ai.overcommit);

    let both = load(None, &[("PORT", "7000"), ("SERVICE_PORT", "7001")]).unwrap();
    assert_eq!(both.service.port, 7001, "SERVICE_PORT wins over PORT");
    let over_prefixed = load(
        None,
        &[("HARPOON__SERVICE__PORT", "7002"), ("PORT", "7003")],
    )
    .unwrap();
    assert_eq!(
        over_prefixed.service.port, 7003,
        "seed aliases win over HARPOON__ names"
    );
    let empty = load(None, &[("PORT", "")]).unwrap();
    assert_eq!(empty.service.port, 8080, "an empty PORT is unset");
}

#[test]
fn home_file_is_read_when_no_file_is_named() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".orchestrator")).unwrap();
    std::fs::write(
        home.path().join(".orchestrator/config.yaml"),
        "service:\n  port: 9200\n",
    )
    .unwrap();
    let home_str = home.path().to_str().unwrap();
    let loaded = Settings::load(None, &env(&[("HOME", home_str)])).unwrap();
    assert_eq!(loaded.settings.service.port, 9200);
    assert_eq!(
        loaded.file.as_deref(),
        Some(home.path().join(".orchestrator/config.yaml").as_path())
    );

    let named = yaml("service:\n  port: 9300\n");
    let loaded = Settings::load(Some(named.path()), &env(&[("HOME", home_str)])).unwrap();
    assert_eq!(
        loaded.settings.service.port, 9300,
        "a named file replaces the home file"
    );
}

#[test]
fn unknown_keys_wrong_types_and_out_of_range_values_name_the_key() {
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__SERVICE__PROT", "1")])),
        "service.prot"
    );
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__NOPE__X", "1")])),
        "nope"
    );
    assert_eq!(
        invalid_key(load(None, &[("SERVICE_PORT", "http")])),
        "service.port"
    );
    assert_eq!(
        invalid_key(load(None, &[("SERVICE_PORT", "70000")])),
        "service.port"
    );
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__SERVICE__LOG_FORMAT", "xml")])),
        "service.log_format"
    );
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__SERVICE__BODY_LIMIT_BYTES", "10")])),
        "service.body_limit_bytes"
    );
    assert_eq!(
        invalid_key(load(None, &[("SERVICE_HOST", "not a host")])),
        "service.host"
    );
    assert_eq!(
        invalid_key(load(None, &[("RUST_LOG", "[[[")])),
        "service.log_level"
    );
    assert_eq!(
        invalid_key(load(
            None,
            &[("HARPOON__SERVICE__CORS_ORIGINS", "app.example")]
        )),
        "service.cors_origins"
    );
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__HARPOON__MAX_ITERATIONS", "0")])),
        "harpoon.max_iterations"
    );
    assert_eq!(
        invalid_key(load(None, &[("HARPOON__MODELS__GEMMA__TOP_P", "0")])),
        "models.gemma.top_p"
    );
    assert_eq!(
        invalid_key(load(None, &[("HOSTED_AI_BASE_URL", "not a url")])),
        "hosted_ai.base_url"
    );
    let file = yaml("models:\n  gemma:\n    repo: x\n    colour: blue\n");
    assert_eq!(
        invalid_key(load(Some(file.path()), &[])),
        "models.gemma.colour"
    );
}

#[test]
fn missing_or_malformed_file_names_the_file() {
    let missing = Path::new("/nonexistent/harpoon.yaml");
    match load(Some(missing), &[]) {
        Err(SettingsError::File { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected a file error, got {other:?}"),
    }
    let broken = yaml("service: [\n");
    match load(Some(broken.path()), &[]) {
        Err(SettingsError::File { path, .. }) => assert_eq!(path, broken.path()),
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn printed_configuration_redacts_secrets() {
    let s = load(None, &[("HOSTED_AI_API_KEY", "sk-very-secret-value")]).unwrap();
    let printed = s.to_redacted_json();
    assert!(!printed.contains("sk-very-secret-value"));
    assert!(printed.contains("\"api_key\": \"<redacted>\""));
}

#[test]
fn auth_is_required_off_loopback_and_cannot_be_disabled_there() {
    use service::settings::AuthMode;
    let local = load(None, &[]).unwrap();
    assert_eq!(
        local.auth_mode().unwrap(),
        AuthMode::Disabled,
        "loopback default"
    );
    let public = load(None, &[("SERVICE_HOST", "0.0.0.0")]).unwrap();
    assert_eq!(
        public.auth_mode().unwrap(),
        AuthMode::Required,
        "non-loopback default"
    );
    assert_eq!(
        invalid_key(load(
            None,
            &[
                ("SERVICE_HOST", "0.0.0.0"),
                ("HARPOON__AUTH__MODE", "disabled")
            ]
        )),
        "auth.mode"
    );
    let forced = load(None, &[("HARPOON__AUTH__MODE", "required")]).unwrap();
    assert_eq!(forced.auth_mode().unwrap(), AuthMode::Required);
    assert_eq!(
        invalid_key(load(None, &[("DATABASE_URL", "mysql://x")])),
        "storage.database_url"
    );
}
