//! `POST /v1/chat/completions`, OpenAI-compatible, streaming included: the
//! completion ([`crate::ops::chat`]) as JSON, or its chunks as server-sent
//! events ending with `data: [DONE]`.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::OpenAiJson,
    ops::chat::{
        ChatCompletion, ChatCompletionRequest, ChatReply, ChatStreamItem, chat_completion,
    },
    routes::inference::routing_headers,
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::MatchedPath,
    extract::State,
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

/// One server-sent event of a streamed completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatStreamEvent {
    /// A `chat.completion.chunk` (or, after headers, an error object) as JSON;
    /// the last event is `[DONE]`.
    pub data: String,
}

/// Creates a chat completion. Non-streamed answers are JSON; with
/// `stream: true`, server-sent `chat.completion.chunk` events end with
/// `data: [DONE]`. Headers `x-harpoon-tier` and `x-harpoon-complexity` say
/// how the request was routed.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "inference",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion, or with stream: true an event stream of chat.completion.chunk objects ending with `data: [DONE]`",
            content((ChatCompletion = "application/json"), (ChatStreamEvent = "text/event-stream"))),
        (status = 400, description = "Malformed JSON (`invalid_json`); a field that breaks the schema, a `model` longer than 256 characters or with control characters, or a field the chosen model does not honour (`invalid_request`, the field in `param`); or the prompt does not fit the model's context (`context_length_exceeded`)", body = ErrorBody),
        (status = 404, description = "Unknown model (`model_not_found`)", body = ErrorBody),
        (status = 413, description = "Body larger than service.body_limit_bytes", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 502, description = "The upstream answered with an error", body = ErrorBody),
        (status = 503, description = "No engine can serve the request, or the upstream is unreachable", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    )
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let answer = chat_completion(&state, &caller, request, route.as_str()).await?;
    let headers = routing_headers(&answer.routing);
    Ok(match answer.reply {
        ChatReply::Whole(completion) => (headers, Json(completion)).into_response(),
        ChatReply::Stream(chunks) => {
            let events = chunks
                .map(|item| match item {
                    ChatStreamItem::Chunk(chunk) => event(&chunk),
                    ChatStreamItem::Error(error) => error.sse_event(),
                })
                .map(Ok::<_, std::convert::Infallible>)
                .chain(futures_util::stream::once(async {
                    Ok(Event::default().data("[DONE]"))
                }));
            (headers, Sse::new(events)).into_response()
        }
    })
}

/// One `data:` event of a stream.
fn event(chunk: &serde_json::Value) -> Event {
    Event::default().data(chunk.to_string())
}
