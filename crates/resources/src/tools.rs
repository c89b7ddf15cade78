//! The tools: their argument types (whose JSON schemas clients see) and the
//! catalogue entries. `create_covenant` and `start_strike` take the bridge's
//! own request types, so MCP and REST accept exactly the same input.

use harpoon_bridge::{NewCovenant, StrikeRequest};
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `classify`: `text` or `messages`, exactly one.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyArgs {
    /// The prompt to classify; must contain more than whitespace. Give this or `messages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A conversation to classify instead of `text`: the last `user` message
    /// is classified, the user messages before it weigh in as context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<TurnArg>>,
    /// Also return the signals that moved the score most.
    #[serde(default)]
    pub explain: bool,
}

/// One message of a conversation given to `classify`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnArg {
    /// Who wrote it.
    pub role: TurnRole,
    /// Its text.
    pub content: String,
}

/// Author of a message given to `classify`, as in chat completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TurnRole {
    /// Instructions from the application.
    System,
    /// OpenAI's newer name for `system`.
    Developer,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// A tool result.
    Tool,
    /// A function result.
    Function,
}

/// Arguments of `run`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunArgs {
    /// The prompt; must contain more than whitespace.
    pub text: String,
    /// `auto` (default) routes by complexity; a configured model name pins it.
    #[serde(default)]
    pub model: Option<String>,
    /// Most tokens to generate (clamped to the model's limit).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, 0 to 2.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 2.0))]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass, (0, 1].
    #[serde(default)]
    pub top_p: Option<f32>,
}

/// One code fragment, as `POST /v2/fragments` takes it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FragmentArg {
    /// Path of the file; its extension picks the language (`.rs`, `.py`, `.ts`, …), else the content does.
    #[serde(default)]
    pub path: String,
    /// Position in the file or request; defaults to the fragment's index in the list.
    #[serde(default)]
    pub idx: Option<u32>,
    /// Line range in the file, e.g. `10-42`; reported back unchanged.
    #[serde(default)]
    pub lines: String,
    /// The code; must contain more than whitespace.
    pub body: String,
}

/// Arguments of `process_fragments`: the body of `POST /v2/fragments`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessFragmentsArgs {
    /// The fragments, at least one (at most `harpoon.max_fragments`).
    #[schemars(length(min = 1))]
    pub fragments: Vec<FragmentArg>,
    /// Score a fragment needs to be absorbed, 0–1; default `harpoon.hygiene_threshold`.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub hygiene_threshold: Option<f64>,
    /// Refinement rounds, 0–1000; default `harpoon.max_iterations`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub max_iterations: Option<u32>,
    /// `mechanical` (safe fixes, free) or `model` (then the small tier rewrites; costs tokens); default `harpoon.refiner`.
    #[serde(default)]
    pub refiner: Option<harpoon_core::RefinerKind>,
}

/// Arguments naming one covenant.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CovenantIdArgs {
    /// The covenant's id.
    pub covenant_id: String,
}

/// Arguments of `strike_status`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrikeStatusArgs {
    /// The run id `start_strike` returned.
    pub run_id: String,
}

/// Tool names.
pub mod names {
    /// `classify`.
    pub const CLASSIFY: &str = "classify";
    /// `run`.
    pub const RUN: &str = "run";
    /// `process_fragments`.
    pub const PROCESS_FRAGMENTS: &str = "process_fragments";
    /// `create_covenant`.
    pub const CREATE_COVENANT: &str = "create_covenant";
    /// `harmony_review`.
    pub const HARMONY_REVIEW: &str = "harmony_review";
    /// `start_strike`.
    pub const START_STRIKE: &str = "start_strike";
    /// `strike_status`.
    pub const STRIKE_STATUS: &str = "strike_status";
}

fn annotations(read_only: bool, idempotent: bool, open_world: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(false)
        .idempotent(idempotent)
        .open_world(open_world)
}

/// Every tool, with its input schema.
pub fn catalogue() -> Vec<Tool> {
    vec![
        Tool::new(
            names::CLASSIFY,
            "Classify a prompt (`text`) or the last turn of a conversation (`messages`) as simple or complex: the tier (small/large) and model Harpoon's router would send it to, with a calibrated complexity in [0, 1]. Microseconds; no model runs.",
            schema_for_type::<ClassifyArgs>(),
        )
        .with_title("Classify a prompt")
        .annotate(annotations(true, true, false)),
        Tool::new(
            names::RUN,
            "Route a prompt by complexity (or to a named model) and generate the answer; counts against the caller's token quota like POST /run.",
            schema_for_type::<RunArgs>(),
        )
        .with_title("Run a prompt")
        .annotate(annotations(false, false, false)),
        Tool::new(
            names::PROCESS_FRAGMENTS,
            "Fusion (as POST /v2/fragments): score code fragments for hygiene (twelve reported signals), drop duplicates, refine those under the threshold for at most max_iterations rounds and absorb the rest into an envelope with an anchor chain.",
            schema_for_type::<ProcessFragmentsArgs>(),
        )
        .with_title("Fuse code fragments")
        .annotate(annotations(true, true, false)),
        Tool::new(
            names::CREATE_COVENANT,
            "Create a covenant (as POST /v2/covenant): where a set of repositories is today (reality_state) and where it must get to (target_state). Fields beyond the known ones are kept in metadata. Answers with the stored covenant and its covenant_id.",
            schema_for_type::<NewCovenant>(),
        )
        .with_title("Create a covenant")
        .annotate(annotations(false, false, false)),
        Tool::new(
            names::HARMONY_REVIEW,
            "Harmony review of a covenant (as POST /v2/covenant/{id}/harmony): ranks your registered repositories against its text (BM25) and their place in the cable graph, picks the anchor that leads and the agnos that follow, and stores the review for start_strike.",
            schema_for_type::<CovenantIdArgs>(),
        )
        .with_title("Harmony review")
        // It stores the review (a write), the same one again for the same repositories.
        .annotate(annotations(false, true, true)),
        Tool::new(
            names::START_STRIKE,
            "Start a strike (as POST /v2/strike): a branch, a commit and a pull request in every target repository (default: the stored harmony review's anchor and agnos), with the given changes or generated ones. Answers with the run_id; follow it with strike_status.",
            schema_for_type::<StrikeRequest>(),
        )
        .with_title("Start a strike")
        .annotate(annotations(false, false, true)),
        Tool::new(
            names::STRIKE_STATUS,
            "A strike's state and, per repository, its role, phase, branch, commit, pull request and error (as GET /v2/strike/{run_id}).",
            schema_for_type::<StrikeStatusArgs>(),
        )
        .with_title("Strike status")
        .annotate(annotations(true, true, false)),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_with_its_required_fields() {
        let tools = catalogue();
        assert_eq!(tools.len(), 7);
        let classify = tools.iter().find(|t| t.name == names::CLASSIFY).unwrap();
        assert_eq!(classify.input_schema["type"], "object");
        // `text` or `messages`, exactly one (checked by the service): neither
        // is required by the schema, both are described.
        assert!(
            classify
                .input_schema
                .get("required")
                .is_none_or(|r| r == &serde_json::json!([]))
        );
        let properties = classify.input_schema["properties"].as_object().unwrap();
        assert!(properties.contains_key("text") && properties.contains_key("messages"));
        for tool in &tools {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        }
    }

    #[test]
    fn covenant_and_strike_tools_take_the_bridge_request_types() {
        let tools = catalogue();
        let schema = |name: &str| {
            tools
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .input_schema
                .clone()
        };
        let covenant = schema(names::CREATE_COVENANT);
        assert_eq!(covenant["type"], "object");
        assert_eq!(
            covenant["required"],
            serde_json::json!(["title", "description", "reality_state", "target_state"])
        );
        // Unknown fields are kept as metadata, as over REST, so they are allowed.
        assert_ne!(covenant["additionalProperties"], false);
        let reality = serde_json::to_string(&covenant).unwrap();
        assert!(reality.contains("key_aspects") && reality.contains("success_criteria"));
        let strike = schema(names::START_STRIKE);
        assert_eq!(strike["type"], "object");
        assert_eq!(strike["required"], serde_json::json!(["covenant_id"]));
        assert_eq!(strike["additionalProperties"], false);
        for field in ["target_repos", "changes", "generate"] {
            assert!(strike["properties"].get(field).is_some(), "{field}");
        }
    }
}
