//! The deployments of every model (REST's `GET /v2/deployments`): each
//! one's role, breaker, load and recent time to first token, and where the
//! latest requests went and why.

use crate::{callers::Caller, error::ApiError, state::AppState};
use orchestrator::registry::ModelDeployments;

/// Every model's deployments. Admin keys only: the view names upstream
/// servers and how loaded each is, which is the operator's business.
pub fn deployments(state: &AppState, caller: &Caller) -> Result<Vec<ModelDeployments>, ApiError> {
    caller.require_admin()?;
    Ok(state.selector.registry.deployments())
}
