-- Portable across SQLite and PostgreSQL: TEXT ids made by the service,
-- BIGINT Unix milliseconds for times, no vendor types or defaults.

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE quotas (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    requests_per_minute BIGINT,
    max_concurrent BIGINT,
    tokens_per_day BIGINT
);

CREATE TABLE usage_ledger (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    route TEXT NOT NULL,
    model TEXT NOT NULL,
    tier TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    status BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, created_at);
