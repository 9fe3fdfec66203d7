//! The CSRF rule of every console POST, in one extractor: [`Verified`].
//!
//! A POST handler of the console takes its form as a [`Verified<Form<T>>`] (URL-encoded)
//! or a [`Verified<Multipart>`] (uploads), and gets the form only if the request passed,
//! in this order:
//!
//! 1. the same-origin check ([`from_this_origin`]): a browser's `Origin` or
//!    `Sec-Fetch-Site` must not say another site sent it;
//! 2. a live session (the [`Operator`] extractor: a sign-in redirect otherwise);
//! 3. a form token of this session in the form's `csrf` field, also in a multipart body,
//!    spent here ([`csrf`] says how): a wrong or missing token is a 403, a token already
//!    used (a reload, a double click) a 409 page leading back to the form's page, and the
//!    handler never runs.
//!
//! Routes are added with [`form_post`], which does not compile for a handler whose last
//! argument is not a `Verified`, so a new POST handler cannot forget the rule. The
//! sign-in form is the one POST without a session (and so without a token): the
//! [`same_origin`] layer over the whole console guards it, and every other POST twice.
//!
//! Why the handler receives a value rather than calling a check: the form reaches it only
//! through [`Verified::into_parts`], once, after its token was spent, so no handler can
//! act on an unchecked body or act twice on one token.

use std::future::Future;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::handler::Handler;
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Form;
use renzheng_app::FormToken;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::csrf;
use super::errors::{already_sent, failure, forbidden};
use super::i18n::Lang;
use super::multipart::{Upload, UploadProblem};
use super::session::Operator;
use crate::state::AppState;

/// A console form that passed the origin check and carried an unused token of its session, with
/// the signed-in operator who posted it. `F` says how the body is read: [`Form<T>`] or
/// [`Multipart`].
pub struct Verified<F: FormBody> {
    operator: Operator,
    form: F::Form,
}

impl<F: FormBody> Verified<F> {
    /// The operator and the form, handed over once (the value is consumed).
    pub fn into_parts(self) -> (Operator, F::Form) {
        (self.operator, self.form)
    }
}

/// A form with no field but its CSRF token (sign-out, re-embed).
#[derive(Deserialize)]
pub struct NoFields {}

/// How a console form's body is read: the token it carries, and what the handler gets.
pub trait FormBody {
    /// What the handler gets.
    type Form: Send;

    /// Reads the body: the CSRF token sent (if any) and the form.
    fn read(
        request: Request,
        state: &AppState,
    ) -> impl Future<Output = Result<(Option<String>, Self::Form), Response>> + Send;
}

/// The URL-encoded body: the token in `csrf`, every other field into `T` (String fields:
/// the handlers parse numbers themselves, to say what was wrong on the page). A body `T`
/// does not fit is refused as [`Form`] refuses it (415, 422).
impl<T: DeserializeOwned + Send> FormBody for Form<T> {
    type Form = T;

    async fn read(request: Request, state: &AppState) -> Result<(Option<String>, T), Response> {
        #[derive(Deserialize)]
        struct WithToken<T> {
            csrf: Option<String>,
            #[serde(flatten)]
            form: T,
        }
        let Form(body) = Form::<WithToken<T>>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok((body.csrf, body.form))
    }
}

/// An upload, read field by field up to the first problem (a field sent twice, a body
/// over the limit): the token is the `csrf` field read before it (a browser sends it
/// first: it is the form's first field), and the handler gets the upload or the problem,
/// to show on its page.
impl FormBody for Multipart {
    type Form = Result<Upload, UploadProblem>;

    async fn read(
        request: Request,
        state: &AppState,
    ) -> Result<(Option<String>, Self::Form), Response> {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let (upload, problem) = Upload::read(multipart).await;
        let token = upload.text(csrf::FIELD).map(str::to_owned);
        Ok((token, problem.map_or(Ok(upload), Err)))
    }
}

impl<F: FormBody> FromRequest<AppState> for Verified<F> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(lang) = Lang::from_request_parts(&mut parts, state).await;
        if !from_this_origin(&parts.headers) {
            return Err(forbidden(lang));
        }
        let operator = Operator::from_request_parts(&mut parts, state).await?;
        let path = parts.uri.path().to_owned();
        let (sent, form) = F::read(Request::from_parts(parts, body), state).await?;
        match state
            .app
            .spend_form_token(&operator.session, sent.as_deref())
            .await
        {
            Ok(FormToken::Fresh) => Ok(Verified { operator, form }),
            Ok(FormToken::Spent) => {
                tracing::info!(operator = %operator.session.operator, "a console form sent again was not acted on");
                Err(already_sent(lang, &operator.session, page_of(&path)))
            }
            Ok(FormToken::Refused) => {
                tracing::warn!(operator = %operator.session.operator, "console form with a wrong CSRF token refused");
                Err(forbidden(lang))
            }
            Err(e) => Err(failure(lang, Some(&operator.session), &e)),
        }
    }
}

/// The page a form posted to `path` belongs to (where its "sent again" page leads back).
fn page_of(path: &str) -> &'static str {
    const PAGES: [(&str, &str); 8] = [
        ("/console/account", "/console/account"),
        ("/console/apps", "/console/apps"),
        ("/console/calls", "/console/calls"),
        ("/console/packages", "/console/packages"),
        ("/console/grants", "/console/packages"),
        (
            "/console/registry/duplicates",
            "/console/registry/duplicates",
        ),
        ("/console/registry", "/console/registry"),
        ("/console/try", "/console/try"),
    ];
    PAGES
        .iter()
        .find(|(prefix, _)| path.starts_with(prefix))
        .map_or("/console/overview", |(_, page)| page)
}

/// The argument lists (as axum's [`Handler`] sees them) whose last extractor is a
/// [`Verified`] form.
pub trait EndsWithVerified {}

macro_rules! ends_with_verified {
    ($($arg:ident),*) => {
        impl<M, $($arg,)* F: FormBody> EndsWithVerified for (M, $($arg,)* Verified<F>,) {}
    };
}
ends_with_verified!();
ends_with_verified!(A1);
ends_with_verified!(A1, A2);
ends_with_verified!(A1, A2, A3);
ends_with_verified!(A1, A2, A3, A4);
ends_with_verified!(A1, A2, A3, A4, A5);

/// The POST route of a console form: `handler` must take its form as a [`Verified`], or
/// this does not compile.
pub fn form_post<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: EndsWithVerified + 'static,
{
    post(handler)
}

/// Whether a browser says the request came from this site: no `Origin` other than this
/// request's `Host`, no `Sec-Fetch-Site: cross-site` / `same-site`. Requests without
/// either header (non-browser clients) pass, to the CSRF token check.
pub fn from_this_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin_ok = match origin {
        None => true,
        Some(origin) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest);
            origin_host.is_some() && origin_host == host
        }
    };
    let fetch_ok = !matches!(fetch_site, Some("cross-site" | "same-site"));
    if !(origin_ok && fetch_ok) {
        tracing::warn!(
            origin = origin.unwrap_or("-"),
            host = host.unwrap_or("-"),
            sec_fetch_site = fetch_site.unwrap_or("-"),
            "console request from another origin refused"
        );
    }
    origin_ok && fetch_ok
}

/// The same-origin check as a layer over the whole console: refuses (403) any request
/// but `GET`/`HEAD` that [`from_this_origin`] refuses — the sign-in form included, which
/// has no session token.
pub async fn same_origin(lang: Lang, request: Request, next: Next) -> Response {
    let safe = request.method() == Method::GET || request.method() == Method::HEAD;
    if !safe && !from_this_origin(request.headers()) {
        return forbidden(lang);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_another_sites_origin_is_refused() {
        assert!(from_this_origin(&headers(&[("host", "a.example")])));
        assert!(from_this_origin(&headers(&[
            ("host", "a.example:8080"),
            ("origin", "https://a.example:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(!from_this_origin(&headers(&[
            ("host", "a.example"),
            ("origin", "https://evil.example"),
        ])));
        assert!(!from_this_origin(&headers(&[
            ("host", "a.example"),
            ("origin", "null"),
        ])));
        for site in ["cross-site", "same-site"] {
            assert!(!from_this_origin(&headers(&[
                ("host", "a.example"),
                ("sec-fetch-site", site),
            ])));
        }
    }
}
