//! The store contract, run against PostgreSQL, plus what only PostgreSQL has to prove
//! (the ledger's trigger, reservations from two nodes at once).
//!
//! The server is named by `RENZHENG_TEST_DATABASE_URL` (e.g.
//! `postgres://postgres@127.0.0.1/postgres`, a role that may create databases). Without
//! it every test prints one line saying it is skipped and passes, so that `cargo test`
//! works on machines without PostgreSQL.
//!
//! Each test gets a database of its own, `renzheng_test_<unix seconds>_<random hex>`,
//! dropped (`WITH (FORCE)`) when the test's guard is dropped, pass or panic. A run that
//! was killed cannot drop its databases, so the first test of every run also drops
//! those that the name says are more than an hour old.

mod suite;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use renzheng_store::{AppCode, NewApp, PgStore, QuotaRefusal, Reserved, Store, TemplateKey};
use sqlx::{Connection, PgConnection};

const URL_VAR: &str = "RENZHENG_TEST_DATABASE_URL";
const PREFIX: &str = "renzheng_test_";
/// Older test databases are leftovers of a killed run (no test runs this long).
const STALE_AFTER: Duration = Duration::from_secs(3600);
/// Small, so that many tests at once stay well under the server's connection limit.
const POOL_SIZE: u32 = 4;

/// 2026-12-01T00:00:00Z, as in the suite.
const NOW: i64 = 1_796_083_200_000;
const HOLD: i64 = 60_000;

/// A scratch database; dropping it drops the database.
struct TestDb {
    admin_url: String,
    name: String,
    /// The URL of the scratch database itself.
    url: String,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be the current-thread kind that
        // blocking here would stall: the DROP runs on a thread and runtime of its own.
        let dropped = on_own_runtime(move || async move { drop_database(&admin_url, &name).await });
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// Runs the future `work` makes to completion on a new thread with its own runtime, and
/// waits for it.
fn on_own_runtime<W, F>(work: W) -> Result<(), String>
where
    W: FnOnce() -> F + Send + 'static,
    F: Future<Output = Result<(), sqlx::Error>>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(work())
            .map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the dropping thread panicked".to_owned())?
}

/// `url` with its database replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Only names this file makes are ever interpolated into SQL.
fn is_test_database(name: &str) -> bool {
    name.strip_prefix(PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'_')
    })
}

// Names scratch databases (so a crashed run's leftovers can be told by age), not a use
// case's time.
#[allow(clippy::disallowed_methods)]
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    assert!(is_test_database(name), "refusing to drop {name:?}");
    let mut admin = PgConnection::connect(admin_url).await?;
    // FORCE: the store's pool may still hold connections to it.
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await
}

/// Drops the test databases a killed run left behind (by the age in their name).
async fn drop_stale_databases(admin_url: &str) -> Result<(), sqlx::Error> {
    let names: Vec<String> = {
        let mut admin = PgConnection::connect(admin_url).await?;
        let names = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{PREFIX}%"))
            .fetch_all(&mut admin)
            .await?;
        admin.close().await?;
        names
    };
    let cutoff = unix_seconds().saturating_sub(STALE_AFTER.as_secs());
    for name in names.iter().filter(|n| is_test_database(n)) {
        let created: Option<u64> = name[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|secs| secs.parse().ok());
        if created.is_some_and(|created| created < cutoff) {
            drop_database(admin_url, name).await?;
        }
    }
    Ok(())
}

/// A fresh scratch database with the schema applied, or `None` (said on one line) when
/// no server is configured.
async fn scratch_database() -> Option<TestDb> {
    let Ok(admin_url) = std::env::var(URL_VAR) else {
        println!("skipped: {URL_VAR} is not set (a PostgreSQL server for the store tests)");
        return None;
    };
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT
        .get_or_init(|| async {
            if let Err(e) = drop_stale_databases(&admin_url).await {
                eprintln!("could not drop stale test databases: {e}");
            }
        })
        .await;
    let mut random = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut random);
    let name = format!("{PREFIX}{}_{}", unix_seconds(), hex::encode(random));
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {URL_VAR}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();
    // From here on the guard owns the database, so a failure below still drops it.
    Some(TestDb {
        url: with_database(&admin_url, &name),
        admin_url,
        name,
    })
}

/// A store on a fresh scratch database, or `None` when no server is configured.
async fn pg_store() -> Option<(PgStore, TestDb)> {
    let db = scratch_database().await?;
    let store = PgStore::connect(&db.url, TemplateKey::random(), POOL_SIZE)
        .await
        .expect("connect the PostgreSQL store");
    Some((store, db))
}

suite::store_suite!(optional pg_store());

#[test]
fn database_urls_are_rewritten_to_the_scratch_database() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1/postgres", "x"),
        "postgres://postgres@127.0.0.1/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h:5433/db?sslmode=disable", "x"),
        "postgres://u:p@h:5433/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert!(is_test_database("renzheng_test_1796083200_00ff"));
    assert!(!is_test_database("renzheng_test_"));
    assert!(!is_test_database("renzheng_test_1\"; DROP"));
    assert!(!is_test_database("postgres"));
}

#[tokio::test]
async fn the_ledger_refuses_update_delete_and_truncate() {
    let Some((store, db)) = pg_store().await else {
        return;
    };
    let app = store
        .create_app(&new_app(), NOW)
        .await
        .expect("create an app")
        .id;
    store.grant(&app, None, 5, None, NOW).await.unwrap();
    let mut raw = PgConnection::connect(&db.url).await.unwrap();
    for statement in [
        "UPDATE ledger SET calls = 1000",
        "DELETE FROM ledger",
        "TRUNCATE ledger",
    ] {
        let err = sqlx::query(statement)
            .execute(&mut raw)
            .await
            .expect_err(statement);
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT kind, calls FROM ledger")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    assert_eq!(rows, [("grant".to_owned(), 5)]);
    raw.close().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_reserving_at_once_hold_exactly_what_was_granted() {
    let Some((first, db)) = pg_store().await else {
        return;
    };
    let second = PgStore::connect(&db.url, TemplateKey::random(), 8)
        .await
        .expect("a second node");
    let nodes: [Arc<PgStore>; 2] = [Arc::new(first), Arc::new(second)];
    let app = nodes[0].create_app(&new_app(), NOW).await.unwrap().id;
    nodes[0].grant(&app, None, 20, None, NOW).await.unwrap();

    let attempts: Vec<_> = (0..64)
        .map(|n| {
            let node = Arc::clone(&nodes[n % 2]);
            let app = app.clone();
            tokio::spawn(async move { node.reserve_unit(&app, NOW, HOLD).await })
        })
        .collect();
    let mut held = 0;
    let mut refused = 0;
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt.expect("the task ran").expect("no database error") {
            Reserved::Held(_) => held += 1,
            Reserved::Refused(QuotaRefusal::Exhausted) => refused += 1,
            Reserved::Refused(other) => panic!("refused as {other:?}"),
        }
    }
    assert_eq!((held, refused), (20, 44));
    for node in &nodes {
        let balance = node.balance(&app, NOW).await.unwrap();
        assert_eq!((balance.remaining, balance.reserved), (0, 20));
    }
    for node in &nodes {
        node.close().await;
    }
}

fn new_app() -> NewApp {
    NewApp {
        name: "shop".to_owned(),
        code_hash: AppCode::generate().hash(),
        app_key: renzheng_store::generate_app_key(),
        secret_sealed: vec![7; 40],
        code_sealed: None,
    }
}

/// The registry keeps no identity in clear, and rows an older release wrote in clear are
/// converted (with their portraits) when a node connects.
#[tokio::test]
async fn registry_identities_are_sealed_and_clear_rows_are_converted_on_connect() {
    let Some(db) = scratch_database().await else {
        return;
    };
    let key = TemplateKey::from_bytes(&[9u8; 32]).unwrap();
    let store = PgStore::connect(&db.url, key.clone(), POOL_SIZE)
        .await
        .unwrap();
    let id = renzheng_domain::IdNumber::parse("11010519491231002X").unwrap();
    let name = renzheng_domain::PersonName::parse("张三").unwrap();
    let portrait = |v: f32| renzheng_store::NewPortrait {
        model_id: "m".into(),
        embedding: vec![v; 8],
        quality: None,
        photo: None,
    };
    store
        .enrol(&id, &name, vec![portrait(0.25)], None, NOW)
        .await
        .unwrap();
    let mut raw = PgConnection::connect(&db.url).await.unwrap();
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(id_number || '|' || name || '|' || encode(sealed, 'escape'), ';') FROM persons",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert!(
        !dump.contains(id.as_str()) && !dump.contains("张三"),
        "{dump}"
    );
    // A person and a portrait as an older release wrote them.
    sqlx::query(
        "INSERT INTO persons (id_number, name, created_at, updated_at)
         VALUES ('330106199003070022', '李四', 0, 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let old = renzheng_domain::IdNumber::parse("330106199003070022").unwrap();
    sqlx::query(
        "INSERT INTO portraits (id_number, model_id, embedding, sealed, created_at)
         VALUES ('330106199003070022', 'm', $1, TRUE, 0)",
    )
    .bind(key.seal(old.as_str(), "m", &[0.5f32; 8]))
    .execute(&mut raw)
    .await
    .unwrap();
    store.close().await;
    let store = PgStore::connect(&db.url, key, POOL_SIZE).await.unwrap();
    let clear: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM persons WHERE sealed IS NULL OR name <> '' OR length(id_number) <> 64",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert_eq!(clear, 0);
    let record = store.get_person(&old).await.unwrap().unwrap();
    assert_eq!(record.person.name.as_str(), "李四");
    assert_eq!(record.portraits[0].embedding, vec![0.5f32; 8]);
    assert_eq!(
        store.get_person(&id).await.unwrap().unwrap().portraits[0].embedding,
        vec![0.25f32; 8]
    );
    store.close().await;
}
