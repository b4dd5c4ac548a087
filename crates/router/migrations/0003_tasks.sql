-- Download tasks (model distribution): who ordered what and why, and how fast it went.
ALTER TABLE download_tasks ADD COLUMN node_name TEXT;
ALTER TABLE download_tasks ADD COLUMN reason TEXT;
ALTER TABLE download_tasks ADD COLUMN bytes_per_sec INTEGER NOT NULL DEFAULT 0;
CREATE INDEX download_tasks_created ON download_tasks (created_ms);
