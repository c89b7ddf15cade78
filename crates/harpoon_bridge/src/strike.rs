//! Strikes: per repository, clone or fetch, branch, apply the change, commit,
//! push; then pull requests, anchor first, each linking the others. Runs in
//! the background with bounded parallelism; every step is persisted so a
//! restart can resume without duplicating branches or pull requests.

use crate::git::{Author, GitStop, cancelled, clone_or_fetch, git, patch_paths, remote_branch};
use crate::store::{Plan, PlannedRepo, new_id, now_ms};
use crate::types::{Cable, Covenant, Phase, RepoChange, Role, StrikeEvent, StrikeRequest};
use crate::{Bridge, BridgeError, Live, check_path, dir_name};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tokio::sync::{broadcast, watch};

/// A strike's claim on its `live` slot. Taken synchronously (no await between
/// the check and the insert), so two starts or resumes of one strike cannot
/// both pass; it owns the slot until dropped, on every path, early returns
/// included, and only the holder ever removes the entry.
pub(crate) struct Reservation {
    bridge: Bridge,
    run_id: String,
    cancel: watch::Receiver<bool>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // A poisoned lock still holds a consistent map (every change is one
        // insert or remove), and leaving the slot taken would block resumes.
        let mut live = self
            .bridge
            .inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        live.remove(&self.run_id);
    }
}

/// How one repository's preparation ended.
enum Outcome {
    Pushed,
    Failed(String),
    Cancelled,
}

impl From<GitStop> for Outcome {
    fn from(s: GitStop) -> Self {
        match s {
            GitStop::Cancelled => Outcome::Cancelled,
            GitStop::Failed(m) => Outcome::Failed(m),
        }
    }
}

fn role_name(role: Role) -> &'static str {
    crate::store::role_str(role)
}

/// The covenant file written into every branch.
fn covenant_file(c: &Covenant, repo: &str, role: Role, anchor: &str, cables: &[String]) -> String {
    let mut s = format!(
        "# Covenant: {}\n\n`{}` · written by Harpoon\n\n{}\n\n## Reality\n\n{}\n",
        c.title,
        c.covenant_id,
        c.description.trim(),
        c.reality_state.description.trim()
    );
    for a in &c.reality_state.key_aspects {
        s.push_str(&format!("\n- {a}"));
    }
    s.push_str(&format!(
        "\n\n## Target\n\n{}\n",
        c.target_state.description.trim()
    ));
    for a in &c.target_state.success_criteria {
        s.push_str(&format!("\n- {a}"));
    }
    s.push_str(&format!(
        "\n\n## This repository\n\n`{repo}` is the {} of this change{}.\n\n## Cables\n\n",
        role_name(role),
        if role == Role::Agnos {
            format!("; the anchor is `{anchor}`")
        } else {
            String::new()
        }
    ));
    if cables.is_empty() {
        s.push_str("None known.\n");
    }
    for c in cables {
        s.push_str(&format!("- {c}\n"));
    }
    s
}

/// Cable lines about `repo`, in words.
fn cable_lines(repo: &str, cables: &[Cable]) -> Vec<String> {
    let mut out = Vec::new();
    for c in cables {
        let kind = match c.kind {
            crate::types::CableKind::DependsOn => "depends on",
            crate::types::CableKind::Declared => "is declared to depend on",
        };
        if c.from == repo {
            out.push(format!(
                "`{repo}` {kind} `{}` (strength {}, {})",
                c.to, c.strength, c.evidence
            ));
        } else if c.to == repo {
            out.push(format!(
                "`{}` {kind} `{repo}` (strength {}, {})",
                c.from, c.strength, c.evidence
            ));
        }
    }
    out
}

impl Bridge {
    fn emit(&self, run_id: &str, repo: Option<&str>, phase: &str, detail: impl Into<String>) {
        let event = StrikeEvent {
            run_id: run_id.to_owned(),
            repo: repo.map(str::to_owned),
            phase: phase.to_owned(),
            detail: detail.into(),
            at: now_ms(),
        };
        if let Ok(live) = self.inner.live.lock()
            && let Some(l) = live.get(run_id)
        {
            // No subscriber is fine: the state is in the database too.
            let _ = l.events.send(event);
        }
    }

    async fn phase(
        &self,
        run_id: &str,
        repo: &str,
        phase: Phase,
        error: Option<&str>,
        detail: &str,
    ) {
        if let Err(e) = self.inner.store.set_phase(run_id, repo, phase, error).await {
            tracing::error!(%run_id, %repo, error = %e, "strike phase not stored");
        }
        self.emit(run_id, Some(repo), phase.as_str(), error.unwrap_or(detail));
    }

    /// Validates a strike request, freezes its plan and starts it.
    pub async fn start_strike(
        &self,
        tenant: &str,
        req: StrikeRequest,
    ) -> Result<String, BridgeError> {
        let covenant = self.get_covenant(tenant, &req.covenant_id).await?;
        if req.generate && req.changes.is_some() {
            return Err(BridgeError::invalid(
                "changes",
                "give changes or set generate, not both",
            ));
        }
        let registered = self.inner.store.repos(tenant).await?;
        let by_name: HashMap<&str, &crate::types::Repo> =
            registered.iter().map(|r| (r.name.as_str(), r)).collect();
        let review = self
            .inner
            .store
            .review(tenant, &covenant.covenant_id)
            .await?;
        let targets: Vec<String> = match &req.target_repos {
            Some(list) => {
                if list.is_empty() {
                    return Err(BridgeError::invalid(
                        "target_repos",
                        "must not be empty (omit it to use the harmony review)",
                    ));
                }
                let mut seen = HashSet::new();
                for (i, name) in list.iter().enumerate() {
                    if !by_name.contains_key(name.as_str()) {
                        return Err(BridgeError::invalid(
                            format!("target_repos[{i}]"),
                            format!(
                                "{} is not a registered repository",
                                crate::validate::shown(name)
                            ),
                        ));
                    }
                    if !seen.insert(name) {
                        return Err(BridgeError::invalid(
                            format!("target_repos[{i}]"),
                            format!("{} is listed twice", crate::validate::shown(name)),
                        ));
                    }
                }
                // The reviewed anchor leads when it is among the targets; else the first named.
                let mut ordered = list.clone();
                if let Some(r) = &review
                    && let Some(at) = ordered.iter().position(|n| n == &r.anchor)
                {
                    let anchor = ordered.remove(at);
                    ordered.insert(0, anchor);
                }
                ordered
            }
            None => {
                let Some(r) = &review else {
                    return Err(BridgeError::invalid(
                        "target_repos",
                        "no targets given and no harmony review stored; POST /v2/covenant/{id}/harmony first",
                    ));
                };
                let all: Vec<String> = std::iter::once(r.anchor.clone())
                    .chain(r.agnos.iter().cloned())
                    .collect();
                if let Some(gone) = all.iter().find(|n| !by_name.contains_key(n.as_str())) {
                    return Err(BridgeError::invalid(
                        "target_repos",
                        format!(
                            "the reviewed repository {gone:?} is no longer registered; review again"
                        ),
                    ));
                }
                all
            }
        };
        let mut changes: HashMap<String, RepoChange> = HashMap::new();
        for (i, c) in req.changes.iter().flatten().enumerate() {
            if !targets.contains(&c.repo) {
                return Err(BridgeError::invalid(
                    format!("changes[{i}].repo"),
                    format!(
                        "{} is not a target of this strike",
                        crate::validate::shown(&c.repo)
                    ),
                ));
            }
            if c.files.is_empty() && c.diff.as_deref().is_none_or(|d| d.trim().is_empty()) {
                return Err(BridgeError::invalid(
                    format!("changes[{i}]"),
                    "give files or a diff",
                ));
            }
            if let Some(title) = &c.title {
                crate::validate::single_line(
                    &format!("changes[{i}].title"),
                    title,
                    crate::validate::TITLE_MAX,
                )?;
            }
            if let Some(body) = &c.body {
                crate::validate::text(
                    &format!("changes[{i}].body"),
                    body,
                    crate::validate::TEXT_MAX,
                )?;
            }
            for (j, f) in c.files.iter().enumerate() {
                check_path(&f.path).map_err(|m| {
                    BridgeError::invalid(format!("changes[{i}].files[{j}].path"), m)
                })?;
            }
            if changes.insert(c.repo.clone(), c.clone()).is_some() {
                return Err(BridgeError::invalid(
                    format!("changes[{i}].repo"),
                    format!("{} has two changes", crate::validate::shown(&c.repo)),
                ));
            }
        }
        let plan = Plan {
            repos: targets
                .iter()
                .enumerate()
                .map(|(i, name)| PlannedRepo {
                    repo: (*by_name[name.as_str()]).clone(),
                    role: if i == 0 { Role::Anchor } else { Role::Agnos },
                    change: changes.remove(name),
                    cables: Vec::new(),
                })
                .collect(),
            covenant,
            generate: req.generate,
        };
        let run_id = new_id("run");
        let short: String = run_id.trim_start_matches("run_").chars().take(8).collect();
        let branch = format!("harpoon/{}-{short}", plan.covenant.slug);
        self.inner
            .store
            .insert_strike(tenant, &run_id, &plan, &branch, self.owner())
            .await?;
        let reservation = self.reserve(&run_id)?;
        self.launch(tenant.to_owned(), reservation);
        Ok(run_id)
    }

    /// Resumes an interrupted, cancelled or partly failed strike: repositories
    /// not done are worked again; pushed branches and opened pull requests are
    /// found by branch name and reused.
    pub async fn resume_strike(&self, tenant: &str, run_id: &str) -> Result<String, BridgeError> {
        // The tenant check comes first, so another tenant's running strike
        // reads "not found", never "running".
        self.strike_status(tenant, run_id).await?;
        // Claimed before any further await; a second resume racing this one
        // gets 409 here. Every `?` below drops (releases) the claim.
        let reservation = self.reserve(run_id)?;
        // Read again under the claim: a run that finished between the first
        // read and the claim must not have its done repositories redone.
        let status = self.strike_status(tenant, run_id).await?;
        let redo: Vec<_> = status
            .repos
            .iter()
            .filter(|r| r.phase != Phase::Done)
            .collect();
        if redo.is_empty() {
            return Err(BridgeError::Conflict(format!(
                "strike {run_id} has nothing left to do"
            )));
        }
        // Shared: taken atomically, so a strike a live replica runs (or that
        // another replica resumes at the same moment) is not run twice.
        if let Some(owner) = self.owner()
            && !self.inner.store.claim_strike(run_id, owner).await?
        {
            return Err(BridgeError::Conflict(format!(
                "strike {run_id} is running on another replica"
            )));
        }
        for r in redo {
            self.inner
                .store
                .set_phase(run_id, &r.repo, Phase::Queued, None)
                .await?;
        }
        self.inner.store.set_state(run_id, "running").await?;
        self.launch(tenant.to_owned(), reservation);
        Ok(run_id.to_owned())
    }

    /// Takes the `live` slot of `run_id`, or answers 409 when it is taken.
    fn reserve(&self, run_id: &str) -> Result<Reservation, BridgeError> {
        let mut live = self
            .inner
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match live.entry(run_id.to_owned()) {
            Entry::Occupied(_) => Err(BridgeError::Conflict(format!("strike {run_id} is running"))),
            Entry::Vacant(slot) => {
                let (cancel, rx) = watch::channel(false);
                let (events, _) = broadcast::channel(256);
                slot.insert(Live { cancel, events });
                Ok(Reservation {
                    bridge: self.clone(),
                    run_id: run_id.to_owned(),
                    cancel: rx,
                })
            }
        }
    }

    fn launch(&self, tenant: String, reservation: Reservation) {
        let bridge = self.clone();
        tokio::spawn(async move {
            let run_id = reservation.run_id.clone();
            let cancel = reservation.cancel.clone();
            let state = match bridge.run(&tenant, &run_id, cancel).await {
                Ok(state) => state,
                Err(e) => {
                    tracing::error!(%run_id, error = %e, "strike failed");
                    "failed".to_owned()
                }
            };
            if let Err(e) = bridge.inner.store.set_state(&run_id, &state).await {
                tracing::error!(%run_id, error = %e, "strike state not stored");
            }
            bridge.emit(&run_id, None, &state, "strike finished");
            // Frees the slot only now, after the last event went out.
            drop(reservation);
        });
    }

    async fn run(
        &self,
        tenant: &str,
        run_id: &str,
        cancel: watch::Receiver<bool>,
    ) -> Result<String, BridgeError> {
        let (_, plan) = self.inner.store.plan(run_id).await?;
        self.emit(run_id, None, "running", "strike started");
        // Cables and contents for the covenant file and the generate path;
        // a repository that cannot be read still gets its strike.
        let (cables, scans) = match self.read_repos(tenant).await {
            Ok((repos, scans, _)) => {
                let declared = self
                    .inner
                    .store
                    .declared_cables(tenant)
                    .await
                    .unwrap_or_default();
                (
                    Self::graph_of(&repos, &scans, declared),
                    scans.into_iter().collect::<HashMap<_, _>>(),
                )
            }
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "cables unknown for this strike");
                (Vec::new(), HashMap::new())
            }
        };
        let anchor = plan
            .repos
            .first()
            .map(|p| p.repo.name.clone())
            .unwrap_or_default();
        let todo: Vec<String> = self
            .inner
            .store
            .strike_repos(run_id)
            .await?
            .into_iter()
            .filter(|r| r.phase == Phase::Queued)
            .map(|r| r.repo)
            .collect();
        let branch = self
            .inner
            .store
            .strike_repos(run_id)
            .await?
            .first()
            .map(|r| r.branch.clone())
            .unwrap_or_default();
        let workdir = self
            .inner
            .workspace
            .join(dir_name(tenant))
            .join("strikes")
            .join(run_id);

        let mut jobs = tokio::task::JoinSet::new();
        for p in plan.repos.iter().filter(|p| todo.contains(&p.repo.name)) {
            let bridge = self.clone();
            let p = p.clone();
            let covenant = plan.covenant.clone();
            let cables = cable_lines(&p.repo.name, &cables);
            let scan = scans.get(&p.repo.name).cloned();
            let mut cancel = cancel.clone();
            let dir = workdir.join(dir_name(&p.repo.name));
            let (tenant, run_id, branch, anchor, generate) = (
                tenant.to_owned(),
                run_id.to_owned(),
                branch.clone(),
                anchor.clone(),
                plan.generate,
            );
            jobs.spawn(async move {
                // A fair share across tenants, not first come first served:
                // one tenant's strike on slow remotes must not hold them all.
                let permit = tokio::select! {
                    slot = bridge.inner.slots.acquire(&tenant) => Some(slot),
                    _ = cancelled(&mut cancel) => None,
                };
                let outcome = if permit.is_none() {
                    Outcome::Cancelled
                } else {
                    bridge
                        .prepare(
                            &tenant,
                            &run_id,
                            &p,
                            &covenant,
                            &branch,
                            &anchor,
                            &cables,
                            scan.as_ref(),
                            generate,
                            &dir,
                            &cancel,
                        )
                        .await
                };
                let name = p.repo.name.as_str();
                match outcome {
                    Outcome::Pushed => {
                        bridge
                            .phase(&run_id, name, Phase::Pushed, None, "branch pushed")
                            .await
                    }
                    Outcome::Failed(m) => {
                        // What the tenant reads: no path of the server's.
                        let m = crate::git::scrub_paths(&m, &dir);
                        bridge
                            .phase(&run_id, name, Phase::Failed, Some(&m), "")
                            .await
                    }
                    Outcome::Cancelled => {
                        bridge
                            .phase(&run_id, name, Phase::Cancelled, None, "cancelled")
                            .await
                    }
                }
                drop(permit);
            });
        }
        while jobs.join_next().await.is_some() {}

        self.open_prs(run_id, &plan, &branch, &cancel).await?;
        // The clones served their purpose; a resume clones again (cheap next to
        // keeping every strike's checkouts forever).
        if let Err(e) = tokio::fs::remove_dir_all(&workdir).await {
            tracing::debug!(%run_id, error = %e, "strike workspace not removed");
        }

        let repos = self.inner.store.strike_repos(run_id).await?;
        let done = repos.iter().filter(|r| r.phase == Phase::Done).count();
        let state = if done == repos.len() {
            "done"
        } else if repos.iter().any(|r| r.phase == Phase::Cancelled) {
            "cancelled"
        } else if done == 0 {
            "failed"
        } else {
            "partial"
        };
        Ok(state.to_owned())
    }

    /// Clone, branch, change, commit, push — or find the branch already pushed.
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        tenant: &str,
        run_id: &str,
        p: &PlannedRepo,
        covenant: &Covenant,
        branch: &str,
        anchor: &str,
        cables: &[String],
        scan: Option<&crate::scan::Scan>,
        generate: bool,
        dir: &Path,
        cancel: &watch::Receiver<bool>,
    ) -> Outcome {
        let name = p.repo.name.as_str();
        let c = Some(cancel);
        self.phase(run_id, name, Phase::Cloning, None, "cloning or fetching")
            .await;
        // Registered under the settings of its day; refused now if they changed.
        if let Err(e) = self.allowed_remote(&p.repo.url) {
            return Outcome::Failed(e.to_string());
        }
        let env = &self.inner.git;
        if let Err(e) = clone_or_fetch(env, &p.repo.url, &p.repo.default_branch, dir, c).await {
            return e.into();
        }
        // Idempotent on the branch name: a branch this strike already pushed
        // (before a restart) is kept as it is, never committed to twice.
        match remote_branch(env, dir, branch, c).await {
            Ok(Some(sha)) => {
                if let Err(e) = self.inner.store.set_commit(run_id, name, &sha).await {
                    return Outcome::Failed(e.to_string());
                }
                self.emit(
                    run_id,
                    Some(name),
                    Phase::Pushed.as_str(),
                    format!("branch {branch} already pushed at {sha}"),
                );
                return Outcome::Pushed;
            }
            Ok(None) => {}
            Err(e) => return e.into(),
        }
        let base = format!("origin/{}", p.repo.default_branch);
        for args in [
            vec!["reset", "--hard"],
            vec!["clean", "-fdx"],
            vec!["checkout", "--force", "-B", branch, base.as_str()],
        ] {
            if let Err(e) = git(env, dir, &args, None, c).await {
                return e.into();
            }
        }

        self.phase(run_id, name, Phase::Applying, None, "applying the change")
            .await;
        let mut title = p.change.as_ref().and_then(|c| c.title.clone());
        if generate {
            let Some((model, threshold)) = self.inner.generation.get().cloned() else {
                return Outcome::Failed(
                    "no large-tier model is configured for the generate path".into(),
                );
            };
            let empty = crate::scan::Scan::default();
            let mut stop = cancel.clone();
            let mut spent = orchestrator::generation::Usage::default();
            let started = std::time::Instant::now();
            let generated = tokio::select! {
                g = crate::generate::generate(
                    &mut spent,
                    &model,
                    &self.inner.gate,
                    threshold,
                    self.inner.settings.generate_attempts,
                    covenant,
                    name,
                    p.role,
                    cables,
                    scan.unwrap_or(&empty),
                ) => Some(g),
                _ = cancelled(&mut stop) => None,
            };
            if let Some(sink) = self.inner.usage.get() {
                let ok = matches!(generated, Some(Ok(_)));
                sink.record(tenant, model.name(), spent, started.elapsed(), ok);
            }
            let Some(generated) = generated else {
                return Outcome::Cancelled;
            };
            match generated {
                Ok(g) => {
                    if let Err(m) = write_files(dir, &g.files).await {
                        return Outcome::Failed(m);
                    }
                    title = Some(g.title);
                    if let Err(e) = self.store_pr_text(run_id, name, &g.body).await {
                        return Outcome::Failed(e.to_string());
                    }
                }
                Err(m) => return Outcome::Failed(format!("generation failed: {m}")),
            }
        } else if let Some(change) = &p.change {
            let diff = change.diff.as_deref().filter(|d| !d.trim().is_empty());
            let patch = dir.join(".git").join("harpoon.patch");
            let patch = patch.to_string_lossy().into_owned();
            if let Some(diff) = diff {
                if let Err(e) = tokio::fs::write(&patch, diff).await {
                    return Outcome::Failed(format!("writing the diff: {e}"));
                }
                // Every path the diff touches, read by git's own parser,
                // passes the check `files` pass, before anything is written:
                // otherwise a diff writes `.gitmodules` or a `.GIT/` that
                // `files` may not.
                match patch_paths(env, dir, &patch, c).await {
                    Ok(paths) => {
                        for path in paths {
                            if let Err(m) = check_path(&path) {
                                return Outcome::Failed(format!(
                                    "the diff is refused: it touches {path:?}: {m}"
                                ));
                            }
                        }
                    }
                    Err(GitStop::Failed(m)) => {
                        return Outcome::Failed(format!("the diff does not apply: {m}"));
                    }
                    Err(GitStop::Cancelled) => return Outcome::Cancelled,
                }
            }
            if let Err(m) = write_files(dir, &change.files).await {
                return Outcome::Failed(m);
            }
            if diff.is_some() {
                // No symlink walk needed here: `git apply` itself refuses to
                // write beyond a symbolic link ("affected file … is beyond a
                // symbolic link", checked with git 2.47), and it replaces a
                // link rather than following it. A link the diff creates is
                // caught by the walk before the covenant file is written.
                match git(env, dir, &["apply", "--whitespace=nowarn", &patch], None, c).await {
                    Ok(_) => {}
                    Err(GitStop::Failed(m)) => {
                        return Outcome::Failed(format!("the diff does not apply: {m}"));
                    }
                    Err(GitStop::Cancelled) => return Outcome::Cancelled,
                }
            }
        }
        let file = crate::types::FileWrite {
            path: format!(".harpoon/covenants/{}.md", covenant.covenant_id),
            content: covenant_file(covenant, name, p.role, anchor, cables),
        };
        if let Err(m) = write_files(dir, std::slice::from_ref(&file)).await {
            return Outcome::Failed(m);
        }

        self.phase(run_id, name, Phase::Committing, None, "committing")
            .await;
        let author = Author {
            name: self.inner.settings.author_name.clone(),
            email: self.inner.settings.author_email.clone(),
        };
        // Caller and model text only ever fills one line of the message
        // (control and format characters blanked): checked at the door, and
        // again here for rows stored before the checks and for a model's
        // title, so it cannot add lines (forged trailers) or escapes.
        let subject = crate::validate::commit_line(title.as_deref().unwrap_or(&covenant.title));
        let message = format!(
            "{subject}\n\nCovenant {} ({}), role {}.\nHarpoon strike {run_id}.",
            covenant.covenant_id,
            crate::validate::commit_line(&covenant.title),
            role_name(p.role)
        );
        if let Err(e) = git(env, dir, &["add", "--all"], None, c).await {
            return e.into();
        }
        if let Err(e) = git(
            env,
            dir,
            &["commit", "--no-verify", "--quiet", "-m", &message],
            Some(&author),
            c,
        )
        .await
        {
            return e.into();
        }
        let sha = match git(env, dir, &["rev-parse", "HEAD"], None, c).await {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.inner.store.set_commit(run_id, name, &sha).await {
            return Outcome::Failed(e.to_string());
        }

        self.phase(run_id, name, Phase::Pushing, None, "pushing")
            .await;
        let refspec = format!("HEAD:refs/heads/{branch}");
        match git(env, dir, &["push", "--quiet", "origin", &refspec], None, c).await {
            Ok(_) => Outcome::Pushed,
            Err(e) => e.into(),
        }
    }

    /// Keeps the model's pull-request text beside the clone for the PR step.
    async fn store_pr_text(&self, run_id: &str, repo: &str, body: &str) -> Result<(), BridgeError> {
        let path = self.pr_text_path(run_id, repo);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| BridgeError::Git(e.to_string()))?;
        }
        tokio::fs::write(&path, body)
            .await
            .map_err(|e| BridgeError::Git(e.to_string()))
    }

    fn pr_text_path(&self, run_id: &str, repo: &str) -> PathBuf {
        self.inner
            .workspace
            .join("pr-text")
            .join(run_id)
            .join(format!("{}.md", dir_name(repo)))
    }

    /// Opens (or finds) the pull requests of pushed repositories, anchor
    /// first; then rewrites every body so each links all the others.
    async fn open_prs(
        &self,
        run_id: &str,
        plan: &Plan,
        branch: &str,
        cancel: &watch::Receiver<bool>,
    ) -> Result<(), BridgeError> {
        let gh = &self.inner.github;
        for p in &plan.repos {
            let name = p.repo.name.as_str();
            let current = self.inner.store.strike_repos(run_id).await?;
            let Some(run) = current.iter().find(|r| r.repo == name) else {
                continue;
            };
            if run.phase != Phase::Pushed {
                continue;
            }
            if *cancel.borrow() {
                self.phase(
                    run_id,
                    name,
                    Phase::Cancelled,
                    None,
                    "cancelled before the pull request",
                )
                .await;
                continue;
            }
            let Some(gh_repo) = &p.repo.github_repo else {
                self.phase(
                    run_id,
                    name,
                    Phase::Done,
                    None,
                    &format!("branch {branch} pushed (no GitHub remote, no pull request)"),
                )
                .await;
                continue;
            };
            self.phase(
                run_id,
                name,
                Phase::OpeningPr,
                None,
                "opening the pull request",
            )
            .await;
            let body = self.pr_body(run_id, plan, p, &current).await;
            let title = p
                .change
                .as_ref()
                .and_then(|c| c.title.as_deref())
                .map(crate::validate::commit_line)
                .unwrap_or_else(|| {
                    format!(
                        "{} ({})",
                        crate::validate::commit_line(&plan.covenant.title),
                        role_name(p.role)
                    )
                });
            let opened = match gh.find_pr(gh_repo, branch).await {
                Ok(Some(pr)) => Ok(pr),
                Ok(None) => {
                    gh.create_pr(gh_repo, branch, &p.repo.default_branch, &title, &body)
                        .await
                }
                Err(e) => Err(e),
            };
            match opened {
                Ok(pr) => {
                    self.inner
                        .store
                        .set_pr(run_id, name, &pr.html_url, pr.number, pr.effective_state())
                        .await?;
                    self.phase(
                        run_id,
                        name,
                        Phase::Done,
                        None,
                        &format!("pull request {}", pr.html_url),
                    )
                    .await;
                }
                Err(e) => {
                    let m = format!("branch {branch} pushed, but the pull request failed: {e}");
                    self.phase(run_id, name, Phase::Failed, Some(&m), "").await;
                }
            }
        }
        // Earlier pull requests could not link later ones; now all are known.
        let current = self.inner.store.strike_repos(run_id).await?;
        let with_pr: Vec<_> = current.iter().filter(|r| r.pr_number.is_some()).collect();
        if with_pr.len() > 1 {
            for r in with_pr {
                let Some(p) = plan.repos.iter().find(|p| p.repo.name == r.repo) else {
                    continue;
                };
                let (Some(gh_repo), Some(number)) = (&p.repo.github_repo, r.pr_number) else {
                    continue;
                };
                let body = self.pr_body(run_id, plan, p, &current).await;
                if let Err(e) = gh.update_body(gh_repo, number, &body).await {
                    tracing::warn!(%run_id, repo = %r.repo, error = %e, "sibling links not updated");
                }
            }
        }
        Ok(())
    }

    async fn pr_body(
        &self,
        run_id: &str,
        plan: &Plan,
        p: &PlannedRepo,
        current: &[crate::types::RepoRun],
    ) -> String {
        let given = match p.change.as_ref().and_then(|c| c.body.clone()) {
            Some(b) => b,
            None => tokio::fs::read_to_string(self.pr_text_path(run_id, &p.repo.name))
                .await
                .unwrap_or_else(|_| plan.covenant.description.clone()),
        };
        let link = |r: &crate::types::RepoRun| match &r.pr_url {
            Some(u) => u.clone(),
            None => format!("branch `{}`", r.branch),
        };
        let mut body = format!(
            "{}\n\n---\nHarpoon covenant **{}** (`{}`), strike `{run_id}`. This repository is the **{}**.\n",
            given.trim(),
            plan.covenant.title,
            plan.covenant.covenant_id,
            role_name(p.role)
        );
        if let Some(a) = current
            .iter()
            .find(|r| r.role == Role::Anchor && r.repo != p.repo.name)
        {
            body.push_str(&format!("\nAnchor: `{}` {}\n", a.repo, link(a)));
        }
        let siblings: Vec<_> = current
            .iter()
            .filter(|r| r.repo != p.repo.name && r.role == Role::Agnos)
            .collect();
        if !siblings.is_empty() {
            body.push_str("\nSiblings:\n");
            for s in siblings {
                body.push_str(&format!("- `{}` {}\n", s.repo, link(s)));
            }
        }
        body.push_str(&format!(
            "\nSee `.harpoon/covenants/{}.md`.\n",
            plan.covenant.covenant_id
        ));
        body
    }
}

/// Writes `files` into the clone at `dir`, refusing any path that passes
/// through a symbolic link. The checked-out tree comes from a tenant's remote,
/// so a committed `.harpoon -> /elsewhere` or `link -> /tmp` would otherwise
/// make `create_dir_all` and `write` follow it out of the clone. The checks
/// and writes run on a blocking thread, one path after the other, so nothing
/// between a check and its write can swap a directory for a link (the clone
/// is ours; only what git checked out can hold links).
async fn write_files(dir: &Path, files: &[crate::types::FileWrite]) -> Result<(), String> {
    let dir = dir.to_path_buf();
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || write_files_blocking(&dir, &files))
        .await
        .map_err(|e| format!("writing files: {e}"))?
}

fn write_files_blocking(dir: &Path, files: &[crate::types::FileWrite]) -> Result<(), String> {
    for f in files {
        check_path(&f.path).map_err(|m| format!("{}: {m}", f.path))?;
        no_symlink_on_path(dir, &f.path).map_err(|m| format!("{}: {m}", f.path))?;
        let target = dir.join(&f.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", f.path))?;
        }
        std::fs::write(&target, &f.content).map_err(|e| format!("{}: {e}", f.path))?;
    }
    Ok(())
}

/// Walks `rel` (already checked by `check_path`) under `dir` one component at
/// a time with `symlink_metadata`, which does not follow links, and refuses at
/// the first that is a symbolic link, the final file included. Components
/// that do not exist yet end the walk: what is missing gets created as plain
/// directories.
fn no_symlink_on_path(dir: &Path, rel: &str) -> Result<(), String> {
    let mut at = dir.to_path_buf();
    let mut shown = PathBuf::new();
    for c in Path::new(rel).components() {
        at.push(c);
        shown.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symbolic link in the repository; refusing to write through it",
                    shown.display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("{}: {e}", shown.display())),
        }
    }
    Ok(())
}
