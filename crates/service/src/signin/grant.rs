//! Who a signed-in person is, and which tenant and role the configuration
//! maps them to.

use super::config::{Role, TenantGrant};
use std::collections::BTreeMap;

/// A person as a provider vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `github`, or the OIDC provider's name.
    pub provider: String,
    /// Stable and readable: `github:octocat`, `oidc-name:subject`.
    pub subject: String,
    /// What the mapping looks at: `org` and `org/team` for GitHub, the
    /// claim's values for OIDC.
    pub memberships: Vec<String>,
}

/// What the callback hands a provider to exchange.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The authorization code from the callback.
    pub code: &'a str,
    /// The attempt's PKCE verifier.
    pub verifier: &'a str,
    /// The attempt's nonce (OIDC).
    pub nonce: &'a str,
    /// The redirect URI the provider was given.
    pub redirect_uri: &'a str,
}

/// The grant of the most specific matching rule: for GitHub a team's rule
/// over its organisation's; among equals, `admin` over `member`. `None` when
/// no rule matches (the person is refused).
pub fn grant_for(
    rules: &BTreeMap<String, TenantGrant>,
    memberships: &[String],
    case_insensitive: bool,
) -> Option<(String, TenantGrant)> {
    let same = |a: &str, b: &str| {
        if case_insensitive {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    rules
        .iter()
        .filter(|(rule, _)| memberships.iter().any(|m| same(m, rule)))
        .max_by_key(|(rule, grant)| (rule.contains('/'), grant.role == Role::Admin))
        .map(|(rule, grant)| (rule.clone(), grant.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> BTreeMap<String, TenantGrant> {
        let g = |tenant: &str, role| TenantGrant {
            tenant: tenant.into(),
            role,
        };
        [
            ("acme".to_owned(), g("acme", Role::Member)),
            ("acme/platform".to_owned(), g("acme", Role::Admin)),
            ("globex".to_owned(), g("globex", Role::Member)),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn a_team_rule_wins_over_its_organisation_and_no_rule_refuses() {
        let m = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (rule, grant) = grant_for(&rules(), &m(&["ACME", "acme/platform"]), true).unwrap();
        assert_eq!((rule.as_str(), grant.role), ("acme/platform", Role::Admin));
        let (_, grant) = grant_for(&rules(), &m(&["Acme"]), true).unwrap();
        assert_eq!(grant.role, Role::Member, "GitHub logins ignore case");
        assert!(
            grant_for(&rules(), &m(&["Acme"]), false).is_none(),
            "claims do not"
        );
        assert!(grant_for(&rules(), &m(&["initech", "initech/ops"]), true).is_none());
    }
}

/// Why a provider did not vouch for someone.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A URL built from the settings does not parse.
    #[error("{0}")]
    Config(String),
    /// The token endpoint refused the code.
    #[error(
        "{provider} refused the authorization code (already used, expired, or not issued for this sign-in): {detail}"
    )]
    CodeRefused {
        /// The provider.
        provider: String,
        /// What it said (no secrets: codes and tokens are never in it).
        detail: String,
    },
    /// It could not be reached, or answered what it should not.
    #[error("{provider} could not be reached or answered unexpectedly: {detail}")]
    Unavailable {
        /// The provider.
        provider: String,
        /// What went wrong.
        detail: String,
    },
    /// The ID token failed validation (signature, issuer, audience, expiry, nonce).
    #[error("the ID token from {provider} is not valid: {detail}")]
    InvalidIdToken {
        /// The provider.
        provider: String,
        /// What failed.
        detail: String,
    },
}
