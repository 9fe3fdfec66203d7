-- E-mail alerts (issue 24): each app's balance alerts also go to these addresses, one per
-- line (NULL: none), when the server has an SMTP relay (`alerts.smtp_url`).
ALTER TABLE apps ADD COLUMN alert_emails TEXT;
