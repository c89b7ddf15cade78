//! OpenAI's Responses API: `POST /v1/responses` (whole, or server-sent events
//! named by their `type`), `GET` and `DELETE /v1/responses/{id}`
//! ([`crate::ops::responses`]).

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::OpenAiJson,
    ops::responses::{
        CreateResponseRequest, ResponseReply, create_response, delete_response, retrieve_response,
    },
    routes::inference::routing_headers,
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{MatchedPath, Path, State},
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
};
use futures_util::StreamExt;
use serde_json::Value;

/// Creates a response: a chat completion of the same models, in the
/// Responses API's shape. With `stream: true`, server-sent events from
/// `response.created` to `response.completed`, each named by its `type`.
/// Stored (unless `store: false`) for `GET /v1/responses/{id}` and
/// `previous_response_id`.
#[utoipa::path(
    post,
    path = "/v1/responses",
    tag = "inference",
    request_body = CreateResponseRequest,
    responses(
        (status = 200, description = "The Response object, or with stream: true its events (`event: <type>`, `data: {…}`)",
            content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "A field that breaks the schema or that Harpoon does not support (`invalid_request`, the field in `param`), or a prompt that does not fit (`context_length_exceeded`)", body = ErrorBody),
        (status = 404, description = "Unknown model (`model_not_found`), or `previous_response_id` not among the tenant's responses (`not_found`)", body = ErrorBody),
        (status = 502, description = "The upstream answered with an error", body = ErrorBody),
        (status = 503, description = "No engine can serve the request, or storage is unavailable", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    OpenAiJson(request): OpenAiJson<CreateResponseRequest>,
) -> Result<Response, ApiError> {
    let answer = create_response(&state, &caller, request, route.as_str()).await?;
    let headers = routing_headers(&answer.routing);
    Ok(match answer.reply {
        ResponseReply::Whole(body) => (headers, Json(body)).into_response(),
        ResponseReply::Stream(events) => {
            let events = events.map(|event| Ok::<_, std::convert::Infallible>(sse(&event)));
            (headers, Sse::new(events)).into_response()
        }
    })
}

/// One event, named by its `type` as OpenAI names them.
fn sse(event: &Value) -> Event {
    let named = Event::default().data(event.to_string());
    match event["type"].as_str() {
        Some(kind) => named.event(kind),
        None => named,
    }
}

/// A stored response of the caller's tenant.
#[utoipa::path(
    get,
    path = "/v1/responses/{id}",
    tag = "inference",
    params(("id" = String, Path, description = "A response id (`resp_…`)")),
    responses(
        (status = 200, description = "The Response object as it was answered", body = Object),
        (status = 404, description = "No such response for this tenant (`not_found`)", body = ErrorBody),
    )
)]
pub async fn retrieve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    retrieve_response(&state, &caller, &id).await.map(Json)
}

/// Deletes a stored response of the caller's tenant.
#[utoipa::path(
    delete,
    path = "/v1/responses/{id}",
    tag = "inference",
    params(("id" = String, Path, description = "A response id (`resp_…`)")),
    responses(
        (status = 200, description = "`{\"id\", \"object\": \"response\", \"deleted\": true}`", body = Object),
        (status = 404, description = "No such response for this tenant (`not_found`)", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    delete_response(&state, &caller, &id).await.map(Json)
}
