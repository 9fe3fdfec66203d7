-- Registry integrity (issue 19).
--
-- Every change to the registry's templates bumps one version, in the transaction that
-- makes it, and logs which portraits it added or removed under that version:
--
-- * an enrolment checked against the registry as of version V (duplicate faces, the
--   person's own portraits) is written only while the version is still V, so two
--   enrolments cannot both pass their checks against a registry that no longer holds;
-- * every node keeps an in-memory index of the templates and brings it up to date by
--   reading the log after the version it holds.
CREATE TABLE registry_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
) STRICT;
INSERT INTO registry_state (id, version) VALUES (1, 0);

CREATE TABLE registry_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    version      INTEGER NOT NULL,
    change       TEXT    NOT NULL CHECK (change IN ('added', 'removed')),
    portrait_id  INTEGER NOT NULL
) STRICT;
CREATE INDEX registry_log_by_version ON registry_log (version);

-- Why an operator did what the registry refuses by default (a rename, a replacement of
-- portraits, a face allowed under a second ID number): their own words.
ALTER TABLE admin_events ADD COLUMN reason TEXT;

-- The console finds a person by exact name through a keyed hash of the normalised name
-- (the name itself stays sealed); filled when a person is written, and for the rows of
-- older releases when the store opens.
ALTER TABLE persons ADD COLUMN name_hash TEXT;
CREATE INDEX persons_by_name_hash ON persons (name_hash);

-- A duplicate-face scan in progress, per model: how far it came (the last portrait id
-- searched) and what it found so far (person handles, portrait ids and scores: no
-- identity), so that an interrupted scan resumes instead of starting over.
CREATE TABLE duplicate_scans (
    model_id       TEXT    PRIMARY KEY,
    started_at     INTEGER NOT NULL,
    line_distance  REAL    NOT NULL,
    cursor         INTEGER NOT NULL,
    findings       TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
