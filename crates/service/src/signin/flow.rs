//! The sign-in use cases the handlers call: begin a sign-in (the redirect
//! to the provider), finish it (the callback: state, code, identity,
//! mapping, session), read the session behind a cookie, sign out. Each
//! event is logged (no codes, states or tokens) and counted in
//! `harpoon_signin_events_total`.

use super::config::{GithubSettings, OidcProviderSettings, Role, TenantGrant};
use super::github;
use super::grant::{Exchange, Identity, ProviderError, grant_for};
use super::invitations;
use super::oidc::Discovery;
use super::session::{self, ATTEMPT_COOKIE, Attempt, SESSION_COOKIE, Session};
use crate::storage::tenants::Tenant;
use crate::storage::{Storage, StorageError};
use serde::Deserialize;
use std::collections::BTreeMap;
use tokio::sync::OnceCell;

/// Which provider a route names.
#[derive(Debug, Clone, Copy)]
pub enum Provider<'a> {
    /// `auth.github`.
    Github,
    /// `auth.oidc.<name>`.
    Oidc(&'a str),
}

impl Provider<'_> {
    /// Its name in sessions and logs.
    pub fn name(&self) -> &str {
        match self {
            Provider::Github => github::PROVIDER,
            Provider::Oidc(name) => name,
        }
    }

    fn callback_path(&self) -> String {
        match self {
            Provider::Github => "/auth/github/callback".into(),
            Provider::Oidc(name) => format!("/auth/oidc/{name}/callback"),
        }
    }
}

/// Why a sign-in (or a session) was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The route names a provider that is not configured.
    #[error("{0}")]
    NotConfigured(String),
    /// Off loopback without `service.public_url`, no redirect URI can be trusted.
    #[error(
        "sign-in needs service.public_url (e.g. https://harpoon.example.com) on a bind other hosts can reach: the provider's redirect URI is built from it"
    )]
    PublicUrlRequired,
    /// On loopback without a public URL, the `Host` is not a loopback address.
    #[error("the Host header {0:?} is not this host's loopback address; set service.public_url")]
    BadHost(String),
    /// The callback's `state` is not the one this browser's sign-in began with.
    #[error(
        "this sign-in did not begin in this browser (its state does not match); start again from the dashboard"
    )]
    ForgedState,
    /// The attempt was used already, expired, or never existed.
    #[error(
        "this sign-in was already used or has expired (a callback works once, within 10 minutes); start again from the dashboard"
    )]
    UnknownAttempt,
    /// The callback's query is not one a provider sends.
    #[error(
        "this is not a sign-in callback a provider sends ({0}); start again from the dashboard"
    )]
    BadCallback(String),
    /// The callback came back with the provider's `error`.
    #[error("{provider} did not sign you in: {error}")]
    ProviderDenied {
        /// The provider.
        provider: String,
        /// Its `error` (and description).
        error: String,
    },
    /// The provider refused the exchange or could not be asked.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Nobody mapped this person to a tenant.
    #[error(
        "signed in as {subject}, but none of {memberships} is mapped to a Harpoon tenant; ask an operator to add one to {setting}"
    )]
    NotMapped {
        /// Who.
        subject: String,
        /// Their organisations/teams or claim values, listed.
        memberships: String,
        /// The setting to change.
        setting: String,
    },
    /// The mapped tenant does not exist.
    #[error("{rule} maps to tenant {tenant:?}, which does not exist; an admin must create it")]
    NoSuchTenant {
        /// The matching rule.
        rule: String,
        /// The tenant it names.
        tenant: String,
    },
    /// The mapped tenant is suspended.
    #[error("tenant {0:?} is suspended")]
    TenantSuspended(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The HTTP client could not be made.
    #[error("the HTTP client for sign-in could not be made: {0}")]
    Http(String),
}

/// The `provider` label for an event about `provider`: a name from the
/// request path that is not configured is `unknown`, so requests cannot
/// grow the metric's label set.
fn label<'a>(provider: Provider<'a>, error: &SignInError) -> &'a str {
    match (provider, error) {
        (Provider::Oidc(_), SignInError::NotConfigured(_)) => "unknown",
        (Provider::Github, _) => github::PROVIDER,
        (Provider::Oidc(name), _) => name,
    }
}

impl SignInError {
    /// The `outcome` label of `harpoon_signin_events_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            SignInError::NotConfigured(_) => "not_configured",
            SignInError::PublicUrlRequired | SignInError::BadHost(_) => "no_public_url",
            SignInError::ForgedState => "forged_state",
            SignInError::UnknownAttempt => "unknown_attempt",
            SignInError::BadCallback(_) => "bad_callback",
            SignInError::ProviderDenied { .. } => "provider_denied",
            SignInError::Provider(ProviderError::CodeRefused { .. }) => "code_refused",
            SignInError::Provider(ProviderError::InvalidIdToken { .. }) => "invalid_id_token",
            SignInError::Provider(_) => "provider_unavailable",
            SignInError::NotMapped { .. } => "not_mapped",
            SignInError::NoSuchTenant { .. } => "no_such_tenant",
            SignInError::TenantSuspended(_) => "tenant_suspended",
            SignInError::Storage(_) | SignInError::Http(_) => "internal",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> u16 {
        match self {
            SignInError::NotConfigured(_) => 404,
            SignInError::PublicUrlRequired => 503,
            SignInError::BadHost(_)
            | SignInError::ForgedState
            | SignInError::UnknownAttempt
            | SignInError::BadCallback(_)
            | SignInError::Provider(ProviderError::CodeRefused { .. }) => 400,
            SignInError::ProviderDenied { .. }
            | SignInError::NotMapped { .. }
            | SignInError::NoSuchTenant { .. }
            | SignInError::TenantSuspended(_)
            | SignInError::Provider(ProviderError::InvalidIdToken { .. }) => 403,
            SignInError::Provider(_) => 502,
            SignInError::Storage(_) => 503,
            SignInError::Http(_) => 500,
        }
    }
}

/// The provider's answer on the callback, as its query string carries it.
/// `iss` is RFC 9207's issuer identification (OIDC providers send it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Callback {
    /// The authorization code.
    pub code: Option<String>,
    /// The state the sign-in began with.
    pub state: Option<String>,
    /// The provider's refusal, e.g. `access_denied`.
    pub error: Option<String>,
    /// Its words for it.
    pub error_description: Option<String>,
    /// A page about it.
    pub error_uri: Option<String>,
    /// The issuer that answered.
    pub iss: Option<String>,
}

/// A sign-in begun: where to send the browser, and the cookie binding it.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorize URL.
    pub location: String,
    /// `Set-Cookie` for the attempt cookie.
    pub attempt_cookie: String,
}

/// A sign-in finished: the session cookie and who it is.
#[derive(Debug)]
pub struct Finished {
    /// `Set-Cookie` for the session.
    pub session_cookie: String,
    /// `Set-Cookie` deleting the attempt cookie.
    pub clear_attempt: String,
}

/// A session read from a cookie.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The row.
    pub session: Session,
    /// Its tenant, as stored now.
    pub tenant: Tenant,
    /// The cookie's token (to sign out).
    pub token: String,
}

/// Why a session cookie does not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum SessionRefusal {
    /// Its signature does not hold.
    #[error("the session cookie is not valid (altered, or signed by another key); sign in again")]
    Tampered,
    /// Signed out, expired or unknown.
    #[error("the session has ended (signed out or expired); sign in again")]
    Ended,
    /// Its tenant was suspended (the session is ended now).
    #[error("tenant {0:?} is suspended; its sessions have ended")]
    Suspended(String),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Everything sign-in needs, built from the settings at start.
pub struct SignIn {
    github: GithubSettings,
    oidc: BTreeMap<String, OidcProviderSettings>,
    session_ms: i64,
    public_url: Option<url::Url>,
    loopback_bind: bool,
    storage: Storage,
    key: OnceCell<cookie::Key>,
    http: OnceCell<reqwest::Client>,
    discovery: Discovery,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("github", &self.github.enabled())
            .field("oidc", &self.oidc.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Counts and logs one sign-in event.
pub fn record(provider: &str, outcome: &'static str, subject: Option<&str>, detail: &str) {
    metrics::counter!(crate::telemetry::SIGNIN_EVENTS, "provider" => provider.to_owned(), "outcome" => outcome)
        .increment(1);
    match outcome {
        "signed_in" | "signed_out" => {
            tracing::info!(
                provider,
                outcome,
                subject = subject.unwrap_or(""),
                "{detail}"
            )
        }
        _ => tracing::warn!(
            provider,
            outcome,
            subject = subject.unwrap_or(""),
            "sign-in refused: {detail}"
        ),
    }
}

impl SignIn {
    /// Sign-in as configured; `public_url` already checked by the settings.
    pub fn new(
        github: GithubSettings,
        oidc: BTreeMap<String, OidcProviderSettings>,
        session_hours: u32,
        public_url: Option<url::Url>,
        loopback_bind: bool,
        storage: Storage,
    ) -> Self {
        Self {
            github,
            oidc,
            session_ms: i64::from(session_hours) * 3_600_000,
            public_url,
            loopback_bind,
            storage,
            key: OnceCell::new(),
            http: OnceCell::new(),
            discovery: Discovery::default(),
        }
    }

    /// The configured providers: login path and button label.
    pub fn providers(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.github.enabled() {
            out.push(("/auth/github/login".to_owned(), "GitHub".to_owned()));
        }
        for (name, p) in &self.oidc {
            out.push((
                format!("/auth/oidc/{name}/login"),
                p.display_name.clone().unwrap_or_else(|| name.clone()),
            ));
        }
        out
    }

    /// Whether cookies get `Secure`: off loopback, or behind an https public URL.
    pub fn secure_cookies(&self) -> bool {
        !self.loopback_bind
            || self
                .public_url
                .as_ref()
                .is_some_and(|u| u.scheme() == "https")
    }

    /// This service's origin as browsers see it: the public URL's, or on a
    /// loopback bind the request's `Host` when it is a loopback address.
    pub fn own_origin(&self, host: Option<&str>) -> Result<String, SignInError> {
        if let Some(url) = &self.public_url {
            return Ok(url.origin().ascii_serialization());
        }
        if !self.loopback_bind {
            return Err(SignInError::PublicUrlRequired);
        }
        let host = host.unwrap_or("");
        // Only a loopback Host: a rebinding DNS name must not become a redirect URI.
        let url = url::Url::parse(&format!("http://{host}"))
            .map_err(|_| SignInError::BadHost(host.to_owned()))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if !loopback || url.path() != "/" {
            return Err(SignInError::BadHost(host.to_owned()));
        }
        Ok(url.origin().ascii_serialization())
    }

    async fn key(&self) -> Result<&cookie::Key, StorageError> {
        self.key
            .get_or_try_init(|| session::signing_key(&self.storage))
            .await
    }

    async fn http(&self) -> Result<&reqwest::Client, SignInError> {
        self.http
            .get_or_try_init(|| async {
                reqwest::Client::builder()
                    // Never follow a redirect from a provider's API (SSRF).
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(15))
                    .user_agent("harpoon-signin")
                    .build()
                    .map_err(|e| SignInError::Http(e.to_string()))
            })
            .await
    }

    fn oidc_settings(&self, name: &str) -> Result<&OidcProviderSettings, SignInError> {
        self.oidc.get(name).ok_or_else(|| {
            SignInError::NotConfigured(format!(
                "no OpenID Connect provider {name:?} is configured (auth.oidc.{name})"
            ))
        })
    }

    fn check_configured(&self, provider: Provider<'_>) -> Result<(), SignInError> {
        match provider {
            Provider::Github if !self.github.enabled() => Err(SignInError::NotConfigured(
                "GitHub sign-in is not configured: set auth.github.client_id and client_secret (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)".into(),
            )),
            Provider::Github => Ok(()),
            Provider::Oidc(name) => self.oidc_settings(name).map(|_| ()),
        }
    }

    /// Refuses a callback whose query could not be read (`reason`),
    /// counted and logged like every refusal.
    pub fn refuse_callback(&self, provider: Provider<'_>, reason: String) -> SignInError {
        let e = match self.check_configured(provider) {
            Ok(()) => SignInError::BadCallback(reason),
            Err(not_configured) => not_configured,
        };
        record(label(provider, &e), e.outcome(), None, &e.to_string());
        e
    }

    /// Begins a sign-in: records the attempt and returns the provider's URL.
    pub async fn begin(
        &self,
        provider: Provider<'_>,
        host: Option<&str>,
    ) -> Result<Begun, SignInError> {
        let result = self.begin_inner(provider, host).await;
        if let Err(e) = &result {
            record(label(provider, e), e.outcome(), None, &e.to_string());
        }
        result
    }

    async fn begin_inner(
        &self,
        provider: Provider<'_>,
        host: Option<&str>,
    ) -> Result<Begun, SignInError> {
        self.check_configured(provider)?;
        let redirect_uri = format!("{}{}", self.own_origin(host)?, provider.callback_path());
        let (url, state, verifier, nonce) = match provider {
            Provider::Github => {
                let (url, state, verifier) = github::authorize(&self.github, &redirect_uri)?;
                (url, state, verifier, String::new())
            }
            Provider::Oidc(name) => {
                let settings = self.oidc_settings(name)?;
                self.discovery
                    .authorize(name, settings, self.http().await?, &redirect_uri)
                    .await?
            }
        };
        session::begin_attempt(
            &self.storage,
            &state,
            &Attempt {
                provider: provider.name().to_owned(),
                pkce_verifier: verifier,
                nonce,
                redirect_uri,
            },
        )
        .await?;
        let signed = session::sign(self.key().await?, ATTEMPT_COOKIE, &state);
        Ok(Begun {
            location: url.to_string(),
            attempt_cookie: session::set_cookie(
                ATTEMPT_COOKIE,
                &signed,
                "/auth",
                session::ATTEMPT_TTL_MS / 1000,
                self.secure_cookies(),
            ),
        })
    }

    /// Finishes a sign-in from the provider's callback and the attempt
    /// cookie the browser sent, opening a session.
    pub async fn finish(
        &self,
        provider: Provider<'_>,
        callback: &Callback,
        attempt_cookie: Option<&str>,
    ) -> Result<Finished, SignInError> {
        match self.finish_inner(provider, callback, attempt_cookie).await {
            Ok((finished, subject, tenant, role)) => {
                record(
                    provider.name(),
                    "signed_in",
                    Some(&subject),
                    &format!("signed in to tenant {tenant} as {}", role.as_str()),
                );
                Ok(finished)
            }
            Err((e, subject)) => {
                record(
                    label(provider, &e),
                    e.outcome(),
                    subject.as_deref(),
                    &e.to_string(),
                );
                Err(e)
            }
        }
    }

    async fn finish_inner(
        &self,
        provider: Provider<'_>,
        callback: &Callback,
        attempt_cookie: Option<&str>,
    ) -> Result<(Finished, String, String, Role), (SignInError, Option<String>)> {
        let no_subject = |e: SignInError| (e, None);
        self.check_configured(provider).map_err(no_subject)?;
        if let Some(error) = &callback.error {
            let error = match &callback.error_description {
                Some(d) => format!("{error} ({d})"),
                None => error.clone(),
            };
            return Err(no_subject(SignInError::ProviderDenied {
                provider: provider.name().to_owned(),
                error,
            }));
        }
        let state = callback.state.as_deref().unwrap_or("");
        let key = self.key().await.map_err(|e| no_subject(e.into()))?;
        // The state must be the one this browser's own sign-in began with:
        // a callback URL made for someone else's browser fails here.
        let bound = attempt_cookie.and_then(|c| session::verify(key, ATTEMPT_COOKIE, c));
        if state.is_empty() || !bound.is_some_and(|b| crate::callers::same_secret(&b, state)) {
            return Err(no_subject(SignInError::ForgedState));
        }
        let attempt = session::claim_attempt(&self.storage, state)
            .await
            .map_err(|e| no_subject(e.into()))?
            .filter(|a| a.provider == provider.name())
            .ok_or_else(|| no_subject(SignInError::UnknownAttempt))?;
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                no_subject(SignInError::ProviderDenied {
                    provider: provider.name().to_owned(),
                    error: "the callback has no code".into(),
                })
            })?;
        let exchange = Exchange {
            code,
            verifier: &attempt.pkce_verifier,
            nonce: &attempt.nonce,
            redirect_uri: &attempt.redirect_uri,
        };
        let http = self.http().await.map_err(no_subject)?;
        let (identity, rules, setting, case_insensitive): (
            Identity,
            &BTreeMap<String, TenantGrant>,
            String,
            bool,
        ) = match provider {
            Provider::Github => (
                github::identify(&self.github, http, exchange)
                    .await
                    .map_err(|e| no_subject(e.into()))?,
                &self.github.org_tenants,
                "auth.github.org_tenants".into(),
                true,
            ),
            Provider::Oidc(name) => {
                let settings = self.oidc_settings(name).map_err(no_subject)?;
                if let Some(iss) = &callback.iss
                    && iss.trim_end_matches('/') != settings.issuer_url.trim_end_matches('/')
                {
                    return Err(no_subject(SignInError::ProviderDenied {
                        provider: name.to_owned(),
                        error: format!(
                            "the callback's issuer {iss:?} is not {:?}",
                            settings.issuer_url
                        ),
                    }));
                }
                (
                    self.discovery
                        .identify(name, settings, http, exchange)
                        .await
                        .map_err(|e| no_subject(e.into()))?,
                    &settings.claim_tenants,
                    format!("auth.oidc.{name}.claim_tenants"),
                    false,
                )
            }
        };
        let subject = identity.subject.clone();
        let with_subject = |e: SignInError| (e, Some(subject.clone()));
        let mut granted = grant_for(rules, &identity.memberships, case_insensitive);
        // No rule: a GitHub user a tenant's admin invited by login.
        if granted.is_none()
            && let Provider::Github = provider
            && let Some(login) = subject.strip_prefix("github:")
            && let Some(invited) = invitations::find(&self.storage, login)
                .await
                .map_err(|e| with_subject(e.into()))?
        {
            granted = Some((
                format!("the invitation of {subject}"),
                TenantGrant {
                    tenant: invited.tenant_id,
                    role: invited.role,
                },
            ));
        }
        let Some((rule, grant)) = granted else {
            let memberships = if identity.memberships.is_empty() {
                "your organisations, teams or groups (none were given)".to_owned()
            } else {
                identity.memberships.join(", ")
            };
            let setting = match provider {
                Provider::Github => {
                    format!("{setting} (or for a tenant's admin to invite {subject})")
                }
                Provider::Oidc(_) => setting,
            };
            return Err(with_subject(SignInError::NotMapped {
                subject: subject.clone(),
                memberships,
                setting,
            }));
        };
        let tenant = match self.storage.find_tenant(&grant.tenant).await {
            Ok(t) => t,
            Err(StorageError::NotFound(_)) => {
                return Err(with_subject(SignInError::NoSuchTenant {
                    rule,
                    tenant: grant.tenant,
                }));
            }
            Err(e) => return Err(with_subject(e.into())),
        };
        if !tenant.is_active() {
            return Err(with_subject(SignInError::TenantSuspended(tenant.name)));
        }
        let (token, _csrf) = session::create_session(
            &self.storage,
            &tenant.id,
            grant.role,
            provider.name(),
            &subject,
            self.session_ms,
        )
        .await
        .map_err(|e| with_subject(e.into()))?;
        let signed = session::sign(key, SESSION_COOKIE, &token);
        let finished = Finished {
            session_cookie: session::set_cookie(
                SESSION_COOKIE,
                &signed,
                "/",
                self.session_ms / 1000,
                self.secure_cookies(),
            ),
            clear_attempt: session::set_cookie(
                ATTEMPT_COOKIE,
                "",
                "/auth",
                0,
                self.secure_cookies(),
            ),
        };
        Ok((finished, subject, tenant.name, grant.role))
    }

    /// The live session behind a session cookie's value.
    pub async fn session(&self, cookie: &str) -> Result<SignedIn, SessionRefusal> {
        let key = self.key().await?;
        let token = session::verify(key, SESSION_COOKIE, cookie).ok_or(SessionRefusal::Tampered)?;
        let session = session::find_session(&self.storage, &token)
            .await?
            .ok_or(SessionRefusal::Ended)?;
        let tenant = match self.storage.find_tenant(&session.tenant_id).await {
            Ok(t) => t,
            Err(StorageError::NotFound(_)) => return Err(SessionRefusal::Ended),
            Err(e) => return Err(e.into()),
        };
        if !tenant.is_active() {
            // Suspension ends the tenant's sessions for good, not only while it lasts.
            session::end_tenant_sessions(&self.storage, &tenant.id).await?;
            return Err(SessionRefusal::Suspended(tenant.name));
        }
        Ok(SignedIn {
            session,
            tenant,
            token,
        })
    }

    /// Ends a session; returns the `Set-Cookie` that deletes the cookie.
    pub async fn sign_out(&self, signed_in: &SignedIn) -> Result<String, StorageError> {
        session::end_session(&self.storage, &signed_in.token).await?;
        record(
            &signed_in.session.provider,
            "signed_out",
            Some(&signed_in.session.subject),
            "signed out",
        );
        Ok(self.clear_session_cookie())
    }

    /// `Set-Cookie` deleting the session cookie.
    pub fn clear_session_cookie(&self) -> String {
        session::set_cookie(SESSION_COOKIE, "", "/", 0, self.secure_cookies())
    }
}
