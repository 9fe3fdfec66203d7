-- The operators' trail: every mutation of the registry or of the apps, by whom (the
-- CLI or the admin API) and when. Person events carry the masked ID number and its
-- keyed hash only, so that removing a person can unlink them like the check audit.

CREATE TABLE admin_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    -- 'cli' or 'admin-api'.
    actor        TEXT    NOT NULL,
    -- e.g. 'person.enrolled', 'app.created', 'app.disabled'.
    action       TEXT    NOT NULL,
    -- An app id, or a masked ID number.
    target       TEXT,
    target_hash  TEXT,
    request_id   TEXT,
    -- Free-form, never personal: counts, reasons.
    detail       TEXT
) STRICT;

CREATE INDEX admin_events_by_target_hash ON admin_events (target_hash);
