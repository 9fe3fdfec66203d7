//! The operator console at `/console`: server-rendered pages over the same use cases as
//! the admin API, for an operator signed in with the configured account.
//!
//! * [`session`] — sign-in, sign-out, the [`Operator`](session::Operator) extractor, CSRF;
//! * [`layout`] — the page shell, the embedded stylesheet and script, security headers;
//! * [`charts`] — the overview's charts as inline SVG (no script, no foreign library);
//! * [`i18n`] — every text in Chinese (default) and English;
//! * [`pages`] — one module per page.
//!
//! Nothing is fetched at run time: the assets are compiled into the binary. No personal
//! data goes into a URL: ID numbers are only ever sent in POST bodies, and pages show
//! names and ID numbers masked. Every mutation goes through the use cases with the
//! operator as actor, so it lands in the operator events like the CLI's and the API's.

pub mod charts;
pub mod i18n;
pub mod layout;
pub mod multipart;
pub mod pages;
pub mod session;

use axum::extract::{DefaultBodyLimit, Path};
use axum::http::header::{LOCATION, REFERER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use renzheng_app::{AppError, OperatorSession};

use self::i18n::{Lang, LANG_COOKIE};
use self::layout::{html_page, Flash, Page};
use crate::state::AppState;

/// The console's routes (mounted by the server's router; not in the OpenAPI document,
/// which describes the JSON API).
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
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/lang/{lang}", get(choose_language))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .route("/console/overview", get(pages::overview::page))
        .route(
            "/console/apps",
            get(pages::apps::page).post(pages::apps::create),
        )
        .route("/console/apps/{id}/{action}", post(pages::apps::act))
        .route(
            "/console/packages",
            get(pages::packages::page).post(pages::packages::put),
        )
        .route("/console/grants", post(pages::packages::grant))
        .route("/console/calls", get(pages::calls::page))
        .route("/console/calls.csv", get(pages::calls::csv))
        .route("/console/registry", get(pages::registry::page))
        .route("/console/registry/lookup", post(pages::registry::lookup))
        .route("/console/registry/enrol", post(pages::registry::enrol))
        .route("/console/registry/remove", post(pages::registry::remove))
        .route("/console/registry/import", post(pages::registry::import))
        .route("/console/registry/reembed", post(pages::registry::reembed))
        .route(
            "/console/registry/import/{job}",
            get(pages::registry::import_progress),
        )
        .route(
            "/console/try",
            get(pages::try_it::page).post(pages::try_it::check),
        )
        .route("/console/try/compare", post(pages::try_it::compare))
        .route("/console/about", get(pages::about::page))
        .route(
            "/console/{*rest}",
            get(|lang: Lang| async move { not_found(lang) }),
        )
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

async fn css() -> Response {
    layout::with_headers(
        StatusCode::OK,
        "text/css; charset=utf-8",
        layout::CSS.to_owned(),
    )
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

/// The 404 page.
pub fn not_found(lang: Lang) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::NOT_FOUND,
        Page {
            lang,
            operator: None,
            active: "",
            title: t.not_found,
            flash: Vec::new(),
        },
        html! { p { a href="/console/overview" { (t.overview) } } },
    )
}

/// The page of a failure of ours (storage down, a bug): the detail goes to the log only.
pub fn failure(lang: Lang, operator: Option<&OperatorSession>, e: &AppError) -> Response {
    tracing::error!(error = %e, "console request failed");
    let t = lang.t();
    html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        Page {
            lang,
            operator,
            active: "",
            title: t.failed,
            flash: vec![Flash::error_because(t.failed, "internal")],
        },
        html! {},
    )
}

/// What an operator is told when a use case refuses: its message (which never holds a
/// name, ID number or photo), or a generic one for failures of ours.
pub fn refusal_text(lang: Lang, e: &AppError) -> String {
    match e {
        AppError::Store(_) | AppError::Engine(_) | AppError::Internal(_) => {
            tracing::error!(error = %e, "console request failed");
            lang.t().failed.to_owned()
        }
        other => other.to_string(),
    }
}
