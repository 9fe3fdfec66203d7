//! The signed-in operator's own account: their role, their password (changed with the
//! current one; their other sessions end), their live sessions (this browser marked),
//! each revocable — a browser left signed in elsewhere is ended from here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::html;
use renzheng_app::MIN_PASSWORD_CHARS;
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
const PAGE: &str = "/console/account";

/// `GET /console/account` (with what a redirected form left, once).
pub async fn page(State(state): State<AppState>, mut op: Operator, lang: Lang) -> Response {
    let (flash, _) = op.take_notice().into_parts();
    render(&state, &op, lang, flash).await
}

async fn render(state: &AppState, op: &Operator, lang: Lang, flash: Vec<Flash>) -> Response {
    let t = lang.t();
    let sessions = match state.app.sessions_of(&op.session, op.token()).await {
        Ok(s) => s,
        Err(e) => return failure(lang, Some(&op.session), &e),
    };
    let offset = state.app.settings().metering.utc_offset_minutes;
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "account",
            title: t.account,
            flash,
        },
        html! {
            p { (t.signed_in_as) " " strong { (op.session.operator) } " · " (t.role) " " strong #role data-role=(op.session.role.as_str()) { (words::role(lang, op.session.role)) } }
            p .muted { (words::role_may(lang, op.session.role)) }
            section .card {
                h2 { (t.change_password) }
                form #change-password method="post" action="/console/account/password" {
                    (csrf::field(&op.session))
                    // A username field lets a password manager file the new password under
                    // the right account.
                    input type="hidden" name="username" autocomplete="username" value=(op.session.operator);
                    label { (t.current_password) input type="password" name="current" autocomplete="current-password" required; }
                    label { (t.new_password) input type="password" name="new" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required; }
                    label { (t.repeat_password) input type="password" name="repeat" autocomplete="new-password" minlength=(MIN_PASSWORD_CHARS) required; }
                    button type="submit" { (t.change_password) }
                }
            }
            section .card {
                h2 { (t.sessions) }
                p .muted { (t.sessions_note) }
                div .table-wrap { table #sessions .stack {
                    thead { tr { th { (t.signed_in_at) } th { (t.idle_until) } th { (t.ends_at) } th { (t.actions) } } }
                    tbody {
                        @for s in &sessions {
                            tr data-current=(s.current) {
                                td data-label=(t.signed_in_at) { (format_time(s.created_at, offset)) }
                                td data-label=(t.idle_until) { (format_time(s.idle_until, offset)) }
                                td data-label=(t.ends_at) { (format_time(s.ends_at, offset)) }
                                td data-label=(t.actions) {
                                    @if s.current {
                                        span .badge .r1 { (t.this_session) }
                                    } @else {
                                        form .inline .revoke method="post" action="/console/account/sessions/revoke" data-confirm=(t.revoke_confirm) {
                                            (csrf::field(&op.session))
                                            input type="hidden" name="session" value=(s.id);
                                            button .secondary type="submit" { (t.revoke) }
                                        }
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

/// The revoke form.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    session: String,
}

/// `POST /console/account/sessions/revoke`: ends one of the operator's own sessions.
pub async fn revoke(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<RevokeForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    match state.app.revoke_session(&op.session, &form.session).await {
        Ok(()) => {
            let flash = Flash::ok(lang.t().session_revoked);
            redirect(&state, op.token(), PAGE, Notice::new(flash, None)).await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(&state, &op, lang, flash).await
        }
    }
}

/// The password form (never shown again when refused: passwords are not echoed).
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /console/account/password`: the operator changes their own password; their
/// other sessions end, this one stays.
pub async fn change_password(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<PasswordForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let t = lang.t();
    if form.new != form.repeat {
        return render(&state, &op, lang, vec![Flash::error(t.passwords_differ)]).await;
    }
    match state
        .app
        .change_own_password(&op.session, op.token(), &form.current, &form.new)
        .await
    {
        Ok(()) => {
            let flash = Flash::ok(t.password_changed);
            redirect(&state, op.token(), PAGE, Notice::new(flash, None)).await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(&state, &op, lang, flash).await
        }
    }
}
