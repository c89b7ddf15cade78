-- Sign-in for people (docs/sign-in.md). Portable as 0001: TEXT ids made by
-- the service, BIGINT Unix milliseconds.

-- A signed-in person's session. The cookie holds a random token (signed);
-- only its SHA-256 is stored, so a copy of the database opens no session.
-- Deleting the row (sign-out) ends the session on every replica: each
-- request reads it.
CREATE TABLE signin_sessions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    role TEXT NOT NULL,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX signin_sessions_tenant ON signin_sessions (tenant_id);

-- A sign-in under way, from the login redirect to the callback, by the
-- SHA-256 of its `state`: claimed (deleted) once, so a replayed callback
-- finds nothing. Holds the PKCE verifier and the OIDC nonce.
CREATE TABLE signin_attempts (
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The key session cookies are signed with: made by the first replica to
-- start, then read by every other, so a cookie signed by one is valid on all.
CREATE TABLE signin_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- People a tenant's admin invited by their GitHub login, let in as that
-- tenant (and role) even when no organisation rule maps them. Logins are
-- stored lowercase: GitHub's compare without regard to case.
CREATE TABLE signin_invitations (
    provider TEXT NOT NULL,
    login TEXT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, login)
);
