//! The console's form fields whose limits are rules of the domain or of the use cases.
//! Each field is written once, here, and its `maxlength`, `min`, `max` or `pattern` is
//! the rule's own constant, so the form cannot drift from what the server accepts (the
//! server still checks: these only spare the operator a round trip).

use std::collections::HashMap;

use maud::{html, Markup};
use renzheng_app::{AppName, PackageView, PolicyView, Reason};
use renzheng_domain::{BasisFields, BasisKind, IdNumber, Reference, MAX_NAME_CHARS};

use super::i18n::Lang;

/// What a refused form had typed: which form (its `id`), and its text fields by name. The
/// page is rendered again at once with these in the form's fields (a browser cannot be
/// told to fill a file input: the photos are chosen again).
pub struct Typed {
    form: &'static str,
    values: HashMap<String, String>,
}

impl Typed {
    /// What form `form` had typed.
    pub fn new<'a>(
        form: &'static str,
        values: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Typed {
            form,
            values: values
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The values for form `form`: what it had typed if it is the one refused, else none.
    pub fn fill<'a>(typed: Option<&'a Typed>, form: &str) -> Fill<'a> {
        Fill(typed.filter(|t| t.form == form).map(|t| &t.values))
    }
}

/// The values a form's fields are rendered with ([`EMPTY`]: none).
#[derive(Clone, Copy)]
pub struct Fill<'a>(Option<&'a HashMap<String, String>>);

/// No values: a form as first shown.
pub const EMPTY: Fill<'static> = Fill(None);

impl<'a> Fill<'a> {
    /// The value of field `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.and_then(|v| v.get(name)).map(String::as_str)
    }
}

/// A person's ID number. Browsers are told not to remember what was typed: ID numbers
/// must not end up in an operator's autocomplete history.
pub fn id_number(lang: Lang, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().id_number) input name="id_number" required maxlength=(IdNumber::CHARS) autocomplete="off" value=[fill.get("id_number")]; } }
}

/// A person's name (not remembered either).
pub fn person_name(lang: Lang, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().name) input name="name" required maxlength=(MAX_NAME_CHARS) autocomplete="off" value=[fill.get("name")]; } }
}

/// Characters of a person handle (`p-` and 16 hex digits).
const HANDLE_CHARS: usize = 18;

/// A person named by ID number or handle (not remembered either).
pub fn person_ref(lang: Lang, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().person_ref) input name="person" required maxlength=(IdNumber::CHARS.max(HANDLE_CHARS)) autocomplete="off" value=[fill.get("person")]; } }
}

/// A person's new name.
pub fn new_name(lang: Lang, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().new_name) input name="name" required maxlength=(MAX_NAME_CHARS) autocomplete="off" value=[fill.get("name")]; } }
}

/// What the registry search takes: a full ID number, a handle or an exact name.
pub fn search_query(lang: Lang) -> Markup {
    let longest = IdNumber::CHARS.max(HANDLE_CHARS).max(MAX_NAME_CHARS);
    html! { label { (lang.t().search_query) input name="query" type="search" required maxlength=(longest) autocomplete="off"; } }
}

/// An operator's reason (`required`: always; otherwise only when a box says so).
pub fn reason(lang: Lang, required: bool, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().reason) input name="reason" required[required] maxlength=(Reason::MAX_CHARS) autocomplete="off" value=[fill.get("reason")]; } }
}

/// The reference of the data subject's request a removal answers (optional).
pub fn request_ref(lang: Lang, fill: Fill<'_>) -> Markup {
    html! { label { (lang.t().request_ref) input name="request_ref" maxlength=(Reference::MAX_CHARS) autocomplete="off" value=[fill.get("request_ref")]; } }
}

/// The box allowing a face enrolled under another ID number (with a reason).
pub fn allow_duplicate_face(lang: Lang, fill: Fill<'_>) -> Markup {
    let t = lang.t();
    let checked = fill.get("allow_duplicate_face") == Some("yes");
    html! {
        label { input name="allow_duplicate_face" type="checkbox" value="yes" checked[checked]; " " (t.allow_duplicate_face) }
    }
}

/// The legal basis of a face: its kind (`required`, or blank to keep the person's), the
/// consent's or contract's reference or the statute, a guardian's consent, the purpose.
pub fn basis(lang: Lang, required: bool, fill: Fill<'_>) -> Markup {
    let t = lang.t();
    let label = |kind: BasisKind| match kind {
        BasisKind::Consent => t.basis_consent,
        BasisKind::Contract => t.basis_contract,
        BasisKind::Law => t.basis_law,
    };
    html! {
        fieldset .basis {
            legend { (t.basis_legend) }
            label { (t.basis_kind)
                select name="basis" required[required] {
                    option value="" { (t.basis_none) }
                    @for kind in BasisKind::ALL { option value=(kind.as_str()) selected[fill.get("basis") == Some(kind.as_str())] { (label(kind)) } }
                }
            }
            label { (t.consent_ref) input name="consent_ref" maxlength=(Reference::MAX_CHARS) autocomplete="off" value=[fill.get("consent_ref")]; }
            label { (t.law_ref) input name="law" maxlength=(Reference::MAX_CHARS) autocomplete="off" value=[fill.get("law")]; }
            label { (t.guardian_consent_ref) input name="guardian_consent_ref" maxlength=(Reference::MAX_CHARS) autocomplete="off" value=[fill.get("guardian_consent_ref")]; }
            label { (t.purpose) input name="purpose" maxlength=(Reference::MAX_CHARS) autocomplete="off" value=[fill.get("purpose")]; }
        }
    }
}

/// The fields of [`basis`] as posted (`text` reads one by name), and the purpose.
pub fn basis_fields<'a>(text: impl Fn(&str) -> Option<&'a str>) -> (BasisFields, Option<String>) {
    let field = |name: &str| text(name).map(str::to_owned);
    (
        BasisFields {
            basis: field("basis"),
            consent_ref: field("consent_ref"),
            law: field("law"),
            guardian_consent_ref: field("guardian_consent_ref"),
        },
        field("purpose"),
    )
}

/// An app's name (`value`: what was typed, when a refused form is shown again).
pub fn app_name(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().app_name) input name="name" required maxlength=(AppName::MAX_CHARS) value=[value]; } }
}

/// An app's rate limit, checks per second (blank: none).
pub fn rate_per_second(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().rate_limit) input name="rate_per_second" type="number" min="0" max=(PolicyView::MAX_RATE_PER_SEC) step="any" value=[value]; } }
}

/// An app's alert threshold, percent.
pub fn alert_percent(lang: Lang, value: &str) -> Markup {
    html! { label { (lang.t().alert_percent) input name="alert_percent" type="number" min="0" max=(PolicyView::MAX_ALERT_PERCENT) value=(value); } }
}

/// An app's alert webhook (blank: none).
pub fn webhook_url(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().webhook) input name="webhook_url" type="url" maxlength=(PolicyView::MAX_WEBHOOK_URL_LEN) value=[value]; } }
}

/// Who is e-mailed an app's alerts (addresses separated by commas; blank: nobody).
pub fn alert_emails(lang: Lang, value: &str) -> Markup {
    html! { label { (lang.t().alert_emails) input name="alert_emails" type="text" inputmode="email" autocomplete="off" maxlength="2600" placeholder="ops@example.cn, …" value=(value); } }
}

/// The `pattern` of a package's name. Written without a `-` inside a character class:
/// browsers compile `pattern` with the `v` flag, under which a class's `-` must be
/// escaped in ways older engines refuse, and a pattern that does not compile silently
/// turns the browser's check off.
fn package_name_pattern() -> String {
    format!("(?:[A-Za-z0-9_]|-){{1,{}}}", PackageView::MAX_NAME_LEN)
}

/// A package's name: ASCII letters, digits, `-` and `_`.
pub fn package_name(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().package) input name="name" required maxlength=(PackageView::MAX_NAME_LEN) pattern=(package_name_pattern()) value=[value]; } }
}

/// A package's title (blank: made from its price and calls).
pub fn package_title(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().title) input name="title" maxlength=(PackageView::MAX_TITLE_CHARS) value=[value]; } }
}

/// The calls a package adds.
pub fn package_calls(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().calls_count) input name="calls" type="number" min=(PackageView::CALLS.start()) max=(PackageView::CALLS.end()) required value=[value]; } }
}

/// A package's validity in days (blank: forever).
pub fn package_valid_days(lang: Lang, value: Option<&str>) -> Markup {
    html! { label { (lang.t().valid_days) input name="valid_days" type="number" min=(PackageView::VALID_DAYS.start()) max=(PackageView::VALID_DAYS.end()) value=[value]; } }
}
