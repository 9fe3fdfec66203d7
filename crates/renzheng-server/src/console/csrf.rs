//! The CSRF token: written into every console form ([`field`]) and checked on every POST
//! ([`accepts`], called only by the `verified::Verified` extractor).
//!
//! Today the token is the session's: one random value per session, kept by the store
//! with the session, compared in constant time.
//!
//! Why these two functions and nothing else know what a token is: single-use form tokens
//! (each rendered form gets its own, so a reload or a replay cannot repeat the action)
//! slot in here without touching a page or a handler. [`field`] would mint a token per
//! form (e.g. a nonce and its MAC under the session's secret) and [`accepts`] would check
//! it and burn the nonce in the store (becoming `async`, with the state the extractor
//! already holds). Pages only ever call [`field`]; handlers only ever receive a
//! `verified::Verified` form, which they consume once.
//!
//! This module is a leaf (it renders one `<input>`, it imports nothing of the console),
//! so the page shell can put the field in its sign-out form.

use maud::{html, Markup};
use renzheng_app::keys::constant_time_eq;
use renzheng_app::OperatorSession;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// The hidden CSRF field of every form (of a signed-in operator: the sign-in form is the
/// one form without a session, guarded by the same-origin check alone).
pub fn field(session: &OperatorSession) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(session.csrf); }
}

/// Whether `sent` is a token this session issued.
pub fn accepts(session: &OperatorSession, sent: Option<&str>) -> bool {
    sent.is_some_and(|token| constant_time_eq(token.as_bytes(), session.csrf.as_bytes()))
}
