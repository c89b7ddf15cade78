//! The operations the service offers, shared by REST ([`crate::routes`]) and
//! MCP ([`crate::mcp`]): typed requests, the caller and the state in, a domain
//! result or an [`ApiError`] out. Nothing here knows a transport: no axum,
//! no headers, no server-sent events, no MCP types (the one HTTP notion is
//! the status a usage-ledger row records, an `http::StatusCode` as
//! [`ApiError::status`] gives it). The routes extract and render; the MCP
//! backend converts arguments and results.

use crate::error::ApiError;

pub mod chat;
pub mod classify;
pub mod covenants;
pub mod dashboard;
pub mod deployments;
pub mod fragments;
pub mod inference;
pub mod metering;
pub mod models;
pub mod passthrough;
pub mod pools;
pub mod process;
pub mod responses;
pub mod run;
pub mod strikes;
pub mod usage;

/// Checks that serde cannot express (ranges, non-empty lists).
pub trait Validate {
    /// Returns a 422 naming the offending field, or `Ok`.
    fn validate(&self) -> Result<(), ApiError>;
}

/// 422 naming `field` when `value` holds nothing but whitespace.
pub fn non_blank(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::validation(format!(
            "{field}: must not be empty or whitespace"
        )));
    }
    Ok(())
}
