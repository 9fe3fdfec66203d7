-- The console's one-time messages (issue 24): a form that succeeded redirects to its page
-- (Post/Redirect/Get) and the page shows what the form did once, from here. A message
-- can hold a one-time secret (a new AppCode), so it is sealed under the secrets key,
-- bound to its session and its id, read once (deleted as it is read) and gone after a
-- few minutes whatever happens.
CREATE TABLE console_flashes (
    -- SHA-256 of the random id in the redirect's URL.
    id_hash       TEXT    PRIMARY KEY,
    -- SHA-256 of the session token: only the session that posted the form reads it.
    session_hash  TEXT    NOT NULL,
    sealed        BLOB    NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX console_flashes_by_expiry ON console_flashes (expires_at);

-- AppCodes issued from this release on are kept sealed under the secrets key (bound to
-- the code's hash), so an owner or admin can see an app's code again, as an Alibaba
-- customer finds theirs on the console at any time; every reveal is an event. Codes
-- issued before stay hashes only (NULL here): resetting one makes it viewable.
ALTER TABLE apps ADD COLUMN code_sealed BLOB;

-- The console's call search by taskNo (the request id a caller was answered with).
CREATE INDEX audit_by_request ON audit (request_id);
