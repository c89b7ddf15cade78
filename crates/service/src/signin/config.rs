//! The sign-in settings (`auth.github`, `auth.oidc`, `auth.session_hours`)
//! and their checks; each refusal names the key.

use orchestrator::{InvalidSetting, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a signed-in person may do in their tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// As an admin key: every tenant and the admin API.
    Admin,
    /// As a tenant key: the tenant's own dashboard and usage.
    Member,
}

impl Role {
    /// The role as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The stored form back; anything unknown is the lesser role.
    pub fn parse(s: &str) -> Self {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// A tenant and role given to the people a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantGrant {
    /// The tenant's name (or id); it must exist when someone signs in.
    pub tenant: String,
    /// `admin` or `member`.
    pub role: Role,
}

/// `auth.github`: GitHub's OAuth web flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GithubSettings {
    /// The OAuth app's client id (env `GITHUB_CLIENT_ID`); with the secret,
    /// enables `/auth/github/login`.
    pub client_id: Option<String>,
    /// The OAuth app's client secret (env `GITHUB_CLIENT_SECRET`).
    pub client_secret: Option<Secret>,
    /// Where the authorize and token endpoints live: `https://github.com`, or
    /// a GitHub Enterprise Server's address.
    pub web_url: String,
    /// GitHub's REST API: `https://api.github.com`, or `https://HOST/api/v3`.
    pub api_url: String,
    /// `org` or `org/team-slug` → tenant and role; the first match by
    /// specificity wins (a team over its organisation, then an admin grant
    /// over a member one).
    pub org_tenants: BTreeMap<String, TenantGrant>,
}

impl Default for GithubSettings {
    fn default() -> Self {
        Self {
            client_id: None,
            client_secret: None,
            web_url: "https://github.com".into(),
            api_url: "https://api.github.com".into(),
            org_tenants: BTreeMap::new(),
        }
    }
}

impl GithubSettings {
    /// Whether GitHub sign-in is on (both client id and secret set).
    pub fn enabled(&self) -> bool {
        self.client_id.is_some() && self.client_secret.is_some()
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        match (&self.client_id, &self.client_secret) {
            (Some(_), None) => {
                return Err(InvalidSetting::new(
                    "auth.github.client_secret",
                    "is required when auth.github.client_id is set (env GITHUB_CLIENT_SECRET)",
                ));
            }
            (None, Some(_)) => {
                return Err(InvalidSetting::new(
                    "auth.github.client_id",
                    "is required when auth.github.client_secret is set (env GITHUB_CLIENT_ID)",
                ));
            }
            (Some(id), Some(_)) if id.trim().is_empty() => {
                return Err(InvalidSetting::new(
                    "auth.github.client_id",
                    "must not be empty",
                ));
            }
            _ => {}
        }
        http_url("auth.github.web_url", &self.web_url)?;
        http_url("auth.github.api_url", &self.api_url)?;
        for (rule, grant) in &self.org_tenants {
            let key = format!("auth.github.org_tenants.{rule}");
            let parts: Vec<&str> = rule.split('/').collect();
            if parts.len() > 2 || parts.iter().any(|p| p.trim().is_empty()) {
                return Err(InvalidSetting::new(
                    key,
                    "must be an organisation (`acme`) or a team (`acme/platform`)",
                ));
            }
            check_grant(&key, grant)?;
        }
        Ok(())
    }
}

/// One OpenID Connect provider under `auth.oidc.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderSettings {
    /// The issuer URL; its `/.well-known/openid-configuration` is read.
    pub issuer_url: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (`client_secret_basic` at the token endpoint).
    pub client_secret: Secret,
    /// Name shown on the sign-in button; the provider's name when unset.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Scopes asked for besides `openid` (e.g. `groups` where the provider
    /// puts group membership behind one).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim mapped to tenants (a string or a list of strings):
    /// a top-level name, or a dotted path into nested objects
    /// (`realm_access.roles`).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Value of `claim` → tenant and role; an admin grant wins over a member one.
    #[serde(default)]
    pub claim_tenants: BTreeMap<String, TenantGrant>,
}

fn default_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into()]
}

fn default_claim() -> String {
    "groups".into()
}

/// Every sign-in setting, as the `auth` section holds them.
#[derive(Debug, Clone, Copy)]
pub struct SignInSettings<'a> {
    /// `auth.github`.
    pub github: &'a GithubSettings,
    /// `auth.oidc`.
    pub oidc: &'a BTreeMap<String, OidcProviderSettings>,
    /// `auth.session_hours`.
    pub session_hours: u32,
}

impl SignInSettings<'_> {
    /// Checks every sign-in key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.github.validate()?;
        for (name, provider) in self.oidc {
            let key = |leaf: &str| format!("auth.oidc.{name}.{leaf}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(InvalidSetting::new(
                    format!("auth.oidc.{name}"),
                    "a provider's name must be lowercase letters, digits and `-` (it is part of its URLs)",
                ));
            }
            http_url(&key("issuer_url"), &provider.issuer_url)?;
            if provider.client_id.trim().is_empty() {
                return Err(InvalidSetting::new(key("client_id"), "must not be empty"));
            }
            if provider.client_secret.expose().is_empty() {
                return Err(InvalidSetting::new(
                    key("client_secret"),
                    "must not be empty",
                ));
            }
            if provider.claim.trim().is_empty() {
                return Err(InvalidSetting::new(key("claim"), "must not be empty"));
            }
            for (value, grant) in &provider.claim_tenants {
                check_grant(&key(&format!("claim_tenants.{value}")), grant)?;
            }
        }
        if !(1..=720).contains(&self.session_hours) {
            return Err(InvalidSetting::new(
                "auth.session_hours",
                format!("{} is out of range 1..=720", self.session_hours),
            ));
        }
        Ok(())
    }
}

fn check_grant(key: &str, grant: &TenantGrant) -> Result<(), InvalidSetting> {
    if grant.tenant.trim().is_empty() {
        return Err(InvalidSetting::new(
            format!("{key}.tenant"),
            "must name a tenant",
        ));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host, or the refusal naming `key`.
pub fn http_url(key: &str, value: &str) -> Result<url::Url, InvalidSetting> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        _ => Err(InvalidSetting::new(
            key,
            format!("{value:?} is not an http:// or https:// URL with a host"),
        )),
    }
}
