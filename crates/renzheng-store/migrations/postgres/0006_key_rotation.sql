-- Key rotation (issue 21): see the SQLite migration 0009 for the why of each change.
ALTER TABLE key_fingerprints ADD COLUMN previous TEXT;

CREATE TABLE retired_keys (
    name        TEXT   NOT NULL,
    fingerprint TEXT   NOT NULL,
    retired_at  BIGINT NOT NULL,
    PRIMARY KEY (name, fingerprint)
);

DELETE FROM key_fingerprints WHERE name = 'audit';
