//! The console's pages of refusal and failure, and the words an operator is told when a
//! use case refuses.

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use renzheng_app::{AppError, OperatorSession};

use super::i18n::Lang;
use super::layout::{html_page, Flash, Page};

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

/// The 403 page of a refused form (a wrong CSRF token, another site's origin).
pub fn forbidden(lang: Lang) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::FORBIDDEN,
        Page {
            lang,
            operator: None,
            active: "",
            title: t.failed,
            flash: vec![Flash::error_because(t.csrf_refused, "csrf")],
        },
        html! {},
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
