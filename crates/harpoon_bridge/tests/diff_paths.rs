//! Red-team pass 2, item 3: every path a strike's `diff` touches (new and
//! old names, renames, copies, mode changes, symbolic links) passes the same
//! `check_path` as `files` before anything is committed or pushed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::Phase;
use support::*;

/// Runs a one-repository strike of `diff` on a fresh remote; returns the
/// repository's final run and whether its branch reached the remote.
async fn strike_diff(diff: &str) -> (harpoon_bridge::RepoRun, bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, bare) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let covenant = plain_covenant(
        "Diffs stay in the tree",
        "A diff writes what files may write, nothing else.",
        "now",
        "then",
    );
    let covenant_id = register_with_covenant(&bridge, &tenant, "org/a", &url, covenant).await;
    let run_id = bridge
        .start_strike(
            &tenant,
            strike_request(
                &covenant_id,
                &["org/a"],
                Some(vec![diff_change("org/a", diff)]),
            ),
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    let run = s.repos[0].clone();
    let pushed = branch_sha(&bare, &run.branch).is_some();
    (run, pushed)
}

#[tokio::test]
async fn a_diff_touching_gitmodules_or_git_in_any_form_is_refused_before_the_push() {
    let cases = [
        // The red team's: a new .gitmodules pointing at a local path.
        (
            ".gitmodules",
            "--- /dev/null\n+++ b/.gitmodules\n@@ -0,0 +1,3 @@\n+[submodule \"x\"]\n+\tpath = x\n+\turl = file:///etc\n",
        ),
        (
            ".GITMODULES",
            "--- /dev/null\n+++ b/.GITMODULES\n@@ -0,0 +1 @@\n+[submodule \"x\"]\n",
        ),
        // A rename: the new name is only in the extended header.
        (
            "sub/.GitModules",
            "diff --git a/README.md b/sub/.GitModules\nsimilarity index 100%\nrename from README.md\nrename to sub/.GitModules\n",
        ),
        // A copy.
        (
            "gitmod~1",
            "diff --git a/README.md b/gitmod~1\nsimilarity index 100%\ncopy from README.md\ncopy to gitmod~1\n",
        ),
        // A symbolic link created under a name that folds to .git.
        (
            "git~1",
            "diff --git a/git~1 b/git~1\nnew file mode 120000\n--- /dev/null\n+++ b/git~1\n@@ -0,0 +1 @@\n+.git\n\\ No newline at end of file\n",
        ),
        (
            ".GIT/hooks/post-checkout",
            "--- /dev/null\n+++ b/.GIT/hooks/post-checkout\n@@ -0,0 +1 @@\n+#!/bin/sh\n",
        ),
    ];
    for (path, diff) in cases {
        let (run, pushed) = strike_diff(diff).await;
        assert_eq!(run.phase, Phase::Failed, "{path}: {run:?}");
        assert!(!pushed, "{path}: the branch was pushed");
        let error = run.error.unwrap_or_default();
        assert!(error.contains(path), "{path}: {error}");
    }
}

#[tokio::test]
async fn a_rename_away_from_a_refused_name_is_refused_too() {
    // The old name of a rename is deleted: it is touched as much as the new.
    let diff =
        "diff --git a/.GIT/x b/moved\nsimilarity index 100%\nrename from .GIT/x\nrename to moved\n";
    let (run, pushed) = strike_diff(diff).await;
    assert_eq!(run.phase, Phase::Failed, "{run:?}");
    assert!(!pushed);
}

#[tokio::test]
async fn an_ordinary_rename_and_mode_change_still_apply() {
    let diff = "diff --git a/README.md b/docs/README.md\nsimilarity index 100%\nrename from README.md\nrename to docs/README.md\n";
    let (run, pushed) = strike_diff(diff).await;
    assert_eq!(run.phase, Phase::Done, "{run:?}");
    assert!(pushed);
    let diff = "diff --git a/README.md b/README.md\nold mode 100644\nnew mode 100755\n";
    let (run, pushed) = strike_diff(diff).await;
    assert_eq!(run.phase, Phase::Done, "{run:?}");
    assert!(pushed);
}
