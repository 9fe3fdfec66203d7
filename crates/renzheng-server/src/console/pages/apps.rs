//! Apps: create (the secrets are shown once, on the page the form redirects to), disable
//! and enable, rotate the AppCode or the AppKey/AppSecret, set the rate limit, alert
//! threshold and webhook, send a test alert. A form that succeeds redirects back here
//! (Post/Redirect/Get, see `console::notice`); a refused one is shown again as typed.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use renzheng_app::{AppName, PolicyView};
use renzheng_store::{AppId, AppPolicy};
use serde::Deserialize;

use crate::console::access;
use crate::console::csrf;
use crate::console::errors::{failure, not_found, refusal_text};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::notice::{redirect, Notice};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::state::AppState;

/// This page.
const PAGE: &str = "/console/apps";

/// What a refused form had typed, shown again in it.
#[derive(Default)]
struct Typed<'a> {
    /// The create form's name.
    name: Option<&'a str>,
    /// One app's policy form: its id and the fields.
    policy: Option<(&'a str, &'a ActionForm)>,
}

async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    shown_once: Option<Markup>,
    typed: Typed<'_>,
) -> Response {
    let t = lang.t();
    let apps = match state.app.list_apps().await {
        Ok(apps) => apps,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    let csrf = || csrf::field(&op.session);
    // An auditor reads the apps; the forms are for admins and owners.
    let may_edit = access::allows(op.session.role, &Method::POST, "/console/apps");
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "apps",
            title: t.apps,
            flash,
        },
        html! {
            @if let Some(secret) = shown_once { (secret) }
            @if may_edit { section .card {
                h2 { (t.create_app) }
                form #create-app .row method="post" action="/console/apps" {
                    (csrf())
                    (fields::app_name(lang, typed.name))
                    button type="submit" { (t.create) }
                }
            } }
            div .table-wrap { table #apps .stack {
                thead { tr {
                    th { (t.app) } th { (t.app_id) } th { "AppKey" } th { (t.status) }
                    th { (t.created_at) } @if may_edit { th { (t.actions) } }
                } }
                tbody {
                    @for app in &apps {
                        @let base = format!("/console/apps/{}", app.app_id);
                        tr data-app-id=(app.app_id) {
                            td data-label=(t.app) { a .app-page href={ "/console/apps/" (app.app_id) } { (app.name) } }
                            td data-label=(t.app_id) { code { (app.app_id) } }
                            td data-label="AppKey" { code { (app.app_key.as_deref().unwrap_or("–")) } }
                            td data-label=(t.status) { @if app.enabled { span .badge .r1 { (t.enabled) } } @else { span .badge .r3 { (t.disabled) } } }
                            td data-label=(t.created_at) { (format_time(app.created_at, offset)) }
                            @if may_edit { td data-label=(t.actions) .actions {
                                @if app.enabled {
                                    form .inline .disable method="post" action={ (base) "/disable" } data-confirm={ (t.confirm_disable) " " (app.name) } { (csrf()) button .secondary type="submit" { (t.disable) } }
                                } @else {
                                    form .inline .enable method="post" action={ (base) "/enable" } { (csrf()) button .secondary type="submit" { (t.enable) } }
                                }
                                form .inline .reveal-code method="post" action={ (base) "/reveal-code" } { (csrf()) button .secondary type="submit" { (t.reveal_code) } }
                                form .inline .reset-code method="post" action={ (base) "/reset-code" } data-confirm={ (t.confirm_reset_code) " " (app.name) } {
                                    (csrf())
                                    label { (t.code_grace) " "
                                        select name="grace_hours" {
                                            @for (hours, label) in grace_choices(lang) {
                                                option value=(hours) selected[hours == DEFAULT_GRACE_HOURS] { (label) }
                                            }
                                        }
                                    }
                                    button .secondary type="submit" { (t.reset_code) }
                                }
                                form .inline .reset-secret method="post" action={ (base) "/reset-secret" } data-confirm="AppKey / AppSecret" { (csrf()) button .secondary type="submit" { "AppKey / AppSecret" } }
                                @if app.policy.webhook_url.is_some() || !app.policy.alert_emails.is_empty() {
                                    form .inline .test-alert method="post" action={ (base) "/test-alert" } { (csrf()) button .secondary type="submit" { (t.test_alert) } }
                                }
                                form .row .policy method="post" action={ (base) "/policy" } {
                                    (csrf())
                                    @let typed = typed.policy.filter(|(id, _)| *id == app.app_id).map(|(_, f)| f);
                                    @if let Some(f) = typed {
                                        (fields::rate_per_second(lang, f.rate_per_second.as_deref()))
                                        (fields::alert_percent(lang, f.alert_percent.as_deref().unwrap_or("")))
                                        (fields::webhook_url(lang, f.webhook_url.as_deref()))
                                        (fields::alert_emails(lang, f.alert_emails.as_deref().unwrap_or("")))
                                    } @else {
                                        (fields::rate_per_second(lang, app.policy.rate_per_sec.map(|r| r.to_string()).as_deref()))
                                        (fields::alert_percent(lang, &app.policy.alert_percent.to_string()))
                                        (fields::webhook_url(lang, app.policy.webhook_url.as_deref()))
                                        (fields::alert_emails(lang, &app.policy.alert_emails.join(", ")))
                                    }
                                    button .secondary type="submit" { (t.save_policy) }
                                }
                            } }
                        }
                    }
                }
            } }
        },
    )
}

/// `GET /console/apps` (with what a redirected form left, once).
pub async fn page(State(state): State<AppState>, mut op: Operator, lang: Lang) -> Response {
    let (flash, shown) = op.take_notice().into_parts();
    render(&state, &op, lang, flash, shown, Typed::default()).await
}

/// The create form.
#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
}

fn secret_box(lang: Lang, rows: &[(&str, &str, &str)]) -> Markup {
    let t = lang.t();
    html! {
        section #created-secret .card .secret {
            p { strong { (t.secret_once) } }
            @for (label, field, value) in rows {
                p {
                    (label) ": "
                    code id={ "secret-" (field) } data-field=(field) { (value) }
                    " " button .secondary type="button" data-copy={ "secret-" (field) } { (t.copy) }
                }
            }
        }
    }
}

/// `POST /console/apps`: creates an app, then back to the page, which shows its AppCode,
/// AppKey and AppSecret once.
pub async fn create(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<CreateForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let created = match AppName::parse(&form.name) {
        Ok(name) => state.app.create_app(&op.session.actor(), &name).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => {
            let shown = secret_box(
                lang,
                &[
                    ("AppCode", "app_code", &c.app_code),
                    ("AppKey", "app_key", &c.app_key),
                    ("AppSecret", "app_secret", &c.app_secret),
                ],
            );
            let flash = Flash::ok(format!(
                "{} · {} ({})",
                lang.t().app_created,
                form.name.trim(),
                c.app_id
            ));
            redirect(&state, op.token(), PAGE, Notice::new(flash, Some(shown))).await
        }
        Err(e) => {
            let typed = Typed {
                name: Some(&form.name),
                policy: None,
            };
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(&state, &op, lang, flash, None, typed).await
        }
    }
}

/// The fields any app action may carry.
#[derive(Deserialize)]
pub struct ActionForm {
    rate_per_second: Option<String>,
    alert_percent: Option<String>,
    webhook_url: Option<String>,
    /// Who is e-mailed the alerts: addresses separated by commas, semicolons or spaces.
    alert_emails: Option<String>,
    /// How long a reset AppCode's predecessor keeps working, hours.
    grace_hours: Option<String>,
    /// A grant: a package's name, or a number of calls and the day they expire after.
    package: Option<String>,
    calls: Option<String>,
    expires_on: Option<String>,
    /// A grant revoked or adjusted (its id), and the expiry day its form showed (an
    /// adjustment changes the expiry only when the day typed differs from it).
    grant_id: Option<String>,
    expires_was: Option<String>,
    /// `app`: the form is on the app's own page, and leads back there.
    back: Option<String>,
}

/// The grant a form asks for: a package, or a number of calls (and the day they expire
/// after, in the operator's offset).
fn grant_of(
    state: &AppState,
    lang: Lang,
    form: &ActionForm,
) -> Result<renzheng_app::GrantRequest, renzheng_app::AppError> {
    fn blank(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let calls = blank(&form.calls)
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| renzheng_app::AppError::Invalid(lang.t().calls_whole.into()))
        })
        .transpose()?;
    let expires_at = blank(&form.expires_on)
        .map(|d| state.app.end_of_day(d))
        .transpose()?;
    Ok(renzheng_app::GrantRequest {
        package: blank(&form.package).map(str::to_owned),
        calls,
        expires_at,
    })
}

/// The test alert (the webhook's, if the app has one) and the test e-mail (if it has
/// recipients and the server a relay): one message, each outcome named.
async fn test_alerts(
    state: &AppState,
    lang: Lang,
    actor: &renzheng_app::Actor,
    app_id: &AppId,
    policy: &PolicyView,
    name: &str,
) -> Result<Flash, renzheng_app::AppError> {
    let t = lang.t();
    let app = &state.app;
    let mut words = Vec::new();
    let mut all_sent = true;
    if policy.webhook_url.is_some() {
        // The use case says only "not delivered": the reason is in the server log.
        let sent = app.send_test_alert(actor, app_id).await?.is_ok();
        all_sent &= sent;
        words.push(if sent {
            t.test_alert_sent
        } else {
            t.test_alert_failed
        });
    }
    if !policy.alert_emails.is_empty() && app.settings().alerts.smtp_url.is_some() {
        let sent = app.send_test_email(actor, app_id).await?.is_ok();
        all_sent &= sent;
        words.push(if sent {
            t.test_email_sent
        } else {
            t.test_email_failed
        });
    }
    if words.is_empty() {
        return Err(renzheng_app::AppError::Invalid(t.no_test_target.into()));
    }
    let text = format!("{} · {name}", words.join(" · "));
    Ok(if all_sent {
        Flash::ok(text)
    } else {
        Flash::error(text)
    })
}

/// The grant a revoke or adjust form is about.
fn grant_id_of(form: &ActionForm) -> Result<i64, renzheng_app::AppError> {
    form.grant_id
        .as_deref()
        .and_then(|g| g.trim().parse::<i64>().ok())
        .ok_or(renzheng_app::AppError::NotFound("grant"))
}

/// The adjustment an adjust form asks for: its calls, and its expiry when the day typed
/// differs from the one the form showed (blank: never).
fn adjustment_of(
    state: &AppState,
    lang: Lang,
    form: &ActionForm,
) -> Result<(i64, renzheng_app::GrantAdjustment), renzheng_app::AppError> {
    let grant = grant_id_of(form)?;
    let trimmed = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    let calls = match trimmed(&form.calls).as_str() {
        "" => None,
        c => Some(
            c.parse::<i64>()
                .map_err(|_| renzheng_app::AppError::Invalid(lang.t().calls_whole.into()))?,
        ),
    };
    let (day, was) = (trimmed(&form.expires_on), trimmed(&form.expires_was));
    let (expires_at, never_expires) = if day == was {
        (None, false)
    } else if day.is_empty() {
        (None, true)
    } else {
        (Some(state.app.end_of_day(&day)?), false)
    };
    Ok((
        grant,
        renzheng_app::GrantAdjustment {
            calls,
            expires_at,
            never_expires,
        },
    ))
}

/// The grace period a reset offers first: a day, so a running client is not cut off
/// while its operator updates it (the CLI's `--grace` default is none; the console's
/// operator is warned and chooses).
const DEFAULT_GRACE_HOURS: u32 = 24;

/// The grace periods offered, hours and words.
fn grace_choices(lang: Lang) -> [(u32, &'static str); 5] {
    let t = lang.t();
    [
        (0, t.grace_none),
        (1, t.grace_hour),
        (24, t.grace_day),
        (168, t.grace_week),
        (720, t.grace_month),
    ]
}

/// The grace period of a reset, ms (none sent: the default).
fn grace_ms(lang: Lang, form: &ActionForm) -> Result<i64, renzheng_app::AppError> {
    let hours = match form.grace_hours.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_GRACE_HOURS,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| renzheng_app::AppError::Invalid(lang.t().grace_invalid.into()))?,
    };
    Ok(i64::from(hours) * 3_600_000)
}

/// `POST /console/apps/{id}/{disable|enable|reveal-code|reset-code|reset-secret|policy|grant|revoke-grant|adjust-grant|test-alert}`,
/// then back to the page (a new secret shown there once); the message names the app.
pub async fn act(
    State(state): State<AppState>,
    lang: Lang,
    Path((id, action)): Path<(String, String)>,
    form: Verified<Form<ActionForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let t = lang.t();
    let app = &state.app;
    let actor = op.session.actor();
    let app_id = AppId::from(id);
    let view = match app.app(&app_id).await {
        Ok(view) => view,
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            return render(&state, &op, lang, flash, None, Typed::default()).await;
        }
    };
    let name = format!("{} ({})", view.name, view.app_id);
    let named = |text: &str| Flash::ok(format!("{text} · {name}"));
    let offset = state.app.settings().metering.utc_offset_minutes;
    let mut shown = None;
    let outcome: Result<Flash, renzheng_app::AppError> = match action.as_str() {
        "disable" | "enable" => app
            .set_app_enabled(&actor, &app_id, action == "enable")
            .await
            .map(|()| {
                named(if action == "enable" {
                    t.enabled
                } else {
                    t.disabled
                })
            }),
        "reset-code" => match grace_ms(lang, &form) {
            Ok(grace) => app.reset_app_code(&actor, &app_id, grace).await.map(|c| {
                shown = Some(secret_box(lang, &[("AppCode", "app_code", &c.app_code)]));
                match c.previous_valid_until {
                    Some(until) => Flash::ok(format!(
                        "{} · {name} · {} {}",
                        t.code_reset,
                        t.old_code_until,
                        format_time(until, offset)
                    )),
                    None => named(t.code_reset),
                }
            }),
            Err(e) => Err(e),
        },
        "reveal-code" => app.reveal_app_code(&actor, &app_id).await.map(|code| {
            shown = Some(secret_box(lang, &[("AppCode", "app_code", &code)]));
            named(t.code_revealed)
        }),
        "reset-secret" => app.reset_app_secret(&actor, &app_id).await.map(|s| {
            shown = Some(secret_box(
                lang,
                &[
                    ("AppKey", "app_key", &s.app_key),
                    ("AppSecret", "app_secret", &s.app_secret),
                ],
            ));
            named(t.secret_reset)
        }),
        "policy" => match policy_of(lang, &form) {
            Ok(policy) => app
                .set_app_policy(&actor, &app_id, policy)
                .await
                .map(|_| named(t.saved)),
            Err(e) => Err(e),
        },
        "grant" => match grant_of(&state, lang, &form) {
            Ok(request) => app.grant(&actor, &app_id, request).await.map(|g| {
                Flash::ok(format!(
                    "{} · {name} · {} × {}",
                    t.granted,
                    g.package.as_deref().unwrap_or(t.custom_grant),
                    g.calls
                ))
            }),
            Err(e) => Err(e),
        },
        "revoke-grant" => match grant_id_of(&form) {
            Ok(grant) => app.revoke_grant(&actor, &app_id, grant).await.map(|g| {
                Flash::ok(format!(
                    "{} {} · {name}",
                    t.grant_revoked,
                    g.calls - g.used - g.reserved
                ))
            }),
            Err(e) => Err(e),
        },
        "adjust-grant" => match adjustment_of(&state, lang, &form) {
            Ok((grant, adjustment)) => app
                .adjust_grant(&actor, &app_id, grant, adjustment)
                .await
                .map(|g| {
                    Flash::ok(format!(
                        "{} · {name} · {} × {}",
                        t.grant_adjusted,
                        g.package.as_deref().unwrap_or(t.custom_grant),
                        g.calls
                    ))
                }),
            Err(e) => Err(e),
        },
        "test-alert" => test_alerts(&state, lang, &actor, &app_id, &view.policy, &name).await,
        _ => return not_found(lang),
    };
    // A form of the app's own page leads back there; anything else to the list.
    let own_page = format!("/console/apps/{app_id}");
    let back = if form.back.as_deref() == Some("app") {
        own_page.as_str()
    } else {
        PAGE
    };
    match outcome {
        Ok(flash) => redirect(&state, op.token(), back, Notice::new(flash, shown)).await,
        Err(e) if back != PAGE => {
            // Refused on the app's page: that page at once, as typed, nothing stored.
            let flash = vec![Flash::error(format!("{} · {name}", refusal_text(lang, &e)))];
            let typed = super::app_page::TypedGrant {
                grant_id: form.grant_id.as_deref().and_then(|g| g.trim().parse().ok()),
                calls: form.calls.as_deref(),
                expires_on: form.expires_on.as_deref(),
            };
            super::app_page::render(&state, &op, lang, &app_id, flash, None, Some(typed)).await
        }
        Err(e) => {
            let typed = Typed {
                name: None,
                policy: Some((app_id.as_str(), &form)),
            };
            let flash = vec![Flash::error(format!("{} · {name}", refusal_text(lang, &e)))];
            render(&state, &op, lang, flash, None, typed).await
        }
    }
}

/// The policy form's values; blank rate: no limit, blank webhook: none.
fn policy_of(lang: Lang, form: &ActionForm) -> Result<PolicyView, renzheng_app::AppError> {
    let t = lang.t();
    let invalid = |m: &str| renzheng_app::AppError::Invalid(m.to_owned());
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let rate_per_sec = blank(&form.rate_per_second)
        .map(|v| v.parse::<f64>().map_err(|_| invalid(t.rate_not_number)))
        .transpose()?;
    let alert_percent = blank(&form.alert_percent)
        .map(|v| v.parse::<u8>().map_err(|_| invalid(t.alert_percent_range)))
        .transpose()?
        .unwrap_or(AppPolicy::default().alert_percent);
    Ok(PolicyView {
        rate_per_sec,
        rate_burst: None,
        alert_percent,
        webhook_url: blank(&form.webhook_url),
        alert_emails: form
            .alert_emails
            .as_deref()
            .unwrap_or_default()
            .split([',', ';', '，', '；', ' ', '\n'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}
