//! Registry: look a person up (the ID number is posted, never put in a URL), enrol with
//! photos (the engine's refusal reasons shown), remove after an explicit confirmation,
//! import a server-side folder with a progress page.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use renzheng_app::{EnrolFields, EnrolRequest, PersonView};
use renzheng_domain::IdNumber;
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{not_found, refusal_reason, refusal_text};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::session::Operator;
use crate::console::verified::{NoFields, Verified};
use crate::import_jobs::ImportJobs;
use crate::state::AppState;

fn person_card(lang: Lang, person: &PersonView, offset: i32) -> Markup {
    let t = lang.t();
    html! {
        section #person .card data-portraits=(person.portraits.len()) {
            p { strong { (person.name) } " · " code { (person.id_number) } }
            p .muted { (t.created_at) " " (format_time(person.created_at, offset)) }
            p { (t.portraits) ": " (person.portraits.len()) }
            ul {
                @for p in &person.portraits {
                    li { code { (p.model_id) } " · " (format_time(p.created_at, offset)) }
                }
            }
        }
    }
}

fn render(op: &Operator, lang: Lang, flash: Vec<Flash>, shown: Option<Markup>) -> Response {
    let t = lang.t();
    let csrf = csrf::field(&op.session);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "registry",
            title: t.registry,
            flash,
        },
        html! {
            div .grid {
                section .card {
                    h2 { (t.lookup) }
                    form #lookup .row method="post" action="/console/registry/lookup" {
                        (csrf)
                        (fields::id_number(lang))
                        button type="submit" { (t.find) }
                    }
                    @if let Some(shown) = shown { (shown) }
                }
                section .card {
                    h2 { (t.enrol) }
                    form #enrol method="post" action="/console/registry/enrol" enctype="multipart/form-data" {
                        (csrf)
                        (fields::person_name(lang))
                        (fields::id_number(lang))
                        label { (t.photos) input name="photo" type="file" accept="image/*" multiple; }
                        button type="submit" { (t.enrol) }
                    }
                }
                section .card {
                    h2 { (t.remove) }
                    form #remove method="post" action="/console/registry/remove" data-confirm=(t.remove_confirm) {
                        (csrf)
                        (fields::id_number(lang))
                        label { input name="confirm" type="checkbox" value="yes"; " " (t.remove_confirm) }
                        button .danger type="submit" { (t.remove_button) }
                    }
                }
                section .card {
                    h2 { (t.reembed) }
                    p .muted { (t.reembed_intro) }
                    form #reembed method="post" action="/console/registry/reembed" {
                        (csrf)
                        button .secondary type="submit" { (t.reembed_button) }
                    }
                }
                section .card {
                    h2 { (t.import) }
                    p .muted { "<id>.jpg, <id>_2.jpg … + people.csv (id,name)" }
                    form #import method="post" action="/console/registry/import" {
                        (csrf)
                        label { (t.folder) input name="folder" required placeholder="/srv/renzheng/import"; }
                        button type="submit" { (t.import_button) }
                    }
                }
            }
        },
    )
}

/// `GET /console/registry`.
pub async fn page(op: Operator, lang: Lang) -> Response {
    render(&op, lang, Vec::new(), None)
}

/// The lookup and remove forms.
#[derive(Deserialize)]
pub struct PersonForm {
    id_number: String,
    confirm: Option<String>,
}

/// `POST /console/registry/lookup`.
pub async fn lookup(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<PersonForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let offset = state.app.settings().metering.utc_offset_minutes;
    let found = match IdNumber::parse(&form.id_number) {
        Ok(id) => state.app.person(&id).await,
        Err(e) => Err(e.into()),
    };
    match found {
        Ok(Some(person)) => {
            let card = person_card(lang, &person, offset);
            render(&op, lang, Vec::new(), Some(card))
        }
        Ok(None) => render(
            &op,
            lang,
            vec![Flash::error_because(lang.t().not_in_registry, "unknown")],
            None,
        ),
        Err(e) => render(&op, lang, vec![Flash::error(refusal_text(lang, &e))], None),
    }
}

/// `POST /console/registry/enrol` (multipart: `csrf`, `name`, `id_number`, `photo`…).
pub async fn enrol(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Multipart>,
) -> Response {
    let (op, upload) = form.into_parts();
    let upload = match upload {
        Ok(u) => u,
        Err(why) => return render(&op, lang, vec![Flash::error(why)], None),
    };
    let fields = EnrolFields {
        name: upload.text("name").map(str::to_owned),
        id_card: upload.text("id_number").map(str::to_owned),
        photos: upload.files("photo").cloned().collect(),
        allow_duplicate_face: upload.text("allow_duplicate_face") == Some("yes"),
        reason: upload.text("reason").map(str::to_owned),
    };
    let enrolled = match EnrolRequest::parse(fields) {
        Ok(request) => state.app.enrol(&op.session.actor(), request).await,
        Err(e) => Err(e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    match enrolled {
        Ok(enrolled) => {
            let person = enrolled.person;
            let card = person_card(lang, &person, offset);
            let flash = Flash::ok(format!("{} · {}", lang.t().enrolled, person.id_number));
            render(&op, lang, vec![flash], Some(card))
        }
        Err(e) => render(
            &op,
            lang,
            vec![Flash::error_because(
                refusal_text(lang, &e),
                refusal_reason(&e),
            )],
            None,
        ),
    }
}

/// `POST /console/registry/remove`: only with the confirmation ticked.
pub async fn remove(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<PersonForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let t = lang.t();
    if form.confirm.as_deref() != Some("yes") {
        return render(
            &op,
            lang,
            vec![Flash::error_because(t.confirm_required, "confirm")],
            None,
        );
    }
    let removed = match IdNumber::parse(&form.id_number) {
        Ok(id) => state
            .app
            .remove_person(&op.session.actor(), &id)
            .await
            .map(|()| id.masked()),
        Err(e) => Err(e.into()),
    };
    let flash = match removed {
        Ok(masked) => Flash::ok(format!("{} · {masked}", t.removed)),
        Err(e) => Flash::error(refusal_text(lang, &e)),
    };
    render(&op, lang, vec![flash], None)
}

/// `POST /console/registry/reembed`: the active pack's embeddings from kept photos.
pub async fn reembed(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<NoFields>>,
) -> Response {
    let (op, NoFields {}) = form.into_parts();
    let t = lang.t();
    match state.app.reembed(&op.session.actor()).await {
        Ok(s) => {
            let shown = html! {
                section #reembed-summary .card {
                    p { code { (s.model_id) } " · " (t.without_embeddings) ": " (s.missing)
                        " · " (t.persons) " ✓ " (s.reembedded) " · " (t.portraits) " + " (s.portraits) }
                    @for id in s.without_photo.iter().chain(&s.refused) { p .muted { code { (id) } } }
                }
            };
            render(&op, lang, vec![Flash::ok(t.saved)], Some(shown))
        }
        Err(e) => render(&op, lang, vec![Flash::error(refusal_text(lang, &e))], None),
    }
}

/// The import form.
#[derive(Deserialize)]
pub struct ImportForm {
    folder: String,
}

/// `POST /console/registry/import`: starts importing a folder on the server; answers with
/// its progress page.
pub async fn import(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<ImportForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let dir = PathBuf::from(form.folder.trim());
    if !dir.is_dir() {
        let flash = Flash::error_because(
            format!("{}: {}", lang.t().import_failed, dir.display()),
            "folder",
        );
        return render(&op, lang, vec![flash], None);
    }
    let job = uuid::Uuid::new_v4().simple().to_string();
    let jobs: Arc<ImportJobs> = state.imports.clone();
    jobs.start(job.clone(), state.app.now_ms());
    let app = state.app.clone();
    let actor = op.session.actor();
    let id = job.clone();
    tokio::spawn(async move {
        let progress_jobs = jobs.clone();
        let progress_id = id.clone();
        let outcome = app
            .import_folder(&actor, &dir, None, move |p| {
                progress_jobs.update(&progress_id, |j| {
                    j.done = p.done;
                    j.total = p.total;
                });
            })
            .await
            .map_err(|e| e.to_string());
        jobs.update(&id, |j| j.finished = Some(outcome));
    });
    Redirect::to(&format!("/console/registry/import/{job}")).into_response()
}

/// `GET /console/registry/import/{job}`: the import's progress, refreshing itself until
/// it is over, then its summary with every refusal.
pub async fn import_progress(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Path(job): Path<String>,
) -> Response {
    let t = lang.t();
    let Some(j) = state.imports.get(&job) else {
        return not_found(lang);
    };
    let (label, data_state) = match &j.finished {
        None => (t.import_running, "running"),
        Some(Ok(_)) => (t.import_done, "done"),
        Some(Err(_)) => (t.import_failed, "failed"),
    };
    let mut response = html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "registry",
            title: t.import,
            flash: Vec::new(),
        },
        html! {
            section #import-progress .card data-done=(j.done) data-total=(j.total) data-state=(data_state) {
                p { strong { (label) } " · " (j.done) " / " (j.total) }
                progress max=(j.total.max(1)) value=(j.done) {}
                @match &j.finished {
                    Some(Ok(s)) => {
                        p { (t.persons) ": " (s.persons) " · " (t.portraits) ": " (s.portraits) }
                        @if !s.refused.is_empty() {
                            h2 { (t.refused_items) " (" (s.refused.len()) ")" }
                            ul { @for r in &s.refused { li { code { (r.item) } ": " (r.reason) } } }
                        }
                    }
                    Some(Err(why)) => p .flash .error { (why) },
                    None => {}
                }
                p { a href="/console/registry" { "← " (t.registry) } }
            }
        },
    );
    if j.finished.is_none() {
        // Refreshes itself while running (a header: no script, nothing inline).
        response.headers_mut().insert(
            axum::http::HeaderName::from_static("refresh"),
            axum::http::HeaderValue::from_static("1"),
        );
    }
    response
}
