//! The `mcp` configuration section: the dedicated MCP listener.

use orchestrator::{InvalidSetting, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::IpAddr;

/// An address to bind: an IP address, or `localhost` for the IPv4 loopback.
/// Parsed when the configuration is read; printed as it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindHost {
    text: String,
    ip: IpAddr,
}

impl BindHost {
    /// `text` as an address; `localhost` only in lower case.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_as(text, false)
    }

    /// The IPv4 loopback, `127.0.0.1`.
    pub fn loopback() -> Self {
        Self {
            text: "127.0.0.1".to_owned(),
            ip: IpAddr::from([127, 0, 0, 1]),
        }
    }

    /// The address, with `localhost` the IPv4 loopback.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The address as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `text` as an address; `localhost` in any case where `any_case`
    /// (what `mcp.host` has always accepted).
    fn parse_as(text: &str, any_case: bool) -> Result<Self, String> {
        let localhost = if any_case {
            text.eq_ignore_ascii_case("localhost")
        } else {
            text == "localhost"
        };
        let ip = if localhost {
            IpAddr::from([127, 0, 0, 1])
        } else {
            text.parse()
                .map_err(|_| format!("{text:?} is not an IP address or `localhost`"))?
        };
        Ok(Self {
            text: text.to_owned(),
            ip,
        })
    }

    /// Deserializes with `localhost` in any case.
    fn deserialize_any_case<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_as(&text, true).map_err(serde::de::Error::custom)
    }
}

impl Serialize for BindHost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for BindHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether Streamable HTTP keeps sessions in the process that opened them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionMode {
    /// Stateless where several replicas may serve one client (storage on
    /// PostgreSQL), sessions otherwise.
    #[default]
    Auto,
    /// Sessions in this process: server-initiated notifications (resource
    /// subscriptions) work, but a session's next request must reach the same
    /// replica.
    Stateful,
    /// No sessions: every request stands alone, authenticated by its own
    /// key, so any replica answers it; JSON answers; no resource
    /// subscriptions.
    Stateless,
}

/// The dedicated MCP listener (`/mcp` on the service port is always served).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    /// Start the second listener on `host:port`.
    pub enabled: bool,
    /// Address of the second listener (env `MCP_WS_HOST`): an IP address or
    /// `localhost` in any case.
    #[serde(deserialize_with = "BindHost::deserialize_any_case")]
    pub host: BindHost,
    /// Port of the second listener (env `MCP_WS_PORT`).
    pub port: u16,
    /// Shared key the second listener requires when set (env `MCP_API_KEY`).
    pub api_key: Option<Secret>,
    /// Sessions on `/mcp` (both listeners): `auto`, `stateful` or `stateless`.
    pub sessions: SessionMode,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            host: BindHost::loopback(),
            port: 3002,
            api_key: None,
            sessions: SessionMode::Auto,
        }
    }
}

impl McpSettings {
    /// The listener's IP address (`localhost` is loopback).
    pub fn bind_ip(&self) -> IpAddr {
        self.host.ip()
    }

    /// Checks the key (the address was checked when read).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
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

    fn read(host: &str) -> Result<McpSettings, serde_path_to_error::Error<serde_json::Error>> {
        serde_path_to_error::deserialize(serde_json::json!({ "host": host }))
    }

    #[test]
    fn host_must_be_an_address() {
        assert_eq!(read("example.com").unwrap_err().path().to_string(), "host");
        assert!(McpSettings::default().validate().is_ok());
        for local in ["localhost", "LOCALHOST"] {
            assert!(read(local).unwrap().bind_ip().is_loopback(), "{local}");
        }
        assert!(
            BindHost::parse("LOCALHOST").is_err(),
            "the service's own host"
        );
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
