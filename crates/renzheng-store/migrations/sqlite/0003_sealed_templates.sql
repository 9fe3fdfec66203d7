-- Face templates are sealed with the template key (see embedding.rs). Rows written
-- before this migration hold clear embeddings (sealed = 0) until the store, opened with
-- its key, seals them.
ALTER TABLE portraits ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1));
-- The store looks for clear templates every time it opens: through this (normally empty)
-- partial index, not a scan of every portrait.
CREATE INDEX portraits_clear ON portraits (id) WHERE sealed = 0;
