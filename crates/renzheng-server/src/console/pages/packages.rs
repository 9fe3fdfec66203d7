//! Packages: the catalogue (editable), granting a package to an app, every app's balance
//! and the expiry of each grant.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Form;
use maud::html;
use renzheng_app::{AppError, GrantRequest, PackageView};
use renzheng_store::AppId;
use serde::Deserialize;

use crate::console::access;
use crate::console::csrf;
use crate::console::errors::{failure, refusal_text};
use crate::console::fields;
use crate::console::i18n::Lang;
use crate::console::layout::{format_time, html_page, Flash, Page};
use crate::console::notice::{redirect, Notice};
use crate::console::session::Operator;
use crate::console::verified::Verified;
use crate::state::AppState;

/// This page.
const PAGE: &str = "/console/packages";

/// `12.5` 元 from 1250 分.
fn yuan(fen: i64) -> String {
    if fen % 100 == 0 {
        format!("{}", fen / 100)
    } else {
        format!("{}.{:02}", fen / 100, fen % 100)
    }
}

/// 分 from a price in 元 as typed (`12`, `12.5`, `12.50`).
fn fen_of(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || frac.len() > 2
        || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac = format!("{frac:0<2}");
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(frac.parse::<i64>().ok()?)
}

/// What a refused form had typed, shown again in it.
#[derive(Default)]
enum Typed<'a> {
    /// Nothing (a GET).
    #[default]
    Nothing,
    /// The catalogue form.
    Package(&'a PackageForm),
    /// The grant form.
    Grant(&'a GrantForm),
}

async fn render(
    state: &AppState,
    op: &Operator,
    lang: Lang,
    flash: Vec<Flash>,
    typed: Typed<'_>,
) -> Response {
    let t = lang.t();
    let app = &state.app;
    let (packages, quotas) = match (app.packages().await, app.quotas().await) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(e), _) | (_, Err(e)) => return failure(lang, Some(&op.session), &e),
    };
    let offset = app.settings().metering.utc_offset_minutes;
    let csrf = || csrf::field(&op.session);
    let (package, grant) = match typed {
        Typed::Nothing => (None, None),
        Typed::Package(p) => (Some(p), None),
        Typed::Grant(g) => (None, Some(g)),
    };
    // An auditor reads the catalogue and the balances; the forms are for admins and owners.
    let may_edit = access::allows(op.session.role, &Method::POST, PAGE);
    html_page(
        StatusCode::OK,
        Page {
            lang,
            operator: Some(&op.session),
            active: "packages",
            title: t.packages,
            flash,
        },
        html! {
            @if may_edit { section .card {
                h2 { (t.grant) }
                form #grant .row method="post" action="/console/grants" data-confirm=(t.confirm_grant) {
                    (csrf())
                    label { (t.app) select name="app_id" required {
                        @for a in quotas.iter().map(|q| &q.app) {
                            option value=(a.app_id) selected[grant.is_some_and(|g| g.app_id == a.app_id)] { (a.name) " (" (a.app_id) ")" }
                        }
                    } }
                    label { (t.package) select name="package" required {
                        @for p in packages.iter().filter(|p| p.active) {
                            option value=(p.name) selected[grant.is_some_and(|g| g.package == p.name)] { (p.title) " · " (p.calls) (t.calls_unit) }
                        }
                    } }
                    button type="submit" { (t.grant_button) }
                }
            } }
            h2 { (t.balances) }
            div .table-wrap { table #balances .stack {
                thead { tr { th { (t.app) } th .num { (t.remaining) } th .num { (t.purchased) } th .num { (t.charged) } th { (t.packages) } } }
                tbody {
                    @for b in &quotas {
                        @let a = &b.app;
                        tr data-app-id=(a.app_id) {
                            td data-label=(t.app) { a href={ "/console/apps/" (a.app_id) } { (a.name) } br; code .muted { (a.app_id) } }
                            td .num .remaining data-label=(t.remaining) { (b.remaining) }
                            td .num data-label=(t.purchased) { (b.purchased) }
                            td .num data-label=(t.charged) { (b.charged) }
                            td data-label=(t.packages) {
                                @for g in &b.grants {
                                    div .grant {
                                        @let title = g.package.as_deref().map(|code| packages.iter().find(|p| p.name == code).map_or(code, |p| p.title.as_str()));
                                        (title.unwrap_or(t.custom_grant)) ": " (g.remaining) " / " (g.calls) (t.calls_unit) " · " (t.expires) " "
                                        @match g.expires_at { Some(at) => (format_time(at, offset)), None => (t.never) }
                                        @if g.expired { " " span .badge .r3 { (t.expired) } }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            h2 { (t.catalogue) }
            div .table-wrap { table #packages {
                thead { tr { th { (t.package) } th { (t.title) } th .num { (t.calls_count) } th .num { (t.price_yuan) } th .num { (t.valid_days) } th { (t.active) } } }
                tbody {
                    @for p in &packages {
                        tr data-package=(p.name) {
                            td { code { (p.name) } } td { (p.title) } td .num { (p.calls) }
                            td .num { (yuan(p.price_fen)) }
                            td .num { @match p.valid_days { Some(d) => (d), None => (t.never) } }
                            td { @if p.active { "✓" } @else { "–" } }
                        }
                    }
                }
            } }
            @if may_edit { section .card {
                h2 { (t.save_package) }
                form #put-package .row method="post" action="/console/packages" {
                    (csrf())
                    (fields::package_name(lang, package.map(|p| p.name.as_str())))
                    (fields::package_title(lang, package.and_then(|p| p.title.as_deref())))
                    (fields::package_calls(lang, package.map(|p| p.calls.as_str())))
                    label { (t.price_yuan) input name="price_yuan" inputmode="decimal" required value=[package.map(|p| p.price_yuan.as_str())]; }
                    (fields::package_valid_days(lang, package.and_then(|p| p.valid_days.as_deref())))
                    label { input name="active" type="checkbox" value="1" checked[package.is_none_or(|p| p.active.is_some())]; " " (t.active) }
                    button type="submit" { (t.save_package) }
                }
            } }
        },
    )
}

/// `GET /console/packages`.
pub async fn page(State(state): State<AppState>, mut op: Operator, lang: Lang) -> Response {
    let (flash, _) = op.take_notice().into_parts();
    render(&state, &op, lang, flash, Typed::Nothing).await
}

/// The catalogue form.
#[derive(Deserialize)]
pub struct PackageForm {
    name: String,
    title: Option<String>,
    calls: String,
    price_yuan: String,
    valid_days: Option<String>,
    active: Option<String>,
}

/// `POST /console/packages`: adds or replaces a package.
pub async fn put(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<PackageForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let invalid = |m: &str| AppError::Invalid(m.to_owned());
    let parsed = (|| {
        let calls = form
            .calls
            .trim()
            .parse::<i64>()
            .map_err(|_| invalid(lang.t().calls_whole))?;
        let price_fen = fen_of(&form.price_yuan).ok_or_else(|| invalid(lang.t().price_format))?;
        let valid_days = match form
            .valid_days
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            Some(v) => Some(
                v.parse::<i64>()
                    .map_err(|_| invalid(lang.t().valid_days_whole))?,
            ),
            None => None,
        };
        let title = form
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| format!("{}元/{calls}次", yuan(price_fen)));
        Ok::<_, AppError>(PackageView {
            name: form.name.trim().to_owned(),
            title,
            calls,
            price_fen,
            valid_days,
            active: form.active.is_some(),
        })
    })();
    let outcome = match parsed {
        Ok(p) => state.app.put_package(&op.session.actor(), p).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(p) => {
            let flash = Flash::ok(format!("{} · {}", lang.t().package_saved, p.name));
            redirect(&state, op.token(), PAGE, Notice::new(flash, None)).await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(&state, &op, lang, flash, Typed::Package(&form)).await
        }
    }
}

/// The grant form.
#[derive(Deserialize)]
pub struct GrantForm {
    app_id: String,
    package: String,
}

/// `POST /console/grants`: grants a package to an app.
pub async fn grant(
    State(state): State<AppState>,
    lang: Lang,
    form: Verified<Form<GrantForm>>,
) -> Response {
    let (op, form) = form.into_parts();
    let request = GrantRequest {
        package: Some(form.package.clone()),
        calls: None,
        expires_at: None,
    };
    let app_id = AppId::from(form.app_id.clone());
    let granted = match state.app.app(&app_id).await {
        Ok(view) => state
            .app
            .grant(&op.session.actor(), &app_id, request)
            .await
            .map(|g| (view, g)),
        Err(e) => Err(e),
    };
    match granted {
        Ok((view, g)) => {
            let flash = Flash::ok(format!(
                "{} · {} ({}) · {} × {}",
                lang.t().granted,
                view.name,
                view.app_id,
                g.package.unwrap_or_default(),
                g.calls
            ));
            redirect(&state, op.token(), PAGE, Notice::new(flash, None)).await
        }
        Err(e) => {
            let flash = vec![Flash::error(refusal_text(lang, &e))];
            render(&state, &op, lang, flash, Typed::Grant(&form)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_convert_both_ways() {
        assert_eq!(fen_of("12"), Some(1200));
        assert_eq!(fen_of("12.5"), Some(1250));
        assert_eq!(fen_of(" 0.05 "), Some(5));
        assert_eq!(fen_of("1.234"), None);
        assert_eq!(fen_of("-1"), None);
        assert_eq!(fen_of(""), None);
        assert_eq!(yuan(1250), "12.50");
        assert_eq!(yuan(200), "2");
    }
}
