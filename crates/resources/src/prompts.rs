//! The prompts: written for Harpoon's covenants, strikes and fusion, rendered
//! with the caller's real data (a covenant's text, a repository's role, a
//! fragment's measured hygiene).

use crate::backend::{BackendError, HarpoonBackend};
use crate::tools::{CreateCovenantArgs, FragmentArg};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::Value;

/// Prompt names.
pub mod names {
    /// Drafting a new covenant.
    pub const COVENANT_CREATION: &str = "covenant.creation";
    /// Reviewing a covenant's harmony.
    pub const COVENANT_HARMONY_REVIEW: &str = "covenant.harmony_review";
    /// Delegating one repository's share of a strike.
    pub const STRIKE_DELEGATION: &str = "strike.delegation";
    /// Cleaning up a code fragment by its hygiene signals.
    pub const FUSION_HYGIENE: &str = "fusion.hygiene";
}

/// Why a prompt could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No prompt has this name.
    #[error("no prompt is named {0:?}")]
    Unknown(String),
    /// A required argument is absent or blank.
    #[error("prompt {prompt} needs the argument `{argument}`")]
    Missing {
        /// The prompt.
        prompt: &'static str,
        /// The argument.
        argument: &'static str,
    },
    /// An argument is present but not usable.
    #[error("{0}")]
    Invalid(String),
    /// The backend refused or failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

fn argument(name: &str, description: &str, required: bool) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(required)
}

/// Every prompt with its arguments.
pub fn catalogue() -> Vec<Prompt> {
    vec![
        Prompt::new(
            names::COVENANT_CREATION,
            Some("Draft a covenant: one change that several repositories make together, each with a clear role, ready for the create_covenant tool."),
            Some(vec![
                argument("goal", "The change you want, in a sentence or two", true),
                argument("repositories", "The repositories involved, comma-separated (e.g. acme/api, acme/web)", true),
                argument("constraints", "Deadlines, compatibility rules or anything the change must respect", false),
            ]),
        )
        .with_title("Draft a covenant"),
        Prompt::new(
            names::COVENANT_HARMONY_REVIEW,
            Some("Review whether a covenant's repositories and roles fit together before a strike: gaps, overlaps, ordering and risks."),
            Some(vec![argument("covenant_id", "The covenant to review", true)]),
        )
        .with_title("Review a covenant's harmony"),
        Prompt::new(
            names::STRIKE_DELEGATION,
            Some("Brief an agent on one repository's share of a covenant's strike: what to change there, given its role and the others'."),
            Some(vec![
                argument("covenant_id", "The covenant the strike carries out", true),
                argument("repository", "The repository to delegate, as named in the covenant", true),
                argument("notes", "Anything the delegate should know beyond the covenant", false),
            ]),
        )
        .with_title("Delegate a strike's repository"),
        Prompt::new(
            names::FUSION_HYGIENE,
            Some("Clean up a code fragment guided by Harpoon's measured hygiene score and the signals that lowered it."),
            Some(vec![
                argument("path", "File the fragment comes from", true),
                argument("code", "The fragment's source text", true),
                argument("lines", "Its line range in the file, e.g. 10-42 (default: the whole fragment)", false),
            ]),
        )
        .with_title("Improve a fragment's hygiene"),
    ]
}

/// A required argument: present, a string, and not blank.
fn required<'a>(
    args: &'a JsonObject,
    prompt: &'static str,
    argument: &'static str,
) -> Result<&'a str, PromptError> {
    args.get(argument)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(PromptError::Missing { prompt, argument })
}

fn optional<'a>(args: &'a JsonObject, argument: &str) -> Option<&'a str> {
    args.get(argument)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The repositories of a covenant, as (name, role) pairs, whatever the exact
/// field names of the stored covenant (`repo`, `name` or `url`; `role`).
fn repositories(covenant: &Value) -> Vec<(String, String)> {
    let list = covenant
        .get("repositories")
        .or_else(|| covenant.get("repos"))
        .and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|entry| match entry {
            Value::String(name) => Some((name.clone(), String::new())),
            Value::Object(o) => {
                let name = ["repo", "name", "url", "full_name"]
                    .iter()
                    .find_map(|k| o.get(*k).and_then(Value::as_str))?;
                let role = o.get("role").and_then(Value::as_str).unwrap_or_default();
                Some((name.to_owned(), role.to_owned()))
            }
            _ => None,
        })
        .collect()
}

fn covenant_name(covenant: &Value, id: &str) -> String {
    covenant
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_owned()
}

/// Renders prompt `name` with `args`, reading what it needs from the backend.
pub async fn render<B: HarpoonBackend>(
    backend: &B,
    caller: &B::Caller,
    name: &str,
    args: &JsonObject,
) -> Result<GetPromptResult, PromptError> {
    match name {
        names::COVENANT_CREATION => Ok(covenant_creation(args)?),
        names::COVENANT_HARMONY_REVIEW => {
            let id = required(args, names::COVENANT_HARMONY_REVIEW, "covenant_id")?;
            let covenant = backend.get_covenant(caller, id).await?;
            Ok(harmony_review(id, &covenant))
        }
        names::STRIKE_DELEGATION => {
            let id = required(args, names::STRIKE_DELEGATION, "covenant_id")?;
            let repo = required(args, names::STRIKE_DELEGATION, "repository")?;
            let covenant = backend.get_covenant(caller, id).await?;
            strike_delegation(id, repo, optional(args, "notes"), &covenant)
        }
        names::FUSION_HYGIENE => {
            let path = required(args, names::FUSION_HYGIENE, "path")?;
            let code = args
                .get("code")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or(PromptError::Missing {
                    prompt: names::FUSION_HYGIENE,
                    argument: "code",
                })?;
            let lines = optional(args, "lines")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("1-{}", code.lines().count().max(1)));
            let fragment = FragmentArg {
                path: path.to_owned(),
                idx: 0,
                lines,
                body: code.to_owned(),
            };
            let hygiene = backend.score_fragment(caller, fragment.clone()).await?;
            Ok(fusion_hygiene(&fragment, &hygiene))
        }
        other => Err(PromptError::Unknown(other.to_owned())),
    }
}

fn covenant_creation(args: &JsonObject) -> Result<GetPromptResult, PromptError> {
    let prompt = names::COVENANT_CREATION;
    let goal = required(args, prompt, "goal")?;
    let repos: Vec<&str> = required(args, prompt, "repositories")?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if repos.is_empty() {
        return Err(PromptError::Invalid(format!(
            "prompt {prompt}: `repositories` names no repository"
        )));
    }
    let constraints = optional(args, "constraints").unwrap_or("none stated");
    let listed: String = repos.iter().map(|r| format!("- {r}\n")).collect();
    let schema = Value::Object((*schema_for_type::<CreateCovenantArgs>()).clone());
    let text = format!(
        "You are drafting a Harpoon covenant: one change that several repositories agree to make together, \
each with a role that says what it provides or consumes. A strike will later carry the change out as a \
branch, a commit and a pull request in every repository, so each role must be concrete enough to act on alone.\n\n\
Goal: {goal}\n\nRepositories ({n}):\n{listed}\nConstraints: {constraints}\n\n\
Write:\n1. a short name (a few words, no punctuation);\n2. a description of the change that a reviewer of any \
one pull request can understand without the others;\n3. for every repository above, its role: what changes there, \
what it depends on from the others, and what it must not break.\n\
Flag any repository whose role you cannot state from the goal instead of inventing one. Then call the \
`create_covenant` tool with arguments matching this JSON schema:\n{schema}",
        n = repos.len(),
        schema = pretty(&schema),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
            format!("Draft a covenant across {} repositories", repos.len()),
        ),
    )
}

fn harmony_review(id: &str, covenant: &Value) -> GetPromptResult {
    let name = covenant_name(covenant, id);
    let roles: String = repositories(covenant)
        .iter()
        .map(|(repo, role)| {
            let role = if role.is_empty() {
                "(no role stated)"
            } else {
                role
            };
            format!("- {repo}: {role}\n")
        })
        .collect();
    let text = format!(
        "Review the harmony of the Harpoon covenant \"{name}\" ({id}) before a strike runs it.\n\n\
Repositories and their roles:\n{roles}\nThe covenant as stored:\n{covenant}\n\n\
For each repository, say whether its role is clear enough to carry out alone, what it needs from the others, \
and in which order the pull requests must merge. Point out gaps (a change nobody owns), overlaps (two \
repositories owning the same change) and conflicts with the description. End with a verdict: ready for a \
strike, or what must change first. The `harmony_review` tool gives Harpoon's own review of the same covenant \
to compare with.",
        covenant = pretty(covenant),
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Harmony review of covenant {name}"))
}

fn strike_delegation(
    id: &str,
    repo: &str,
    notes: Option<&str>,
    covenant: &Value,
) -> Result<GetPromptResult, PromptError> {
    let name = covenant_name(covenant, id);
    let repos = repositories(covenant);
    let Some((_, role)) = repos.iter().find(|(r, _)| r == repo) else {
        let known: Vec<&str> = repos.iter().map(|(r, _)| r.as_str()).collect();
        return Err(PromptError::Invalid(format!(
            "repository {repo:?} is not part of covenant {id}; it has: {}",
            known.join(", ")
        )));
    };
    let role = if role.is_empty() {
        "(no role stated in the covenant)"
    } else {
        role
    };
    let others: String = repos
        .iter()
        .filter(|(r, _)| r != repo)
        .map(|(r, role)| format!("- {r}: {role}\n"))
        .collect();
    let description = covenant
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("(the covenant has no description)");
    let text = format!(
        "You are the delegate for {repo} in the strike of Harpoon covenant \"{name}\" ({id}).\n\n\
The change: {description}\n\nYour repository's role: {role}\n\nThe other repositories and their roles:\n{others}\n\
Make only the changes your role calls for, on the strike's branch, as one coherent commit whose message \
names the covenant. Where you depend on another repository's change, code against the interface its role \
promises and say so in the pull-request description. If the role cannot be done as stated, stop and report \
why rather than widening the change.{notes}",
        others = if others.is_empty() {
            "(none)\n".to_owned()
        } else {
            others
        },
        notes = notes
            .map(|n| format!("\n\nNotes from the requester: {n}"))
            .unwrap_or_default(),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Delegation of {repo} in covenant {name}")),
    )
}

fn fusion_hygiene(fragment: &FragmentArg, hygiene: &Value) -> GetPromptResult {
    let score = hygiene
        .get("score")
        .and_then(Value::as_f64)
        .map_or_else(|| "unknown".to_owned(), |s| format!("{s:.2}"));
    let text = format!(
        "Harpoon's fusion scored this fragment of {path} (lines {lines}) at hygiene {score} on a 0–1 scale; \
fragments below the configured threshold are left out of envelopes.\n\nThe score and the signals behind it:\n\
{hygiene}\n\nThe fragment:\n```\n{body}\n```\n\nRewrite the fragment so the signals that lowered the score \
go away, without changing its behaviour or its public names. Explain each change by the signal it answers, \
and say which signals you left alone and why.",
        path = fragment.path,
        lines = fragment.lines,
        hygiene = pretty(hygiene),
        body = fragment.body,
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Hygiene clean-up of {}", fragment.path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn args(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    fn text(result: &GetPromptResult) -> String {
        serde_json::to_value(&result.messages[0].content).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn creation_renders_the_arguments_and_refuses_blanks() {
        let rendered = covenant_creation(&args(json!({
            "goal": "rename user_id to account_id",
            "repositories": "acme/api, acme/web"
        })))
        .unwrap();
        let body = text(&rendered);
        assert!(body.contains("rename user_id to account_id"));
        assert!(body.contains("- acme/web\n"));
        assert!(
            body.contains("\"repositories\""),
            "the tool's schema is included"
        );
        let missing = covenant_creation(&args(json!({"goal": "x", "repositories": "  "})));
        assert!(matches!(
            missing,
            Err(PromptError::Missing {
                argument: "repositories",
                ..
            })
        ));
    }

    #[test]
    fn delegation_uses_the_repository_role_and_refuses_strangers() {
        let covenant = json!({
            "id": "cov_1",
            "name": "account ids",
            "description": "rename user_id to account_id",
            "repositories": [
                {"repo": "acme/api", "role": "serves account_id"},
                {"repo": "acme/web", "role": "reads account_id"}
            ]
        });
        let rendered = strike_delegation("cov_1", "acme/web", None, &covenant).unwrap();
        let body = text(&rendered);
        assert!(body.contains("Your repository's role: reads account_id"));
        assert!(body.contains("- acme/api: serves account_id"));
        assert!(strike_delegation("cov_1", "acme/db", None, &covenant).is_err());
    }
}
