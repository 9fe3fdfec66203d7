//! Reading a cookie from a request's `Cookie` headers (the session cookie, the language).

use axum::http::header::COOKIE;
use axum::http::HeaderMap;

/// The value of cookie `name` in the request's `Cookie` headers (the first, when there
/// are several).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    cookies(headers, name).next()
}

/// Every value of cookie `name` in the request's `Cookie` headers, in the order sent.
///
/// A browser sends one cookie per (name, path), so a name can come more than once: a
/// cookie of an older path beside the current one, or one a sibling host set for the
/// parent domain. Whoever reads a name that matters (the session) looks at each.
pub fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn every_value_of_a_name_is_read_in_order() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; lang=en; a=2"));
        headers.append(COOKIE, HeaderValue::from_static("a=3"));
        assert_eq!(cookies(&headers, "a").collect::<Vec<_>>(), ["1", "2", "3"]);
        assert_eq!(cookie(&headers, "a").as_deref(), Some("1"));
        assert_eq!(cookie(&headers, "lang").as_deref(), Some("en"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
