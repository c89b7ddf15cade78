//! Sign-in's rules that need no provider, through the real router and a real
//! SQLite database: which routes take a session cookie, CSRF on writes, a
//! suspended tenant ending sessions, the redirect URI's origin, and the
//! settings' checks. (The provider flows are in tests/browser/signin.test.mjs.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use axum::body::Body;
use axum::http::{Request, StatusCode};
use service::settings::Settings;
use service::signin::config::Role;
use service::signin::session;
use service::state::AppState;
use std::collections::HashMap;
use tower::ServiceExt;

/// The app on a fresh database, loaded as at start-up from `env`.
async fn start(env: &[(&str, &str)]) -> (AppState, axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    vars.insert(
        "HARPOON__STORAGE__DATA_DIR".into(),
        dir.path().to_str().unwrap().into(),
    );
    vars.insert("HARPOON__AUTH__MODE".into(), "required".into());
    let settings = Settings::load(None, &vars).unwrap().settings;
    let (state, _writer) = service::bootstrap::open_state(settings, false)
        .await
        .unwrap();
    let router = service::app::router(state.clone());
    (state, router, dir)
}

/// A session of `tenant` with `role`, as a callback opens one: the signed cookie and the CSRF token.
async fn signed_in(state: &AppState, tenant: &str, role: Role) -> (String, String) {
    let tenant = state
        .storage
        .create_tenant(tenant, Default::default())
        .await
        .unwrap();
    let (token, csrf) = session::create_session(
        &state.storage,
        &tenant.id,
        role,
        "github",
        "github:someone",
        3_600_000,
    )
    .await
    .unwrap();
    let key = session::signing_key(&state.storage).await.unwrap();
    let signed = session::sign(&key, session::SESSION_COOKIE, &token);
    (format!("{}={signed}", session::SESSION_COOKIE), csrf)
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, serde_json::Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "127.0.0.1:8080")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_session_opens_the_dashboard_and_admin_api_but_not_the_programs_routes() {
    let (state, app, _dir) = start(&[]).await;
    let (member, _) = signed_in(&state, "acme", Role::Member).await;
    let (status, _) = send(&app, get("/v2/dashboard?window=1h", &member)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(&app, get("/v1/models", &member)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "api_key_required", "{body}");
    let (status, body) = send(&app, get("/v2/admin/tenants", &member)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_required")),
        "a member is not an admin"
    );
    let (admin, _) = signed_in(&state, "ops", Role::Admin).await;
    let (status, body) = send(&app, get("/v2/admin/tenants", &admin)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = send(&app, get("/auth/session", &member)).await;
    assert_eq!(body["session"]["tenant"], "acme");
    assert_eq!(body["session"]["role"], "member");
}

#[tokio::test]
async fn writes_with_the_cookie_need_the_csrf_token_and_the_own_origin() {
    let (state, app, _dir) = start(&[]).await;
    state
        .storage
        .create_tenant("globex", Default::default())
        .await
        .unwrap();
    let (admin, csrf) = signed_in(&state, "ops", Role::Admin).await;
    let post = |token: Option<&str>, origin: Option<&str>| {
        let mut r = Request::post("/v2/admin/tenants/globex/suspend")
            .header("host", "127.0.0.1:8080")
            .header("cookie", &admin);
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.body(Body::empty()).unwrap()
    };
    for (token, origin, why) in [
        (None, None, "no token"),
        (Some("0".repeat(64)), None, "another token"),
        (
            Some(csrf.clone()),
            Some("http://127.0.0.1:9999"),
            "another origin",
        ),
    ] {
        let (status, body) = send(&app, post(token.as_deref(), origin)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {body}");
        assert_eq!(body["error"]["code"], "csrf_refused", "{why}: {body}");
    }
    let globex = state.storage.find_tenant("globex").await.unwrap();
    assert!(globex.is_active(), "nothing was suspended");
    let (status, body) = send(&app, post(Some(&csrf), Some("http://127.0.0.1:8080"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "suspended");
}

#[tokio::test]
async fn an_admin_invites_github_logins_into_a_tenant() {
    let (state, app, _dir) = start(&[]).await;
    state
        .storage
        .create_tenant("globex", Default::default())
        .await
        .unwrap();
    let (admin, csrf) = signed_in(&state, "ops", Role::Admin).await;
    let call = |method: &str, uri: &str, body: Option<&str>| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:8080")
            .header("cookie", &admin)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap()
    };
    let path = "/v2/admin/tenants/globex/invitations";
    let (status, body) = send(
        &app,
        call("POST", path, Some(r#"{"github_login":"-bad-"}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("github_login")
    );
    let (status, body) = send(
        &app,
        call(
            "POST",
            path,
            Some(r#"{"github_login":"Octo-Cat","role":"admin"}"#),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["github_login"], "octo-cat");
    let (_, body) = send(&app, call("GET", path, None)).await;
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body[0]["role"], "admin");
    let one = format!("{path}/OCTO-CAT");
    let (status, _) = send(&app, call("DELETE", &one, None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = send(&app, call("DELETE", &one, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn suspending_a_tenant_ends_its_sessions_for_good() {
    let (state, app, _dir) = start(&[]).await;
    let (member, _) = signed_in(&state, "acme", Role::Member).await;
    let acme = state.storage.find_tenant("acme").await.unwrap();
    state
        .storage
        .set_tenant_status(&acme.id, service::storage::tenants::TenantStatus::Suspended)
        .await
        .unwrap();
    let (status, body) = send(&app, get("/v2/dashboard", &member)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "tenant_suspended", "{body}");
    state
        .storage
        .set_tenant_status(&acme.id, service::storage::tenants::TenantStatus::Active)
        .await
        .unwrap();
    let (status, body) = send(&app, get("/v2/dashboard", &member)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_session");
}

#[tokio::test]
async fn sign_in_off_loopback_needs_public_url_and_on_loopback_a_loopback_host() {
    let github = [
        ("GITHUB_CLIENT_ID", "Iv1.test"),
        ("GITHUB_CLIENT_SECRET", "secret"),
    ];
    let (_state, app, _dir) = start(&[github[0], github[1], ("SERVICE_HOST", "0.0.0.0")]).await;
    let (status, body) = send(&app, get("/auth/github/login", "")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "public_url_required");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("service.public_url"),
        "{body}"
    );

    let (_state, app, _dir) = start(&github).await;
    let login = |host: &str| {
        Request::get("/auth/github/login")
            .header("host", host)
            .body(Body::empty())
            .unwrap()
    };
    let (status, body) = send(&app, login("evil.example:8080")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let response = app.clone().oneshot(login("127.0.0.1:8080")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://github.com/login/oauth/authorize?"));
    let url = url::Url::parse(location).unwrap();
    let q: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        q["redirect_uri"],
        "http://127.0.0.1:8080/auth/github/callback"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "read:org");
    assert!(q["state"].len() >= 16);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("harpoon_signin=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Secure"),
        "{cookie}"
    );

    let (status, body) = send(&app, get("/auth/oidc/nope/login", "")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "signin_not_configured");
}

#[test]
fn sign_in_settings_are_checked_with_the_key_named() {
    let refused = |env: &[(&str, &str)]| {
        let vars: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(None, &vars).unwrap_err().to_string()
    };
    assert!(
        refused(&[("GITHUB_CLIENT_ID", "Iv1.test")]).contains("auth.github.client_secret"),
        "a client id without its secret"
    );
    assert!(
        refused(&[("HARPOON__SERVICE__PUBLIC_URL", "https://h.example/app")])
            .contains("service.public_url")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "auth:\n  github:\n    org_tenants:\n      acme/platform/x: {tenant: acme, role: admin}\n",
    )
    .unwrap();
    let error = Settings::load(Some(&file), &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("auth.github.org_tenants.acme/platform/x") && error.contains("a team"),
        "{error}"
    );
    assert!(refused(&[("HARPOON__AUTH__SESSION_HOURS", "0")]).contains("auth.session_hours"));
}

/// A callback whose query no provider sends (found by the API fuzzer: an
/// unknown parameter got axum's JSON refusal where a page is documented)
/// is refused with the same kind of page as every other callback refusal.
#[tokio::test]
async fn a_callback_with_a_query_no_provider_sends_gets_a_page() {
    let (_state, app, _dir) = start(&[
        ("GITHUB_CLIENT_ID", "Iv1.test"),
        ("GITHUB_CLIENT_SECRET", "secret"),
    ])
    .await;
    for uri in [
        "/auth/github/callback?state=&x-unknown=42",
        "/auth/oidc/nope/callback?state=&x-unknown=42",
    ] {
        let response = app.clone().oneshot(get(uri, "")).await.unwrap();
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let page = String::from_utf8_lossy(&body);
        if uri.starts_with("/auth/github") {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(
                content_type.starts_with("text/html"),
                "{content_type} {page}"
            );
            assert!(page.contains("data-outcome=\"bad_callback\""), "{page}");
        } else {
            // As documented for an unknown provider on any callback: JSON.
            assert_eq!(status, StatusCode::NOT_FOUND, "an unknown provider");
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
        }
    }
}
