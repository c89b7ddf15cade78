-- What replicas on one database coordinate through (issue 22; docs/scale-out.md).
-- Portable like 0001: TEXT ids, BIGINT Unix milliseconds. SQLite runs one
-- replica, so there these tables stay empty.

-- Named leases: `replica:<id>` is each replica's heartbeat; `hosted_ai:<team>`
-- is held by the one replica running that team's pool manager. A lease is
-- taken over only after `expires_at` (the database's clock) has passed.
CREATE TABLE cluster_leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Endpoints the owner serves, one per team and model: every replica sends
-- requests there. `last_used_at` is bumped by any replica using it, so the
-- owner's idle release counts the whole cluster's use.
CREATE TABLE hosted_ai_endpoints (
    team_id TEXT NOT NULL,
    model TEXT NOT NULL,
    pool_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    service_id TEXT,
    vgpus BIGINT NOT NULL,
    hourly_cost DOUBLE PRECISION NOT NULL,
    endpoint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, model)
);

-- A replica's request for capacity it found no endpoint for (or found
-- failing): the owner answers by publishing an endpoint (and deleting the
-- row) or by setting `error`.
CREATE TABLE hosted_ai_requests (
    team_id TEXT NOT NULL,
    model TEXT NOT NULL,
    vgpus BIGINT NOT NULL,
    failed_subscription TEXT,
    error TEXT,
    requested_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, model)
);

-- vGPU-seconds held and their estimated cost, per team, model and pool, as
-- the owners of the time metered them (survives a change of owner).
CREATE TABLE hosted_ai_usage (
    team_id TEXT NOT NULL,
    model TEXT NOT NULL,
    pool_id TEXT NOT NULL,
    vgpu_seconds DOUBLE PRECISION NOT NULL,
    estimated_cost DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, model, pool_id)
);

-- A running strike's owner (replica id) and its lease, renewed while it
-- runs; only a strike whose lease expired is marked interrupted. A cancel
-- through any replica sets `cancel_requested_at`, which the owner polls.
ALTER TABLE strikes ADD COLUMN owner TEXT;
ALTER TABLE strikes ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE strikes ADD COLUMN cancel_requested_at BIGINT;
