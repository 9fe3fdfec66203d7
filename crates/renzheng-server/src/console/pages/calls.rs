//! Usage and call history: per day, and call by call with filters (app, dates, result,
//! status, taskNo), keyset paging and CSV export; the calls about one ID number from a
//! posted form. Names and ID numbers are shown masked, as stored; the GET filters hold no
//! personal data, so they may sit in the URL, and the ID number never does.

use axum::extract::{Query, State};
use axum::http::header::CONTENT_DISPOSITION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use renzheng_app::CallFilter;
use renzheng_domain::IdNumber;
use renzheng_store::AppId;
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{failure, refusal_text};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{format_seconds, html_page, with_headers, zone, Flash, Page};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::console::words;
use crate::state::AppState;

/// Calls per page.
const PAGE: u32 = 50;

/// The filter form (blank fields are "any").
#[derive(Debug, Default, Deserialize)]
pub struct FilterQuery {
    app_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    result: Option<String>,
    status: Option<String>,
    task_no: Option<String>,
    before: Option<i64>,
}

fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl FilterQuery {
    fn filter(&self, limit: Option<u32>) -> Result<CallFilter, renzheng_app::AppError> {
        let invalid = |m: &str| renzheng_app::AppError::Invalid(m.to_owned());
        Ok(CallFilter {
            from: present(&self.from).map(str::to_owned),
            to: present(&self.to).map(str::to_owned),
            result: present(&self.result)
                .map(|r| r.parse().map_err(|_| invalid("result must be 1 to 8")))
                .transpose()?,
            status: present(&self.status)
                .map(|s| {
                    s.parse()
                        .map_err(|_| invalid("status must be an HTTP status"))
                })
                .transpose()?,
            before: self.before,
            task_no: present(&self.task_no).map(str::to_owned),
            id_number: None,
            limit,
        })
    }

    fn app(&self) -> Option<AppId> {
        present(&self.app_id).map(|a| AppId::from(a.to_owned()))
    }

    /// The query string of these filters (without `before`), URL-encoded.
    fn query_string(&self) -> String {
        let pairs = [
            ("app_id", present(&self.app_id)),
            ("from", present(&self.from)),
            ("to", present(&self.to)),
            ("result", present(&self.result)),
            ("status", present(&self.status)),
            ("task_no", present(&self.task_no)),
        ];
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().filter_map(|(k, v)| v.map(|v| (k, v))))
            .finish()
    }
}

/// `GET /console/calls`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Query(q): Query<FilterQuery>,
) -> Response {
    render(&state, &op, lang, &q, None, Vec::new()).await
}

/// The ID-number search form (posted: an ID number never goes into a URL).
#[derive(Deserialize)]
pub struct PersonSearch {
    #[serde(default)]
    id_number: String,
}

/// `POST /console/calls/by-id-number`: the newest calls about one ID number (found by
/// its keyed hash, as the audit keeps it), masked. Read-only: the page is the answer.
pub async fn by_id_number(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<PersonSearch>>,
) -> Response {
    let (op, form) = form.into_parts();
    match IdNumber::parse(&form.id_number) {
        Ok(id) => {
            render(
                &state,
                &op,
                lang,
                &FilterQuery::default(),
                Some(id),
                Vec::new(),
            )
            .await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e.into()))];
            render(&state, &op, lang, &FilterQuery::default(), None, flash).await
        }
    }
}

async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    q: &FilterQuery,
    person: Option<IdNumber>,
    mut flash: Vec<Flash>,
) -> Response {
    let t = lang.t();
    let app = &state.app;
    let apps = match app.list_apps().await {
        Ok(a) => a,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let app_id = q.app();
    let searched = person.is_some();
    let filter = q.filter(Some(PAGE)).map(|mut f| {
        f.id_number = person;
        f
    });
    let (calls, usage) = match filter {
        Err(e) => {
            flash.push(Flash::error(refusal_text(lang, &e)));
            (Vec::new(), None)
        }
        Ok(filter) => {
            let calls = app.calls(app_id.as_ref(), &filter).await;
            // Usage is per day over every call: not shown for one taskNo or one person.
            let narrowed = searched || filter.task_no.is_some();
            let usage = if narrowed {
                Ok(None)
            } else {
                app.usage(
                    app_id.as_ref(),
                    filter.from.as_deref(),
                    filter.to.as_deref(),
                )
                .await
                .map(Some)
            };
            match (calls, usage) {
                (Ok(c), Ok(u)) => (c, u),
                (Err(e), _) | (_, Err(e)) => {
                    flash.push(Flash::error(refusal_text(lang, &e)));
                    (Vec::new(), None)
                }
            }
        }
    };
    let offset = app.settings().metering.utc_offset_minutes;
    let query = q.query_string();
    let name_of = |id: &str| {
        apps.iter()
            .find(|a| a.app_id == id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    };
    let csrf = csrf::field(&op.session);
    let next = (!searched && calls.len() == PAGE as usize)
        .then(|| calls.last().map(|c| c.id))
        .flatten();
    let selected = |v: &str, current: Option<&str>| current == Some(v);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "calls",
            title: t.calls,
            flash,
        },
        html! {
            form #call-filter .card .row method="get" action="/console/calls" {
                label { (t.app) select name="app_id" {
                    option value="" { (t.any) }
                    @for a in &apps {
                        option value=(a.app_id) selected[selected(&a.app_id, present(&q.app_id))] { (a.name) }
                    }
                } }
                label { (t.from) input type="date" name="from" value=[present(&q.from)]; }
                label { (t.to) input type="date" name="to" value=[present(&q.to)]; }
                label { (t.result) select name="result" {
                    option value="" { (t.any) }
                    @for code in 1..=8 {
                        @let r = code.to_string();
                        option value=(r) selected[selected(&r, present(&q.result))] { (r) " " (words::result(lang, code)) }
                    }
                } }
                label { (t.http_status) input name="status" inputmode="numeric" size="4" value=[present(&q.status)]; }
                label { "taskNo" input name="task_no" maxlength="128" autocomplete="off" value=[present(&q.task_no)]; }
                button type="submit" { (t.filter) }
                a #export-csv href={ "/console/calls.csv?" (query) } download { (t.export_csv) }
            }
            form #call-by-id .card .row method="post" action="/console/calls/by-id-number" {
                (csrf)
                (fields::id_number(lang, fields::EMPTY))
                button .secondary type="submit" { (t.search_by_id) }
                span .muted { (t.search_by_id_note) }
            }
            @if searched {
                p #searched-by-id .muted { (t.searched_by_id) " (" (calls.len()) ")" }
            }
            @if let Some(usage) = &usage {
                h2 { (t.usage_per_day) }
                div .table-wrap { table #usage {
                    thead { tr { th { (t.date) } th .num { (t.calls) } th .num { (t.succeeded) } th .num { (t.charged) } th .num { (t.errors) }
                        @for r in 1..=8 { th .num { (r) } } } }
                    tbody {
                        @for d in usage.days.iter().rev() {
                            tr { td { (d.date) } td .num { (d.calls) } td .num { (d.succeeded) } td .num { (d.charged) } td .num { (d.errors) }
                                @for r in 1..=8 { td .num { (d.results.get(&r.to_string()).copied().unwrap_or(0)) } } }
                        }
                    }
                } }
            }
            h2 { (t.calls) }
            p .muted { (t.times_in) " " (zone(offset)) }
            div .table-wrap { table #calls .stack {
                thead { tr {
                    th { (t.time) } th { (t.app) } th { (t.result) } th .num { (t.score) } th { (t.http_status) }
                    th { (t.charged) } th .num { (t.latency_ms) } th { (t.name) } th { (t.id_card) } th { "taskNo" }
                } }
                tbody {
                    @for c in &calls {
                        tr data-call=(c.id) {
                            td data-label=(t.time) { time datetime=(renzheng_app::metering::iso_time(c.at, offset)) { (format_seconds(c.at, offset)) } }
                            td data-label=(t.app) { @match c.app_id.as_deref() { Some(id) => { (name_of(id)) " " code .muted { (id) } }, None => { (t.console_try) } } }
                            td .result data-label=(t.result) { @if let Some(r) = c.result { span class={ "badge r" (r) } data-result=(r) { (r) " " (words::result(lang, r)) } } @else { (c.error_code.as_deref().unwrap_or("–")) } }
                            td .num data-label=(t.score) { @if let Some(s) = c.score { (format!("{s:.4}")) } }
                            td .status data-label=(t.http_status) { (c.http_status) }
                            td data-label=(t.charged) { @if c.charged { "✓" } }
                            td .num data-label=(t.latency_ms) { (c.latency_ms) }
                            td .name data-label=(t.name) { (c.name.as_deref().unwrap_or("")) }
                            td .id-card data-label=(t.id_card) { (c.id_card.as_deref().unwrap_or("")) }
                            td data-label="taskNo" { code .muted { (c.task_no) } }
                        }
                    }
                }
            } }
            @if let Some(before) = next {
                p { a #next-page href={ "/console/calls?" (query) "&before=" (before) } { (t.next_page) " →" } }
            }
        },
    )
}

/// `GET /console/calls.csv`: the filtered calls as CSV (masked), as an attachment.
pub async fn csv(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Query(q): Query<FilterQuery>,
) -> Response {
    let csv = match q.filter(None) {
        Ok(filter) => state.app.calls_csv(q.app().as_ref(), &filter).await,
        Err(e) => Err(e),
    };
    match csv {
        Ok(body) => {
            let mut response = with_headers(StatusCode::OK, "text/csv; charset=utf-8", body);
            response.headers_mut().insert(
                CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"renzheng-calls.csv\""),
            );
            response
        }
        Err(e @ (renzheng_app::AppError::Invalid(_) | renzheng_app::AppError::Rule(_))) => {
            let words = refusal_text(lang, &e);
            with_headers(StatusCode::BAD_REQUEST, "text/plain; charset=utf-8", words)
        }
        Err(e) => failure(lang, Some(&op.session), &e),
    }
}
