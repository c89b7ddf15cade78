//! [`ApiError`] and how the domain crates' errors become one.

use super::code::ErrorCode;
use http::StatusCode;

/// An error a use case or handler returns; its code decides the status.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {code}: {message}", .status)]
pub struct ApiError {
    code: ErrorCode,
    /// The code's status, except for a layer's bare status (e.g. 411) that
    /// [`ErrorCode::for_status`] can only approximate.
    status: StatusCode,
    message: String,
    /// The request field the error is about, as OpenAI's `param` names it.
    param: Option<String>,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` (and so its status).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status: code.status(),
            message: message.into(),
            param: None,
            details: None,
            retry_after: None,
        }
    }

    /// A layer's bare status with the nearest code: the status is kept as it was.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            ..Self::new(ErrorCode::for_status(status), message)
        }
    }

    /// 429 with `Retry-After` rounded up to whole seconds (at least 1).
    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    /// Names the request field the error is about (OpenAI's `param`).
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The same error about field `param` instead of the one it named (a
    /// request translated from another API names the caller's field).
    pub fn about_param(mut self, param: &str) -> Self {
        if let Some(old) = self.param.take()
            && let Some(rest) = self.message.strip_prefix(&format!("{old}: "))
        {
            self.message = format!("{param}: {rest}");
        }
        self.param = Some(param.into());
        self
    }

    /// 400 `invalid_request` about one request field, named in `param`
    /// and at the head of the message.
    pub fn invalid_param(param: &str, why: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::InvalidRequest, format!("{param}: {why}")).with_param(param)
    }

    /// The same error as OpenAI answers it: a request that breaks the schema
    /// is 400 `invalid_request` there, where the rest of the API says 422.
    pub fn in_openai_dialect(self) -> Self {
        if self.code == ErrorCode::ValidationError {
            Self {
                code: ErrorCode::InvalidRequest,
                status: ErrorCode::InvalidRequest.status(),
                ..self
            }
        } else {
            self
        }
    }

    /// Attaches structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 422: the request parsed but a field breaks the schema. A message that
    /// starts with the field's path (`messages[0].role: …`, the form every
    /// validation message here takes) names it in `param` too.
    pub fn validation(message: impl Into<String>) -> Self {
        let message = message.into();
        let param = field_path_prefix(&message).map(str::to_owned);
        Self {
            param,
            ..Self::new(ErrorCode::ValidationError, message)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request field the error is about, when one is.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// Structured details, when there are any.
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }

    /// Seconds the client should wait before trying again, for a 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// The field path a message starts with (`stop`, `messages[2].content`),
/// when it starts with one followed by `": "`.
pub(crate) fn field_path_prefix(message: &str) -> Option<&str> {
    let (head, _) = message.split_once(": ")?;
    let is_path = !head.is_empty()
        && head.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && head
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    is_path.then_some(head)
}

/// `Retry-After` of an upstream's 429 that named no wait.
const UPSTREAM_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl From<orchestrator::engine::EngineError> for ApiError {
    fn from(e: orchestrator::engine::EngineError) -> Self {
        use orchestrator::engine::EngineError as E;
        let code = match e {
            E::RateLimited {
                message,
                retry_after,
            } => {
                return Self::too_many_requests(
                    message,
                    retry_after.unwrap_or(UPSTREAM_RETRY_AFTER),
                );
            }
            E::Busy {
                message,
                retry_after,
            } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                return Self {
                    retry_after: Some(secs.max(1)),
                    ..Self::new(ErrorCode::EngineUnavailable, message)
                };
            }
            // The engine's wording, the raised error's status.
            E::Worded { message, kind } => {
                return Self {
                    message,
                    ..Self::from(*kind)
                };
            }
            E::Unavailable(_) => ErrorCode::EngineUnavailable,
            E::Connect(_) => ErrorCode::UpstreamUnavailable,
            E::Timeout(_) => ErrorCode::UpstreamTimeout,
            E::Upstream(_) => ErrorCode::UpstreamError,
            E::ContextLength(_) => ErrorCode::ContextLengthExceeded,
            E::InvalidRequest(message) => {
                // Engines word a field's fault as "param: why"; name it as OpenAI does.
                let param = field_path_prefix(&message).map(str::to_owned);
                let error = Self::new(ErrorCode::InvalidRequest, message);
                return match param {
                    Some(param) => error.with_param(param),
                    None => error,
                };
            }
            E::Failed(_) => ErrorCode::GenerationFailed,
        };
        Self::new(code, e.to_string())
    }
}

impl From<orchestrator::selector::SelectError> for ApiError {
    fn from(e: orchestrator::selector::SelectError) -> Self {
        use orchestrator::selector::SelectError as E;
        match e {
            E::NotFound(_) => Self::new(ErrorCode::ModelNotFound, e.to_string()),
            E::NoModelForTier(_) => Self::new(ErrorCode::EngineUnavailable, e.to_string()),
            E::Unsupported { ref param, .. } => {
                Self::new(ErrorCode::InvalidRequest, e.to_string()).with_param(param.clone())
            }
        }
    }
}

impl From<crate::quota_store::CounterError> for ApiError {
    fn from(e: crate::quota_store::CounterError) -> Self {
        // The detail (the store's address, its error) goes to the log only.
        tracing::error!(error = %e, "quota store failure");
        Self {
            retry_after: Some(1),
            ..Self::new(
                ErrorCode::QuotaStoreUnavailable,
                "the shared quota store (cluster.redis_url) does not answer, and \
                 cluster.on_redis_error is closed: requests are refused until it does",
            )
        }
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError as E;
        let e = match e {
            E::SharedCounters(e) => return e.into(),
            other => other,
        };
        match &e {
            E::NotFound(_) => Self::new(ErrorCode::NotFound, e.to_string()),
            E::Conflict(_) => Self::new(ErrorCode::Conflict, e.to_string()),
            E::Open { .. } | E::Query(_) | E::SharedCounters(_) => {
                // The detail may name files or servers; log it, answer plainly.
                tracing::error!(error = %e, "storage failure");
                Self::new(
                    ErrorCode::StorageUnavailable,
                    "storage is unavailable; try again",
                )
            }
        }
    }
}

impl From<harpoon_bridge::BridgeError> for ApiError {
    fn from(e: harpoon_bridge::BridgeError) -> Self {
        use harpoon_bridge::BridgeError as E;
        match &e {
            E::NotFound(_) => Self::new(ErrorCode::NotFound, e.to_string()),
            E::Invalid { field, .. } => Self::validation(e.to_string())
                .with_param(field.to_string())
                .with_details(serde_json::json!({"field": field})),
            E::Conflict(_) => Self::new(ErrorCode::Conflict, e.to_string()),
            E::Upstream(_) => Self::new(ErrorCode::UpstreamError, e.to_string()),
            E::Storage(_) | E::Git(_) => {
                // The detail may name files, servers or paths; log it, answer plainly.
                tracing::error!(error = %e, "bridge failure");
                let code = if matches!(e, E::Git(_)) {
                    ErrorCode::GitError
                } else {
                    ErrorCode::StorageError
                };
                Self::new(code, "the bridge failed; see the service log")
            }
        }
    }
}

#[cfg(test)]
mod engine_error_tests {
    use super::*;
    use orchestrator::engine::EngineError as E;
    use std::time::Duration;

    #[test]
    fn an_upstream_429_is_a_429_with_retry_after() {
        let e = ApiError::from(E::RateLimited {
            message: "hosted_ai: model m: the pod is rate limiting".into(),
            retry_after: Some(Duration::from_secs(7)),
        });
        assert_eq!((e.status().as_u16(), e.retry_after()), (429, Some(7)));
        assert_eq!(e.code(), ErrorCode::RateLimited);
        let e = ApiError::from(E::RateLimited {
            message: "slow down".into(),
            retry_after: None,
        });
        assert_eq!(e.retry_after(), Some(1), "a short default");
    }

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let e = ApiError::from(E::Busy {
            message: "hosted_ai: pool full".into(),
            retry_after: Duration::from_millis(2_500),
        });
        assert_eq!((e.status().as_u16(), e.retry_after()), (503, Some(3)));
        assert_eq!(e.code(), ErrorCode::EngineUnavailable);
    }

    #[test]
    fn a_worded_error_keeps_its_words_and_its_kind_s_status() {
        let e = ApiError::from(E::Worded {
            message: "hosted_ai: model m: the pod did not answer in time".into(),
            kind: Box::new(E::Timeout(Duration::from_secs(5))),
        });
        assert_eq!(e.status().as_u16(), 504);
        assert_eq!(e.code(), ErrorCode::UpstreamTimeout);
        assert_eq!(
            e.message(),
            "hosted_ai: model m: the pod did not answer in time"
        );
    }
}
