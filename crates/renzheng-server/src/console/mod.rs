//! The operator console at `/console`: server-rendered pages over the same use cases as
//! the admin API, for an operator signed in with the configured account.
//!
//! * [`sign_in`] — the sign-in page and form, sign-out;
//! * [`session`] — the session cookie, the [`Operator`](session::Operator) extractor;
//! * [`access`] — which role each route needs (the extractor applies it to every route);
//! * [`verified`] — the CSRF rule of every POST: the [`Verified`](verified::Verified)
//!   form extractor (origin, session, token) and the same-origin layer;
//! * [`csrf`] — the single-use form token: the hidden field of every form;
//! * [`notice`] — Post/Redirect/Get: what a form that succeeded leaves for its page;
//! * [`layout`] — the page shell, the embedded stylesheet and script, security headers;
//! * [`fields`] — the form fields whose limits are domain rules (from their constants);
//! * [`errors`] — the 404, 403, 409 and failure pages, the words of a refusal;
//! * [`words`] — refusals, quality codes and field names in the operator's language;
//! * [`charts`] — the overview's charts as inline SVG (no script, no foreign library);
//! * [`i18n`] — every text in Chinese (default) and English;
//! * [`cookie`] — reading a request cookie; [`multipart`] — reading an upload form;
//! * [`pages`] — one module per page.
//!
//! The modules form layers and none imports one above it (no import circles): this
//! module, the router, uses them all and none uses it; then `pages`; `sign_in`;
//! `verified`; `session`; `notice`; `errors`; `layout`, `fields` and `multipart`; `words`;
//! `i18n`; and the leaves `access`, `csrf`, `cookie`, `charts`. The folder imports and duplicate-face scans in
//! progress are `crate::import_jobs`, beside the router's state that holds them.
//!
//! Nothing is fetched at run time: the assets are compiled into the binary. No personal
//! data goes into a URL: ID numbers are only ever sent in POST bodies, and pages show
//! names and ID numbers masked. Every mutation goes through the use cases with the
//! operator as actor, so it lands in the operator events like the CLI's and the API's.

pub mod access;
pub mod charts;
pub mod cookie;
pub mod csrf;
pub mod errors;
pub mod fields;
pub mod i18n;
pub mod layout;
pub mod multipart;
pub mod notice;
pub mod pages;
pub mod session;
pub mod sign_in;
pub mod verified;
pub mod words;

use axum::extract::{DefaultBodyLimit, Path};
use axum::http::header::{LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use self::errors::not_found;
use self::i18n::{Lang, LANG_COOKIE};
use self::verified::form_post;
use crate::state::AppState;

/// The console's routes (mounted by the server's router; not in the OpenAPI document,
/// which describes the JSON API). Every POST is a [`form_post`] (its handler takes a
/// [`Verified`](verified::Verified) form) but the sign-in form's, which has no session.
pub fn router(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/sign-in",
            get(sign_in::page).post(sign_in::sign_in),
        )
        .route("/console/sign-out", form_post(sign_in::sign_out))
        .route("/console/lang/{lang}", get(choose_language))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/assets/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/console/overview", get(pages::overview::page))
        .route(
            "/console/apps",
            get(pages::apps::page).merge(form_post(pages::apps::create)),
        )
        .route("/console/apps/{id}", get(pages::app_page::page))
        .route("/console/apps/{id}/{action}", form_post(pages::apps::act))
        .route(
            "/console/packages",
            get(pages::packages::page).merge(form_post(pages::packages::put)),
        )
        .route("/console/grants", form_post(pages::packages::grant))
        .route("/console/calls", get(pages::calls::page))
        .route("/console/alerts", get(pages::alerts::page))
        .route("/console/events", get(pages::events::page))
        .route("/console/calls.csv", get(pages::calls::csv))
        .route(
            "/console/calls/by-id-number",
            form_post(pages::calls::by_id_number),
        )
        .route("/console/registry", get(pages::registry::page))
        .route(
            "/console/registry/lookup",
            form_post(pages::registry::lookup),
        )
        .route("/console/registry/enrol", form_post(pages::registry::enrol))
        .route(
            "/console/registry/search",
            form_post(pages::registry::search),
        )
        .route(
            "/console/registry/rename",
            form_post(pages::registry::rename),
        )
        .route(
            "/console/registry/replace",
            form_post(pages::registry::replace),
        )
        .route(
            "/console/registry/basis",
            form_post(pages::registry::record_basis),
        )
        .route(
            "/console/registry/duplicates",
            get(pages::duplicates::page).merge(form_post(pages::duplicates::start)),
        )
        .route(
            "/console/registry/duplicates/{job}",
            get(pages::duplicates::progress),
        )
        .route(
            "/console/registry/remove",
            form_post(pages::registry::remove),
        )
        .route(
            "/console/registry/import",
            form_post(pages::registry::import),
        )
        .route(
            "/console/registry/reembed",
            form_post(pages::registry::reembed),
        )
        .route(
            "/console/registry/import/{job}",
            get(pages::registry::import_progress),
        )
        .route(
            "/console/try",
            get(pages::try_it::page).merge(form_post(pages::try_it::check)),
        )
        .route("/console/try/compare", form_post(pages::try_it::compare))
        .route("/console/about", get(pages::about::page))
        .route("/console/account", get(pages::account::page))
        .route(
            "/console/account/sessions/revoke",
            form_post(pages::account::revoke),
        )
        .route(
            "/console/account/password",
            form_post(pages::account::change_password),
        )
        .route(
            "/console/account/two-step/{action}",
            form_post(pages::account::two_step),
        )
        .route(
            "/console/operators/two-step-reset",
            form_post(pages::operators::reset_two_step),
        )
        .route("/console/operators", get(pages::operators::page))
        .route("/console/operators/add", form_post(pages::operators::add))
        .route(
            "/console/operators/role",
            form_post(pages::operators::set_role),
        )
        .route(
            "/console/operators/password",
            form_post(pages::operators::set_password),
        )
        .route(
            "/console/operators/remove",
            form_post(pages::operators::remove),
        )
        .route(
            "/console/{*rest}",
            get(|lang: Lang| async move { not_found(lang) }),
        )
        .layer(axum::middleware::from_fn(verified::same_origin))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn css() -> Response {
    layout::with_headers(
        StatusCode::OK,
        "text/css; charset=utf-8",
        layout::CSS.to_owned(),
    )
}

/// The icon, at `/console/assets/favicon.svg` and `/favicon.ico` (an SVG under either
/// name: browsers sniff it by its type, not its name).
pub async fn favicon() -> Response {
    let mut response =
        layout::with_headers(StatusCode::OK, "image/svg+xml", layout::FAVICON.to_owned());
    // Not a page: a browser may keep it a day.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

async fn js() -> Response {
    layout::with_headers(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        layout::JS.to_owned(),
    )
}

/// `GET /console/lang/{zh|en}`: remembers the language, back to the page it came from.
async fn choose_language(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return not_found(Lang::Zh);
    };
    // Back to the console page it came from; anything else (another site, no referrer)
    // goes to the overview.
    let back = headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("/console/").map(|i| r[i..].to_owned()))
        .filter(|p| !p.contains("/lang/") && !p.contains("//") && p.is_ascii())
        .unwrap_or_else(|| "/console/overview".to_owned());
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(
        LOCATION,
        HeaderValue::from_str(&back).unwrap_or(HeaderValue::from_static("/console/overview")),
    );
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={}; Path=/console; Max-Age=31536000; SameSite=Lax",
            lang.code()
        ))
        .expect("ASCII"),
    );
    response
}
