//! Security issue 14, findings 2 and 3: which remotes a tenant may register.
//! Local-path shapes are checked against git itself (real bare repositories,
//! `git ls-remote`), network hosts the way ssh and git split them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{Bridge, BridgeError, BridgeSettings};
use std::path::Path;
use support::*;

/// A bridge with the deployment defaults for remotes (all off), tuned by `tune`.
async fn strict(tmp: &Path, tune: impl FnOnce(&mut BridgeSettings)) -> (Bridge, String) {
    let (db, tenant) = pool(tmp).await;
    let bridge = tuned_bridge(db, &tmp.join("data"), |s| {
        s.allow_local_remotes = false;
        s.allow_private_remotes = false;
        tune(s);
    });
    (bridge, tenant)
}

/// A bare repository at `path` with one commit on `main`.
fn bare_with_main(root: &Path, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    init_bare(root, path);
    let work = tempfile::tempdir().unwrap();
    seed(work.path(), &[("README.md", "# victim\n")]);
    // Cloned into place rather than pushed: a push would read `path` as a
    // remote, and git reads some of these shapes as another path or a host.
    std::fs::remove_dir_all(path).unwrap();
    git(
        root,
        &[
            "clone",
            "--quiet",
            "--bare",
            work.path().to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
}

fn message_of(r: Result<harpoon_bridge::Repo, BridgeError>, what: &str) -> String {
    match r {
        Err(BridgeError::Invalid { field, message }) => {
            assert_eq!(field, "url", "{what}: {message}");
            message
        }
        other => panic!("{what}: expected a 422 on url, got {other:?}"),
    }
}

#[tokio::test]
async fn finding2_relative_paths_with_at_and_colon_are_local_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = strict(tmp.path(), |_| {}).await;
    // git runs in the workspace; these shapes are paths relative to it.
    let ws = bridge.workspace().to_path_buf();
    std::fs::create_dir_all(&ws).unwrap();
    for (i, shape) in [
        "x/a@b:c.git",
        "./y@z:w.git",
        "../victim/q@r:s.git",
        "sub/dir@h:p",
    ]
    .into_iter()
    .enumerate()
    {
        bare_with_main(tmp.path(), &ws.join(shape));
        // git itself reads the shape as a local path: it lists the branch.
        let listed = git(&ws, &["ls-remote", "--heads", shape]);
        assert!(listed.contains("refs/heads/main"), "{shape}: {listed}");
        let m = message_of(
            bridge
                .register_repo(&tenant, new_repo(&format!("org/l{i}"), shape))
                .await,
            shape,
        );
        assert!(m.contains("allow_local_remotes"), "{shape}: {m}");
    }
    assert!(bridge.list_repos(&tenant).await.unwrap().is_empty());
}

#[tokio::test]
async fn finding3_ssh_hosts_are_split_on_the_last_at_like_ssh_does() {
    let tmp = tempfile::tempdir().unwrap();
    // ssh on, so the address check is what must refuse them.
    let (bridge, tenant) = strict(tmp.path(), |s| s.allow_ssh_remotes = true).await;
    for url in [
        "a@b@127.0.0.1:x.git",
        "git@x@localhost:x.git",
        "ssh://a@b@127.0.0.1/x.git",
        "ssh://git@x@[::1]:22/x.git",
    ] {
        let m = message_of(
            bridge.register_repo(&tenant, new_repo("org/s", url)).await,
            url,
        );
        assert!(m.contains("allow_private_remotes"), "{url}: {m}");
    }
}

#[tokio::test]
async fn finding3_addresses_with_an_embedded_internal_ipv4_are_internal() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = strict(tmp.path(), |_| {}).await;
    for url in [
        "https://[::127.0.0.1]/x.git",
        "https://[::a9fe:a9fe]/x.git",
        "https://[64:ff9b::7f00:1]/x.git",
        "https://[64:ff9b::a9fe:a9fe]/x.git",
        "https://[2002:a9fe:a9fe::1]/x.git",
        "https://[2002:7f00:1::]/x.git",
        "http://0x7f.1/x.git",
        "http://2130706433/x.git",
    ] {
        let m = message_of(
            bridge.register_repo(&tenant, new_repo("org/e", url)).await,
            url,
        );
        assert!(m.contains("allow_private_remotes"), "{url}: {m}");
    }
}

#[tokio::test]
async fn finding3_a_host_that_does_not_resolve_is_refused_before_git_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = strict(tmp.path(), |_| {}).await;
    let url = "https://no-such-host.invalid/x.git";
    let m = message_of(
        bridge.register_repo(&tenant, new_repo("org/d", url)).await,
        url,
    );
    // The same words as an internal host: the answer must not tell a tenant
    // which internal names exist.
    assert!(m.contains("must resolve to a public address"), "{m}");
    assert!(m.contains("allow_private_remotes"), "{m}");
}

/// A loopback port that accepts and drops every connection, and one that
/// nothing listens on.
fn open_and_closed_ports() -> (u16, u16) {
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Bounded: the test makes one or two connections.
        for conn in open.incoming().take(4) {
            drop(conn);
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    (open_port, closed_port)
}

#[tokio::test]
async fn finding3_an_unreadable_remote_gets_one_fixed_reason_not_git_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = strict(tmp.path(), |s| s.allow_private_remotes = true).await;
    let (open, closed) = open_and_closed_ports();
    let mut reasons = Vec::new();
    for port in [open, closed] {
        let url = format!("http://127.0.0.1:{port}/x.git");
        let m = message_of(
            bridge.register_repo(&tenant, new_repo("org/p", &url)).await,
            &url,
        );
        assert!(!m.contains("fatal"), "{m}");
        assert!(!m.contains(&port.to_string()), "{m}");
        assert!(m.len() < 200, "{m}");
        reasons.push(m);
    }
    assert_eq!(
        reasons[0], reasons[1],
        "an open and a closed port must read the same"
    );
}

/// `git ls-remote <shape>` in `cwd` with only `allow` as transport; no
/// network is reachable (ssh is `false`, and not allowed anyway).
fn ls_remote(cwd: &Path, shape: &str, allow: &str) -> std::process::Output {
    std::process::Command::new("git")
        .args(["ls-remote", "--heads", shape])
        .current_dir(cwd)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", allow)
        .env("GIT_SSH_COMMAND", "false")
        .output()
        .unwrap()
}

#[tokio::test]
async fn finding2_the_classifier_calls_local_exactly_what_git_reads_as_a_path() {
    use harpoon_bridge::remote::{Remote, classify};
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("w").join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let abs = tmp.path().join("abs");
    let abs_repo = abs.join("r@x:y.git");
    let abs_s = abs_repo.display().to_string();
    let relative: Vec<String> = [
        "repo.git",
        "./repo2.git",
        "sub/dir/repo.git",
        "x/a@b:c.git",
        "./y@z:w",
        "../up/r@h:p.git",
        "a@b/c:d",
        "sub/../plain.git",
        "my repo.git",
        "trailing.git/",
        "./a::b",
        "~nouser/x@y:z",
        "a\\b/c@d:e",
        "\\\\server\\share\\repo",
        "%2e/x@y:z",
        "x@y:z",
        "host:path",
        "a@b:c/d",
        ".\\x@y:z",
        "foo\\bar@h:x",
        "~user:repo",
        "a@b@127.0.0.1:x.git",
        "git@x@localhost:x.git",
        "[::1]:x",
        "git@[::1]:x.git",
        "C:/repo.git",
        "a:b/c",
        "-oProxyCommand=x:y",
        "ext::sh -c true",
        "fd::0",
        "x::y/z",
        "./x://y",
        // A local path with `@[`: git reads the path from the `]` on.
        "sub/q@[v]:w.git",
        "]:w.git",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut shapes = relative.clone();
    shapes.extend([
        abs_s.clone(),
        format!("file://{abs_s}"),
        format!("file://localhost{abs_s}"),
        format!("File://{abs_s}"),
        format!("FILE://{abs_s}"),
        "HTTPS://example.invalid/x".into(),
        "Ssh://h.invalid/x".into(),
        "git://example.invalid/x".into(),
        "ssh://git@example.invalid/x".into(),
        "git+ssh://git@example.invalid/x".into(),
        "ssh+git://git@example.invalid/x".into(),
        "https://example.invalid/x".into(),
    ]);
    // A real repository wherever a shape could name one on disk, network
    // shapes included (`x@y:z` exists as a directory, yet git goes to ssh).
    for shape in &relative {
        if !shape.contains("://") {
            bare_with_main(tmp.path(), &cwd.join(shape));
        }
    }
    bare_with_main(tmp.path(), &abs_repo);

    let (strict_bridge, tenant) = strict(tmp.path(), |_| {}).await;
    let (mut local, mut network, mut read) = (0, 0, 0);
    for (i, shape) in shapes.iter().enumerate() {
        // git names the transport it would use when none is allowed.
        let refused = ls_remote(&cwd, shape, "none");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        let git_local = stderr.contains("transport 'file' not allowed");
        let ours = classify(shape);
        assert_eq!(
            matches!(ours, Ok(Remote::Local)),
            git_local,
            "{shape:?}: ours {ours:?}, git said {stderr:?}"
        );
        if git_local {
            local += 1;
            // And git really reads the repository there (`~user` aside,
            // which upload-pack expands to a home directory).
            let listed = ls_remote(&cwd, shape, "file");
            if listed.status.success() {
                assert!(
                    String::from_utf8_lossy(&listed.stdout).contains("refs/heads/main"),
                    "{shape:?}"
                );
                read += 1;
            } else {
                assert!(
                    shape.starts_with('~') || shape.contains("@["),
                    "{shape:?}: {:?}",
                    listed
                );
            }
            // Every shape git reads as a path is refused with local remotes off.
            let m = message_of(
                strict_bridge
                    .register_repo(&tenant, new_repo(&format!("org/t{i}"), shape))
                    .await,
                shape,
            );
            assert!(m.contains("allow_local_remotes"), "{shape:?}: {m}");
        } else {
            network += 1;
        }
    }
    assert!(shapes.len() >= 30);
    assert!(local >= 15 && network >= 15, "{local} local, {network} not");
    assert!(
        read >= 15,
        "only {read} shapes were read from a real repository"
    );
}

#[tokio::test]
async fn finding2_a_local_path_stored_before_the_fix_cannot_be_pushed_to() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = strict(tmp.path(), |_| {}).await;
    let ws = bridge.workspace().to_path_buf();
    std::fs::create_dir_all(&ws).unwrap();
    // A strike clones in <workspace>/<tenant>/strikes/<run>: four levels up
    // is the directory above the workspace.
    let shape = "../../../../victim/a@b:c.git";
    let victim = ws.join("../victim/a@b:c.git");
    bare_with_main(tmp.path(), &victim);
    // A registration the old check let through, as it sits in the database.
    let (db, _) = pool(tmp.path()).await;
    sqlx::query(
        "INSERT INTO bridge_repos (tenant_id, name, url, default_branch, github_repo, created_at) VALUES ($1, $2, $3, $4, NULL, 0)",
    )
    .bind(&tenant)
    .bind("org/v")
    .bind(shape)
    .bind("main")
    .execute(&db)
    .await
    .unwrap();
    let covenant = plain_covenant("Push elsewhere", "d", "r", "t");
    let cov = bridge.create_covenant(&tenant, covenant).await.unwrap();
    let run_id = bridge
        .start_strike(&tenant, strike_request(&cov.covenant_id, &["org/v"], None))
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.repos[0].phase, harpoon_bridge::Phase::Failed, "{s:?}");
    assert_eq!(
        branch_sha(&victim, &s.repos[0].branch),
        None,
        "a branch was pushed into a repository elsewhere on the server's disk"
    );
}
