//! The hosted·ai pool manager's view (REST's `GET /v2/pools`, MCP's
//! `harpoon://pools`).

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    state::AppState,
};
use orchestrator::hosted_ai::PoolsSnapshot;
use std::time::Duration;

/// The pool manager's state after a bounded refresh: `GET /v2/pools` and MCP's
/// `harpoon://pools`. Admin keys only: pod endpoints take no API key of their
/// own (anyone who reads one could use the GPUs past quotas and metering),
/// and billing is the whole team's. Whether hosted·ai runs here is no secret
/// (`/health` says so), so that 503 comes first.
pub async fn pools_snapshot(state: &AppState, caller: &Caller) -> Result<PoolsSnapshot, ApiError> {
    let manager = state.hosted_ai.as_ref().ok_or_else(|| {
        if state.settings.hosted_ai.is_configured() {
            // A companion process (MCP over stdio) leaves the team's pools to the server.
            ApiError::new(ErrorCode::HostedAiNotManagedHere,
                "hosted·ai pools are managed by the server process, not this one: read them from the service (GET /v2/pools or harpoon://pools over HTTP)",
            )
        } else {
            ApiError::new(ErrorCode::HostedAiNotConfigured,
                "hosted·ai is not configured: set hosted_ai.base_url, api_key and team_id",
            )
        }
    })?;
    caller.require_admin()?;
    // A slow panel delays this view, never hangs it; failures show in the snapshot.
    let limit = Duration::from_secs(manager.settings().call_timeout_secs.min(10));
    let _ = tokio::time::timeout(limit, manager.refresh()).await;
    Ok(manager.snapshot())
}
