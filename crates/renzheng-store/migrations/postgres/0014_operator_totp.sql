-- The console's optional second factor (issue 24): an operator's TOTP secret, sealed under
-- the secrets key and bound to their name (a key rotation re-seals it); `totp_enabled_at`
-- stays NULL while the secret waits for its first code; `totp_last_step` is the last
-- 30-second step whose code was used, so a code works once, whichever node sees it.
ALTER TABLE console_operators ADD COLUMN totp_sealed BYTEA;
ALTER TABLE console_operators ADD COLUMN totp_enabled_at BIGINT;
ALTER TABLE console_operators ADD COLUMN totp_last_step BIGINT;
