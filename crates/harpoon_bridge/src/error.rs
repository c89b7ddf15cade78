//! What can go wrong, typed so the service maps each kind to one status.

/// Why a bridge operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The thing asked for does not exist for this tenant (404).
    #[error("{0} not found")]
    NotFound(String),
    /// A field of the request is unacceptable (422).
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted name of the field.
        field: String,
        /// Why it is refused.
        message: String,
    },
    /// The request clashes with existing state (409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (500).
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    /// A git command or the workspace failed (500).
    #[error("git: {0}")]
    Git(String),
    /// GitHub or the model answered with an error (502).
    #[error("upstream: {0}")]
    Upstream(String),
}

impl BridgeError {
    /// A 422 naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<serde_json::Error> for BridgeError {
    fn from(e: serde_json::Error) -> Self {
        // Only our own stored JSON is parsed through this path.
        Self::Storage(sqlx::Error::Decode(Box::new(e)))
    }
}
