//! Harpoon bridge: covenants (where a set of repositories is and must get to),
//! harmony review (which repositories take part, and which one leads), strikes
//! (real branches, commits and pull requests in each), and cables (the links
//! between repositories), with their storage. It does not serve HTTP.
//!
//! Git runs through the `git` command line; pull requests through GitHub's
//! REST API; storage through the service's `sqlx` pool (SQLite or
//! PostgreSQL, schema in the service's `0002_bridge.sql` migration).

pub mod error;
mod fair;
pub mod generate;
pub mod git;
pub mod github;
pub mod harmony;
mod lease;
pub mod remote;
pub mod scan;
pub mod settings;
pub mod store;
mod strike;
pub mod types;
pub mod validate;

pub use error::BridgeError;
pub use generate::{HygieneGate, UsageSink};
pub use settings::BridgeSettings;
pub use types::*;

use crate::git::{GitEnv, git};
use crate::github::{GitHub, github_repo_of};
use crate::remote::{Remote, Transport};
use crate::scan::Scan;
use crate::store::{Store, new_id, now_ms};
use orchestrator::registry::ModelHandle;
use sqlx::AnyPool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// Mirrors one tenant's read fetches at once.
const MIRROR_READS: usize = 4;

/// A running strike's controls.
struct Live {
    cancel: watch::Sender<bool>,
    events: broadcast::Sender<StrikeEvent>,
}

struct Inner {
    store: Store,
    settings: BridgeSettings,
    workspace: PathBuf,
    gate: Arc<dyn HygieneGate>,
    /// The large-tier model and the hygiene bar, set once after construction.
    generation: std::sync::OnceLock<(Arc<ModelHandle>, f64)>,
    /// Where the generate path's tokens are recorded, set once after construction.
    usage: std::sync::OnceLock<Arc<dyn UsageSink>>,
    github: GitHub,
    /// Strike slots: `parallelism` in all, shared fairly between tenants.
    slots: Arc<fair::FairSlots>,
    /// How git runs: transports, ssh command, step limit.
    git: GitEnv,
    /// One lock per mirror directory: two reads of one tenant's repository
    /// must not fetch into it at once, and nothing else has to wait for them.
    mirrors: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    live: Mutex<HashMap<String, Live>>,
    /// This replica, when several share strikes (see `lease.rs`).
    owner: std::sync::OnceLock<store::StrikeOwner>,
}

/// The bridge: cheap to clone, everything inside is shared.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("workspace", &self.inner.workspace)
            .finish_non_exhaustive()
    }
}

/// Checks a path a change writes: relative, inside the repository, never
/// in `.git` (in any spelling a case-insensitive, NTFS or HFS+ file system
/// reads as `.git`) and never `.gitmodules`.
pub fn check_path(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if p.is_absolute() || path.starts_with('/') || path.contains('\\') {
        return Err(format!("{path:?} must be relative to the repository root"));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{path:?} contains control characters"));
    }
    if p.components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(format!("{path:?} must not contain `..` or `.` segments"));
    }
    for component in path.split('/') {
        match special_name(component) {
            Some(SpecialName::Git) => return Err(format!("{path:?} is inside .git")),
            // Harpoon's changes are code, not submodule wiring: a
            // `.gitmodules` it wrote would point every later clone with
            // submodules at URLs a tenant chose, and git itself treats the
            // file as special (fsck checks it, verify_path refuses it as a link).
            Some(SpecialName::GitModules) => {
                return Err(format!(
                    "{path:?} writes .gitmodules, which changes are not allowed to"
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// Names git gives a meaning of their own.
enum SpecialName {
    Git,
    GitModules,
}

/// Whether `component` is, on some file system, `.git` or `.gitmodules`:
/// compared without case, without the code points HFS+ ignores, without
/// the trailing dots and spaces NTFS drops or an NTFS stream suffix (`:…`),
/// and in their NTFS short forms (`git~1`, `gitmod~N`), as git's
/// `verify_path` does.
fn special_name(component: &str) -> Option<SpecialName> {
    const HFS_IGNORED: [std::ops::RangeInclusive<char>; 4] = [
        '\u{200c}'..='\u{200f}',
        '\u{202a}'..='\u{202e}',
        '\u{206a}'..='\u{206f}',
        '\u{feff}'..='\u{feff}',
    ];
    let folded: String = component
        .chars()
        .filter(|c| !HFS_IGNORED.iter().any(|r| r.contains(c)))
        .collect::<String>()
        .to_lowercase();
    let base = folded.split(':').next().unwrap_or("");
    let base = base.trim_end_matches(['.', ' ']);
    if base == ".git" || base == "git~1" {
        return Some(SpecialName::Git);
    }
    let short_modules = base
        .strip_prefix("gitmod~")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if base == ".gitmodules" || short_modules {
        return Some(SpecialName::GitModules);
    }
    None
}

/// Lower-case words of the title joined by dashes, at most 40 characters.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if out.len() + word.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    if out.is_empty() {
        "covenant".into()
    } else {
        out
    }
}

fn non_blank(field: &str, value: &str) -> Result<(), BridgeError> {
    if value.trim().is_empty() {
        return Err(BridgeError::invalid(
            field,
            "must not be empty or whitespace",
        ));
    }
    Ok(())
}

/// Checks a new covenant, naming the first bad field: the title one line of
/// at most 200 characters without control or format characters, prose
/// bounded with line feeds and tabs as its only control characters, list
/// items single lines, metadata bounded (see [`validate`]).
pub fn validate_covenant(c: &NewCovenant) -> Result<(), BridgeError> {
    use crate::validate::{ITEM_MAX, ITEMS_MAX, TEXT_MAX, TITLE_MAX, single_line, text};
    single_line("title", &c.title, TITLE_MAX)?;
    for (field, value) in [
        ("description", &c.description),
        ("reality_state.description", &c.reality_state.description),
        ("target_state.description", &c.target_state.description),
    ] {
        non_blank(field, value)?;
        text(field, value, TEXT_MAX)?;
    }
    for (field, items) in [
        ("reality_state.key_aspects", &c.reality_state.key_aspects),
        (
            "target_state.success_criteria",
            &c.target_state.success_criteria,
        ),
    ] {
        if items.len() > ITEMS_MAX {
            return Err(BridgeError::invalid(
                field,
                format!("must have at most {ITEMS_MAX} items"),
            ));
        }
        for (i, a) in items.iter().enumerate() {
            single_line(&format!("{field}[{i}]"), a, ITEM_MAX)?;
        }
    }
    validate::metadata(&c.metadata)
}

/// Directory name of a repository (or tenant) in the workspace: a readable,
/// sanitized prefix plus the first 16 hex characters of the SHA-256 of the
/// full name. The hash is what keeps names apart: any text mapping alone
/// (such as `/` → `__`) lets `a__b/c` and `a/b__c` share a clone, and a
/// strike would then commit one repository's change into the other's remote.
fn dir_name(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    // Only characters safe in any file name; no dots, so never `.` or `..`.
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{readable}-{}", &digest[..16])
}

impl Bridge {
    /// A bridge over a migrated pool, working under `settings.workspace_dir`
    /// (or `<data_dir>/bridge`), gating generated files with `gate`.
    pub fn new(
        pool: AnyPool,
        settings: &BridgeSettings,
        data_dir: &Path,
        gate: Arc<dyn HygieneGate>,
    ) -> Result<Self, BridgeError> {
        let workspace = settings
            .workspace_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("bridge"));
        let workspace = if workspace.is_absolute() {
            workspace
        } else {
            std::env::current_dir()
                .map_err(|e| BridgeError::Git(format!("working directory: {e}")))?
                .join(workspace)
        };
        let github = GitHub::new(
            &settings.github_api_url,
            settings
                .github_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                store: Store::new(pool),
                settings: settings.clone(),
                workspace,
                gate,
                generation: std::sync::OnceLock::new(),
                usage: std::sync::OnceLock::new(),
                github,
                slots: fair::FairSlots::new(
                    settings.parallelism,
                    settings.effective_tenant_parallelism(),
                ),
                git: GitEnv::from_settings(settings),
                mirrors: Mutex::new(HashMap::new()),
                live: Mutex::new(HashMap::new()),
                owner: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Sets the large-tier model for the generate path and the hygiene score
    /// each generated file needs (the first call wins). Without a model, a
    /// generate strike fails each repository with that reason.
    pub fn with_generation(self, model: Option<Arc<ModelHandle>>, threshold: f64) -> Self {
        if let Some(model) = model {
            let _ = self.inner.generation.set((model, threshold));
        }
        self
    }

    /// Records the generate path's token spend through `sink`.
    pub fn with_usage_sink(self, sink: Arc<dyn UsageSink>) -> Self {
        let _ = self.inner.usage.set(sink);
        self
    }

    /// Where clones live.
    pub fn workspace(&self) -> &Path {
        &self.inner.workspace
    }

    /// Stores a new covenant for the tenant.
    pub async fn create_covenant(
        &self,
        tenant: &str,
        new: NewCovenant,
    ) -> Result<Covenant, BridgeError> {
        validate_covenant(&new)?;
        let mut metadata = new.metadata;
        // A client that sends `metadata` itself means its content, not a nested copy.
        if let Some(serde_json::Value::Object(given)) = metadata.remove("metadata") {
            for (k, v) in given {
                metadata.entry(k).or_insert(v);
            }
        }
        let covenant = Covenant {
            covenant_id: new_id("cov"),
            slug: slug(&new.title),
            title: new.title.trim().to_owned(),
            description: new.description,
            reality_state: new.reality_state,
            target_state: new.target_state,
            metadata,
            created_at: now_ms(),
        };
        self.inner.store.insert_covenant(tenant, &covenant).await?;
        Ok(covenant)
    }

    /// A covenant of the tenant.
    pub async fn get_covenant(&self, tenant: &str, id: &str) -> Result<Covenant, BridgeError> {
        self.inner.store.covenant(tenant, id).await
    }

    /// A page of the tenant's covenants, newest first.
    pub async fn list_covenants(
        &self,
        tenant: &str,
        page: Page,
    ) -> Result<Paged<Covenant>, BridgeError> {
        if !(1..=200).contains(&page.limit) {
            return Err(BridgeError::invalid("limit", "must be between 1 and 200"));
        }
        self.inner.store.covenants(tenant, page).await
    }

    /// Deletes a covenant and its stored review.
    pub async fn delete_covenant(&self, tenant: &str, id: &str) -> Result<(), BridgeError> {
        self.inner.store.delete_covenant(tenant, id).await
    }

    /// What `url` is, when this deployment accepts it as a remote: refuses
    /// git's helpers and unknown schemes, local paths unless
    /// `bridge.allow_local_remotes`, ssh unless `bridge.allow_ssh_remotes`.
    /// Also asked before every clone or fetch of a stored repository, so
    /// turning a setting off takes effect for registrations made before.
    fn allowed_remote(&self, url: &str) -> Result<Remote, BridgeError> {
        let settings = &self.inner.settings;
        let remote = crate::remote::classify(url).map_err(|m| BridgeError::invalid("url", m))?;
        match &remote {
            Remote::Local if !settings.allow_local_remotes => Err(BridgeError::invalid(
                "url",
                "local repositories (file:// or a path on the server, which is what git makes of any URL with a `/` before its first `:`) are off; set bridge.allow_local_remotes",
            )),
            // git reads `a/b@[c]:d` from the `]` on: another path than shown.
            Remote::Local if url.contains("@[") => Err(BridgeError::invalid(
                "url",
                "a local path must not contain `@[` (git would read a different path)",
            )),
            Remote::Local if !(url.starts_with("file://") || Path::new(url).is_absolute()) => {
                Err(BridgeError::invalid(
                    "url",
                    "a local repository must be an absolute path or a file:// URL",
                ))
            }
            Remote::Network {
                transport: Transport::Ssh,
                ..
            } if !settings.allow_ssh_remotes => Err(BridgeError::invalid(
                "url",
                "ssh remotes are off (git would connect with the server's own ssh keys); use an https URL, or set bridge.allow_ssh_remotes",
            )),
            _ => Ok(remote),
        }
    }

    /// The lock of one mirror directory (entries nobody holds are dropped).
    fn mirror_lock(&self, dir: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .mirrors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(dir.to_path_buf()).or_default().clone()
    }

    /// Registers a repository after checking that its default branch can be read.
    pub async fn register_repo(&self, tenant: &str, new: NewRepo) -> Result<Repo, BridgeError> {
        if !validate::repo_name(&new.name) {
            let shown: String = new.name.chars().take(60).collect();
            return Err(BridgeError::invalid(
                "name",
                format!(
                    "{shown:?} is not like org/app (letters, digits, `-`, `_`, `.`; at most {} each side)",
                    validate::NAME_PART_MAX
                ),
            ));
        }
        non_blank("url", &new.url)?;
        let url = new.url.trim().to_owned();
        if let Remote::Network { host, .. } = self.allowed_remote(&url)?
            && !self.inner.settings.allow_private_remotes
        {
            crate::remote::refuse_internal(&host).await?;
        }
        let branch = new.default_branch.unwrap_or_else(|| "main".into());
        if let Some(problem) = validate::branch_problem(&branch) {
            let shown: String = branch.chars().take(60).collect();
            return Err(BridgeError::invalid(
                "default_branch",
                format!("{shown:?} is not a branch name: {problem}"),
            ));
        }
        let github_repo = match new.github_repo {
            Some(g) if !validate::github_repo(&g) => {
                let shown: String = g.chars().take(60).collect();
                return Err(BridgeError::invalid(
                    "github_repo",
                    format!(
                        "{shown:?} is not a GitHub owner/repo (owner: up to 39 letters, digits and `-`; repo: up to 100 letters, digits, `.`, `-`, `_`)"
                    ),
                ));
            }
            Some(g) => Some(g),
            None => match github_repo_of(&url) {
                Some(g) if !validate::github_repo(&g) => {
                    return Err(BridgeError::invalid(
                        "github_repo",
                        "the github.com URL names no valid owner/repo; give github_repo",
                    ));
                }
                inferred => inferred,
            },
        };
        tokio::fs::create_dir_all(&self.inner.workspace)
            .await
            .map_err(|e| BridgeError::Git(format!("workspace: {e}")))?;
        let head = format!("refs/heads/{branch}");
        let args = ["ls-remote", "--heads", "--", url.as_str(), head.as_str()];
        let listing = git(&self.inner.git, &self.inner.workspace, &args, None, None);
        // One short, fixed reason whatever git said: its stderr would tell a
        // tenant whether a port is open or what a host answers. git's own
        // words go to the log (credentials stripped).
        let unreadable = || {
            BridgeError::invalid(
                "url",
                "the repository could not be read (wrong URL or branch, no access, or no answer); the server log has details",
            )
        };
        // The child is killed when the timeout drops it.
        let found = match tokio::time::timeout(std::time::Duration::from_secs(30), listing).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                tracing::info!(
                    tenant,
                    url = %orchestrator::secret::strip_url_credentials(&url),
                    error = %orchestrator::secret::strip_url_credentials(&BridgeError::from(e).to_string()),
                    "repository not registered: git cannot read it"
                );
                return Err(unreadable());
            }
            Err(_) => {
                tracing::info!(
                    tenant,
                    url = %orchestrator::secret::strip_url_credentials(&url),
                    "repository not registered: no answer within 30 s"
                );
                return Err(unreadable());
            }
        };
        if found.is_empty() {
            return Err(BridgeError::invalid(
                "default_branch",
                format!("the repository has no branch {branch:?}"),
            ));
        }
        let repo = Repo {
            name: new.name,
            url,
            default_branch: branch,
            github_repo,
            created_at: now_ms(),
        };
        self.inner.store.insert_repo(tenant, &repo).await?;
        Ok(repo)
    }

    /// The tenant's repositories.
    pub async fn list_repos(&self, tenant: &str) -> Result<Vec<Repo>, BridgeError> {
        self.inner.store.repos(tenant).await
    }

    /// Removes a repository registration.
    pub async fn delete_repo(&self, tenant: &str, name: &str) -> Result<(), BridgeError> {
        self.inner.store.delete_repo(tenant, name).await
    }

    /// Declares a cable by hand.
    pub async fn declare_cable(&self, tenant: &str, cable: NewCable) -> Result<Cable, BridgeError> {
        let strength = cable.strength.unwrap_or(1.0);
        if !(strength > 0.0 && strength <= 1.0) {
            return Err(BridgeError::invalid("strength", "must be in (0, 1]"));
        }
        if cable.from == cable.to {
            return Err(BridgeError::invalid(
                "to",
                "a repository cannot be cabled to itself",
            ));
        }
        let repos = self.inner.store.repos(tenant).await?;
        for (field, name) in [("from", &cable.from), ("to", &cable.to)] {
            if !repos.iter().any(|r| &r.name == name) {
                return Err(BridgeError::invalid(
                    field,
                    format!("{} is not a registered repository", validate::shown(name)),
                ));
            }
        }
        self.inner
            .store
            .upsert_cable(tenant, &cable, strength)
            .await?;
        Ok(Cable {
            from: cable.from,
            to: cable.to,
            kind: CableKind::Declared,
            strength,
            evidence: "declared".into(),
        })
    }

    /// Fetches every repository of the tenant into its read-only mirror and
    /// reads it; repositories that fail are reported, not fatal.
    async fn read_repos(
        &self,
        tenant: &str,
    ) -> Result<(Vec<Repo>, Vec<(String, Scan)>, Vec<RepoProblem>), BridgeError> {
        use futures_util::StreamExt;
        let repos = self.inner.store.repos(tenant).await?;
        let base = self.inner.workspace.join(dir_name(tenant)).join("mirrors");
        // A few at once, in registration order; each mirror has its own lock,
        // so a slow remote delays only reads of that one repository.
        let reads: Vec<_> = futures_util::stream::iter(repos.clone())
            .map(|r| {
                let (bridge, dir) = (self.clone(), base.join(dir_name(&r.name)));
                async move { bridge.read_repo(&r, dir).await }
            })
            .buffered(MIRROR_READS)
            .collect()
            .await;
        let mut scans = Vec::new();
        let mut problems = Vec::new();
        for (r, read) in repos.iter().zip(reads) {
            match read {
                Ok(scan) => scans.push((r.name.clone(), scan)),
                Err(reason) => problems.push(RepoProblem {
                    repo: r.name.clone(),
                    reason,
                }),
            }
        }
        Ok((repos, scans, problems))
    }

    /// Fetches one repository into its mirror at `dir` and reads it; the
    /// error is the reason a tenant sees (no server paths).
    async fn read_repo(&self, r: &Repo, dir: PathBuf) -> Result<Scan, String> {
        self.allowed_remote(&r.url).map_err(|e| e.to_string())?;
        let lock = self.mirror_lock(&dir);
        let _mirror = lock.lock().await;
        if let Err(e) = self.refresh_mirror(r, &dir).await {
            return Err(BridgeError::from(e).to_string());
        }
        let scanned = dir.clone();
        match tokio::task::spawn_blocking(move || scan::scan(&scanned)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(crate::git::scrub_paths(&e.to_string(), &dir)),
            Err(e) => Err(format!("reading the repository: {e}")),
        }
    }

    /// Brings the mirror at `dir` to the tip of `r`'s default branch,
    /// rebuilding it when it is damaged. A failed fetch keeps an intact
    /// mirror (git updates refs only after the objects are in, so a killed
    /// fetch leaves the old state) and removes a damaged one, so the next
    /// read clones afresh; a checkout that fails after a good fetch means
    /// the mirror itself is broken, and it is rebuilt at once.
    async fn refresh_mirror(&self, r: &Repo, dir: &Path) -> Result<(), crate::git::GitStop> {
        use crate::git::{GitStop, clone_fresh, clone_is_intact, remove_if_present};
        let env = &self.inner.git;
        let base = format!("origin/{}", r.default_branch);
        let checkout = ["checkout", "--force", "--detach", base.as_str(), "--"];
        if clone_is_intact(env, dir, &r.url, &r.default_branch).await {
            match git(env, dir, &["fetch", "--prune", "origin"], None, None).await {
                Ok(_) => match git(env, dir, &checkout, None, None).await {
                    Ok(_) => return Ok(()),
                    Err(GitStop::Failed(m)) => {
                        tracing::warn!(repo = %r.name, error = %m, "mirror damaged; cloning it again");
                    }
                    Err(e) => return Err(e),
                },
                Err(e) => {
                    if !clone_is_intact(env, dir, &r.url, &r.default_branch).await {
                        let _ = remove_if_present(dir).await;
                    }
                    return Err(e);
                }
            }
        }
        clone_fresh(env, &r.url, &r.default_branch, dir, None).await?;
        if let Err(e) = git(env, dir, &checkout, None, None).await {
            let _ = remove_if_present(dir).await;
            return Err(e);
        }
        Ok(())
    }

    fn graph_of(
        repos: &[Repo],
        scans: &[(String, Scan)],
        declared: Vec<(String, String, f64)>,
    ) -> Vec<Cable> {
        let manifests: Vec<_> = scans
            .iter()
            .map(|(n, s)| (n.clone(), scan::manifests(s)))
            .collect();
        let mut cables = harmony::infer_cables(&manifests);
        for (from, to, strength) in declared {
            if repos.iter().any(|r| r.name == from) && repos.iter().any(|r| r.name == to) {
                cables.push(Cable {
                    from,
                    to,
                    kind: CableKind::Declared,
                    strength,
                    evidence: "declared".into(),
                });
            }
        }
        cables
    }

    /// The tenant's cable graph: inferred from manifests plus declared.
    pub async fn cables(&self, tenant: &str) -> Result<CableGraph, BridgeError> {
        let (repos, scans, unreadable) = self.read_repos(tenant).await?;
        let declared = self.inner.store.declared_cables(tenant).await?;
        Ok(CableGraph {
            repos: repos.iter().map(|r| r.name.clone()).collect(),
            cables: Self::graph_of(&repos, &scans, declared),
            unreadable,
        })
    }

    /// Ranks the tenant's repositories for a covenant, stores the review and returns it.
    pub async fn harmony_review(
        &self,
        tenant: &str,
        covenant_id: &str,
    ) -> Result<HarmonyReview, BridgeError> {
        let covenant = self.get_covenant(tenant, covenant_id).await?;
        let (repos, scans, unreadable) = self.read_repos(tenant).await?;
        if repos.is_empty() {
            return Err(BridgeError::invalid(
                "repos",
                "no repository is registered; POST /v2/repos first",
            ));
        }
        let declared = self.inner.store.declared_cables(tenant).await?;
        let cables = Self::graph_of(&repos, &scans, declared);
        let names: Vec<String> = scans.iter().map(|(n, _)| n.clone()).collect();
        let terms = harmony::query_terms(&covenant);
        let docs = tokio::task::spawn_blocking(move || {
            scans
                .iter()
                .map(|(_, s)| harmony::Document::of(s))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| BridgeError::Git(format!("reading repositories: {e}")))?;
        let (choices, excluded) = harmony::rank(&names, &docs, &terms, &cables);
        let Some(anchor) = choices.first().map(|c| c.repo.clone()) else {
            return Err(BridgeError::invalid(
                "covenant_id",
                "no registered repository's content matches the covenant's words",
            ));
        };
        let review = HarmonyReview {
            covenant_id: covenant.covenant_id,
            anchor,
            agnos: choices.iter().skip(1).map(|c| c.repo.clone()).collect(),
            choices,
            excluded,
            unreadable,
            created_at: now_ms(),
        };
        self.inner.store.save_review(tenant, &review).await?;
        Ok(review)
    }

    /// The stored review of a covenant.
    pub async fn stored_review(
        &self,
        tenant: &str,
        covenant_id: &str,
    ) -> Result<Option<HarmonyReview>, BridgeError> {
        self.get_covenant(tenant, covenant_id).await?;
        self.inner.store.review(tenant, covenant_id).await
    }

    /// A strike of the tenant with each repository's progress.
    pub async fn strike_status(
        &self,
        tenant: &str,
        run_id: &str,
    ) -> Result<StrikeStatus, BridgeError> {
        self.inner.store.strike(tenant, run_id).await
    }

    /// Strikes of a tenant (`None`: of every tenant) running or started since
    /// `since` (Unix ms), newest first, at most `limit`: the dashboard's view.
    pub async fn recent_strikes(
        &self,
        tenant: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StrikeStatus>, BridgeError> {
        self.inner.store.recent_strikes(tenant, since, limit).await
    }

    /// The current status and, while the strike runs, a receiver of its events.
    pub async fn subscribe(
        &self,
        tenant: &str,
        run_id: &str,
    ) -> Result<(StrikeStatus, Option<broadcast::Receiver<StrikeEvent>>), BridgeError> {
        // Subscribe first so no event between the snapshot and the receiver is lost.
        let rx = self.live_events(run_id);
        let status = self.strike_status(tenant, run_id).await?;
        // Running on another replica: its progress, read back from storage.
        let rx = rx.or_else(|| self.follow_remote(tenant, &status));
        Ok((status, rx))
    }

    fn live_events(&self, run_id: &str) -> Option<broadcast::Receiver<StrikeEvent>> {
        self.inner
            .live
            .lock()
            .ok()?
            .get(run_id)
            .map(|l| l.events.subscribe())
    }

    /// Asks a running strike to stop: running git commands are killed and
    /// unfinished repositories end `cancelled`.
    pub async fn cancel_strike(
        &self,
        tenant: &str,
        run_id: &str,
    ) -> Result<StrikeStatus, BridgeError> {
        let status = self.strike_status(tenant, run_id).await?;
        // Here, or through the database to the replica that runs it.
        let signalled = self.signal_cancel(run_id) || self.cancel_elsewhere(run_id).await?;
        if !signalled {
            return Err(BridgeError::Conflict(format!(
                "strike {run_id} is not running (state {})",
                status.state
            )));
        }
        Ok(status)
    }

    /// Marks strikes that were running when the service stopped as
    /// `interrupted` (shared between replicas: only those whose owner's lease
    /// expired); call once at start-up. Returns their ids.
    pub async fn recover(&self) -> Result<Vec<String>, BridgeError> {
        // Shared: only strikes of replicas whose lease expired; alone: all of them.
        let ids = match self.owner() {
            Some(_) => self.inner.store.mark_expired_interrupted().await?,
            None => self.inner.store.mark_interrupted().await?,
        };
        if !ids.is_empty() {
            tracing::warn!(strikes = ?ids, "strikes interrupted by the last stop; resume them with POST /v2/strike/{{run_id}}/resume");
        }
        Ok(ids)
    }

    /// Refreshes the state of every open pull request once.
    pub async fn refresh_pr_states(&self) -> Result<usize, BridgeError> {
        let mut changed = 0;
        for (run_id, repo, number) in self.inner.store.open_prs().await? {
            let (_, plan) = self.inner.store.plan(&run_id).await?;
            let Some(gh) = plan
                .repos
                .iter()
                .find(|p| p.repo.name == repo)
                .and_then(|p| p.repo.github_repo.clone())
            else {
                continue;
            };
            match self.inner.github.get_pr(&gh, number).await {
                Ok(pr) if pr.effective_state() != "open" => {
                    self.inner
                        .store
                        .set_pr_state(&run_id, &repo, pr.effective_state())
                        .await?;
                    changed += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(%run_id, %repo, error = %e, "pull request state not refreshed")
                }
            }
        }
        Ok(changed)
    }

    /// Starts the monitor that refreshes pull-request states every
    /// `bridge.pr_monitor_secs` (nothing when 0 or without a token).
    pub fn spawn_pr_monitor(&self) -> Option<tokio::task::JoinHandle<()>> {
        let secs = self.inner.settings.pr_monitor_secs;
        if secs == 0 || !self.inner.github.has_token() {
            return None;
        }
        let bridge = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(secs));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = bridge.refresh_pr_states().await {
                    tracing::warn!(error = %e, "pull-request monitor");
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::dir_name;

    #[test]
    fn dir_names_of_names_that_look_alike_differ() {
        assert_ne!(dir_name("a__b/c"), dir_name("a/b__c"));
        assert_ne!(dir_name("org/x.y"), dir_name("org/x_y"));
        // Stable and readable: the same name always lands in the same place.
        assert_eq!(dir_name("org/web"), dir_name("org/web"));
        assert!(dir_name("org/web").starts_with("org_web-"));
        let long = "o".repeat(100);
        assert!(dir_name(&long).len() <= 40 + 1 + 16);
    }
}
