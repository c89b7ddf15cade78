//! Covenants, repositories and cables, harmony reviews and strikes: thin
//! handlers over `harpoon_bridge`, scoped to the caller's tenant.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::ApiJson,
    ops::strikes::launch_strike,
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::StreamExt;
use harpoon_bridge::{
    Cable, CableGraph, Covenant, HarmonyReview, NewCable, NewCovenant, NewRepo, Page, Paged, Repo,
    StrikeRequest, StrikeStatus,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

/// Stores a covenant: where a set of repositories is, and where it must get to.
/// Fields beyond the known ones are kept in `metadata`.
#[utoipa::path(
    post,
    path = "/v2/covenant",
    tag = "covenants",
    request_body = NewCovenant,
    responses(
        (status = 201, description = "Stored", body = Covenant),
        (status = 422, description = "A field is missing or blank (named in the message)", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn create_covenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(new): ApiJson<NewCovenant>,
) -> Result<(StatusCode, Json<Covenant>), ApiError> {
    let c = state.bridge.create_covenant(&caller.tenant.id, new).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// One covenant of the caller's tenant.
#[utoipa::path(
    get,
    path = "/v2/covenant/{id}",
    tag = "covenants",
    params(("id" = String, Path, description = "cov_…")),
    responses(
        (status = 200, description = "The covenant", body = Covenant),
        (status = 404, description = "No such covenant", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn get_covenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Covenant>, ApiError> {
    Ok(Json(
        state.bridge.get_covenant(&caller.tenant.id, &id).await?,
    ))
}

/// Deletes a covenant and its stored review (strikes keep their own copy).
#[utoipa::path(
    delete,
    path = "/v2/covenant/{id}",
    tag = "covenants",
    params(("id" = String, Path, description = "cov_…")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such covenant", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn delete_covenant(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.bridge.delete_covenant(&caller.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v2/covenants`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<u64>,
}

/// The caller's covenants, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/v2/covenants",
    tag = "covenants",
    params(PageQuery),
    responses(
        (status = 200, description = "A page", body = Paged<Covenant>),
        (status = 400, description = "Bad query string", body = ErrorBody),
        (status = 422, description = "limit out of range", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn list_covenants(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Paged<Covenant>>, ApiError> {
    let page = Page {
        limit: q.limit.unwrap_or(Page::default().limit),
        offset: q.offset.unwrap_or(0),
    };
    Ok(Json(
        state.bridge.list_covenants(&caller.tenant.id, page).await?,
    ))
}

/// Ranks the caller's repositories for the covenant (BM25 of their text,
/// place in the cable graph), stores the review and returns it.
#[utoipa::path(
    post,
    path = "/v2/covenant/{id}/harmony",
    tag = "covenants",
    params(("id" = String, Path, description = "cov_…")),
    responses(
        (status = 200, description = "Anchor, agnos and every score", body = HarmonyReview),
        (status = 404, description = "No such covenant", body = ErrorBody),
        (status = 422, description = "No repository registered, or none matches", body = ErrorBody),
        (status = 500, description = "Storage or git failed", body = ErrorBody),
    )
)]
pub async fn harmony(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<HarmonyReview>, ApiError> {
    Ok(Json(
        state.bridge.harmony_review(&caller.tenant.id, &id).await?,
    ))
}

/// The stored harmony review of a covenant.
#[utoipa::path(
    get,
    path = "/v2/covenant/{id}/harmony",
    tag = "covenants",
    params(("id" = String, Path, description = "cov_…")),
    responses(
        (status = 200, description = "The stored review", body = HarmonyReview),
        (status = 404, description = "No such covenant, or not reviewed yet", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn stored_harmony(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<HarmonyReview>, ApiError> {
    state
        .bridge
        .stored_review(&caller.tenant.id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            harpoon_bridge::BridgeError::NotFound(format!("harmony review of {id:?}")).into()
        })
}

/// Registers a repository (its default branch must be readable).
#[utoipa::path(
    post,
    path = "/v2/repos",
    tag = "covenants",
    request_body = NewRepo,
    responses(
        (status = 201, description = "Registered", body = Repo),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, description = "Bad name, unreadable URL or missing branch", body = ErrorBody),
        (status = 500, description = "Storage or git failed", body = ErrorBody),
    )
)]
pub async fn register_repo(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(new): ApiJson<NewRepo>,
) -> Result<(StatusCode, Json<Repo>), ApiError> {
    let r = state.bridge.register_repo(&caller.tenant.id, new).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// The caller's registered repositories.
#[utoipa::path(
    get,
    path = "/v2/repos",
    tag = "covenants",
    responses(
        (status = 200, description = "By name", body = Vec<Repo>),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn list_repos(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<Repo>>, ApiError> {
    Ok(Json(state.bridge.list_repos(&caller.tenant.id).await?))
}

/// The cable graph: dependencies read from manifests plus declared cables.
#[utoipa::path(
    get,
    path = "/v2/cables",
    tag = "covenants",
    responses(
        (status = 200, description = "Repositories and cables", body = CableGraph),
        (status = 500, description = "Storage or git failed", body = ErrorBody),
    )
)]
pub async fn cables(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<CableGraph>, ApiError> {
    Ok(Json(state.bridge.cables(&caller.tenant.id).await?))
}

/// Declares a cable by hand (`from` depends on `to`).
#[utoipa::path(
    post,
    path = "/v2/cables",
    tag = "covenants",
    request_body = NewCable,
    responses(
        (status = 201, description = "Declared", body = Cable),
        (status = 422, description = "Unknown repository or strength out of range", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn declare_cable(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(new): ApiJson<NewCable>,
) -> Result<(StatusCode, Json<Cable>), ApiError> {
    let c = state.bridge.declare_cable(&caller.tenant.id, new).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Body of a started (or resumed) strike.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrikeStarted {
    /// `run_…`; follow it at `/v2/strike/{run_id}`.
    pub run_id: String,
}

/// Starts a strike: a branch, a commit and a pull request in every target
/// repository, in the background.
#[utoipa::path(
    post,
    path = "/v2/strike",
    tag = "covenants",
    request_body = StrikeRequest,
    responses(
        (status = 202, description = "Started", body = StrikeStarted),
        (status = 404, description = "No such covenant", body = ErrorBody),
        (status = 422, description = "Bad targets or changes (field named)", body = ErrorBody),
        (status = 429, description = "`generate` and the tenant's tokens for the day are spent", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn start_strike(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(req): ApiJson<StrikeRequest>,
) -> Result<(StatusCode, Json<StrikeStarted>), ApiError> {
    let run_id = launch_strike(&state, &caller, req).await?;
    Ok((StatusCode::ACCEPTED, Json(StrikeStarted { run_id })))
}

/// A strike with each repository's phase, branch, commit, pull request or error.
#[utoipa::path(
    get,
    path = "/v2/strike/{run_id}",
    tag = "covenants",
    params(("run_id" = String, Path, description = "run_…")),
    responses(
        (status = 200, description = "Its status", body = StrikeStatus),
        (status = 404, description = "No such strike", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn strike_status(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Result<Json<StrikeStatus>, ApiError> {
    Ok(Json(
        state
            .bridge
            .strike_status(&caller.tenant.id, &run_id)
            .await?,
    ))
}

/// Progress as server-sent events: `status` (the whole strike) first, then
/// one `progress` event per step; the stream ends when the strike does.
#[utoipa::path(
    get,
    path = "/v2/strike/{run_id}/events",
    tag = "covenants",
    params(("run_id" = String, Path, description = "run_…")),
    responses(
        (status = 200, description = "text/event-stream of `status` and `progress` events", content_type = "text/event-stream", body = String),
        (status = 404, description = "No such strike", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn strike_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let (status, rx) = state.bridge.subscribe(&caller.tenant.id, &run_id).await?;
    let first = Event::default()
        .event("status")
        .data(serde_json::to_string(&status).unwrap_or_default());
    let live = futures_util::stream::unfold(rx, |rx| async move {
        let mut rx = rx?;
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let last = e.repo.is_none() && e.phase != "running";
                    let event = Event::default()
                        .event("progress")
                        .data(serde_json::to_string(&e).unwrap_or_default());
                    return Some((event, (!last).then_some(rx)));
                }
                // A slow reader skips what it missed; GET /v2/strike/{id} has the state.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let events = futures_util::stream::once(async move { first })
        .chain(live)
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Asks a running strike to stop; unfinished repositories end `cancelled`.
#[utoipa::path(
    post,
    path = "/v2/strike/{run_id}/cancel",
    tag = "covenants",
    params(("run_id" = String, Path, description = "run_…")),
    responses(
        (status = 202, description = "Cancel requested; the status as it was", body = StrikeStatus),
        (status = 404, description = "No such strike", body = ErrorBody),
        (status = 409, description = "The strike is not running", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn cancel_strike(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<StrikeStatus>), ApiError> {
    let s = state
        .bridge
        .cancel_strike(&caller.tenant.id, &run_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(s)))
}

/// Resumes an interrupted, cancelled or partly failed strike; branches and
/// pull requests already made are found by branch name, never duplicated.
#[utoipa::path(
    post,
    path = "/v2/strike/{run_id}/resume",
    tag = "covenants",
    params(("run_id" = String, Path, description = "run_…")),
    responses(
        (status = 202, description = "Resumed", body = StrikeStarted),
        (status = 404, description = "No such strike", body = ErrorBody),
        (status = 409, description = "Running, or nothing left to do", body = ErrorBody),
        (status = 500, description = "Storage failed", body = ErrorBody),
    )
)]
pub async fn resume_strike(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(run_id): Path<String>,
) -> Result<(StatusCode, Json<StrikeStarted>), ApiError> {
    let run_id = state
        .bridge
        .resume_strike(&caller.tenant.id, &run_id)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(StrikeStarted { run_id })))
}
