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

/// The same body as [`ApiJson`] on an OpenAI-compatible route: a body that
/// breaks the schema is 400 `invalid_request` there, as OpenAI answers (its
/// SDKs raise `BadRequestError` for 400 only).
#[derive(Debug)]
pub struct OpenAiJson<T>(pub T);

impl<T, S> FromRequest<S> for OpenAiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        ApiJson::from_request(req, state)
            .await
            .map(|ApiJson(value)| Self(value))
            .map_err(ApiError::in_openai_dialect)
    }
}

fn rejection_to_error(rejection: JsonRejection) -> ApiError {
    let message = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let param = data_error_param(&message);
            let error = ApiError::validation(message);
            match param {
                Some(param) => error.with_param(param),
                None => error,
            }
        }
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

/// The field a body's data error is about: serde's path
/// (`…target type: messages[0].role: unknown variant…`), or the missing
/// field's name (`…target type: missing field `messages` at…`).
fn data_error_param(message: &str) -> Option<String> {
    let (_, detail) = message.split_once("target type: ")?;
    if let Some(path) = crate::error::field_path_prefix(detail) {
        return Some(path.to_owned());
    }
    let (_, rest) = detail.split_once("missing field `")?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::data_error_param;

    #[test]
    fn a_data_error_names_its_field() {
        let cases = [
            (
                "Failed to deserialize the JSON body into the target type: messages[0].role: unknown variant `function`, expected one of `system` at line 1 column 30",
                Some("messages[0].role"),
            ),
            (
                "Failed to deserialize the JSON body into the target type: missing field `messages` at line 1 column 2",
                Some("messages"),
            ),
            (
                "Failed to deserialize the JSON body into the target type: invalid type: integer `3`, expected a string at line 1 column 3",
                None,
            ),
        ];
        for (message, param) in cases {
            assert_eq!(data_error_param(message).as_deref(), param, "{message}");
        }
    }
}
