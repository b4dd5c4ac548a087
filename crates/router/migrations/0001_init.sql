-- Fleet state and request history of llm-router.

CREATE TABLE nodes (
    id              TEXT PRIMARY KEY,
    machine_name    TEXT NOT NULL UNIQUE,
    base_url        TEXT NOT NULL,
    runtime_kind    TEXT NOT NULL,
    runtime_version TEXT,
    node_version    TEXT NOT NULL,
    hardware        TEXT NOT NULL, -- JSON: cpu cores, memory, GPU devices
    models          TEXT NOT NULL, -- JSON: models and their states as last reported
    status          TEXT NOT NULL,
    first_seen_ms   INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL
);

CREATE TABLE health_metrics (
    node_id           TEXT NOT NULL,
    at_ms             INTEGER NOT NULL,
    cpu_percent       REAL NOT NULL,
    memory_percent    REAL NOT NULL,
    memory_used_bytes INTEGER NOT NULL,
    gpu_percent       REAL,
    gpu_memory_percent REAL,
    active_requests   INTEGER NOT NULL,
    avg_response_ms   REAL,
    PRIMARY KEY (node_id, at_ms)
) WITHOUT ROWID;
CREATE INDEX health_metrics_at ON health_metrics (at_ms);

CREATE TABLE requests (
    id                TEXT PRIMARY KEY,
    at_ms             INTEGER NOT NULL,
    api               TEXT NOT NULL,     -- openai | ollama
    endpoint          TEXT NOT NULL,
    model             TEXT NOT NULL,
    node_id           TEXT,
    node_name         TEXT,
    status            INTEGER NOT NULL,
    latency_ms        REAL NOT NULL,
    ttfb_ms           REAL,
    queue_ms          REAL NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    streamed          INTEGER NOT NULL,
    error             TEXT,
    client            TEXT,
    request_body      TEXT,             -- only with store_bodies, truncated
    response_body     TEXT
);
CREATE INDEX requests_at ON requests (at_ms);
CREATE INDEX requests_model_at ON requests (model, at_ms);
CREATE INDEX requests_node_at ON requests (node_name, at_ms);

CREATE TABLE download_tasks (
    id           TEXT PRIMARY KEY,
    node_id      TEXT NOT NULL,
    model        TEXT NOT NULL,
    status       TEXT NOT NULL,
    bytes_done   INTEGER NOT NULL DEFAULT 0,
    bytes_total  INTEGER,
    error        TEXT,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);
