//! The OpenAPI document, generated from the handlers' annotations.

use crate::error::ErrorBody;
use axum::{Extension, http::header, response::IntoResponse};
use std::sync::Arc;
use utoipa::OpenApi;

/// Root of the generated document; paths are added as routes are registered.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Harpoon",
        description = "An LLM gateway that routes each request to the model tier it needs."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "routing", description = "The complexity router"),
        (name = "inference", description = "OpenAI-compatible inference"),
        (name = "tenancy", description = "The caller's own usage"),
        (name = "admin", description = "Tenants and API keys (admin keys only)"),
    )
)]
pub struct ApiDoc;

/// The serialized document, computed once at start-up.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<str>);

/// OpenAPI 3.1 description of every route and error shape.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.to_string(),
    )
}
