//! One app's page (`/console/apps/{id}`): what an operator reaches for about one customer
//! — its balance and every grant, a grant of a package or of a custom number of calls
//! with an expiry, its usage per day, its latest calls, its alerts and their delivery,
//! its rate limit and alert settings, and the AppCode and AppSecret actions. The forms
//! post to the apps' actions (`apps::act`), which redirect back here.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use renzheng_app::CallFilter;
use renzheng_store::AppId;

use crate::console::access;
use crate::console::csrf;
use crate::console::errors::{failure, not_found};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{day_of, format_seconds, format_time, html_page, zone, Flash, Page};
use crate::console::session::Operator;
use crate::console::words;
use crate::state::AppState;

/// Days of usage shown.
const USAGE_DAYS: usize = 14;
/// Calls shown (the calls page has the rest).
const CALLS: u32 = 20;
/// Alerts shown (the alerts page has the rest).
const ALERTS: u32 = 20;

/// `GET /console/apps/{id}` (with what a redirected form left, once).
pub async fn page(
    State(state): State<AppState>,
    mut op: Operator,
    lang: Lang,
    Path(id): Path<String>,
) -> Response {
    let (flash, shown) = op.take_notice().into_parts();
    render(&state, &op, lang, &AppId::from(id), flash, shown, None).await
}

/// What a refused grant form had typed: its calls and its expiry day (and, for an
/// adjustment, which grant it was about).
pub struct TypedGrant<'a> {
    /// The grant adjusted; `None`: a new grant.
    pub grant_id: Option<i64>,
    /// The calls, as typed.
    pub calls: Option<&'a str>,
    /// The day, as typed.
    pub expires_on: Option<&'a str>,
}

/// The app's page with `flash` and `shown` (a refused form of this page is rendered here
/// at once, `typed` as it was typed).
pub async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    app_id: &AppId,
    flash: Vec<Flash>,
    shown: Option<Markup>,
    typed: Option<TypedGrant<'_>>,
) -> Response {
    let t = lang.t();
    let app = &state.app;
    let app_id = app_id.clone();
    let view = match app.app(&app_id).await {
        Ok(v) => v,
        Err(renzheng_app::AppError::NotFound(_)) => return not_found(lang),
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let filter = CallFilter {
        limit: Some(CALLS),
        ..CallFilter::default()
    };
    let loaded = async {
        Ok::<_, renzheng_app::AppError>((
            app.balance(&app_id).await?,
            app.usage(Some(&app_id), None, None).await?,
            app.calls(Some(&app_id), &filter).await?,
            app.alert_history(Some(&app_id), ALERTS).await?,
            app.packages().await?,
        ))
    }
    .await;
    let (balance, usage, calls, alerts, packages) = match loaded {
        Ok(l) => l,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let offset = app.settings().metering.utc_offset_minutes;
    let base = format!("/console/apps/{}", view.app_id);
    let csrf = || csrf::field(&op.session);
    let back = || html! { input type="hidden" name="back" value="app"; };
    // An auditor reads the app; the forms are for admins and owners.
    let may_edit = access::allows(op.session.role, &Method::POST, &base);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "apps",
            title: &view.name,
            flash,
        },
        html! {
            @if let Some(shown) = shown { (shown) }
            p #app-summary data-app-id=(view.app_id) {
                code { (view.app_id) } " · AppKey " code { (view.app_key.as_deref().unwrap_or("–")) } " · "
                @if view.enabled { span .badge .r1 { (t.enabled) } } @else { span .badge .r3 { (t.disabled) } }
                " · " (t.created_at) " " (format_time(view.created_at, offset))
            }
            div .figures {
                div .figure { span .muted { (t.remaining) } b #app-remaining { (balance.remaining) } }
                div .figure { span .muted { (t.purchased) } b { (balance.purchased) } }
                div .figure { span .muted { (t.charged) } b { (balance.charged) } }
            }
            section .card {
                h2 { (t.grants) }
                @if balance.grants.is_empty() {
                    p .muted { (t.no_data) }
                } @else {
                    div .table-wrap { table #grants .stack {
                        thead { tr { th { (t.package) } th .num { (t.calls_count) } th .num { (t.used) } th .num { (t.remaining) } th { (t.expires) } th { (t.created_at) } @if may_edit { th { (t.actions) } } } }
                        tbody {
                            @for g in &balance.grants {
                                tr data-grant=(g.grant_id) data-revoked[g.revoked_at.is_some()] {
                                    td data-label=(t.package) { @match &g.package { Some(p) => { code { (p) } }, None => { (t.custom_grant) } } }
                                    td .num data-label=(t.calls_count) { (g.calls) }
                                    td .num data-label=(t.used) { (g.used) }
                                    td .num data-label=(t.remaining) { (g.remaining) }
                                    td data-label=(t.expires) {
                                        @match g.expires_at { Some(at) => (format_time(at, offset)), None => (t.never) }
                                        @if g.expired { " " span .badge .r3 { (t.expired) } }
                                        @if let Some(at) = g.revoked_at { " " span .badge .r3 title=(format_time(at, offset)) { (t.revoked) } }
                                    }
                                    td data-label=(t.created_at) { (format_time(g.created_at, offset)) }
                                    @if may_edit { td data-label=(t.actions) .actions {
                                        @if g.revoked_at.is_none() {
                                            @let typed = typed.as_ref().filter(|ty| ty.grant_id == Some(g.grant_id));
                                            @let day = g.expires_at.map(|at| day_of(at, offset)).unwrap_or_default();
                                            @let floor = (g.used + g.reserved).max(1);
                                            @let calls = typed.and_then(|ty| ty.calls).map(str::to_owned).unwrap_or_else(|| g.calls.to_string());
                                            form .row .adjust-grant method="post" action={ (base) "/adjust-grant" } {
                                                (csrf()) (back())
                                                input type="hidden" name="grant_id" value=(g.grant_id);
                                                input type="hidden" name="expires_was" value=(day);
                                                label { (t.calls_count) input name="calls" type="number" min=(floor) max="100000000" required value=(calls); }
                                                label { (t.expires_on) input name="expires_on" type="date" value=(typed.and_then(|ty| ty.expires_on).unwrap_or(&day)); }
                                                button .secondary type="submit" { (t.adjust) }
                                            }
                                            form .inline .revoke-grant method="post" action={ (base) "/revoke-grant" } data-confirm={ (t.confirm_revoke_grant) " " (view.name) } {
                                                (csrf()) (back())
                                                input type="hidden" name="grant_id" value=(g.grant_id);
                                                button .secondary type="submit" { (t.revoke_grant) }
                                            }
                                        }
                                    } }
                                }
                            }
                        }
                    } }
                }
                @if may_edit {
                form #grant-package .row method="post" action={ (base) "/grant" } data-confirm={ (t.confirm_grant_to) " " (view.name) } {
                    (csrf()) (back())
                    label { (t.package) select name="package" required {
                        @for p in packages.iter().filter(|p| p.active) {
                            option value=(p.name) { (p.title) " · " (p.calls) (t.calls_unit) }
                        }
                    } }
                    button type="submit" { (t.grant_button) }
                }
                form #grant-calls .row method="post" action={ (base) "/grant" } data-confirm={ (t.confirm_grant_to) " " (view.name) } {
                    (csrf()) (back())
                    @let typed = typed.as_ref().filter(|ty| ty.grant_id.is_none());
                    label { (t.calls_count) input name="calls" type="number" min="1" max="100000000" required value=[typed.and_then(|g| g.calls)]; }
                    label { (t.expires_on) input name="expires_on" type="date" value=[typed.and_then(|g| g.expires_on)]; }
                    button type="submit" { (t.grant_calls) }
                }
                }
            }
            @if may_edit { section .card {
                h2 { (t.settings) }
                form .row .policy method="post" action={ (base) "/policy" } {
                    (csrf()) (back())
                    (fields::rate_per_second(lang, view.policy.rate_per_sec.map(|r| r.to_string()).as_deref()))
                    (fields::alert_percent(lang, &view.policy.alert_percent.to_string()))
                    (fields::webhook_url(lang, view.policy.webhook_url.as_deref()))
                    (fields::alert_emails(lang, &view.policy.alert_emails.join(", ")))
                    button .secondary type="submit" { (t.save_policy) }
                }
                div .row {
                    form .inline .reveal-code method="post" action={ (base) "/reveal-code" } { (csrf()) (back()) button .secondary type="submit" { (t.reveal_code) } }
                    form .inline .reset-code method="post" action={ (base) "/reset-code" } data-confirm={ (t.confirm_reset_code) " " (view.name) } {
                        (csrf()) (back())
                        input type="hidden" name="grace_hours" value="24";
                        button .secondary type="submit" { (t.reset_code) " (" (t.grace_day) ")" }
                    }
                    @if view.policy.webhook_url.is_some() || !view.policy.alert_emails.is_empty() {
                        form .inline .test-alert method="post" action={ (base) "/test-alert" } { (csrf()) (back()) button .secondary type="submit" { (t.test_alert) } }
                    }
                }
            } }
            section .card {
                h2 { (t.usage_per_day) }
                div .table-wrap { table #app-usage {
                    thead { tr { th { (t.date) } th .num { (t.calls) } th .num { (t.succeeded) } th .num { (t.charged) } th .num { (t.errors) } } }
                    tbody {
                        @for d in usage.days.iter().rev().take(USAGE_DAYS) {
                            tr { td { (d.date) } td .num { (d.calls) } td .num { (d.succeeded) } td .num { (d.charged) } td .num { (d.errors) } }
                        }
                    }
                } }
            }
            section .card {
                h2 { (t.recent_calls) }
                p .muted { (t.times_in) " " (zone(offset)) " · " a href={ "/console/calls?app_id=" (view.app_id) } { (t.all_calls) } }
                div .table-wrap { table #app-calls .stack {
                    thead { tr { th { (t.time) } th { (t.result) } th { (t.http_status) } th { (t.name) } th { (t.id_card) } th { "taskNo" } } }
                    tbody {
                        @for c in &calls {
                            tr data-call=(c.id) {
                                td data-label=(t.time) { (format_seconds(c.at, offset)) }
                                td data-label=(t.result) { @if let Some(r) = c.result { span class={ "badge r" (r) } { (r) " " (words::result(lang, r)) } } @else { (c.error_code.as_deref().unwrap_or("–")) } }
                                td data-label=(t.http_status) { (c.http_status) }
                                td data-label=(t.name) { (c.name.as_deref().unwrap_or("")) }
                                td data-label=(t.id_card) { (c.id_card.as_deref().unwrap_or("")) }
                                td data-label="taskNo" { code .muted { (c.task_no) } }
                            }
                        }
                    }
                } }
            }
            section .card {
                h2 { (t.alerts) }
                p { a href={ "/console/alerts?app_id=" (view.app_id) } { (t.see_alerts) } }
                div .table-wrap { table #app-alerts .stack {
                    thead { tr { th { (t.time) } th { (t.alert_kind) } th .num { (t.remaining) } th { (t.webhook) } } }
                    tbody {
                        @for a in &alerts {
                            tr data-kind=(a.kind.as_str()) {
                                td data-label=(t.time) { (format_time(a.at, offset)) }
                                td data-label=(t.alert_kind) { (words::alert_kind(lang, a.kind.as_str())) }
                                td .num data-label=(t.remaining) { (a.remaining) " / " (a.purchased) }
                                td data-label=(t.webhook) { @if a.delivered_at.is_some() { "✓" } @else if a.attempts > 0 { (t.not_delivered) } @else { "–" } }
                            }
                        }
                    }
                } }
            }
        },
    )
}
