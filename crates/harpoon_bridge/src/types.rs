//! The serde types of covenants, repositories, cables, reviews and strikes.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where the repositories are today.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RealityState {
    /// The present state in prose.
    pub description: String,
    /// What matters about it.
    #[serde(default)]
    pub key_aspects: Vec<String>,
}

/// Where they must get to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct TargetState {
    /// The goal in prose.
    pub description: String,
    /// How to tell it is reached.
    #[serde(default)]
    pub success_criteria: Vec<String>,
}

/// Body of a new covenant; unknown fields land in `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct NewCovenant {
    /// Short name; also the branch slug.
    pub title: String,
    /// What the change is about.
    pub description: String,
    /// Today.
    pub reality_state: RealityState,
    /// The goal.
    pub target_state: TargetState,
    /// Every other field the client sent, kept as given.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
}

/// A stored covenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Covenant {
    /// `cov_…`.
    pub covenant_id: String,
    /// Short name.
    pub title: String,
    /// Lower-case, dash-separated title, used in branch names.
    pub slug: String,
    /// What the change is about.
    pub description: String,
    /// Today.
    pub reality_state: RealityState,
    /// The goal.
    pub target_state: TargetState,
    /// Fields the client sent beyond the known ones.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Which page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    /// Items per page (1 to 200).
    pub limit: u32,
    /// Items skipped.
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: 50,
            offset: 0,
        }
    }
}

/// One page of a list, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// The offset used.
    pub offset: u64,
    /// Offset of the next page, when there is one.
    pub next_offset: Option<u64>,
}

/// Body of `POST /v2/repos`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRepo {
    /// `org/app`.
    pub name: String,
    /// Git URL (https, ssh, file) or a local path.
    pub url: String,
    /// Branch strikes start from; default `main`.
    #[serde(default)]
    pub default_branch: Option<String>,
    /// `owner/name` on GitHub for pull requests; inferred from github.com URLs.
    #[serde(default)]
    pub github_repo: Option<String>,
}

/// A registered repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Repo {
    /// `org/app`.
    pub name: String,
    /// Where it is cloned from and pushed to.
    pub url: String,
    /// Branch strikes start from.
    pub default_branch: String,
    /// `owner/name` on GitHub, when pull requests are opened there.
    pub github_repo: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// How a cable was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CableKind {
    /// Read from a manifest: `from` depends on `to`.
    DependsOn,
    /// Declared by hand.
    Declared,
}

/// A link from one repository to another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cable {
    /// The dependent repository.
    pub from: String,
    /// The repository it relies on.
    pub to: String,
    /// How it was found.
    pub kind: CableKind,
    /// Weight in (0, 1]: 1 for runtime dependencies, 0.5 for dev/build ones.
    pub strength: f64,
    /// The manifest and entry it came from, or `declared`.
    pub evidence: String,
}

/// Body of `POST /v2/cables`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCable {
    /// The dependent repository.
    pub from: String,
    /// The repository it relies on.
    pub to: String,
    /// Weight in (0, 1]; default 1.
    #[serde(default)]
    pub strength: Option<f64>,
}

/// The cable graph of a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CableGraph {
    /// Registered repositories.
    pub repos: Vec<String>,
    /// Inferred and declared cables.
    pub cables: Vec<Cable>,
    /// Repositories that could not be read, with the reason.
    pub unreadable: Vec<RepoProblem>,
}

/// A repository that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoProblem {
    /// `org/app`.
    pub repo: String,
    /// What went wrong.
    pub reason: String,
}

/// Part a repository plays in a strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Leads: its change comes first and the others link to it.
    Anchor,
    /// Follows the anchor.
    Agnos,
}

/// One repository's place in a harmony review, with every score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarmonyChoice {
    /// `org/app`.
    pub repo: String,
    /// Anchor or agnos; `None` for repositories left out.
    pub role: Option<Role>,
    /// BM25 of the repository's text against the covenant.
    pub relevance: f64,
    /// Relevance divided by the best one, in [0, 1].
    pub relevance_norm: f64,
    /// Weighted share of cables pointing at it, in [0, 1].
    pub centrality: f64,
    /// `0.7 · relevance_norm + 0.3 · centrality`.
    pub score: f64,
    /// Covenant terms that matched most, best first.
    pub matched_terms: Vec<String>,
}

/// Which repositories take part in a covenant, and who leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HarmonyReview {
    /// The covenant reviewed.
    pub covenant_id: String,
    /// The leading repository.
    pub anchor: String,
    /// The followers, best first.
    pub agnos: Vec<String>,
    /// Every participant with its scores, anchor first.
    pub choices: Vec<HarmonyChoice>,
    /// Repositories left out (relevance below the cut), with their scores.
    pub excluded: Vec<HarmonyChoice>,
    /// Repositories that could not be read.
    pub unreadable: Vec<RepoProblem>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A file to write, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct FileWrite {
    /// Path relative to the repository root.
    pub path: String,
    /// The new content.
    pub content: String,
}

/// The given change of one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RepoChange {
    /// `org/app`.
    pub repo: String,
    /// Files to write.
    #[serde(default)]
    pub files: Vec<FileWrite>,
    /// A unified diff applied with `git apply`.
    #[serde(default)]
    pub diff: Option<String>,
    /// Pull-request title; default from the covenant.
    #[serde(default)]
    pub title: Option<String>,
    /// Pull-request text above the generated links.
    #[serde(default)]
    pub body: Option<String>,
}

/// Body of `POST /v2/strike`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StrikeRequest {
    /// The covenant to carry out.
    pub covenant_id: String,
    /// Repositories to change, the first leading; default the stored harmony review.
    #[serde(default)]
    pub target_repos: Option<Vec<String>>,
    /// Given changes per repository (deterministic).
    #[serde(default)]
    pub changes: Option<Vec<RepoChange>>,
    /// Let the large tier write the changes.
    #[serde(default)]
    pub generate: bool,
}

/// Where one repository of a strike is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for a worker.
    Queued,
    /// Cloning or fetching.
    Cloning,
    /// Writing the change into the branch.
    Applying,
    /// Committing.
    Committing,
    /// Pushing the branch.
    Pushing,
    /// Branch pushed; pull request still to come.
    Pushed,
    /// Opening the pull request.
    OpeningPr,
    /// Finished: pull request open, or branch pushed where there is no GitHub.
    Done,
    /// Failed; `error` says why.
    Failed,
    /// Stopped by a cancel.
    Cancelled,
    /// The service stopped while it ran; resumable.
    Interrupted,
}

impl Phase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Cloning => "cloning",
            Self::Applying => "applying",
            Self::Committing => "committing",
            Self::Pushing => "pushing",
            Self::Pushed => "pushed",
            Self::OpeningPr => "opening_pr",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }

    /// Whether no more work will happen without a resume.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Failed | Self::Cancelled | Self::Interrupted
        )
    }
}

/// One repository of a strike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepoRun {
    /// `org/app`.
    pub repo: String,
    /// Anchor or agnos.
    pub role: Role,
    /// Where it is.
    pub phase: Phase,
    /// `harpoon/<covenant-slug>-<short-run-id>`.
    pub branch: String,
    /// The commit pushed, once there is one.
    pub commit: Option<String>,
    /// The pull request, once open.
    pub pr_url: Option<String>,
    /// Its number on GitHub.
    pub pr_number: Option<i64>,
    /// `open`, `closed` or `merged`, as the monitor last saw it.
    pub pr_state: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// A strike and each of its repositories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrikeStatus {
    /// `run_…`.
    pub run_id: String,
    /// The covenant carried out.
    pub covenant_id: String,
    /// `running`, `done`, `partial`, `failed`, `cancelled` or `interrupted`.
    pub state: String,
    /// Whether the change was generated by the model.
    pub generate: bool,
    /// Per repository, anchor first.
    pub repos: Vec<RepoRun>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last change.
    pub updated_at: i64,
}

/// One step of progress, as sent on the events stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StrikeEvent {
    /// The strike.
    pub run_id: String,
    /// The repository, or `None` for the strike as a whole.
    pub repo: Option<String>,
    /// Repository phase, or the strike's state when `repo` is `None`.
    pub phase: String,
    /// What happened, in words.
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
}
