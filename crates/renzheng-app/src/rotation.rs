//! Key rotation, online: the template, secrets and photo keys are replaced while the
//! service answers.
//!
//! The database says which key seals ([`KeyRecord`]); each node holds key material (its
//! key, the next key, the previous key: [`keys::held_keys`]) and seals with the key the
//! database names, opening with any key it holds. A rotation:
//!
//! 1. picks the target: the next key the operator gave every node (`next_*_key`), or, one
//!    node with a key directory, a key it makes itself (`<name>.next.key`);
//! 2. records it as current, the old key as previous ([`Store::begin_key_rotation`]);
//!    every node learns it within [`KEY_REFRESH_INTERVAL`] ([`App::refresh_keys`]) and
//!    seals with it from then on; the rotation waits for that;
//! 3. re-seals every row still under another key, in batches, each its own transaction
//!    (templates and identities under the registry's lock, secrets and photos by compare
//!    and set), until none is left;
//! 4. with a key directory, makes the new key `<name>.key` and keeps the old one as
//!    `<name>.previous.key`.
//!
//! Every step is idempotent: a rotation interrupted anywhere is resumed by running it
//! again, and until it has finished every node still holds both keys. `keys retire`
//! forgets the previous key once no row is under it; a node holding only a retired key
//! refuses to start.
//!
//! [`Store::begin_key_rotation`]: renzheng_store::Store::begin_key_rotation

use std::time::{Duration, Instant};

use renzheng_store::{key_id_of_fingerprint, KeyRecord, SealedData, TemplateKey, SEALED_V2};
use serde::Serialize;

use crate::keys::{self, HeldKey, KeyName, PhotoCipher, Sealer, SecretBox};
use crate::{App, AppError};

/// How often a serving node reads which keys seal ([`App::refresh_keys`]).
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// Rows re-sealed per transaction.
const BATCH: u32 = 200;

/// What a rotation did.
#[derive(Debug, Clone, Serialize)]
pub struct RotationSummary {
    /// The key rotated.
    pub key: String,
    /// Fingerprint of the key rotated away from (now the previous key).
    pub from: String,
    /// Fingerprint of the key that now seals.
    pub to: String,
    /// Persons moved to the new key (identity, lookup hashes, templates).
    pub persons: u64,
    /// Templates re-sealed.
    pub templates: u64,
    /// AppSecrets and AppCodes re-sealed.
    pub secrets: u64,
    /// Kept photos re-sealed.
    pub photos: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// One key's state, for `keys status`.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    /// The key.
    pub key: String,
    /// Fingerprint of the key that seals (`None`: no node has used this key yet).
    pub current: Option<String>,
    /// Fingerprint of the key rotated away from, until retired.
    pub previous: Option<String>,
    /// Fingerprints of the retired keys.
    pub retired: Vec<String>,
    /// Rows not yet sealed under the current key (legacy rows of older releases included).
    pub rows_under_other_keys: u64,
    /// The keys this node holds: fingerprint, where from, and role.
    pub held: Vec<HeldKeyStatus>,
}

/// A key this node holds.
#[derive(Debug, Clone, Serialize)]
pub struct HeldKeyStatus {
    /// Its fingerprint.
    pub fingerprint: String,
    /// The setting or file it came from.
    pub source: String,
    /// `current`, `previous`, `retired`, or `next` (a key the database does not know yet).
    pub role: &'static str,
}

/// The key rings the application seals with, besides the template ring (the store's).
#[derive(Clone)]
pub(crate) struct Rings {
    pub(crate) secrets: SecretBox,
    pub(crate) photo: Option<PhotoCipher>,
    /// Fingerprint of the key that seals, per key.
    pub(crate) current: Vec<(KeyName, String)>,
    /// Keys the database names that this node lacks, already logged (once each, not every
    /// refresh).
    pub(crate) missing: Vec<(KeyName, String)>,
}

/// Why a node cannot use its keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The node's keys were all retired (or rotated away from).
    #[error("the {0} key(s) this node holds were retired (or rotated away from) by a key rotation: give it the current {0} key (fingerprint {1}…), see `renzheng keys status`")]
    Retired(KeyName, String),
    /// The node holds no key the database knows.
    #[error("the {0} key differs from the one this database was written with: give this node the same key as the others (or the key directory it was created with)")]
    Mismatch(KeyName),
    /// Rows are still under the previous key, which this node lacks.
    #[error("{1} rows are still sealed under the previous {0} key, which this node lacks: give it the previous key as well (or finish the rotation with `renzheng keys rotate {0}`)")]
    PreviousMissing(KeyName, u64),
    /// A key file could not be read.
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    /// The database could not be read.
    #[error("database: {0}")]
    Store(#[from] renzheng_store::StoreError),
}

/// The first 16 hex digits of a fingerprint, as messages show it.
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}

/// The prefix of what the key of fingerprint `fp` seals.
fn prefix_of(fingerprint: &str) -> Vec<u8> {
    let mut prefix = vec![SEALED_V2];
    prefix.extend_from_slice(&key_id_of_fingerprint(fingerprint).unwrap_or_default());
    prefix
}

/// The kinds of sealed rows under the key `name`.
fn sealed_data(name: KeyName) -> &'static [SealedData] {
    match name {
        KeyName::Template => &[SealedData::Identities, SealedData::Templates],
        KeyName::Secrets => &[
            SealedData::AppSecrets,
            SealedData::AppCodes,
            SealedData::TotpSecrets,
        ],
        KeyName::Photo => &[SealedData::Photos],
    }
}

/// Rows of `name` not sealed under the key of fingerprint `current`.
pub(crate) async fn rows_not_under(
    store: &dyn renzheng_store::Store,
    name: KeyName,
    current: &str,
) -> Result<u64, renzheng_store::StoreError> {
    let prefix = prefix_of(current);
    let mut total = 0;
    for data in sealed_data(name) {
        total += store.count_not_sealed_under(*data, &prefix).await?;
    }
    Ok(total)
}

/// The held keys ordered as a ring: the one of fingerprint `current` first, retired ones
/// left out.
pub(crate) fn ring_order<'a>(
    held: &'a [HeldKey],
    current: &str,
    record: &KeyRecord,
) -> Option<Vec<&'a HeldKey>> {
    let first = held.iter().find(|k| k.fingerprint == current)?;
    let mut ring = vec![first];
    ring.extend(
        held.iter()
            .filter(|k| k.fingerprint != current && !record.retired.contains(&k.fingerprint)),
    );
    Some(ring)
}

/// The template key ring of `ring` (current first).
pub(crate) fn template_ring(ring: &[&HeldKey]) -> TemplateKey {
    let others: Vec<&[u8]> = ring[1..].iter().map(|k| &k.bytes[..]).collect();
    TemplateKey::ring(&ring[0].bytes, &others).expect("held keys are 32 bytes")
}

/// The sealing ring of `name` over `ring` (current first).
pub(crate) fn sealer(name: KeyName, ring: &[&HeldKey]) -> Sealer {
    let others: Vec<&[u8]> = ring[1..].iter().map(|k| &k.bytes[..]).collect();
    Sealer::ring(name, &ring[0].bytes, &others)
}

/// The ring of `name` a node starting now must use: its held keys ordered by the
/// database's record (claiming its own key as the first when there is none).
pub(crate) async fn resolve(
    store: &dyn renzheng_store::Store,
    name: KeyName,
    held: &[HeldKey],
    now_ms: i64,
) -> Result<(KeyRecord, Vec<HeldKey>), KeyRingError> {
    let record = match store.key_record(name.as_str()).await? {
        Some(record) => record,
        None => {
            store
                .claim_key_fingerprint(name.as_str(), &held[0].fingerprint, now_ms)
                .await?;
            store.key_record(name.as_str()).await?.unwrap_or_default()
        }
    };
    let Some(ring) = ring_order(held, &record.current, &record) else {
        let stale = |k: &HeldKey| {
            record.retired.contains(&k.fingerprint)
                || record.previous.as_deref() == Some(k.fingerprint.as_str())
        };
        if held.iter().any(stale) {
            return Err(KeyRingError::Retired(
                name,
                short(&record.current).to_owned(),
            ));
        }
        return Err(KeyRingError::Mismatch(name));
    };
    if let Some(previous) = &record.previous {
        if !held.iter().any(|k| &k.fingerprint == previous) {
            let left = rows_not_under(store, name, &record.current).await?;
            if left > 0 {
                return Err(KeyRingError::PreviousMissing(name, left));
            }
        }
    }
    let ring = ring.into_iter().cloned().collect();
    Ok((record, ring))
}

impl App {
    /// The AppSecret box in force.
    pub(crate) fn secrets(&self) -> SecretBox {
        self.rings_now().secrets
    }

    /// The kept-photo cipher in force (`keep_photos`).
    pub(crate) fn photo_cipher(&self) -> Option<PhotoCipher> {
        self.rings_now().photo
    }

    fn rings_now(&self) -> Rings {
        self.rings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn current_fingerprint(&self, name: KeyName) -> Option<String> {
        self.rings_now()
            .current
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fp)| fp)
    }

    /// Seals with `ring` (current first) for the key `name` from now on.
    fn install(&self, name: KeyName, ring: &[&HeldKey]) {
        match name {
            KeyName::Template => self.store.set_template_key(template_ring(ring)),
            KeyName::Secrets | KeyName::Photo => {
                let mut rings = self
                    .rings
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if name == KeyName::Secrets {
                    rings.secrets = SecretBox::from_ring(sealer(name, ring));
                } else {
                    rings.photo = Some(PhotoCipher::from_ring(sealer(name, ring)));
                }
            }
        }
        let mut rings = self
            .rings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        rings.current.retain(|(n, _)| *n != name);
        rings.current.push((name, ring[0].fingerprint.clone()));
    }

    /// The keys this node uses (the photo key only with `keep_photos`).
    fn key_names(&self) -> Vec<KeyName> {
        KeyName::ALL
            .into_iter()
            .filter(|n| *n != KeyName::Photo || self.settings.keep_photos)
            .collect()
    }

    /// Follows a rotation started elsewhere: when the database names another key as
    /// current, seals with it from now on, reading the key files again to find it (one
    /// node: `keys rotate` wrote it to the key directory). A serving node calls this every
    /// [`KEY_REFRESH_INTERVAL`].
    pub async fn refresh_keys(&self) -> Result<(), AppError> {
        for name in self.key_names() {
            let Some(record) = self.store.key_record(name.as_str()).await? else {
                continue;
            };
            if self.current_fingerprint(name).as_deref() == Some(record.current.as_str()) {
                continue;
            }
            let held =
                keys::held_keys(&self.settings, name).map_err(|e| AppError::Keys(e.to_string()))?;
            match ring_order(&held, &record.current, &record) {
                Some(ring) => {
                    self.install(name, &ring);
                    tracing::info!(
                        key = name.as_str(),
                        fingerprint = short(&record.current),
                        "a key rotation started: sealing with the new key"
                    );
                }
                None => {
                    let mut rings = self
                        .rings
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let missing = (name, record.current.clone());
                    if !rings.missing.contains(&missing) {
                        rings.missing.push(missing);
                        tracing::error!(
                            key = name.as_str(),
                            fingerprint = short(&record.current),
                            "a key rotation started, but this node lacks the new key: give it the next key (SECURITY.md, Key rotation)"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads which keys seal every [`KEY_REFRESH_INTERVAL`], until the task is dropped.
    pub async fn run_key_refresh(&self) {
        loop {
            tokio::time::sleep(KEY_REFRESH_INTERVAL).await;
            if let Err(e) = self.refresh_keys().await {
                tracing::warn!(error = %e, "reading the key records failed");
            }
        }
    }

    /// The state of every rotatable key, and the keys this node holds.
    pub async fn key_status(&self) -> Result<Vec<KeyStatus>, AppError> {
        let mut out = Vec::new();
        for name in KeyName::ALL {
            let record = self.store.key_record(name.as_str()).await?;
            let held = if self.key_names().contains(&name) {
                keys::held_keys(&self.settings, name).map_err(|e| AppError::Keys(e.to_string()))?
            } else {
                Vec::new()
            };
            let rows = match &record {
                Some(r) => rows_not_under(&*self.store, name, &r.current).await?,
                None => 0,
            };
            let held = held
                .iter()
                .map(|k| HeldKeyStatus {
                    fingerprint: k.fingerprint.clone(),
                    source: k.source.clone(),
                    role: match &record {
                        Some(r) if r.current == k.fingerprint => "current",
                        Some(r) if r.previous.as_deref() == Some(k.fingerprint.as_str()) => {
                            "previous"
                        }
                        Some(r) if r.retired.contains(&k.fingerprint) => "retired",
                        _ => "next",
                    },
                })
                .collect();
            out.push(KeyStatus {
                key: name.as_str().to_owned(),
                current: record.as_ref().map(|r| r.current.clone()),
                previous: record.as_ref().and_then(|r| r.previous.clone()),
                retired: record.map(|r| r.retired).unwrap_or_default(),
                rows_under_other_keys: rows,
                held,
            });
        }
        Ok(out)
    }

    /// Rotates the key `name` (see the module's docs), reporting progress lines to
    /// `progress`. `grace` is how long nodes get to learn the new key before rows move
    /// ([`KEY_REFRESH_INTERVAL`] and then some, unless the caller knows better).
    pub async fn rotate_key(
        &self,
        name: KeyName,
        grace: Duration,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<RotationSummary, AppError> {
        if !self.key_names().contains(&name) {
            return Err(AppError::Keys(
                "keep_photos is off: there is no photo key to rotate".into(),
            ));
        }
        let started = Instant::now();
        let keys_err = |e: keys::KeyError| AppError::Keys(e.to_string());
        let record = self
            .store
            .key_record(name.as_str())
            .await?
            .ok_or_else(|| AppError::Keys(format!("no {name} key is recorded yet")))?;
        let mut held = keys::held_keys(&self.settings, name).map_err(keys_err)?;
        let from;
        let to;
        if let Some(previous) = record.previous.clone() {
            // A rotation was started: resume it (its target is current already).
            if !held.iter().any(|k| k.fingerprint == record.current) {
                return Err(AppError::Keys(format!(
                    "a rotation of the {name} key to {}… was started, but this node lacks that key; give it the key as next_{name}_key (or run this where it was started)",
                    short(&record.current)
                )));
            }
            if rows_not_under(&*self.store, name, &record.current).await? == 0
                && !held.iter().any(|k| k.fingerprint == previous)
            {
                return Err(AppError::Keys(format!(
                    "the {name} key was rotated and nothing is left under the previous key: retire it with `renzheng keys retire {name}` before rotating again"
                )));
            }
            progress(format!(
                "resuming the rotation of the {name} key {}… → {}…",
                short(&previous),
                short(&record.current)
            ));
            from = previous;
            to = record.current.clone();
        } else {
            let target = held.iter().find(|k| {
                k.fingerprint != record.current && !record.retired.contains(&k.fingerprint)
            });
            let target = match target {
                Some(k) => k.fingerprint.clone(),
                None if self.settings.database_url.is_none() => {
                    let path = keys::key_dir(&self.settings)
                        .map_err(keys_err)?
                        .join(name.next_file());
                    let key = keys::create_key_file(&path).map_err(keys_err)?;
                    progress(format!("made a new {name} key in {}", path.display()));
                    held = keys::held_keys(&self.settings, name).map_err(keys_err)?;
                    keys::fingerprint(&key)
                }
                None => {
                    return Err(AppError::Keys(format!(
                        "several nodes share this database: make a key with `renzheng keys new {name}`, give it to every node as RENZHENG_{} (next_{name}_key), restart them, then run this again",
                        name.next_env()
                    )))
                }
            };
            self.store
                .begin_key_rotation(name.as_str(), &record.current, &target, self.now_ms())
                .await?;
            progress(format!(
                "the {name} key {}… → {}…: new writes now use the new key",
                short(&record.current),
                short(&target)
            ));
            from = record.current.clone();
            to = target;
        }
        let record = self
            .store
            .key_record(name.as_str())
            .await?
            .unwrap_or_default();
        let ring =
            ring_order(&held, &to, &record).ok_or_else(|| AppError::Keys("no ring".into()))?;
        self.install(name, &ring);
        // Nodes read the record every KEY_REFRESH_INTERVAL: after the grace none seals
        // with the old key any more, so what the batches leave behind stays done.
        tokio::time::sleep(grace).await;
        let mut summary = RotationSummary {
            key: name.as_str().to_owned(),
            from: from.clone(),
            to: to.clone(),
            persons: 0,
            templates: 0,
            secrets: 0,
            photos: 0,
            seconds: 0.0,
        };
        // Passes until nothing is left: a row written under the old key by a node that
        // had not yet learnt the new one is picked up by the next pass.
        for pass in 1..=5 {
            match name {
                KeyName::Template => self.rekey_templates(&mut summary, progress).await?,
                KeyName::Secrets => self.reseal_secrets(&mut summary).await?,
                KeyName::Photo => self.reseal_photos(&mut summary, progress).await?,
            }
            let left = rows_not_under(&*self.store, name, &to).await?;
            if left == 0 {
                break;
            }
            if pass == 5 {
                return Err(AppError::Keys(format!(
                    "{left} rows are still under another {name} key after {pass} passes: a node may lack the new key, or rows do not open with any key this node holds; run this again, and see `renzheng keys status`"
                )));
            }
        }
        if self.settings.database_url.is_none() && name.configured(&self.settings).is_none() {
            self.promote_key_files(name, &from, &to)
                .map_err(|e| AppError::Keys(e.to_string()))?;
        }
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    async fn rekey_templates(
        &self,
        summary: &mut RotationSummary,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), AppError> {
        let mut cursor: Option<String> = None;
        loop {
            let batch = self.store.rekey_registry(cursor.as_deref(), BATCH).await?;
            summary.persons += batch.persons;
            summary.templates += batch.templates;
            if batch.persons > 0 {
                progress(format!(
                    "{} persons, {} templates re-sealed",
                    summary.persons, summary.templates
                ));
            }
            match batch.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    async fn reseal_secrets(&self, summary: &mut RotationSummary) -> Result<(), AppError> {
        for app in self.store.list_apps().await? {
            self.reseal_code(&app, summary).await?;
            let (Some(app_key), Some(sealed)) = (&app.app_key, &app.secret_sealed) else {
                continue;
            };
            let secrets = self.secrets();
            if secrets.ring().is_current(sealed) {
                continue;
            }
            let Some(secret) = secrets.open(app_key, sealed) else {
                tracing::warn!(app = %app.id, "an AppSecret opens with no key this node holds");
                continue;
            };
            let resealed = secrets.seal(app_key, &secret);
            // A secret reset meanwhile is already under the new key: left alone.
            if self
                .store
                .reseal_app_secret(&app.id, sealed, &resealed)
                .await?
            {
                summary.secrets += 1;
            }
        }
        self.reseal_totp_secrets(summary).await
    }

    /// Re-seals the console operators' TOTP secrets under the current secrets key.
    async fn reseal_totp_secrets(&self, summary: &mut RotationSummary) -> Result<(), AppError> {
        for operator in self.store.console_operators().await? {
            let secrets = self.secrets();
            let Some(sealed) = operator
                .totp
                .map(|t| t.sealed)
                .filter(|s| !secrets.ring().is_current(s))
            else {
                continue;
            };
            let binding = crate::second_factor::binding(&operator.name);
            let Some(secret) = secrets.open(&binding, &sealed) else {
                tracing::warn!("a console TOTP secret opens with no key this node holds");
                continue;
            };
            let resealed = secrets.seal(&binding, &secret);
            // A factor set up or turned off meanwhile: left alone.
            if self
                .store
                .reseal_console_totp(&operator.name, &sealed, &resealed)
                .await?
            {
                summary.secrets += 1;
            }
        }
        Ok(())
    }

    /// Re-seals `app`'s kept AppCode under the current secrets key, if it has one not
    /// already there.
    async fn reseal_code(
        &self,
        app: &renzheng_store::App,
        summary: &mut RotationSummary,
    ) -> Result<(), AppError> {
        let secrets = self.secrets();
        let Some(sealed) = app
            .code_sealed
            .as_ref()
            .filter(|s| !secrets.ring().is_current(s))
        else {
            return Ok(());
        };
        let binding = crate::apps::code_binding(&app.code_hash);
        let Some(code) = secrets.open(&binding, sealed) else {
            tracing::warn!(app = %app.id, "an AppCode opens with no key this node holds");
            return Ok(());
        };
        let resealed = secrets.seal(&binding, &code);
        // A code reset meanwhile is already under the new key: left alone.
        if self
            .store
            .reseal_app_code(&app.id, sealed, &resealed)
            .await?
        {
            summary.secrets += 1;
        }
        Ok(())
    }

    async fn reseal_photos(
        &self,
        summary: &mut RotationSummary,
        progress: &(dyn Fn(String) + Send + Sync),
    ) -> Result<(), AppError> {
        let cipher = self
            .photo_cipher()
            .ok_or_else(|| AppError::Keys("keep_photos is off".into()))?;
        let prefix = cipher.ring().prefix();
        let mut after = 0;
        loop {
            let batch = self
                .store
                .photos_not_sealed_under(&prefix, after, BATCH)
                .await?;
            let Some(last) = batch.last() else {
                return Ok(());
            };
            after = last.portrait_id;
            for photo in &batch {
                let Some(clear) = cipher.decrypt(photo.id_number.as_str(), &photo.sealed) else {
                    tracing::warn!(
                        portrait = photo.portrait_id,
                        "a kept photo opens with no key this node holds (or not for its person)"
                    );
                    continue;
                };
                let resealed = cipher.encrypt(photo.id_number.as_str(), &clear);
                if self
                    .store
                    .reseal_photo(photo.portrait_id, &photo.sealed, &resealed)
                    .await?
                {
                    summary.photos += 1;
                }
            }
            progress(format!("{} photos re-sealed", summary.photos));
        }
    }

    /// One node with a key directory: the new key becomes `<name>.key` and the old one
    /// `<name>.previous.key`. Each step leaves a set of files that still holds both keys
    /// (keys are found by fingerprint, not by file name), so a crash anywhere is harmless.
    fn promote_key_files(&self, name: KeyName, from: &str, to: &str) -> Result<(), keys::KeyError> {
        let dir = keys::key_dir(&self.settings)?;
        let io = |path: &std::path::Path| {
            let path = path.display().to_string();
            move |source| keys::KeyError::Io {
                path: path.clone(),
                source,
            }
        };
        let main = dir.join(name.file());
        let next = dir.join(name.next_file());
        let previous = dir.join(name.previous_file());
        let main_key = keys::read_key(&main)?;
        if keys::fingerprint(&main_key) == from {
            // The old key first goes to the previous file (written whole, then renamed
            // into place), so that it exists somewhere at every moment.
            let tmp = dir.join(format!("{}.previous.tmp", name.as_str()));
            let _ = std::fs::remove_file(&tmp);
            std::fs::copy(&main, &tmp).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &previous).map_err(io(&previous))?;
        }
        if next.exists() && keys::fingerprint(&keys::read_key(&next)?) == to {
            std::fs::rename(&next, &main).map_err(io(&main))?;
        }
        Ok(())
    }

    /// Retires the previous key of `name` once no row is under it: the database forgets
    /// it (a node holding only it refuses to start) and, with a key directory, its file is
    /// deleted. Returns its fingerprint.
    pub async fn retire_key(&self, name: KeyName) -> Result<String, AppError> {
        let record = self
            .store
            .key_record(name.as_str())
            .await?
            .ok_or_else(|| AppError::Keys(format!("no {name} key is recorded yet")))?;
        let Some(previous) = record.previous else {
            return Err(AppError::Keys(format!(
                "the {name} key has no previous key to retire"
            )));
        };
        let left = rows_not_under(&*self.store, name, &record.current).await?;
        if left > 0 {
            return Err(AppError::Keys(format!(
                "{left} rows are still sealed under another {name} key: finish the rotation with `renzheng keys rotate {name}` first"
            )));
        }
        if self.settings.database_url.is_none() && name.configured(&self.settings).is_none() {
            // A rotation that stopped between its last batch and its files: the current
            // key must be the key file before the previous one's file goes.
            self.promote_key_files(name, &previous, &record.current)
                .map_err(|e| AppError::Keys(e.to_string()))?;
        }
        self.store
            .retire_key(name.as_str(), &previous, self.now_ms())
            .await?;
        if let Ok(dir) = keys::key_dir(&self.settings) {
            for file in [
                name.previous_file(),
                name.next_file(),
                name.file().to_owned(),
            ] {
                let path = dir.join(file);
                if keys::read_key(&path).is_ok_and(|k| keys::fingerprint(&k) == previous) {
                    std::fs::remove_file(&path)
                        .map_err(|e| AppError::Keys(format!("deleting {}: {e}", path.display())))?;
                }
            }
        }
        Ok(previous)
    }
}
