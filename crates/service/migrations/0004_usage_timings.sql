-- Per-request timings in the usage ledger, for the dashboard's percentiles
-- over a chosen window (Prometheus histograms cannot be cut to a window per
-- tenant): time to the first token and generated tokens per second, as the
-- engine measured them. NULL for rows written before this migration and for
-- requests that generated nothing (refused, failed, embeddings).

ALTER TABLE usage_ledger ADD COLUMN ttft_ms DOUBLE PRECISION;
ALTER TABLE usage_ledger ADD COLUMN tokens_per_second DOUBLE PRECISION;

-- The admin's view spans every tenant: a window of it is a range on time alone.
CREATE INDEX usage_ledger_time ON usage_ledger (created_at);
