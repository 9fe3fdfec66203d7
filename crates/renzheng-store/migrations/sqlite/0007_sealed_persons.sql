-- The registry without identities in clear: a person's row is keyed by a keyed hash of
-- the ID number (hex HMAC-SHA256 under a key derived from the template key), and the ID
-- number and name are kept only sealed (XChaCha20-Poly1305, authenticated with the row's
-- key). `name` stays for the schema but holds ''. Rows of older releases are converted
-- when the store opens (portraits follow their person's new key).
ALTER TABLE persons ADD COLUMN sealed BLOB;
-- The store looks for clear rows every time it opens: through this (normally empty)
-- partial index, not a scan of every person.
CREATE INDEX persons_clear ON persons (id_number) WHERE sealed IS NULL;
