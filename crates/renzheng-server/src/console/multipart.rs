//! Reading the console's upload forms (enrolment, try-it): text fields once each, files
//! by field name, within the route's body limit.

use std::collections::HashMap;

use axum::extract::Multipart;

/// An upload form, read.
#[derive(Default)]
pub struct Upload {
    text: HashMap<String, String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Upload {
    /// Reads every field, up to the first problem: a text field sent twice, a body over
    /// the limit or a malformed body, told with a message for the operator. What was
    /// read before the problem is kept (the CSRF token, the form's first field, is
    /// checked on it).
    pub async fn read(mut multipart: Multipart) -> (Self, Option<String>) {
        let mut upload = Upload::default();
        let problem = loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break None,
                Err(e) => break Some(e.body_text()),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            let bytes = match field.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => break Some(e.body_text()),
            };
            if is_file {
                // A file input left empty still sends an empty part.
                if !bytes.is_empty() {
                    upload.files.push((name, bytes.to_vec()));
                }
            } else {
                let Ok(value) = String::from_utf8(bytes.to_vec()) else {
                    break Some(format!("the field {name} is not UTF-8 text"));
                };
                if upload.text.contains_key(&name) {
                    break Some(format!("the field {name} is sent more than once"));
                }
                upload.text.insert(name, value);
            }
        };
        (upload, problem)
    }

    /// A text field.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.text.get(name).map(String::as_str)
    }

    /// The files of one field, in order.
    pub fn files<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.files
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, b)| b)
    }
}
