//! Pull requests through GitHub's REST API (`/repos/{owner}/{repo}/pulls`).

use crate::error::BridgeError;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// A pull request as GitHub describes it (the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    /// Its number in the repository.
    pub number: i64,
    /// The page people open.
    pub html_url: String,
    /// `open` or `closed`.
    pub state: String,
    /// Set once merged.
    #[serde(default)]
    pub merged_at: Option<String>,
}

impl PullRequest {
    /// `open`, `closed` or `merged`.
    pub fn effective_state(&self) -> &str {
        if self.merged_at.is_some() {
            "merged"
        } else {
            &self.state
        }
    }
}

/// A GitHub (or GitHub Enterprise) API client.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// `owner/name` when `url` is a github.com remote (https or ssh).
pub fn github_repo_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://github.com/")
        .or_else(|| url.strip_prefix("http://github.com/"))
        .or_else(|| url.strip_prefix("git@github.com:"))
        .or_else(|| url.strip_prefix("ssh://git@github.com/"))?;
    let rest = rest.trim_end_matches('/').trim_end_matches(".git");
    let mut parts = rest.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    (parts.next().is_none() && !owner.is_empty() && !name.is_empty())
        .then(|| format!("{owner}/{name}"))
}

impl GitHub {
    /// A client for `base` (e.g. `https://api.github.com`) with an optional token.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, BridgeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent("harpoon-bridge")
            .build()
            .map_err(|e| BridgeError::Upstream(format!("http client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, BridgeError> {
        let token = self.token.as_deref().ok_or_else(|| {
            BridgeError::Upstream(
                "GITHUB_TOKEN is not set, so no pull request can be opened".into(),
            )
        })?;
        Ok(self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28"))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, BridgeError> {
        let resp = req
            .send()
            .await
            .map_err(|e| BridgeError::Upstream(format!("GitHub {what}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| BridgeError::Upstream(format!("GitHub {what}: {e}")))?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(300).collect());
            return Err(BridgeError::Upstream(format!(
                "GitHub {what}: {status}: {message}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| BridgeError::Upstream(format!("GitHub {what}: unexpected answer: {e}")))
    }

    /// Opens a pull request from `head` into `base`.
    pub async fn create_pr(
        &self,
        repo: &str,
        head: &str,
        base: &str,
        title: &str,
        body: &str,
    ) -> Result<PullRequest, BridgeError> {
        let req = self
            .request(reqwest::Method::POST, &format!("/repos/{repo}/pulls"))?
            .json(&json!({"title": title, "head": head, "base": base, "body": body}));
        self.send(req, "create pull request").await
    }

    /// The pull request (any state) whose head is `owner:branch`, if one exists.
    pub async fn find_pr(
        &self,
        repo: &str,
        branch: &str,
    ) -> Result<Option<PullRequest>, BridgeError> {
        let owner = repo.split('/').next().unwrap_or(repo);
        let req = self
            .request(reqwest::Method::GET, &format!("/repos/{repo}/pulls"))?
            .query(&[
                ("head", format!("{owner}:{branch}")),
                ("state", "all".into()),
            ]);
        let found: Vec<PullRequest> = self.send(req, "list pull requests").await?;
        Ok(found.into_iter().next())
    }

    /// Replaces a pull request's body.
    pub async fn update_body(
        &self,
        repo: &str,
        number: i64,
        body: &str,
    ) -> Result<PullRequest, BridgeError> {
        let req = self
            .request(
                reqwest::Method::PATCH,
                &format!("/repos/{repo}/pulls/{number}"),
            )?
            .json(&json!({"body": body}));
        self.send(req, "update pull request").await
    }

    /// A pull request by number.
    pub async fn get_pr(&self, repo: &str, number: i64) -> Result<PullRequest, BridgeError> {
        let req = self.request(
            reqwest::Method::GET,
            &format!("/repos/{repo}/pulls/{number}"),
        )?;
        self.send(req, "get pull request").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_remotes_are_recognised() {
        assert_eq!(
            github_repo_of("https://github.com/acme/api.git").as_deref(),
            Some("acme/api")
        );
        assert_eq!(
            github_repo_of("git@github.com:acme/api.git").as_deref(),
            Some("acme/api")
        );
        assert_eq!(github_repo_of("https://gitlab.com/acme/api"), None);
        assert_eq!(github_repo_of("file:///tmp/api.git"), None);
    }
}
