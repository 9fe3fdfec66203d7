//! The console's pages of refusal and failure, and what an operator is told when a use
//! case refuses (the wording of each kind of refusal is in `words`).

use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use renzheng_app::{AppError, ImportProblem, OperatorSession};

use super::i18n::Lang;
use super::layout::{html_page, Flash, Page};
use super::words;

/// The 404 page.
pub fn not_found(lang: Lang) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::NOT_FOUND,
        Page {
            lang,
            operator: None,
            active: "",
            title: t.not_found,
            flash: Vec::new(),
        },
        html! { p { a href="/console/overview" { (t.overview) } } },
    )
}

/// The 403 page of a refused form (a wrong CSRF token, another site's origin).
pub fn forbidden(lang: Lang) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::FORBIDDEN,
        Page {
            lang,
            operator: None,
            active: "",
            title: t.failed,
            flash: vec![Flash::error_because(t.csrf_refused, "csrf")],
        },
        html! {},
    )
}

/// The 403 page of a page or form beyond the operator's role (the role and what it may
/// do are named, so they know whom to ask).
pub fn not_allowed(lang: Lang, operator: &OperatorSession) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::FORBIDDEN,
        Page {
            lang,
            operator: Some(operator),
            active: "",
            title: t.not_allowed_title,
            flash: vec![Flash::error_because(
                words::not_allowed(lang, operator.role),
                "role",
            )],
        },
        html! {
            p { a href="/console/overview" { (t.overview) } }
        },
    )
}

/// The 409 page of a form sent again (a reload of its result, a double click, a replay):
/// nothing was done a second time; a link leads back to `page`, where the operator can
/// see what the first submission did.
pub fn already_sent(lang: Lang, operator: &OperatorSession, page: &str) -> Response {
    let t = lang.t();
    html_page(
        StatusCode::CONFLICT,
        Page {
            lang,
            operator: Some(operator),
            active: "",
            title: t.already_sent_title,
            flash: vec![Flash::error_because(t.already_sent, "sent-again")],
        },
        html! { p { a #back href=(page) { (t.back_to_page) } } },
    )
}

/// The page of a failure of ours (storage down, a bug): the detail goes to the log only.
pub fn failure(lang: Lang, operator: Option<&OperatorSession>, e: &AppError) -> Response {
    tracing::error!(error = %e, "console request failed");
    let t = lang.t();
    html_page(
        StatusCode::SERVICE_UNAVAILABLE,
        Page {
            lang,
            operator,
            active: "",
            title: t.failed,
            flash: vec![Flash::error_because(t.failed, "internal")],
        },
        html! {},
    )
}

/// Why an import refused an item, in the operator's language.
pub fn import_problem(lang: Lang, problem: &ImportProblem) -> String {
    let zh = lang == Lang::Zh;
    match problem {
        ImportProblem::NoCsvRow => words::pick(
            lang,
            "CSV 中没有此身份证号的行",
            "no CSV row for this ID number",
        )
        .into(),
        ImportProblem::Unreadable => {
            words::pick(lang, "无法读取此文件", "cannot read the file").into()
        }
        ImportProblem::Photo(reason) => words::portrait_refusal(lang, reason),
        ImportProblem::EngineFailed => words::pick(
            lang,
            "人脸引擎处理失败（原因见服务日志）",
            "the face engine failed (the server log says why)",
        )
        .into(),
        ImportProblem::NoUsablePhoto => words::pick(
            lang,
            "未录入：此人的照片都不可用",
            "not enrolled: none of the person's photos is usable",
        )
        .into(),
        ImportProblem::LinkNotFollowed => words::pick(
            lang,
            "控制台导入不跟随符号链接",
            "symbolic links are not followed in a console import",
        )
        .into(),
        ImportProblem::FileNameNotId(e) if zh => {
            format!("文件名不是有效的身份证号（{}）", words::id_number(e))
        }
        ImportProblem::FileNameNotId(e) => format!("its name is not a valid ID number ({e})"),
        ImportProblem::InvalidIdNumber(e) if zh => format!("身份证号无效：{}", words::id_number(e)),
        ImportProblem::InvalidIdNumber(e) => format!("invalid ID number: {e}"),
        ImportProblem::InvalidName(e) if zh => format!("姓名无效：{}", words::person_name(e)),
        ImportProblem::InvalidName(e) => format!("invalid name: {e}"),
        ImportProblem::NotEnrolled(e) if zh => format!("未录入：{}", refusal_text(lang, e)),
        ImportProblem::NotEnrolled(e) => format!("not enrolled: {}", refusal_text(lang, e)),
    }
}

/// What an operator is told when a use case refuses: its message (which never holds a
/// name, ID number or photo), or a generic one for failures of ours.
pub fn refusal_text(lang: Lang, e: &AppError) -> String {
    use renzheng_app::Against;
    match (e, lang) {
        (AppError::NameMismatch, Lang::Zh) => {
            return "该身份证号已以其他姓名录入，未作任何更改。如需更改姓名，请使用“更名”并填写原因。"
                .into()
        }
        (AppError::NameMismatch, Lang::En) => {
            return "This ID number is enrolled under another name; nothing was changed. To \
                    change the name, use Rename, with a reason."
                .into()
        }
        (
            AppError::PortraitMismatch {
                index,
                against,
                score,
            },
            lang,
        ) => {
            return match (lang, against) {
                (Lang::Zh, Against::OnRecord(id)) => format!(
                    "照片 {index} 与库中照片 #{id} 不是同一人（分数 {score:.3}），未保存任何内容。同一人员的照片必须都是本人；如需整体更换照片，请使用“更换照片”并填写原因。"
                ),
                (Lang::Zh, Against::Photo(n)) => format!(
                    "照片 {index} 与本次提交的照片 {n} 不是同一人（分数 {score:.3}），未保存任何内容。"
                ),
                (Lang::En, Against::OnRecord(id)) => format!(
                    "Photo {index} does not match portrait #{id} on record (score {score:.3}); \
                     nothing was stored. A person's portraits must all show them: to replace \
                     them, use Replace portraits, with a reason."
                ),
                (Lang::En, Against::Photo(n)) => format!(
                    "Photo {index} does not match photo {n} of this submission (score \
                     {score:.3}); nothing was stored."
                ),
            }
        }
        (
            AppError::DuplicateFace {
                index,
                other,
                handle,
                score,
            },
            lang,
        ) => {
            return match lang {
                Lang::Zh => format!(
                    "照片 {index} 的人脸已在身份证号 {other}（{handle}，分数 {score:.3}）下录入，未保存任何内容。若两个证号确属同一人，请勾选“允许一人多证”并填写原因。"
                ),
                Lang::En => format!(
                    "Photo {index}: this face is already enrolled under {other} ({handle}, \
                     score {score:.3}); nothing was stored. If both ID numbers really belong to \
                     one person, tick \"allow a duplicate face\" and give a reason."
                ),
            }
        }
        (AppError::ReasonRequired, Lang::Zh) => return "请填写原因。".into(),
        (AppError::ReasonRequired, Lang::En) => return "A reason is required.".into(),
        (AppError::BasisRequired, Lang::Zh) => {
            return "未记录处理人脸信息的合法性基础，未保存任何内容。请选择依据（单独同意、合同或法律法规）并填写同意书编号或法规名称。"
                .into()
        }
        (AppError::BasisRequired, Lang::En) => {
            return "No legal basis is recorded for this face; nothing was stored. Choose the \
                    basis (consent, contract or law) and give the consent's reference or the \
                    statute."
                .into()
        }
        (AppError::Basis(renzheng_domain::BasisError::GuardianConsentRequired), Lang::Zh) => {
            return "该身份证号持有人未满十四周岁：需填写父母或其他监护人同意的编号，未保存任何内容。"
                .into()
        }
        (AppError::Basis(renzheng_domain::BasisError::GuardianConsentRequired), Lang::En) => {
            return "The holder is under 14: a parent's or guardian's consent reference is \
                    required; nothing was stored."
                .into()
        }
        _ => {}
    }
    match e {
        AppError::Store(_) | AppError::Engine(_) | AppError::Internal(_) => {
            tracing::error!(error = %e, "console request failed");
            lang.t().failed.to_owned()
        }
        other => words::refusal(lang, other),
    }
}

/// The `data-reason` of a refusal's flash: what kind of refusal, for the page's script and
/// the tests.
pub fn refusal_reason(e: &AppError) -> &'static str {
    match e {
        AppError::NameMismatch => "name-mismatch",
        AppError::PortraitMismatch { .. } => "portrait-mismatch",
        AppError::DuplicateFace { .. } => "duplicate-face",
        AppError::ReasonRequired => "reason-required",
        AppError::BasisRequired => "basis-required",
        AppError::Basis(renzheng_domain::BasisError::GuardianConsentRequired) => {
            "guardian-consent-required"
        }
        AppError::Basis(_) => "invalid-basis",
        _ => "refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imports_refusals_are_words_in_chinese() {
        let bad = renzheng_domain::IdNumber::parse("110105194912310021").unwrap_err();
        let zh = import_problem(Lang::Zh, &ImportProblem::InvalidIdNumber(bad));
        assert!(zh.starts_with("身份证号无效："), "{zh}");
        assert!(!zh.contains("checksum"), "{zh}");
        let zh = import_problem(
            Lang::Zh,
            &ImportProblem::NotEnrolled(std::sync::Arc::new(AppError::NameMismatch)),
        );
        assert!(
            zh.starts_with("未录入：") && !zh.contains("enrolled under"),
            "{zh}"
        );
        assert_eq!(
            import_problem(Lang::Zh, &ImportProblem::NoCsvRow),
            "CSV 中没有此身份证号的行"
        );
    }
}
