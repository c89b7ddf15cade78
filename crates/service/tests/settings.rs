//! Configuration precedence and validation: defaults < file < environment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use axum::http::HeaderValue;
use service::settings::{CorsOrigins, LogFormat, Origin, Settings, SettingsError};
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
        Err(SettingsError::Invalid { setting, .. }) => setting.key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn defaults_apply_without_file_or_environment() {
    let s = load(None, &[]).unwrap();
    assert_eq!(s.service.host(), "127.0.0.1");
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
    assert_eq!(from_file.service.host(), "127.0.0.1");
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
        CorsOrigins::List(vec![
            HeaderValue::from_static("https://a.example"),
            HeaderValue::from_static("http://b.example:3000"),
        ])
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
    assert_eq!(s.service.host(), "0.0.0.0");
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
    assert_eq!(local.auth_mode(), AuthMode::Disabled, "loopback default");
    let public = load(None, &[("SERVICE_HOST", "0.0.0.0")]).unwrap();
    assert_eq!(
        public.auth_mode(),
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
    assert_eq!(forced.auth_mode(), AuthMode::Required);
    assert_eq!(
        invalid_key(load(None, &[("DATABASE_URL", "mysql://x")])),
        "storage.database_url"
    );
}

/// What a refused configuration says.
fn message(result: Result<Settings, SettingsError>) -> String {
    match result {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an error"),
    }
}

fn origin(result: Result<Settings, SettingsError>) -> Origin {
    match result {
        Err(SettingsError::Invalid { origin, .. }) => origin,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn errors_name_the_variable_that_set_the_value_and_what_is_allowed() {
    let e = message(load(None, &[("SERVICE_PORT", "abc")]));
    assert!(e.contains("environment variable SERVICE_PORT"), "{e}");
    assert!(e.contains("`service.port`"), "{e}");
    assert!(e.contains("`abc` is not an integer"), "{e}");
    assert!(e.contains("0..=65535"), "{e}");

    let e = message(load(None, &[("PORT", "70000")]));
    assert!(e.contains("environment variable PORT"), "{e}");
    assert!(e.contains("70000 is out of range 0..=65535"), "{e}");
    assert!(!e.contains("16 bit"), "{e}");
    let e = message(load(None, &[("MCP_WS_PORT", "-1")]));
    assert!(e.contains("environment variable MCP_WS_PORT"), "{e}");
    assert!(e.contains("0..=65535"), "{e}");

    let e = message(load(None, &[("HARPOON__AUTH__MODE", "maybe")]));
    assert!(
        e.contains("environment variable HARPOON__AUTH__MODE"),
        "{e}"
    );
    assert!(e.contains("`maybe` is not allowed"), "{e}");
    assert!(e.contains("`required`, `disabled`"), "{e}");
    assert!(!e.contains("variant constructor"), "{e}");
    let e = message(load(None, &[("HARPOON__MODELS__GEMMA__ENGINE", "tpu")]));
    assert!(e.contains("`mlx`, `openai`, `hosted_ai`"), "{e}");
    let e = message(load(None, &[("HARPOON__SERVICE__LOG_BODIES", "maybe")]));
    assert!(e.contains("true or false"), "{e}");

    // Seed names win over HARPOON__ names, and the message says which one was read.
    assert_eq!(
        origin(load(
            None,
            &[
                ("HARPOON__SERVICE__PORT", "1"),
                ("SERVICE_PORT", "x"),
                ("PORT", "2")
            ]
        )),
        Origin::Env("SERVICE_PORT".into())
    );
    assert_eq!(
        origin(load(None, &[("HARPOON__SERVICE__PORT", "x"), ("PORT", "")])),
        Origin::Env("HARPOON__SERVICE__PORT".into())
    );
    assert_eq!(
        origin(load(None, &[("HARPOON__NOPE__X", "1")])),
        Origin::Env("HARPOON__NOPE__X".into())
    );
    assert_eq!(
        origin(load(None, &[("SERVICE_HOST", "not a host")])),
        Origin::Env("SERVICE_HOST".into())
    );
}

#[test]
fn errors_name_the_file_and_line_or_the_default() {
    let file = yaml("service:\n  host: 127.0.0.1\n  port: 99999\n");
    let e = load(Some(file.path()), &[]);
    assert_eq!(
        origin(e),
        Origin::File {
            path: file.path().to_owned(),
            line: Some(3)
        }
    );
    let e = message(load(Some(file.path()), &[]));
    assert!(
        e.contains(&format!("file {}, line 3", file.path().display())),
        "{e}"
    );
    assert!(e.contains("99999 is out of range 0..=65535"), "{e}");
    // The environment wins over the file, so it is the environment that is named.
    assert_eq!(
        origin(load(Some(file.path()), &[("PORT", "99999")])),
        Origin::Env("PORT".into())
    );
    let unknown = yaml("models:\n  gemma:\n    repo: x\n    colour: blue\n");
    assert_eq!(
        origin(load(Some(unknown.path()), &[])),
        Origin::File {
            path: unknown.path().to_owned(),
            line: Some(4)
        }
    );
    // Unset, a key keeps its default; a rule it then breaks names that.
    let e = load(
        None,
        &[
            ("HARPOON__MCP__ENABLED", "true"),
            ("MCP_WS_HOST", "0.0.0.0"),
        ],
    );
    assert_eq!(origin(e), Origin::Default);
    let e = message(load(
        None,
        &[
            ("HARPOON__MCP__ENABLED", "true"),
            ("MCP_WS_HOST", "0.0.0.0"),
        ],
    ));
    assert!(e.contains("`mcp.api_key` (default)"), "{e}");
}

#[test]
fn a_duplicate_key_names_the_key_the_file_and_both_lines() {
    let file = yaml("service:\n  port: 9000\n  host: 127.0.0.1\n  port: 9001\n");
    match load(Some(file.path()), &[]) {
        Err(SettingsError::DuplicateKey {
            path,
            key,
            line,
            first_line,
        }) => {
            assert_eq!(path, file.path());
            assert_eq!(key, "service.port");
            assert_eq!((line, first_line), (4, 2));
        }
        other => panic!("expected a duplicate key, got {other:?}"),
    }
    let e = message(load(Some(file.path()), &[]));
    assert!(e.contains(&file.path().display().to_string()), "{e}");
    assert!(e.contains("line 4"), "{e}");
    assert!(e.contains("`service.port`"), "{e}");
    assert!(!e.contains("String(\""), "{e}");
    // Nested and in flow style too; the same key in two sections is no duplicate.
    let flow = yaml("models: {gemma: {repo: a}, qwen: {repo: b}, gemma: {repo: c}}\n");
    match load(Some(flow.path()), &[]) {
        Err(SettingsError::DuplicateKey { key, line, .. }) => {
            assert_eq!((key.as_str(), line), ("models.gemma", 1));
        }
        other => panic!("expected a duplicate key, got {other:?}"),
    }
    let fine = yaml("service:\n  port: 9000\nmcp:\n  port: 9001\n");
    assert!(load(Some(fine.path()), &[]).is_ok());
}

#[test]
fn typed_values_are_resolved_at_load() {
    use std::net::{IpAddr, Ipv4Addr};
    let s = load(
        None,
        &[("SERVICE_HOST", "localhost"), ("MCP_WS_HOST", "::1")],
    )
    .unwrap();
    assert_eq!(s.service.bind_ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(s.service.host(), "localhost", "printed as given");
    assert_eq!(s.mcp_bind_ip(), "::1".parse::<IpAddr>().unwrap());
    let defaults = Settings::default();
    let loaded = load(None, &[]).unwrap();
    assert_eq!(defaults.service.bind_ip(), loaded.service.bind_ip());
    let any = load(
        None,
        &[("HARPOON__SERVICE__CORS_ORIGINS", "https://a.example,*")],
    )
    .unwrap();
    assert_eq!(any.service.cors_origins, CorsOrigins::Any);
}

/// Traces (issue 23): off by default; `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `telemetry.otlp_endpoint` turns them on, spans going to its `/v1/traces`;
/// an endpoint the plain-HTTP exporter cannot use is refused by name.
#[test]
fn telemetry_endpoint_comes_from_otel_or_harpoon_names_and_must_be_http() {
    let off = load(None, &[]).unwrap();
    assert_eq!(off.telemetry.traces_url(), None);
    assert!(!off.telemetry.capture_content);
    let otel = load(
        None,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")],
    )
    .unwrap();
    assert_eq!(
        otel.telemetry.traces_url().as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    let own = load(
        None,
        &[
            ("HARPOON__TELEMETRY__OTLP_ENDPOINT", "http://collector:4318"),
            ("HARPOON__TELEMETRY__CAPTURE_CONTENT", "true"),
        ],
    )
    .unwrap();
    assert_eq!(
        own.telemetry.traces_url().as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert!(own.telemetry.capture_content);
    for bad in ["https://collector:4318", "collector:4318", "not a url"] {
        let message = invalid_key(load(None, &[("HARPOON__TELEMETRY__OTLP_ENDPOINT", bad)]));
        assert!(
            message.contains("telemetry.otlp_endpoint"),
            "{bad}: {message}"
        );
    }
}
