//! The SQLite backend: opening the database file, its migrations and the conversion of
//! rows older releases wrote. Its statements are the shared SQL layer (`src/sql/`), with
//! what SQLite does its own way in `dialect.rs`.

mod dialect;
// The shared SQL layer, compiled here against SQLite (and in `postgres` against
// PostgreSQL): loading the one file as two modules is the point, not a mistake.
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;

use crate::{decode_embedding, StoreError, TemplateKey};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a connection waits for another writer before failing with
/// "database is locked". SQLite has one writer at a time; requests are short,
/// so waiting is better than failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Pool size for file databases: WAL lets readers run beside the one writer.
const MAX_CONNECTIONS: u32 = 8;

/// A [`Store`](crate::Store) in one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Seals face templates at rest; replaced whole when a key rotation changes which
    /// key seals ([`Store::set_template_key`](crate::Store::set_template_key)).
    templates: std::sync::Arc<std::sync::RwLock<TemplateKey>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, creating its
    /// parent directories, and applies pending migrations.
    ///
    /// Directories it creates are private (0700) and the database file is created 0600
    /// (SQLite gives its `-wal` and `-shm` files the database's mode); an existing database
    /// file is made 0600 too, and the directory holding it 0700. Deleted rows are
    /// overwritten (`secure_delete`). Face templates are sealed with `templates`; clear
    /// ones left by an older release are sealed on opening.
    pub async fn open(path: impl AsRef<Path>, templates: TemplateKey) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking({
            let path = path.clone();
            move || private_database_file(&path)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("preparing the database file: {e}")))??;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // Deleted rows (a removed person's name and ID number) are overwritten with
            // zeros instead of lingering in free pages.
            .pragma("secure_delete", "ON")
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions
            // before a power cut, and avoids an fsync per commit.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        Self::migrated(pool, templates).await
    }

    /// Moves every committed page from the write-ahead log into the database and empties
    /// the log, so that what a deletion overwrote is not still in the log's older frames.
    /// Best effort: a long reader can keep frames alive until the next checkpoint.
    async fn checkpoint(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint after a deletion failed");
        }
    }

    /// A private in-memory database, for tests (its template key is random: the data dies
    /// with the process anyway).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // Every connection to ":memory:" is a separate, empty database, and
        // it vanishes when its connection closes. So: exactly one
        // connection, never retired.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool, TemplateKey::random()).await
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn migrated(pool: SqlitePool, templates: TemplateKey) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await?;
        let store = SqliteStore {
            pool,
            templates: std::sync::Arc::new(std::sync::RwLock::new(templates)),
        };
        store.seal_clear_templates().await?;
        store.seal_clear_persons().await?;
        store.fill_name_hashes().await?;
        Ok(store)
    }

    /// Converts the registry rows an older release wrote in clear: each is re-keyed by
    /// the ID number's keyed hash (its portraits with it) and its identity sealed, in one
    /// transaction; with `secure_delete`, the clear bytes are overwritten. Needs the
    /// templates sealed first (they stay bound to the clear ID number, which they are).
    async fn seal_clear_persons(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The portraits move to the new key before their person does.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT id_number, name FROM persons WHERE sealed IS NULL")
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let clear: String = row.try_get("id_number")?;
            let name: String = row.try_get("name")?;
            let key = self.templates().person_key(&clear);
            sqlx::query("UPDATE portraits SET id_number = ? WHERE id_number = ?")
                .bind(&key)
                .bind(&clear)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE persons SET id_number = ?, name = '', sealed = ? WHERE id_number = ?",
            )
            .bind(&key)
            .bind(self.templates().seal_person(&key, &clear, &name))
            .bind(&clear)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::info!(
                persons = rows.len(),
                "sealed registry identities stored in clear by an older release"
            );
            self.checkpoint().await;
        }
        Ok(())
    }

    /// Seals the templates an older release stored in clear, in one transaction (with
    /// `secure_delete`, the clear bytes are overwritten).
    async fn seal_clear_templates(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, id_number, model_id, embedding FROM portraits WHERE sealed = 0",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let id_number: String = row.try_get("id_number")?;
            let model_id: String = row.try_get("model_id")?;
            let values = decode_embedding(row.try_get::<&[u8], _>("embedding")?)?;
            sqlx::query("UPDATE portraits SET embedding = ?, sealed = 1 WHERE id = ?")
                .bind(self.templates().seal(&id_number, &model_id, &values))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if !rows.is_empty() {
            tracing::info!(
                portraits = rows.len(),
                "sealed face templates stored in clear by an older release"
            );
            self.checkpoint().await;
        }
        Ok(())
    }
}

/// Creates the database's missing parent directories 0700 and the file itself 0600 (or
/// tightens an existing file to 0600), before SQLite opens it. The directory the file
/// lives in is tightened to 0700 too when it is open to others: SQLite writes its
/// journal and WAL files beside the database, and a directory made by a package or
/// `mkdir` under the default umask (0755) would let anyone list them.
fn private_database_file(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(parent)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(parent)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    mode = format!("{:o}", mode & 0o777),
                    "the data directory was open to other users; tightened to 0700"
                );
                std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))?;
            }
        }
    }
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use renzheng_domain::{IdNumber, PersonName};

    use super::*;
    use crate::{encode_embedding, AppCodeHash, NewApp, NewPortrait, Store};

    #[tokio::test]
    async fn in_memory_state_survives_across_calls() {
        let store = SqliteStore::in_memory().await.unwrap();
        let hash = AppCodeHash::of("code");
        let new = NewApp {
            name: "a".into(),
            code_hash: hash.clone(),
            app_key: crate::generate_app_key(),
            secret_sealed: vec![1; 40],
            code_sealed: None,
        };
        store.create_app(&new, 0).await.unwrap();
        // A second pool connection would see an empty database.
        for _ in 0..3 {
            assert!(store
                .find_app_by_code_hash(&hash, 0)
                .await
                .unwrap()
                .is_some());
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_data_directory_open_to_others_is_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        SqliteStore::open(data.join("db.sqlite"), TemplateKey::random())
            .await
            .unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("db.sqlite")), 0o600);
    }

    #[tokio::test]
    async fn open_uses_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("nested/dir/db.sqlite"),
            TemplateKey::random(),
        )
        .await
        .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        store.close().await;
        // Reopening applies no migration twice.
        SqliteStore::open(
            dir.path().join("nested/dir/db.sqlite"),
            TemplateKey::random(),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn templates_are_sealed_at_rest_and_clear_ones_are_sealed_on_opening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let key = TemplateKey::from_bytes(&[7u8; 32]).unwrap();
        let store = SqliteStore::open(&path, key.clone()).await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        let values = vec![0.125f32; 8];
        let portrait = |values: &[f32]| NewPortrait {
            model_id: "m".into(),
            embedding: values.to_vec(),
            quality: None,
            photo: None,
        };
        store
            .enrol(&id, &name, vec![portrait(&values)], None, 0)
            .await
            .unwrap();
        let blob: Vec<u8> = sqlx::query_scalar("SELECT embedding FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_ne!(blob, encode_embedding(&values));
        assert!(!blob.windows(4).any(|w| w == 0.125f32.to_le_bytes()));
        // The person's row holds neither the ID number nor the name in clear.
        let (key_col, name_col, sealed): (String, String, Vec<u8>) =
            sqlx::query_as("SELECT id_number, name, sealed FROM persons")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert_eq!(key_col, key.person_key(id.as_str()));
        assert_eq!(name_col, "");
        assert!(!sealed.windows(6).any(|w| w == "张三".as_bytes()));
        assert!(!sealed.windows(18).any(|w| w == id.as_str().as_bytes()));
        // A person and a portrait as an older release wrote them: clear.
        let old = IdNumber::parse("330106199003070022").unwrap();
        sqlx::query(
            "INSERT INTO persons (id_number, name, created_at, updated_at) VALUES (?, '李四', 0, 0)",
        )
        .bind(old.as_str())
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO portraits (id_number, model_id, embedding, created_at) VALUES (?, 'm', ?, 0)",
        )
        .bind(old.as_str())
        .bind(encode_embedding(&[0.5f32; 8]))
        .execute(&store.pool)
        .await
        .unwrap();
        store.close().await;

        let store = SqliteStore::open(&path, key.clone()).await.unwrap();
        let clear: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM portraits WHERE sealed = 0 OR length(id_number) <> 64)
                  + (SELECT COUNT(*) FROM persons WHERE sealed IS NULL OR name <> '')",
        )
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(clear, 0, "rows left in clear");
        let record = store.get_person(&id).await.unwrap().unwrap();
        let got: Vec<Vec<f32>> = record.portraits.into_iter().map(|p| p.embedding).collect();
        assert_eq!(got, vec![values]);
        let record = store.get_person(&old).await.unwrap().unwrap();
        assert_eq!(record.person.name.as_str(), "李四");
        let got: Vec<Vec<f32>> = record.portraits.into_iter().map(|p| p.embedding).collect();
        assert_eq!(got, vec![vec![0.5f32; 8]]);
        store.close().await;

        // Another key opens the database, but finds nobody and opens no identity.
        let store = SqliteStore::open(&path, TemplateKey::random())
            .await
            .unwrap();
        assert!(store.get_person(&id).await.unwrap().is_none());
        assert!(matches!(
            store.list_person_ids(None, 10).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn deleting_a_person_row_cascades_to_portraits() {
        // remove_person deletes portraits explicitly; this checks the schema's
        // own guarantee for anything that deletes persons by other means.
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        store
            .upsert_person(&id, &PersonName::parse("张三").unwrap(), 0)
            .await
            .unwrap();
        let portrait = NewPortrait {
            model_id: "m".to_owned(),
            embedding: vec![1.0; 128],
            quality: None,
            photo: None,
        };
        store.add_portrait(&id, portrait, 0).await.unwrap();
        sqlx::query("DELETE FROM persons WHERE id_number = ?")
            .bind(store.templates().person_key(id.as_str()))
            .execute(&store.pool)
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn bad_embedding_blob_reads_as_corrupt() {
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        store.upsert_person(&id, &name, 0).await.unwrap();
        sqlx::query(
            "INSERT INTO portraits (id_number, model_id, embedding, created_at)
             VALUES (?, 'm', x'010203', 0)",
        )
        .bind(store.templates().person_key(id.as_str()))
        .execute(&store.pool)
        .await
        .unwrap();
        assert!(matches!(
            store.get_person(&id).await,
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn kept_photos_are_stored_byte_for_byte() {
        let store = SqliteStore::in_memory().await.unwrap();
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let name = PersonName::parse("张三").unwrap();
        let sealed = vec![0u8, 1, 2, 255, 0, 7];
        let portrait = NewPortrait {
            model_id: "m".into(),
            embedding: vec![0.5; 4],
            quality: None,
            photo: Some(sealed.clone()),
        };
        store
            .enrol(&id, &name, vec![portrait], None, 0)
            .await
            .unwrap();
        let stored: Vec<u8> = sqlx::query_scalar("SELECT photo FROM portraits")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(stored, sealed);
    }
}
