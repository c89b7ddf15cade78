//! The checks of the bridge's requests (covenants, repositories, cables,
//! strikes) that REST's `ApiJson` and MCP's tools run before the bridge.

use crate::error::ApiError;
use crate::ops::Validate;
use harpoon_bridge::{NewCable, NewCovenant, NewRepo, StrikeRequest};

impl Validate for NewCovenant {
    fn validate(&self) -> Result<(), ApiError> {
        harpoon_bridge::validate_covenant(self).map_err(Into::into)
    }
}

// The bridge checks these itself (registered names, paths, URLs) and names the field.
impl Validate for NewRepo {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}
impl Validate for NewCable {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}
impl Validate for StrikeRequest {
    fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}
