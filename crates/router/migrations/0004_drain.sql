-- An admin drained the node (no new requests until resumed); kept across router restarts.
ALTER TABLE nodes ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
