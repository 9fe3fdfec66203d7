//! Benchmark: how long a template-key rotation takes per 10,000 persons.
//!
//! Enrols `--persons N` persons (one 512-value template each, as the SFace pack makes)
//! under one key, then moves them to another in batches of 200, exactly as `renzheng keys
//! rotate template` does (`Store::rekey_registry`), and prints the time. SQLite in a
//! temporary file by default; PostgreSQL with `--database-url URL` (a scratch database is
//! created there and dropped).
//!
//! ```text
//! cargo run --release -p renzheng-store --example key_rotation_bench -- --persons 10000
//! cargo run --release -p renzheng-store --example key_rotation_bench -- --persons 10000 \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres
//! ```

use std::time::Instant;

use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::{NewPortrait, PgStore, SealedData, SqliteStore, Store, TemplateKey};
use sqlx::Connection;

const OLD: [u8; 32] = [1; 32];
const NEW: [u8; 32] = [2; 32];
const DIMS: usize = 512;
const BATCH: u32 = 200;

fn id_number(i: usize) -> IdNumber {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    // 28 days × 1,000 sequence numbers per month, from 1970 on.
    let (month, rest) = (i / 28_000, i % 28_000);
    let id17 = format!(
        "110105{:04}{:02}{:02}{:03}",
        1970 + month / 12,
        1 + month % 12,
        1 + rest / 1000,
        rest % 1000
    );
    let sum: u32 = id17
        .chars()
        .zip(WEIGHTS)
        .map(|(c, w)| c.to_digit(10).unwrap() * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    IdNumber::parse(&format!("{id17}{check}")).expect("a valid ID number")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut persons = 10_000usize;
    let mut database_url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--persons" => persons = args.next().ok_or("--persons N")?.parse()?,
            "--database-url" => database_url = Some(args.next().ok_or("--database-url URL")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let dir = tempfile::tempdir()?;
    let old = TemplateKey::from_bytes(&OLD).expect("32 bytes");
    let (store, backend, scratch): (Box<dyn Store>, &str, Option<(String, String)>) =
        match &database_url {
            None => (
                Box::new(SqliteStore::open(dir.path().join("bench.db"), old).await?),
                "SQLite",
                None,
            ),
            Some(url) => {
                let name = format!("renzheng_rotation_bench_{}", std::process::id());
                let mut admin = sqlx::PgConnection::connect(url).await?;
                sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
                    .execute(&mut admin)
                    .await?;
                let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
                let scratch_url = format!("{base}/{name}");
                (
                    Box::new(PgStore::connect(&scratch_url, old, 8).await?),
                    "PostgreSQL",
                    Some((url.clone(), name)),
                )
            }
        };
    let name = PersonName::parse("王五")?;
    let started = Instant::now();
    for i in 0..persons {
        let embedding: Vec<f32> = (0..DIMS)
            .map(|d| ((i * 31 + d) % 97) as f32 / 97.0)
            .collect();
        let portrait = NewPortrait {
            model_id: "sface-bench".into(),
            embedding,
            quality: None,
            photo: None,
        };
        store
            .enrol(&id_number(i), &name, vec![portrait], None, 0)
            .await?;
    }
    eprintln!(
        "{backend}: enrolled {persons} persons in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    store.set_template_key(TemplateKey::ring(&NEW, &[&OLD]).expect("32 bytes"));
    let started = Instant::now();
    let (mut moved, mut cursor) = (0u64, None::<String>);
    loop {
        let batch = store.rekey_registry(cursor.as_deref(), BATCH).await?;
        moved += batch.persons;
        match batch.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let prefix = TemplateKey::from_bytes(&NEW)
        .expect("32 bytes")
        .sealed_prefix();
    let left = store
        .count_not_sealed_under(SealedData::Identities, &prefix)
        .await?
        + store
            .count_not_sealed_under(SealedData::Templates, &prefix)
            .await?;
    println!(
        "{backend}: rotated {moved} persons in {seconds:.2} s ({:.2} s per 10,000 persons; {left} rows left under the old key)",
        seconds * 10_000.0 / moved.max(1) as f64
    );
    store.close().await;
    if let Some((url, name)) = scratch {
        let mut admin = sqlx::PgConnection::connect(&url).await?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}
