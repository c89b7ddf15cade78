//! Security issue 14, finding 7 (bridge parts): tenants read no server paths
//! in strike errors or unreadable reasons; strike file paths never reach
//! `.git` in any spelling a file system folds to it, nor `.gitmodules`; ssh
//! remotes (fetched with the service's own keys) are off unless enabled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{Bridge, BridgeError, NewCovenant, Phase, check_path};
use std::sync::Arc;
use support::*;

fn covenant() -> NewCovenant {
    plain_covenant(
        "Paths stay private",
        "Errors name files of the repository only.",
        "now",
        "then",
    )
}

#[test]
fn finding7_dot_git_in_any_spelling_and_gitmodules_are_refused() {
    for path in [
        ".git/config",
        ".GIT/config",
        ".Git/hooks/pre-commit",
        "sub/.GiT/config",
        ".git./config",
        ".git ./config",
        ".git::$INDEX_ALLOCATION/config",
        "git~1/config",
        "GIT~1/hooks/x",
        ".g\u{200c}it/config",
        "\u{feff}.git/config",
        ".gitmodules",
        ".GitModules",
        "sub/.gitmodules",
        ".gitmodules.",
        "gitmod~1",
    ] {
        assert!(check_path(path).is_err(), "{path:?} was accepted");
    }
    for path in [
        ".github/workflows/ci.yml",
        ".gitignore",
        ".gitattributes",
        "src/git/mod.rs",
        "docs/.gitkeep",
        ".gitx/notes",
        "legit~1",
    ] {
        assert!(check_path(path).is_ok(), "{path:?}: {:?}", check_path(path));
    }
}

#[tokio::test]
async fn finding7_a_strike_refuses_an_upper_case_git_config_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, _) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let covenant_id = register_with_covenant(&bridge, &tenant, "org/a", &url, covenant()).await;
    let change = file_change("org/a", ".GIT/config", "[core]\n\thooksPath = /tmp\n");
    let req = strike_request(&covenant_id, &["org/a"], Some(vec![change]));
    match bridge.start_strike(&tenant, req).await {
        Err(BridgeError::Invalid { field, .. }) => assert_eq!(field, "changes[0].files[0].path"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn finding7_strike_errors_and_unreadable_reasons_carry_no_server_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let server_root = tmp.path().to_str().unwrap().to_owned();
    let (bridge, tenant, url, bare) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    bridge
        .register_repo(&tenant, new_repo("org/a", &url))
        .await
        .unwrap();
    // The remote disappears after registration: every clone and fetch fails
    // with git naming paths on the server.
    std::fs::remove_dir_all(&bare).unwrap();
    let graph = bridge.cables(&tenant).await.unwrap();
    assert_eq!(graph.unreadable.len(), 1);
    let reason = &graph.unreadable[0].reason;
    assert!(!reason.contains(&server_root), "{reason}");
    assert!(!reason.contains("/tmp"), "{reason}");

    let cov = bridge.create_covenant(&tenant, covenant()).await.unwrap();
    let run_id = bridge
        .start_strike(&tenant, strike_request(&cov.covenant_id, &["org/a"], None))
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.repos[0].phase, Phase::Failed);
    let error = s.repos[0].error.clone().unwrap();
    assert!(!error.contains(&server_root), "{error}");
    assert!(!error.contains("/tmp"), "{error}");
}

#[tokio::test]
async fn finding7_ssh_remotes_are_off_unless_enabled() {
    let tmp = tempfile::tempdir().unwrap();
    let (db, tenant) = pool(tmp.path()).await;
    let defaults = harpoon_bridge::BridgeSettings::default();
    let bridge = Bridge::new(db, &defaults, &tmp.path().join("data"), Arc::new(NonBlank)).unwrap();
    for url in [
        "git@github.com:someone-else/private.git",
        "ssh://git@github.com/someone-else/private.git",
        "git+ssh://git@gitlab.example.com/x.git",
    ] {
        match bridge.register_repo(&tenant, new_repo("org/s", url)).await {
            Err(BridgeError::Invalid { field, message }) => {
                assert_eq!(field, "url");
                assert!(message.contains("allow_ssh_remotes"), "{url}: {message}");
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}
