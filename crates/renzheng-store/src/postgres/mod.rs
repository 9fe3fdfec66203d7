//! The PostgreSQL backend: one database shared by every node.
//!
//! Each rule that must hold across nodes is one atomic statement or one transaction
//! under PostgreSQL's default READ COMMITTED isolation (see `src/sql/metering.rs`, and
//! the locking in `dialect.rs`); nothing relies on a node's memory. Its statements are
//! the shared SQL layer (`src/sql/`); this module connects, migrates and converts rows
//! older releases wrote.

mod dialect;
// The shared SQL layer, compiled here against PostgreSQL (and in `sqlite` against
// SQLite): loading the one file as two modules is the point, not a mistake.
#[allow(clippy::duplicate_mod)]
#[path = "../sql/mod.rs"]
mod sql;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use crate::{StoreError, TemplateKey};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// A [`Store`](crate::Store) in a PostgreSQL database, which several nodes may share.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Seals face templates at rest; replaced whole when a key rotation changes which
    /// key seals ([`Store::set_template_key`](crate::Store::set_template_key)).
    templates: std::sync::Arc<std::sync::RwLock<TemplateKey>>,
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL) with a pool of at most
    /// `max_connections`, and applies pending migrations (several nodes starting at once
    /// are serialised by the migrator's own lock). Face templates are sealed with
    /// `templates`.
    pub async fn connect(
        url: &str,
        templates: TemplateKey,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            // While the database is down a request waits this long for a connection,
            // then fails (503), instead of the pool's default 30 s; the pool reconnects
            // by itself when the server is back.
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = PgStore {
            pool,
            templates: std::sync::Arc::new(std::sync::RwLock::new(templates)),
        };
        store.seal_clear_persons().await?;
        store.fill_name_hashes().await?;
        Ok(store)
    }

    /// Converts the registry rows an older release wrote in clear: each is re-keyed by
    /// the ID number's keyed hash (its portraits follow by `ON UPDATE CASCADE`) and its
    /// identity sealed, in one transaction. Nodes starting together take turns (an
    /// advisory lock), and each converts only what is still clear.
    async fn seal_clear_persons(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7406130529)")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query("SELECT id_number, name FROM persons WHERE sealed IS NULL")
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let clear: String = row.try_get("id_number")?;
            let name: String = row.try_get("name")?;
            let key = self.templates().person_key(&clear);
            sqlx::query(
                "UPDATE persons SET id_number = $1, name = '', sealed = $2 WHERE id_number = $3",
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
        }
        Ok(())
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
