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
//! | show / remove a person | [`App::person`], [`App::remove_person`] |
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
pub mod console;
mod engine;
mod error;
pub mod fetch;
mod gate;
mod import;
mod integrity;
pub mod keys;
pub mod metering;
mod photo;
mod registry;
pub mod settings;
pub mod telemetry;
mod transfer;

use std::sync::Arc;

use renzheng_store::{PgStore, SqliteStore, Store, StoreError};
use renzheng_vision::{EngineConfig, FaceEngine};

pub use crate::alerts::{webhook_signature, AlertPayload};
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
pub use crate::console::{AppQuota, OperatorSession, Overview, OverviewDay, SignedIn};
pub use crate::engine::EngineObserver;
pub use crate::error::{Against, AppError};
pub use crate::gate::{EngineGate, Saturated};
pub use crate::import::{ImportProgress, ImportRefusal, ImportSummary};
pub use crate::integrity::{
    Disagreement, DuplicatePair, DuplicateReport, Reason, ReportedPerson, ScanProgress,
    TemplateIndexStats,
};
pub use crate::metering::{
    Admission, BalanceView, CallFilter, CallView, GrantRequest, GrantView, LedgerCheck,
    PackageView, UsageDay, UsageView,
};
pub use crate::registry::{
    EnrolFields, EnrolRequest, Enrolled, PersonLine, PersonView, PortraitView, ReembedSummary,
    RegistryPage,
};
pub use crate::settings::Settings;
pub use crate::transfer::TransferSummary;

/// The deterministic engine for tests that are not about faces (feature `testing`).
#[cfg(feature = "testing")]
pub use renzheng_vision::testing;

use crate::alerts::AlertQueue;
use crate::engine::EngineRoom;
use crate::fetch::Fetcher;
use crate::keys::{KeyError, PhotoCipher, SecretBox};
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
    photo_cipher: Option<PhotoCipher>,
    secrets: SecretBox,
    export_box: SecretBox,
    alerts: AlertQueue,
    webhooks: reqwest::Client,
    clock: Arc<dyn Clock>,
    /// Records of abandoned checks still being written ([`App::settle_abandoned`]).
    settling: Arc<std::sync::atomic::AtomicUsize>,
    face_index: Arc<integrity::FaceIndex>,
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
        // Read once: it seals the templates and derives the export key.
        let template_key = keys::template_key_bytes(&settings)?;
        let store = Self::open_store(&settings, &template_key).await?;
        let audit_key: Arc<[u8]> = keys::audit_key(&settings)?.into();
        let photo_key = keys::photo_key(&settings)?;
        let secrets_key = keys::secrets_key_bytes(&settings)?;
        let mut fingerprints = vec![
            ("audit", keys::fingerprint(&audit_key)),
            ("template", keys::fingerprint(&template_key)),
            ("secrets", keys::fingerprint(&secrets_key)),
        ];
        if let Some(key) = &photo_key {
            fingerprints.push(("photo", keys::fingerprint(key)));
        }
        for (name, fingerprint) in fingerprints {
            let recorded = store
                .claim_key_fingerprint(name, &fingerprint, SystemClock.now_ms())
                .await
                .map_err(|source| OpenError::Store {
                    path: settings.database_label(),
                    source,
                })?;
            if recorded != fingerprint {
                store.close().await;
                return Err(OpenError::KeyMismatch(name));
            }
        }
        let photo_cipher = photo_key.map(|key| PhotoCipher::new(&key));
        let secrets = SecretBox::new(&secrets_key);
        let fetcher = Fetcher::new(&settings.img_url, settings.limits.max_photo_bytes)?;
        // Webhooks go out under imgUrl's address policy, `img_url.allow` included.
        let webhooks = fetch::guarded_client(
            fetcher.policy().clone(),
            std::time::Duration::from_millis(settings.alerts.webhook_timeout_ms),
        )?;
        let engine = EngineRoom::new(engine, settings.engine.sessions, &settings.limits);
        Ok(App {
            settings: Arc::new(settings),
            store,
            engine,
            fetcher,
            audit_key,
            photo_cipher,
            secrets,
            export_box: transfer::export_box(&template_key),
            alerts: AlertQueue::new(),
            webhooks,
            clock: Arc::new(SystemClock),
            settling: Arc::default(),
            face_index: Arc::default(),
        })
    }

    /// The configured store, migrated.
    async fn open_store(
        settings: &Settings,
        template_key: &[u8],
    ) -> Result<Arc<dyn Store>, OpenError> {
        let templates = renzheng_store::TemplateKey::from_bytes(template_key)
            .ok_or_else(|| KeyError::Corrupt(keys::TEMPLATE_KEY_FILE.into()))?;
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
