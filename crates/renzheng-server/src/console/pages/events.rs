//! Operator events: who changed what, newest first, filtered by kind (apps, packages,
//! registry, console, compliance), by actor and by days, read from the store a page at a
//! time (every event can be reached, however old). Events name people only masked and by
//! handle, as stored; the filters hold no personal data, so they sit in the URL.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use renzheng_store::EventQuery;
use serde::Deserialize;

use crate::console::errors::failure;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, zone, Flash, Page};
use crate::console::session::Operator;
use crate::console::words;
use crate::state::AppState;

/// Events per page.
const PAGE: u32 = 200;
/// The newest events whose actors the actor filter offers.
const ACTORS_FROM: u32 = 1_000;

/// The kinds of the filter: an event's action starts with the kind and a dot.
const KINDS: [&str; 6] = [
    "app",
    "package",
    "person",
    "registry",
    "console",
    "compliance",
];

/// The filters (blank: any).
#[derive(Debug, Default, Deserialize)]
pub struct EventsQuery {
    kind: Option<String>,
    actor: Option<String>,
    /// First day (`YYYY-MM-DD`, the operator's offset).
    from: Option<String>,
    /// Last day, included.
    to: Option<String>,
    /// The last id of the previous page.
    before: Option<i64>,
}

/// A filter's value, if it has one.
fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /console/events[?kind=K&actor=A]`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Query(q): Query<EventsQuery>,
) -> Response {
    let t = lang.t();
    let app = &state.app;
    let kind = present(&q.kind).filter(|k| KINDS.contains(k));
    let actor = present(&q.actor);
    let (from, to) = (present(&q.from), present(&q.to));
    let mut flash = Vec::new();
    let mut day = |d: Option<&str>, end: bool| {
        let ms = d.map(|d| {
            if end {
                app.end_of_day(d).map(|e| e + 1)
            } else {
                app.start_of_day(d)
            }
        });
        match ms.transpose() {
            Ok(ms) => ms,
            Err(_) => {
                flash.push(Flash::error_because(t.bad_date, "date"));
                None
            }
        }
    };
    let query = EventQuery {
        from_ms: day(from, false),
        to_ms: day(to, true),
        kind: kind.map(str::to_owned),
        actor: actor.map(str::to_owned),
        before_id: q.before,
        limit: PAGE,
    };
    let loaded = async {
        Ok::<_, renzheng_app::AppError>((
            app.events(&query).await?,
            app.recent_events(ACTORS_FROM).await?,
        ))
    }
    .await;
    let (shown, recent) = match loaded {
        Ok(l) => l,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let mut actors: Vec<&str> = recent.iter().map(|e| e.actor.as_str()).collect();
    if let Some(a) = actor {
        actors.push(a);
    }
    actors.sort_unstable();
    actors.dedup();
    // The filters again, for the next page's link.
    let filters = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [("kind", kind), ("actor", actor), ("from", from), ("to", to)]
                .iter()
                .filter_map(|(k, v)| v.map(|v| (k, v))),
        )
        .finish();
    let next = (shown.len() == PAGE as usize)
        .then(|| shown.last().map(|e| e.id))
        .flatten();
    let offset = state.app.settings().metering.utc_offset_minutes;
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "events",
            title: t.events,
            flash,
        },
        html! {
            form #event-filter .card .row method="get" action="/console/events" {
                label { (t.event_kind) select name="kind" {
                    option value="" { (t.any) }
                    @for k in KINDS {
                        option value=(k) selected[q.kind.as_deref() == Some(k)] { (words::event_kind(lang, k)) }
                    }
                } }
                label { (t.who) select name="actor" {
                    option value="" { (t.any) }
                    @for a in &actors {
                        option value=(a) selected[actor == Some(*a)] { (a) }
                    }
                } }
                label { (t.from) input type="date" name="from" value=[from]; }
                label { (t.to) input type="date" name="to" value=[to]; }
                button type="submit" { (t.filter) }
            }
            p .muted { (t.times_in) " " (zone(offset)) }
            div .table-wrap { table #event-list .stack {
                thead { tr { th { (t.time) } th { (t.who) } th { (t.what) } th { (t.target) } th { (t.detail) } } }
                tbody {
                    @for e in &shown {
                        tr data-action=(e.action) {
                            td data-label=(t.time) { (format_time(e.at, offset)) }
                            td data-label=(t.who) { (e.actor) }
                            td data-label=(t.what) { (words::event(lang, &e.action)) " " code .muted { (e.action) } }
                            td data-label=(t.target) { (e.target.as_deref().unwrap_or("")) }
                            td .wrap data-label=(t.detail) { (e.detail.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }
            @if let Some(before) = next {
                p { a #next-page href={ "/console/events?" (filters) "&before=" (before) } { (t.next_page) " →" } }
            }
        },
    )
}
