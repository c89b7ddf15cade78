//! The generate path: the large tier writes one repository's file edits and
//! pull-request text as JSON, which is parsed, validated, and passed through
//! the hygiene gate file by file, with a bounded number of attempts.

use crate::harmony::{query_terms, tokens};
use crate::scan::Scan;
use crate::types::{Covenant, FileWrite, Role};
use orchestrator::generation::{Message, Role as ChatRole, Usage};
use orchestrator::registry::{ModelHandle, Params};
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

/// Scores a file's hygiene in [0, 1]; the fusion engine implements it.
pub trait HygieneGate: Send + Sync {
    /// Hygiene of `body`, the whole content of the file at `path`.
    fn score(&self, path: &str, body: &str) -> f64;
}

/// Where the generate path's token spend is recorded (the service's usage
/// ledger), so strikes count against a tenant like any other inference.
pub trait UsageSink: Send + Sync {
    /// `tenant` spent `usage` on `model` for one repository of a strike;
    /// `ok` is whether the generation was accepted.
    fn record(
        &self,
        tenant: &str,
        model: &str,
        usage: Usage,
        elapsed: std::time::Duration,
        ok: bool,
    );
}

/// What the model must answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Generated {
    /// Pull-request title.
    pub title: String,
    /// Pull-request description.
    pub body: String,
    /// Whole files to write.
    pub files: Vec<FileWrite>,
}

/// Fragments of the repository most related to the covenant: up to five
/// files, their first 60 lines, labelled with path and line range.
pub fn fragments(scan: &Scan, covenant: &Covenant) -> String {
    let terms: HashSet<String> = query_terms(covenant).into_iter().collect();
    let mut ranked: Vec<(usize, &String, &String)> = scan
        .texts
        .iter()
        .map(|(p, t)| (tokens(t).filter(|w| terms.contains(w)).count(), p, t))
        .filter(|(n, _, _)| *n > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    let mut out = String::new();
    for (_, path, text) in ranked.into_iter().take(5) {
        let lines: Vec<&str> = text.lines().take(60).collect();
        out.push_str(&format!(
            "--- {path} (lines 1-{}) ---\n{}\n",
            lines.len(),
            lines.join("\n")
        ));
    }
    out
}

fn prompt(
    covenant: &Covenant,
    repo: &str,
    role: Role,
    cables: &[String],
    fragments: &str,
) -> String {
    format!(
        "You change the repository {repo} as part of a coordinated change across repositories.\n\
         Covenant: {title}\n{description}\nToday: {reality}\nKey aspects: {aspects}\n\
         Goal: {target}\nSuccess criteria: {criteria}\n\
         This repository's role: {role}. Linked repositories: {cables}.\n\n\
         Relevant code:\n{fragments}\n\
         Answer with one JSON object and nothing else, shaped exactly like\n\
         {{\"title\": \"pull request title\", \"body\": \"pull request description\", \
         \"files\": [{{\"path\": \"relative/path\", \"content\": \"the whole new file\"}}]}}",
        title = covenant.title,
        description = covenant.description,
        reality = covenant.reality_state.description,
        aspects = covenant.reality_state.key_aspects.join("; "),
        target = covenant.target_state.description,
        criteria = covenant.target_state.success_criteria.join("; "),
        role = match role {
            Role::Anchor => "anchor (leads; the others follow its change)",
            Role::Agnos => "agnos (follows the anchor's change)",
        },
        cables = if cables.is_empty() {
            "none".to_owned()
        } else {
            cables.join(", ")
        },
    )
}

/// Parses and checks one model answer; the error says what was wrong.
pub fn parse(answer: &str, gate: &dyn HygieneGate, threshold: f64) -> Result<Generated, String> {
    // Models wrap JSON in prose or code fences; take the outermost object.
    let start = answer.find('{').ok_or("the answer holds no JSON object")?;
    let end = answer
        .rfind('}')
        .filter(|e| *e > start)
        .ok_or("the answer holds no complete JSON object")?;
    let g: Generated = serde_json::from_str(&answer[start..=end])
        .map_err(|e| format!("the answer is not the expected JSON: {e}"))?;
    if g.title.trim().is_empty() {
        return Err("title is empty".into());
    }
    if g.files.is_empty() {
        return Err("files is empty".into());
    }
    for (i, f) in g.files.iter().enumerate() {
        crate::check_path(&f.path).map_err(|m| format!("files[{i}].path: {m}"))?;
        let score = gate.score(&f.path, &f.content);
        if score.is_nan() || score < threshold {
            return Err(format!(
                "files[{i}] ({}) scored {score:.2} on the hygiene gate, below {threshold:.2}",
                f.path
            ));
        }
    }
    Ok(g)
}

/// Asks `model` for the change of one repository, up to `attempts` times,
/// telling it what was wrong with the previous answer. The tokens of every
/// attempt are added to `spent`, whatever the outcome.
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    spent: &mut Usage,
    model: &ModelHandle,
    gate: &Arc<dyn HygieneGate>,
    threshold: f64,
    attempts: u32,
    covenant: &Covenant,
    repo: &str,
    role: Role,
    cables: &[String],
    scan: &Scan,
) -> Result<Generated, String> {
    let mut messages = vec![
        Message::new(
            ChatRole::System,
            "You write code changes as strict JSON. No prose outside the JSON object.",
        ),
        Message::new(
            ChatRole::User,
            prompt(covenant, repo, role, cables, &fragments(scan, covenant)),
        ),
    ];
    let mut last = String::from("no attempt made");
    for attempt in 1..=attempts.max(1) {
        let request = model
            .prepare(Params {
                messages: messages.clone(),
                temperature: Some(0.2),
                ..Params::default()
            })
            .map_err(|e| format!("model {}: {e}", model.name()))?;
        let answer = model
            .generate(request)
            .await
            .map_err(|e| format!("model {}: {e}", model.name()))?;
        spent.add_tokens(&answer.usage);
        // Scoring parses every file: CPU work, kept off the async threads.
        let checked = {
            let (gate, text) = (gate.clone(), answer.text.clone());
            tokio::task::spawn_blocking(move || parse(&text, gate.as_ref(), threshold))
                .await
                .map_err(|e| format!("hygiene gate: {e}"))?
        };
        match checked {
            Ok(g) => return Ok(g),
            Err(reason) => {
                tracing::info!(repo, attempt, %reason, "generated change refused");
                last = reason.clone();
                messages.push(Message::new(ChatRole::Assistant, answer.text));
                messages.push(Message::new(
                    ChatRole::User,
                    format!(
                        "That answer was refused: {reason}. Answer again with only the JSON object."
                    ),
                ));
            }
        }
    }
    Err(format!(
        "the model's answer was refused {attempts} time(s); last reason: {last}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NonEmpty;
    impl HygieneGate for NonEmpty {
        fn score(&self, _: &str, body: &str) -> f64 {
            if body.trim().is_empty() { 0.0 } else { 1.0 }
        }
    }

    #[test]
    fn answers_are_parsed_and_gated() {
        let ok = "```json\n{\"title\":\"t\",\"body\":\"b\",\"files\":[{\"path\":\"src/a.rs\",\"content\":\"fn a() {}\"}]}\n```";
        assert_eq!(parse(ok, &NonEmpty, 0.8).map(|g| g.files.len()), Ok(1));
        assert!(
            parse("no json here", &NonEmpty, 0.8)
                .unwrap_err()
                .contains("no JSON")
        );
        let empty = r#"{"title":"t","body":"b","files":[{"path":"a","content":"  "}]}"#;
        assert!(
            parse(empty, &NonEmpty, 0.8)
                .unwrap_err()
                .contains("hygiene gate")
        );
        let escape = r#"{"title":"t","body":"b","files":[{"path":"../x","content":"x"}]}"#;
        assert!(
            parse(escape, &NonEmpty, 0.8)
                .unwrap_err()
                .contains("files[0].path")
        );
    }
}
