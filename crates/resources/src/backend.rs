//! What the MCP face needs from Harpoon, as one trait the service implements.

use crate::tools::{ClassifyArgs, FragmentArg, ProcessFragmentsArgs, RunArgs};
use async_trait::async_trait;
use harpoon_bridge::{
    CableGraph, Covenant, HarmonyReview, NewCovenant, Page, Paged, StrikeRequest, StrikeStatus,
};
use serde_json::{Value, json};

/// A refusal or failure from the backend, with the HTTP status REST would
/// answer, so MCP reports the same code and message as the REST API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct BackendError {
    status: u16,
    code: String,
    message: String,
    param: Option<String>,
}

impl BackendError {
    /// An error with the REST status, code and message.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            param: None,
        }
    }

    /// Names the argument the error is about (REST's `param`).
    pub fn with_param(mut self, param: Option<&str>) -> Self {
        self.param = param.map(str::to_owned);
        self
    }

    /// OpenAI's error type for the status, as REST's error object says it.
    pub fn kind(&self) -> &'static str {
        match self.status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// 422: the arguments parsed but a field breaks the rules.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "validation_error", message)
    }

    /// 404: the named thing does not exist for this caller.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found", message)
    }

    /// 500: the server failed; the message says where.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// The HTTP status REST answers with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Machine-readable code, as in REST's error envelope.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the caller can fix it (a 4xx), rather than the server (a 5xx).
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// REST's error object with the status:
    /// `{"error":{"message","type","param","code","status"}}`.
    pub fn to_json(&self) -> Value {
        json!({"error": {
            "message": self.message, "type": self.kind(), "param": self.param,
            "code": self.code, "status": self.status,
        }})
    }
}

/// The domain actions behind every resource, prompt and tool. Each method takes
/// the authenticated caller (its tenant scopes everything) and answers with the
/// same JSON the matching REST route returns.
#[async_trait]
pub trait HarpoonBackend: Send + Sync + 'static {
    /// The authenticated caller, as the service's auth layer puts it into the
    /// HTTP request's extensions.
    type Caller: Clone + Send + Sync + 'static;

    /// Who a Streamable HTTP session opened by `caller` belongs to: only
    /// requests whose caller maps to the same string may use the session.
    fn session_owner(&self, caller: &Self::Caller) -> String;

    /// `POST /classify`.
    async fn classify(
        &self,
        caller: &Self::Caller,
        args: ClassifyArgs,
    ) -> Result<Value, BackendError>;
    /// `POST /run`.
    async fn run(&self, caller: &Self::Caller, args: RunArgs) -> Result<Value, BackendError>;
    /// One envelope cycle over code fragments (fusion).
    async fn process_fragments(
        &self,
        caller: &Self::Caller,
        args: ProcessFragmentsArgs,
    ) -> Result<Value, BackendError>;
    /// The hygiene score of one fragment (fusion).
    async fn score_fragment(
        &self,
        caller: &Self::Caller,
        fragment: FragmentArg,
    ) -> Result<Value, BackendError>;
    /// Creates a covenant for the caller's tenant (`POST /v2/covenant`).
    async fn create_covenant(
        &self,
        caller: &Self::Caller,
        new: NewCovenant,
    ) -> Result<Covenant, BackendError>;
    /// A page of the caller's covenants, newest first (`GET /v2/covenants`).
    async fn list_covenants(
        &self,
        caller: &Self::Caller,
        page: Page,
    ) -> Result<Paged<Covenant>, BackendError>;
    /// One of the caller's covenants; another tenant's is not found
    /// (`GET /v2/covenant/{id}`).
    async fn get_covenant(&self, caller: &Self::Caller, id: &str)
    -> Result<Covenant, BackendError>;
    /// Ranks the caller's repositories for a covenant and stores the review
    /// (`POST /v2/covenant/{id}/harmony`).
    async fn harmony_review(
        &self,
        caller: &Self::Caller,
        covenant_id: &str,
    ) -> Result<HarmonyReview, BackendError>;
    /// The stored review of a covenant, `None` when it was never reviewed
    /// (`GET /v2/covenant/{id}/harmony`, which answers 404 for `None`).
    async fn stored_review(
        &self,
        caller: &Self::Caller,
        covenant_id: &str,
    ) -> Result<Option<HarmonyReview>, BackendError>;
    /// The caller's cable graph (`GET /v2/cables`).
    async fn cables(&self, caller: &Self::Caller) -> Result<CableGraph, BackendError>;
    /// Starts a strike; answers with its run id (`POST /v2/strike`).
    async fn start_strike(
        &self,
        caller: &Self::Caller,
        request: StrikeRequest,
    ) -> Result<String, BackendError>;
    /// A strike's state, per repository (`GET /v2/strike/{run_id}`).
    async fn strike_status(
        &self,
        caller: &Self::Caller,
        run_id: &str,
    ) -> Result<StrikeStatus, BackendError>;
    /// The configured models and whether each can serve now (`GET /v1/models`).
    async fn models(&self, caller: &Self::Caller) -> Result<Value, BackendError>;
    /// hosted·ai pools, free slots and our subscriptions.
    async fn pools(&self, caller: &Self::Caller) -> Result<Value, BackendError>;
    /// The caller's usage over the last 30 days, by model (`GET /v2/usage`).
    async fn usage(&self, caller: &Self::Caller) -> Result<Value, BackendError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_errors_are_told_apart() {
        assert!(BackendError::invalid("text: empty").is_client_error());
        assert!(BackendError::not_found("covenant x").is_client_error());
        let missing = BackendError::new(503, "hosted_ai_not_configured", "set hosted_ai.base_url");
        assert!(!missing.is_client_error());
        assert_eq!(missing.to_json()["error"]["status"], 503);
        assert_eq!(
            missing.to_json()["error"]["code"],
            "hosted_ai_not_configured"
        );
    }
}
