//! Operators (owners only): the accounts that may sign in, each with its role; adding
//! one, changing a role, resetting a password (which ends their sessions), removing one.
//! Each operator's two-step sign-in is shown, and an owner can turn it off for one who
//! lost their authenticator. The last owner is neither removed nor demoted (the use case refuses it). Passwords are
//! never shown, and a refused form comes back with the name and role typed, never the
//! password.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use renzheng_app::operators::{parse_role, MAX_OPERATOR_NAME_CHARS};
use renzheng_app::{AppError, MIN_PASSWORD_CHARS};
use renzheng_store::OperatorRole;
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{failure, refusal_text};
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::notice::{redirect, Notice};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::console::words;
use crate::state::AppState;

/// This page.
const PAGE: &str = "/console/operators";

/// `GET /console/operators`.
pub async fn page(State(state): State<AppState>, mut op: Operator, lang: Lang) -> Response {
    let (flash, _) = op.take_notice().into_parts();
    render(&state, &op, lang, flash, None).await
}

/// A `<select>` of the roles, `chosen` selected.
fn role_select(lang: Lang, chosen: Option<OperatorRole>) -> Markup {
    html! {
        select name="role" required {
            @for role in OperatorRole::ALL.into_iter().rev() {
                option value=(role.as_str()) selected[chosen == Some(role)] { (words::role(lang, role)) }
            }
        }
    }
}

async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    typed: Option<&OperatorForm>,
) -> Response {
    let t = lang.t();
    let operators = match state.app.operators().await {
        Ok(o) => o,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    let csrf = || csrf::field(&op.session);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "operators",
            title: t.operators,
            flash,
        },
        html! {
            p .muted { (t.roles_note) }
            section .card {
                div .table-wrap { table #operators .stack {
                    thead { tr { th { (t.operator) } th { (t.role) } th { (t.two_step) } th { (t.created) } th { (t.updated_at) } th { (t.actions) } } }
                    tbody {
                        @for o in &operators {
                            tr data-operator=(o.name) data-role=(o.role.as_str()) {
                                td data-label=(t.operator) {
                                    (o.name)
                                    @if o.name == op.session.operator { " " span .muted { (t.you) } }
                                }
                                td data-label=(t.role) {
                                    form .inline .set-role method="post" action="/console/operators/role" {
                                        (csrf())
                                        input type="hidden" name="name" value=(o.name);
                                        (role_select(lang, Some(o.role)))
                                        button .secondary type="submit" { (t.set_role) }
                                    }
                                }
                                td data-label=(t.two_step) .two-step data-on=(o.two_step) {
                                    @if o.two_step {
                                        span .badge .r1 { "✓" }
                                        " "
                                        form .inline .reset-two-step method="post" action="/console/operators/two-step-reset" data-confirm={ (t.two_step_reset_confirm) " " (o.name) } {
                                            (csrf())
                                            input type="hidden" name="name" value=(o.name);
                                            button .secondary type="submit" { (t.two_step_reset) }
                                        }
                                    } @else { "–" }
                                }
                                td data-label=(t.created) { (format_time(o.created_at, offset)) }
                                td data-label=(t.updated_at) { (format_time(o.updated_at, offset)) }
                                td data-label=(t.actions) {
                                    @if o.name == op.session.operator {
                                        a .own-password href="/console/account" { (t.own_password_on_account) }
                                    } @else {
                                        form .inline .reset-password method="post" action="/console/operators/password" {
                                            (csrf())
                                            input type="hidden" name="name" value=(o.name);
                                            input type="password" name="password" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required aria-label=(t.new_password) placeholder=(t.new_password);
                                            button .secondary type="submit" { (t.reset_password) }
                                        }
                                    }
                                    form .inline .remove method="post" action="/console/operators/remove" data-confirm=(t.remove_operator_confirm) {
                                        (csrf())
                                        input type="hidden" name="name" value=(o.name);
                                        button .danger type="submit" { (t.remove_operator) }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            section .card {
                h2 { (t.add_operator) }
                form #add-operator method="post" action="/console/operators/add" {
                    (csrf())
                    label { (t.operator) input name="name" required maxlength=(MAX_OPERATOR_NAME_CHARS) autocomplete="off" value=[typed.map(|f| f.name.as_str())]; }
                    label { (t.role) (role_select(lang, typed.and_then(|f| OperatorRole::parse(&f.role)).or(Some(OperatorRole::Auditor)))) }
                    label { (t.new_password) input type="password" name="password" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required; }
                    button type="submit" { (t.add_operator) }
                }
            }
        },
    )
}

/// The operator forms: adding one (name, role, password), and those naming one
/// (a role, a password, a removal), each using the fields it needs.
#[derive(Deserialize)]
pub struct OperatorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// After a form: the page with its message, or the page again with the refusal.
async fn answer(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    done: Result<(), AppError>,
    message: &str,
    typed: Option<&OperatorForm>,
) -> Response {
    match done {
        Ok(()) => {
            redirect(
                state,
                op.token(),
                PAGE,
                Notice::new(Flash::ok(message), None),
            )
            .await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(state, op, lang, flash, typed).await
        }
    }
}

/// `POST /console/operators/add`.
pub async fn add(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<OperatorForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let actor = op.session.actor();
    let done = match parse_role(&form.role) {
        Ok(role) => state
            .app
            .add_operator(&actor, &form.name, role, &form.password)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    let message = format!("{} · {}", lang.t().operator_added, form.name);
    answer(&state, &op, lang, done, &message, Some(&form)).await
}

/// `POST /console/operators/role`.
pub async fn set_role(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<OperatorForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let done = match parse_role(&form.role) {
        Ok(role) => {
            state
                .app
                .set_operator_role(&op.session.actor(), &form.name, role)
                .await
        }
        Err(e) => Err(e),
    };
    let message = format!("{} · {}", lang.t().role_set, form.name);
    answer(&state, &op, lang, done, &message, None).await
}

/// `POST /console/operators/password`: another operator's password reset (their sessions
/// end); one's own is refused here: it is changed on the account page, with the current
/// one.
pub async fn set_password(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<OperatorForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    // One's own password is changed with the current one (a session left open is not
    // enough to take the account).
    let done = if form.name == op.session.operator {
        Err(AppError::Invalid(lang.t().own_password_on_account.into()))
    } else {
        state
            .app
            .set_operator_password(&op.session.actor(), &form.name, &form.password)
            .await
    };
    let message = format!("{} · {}", lang.t().password_reset, form.name);
    answer(&state, &op, lang, done, &message, None).await
}

/// `POST /console/operators/remove`.
pub async fn remove(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<OperatorForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let done = state
        .app
        .remove_operator(&op.session.actor(), &form.name)
        .await;
    let message = format!("{} · {}", lang.t().operator_removed, form.name);
    answer(&state, &op, lang, done, &message, None).await
}

/// `POST /console/operators/two-step-reset`: an operator's two-step sign-in turned off
/// (they lost their authenticator); they sign in with their password alone until they
/// turn it on again.
pub async fn reset_two_step(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<OperatorForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let done = state
        .app
        .reset_operator_totp(&op.session.actor(), &form.name)
        .await;
    let message = format!("{} · {}", lang.t().two_step_was_reset, form.name);
    answer(&state, &op, lang, done, &message, None).await
}
