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
    /// Reads every field. A text field sent twice, a body over the limit or a malformed
    /// body is refused with a message for the operator.
    pub async fn read(mut multipart: Multipart) -> Result<Self, String> {
        let mut upload = Upload::default();
        while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            let bytes = field.bytes().await.map_err(|e| e.body_text())?;
            if is_file {
                // A file input left empty still sends an empty part.
                if !bytes.is_empty() {
                    upload.files.push((name, bytes.to_vec()));
                }
            } else {
                let value = String::from_utf8(bytes.to_vec())
                    .map_err(|_| format!("the field {name} is not UTF-8 text"))?;
                if upload.text.insert(name.clone(), value).is_some() {
                    return Err(format!("the field {name} is sent more than once"));
                }
            }
        }
        Ok(upload)
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
