//! The duplicate-face scan: faces enrolled under two ID numbers and persons whose own
//! portraits disagree, run in the background (it reads every template: minutes on a
//! large registry) with a progress page that refreshes itself. One scan at a time per
//! node: starting another while one runs opens the running one. ID numbers are masked:
//! the console never reveals them (the CLI's `--reveal`, with a reason, does).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use renzheng_app::{DuplicateReport, ReportedPerson};

use crate::console::csrf;
use crate::console::errors::{not_found, refusal_text};
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Page};
use crate::console::session::Operator;
use crate::console::verified::{NoFields, Verified};
use crate::import_jobs::DuplicateJobs;
use crate::state::AppState;

/// Rows of each table the page shows, at most (the counts are always whole).
const ROWS_SHOWN: usize = 500;

/// `GET /console/registry/duplicates`: what the scan does, its button, the latest scan.
pub async fn page(State(state): State<AppState>, op: Operator, lang: Lang) -> Response {
    let t = lang.t();
    let offset = state.app.settings().metering.utc_offset_minutes;
    let latest = state.duplicates.latest();
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "registry",
            title: t.duplicates,
            flash: Vec::new(),
        },
        html! {
            section .card {
                p .muted { (t.duplicates_intro) }
                form #duplicates method="post" action="/console/registry/duplicates" {
                    (csrf::field(&op.session))
                    button type="submit" { (t.duplicates_button) }
                }
                @if let Some((job, j)) = latest {
                    p {
                        a #latest-scan href={ "/console/registry/duplicates/" (job) } { (t.last_scan) }
                        " · " (format_time(j.started, offset)) " · "
                        @match &j.finished {
                            None => (t.scan_running),
                            Some(Ok(_)) => (t.scan_done),
                            Some(Err(_)) => (t.scan_failed),
                        }
                    }
                }
                p { a href="/console/registry" { "← " (t.registry) } }
            }
        },
    )
}

/// `POST /console/registry/duplicates`: starts a scan (or finds the one running) and
/// answers with its progress page.
pub async fn start(State(state): State<AppState>, form: Verified<Form<NoFields>>) -> Response {
    let (op, NoFields {}) = form.into_parts();
    let job = uuid::Uuid::new_v4().simple().to_string();
    let jobs: Arc<DuplicateJobs> = state.duplicates.clone();
    if let Err(running) = jobs.start_alone(job.clone(), state.app.now_ms()) {
        return Redirect::to(&format!("/console/registry/duplicates/{running}")).into_response();
    }
    let app = state.app.clone();
    let actor = op.session.actor();
    let id = job.clone();
    tokio::spawn(async move {
        let progress_jobs = jobs.clone();
        let progress_id = id.clone();
        let outcome = app
            .duplicate_report(&actor, None, move |p| {
                progress_jobs.update(&progress_id, |j| {
                    j.pass = p.pass;
                    j.done = p.done;
                    j.total = p.total;
                });
            })
            .await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "the console's duplicate-face scan failed");
        }
        jobs.update(&id, |j| {
            j.finished = Some(outcome.map(Arc::new).map_err(Arc::new));
        });
    });
    Redirect::to(&format!("/console/registry/duplicates/{job}")).into_response()
}

/// A person of the report: masked ID number and handle.
fn person(p: &ReportedPerson) -> Markup {
    html! { code .id { (p.id_number) } " · " code .handle { (p.handle) } }
}

/// The report's tables.
fn report(lang: Lang, r: &DuplicateReport) -> Markup {
    let t = lang.t();
    html! {
        p #duplicates-summary .muted {
            (t.model_pack) " " code { (r.model_id) } " · " (t.templates) ": " (r.templates)
            " · " (t.persons) ": " (r.persons) " · " (t.line_distance) ": " (format!("{:.3}", r.line_distance))
        }
        h2 { (t.duplicate_pairs) " (" (r.pairs.len()) ")" }
        @if r.pairs.is_empty() {
            p .muted #no-pairs { (t.none_found) }
        } @else {
            @if r.pairs.len() > ROWS_SHOWN { p .muted { (t.rows_shown) " " (ROWS_SHOWN) } }
            div .table-wrap { table #duplicate-pairs {
                thead { tr { th { (t.person_a) } th { (t.person_b) } th .num { (t.score) } } }
                tbody {
                    @for pair in r.pairs.iter().take(ROWS_SHOWN) {
                        tr data-a=(pair.a.handle) data-b=(pair.b.handle) {
                            td { (person(&pair.a)) }
                            td { (person(&pair.b)) }
                            td .num { (format!("{:.3}", pair.score)) }
                        }
                    }
                }
            } }
        }
        h2 { (t.disagreeing) " (" (r.disagreeing.len()) ")" }
        @if r.disagreeing.is_empty() {
            p .muted #no-disagreeing { (t.none_found) }
        } @else {
            @if r.disagreeing.len() > ROWS_SHOWN { p .muted { (t.rows_shown) " " (ROWS_SHOWN) } }
            div .table-wrap { table #disagreeing {
                thead { tr { th { (t.id_number) } th { (t.portraits) } th .num { (t.score) } } }
                tbody {
                    @for d in r.disagreeing.iter().take(ROWS_SHOWN) {
                        tr data-handle=(d.person.handle) {
                            td { (person(&d.person)) }
                            td { "#" (d.portraits.0) " · #" (d.portraits.1) }
                            td .num { (format!("{:.3}", d.score)) }
                        }
                    }
                }
            } }
        }
    }
}

/// `GET /console/registry/duplicates/{job}`: the scan's progress, refreshing itself
/// until it is over, then its report.
pub async fn progress(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Path(job): Path<String>,
) -> Response {
    let t = lang.t();
    let Some(j) = state.duplicates.get(&job) else {
        return not_found(lang);
    };
    let (label, data_state) = match &j.finished {
        None => (t.scan_running, "running"),
        Some(Ok(_)) => (t.scan_done, "done"),
        Some(Err(_)) => (t.scan_failed, "failed"),
    };
    let pass_name = match j.pass {
        2 => t.pass_portraits,
        _ => t.pass_faces,
    };
    let mut response = html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "registry",
            title: t.duplicates,
            flash: Vec::new(),
        },
        html! {
            section #duplicates-progress .card data-state=(data_state) data-pass=(j.pass) data-done=(j.done) data-total=(j.total) {
                p {
                    strong { (label) }
                    @if j.finished.is_none() {
                        " · " (t.scan_pass) " " (j.pass.max(1)) " / 2 (" (pass_name) ") · " (j.done) " / " (j.total)
                    }
                }
                @if j.finished.is_none() {
                    progress max=(j.total.max(1)) value=(j.done) {}
                }
                @match &j.finished {
                    Some(Ok(r)) => (report(lang, r)),
                    Some(Err(e)) => p .flash .error data-reason="scan-failed" { (refusal_text(lang, e)) },
                    None => {}
                }
                p { a href="/console/registry/duplicates" { "← " (t.duplicates) } " · " a href="/console/registry" { (t.registry) } }
            }
        },
    );
    if j.finished.is_none() {
        // Refreshes itself while running (a header: no script, nothing inline).
        response.headers_mut().insert(
            HeaderName::from_static("refresh"),
            HeaderValue::from_static("1"),
        );
    }
    response
}
