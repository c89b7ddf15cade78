//! Request extractors whose rejections use the JSON error envelope with precise codes.

use crate::error::{ApiError, ErrorCode};
use crate::ops::Validate;
use axum::{
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::StatusCode,
};
use serde::de::DeserializeOwned;

/// A JSON body that must deserialize into `T` and then pass [`Validate`].
///
/// Malformed JSON is 400 `invalid_json`, a body that breaks the schema is 422
/// `validation_error` naming the field, a body over the limit is 413, and a
/// missing `Content-Type: application/json` is 415.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state)
            .await
            .map_err(rejection_to_error)?;
        value.validate()?;
        Ok(Self(value))
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    let message = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::validation(message),
        JsonRejection::JsonSyntaxError(_) => ApiError::new(ErrorCode::InvalidJson, message),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "expected a request with `Content-Type: application/json`",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than service.body_limit_bytes",
        ),
        other => ApiError::from_status(other.status(), message),
    }
}
