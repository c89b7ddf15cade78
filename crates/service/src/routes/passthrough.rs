//! `POST /v1/embeddings` and `POST /v1/completions`, passed to the model's
//! OpenAI-compatible upstream as they are ([`crate::ops::passthrough`]).

use crate::{
    callers::Caller,
    error::{ApiError, ErrorBody},
    extract::OpenAiJson,
    ops::passthrough::{
        CompletionsRequest, EmbeddingsRequest, PassedAnswer, PassedReply, completions, embeddings,
    },
    routes::inference::routing_headers,
    state::AppState,
};
use axum::{
    Extension, Json,
    extract::{MatchedPath, State},
    response::{
        IntoResponse, Response,
        sse::{Event, Sse},
    },
};
use futures_util::StreamExt;

/// Creates embeddings with the named model's upstream (an `openai` engine);
/// other engines answer 503 saying they do not serve embeddings.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "inference",
    request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "The upstream's embeddings (OpenAI's CreateEmbeddingResponse)", body = Object),
        (status = 400, description = "A field that breaks the schema, `model: auto`, or a field the upstream refused (`invalid_request`, the field in `param`)", body = ErrorBody),
        (status = 404, description = "Unknown model (`model_not_found`)", body = ErrorBody),
        (status = 502, description = "The upstream answered with an error", body = ErrorBody),
        (status = 503, description = "The model's engine does not serve embeddings, or the upstream is unreachable", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    )
)]
pub async fn create_embeddings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    OpenAiJson(request): OpenAiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    Ok(render(
        embeddings(&state, &caller, request, route.as_str()).await?,
    ))
}

/// Creates a (legacy) text completion with the model's upstream, streamed
/// or whole; `auto` routes the prompt like chat. Other engines answer 503
/// saying they do not serve completions.
#[utoipa::path(
    post,
    path = "/v1/completions",
    tag = "inference",
    request_body = CompletionsRequest,
    responses(
        (status = 200, description = "The upstream's completion (OpenAI's CreateCompletionResponse), or with stream: true its chunks ending with `data: [DONE]`",
            content((Object = "application/json"), (String = "text/event-stream"))),
        (status = 400, description = "A field that breaks the schema, or a field the upstream refused (`invalid_request`, the field in `param`)", body = ErrorBody),
        (status = 404, description = "Unknown model (`model_not_found`)", body = ErrorBody),
        (status = 502, description = "The upstream answered with an error", body = ErrorBody),
        (status = 503, description = "The model's engine does not serve completions, or the upstream is unreachable", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
    )
)]
pub async fn create_completion(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    route: MatchedPath,
    OpenAiJson(request): OpenAiJson<CompletionsRequest>,
) -> Result<Response, ApiError> {
    Ok(render(
        completions(&state, &caller, request, route.as_str()).await?,
    ))
}

fn render(answer: PassedAnswer) -> Response {
    let headers = routing_headers(&answer.routing);
    match answer.reply {
        PassedReply::Whole(body) => (headers, Json(body)).into_response(),
        PassedReply::Stream(objects) => {
            let events = objects
                .map(|item| match item {
                    Ok(object) => Event::default().data(object.to_string()),
                    Err(error) => error.sse_event(),
                })
                .map(Ok::<_, std::convert::Infallible>)
                .chain(futures_util::stream::once(async {
                    Ok(Event::default().data("[DONE]"))
                }));
            (headers, Sse::new(events)).into_response()
        }
    }
}
