//! Which role each console route needs: one table, [`needed`], applied by the
//! [`Operator`](super::session::Operator) extractor to every page and every form (a form's
//! [`Verified`](super::verified::Verified) goes through it), and read by the navigation
//! and the pages to leave out what the operator may not use. A route missing from the
//! table needs an owner: a page added without a thought is closed, not open.

use axum::http::Method;
use renzheng_store::OperatorRole;

/// The least role that may send `method` to the console path `path`.
pub fn needed(method: &Method, path: &str) -> OperatorRole {
    use OperatorRole::{Admin, Auditor, Owner};
    let Some(rest) = path.strip_prefix("/console/") else {
        return Owner;
    };
    let mut segments = rest.split('/');
    let first = segments.next().unwrap_or_default();
    let second = segments.next();
    let read = *method == Method::GET || *method == Method::HEAD;
    match (first, read, second) {
        // What an auditor reads: usage, balances, calls, alerts, events, compliance (on
        // the about page), their own account.
        (
            "overview" | "apps" | "packages" | "calls" | "calls.csv" | "alerts" | "events",
            true,
            _,
        )
        | ("about" | "account", true, None) => Auditor,
        // Searches of the calls are posted (an ID number never goes into a URL); their own
        // sessions and password, and signing out.
        ("calls", false, Some("by-id-number"))
        | ("account", false, Some("sessions" | "password" | "two-step"))
        | ("sign-out", false, None) => Auditor,
        // Apps, packages, grants, the registry (its personal data included), duplicate
        // overrides, the try-it page (a check against the registry).
        ("apps" | "packages" | "grants" | "registry" | "try", _, _) => Admin,
        // Operators, and anything not named above.
        _ => Owner,
    }
}

/// Whether `role` may send `method` to `path`.
pub fn allows(role: OperatorRole, method: &Method, path: &str) -> bool {
    role.includes(needed(method, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OperatorRole::{Admin, Auditor, Owner};

    #[test]
    fn every_route_has_its_role_and_the_unknown_need_an_owner() {
        let get = Method::GET;
        let post = Method::POST;
        for (method, path, role) in [
            (&get, "/console/overview", Auditor),
            (&get, "/console/apps", Auditor),
            (&get, "/console/apps/app_1", Auditor),
            (&post, "/console/apps", Admin),
            (&post, "/console/apps/app_1/reveal-code", Admin),
            (&post, "/console/apps/app_1/disable", Admin),
            (&get, "/console/packages", Auditor),
            (&post, "/console/packages", Admin),
            (&post, "/console/grants", Admin),
            (&get, "/console/calls", Auditor),
            (&get, "/console/calls.csv", Auditor),
            (&post, "/console/calls/by-id-number", Auditor),
            (&get, "/console/alerts", Auditor),
            (&get, "/console/events", Auditor),
            (&get, "/console/about", Auditor),
            (&get, "/console/account", Auditor),
            (&post, "/console/account/sessions/revoke", Auditor),
            (&post, "/console/account/password", Auditor),
            (&post, "/console/account/two-step/start", Auditor),
            (&post, "/console/operators/two-step-reset", Owner),
            (&post, "/console/sign-out", Auditor),
            (&get, "/console/registry", Admin),
            (&post, "/console/registry/lookup", Admin),
            (&get, "/console/registry/duplicates", Admin),
            (&get, "/console/try", Admin),
            (&post, "/console/try/compare", Admin),
            (&get, "/console/operators", Owner),
            (&post, "/console/operators/add", Owner),
            (&get, "/console/something-new", Owner),
            (&post, "/console/about", Owner),
            (&get, "/console/about/x", Owner),
            (&get, "/admin/apps", Owner),
        ] {
            assert_eq!(needed(method, path), role, "{method} {path}");
        }
        assert!(allows(Owner, &post, "/console/operators/add"));
        assert!(!allows(Admin, &post, "/console/operators/add"));
        assert!(allows(Admin, &post, "/console/grants"));
        assert!(!allows(Auditor, &post, "/console/grants"));
    }
}
