//! The signed-in operator's own account: their live sessions (this browser marked), each
//! revocable — a browser left signed in elsewhere is ended from here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::html;
use serde::Deserialize;

use crate::console::csrf;
use crate::console::errors::{failure, refusal_text};
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::notice::{redirect, Notice};
use crate::console::session::Operator;
use crate::console::verified::Verified;
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
            p { (t.signed_in_as) " " strong { (op.session.operator) } }
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
