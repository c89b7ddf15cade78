//! Strikes against real git: temporary repositories with bare remotes behind
//! file URLs, pull requests against a local GitHub stand-in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{
    NewCovenant, NewRepo, Phase, RealityState, RepoChange, StrikeRequest, TargetState,
};
use support::*;

fn covenant() -> NewCovenant {
    serde_json::from_value(serde_json::json!({
        "title": "Session cookies to JWT with refresh",
        "description": "Replace server-side session cookies with signed JWTs and refresh tokens.",
        "reality_state": {"description": "Login sets a session cookie.", "key_aspects": ["session store"]},
        "target_state": {"description": "Login returns a JWT and a refresh token.", "success_criteria": ["no session store"]},
        "owner": "platform-team"
    }))
    .unwrap()
}

fn repo(name: &str, url: &str, github: Option<&str>) -> NewRepo {
    NewRepo {
        github_repo: github.map(str::to_owned),
        ..new_repo(name, url)
    }
}

const GOOD_DIFF: &str = "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # web\n+Uses JWT now.\n";
const BAD_DIFF: &str =
    "--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # this line is not there\n+nope\n";

#[tokio::test]
async fn given_changes_open_linked_prs_and_a_bad_diff_fails_only_its_repo() {
    let tmp = tempfile::tempdir().unwrap();
    let gh = FakeGitHub::start();
    let (pool, tenant) = pool(tmp.path()).await;
    let bridge = bridge(pool, &tmp.path().join("data"), Some(&gh.base));
    let (auth_url, auth_bare) = remote(
        tmp.path(),
        "org/auth",
        &[
            ("README.md", "# auth\n"),
            ("src/lib.rs", "pub fn login() {}\n"),
        ],
    );
    let (web_url, web_bare) = remote(tmp.path(), "org/web", &[("README.md", "# web\n")]);
    let (bill_url, bill_bare) = remote(tmp.path(), "org/billing", &[("README.md", "# billing\n")]);
    gh.add_remote("acme/auth", &auth_bare);
    gh.add_remote("acme/web", &web_bare);
    let repos = [
        repo("org/auth", &auth_url, Some("acme/auth")),
        repo("org/web", &web_url, Some("acme/web")),
        repo("org/billing", &bill_url, None),
    ];
    register_all(&bridge, &tenant, repos).await;
    let cov = bridge.create_covenant(&tenant, covenant()).await.unwrap();
    assert_eq!(cov.metadata["owner"], "platform-team");

    let changes = vec![
        RepoChange {
            title: Some("Issue JWTs".into()),
            ..file_change("org/auth", "src/jwt.rs", "pub fn issue() {}\n")
        },
        diff_change("org/web", GOOD_DIFF),
        diff_change("org/billing", BAD_DIFF),
    ];
    let run_id = bridge
        .start_strike(
            &tenant,
            strike_request(
                &cov.covenant_id,
                &["org/auth", "org/web", "org/billing"],
                Some(changes),
            ),
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.state, "partial", "{s:#?}");
    let [auth, web, bill] = [&s.repos[0], &s.repos[1], &s.repos[2]];
    assert_eq!(
        (auth.phase, web.phase, bill.phase),
        (Phase::Done, Phase::Done, Phase::Failed)
    );
    assert!(
        bill.error.as_deref().unwrap().contains("does not apply"),
        "{bill:?}"
    );
    let branch = &auth.branch;
    assert!(
        branch.starts_with("harpoon/session-cookies-to-jwt-with-refresh-"),
        "{branch}"
    );
    assert_eq!(
        branch_sha(&bill_bare, branch),
        None,
        "a failed repository pushes nothing"
    );

    // The pushed branches hold the change, the covenant file, one commit by the configured author.
    for (bare, run) in [(&auth_bare, auth), (&web_bare, web)] {
        let sha = branch_sha(bare, branch).unwrap();
        assert_eq!(Some(&sha), run.commit.as_ref());
        let author = git(bare, &["log", "-1", "--format=%an <%ae>", &sha]);
        assert_eq!(author, "Strike Bot <bot@harpoon.test>");
        assert_eq!(
            git(bare, &["rev-list", "--count", &format!("main..{sha}")]),
            "1"
        );
        let file = git(
            bare,
            &[
                "show",
                &format!("{sha}:.harpoon/covenants/{}.md", cov.covenant_id),
            ],
        );
        assert!(
            file.contains("Session cookies to JWT") && file.contains("no session store"),
            "{file}"
        );
    }
    assert_eq!(
        git(&auth_bare, &["show", &format!("{branch}:src/jwt.rs")]),
        "pub fn issue() {}"
    );
    assert!(git(&web_bare, &["show", &format!("{branch}:README.md")]).contains("Uses JWT now."));

    // Pull requests: anchor first, documented shapes, then bodies linking each other.
    let posts: Vec<_> = gh
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST")
        .collect();
    assert_eq!(
        posts.iter().map(|p| p.repo.as_str()).collect::<Vec<_>>(),
        ["acme/auth", "acme/web"]
    );
    assert_eq!(posts[0].body["head"], branch.as_str());
    assert_eq!(posts[0].body["base"], "main");
    assert_eq!(posts[0].body["title"], "Issue JWTs");
    assert_eq!(
        auth.pr_url.as_deref(),
        Some("https://github.test/acme/auth/pull/1")
    );
    assert_eq!(auth.pr_state.as_deref(), Some("open"));
    let prs = gh.prs();
    let auth_body = prs[0].1["body"].as_str().unwrap();
    let web_body = prs[1].1["body"].as_str().unwrap();
    assert!(
        auth_body.contains(web.pr_url.as_deref().unwrap()),
        "{auth_body}"
    );
    assert!(
        web_body.contains(auth.pr_url.as_deref().unwrap()) && web_body.contains("Anchor"),
        "{web_body}"
    );
    assert!(
        auth_body.contains("org/billing"),
        "siblings without a PR are named too: {auth_body}"
    );

    // The monitor sees a merge.
    gh.merge("acme/auth", 1);
    assert_eq!(bridge.refresh_pr_states().await.unwrap(), 1);
    let s = bridge.strike_status(&tenant, &run_id).await.unwrap();
    assert_eq!(s.repos[0].pr_state.as_deref(), Some("merged"));
}

#[tokio::test]
async fn non_github_remotes_record_the_pushed_branch_and_a_missing_token_fails_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (pool, tenant) = pool(tmp.path()).await;
    let bridge = bridge(pool, &tmp.path().join("data"), None);
    let (a_url, a_bare) = remote(tmp.path(), "org/a", &[("README.md", "# a\n")]);
    let (b_url, b_bare) = remote(tmp.path(), "org/b", &[("README.md", "# b\n")]);
    let repos = [
        repo("org/a", &a_url, None),
        repo("org/b", &b_url, Some("acme/b")),
    ];
    register_all(&bridge, &tenant, repos).await;
    let cov = bridge.create_covenant(&tenant, covenant()).await.unwrap();
    let run_id = bridge
        .start_strike(
            &tenant,
            strike_request(&cov.covenant_id, &["org/a", "org/b"], None),
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.repos[0].phase, Phase::Done);
    assert_eq!(s.repos[0].pr_url, None);
    assert!(branch_sha(&a_bare, &s.repos[0].branch).is_some());
    // Pushed, but no token: failed with the reason, the branch is there.
    assert_eq!(s.repos[1].phase, Phase::Failed);
    assert!(
        s.repos[1]
            .error
            .as_deref()
            .unwrap()
            .contains("GITHUB_TOKEN"),
        "{:?}",
        s.repos[1]
    );
    assert!(branch_sha(&b_bare, &s.repos[1].branch).is_some());
    assert_eq!(s.state, "partial");

    // The dashboard's list: the tenant's strikes in the window, with their
    // repositories; nothing of it for another tenant or a later window.
    let recent = bridge.recent_strikes(Some(&tenant), 0, 10).await.unwrap();
    assert_eq!(recent.len(), 1, "{recent:?}");
    assert_eq!(
        (recent[0].run_id.as_str(), recent[0].repos.len()),
        (run_id.as_str(), 2)
    );
    assert!(
        bridge
            .recent_strikes(Some("ten_other"), 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        bridge
            .recent_strikes(Some(&tenant), i64::MAX, 10)
            .await
            .unwrap()
            .is_empty(),
        "a finished strike older than the window is left out"
    );
    let all = bridge.recent_strikes(None, 0, 100).await.unwrap();
    assert!(all.iter().any(|s| s.run_id == run_id));
}

/// Where the cancel and resume tests start: a strike on `org/slow` whose push hangs on `block`.
async fn held_strike(
    tmp: &std::path::Path,
) -> (
    harpoon_bridge::Bridge,
    String,
    String,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let (bridge, tenant, url, bare) =
        bridge_with_remote(tmp, "org/slow", &[("README.md", "# slow\n")]).await;
    let block = tmp.join("block");
    block_pushes(&bare, &block);
    let covenant_id = register_with_covenant(&bridge, &tenant, "org/slow", &url, covenant()).await;
    let run_id = bridge
        .start_strike(&tenant, strike_request(&covenant_id, &["org/slow"], None))
        .await
        .unwrap();
    (bridge, tenant, run_id, bare, block)
}

#[tokio::test]
async fn cancel_kills_the_running_push() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, run_id, bare, block) = held_strike(tmp.path()).await;
    let (_, events) = bridge.subscribe(&tenant, &run_id).await.unwrap();
    let mut events = events.expect("a running strike has live events");
    until(&bridge, &tenant, &run_id, 30, |s| {
        s.repos[0].phase == Phase::Pushing
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    bridge.cancel_strike(&tenant, &run_id).await.unwrap();
    let s = until(&bridge, &tenant, &run_id, 10, |s| s.state != "running").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(s.state, "cancelled");
    assert_eq!(s.repos[0].phase, Phase::Cancelled);
    std::fs::remove_file(&block).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(branch_sha(&bare, &s.repos[0].branch), None);
    // The stream carried the phases and ends with the strike's state.
    let mut phases = Vec::new();
    while let Ok(e) = events.try_recv() {
        phases.push(e.phase);
    }
    assert!(
        phases.contains(&"pushing".to_owned())
            && phases.last().map(String::as_str) == Some("cancelled"),
        "{phases:?}"
    );
    // A finished strike cannot be cancelled again.
    assert!(matches!(
        bridge.cancel_strike(&tenant, &run_id).await,
        Err(harpoon_bridge::BridgeError::Conflict(_))
    ));
}

#[test]
fn a_strike_interrupted_by_a_restart_resumes_without_duplicating_branches_or_prs() {
    let tmp = tempfile::tempdir().unwrap();
    let gh = FakeGitHub::start();
    let data = tmp.path().join("data");
    let block = tmp.path().join("block");
    let (fast_url, fast_bare) = remote(tmp.path(), "org/fast", &[("README.md", "# fast\n")]);
    let (slow_url, slow_bare) = remote(tmp.path(), "org/slow", &[("README.md", "# slow\n")]);
    gh.add_remote("acme/fast", &fast_bare);
    gh.add_remote("acme/slow", &slow_bare);
    block_pushes(&slow_bare, &block);

    // First life: the fast repository pushes, the slow one hangs in its push; then the process "dies".
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tenant, run_id, first_sha) = rt.block_on(async {
        let (pool, tenant) = pool(tmp.path()).await;
        let bridge = bridge(pool, &data, Some(&gh.base));
        let repos = [
            repo("org/fast", &fast_url, Some("acme/fast")),
            repo("org/slow", &slow_url, Some("acme/slow")),
        ];
        register_all(&bridge, &tenant, repos).await;
        let cov = bridge.create_covenant(&tenant, covenant()).await.unwrap();
        let run_id = bridge
            .start_strike(
                &tenant,
                strike_request(&cov.covenant_id, &["org/fast", "org/slow"], None),
            )
            .await
            .unwrap();
        let s = until(&bridge, &tenant, &run_id, 30, |s| {
            s.repos[0].phase == Phase::Pushed && s.repos[1].phase == Phase::Pushing
        })
        .await;
        (tenant, run_id, s.repos[0].commit.clone().unwrap())
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    std::fs::remove_file(&block).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let branch_after_crash = {
        let out = std::process::Command::new("git")
            .args([
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads/harpoon",
            ])
            .current_dir(&fast_bare)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(
        branch_sha(&fast_bare, &branch_after_crash).as_deref(),
        Some(first_sha.as_str())
    );
    assert!(gh.seen().is_empty(), "no pull request before the crash");

    // Second life: recovery marks it interrupted; a resume finishes it, twice is refused.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .connect(&database_url(tmp.path()))
            .await
            .unwrap();
        let bridge = bridge(pool, &data, Some(&gh.base));
        assert!(bridge.recover().await.unwrap().contains(&run_id));
        let s = bridge.strike_status(&tenant, &run_id).await.unwrap();
        assert_eq!(s.state, "interrupted");
        assert!(
            s.repos.iter().all(|r| r.phase == Phase::Interrupted),
            "{s:#?}"
        );

        bridge.resume_strike(&tenant, &run_id).await.unwrap();
        let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
        assert_eq!(s.state, "done", "{s:#?}");
        let branch = &s.repos[0].branch;
        // Idempotent on the branch name: the fast repository's branch is the one pushed before the crash.
        assert_eq!(
            branch_sha(&fast_bare, branch).as_deref(),
            Some(first_sha.as_str())
        );
        assert_eq!(s.repos[0].commit.as_deref(), Some(first_sha.as_str()));
        assert_eq!(
            git(
                &fast_bare,
                &["rev-list", "--count", &format!("main..{branch}")]
            ),
            "1"
        );
        assert!(branch_sha(&slow_bare, branch).is_some());
        assert_eq!(gh.prs().len(), 2);

        // Resuming a finished strike is a conflict; re-running the PR step finds, never duplicates.
        assert!(matches!(
            bridge.resume_strike(&tenant, &run_id).await,
            Err(harpoon_bridge::BridgeError::Conflict(_))
        ));
    });
    let posts = gh.seen().into_iter().filter(|s| s.method == "POST").count();
    assert_eq!(posts, 2, "one pull request per repository");
}

#[tokio::test]
async fn strike_requests_are_validated_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, _) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let covenant_id = register_with_covenant(&bridge, &tenant, "org/a", &url, covenant()).await;
    let field = |r: Result<String, harpoon_bridge::BridgeError>| match r {
        Err(harpoon_bridge::BridgeError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let req =
        |targets: Option<Vec<&str>>, changes: Option<Vec<RepoChange>>, generate| StrikeRequest {
            covenant_id: covenant_id.clone(),
            target_repos: targets.map(|t| t.into_iter().map(String::from).collect()),
            changes,
            generate,
        };
    assert_eq!(
        field(bridge.start_strike(&tenant, req(None, None, false)).await),
        "target_repos"
    );
    assert_eq!(
        field(
            bridge
                .start_strike(&tenant, req(Some(vec!["org/zz"]), None, false))
                .await
        ),
        "target_repos[0]"
    );
    let escape = file_change("org/a", "../x", "x");
    assert_eq!(
        field(
            bridge
                .start_strike(
                    &tenant,
                    req(Some(vec!["org/a"]), Some(vec![escape.clone()]), false)
                )
                .await
        ),
        "changes[0].files[0].path"
    );
    assert_eq!(
        field(
            bridge
                .start_strike(&tenant, req(Some(vec!["org/a"]), Some(vec![escape]), true))
                .await
        ),
        "changes"
    );
    let missing = StrikeRequest {
        covenant_id: "cov_nope".into(),
        target_repos: None,
        changes: None,
        generate: false,
    };
    assert!(matches!(
        bridge.start_strike(&tenant, missing).await,
        Err(harpoon_bridge::BridgeError::NotFound(_))
    ));
    // Registering: a bad name, an unreadable URL, a missing branch.
    let bad = |name: &str, url: &str, branch: Option<&str>| NewRepo {
        default_branch: branch.map(String::from),
        ..new_repo(name, url)
    };
    for (r, want) in [
        (bad("noslash", &url, None), "name"),
        (bad("org/b", "file:///nonexistent/repo.git", None), "url"),
        (bad("org/c", &url, Some("develop")), "default_branch"),
    ] {
        match bridge.register_repo(&tenant, r).await {
            Err(harpoon_bridge::BridgeError::Invalid { field, .. }) => assert_eq!(field, want),
            other => panic!("{other:?}"),
        }
    }
    // Local remotes are refused unless the deployment allows them.
    let (db, _) = support::pool(tmp.path()).await;
    let strict = tuned_bridge(db, tmp.path(), |s| {
        s.allow_local_remotes = false;
        // ssh remotes are on here so the address check below is what refuses them.
        s.allow_ssh_remotes = true;
    });
    match strict
        .register_repo(&tenant, bad("org/l", &url, None))
        .await
    {
        Err(harpoon_bridge::BridgeError::Invalid { field, message }) => {
            assert_eq!(field, "url");
            assert!(message.contains("allow_local_remotes"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // So are remotes on the server's own network, before git is asked anything.
    for internal in [
        "http://127.0.0.1:9/org/x.git",
        "https://169.254.169.254/latest/meta-data",
        "ssh://git@[::1]/x.git",
        "git@10.0.0.7:org/x.git",
        "https://localhost/x.git",
    ] {
        match strict
            .register_repo(&tenant, bad("org/n", internal, None))
            .await
        {
            Err(harpoon_bridge::BridgeError::Invalid { field, message }) => {
                assert_eq!(field, "url");
                assert!(
                    message.contains("allow_private_remotes"),
                    "{internal}: {message}"
                );
            }
            other => panic!("{internal}: {other:?}"),
        }
    }
    assert!(matches!(
        bridge
            .register_repo(&tenant, bad("org/a", &url, None))
            .await,
        Err(harpoon_bridge::BridgeError::Conflict(_))
    ));
    let _ = (
        RealityState {
            description: String::new(),
            key_aspects: vec![],
        },
        TargetState {
            description: String::new(),
            success_criteria: vec![],
        },
    );
}

/// Adds `links` (path → target) as symbolic links to the seed of `remote`
/// and pushes them to its bare repository.
#[cfg(unix)]
fn push_links(root: &std::path::Path, name: &str, links: &[(&str, &std::path::Path)]) {
    let (bare, work) = remote_paths(root, name);
    for (path, target) in links {
        std::os::unix::fs::symlink(target, work.join(path)).unwrap();
    }
    git(&work, &["add", "--all"]);
    git(&work, &["commit", "--quiet", "-m", "links"]);
    git(
        &work,
        &[
            "push",
            "--quiet",
            &format!("file://{}", bare.display()),
            "main",
        ],
    );
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_in_the_checked_out_tree_never_lead_a_write_outside_the_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (pool, tenant) = pool(tmp.path()).await;
    let bridge = bridge(pool, &tmp.path().join("data"), None);
    let (good_url, good_bare) = remote(tmp.path(), "org/good", &[("README.md", "# good\n")]);
    // `.harpoon` → a directory outside: the covenant file would land there.
    let (dot_url, dot_bare) = remote(tmp.path(), "org/dot", &[("README.md", "# dot\n")]);
    let harpoon_out = outside.path().join("harpoon");
    std::fs::create_dir_all(&harpoon_out).unwrap();
    push_links(tmp.path(), "org/dot", &[(".harpoon", &harpoon_out)]);
    // A given file that is itself a link to a file outside.
    let (file_url, file_bare) = remote(tmp.path(), "org/file", &[("README.md", "# file\n")]);
    let stolen = outside.path().join("stolen.txt");
    push_links(tmp.path(), "org/file", &[("notes.txt", &stolen)]);
    // A given file under a linked directory.
    let (dir_url, dir_bare) = remote(tmp.path(), "org/dir", &[("README.md", "# dir\n")]);
    push_links(tmp.path(), "org/dir", &[("link", outside.path())]);
    let repos = [
        new_repo("org/good", &good_url),
        new_repo("org/dot", &dot_url),
        new_repo("org/file", &file_url),
        new_repo("org/dir", &dir_url),
    ];
    register_all(&bridge, &tenant, repos).await;
    let cov = bridge.create_covenant(&tenant, covenant()).await.unwrap();
    let change = |repo: &str, path: &str| file_change(repo, path, "escaped\n");
    let changes = vec![
        change("org/good", "docs/ok.txt"),
        change("org/file", "notes.txt"),
        change("org/dir", "link/planted.txt"),
    ];
    let run_id = bridge
        .start_strike(
            &tenant,
            strike_request(
                &cov.covenant_id,
                &["org/good", "org/dot", "org/file", "org/dir"],
                Some(changes),
            ),
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    let by = |name: &str| s.repos.iter().find(|r| r.repo == name).unwrap();
    assert_eq!(by("org/good").phase, Phase::Done, "{s:#?}");
    assert!(branch_sha(&good_bare, &by("org/good").branch).is_some());
    for (name, bare, link) in [
        ("org/dot", &dot_bare, ".harpoon"),
        ("org/file", &file_bare, "notes.txt"),
        ("org/dir", &dir_bare, "link"),
    ] {
        let r = by(name);
        assert_eq!(r.phase, Phase::Failed, "{r:#?}");
        let error = r.error.as_deref().unwrap();
        assert!(
            error.contains(link) && error.contains("symbolic link"),
            "{name}: {error}"
        );
        assert!(branch_sha(bare, &r.branch).is_none(), "{name} pushed");
    }
    assert_eq!(s.state, "partial");
    // Nothing was written outside the clones.
    assert!(!stolen.exists());
    assert_eq!(std::fs::read_dir(&harpoon_out).unwrap().count(), 0);
    let left: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("harpoon")]);
}

#[tokio::test]
async fn two_resumes_at_once_run_the_strike_once_and_the_other_is_a_conflict() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, run_id, bare, block) = held_strike(tmp.path()).await;
    // Cancel it in its push, so there is something to resume.
    until(&bridge, &tenant, &run_id, 30, |s| {
        s.repos[0].phase == Phase::Pushing
    })
    .await;
    bridge.cancel_strike(&tenant, &run_id).await.unwrap();
    let s = until(&bridge, &tenant, &run_id, 10, |s| s.state != "running").await;
    assert_eq!(s.state, "cancelled");
    std::fs::remove_file(&block).unwrap();

    let (a, b) = tokio::join!(
        bridge.resume_strike(&tenant, &run_id),
        bridge.resume_strike(&tenant, &run_id)
    );
    let conflicts = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(harpoon_bridge::BridgeError::Conflict(_))))
        .count();
    let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!((oks, conflicts), (1, 1), "{a:?} / {b:?}");
    // The one run is not cancelled by the other's bookkeeping: it finishes.
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.state, "done", "{s:#?}");
    assert!(branch_sha(&bare, &s.repos[0].branch).is_some());
    assert_eq!(
        git(
            &bare,
            &[
                "rev-list",
                "--count",
                &format!("main..{}", s.repos[0].branch)
            ]
        ),
        "1"
    );
    // Once it is over the slot is free again: a later resume is refused
    // only because nothing is left, and cancel says it is not running.
    assert!(matches!(
        bridge.cancel_strike(&tenant, &run_id).await,
        Err(harpoon_bridge::BridgeError::Conflict(_))
    ));
}
