-- Grant revocation and adjustment (issue 24). A revoked grant keeps its row (what was
-- granted and charged stays visible) but lends no more units: `revoked_at` is when its
-- unused calls were taken back. The ledger learns two kinds: `adjust` (a grant's calls
-- changed by `calls`, positive or negative) and `revoke` (its unused calls taken back,
-- `calls` negative).
ALTER TABLE grants ADD COLUMN revoked_at INTEGER;

-- SQLite cannot alter a CHECK constraint: the ledger is rebuilt with the wider one, its
-- rows copied unchanged (ids included), and its append-only triggers put back. Nothing
-- references the ledger, and the copy runs inside this migration's transaction.
DROP TRIGGER ledger_no_update;
DROP TRIGGER ledger_no_delete;

CREATE TABLE ledger_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    app_id      TEXT    NOT NULL,
    grant_id    INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('grant', 'charge', 'adjust', 'revoke')),
    calls       INTEGER NOT NULL,
    request_id  TEXT
) STRICT;

INSERT INTO ledger_v2 (id, at, app_id, grant_id, kind, calls, request_id)
    SELECT id, at, app_id, grant_id, kind, calls, request_id FROM ledger;

DROP TABLE ledger;
ALTER TABLE ledger_v2 RENAME TO ledger;

CREATE INDEX ledger_by_app ON ledger (app_id, kind, at);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
