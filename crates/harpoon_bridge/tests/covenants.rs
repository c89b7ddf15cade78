//! Covenant storage (SQLite, and PostgreSQL when `HARPOON_TEST_DATABASE_URL`
//! is set), cables read from manifests, and harmony ranking on generated
//! repositories whose right anchor is known.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod support;

use harpoon_bridge::{BridgeError, CableKind, NewCable, NewCovenant, Page, Role, StrikeRequest};
use support::*;

fn new_covenant(title: &str) -> NewCovenant {
    serde_json::from_value(serde_json::json!({
        "title": title,
        "description": "Replace server-side session cookies with JWT access tokens and refresh tokens.",
        "reality_state": {
            "description": "The auth service issues session cookies backed by a session store.",
            "key_aspects": ["session cookie set at login", "session store lookups on every request"]
        },
        "target_state": {
            "description": "Login returns a signed JWT and a refresh token; services verify the JWT.",
            "success_criteria": ["refresh endpoint rotates tokens", "no session store"]
        },
        "priority": "high",
        "metadata": {"ticket": "SEC-12"}
    }))
    .unwrap()
}

#[tokio::test]
async fn covenants_are_stored_per_tenant_paged_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, other) = pool(tmp.path()).await;
    let (db, tenant) = pool(tmp.path()).await;
    let bridge = bridge(db, &tmp.path().join("data"), None);
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = bridge
            .create_covenant(&tenant, new_covenant(&format!("JWT rollout {i}")))
            .await
            .unwrap();
        assert!(c.covenant_id.starts_with("cov_"));
        assert_eq!(c.slug, format!("jwt-rollout-{i}"));
        assert_eq!(c.metadata["priority"], "high");
        assert_eq!(
            c.metadata["ticket"], "SEC-12",
            "a sent `metadata` object is merged, not nested"
        );
        ids.push(c.covenant_id);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let got = bridge.get_covenant(&tenant, &ids[0]).await.unwrap();
    assert_eq!(got.reality_state.key_aspects.len(), 2);
    let page = bridge
        .list_covenants(
            &tenant,
            Page {
                limit: 2,
                offset: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (page.total, page.items.len(), page.next_offset),
        (5, 2, Some(2))
    );
    assert_eq!(page.items[0].covenant_id, ids[4], "newest first");
    let last = bridge
        .list_covenants(
            &tenant,
            Page {
                limit: 2,
                offset: 4,
            },
        )
        .await
        .unwrap();
    assert_eq!((last.items.len(), last.next_offset), (1, None));
    assert!(matches!(
        bridge
            .list_covenants(
                &tenant,
                Page {
                    limit: 0,
                    offset: 0
                }
            )
            .await,
        Err(BridgeError::Invalid { .. })
    ));

    // Another tenant sees none of them.
    assert!(matches!(
        bridge.get_covenant(&other, &ids[0]).await,
        Err(BridgeError::NotFound(_))
    ));
    assert_eq!(
        bridge
            .list_covenants(&other, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    assert!(matches!(
        bridge.delete_covenant(&other, &ids[0]).await,
        Err(BridgeError::NotFound(_))
    ));

    bridge.delete_covenant(&tenant, &ids[0]).await.unwrap();
    assert!(matches!(
        bridge.get_covenant(&tenant, &ids[0]).await,
        Err(BridgeError::NotFound(_))
    ));
    assert!(matches!(
        bridge.delete_covenant(&tenant, &ids[0]).await,
        Err(BridgeError::NotFound(_))
    ));

    let mut blank = new_covenant("x");
    blank.reality_state.description = "  ".into();
    match bridge.create_covenant(&tenant, blank).await {
        Err(BridgeError::Invalid { field, .. }) => assert_eq!(field, "reality_state.description"),
        other => panic!("{other:?}"),
    }
}

/// Four small repositories: `auth` is about sessions and is what the others
/// depend on, `web` and `gateway` use it, `billing` is unrelated.
fn fleet(root: &std::path::Path) -> Vec<(&'static str, String)> {
    let auth = remote(root, "org/auth", &[
        ("README.md", "# auth\nIssues session cookies at login and keeps sessions in a session store.\n"),
        ("Cargo.toml", "[package]\nname = \"auth-core\"\nversion = \"0.1.0\"\n"),
        ("src/session.rs", "// session cookie handling\npub fn set_session_cookie() {}\npub fn session_store_lookup() {}\npub fn login() {}\n"),
    ]).0;
    let web = remote(
        root,
        "org/web",
        &[
            (
                "README.md",
                "# web\nThe front end: pages, forms and styles. Calls login on the auth service.\n",
            ),
            (
                "package.json",
                r#"{"name":"web","dependencies":{"auth-core":"^0.1.0","react":"18"}}"#,
            ),
            ("src/app.js", "export function render() { return 'page' }\n"),
        ],
    )
    .0;
    let gateway = remote(
        root,
        "org/gateway",
        &[
            (
                "README.md",
                "# gateway\nRoutes requests to services and checks each request.\n",
            ),
            (
                "go.mod",
                "module github.com/org/gateway\n\nrequire (\n\tgithub.com/org/auth v0.1.0\n)\n",
            ),
            (
                "main.go",
                "package main\n// verifies the session on every request\nfunc main() {}\n",
            ),
        ],
    )
    .0;
    let billing = remote(
        root,
        "org/billing",
        &[
            ("README.md", "# billing\nInvoices, payments and ledgers.\n"),
            ("requirements.txt", "stripe==9\n"),
            ("billing.py", "def invoice():\n    pass\n"),
        ],
    )
    .0;
    vec![
        ("org/auth", auth),
        ("org/web", web),
        ("org/gateway", gateway),
        ("org/billing", billing),
    ]
}

/// Where the cable and harmony tests start: a tenant's bridge with the `fleet` registered.
async fn fleet_bridge(tmp: &std::path::Path) -> (harpoon_bridge::Bridge, String) {
    let (pool, tenant) = pool(tmp).await;
    let bridge = bridge(pool, &tmp.join("data"), None);
    let repos = fleet(tmp)
        .into_iter()
        .map(|(name, url)| new_repo(name, &url));
    register_all(&bridge, &tenant, repos).await;
    (bridge, tenant)
}

#[tokio::test]
async fn cables_come_from_manifests_and_declarations() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = fleet_bridge(tmp.path()).await;
    bridge
        .declare_cable(
            &tenant,
            NewCable {
                from: "org/billing".into(),
                to: "org/web".into(),
                strength: Some(0.3),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        bridge
            .declare_cable(
                &tenant,
                NewCable {
                    from: "org/billing".into(),
                    to: "org/nope".into(),
                    strength: None
                }
            )
            .await,
        Err(BridgeError::Invalid { .. })
    ));
    let graph = bridge.cables(&tenant).await.unwrap();
    assert!(graph.unreadable.is_empty(), "{:?}", graph.unreadable);
    let mut edges: Vec<_> = graph
        .cables
        .iter()
        .map(|c| (c.from.as_str(), c.to.as_str(), c.kind, c.strength))
        .collect();
    edges.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        edges,
        [
            ("org/billing", "org/web", CableKind::Declared, 0.3),
            ("org/gateway", "org/auth", CableKind::DependsOn, 1.0),
            ("org/web", "org/auth", CableKind::DependsOn, 1.0),
        ]
    );
    let web = graph.cables.iter().find(|c| c.from == "org/web").unwrap();
    assert!(
        web.evidence.contains("package.json") && web.evidence.contains("auth-core"),
        "{}",
        web.evidence
    );
}

#[tokio::test]
async fn harmony_picks_the_known_anchor_and_a_strike_without_targets_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (bridge, tenant) = fleet_bridge(tmp.path()).await;
    let cov = bridge
        .create_covenant(&tenant, new_covenant("Session cookies to JWT"))
        .await
        .unwrap();
    let review = bridge
        .harmony_review(&tenant, &cov.covenant_id)
        .await
        .unwrap();
    assert_eq!(review.anchor, "org/auth", "{review:#?}");
    assert!(
        !review.agnos.contains(&"org/billing".to_owned()),
        "{review:#?}"
    );
    assert!(
        review.excluded.iter().any(|c| c.repo == "org/billing"),
        "{review:#?}"
    );
    let anchor = &review.choices[0];
    assert_eq!(anchor.role, Some(Role::Anchor));
    assert!(
        (anchor.relevance_norm - 1.0).abs() < 1e-9 && (anchor.centrality - 1.0).abs() < 1e-9,
        "{anchor:?}"
    );
    assert!(
        anchor.matched_terms.contains(&"session".to_owned()),
        "{anchor:?}"
    );
    for pair in review.choices.windows(2) {
        assert!(
            pair[0].score >= pair[1].score,
            "ordered by score: {review:#?}"
        );
    }
    assert_eq!(
        bridge
            .stored_review(&tenant, &cov.covenant_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&review)
    );

    let run_id = bridge
        .start_strike(
            &tenant,
            StrikeRequest {
                covenant_id: cov.covenant_id.clone(),
                target_repos: None,
                changes: None,
                generate: false,
            },
        )
        .await
        .unwrap();
    let s = until(&bridge, &tenant, &run_id, 60, |s| s.state != "running").await;
    let planned: Vec<_> = s.repos.iter().map(|r| (r.repo.clone(), r.role)).collect();
    let mut want = vec![(review.anchor.clone(), Role::Anchor)];
    want.extend(review.agnos.iter().map(|a| (a.clone(), Role::Agnos)));
    assert_eq!(planned, want);
    assert_eq!(s.state, "done", "{s:#?}");
}
