-- Per-key limits (JSON; NULL = none) and the tokens each key spent per budget period
-- (`2026-12-03` for a daily budget, `2026-12` for a monthly one).
ALTER TABLE api_keys ADD COLUMN limits TEXT;
CREATE TABLE key_spend (
    key_id TEXT NOT NULL,
    period TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    PRIMARY KEY (key_id, period)
);
