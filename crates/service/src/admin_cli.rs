//! `service admin …`: tenants, keys and usage from the command line, on the
//! same database the service uses (the same configuration selects it).

use crate::ops::usage::parse_instant;
use crate::settings::Settings;
use crate::storage::keys::Scope;
use crate::storage::tenants::{Quota, TenantStatus};
use crate::storage::usage::GroupBy;
use crate::storage::{Storage, StorageError, now_ms};
use clap::Subcommand;
use serde_json::{Value, json};

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// A tenant's usage, grouped.
    Usage {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        /// Start: YYYY-MM-DD or RFC 3339 (default 30 days ago).
        #[arg(long)]
        since: Option<String>,
        /// End: YYYY-MM-DD or RFC 3339 (default now).
        #[arg(long)]
        until: Option<String>,
        /// `model` or `day`.
        #[arg(long, default_value = "model")]
        group_by: String,
    },
}

/// Tenant commands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Creates a tenant.
    Create {
        /// Unique name.
        name: String,
        /// Requests per minute (default: quotas.requests_per_minute).
        #[arg(long)]
        rpm: Option<i64>,
        /// Requests in flight (default: quotas.max_concurrent).
        #[arg(long)]
        concurrency: Option<i64>,
        /// Tokens per UTC day (default: quotas.tokens_per_day).
        #[arg(long)]
        tokens_per_day: Option<i64>,
    },
    /// Lists tenants.
    List,
    /// Suspends a tenant: its keys answer 403.
    Suspend {
        /// Tenant id or name.
        tenant: String,
    },
    /// Reactivates a tenant.
    Activate {
        /// Tenant id or name.
        tenant: String,
    },
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Creates a key and prints it once.
    Create {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        /// `tenant` or `admin`.
        #[arg(long, default_value = "tenant")]
        scope: String,
    },
    /// Lists a tenant's keys (prefixes only).
    List {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
    },
    /// Revokes a key.
    Revoke {
        /// Key id (`key_…`).
        key: String,
    },
    /// Prints a fresh key in Harpoon's format without storing it, for
    /// `auth.admin_key` (`HARPOON_ADMIN_KEY`).
    Generate,
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Storage refused or failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An argument is invalid.
    #[error("{0}")]
    Usage(String),
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Runs one command and returns what to print.
pub async fn run(settings: &Settings, command: AdminCommand) -> Result<Value, AdminError> {
    let storage = Storage::open(&settings.storage).await?;
    let out = execute(&storage, command).await;
    storage.close().await;
    out
}

async fn execute(storage: &Storage, command: AdminCommand) -> Result<Value, AdminError> {
    Ok(match command {
        AdminCommand::Tenant(TenantCommand::Create {
            name,
            rpm,
            concurrency,
            tokens_per_day,
        }) => {
            if name.starts_with("ten_") {
                return Err(AdminError::Usage(
                    "names may not start with `ten_` (tenant ids do)".into(),
                ));
            }
            if [rpm, concurrency, tokens_per_day]
                .iter()
                .flatten()
                .any(|v| *v < 1)
            {
                return Err(AdminError::Usage("quotas must be at least 1".into()));
            }
            let quota = Quota {
                requests_per_minute: rpm,
                max_concurrent: concurrency,
                tokens_per_day,
            };
            to_json(storage.create_tenant(&name, quota).await?)
        }
        AdminCommand::Tenant(TenantCommand::List) => to_json(storage.list_tenants().await?),
        AdminCommand::Tenant(TenantCommand::Suspend { tenant }) => {
            let t = storage.find_tenant(&tenant).await?;
            to_json(
                storage
                    .set_tenant_status(&t.id, TenantStatus::Suspended)
                    .await?,
            )
        }
        AdminCommand::Tenant(TenantCommand::Activate { tenant }) => {
            let t = storage.find_tenant(&tenant).await?;
            to_json(
                storage
                    .set_tenant_status(&t.id, TenantStatus::Active)
                    .await?,
            )
        }
        AdminCommand::Key(KeyCommand::Create { tenant, scope }) => {
            let scope = match scope.as_str() {
                "tenant" => Scope::Tenant,
                "admin" => Scope::Admin,
                other => {
                    return Err(AdminError::Usage(format!(
                        "--scope {other:?}: tenant or admin"
                    )));
                }
            };
            let t = storage.find_tenant(&tenant).await?;
            let (key, record) = storage.create_key(&t.id, scope).await?;
            json!({"key": key, "record": record, "note": "store the key now: it is not shown again"})
        }
        AdminCommand::Key(KeyCommand::List { tenant }) => {
            let t = storage.find_tenant(&tenant).await?;
            to_json(storage.list_keys(&t.id).await?)
        }
        AdminCommand::Key(KeyCommand::Revoke { key }) => to_json(storage.revoke_key(&key).await?),
        AdminCommand::Key(KeyCommand::Generate) => {
            json!({ "key": crate::storage::keys::generate() })
        }
        AdminCommand::Usage {
            tenant,
            since,
            until,
            group_by,
        } => {
            let group_by = match group_by.as_str() {
                "model" => GroupBy::Model,
                "day" => GroupBy::Day,
                other => {
                    return Err(AdminError::Usage(format!(
                        "--group-by {other:?}: model or day"
                    )));
                }
            };
            let instant = |field: &str, raw: &str| {
                parse_instant(field, raw).map_err(|e| AdminError::Usage(e.message().to_owned()))
            };
            let until = match until {
                Some(raw) => instant("--until", &raw)?,
                None => now_ms() + 1,
            };
            let since = match since {
                Some(raw) => instant("--since", &raw)?,
                None => until - 30 * 86_400_000,
            };
            let t = storage.find_tenant(&tenant).await?;
            let groups = storage.usage_summary(&t.id, since, until, group_by).await?;
            json!({"tenant": t.id, "since": since, "until": until, "groups": groups})
        }
    })
}
