//! OpenID Connect for any provider: discovery from the issuer URL, the
//! authorization code flow with PKCE, and the ID token's signature, issuer,
//! audience, expiry and nonce checked by `openidconnect`. The claim the
//! configuration maps is read from that verified token.

use super::config::OidcProviderSettings;
use super::grant::{Exchange, Identity, ProviderError};
use base64::Engine as _;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a provider's discovered metadata (and signing keys) is reused:
/// a provider that rotates its keys is read again within this time.
const METADATA_TTL: Duration = Duration::from_secs(3600);

/// Discovered provider metadata by provider name.
#[derive(Default)]
pub struct Discovery {
    cache: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery").finish_non_exhaustive()
    }
}

fn unavailable(name: &str, detail: String) -> ProviderError {
    ProviderError::Unavailable {
        provider: name.to_owned(),
        detail,
    }
}

impl Discovery {
    /// The client for provider `name`, discovering its metadata when not
    /// cached (or cached for longer than an hour).
    async fn client(
        &self,
        name: &str,
        settings: &OidcProviderSettings,
        http: &reqwest::Client,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        ProviderError,
    > {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(name)
                .filter(|(at, _)| at.elapsed() < METADATA_TTL)
                .map(|(_, m)| m.clone())
        };
        let metadata = match cached {
            Some(m) => m,
            None => {
                let issuer = IssuerUrl::new(settings.issuer_url.clone()).map_err(|e| {
                    ProviderError::Config(format!("auth.oidc.{name}.issuer_url: {e}"))
                })?;
                let m = CoreProviderMetadata::discover_async(issuer, http)
                    .await
                    .map_err(|e| unavailable(name, format!("discovery failed: {e}")))?;
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name.to_owned(), (Instant::now(), m.clone()));
                m
            }
        };
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| ProviderError::Config(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(
                settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorize URL with a fresh state, nonce and PKCE
    /// challenge; returns the URL, the state, the PKCE verifier and the nonce.
    pub async fn authorize(
        &self,
        name: &str,
        settings: &OidcProviderSettings,
        http: &reqwest::Client,
        redirect_uri: &str,
    ) -> Result<(url::Url, String, String, String), ProviderError> {
        let client = self.client(name, settings, http, redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok((
            url,
            state.secret().clone(),
            verifier.secret().clone(),
            nonce.secret().clone(),
        ))
    }

    /// Exchanges `code`, validates the ID token (signature, issuer,
    /// audience, expiry, `nonce`) and reads the mapped claim from it.
    pub async fn identify(
        &self,
        name: &str,
        settings: &OidcProviderSettings,
        http: &reqwest::Client,
        exchange: Exchange<'_>,
    ) -> Result<Identity, ProviderError> {
        let client = self
            .client(name, settings, http, exchange.redirect_uri)
            .await?;
        let token = client
            .exchange_code(AuthorizationCode::new(exchange.code.to_owned()))
            .map_err(|e| unavailable(name, e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(exchange.verifier.to_owned()))
            .request_async(http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(_) => ProviderError::CodeRefused {
                    provider: name.to_owned(),
                    detail: e.to_string(),
                },
                other => unavailable(name, other.to_string()),
            })?;
        let invalid = |detail: String| ProviderError::InvalidIdToken {
            provider: name.to_owned(),
            detail,
        };
        let id_token = token
            .id_token()
            .ok_or_else(|| invalid("the token response has no id_token".into()))?;
        let claims = id_token
            .claims(
                &client.id_token_verifier(),
                &Nonce::new(exchange.nonce.to_owned()),
            )
            .map_err(|e| invalid(e.to_string()))?;
        let subject = claims.subject().as_str().to_owned();
        // The signature over this very token was checked above; its payload
        // is read again only for the claim the mapping names.
        let jwt = id_token.to_string();
        let payload = jwt
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
            .ok_or_else(|| invalid("the payload does not decode".into()))?;
        let memberships = match claim(&payload, &settings.claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Identity {
            provider: name.to_owned(),
            subject: format!("{name}:{subject}"),
            memberships,
        })
    }
}

/// The claim called `name`: a top-level one of that name (namespaced claims
/// such as `https://example.com/groups` contain dots), else the dotted path
/// into nested objects (Keycloak's `realm_access.roles`).
fn claim<'a>(payload: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    payload.get(name).or_else(|| {
        name.split('.')
            .try_fold(payload, |value, part| value.get(part))
    })
}

#[cfg(test)]
mod claim_tests {
    use super::claim;

    #[test]
    fn a_claim_is_found_by_its_name_or_its_dotted_path() {
        let payload = serde_json::json!({
            "groups": ["a"],
            "https://example.com/roles": ["b"],
            "realm_access": {"roles": ["c"]}
        });
        assert_eq!(claim(&payload, "groups"), Some(&serde_json::json!(["a"])));
        assert_eq!(
            claim(&payload, "https://example.com/roles"),
            Some(&serde_json::json!(["b"]))
        );
        assert_eq!(
            claim(&payload, "realm_access.roles"),
            Some(&serde_json::json!(["c"]))
        );
        assert_eq!(claim(&payload, "realm_access.missing"), None);
    }
}
