//! Configuration: built-in defaults < YAML file < environment.
//!
//! The file is `--config`/`$HARPOON_CONFIG` when given (and must then exist),
//! otherwise `~/.orchestrator/config.yaml` when present. Every key is reachable
//! from the environment as `HARPOON__SECTION__KEY`; the seed's names
//! (`SERVICE_HOST`, `SERVICE_PORT`, `PORT`, `RUST_LOG`, `HOSTED_AI_*`) are
//! aliases that win over both. Each section's owner crate decides what a valid
//! value is; this module only assembles and reports.

use config::{Config, Environment, File, FileFormat};
use harpoon_core::FusionSettings;
pub use orchestrator::InvalidSetting;
use orchestrator::{HostedAiSettings, ModelsSettings, RouterSettings};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
};

/// The whole effective configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The HTTP listener and its middleware.
    pub service: ServiceSettings,
    /// Models by name, with their tier defaults.
    pub models: ModelsSettings,
    /// The complexity router.
    pub router: RouterSettings,
    /// Fusion (hygiene scoring and envelope cycles).
    pub harpoon: FusionSettings,
    /// hosted·ai GPUaaS pool access.
    pub hosted_ai: HostedAiSettings,
    /// Durable state.
    pub storage: crate::storage::StorageSettings,
    /// API keys.
    pub auth: AuthSettings,
    /// Default per-tenant limits.
    pub quotas: QuotaSettings,
    /// Covenants and strikes: workspace, commit author, GitHub.
    pub bridge: harpoon_bridge::BridgeSettings,
    /// The dedicated MCP listener.
    pub mcp: resources::McpSettings,
}

/// Whether requests need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every route but `/health`, `/ready`, `/openapi.json` (and `/metrics`,
    /// which has its own token) needs a key.
    Required,
    /// No keys; everything runs as the built-in tenant. Loopback binds only.
    Disabled,
}

/// The `auth` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// `required` or `disabled`; unset means disabled on a loopback bind and
    /// required on any other.
    pub mode: Option<AuthMode>,
    /// Bearer token `/metrics` requires when set; unset, `/metrics` is open
    /// on a loopback bind and needs an admin key on any other.
    pub metrics_token: Option<orchestrator::Secret>,
    /// Tenant that owns requests when auth is disabled.
    pub local_tenant: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: None,
            metrics_token: None,
            local_tenant: "local".into(),
        }
    }
}

/// The `quotas` section: limits of tenants whose own quota leaves them unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaSettings {
    /// Requests per minute per tenant (token bucket).
    pub requests_per_minute: u32,
    /// Requests in flight at once per tenant.
    pub max_concurrent: u32,
    /// Prompt plus completion tokens per tenant per UTC day; unset is unlimited.
    pub tokens_per_day: Option<u64>,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            max_concurrent: 32,
            tokens_per_day: None,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The `service` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Address to bind: an IP address or `localhost`.
    pub host: String,
    /// TCP port; 0 asks the OS for a free one.
    pub port: u16,
    /// `tracing` filter directives, e.g. `info` or `service=debug,tower_http=info`.
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Largest accepted request body; larger bodies get 413.
    pub body_limit_bytes: usize,
    /// Time a request may take until its response starts; then 504.
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS; empty allows none, `*` allows any.
    pub cors_origins: Vec<String>,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before exit.
    pub shutdown_grace_secs: u64,
    /// Log request bodies at debug level (redacted). Off: logs never carry what users send.
    pub log_bodies: bool,
    /// Serving threads, each answering its connections from start to end; 0 = one per core.
    pub workers: usize,
    /// Most client connections open at once (both listeners); 0 = half the open-file limit.
    pub max_connections: usize,
    /// Time a client has to send a complete request head, from connecting or from its last answer.
    pub header_read_timeout_secs: u64,
    /// Time a client has to send a whole request body, from the end of its head.
    pub body_read_timeout_secs: u64,
    /// Time a keep-alive connection may sit idle between requests before it is closed.
    pub keep_alive_timeout_secs: u64,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 300,
            cors_origins: Vec::new(),
            shutdown_grace_secs: 20,
            log_bodies: false,
            workers: 0,
            max_connections: 0,
            header_read_timeout_secs: 15,
            body_read_timeout_secs: 60,
            keep_alive_timeout_secs: 60,
        }
    }
}

impl ServiceSettings {
    /// The address to bind, with `localhost` resolved to the IPv4 loopback.
    pub fn bind_ip(&self) -> Result<IpAddr, InvalidSetting> {
        if self.host == "localhost" {
            return Ok(IpAddr::from([127, 0, 0, 1]));
        }
        self.host.parse().map_err(|_| {
            InvalidSetting::new(
                "service.host",
                format!("{:?} is not an IP address or `localhost`", self.host),
            )
        })
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        self.bind_ip()?;
        tracing_subscriber::EnvFilter::try_new(&self.log_level).map_err(|e| {
            InvalidSetting::new(
                "service.log_level",
                format!("{:?} is not a tracing filter: {e}", self.log_level),
            )
        })?;
        if !(1024..=1024 * 1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(InvalidSetting::new(
                "service.body_limit_bytes",
                format!(
                    "{} is out of range 1024..=1073741824",
                    self.body_limit_bytes
                ),
            ));
        }
        if !(1..=86_400).contains(&self.request_timeout_secs) {
            return Err(InvalidSetting::new(
                "service.request_timeout_secs",
                format!("{} is out of range 1..=86400", self.request_timeout_secs),
            ));
        }
        if self.shutdown_grace_secs > 3_600 {
            return Err(InvalidSetting::new(
                "service.shutdown_grace_secs",
                format!("{} is out of range 0..=3600", self.shutdown_grace_secs),
            ));
        }
        if self.workers > 1_024 {
            return Err(InvalidSetting::new(
                "service.workers",
                format!("{} is out of range 0..=1024", self.workers),
            ));
        }
        if !(1..=300).contains(&self.header_read_timeout_secs) {
            return Err(InvalidSetting::new(
                "service.header_read_timeout_secs",
                format!("{} is out of range 1..=300", self.header_read_timeout_secs),
            ));
        }
        if !(1..=3_600).contains(&self.body_read_timeout_secs) {
            return Err(InvalidSetting::new(
                "service.body_read_timeout_secs",
                format!("{} is out of range 1..=3600", self.body_read_timeout_secs),
            ));
        }
        if !(1..=3_600).contains(&self.keep_alive_timeout_secs) {
            return Err(InvalidSetting::new(
                "service.keep_alive_timeout_secs",
                format!("{} is out of range 1..=3600", self.keep_alive_timeout_secs),
            ));
        }
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || url::Url::parse(origin).is_ok_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.path() == "/"
                        && !origin.ends_with('/')
                });
            if !ok {
                return Err(InvalidSetting::new(
                    "service.cors_origins",
                    format!("{origin:?} is not `*` or an origin like https://app.example.com"),
                ));
            }
        }
        Ok(())
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The named file is missing, unreadable or not YAML.
    #[error("configuration file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the parser said (boxed: `ConfigError` is large).
        source: Box<config::ConfigError>,
    },
    /// A key is unknown, of the wrong type or out of range.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] InvalidSetting),
}

/// Settings and where they came from.
#[derive(Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub settings: Settings,
    /// The YAML file that was read, if any.
    pub file: Option<PathBuf>,
}

/// Environment variables of the seed and the key each one sets.
const ALIASES: &[(&str, &str)] = &[
    ("SERVICE_HOST", "service.host"),
    ("RUST_LOG", "service.log_level"),
    ("HOSTED_AI_BASE_URL", "hosted_ai.base_url"),
    ("HOSTED_AI_API_KEY", "hosted_ai.api_key"),
    ("HOSTED_AI_TEAM_ID", "hosted_ai.team_id"),
    ("HOSTED_AI_POOL_ID", "hosted_ai.pool"),
    ("HOSTED_AI_OVERCOMMIT", "hosted_ai.overcommit"),
    ("DATABASE_URL", "storage.database_url"),
    ("HARPOON_METRICS_TOKEN", "auth.metrics_token"),
    ("GITHUB_TOKEN", "bridge.github_token"),
    ("MCP_WS_HOST", "mcp.host"),
    ("MCP_WS_PORT", "mcp.port"),
    ("MCP_API_KEY", "mcp.api_key"),
];

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: &[&str] = &["service.cors_origins"];

impl Settings {
    /// Loads defaults < `file` (or `~/.orchestrator/config.yaml`) < `env`.
    ///
    /// `env` is passed in rather than read so tests can state it exactly.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Loaded, SettingsError> {
        let defaults = Config::try_from(&Settings::default()).map_err(|source| {
            SettingsError::Invalid(InvalidSetting::new("<defaults>", source.to_string()))
        })?;
        let mut builder = Config::builder().add_source(defaults);

        let file = match file {
            Some(path) => Some(path.to_path_buf()),
            None => env
                .get("HOME")
                .map(|home| Path::new(home).join(".orchestrator/config.yaml"))
                .filter(|p| p.is_file()),
        };
        if let Some(path) = &file {
            // Read it here so a missing or unreadable file names itself.
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::File {
                path: path.clone(),
                source: Box::new(config::ConfigError::Foreign(Box::new(e))),
            })?;
            let source = Config::builder()
                .add_source(File::from_str(&text, FileFormat::Yaml))
                .build()
                .map_err(|source| SettingsError::File {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            builder = builder.add_source(source);
        }

        builder = builder.add_source(
            Environment::with_prefix("HARPOON")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.clone().into_iter().collect())),
        );
        // `config` splits lists only when it also guesses types, which would turn
        // a digit-only secret like `000123` into `123`; split list keys here instead.
        for key in LIST_KEYS {
            let name = format!("HARPOON__{}", key.replace('.', "__").to_uppercase());
            if let Some(value) = env.get(&name) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder = builder
                    .set_override(*key, items)
                    .map_err(|e| invalid(key, e))?;
            }
        }

        let set = |name: &str| env.get(name).filter(|v| !v.is_empty());
        for (name, key) in ALIASES {
            if let Some(value) = set(name) {
                builder = builder
                    .set_override(*key, value.as_str())
                    .map_err(|e| invalid(key, e))?;
            }
        }
        // Railway and similar platforms set PORT; SERVICE_PORT wins when both are set.
        if let Some(port) = set("SERVICE_PORT").or_else(|| set("PORT")) {
            builder = builder
                .set_override("service.port", port.as_str())
                .map_err(|e| invalid("service.port", e))?;
        }

        let merged = builder.build().map_err(|e| invalid("<environment>", e))?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let path = e.path().to_string();
            invalid(&path, e.into_inner())
        })?;
        settings.validate()?;
        Ok(Loaded { settings, file })
    }

    /// Checks every section's invariants.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.service.validate()?;
        self.models.validate()?;
        self.storage.validate()?;
        self.mcp.validate()?;
        let mode = self.auth_mode()?;
        // A keyless MCP listener off loopback would serve the local tenant to
        // the network.
        if self.mcp.enabled
            && self.mcp.api_key.is_none()
            && mode == AuthMode::Disabled
            && !self.mcp.bind_ip()?.is_loopback()
        {
            return Err(InvalidSetting::new(
                "mcp.api_key",
                format!(
                    "required when mcp.host ({}) is not loopback and auth is disabled",
                    self.mcp.host
                ),
            ));
        }
        if self
            .auth
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(InvalidSetting::new(
                "auth.metrics_token",
                "must not be empty (unset, /metrics is open on a loopback bind and needs an admin key elsewhere)",
            ));
        }
        if mode == AuthMode::Disabled && self.auth.local_tenant.trim().is_empty() {
            return Err(InvalidSetting::new(
                "auth.local_tenant",
                "must not be empty",
            ));
        }
        if self.quotas.requests_per_minute == 0 || self.quotas.max_concurrent == 0 {
            return Err(InvalidSetting::new(
                "quotas",
                "requests_per_minute and max_concurrent must be at least 1",
            ));
        }
        self.router.validate()?;
        self.harpoon
            .validate()
            .map_err(|e| InvalidSetting::new(e.key, e.reason))?;
        self.hosted_ai.validate()?;
        self.bridge.validate()?;
        Ok(())
    }

    /// The authentication mode in force: explicit, or by the bind address.
    /// Disabling auth on an address other hosts can reach is refused.
    pub fn auth_mode(&self) -> Result<AuthMode, InvalidSetting> {
        let loopback = self.service.bind_ip()?.is_loopback();
        match self.auth.mode {
            Some(AuthMode::Disabled) if !loopback => Err(InvalidSetting::new(
                "auth.mode",
                format!(
                    "`disabled` is allowed only on a loopback bind, not on {}",
                    self.service.host
                ),
            )),
            Some(mode) => Ok(mode),
            None if loopback => Ok(AuthMode::Disabled),
            None => Ok(AuthMode::Required),
        }
    }

    /// The configuration as pretty JSON (which is also valid YAML), secrets redacted.
    pub fn to_redacted_json(&self) -> String {
        // Serialization of these plain structs cannot fail; keep a readable fallback anyway.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }
}

fn invalid(key: &str, error: impl std::fmt::Display) -> InvalidSetting {
    let key = if key == "." || key.is_empty() {
        "<root>"
    } else {
        key
    };
    InvalidSetting::new(key, error.to_string())
}
