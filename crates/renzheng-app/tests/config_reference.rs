//! `docs/configuration.md` cannot drift from [`Settings`]: every setting is documented
//! with its default and its environment variable, nothing is documented that does not
//! exist, every documented variable really sets its setting, and the page's examples load.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use renzheng_app::settings::SECRET_KEYS;
use renzheng_app::Settings;
use renzheng_vision::{QualityThresholds, ScoreMap, VerdictThresholds};
use serde_json::Value;

/// `Settings::load` reads the process environment, which the tests here change: one at a
/// time.
static ENV: Mutex<()> = Mutex::new(());

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md")
}

fn doc() -> String {
    std::fs::read_to_string(doc_path()).expect("docs/configuration.md")
}

/// Every leaf of a JSON tree under its dotted key (`engine.decode.max_side`); `null`s and
/// lists are leaves.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

fn flat(settings: &Settings) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(settings).unwrap(), &mut out);
    out
}

/// The defaults' keys, and the keys of the tables that are unset by default
/// (`engine.quality.*`, `engine.verdict.*`) as they are when set.
fn every_key() -> BTreeMap<String, Value> {
    let mut full = Settings::default();
    full.engine.quality = Some(Box::new(QualityThresholds::default()));
    full.engine.verdict = Some(VerdictThresholds {
        score: Some(ScoreMap::default()),
        ..VerdictThresholds::default()
    });
    flat(&full)
}

/// `engine.decode.max_side` → `RENZHENG_ENGINE__DECODE__MAX_SIDE`.
fn env_name(key: &str) -> String {
    format!("RENZHENG_{}", key.to_ascii_uppercase().replace('.', "__"))
}

/// A default as the page writes it: `` `value` `` (strings without quotes), or "unset".
fn documented_default(value: &Value) -> String {
    match value {
        Value::Null => "unset".into(),
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    }
}

/// One row of the page's tables.
struct Row {
    key: String,
    kind: String,
    default: String,
    env: String,
}

/// The rows of every table whose first column is a `key`.
fn rows(doc: &str) -> Vec<Row> {
    doc.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            assert!(cells.len() >= 7, "a row of five columns: {line}");
            Row {
                key: cells[1].trim_matches('`').to_string(),
                kind: cells[2].to_string(),
                default: cells[3].to_string(),
                env: cells[4].to_string(),
            }
        })
        .collect()
}

#[test]
fn every_setting_is_documented_with_its_default_and_variable() {
    let doc = doc();
    let rows = rows(&doc);
    let mut missing = Vec::new();
    for (key, default) in flat(&Settings::default()) {
        let Some(row) = rows.iter().find(|r| r.key == key) else {
            missing.push(format!("{key}: no row"));
            continue;
        };
        if !row.default.contains(&documented_default(&default)) {
            missing.push(format!(
                "{key}: default should read {} (row says {})",
                documented_default(&default),
                row.default
            ));
        }
        if !row.env.contains(&format!("`{}`", env_name(&key))) {
            missing.push(format!("{key}: variable should be {}", env_name(&key)));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md is behind the code:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_setting_exists() {
    let defaults = flat(&Settings::default());
    let every = every_key();
    let mut unknown = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for row in rows(&doc()) {
        if !seen.insert(row.key.clone()) {
            unknown.push(format!("{}: documented twice", row.key));
        }
        // A key inside a table that is unset by default (`engine.quality.min_sharpness`).
        let inside_unset_table = every.contains_key(&row.key)
            && defaults
                .iter()
                .any(|(k, v)| v.is_null() && row.key.starts_with(&format!("{k}.")));
        if !defaults.contains_key(&row.key) && !inside_unset_table {
            unknown.push(format!("{}: no such setting", row.key));
            continue;
        }
        let env = env_name(&row.key);
        // An unset table's row names its variables' common prefix (`RENZHENG_ENGINE__QUALITY__…`).
        if !row.env.contains(&format!("`{env}`")) && !row.env.contains(&format!("`{env}__…`")) {
            unknown.push(format!("{}: variable should be {env}", row.key));
        }
    }
    assert!(
        unknown.is_empty(),
        "docs/configuration.md lists what the code lacks:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_secrets_are_the_ones_documented_as_secret() {
    let documented: Vec<String> = rows(&doc())
        .into_iter()
        .filter(|r| r.kind.contains("*secret*"))
        .map(|r| r.key)
        .collect();
    let mut listed: Vec<String> = SECRET_KEYS.iter().map(ToString::to_string).collect();
    listed.sort();
    let mut documented_sorted = documented.clone();
    documented_sorted.sort();
    assert_eq!(documented_sorted, listed);
}

/// A value for `key`'s variable other than its default, and the setting it must give.
/// Each is valid with every other setting at its default.
fn changed(key: &str, default: &Value) -> Option<(String, Value)> {
    let text = |s: &str| Some((s.to_string(), Value::String(s.to_string())));
    match (key, default) {
        ("listen", _) => text("127.0.0.1:8081"),
        ("log.format", _) => text("pretty"),
        ("log.filter", _) => text("debug"),
        ("engine.detection.mode", _) => text("exact"),
        ("engine.pack", _) => text("dlib"),
        ("database_url", _) => text("postgres://renzheng@db.internal/renzheng"),
        ("admin_token" | "audit_key" | "compliance.alert_webhook_secret", _) => {
            text("a-long-enough-secret-value")
        }
        ("compliance.alert_webhook", _) => text("https://ops.example.com/hooks/renzheng"),
        ("alerts.smtp_url", _) => text("smtps://alerts:a-password@mail.example.cn"),
        ("alerts.email_from", _) => text("人证 <alerts@example.cn>"),
        ("alerts.operator_emails", _) => Some((
            "[dpo@example.cn,ops@example.cn]".into(),
            serde_json::json!(["dpo@example.cn", "ops@example.cn"]),
        )),
        (
            "secrets_key" | "template_key" | "photo_key" | "next_secrets_key" | "next_template_key"
            | "next_photo_key",
            _,
        ) => text(&"ab".repeat(32)),
        ("console.password_hash", _) => text("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        ("key_dir" | "engine.pack_dir" | "console.import_root", _) => {
            text("/tmp/renzheng-reference")
        }
        // The page's own syntax for a whole table and for a list.
        ("engine.quality", _) => Some((
            "{min_sharpness=2.5}".into(),
            serde_json::to_value(QualityThresholds {
                min_sharpness: 2.5,
                ..QualityThresholds::default()
            })
            .unwrap(),
        )),
        ("engine.verdict", _) => Some((
            "{same_max_distance=0.5,different_min_distance=0.75}".into(),
            serde_json::json!({"same_max_distance": 0.5, "different_min_distance": 0.75}),
        )),
        ("engine.size_bands", _) => Some((
            "[{below_inter_eye_px=20,same_max_distance=0.5,different_min_distance=0.9}]".into(),
            serde_json::json!([{"below_inter_eye_px": 20.0, "same_max_distance": 0.5, "different_min_distance": 0.9}]),
        )),
        ("img_url.allow" | "console.trusted_proxies", _) => Some((
            "[127.0.0.1/32,10.1.2.0/24]".into(),
            serde_json::json!(["127.0.0.1/32", "10.1.2.0/24"]),
        )),
        (_, Value::String(s)) => text(&format!("{s}-changed")),
        (_, Value::Bool(b)) => Some(((!b).to_string(), Value::Bool(!b))),
        (_, Value::Number(n)) if n.is_u64() => {
            let v = n.as_u64().unwrap() + 1;
            Some((v.to_string(), Value::from(v)))
        }
        (_, Value::Number(n)) if n.is_i64() => {
            let v = n.as_i64().unwrap() + 1;
            Some((v.to_string(), Value::from(v)))
        }
        (_, Value::Number(n)) => {
            let v = n.as_f64().unwrap() + 0.5;
            Some((v.to_string(), Value::from(v)))
        }
        _ => None,
    }
}

/// Runs `f` with no `RENZHENG_*` setting in the environment but `vars`.
fn with_env<T>(vars: &[(String, String)], f: impl FnOnce() -> T) -> T {
    let _one_at_a_time = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let saved: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("RENZHENG_"))
        .collect();
    for (k, _) in &saved {
        std::env::remove_var(k);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    let result = f();
    for (k, _) in vars {
        std::env::remove_var(k);
    }
    for (k, v) in &saved {
        std::env::set_var(k, v);
    }
    result
}

#[test]
fn every_documented_variable_sets_its_setting() {
    let mut failures = Vec::new();
    for (key, default) in flat(&Settings::default()) {
        let Some((text, want)) = changed(&key, &default) else {
            failures.push(format!("{key}: no test value"));
            continue;
        };
        let var = env_name(&key);
        let loaded = with_env(&[(var.clone(), text.clone())], || Settings::load(None));
        match loaded {
            Err(e) => failures.push(format!("{var}={text}: {e}")),
            Ok(settings) => {
                let got = flat(&settings);
                let got_value = if want.is_object() {
                    // A table: compare the subtree.
                    let pointer = format!("/{}", key.replace('.', "/"));
                    serde_json::to_value(&settings)
                        .unwrap()
                        .pointer(&pointer)
                        .cloned()
                } else {
                    got.get(&key).cloned()
                };
                if got_value.as_ref() != Some(&want) {
                    failures.push(format!("{var}={text}: got {got_value:?}, want {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The fenced blocks of `lang` in `doc`.
fn blocks<'a>(doc: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    doc.match_indices(&fence)
        .map(|(at, _)| {
            let body = &doc[at + fence.len()..];
            &body[..body.find("```").expect("a closed block")]
        })
        .collect()
}

#[test]
fn the_examples_load_and_the_file_and_the_environment_agree() {
    let doc = doc();
    let toml = blocks(&doc, "toml");
    let sh = blocks(&doc, "sh");
    assert_eq!((toml.len(), sh.len()), (1, 1), "one example of each");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("renzheng.toml");
    std::fs::write(&file, toml[0]).unwrap();
    let from_file = with_env(&[], || Settings::load(Some(&file))).expect("the file example");
    let vars: Vec<(String, String)> = sh[0]
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(vars.len() >= 5, "{vars:?}");
    let from_env = with_env(&vars, || Settings::load(None)).expect("the environment example");
    assert_eq!(flat(&from_file), flat(&from_env));
    assert_ne!(flat(&from_file), flat(&Settings::default()));
}

#[test]
fn the_redacted_view_hides_every_secret_and_marks_the_unset_ones() {
    let secret = "hunter2-is-a-long-enough-token";
    let set = with_env(
        &[
            ("RENZHENG_ADMIN_TOKEN".into(), secret.into()),
            (
                "RENZHENG_DATABASE_URL".into(),
                "postgres://renzheng:hunter2@db.internal:5432/renzheng".into(),
            ),
            (
                "RENZHENG_CONSOLE__PASSWORD_HASH".into(),
                "$argon2id$hunter2".into(),
            ),
        ],
        || Settings::load(None),
    )
    .unwrap();
    let shown = set.redacted();
    let text = shown.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(shown["admin_token"], "<redacted>");
    assert_eq!(shown["console"]["password_hash"], "<redacted>");
    assert_eq!(
        shown["database_url"],
        "postgres://renzheng:<redacted>@db.internal:5432/renzheng"
    );
    assert_eq!(shown["audit_key"], "<unset>");
    assert_eq!(shown["listen"], "127.0.0.1:8080");
    // Redacting is only for this view: the settings still serialize in full (the
    // defaults layer of `load` and the environment filter rely on it).
    assert!(serde_json::to_string(&set).unwrap().contains(secret));
}

#[test]
fn the_keys_of_the_unset_tables_are_set_by_their_own_variables() {
    let mut failures = Vec::new();
    // A quality key alone: the others take their defaults.
    for (key, default) in every_key() {
        if !key.starts_with("engine.quality.") {
            continue;
        }
        let (text, want) = changed(&key, &default).expect("a number");
        let var = env_name(&key);
        match with_env(&[(var.clone(), text.clone())], || Settings::load(None)) {
            Ok(settings) if flat(&settings).get(&key) == Some(&want) => {}
            other => failures.push(format!(
                "{var}={text}: {:?}",
                other.map(|s| flat(&s).get(&key).cloned())
            )),
        }
    }
    // The verdict's two distances are required together; the score map is optional.
    let verdict = [
        ("engine.verdict.same_max_distance", "0.5"),
        ("engine.verdict.different_min_distance", "0.75"),
        ("engine.verdict.score.centre", "0.6"),
        ("engine.verdict.score.width", "0.05"),
    ];
    let vars: Vec<(String, String)> = verdict
        .iter()
        .map(|(k, v)| (env_name(k), v.to_string()))
        .collect();
    let settings = with_env(&vars, || Settings::load(None)).expect("the verdict variables");
    let got = flat(&settings);
    for (key, text) in verdict {
        if got.get(key).and_then(Value::as_f64) != text.parse().ok() {
            failures.push(format!("{key}: got {:?}, want {text}", got.get(key)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
