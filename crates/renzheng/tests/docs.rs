//! The documentation's numbers and examples are the code's: README's answer is what the
//! server answers with the default pack, its calls name the person `scripts/demo.sh`
//! enrols, `docs/performance.md` states the decoder's real limits, and the nginx example
//! of `docs/deployment.md` refuses a large body the way the service does.

use std::collections::BTreeSet;
use std::path::PathBuf;

use renzheng_app::settings::Limits;
use renzheng_vision::{pack, DecodeLimits, PackKind, VerdictThresholds};
use serde_json::Value;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of `doc` from the heading `heading` to the next heading of its level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading:?}"));
    let level = heading.split(' ').next().unwrap();
    let rest = &doc[start + heading.len() + 2..];
    let end = rest.find(&format!("\n{level} ")).unwrap_or(rest.len());
    &rest[..end]
}

/// The first fenced block of `lang` after `marker` in `doc`.
fn block_after<'a>(doc: &'a str, marker: &str, lang: &str) -> &'a str {
    let at = doc.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
    let fence = format!("```{lang}\n");
    let body = &doc[at..];
    let body = &body[body.find(&fence).expect("a fenced block") + fence.len()..];
    &body[..body.find("```").expect("a closed block")]
}

/// The server rounds scores to 4 decimals (`CheckData`).
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// The verdict bands of the default pack, as the installed manifest would carry them.
fn default_pack_thresholds() -> VerdictThresholds {
    match PackKind::default() {
        PackKind::Sface => pack::sface_thresholds(),
        PackKind::Dlib => VerdictThresholds::default(),
    }
}

/// The property names of the OpenAPI schema `name` (the one `/openapi.json` serves,
/// generated from the handlers' types).
fn schema_properties(name: &str) -> BTreeSet<String> {
    let doc = renzheng_server::startup::openapi_document(&Limits::default());
    let schema = &doc["components"]["schemas"][name];
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name} in the OpenAPI document"))
        .keys()
        .cloned()
        .collect()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

#[test]
fn readme_answer_is_what_the_server_answers_with_the_default_pack() {
    let readme = read("README.md");
    let example: Value = serde_json::from_str(block_after(&readme, "A success looks like", "json"))
        .expect("README's success example is JSON");
    assert_eq!(
        keys(&example),
        BTreeSet::from(["code", "success", "msg", "taskNo", "data"].map(String::from))
    );
    let data = &example["data"];
    assert_eq!(
        keys(data),
        schema_properties("CheckData"),
        "README's data fields are CheckData's"
    );
    assert_eq!(
        keys(&data["quality"]),
        schema_properties("QualityView"),
        "README's quality fields are QualityView's"
    );
    assert_eq!(data["charged"], 1, "metering is on by default");

    let bands = default_pack_thresholds();
    let (same, different) = bands.as_scores();
    let (same, different) = (round4(same), round4(different));
    assert_eq!(
        (
            data["thresholds"]["same"].as_f64(),
            data["thresholds"]["different"].as_f64()
        ),
        (Some(same), Some(different)),
        "README's thresholds are the default pack's bands as scores"
    );
    // The same bands, in words, in README's table and the configuration reference.
    let words = format!(
        "cosine distances {} / {}, answered as scores {same} / {different}",
        bands.same_max_distance, bands.different_min_distance
    );
    for file in ["README.md", "docs/configuration.md"] {
        assert!(read(file).contains(&words), "{file} should say {words:?}");
    }
    for stale in ["0.8622", "0.0344", "(0.39 / 0.70)"] {
        assert!(
            !readme.contains(stale),
            "README still gives the dlib pack's {stale}"
        );
    }

    // An installed pack's manifest carries the same bands (it is written from them;
    // `tests/manifests.rs` of the vision crate checks the rest of the file).
    let manifest = pack::default_pack_dir_for(PackKind::default()).join(pack::MANIFEST_FILE);
    if let Ok(text) = std::fs::read_to_string(&manifest) {
        let manifest: Value = serde_json::from_str(&text).expect("manifest.json");
        let installed: VerdictThresholds =
            serde_json::from_value(manifest["thresholds"].clone()).expect("thresholds");
        let (s, d) = installed.as_scores();
        assert_eq!(
            (round4(s), round4(d)),
            (same, different),
            "{}",
            manifest["thresholds"]
        );
    }
}

/// `KEY="value"` in a shell script.
fn shell_value(script: &str, key: &str) -> String {
    let prefix = format!("{key}=\"");
    let line = script
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("demo.sh sets no {key}"));
    line[prefix.len()..].trim_end_matches('"').to_string()
}

/// The names written after a `name` field in `text` (JSON, escaped JSON, form data).
fn names_in(text: &str) -> Vec<String> {
    text.match_indices("name")
        .filter_map(|(at, _)| {
            let rest = &text[at + 4..];
            let rest = rest.trim_start_matches(['\\', '"', ':', '=', ' ']);
            let name: String = rest.chars().take_while(|c| *c > '\u{2e80}').collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The 18-character ID numbers in `text`.
fn id_numbers_in(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 18 <= chars.len() {
        let candidate = &chars[i..i + 18];
        let starts_clean = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        let ends_clean = chars.get(i + 18).is_none_or(|c| !c.is_ascii_alphanumeric());
        if starts_clean
            && ends_clean
            && candidate[..17].iter().all(char::is_ascii_digit)
            && (candidate[17].is_ascii_digit() || candidate[17] == 'X')
        {
            found.push(candidate.iter().collect());
            i += 18;
        } else {
            i += 1;
        }
    }
    found
}

#[test]
fn readme_calls_name_the_person_the_demo_enrols() {
    let demo = read("scripts/demo.sh");
    let name = shell_value(&demo, "DEMO_NAME");
    let id = shell_value(&demo, "DEMO_ID");
    assert!(
        demo.contains(r#"registry add --name "$DEMO_NAME" --id-number "$DEMO_ID""#),
        "demo.sh enrols DEMO_NAME under DEMO_ID"
    );
    let readme = read("README.md");
    let calling = section(&readme, "## Calling the API");
    let curl = block_after(calling, "", "sh");
    assert!(
        curl.contains(&format!(r#""name":"{name}","idCard":"{id}""#)),
        "README's first curl should send the demo's {name} / {id}: {curl}"
    );
    // Every example of the section (curl, form, Python, signed Python, Java).
    let names = names_in(calling);
    let ids = id_numbers_in(calling);
    assert!(names.len() >= 5 && ids.len() >= 5, "{names:?} {ids:?}");
    assert!(names.iter().all(|n| *n == name), "{names:?}");
    assert!(ids.iter().all(|i| *i == id), "{ids:?}");
}

/// `16777216` → `16,777,216`, as the docs write numbers.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn performance_doc_states_the_decoder_limits() {
    let doc = read("docs/performance.md");
    let at = doc.find("decode limits (").expect("the decode limits");
    let paragraph: String = doc[at..]
        .split("\n- ")
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let limits = DecodeLimits::default();
    for wanted in [
        format!("{} pixels", thousands(limits.max_pixels)),
        format!("{} px a side", thousands(u64::from(limits.max_side))),
    ] {
        assert!(paragraph.contains(&wanted), "{wanted:?} in {paragraph:?}");
    }
}

#[test]
fn nginx_example_refuses_a_large_body_like_the_service() {
    let doc = read("docs/deployment.md");
    let nginx = block_after(&doc, "6. **The load balancer**", "nginx");
    let max_body = Limits::default().max_body_bytes;

    let size = nginx
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("client_max_body_size "))
        .expect("client_max_body_size");
    let size = size.trim_end_matches(';');
    let bytes = match size.strip_suffix('m') {
        Some(mib) => mib.parse::<usize>().unwrap() * 1024 * 1024,
        None => size.parse().unwrap(),
    };
    assert_eq!(
        bytes, max_body,
        "the server block's limit is limits.max_body_bytes"
    );

    let refusal = renzheng_server::ApiError::PayloadTooLarge { limit: max_body };
    let (status, code) = refusal.status_and_code();
    let message = refusal.to_string();
    let body = nginx
        .split("return 413 '")
        .nth(1)
        .and_then(|rest| rest.split("';").next())
        .expect("return 413 '…'");
    let body: Value = serde_json::from_str(&body.replace("$request_id", "REQ")).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"code": status.as_u16(), "success": false, "msg": message,
                           "taskNo": "REQ", "data": null})
    );
    assert!(nginx.contains("error_page 413 = @too_large;"));
    assert!(nginx.contains(&format!("add_header X-Ca-Error-Code {code} always;")));
    assert!(nginx.contains(&format!(
        "add_header X-Ca-Error-Message \"{message}\" always;"
    )));

    // Plain HTTP only redirects; certificates are configured; the operator's endpoints
    // are not public.
    assert!(nginx.contains("return 301 https://$host$request_uri;"));
    assert!(nginx.contains("ssl_certificate ") && nginx.contains("ssl_certificate_key "));
    for internal in [
        "location /admin/ {",
        "location /console {",
        "(metrics|readyz",
    ] {
        let at = nginx.find(internal).unwrap_or_else(|| panic!("{internal}"));
        let block = &nginx[at..at + nginx[at..].find('}').unwrap()];
        assert!(
            block.contains("deny all;"),
            "{internal} is internal: {block}"
        );
    }
}
