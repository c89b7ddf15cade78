//! Every error code the service answers with: the only place a code string is
//! written. Each code knows its HTTP status, the OpenAI error `type` it maps
//! to, and how loudly it is logged.

use http::StatusCode;
use tracing::Level;

/// Declares the codes once: variant, wire string, status, OpenAI type.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal, $status:ident, $kind:ident;)+) => {
        /// A machine-readable error code, `snake_case` on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)+ }
            }

            /// The HTTP status the code is answered with.
            pub const fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)+ }
            }

            /// The `type` of OpenAI's error object that the code falls under.
            pub const fn openai_type(self) -> &'static str {
                match self { $(ErrorCode::$variant => OpenAiType::$kind.as_str(),)+ }
            }
        }
    };
}

/// OpenAI's error types, by which its SDKs and agent frameworks branch.
#[derive(Debug, Clone, Copy)]
enum OpenAiType {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RateLimit,
    Server,
}

impl OpenAiType {
    const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RateLimit => "rate_limit_error",
            Self::Server => "server_error",
        }
    }
}

error_codes! {
    /// The request is malformed in a way no more specific code covers.
    BadRequest = "bad_request", BAD_REQUEST, InvalidRequest;
    /// The body is not valid JSON.
    InvalidJson = "invalid_json", BAD_REQUEST, InvalidRequest;
    /// A field's value cannot be taken (e.g. a model name with control characters).
    InvalidRequest = "invalid_request", BAD_REQUEST, InvalidRequest;
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded = "context_length_exceeded", BAD_REQUEST, InvalidRequest;
    /// No API key was sent.
    MissingApiKey = "missing_api_key", UNAUTHORIZED, Authentication;
    /// The API key is unknown or revoked.
    InvalidApiKey = "invalid_api_key", UNAUTHORIZED, Authentication;
    /// `/metrics` was called without `auth.metrics_token`.
    InvalidMetricsToken = "invalid_metrics_token", UNAUTHORIZED, Authentication;
    /// The dedicated MCP listener was called without `mcp.api_key`.
    InvalidMcpKey = "invalid_mcp_key", UNAUTHORIZED, Authentication;
    /// The sign-in session cookie is altered, or its session has ended.
    InvalidSession = "invalid_session", UNAUTHORIZED, Authentication;
    /// A route for programs was called with a session cookie instead of a key.
    ApiKeyRequired = "api_key_required", UNAUTHORIZED, Authentication;
    /// A cookie-authenticated write without the session's CSRF token, or from another origin.
    CsrfRefused = "csrf_refused", FORBIDDEN, Permission;
    /// A layer refused the request as unauthenticated.
    Unauthorized = "unauthorized", UNAUTHORIZED, Authentication;
    /// The route needs an admin key.
    AdminRequired = "admin_required", FORBIDDEN, Permission;
    /// The caller's tenant is suspended.
    TenantSuspended = "tenant_suspended", FORBIDDEN, Permission;
    /// A layer refused the request as forbidden.
    Forbidden = "forbidden", FORBIDDEN, Permission;
    /// No such route, or no such thing for this caller.
    NotFound = "not_found", NOT_FOUND, NotFound;
    /// No configured model has the requested name.
    ModelNotFound = "model_not_found", NOT_FOUND, NotFound;
    /// The sign-in provider named is not configured.
    SignInNotConfigured = "signin_not_configured", NOT_FOUND, NotFound;
    /// The route does not take this method (see `Allow`).
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, InvalidRequest;
    /// The client took too long to send its request.
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT, InvalidRequest;
    /// The thing exists already, or is not in a state that allows this.
    Conflict = "conflict", CONFLICT, InvalidRequest;
    /// The body is larger than `service.body_limit_bytes`.
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, InvalidRequest;
    /// More fragments than `harpoon.max_fragments`.
    TooManyFragments = "too_many_fragments", PAYLOAD_TOO_LARGE, InvalidRequest;
    /// A fragment larger than `harpoon.max_fragment_bytes`.
    FragmentTooLarge = "fragment_too_large", PAYLOAD_TOO_LARGE, InvalidRequest;
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, InvalidRequest;
    /// The request parsed but a field breaks the schema.
    ValidationError = "validation_error", UNPROCESSABLE_ENTITY, InvalidRequest;
    /// A request-rate, concurrency or token quota is spent (`Retry-After`).
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, RateLimit;
    /// Something failed that should not have; the log has the detail.
    Internal = "internal", INTERNAL_SERVER_ERROR, Server;
    /// The engine failed while generating.
    GenerationFailed = "generation_failed", INTERNAL_SERVER_ERROR, Server;
    /// The fusion engine failed on this request.
    FusionFailed = "fusion_failed", INTERNAL_SERVER_ERROR, Server;
    /// A git step of the bridge failed.
    GitError = "git_error", INTERNAL_SERVER_ERROR, Server;
    /// The bridge's storage failed.
    StorageError = "storage_error", INTERNAL_SERVER_ERROR, Server;
    /// A layer answered 502.
    BadGateway = "bad_gateway", BAD_GATEWAY, Server;
    /// The upstream (a model server, GitHub) answered with an error.
    UpstreamError = "upstream_error", BAD_GATEWAY, Server;
    /// No engine can serve the request.
    EngineUnavailable = "engine_unavailable", SERVICE_UNAVAILABLE, Server;
    /// The upstream cannot be reached.
    UpstreamUnavailable = "upstream_unavailable", SERVICE_UNAVAILABLE, Server;
    /// The database does not answer.
    StorageUnavailable = "storage_unavailable", SERVICE_UNAVAILABLE, Server;
    /// The shared quota store (`cluster.redis_url`) does not answer and
    /// `cluster.on_redis_error` is `closed`.
    QuotaStoreUnavailable = "quota_store_unavailable", SERVICE_UNAVAILABLE, Server;
    /// The router made no classification.
    RouterUnavailable = "router_unavailable", SERVICE_UNAVAILABLE, Server;
    /// Refiner `model` and no small-tier model can serve.
    RefinerUnavailable = "refiner_unavailable", SERVICE_UNAVAILABLE, Server;
    /// `/ready`: the service cannot take traffic (reasons in `details`).
    NotReady = "not_ready", SERVICE_UNAVAILABLE, Server;
    /// hosted·ai is not configured.
    HostedAiNotConfigured = "hosted_ai_not_configured", SERVICE_UNAVAILABLE, Server;
    /// hosted·ai is configured, but this process does not manage the pools.
    HostedAiNotManagedHere = "hosted_ai_not_managed_here", SERVICE_UNAVAILABLE, Server;
    /// Strikes run in the server, not in an MCP stdio process.
    StrikesRunInTheServer = "strikes_run_in_the_server", SERVICE_UNAVAILABLE, Server;
    /// Sign-in needs `service.public_url` on this bind.
    PublicUrlRequired = "public_url_required", SERVICE_UNAVAILABLE, Server;
    /// A layer answered 503.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, Server;
    /// The upstream did not answer in time.
    UpstreamTimeout = "upstream_timeout", GATEWAY_TIMEOUT, Server;
    /// The request did not complete within `service.request_timeout_secs`.
    Timeout = "timeout", GATEWAY_TIMEOUT, Server;
}

impl ErrorCode {
    /// How loudly an error with this code is logged: what the operator must
    /// fix at error, what a part outside the service caused at warn, what the
    /// caller did at debug.
    pub fn log_level(self) -> Level {
        match self {
            Self::Internal
            | Self::GenerationFailed
            | Self::FusionFailed
            | Self::GitError
            | Self::StorageError => Level::ERROR,
            c if c.status().is_server_error() => Level::WARN,
            _ => Level::DEBUG,
        }
    }

    /// The code for a status a layer answered with when nothing more
    /// specific is known.
    pub fn for_status(status: StatusCode) -> Self {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.is_generic() && c.status() == status)
            .unwrap_or(if status.is_client_error() {
                Self::BadRequest
            } else {
                Self::Internal
            })
    }

    /// The codes that stand for a status as such, not for a reason.
    const fn is_generic(self) -> bool {
        matches!(
            self,
            Self::BadRequest
                | Self::Unauthorized
                | Self::Forbidden
                | Self::NotFound
                | Self::MethodNotAllowed
                | Self::RequestTimeout
                | Self::Conflict
                | Self::PayloadTooLarge
                | Self::UnsupportedMediaType
                | Self::ValidationError
                | Self::RateLimited
                | Self::Internal
                | Self::BadGateway
                | Self::Unavailable
                | Self::Timeout
        )
    }

    /// The code written as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_snake_case_unique_and_has_a_fitting_status_and_type() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
            assert_eq!(ErrorCode::parse(text), Some(*code));
            let status = code.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{text}: {status}"
            );
            let expected_type = match status.as_u16() {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                s if s >= 500 => "server_error",
                _ => "invalid_request_error",
            };
            assert_eq!(code.openai_type(), expected_type, "{text}");
            if status.is_client_error() {
                assert_eq!(code.log_level(), Level::DEBUG, "{text}");
            } else {
                assert!(code.log_level() <= Level::WARN, "{text}");
            }
        }
    }

    /// The MCP layer's own refusals (arguments that do not parse, a missing
    /// resource, a failure to serialise) use codes of this set too.
    #[test]
    fn the_mcp_layers_own_errors_use_codes_of_the_set() {
        use resources::BackendError;
        for e in [
            BackendError::invalid("x"),
            BackendError::not_found("x"),
            BackendError::internal("x"),
        ] {
            let code = ErrorCode::parse(e.code()).unwrap_or_else(|| panic!("{e}"));
            assert_eq!(code.status().as_u16(), e.status(), "{e}");
        }
    }

    #[test]
    fn a_bare_status_gets_its_generic_code() {
        let cases = [
            (StatusCode::NOT_FOUND, "not_found"),
            (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            (StatusCode::LENGTH_REQUIRED, "bad_request"),
            (StatusCode::NOT_IMPLEMENTED, "internal"),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ];
        for (status, code) in cases {
            assert_eq!(ErrorCode::for_status(status).as_str(), code, "{status}");
        }
    }
}
