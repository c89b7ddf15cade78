//! Logs never carry what users typed, keys, or configured secrets; with
//! `service.log_bodies` on, bodies are logged redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

const EMAIL: &str = "jane.doe@example.org";
const CARD: &str = "4111 1111 1111 1111";
const HOSTED_SECRET: &str = "hosted-secret-7f3a9c2e5b";
const BEARER: &str = "hk_abcdefghijklmnopqrstuvwxyz0123456789ABCD";

/// Runs the binary with `env` at debug level, sends requests carrying
/// sensitive text, stops it, and returns everything it logged.
async fn logs_of(env: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("stdout.log");
    let port = common::free_port();
    let mut child = common::command()
        .env("SERVICE_PORT", port.to_string())
        .env("HARPOON__STORAGE__DATA_DIR", data.path())
        .env("RUST_LOG", "debug")
        .env("HOSTED_AI_BASE_URL", "https://panel.example/api")
        .env("HOSTED_AI_API_KEY", HOSTED_SECRET)
        .envs(env.iter().copied())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let text = format!("My email is {EMAIL} and my card is {CARD}. Summarise this.");
    http.post(format!("{base}/classify"))
        .bearer_auth(BEARER)
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/v1/chat/completions"))
        .header("x-api-key", BEARER)
        .json(&json!({"messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    let health = http
        .get(format!("{base}/health?detailed=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!health.contains(HOSTED_SECRET), "health shows no secret");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(log).unwrap()
}

fn assert_clean(logs: &str) {
    assert!(!logs.is_empty(), "the service logged at debug level");
    for secret in [EMAIL, CARD, HOSTED_SECRET, BEARER] {
        assert!(!logs.contains(secret), "{secret} reached the log:\n{logs}");
    }
}

#[tokio::test]
async fn bodies_keys_and_secrets_stay_out_of_the_log() {
    let logs = logs_of(&[]).await;
    assert_clean(&logs);
    assert!(
        !logs.contains("Summarise this"),
        "no body is logged by default"
    );
}

#[tokio::test]
async fn logged_bodies_are_redacted() {
    let logs = logs_of(&[
        ("HARPOON__SERVICE__LOG_BODIES", "true"),
        ("HARPOON__SERVICE__LOG_FORMAT", "json"),
    ])
    .await;
    assert_clean(&logs);
    assert!(
        logs.contains("Summarise this"),
        "bodies are logged when asked"
    );
    assert!(
        logs.contains("[email]") && logs.contains("[card]"),
        "{logs}"
    );
    for line in logs.lines() {
        let keys = top_level_keys(line);
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        // Log shippers drop or reject a line with a key twice (it was `target`).
        assert_eq!(keys.len(), unique.len(), "a key twice in {line}");
    }
}

/// The keys of a JSON object line in order, repeats kept (a map would merge them).
fn top_level_keys(line: &str) -> Vec<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    serde_json::Deserializer::from_str(line)
        .deserialize_map(Keys)
        .unwrap_or_else(|e| panic!("{e}: {line}"))
}
