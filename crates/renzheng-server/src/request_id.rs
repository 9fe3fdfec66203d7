//! The per-request id: `X-Ca-Request-Id` on every response and `taskNo` in every body.
//!
//! The outer middleware makes one id per request and runs the rest of the request inside a
//! task-local scope, so that any code producing a response (handlers, extractors' errors)
//! can put the same id into the JSON envelope without threading it through every call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: RequestId;
}

/// A request's unique id: an upper-case hyphenated UUID v4, as Alibaba's gateway sends.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// A fresh random id.
    pub fn generate() -> Self {
        RequestId(
            uuid::Uuid::new_v4()
                .hyphenated()
                .to_string()
                .to_uppercase()
                .into(),
        )
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being served by this task, if any.
    pub fn current() -> Option<RequestId> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// The current request id as text (empty outside a request).
    pub fn current_string() -> String {
        Self::current().map(|id| id.to_string()).unwrap_or_default()
    }

    /// Runs `f` with `self` as the current request id.
    pub async fn scope<F: Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uppercase_uuids_and_distinct() {
        let a = RequestId::generate();
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(a.as_str(), a.as_str().to_uppercase());
        assert_ne!(a, RequestId::generate());
    }

    #[tokio::test]
    async fn scope_sets_the_current_id() {
        assert!(RequestId::current().is_none());
        let id = RequestId::generate();
        let seen = id.clone().scope(async { RequestId::current() }).await;
        assert_eq!(seen, Some(id));
    }
}
