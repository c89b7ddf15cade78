//! Every `curl` line of the README aimed at `make run` (localhost:8080)
//! returns what the README says it returns.
//!
//! A command is a line starting with `curl `; the next line, `# → …`, is the
//! promise. A JSON promise must be a subset of the JSON answer; any other
//! promise must appear in the output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use serde_json::Value;
use std::{path::PathBuf, process::Command};

/// True when every field of `expected` is in `actual` with the same value.
fn is_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| is_subset(v, av))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| is_subset(e, a))
        }
        _ => expected == actual,
    }
}

#[test]
fn readme_curl_lines_do_what_the_readme_says() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let examples: Vec<(&str, &str)> = lines
        .windows(2)
        // Lines aimed at `make run` (localhost:8080); others show other set-ups.
        .filter(|w| w[0].starts_with("curl ") && w[0].contains("localhost:8080"))
        .map(|w| {
            let promise = w[1]
                .strip_prefix("# → ")
                .unwrap_or_else(|| panic!("no `# → ` promise after: {}", w[0]));
            (w[0], promise)
        })
        .collect();
    assert!(examples.len() >= 5, "the README shows its curl examples");

    // Exactly what `make run` starts: defaults, with the port moved off 8080.
    let svc = common::Service::start(&[]);
    for (command, promise) in examples {
        let command = command.replace("localhost:8080", &format!("127.0.0.1:{}", svc.port));
        let out = Command::new("sh").arg("-c").arg(&command).output().unwrap();
        assert!(out.status.success(), "{command} failed: {out:?}");
        let output = String::from_utf8_lossy(&out.stdout);
        match serde_json::from_str::<Value>(promise) {
            Ok(expected) => {
                let actual: Value = serde_json::from_str(&output)
                    .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {output}"));
                assert!(
                    is_subset(&expected, &actual),
                    "{command}\n promised {expected}\n got {actual}"
                );
            }
            Err(_) => assert!(
                output.contains(promise),
                "{command}\n promised {promise}\n got {output}"
            ),
        }
    }
}
