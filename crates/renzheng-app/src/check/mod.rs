//! The product's use case: is the person in this photo the holder of this ID number?
//!
//! ```text
//! CheckFields ─App::parse_check─▶ CheckRequest ─App::verify─▶ Verification (result 1–8)
//! ```
//!
//! A check served to someone runs as a [`CheckTicket`] (`ticket.rs`), which adds the
//! caller's authentication, admission, the deadline and the one record around these.
//!
//! Parsing refuses, in the order name → idCard → photo, anything the caller got wrong;
//! verifying runs the product's steps in order, each cheaper than the next.

mod record;
mod ticket;
mod verify;

use renzheng_domain::{IdNumber, PersonName};
use url::Url;

pub use self::ticket::{CheckTicket, Checked, Ending, Origin, ABANDONED_STATUS};
pub use self::verify::{IdFacts, ResultCode, Scored, Verification};
pub use crate::photo::{check_photo_bytes, decode_image_field, PhotoError};
use crate::{App, AppError};

/// The four fields of a check, as sent (all optional until parsed).
///
/// No `Debug`: the values are personal data in clear.
#[derive(Default, Clone)]
pub struct CheckFields {
    /// `name`.
    pub name: Option<String>,
    /// `idCard`.
    pub id_card: Option<String>,
    /// `image` (base64, optionally a `data:` URI).
    pub image: Option<String>,
    /// `imgUrl`.
    pub img_url: Option<String>,
}

/// Where the photo of a check comes from.
pub enum PhotoSource {
    /// Sent inline (`image`), decoded from base64 and size-checked.
    Inline(Vec<u8>),
    /// To fetch (`imgUrl`), syntax-checked; the address is checked when fetching.
    Url(Url),
}

/// A check whose every field parsed. No `Debug`: it holds personal data in clear.
pub struct CheckRequest {
    /// The name to match against the registry.
    pub name: PersonName,
    /// The ID number to look up.
    pub id: IdNumber,
    /// The photo.
    pub photo: PhotoSource,
}

/// `Some` for a field that is present and not blank: the one rule for required fields.
pub(crate) fn required(field: Option<String>, name: &'static str) -> Result<String, AppError> {
    present(field).ok_or(AppError::MissingField(name))
}

fn present(field: Option<String>) -> Option<String> {
    field.filter(|v| !v.trim().is_empty())
}

impl App {
    /// Parses the fields of a check under this application's limits: the first problem,
    /// in the order name → idCard → photo, is the answer. `image` wins when both photo
    /// fields are sent, as in the product.
    pub fn parse_check(&self, fields: CheckFields) -> Result<CheckRequest, AppError> {
        let name = required(fields.name, "name")?;
        let id = required(fields.id_card, "idCard")?;
        let name = PersonName::parse(&name)?;
        let id = IdNumber::parse(&id)?;
        let photo = match (present(fields.image), present(fields.img_url)) {
            (Some(image), _) => PhotoSource::Inline(decode_image_field(
                &image,
                self.settings.limits.max_photo_bytes,
            )?),
            (None, Some(url)) => PhotoSource::Url(self.fetcher.parse_url(&url)?),
            (None, None) => return Err(AppError::MissingPhoto),
        };
        Ok(CheckRequest { name, id, photo })
    }
}
