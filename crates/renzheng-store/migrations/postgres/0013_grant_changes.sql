-- Grant revocation and adjustment (issue 24). A revoked grant keeps its row (what was
-- granted and charged stays visible) but lends no more units: `revoked_at` is when its
-- unused calls were taken back. The ledger learns two kinds: `adjust` (a grant's calls
-- changed by `calls`, positive or negative) and `revoke` (its unused calls taken back,
-- `calls` negative).
ALTER TABLE grants ADD COLUMN revoked_at BIGINT;

ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check
    CHECK (kind IN ('grant', 'charge', 'adjust', 'revoke'));
