//! Sessions and sign-ins under way, as rows in the database, and the signed
//! cookies that carry their tokens. The database holds digests of tokens
//! only; the cookie holds the token, signed (HMAC-SHA256) with a key every
//! replica reads from the database.

use super::config::Role;
use crate::storage::{Storage, StorageError, now_ms};
use cookie::{Cookie, CookieJar, Key};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "harpoon_session";
/// The cookie binding a sign-in under way to the browser that began it.
pub const ATTEMPT_COOKIE: &str = "harpoon_signin";
/// How long a sign-in may take from the login redirect to the callback.
pub const ATTEMPT_TTL_MS: i64 = 10 * 60 * 1000;
/// Name of the cookie-signing key's row.
const KEY_NAME: &str = "session-cookies";

/// A fresh random token: 32 bytes, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a token, hex: what the database keeps instead of it.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A signed-in person's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The tenant they act as.
    pub tenant_id: String,
    /// What they may do there.
    pub role: Role,
    /// `github` or the OIDC provider's name.
    pub provider: String,
    /// Who they are at the provider, e.g. `github:octocat`.
    pub subject: String,
    /// What their cookie-authenticated writes must carry in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// A sign-in between the login redirect and the callback.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// `github` or the OIDC provider's name.
    pub provider: String,
    /// The PKCE verifier whose challenge went to the provider.
    pub pkce_verifier: String,
    /// The OIDC nonce (empty for GitHub).
    pub nonce: String,
    /// The redirect URI the provider was given (the exchange repeats it).
    pub redirect_uri: String,
}

/// The key cookies are signed with: made and stored by the first replica
/// that needs it; every later call (on any replica) reads the same one.
pub async fn signing_key(storage: &Storage) -> Result<Key, StorageError> {
    let mut fresh = [0u8; 64];
    rand::rng().fill_bytes(&mut fresh);
    // Two replicas starting together both insert; the database keeps one.
    sqlx::query(
        "INSERT INTO signin_keys (name, secret, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(KEY_NAME)
    .bind(hex::encode(fresh))
    .bind(now_ms())
    .execute(storage.pool())
    .await?;
    let secret: String = sqlx::query("SELECT secret FROM signin_keys WHERE name = $1")
        .bind(KEY_NAME)
        .fetch_one(storage.pool())
        .await?
        .try_get(0)?;
    let bytes = hex::decode(&secret).map_err(|e| {
        StorageError::Conflict(format!("the stored cookie-signing key is not hex: {e}"))
    })?;
    Key::try_from(bytes.as_slice()).map_err(|e| {
        StorageError::Conflict(format!("the stored cookie-signing key is unusable: {e}"))
    })
}

/// `value` signed for the cookie `name`, as the cookie's value. The MAC
/// covers the name too (the `cookie` crate signs the value alone), so one
/// cookie's value is not valid as another's.
pub fn sign(key: &Key, name: &str, value: &str) -> String {
    let mut jar = CookieJar::new();
    jar.signed_mut(key)
        .add(Cookie::new(name.to_owned(), format!("{name}.{value}")));
    jar.get(name)
        .map(|c| c.value().to_owned())
        .unwrap_or_default()
}

/// The value inside a signed cookie value, or `None` when its signature
/// does not hold (tampered with, signed with another key, or for another name).
pub fn verify(key: &Key, name: &str, signed: &str) -> Option<String> {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(name.to_owned(), signed.to_owned()));
    let value = jar.signed(key).get(name)?.value().to_owned();
    value
        .strip_prefix(name)
        .and_then(|v| v.strip_prefix('.'))
        .map(str::to_owned)
}

/// The value of cookie `name` among `Cookie` header values.
pub fn cookie_in<'a>(headers: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` when asked;
/// `max_age_secs` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// Records a sign-in under way by its `state`.
pub async fn begin_attempt(
    storage: &Storage,
    state: &str,
    attempt: &Attempt,
) -> Result<(), StorageError> {
    let now = now_ms();
    // Abandoned attempts go as new ones come.
    sqlx::query("DELETE FROM signin_attempts WHERE created_at < $1")
        .bind(now - ATTEMPT_TTL_MS)
        .execute(storage.pool())
        .await?;
    sqlx::query(
        "INSERT INTO signin_attempts (state_hash, provider, pkce_verifier, nonce, redirect_uri, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(digest(state))
    .bind(&attempt.provider)
    .bind(&attempt.pkce_verifier)
    .bind(&attempt.nonce)
    .bind(&attempt.redirect_uri)
    .bind(now)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Takes the attempt with this `state` out of the database: `None` when
/// there is none (never begun, expired, or already claimed by an earlier
/// callback: only one caller's delete counts, on any replica).
pub async fn claim_attempt(
    storage: &Storage,
    state: &str,
) -> Result<Option<Attempt>, StorageError> {
    let hash = digest(state);
    let Some(row) = sqlx::query(
        "SELECT provider, pkce_verifier, nonce, redirect_uri, created_at FROM signin_attempts \
         WHERE state_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(storage.pool())
    .await?
    else {
        return Ok(None);
    };
    let deleted = sqlx::query("DELETE FROM signin_attempts WHERE state_hash = $1")
        .bind(&hash)
        .execute(storage.pool())
        .await?;
    let created_at: i64 = row.try_get("created_at")?;
    if deleted.rows_affected() != 1 || created_at < now_ms() - ATTEMPT_TTL_MS {
        return Ok(None);
    }
    Ok(Some(Attempt {
        provider: row.try_get("provider")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        nonce: row.try_get("nonce")?,
        redirect_uri: row.try_get("redirect_uri")?,
    }))
}

/// Opens a session; returns its token (for the cookie) and its CSRF token.
pub async fn create_session(
    storage: &Storage,
    tenant_id: &str,
    role: Role,
    provider: &str,
    subject: &str,
    lifetime_ms: i64,
) -> Result<(String, String), StorageError> {
    let now = now_ms();
    sqlx::query("DELETE FROM signin_sessions WHERE expires_at < $1")
        .bind(now)
        .execute(storage.pool())
        .await?;
    let (token, csrf) = (random_token(), random_token());
    sqlx::query(
        "INSERT INTO signin_sessions (id, tenant_id, role, provider, subject, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(digest(&token))
    .bind(tenant_id)
    .bind(role.as_str())
    .bind(provider)
    .bind(subject)
    .bind(&csrf)
    .bind(now)
    .bind(now + lifetime_ms)
    .execute(storage.pool())
    .await?;
    Ok((token, csrf))
}

/// The live session behind `token`; `None` when signed out or expired.
pub async fn find_session(storage: &Storage, token: &str) -> Result<Option<Session>, StorageError> {
    let row = sqlx::query(
        "SELECT tenant_id, role, provider, subject, csrf_token, expires_at FROM signin_sessions \
         WHERE id = $1 AND expires_at > $2",
    )
    .bind(digest(token))
    .bind(now_ms())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let role: String = row.try_get("role")?;
    Ok(Some(Session {
        tenant_id: row.try_get("tenant_id")?,
        role: Role::parse(&role),
        provider: row.try_get("provider")?,
        subject: row.try_get("subject")?,
        csrf_token: row.try_get("csrf_token")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Ends the session behind `token` (sign-out); whether there was one.
pub async fn end_session(storage: &Storage, token: &str) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM signin_sessions WHERE id = $1")
        .bind(digest(token))
        .execute(storage.pool())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of a tenant (it was suspended).
pub async fn end_tenant_sessions(storage: &Storage, tenant_id: &str) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM signin_sessions WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(storage.pool())
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_value_verifies_and_any_change_does_not() {
        let key = Key::generate();
        let signed = sign(&key, SESSION_COOKIE, "abc");
        assert_eq!(
            verify(&key, SESSION_COOKIE, &signed).as_deref(),
            Some("abc")
        );
        let tampered = format!("{}d", &signed[..signed.len() - 1]);
        assert_eq!(verify(&key, SESSION_COOKIE, &tampered), None);
        assert_eq!(verify(&Key::generate(), SESSION_COOKIE, &signed), None);
        assert_eq!(
            verify(&key, ATTEMPT_COOKIE, &signed),
            None,
            "bound to the name"
        );
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let headers = ["a=1; harpoon_session_x=2", "harpoon_session=3"];
        assert_eq!(cookie_in(headers.into_iter(), SESSION_COOKIE), Some("3"));
        assert_eq!(cookie_in(["a=1"].into_iter(), SESSION_COOKIE), None);
    }
}
