-- How each request's node was chosen, and what the node reused of the prompt (cache-aware routing).
ALTER TABLE requests ADD COLUMN cached_tokens INTEGER;
ALTER TABLE requests ADD COLUMN policy TEXT;
ALTER TABLE requests ADD COLUMN route_reason TEXT;
ALTER TABLE requests ADD COLUMN candidates INTEGER;
ALTER TABLE requests ADD COLUMN attempts INTEGER;
ALTER TABLE requests ADD COLUMN predicted_cached_tokens INTEGER;
