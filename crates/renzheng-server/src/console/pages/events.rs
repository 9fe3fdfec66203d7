//! Operator events: who changed what, newest first, filtered by kind (apps, packages,
//! registry, console, compliance) and by actor. Events name people only masked and by
//! handle, as stored; the filters hold no personal data, so they sit in the URL.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use crate::console::errors::failure;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Page};
use crate::console::session::Operator;
use crate::console::words;
use crate::state::AppState;

/// Events read (the newest), then filtered.
const READ: u32 = 1_000;

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
}

/// `GET /console/events[?kind=K&actor=A]`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Query(q): Query<EventsQuery>,
) -> Response {
    let t = lang.t();
    let events = match state.app.recent_events(READ).await {
        Ok(e) => e,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let kind = q
        .kind
        .as_deref()
        .filter(|k| KINDS.contains(k))
        .map(|k| format!("{k}."));
    let actor = q.actor.as_deref().map(str::trim).filter(|a| !a.is_empty());
    let mut actors: Vec<&str> = events.iter().map(|e| e.actor.as_str()).collect();
    actors.sort_unstable();
    actors.dedup();
    let shown: Vec<_> = events
        .iter()
        .filter(|e| kind.as_deref().is_none_or(|k| e.action.starts_with(k)))
        .filter(|e| actor.is_none_or(|a| e.actor == a))
        .collect();
    let offset = state.app.settings().metering.utc_offset_minutes;
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "events",
            title: t.events,
            flash: Vec::new(),
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
                button type="submit" { (t.filter) }
            }
            p .muted { (t.events_note) " " (READ) }
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
        },
    )
}
