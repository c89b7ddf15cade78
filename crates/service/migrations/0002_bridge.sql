-- Covenants, registered repositories, declared cables, harmony reviews and
-- strikes (crate harpoon_bridge). Portable like 0001: TEXT ids, BIGINT Unix
-- milliseconds, JSON kept as TEXT.

CREATE TABLE covenants (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX covenants_tenant_time ON covenants (tenant_id, created_at);

CREATE TABLE bridge_repos (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    github_repo TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE declared_cables (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    from_repo TEXT NOT NULL,
    to_repo TEXT NOT NULL,
    strength DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, from_repo, to_repo)
);

CREATE TABLE harmony_reviews (
    covenant_id TEXT PRIMARY KEY REFERENCES covenants (id),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE strikes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    covenant_id TEXT NOT NULL,
    state TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX strikes_state ON strikes (state);

CREATE TABLE strike_repos (
    strike_id TEXT NOT NULL REFERENCES strikes (id),
    repo TEXT NOT NULL,
    position BIGINT NOT NULL,
    role TEXT NOT NULL,
    phase TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT,
    pr_url TEXT,
    pr_number BIGINT,
    pr_state TEXT,
    error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (strike_id, repo)
);
