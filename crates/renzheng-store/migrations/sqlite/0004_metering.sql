-- Call packages and metering: the catalogue, what each app bought (grants), the units
-- held by checks in flight (reservations), the append-only ledger, and the per-app and
-- per-ID limits, nonces and alerts that must hold across nodes. Timestamps are unix
-- milliseconds, as everywhere.

-- AppKey/AppSecret signatures, AppCode rotation with a grace period, per-app policy.
ALTER TABLE apps ADD COLUMN app_key TEXT;
-- The AppSecret sealed with the secrets master key (XChaCha20-Poly1305, bound to app_key).
ALTER TABLE apps ADD COLUMN secret_sealed BLOB;
ALTER TABLE apps ADD COLUMN previous_code_hash TEXT;
ALTER TABLE apps ADD COLUMN previous_code_until INTEGER;
-- Requests per second and burst; NULL = no rate limit.
ALTER TABLE apps ADD COLUMN rate_per_sec REAL CHECK (rate_per_sec IS NULL OR rate_per_sec > 0);
ALTER TABLE apps ADD COLUMN rate_burst INTEGER CHECK (rate_burst IS NULL OR rate_burst > 0);
-- Alert when the remaining calls fall to this percentage of what is bought.
ALTER TABLE apps ADD COLUMN alert_percent INTEGER NOT NULL DEFAULT 20
    CHECK (alert_percent BETWEEN 0 AND 100);
ALTER TABLE apps ADD COLUMN webhook_url TEXT;
CREATE UNIQUE INDEX apps_by_key ON apps (app_key) WHERE app_key IS NOT NULL;
CREATE INDEX apps_by_previous_code ON apps (previous_code_hash) WHERE previous_code_hash IS NOT NULL;

CREATE TABLE packages (
    -- A short stable id, e.g. 'c1000'.
    name        TEXT    PRIMARY KEY,
    title       TEXT    NOT NULL,
    calls       INTEGER NOT NULL CHECK (calls > 0),
    -- 分 (0.01 元).
    price_fen   INTEGER NOT NULL CHECK (price_fen >= 0),
    -- NULL = the calls never expire.
    valid_days  INTEGER CHECK (valid_days IS NULL OR valid_days > 0),
    -- Retired packages stay for the grants that name them but cannot be granted.
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
) STRICT;

-- The product's own price list (../shared/reference); operators edit it.
INSERT INTO packages (name, title, calls, price_fen, valid_days) VALUES
    ('trial',   '免费试用',       20,     200,     30),
    ('test',    '测试套餐',       20,     200,     30),
    ('c100',    '17元/100次',     100,    1700,    365),
    ('c1000',   '165元/1000次',   1000,   16500,   365),
    ('c5000',   '820元/5000次',   5000,   82000,   365),
    ('c10000',  '1600元/1万次',   10000,  160000,  365),
    ('c30000',  '4500元/3万次',   30000,  450000,  365),
    ('c50000',  '7200元/5万次',   50000,  720000,  365),
    ('c100000', '1.4万元/10万次', 100000, 1400000, 365);

-- One purchase: `calls` units, of which `used` are charged and `reserved` are held by
-- checks in flight. The CHECK is the no-overdraft rule, enforced by the database.
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT    NOT NULL REFERENCES apps (id),
    package     TEXT,
    calls       INTEGER NOT NULL CHECK (calls > 0),
    used        INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
    reserved    INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    CHECK (used + reserved <= calls)
) STRICT;

CREATE INDEX grants_by_app ON grants (app_id, expires_at);

-- A unit held by a check in flight. A node that dies leaves its reservations behind;
-- they expire and are given back (reclaimed), so no unit is held forever.
CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id    INTEGER NOT NULL REFERENCES grants (id),
    app_id      TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX reservations_by_expiry ON reservations (expires_at);

-- Append-only: every grant (+calls) and every charge (1 unit, with the request id of
-- the 2xx check it paid for, whose audit row says charged = 1).
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    app_id      TEXT    NOT NULL,
    grant_id    INTEGER NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('grant', 'charge')),
    calls       INTEGER NOT NULL,
    request_id  TEXT
) STRICT;

CREATE INDEX ledger_by_app ON ledger (app_id, kind, at);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Whether the check was charged (written in the same transaction as its ledger row).
ALTER TABLE audit ADD COLUMN charged INTEGER NOT NULL DEFAULT 0 CHECK (charged IN (0, 1));
CREATE INDEX audit_by_app ON audit (app_id, at);

-- The per-app rate limit (GCRA): the theoretical arrival time of the next request.
CREATE TABLE rate_limits (
    app_id      TEXT    PRIMARY KEY,
    tat         INTEGER NOT NULL
) STRICT;

-- Per-ID-number attempt counters in fixed windows ('m' minute, 'd' day), keyed by the
-- ID's keyed hash (never the number).
CREATE TABLE id_attempts (
    app_id       TEXT    NOT NULL,
    id_hash      TEXT    NOT NULL,
    window_kind  TEXT    NOT NULL CHECK (window_kind IN ('m', 'd')),
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (app_id, id_hash, window_kind, window_start)
) STRICT;

CREATE INDEX id_attempts_by_window ON id_attempts (window_start);

-- Signature nonces, each usable once while its timestamp window lasts.
CREATE TABLE nonces (
    app_id      TEXT    NOT NULL,
    nonce       TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (app_id, nonce)
) STRICT;

CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- Balance alerts; one per app, kind and period (a day), whichever node notices first.
CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    app_id       TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('low', 'exhausted', 'expiring')),
    period       INTEGER NOT NULL,
    remaining    INTEGER NOT NULL,
    purchased    INTEGER NOT NULL,
    delivered_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    UNIQUE (app_id, kind, period)
) STRICT;
