//! The application: every route registered with its OpenAPI annotations,
//! wrapped in the layers of [`crate::middleware`].

use crate::{
    error::{ApiError, ErrorCode},
    middleware,
    routes::{
        admin, chat, classify, covenants, dashboard, deployments, fragments, health, metrics,
        models,
        openapi::{self, ApiDoc, OpenApiJson},
        passthrough, pools, process, responses, run, signin, usage,
    },
    state::AppState,
};
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Every route, registered through `OpenApiRouter` so none can miss the document.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(classify::classify))
        .routes(routes!(chat::chat_completions))
        .routes(routes!(models::list_models))
        .routes(routes!(models::retrieve_model))
        .routes(routes!(responses::create))
        .routes(routes!(passthrough::create_embeddings))
        .routes(routes!(passthrough::create_completion))
        .routes(routes!(responses::retrieve, responses::delete))
        .routes(routes!(run::run))
        .routes(routes!(process::process))
        .routes(routes!(fragments::fuse))
        .routes(routes!(usage::usage))
        .routes(routes!(dashboard::report))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::asset))
        .routes(routes!(dashboard::panels))
        .routes(routes!(dashboard::router))
        .routes(routes!(signin::providers))
        .routes(routes!(signin::github_login))
        .routes(routes!(signin::github_callback))
        .routes(routes!(signin::oidc_login))
        .routes(routes!(signin::oidc_callback))
        .routes(routes!(signin::session))
        .routes(routes!(signin::logout))
        .routes(routes!(pools::pools))
        .routes(routes!(deployments::deployments))
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::suspend_tenant))
        .routes(routes!(admin::activate_tenant))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::invite, admin::list_invitations))
        .routes(routes!(admin::withdraw_invitation))
        .routes(routes!(covenants::create_covenant))
        .routes(routes!(covenants::get_covenant, covenants::delete_covenant))
        .routes(routes!(covenants::list_covenants))
        .routes(routes!(covenants::harmony, covenants::stored_harmony))
        .routes(routes!(covenants::register_repo, covenants::list_repos))
        .routes(routes!(covenants::cables, covenants::declare_cable))
        .routes(routes!(covenants::start_strike))
        .routes(routes!(covenants::strike_status))
        .routes(routes!(covenants::strike_events))
        .routes(routes!(covenants::cancel_strike))
        .routes(routes!(covenants::resume_strike))
}

/// The full application with its middleware.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = api().split_for_parts();
    let doc_json = openapi::complete(doc).to_string();
    // MCP over Streamable HTTP, behind the same middleware (and API keys) as
    // REST; outside the OpenAPI document, which describes REST only.
    let loopback_hosts_only = state.auth_mode == crate::settings::AuthMode::Disabled;
    let mcp = crate::mcp::transport::http_service(&state, loopback_hosts_only);
    let routes = routes
        .nest_service("/mcp", mcp)
        .fallback(not_found)
        .layer(Extension(OpenApiJson(doc_json.into())));
    middleware::around(routes, &state).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no route matches this path")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// The state and app on a fresh SQLite database under `name` in the temp dir.
    async fn app_on_disk(name: &str) -> (AppState, Router, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("harpoon-app-{name}-{}", std::process::id()));
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.clone();
        let (state, _writer) = crate::bootstrap::open_state(settings, false).await.unwrap();
        let app = router(state.clone());
        (state, app, dir)
    }

    #[tokio::test]
    async fn ready_turns_503_with_reasons_once_draining() {
        let (state, app, dir) = app_on_disk("drain").await;
        let ready = || Request::get("/ready").body(Body::empty()).unwrap();

        let before = app.clone().oneshot(ready()).await.unwrap();
        assert_eq!(before.status(), StatusCode::OK);

        assert!(before.headers().get("connection").is_none());

        state.begin_drain();
        let after = app.oneshot(ready()).await.unwrap();
        assert_eq!(after.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            after.headers()["connection"],
            "close",
            "a kept-alive connection is not reused for more requests while draining"
        );
        let body = axum::body::to_bytes(after.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "not_ready");
        assert_eq!(body["error"]["details"]["reasons"][0], "shutting_down");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn ready_and_health_report_a_database_that_does_not_answer() {
        let (state, app, dir) = app_on_disk("db").await;
        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let json = |r: axum::response::Response| async {
            let body = axum::body::to_bytes(r.into_body(), 65_536).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()
        };

        let health = json(
            app.clone()
                .oneshot(get("/health?detailed=true"))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(health["components"]["storage"]["status"], "ok", "{health}");
        assert!(
            health["components"]["storage"]["detail"]
                .as_str()
                .unwrap()
                .starts_with("SQLite at "),
            "{health}"
        );

        // A closed pool answers nothing, as a database that went away would.
        state.storage.close().await;
        let ready = app.clone().oneshot(get("/ready")).await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json(ready).await;
        assert_eq!(
            body["error"]["details"]["reasons"][0],
            "storage_unavailable"
        );
        let health = app.oneshot(get("/health?detailed=true")).await.unwrap();
        assert_eq!(
            health.status(),
            StatusCode::OK,
            "liveness does not depend on it"
        );
        let health = json(health).await;
        assert_eq!(
            health["components"]["storage"]["status"], "unavailable",
            "{health}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500_with_its_code_counted() {
        let (state, _app, dir) = app_on_disk("panic").await;
        let boom = Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("the handler's own words");
                }
                "never"
            }),
        );
        let app = crate::middleware::around(boom, &state).with_state(state.clone());
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.extensions().get::<ErrorCode>(),
            Some(&ErrorCode::Internal)
        );
        assert!(response.headers().contains_key("x-request-id"));
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert!(
            !body.to_string().contains("own words"),
            "the panic's text stays in the log: {body}"
        );
        let metrics = state.prometheus.render();
        assert!(
            metrics.contains(r#"harpoon_request_errors_total{route="/boom",code="internal"}"#),
            "{metrics}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
