//! Configuration: built-in defaults < YAML file < environment.
//!
//! The file is `--config`/`$HARPOON_CONFIG` when given (and must then exist),
//! otherwise `~/.orchestrator/config.yaml` when present. Every key is reachable
//! from the environment as `HARPOON__SECTION__KEY`; the seed's names
//! (`SERVICE_HOST`, `SERVICE_PORT`, `PORT`, `RUST_LOG`, `HOSTED_AI_*`) are
//! aliases that win over both. Each section's owner crate decides what a valid
//! value is; this module only assembles and reports.
//!
//! Values are parsed once, here: the bind address is an [`IpAddr`], CORS
//! origins are header values ([`CorsOrigins`]), the authentication mode is
//! resolved against the bind address ([`Settings::auth_mode`]). An error
//! names the key, the source that set it ([`Origin`]: the environment
//! variable, the file and line, or the default) and what is allowed.

pub mod cluster;
mod expected;
mod origin;

use config::{Config, ConfigError, Environment, File, FileFormat};
use expected::Expected;
use harpoon_core::FusionSettings;
use http::HeaderValue;
pub use orchestrator::InvalidSetting;
use orchestrator::{HostedAiSettings, ModelsSettings, RouterSettings};
pub use origin::Origin;
use origin::{KeyLines, Sources};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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
    /// What `/metrics` exports.
    pub metrics: MetricsSettings,
    /// OpenTelemetry traces.
    pub telemetry: TelemetrySettings,
    /// State shared between replicas (Redis/Valkey).
    pub cluster: cluster::ClusterSettings,
}

/// The `telemetry` section: OpenTelemetry traces over OTLP/HTTP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// Base URL of an OTLP/HTTP collector (`http://host:4318`; spans go to
    /// `/v1/traces` under it), env `OTEL_EXPORTER_OTLP_ENDPOINT` too; unset,
    /// no traces are made.
    pub otlp_endpoint: Option<String>,
    /// Put prompts and completions on spans (redacted as log lines are);
    /// off, spans carry no text of the conversation.
    pub capture_content: bool,
}

impl TelemetrySettings {
    /// Where spans are posted: the endpoint's `/v1/traces`, if traces are on.
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint
            .as_deref()
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(());
        };
        match url::Url::parse(endpoint) {
            // The exporter speaks plain HTTP: a collector beside the service
            // (or a sidecar) terminates TLS to a remote backend.
            Ok(url) if url.scheme() == "http" && url.host().is_some() => Ok(()),
            Ok(url) => Err(InvalidSetting::new(
                "telemetry.otlp_endpoint",
                format!(
                    "must be an http:// URL of an OTLP/HTTP collector (such as http://127.0.0.1:4318), not {:?}",
                    url.scheme()
                ),
            )),
            Err(e) => Err(InvalidSetting::new(
                "telemetry.otlp_endpoint",
                format!("must be an http:// URL of an OTLP/HTTP collector: {e}"),
            )),
        }
    }
}

/// The `metrics` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Label token counters with the tenant id too (one series per tenant
    /// and model: leave off with many tenants).
    pub per_tenant: bool,
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
    /// required on any other. Read the mode in force with [`Settings::auth_mode`].
    mode: Option<AuthMode>,
    /// Bearer token `/metrics` requires when set; unset, `/metrics` is open
    /// on a loopback bind and needs an admin key on any other.
    pub metrics_token: Option<orchestrator::Secret>,
    /// Tenant that owns requests when auth is disabled.
    pub local_tenant: String,
    /// A bootstrap admin key (`hk_` + 40 base62 characters, env
    /// `HARPOON_ADMIN_KEY`): at start the `admin` tenant and this key exist,
    /// so a deploy without a shell can create its first tenants over HTTP.
    /// Changing it replaces the previous bootstrap key.
    pub admin_key: Option<orchestrator::Secret>,
    /// Sign-in with GitHub (docs/sign-in.md).
    pub github: crate::signin::config::GithubSettings,
    /// Sign-in with OpenID Connect providers, by name.
    pub oidc: std::collections::BTreeMap<String, crate::signin::config::OidcProviderSettings>,
    /// How long a sign-in session lasts, in hours.
    pub session_hours: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            mode: None,
            metrics_token: None,
            local_tenant: "local".into(),
            admin_key: None,
            github: Default::default(),
            oidc: Default::default(),
            session_hours: 12,
        }
    }
}

impl AuthSettings {
    /// The sign-in settings, for `signin`.
    pub fn signin(&self) -> crate::signin::config::SignInSettings<'_> {
        crate::signin::config::SignInSettings {
            github: &self.github,
            oidc: &self.oidc,
            session_hours: self.session_hours,
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

/// Origins browsers may call from (`service.cors_origins`), checked and made
/// header values when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*` was listed: any origin.
    Any,
    /// These origins only; none (and no CORS layer) when empty.
    List(Vec<HeaderValue>),
}

impl Default for CorsOrigins {
    /// No origin: browsers get no CORS headers.
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl CorsOrigins {
    fn parse(origins: &[String]) -> Result<Self, String> {
        let mut any = false;
        let mut list = Vec::with_capacity(origins.len());
        for origin in origins {
            if origin == "*" {
                any = true;
                continue;
            }
            let is_origin = url::Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && !origin.ends_with('/')
            });
            match HeaderValue::from_str(origin) {
                Ok(value) if is_origin => list.push(value),
                _ => {
                    return Err(format!(
                        "{origin:?} is not `*` or an origin like https://app.example.com"
                    ));
                }
            }
        }
        Ok(if any { Self::Any } else { Self::List(list) })
    }
}

impl Serialize for CorsOrigins {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Any => serializer.collect_seq(["*"]),
            Self::List(list) => serializer.collect_seq(
                list.iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for CorsOrigins {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let origins = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&origins).map_err(serde::de::Error::custom)
    }
}

/// The `service` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Address to bind: an IP address or `localhost` ([`Self::bind_ip`]).
    host: resources::settings::BindHost,
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
    pub cors_origins: CorsOrigins,
    /// After SIGTERM/SIGINT, how long in-flight requests may take before exit.
    pub shutdown_grace_secs: u64,
    /// After SIGTERM/SIGINT, how long the service keeps accepting requests
    /// while `/ready` says 503, so a load balancer's probe stops sending new
    /// ones before the listener closes (its interval times its fall count).
    pub drain_delay_secs: u64,
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
    /// The address people reach the service at (`https://harpoon.example.com`):
    /// sign-in's redirect URIs and cookie origin. Unset, sign-in works on a
    /// loopback bind only (from the request's `Host`).
    pub public_url: Option<String>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            host: resources::settings::BindHost::loopback(),
            port: 8080,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 300,
            cors_origins: CorsOrigins::default(),
            shutdown_grace_secs: 20,
            drain_delay_secs: 0,
            log_bodies: false,
            workers: 0,
            max_connections: 0,
            header_read_timeout_secs: 15,
            body_read_timeout_secs: 60,
            keep_alive_timeout_secs: 60,
            public_url: None,
        }
    }
}

impl ServiceSettings {
    /// `service.public_url`, parsed (loading checked it).
    pub fn public_url(&self) -> Option<url::Url> {
        self.public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
    }

    /// The address to bind, with `localhost` the IPv4 loopback.
    pub fn bind_ip(&self) -> IpAddr {
        self.host.ip()
    }

    /// The address as configured: an IP address or `localhost`.
    pub fn host(&self) -> &str {
        self.host.as_str()
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
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
        if self.drain_delay_secs > 300 {
            return Err(InvalidSetting::new(
                "service.drain_delay_secs",
                format!("{} is out of range 0..=300", self.drain_delay_secs),
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
        if let Some(public) = &self.public_url {
            let url = crate::signin::config::http_url("service.public_url", public)?;
            if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
                return Err(InvalidSetting::new(
                    "service.public_url",
                    format!(
                        "{public:?} must be an origin such as https://harpoon.example.com (no path, query or fragment)"
                    ),
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
    /// A mapping of the file gives the same key twice.
    #[error(
        "configuration file {path}, line {line}: key `{key}` is given twice (first on line {first_line}); a key may appear once"
    )]
    DuplicateKey {
        /// The file.
        path: PathBuf,
        /// Dotted path of the key, e.g. `service.port`.
        key: String,
        /// Line of the second occurrence (1-based).
        line: usize,
        /// Line of the first.
        first_line: usize,
    },
    /// A key is unknown, of the wrong type or out of range.
    #[error("invalid configuration: `{}` ({origin}): {}", setting.key, setting.reason)]
    Invalid {
        /// The key and why its value is refused.
        setting: InvalidSetting,
        /// Where the value came from.
        origin: Origin,
    },
}

/// Settings and where they came from.
#[derive(Debug)]
pub struct Loaded {
    /// The effective configuration.
    pub settings: Settings,
    /// The YAML file that was read, if any.
    pub file: Option<PathBuf>,
}

/// Environment variables of the seed and the key each one sets; for the
/// same key a later name wins (`SERVICE_PORT` over `PORT`, which Railway
/// and similar platforms set).
const ALIASES: &[(&str, &str)] = &[
    ("SERVICE_HOST", "service.host"),
    ("PORT", "service.port"),
    ("SERVICE_PORT", "service.port"),
    ("RUST_LOG", "service.log_level"),
    ("HOSTED_AI_BASE_URL", "hosted_ai.base_url"),
    ("HOSTED_AI_API_KEY", "hosted_ai.api_key"),
    ("HOSTED_AI_TEAM_ID", "hosted_ai.team_id"),
    ("HOSTED_AI_POOL_ID", "hosted_ai.pool"),
    ("HOSTED_AI_OVERCOMMIT", "hosted_ai.overcommit"),
    ("DATABASE_URL", "storage.database_url"),
    ("HARPOON_METRICS_TOKEN", "auth.metrics_token"),
    ("HARPOON_ADMIN_KEY", "auth.admin_key"),
    ("GITHUB_CLIENT_ID", "auth.github.client_id"),
    ("GITHUB_CLIENT_SECRET", "auth.github.client_secret"),
    ("GITHUB_TOKEN", "bridge.github_token"),
    ("MCP_WS_HOST", "mcp.host"),
    ("MCP_WS_PORT", "mcp.port"),
    ("MCP_API_KEY", "mcp.api_key"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
    ("REDIS_URL", "cluster.redis_url"),
];

/// Prefix of the generic names, `HARPOON__SECTION__KEY`.
const PREFIX: &str = "HARPOON";

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
        let file = match file {
            Some(path) => Some(path.to_path_buf()),
            None => env
                .get("HOME")
                .map(|home| Path::new(home).join(".orchestrator/config.yaml"))
                .filter(|p| p.is_file()),
        };
        let mut lines = KeyLines::default();
        let mut file_source = None;
        if let Some(path) = &file {
            // Read it here so a missing or unreadable file names itself.
            let text = std::fs::read_to_string(path).map_err(|e| SettingsError::File {
                path: path.clone(),
                source: Box::new(config::ConfigError::Foreign(Box::new(e))),
            })?;
            lines = KeyLines::scan(&text).map_err(|d| SettingsError::DuplicateKey {
                path: path.clone(),
                key: d.key,
                line: d.line,
                first_line: d.first_line,
            })?;
            let source = Config::builder()
                .add_source(File::from_str(&text, FileFormat::Yaml))
                .build()
                .map_err(|source| SettingsError::File {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            file_source = Some(source);
        }
        let sources = Sources {
            env,
            aliases: ALIASES,
            prefix: PREFIX,
            file: file.as_deref().map(|path| (path, &lines)),
        };
        let invalid = |key: &str, reason: String| {
            let key = if key == "." || key.is_empty() {
                "<root>"
            } else {
                key
            };
            SettingsError::Invalid {
                origin: sources.origin(key),
                setting: InvalidSetting::new(key, reason),
            }
        };

        let defaults = Config::try_from(&Settings::default())
            .map_err(|e| invalid("<defaults>", e.to_string()))?;
        let mut builder = Config::builder().add_source(defaults);
        if let Some(source) = file_source {
            builder = builder.add_source(source);
        }
        builder = builder.add_source(
            Environment::with_prefix(PREFIX)
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.clone().into_iter().collect())),
        );
        // `config` splits lists only when it also guesses types, which would turn
        // a digit-only secret like `000123` into `123`; split list keys here instead.
        for key in LIST_KEYS {
            let name = format!("{PREFIX}__{}", key.replace('.', "__").to_uppercase());
            if let Some(value) = env.get(&name) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                builder = builder
                    .set_override(*key, items)
                    .map_err(|e| invalid(key, e.to_string()))?;
            }
        }
        // An empty seed name is unset; a later one wins over an earlier one.
        for (name, key) in ALIASES {
            if let Some(value) = env.get(*name).filter(|v| !v.is_empty()) {
                builder = builder
                    .set_override(*key, value.as_str())
                    .map_err(|e| invalid(key, e.to_string()))?;
            }
        }

        let merged = builder
            .build()
            .map_err(|e| invalid("<environment>", e.to_string()))?;
        let raw = merged.clone();
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            let expected = expected::expected::<Settings>(e.path());
            invalid(
                &key,
                refusal(e.inner(), expected, raw.get_string(&key).ok()),
            )
        })?;
        settings.validate().map_err(|e| invalid(&e.key, e.reason))?;
        Ok(Loaded { settings, file })
    }

    /// Checks every section's invariants and those across sections.
    fn validate(&self) -> Result<(), InvalidSetting> {
        self.service.validate()?;
        self.models.validate()?;
        self.storage.validate()?;
        self.mcp.validate()?;
        if self.auth.mode == Some(AuthMode::Disabled) && !self.service.bind_ip().is_loopback() {
            return Err(InvalidSetting::new(
                "auth.mode",
                format!(
                    "`disabled` is allowed only on a loopback bind, not on service.host {}",
                    self.service.host()
                ),
            ));
        }
        if let Some(key) = &self.auth.admin_key
            && !crate::storage::keys::is_well_formed(key.expose())
        {
            return Err(InvalidSetting::new(
                "auth.admin_key",
                "must be a key in Harpoon's format: `hk_` and 40 letters or digits \
                 (`service admin key generate` prints a fresh one)"
                    .to_owned(),
            ));
        }
        let auth_mode = self.auth_mode();
        // A keyless MCP listener off loopback would serve the local tenant to
        // the network.
        if self.mcp.enabled
            && self.mcp.api_key.is_none()
            && auth_mode == AuthMode::Disabled
            && !self.mcp_bind_ip().is_loopback()
        {
            return Err(InvalidSetting::new(
                "mcp.api_key",
                format!(
                    "required when mcp.host ({}) is not loopback and auth is disabled",
                    self.mcp.host.as_str()
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
        if auth_mode == AuthMode::Disabled && self.auth.local_tenant.trim().is_empty() {
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
        self.telemetry.validate()?;
        validate_cluster(&self.cluster)?;
        self.auth.signin().validate()?;
        Ok(())
    }

    /// The authentication mode in force: `auth.mode`, or unset, disabled on
    /// a loopback bind and required on any other. Loading refuses `disabled`
    /// on an address other hosts can reach.
    pub fn auth_mode(&self) -> AuthMode {
        self.auth
            .mode
            .unwrap_or(if self.service.bind_ip().is_loopback() {
                AuthMode::Disabled
            } else {
                AuthMode::Required
            })
    }

    /// The address of the MCP listener (`mcp.host`, `localhost` being
    /// loopback).
    pub fn mcp_bind_ip(&self) -> IpAddr {
        self.mcp.bind_ip()
    }

    /// The configuration as pretty JSON (which is also valid YAML), secrets redacted.
    pub fn to_redacted_json(&self) -> String {
        // Serialization of these plain structs cannot fail; keep a readable fallback anyway.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }
}

/// Why a value was refused, with what is allowed where the key's type says
/// (`expected`); `raw` is the value as `config` holds it, if a scalar.
fn refusal(error: &ConfigError, expected: Option<Expected>, raw: Option<String>) -> String {
    // `config` wraps errors to add the key and the source, which the
    // message names better already.
    let mut error = error;
    while let ConfigError::At { error: inner, .. } = error {
        error = inner;
    }
    // A value of the wrong type: what was found, e.g. `sequence`.
    let (message, unexpected) = match error {
        ConfigError::Type {
            unexpected,
            expected,
            ..
        } => (
            format!("got {unexpected}, expected {expected}"),
            Some(unexpected.to_string()),
        ),
        other => (other.to_string(), None),
    };
    let wrong_type = unexpected.is_some();
    match (expected, raw) {
        (Some(expected @ Expected::Integer { min, max }), Some(raw)) if wrong_type => {
            match raw.trim().parse::<i128>() {
                Ok(n) if (min..=max).contains(&n) => message,
                Ok(n) if max > i128::from(u32::MAX) => {
                    format!("{n} is out of range; expected {expected}")
                }
                Ok(n) => format!("{n} is out of range {min}..={max}"),
                Err(_) => format!("`{raw}` is not {expected}"),
            }
        }
        (Some(Expected::Number), Some(raw)) if wrong_type => format!("`{raw}` is not a number"),
        (Some(Expected::Bool), Some(raw)) if wrong_type => {
            format!("`{raw}` is not true or false")
        }
        (Some(Expected::OneOf(names)), Some(raw)) if !names.contains(&raw.as_str()) => {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!(
                "`{raw}` is not allowed; allowed values: {}",
                names.join(", ")
            )
        }
        (Some(expected), None) => match unexpected {
            Some(unexpected) => format!("got {unexpected}, expected {expected}"),
            None => format!("{message}; expected {expected}"),
        },
        _ => message,
    }
}

/// `cluster`: the times in range, the URL a Redis one.
fn validate_cluster(cluster: &cluster::ClusterSettings) -> Result<(), InvalidSetting> {
    if !(10..=60_000).contains(&cluster.redis_timeout_ms) {
        return Err(InvalidSetting::new(
            "cluster.redis_timeout_ms",
            "must be between 10 and 60000 milliseconds",
        ));
    }
    if !(1..=300).contains(&cluster.lease_secs) {
        return Err(InvalidSetting::new(
            "cluster.lease_secs",
            format!("{} is out of range 1..=300", cluster.lease_secs),
        ));
    }
    let Some(url) = &cluster.redis_url else {
        return Ok(());
    };
    match url::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "redis" | "rediss") && u.host().is_some() => Ok(()),
        _ => Err(InvalidSetting::new(
            "cluster.redis_url",
            "must be a redis:// or rediss:// URL with a host (such as redis://127.0.0.1:6379/0)",
        )),
    }
}
