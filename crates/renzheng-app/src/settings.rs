//! Typed, layered configuration shared by every command (`serve`, `registry`, `apps`).
//!
//! Layers, later ones winning: built-in defaults → an optional TOML or JSON file
//! (`--config FILE`) → `RENZHENG_*` environment variables. Nested keys use a double
//! underscore in the environment: `RENZHENG_ENGINE__SESSIONS=4`,
//! `RENZHENG_LIMITS__MAX_BODY_BYTES=4194304`, `RENZHENG_IMG_URL__ALLOW=[127.0.0.1/32]`.
//! The result is validated once, at start-up, so a typo fails loudly instead of half-working.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Json, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use renzheng_vision::EngineConfig;
use serde::{Deserialize, Serialize};

/// Name of the SQLite database file inside the data directory.
pub const DATABASE_FILE: &str = "renzheng.db";

/// Top-level keys that environment variables may set: every field of [`Settings`] (read
/// off its serialized defaults, so a new setting can never be forgotten here). Other
/// `RENZHENG_*` variables (`RENZHENG_MODELS_DIR`, `RENZHENG_CACHE_DIR`, …) belong to other
/// components and are ignored here rather than rejected as unknown keys.
fn env_keys() -> Vec<String> {
    match serde_json::to_value(Settings::default()) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A secret string (admin token, audit key) whose `Debug` never shows the value, nor its
/// serialization inside [`Settings::redacted`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value in clear; only for comparing or deriving keys.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

// Wiped when dropped: a key or token read from the environment should not outlive its
// last use in freed memory.
impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `host:port` to listen on (`RENZHENG_LISTEN`).
    pub listen: String,
    /// Directory of the SQLite database (`RENZHENG_DATA_DIR`).
    pub data_dir: PathBuf,
    /// A PostgreSQL database shared by several nodes, e.g.
    /// `postgres://renzheng@db.internal/renzheng` (`RENZHENG_DATABASE_URL`); unset, the
    /// embedded SQLite database in `data_dir`. With it, keys are never generated: every
    /// node must be given the same ones (`audit_key`, `template_key`, `secrets_key`,
    /// `photo_key`, or the same files in `key_dir`).
    pub database_url: Option<Secret>,
    /// Connections this node opens to PostgreSQL at most.
    pub database_max_connections: u32,
    /// Bearer token of the admin API; the admin API is disabled when unset
    /// (`RENZHENG_ADMIN_TOKEN`).
    pub admin_token: Option<Secret>,
    /// Key of the audit log's keyed hashes; when unset, a random key is generated on first
    /// start and kept in `<key_dir>/audit.key` (`RENZHENG_AUDIT_KEY`).
    pub audit_key: Option<Secret>,
    /// Directory of the generated keys (`audit.key`, `photo.key`), kept apart from the
    /// data directory so that a copy of the database is not a copy of its keys
    /// (`RENZHENG_KEY_DIR`; default `$XDG_CONFIG_HOME/renzheng/keys`, else
    /// `~/.config/renzheng/keys`).
    pub key_dir: Option<PathBuf>,
    /// Days an audit record is kept (`RENZHENG_AUDIT_RETENTION_DAYS`); 0 keeps them
    /// forever. Older records are deleted hourly by the server.
    pub audit_retention_days: u32,
    /// Keep enrolment photos (encrypted with `<key_dir>/photo.key`) next to their
    /// embeddings. Off by default: the embedding is all a check needs.
    pub keep_photos: bool,
    /// Master key sealing the apps' AppSecrets in the database, 64 hex digits
    /// (`RENZHENG_SECRETS_KEY`); when unset, generated once in `<key_dir>/secrets.key`.
    /// Every node sharing a database needs the same key.
    pub secrets_key: Option<Secret>,
    /// Key sealing face templates, 64 hex digits (`RENZHENG_TEMPLATE_KEY`); when unset,
    /// `<key_dir>/template.key` (generated once, unless `database_url` is set).
    pub template_key: Option<Secret>,
    /// Key encrypting kept photos, 64 hex digits (`RENZHENG_PHOTO_KEY`); when unset,
    /// `<key_dir>/photo.key` (generated once, unless `database_url` is set).
    pub photo_key: Option<Secret>,
    /// The template key a rotation moves to, 64 hex digits (`RENZHENG_NEXT_TEMPLATE_KEY`):
    /// with several nodes, every node is given it before `renzheng keys rotate template`
    /// runs (made with `renzheng keys new template`), and reads and writes with either key
    /// until the rotation is done. One node with `key_dir` needs none (`keys rotate` makes
    /// it in the key directory).
    pub next_template_key: Option<Secret>,
    /// The secrets key a rotation moves to (`RENZHENG_NEXT_SECRETS_KEY`), as
    /// `next_template_key`.
    pub next_secrets_key: Option<Secret>,
    /// The photo key a rotation moves to (`RENZHENG_NEXT_PHOTO_KEY`), as
    /// `next_template_key`.
    pub next_photo_key: Option<Secret>,
    /// Call packages and quotas.
    pub metering: MeteringSettings,
    /// Balance alerts.
    pub alerts: AlertSettings,
    /// The face engine.
    pub engine: EngineConfig,
    /// Request limits and backpressure.
    pub limits: Limits,
    /// The `imgUrl` fetcher.
    pub img_url: ImgUrlSettings,
    /// Logging.
    pub log: LogSettings,
    /// The operator console at `/console`.
    pub console: ConsoleSettings,
    /// AppKey/AppSecret signatures (the gateway's digest authentication).
    pub signature: SignatureSettings,
    /// What the rules on face information ask of the operator (`docs/compliance.md`).
    pub compliance: ComplianceSettings,
    /// How long the registry keeps a person (`docs/compliance.md`).
    pub registry: RegistrySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 16,
            admin_token: None,
            audit_key: None,
            key_dir: None,
            audit_retention_days: 180,
            keep_photos: false,
            secrets_key: None,
            template_key: None,
            photo_key: None,
            next_template_key: None,
            next_secrets_key: None,
            next_photo_key: None,
            metering: MeteringSettings::default(),
            alerts: AlertSettings::default(),
            engine: EngineConfig::default(),
            limits: Limits::default(),
            img_url: ImgUrlSettings::default(),
            log: LogSettings::default(),
            console: ConsoleSettings::default(),
            signature: SignatureSettings::default(),
            compliance: ComplianceSettings::default(),
            registry: RegistrySettings::default(),
        }
    }
}

/// The registry's retention: the shortest the purpose needs (PIPL art. 19). Persons it
/// has come to are purged with everything stored about them, hourly by the server and by
/// `renzheng registry purge`; each purge is an event and a processing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrySettings {
    /// Days a person is kept after their enrolment or the last renewal of their legal
    /// basis (`RENZHENG_REGISTRY__RETENTION_DAYS`); 0, the default, keeps them until
    /// removed.
    pub retention_days: u32,
    /// Days a person is kept without a check comparing a photo with their portraits
    /// (counted from their enrolment when never checked) (`RENZHENG_REGISTRY__INACTIVE_DAYS`);
    /// 0, the default, is off.
    pub inactive_days: u32,
}

/// What the rules on face information (PIPL; CAC and MPS order No. 19) ask of the
/// operator, as far as the service can keep it: a legal basis for every face, and the
/// filing line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceSettings {
    /// Refuse to store a face without a legal basis (consent, law or contract)
    /// (`RENZHENG_COMPLIANCE__REQUIRE_BASIS`). On by default.
    pub require_basis: bool,
    /// The purpose recorded with each basis unless an enrolment names its own
    /// (`RENZHENG_COMPLIANCE__PURPOSE`).
    pub purpose: String,
    /// Persons with face data stored at which a filing with the provincial CAC is due
    /// within 30 working days (`RENZHENG_COMPLIANCE__FILING_THRESHOLD`; order No. 19 sets
    /// 100,000). Only tests and rehearsals should lower it.
    pub filing_threshold: u64,
    /// The share of the filing line, percent, at which the operator is warned ahead of it
    /// (`RENZHENG_COMPLIANCE__WARNING_PERCENT`; 90 by default, 1 to 99).
    pub warning_percent: u8,
    /// The operator's webhook, told when the persons with face data reach
    /// `warning_percent` of the
    /// filing line and the line itself (`RENZHENG_COMPLIANCE__ALERT_WEBHOOK`): an http(s)
    /// URL held to imgUrl's address policy like the apps' webhooks. Unset: the event log,
    /// the log and `/metrics` tell. A secret: its URL may carry a token.
    pub alert_webhook: Option<Secret>,
    /// Signs the operator's alerts (`X-Renzheng-Signature`, as the apps' alerts are signed
    /// with their AppSecret) (`RENZHENG_COMPLIANCE__ALERT_WEBHOOK_SECRET`).
    pub alert_webhook_secret: Option<Secret>,
    /// Days a processing record is kept (`RENZHENG_COMPLIANCE__RECORDS_RETENTION_DAYS`):
    /// at least 1,095 (the three years PIPL art. 56 asks), or 0 to keep them for ever;
    /// independent of `audit_retention_days`.
    pub records_retention_days: u32,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        ComplianceSettings {
            require_basis: true,
            purpose: "identity verification (人证核验)".into(),
            filing_threshold: 100_000,
            warning_percent: 90,
            alert_webhook: None,
            alert_webhook_secret: None,
            records_retention_days: 1_095,
        }
    }
}

/// What a signed request must carry. Whatever it carries is enforced and must be signed
/// (listed in `X-Ca-Signature-Headers`); these say what it may leave out. SECURITY.md
/// says what each protects against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignatureSettings {
    /// Refuse a signed request without `X-Ca-Nonce` (`RENZHENG_SIGNATURE__REQUIRE_NONCE`).
    /// Off by default, as on the gateway, whose Java demo sends none: without a nonce the
    /// signature itself is spent once within the timestamp window.
    pub require_nonce: bool,
    /// Refuse a signed request without `X-Ca-Timestamp`
    /// (`RENZHENG_SIGNATURE__REQUIRE_TIMESTAMP`). On by default: every Alibaba client sends
    /// one, and without it a request's freshness cannot be judged, so a nonce-less
    /// signature is remembered only for the replay window.
    pub require_timestamp: bool,
}

impl Default for SignatureSettings {
    fn default() -> Self {
        SignatureSettings {
            require_nonce: false,
            require_timestamp: true,
        }
    }
}

/// The operator console (`/console`): one operator account; off until its password hash
/// is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The operator's sign-in name (`RENZHENG_CONSOLE__OPERATOR`).
    pub operator: String,
    /// The operator's password as an Argon2id PHC string, made by
    /// `renzheng console hash-password` (`RENZHENG_CONSOLE__PASSWORD_HASH`). Unset: the
    /// console answers 404.
    pub password_hash: Option<Secret>,
    /// A session lapses after this many seconds without a request.
    pub session_idle_secs: u64,
    /// A session ends this many seconds after sign-in, however active.
    pub session_max_secs: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only). Turn off only for a
    /// console reached over plain HTTP on a trusted network (or `localhost`).
    pub secure_cookie: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed, e.g. `["10.0.0.5/32"]`
    /// (`RENZHENG_CONSOLE__TRUSTED_PROXIES`): behind one, the sign-in throttle counts per
    /// client the right-most address a trusted proxy did not add. Empty by default: the
    /// header is ignored and the connection's address is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// The only directory the console may import folders from
    /// (`RENZHENG_CONSOLE__IMPORT_ROOT`): a folder typed in the console is taken relative
    /// to it (or absolute, then it must lie inside it), symbolic links are not followed
    /// out of it, and each file is capped. Unset: the console's folder import is off
    /// (`renzheng registry import DIR` on the server is not affected).
    pub import_root: Option<PathBuf>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            operator: "admin".into(),
            password_hash: None,
            session_idle_secs: 30 * 60,
            session_max_secs: 12 * 3600,
            secure_cookie: true,
            trusted_proxies: Vec::new(),
            import_root: None,
        }
    }
}

/// Request limits and backpressure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body of `/faceidcard/check`, bytes (larger → 413). Must leave room
    /// for a base64-encoded photo of `max_photo_bytes`.
    pub max_body_bytes: usize,
    /// Largest photo, decoded, bytes (the product's "不超过1mb"; larger → 400).
    pub max_photo_bytes: usize,
    /// Largest admin request body (enrolment with several photos), bytes.
    pub max_admin_body_bytes: usize,
    /// Requests that may wait for an engine slot (there are `engine.sessions` slots: one
    /// setting sizes both the gate and the session pools); more are refused at once with
    /// 503.
    pub max_queued_jobs: usize,
    /// How long a request may wait for an engine slot before a 503, milliseconds.
    pub queue_timeout_ms: u64,
    /// Time limit of a whole request, milliseconds (over it → 504).
    pub request_timeout_ms: u64,
    /// `Retry-After` sent with a 503, seconds.
    pub retry_after_secs: u64,
    /// How long a shutdown waits for in-flight requests, milliseconds.
    pub shutdown_grace_ms: u64,
    /// Time a client has to send a request's headers, milliseconds, counted for a new
    /// connection from its accept (protocol detection included: a connection that sends
    /// nothing is closed after it); it also bounds how long an idle keep-alive connection
    /// is kept (a slow-header client is cut off here).
    pub header_read_timeout_ms: u64,
    /// Open client connections at most. When all are taken, a new client with a request
    /// takes the place of the connection idle for longest (at least a second); others
    /// wait in the listen backlog. Lowered at start, with a warning, to stay below the
    /// process's open-file limit (`LimitNOFILE`, raised to its hard limit where allowed)
    /// less a reserve for the database, models, logs and outbound `imgUrl` fetches.
    pub max_connections: usize,
    /// Checks of one ID number by one app per minute (0: no limit); more are refused
    /// (429, not charged), against enumeration and brute force.
    pub per_id_per_minute: u32,
    /// Checks of one ID number by one app per (UTC) day (0: no limit).
    pub per_id_per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 2 * 1024 * 1024,
            max_photo_bytes: 1024 * 1024,
            max_admin_body_bytes: 32 * 1024 * 1024,
            max_queued_jobs: 32,
            queue_timeout_ms: 5_000,
            request_timeout_ms: 30_000,
            retry_after_secs: 1,
            shutdown_grace_ms: 30_000,
            header_read_timeout_ms: 10_000,
            // The usual soft limit is 1,024 descriptors: leave room for the rest.
            max_connections: 768,
            per_id_per_minute: 15,
            per_id_per_day: 30,
        }
    }
}

impl Limits {
    /// [`queue_timeout_ms`](Self::queue_timeout_ms) as a duration.
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_millis(self.queue_timeout_ms)
    }

    /// [`request_timeout_ms`](Self::request_timeout_ms) as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`header_read_timeout_ms`](Self::header_read_timeout_ms) as a duration.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

/// Call packages and quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeteringSettings {
    /// Whether checks use quota. Off, every app may call without a package (a private
    /// deployment that sells nothing); on, a check needs a unit of a granted package.
    pub enabled: bool,
    /// How long a unit stays held for a check in flight, milliseconds; a node that dies
    /// mid-check gives its units back after this. Longer than `limits.request_timeout_ms`.
    pub hold_ms: u64,
    /// UTC offset of the days usage is counted in, minutes (China: 480).
    pub utc_offset_minutes: i32,
}

impl Default for MeteringSettings {
    fn default() -> Self {
        MeteringSettings {
            enabled: true,
            hold_ms: 120_000,
            utc_offset_minutes: 480,
        }
    }
}

/// Balance alerts: recorded, and posted to the app's webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// How often every app's balance is looked at, seconds (a charge also looks at once).
    pub scan_interval_s: u64,
    /// Alert when calls with this many days left expire.
    pub expiring_days: u32,
    /// Webhook delivery attempts per alert.
    pub webhook_attempts: u32,
    /// Wait before the first retry, milliseconds; doubled each time.
    pub webhook_backoff_ms: u64,
    /// Time limit of one webhook request, milliseconds (also of one e-mail's delivery).
    pub webhook_timeout_ms: u64,
    /// The SMTP relay alerts are e-mailed through: `smtps://[user:password@]host[:port]`
    /// (implicit TLS, port 465 by default) or `smtp://…?tls=required` (STARTTLS, port 587
    /// or 25); plain `smtp://` only to a relay on this host or a trusted network. Unset:
    /// no e-mail. A secret (it may hold the password).
    pub smtp_url: Option<Secret>,
    /// The sender of alert e-mails, e.g. `人证 <alerts@example.cn>`.
    pub email_from: Option<String>,
    /// The operator's own recipients: operator-level alerts (the compliance filing line)
    /// are e-mailed to them.
    pub operator_emails: Vec<String>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            scan_interval_s: 300,
            expiring_days: 7,
            webhook_attempts: 5,
            webhook_backoff_ms: 2_000,
            webhook_timeout_ms: 5_000,
            smtp_url: None,
            email_from: None,
            operator_emails: Vec::new(),
        }
    }
}

/// The `imgUrl` fetcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImgUrlSettings {
    /// Whether `imgUrl` is accepted at all.
    pub enabled: bool,
    /// Total time for one fetch, redirects included, milliseconds.
    pub timeout_ms: u64,
    /// Time to establish one connection, milliseconds.
    pub connect_timeout_ms: u64,
    /// Redirects followed at most (each target re-checked).
    pub max_redirects: usize,
    /// Fetches running at once, all hosts together; more wait (within `timeout_ms`).
    pub max_concurrent: usize,
    /// Fetches running at once to one host.
    pub max_per_host: usize,
    /// Networks that may be fetched although they are not public (loopback, private…),
    /// e.g. `["10.1.2.0/24", "127.0.0.1/32"]`. Empty by default: only public addresses.
    pub allow: Vec<IpNet>,
}

impl Default for ImgUrlSettings {
    fn default() -> Self {
        ImgUrlSettings {
            enabled: true,
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            max_redirects: 3,
            max_concurrent: 16,
            max_per_host: 4,
            allow: Vec::new(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line (production).
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// Output format of `serve`.
    pub format: LogFormat,
    /// `tracing` filter directive (`RUST_LOG` wins when set).
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Json,
            filter: "info".into(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The `--config` file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// The `--config` file has an extension other than `.toml` or `.json`.
    #[error("configuration file {0} must end in .toml or .json")]
    UnknownFormat(PathBuf),
    /// A layer could not be parsed or has a wrong or unknown key.
    #[error("configuration: {0}")]
    Parse(String),
    /// The values parse but make no sense.
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults → `file` → environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_owned()));
            }
            figment = match path.extension().and_then(|e| e.to_str()) {
                Some("toml") => figment.merge(Toml::file_exact(path)),
                Some("json") => figment.merge(Json::file_exact(path)),
                _ => return Err(SettingsError::UnknownFormat(path.to_owned())),
            };
        }
        let keys = env_keys();
        let env = Env::prefixed("RENZHENG_").split("__").filter(move |key| {
            let top = key.as_str().split('.').next().unwrap_or_default();
            keys.iter().any(|k| k.eq_ignore_ascii_case(top))
        });
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| SettingsError::Parse(one_line(&e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        self.listen_addr()?;
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir must not be empty".into());
        }
        if let Some(token) = &self.admin_token {
            if token.expose().trim().len() < 16 {
                return invalid("admin_token must be at least 16 characters".into());
            }
        }
        if let Some(key) = &self.audit_key {
            // 64 hex digits are the key itself; anything else is a passphrase, stretched.
            let hex_key = hex::decode(key.expose().trim()).is_ok_and(|k| k.len() == 32);
            if !hex_key && key.expose().chars().count() < 16 {
                return invalid(
                    "audit_key must be 64 hex digits, or a passphrase of at least 16 characters"
                        .into(),
                );
            }
        }
        let c = &self.console;
        if c.operator.trim().is_empty() || c.operator.len() > 64 {
            return invalid("console.operator must be 1 to 64 characters".into());
        }
        if let Some(hash) = &c.password_hash {
            if !hash.expose().starts_with("$argon2") {
                return invalid(
                    "console.password_hash must be an Argon2 PHC string: make one with `renzheng console hash-password`".into(),
                );
            }
        }
        if c.session_idle_secs == 0 || c.session_max_secs < c.session_idle_secs {
            return invalid(
                "console.session_idle_secs must be positive and at most console.session_max_secs"
                    .into(),
            );
        }
        let l = &self.limits;
        if l.max_photo_bytes == 0 || l.request_timeout_ms == 0 {
            return invalid(
                "limits.max_photo_bytes and limits.request_timeout_ms must be positive".into(),
            );
        }
        // A photo of the maximum size must fit in the body once base64-encoded.
        let needed = l.max_photo_bytes.div_ceil(3) * 4 + 4096;
        if l.max_body_bytes < needed {
            return invalid(format!(
                "limits.max_body_bytes ({}) must be at least {needed} so that a base64 photo of limits.max_photo_bytes ({}) fits",
                l.max_body_bytes, l.max_photo_bytes
            ));
        }
        if l.header_read_timeout_ms == 0 || l.max_connections == 0 {
            return invalid(
                "limits.header_read_timeout_ms and limits.max_connections must be positive".into(),
            );
        }
        if l.max_admin_body_bytes < l.max_body_bytes {
            return invalid(
                "limits.max_admin_body_bytes must be at least limits.max_body_bytes".into(),
            );
        }
        for (name, key) in [
            ("secrets_key", &self.secrets_key),
            ("template_key", &self.template_key),
            ("photo_key", &self.photo_key),
            ("next_template_key", &self.next_template_key),
            ("next_secrets_key", &self.next_secrets_key),
            ("next_photo_key", &self.next_photo_key),
        ] {
            if let Some(key) = key {
                if hex::decode(key.expose().trim()).map_or(true, |k| k.len() != 32) {
                    return invalid(format!("{name} must be 64 hex digits (32 bytes)"));
                }
            }
        }
        if let Some(url) = &self.database_url {
            let scheme = url.expose().split("://").next().unwrap_or_default();
            if !matches!(scheme, "postgres" | "postgresql") {
                return invalid("database_url must be a postgres:// URL".into());
            }
        }
        if self.database_max_connections == 0 {
            return invalid("database_max_connections must be positive".into());
        }
        if self.metering.hold_ms <= l.request_timeout_ms {
            return invalid(format!(
                "metering.hold_ms ({}) must be longer than limits.request_timeout_ms ({})",
                self.metering.hold_ms, l.request_timeout_ms
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&self.metering.utc_offset_minutes) {
            return invalid("metering.utc_offset_minutes must be within ±840".into());
        }
        let a = &self.alerts;
        if a.scan_interval_s == 0 || a.webhook_attempts == 0 || a.webhook_timeout_ms == 0 {
            return invalid(
                "alerts.scan_interval_s, alerts.webhook_attempts and alerts.webhook_timeout_ms must be positive"
                    .into(),
            );
        }
        if self.engine.sessions == 0 {
            return invalid("engine.sessions must be positive".into());
        }
        if let Some(v) = &self.engine.verdict {
            v.validate()
                .map_err(|e| SettingsError::Invalid(format!("engine.verdict: {e}")))?;
        }
        if let Some(bands) = &self.engine.size_bands {
            renzheng_vision::validate_size_bands(bands)
                .map_err(|e| SettingsError::Invalid(format!("engine.size_bands: {e}")))?;
        }
        let u = &self.img_url;
        if u.timeout_ms == 0 || u.connect_timeout_ms == 0 {
            return invalid(
                "img_url.timeout_ms and img_url.connect_timeout_ms must be positive".into(),
            );
        }
        if u.max_redirects > 10 {
            return invalid("img_url.max_redirects must be at most 10".into());
        }
        renzheng_domain::Reference::parse(&self.compliance.purpose, "compliance.purpose")
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        if self.compliance.filing_threshold == 0 {
            return invalid("compliance.filing_threshold must be positive".into());
        }
        if !(1..=99).contains(&self.compliance.warning_percent) {
            return invalid("compliance.warning_percent must be between 1 and 99".into());
        }
        if let Some(url) = &self.compliance.alert_webhook {
            match url::Url::parse(url.expose()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => return invalid("compliance.alert_webhook must be an http(s) URL".into()),
            }
        }
        let records = self.compliance.records_retention_days;
        if records != 0 && records < 1_095 {
            return invalid(
                "compliance.records_retention_days must be at least 1095 (three years), or 0 to keep them for ever"
                    .into(),
            );
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.filter)
            .map_err(|e| SettingsError::Invalid(format!("log.filter: {e}")))?;
        Ok(())
    }

    /// The listen address, resolved.
    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        let bad =
            || SettingsError::Invalid(format!("listen must be host:port, got {:?}", self.listen));
        self.listen
            .to_socket_addrs()
            .map_err(|_| bad())?
            .next()
            .ok_or_else(bad)
    }

    /// Path of the SQLite database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// The database, for messages: the SQLite path, or the PostgreSQL URL without its
    /// password.
    pub fn database_label(&self) -> String {
        match &self.database_url {
            None => self.database_path().display().to_string(),
            Some(url) => match url::Url::parse(url.expose()) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("****"));
                    }
                    parsed.to_string()
                }
                Err(_) => "the configured database_url".into(),
            },
        }
    }
}

/// Figment errors can span lines; the CLI promises one-line reasons.
fn one_line(e: &figment::Error) -> String {
    e.to_string().replace('\n', " ")
}

/// What [`Settings::redacted`] shows in place of a secret that is set.
pub const REDACTED: &str = "<redacted>";

/// What [`Settings::redacted`] shows for a secret that is not set.
pub const UNSET: &str = "<unset>";

/// The dotted keys of the settings that hold a [`Secret`], for [`Settings::redacted`] to
/// mark the unset ones; the set ones are redacted whatever this list says (see
/// [`Secret`]'s `Serialize`). `docs/configuration.md` marks exactly these as secret
/// (checked by `tests/config_reference.rs`).
pub const SECRET_KEYS: [&str; 13] = [
    "database_url",
    "admin_token",
    "audit_key",
    "secrets_key",
    "template_key",
    "photo_key",
    "next_template_key",
    "next_secrets_key",
    "next_photo_key",
    "console.password_hash",
    "compliance.alert_webhook",
    "compliance.alert_webhook_secret",
    "alerts.smtp_url",
];

thread_local! {
    /// Set while [`Settings::redacted`] serializes: every [`Secret`] then writes
    /// [`REDACTED`]. A flag rather than a list of fields, so that a secret added later is
    /// redacted without anyone remembering to list it.
    static REDACTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if REDACTING.with(std::cell::Cell::get) {
            serializer.serialize_str(REDACTED)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

/// Clears [`REDACTING`] when dropped, so that a panic mid-serialization cannot leave the
/// thread redacting the layer of defaults `load` serializes.
struct RedactingGuard;

impl RedactingGuard {
    fn set() -> Self {
        REDACTING.with(|r| r.set(true));
        RedactingGuard
    }
}

impl Drop for RedactingGuard {
    fn drop(&mut self) {
        REDACTING.with(|r| r.set(false));
    }
}

impl Settings {
    /// The settings as a JSON tree, for showing to an operator (`renzheng config show`):
    /// every secret that is set reads [`REDACTED`], every one in [`SECRET_KEYS`] that is
    /// not reads [`UNSET`], and `database_url` keeps everything but its password, which
    /// is what tells an operator which database a node uses.
    pub fn redacted(&self) -> serde_json::Value {
        let mut tree = {
            let _redacting = RedactingGuard::set();
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        };
        for key in SECRET_KEYS {
            let pointer = format!("/{}", key.replace('.', "/"));
            if let Some(value) = tree.pointer_mut(&pointer) {
                if value.is_null() {
                    *value = UNSET.into();
                }
            }
        }
        if let (Some(url), Some(value)) = (&self.database_url, tree.get_mut("database_url")) {
            *value = redacted_url(url.expose()).into();
        }
        tree
    }
}

/// A database URL with its password (if any) replaced by [`REDACTED`]; the whole value
/// redacted if it does not parse, since it might then hold the password anywhere.
fn redacted_url(url: &str) -> String {
    // A placeholder the URL serializer keeps as it is (`<` and `>` would be escaped).
    const PLACEHOLDER: &str = "REDACTEDPASSWORD";
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            if parsed.password().is_some() && parsed.set_password(Some(PLACEHOLDER)).is_err() {
                return REDACTED.into();
            }
            parsed.to_string().replace(PLACEHOLDER, REDACTED)
        }
        _ => REDACTED.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn compliance_records_and_alert_settings_are_checked() {
        type Change = fn(&mut Settings);
        let refused: [(Change, &str); 5] = [
            (
                |s| s.compliance.records_retention_days = 1,
                "records_retention_days",
            ),
            (
                |s| s.compliance.records_retention_days = 1_094,
                "records_retention_days",
            ),
            (
                |s| s.compliance.alert_webhook = Some(Secret::new("ftp://ops.example/alert")),
                "alert_webhook",
            ),
            (
                |s| s.compliance.alert_webhook = Some(Secret::new("not a url")),
                "alert_webhook",
            ),
            (|s| s.compliance.warning_percent = 100, "warning_percent"),
        ];
        for (change, word) in refused {
            let mut s = Settings::default();
            change(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(word), "{word}: {err}");
        }
        let accepted: [Change; 3] = [
            |s| s.compliance.records_retention_days = 0,
            |s| s.compliance.records_retention_days = 1_095,
            |s| s.compliance.alert_webhook = Some(Secret::new("https://ops.example/alert")),
        ];
        for change in accepted {
            let mut s = Settings::default();
            change(&mut s);
            s.validate().unwrap();
        }
    }

    #[test]
    fn body_limit_must_hold_a_full_photo() {
        let mut s = Settings::default();
        s.limits.max_body_bytes = s.limits.max_photo_bytes;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("max_body_bytes"), "{err}");
    }

    #[test]
    fn database_urls_are_checked_and_never_shown_with_their_password() {
        let mut s = Settings {
            database_url: Some(Secret::new("mysql://x@h/d")),
            ..Settings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("postgres://"));
        s.database_url = Some(Secret::new(
            "postgres://app:hunter2@db.internal:5432/renzheng",
        ));
        s.validate().unwrap();
        let label = s.database_label();
        assert!(
            !label.contains("hunter2") && label.contains("db.internal"),
            "{label}"
        );
    }

    #[test]
    fn connection_limits_must_be_positive() {
        for set in [
            |s: &mut Settings| s.limits.header_read_timeout_ms = 0,
            |s: &mut Settings| s.limits.max_connections = 0,
        ] {
            let mut s = Settings::default();
            set(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains("max_connections"), "{err}");
        }
    }

    #[test]
    fn metering_and_alert_settings_are_checked() {
        type Change = fn(&mut Settings);
        let cases: [(Change, &str); 5] = [
            (|s| s.secrets_key = Some(Secret::new("abc")), "secrets_key"),
            (
                |s| s.secrets_key = Some(Secret::new("zz".repeat(32))),
                "secrets_key",
            ),
            (|s| s.metering.hold_ms = 30_000, "metering.hold_ms"),
            (
                |s| s.metering.utc_offset_minutes = 900,
                "utc_offset_minutes",
            ),
            (|s| s.alerts.webhook_attempts = 0, "alerts."),
        ];
        for (set, needle) in cases {
            let mut s = Settings::default();
            set(&mut s);
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let s = Settings {
            secrets_key: Some(Secret::new("ab".repeat(32))),
            ..Settings::default()
        };
        s.validate().unwrap();
    }

    #[test]
    fn secrets_are_hidden_in_debug() {
        let s = Settings {
            admin_token: Some(Secret::new("a-very-secret-admin-token")),
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn file_layer_parses_nested_sections_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("c.toml");
        std::fs::write(
            &good,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_queued_jobs = 3\n[img_url]\nallow = [\"127.0.0.1/32\"]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&good)).unwrap();
        assert_eq!(s.limits.max_queued_jobs, 3);
        assert_eq!(s.img_url.allow.len(), 1);
        let bad = dir.path().join("b.toml");
        std::fs::write(&bad, "lisen = \"x\"\n").unwrap();
        assert!(Settings::load(Some(&bad)).is_err());
        assert!(Settings::load(Some(&dir.path().join("none.toml"))).is_err());
    }

    #[test]
    fn the_toml_block_of_calibrate_loads_and_bad_size_bands_are_refused() {
        // The block `renzheng calibrate` prints.
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("c.toml");
        std::fs::write(
            &good,
            "[engine.verdict]\nsame_max_distance = 0.55\ndifferent_min_distance = 0.72\n\n[[engine.size_bands]]\nbelow_inter_eye_px = 20\nsame_max_distance = 0.55\ndifferent_min_distance = 0.92\n\n[[engine.size_bands]]\nbelow_inter_eye_px = 30\nsame_max_distance = 0.55\ndifferent_min_distance = 0.9\n",
        )
        .unwrap();
        let s = Settings::load(Some(&good)).unwrap();
        let bands = s.engine.size_bands.as_deref().unwrap();
        assert_eq!(bands.len(), 2);
        assert_eq!(bands[0].below_inter_eye_px, 20.0);
        assert_eq!(s.engine.verdict.unwrap().same_max_distance, 0.55);
        let bad = dir.path().join("b.toml");
        std::fs::write(
            &bad,
            "[[engine.size_bands]]\nbelow_inter_eye_px = 20\nsame_max_distance = 0.9\ndifferent_min_distance = 0.5\n",
        )
        .unwrap();
        let err = Settings::load(Some(&bad)).unwrap_err().to_string();
        assert!(err.contains("engine.size_bands"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        // Only this test sets these variables; other tests tolerate them.
        std::env::set_var("RENZHENG_LIMITS__RETRY_AFTER_SECS", "7");
        std::env::set_var("RENZHENG_KEEP_PHOTOS", "true");
        let s = Settings::load(None).unwrap();
        std::env::remove_var("RENZHENG_LIMITS__RETRY_AFTER_SECS");
        std::env::remove_var("RENZHENG_KEEP_PHOTOS");
        assert_eq!(s.limits.retry_after_secs, 7);
        assert!(s.keep_photos);
    }

    #[test]
    fn every_top_level_setting_can_come_from_the_environment() {
        let keys = env_keys();
        for key in [
            "key_dir",
            "audit_retention_days",
            "secrets_key",
            "metering",
            "alerts",
            "database_url",
            "limits",
        ] {
            assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
        }
    }
}
