//! Overview: the apps that need attention now (low, exhausted, expiring), checks per day
//! by result code and by status, latency, every app's quota, the latest events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use crate::console::charts::{stacked_bars, Series, Words};
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Page};
use crate::console::session::Operator;
use crate::console::words;
use crate::state::AppState;

/// Days the overview shows.
const DAYS: u32 = 14;

/// The result codes' colours: greens for decisive answers, amber for "can't tell", reds
/// and greys for the rest.
const RESULT_COLORS: [&str; 8] = [
    "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#6e7781", "#fb8f44", "#0969da", "#bf3989",
];

/// `GET /console/overview`.
pub async fn page(State(state): State<AppState>, op: Operator, lang: Lang) -> Response {
    let t = lang.t();
    let overview = match state.app.overview(DAYS).await {
        Ok(o) => o,
        Err(e) => return crate::console::errors::failure(lang, Some(&op.session), &e),
    };
    let events = match state.app.recent_events(10).await {
        Ok(e) => e,
        Err(e) => return crate::console::errors::failure(lang, Some(&op.session), &e),
    };
    let attention: Vec<_> = overview
        .quotas
        .iter()
        .filter(|q| !q.attention.is_empty())
        .collect();
    let offset = state.app.settings().metering.utc_offset_minutes;
    let labels: Vec<String> = overview.days.iter().map(|d| d.date.clone()).collect();
    let result_names: Vec<String> = (1..=8)
        .map(|r| format!("{r} {}", words::result(lang, r)))
        .collect();
    let result_series: Vec<Series> = result_names
        .iter()
        .zip(RESULT_COLORS)
        .map(|(name, color)| Series { name, color })
        .collect();
    let by_result: Vec<Vec<i64>> = overview.days.iter().map(|d| d.results.to_vec()).collect();
    let status_series = [
        Series {
            name: t.ok_2xx,
            color: "#2da44e",
        },
        Series {
            name: t.refused_4xx,
            color: "#d4a72c",
        },
        Series {
            name: t.failed_5xx,
            color: "#cf222e",
        },
    ];
    let by_status: Vec<Vec<i64>> = overview
        .days
        .iter()
        .map(|d| vec![d.succeeded, d.refused, d.failed])
        .collect();
    let ms = |v: Option<u64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v} ms"));
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "overview",
            title: t.overview,
            flash: Vec::new(),
        },
        html! {
            @if !attention.is_empty() {
                section #attention .card .warn role="status" {
                    h2 { (t.attention) }
                    ul {
                        @for a in &attention {
                            li data-app-id=(a.app.app_id) {
                                strong { (a.app.name) } " " code .muted { (a.app.app_id) } " · "
                                @for (i, k) in a.attention.iter().enumerate() {
                                    @if i > 0 { "、" }
                                    span class={ "badge " (if k.as_str() == "exhausted" { "r3" } else { "r2" }) } data-kind=(k.as_str()) { (words::alert_kind(lang, k.as_str())) }
                                }
                                " · " (t.remaining) " " (a.remaining) " / " (a.purchased)
                                " · " a href={ "/console/alerts?app_id=" (a.app.app_id) } { (t.see_alerts) }
                            }
                        }
                    }
                }
            }
            div .figures {
                div .figure { span .muted { (t.total_checks) " · " (t.last_days) } b #total-checks { (overview.total) } }
                div #latency .figure {
                    span .muted { (t.latency) " p50 / p99" }
                    b { (ms(overview.p50_ms)) " / " (ms(overview.p99_ms)) }
                    span .muted { (overview.latency_sample) " " (t.latency_note) }
                }
            }
            div .grid {
                section .card {
                    h2 { (t.checks_by_result) }
                    (stacked_bars("chart-results", &Words { title: t.checks_by_result, label: t.date, data: t.chart_data, total: t.total }, &labels, &by_result, &result_series))
                }
                section .card {
                    h2 { (t.checks_by_status) }
                    (stacked_bars("chart-status", &Words { title: t.checks_by_status, label: t.date, data: t.chart_data, total: t.total }, &labels, &by_status, &status_series))
                }
            }
            section .card {
                h2 { (t.latency) " p50 / p99" }
                div .table-wrap { table #latency-days {
                    thead { tr { th { (t.date) } th .num { "p50" } th .num { "p99" } } }
                    tbody {
                        @for d in overview.days.iter().rev().filter(|d| d.p50_ms.is_some()) {
                            tr { td { (d.date) } td .num { (ms(d.p50_ms)) } td .num { (ms(d.p99_ms)) } }
                        }
                    }
                } }
            }
            section .card {
                h2 { (t.remaining_quota) }
                @if overview.quotas.is_empty() {
                    p .muted { (t.no_data) }
                } @else {
                    div .table-wrap { table #quota {
                        thead { tr { th { (t.app) } th { (t.app_id) } th .num { (t.remaining) } th .num { (t.purchased) } th { (t.status) } } }
                        tbody {
                            @for q in &overview.quotas {
                                tr data-app-id=(q.app.app_id) {
                                    td { (q.app.name) }
                                    td { code { (q.app.app_id) } }
                                    td .num .remaining { (q.remaining) }
                                    td .num { (q.purchased) }
                                    td { @if q.app.enabled { (t.enabled) } @else { (t.disabled) } }
                                    td { meter min="0" max=(q.purchased.max(1)) low=(q.purchased / 5 + 1) value=(q.remaining) {} }
                                }
                            }
                        }
                    } }
                }
            }
            section .card {
                h2 { (t.recent_events) }
                div .table-wrap { table #events {
                    thead { tr { th { (t.time) } th { (t.who) } th { (t.what) } th { (t.target) } } }
                    tbody {
                        @for e in &events {
                            tr { td { (format_time(e.at, offset)) } td { (e.actor) } td data-action=(e.action) { (words::event(lang, &e.action)) } td { (e.target.as_deref().unwrap_or("")) } }
                        }
                    }
                } }
            }
        },
    )
}
