//! Post/Redirect/Get: what a form that succeeded leaves for the page it redirects to.
//!
//! A state-changing form that succeeds answers `303 See Other` to its page with
//! `?flash=ID`, and that GET shows what the form did. A reload then repeats the GET, not
//! the action. What the page must show once (the messages, a new AppCode, the person as
//! enrolled) is a [`Notice`], left in the store by [`redirect`] (sealed under the secrets
//! key, bound to the session, read once, gone after minutes: see
//! `App::leave_console_flash`) and taken by the [`Operator`](super::session::Operator)
//! extractor of the GET. Only a random id goes into the URL, never a secret or personal
//! data, and only the session that posted the form can take it.
//!
//! A form that is refused is not redirected: its page is rendered in the POST's answer
//! with what was typed, and nothing is stored.

use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped};
use serde::{Deserialize, Serialize};

use super::layout::Flash;
use crate::state::AppState;

/// The query parameter that names a notice.
pub const PARAM: &str = "flash";

/// What a page shows once, after the redirect of a form that succeeded.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Notice {
    /// Messages at the top of the page.
    pub flash: Vec<Flash>,
    /// A block shown once, rendered when the form succeeded (a secret box, the person as
    /// the form left them, masked).
    shown: Option<String>,
}

impl Notice {
    /// A notice of one message and, perhaps, a block to show once.
    pub fn new(flash: Flash, shown: Option<Markup>) -> Self {
        Notice {
            flash: vec![flash],
            shown: shown.map(Markup::into_string),
        }
    }

    /// The block to show once, as markup (it was rendered by this server).
    pub fn shown(&self) -> Option<Markup> {
        self.shown.clone().map(PreEscaped)
    }

    /// Splits into the messages and the block.
    pub fn into_parts(self) -> (Vec<Flash>, Option<Markup>) {
        let shown = self.shown();
        (self.flash, shown)
    }
}

/// `303 See Other` to `path` (a console page, no query), leaving `notice` for the session
/// of `token`. If the notice cannot be left (the store failed), the redirect goes without
/// it: the action is done, and the page shows its result in the data it lists.
pub async fn redirect(state: &AppState, token: &str, path: &str, notice: Notice) -> Response {
    let location = match serde_json::to_string(&notice) {
        Ok(payload) => match state.app.leave_console_flash(token, &payload).await {
            Ok(id) => format!("{path}?{PARAM}={id}"),
            Err(e) => {
                tracing::error!(error = %e, "the console could not leave a message for its page");
                path.to_owned()
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "a console message did not serialize");
            path.to_owned()
        }
    };
    let mut response = StatusCode::SEE_OTHER.into_response();
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&location).unwrap_or(HeaderValue::from_static("/console/overview")),
    );
    super::layout::secure_headers(response.headers_mut());
    response
}

/// The notice a GET's `query` names, taken for the session of `token` (empty when none,
/// or when it is unknown, another session's, expired or already shown).
pub async fn take(state: &AppState, token: &str, query: Option<&str>) -> Notice {
    let Some(id) = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == PARAM)
            .map(|(_, v)| v)
    }) else {
        return Notice::default();
    };
    match state.app.take_console_flash(token, id).await {
        Ok(Some(payload)) => serde_json::from_str(&payload).unwrap_or_default(),
        Ok(None) => Notice::default(),
        Err(e) => {
            tracing::error!(error = %e, "the console could not read a page's message");
            Notice::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use maud::html;

    use super::*;

    #[test]
    fn a_notice_keeps_its_messages_and_block_across_json() {
        let notice = Notice::new(
            Flash::error_because("refused", "csrf"),
            Some(html! { p #x { "a < b" } }),
        );
        let back: Notice = serde_json::from_str(&serde_json::to_string(&notice).unwrap()).unwrap();
        let (flash, shown) = back.into_parts();
        assert_eq!(flash, vec![Flash::error_because("refused", "csrf")]);
        assert_eq!(shown.unwrap().into_string(), "<p id=\"x\">a &lt; b</p>");
    }
}
