//! The command-line contract: `apps`, `registry`, exit codes and one-line errors.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::*;

fn renzheng(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renzheng"))
        .args(args)
        .env("RENZHENG_DATA_DIR", data_dir)
        .env("RENZHENG_KEY_DIR", data_dir.join("keys"))
        .env_remove("RENZHENG_LISTEN")
        .output()
        .expect("running renzheng")
}

fn ok_json(data_dir: &Path, args: &[&str]) -> Value {
    let out = renzheng(data_dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn fails_with(data_dir: &Path, args: &[&str], needle: &str) {
    let out = renzheng(data_dir, args);
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line reason: {stderr}"
    );
    assert!(stderr.contains(needle), "{args:?}: {stderr}");
}

#[test]
fn apps_commands() {
    let dir = tempfile::tempdir().unwrap();
    let created = ok_json(
        dir.path(),
        &["apps", "create", "--name", "partner", "--json"],
    );
    let app_id = created["app_id"].as_str().unwrap();
    assert_eq!(created["app_code"].as_str().unwrap().len(), 32);
    let listed = ok_json(dir.path(), &["apps", "list", "--json"]);
    assert_eq!(listed[0]["app_id"], app_id);
    assert!(!listed
        .to_string()
        .contains(created["app_code"].as_str().unwrap()));
    assert!(renzheng(dir.path(), &["apps", "disable", app_id])
        .status
        .success());
    assert_eq!(
        ok_json(dir.path(), &["apps", "list", "--json"])[0]["enabled"],
        false
    );
    assert!(renzheng(dir.path(), &["apps", "enable", app_id])
        .status
        .success());
    fails_with(dir.path(), &["apps", "disable", "app_nope"], "no app");
}

/// The metering interface scripts drive: create (secrets once), packages, grant, usage,
/// reset-code.
#[test]
fn packages_grants_usage_and_code_resets_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let created = ok_json(dir.path(), &["apps", "create", "--name", "shop", "--json"]);
    let app_id = created["app_id"].as_str().unwrap();
    assert_eq!(created["app_key"].as_str().unwrap().len(), 20);
    assert_eq!(created["app_secret"].as_str().unwrap().len(), 32);
    let listed = ok_json(dir.path(), &["apps", "list", "--json"]).to_string();
    assert!(!listed.contains(created["app_secret"].as_str().unwrap()));

    let packages = ok_json(dir.path(), &["packages", "list", "--json"]);
    let trial = packages
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "trial")
        .expect("the trial package is seeded");
    assert_eq!(trial["calls"], 20);

    let usage = ok_json(dir.path(), &["apps", "usage", app_id, "--json"]);
    assert_eq!(
        (usage["remaining"].as_i64(), usage["charged"].as_i64()),
        (Some(0), Some(0))
    );
    let grant = ok_json(
        dir.path(),
        &["apps", "grant", app_id, "--package", "c100", "--json"],
    );
    assert_eq!(grant["calls"], 100);
    ok_json(
        dir.path(),
        &[
            "apps",
            "grant",
            app_id,
            "--calls",
            "5",
            "--expires-at",
            "2099-12-31",
            "--json",
        ],
    );
    let usage = ok_json(dir.path(), &["apps", "usage", app_id, "--json"]);
    assert_eq!(
        (usage["remaining"].as_i64(), usage["charged"].as_i64()),
        (Some(105), Some(0))
    );
    // The 5 calls expiring in 2099 are used before the package's (a year from now)? No:
    // the package expires first, so it is listed (and used) first.
    assert_eq!(usage["grants"][0]["calls"], 100);

    fails_with(
        dir.path(),
        &["apps", "grant", app_id, "--package", "nope"],
        "package not found",
    );
    fails_with(
        dir.path(),
        &["apps", "grant", app_id, "--calls", "0"],
        "calls must be",
    );
    fails_with(
        dir.path(),
        &[
            "apps",
            "grant",
            app_id,
            "--calls",
            "5",
            "--expires-at",
            "2099-02-30",
        ],
        "not a date",
    );
    fails_with(
        dir.path(),
        &["apps", "grant", "app_nope", "--calls", "5"],
        "no app",
    );
    fails_with(dir.path(), &["apps", "usage", "app_nope"], "no app");

    // A grant adjusted (calls, expiry lifted) and revoked, by its id.
    let five = usage["grants"][1]["grant_id"].as_i64().unwrap().to_string();
    let adjusted = ok_json(
        dir.path(),
        &[
            "apps",
            "adjust-grant",
            app_id,
            &five,
            "--calls",
            "8",
            "--never-expires",
            "--json",
        ],
    );
    assert_eq!(
        (adjusted["calls"].as_i64(), adjusted["expires_at"].as_i64()),
        (Some(8), None)
    );
    let revoked = ok_json(
        dir.path(),
        &["apps", "revoke-grant", app_id, &five, "--json"],
    );
    assert!(revoked["revoked_at"].as_i64().is_some(), "{revoked}");
    let usage = ok_json(dir.path(), &["apps", "usage", app_id, "--json"]);
    assert_eq!(usage["remaining"], 100);
    fails_with(
        dir.path(),
        &["apps", "revoke-grant", app_id, &five],
        "was revoked",
    );
    fails_with(
        dir.path(),
        &["apps", "adjust-grant", app_id, "999999", "--calls", "3"],
        "has no grant 999999",
    );
    fails_with(
        dir.path(),
        &["apps", "adjust-grant", app_id, &five],
        "give calls",
    );

    // The code is shown again on request (each view an event), and after a reset the
    // new one is.
    let shown = ok_json(dir.path(), &["apps", "show-code", app_id, "--json"]);
    assert_eq!(shown["app_code"], created["app_code"]);
    let reset = ok_json(dir.path(), &["apps", "reset-code", app_id, "--json"]);
    assert_ne!(reset["app_code"], created["app_code"]);
    assert_eq!(reset["previous_valid_until"], Value::Null);
    let shown = ok_json(dir.path(), &["apps", "show-code", app_id, "--json"]);
    assert_eq!(shown["app_code"], reset["app_code"]);
    fails_with(dir.path(), &["apps", "show-code", "app_nope"], "no app");
    fails_with(
        dir.path(),
        &["apps", "reset-code", app_id, "--grace-seconds", "99999999"],
        "grace period",
    );
    // Alert e-mails need the server's SMTP relay, and each an address.
    fails_with(
        dir.path(),
        &["apps", "policy", app_id, "--alert-email", "ops@example.cn"],
        "SMTP relay",
    );
    let relay = [
        ("RENZHENG_ALERTS__SMTP_URL", "smtp://127.0.0.1:9"),
        ("RENZHENG_ALERTS__EMAIL_FROM", "alerts@example.cn"),
    ];
    let out = renzheng_env(
        dir.path(),
        &relay,
        &[
            "apps",
            "policy",
            app_id,
            "--alert-email",
            "ops@example.cn",
            "--alert-email",
            "finance@example.cn",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ok_json(dir.path(), &["apps", "list", "--json"]);
    assert_eq!(
        listed[0]["policy"]["alert_emails"],
        serde_json::json!(["ops@example.cn", "finance@example.cn"])
    );
    let out = renzheng_env(
        dir.path(),
        &relay,
        &["apps", "policy", app_id, "--alert-email", "ops"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an e-mail address"));
}

#[test]
fn registry_add_show_remove() {
    let dir = tempfile::tempdir().unwrap();
    let photo_path = faces_dir().join(HU.portrait.unwrap());
    let id = HU.id();
    let out = renzheng(
        dir.path(),
        &[
            "registry",
            "add",
            "--name",
            HU.name,
            "--id-number",
            &id,
            "--photo",
            photo_path.to_str().unwrap(),
            "--basis",
            "consent",
            "--consent-ref",
            "CF-2026-0101",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains(&id) && !stdout.contains(HU.name),
        "masked: {stdout}"
    );

    let shown = ok_json(dir.path(), &["registry", "show", &id, "--json"]);
    assert_eq!(shown["portraits"].as_array().unwrap().len(), 1);
    assert!(!shown.to_string().contains(&id));

    let no_face = faces_dir().join(NO_FACE);
    fails_with(
        dir.path(),
        &[
            "registry",
            "add",
            "--name",
            HU.name,
            "--id-number",
            &id,
            "--photo",
            no_face.to_str().unwrap(),
        ],
        "no face",
    );
    fails_with(
        dir.path(),
        &["registry", "add", "--name", HU.name, "--id-number", "12345"],
        "18 characters",
    );

    assert!(renzheng(dir.path(), &["registry", "remove", &id])
        .status
        .success());
    fails_with(dir.path(), &["registry", "show", &id], "no person");
    fails_with(dir.path(), &["registry", "remove", &id], "no person");
}

#[test]
fn registry_import_reports_refusals() {
    let data = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let copy = |rel: &str, name: String| {
        std::fs::copy(faces_dir().join(rel), folder.path().join(name)).unwrap()
    };
    copy(HU.portrait.unwrap(), format!("{}.jpg", HU.id()));
    // Another photo of Hu Jintao (HU_SAME is so close to his portrait that the registry
    // takes it for a copy already on record).
    copy(
        "lfw_eastasian_dev/Hu_Jintao/Hu_Jintao_0001.jpg",
        format!("{}_2.jpg", HU.id()),
    );
    copy(JIANG.portrait.unwrap(), format!("{}.jpg", JIANG.id()));
    copy(NO_FACE, format!("{}.png", UNKNOWN.id())); // the only photo of UNKNOWN: refused
    copy(HU_SAME, "not-an-id.jpg".into());
    // HU's row states its own basis (a statute); the others take the import's.
    let csv = format!(
        "id,name,basis,reference\n{},{},law,反恐怖主义法 第二十一条\n{},{}\n{},{}\n{},{}\n123,坏号码\n",
        HU.id(),
        HU.name,
        JIANG.id(),
        JIANG.name,
        UNKNOWN.id(),
        UNKNOWN.name,
        NO_PHOTO.id(),
        NO_PHOTO.name
    );
    std::fs::write(folder.path().join("people.csv"), csv).unwrap();

    // Without a basis for the rows that give none, those rows are refused, the others go on.
    let bare = tempfile::tempdir().unwrap();
    let without = ok_json(
        bare.path(),
        &[
            "registry",
            "import",
            folder.path().to_str().unwrap(),
            "--json",
        ],
    );
    // HU (its own basis) and NO_PHOTO (no face stored) are enrolled; JIANG is refused.
    assert_eq!(without["persons"], 2, "{without}");
    assert!(
        without["refused"].to_string().contains("no legal basis"),
        "{without}"
    );
    let summary = ok_json(
        data.path(),
        &[
            "registry",
            "import",
            folder.path().to_str().unwrap(),
            "--basis",
            "consent",
            "--consent-ref",
            "batch consent 2026-12",
            "--json",
        ],
    );
    assert_eq!(summary["persons"], 3, "{summary}");
    assert_eq!(summary["portraits"], 3, "{summary}");
    assert_eq!(summary["without_photo"], 1, "{summary}");
    // not-an-id.jpg, the no-face photo, UNKNOWN not enrolled, CSV line with a bad number.
    assert_eq!(summary["refused"].as_array().unwrap().len(), 4, "{summary}");
    let text = summary.to_string();
    for p in ALL_PEOPLE {
        assert!(
            !text.contains(&p.id()) && !text.contains(p.name),
            "masked: {text}"
        );
    }
    let hu = ok_json(data.path(), &["registry", "show", &HU.id(), "--json"]);
    assert_eq!(hu["portraits"].as_array().unwrap().len(), 2);
    assert_eq!(
        (
            hu["basis"]["basis"].as_str(),
            hu["basis"]["recorded_by"].as_str()
        ),
        (Some("law"), Some("cli")),
        "{hu}"
    );
    let jiang = ok_json(data.path(), &["registry", "show", &JIANG.id(), "--json"]);
    assert_eq!(
        jiang["basis"]["reference"].as_str(),
        Some("batch consent 2026-12"),
        "{jiang}"
    );

    // Importing the same folder again changes nothing: every photo is already on record.
    let again = ok_json(
        data.path(),
        &[
            "registry",
            "import",
            folder.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(
        (
            again["portraits"].clone(),
            again["already_on_record"].clone()
        ),
        (serde_json::json!(0), serde_json::json!(3)),
        "{again}"
    );
    assert_eq!(
        ok_json(data.path(), &["registry", "show", &HU.id(), "--json"])["portraits"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A row whose photo is another person's face is refused, its file named masked.
    let stranger = with_check_char("44030519850101021");
    copy(JIANG.portrait.unwrap(), format!("{stranger}.jpg"));
    std::fs::write(
        folder.path().join("people.csv"),
        format!("id,name\n{stranger},赵六\n"),
    )
    .unwrap();
    let third = ok_json(
        data.path(),
        &[
            "registry",
            "import",
            folder.path().to_str().unwrap(),
            "--basis",
            "consent",
            "--consent-ref",
            "batch consent 2026-12",
            "--json",
        ],
    );
    let refused = third["refused"].to_string();
    assert!(
        refused.contains("44**************") && refused.contains("already enrolled under"),
        "{third}"
    );
    assert!(
        !refused.contains(&stranger) && !refused.contains(&JIANG.id()),
        "{refused}"
    );
    fails_with(data.path(), &["registry", "show", &stranger], "no person");
}

#[test]
fn registry_rules_refuse_with_a_non_zero_exit_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = |rel: &str| faces_dir().join(rel).to_str().unwrap().to_owned();
    let add = |person: Person, photos: &[&str], extra: &[&str]| {
        let id = person.id();
        let mut args = vec!["registry", "add", "--name", person.name, "--id-number", &id];
        let paths: Vec<String> = photos.iter().map(|p| path(p)).collect();
        for p in &paths {
            args.extend(["--photo", p.as_str()]);
        }
        args.extend(extra);
        args.extend(["--basis", "consent", "--consent-ref", "CF-2026-0102"]);
        renzheng(dir.path(), &args)
    };
    let out = add(HU, &[HU.portrait.unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another person's face under HU's ID number.
    let out = add(HU, &[WEN_PORTRAIT], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not match portrait #") && stderr.contains("registry replace"),
        "{stderr}"
    );
    // The same name and ID with another name: refused, pointing to rename.
    let renamed = Person {
        name: "胡锦滔",
        ..HU
    };
    let out = add(renamed, &[], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("renzheng registry rename"), "{stderr}");
    // HU's face under another ID number: refused, naming HU masked; allowed with a reason.
    let out = add(UNKNOWN, &[HU_SAME], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let hu_masked = format!("{}**************{}", &HU.id()[..2], &HU.id()[16..]);
    assert!(
        stderr.contains(&hu_masked) && stderr.contains("--allow-duplicate-face"),
        "{stderr}"
    );
    assert!(!stderr.contains(&HU.id()), "{stderr}");
    let out = add(UNKNOWN, &[HU_SAME], &["--allow-duplicate-face"]);
    assert!(!out.status.success(), "a reason is required");
    let out = add(
        UNKNOWN,
        &[HU_SAME],
        &[
            "--allow-duplicate-face",
            "--reason",
            "one person, two numbers",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The duplicates report names the pair; a handle works wherever an ID number does.
    let report = ok_json(dir.path(), &["registry", "duplicates", "--json"]);
    assert_eq!(report["pairs"].as_array().unwrap().len(), 1, "{report}");
    let handle = report["pairs"][0]["a"]["handle"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = ok_json(dir.path(), &["registry", "show", &handle, "--json"]);
    assert_eq!(shown["handle"], handle.as_str());
    let out = renzheng(dir.path(), &["registry", "duplicates", "--reveal"]);
    assert!(!out.status.success(), "revealing needs a reason");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));

    // Rename and replace, each with a reason.
    let id = HU.id();
    let out = renzheng(
        dir.path(),
        &[
            "registry",
            "rename",
            "--id-number",
            &id,
            "--name",
            renamed.name,
            "--reason",
            "户籍更名",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (wen_1, wen_2) = (path(WEN_PORTRAIT), path(WEN_SAME));
    let out = renzheng(
        dir.path(),
        &[
            "registry",
            "replace",
            "--id-number",
            &id,
            "--photo",
            &wen_1,
            "--photo",
            &wen_2,
            "--reason",
            "重新办证",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = ok_json(dir.path(), &["registry", "show", &id, "--json"]);
    assert_eq!(shown["portraits"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_configuration_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_renzheng"))
        .args(["apps", "list"])
        .env("RENZHENG_DATA_DIR", dir.path())
        .env("RENZHENG_KEY_DIR", dir.path().join("keys"))
        .env("RENZHENG_LISTEN", "no-port-here")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen") && stderr.trim_end().lines().count() == 1,
        "{stderr}"
    );
    fails_with(
        dir.path(),
        &["--config", "/nonexistent.toml", "apps", "list"],
        "does not exist",
    );
}

/// A pack whose files do not match their manifest stops `serve` (and is not silently
/// replaced by `models install`), with a message that names the file and the fix.
#[test]
fn a_tampered_model_pack_is_refused() {
    let pack = renzheng_vision::pack::default_pack_dir();
    let tampered = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&pack).expect("the model pack is installed") {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tampered.path().join(entry.file_name())).unwrap();
    }
    // Flip a byte of the first file the manifest hashes (whatever the pack's kind).
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(tampered.path().join("manifest.json")).unwrap())
            .unwrap();
    let victim = manifest["files"]
        .as_object()
        .and_then(|files| files.keys().next().cloned())
        .expect("the manifest hashes its files");
    let mut bytes = std::fs::read(tampered.path().join(&victim)).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(tampered.path().join(&victim), bytes).unwrap();

    let data = tempfile::tempdir().unwrap();
    for args in [&["serve"][..], &["models", "install"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_renzheng"))
            .args(args)
            .env("RENZHENG_DATA_DIR", data.path())
            .env("RENZHENG_KEY_DIR", data.path().join("keys"))
            .env("RENZHENG_MODELS_DIR", tampered.path())
            .env("RENZHENG_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} must refuse a tampered pack"
        );
        assert!(
            stderr.contains(victim.as_str())
                && stderr.contains("sha256 mismatch")
                && stderr.contains("--force"),
            "{args:?}: {stderr}"
        );
    }
}

/// Runs `renzheng` with `input` on its standard input.
fn renzheng_with_stdin(data_dir: &Path, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_renzheng"))
        .args(args)
        .env("RENZHENG_DATA_DIR", data_dir)
        .env("RENZHENG_KEY_DIR", data_dir.join("keys"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running renzheng");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn personal_data_can_come_from_standard_input_instead_of_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let id = HU.id();
    let out = renzheng_with_stdin(
        dir.path(),
        &["registry", "add", "--json"],
        &format!("{}\n{id}\n", HU.name),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = renzheng_with_stdin(
        dir.path(),
        &["registry", "show", "--json"],
        &format!("{id}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["id_number"],
        format!("{}**************{}", &id[..2], &id[16..])
    );
    // Nothing on standard input: a one-line refusal naming what is missing.
    fails_with(dir.path(), &["registry", "add"], "no name given");
    let out = renzheng_with_stdin(dir.path(), &["registry", "remove"], &format!("{id}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails_with(dir.path(), &["registry", "show", &id], "no person");
}

pub(crate) fn renzheng_env(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_renzheng"));
    command
        .args(args)
        .env("RENZHENG_DATA_DIR", data_dir)
        .env("RENZHENG_KEY_DIR", data_dir.join("keys"))
        .env_remove("RENZHENG_LISTEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("running renzheng")
}

/// Moving the registry: export on one database, import on another with the same template
/// key; a file under another key, or cut short, is refused; a re-run adds nothing twice.
#[test]
fn the_registry_moves_between_databases_through_a_sealed_export() {
    let shared_key = "5a".repeat(32);
    let key = [("RENZHENG_TEMPLATE_KEY", shared_key.as_str())];
    let from = tempfile::tempdir().unwrap();
    let photo_path = faces_dir().join(HU.portrait.unwrap());
    let out = renzheng_env(
        from.path(),
        &key,
        &[
            "registry",
            "add",
            "--name",
            HU.name,
            "--id-number",
            &HU.id(),
            "--photo",
            photo_path.to_str().unwrap(),
            "--basis",
            "contract",
            "--consent-ref",
            "account agreement 88",
            "--purpose",
            "account opening",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = from.path().join("registry.rzx");
    let out = renzheng_env(
        from.path(),
        &key,
        &["registry", "export", "--out", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&HU.id()) && !text.contains(HU.name),
        "sealed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Exporting over an existing file is refused.
    let out = renzheng_env(
        from.path(),
        &key,
        &["registry", "export", "--out", file.to_str().unwrap()],
    );
    assert!(!out.status.success());

    let to = tempfile::tempdir().unwrap();
    let import = |dir: &Path, env: &[(&str, &str)], path: &Path| {
        renzheng_env(
            dir,
            env,
            &["registry", "import", path.to_str().unwrap(), "--json"],
        )
    };
    let out = import(to.path(), &key, &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            summary["imported"].as_i64(),
            summary["already_present"].as_i64()
        ),
        (Some(1), Some(0))
    );
    let out = renzheng_env(to.path(), &key, &["registry", "show", &HU.id(), "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["portraits"].as_array().unwrap().len(), 1, "{shown}");
    // The legal basis moves with the face, as it was recorded.
    assert_eq!(
        (
            shown["basis"]["basis"].as_str(),
            shown["basis"]["reference"].as_str(),
            shown["basis"]["purpose"].as_str()
        ),
        (
            Some("contract"),
            Some("account agreement 88"),
            Some("account opening")
        ),
        "{shown}"
    );
    let again: Value = serde_json::from_slice(&import(to.path(), &key, &file).stdout).unwrap();
    assert_eq!(
        (
            again["imported"].as_i64(),
            again["already_present"].as_i64()
        ),
        (Some(0), Some(1))
    );

    // Another template key cannot read it.
    let other = tempfile::tempdir().unwrap();
    let stranger = "6b".repeat(32);
    let out = import(
        other.path(),
        &[("RENZHENG_TEMPLATE_KEY", stranger.as_str())],
        &file,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not open"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A file cut short is refused.
    let cut = from.path().join("cut.rzx");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..lines.len() - 1].join("\n")).unwrap();
    let out = import(tempfile::tempdir().unwrap().path(), &key, &cut);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

/// `config show` prints the configuration as `serve` would load it (defaults → file →
/// environment → `--pack`), as TOML or JSON, with every secret redacted and the database
/// URL without its password; it needs neither a database nor a model pack.
#[test]
fn config_show_prints_the_effective_configuration_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("renzheng.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9100\"\n[limits]\nper_id_per_day = 9\nper_id_per_minute = 3\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let admin_token = "an-admin-token-nobody-may-see";
    let env = [
        ("RENZHENG_ADMIN_TOKEN", admin_token),
        ("RENZHENG_LIMITS__PER_ID_PER_DAY", "11"),
        ("RENZHENG_IMG_URL__ALLOW", "[127.0.0.1/32]"),
        (
            "RENZHENG_DATABASE_URL",
            "postgres://renzheng:db-password-nobody-may-see@db.internal:5432/renzheng",
        ),
    ];
    let json_out = renzheng_env(
        dir.path(),
        &env,
        &[
            "--config", file, "--pack", "dlib", "config", "show", "--json",
        ],
    );
    let toml_out = renzheng_env(
        dir.path(),
        &env,
        &["--config", file, "--pack", "dlib", "config", "show"],
    );
    for out in [&json_out, &toml_out] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains("nobody-may-see"),
            "a secret was printed: {text}"
        );
    }
    let shown: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    // The layers, in order: the file's listen, the environment over the file's
    // per-day limit, the file's per-minute limit, --pack over everything.
    assert_eq!(shown["listen"], "127.0.0.1:9100");
    assert_eq!(shown["limits"]["per_id_per_day"], 11);
    assert_eq!(shown["limits"]["per_id_per_minute"], 3);
    assert_eq!(
        shown["img_url"]["allow"],
        serde_json::json!(["127.0.0.1/32"])
    );
    assert_eq!(shown["engine"]["pack"], "dlib");
    assert_eq!(shown["admin_token"], "<redacted>");
    assert_eq!(shown["audit_key"], "<unset>");
    assert_eq!(shown["console"]["password_hash"], "<unset>");
    assert_eq!(
        shown["database_url"],
        "postgres://renzheng:<redacted>@db.internal:5432/renzheng"
    );
    assert_eq!(shown["signature"]["require_timestamp"], true);
    assert_eq!(
        shown["data_dir"],
        dir.path().to_str().unwrap(),
        "the environment's data_dir"
    );

    let toml = String::from_utf8_lossy(&toml_out.stdout);
    for line in [
        "listen = \"127.0.0.1:9100\"",
        "admin_token = \"<redacted>\"",
        "\n[limits]\n",
        "per_id_per_day = 11",
        "allow = [\"127.0.0.1/32\"]",
        "pack = \"dlib\"",
        "\n[signature]\n",
    ] {
        assert!(toml.contains(line), "{line:?} in {toml}");
    }
    // Nothing was created: showing the configuration touches no database or key.
    assert!(!dir.path().join("renzheng.db").exists());
    assert!(!dir.path().join("keys").exists());

    // An invalid configuration fails as every command does, with one line.
    let bad = renzheng_env(
        dir.path(),
        &[("RENZHENG_LIMITS__MAX_CONNECTIONS", "0")],
        &["config", "show"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("max_connections"));
}

/// `renzheng eval` scores a pair as the service answers it: `file_x` enrolled as the
/// portrait (a portrait enrolment refuses is result 0), `file_y` checked against it (only
/// its own warnings cap "same"); `--symmetric` keeps the rule that treats both alike.
#[test]
fn eval_scores_pairs_as_the_service_answers_them() {
    let dir = tempfile::tempdir().unwrap();
    // The holder's portrait at 55 %: the face is found, with eyes too close for a clean
    // photo (a quality warning), as on a small ID-card chip portrait.
    let small = dir.path().join("small_portrait.png");
    image::open(faces_dir().join(HU.portrait.unwrap()))
        .unwrap()
        .resize(137, 137, image::imageops::FilterType::Triangle)
        .save(&small)
        .unwrap();
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        format!(
            "file_x,file_y,same\n{hu},{same},1\n{small},{same},1\n{no_face},{same},1\n{hu},{other},0\n",
            hu = HU.portrait.unwrap(),
            same = HU_SAME,
            small = small.display(),
            no_face = NO_FACE,
            other = JIANG_OTHER,
        ),
    )
    .unwrap();
    let root = faces_dir();
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--pairs",
            pairs.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--json",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        ok_json(dir.path(), &args)
    };
    let service = eval(&[]);
    assert_eq!(service["rule"], "service");
    // The portrait with no face is refused at enrolment: result 0, not 6.
    assert_eq!(service["portrait_refused_pairs"], 1, "{service}");
    assert_eq!(service["results"]["0"], 1, "{service}");
    // The warned portrait does not cap the clean photo's answer.
    assert_eq!(service["results"]["1"], 2, "{service}");
    assert_eq!(service["results"]["3"], 1, "{service}");

    let symmetric = eval(&["--symmetric"]);
    assert_eq!(symmetric["rule"], "symmetric");
    assert_eq!(symmetric["portrait_refused_pairs"], 0);
    assert_eq!(symmetric["results"]["6"], 1, "{symmetric}");
    assert_eq!(symmetric["results"]["1"], 1, "{symmetric}");
    assert_eq!(symmetric["results"]["2"], 1, "{symmetric}");
}

/// `renzheng calibrate` runs the service's rule over a pairs list and, with far too few
/// pairs for a band, says so and suggests none; bad arguments are refused with the reason.
#[test]
fn calibrate_suggests_no_band_without_evidence_and_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.csv");
    std::fs::write(
        &pairs,
        format!(
            "file_x,file_y,same\n{hu},{same},1\n{hu},{other},0\n",
            hu = HU.portrait.unwrap(),
            same = HU_SAME,
            other = JIANG_OTHER,
        ),
    )
    .unwrap();
    let root = faces_dir();
    let (pairs, root) = (pairs.to_str().unwrap(), root.to_str().unwrap());
    let report = ok_json(
        dir.path(),
        &[
            "calibrate",
            "--pairs",
            pairs,
            "--root",
            root,
            "--json",
            "--threads",
            "1",
            "--photo-as",
            "none",
            "--photo-as",
            "scale:0.4",
        ],
    );
    // Two pairs under two photo conditions, all compared.
    assert_eq!(report["pairs"], 4, "{report}");
    assert_eq!(report["photo_not_compared"], 0, "{report}");
    let buckets = report["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 3, "clean, 20–30 and < 20 px: {report}");
    for b in buckets {
        assert!(b["suggested"].is_null(), "{b}");
        assert!(
            b["note"].as_str().unwrap().contains("too little evidence"),
            "{b}"
        );
    }
    assert!(
        report["toml"].as_str().unwrap().contains("size_bands = []"),
        "{report}"
    );

    let refused = |args: &[&str], needle: &str| {
        let out = renzheng(dir.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    };
    fails_with(
        dir.path(),
        &[
            "calibrate",
            "--pairs",
            pairs,
            "--root",
            root,
            "--target-far",
            "2",
        ],
        "--target-far",
    );
    fails_with(
        dir.path(),
        &[
            "calibrate",
            "--pairs",
            pairs,
            "--root",
            root,
            "--bands",
            "0",
        ],
        "--bands",
    );
    fails_with(
        dir.path(),
        &["calibrate", "--pairs", "/nonexistent/pairs.csv"],
        "/nonexistent/pairs.csv",
    );
    refused(
        &["calibrate", "--pairs", pairs, "--photo-as", "scale:2"],
        "must be in (0, 1]",
    );
}

/// The legal basis through the CLI, as named in docs/compliance.md: refused without one
/// (nothing stored), a child only with a guardian's consent, recorded after the fact for a
/// person enrolled without one, and the filing line crossed and left with a small
/// configured threshold.
#[test]
fn the_cli_records_a_legal_basis_for_every_face_and_counts_them_against_the_filing_line() {
    let dir = tempfile::tempdir().unwrap();
    let line = [("RENZHENG_COMPLIANCE__FILING_THRESHOLD", "2")];
    let photo = |rel: &str| faces_dir().join(rel).to_str().unwrap().to_owned();
    let add = |person: Person, rel: &str, basis: &[&str]| {
        let id = person.id();
        let path = photo(rel);
        let mut args = vec![
            "registry",
            "add",
            "--name",
            person.name,
            "--id-number",
            &id,
            "--photo",
            &path,
        ];
        args.extend(basis);
        renzheng_env(dir.path(), &line, &args)
    };
    let status = || -> Value {
        let out = renzheng_env(dir.path(), &line, &["compliance", "status", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };

    // No basis: refused with what to add, nothing stored.
    let out = add(HU, HU.portrait.unwrap(), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--basis consent --consent-ref") && stderr.contains("nothing was stored"),
        "{stderr}"
    );
    fails_with(dir.path(), &["registry", "show", &HU.id()], "no person");
    // A basis without its reference, or with another kind's field: refused.
    let out = add(HU, HU.portrait.unwrap(), &["--basis", "law"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--law"));
    let out = add(
        HU,
        HU.portrait.unwrap(),
        &["--basis", "consent", "--consent-ref", "CF-1", "--law", "x"],
    );
    assert!(!out.status.success());

    // A child on consent: refused without a guardian's consent, enrolled with one.
    let child_basis = ["--basis", "consent", "--consent-ref", "CF-2026-0200"];
    let out = add(CHILD, WEN_PORTRAIT, &child_basis);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("under 14"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fails_with(dir.path(), &["registry", "show", &CHILD.id()], "no person");
    let mut with_guardian = child_basis.to_vec();
    with_guardian.extend(["--guardian-consent-ref", "GC-2026-0200"]);
    let out = add(CHILD, WEN_PORTRAIT, &with_guardian);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = ok_json(dir.path(), &["registry", "show", &CHILD.id(), "--json"]);
    assert_eq!(child["basis"]["guardian_consent_ref"], "GC-2026-0200");
    assert_eq!(
        child["basis"]["purpose"],
        "identity verification (人证核验)"
    );
    let first = status();
    assert_eq!(
        (
            first["persons_with_face_data"].as_u64(),
            first["filing_threshold"].as_u64(),
            first["persons_without_basis"].as_u64()
        ),
        (Some(1), Some(2), Some(0)),
        "{first}"
    );
    assert!(first["reached_at"].is_null(), "{first}");

    // A person enrolled with the rule off (as before this release) has no basis; one is
    // recorded after the fact.
    let mut off = line.to_vec();
    off.push(("RENZHENG_COMPLIANCE__REQUIRE_BASIS", "false"));
    let id = HU.id();
    let path = photo(HU.portrait.unwrap());
    let out = renzheng_env(
        dir.path(),
        &off,
        &[
            "registry",
            "add",
            "--name",
            HU.name,
            "--id-number",
            &id,
            "--photo",
            &path,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two persons with face data: the line (2) is reached, today.
    let reached = status();
    assert_eq!(reached["persons_with_face_data"], 2, "{reached}");
    assert_eq!(reached["persons_without_basis"], 1, "{reached}");
    let day = reached["reached_at"].as_str().expect("a date").to_owned();
    assert_eq!(day.len(), 10, "{reached}");
    let out = renzheng_env(
        dir.path(),
        &line,
        &[
            "registry",
            "basis",
            "--id-number",
            &id,
            "--basis",
            "law",
            "--law",
            "反恐怖主义法 第二十一条",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(recorded["basis"], "law", "{recorded}");
    // The person's report, masked: their portraits, basis and the events about them.
    let report = ok_json(
        dir.path(),
        &["registry", "report", "--id-number", &id, "--json"],
    );
    assert_eq!(report["person"]["portraits"].as_array().unwrap().len(), 1);
    assert_eq!(report["person"]["basis"]["basis"], "law", "{report}");
    let actions: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first, back to the first refusal (no basis stated).
    assert_eq!(
        actions,
        [
            "person.basis-recorded",
            "person.enrolled",
            "person.basis-refused"
        ],
        "{report}"
    );
    assert!(report["checks"].as_array().unwrap().is_empty(), "{report}");
    let text = report.to_string();
    assert!(!text.contains(&id) && !text.contains(HU.name), "{text}");
    fails_with(
        dir.path(),
        &["registry", "report", "--id-number", &UNKNOWN.id()],
        "no person",
    );
    let after = status();
    assert_eq!(after["persons_without_basis"], 0, "{after}");
    assert_eq!(after["reached_at"].as_str(), Some(day.as_str()), "{after}");

    // Removing a person brings the registry back under the line: the date is forgotten.
    // The data subject's request is named; a malformed reference removes nothing.
    let out = renzheng_env(
        dir.path(),
        &line,
        &["registry", "remove", &id, "--request-ref", "DSR\n1"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("requestRef must be one line"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status()["persons_with_face_data"], 2);
    let out = renzheng_env(
        dir.path(),
        &line,
        &["registry", "remove", &id, "--request-ref", "DSR-2026-0042"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let under = status();
    assert_eq!(under["persons_with_face_data"], 1, "{under}");
    assert!(under["reached_at"].is_null(), "{under}");
    // The human-readable status says the same.
    let out = renzheng_env(dir.path(), &line, &["compliance", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of the filing line 2"), "{text}");

    // The processing records of today: who enrolled, recorded a basis, removed, masked
    // and keyed, the removed person's included. JSON lines, or CSV for a spreadsheet.
    let out = renzheng_env(
        dir.path(),
        &line,
        &["compliance", "records", "--from", &day, "--to", &day],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let hu_masked = renzheng_domain::IdNumber::parse(&id).unwrap().masked();
    let hu_actions: Vec<&str> = lines
        .iter()
        .filter(|r| r["person"] == hu_masked.as_str())
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        hu_actions,
        ["enrolled", "basis-recorded", "removed"],
        "{lines:?}"
    );
    assert!(lines.iter().all(|r| r["actor"] == "cli"), "{lines:?}");
    let out = renzheng_env(
        dir.path(),
        &line,
        &[
            "compliance",
            "records",
            "--from",
            &day,
            "--to",
            &day,
            "--csv",
        ],
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.starts_with("\u{feff}at,action,person,person_key,actor,basis,result\r\n"),
        "{csv}"
    );
    assert!(csv.contains(",removed,") && !csv.contains(&id), "{csv}");
    fails_with(
        dir.path(),
        &[
            "compliance",
            "records",
            "--from",
            &day,
            "--to",
            "2020-13-01",
        ],
        "not a date",
    );

    // The registry's retention from the command line: off, then on with nobody due.
    let out = renzheng_env(dir.path(), &line, &["registry", "purge", "--dry-run"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retention is off"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut kept = line.to_vec();
    kept.push(("RENZHENG_REGISTRY__RETENTION_DAYS", "365"));
    let out = renzheng_env(
        dir.path(),
        &kept,
        &["registry", "purge", "--dry-run", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["dry_run"].as_bool(),
            report["persons"].as_array().map(Vec::len)
        ),
        (Some(true), Some(0)),
        "{report}"
    );
}

/// The operator accounts from the command line: the configured operator seeded as the
/// first owner, passwords from stdin (never arguments), the last owner kept, and the way
/// back in (a new password for a locked-out owner).
#[test]
fn console_operators_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let hash = renzheng_with_stdin(
        dir.path(),
        &["console", "hash-password"],
        "first owner password\n",
    );
    assert!(hash.status.success());
    let hash = String::from_utf8(hash.stdout).unwrap();
    let configured = [
        ("RENZHENG_CONSOLE__PASSWORD_HASH", hash.trim()),
        ("RENZHENG_CONSOLE__OPERATOR", "boss"),
    ];
    let listed = renzheng_env(
        dir.path(),
        &configured,
        &["console", "operators", "list", "--json"],
    );
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["name"], "boss");
    assert_eq!(listed[0]["role"], "owner");
    assert!(!listed.to_string().contains("argon2"), "no hash listed");
    assert_eq!(listed[0]["two_step"], false);

    let add = |name: &str, role: &str, password: &str| {
        renzheng_with_stdin(
            dir.path(),
            &["console", "operators", "add", name, "--role", role],
            &format!("{password}\n"),
        )
    };
    let out = add("wang", "auditor", "an auditor's password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = add("wang", "admin", "another long password");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    let out = add("li", "admin", "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    let out = add(" li", "admin", "a long enough password");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("operator name"));
    // A role outside the three is refused by the argument parser.
    let out = add("li", "root", "a long enough password");
    assert!(!out.status.success());

    fails_with(
        dir.path(),
        &["console", "operators", "remove", "boss"],
        "last owner",
    );
    fails_with(
        dir.path(),
        &["console", "operators", "set-role", "boss", "admin"],
        "last owner",
    );
    fails_with(
        dir.path(),
        &["console", "operators", "remove", "nobody"],
        "no operator named",
    );
    assert!(renzheng(
        dir.path(),
        &["console", "operators", "set-role", "wang", "owner"]
    )
    .status
    .success());
    assert!(renzheng(
        dir.path(),
        &["console", "operators", "set-role", "boss", "admin"]
    )
    .status
    .success());
    let out = renzheng_with_stdin(
        dir.path(),
        &["console", "operators", "set-password", "wang"],
        "a brand new password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        renzheng(dir.path(), &["console", "operators", "remove", "boss"])
            .status
            .success()
    );
    // Two-step sign-in is turned off from here for an operator who lost their phone (the
    // console test turns it on and has the same use case turn it off).
    let out = renzheng(
        dir.path(),
        &["console", "operators", "reset-two-step", "wang"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("two-step sign-in of wang is off"));
    fails_with(
        dir.path(),
        &["console", "operators", "reset-two-step", "nobody"],
        "no operator named",
    );
    // Once accounts exist, the configuration seeds nobody again.
    let listed = renzheng_env(dir.path(), &configured, &["console", "operators", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "wang\towner\n");
}
