//! Reading the console's upload forms (enrolment, try-it): text fields once each, files
//! by field name, within the route's body limit.

use std::collections::HashMap;

use axum::extract::Multipart;

use super::i18n::Lang;

/// What stopped an upload from being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadProblem {
    /// The body is malformed or over the limit (the reader's own words).
    Body(String),
    /// A text field is not UTF-8.
    NotText(String),
    /// A text field was sent more than once.
    SentTwice(String),
}

impl UploadProblem {
    /// The problem in the operator's language.
    pub fn words(&self, lang: Lang) -> String {
        match (self, lang) {
            (UploadProblem::Body(e), Lang::Zh) => format!("上传内容无法读取：{e}"),
            (UploadProblem::Body(e), Lang::En) => e.clone(),
            (UploadProblem::NotText(name), Lang::Zh) => format!("字段 {name} 不是 UTF-8 文本"),
            (UploadProblem::NotText(name), Lang::En) => {
                format!("the field {name} is not UTF-8 text")
            }
            (UploadProblem::SentTwice(name), Lang::Zh) => format!("字段 {name} 提交了不止一次"),
            (UploadProblem::SentTwice(name), Lang::En) => {
                format!("the field {name} is sent more than once")
            }
        }
    }
}

/// An upload form, read.
#[derive(Default)]
pub struct Upload {
    text: HashMap<String, String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Upload {
    /// Reads every field, up to the first problem: a text field sent twice, a body over
    /// the limit or a malformed body. What was
    /// read before the problem is kept (the CSRF token, the form's first field, is
    /// checked on it).
    pub async fn read(mut multipart: Multipart) -> (Self, Option<UploadProblem>) {
        let mut upload = Upload::default();
        let problem = loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break None,
                Err(e) => break Some(UploadProblem::Body(e.body_text())),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            let bytes = match field.bytes().await {
                Ok(bytes) => bytes,
                Err(e) => break Some(UploadProblem::Body(e.body_text())),
            };
            if is_file {
                // A file input left empty still sends an empty part.
                if !bytes.is_empty() {
                    upload.files.push((name, bytes.to_vec()));
                }
            } else {
                let Ok(value) = String::from_utf8(bytes.to_vec()) else {
                    break Some(UploadProblem::NotText(name));
                };
                if upload.text.contains_key(&name) {
                    break Some(UploadProblem::SentTwice(name));
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

    /// Every text field, name and value.
    pub fn texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.text.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The files of one field, in order.
    pub fn files<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.files
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, b)| b)
    }
}
