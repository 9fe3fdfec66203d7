-- Initial schema. Timestamps are unix milliseconds (INTEGER) so that the
-- PostgreSQL schema can use BIGINT and both backends round-trip the same
-- values. STRICT makes SQLite enforce the declared column types.

CREATE TABLE apps (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    -- SHA-256 (hex) of the AppCode; the code itself is never stored.
    code_hash   TEXT    NOT NULL UNIQUE,
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE persons (
    -- Canonical 18-character resident ID number.
    id_number   TEXT    PRIMARY KEY,
    -- Normalised name (see renzheng_domain::PersonName).
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE portraits (
    -- AUTOINCREMENT so that a deleted portrait's id is never reused.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    id_number   TEXT    NOT NULL REFERENCES persons (id_number) ON DELETE CASCADE,
    model_id    TEXT    NOT NULL,
    -- Little-endian f32 values.
    embedding   BLOB    NOT NULL,
    quality     TEXT,
    -- Already encrypted by the caller when present.
    photo       BLOB,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX portraits_by_person ON portraits (id_number);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    request_id  TEXT    NOT NULL,
    -- No foreign key: the audit trail must outlive the app it mentions.
    app_id      TEXT,
    name_masked TEXT,
    id_masked   TEXT,
    id_hash     TEXT,
    result      INTEGER,
    score       REAL,
    http_status INTEGER NOT NULL,
    latency_ms  INTEGER NOT NULL,
    error_code  TEXT
) STRICT;

CREATE INDEX audit_by_time ON audit (at);
CREATE INDEX audit_by_id_hash ON audit (id_hash);
