//! Red-team pass 2, item 4: caller strings the bridge stores are bounded and
//! free of control characters, names follow GitHub's and git's rules, and no
//! caller text can forge lines (trailers) in a Harpoon-authored commit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{BridgeError, NewCovenant, NewRepo, Phase, RepoChange};
use serde_json::json;
use support::*;

fn field_of<T: std::fmt::Debug>(r: Result<T, BridgeError>) -> String {
    match r {
        Err(BridgeError::Invalid { field, .. }) => field,
        other => {
            let shown: String = format!("{other:?}").chars().take(300).collect();
            panic!("expected a validation error, got {shown}")
        }
    }
}

fn covenant(v: serde_json::Value) -> NewCovenant {
    let mut base = json!({
        "title": "Bounded strings",
        "description": "Every caller string is bounded.",
        "reality_state": {"description": "now", "key_aspects": ["a"]},
        "target_state": {"description": "then", "success_criteria": ["b"]}
    });
    for (k, val) in v.as_object().unwrap() {
        base[k] = val.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// A registration with the given branch and GitHub repository, the fields these tests vary.
fn repo_with(name: &str, url: &str, branch: Option<&str>, gh: Option<&str>) -> NewRepo {
    NewRepo {
        default_branch: branch.map(str::to_owned),
        github_repo: gh.map(str::to_owned),
        ..new_repo(name, url)
    }
}

#[tokio::test]
async fn repository_names_github_repos_and_branches_are_bounded_and_well_formed() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, _) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let long_name = format!("org/{}", "a".repeat(200_000));
    let long_gh = format!("owner/{}", "r".repeat(200_000));
    let cases: Vec<(NewRepo, &str)> = vec![
        (repo_with(&long_name, &url, None, None), "name"),
        (
            repo_with("org/a", &url, None, Some(&long_gh)),
            "github_repo",
        ),
        (
            repo_with("org/a", &url, None, Some("own_er/x")),
            "github_repo",
        ),
        (
            repo_with("org/a", &url, None, Some("owner/x\n")),
            "github_repo",
        ),
        (repo_with("org/a", &url, Some("*"), None), "default_branch"),
        (
            repo_with("org/a", &url, Some("ma[in"), None),
            "default_branch",
        ),
        (
            repo_with("org/a", &url, Some("main.lock"), None),
            "default_branch",
        ),
        (
            repo_with("org/a", &url, Some("a\u{1b}b"), None),
            "default_branch",
        ),
        (
            repo_with("org/a", &url, Some("HEAD"), None),
            "default_branch",
        ),
    ];
    for (repo, field) in cases {
        let shown = format!("{:.60?}", repo);
        assert_eq!(
            field_of(bridge.register_repo(&tenant, repo).await),
            field,
            "{shown}"
        );
    }
    assert!(bridge.list_repos(&tenant).await.unwrap().is_empty());
    bridge
        .register_repo(
            &tenant,
            repo_with("org/a", &url, Some("main"), Some("octo-org/a.b")),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn covenant_text_is_bounded_and_carries_no_control_characters() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, _, _) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let many: serde_json::Map<String, serde_json::Value> =
        (0..40).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases = vec![
        (
            json!({"title": "Fix\n\nSigned-off-by: Linus Torvalds <torvalds@linux-foundation.org>\nCo-authored-by: Victim <v@x>"}),
            "title",
        ),
        (json!({"title": "T\u{1b}[2J"}), "title"),
        (json!({"title": "bell\u{7}"}), "title"),
        (json!({"description": "nul\u{0}"}), "description"),
        (json!({"description": "crlf\r\nx"}), "description"),
        (json!({"description": "x".repeat(100_000)}), "description"),
        (
            json!({"reality_state": {"description": "esc\u{1b}[31m"}}),
            "reality_state.description",
        ),
        (
            json!({"reality_state": {"description": "ok", "key_aspects": ["a\r\nCo-authored-by: x"]}}),
            "reality_state.key_aspects[0]",
        ),
        (
            json!({"target_state": {"description": "ok", "success_criteria": ["x".repeat(10_000)]}}),
            "target_state.success_criteria[0]",
        ),
        (json!({"own\u{0}er": "x"}), "metadata"),
        (json!({"owner\r\nx": "x"}), "metadata"),
        (json!({"k".repeat(1000): "x"}), "metadata"),
        (json!({"owner": "a\u{1b}[2J"}), "metadata.owner"),
        (json!({"owner": "x".repeat(100_000)}), "metadata"),
        (json!({"metadata": {"in\u{7}ner": 1}}), "metadata"),
        (serde_json::Value::Object(many), "metadata"),
    ];
    for (v, field) in cases {
        let shown = format!("{:.80}", v.to_string());
        assert_eq!(
            field_of(bridge.create_covenant(&tenant, covenant(v)).await),
            field,
            "{shown}"
        );
    }
    bridge
        .create_covenant(
            &tenant,
            covenant(json!({"description": "Two lines\n\twith a tab.", "owner": "platform"})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn strike_titles_and_bodies_are_bounded_and_commits_carry_no_caller_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, bare) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let covenant_id =
        register_with_covenant(&bridge, &tenant, "org/a", &url, covenant(json!({}))).await;
    let strike = |title: &str, body: Option<&str>| {
        let change = RepoChange {
            title: Some(title.into()),
            body: body.map(str::to_owned),
            ..file_change("org/a", "x.md", "x\n")
        };
        strike_request(&covenant_id, &["org/a"], Some(vec![change]))
    };
    let long_title = "t".repeat(100_000);
    let long_body = "b".repeat(100_000);
    for (title, body, field) in [
        (long_title.as_str(), None, "changes[0].title"),
        (
            "T\u{1b}[2J\r\nCo-authored-by: Other <o@x>",
            None,
            "changes[0].title",
        ),
        ("T\n\nSigned-off-by: x <x@x>", None, "changes[0].title"),
        ("ok", Some("esc\u{1b}[2J"), "changes[0].body"),
        ("ok", Some(long_body.as_str()), "changes[0].body"),
    ] {
        assert_eq!(
            field_of(bridge.start_strike(&tenant, strike(title, body)).await),
            field,
            "{title:.40?}"
        );
    }
    // An accepted strike: the commit has no trailers and no control characters.
    let run_id = bridge
        .start_strike(
            &tenant,
            strike("Co-authored-by: Other <o@x>", Some("Body\n\ttext")),
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    assert_eq!(s.repos[0].phase, Phase::Done, "{s:?}");
    let message = git(&bare, &["log", "-1", "--format=%B", &s.repos[0].branch]);
    let trailers = std::process::Command::new("git")
        .args(["interpret-trailers", "--parse"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(message.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(
        String::from_utf8_lossy(&trailers.stdout).trim().is_empty(),
        "{message:?} has trailers"
    );
}

#[tokio::test]
async fn errors_quote_a_long_caller_string_cut_short() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant, url, _) =
        bridge_with_remote(tmp.path(), "org/a", &[("README.md", "# a\n")]).await;
    let covenant_id =
        register_with_covenant(&bridge, &tenant, "org/a", &url, covenant(json!({}))).await;
    let long = format!("org/{}", "z".repeat(200_000));
    let refusals = [
        bridge
            .declare_cable(
                &tenant,
                harpoon_bridge::NewCable {
                    from: "org/a".into(),
                    to: long.clone(),
                    strength: None,
                },
            )
            .await
            .map(|_| ()),
        bridge
            .start_strike(
                &tenant,
                strike_request(&covenant_id, &[long.as_str()], None),
            )
            .await
            .map(|_| ()),
        bridge.delete_repo(&tenant, &long).await,
    ];
    for r in refusals {
        let message = r.unwrap_err().to_string();
        assert!(message.len() < 400, "{} bytes", message.len());
    }
}
