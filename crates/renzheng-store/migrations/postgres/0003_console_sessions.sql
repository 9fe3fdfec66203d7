-- Operator console sessions. Only a hash of the session token is stored: the database
-- alone cannot sign anyone in.
CREATE TABLE console_sessions (
    token_hash  TEXT    PRIMARY KEY,
    operator    TEXT    NOT NULL,
    csrf        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    idle_until  BIGINT  NOT NULL,
    ends_at     BIGINT  NOT NULL,
    CHECK (idle_until <= ends_at)
);
