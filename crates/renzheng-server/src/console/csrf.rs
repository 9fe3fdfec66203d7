//! The form token: written into every console form ([`field`]), spent by the
//! `verified::Verified` extractor before the form's handler runs.
//!
//! Each rendered form gets its own single-use token (a nonce and its MAC under the
//! session's form secret, minted by `OperatorSession::form_token`), so a token is worth
//! one POST: a reload of a result page, a double click or a replay is refused
//! (`App::spend_form_token` records the nonce in the store, which every node shares).
//! Minting writes nothing, so a page of many forms costs nothing; only a used token is
//! recorded, until its session ends.
//!
//! This module is a leaf (it renders one `<input>`, it imports nothing of the console),
//! so the page shell can put the field in its sign-out form.

use maud::{html, Markup};
use renzheng_app::OperatorSession;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// The hidden token field of every form (of a signed-in operator: the sign-in form is the
/// one form without a session, guarded by the same-origin check alone): a new token each
/// time it is called, so call it once per form.
pub fn field(session: &OperatorSession) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(session.form_token()); }
}
