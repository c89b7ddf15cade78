//! The `mcp` configuration section: the dedicated MCP listener.

use orchestrator::{InvalidSetting, Secret};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The dedicated MCP listener (`/mcp` on the service port is always served).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    /// Start the second listener on `host:port`.
    pub enabled: bool,
    /// Address of the second listener (env `MCP_WS_HOST`).
    pub host: String,
    /// Port of the second listener (env `MCP_WS_PORT`).
    pub port: u16,
    /// Shared key the second listener requires when set (env `MCP_API_KEY`).
    pub api_key: Option<Secret>,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            host: "127.0.0.1".to_owned(),
            port: 3002,
            api_key: None,
        }
    }
}

impl McpSettings {
    /// The listener's IP address (`localhost` is loopback).
    pub fn bind_ip(&self) -> Result<IpAddr, InvalidSetting> {
        if self.host.eq_ignore_ascii_case("localhost") {
            return Ok(IpAddr::from([127, 0, 0, 1]));
        }
        self.host.parse().map_err(|_| {
            InvalidSetting::new(
                "mcp.host",
                format!("{:?} is not an IP address or `localhost`", self.host),
            )
        })
    }

    /// Checks the address and the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.bind_ip()?;
        if self
            .api_key
            .as_ref()
            .is_some_and(|k| k.expose().trim().is_empty())
        {
            return Err(InvalidSetting::new("mcp.api_key", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_must_be_an_address() {
        let bad = McpSettings {
            host: "example.com".into(),
            ..McpSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "mcp.host");
        assert!(McpSettings::default().validate().is_ok());
        let local = McpSettings {
            host: "localhost".into(),
            ..McpSettings::default()
        };
        assert!(local.bind_ip().unwrap().is_loopback());
    }

    #[test]
    fn blank_key_is_refused() {
        let bad = McpSettings {
            api_key: Some(Secret::new(" ")),
            ..McpSettings::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "mcp.api_key");
    }
}
