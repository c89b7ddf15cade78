-- Stored Responses (`POST /v1/responses` with `store`, the default): the
-- answer as sent, and the conversation in chat-message form up to and
-- including its output, which a later `previous_response_id` continues.

CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    conversation TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX responses_tenant ON responses (tenant_id, created_at);
