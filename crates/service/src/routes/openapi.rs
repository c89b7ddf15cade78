//! The OpenAPI document, generated from the handlers' annotations.

use crate::error::ErrorBody;
use axum::{Extension, http::header, response::IntoResponse};
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
        (name = "fusion", description = "Code-fragment hygiene scoring and envelopes"),
        (name = "tenancy", description = "The caller's own usage"),
        (name = "admin", description = "Tenants and API keys (admin keys only)"),
        (name = "signin", description = "Sign-in for people: GitHub, OpenID Connect, sessions"),
        (name = "covenants", description = "Covenants, harmony reviews, strikes and cables across repositories"),
    )
)]
pub struct ApiDoc;

/// Adds what every operation shares but no handler states: the API-key
/// security schemes, `security` on authenticated operations, and the error
/// statuses the middleware can answer (401/403/429 where keys and quotas
/// apply; 400/413/415 wherever a JSON body is read, and 422 outside OpenAI's
/// `/v1` routes). Existing entries win.
pub fn complete(doc: utoipa::openapi::OpenApi) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    doc["components"]["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "description": "Harpoon API key (hk_…)"},
        "x_api_key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let has_body = operation.contains_key("requestBody");
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status)
                    .or_insert_with(|| error(description));
            };
            if has_body {
                add("400", "Malformed JSON");
                add("413", "Body larger than service.body_limit_bytes");
                add("415", "Not `Content-Type: application/json`");
                // OpenAI's routes answer a field that breaks the schema with 400.
                if !path.starts_with("/v1/") {
                    add("422", "A field breaks the schema");
                }
            }
            if path == crate::middleware::auth::METRICS {
                // Its 401 and 403 are in its own annotation.
            } else if !crate::middleware::auth::PUBLIC.contains(&path.as_str()) {
                add("401", "Missing, unknown or revoked API key");
                add(
                    "403",
                    "Suspended tenant, or an admin route without an admin key",
                );
                add("429", "Over the tenant's quota; see Retry-After");
                operation.insert(
                    "security".into(),
                    json!([{"bearer": []}, {"x_api_key": []}]),
                );
            }
        }
    }
    doc
}

/// The serialized document, computed once at start-up (cheap to clone).
#[derive(Clone)]
pub struct OpenApiJson(pub axum::body::Bytes);

/// OpenAPI 3.1 description of every route and error shape.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0)
}
