//! Test support: a migrated pool with a tenant, git repositories with bare
//! remotes behind file URLs, and a local stand-in for GitHub's pull-request API.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use axum::{
    Json, Router,
    extract::{Path as AxPath, Query, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use harpoon_bridge::{
    Bridge, BridgeSettings, FileWrite, HygieneGate, NewCovenant, NewRepo, RepoChange, StrikeRequest,
};
use serde_json::{Value, json};
use sqlx::AnyPool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// Accepts any non-blank text (the service's stand-in until fusion lands).
pub struct NonBlank;
impl HygieneGate for NonBlank {
    fn score(&self, _path: &str, body: &str) -> f64 {
        if body.trim().is_empty() { 0.0 } else { 1.0 }
    }
}

/// A pool on `HARPOON_TEST_DATABASE_URL` (PostgreSQL) or a SQLite file in
/// `dir`, migrated with the service's migrations, plus a fresh tenant id.
pub async fn pool(dir: &Path) -> (AnyPool, String) {
    sqlx::any::install_default_drivers();
    let url = database_url(dir);
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../service/migrations");
    sqlx::migrate::Migrator::new(migrations)
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let tenant = format!("ten_{}", uuid_like());
    sqlx::query("INSERT INTO tenants (id, name, status, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&tenant)
        .bind(&tenant)
        .bind("active")
        .bind(0_i64)
        .execute(&pool)
        .await
        .unwrap();
    (pool, tenant)
}

/// The URL `pool` connects to, so a test that restarts a bridge reopens the same database.
pub fn database_url(dir: &Path) -> String {
    std::env::var("HARPOON_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bridge.db").display()))
}

pub fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{n:x}{:x}", std::process::id())
}

pub fn settings(github: Option<&str>) -> BridgeSettings {
    BridgeSettings {
        author_name: "Strike Bot".into(),
        author_email: "bot@harpoon.test".into(),
        github_api_url: github.unwrap_or("http://127.0.0.1:9").to_owned(),
        github_token: github.map(|_| orchestrator::Secret::new("test-token")),
        parallelism: 2,
        // One tenant's repositories run side by side in these tests (a push
        // held open while another repository finishes).
        tenant_parallelism: Some(2),
        allow_local_remotes: true,
        ..BridgeSettings::default()
    }
}

pub fn bridge(pool: AnyPool, dir: &Path, github: Option<&str>) -> Bridge {
    Bridge::new(pool, &settings(github), dir, Arc::new(NonBlank)).unwrap()
}

/// A bridge (no GitHub) on the test settings as `tune` changes them, for tests of one setting.
pub fn tuned_bridge(pool: AnyPool, dir: &Path, tune: impl FnOnce(&mut BridgeSettings)) -> Bridge {
    let mut s = settings(None);
    tune(&mut s);
    Bridge::new(pool, &s, dir, Arc::new(NonBlank)).unwrap()
}

/// Where one-repository tests start: a tenant's bridge and remote; (bridge, tenant, url, bare).
pub async fn bridge_with_remote(
    tmp: &Path,
    name: &str,
    files: &[(&str, &str)],
) -> (Bridge, String, String, PathBuf) {
    let (pool, tenant) = pool(tmp).await;
    let bridge = bridge(pool, &tmp.join("data"), None);
    let (url, bare) = remote(tmp, name, files);
    (bridge, tenant, url, bare)
}

/// Registers `repos` in order, unwrapping each: the set-up of every multi-repository test.
pub async fn register_all(bridge: &Bridge, tenant: &str, repos: impl IntoIterator<Item = NewRepo>) {
    for repo in repos {
        bridge.register_repo(tenant, repo).await.unwrap();
    }
}

/// Registers one repository and creates `covenant`, as strike tests do first; returns its id.
pub async fn register_with_covenant(
    bridge: &Bridge,
    tenant: &str,
    name: &str,
    url: &str,
    covenant: NewCovenant,
) -> String {
    register_all(bridge, tenant, [new_repo(name, url)]).await;
    bridge
        .create_covenant(tenant, covenant)
        .await
        .unwrap()
        .covenant_id
}

/// A registration with no default branch or GitHub repository, the one most tests make.
pub fn new_repo(name: &str, url: &str) -> NewRepo {
    NewRepo {
        name: name.into(),
        url: url.into(),
        default_branch: None,
        github_repo: None,
    }
}

/// A covenant of four plain strings, for tests whose covenant only has to be valid.
pub fn plain_covenant(title: &str, description: &str, reality: &str, target: &str) -> NewCovenant {
    serde_json::from_value(json!({
        "title": title,
        "description": description,
        "reality_state": {"description": reality},
        "target_state": {"description": target}
    }))
    .unwrap()
}

/// A strike on `repos` with `changes` and nothing generated, the request most strike tests send.
pub fn strike_request(
    covenant_id: &str,
    repos: &[&str],
    changes: Option<Vec<RepoChange>>,
) -> StrikeRequest {
    StrikeRequest {
        covenant_id: covenant_id.into(),
        target_repos: Some(repos.iter().map(|r| (*r).to_owned()).collect()),
        changes,
        generate: false,
    }
}

/// A change writing one file (no diff, title or body), every `files` change these tests make.
pub fn file_change(repo: &str, path: &str, content: &str) -> RepoChange {
    RepoChange {
        repo: repo.into(),
        files: vec![FileWrite {
            path: path.into(),
            content: content.into(),
        }],
        diff: None,
        title: None,
        body: None,
    }
}

/// A change applying `diff` (no files, title or body), every `diff` change these tests make.
pub fn diff_change(repo: &str, diff: &str) -> RepoChange {
    RepoChange {
        repo: repo.into(),
        files: vec![],
        diff: Some(diff.into()),
        title: None,
        body: None,
    }
}

/// Runs git in `dir`, panicking with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@test")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Where `remote` keeps `name`'s (bare repository, seed work tree), for tests that push more.
pub fn remote_paths(root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let stem = name.replace('/', "_");
    (
        root.join(format!("{stem}.git")),
        root.join(format!("{stem}.seed")),
    )
}

/// An empty bare repository at `path` on `main`, for `remote` and repositories placed by hand.
pub fn init_bare(root: &Path, path: &Path) {
    git(
        root,
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            path.to_str().unwrap(),
        ],
    );
}

/// Makes `work` a repository with one commit of `files` on `main`, to push or clone from.
pub fn seed(work: &Path, files: &[(&str, &str)]) {
    git(work, &["init", "--quiet", "-b", "main"]);
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    git(work, &["add", "--all"]);
    git(work, &["commit", "--quiet", "-m", "initial"]);
}

/// A bare remote `<root>/<name>.git` holding one commit of `files` on `main`;
/// returns its file URL and path.
pub fn remote(root: &Path, name: &str, files: &[(&str, &str)]) -> (String, PathBuf) {
    let (bare, work) = remote_paths(root, name);
    std::fs::create_dir_all(&work).unwrap();
    init_bare(root, &bare);
    seed(&work, files);
    let url = format!("file://{}", bare.display());
    git(&work, &["push", "--quiet", &url, "main"]);
    (url, bare)
}

/// Makes pushes to `bare` hang while `block` exists, then refuses them
/// (so a killed push never lands later); without the file pushes pass.
pub fn block_pushes(bare: &Path, block: &Path) {
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nif [ -e '{0}' ]; then\n  while [ -e '{0}' ]; do sleep 0.1; done\n  exit 1\nfi\nexit 0\n",
            block.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .args(["+x", hook.to_str().unwrap()])
        .status()
        .unwrap();
    std::fs::write(block, "").unwrap();
}

/// The commit `branch` points at in `bare`, if it exists.
pub fn branch_sha(bare: &Path, branch: &str) -> Option<String> {
    let out = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
        .current_dir(bare)
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: &'static str,
    pub repo: String,
    pub body: Value,
}

#[derive(Default)]
struct Hub {
    /// owner/name → bare repository, so a pull request's head must really exist.
    remotes: HashMap<String, PathBuf>,
    prs: Vec<(String, Value)>,
    seen: Vec<Seen>,
}

/// A GitHub REST stand-in on 127.0.0.1 (its own thread and runtime, so it
/// outlives the runtimes of the tests that restart a bridge).
#[derive(Clone)]
pub struct FakeGitHub {
    pub base: String,
    hub: Arc<Mutex<Hub>>,
}

impl FakeGitHub {
    pub fn start() -> Self {
        let hub = Arc::new(Mutex::new(Hub::default()));
        let app = Router::new()
            .route("/repos/{owner}/{repo}/pulls", get(list).post(create))
            .route(
                "/repos/{owner}/{repo}/pulls/{number}",
                get(one).patch(update),
            )
            .with_state(hub.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap().port()).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        });
        let port = rx.recv().unwrap();
        Self {
            base: format!("http://127.0.0.1:{port}"),
            hub,
        }
    }

    pub fn add_remote(&self, github_repo: &str, bare: &Path) {
        self.hub
            .lock()
            .unwrap()
            .remotes
            .insert(github_repo.into(), bare.into());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.hub.lock().unwrap().seen.clone()
    }

    pub fn prs(&self) -> Vec<(String, Value)> {
        self.hub.lock().unwrap().prs.clone()
    }

    /// Marks a pull request merged, as if someone merged it on GitHub.
    pub fn merge(&self, repo: &str, number: i64) {
        let mut hub = self.hub.lock().unwrap();
        for (r, pr) in &mut hub.prs {
            if r == repo && pr["number"] == number {
                pr["state"] = json!("closed");
                pr["merged_at"] = json!("2026-01-01T00:00:00Z");
            }
        }
    }
}

type Reply = (StatusCode, Json<Value>);

fn authorised(headers: &HeaderMap) -> Result<(), Reply> {
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some("Bearer test-token")
        && headers.get("accept").and_then(|v| v.to_str().ok())
            == Some("application/vnd.github+json")
        && headers.contains_key("user-agent");
    if ok {
        Ok(())
    } else {
        Err((
            StatusCode::UNAUTHORIZED,
            Json(
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            ),
        ))
    }
}

fn invalid(message: &str) -> Reply {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(
            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom", "message": message}]}),
        ),
    )
}

async fn create(
    State(hub): State<Arc<Mutex<Hub>>>,
    AxPath((owner, repo)): AxPath<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if let Err(r) = authorised(&headers) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let mut hub = hub.lock().unwrap();
    hub.seen.push(Seen {
        method: "POST",
        repo: full.clone(),
        body: body.clone(),
    });
    for field in ["title", "head", "base", "body"] {
        if !body[field].is_string() {
            return invalid(&format!("{field} is missing"));
        }
    }
    let Some(bare) = hub.remotes.get(&full).cloned() else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})));
    };
    let head = body["head"].as_str().unwrap();
    if branch_sha(&bare, head).is_none()
        || branch_sha(&bare, body["base"].as_str().unwrap()).is_none()
    {
        return invalid(&format!("head {head} or base does not exist"));
    }
    if hub
        .prs
        .iter()
        .any(|(r, p)| r == &full && p["head"]["ref"] == head)
    {
        return invalid(&format!(
            "A pull request already exists for {owner}:{head}."
        ));
    }
    let number = hub.prs.len() as i64 + 1;
    let pr = json!({
        "number": number,
        "html_url": format!("https://github.test/{full}/pull/{number}"),
        "state": "open",
        "merged_at": null,
        "title": body["title"],
        "body": body["body"],
        "head": {"ref": head, "label": format!("{owner}:{head}")},
        "base": {"ref": body["base"]},
    });
    hub.prs.push((full, pr.clone()));
    (StatusCode::CREATED, Json(pr))
}

async fn list(
    State(hub): State<Arc<Mutex<Hub>>>,
    AxPath((owner, repo)): AxPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    if let Err(r) = authorised(&headers) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let hub = hub.lock().unwrap();
    let found: Vec<Value> = hub
        .prs
        .iter()
        .filter(|(r, p)| {
            r == &full
                && q.get("head")
                    .is_none_or(|h| p["head"]["label"] == h.as_str())
        })
        .map(|(_, p)| p.clone())
        .collect();
    (StatusCode::OK, Json(Value::Array(found)))
}

async fn one(
    State(hub): State<Arc<Mutex<Hub>>>,
    AxPath((owner, repo, number)): AxPath<(String, String, i64)>,
    headers: HeaderMap,
) -> Reply {
    if let Err(r) = authorised(&headers) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let hub = hub.lock().unwrap();
    match hub
        .prs
        .iter()
        .find(|(r, p)| r == &full && p["number"] == number)
    {
        Some((_, p)) => (StatusCode::OK, Json(p.clone())),
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))),
    }
}

async fn update(
    State(hub): State<Arc<Mutex<Hub>>>,
    AxPath((owner, repo, number)): AxPath<(String, String, i64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if let Err(r) = authorised(&headers) {
        return r;
    }
    let full = format!("{owner}/{repo}");
    let mut hub = hub.lock().unwrap();
    hub.seen.push(Seen {
        method: "PATCH",
        repo: full.clone(),
        body: body.clone(),
    });
    match hub
        .prs
        .iter_mut()
        .find(|(r, p)| r == &full && p["number"] == number)
    {
        Some((_, p)) => {
            if let Some(b) = body.get("body") {
                p["body"] = b.clone();
            }
            (StatusCode::OK, Json(p.clone()))
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))),
    }
}

/// Polls until `f` holds or `secs` pass.
pub async fn until<F: Fn(&harpoon_bridge::StrikeStatus) -> bool>(
    bridge: &Bridge,
    tenant: &str,
    run_id: &str,
    secs: u64,
    f: F,
) -> harpoon_bridge::StrikeStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let s = bridge.strike_status(tenant, run_id).await.unwrap();
        if f(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out; last status {s:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
