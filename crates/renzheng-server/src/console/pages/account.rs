//! The signed-in operator's own account: their role, their password (changed with the
//! current one; their other sessions end), their two-step sign-in (an authenticator app:
//! set up with a QR code shown once, confirmed with a code; turned off with the password
//! and a code), their live sessions (this browser marked), each revocable — a browser
//! left signed in elsewhere is ended from here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup, PreEscaped};
use renzheng_app::{TotpSetup, MIN_PASSWORD_CHARS};
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
    let (flash, shown) = op.take_notice().into_parts();
    render_with(&state, &op, lang, flash, shown).await
}

async fn render(state: &AppState, op: &Operator, lang: Lang, flash: Vec<Flash>) -> Response {
    render_with(state, op, lang, flash, None).await
}

/// The page, with `shown` (a two-step setup) in its two-step section.
async fn render_with(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    shown: Option<Markup>,
) -> Response {
    let t = lang.t();
    let loaded = async {
        Ok::<_, renzheng_app::AppError>((
            state.app.sessions_of(&op.session, op.token()).await?,
            state.app.two_step_since(&op.session).await?,
        ))
    }
    .await;
    let (sessions, two_step) = match loaded {
        Ok(l) => l,
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
            section .card #two-step data-on=(two_step.is_some()) {
                h2 { (t.two_step) }
                p .muted { (t.two_step_off_note) }
                @if let Some(since) = two_step {
                    p { span .badge .r1 { (t.two_step_on_since) " " (format_time(since, offset)) } }
                    form #two-step-off method="post" action="/console/account/two-step/off" {
                        (csrf::field(&op.session))
                        input type="hidden" name="username" autocomplete="username" value=(op.session.operator);
                        label { (t.current_password) input type="password" name="password" autocomplete="current-password" required; }
                        (code_field(lang))
                        button .secondary type="submit" { (t.two_step_turn_off) }
                    }
                } @else if let Some(shown) = shown {
                    (shown)
                    form #two-step-confirm method="post" action="/console/account/two-step/confirm" {
                        (csrf::field(&op.session))
                        (code_field(lang))
                        button type="submit" { (t.two_step_confirm) }
                    }
                } @else {
                    form #two-step-start method="post" action="/console/account/two-step/start" {
                        (csrf::field(&op.session))
                        button type="submit" { (t.two_step_start) }
                    }
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

/// The 6-digit code input, as authenticator apps and password managers expect it.
fn code_field(lang: Lang) -> Markup {
    html! {
        label { (lang.t().two_step_code_label)
            input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" maxlength="7" required;
        }
    }
}

/// What the authenticator app is given, shown once: the QR code of its `otpauth://`
/// address (inline SVG: no request, no script) and the key as text.
fn setup_box(lang: Lang, setup: &TotpSetup) -> Markup {
    let t = lang.t();
    let qr = qrcode::QrCode::new(setup.uri.as_bytes())
        .map(|code| {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // The document's XML declaration has no place inside HTML.
            svg.find("<svg")
                .map(|at| svg[at..].to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    // The key in groups of four, as authenticator apps show keys typed by hand.
    let grouped: Vec<String> = setup
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    html! {
        div #two-step-setup .secret {
            p { (t.two_step_scan) }
            div .qr role="img" aria-label=(t.two_step_secret) { (PreEscaped(qr)) }
            p { (t.two_step_secret) ": " code #two-step-secret data-secret=(setup.secret.as_str()) { (grouped.join(" ")) } }
        }
    }
}

/// The two-step forms' fields.
#[derive(Deserialize)]
pub struct TwoStepForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// `POST /console/account/two-step/{start|confirm|off}`.
pub async fn two_step(
    State(state): State<AppState>,
    lang: Lang,
    axum::extract::Path(action): axum::extract::Path<String>,
    form: Verified<Form<TwoStepForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let t = lang.t();
    let app = &state.app;
    let done = match action.as_str() {
        "start" => app
            .start_totp(&op.session)
            .await
            .map(|setup| (t.two_step_started, Some(setup_box(lang, &setup)))),
        "confirm" => app
            .confirm_totp(&op.session, op.token(), &form.code)
            .await
            .map(|()| (t.two_step_turned_on, None)),
        "off" => app
            .turn_off_own_totp(&op.session, &form.password, &form.code)
            .await
            .map(|()| (t.two_step_turned_off, None)),
        _ => return crate::console::errors::not_found(lang),
    };
    match done {
        Ok((message, shown)) => {
            let notice = Notice::new(Flash::ok(message), shown);
            redirect(&state, op.token(), PAGE, notice).await
        }
        Err(e) => {
            // A setup waiting for its code is shown again beside the refusal, so another
            // code can be tried.
            let shown = match app.waiting_totp(&op.session).await {
                Ok(waiting) => waiting.map(|s| setup_box(lang, &s)),
                Err(e) => return failure(lang, Some(&op.session), &e),
            };
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render_with(&state, &op, lang, flash, shown).await
        }
    }
}
