//! Registry: the persons enrolled (a paged list and a search, masked), look a person up
//! (the ID number is posted, never put in a URL), enrol with photos (the engine's and the
//! registry's refusal reasons shown, a duplicate face allowed only with a reason), rename
//! and replace portraits (each with a reason), record a person's legal basis, remove after an explicit confirmation,
//! import a server-side folder with a progress page, and the registry's operator events
//! with who did what and why. The duplicate-face scan has its own page
//! ([`duplicates`](super::duplicates)).

use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use renzheng_app::{
    App, AppError, BasisStatement, EnrolFields, EnrolRequest, PersonLine, PersonView, Reason,
};
use renzheng_domain::{IdNumber, PersonName};
use renzheng_store::AdminEventRecord;
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{failure, import_problem, not_found, refusal_reason, refusal_text};
use crate::console::fields::{self, Typed};
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::multipart::Upload;
use crate::console::notice::{redirect, Notice};
use crate::console::session::Operator;
use crate::console::verified::{NoFields, Verified};
use crate::console::words;
use crate::import_jobs::ImportJobs;
use crate::state::AppState;

/// This page.
const PAGE: &str = "/console/registry";

/// Persons per page of the list.
const PER_PAGE: u32 = 20;

/// Persons a search shows, at most (an exact name may be shared).
const SEARCH_LIMIT: u32 = 50;

/// Operator events read to find the registry's latest ones, and how many are shown.
const EVENTS_READ: u32 = 200;
const EVENTS_SHOWN: usize = 20;

fn person_card(lang: Lang, person: &PersonView, offset: i32) -> Markup {
    let t = lang.t();
    html! {
        section #person .card data-portraits=(person.portraits.len()) data-handle=(person.handle) {
            p { strong { (person.name) } " · " code { (person.id_number) } " · " code .handle { (person.handle) } }
            p .muted { (t.created_at) " " (format_time(person.created_at, offset)) }
            p .basis {
                (t.basis_on_record) ": "
                @match &person.basis {
                    Some(b) => {
                        strong { (b.basis) } " · " (b.reference)
                        @if let Some(g) = &b.guardian_consent_ref { " · " (t.guardian_consent_ref) " " (g) }
                        " · " (b.purpose) " · " span .muted { (format_time(b.recorded_at, offset)) " " (b.recorded_by) }
                    }
                    None => span .muted #no-basis { (t.basis_missing) },
                }
            }
            p { (t.portraits) ": " (person.portraits.len()) }
            ul {
                @for p in &person.portraits {
                    li { code { (p.model_id) } " · " (format_time(p.created_at, offset)) }
                }
            }
        }
    }
}

/// A table of persons, masked (the list's page, a search's results).
fn person_table(lang: Lang, id: &str, lines: &[PersonLine], offset: i32) -> Markup {
    let t = lang.t();
    html! {
        div .table-wrap { table id=(id) {
            thead { tr { th { (t.name) } th { (t.id_number) } th { (t.handle) } th .num { (t.portraits) } th { (t.enrolled_at) } } }
            tbody {
                @for p in lines {
                    tr data-handle=(p.handle) {
                        td { (p.name) }
                        td { code { (p.id_number) } }
                        td { code { (p.handle) } }
                        td .num { (p.portraits) }
                        td { (format_time(p.created_at, offset)) }
                    }
                }
            }
        } }
    }
}

/// Whether an operator event is about the registry.
fn is_registry_event(e: &AdminEventRecord) -> bool {
    e.action.starts_with("person.") || e.action.starts_with("registry.")
}

fn events_table(lang: Lang, events: &[AdminEventRecord], offset: i32) -> Markup {
    let t = lang.t();
    html! {
        @if events.is_empty() {
            p .muted { (t.no_data) }
        } @else {
            div .table-wrap { table #registry-events {
                thead { tr { th { (t.time) } th { (t.who) } th { (t.what) } th { (t.target) } th { (t.detail) } th { (t.reason) } } }
                tbody {
                    @for e in events {
                        tr data-action=(e.action) {
                            td { (format_time(e.at, offset)) }
                            td { (e.actor) }
                            td { (words::event(lang, &e.action)) " " code .muted { (e.action) } }
                            td { code { (e.target.as_deref().unwrap_or("")) } }
                            td .wrap { (e.detail.as_deref().unwrap_or("")) }
                            td .wrap .reason { (e.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
        }
    }
}

/// The registry page: its list at `page` (1-based), `flash`, and `shown` (a person, a
/// search's results, a summary) above the forms.
async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    page: u64,
    flash: Vec<Flash>,
    shown: Option<Markup>,
    typed: Option<&Typed>,
) -> Response {
    let t = lang.t();
    let offset = state.app.settings().metering.utc_offset_minutes;
    let page = page.max(1);
    let fill = |form: &str| Typed::fill(typed, form);
    let listed = state
        .app
        .registry_page((page - 1).saturating_mul(u64::from(PER_PAGE)), PER_PAGE)
        .await;
    let events = state.app.recent_events(EVENTS_READ).await;
    let (listed, events) = match (listed, events) {
        (Ok(l), Ok(e)) => (l, e),
        (Err(e), _) | (_, Err(e)) => return failure(lang, Some(&op.session), &e),
    };
    let events: Vec<AdminEventRecord> = events
        .into_iter()
        .filter(is_registry_event)
        .take(EVENTS_SHOWN)
        .collect();
    let pages = listed.total.div_ceil(u64::from(PER_PAGE)).max(1);
    let latest_scan = state.duplicates.latest();
    let csrf = || csrf::field(&op.session);
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
            div .figures {
                div .figure { span .muted { (t.person_count) } b #person-count { (listed.total) } }
            }
            @if let Some(shown) = shown { (shown) }
            div .grid {
                section .card {
                    h2 { (t.search) }
                    form #search .row method="post" action="/console/registry/search" {
                        (csrf())
                        (fields::search_query(lang))
                        button type="submit" { (t.search_button) }
                    }
                }
                section .card {
                    h2 { (t.lookup) }
                    form #lookup .row method="post" action="/console/registry/lookup" {
                        (csrf())
                        (fields::id_number(lang, fill("lookup")))
                        button type="submit" { (t.find) }
                    }
                }
                section .card {
                    h2 { (t.enrol) }
                    form #enrol method="post" action="/console/registry/enrol" enctype="multipart/form-data" {
                        (csrf())
                        (fields::person_name(lang, fill("enrol")))
                        (fields::id_number(lang, fill("enrol")))
                        label { (t.photos) input name="photo" type="file" accept="image/*" multiple; }
                        (fields::basis(lang, false, fill("enrol")))
                        p .muted #enrol-basis-hint { (t.basis_hint) }
                        (fields::allow_duplicate_face(lang, fill("enrol")))
                        (fields::reason(lang, false, fill("enrol")))
                        p .muted #enrol-reason-hint { (t.reason_hint) }
                        button type="submit" { (t.enrol) }
                    }
                }
                section .card {
                    h2 { (t.rename) }
                    p .muted { (t.rename_intro) }
                    form #rename method="post" action="/console/registry/rename" {
                        (csrf())
                        (fields::person_ref(lang, fill("rename")))
                        (fields::new_name(lang, fill("rename")))
                        (fields::reason(lang, true, fill("rename")))
                        button type="submit" { (t.rename) }
                    }
                }
                section .card {
                    h2 { (t.replace) }
                    p .muted { (t.replace_intro) }
                    form #replace method="post" action="/console/registry/replace" enctype="multipart/form-data" {
                        (csrf())
                        (fields::person_ref(lang, fill("replace")))
                        label { (t.photos) input name="photo" type="file" accept="image/*" multiple required; }
                        (fields::reason(lang, true, fill("replace")))
                        (fields::allow_duplicate_face(lang, fill("replace")))
                        (fields::basis(lang, false, fill("replace")))
                        button type="submit" { (t.replace_button) }
                    }
                }
                section .card {
                    h2 { (t.record_basis) }
                    p .muted { (t.record_basis_intro) }
                    form #record-basis method="post" action="/console/registry/basis" {
                        (csrf())
                        (fields::person_ref(lang, fill("record-basis")))
                        (fields::basis(lang, true, fill("record-basis")))
                        button type="submit" { (t.record_basis) }
                    }
                }
                section .card {
                    h2 { (t.remove) }
                    form #remove method="post" action="/console/registry/remove" data-confirm=(t.remove_confirm) {
                        (csrf())
                        (fields::id_number(lang, fill("remove")))
                        (fields::request_ref(lang, fill("remove")))
                        label { input name="confirm" type="checkbox" value="yes"; " " (t.remove_confirm) }
                        button .danger type="submit" { (t.remove_button) }
                    }
                }
                section .card {
                    h2 { (t.duplicates) }
                    p .muted { (t.duplicates_intro) }
                    form #duplicates method="post" action="/console/registry/duplicates" {
                        (csrf())
                        button .secondary type="submit" { (t.duplicates_button) }
                    }
                    p {
                        a href="/console/registry/duplicates" { (t.duplicates_open) }
                        @if let Some((job, _)) = latest_scan {
                            " · " a #latest-scan href={ "/console/registry/duplicates/" (job) } { (t.last_scan) " →" }
                        }
                    }
                }
                section .card {
                    h2 { (t.reembed) }
                    p .muted { (t.reembed_intro) }
                    form #reembed method="post" action="/console/registry/reembed" {
                        (csrf())
                        button .secondary type="submit" { (t.reembed_button) }
                    }
                }
                section .card {
                    h2 { (t.import) }
                    p .muted { "<id>.jpg, <id>_2.jpg … + people.csv (id,name[,basis,reference,guardian_consent_ref,purpose])" }
                    form #import method="post" action="/console/registry/import" {
                        (csrf())
                        label { (t.folder) input name="folder" required placeholder="batch-2026-12" value=[fill("import").get("folder")]; }
                        (fields::basis(lang, false, fill("import")))
                        button type="submit" { (t.import_button) }
                    }
                }
            }
            section #persons-list .card data-page=(page) data-pages=(pages) data-total=(listed.total) {
                h2 { (t.persons_list) }
                @if listed.persons.is_empty() {
                    p .muted { (t.no_data) }
                } @else {
                    (person_table(lang, "persons", &listed.persons, offset))
                }
                p .pager {
                    @if page > 1 {
                        a #prev-page href={ "/console/registry?page=" (page.min(pages + 1) - 1) } { "← " (t.prev_page) }
                        " "
                    }
                    span .muted { (t.page) " " (page) " / " (pages) }
                    @if page < pages {
                        " "
                        a #next-page href={ "/console/registry?page=" (page + 1) } { (t.next_page) " →" }
                    }
                }
            }
            section .card {
                h2 { (t.registry_events) }
                (events_table(lang, &events, offset))
            }
        },
    )
}

/// The list's page in the URL (`?page=N`, 1-based; anything else is the first).
#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

/// `GET /console/registry[?page=N]`.
pub async fn page(
    State(state): State<AppState>,
    mut op: Operator,
    lang: Lang,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q
        .page
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(1);
    let (flash, shown) = op.take_notice().into_parts();
    render(&state, &op, lang, page, flash, shown, None).await
}

/// The answer to a registry form that changes the registry: done, back to the page
/// (Post/Redirect/Get) with the message and the person as the form left them, shown once;
/// refused, the page at once with the refusal, nothing stored.
async fn answer(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    outcome: Result<(Flash, Option<Markup>), Flash>,
    typed: Typed,
) -> Response {
    match outcome {
        Ok((flash, shown)) => redirect(state, op.token(), PAGE, Notice::new(flash, shown)).await,
        Err(flash) => render(state, op, lang, 1, vec![flash], None, Some(&typed)).await,
    }
}

/// What the removal form had typed (not the confirmation: it is ticked anew).
fn removal_typed(form: &PersonForm) -> Typed {
    let mut values = vec![("id_number", form.id_number.as_str())];
    values.extend(form.request_ref.as_deref().map(|r| ("request_ref", r)));
    Typed::new("remove", values)
}

/// What a form with basis fields (and perhaps one more, `first`) had typed.
fn basis_typed(form: &'static str, first: Option<(&str, &str)>, basis: &BasisForm) -> Typed {
    let mut values: Vec<(&str, &str)> = first.into_iter().collect();
    for (name, value) in [
        ("basis", &basis.basis),
        ("consent_ref", &basis.consent_ref),
        ("law", &basis.law),
        ("guardian_consent_ref", &basis.guardian_consent_ref),
        ("purpose", &basis.purpose),
    ] {
        values.extend(value.as_deref().map(|v| (name, v)));
    }
    Typed::new(form, values)
}

/// What an upload form had typed (its text fields but the token).
fn typed_upload(form: &'static str, upload: &Upload) -> Typed {
    Typed::new(form, upload.texts().filter(|(k, _)| *k != csrf::FIELD))
}

/// The flash of a refused registry form: a person that is not there, or the use case's
/// refusal in the console's words.
fn refusal_flash(lang: Lang, e: &AppError) -> Flash {
    match e {
        AppError::NotFound("person") => Flash::error_because(lang.t().not_in_registry, "unknown"),
        e => Flash::error_because(refusal_text(lang, e), refusal_reason(e)),
    }
}

/// The search form.
#[derive(Deserialize)]
pub struct SearchForm {
    query: String,
}

/// `POST /console/registry/search`: a full ID number, a handle or an exact name (posted:
/// it is personal data), the persons it names, masked. The query is not shown back.
pub async fn search(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<SearchForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let t = lang.t();
    let offset = state.app.settings().metering.utc_offset_minutes;
    match state.app.find_persons(&form.query, SEARCH_LIMIT).await {
        Ok(found) => {
            let shown = html! {
                section #search-results .card data-found=(found.len()) {
                    h2 { (t.search_results) " (" (found.len()) ")" }
                    @if found.is_empty() {
                        p .muted { (t.no_match) }
                    } @else {
                        (person_table(lang, "found", &found, offset))
                    }
                }
            };
            render(&state, &op, lang, 1, Vec::new(), Some(shown), None).await
        }
        Err(e) => {
            render(
                &state,
                &op,
                lang,
                1,
                vec![refusal_flash(lang, &e)],
                None,
                None,
            )
            .await
        }
    }
}

/// The lookup and remove forms.
#[derive(Deserialize)]
pub struct PersonForm {
    id_number: String,
    confirm: Option<String>,
    /// A removal's data subject's request.
    request_ref: Option<String>,
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
    let (flash, shown) = match found {
        Ok(Some(person)) => (Vec::new(), Some(person_card(lang, &person, offset))),
        Ok(None) => (
            vec![Flash::error_because(lang.t().not_in_registry, "unknown")],
            None,
        ),
        Err(e) => (vec![Flash::error(refusal_text(lang, &e))], None),
    };
    let typed =
        (shown.is_none()).then(|| Typed::new("lookup", [("id_number", form.id_number.as_str())]));
    render(&state, &op, lang, 1, flash, shown, typed.as_ref()).await
}

/// `POST /console/registry/enrol` (multipart: `csrf`, `name`, `id_number`, `photo`…,
/// `allow_duplicate_face`, `reason`).
pub async fn enrol(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Multipart>,
) -> Response {
    let (op, upload) = form.into_parts();
    let upload = match upload {
        Ok(u) => u,
        Err(why) => {
            return render(
                &state,
                &op,
                lang,
                1,
                vec![Flash::error(why.words(lang))],
                None,
                None,
            )
            .await
        }
    };
    let (basis, purpose) = fields::basis_fields(|n| upload.text(n));
    let fields = EnrolFields {
        name: upload.text("name").map(str::to_owned),
        id_card: upload.text("id_number").map(str::to_owned),
        photos: upload.files("photo").cloned().collect(),
        allow_duplicate_face: upload.text("allow_duplicate_face") == Some("yes"),
        reason: upload.text("reason").map(str::to_owned),
        basis,
        purpose,
    };
    let enrolled = match EnrolRequest::parse(fields) {
        Ok(request) => state.app.enrol(&op.session.actor(), request).await,
        Err(e) => Err(e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    let outcome = match enrolled {
        Ok(enrolled) => {
            let person = enrolled.person;
            let flash = Flash::ok(format!("{} · {}", lang.t().enrolled, person.id_number));
            Ok((flash, Some(person_card(lang, &person, offset))))
        }
        Err(e) => Err(refusal_flash(lang, &e)),
    };
    answer(&state, &op, lang, outcome, typed_upload("enrol", &upload)).await
}

/// The rename form.
#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    person: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/registry/rename`: a person (ID number or handle) gets a new name, for
/// a reason (`person.renamed`).
pub async fn rename(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<RenameForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let renamed = async {
        let reason = Reason::parse(&form.reason)?;
        let name = PersonName::parse(&form.name)?;
        let id = state.app.resolve_person(&form.person).await?;
        state
            .app
            .rename_person(&op.session.actor(), &id, &name, reason)
            .await
    }
    .await;
    let offset = state.app.settings().metering.utc_offset_minutes;
    let outcome = match renamed {
        Ok(person) => Ok((
            Flash::ok(format!("{} · {}", lang.t().renamed, person.id_number)),
            Some(person_card(lang, &person, offset)),
        )),
        Err(e) => Err(refusal_flash(lang, &e)),
    };
    answer(
        &state,
        &op,
        lang,
        outcome,
        Typed::new(
            "rename",
            [
                ("person", form.person.as_str()),
                ("name", form.name.as_str()),
                ("reason", form.reason.as_str()),
            ],
        ),
    )
    .await
}

/// `POST /console/registry/replace` (multipart: `csrf`, `person`, `photo`…, `reason`,
/// `allow_duplicate_face`): all of a person's portraits replaced by the photos, for a
/// reason; the same reason allows a face enrolled under another ID number when the box
/// is ticked.
pub async fn replace(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Multipart>,
) -> Response {
    let (op, upload) = form.into_parts();
    let upload = match upload {
        Ok(u) => u,
        Err(why) => {
            return render(
                &state,
                &op,
                lang,
                1,
                vec![Flash::error(why.words(lang))],
                None,
                None,
            )
            .await
        }
    };
    let replaced = async {
        let reason = Reason::parse(upload.text("reason").unwrap_or_default())?;
        let id = state
            .app
            .resolve_person(upload.text("person").unwrap_or_default())
            .await?;
        let allow = (upload.text("allow_duplicate_face") == Some("yes")).then(|| reason.clone());
        let (basis, purpose) = fields::basis_fields(|n| upload.text(n));
        let basis = BasisStatement::parse(&basis, purpose.as_deref())?;
        let photos = upload.files("photo").cloned().collect();
        state
            .app
            .replace_portraits(&op.session.actor(), &id, photos, reason, allow, basis)
            .await
    }
    .await;
    let offset = state.app.settings().metering.utc_offset_minutes;
    let outcome = match replaced {
        Ok(enrolled) => {
            let person = enrolled.person;
            let flash = Flash::ok(format!("{} · {}", lang.t().replaced, person.id_number));
            Ok((flash, Some(person_card(lang, &person, offset))))
        }
        Err(e) => Err(refusal_flash(lang, &e)),
    };
    answer(&state, &op, lang, outcome, typed_upload("replace", &upload)).await
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
        let flash = Flash::error_because(t.confirm_required, "confirm");
        let typed = removal_typed(&form);
        return render(&state, &op, lang, 1, vec![flash], None, Some(&typed)).await;
    }
    let removed = match (
        IdNumber::parse(&form.id_number),
        App::request_ref(form.request_ref.as_deref()),
    ) {
        (Ok(id), Ok(request)) => state
            .app
            .remove_person_on_request(&op.session.actor(), &id, request.as_ref())
            .await
            .map(|()| id.masked()),
        (Err(e), _) => Err(e.into()),
        (_, Err(e)) => Err(e),
    };
    let outcome = match removed {
        Ok(masked) => Ok((Flash::ok(format!("{} · {masked}", t.removed)), None)),
        Err(e) => Err(Flash::error(refusal_text(lang, &e))),
    };
    answer(&state, &op, lang, outcome, removal_typed(&form)).await
}

/// `POST /console/registry/reembed`: the active pack's embeddings from kept photos.
pub async fn reembed(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<NoFields>>,
) -> Response {
    let (op, NoFields {}) = form.into_parts();
    let t = lang.t();
    let outcome = match state.app.reembed(&op.session.actor()).await {
        Ok(s) => {
            let shown = html! {
                section #reembed-summary .card {
                    p { code { (s.model_id) } " · " (t.without_embeddings) ": " (s.missing)
                        " · " (t.persons) " ✓ " (s.reembedded) " · " (t.portraits) " + " (s.portraits) }
                    @for id in s.without_photo.iter().chain(&s.refused) { p .muted { code { (id) } } }
                }
            };
            Ok((Flash::ok(t.saved), Some(shown)))
        }
        Err(e) => Err(Flash::error(refusal_text(lang, &e))),
    };
    answer(&state, &op, lang, outcome, Typed::new("reembed", [])).await
}

/// The basis fields of a urlencoded form ([`fields::basis`]).
#[derive(Deserialize, Default)]
pub struct BasisForm {
    basis: Option<String>,
    consent_ref: Option<String>,
    law: Option<String>,
    guardian_consent_ref: Option<String>,
    purpose: Option<String>,
}

impl BasisForm {
    /// The statement, `None` when no basis was chosen.
    fn statement(&self) -> Result<Option<BasisStatement>, AppError> {
        let (basis, purpose) = fields::basis_fields(|name| {
            match name {
                "basis" => &self.basis,
                "consent_ref" => &self.consent_ref,
                "law" => &self.law,
                "guardian_consent_ref" => &self.guardian_consent_ref,
                "purpose" => &self.purpose,
                _ => &None,
            }
            .as_deref()
        });
        BasisStatement::parse(&basis, purpose.as_deref())
    }
}

/// The record-basis form.
#[derive(Deserialize)]
pub struct RecordBasisForm {
    #[serde(default)]
    person: String,
    #[serde(flatten)]
    basis: BasisForm,
}

/// `POST /console/registry/basis`: records (renews) a person's legal basis
/// (`person.basis-recorded`).
pub async fn record_basis(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<RecordBasisForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let recorded = async {
        let statement = form
            .basis
            .statement()?
            .ok_or(AppError::MissingField("basis"))?;
        let id = state.app.resolve_person(&form.person).await?;
        state
            .app
            .record_basis(&op.session.actor(), &id, statement)
            .await?;
        state
            .app
            .person(&id)
            .await?
            .ok_or(AppError::NotFound("person"))
    }
    .await;
    let offset = state.app.settings().metering.utc_offset_minutes;
    let outcome = match recorded {
        Ok(person) => Ok((
            Flash::ok(format!(
                "{} · {}",
                lang.t().basis_recorded,
                person.id_number
            )),
            Some(person_card(lang, &person, offset)),
        )),
        Err(e) => Err(refusal_flash(lang, &e)),
    };
    answer(
        &state,
        &op,
        lang,
        outcome,
        basis_typed(
            "record-basis",
            Some(("person", form.person.as_str())),
            &form.basis,
        ),
    )
    .await
}

/// The import form: the folder and the basis of the rows that give none.
#[derive(Deserialize)]
pub struct ImportForm {
    folder: String,
    #[serde(flatten)]
    basis: BasisForm,
}

/// `POST /console/registry/import`: starts importing a folder on the server; answers with
/// its progress page.
pub async fn import(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<ImportForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    // Only a folder inside `console.import_root` (none: the import is off), refused here
    // at once rather than on the progress page.
    if let Err(e) = state.app.folder_under_root(&form.folder) {
        let flash = Flash::error_because(format!("{}: {e}", lang.t().import_failed), "folder");
        let typed = basis_typed(
            "import",
            Some(("folder", form.folder.as_str())),
            &form.basis,
        );
        return render(&state, &op, lang, 1, vec![flash], None, Some(&typed)).await;
    }
    let basis = match form.basis.statement() {
        Ok(basis) => basis,
        Err(e) => {
            let typed = basis_typed(
                "import",
                Some(("folder", form.folder.as_str())),
                &form.basis,
            );
            let flash = vec![refusal_flash(lang, &e)];
            return render(&state, &op, lang, 1, flash, None, Some(&typed)).await;
        }
    };
    let folder = form.folder;
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
            .import_folder_under_root(&actor, &folder, basis, move |p| {
                progress_jobs.update(&progress_id, |j| {
                    j.done = p.done;
                    j.total = p.total;
                });
            })
            .await
            // Worded now, in the language of whoever started it (the page shows it).
            .map_err(|e| refusal_text(lang, &e));
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
                            ul #import-refused { @for r in &s.refused { li { code { (words::import_item(lang, &r.at)) } ": " (import_problem(lang, &r.problem)) } } }
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
