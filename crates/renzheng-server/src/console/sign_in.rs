//! Signing in (the one console form without a session, so without a CSRF token: the
//! same-origin layer guards it) and signing out.

use axum::extract::{Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use renzheng_app::AppError;
use serde::Deserialize;

use super::errors::{failure, not_found};
use super::i18n::Lang;
use super::layout::{html_page, Flash, Page};
use super::session::{clear_cookie, session_cookie};
use super::verified::{NoFields, Verified};
use crate::state::AppState;

/// `?expired=1` on the sign-in page (a redirect from a lapsed session).
#[derive(Deserialize)]
pub struct SignInQuery {
    expired: Option<u8>,
}

/// `GET /console/sign-in`.
pub async fn page(
    State(state): State<AppState>,
    lang: Lang,
    Query(q): Query<SignInQuery>,
) -> Response {
    if !state.app.console_enabled() {
        return not_found(lang);
    }
    let t = lang.t();
    let flash = if q.expired.is_some() {
        vec![Flash::error_because(t.session_expired, "expired")]
    } else {
        Vec::new()
    };
    form(StatusCode::OK, lang, flash)
}

fn form(status: StatusCode, lang: Lang, flash: Vec<Flash>) -> Response {
    let t = lang.t();
    html_page(
        status,
        Page {
            lang,
            operator: None,
            active: "sign-in",
            title: t.sign_in,
            flash,
        },
        html! {
            form #sign-in .card .narrow method="post" action="/console/sign-in" {
                label { (t.operator) input name="operator" autocomplete="username" required; }
                label { (t.password) input name="password" type="password" autocomplete="current-password" required; }
                button type="submit" { (t.sign_in) }
            }
        },
    )
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignInForm {
    operator: String,
    password: String,
}

/// `POST /console/sign-in`: a session cookie and the overview, or the form again (401).
pub async fn sign_in(
    State(state): State<AppState>,
    lang: Lang,
    Form(sent): Form<SignInForm>,
) -> Response {
    if !state.app.console_enabled() {
        return not_found(lang);
    }
    let t = lang.t();
    match state.app.sign_in(&sent.operator, &sent.password).await {
        Ok(signed_in) => {
            let secure = state.app.settings().console.secure_cookie;
            let mut response = Redirect::to("/console/overview").into_response();
            response.headers_mut().append(
                SET_COOKIE,
                session_cookie(secure, &signed_in.token, signed_in.max_age_secs),
            );
            response
        }
        Err(AppError::SignInRefused) => form(
            StatusCode::UNAUTHORIZED,
            lang,
            vec![Flash::error_because(t.wrong_credentials, "credentials")],
        ),
        Err(AppError::Throttled { retry_after_ms }) => {
            let mut response = form(
                StatusCode::TOO_MANY_REQUESTS,
                lang,
                vec![Flash::error_because(t.too_many_attempts, "throttled")],
            );
            let secs = (retry_after_ms.max(0) as u64).div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        Err(e) => failure(lang, None, &e),
    }
}

/// `POST /console/sign-out`.
pub async fn sign_out(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<NoFields>>,
) -> Response {
    let (operator, NoFields {}) = form.into_parts();
    if let Err(e) = state
        .app
        .sign_out(&operator.session, operator.token())
        .await
    {
        return failure(lang, Some(&operator.session), &e);
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        clear_cookie(state.app.settings().console.secure_cookie),
    );
    response
}
