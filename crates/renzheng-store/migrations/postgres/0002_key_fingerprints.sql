-- Fingerprints of the keys the data was written under (HMAC of a fixed label, never the
-- key): a node started with other keys refuses to start instead of writing data the
-- other nodes cannot read (or pseudonyms that do not correlate).
CREATE TABLE key_fingerprints (
    name        TEXT   PRIMARY KEY,
    fingerprint TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
