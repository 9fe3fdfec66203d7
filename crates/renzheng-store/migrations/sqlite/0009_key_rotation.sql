-- Key rotation (issue 21). Each key's record keeps, besides the current fingerprint, the
-- previous key's while a rotation has not been retired: rows may still be sealed under
-- it, and nodes need it to read them. A retired key is listed for good, so that a node
-- given only that key refuses to start instead of failing every request.
ALTER TABLE key_fingerprints ADD COLUMN previous TEXT;

CREATE TABLE retired_keys (
    name        TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    retired_at  INTEGER NOT NULL,
    PRIMARY KEY (name, fingerprint)
) STRICT;

-- The audit key's fingerprint is no longer stored: an HMAC of a short, guessable key (the
-- releases before this one took any 16 characters) let whoever holds a copy of the
-- database search for the key offline. Nodes now compare the audit key only when it is
-- 32 random bytes (see keys::audit_key).
DELETE FROM key_fingerprints WHERE name = 'audit';
