//! Apps: create (the secrets are shown on that answer only), disable and enable, rotate
//! the AppCode or the AppKey/AppSecret, set the rate limit, alert threshold and webhook,
//! send a test alert.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use renzheng_app::{AppName, PolicyView};
use renzheng_store::{AppId, AppPolicy};
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{failure, not_found, refusal_text};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::state::AppState;

async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    shown_once: Option<Markup>,
) -> Response {
    let t = lang.t();
    let apps = match state.app.list_apps().await {
        Ok(apps) => apps,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    let csrf = csrf::field(&op.session);
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
            section .card {
                h2 { (t.create_app) }
                form #create-app .row method="post" action="/console/apps" {
                    (csrf)
                    (fields::app_name(lang))
                    button type="submit" { (t.create) }
                }
            }
            div .table-wrap { table #apps {
                thead { tr {
                    th { (t.app) } th { (t.app_id) } th { "AppKey" } th { (t.status) }
                    th { (t.created_at) } th { (t.actions) }
                } }
                tbody {
                    @for app in &apps {
                        @let base = format!("/console/apps/{}", app.app_id);
                        tr data-app-id=(app.app_id) {
                            td { (app.name) }
                            td { code { (app.app_id) } }
                            td { code { (app.app_key.as_deref().unwrap_or("–")) } }
                            td { @if app.enabled { span .badge .r1 { (t.enabled) } } @else { span .badge .r3 { (t.disabled) } } }
                            td { (format_time(app.created_at, offset)) }
                            td {
                                @if app.enabled {
                                    form .inline .disable method="post" action={ (base) "/disable" } { (csrf) button .secondary type="submit" { (t.disable) } }
                                } @else {
                                    form .inline .enable method="post" action={ (base) "/enable" } { (csrf) button .secondary type="submit" { (t.enable) } }
                                }
                                form .inline .reset-code method="post" action={ (base) "/reset-code" } data-confirm=(t.reset_code) { (csrf) button .secondary type="submit" { (t.reset_code) } }
                                form .inline .reset-secret method="post" action={ (base) "/reset-secret" } data-confirm="AppKey / AppSecret" { (csrf) button .secondary type="submit" { "AppKey / AppSecret" } }
                                @if app.policy.webhook_url.is_some() {
                                    form .inline .test-alert method="post" action={ (base) "/test-alert" } { (csrf) button .secondary type="submit" { (t.test_alert) } }
                                }
                                form .row .policy method="post" action={ (base) "/policy" } {
                                    (csrf)
                                    (fields::rate_per_second(lang, app.policy.rate_per_sec))
                                    (fields::alert_percent(lang, app.policy.alert_percent))
                                    (fields::webhook_url(lang, app.policy.webhook_url.as_deref()))
                                    button .secondary type="submit" { (t.save_policy) }
                                }
                            }
                        }
                    }
                }
            } }
        },
    )
}

/// `GET /console/apps`.
pub async fn page(State(state): State<AppState>, op: Operator, lang: Lang) -> Response {
    render(&state, &op, lang, Vec::new(), None).await
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

/// `POST /console/apps`: creates an app and shows its AppCode, AppKey and AppSecret once.
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
            let flash = vec![Flash::ok(format!("{} · {}", lang.t().saved, c.app_id))];
            render(&state, &op, lang, flash, Some(shown)).await
        }
        Err(e) => {
            render(
                &state,
                &op,
                lang,
                vec![Flash::error(refusal_text(lang, &e))],
                None,
            )
            .await
        }
    }
}

/// The fields any app action may carry.
#[derive(Deserialize)]
pub struct ActionForm {
    rate_per_second: Option<String>,
    alert_percent: Option<String>,
    webhook_url: Option<String>,
}

/// `POST /console/apps/{id}/{disable|enable|reset-code|reset-secret|policy|test-alert}`.
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
    let mut shown = None;
    let outcome: Result<Flash, renzheng_app::AppError> = match action.as_str() {
        "disable" | "enable" => app
            .set_app_enabled(&actor, &app_id, action == "enable")
            .await
            .map(|()| Flash::ok(t.saved)),
        "reset-code" => app.reset_app_code(&actor, &app_id, 0).await.map(|c| {
            shown = Some(secret_box(lang, &[("AppCode", "app_code", &c.app_code)]));
            Flash::ok(t.saved)
        }),
        "reset-secret" => app.reset_app_secret(&actor, &app_id).await.map(|s| {
            shown = Some(secret_box(
                lang,
                &[
                    ("AppKey", "app_key", &s.app_key),
                    ("AppSecret", "app_secret", &s.app_secret),
                ],
            ));
            Flash::ok(t.saved)
        }),
        "policy" => match policy_of(&form) {
            Ok(policy) => app
                .set_app_policy(&actor, &app_id, policy)
                .await
                .map(|_| Flash::ok(t.saved)),
            Err(e) => Err(e),
        },
        "test-alert" => app
            .send_test_alert(&actor, &app_id)
            .await
            .map(|outcome| match outcome {
                Ok(()) => Flash::ok(t.test_alert_sent),
                // The use case says only "not delivered": the reason is in the server log.
                Err(_) => Flash::error(t.test_alert_failed),
            }),
        _ => return not_found(lang),
    };
    let flash = outcome.unwrap_or_else(|e| Flash::error(refusal_text(lang, &e)));
    render(&state, &op, lang, vec![flash], shown).await
}

/// The policy form's values; blank rate: no limit, blank webhook: none.
fn policy_of(form: &ActionForm) -> Result<PolicyView, renzheng_app::AppError> {
    let invalid = |m: &str| renzheng_app::AppError::Invalid(m.to_owned());
    let blank = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let rate_per_sec = blank(&form.rate_per_second)
        .map(|v| {
            v.parse::<f64>()
                .map_err(|_| invalid("the rate limit must be a number"))
        })
        .transpose()?;
    let alert_percent = blank(&form.alert_percent)
        .map(|v| {
            v.parse::<u8>()
                .map_err(|_| invalid("the alert threshold must be 0 to 100"))
        })
        .transpose()?
        .unwrap_or(AppPolicy::default().alert_percent);
    Ok(PolicyView {
        rate_per_sec,
        rate_burst: None,
        alert_percent,
        webhook_url: blank(&form.webhook_url),
    })
}
