//! The prompts: written for Harpoon's covenants, strikes and fusion, rendered
//! with the caller's real data (a covenant's text, a repository's role, a
//! fragment's measured hygiene).

use crate::backend::{BackendError, HarpoonBackend};
use crate::tools::FragmentArg;
use harpoon_bridge::{
    Cable, CableGraph, CableKind, Covenant, HarmonyChoice, HarmonyReview, NewCovenant, RepoChange,
    Role as RepoRole,
};
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
            Some("Draft a covenant (title, description, reality_state, target_state) worded so the harmony review finds the repositories involved, ready for the create_covenant tool."),
            Some(vec![
                argument("goal", "The change you want, in a sentence or two", true),
                argument("repositories", "The repositories you expect to take part, comma-separated (e.g. acme/api, acme/web)", true),
                argument("constraints", "Deadlines, compatibility rules or anything the change must respect", false),
            ]),
        )
        .with_title("Draft a covenant"),
        Prompt::new(
            names::COVENANT_HARMONY_REVIEW,
            Some("Judge a covenant's stored harmony review before a strike: is the anchor right, does every agnos need a change, should a left-out repository take part, given the scores and the cables."),
            Some(vec![argument("covenant_id", "The covenant to review (its stored harmony review and the cables are included)", true)]),
        )
        .with_title("Review a covenant's harmony"),
        Prompt::new(
            names::STRIKE_DELEGATION,
            Some("Brief an agent on one repository's share of a covenant's strike: its role from the stored harmony review (anchor or agnos), the other participants and the cables that touch it."),
            Some(vec![
                argument("covenant_id", "The covenant the strike carries out", true),
                argument("repository", "The repository to delegate (org/app), a participant of the covenant's harmony review", true),
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

/// Most cables a prompt lists; a large graph would drown the covenant.
const MAX_CABLES: usize = 40;

fn bullets(items: &[String], none: &str) -> String {
    if items.is_empty() {
        format!("- ({none})\n")
    } else {
        items.iter().map(|i| format!("- {i}\n")).collect()
    }
}

/// The covenant as the stored record says it: title, description, where the
/// repositories are and where they must get to.
fn covenant_text(c: &Covenant) -> String {
    let metadata = if c.metadata.is_empty() {
        String::new()
    } else {
        format!(
            "\nMetadata given with it: {}\n",
            Value::Object(c.metadata.clone())
        )
    };
    format!(
        "Covenant \"{title}\" ({id}, slug {slug})\n\
What it is about: {description}\n\n\
Reality state (today): {reality}\nKey aspects:\n{aspects}\n\
Target state (the goal): {target}\nSuccess criteria:\n{criteria}{metadata}",
        title = c.title,
        id = c.covenant_id,
        slug = c.slug,
        description = c.description,
        reality = c.reality_state.description,
        aspects = bullets(&c.reality_state.key_aspects, "none listed"),
        target = c.target_state.description,
        criteria = bullets(&c.target_state.success_criteria, "none listed"),
    )
}

fn role_name(role: Option<RepoRole>) -> &'static str {
    match role {
        Some(RepoRole::Anchor) => "anchor",
        Some(RepoRole::Agnos) => "agnos",
        None => "left out",
    }
}

/// One scored repository of a review, with the formula's parts.
fn choice_line(c: &HarmonyChoice) -> String {
    let terms = if c.matched_terms.is_empty() {
        "no covenant term matched".to_owned()
    } else {
        format!("matched terms: {}", c.matched_terms.join(", "))
    };
    format!(
        "{repo} ({role}): score {score:.2} = 0.7 × relevance {norm:.2} + 0.3 × centrality {centrality:.2} \
(BM25 {bm25:.2}); {terms}",
        repo = c.repo,
        role = role_name(c.role),
        score = c.score,
        norm = c.relevance_norm,
        centrality = c.centrality,
        bm25 = c.relevance,
    )
}

/// The stored review: anchor, agnos with their scores, and what was left out.
fn review_text(r: &HarmonyReview) -> String {
    let chosen: Vec<String> = r.choices.iter().map(choice_line).collect();
    let excluded: Vec<String> = r.excluded.iter().map(choice_line).collect();
    let unreadable: Vec<String> = r
        .unreadable
        .iter()
        .map(|p| format!("{}: {}", p.repo, p.reason))
        .collect();
    format!(
        "Harpoon's stored harmony review (created at {at} ms since the epoch):\n\
Anchor (leads): {anchor}\nAgnos (follow the anchor): {agnos}\n\
Participants, best first:\n{chosen}\
Left out (relevance under a quarter of the best):\n{excluded}\
Unreadable repositories:\n{unreadable}",
        at = r.created_at,
        anchor = r.anchor,
        agnos = if r.agnos.is_empty() {
            "(none)".to_owned()
        } else {
            r.agnos.join(", ")
        },
        chosen = bullets(&chosen, "none"),
        excluded = bullets(&excluded, "none"),
        unreadable = bullets(&unreadable, "none"),
    )
}

fn cable_line(c: &Cable) -> String {
    let kind = match c.kind {
        CableKind::DependsOn => "read from a manifest",
        CableKind::Declared => "declared",
    };
    format!(
        "{from} depends on {to} (strength {strength:.1}, {kind}: {evidence})",
        from = c.from,
        to = c.to,
        strength = c.strength,
        evidence = c.evidence,
    )
}

/// The cables `keep` selects, at most [`MAX_CABLES`], saying how many were cut.
fn cables_text(graph: &CableGraph, keep: impl Fn(&Cable) -> bool) -> String {
    let lines: Vec<String> = graph
        .cables
        .iter()
        .filter(|c| keep(c))
        .map(cable_line)
        .collect();
    let cut = lines.len().saturating_sub(MAX_CABLES);
    let mut text = bullets(&lines[..lines.len().min(MAX_CABLES)], "no cables");
    if cut > 0 {
        text.push_str(&format!(
            "- ({cut} more cables not shown; GET /v2/cables lists them)\n"
        ));
    }
    text
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
            let review = backend.stored_review(caller, id).await?;
            let cables = backend.cables(caller).await?;
            Ok(harmony_review(&covenant, review.as_ref(), &cables))
        }
        names::STRIKE_DELEGATION => {
            let id = required(args, names::STRIKE_DELEGATION, "covenant_id")?;
            let repo = required(args, names::STRIKE_DELEGATION, "repository")?;
            let covenant = backend.get_covenant(caller, id).await?;
            let review = backend.stored_review(caller, id).await?.ok_or_else(|| {
                PromptError::Invalid(format!(
                    "covenant {id} has no harmony review yet, so no repository has a role in it: \
call the harmony_review tool first"
                ))
            })?;
            let cables = backend.cables(caller).await?;
            strike_delegation(&covenant, &review, &cables, repo, optional(args, "notes"))
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
                idx: Some(0),
                lines,
                body: code.to_owned(),
            };
            let hygiene = backend.score_fragment(caller, fragment.clone()).await?;
            let hygiene: HygieneView = serde_json::from_value(hygiene)
                .map_err(|e| BackendError::internal(format!("hygiene report: {e}")))?;
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
    let schema = Value::Object((*schema_for_type::<NewCovenant>()).clone());
    let text = format!(
        "You are drafting a Harpoon covenant: where a set of repositories is today (the reality state) and \
where it must get to (the target state). Harpoon's harmony review then ranks the registered repositories \
by how well their README, file paths and source match the covenant's words (BM25) and by their place in the \
dependency graph, and picks the anchor that leads and the agnos that follow; a strike carries the change out \
as a branch, a commit and a pull request in each of them.\n\n\
Goal: {goal}\n\nRepositories expected to take part ({n}):\n{listed}\nConstraints: {constraints}\n\n\
Write:\n1. `title`: a few words (it becomes the branch slug);\n2. `description`: the change, so that a \
reviewer of any one pull request understands it without the others;\n3. `reality_state`: `description` of \
today and `key_aspects`, the facts that matter, in the words the repositories above use for them (their \
names, packages and files), so the review finds each of them;\n4. `target_state`: `description` of the goal \
and `success_criteria`, each one checkable.\n\
Flag any repository above that none of your words would match instead of padding the text. Other fields you \
add (an owner, a deadline) are kept as metadata. Then call the `create_covenant` tool with arguments matching \
this JSON schema:\n{schema}",
        n = repos.len(),
        schema = pretty(&schema),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
            format!("Draft a covenant across {} repositories", repos.len()),
        ),
    )
}

fn harmony_review(
    covenant: &Covenant,
    review: Option<&HarmonyReview>,
    graph: &CableGraph,
) -> GetPromptResult {
    let review_part = match review {
        Some(r) => review_text(r),
        None => format!(
            "No harmony review is stored for this covenant yet. Your registered repositories are: {}. \
The `harmony_review` tool ranks them and stores the result; get this prompt again afterwards to judge \
Harpoon's choice.\n",
            if graph.repos.is_empty() {
                "(none; register them with POST /v2/repos)".to_owned()
            } else {
                graph.repos.join(", ")
            }
        ),
    };
    let text = format!(
        "Review the harmony of a Harpoon covenant before a strike carries it out.\n\n{covenant}\n\
{review_part}\nCables between your repositories (who depends on whom):\n{cables}\n\
Judge whether the review is right: is the anchor the repository whose change must land first, given the \
cables? Does every agnos need a change for the success criteria to hold? Should a left-out repository take \
part after all (for example because it depends on the anchor)? Are the reality and target states specific \
enough for each participant to act alone? End with a verdict: strike with these targets (give \
`target_repos` for the `start_strike` tool in order, the anchor first), or what must change first.",
        covenant = covenant_text(covenant),
        cables = cables_text(graph, |_| true),
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
        .with_description(format!("Harmony review of covenant {}", covenant.title))
}

fn strike_delegation(
    covenant: &Covenant,
    review: &HarmonyReview,
    graph: &CableGraph,
    repo: &str,
    notes: Option<&str>,
) -> Result<GetPromptResult, PromptError> {
    let Some(choice) = review.choices.iter().find(|c| c.repo == repo) else {
        let known: Vec<&str> = review.choices.iter().map(|c| c.repo.as_str()).collect();
        return Err(PromptError::Invalid(format!(
            "repository {repo:?} takes no part in covenant {id} by its harmony review; the participants are: {}",
            known.join(", "),
            id = covenant.covenant_id,
        )));
    };
    let role = match choice.role {
        Some(RepoRole::Anchor) => {
            "the anchor: your change lands first, and the other repositories' pull \
requests link to yours and code against what it provides"
                .to_owned()
        }
        _ => format!(
            "an agnos: you follow the anchor {anchor}; code against the interface its change provides and \
link its pull request",
            anchor = review.anchor
        ),
    };
    let others: Vec<String> = review
        .choices
        .iter()
        .filter(|c| c.repo != repo)
        .map(|c| format!("{} ({})", c.repo, role_name(c.role)))
        .collect();
    let schema = Value::Object((*schema_for_type::<RepoChange>()).clone());
    let text = format!(
        "You are the delegate for {repo} in the strike of a Harpoon covenant.\n\n{covenant}\n\
Your repository's role: {role}.\nWhy it was chosen: {why}\n\n\
The other participants:\n{others}\nCables that touch {repo}:\n{cables}\n\
Make only the changes your role calls for. The strike puts them on the branch \
`harpoon/{slug}-<run id>` as one commit, adds `.harpoon/covenants/{id}.md` itself, and opens the pull \
request. Where you depend on another participant's change, code against what its role promises and say so \
in the pull-request body. If the role cannot be carried out as stated, stop and report why rather than \
widening the change. Answer with your repository's entry of the `start_strike` tool's `changes`, matching \
this JSON schema:\n{schema}{notes}",
        covenant = covenant_text(covenant),
        why = choice_line(choice),
        others = bullets(&others, "none"),
        cables = cables_text(graph, |c| c.from == repo || c.to == repo),
        slug = covenant.slug,
        id = covenant.covenant_id,
        schema = pretty(&schema),
        notes = notes
            .map(|n| format!("\n\nNotes from the requester: {n}"))
            .unwrap_or_default(),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
            format!(
                "Delegation of {repo} ({}) in covenant {}",
                role_name(choice.role),
                covenant.title
            ),
        ),
    )
}

/// The parts of harpoon-core's `Hygiene` report a prompt renders.
#[derive(Debug, serde::Deserialize)]
struct HygieneView {
    score: f64,
    language: String,
    signals: Vec<SignalView>,
}

/// One signal of the report.
#[derive(Debug, serde::Deserialize)]
struct SignalView {
    name: String,
    value: f64,
    severity: f64,
    weight: f64,
    contribution: f64,
    #[serde(default)]
    detail: Option<String>,
}

fn fusion_hygiene(fragment: &FragmentArg, hygiene: &HygieneView) -> GetPromptResult {
    let mut lowering: Vec<&SignalView> = hygiene
        .signals
        .iter()
        .filter(|s| s.contribution > 0.0)
        .collect();
    lowering.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    let lowered: Vec<String> = lowering
        .iter()
        .map(|s| {
            format!(
                "{name}: measured {value}, severity {severity:.2} × weight {weight:.2} took {took:.3} off{detail}",
                name = s.name,
                value = s.value,
                severity = s.severity,
                weight = s.weight,
                took = s.contribution,
                detail = s
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let clean: Vec<&str> = hygiene
        .signals
        .iter()
        .filter(|s| s.contribution <= 0.0)
        .map(|s| s.name.as_str())
        .collect();
    let text = format!(
        "Harpoon's fusion read this fragment of {path} (lines {lines}) as {language} and scored its hygiene \
{score:.2} on a 0–1 scale (1 − Σ weight × severity); fragments under the configured threshold are refined or \
left pending instead of absorbed into envelopes.\n\nThe signals that lowered the score, worst first:\n\
{lowered}\nSignals that cost nothing: {clean}.\n\nThe fragment:\n```\n{body}\n```\n\n\
Rewrite the fragment so the signals that lowered the score go away, without changing its behaviour or its \
public names. Explain each change by the signal it answers, and say which signals you left alone and why.",
        path = fragment.path,
        lines = fragment.lines,
        language = hygiene.language,
        score = hygiene.score,
        lowered = bullets(&lowered, "none: the fragment is clean by every signal"),
        clean = if clean.is_empty() {
            "none".to_owned()
        } else {
            clean.join(", ")
        },
        body = fragment.body,
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(format!(
        "Hygiene clean-up of {} (score {:.2})",
        fragment.path, hygiene.score
    ))
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
            body.contains("\"reality_state\"") && body.contains("\"success_criteria\""),
            "the tool's schema (the bridge's NewCovenant) is included"
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

    /// The records as the bridge serialises them (REST's JSON).
    fn stored() -> (Covenant, HarmonyReview, CableGraph) {
        let covenant = serde_json::from_value(json!({
            "covenant_id": "cov_1",
            "title": "Session cookies to JWT",
            "slug": "session-cookies-to-jwt",
            "description": "Replace session cookies with signed JWTs.",
            "reality_state": {"description": "Login sets a session cookie.",
                              "key_aspects": ["session store"]},
            "target_state": {"description": "Login returns a JWT.",
                             "success_criteria": ["no session store"]},
            "metadata": {"owner": "platform"},
            "created_at": 1
        }))
        .unwrap();
        let choice = |repo: &str, role: Value, score: f64| {
            json!({"repo": repo, "role": role, "relevance": 3.5, "relevance_norm": 1.0,
                   "centrality": 0.5, "score": score, "matched_terms": ["session", "cookie"]})
        };
        let review = serde_json::from_value(json!({
            "covenant_id": "cov_1",
            "anchor": "acme/auth",
            "agnos": ["acme/web"],
            "choices": [choice("acme/auth", json!("anchor"), 0.85), choice("acme/web", json!("agnos"), 0.61)],
            "excluded": [choice("acme/docs", Value::Null, 0.05)],
            "unreadable": [{"repo": "acme/gone", "reason": "git ls-remote failed"}],
            "created_at": 2
        }))
        .unwrap();
        let graph = serde_json::from_value(json!({
            "repos": ["acme/auth", "acme/docs", "acme/web"],
            "cables": [{"from": "acme/web", "to": "acme/auth", "kind": "depends_on",
                        "strength": 1.0, "evidence": "package.json: auth-core"}],
            "unreadable": []
        }))
        .unwrap();
        (covenant, review, graph)
    }

    #[test]
    fn harmony_review_renders_the_covenant_the_stored_review_and_the_cables() {
        let (covenant, review, graph) = stored();
        let body = text(&harmony_review(&covenant, Some(&review), &graph));
        for part in [
            "Covenant \"Session cookies to JWT\" (cov_1",
            "Reality state (today): Login sets a session cookie.",
            "- session store\n",
            "Target state (the goal): Login returns a JWT.",
            "- no session store\n",
            "\"owner\":\"platform\"",
            "Anchor (leads): acme/auth",
            "Agnos (follow the anchor): acme/web",
            "acme/web (agnos): score 0.61 = 0.7 × relevance 1.00 + 0.3 × centrality 0.50",
            "acme/docs (left out): score 0.05",
            "acme/gone: git ls-remote failed",
            "acme/web depends on acme/auth (strength 1.0, read from a manifest: package.json: auth-core)",
        ] {
            assert!(body.contains(part), "{part:?} missing from:\n{body}");
        }
        let unreviewed = text(&harmony_review(&covenant, None, &graph));
        assert!(unreviewed.contains("No harmony review is stored"));
        assert!(unreviewed.contains("acme/auth, acme/docs, acme/web"));
    }

    #[test]
    fn hygiene_lists_the_signals_that_cost_worst_first() {
        // The shape harpoon-core's Hygiene serialises to.
        let hygiene: HygieneView = serde_json::from_value(json!({
            "score": 0.8, "language": "python",
            "signals": [
                {"name": "syntax_errors", "value": 0.0, "severity": 0.0, "weight": 0.5, "contribution": 0.0},
                {"name": "long_lines", "value": 1.0, "severity": 0.2, "weight": 0.05, "contribution": 0.01},
                {"name": "debug_output", "value": 2.0, "severity": 1.0, "weight": 0.15, "contribution": 0.15,
                 "detail": "print at line 2"}
            ]
        }))
        .unwrap();
        let fragment = FragmentArg {
            path: "a.py".into(),
            idx: Some(0),
            lines: "1-2".into(),
            body: "def f():\n    print(1)\n".into(),
        };
        let body = text(&fusion_hygiene(&fragment, &hygiene));
        assert!(body.contains("as python and scored its hygiene 0.80"));
        let debug = body.find("- debug_output: measured 2, severity 1.00 × weight 0.15 took 0.150 off (print at line 2)").unwrap();
        let long = body.find("- long_lines: measured 1").unwrap();
        assert!(debug < long, "worst first");
        assert!(body.contains("Signals that cost nothing: syntax_errors."));
    }

    #[test]
    fn delegation_uses_the_reviewed_role_and_refuses_strangers() {
        let (covenant, review, graph) = stored();
        let rendered =
            strike_delegation(&covenant, &review, &graph, "acme/web", Some("be quick")).unwrap();
        let body = text(&rendered);
        assert!(body.contains("Your repository's role: an agnos: you follow the anchor acme/auth"));
        assert!(body.contains("- acme/auth (anchor)\n"));
        assert!(body.contains("acme/web depends on acme/auth"));
        assert!(body.contains("`harpoon/session-cookies-to-jwt-<run id>`"));
        assert!(body.contains("\"diff\""), "RepoChange's schema is included");
        assert!(body.ends_with("Notes from the requester: be quick"));
        let anchor =
            text(&strike_delegation(&covenant, &review, &graph, "acme/auth", None).unwrap());
        assert!(anchor.contains("Your repository's role: the anchor"));
        // Left out by the review, or unknown: no role to delegate.
        for stranger in ["acme/docs", "acme/db"] {
            let refused =
                strike_delegation(&covenant, &review, &graph, stranger, None).unwrap_err();
            assert!(
                refused.to_string().contains("acme/auth, acme/web"),
                "{refused}"
            );
        }
    }
}
