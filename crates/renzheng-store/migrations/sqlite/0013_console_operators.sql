-- The console's operators (issue 24): several accounts, each with a role. `owner`
-- manages everything, operators and keys included; `admin` apps, packages, the registry
-- and duplicate overrides; `auditor` reads calls, events, usage and compliance reports.
-- The configured `console.operator` / `console.password_hash` become the first owner the
-- first time the table is found empty. A password is kept only as its Argon2id PHC
-- string.
CREATE TABLE console_operators (
    name           TEXT    PRIMARY KEY,
    role           TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'auditor')),
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;

-- Sessions are listed and ended per operator (a password change, a removal).
CREATE INDEX console_sessions_by_operator ON console_sessions (operator);
