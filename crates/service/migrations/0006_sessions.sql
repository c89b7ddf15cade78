
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
