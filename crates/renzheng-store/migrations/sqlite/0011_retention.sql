-- Compliance, second part (issue 23): retention for the registry and the processing
-- records the law asks to keep.

-- The last time a check compared a caller's photo with this person's portraits (written
-- at most once a day per person): `registry.inactive_days` purges persons not checked for
-- that long, and the audit, which is shorter-lived, cannot tell.
ALTER TABLE persons ADD COLUMN last_checked_at INTEGER;

-- Who enrolled, changed, checked or deleted which person's face, when, under which
-- basis: masked and keyed, never clear. Kept `compliance.records_retention_days` (three
-- years by default), independently of the audit's retention, and kept when the person is
-- deleted: it is the record of the processing the law requires, not data about the face.
CREATE TABLE processing_records (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    -- enrolled, portraits-added, renamed, replaced, basis-recorded, checked, removed, purged.
    action         TEXT    NOT NULL,
    -- The masked ID number and its keyed hash under the audit key.
    person_masked  TEXT    NOT NULL,
    person_hash    TEXT    NOT NULL,
    -- cli, admin-api, console:<operator>, service, or app:<id> for a check.
    actor          TEXT    NOT NULL,
    -- consent, law or contract; NULL when none was on record.
    basis          TEXT,
    -- A check's result code.
    result         INTEGER
) STRICT;

CREATE INDEX processing_records_by_time ON processing_records (at);
CREATE INDEX processing_records_by_person ON processing_records (person_hash);
