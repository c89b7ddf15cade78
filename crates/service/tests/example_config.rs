//! `configs/config.example.yaml` stays valid, complete and commented.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use serde_json::Value;
use service::settings::Settings;
use std::{collections::BTreeSet, path::PathBuf};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/config.example.yaml")
}

/// Dotted paths of every leaf key.
fn leaf_keys(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_keys(v, &path, out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

#[test]
fn example_loads_and_equals_the_defaults() {
    let loaded = Settings::load(Some(&example()), &Default::default()).unwrap();
    let from_example = serde_json::to_value(&loaded.settings).unwrap();
    let defaults = serde_json::to_value(Settings::default()).unwrap();
    assert_eq!(from_example, defaults, "the example shows the defaults");
}

#[test]
fn example_documents_every_key_with_a_comment() {
    let text = std::fs::read_to_string(example()).unwrap();
    let mut keys = BTreeSet::new();
    leaf_keys(
        &serde_json::to_value(Settings::default()).unwrap(),
        "",
        &mut keys,
    );
    let lines: Vec<&str> = text.lines().collect();
    for key in keys {
        let leaf = key.rsplit('.').next().unwrap();
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{leaf}:")))
            .unwrap_or_else(|| panic!("{key} is missing from the example"));
        assert!(
            at > 0 && lines[at - 1].trim_start().starts_with('#'),
            "{key} has no comment line above it"
        );
    }
}
