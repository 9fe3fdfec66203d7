//! `renzheng config show`: the configuration in force, as an operator reads it.
//!
//! The settings printed are the very value every command runs with (`main` loads them
//! once, defaults → `--config FILE` → `RENZHENG_*` → `--pack`, and validates them), so
//! what this prints is what `serve` would do — not a second reading of the layers that
//! could disagree with the first. Secrets go through [`Settings::redacted`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use renzheng_app::Settings;
use serde_json::{Map, Value};

use crate::cli::ConfigCommand;

/// Runs `renzheng config …`; `file` is the `--config` file the settings came from.
pub fn run(cmd: ConfigCommand, settings: &Settings, file: Option<&Path>) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show { json } => {
            let tree = settings.redacted();
            if json {
                println!("{}", serde_json::to_string_pretty(&tree)?);
            } else {
                let source = match file {
                    Some(path) => format!("defaults, {}, RENZHENG_* variables", path.display()),
                    None => "defaults, RENZHENG_* variables".to_string(),
                };
                print!(
                    "# The configuration in force ({source}); secrets redacted.\n{}",
                    to_toml(&tree, &defaults_in_effect(settings))
                );
            }
            Ok(())
        }
    }
}

/// What an unset setting comes to, by dotted key: an operator reading "unset" wants to
/// know which directory or pack that means on this machine.
fn defaults_in_effect(settings: &Settings) -> BTreeMap<String, String> {
    let mut notes = BTreeMap::new();
    if let Ok(dir) = renzheng_app::keys::key_dir(settings) {
        notes.insert("key_dir".into(), dir.display().to_string());
    }
    let engine = &settings.engine;
    notes.insert("engine.pack".into(), engine.pack_kind().name().into());
    notes.insert(
        "engine.pack_dir".into(),
        engine.resolved_pack_dir().display().to_string(),
    );
    for table in ["engine.quality", "engine.verdict"] {
        notes.insert(table.into(), "the pack's calibration".into());
    }
    notes
}

/// The settings tree as a TOML document; `notes` says what an unset key comes to.
///
/// A small writer rather than a TOML library: the tree is the settings' own (tables of
/// scalars and lists, no arrays of tables), and TOML has no null, which is written here as
/// a comment saying the setting is unset.
pub fn to_toml(tree: &Value, notes: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    if let Value::Object(map) = tree {
        write_table(&mut out, "", map, notes);
    }
    out
}

/// Writes a table's own keys, then its sub-tables under their headers: in TOML a key
/// after a `[header]` belongs to that header's table, so the order matters.
fn write_table(
    out: &mut String,
    path: &str,
    map: &Map<String, Value>,
    notes: &BTreeMap<String, String>,
) {
    // Sorted whatever order the map keeps (serde_json's `preserve_order` is a feature
    // another crate may turn on), so the output is stable.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for &(key, value) in &entries {
        match value {
            Value::Object(_) => {}
            Value::Null => {
                let dotted = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let _ = match notes.get(&dotted) {
                    Some(note) => writeln!(out, "# {} is unset: {note}", key_text(key)),
                    None => writeln!(out, "# {} is unset", key_text(key)),
                };
            }
            other => {
                let _ = writeln!(out, "{} = {}", key_text(key), inline(other));
            }
        }
    }
    for &(key, value) in &entries {
        if let Value::Object(sub) = value {
            let sub_path = if path.is_empty() {
                key_text(key)
            } else {
                format!("{path}.{}", key_text(key))
            };
            let _ = writeln!(out, "\n[{sub_path}]");
            write_table(out, &sub_path, sub, notes);
        }
    }
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        quoted(key)
    }
}

/// A TOML basic string. JSON's escapes (`\"`, `\\`, `\n`, `\u0001`…) are all valid TOML
/// escapes, so JSON's quoting is TOML's.
fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// A value on one line: a scalar, a list, or an inline table.
fn inline(value: &Value) -> String {
    match value {
        Value::String(text) => quoted(text),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // TOML has no null; inside a list or an inline table, an empty string stands in.
        Value::Null => "\"\"".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let pairs: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key_text(k), inline(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_their_parent_keys_and_nulls_are_comments() {
        let tree = serde_json::json!({
            "listen": "127.0.0.1:8080",
            "engine": {"sessions": 2, "pack": null, "decode": {"max_side": 8192}},
            "img_url": {"allow": ["10.0.0.0/8"], "enabled": true},
            "odd key": "a \"quoted\"\nline",
            "min": 0.0,
        });
        let notes = BTreeMap::from([("engine.pack".to_string(), "sface".to_string())]);
        let text = to_toml(&tree, &notes);
        assert_eq!(
            text,
            "listen = \"127.0.0.1:8080\"\nmin = 0.0\n\"odd key\" = \"a \\\"quoted\\\"\\nline\"\n\
             \n[engine]\n# pack is unset: sface\nsessions = 2\n\n[engine.decode]\nmax_side = 8192\n\
             \n[img_url]\nallow = [\"10.0.0.0/8\"]\nenabled = true\n"
        );
    }

    #[test]
    fn the_default_settings_print_with_every_secret_unset() {
        let settings = Settings::default();
        let text = to_toml(&settings.redacted(), &defaults_in_effect(&settings));
        assert!(text.contains("admin_token = \"<unset>\""), "{text}");
        assert!(text.contains("\n[console]\n"), "{text}");
        assert!(text.contains("password_hash = \"<unset>\""), "{text}");
        assert!(text.contains("\n[signature]\n"), "{text}");
        assert!(text.contains("# pack is unset: sface\n"), "{text}");
    }
}
