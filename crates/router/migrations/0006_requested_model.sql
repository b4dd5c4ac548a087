-- The model name a request asked for, when an alias or a fallback had it served by another model
-- (the `model` column holds the model that served it).
ALTER TABLE requests ADD COLUMN requested_model TEXT;
