//! Balance alerts: the history of every alert recorded (per app with `?app_id=`), whether
//! its webhook was delivered. The overview warns about the apps that need attention now;
//! this page is what was sent, and when.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use renzheng_store::AppId;
use serde::Deserialize;

use crate::console::errors::failure;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Page};
use crate::console::session::Operator;
use crate::console::words;
use crate::state::AppState;

/// Alerts listed, newest first.
const SHOWN: u32 = 200;

/// The app filter (no personal data: it may sit in the URL).
#[derive(Debug, Default, Deserialize)]
pub struct AlertsQuery {
    app_id: Option<String>,
}

/// `GET /console/alerts[?app_id=ID]`.
pub async fn page(
    State(state): State<AppState>,
    op: Operator,
    lang: Lang,
    Query(q): Query<AlertsQuery>,
) -> Response {
    let t = lang.t();
    let app_id = q
        .app_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| AppId::from(a.to_owned()));
    let (apps, alerts) = match (
        state.app.list_apps().await,
        state.app.alert_history(app_id.as_ref(), SHOWN).await,
    ) {
        (Ok(apps), Ok(alerts)) => (apps, alerts),
        (Err(e), _) | (_, Err(e)) => return failure(lang, Some(&op.session), &e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    let name_of = |id: &str| {
        apps.iter()
            .find(|a| a.app_id == id)
            .map_or_else(|| id.to_owned(), |a| a.name.clone())
    };
    let chosen = app_id.as_ref().map(AppId::as_str);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "alerts",
            title: t.alerts,
            flash: Vec::new(),
        },
        html! {
            p .muted { (t.alerts_note) }
            form #alert-filter .card .row method="get" action="/console/alerts" {
                label { (t.app) select name="app_id" {
                    option value="" { (t.any) }
                    @for a in &apps {
                        option value=(a.app_id) selected[chosen == Some(a.app_id.as_str())] { (a.name) " (" (a.app_id) ")" }
                    }
                } }
                button type="submit" { (t.filter) }
            }
            @if alerts.is_empty() {
                p #no-alerts .muted { (t.no_data) }
            } @else {
                div .table-wrap { table #alerts .stack {
                    thead { tr {
                        th { (t.time) } th { (t.app) } th { (t.alert_kind) } th .num { (t.remaining) }
                        th .num { (t.purchased) } th { (t.webhook) }
                    } }
                    tbody {
                        @for a in &alerts {
                            tr data-alert=(a.id) data-kind=(a.kind.as_str()) {
                                td data-label=(t.time) { (format_time(a.at, offset)) }
                                td data-label=(t.app) { (name_of(&a.app_id)) " " code .muted { (a.app_id) } }
                                td data-label=(t.alert_kind) {
                                    span class={ "badge " (if a.kind.as_str() == "exhausted" { "r3" } else { "r2" }) } { (words::alert_kind(lang, a.kind.as_str())) }
                                }
                                td .num data-label=(t.remaining) { (a.remaining) }
                                td .num data-label=(t.purchased) { (a.purchased) }
                                td data-label=(t.webhook) {
                                    @match (a.delivered_at, a.attempts) {
                                        (Some(at), _) => { "✓ " (format_time(at, offset)) }
                                        (None, 0) => { "–" }
                                        (None, n) => { span .badge .r3 { (t.not_delivered) } " · " (n) " " (t.attempts) }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        },
    )
}
