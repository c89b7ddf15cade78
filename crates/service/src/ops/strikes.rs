//! Starting a strike (REST's `POST /v2/strike` and MCP's `start_strike`).

use crate::callers::Caller;
use crate::error::ApiError;
use crate::ops::metering::check_budget;
use crate::state::AppState;
use harpoon_bridge::StrikeRequest;

/// Starts a strike for the caller (REST and MCP): one whose changes the large
/// tier generates is refused first when the tenant's tokens for the day are
/// spent, as any inference request would be.
pub async fn launch_strike(
    state: &AppState,
    caller: &Caller,
    req: StrikeRequest,
) -> Result<String, ApiError> {
    if req.generate {
        check_budget(state, caller).await?;
    }
    Ok(state.bridge.start_strike(&caller.tenant.id, req).await?)
}
