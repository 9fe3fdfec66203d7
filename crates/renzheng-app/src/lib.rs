//! Renzheng's use cases, between the edges (the HTTP server, the CLI) and the parts (the
//! domain rules, the store, the face engine).
//!
//! An [`App`] holds the store, the engine (loaded on first use), the engine gate, the keys,
//! the clock and the audit sink. Each use case is one method returning a typed
//! [`AppError`]; the edges only translate: the server maps every variant to HTTP, the CLI
//! to a message.
//!
//! | use case | method |
//! |---|---|
//! | check a person (the product) | [`App::begin_check`] → a [`CheckTicket`]: `authenticate` → (`signature_verified`) → `admit` → `run` → `finish` |
//! | verify a parsed request, unrecorded (tools) | [`App::parse_check`] then [`App::verify`] |
//! | enrol a person with portraits | [`EnrolRequest::parse`] then [`App::enrol`] |
//! | import a folder of portraits | [`App::import_folder`] |
//! | show / remove a person | [`App::person`], [`App::remove_person`], [`App::remove_person_on_request`] |
//! | legal bases, the filing line, access requests | [`App::record_basis`], [`App::compliance_status`], [`App::person_report`] |
//! | retention, processing records | [`App::purge_registry`], [`App::processing_records`], [`App::run_retention`] |
//! | move the registry between databases | [`App::export_registry`], [`App::import_registry`] |
//! | apps | [`App::create_app`], [`App::list_apps`], [`App::set_app_enabled`], [`App::reset_app_code`], [`App::reset_app_secret`], [`App::set_app_policy`] |
//! | authenticate a caller outside a check (the app's own history) | [`App::identify`], then [`App::use_nonce`] once a signature verifies |
//! | packages and balances | [`App::packages`], [`App::put_package`], [`App::grant`], [`App::balance`] |
//! | history and usage | [`App::calls`], [`App::calls_csv`], [`App::usage`] |
//! | balance alerts | [`App::evaluate_alerts`], [`App::run_alerts`] |
//! | audit | [`App::recent_audit`], [`App::recent_events`] |
//! | the operator console | [`App::sign_in`], [`App::console_session`], [`App::sign_out`], [`App::overview`], [`App::quotas`], [`App::compare_photos`], [`App::send_test_alert`] |
//!
//! Nothing here knows HTTP or JSON; nothing here runs inference on the async runtime
//! (engine work goes through the gate onto the blocking pool).

#![deny(missing_docs)]

mod alerts;
mod apps;
mod audit;
pub mod check;
mod clock;
mod compliance;
pub mod console;
mod engine;
mod error;
pub mod fetch;
mod gate;
mod import;
mod integrity;
pub mod keys;
pub mod mail;
pub mod metering;
pub mod operators;
mod photo;
mod registry;
mod report;
pub mod retention;
pub mod rotation;
pub mod rules;
mod second_factor;
pub mod settings;
pub mod telemetry;
pub mod totp;
mod transfer;

use std::sync::Arc;

use renzheng_store::{PgStore, SqliteStore, Store, StoreError};
use renzheng_vision::{EngineConfig, FaceEngine};

pub use crate::alerts::{webhook_signature, AlertPayload, AlertView};
pub use crate::apps::{
    AppName, AppView, Authentication, Caller, CreatedApp, Credential, NewAppCode, NewAppSecret,
    PolicyView,
};
pub use crate::audit::Actor;
pub use crate::check::{
    CheckFields, CheckRequest, CheckTicket, Checked, Ending, IdFacts, Origin, ResultCode, Scored,
    Verification,
};
pub use crate::clock::{Clock, SystemClock};
pub use crate::compliance::{BasisStatement, BasisView, ComplianceStatus};
pub use crate::console::{
    AppQuota, FormToken, OperatorSession, Overview, OverviewDay, SessionView, SignedIn,
    MIN_PASSWORD_CHARS,
};
pub use crate::engine::EngineObserver;
pub use crate::error::{Against, AppError, Rule};
pub use crate::gate::{EngineGate, Saturated};
pub use crate::import::{ImportItem, ImportProblem, ImportProgress, ImportRefusal, ImportSummary};
pub use crate::integrity::{
    Disagreement, DuplicatePair, DuplicateReport, Reason, ReportedPerson, ScanProgress,
    TemplateIndexStats,
};
pub use crate::metering::{
    Admission, BalanceView, CallFilter, CallView, GrantAdjustment, GrantRequest, GrantView,
    LedgerCheck, PackageView, UsageDay, UsageView,
};
pub use crate::operators::OperatorView;
pub use crate::photo::PhotoError;
pub use crate::registry::{
    EnrolFields, EnrolRequest, Enrolled, PersonLine, PersonView, PortraitView, ReembedSummary,
    RegistryPage,
};
pub use crate::report::{PersonReport, ReportCheck, ReportEvent};
pub use crate::retention::{ProcessingLine, PurgeLine, PurgeReason, PurgeReport};
pub use crate::second_factor::TotpSetup;
pub use crate::settings::Settings;
pub use crate::transfer::TransferSummary;

/// The deterministic engine for tests that are not about faces (feature `testing`).
#[cfg(feature = "testing")]
pub use renzheng_vision::testing;

use crate::alerts::AlertQueue;
use crate::engine::EngineRoom;
use crate::fetch::Fetcher;
use crate::keys::{KeyError, KeyName, PhotoCipher, SecretBox};
use crate::settings::SettingsError;

/// Where the face engine comes from.
pub enum EngineSource {
    /// Load it from this configuration's model pack on first use (blocking work, done off
    /// the async runtime). Commands that never touch a photo never load it.
    Pack(EngineConfig),
    /// An engine already loaded (ONNX Runtime allows one environment per process, so a
    /// test binary shares one), or a test engine.
    Ready(Arc<dyn FaceEngine>),
}

/// Why the application could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Bad configuration.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be opened or migrated.
    #[error("database {path}: {source}")]
    Store {
        /// The database (file, or URL without its password).
        path: String,
        /// The failure.
        source: StoreError,
    },
    /// A key file is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// This node's key differs from the one the database was written with.
    #[error("the {0} key differs from the one this database was written with: give this node the same key as the others (or the key directory it was created with)")]
    KeyMismatch(&'static str),
    /// This node's keys do not open the database (a retired key, another key, the
    /// previous key missing mid-rotation).
    #[error(transparent)]
    KeyRing(#[from] rotation::KeyRingError),
    /// The HTTP client for imgUrl could not be built.
    #[error("HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

/// The application: every use case, over one store and one engine. Cheap to share
/// (`Arc<App>`); every method takes `&self`.
pub struct App {
    settings: Arc<Settings>,
    store: Arc<dyn Store>,
    engine: EngineRoom,
    fetcher: Fetcher,
    audit_key: Arc<[u8]>,
    /// What releases before 0.9 made pseudonyms with (an `audit_key` passphrase used raw):
    /// a deletion clears those too.
    audit_legacy: Option<Arc<[u8]>>,
    /// The secrets and photo key rings in force (a rotation replaces them).
    rings: Arc<std::sync::RwLock<rotation::Rings>>,
    export_box: SecretBox,
    alerts: AlertQueue,
    webhooks: reqwest::Client,
    /// The SMTP relay of e-mail alerts (`None`: not configured).
    mailer: Option<mail::Mailer>,
    clock: Arc<dyn Clock>,
    /// Records of abandoned checks still being written ([`App::settle_abandoned`]).
    settling: Arc<std::sync::atomic::AtomicUsize>,
    face_index: Arc<integrity::FaceIndex>,
    /// The last compliance status and when it was read ([`App::recent_compliance_status`]).
    compliance_seen: Arc<std::sync::Mutex<Option<(i64, compliance::ComplianceStatus)>>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// Opens the store of `settings` (PostgreSQL at `database_url`, else SQLite in
    /// `data_dir`, migrated either way), its keys (refusing keys other than those the
    /// database was written with) and the imgUrl fetcher; the engine comes from `engine`.
    pub async fn open(settings: Settings, engine: EngineSource) -> Result<Self, OpenError> {
        settings.validate()?;
        let now_ms = SystemClock.now_ms();
        let template_held = keys::held_keys(&settings, KeyName::Template)?;
        // Opened with the node's own key sealing; the database's record then says which
        // of the held keys seals (a rotation may have moved on).
        let first: Vec<&keys::HeldKey> = template_held.iter().collect();
        let store = Self::open_store(&settings, rotation::template_ring(&first)).await?;
        let database = |source| OpenError::Store {
            path: settings.database_label(),
            source,
        };
        let opened = Self::resolve_keys(&settings, &*store, template_held, now_ms).await;
        let (template_ring, secrets_ring, photo_ring, current) = match opened {
            Ok(rings) => rings,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        let template_refs: Vec<&keys::HeldKey> = template_ring.iter().collect();
        store.set_template_key(rotation::template_ring(&template_refs));
        let audit = keys::audit_key(&settings)?;
        // Only a random key's fingerprint is stored: one of a passphrase would let a copy
        // of the database be searched for the passphrase.
        if audit.random {
            let fingerprint = keys::fingerprint(&audit.key);
            let recorded = store
                .claim_key_fingerprint("audit", &fingerprint, now_ms)
                .await
                .map_err(database)?;
            if recorded != fingerprint {
                store.close().await;
                return Err(OpenError::KeyMismatch("audit"));
            }
        }
        let export_keys: Vec<[u8; 32]> = template_ring
            .iter()
            .map(|k| keys::derive(&k.bytes, "renzheng registry export key v1"))
            .collect();
        let export_others: Vec<&[u8]> = export_keys[1..].iter().map(|k| &k[..]).collect();
        let export_box = SecretBox::from_ring(keys::Sealer::ring(
            KeyName::Secrets,
            &export_keys[0],
            &export_others,
        ));
        let secrets_refs: Vec<&keys::HeldKey> = secrets_ring.iter().collect();
        let rings = rotation::Rings {
            secrets: SecretBox::from_ring(rotation::sealer(KeyName::Secrets, &secrets_refs)),
            photo: photo_ring.map(|ring| {
                let refs: Vec<&keys::HeldKey> = ring.iter().collect();
                PhotoCipher::from_ring(rotation::sealer(KeyName::Photo, &refs))
            }),
            current,
            missing: Vec::new(),
        };
        let fetcher = Fetcher::new(&settings.img_url, settings.limits.max_photo_bytes)?;
        // Webhooks go out under imgUrl's address policy, `img_url.allow` included.
        let webhooks = fetch::guarded_client(
            fetcher.policy().clone(),
            std::time::Duration::from_millis(settings.alerts.webhook_timeout_ms),
        )?;
        let mailer = mail::Mailer::from_settings(&settings.alerts)
            .map_err(|e| OpenError::Settings(crate::settings::SettingsError::Invalid(e)))?;
        let engine = EngineRoom::new(engine, settings.engine.sessions, &settings.limits);
        Ok(App {
            settings: Arc::new(settings),
            store,
            engine,
            fetcher,
            audit_key: audit.key.to_vec().into(),
            audit_legacy: audit.legacy.map(|k| k.to_vec().into()),
            rings: Arc::new(std::sync::RwLock::new(rings)),
            export_box,
            alerts: AlertQueue::new(),
            webhooks,
            mailer,
            clock: Arc::new(SystemClock),
            settling: Arc::default(),
            face_index: Arc::default(),
            compliance_seen: Arc::default(),
        })
    }

    /// The rings of every key, ordered by the database's records: the template, secrets
    /// and photo rings (current key first), and each key's current fingerprint.
    #[allow(clippy::type_complexity)]
    async fn resolve_keys(
        settings: &Settings,
        store: &dyn Store,
        template_held: Vec<keys::HeldKey>,
        now_ms: i64,
    ) -> Result<
        (
            Vec<keys::HeldKey>,
            Vec<keys::HeldKey>,
            Option<Vec<keys::HeldKey>>,
            Vec<(KeyName, String)>,
        ),
        OpenError,
    > {
        let mut current = Vec::new();
        let (_, template) =
            rotation::resolve(store, KeyName::Template, &template_held, now_ms).await?;
        current.push((KeyName::Template, template[0].fingerprint.clone()));
        let secrets_held = keys::held_keys(settings, KeyName::Secrets)?;
        let (_, secrets) =
            rotation::resolve(store, KeyName::Secrets, &secrets_held, now_ms).await?;
        current.push((KeyName::Secrets, secrets[0].fingerprint.clone()));
        let photo = if settings.keep_photos {
            let held = keys::held_keys(settings, KeyName::Photo)?;
            let (_, ring) = rotation::resolve(store, KeyName::Photo, &held, now_ms).await?;
            current.push((KeyName::Photo, ring[0].fingerprint.clone()));
            Some(ring)
        } else {
            None
        };
        Ok((template, secrets, photo, current))
    }

    /// The configured store, migrated.
    async fn open_store(
        settings: &Settings,
        templates: renzheng_store::TemplateKey,
    ) -> Result<Arc<dyn Store>, OpenError> {
        let opened: Result<Arc<dyn Store>, StoreError> = match &settings.database_url {
            Some(url) => {
                PgStore::connect(url.expose(), templates, settings.database_max_connections)
                    .await
                    .map(|s| Arc::new(s) as Arc<dyn Store>)
            }
            None => SqliteStore::open(settings.database_path(), templates)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>),
        };
        opened.map_err(|source| OpenError::Store {
            path: settings.database_label(),
            source,
        })
    }

    /// Reports engine work (stage times, saturation) to `observer` (the server's metrics).
    pub fn with_observer(mut self, observer: Arc<dyn EngineObserver>) -> Self {
        self.engine.set_observer(observer);
        self
    }

    /// Stamps records with `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by the application's clock (unix milliseconds).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The configuration in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store (tests and readiness probes use it directly).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The engine gate (for readiness figures).
    pub fn gate(&self) -> &EngineGate {
        self.engine.gate()
    }

    /// The engine, loading it now if it is not loaded yet.
    pub async fn engine(&self) -> Result<Arc<dyn FaceEngine>, AppError> {
        self.engine.get().await
    }

    /// The engine if it is loaded, without loading it.
    pub fn loaded_engine(&self) -> Option<Arc<dyn FaceEngine>> {
        self.engine.loaded()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), AppError> {
        Ok(self.store.ping().await?)
    }

    /// Closes the database cleanly (commands call it before exiting).
    pub async fn close(&self) {
        self.store.close().await;
    }
}
