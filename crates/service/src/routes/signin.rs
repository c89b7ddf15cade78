//! Sign-in routes for people (docs/sign-in.md): the providers the page
//! offers, the login redirects and callbacks of GitHub and OpenID Connect,
//! the current session and sign-out. Thin: the use cases are
//! [`crate::signin::flow`]'s.

use crate::{
    dashboard::escape,
    error::{ApiError, ErrorBody, ErrorCode, response::PageForPeople},
    signin::flow::{Callback, Provider, SignInError, SignedIn},
    signin::session::ATTEMPT_COOKIE,
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// A sign-in button of the dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderLink {
    /// What the button says.
    pub label: String,
    /// Where it leads.
    pub login: String,
}

/// The configured sign-in providers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Providers {
    /// One per provider; empty when none is configured (API keys only).
    pub providers: Vec<ProviderLink>,
}

/// The configured sign-in providers, for the dashboard's buttons.
#[utoipa::path(get, path = "/auth/providers", tag = "signin",
    responses((status = 200, description = "The providers", body = Providers)))]
pub async fn providers(State(state): State<AppState>) -> Json<Providers> {
    Json(Providers {
        providers: state
            .signin
            .providers()
            .into_iter()
            .map(|(login, label)| ProviderLink { label, login })
            .collect(),
    })
}

fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// A refusal before the browser left for the provider: JSON, as any API error.
fn api_refusal(e: SignInError) -> ApiError {
    let code = match &e {
        SignInError::NotConfigured(_) => ErrorCode::SignInNotConfigured,
        SignInError::PublicUrlRequired => ErrorCode::PublicUrlRequired,
        SignInError::BadHost(_) => ErrorCode::BadRequest,
        SignInError::Storage(_) => ErrorCode::StorageUnavailable,
        SignInError::Provider(_) => ErrorCode::UpstreamUnavailable,
        _ => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

/// A refusal on the callback, where a person's browser lands: a page.
fn page_refusal(e: &SignInError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in refused</title></head>\
         <body><main><h1>Sign-in refused</h1><p id=\"reason\" data-outcome=\"{outcome}\">{message}</p>\
         <p><a href=\"/dashboard\">Back to the dashboard</a></p></main></body></html>\n",
        outcome = e.outcome(),
        message = escape(&e.to_string()),
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'"),
        ],
        Extension(PageForPeople),
        body,
    )
        .into_response()
}

async fn login(state: &AppState, provider: Provider<'_>, headers: &HeaderMap) -> Response {
    match state.signin.begin(provider, host(headers)).await {
        Ok(begun) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, begun.location),
                (header::SET_COOKIE, begun.attempt_cookie),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        Err(e) => api_refusal(e).into_response(),
    }
}

/// A callback: the session opened and the browser sent to the dashboard,
/// or the refusal (a query no provider sends included).
async fn callback(
    state: &AppState,
    provider: Provider<'_>,
    headers: &HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return callback_refusal(state.signin.refuse_callback(provider, e.body_text())),
    };
    let cookie = crate::signin::session::cookie_in(
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        ATTEMPT_COOKIE,
    );
    match state.signin.finish(provider, &query, cookie).await {
        Ok(done) => {
            let mut response = (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, "/dashboard"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
            )
                .into_response();
            for cookie in [done.session_cookie, done.clear_attempt] {
                if let Ok(value) = header::HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(e) => callback_refusal(e),
    }
}

/// A refused callback: JSON for what a program might meet (no such provider,
/// storage down), a page for what a person's browser lands on.
fn callback_refusal(e: SignInError) -> Response {
    match e {
        SignInError::NotConfigured(_) | SignInError::Storage(_) => api_refusal(e).into_response(),
        e => page_refusal(&e),
    }
}

/// Begins GitHub sign-in: redirects to GitHub's authorize page (state, PKCE).
#[utoipa::path(get, path = "/auth/github/login", tag = "signin",
    responses(
        (status = 303, description = "To GitHub's authorize page, with the attempt cookie"),
        (status = 400, description = "A non-loopback Host without service.public_url", body = ErrorBody),
        (status = 404, description = "GitHub sign-in is not configured", body = ErrorBody),
        (status = 503, description = "Off loopback without service.public_url", body = ErrorBody),
    ))]
pub async fn github_login(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login(&state, Provider::Github, &headers).await
}

/// GitHub's redirect back: exchanges the code, maps the person, opens a session.
#[utoipa::path(get, path = "/auth/github/callback", tag = "signin",
    params(
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state the sign-in began with"),
        ("error" = Option<String>, Query, description = "GitHub's refusal"),
    ),
    responses(
        (status = 303, description = "Signed in: to /dashboard, with the session cookie"),
        (status = 400, description = "Forged state, replayed or expired sign-in, refused code, a query no provider sends (a page)", content_type = "text/html", body = String),
        (status = 403, description = "Not mapped to a tenant, or its tenant is missing or suspended (a page)", content_type = "text/html", body = String),
        (status = 404, description = "GitHub sign-in is not configured", body = ErrorBody),
        (status = 502, description = "GitHub could not be asked (a page)", content_type = "text/html", body = String),
    ))]
pub async fn github_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    callback(&state, Provider::Github, &headers, query).await
}

/// Begins OpenID Connect sign-in with a configured provider (state, nonce, PKCE).
#[utoipa::path(get, path = "/auth/oidc/{provider}/login", tag = "signin",
    params(("provider" = String, Path, description = "The provider's name under auth.oidc")),
    responses(
        (status = 303, description = "To the provider's authorize page, with the attempt cookie"),
        (status = 400, description = "A non-loopback Host without service.public_url", body = ErrorBody),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 503, description = "Off loopback without service.public_url, or the provider's discovery failed", body = ErrorBody),
    ))]
pub async fn oidc_login(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Response {
    login(&state, Provider::Oidc(&provider), &headers).await
}

/// The provider's redirect back: exchanges the code, validates the ID token, opens a session.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "signin",
    params(
        ("provider" = String, Path, description = "The provider's name under auth.oidc"),
        ("code" = Option<String>, Query, description = "The authorization code"),
        ("state" = Option<String>, Query, description = "The state the sign-in began with"),
        ("iss" = Option<String>, Query, description = "The issuer (RFC 9207)"),
    ),
    responses(
        (status = 303, description = "Signed in: to /dashboard, with the session cookie"),
        (status = 400, description = "Forged state, replayed or expired sign-in, refused code, a query no provider sends (a page)", content_type = "text/html", body = String),
        (status = 403, description = "Invalid ID token, not mapped, or tenant missing or suspended (a page)", content_type = "text/html", body = String),
        (status = 404, description = "No such provider", body = ErrorBody),
        (status = 502, description = "The provider could not be asked (a page)", content_type = "text/html", body = String),
    ))]
pub async fn oidc_callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    callback(&state, Provider::Oidc(&provider), &headers, query).await
}

/// The signed-in person's session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Their tenant's name.
    pub tenant: String,
    /// `admin` or `member`.
    pub role: String,
    /// `github` or the OIDC provider's name.
    pub provider: String,
    /// Who they are there, e.g. `github:octocat`.
    pub subject: String,
    /// What writes made with the cookie must send as `X-CSRF-Token`.
    pub csrf_token: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

fn no_session() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidSession,
        "no sign-in session: this route needs the session cookie (sign in at /dashboard)",
    )
}

/// Whether this browser is signed in, and as whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStatus {
    /// `false` when the request carried no session cookie (nor a key).
    pub signed_in: bool,
    /// The session, when signed in with the cookie.
    pub session: Option<SessionInfo>,
}

/// Who is signed in with the session cookie, and the CSRF token for writes;
/// `signed_in: false` without a cookie (the page asks before anyone signed in).
#[utoipa::path(get, path = "/auth/session", tag = "signin",
    responses(
        (status = 200, description = "The session, or `signed_in: false`", body = SessionStatus),
        (status = 401, description = "A session cookie that is altered or whose session has ended", body = ErrorBody),
    ))]
pub async fn session(signed_in: Option<Extension<SignedIn>>) -> Json<SessionStatus> {
    Json(SessionStatus {
        signed_in: signed_in.is_some(),
        session: signed_in.map(|Extension(s)| SessionInfo {
            tenant: s.tenant.name,
            role: s.session.role.as_str().to_owned(),
            provider: s.session.provider,
            subject: s.session.subject,
            csrf_token: s.session.csrf_token,
            expires_at: s.session.expires_at,
        }),
    })
}

/// Signs out: the session ends on every replica and the cookie is deleted.
#[utoipa::path(post, path = "/auth/logout", tag = "signin",
    responses(
        (status = 204, description = "Signed out"),
        (status = 403, description = "Without the session's X-CSRF-Token, or from another origin", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    signed_in: Option<Extension<SignedIn>>,
) -> Result<Response, ApiError> {
    let Extension(s) = signed_in.ok_or_else(no_session)?;
    let clear = state.signin.sign_out(&s).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}
