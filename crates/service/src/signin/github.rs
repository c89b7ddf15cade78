//! GitHub's OAuth web application flow (with PKCE) and the REST calls that
//! say who the person is: `/user`, `/user/orgs`, `/user/teams`. The access
//! token is used for those three calls and then dropped: never stored.

use super::config::GithubSettings;
use super::grant::{Exchange, Identity, ProviderError};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use serde::Deserialize;

/// The provider's name in sessions, metrics and logs.
pub const PROVIDER: &str = "github";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(settings: &GithubSettings, redirect_uri: &str) -> Result<Client, ProviderError> {
    let web = settings.web_url.trim_end_matches('/');
    let config =
        |e: url::ParseError| ProviderError::Config(format!("a GitHub URL does not parse: {e}"));
    let mut client = BasicClient::new(ClientId::new(
        settings.client_id.clone().unwrap_or_default(),
    ))
    .set_auth_uri(AuthUrl::new(format!("{web}/login/oauth/authorize")).map_err(config)?)
    .set_token_uri(TokenUrl::new(format!("{web}/login/oauth/access_token")).map_err(config)?)
    .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(config)?)
    // GitHub's documented token request carries the client's id and secret
    // as form parameters, not HTTP Basic.
    .set_auth_type(AuthType::RequestBody);
    if let Some(secret) = &settings.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
    }
    Ok(client)
}

/// Where to send the browser: GitHub's authorize page with a fresh `state`
/// and PKCE challenge. Returns the URL, the state and the PKCE verifier.
pub fn authorize(
    settings: &GithubSettings,
    redirect_uri: &str,
) -> Result<(url::Url, String, String), ProviderError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client(settings, redirect_uri)?
        .authorize_url(CsrfToken::new_random)
        // Private organisation memberships and teams need `read:org`.
        .add_scope(Scope::new("read:org".into()))
        .set_pkce_challenge(challenge)
        .url();
    Ok((url, state.secret().clone(), verifier.secret().clone()))
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

/// Exchanges `code` (with the attempt's PKCE verifier) and reads who the
/// person is and which organisations and teams they belong to.
pub async fn identify(
    settings: &GithubSettings,
    http: &reqwest::Client,
    exchange: Exchange<'_>,
) -> Result<Identity, ProviderError> {
    let token = client(settings, exchange.redirect_uri)?
        .exchange_code(AuthorizationCode::new(exchange.code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(exchange.verifier.to_owned()))
        .request_async(http)
        .await
        .map_err(|e| match e {
            // GitHub answers a spent or foreign code with 200 and an
            // `error` body, which is not a token response.
            RequestTokenError::ServerResponse(_) | RequestTokenError::Parse(..) => {
                ProviderError::CodeRefused {
                    provider: PROVIDER.into(),
                    detail: e.to_string(),
                }
            }
            other => unavailable(other.to_string()),
        })?;
    let token = token.access_token().secret();
    let api = settings.api_url.trim_end_matches('/');
    let user: User = get(http, token, &format!("{api}/user")).await?;
    let orgs: Vec<Org> = get(http, token, &format!("{api}/user/orgs?per_page=100")).await?;
    let teams: Vec<Team> = get(http, token, &format!("{api}/user/teams?per_page=100")).await?;
    let mut memberships: Vec<String> = orgs.into_iter().map(|o| o.login).collect();
    memberships.extend(
        teams
            .into_iter()
            .map(|t| format!("{}/{}", t.organization.login, t.slug)),
    );
    Ok(Identity {
        provider: PROVIDER.into(),
        subject: format!("{PROVIDER}:{}", user.login),
        memberships,
    })
}

fn unavailable(detail: String) -> ProviderError {
    ProviderError::Unavailable {
        provider: PROVIDER.into(),
        detail,
    }
}

async fn get<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    token: &str,
    url: &str,
) -> Result<T, ProviderError> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(unavailable(format!("GET {url}: {status}")));
    }
    response
        .json()
        .await
        .map_err(|e| unavailable(format!("GET {url}: {e}")))
}
