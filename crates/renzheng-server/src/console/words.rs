//! The console's words for what the use cases and the engine say in codes: every kind of
//! refusal ([`refusal`]), the quality gate's issues ([`quality`]), the operator events
//! ([`event`]), the balance alerts ([`alert_kind`]), the fields a refusal names. The CLI and the JSON API keep their English sentences (`AppError`'s `Display`):
//! the console alone speaks the operator's language, so it words each variant itself,
//! and a new variant without words here falls back to the English sentence, never to a
//! blank.

use renzheng_app::rules::PortraitRefusal;
use renzheng_app::{AppError, ImportItem, PhotoError, Rule};
use renzheng_domain::{IdNumberError, PersonNameError};
use renzheng_store::{AttemptWindow, OperatorRole};

use super::i18n::Lang;

/// A quality issue's code (`face_too_small`…) as words; an unknown code as itself.
pub fn quality(lang: Lang, code: &str) -> String {
    let (zh, en) = match code {
        "face_too_small" => ("人脸过小", "face too small"),
        "blurry" => ("照片模糊", "blurry"),
        "too_dark" => ("光线过暗", "too dark"),
        "too_bright" => ("光线过亮", "too bright"),
        "extreme_pose" => ("头部偏转过大", "head turned too far"),
        "face_cut_off" => ("人脸不完整", "face cut off"),
        "low_confidence" => ("人脸置信度低", "low detection confidence"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

pub(crate) fn pick(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// An operator event's action (`app.created`…) as words; an unknown one as itself.
pub fn event(lang: Lang, action: &str) -> String {
    let (zh, en) = match action {
        "app.created" => ("创建应用", "app created"),
        "app.enabled" => ("启用应用", "app enabled"),
        "app.disabled" => ("停用应用", "app disabled"),
        "app.granted" => ("发放套餐", "package granted"),
        "app.grant-adjusted" => ("调整发放", "grant adjusted"),
        "app.test-email" => ("发送测试提醒邮件", "test alert e-mailed"),
        "console.totp-on" => ("开启两步验证", "two-step sign-in on"),
        "console.totp-off" => ("关闭两步验证", "two-step sign-in off"),
        "console.totp-reset" => ("重置操作员两步验证", "operator's two-step sign-in reset"),
        "app.grant-revoked" => ("撤销发放", "grant revoked"),
        "app.policy_set" => ("修改限流与提醒", "rate limit and alerts set"),
        "app.code_reset" => ("重置 AppCode", "AppCode reset"),
        "app.code-revealed" => ("查看 AppCode", "AppCode shown"),
        "app.secret_reset" => ("重置 AppKey/AppSecret", "AppKey/AppSecret reset"),
        "app.test-alert" => ("发送测试提醒", "test alert sent"),
        "package.saved" => ("保存套餐", "package saved"),
        "person.enrolled" => ("录入人员", "person enrolled"),
        "person.renamed" => ("更名", "person renamed"),
        "person.portraits-replaced" => ("更换照片", "portraits replaced"),
        "person.portrait-refused" => ("照片被拒", "portrait refused"),
        "person.basis-recorded" => ("记录合法性基础", "legal basis recorded"),
        "person.basis-refused" => ("缺少合法性基础被拒", "refused for want of a legal basis"),
        "person.duplicate-allowed" => ("允许一人多证", "duplicate face allowed"),
        "person.reembedded" => ("重新提取特征", "person re-embedded"),
        "person.removed" => ("删除人员", "person removed"),
        "person.purged" => ("保存期满删除", "person purged (retention)"),
        "registry.imported" => ("导入人员库", "registry imported"),
        "registry.duplicates-revealed" => ("查看重复人脸", "duplicate faces shown"),
        "compliance.filing-line-near" => ("接近备案线", "near the filing line"),
        "compliance.filing-line-reached" => ("达到备案线", "filing line reached"),
        "console.signed-in" => ("登录控制台", "signed in"),
        "console.signed-out" => ("退出控制台", "signed out"),
        "console.sign-in-refused" => ("登录被拒", "sign-in refused"),
        "console.session-revoked" => ("结束会话", "session ended"),
        "console.operator-added" => ("添加操作员", "operator added"),
        "console.operator-removed" => ("删除操作员", "operator removed"),
        "console.operator-role-set" => ("更改操作员角色", "operator role changed"),
        "console.password-set" => ("重设操作员密码", "operator password reset"),
        "console.password-changed" => ("修改自己的密码", "own password changed"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

/// A result code's name (1 to 8; anything else a dash).
pub fn result(lang: Lang, code: i64) -> &'static str {
    let t = lang.t();
    match code {
        1 => t.result_1,
        2 => t.result_2,
        3 => t.result_3,
        4 => t.result_4,
        5 => t.result_5,
        6 => t.result_6,
        7 => t.result_7,
        8 => t.result_8,
        _ => "–",
    }
}

/// A kind of operator event (the part of its action before the dot) as words.
pub fn event_kind(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "app" => ("应用", "apps"),
        "package" => ("套餐", "packages"),
        "person" => ("人员", "persons"),
        "registry" => ("人员库", "registry"),
        "console" => ("控制台登录", "console sign-ins"),
        "compliance" => ("合规", "compliance"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

/// A balance alert's kind (`low`, `exhausted`, `expiring`) as words.
pub fn alert_kind(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "low" => ("余量不足", "running low"),
        "exhausted" => ("已用完", "exhausted"),
        "expiring" => ("即将过期", "expiring soon"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

/// A field a refusal names, as the operator knows it.
fn field(lang: Lang, name: &str) -> String {
    let (zh, en) = match name {
        "name" => ("姓名", "name"),
        "idCard" | "id_number" | "idNumber" => ("身份证号", "ID number"),
        "image" | "photo" => ("照片", "photo"),
        "basis" => ("合法性基础", "legal basis"),
        "reason" => ("原因", "reason"),
        "from" => ("开始日期", "from"),
        "to" => ("结束日期", "to"),
        "package" => ("套餐", "package"),
        "calls" => ("次数", "calls"),
        "rate_per_sec" => ("限流（次/秒）", "rate limit (calls/s)"),
        "rate_burst" => ("突发上限", "burst"),
        "alert_percent" => ("余额提醒阈值 %", "alert threshold %"),
        "webhook_url" => ("提醒 Webhook", "alert webhook"),
        "package calls" => ("套餐次数", "package calls"),
        "package price_fen" => ("套餐价格（分）", "package price (fen)"),
        "package valid_days" => ("套餐有效天数", "package validity (days)"),
        "expires_at" => ("到期时间", "expiry"),
        "limit" => ("每页条数", "page size"),
        "result" => ("结果码", "result code"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

/// What the use case's `kind` of thing (`app`, `package`…) is called.
fn thing(lang: Lang, kind: &str) -> String {
    let (zh, en) = match kind {
        "app" => ("应用", "app"),
        "package" => ("套餐", "package"),
        "person" => ("人员", "person"),
        "grant" => ("发放记录", "grant"),
        "session" => ("会话", "session"),
        "operator" => ("操作员", "operator"),
        "totp" => ("两步验证", "two-step sign-in"),
        "totp setup" => ("待确认的两步验证设置", "two-step setup"),
        other => return other.to_owned(),
    };
    pick(lang, zh, en).to_owned()
}

pub(crate) fn id_number(e: &IdNumberError) -> String {
    match e {
        IdNumberError::Length(n) => format!("身份证号应为 18 位（旧号 15 位数字），实际 {n} 位"),
        IdNumberError::Characters { position } => format!("第 {position} 位字符不合法"),
        IdNumberError::Checksum => "校验位不正确（是否输错了某一位？）".into(),
        IdNumberError::ImpossibleDate => "出生日期不是有效日期".into(),
        IdNumberError::FutureDate => "出生日期晚于今天".into(),
        IdNumberError::TooOld => "出生日期早于 1900 年".into(),
        IdNumberError::UnknownRegion => "地区码不存在".into(),
        other => other.to_string(),
    }
}

pub(crate) fn person_name(e: &PersonNameError) -> String {
    match e {
        PersonNameError::Empty => "姓名为空".into(),
        PersonNameError::TooLong(n) => format!(
            "姓名有 {n} 个字符，超过 {} 个的上限",
            renzheng_domain::MAX_NAME_CHARS
        ),
        PersonNameError::Digits => "姓名含有数字".into(),
        PersonNameError::ControlCharacter => "姓名含有控制字符或不可见字符".into(),
        PersonNameError::InvalidCharacter => "姓名含有非文字字符".into(),
        other => other.to_string(),
    }
}

fn photo(e: &PhotoError) -> String {
    match e {
        PhotoError::Base64 => "不是有效的 base64".into(),
        PhotoError::DataUri => "data: URI 形式的照片必须是 base64 编码".into(),
        PhotoError::Empty => "照片为空".into(),
        PhotoError::TooLarge { size, limit } => {
            format!("照片 {size} 字节，超过 {limit} 字节的上限")
        }
        PhotoError::NotAnImage => "不是图片（无法识别的格式）".into(),
        PhotoError::Unsupported(format) => {
            format!("不支持的图片格式 {format}，请使用 JPEG、PNG、WebP 或 BMP")
        }
        PhotoError::Decode(e) => format!("无法解码：{e}"),
    }
}

/// Why a photo cannot be a portrait, in the operator's language.
pub fn portrait_refusal(lang: Lang, reason: &PortraitRefusal) -> String {
    match (lang, reason) {
        (Lang::Zh, PortraitRefusal::NoFace) => "未检测到人脸".into(),
        (Lang::Zh, PortraitRefusal::Quality(issues)) => {
            let words: Vec<String> = issues.iter().map(|i| quality(lang, i.as_str())).collect();
            format!("照片质量不合格：{}", words.join("、"))
        }
        (Lang::Zh, PortraitRefusal::RivalFaces(n)) => {
            format!("照片中有 {n} 张大小相近的人脸，录入照片只能有一个人")
        }
        (Lang::Zh, PortraitRefusal::UnusableImage(e)) => format!("无法读取的图片：{e}"),
        (Lang::En, PortraitRefusal::Quality(issues)) => {
            let words: Vec<String> = issues.iter().map(|i| quality(lang, i.as_str())).collect();
            format!("photo quality too low: {}", words.join(", "))
        }
        (Lang::En, other) => other.to_string(),
    }
}

/// A role's name.
pub fn role(lang: Lang, role: OperatorRole) -> &'static str {
    match (lang, role) {
        (Lang::Zh, OperatorRole::Owner) => "所有者",
        (Lang::Zh, OperatorRole::Admin) => "管理员",
        (Lang::Zh, OperatorRole::Auditor) => "审计员",
        (Lang::En, role) => role.as_str(),
    }
}

/// What a role may do, in a line.
pub fn role_may(lang: Lang, role: OperatorRole) -> &'static str {
    match (lang, role) {
        (Lang::Zh, OperatorRole::Owner) => "全部操作，包括操作员和密钥",
        (Lang::Zh, OperatorRole::Admin) => "应用、套餐、发放、人员库和重复人脸的处理",
        (Lang::Zh, OperatorRole::Auditor) => "查看调用记录、操作记录、用量、告警和合规报告（只读）",
        (Lang::En, OperatorRole::Owner) => "everything, operators and keys included",
        (Lang::En, OperatorRole::Admin) => {
            "apps, packages, grants, the registry and duplicate overrides"
        }
        (Lang::En, OperatorRole::Auditor) => {
            "read calls, events, usage, alerts and compliance reports (read only)"
        }
    }
}

/// The refusal of a page or form beyond the operator's role.
pub fn not_allowed(lang: Lang, role: OperatorRole) -> String {
    match lang {
        Lang::Zh => format!(
            "你的角色（{}）不能使用此页面或执行此操作。{}可以：{}。如需更多权限，请联系所有者。",
            self::role(lang, role),
            self::role(lang, role),
            role_may(lang, role)
        ),
        Lang::En => format!(
            "Your role ({}) cannot use this page or do this. An {} may do: {}. Ask an owner for more.",
            self::role(lang, role),
            self::role(lang, role),
            role_may(lang, role)
        ),
    }
}

/// What an import refused, in the operator's language.
pub fn import_item(lang: Lang, item: &ImportItem) -> String {
    match (lang, item) {
        (Lang::Zh, ImportItem::CsvLine { line, id: Some(id) }) => {
            format!("CSV 第 {line} 行（{id}）")
        }
        (Lang::Zh, ImportItem::CsvLine { line, id: None }) => format!("CSV 第 {line} 行"),
        (Lang::Zh, ImportItem::UnnamedPhoto) => "一个照片文件".into(),
        (Lang::Zh, ImportItem::Link) => "一个符号链接".into(),
        // English, and a file name in either language: the item's own words.
        _ => item.to_string(),
    }
}

/// A broken rule in Chinese (English: its own sentence).
fn rule(lang: Lang, rule: &Rule) -> String {
    if lang == Lang::En {
        return rule.to_string();
    }
    match rule {
        Rule::Range { field, min, max } => {
            format!("{}应为 {min} 到 {max}", self::field(lang, field))
        }
        Rule::TooLong { field, max } => {
            format!("{}最多 {max} 个字符", self::field(lang, field))
        }
        Rule::InPast(field) => format!("{}已经过去", self::field(lang, field)),
        Rule::WebhookNotHttp => "提醒 Webhook 应为 http(s) 网址".into(),
        Rule::WebhookNotPublic => {
            "提醒 Webhook 应指向公网地址（或 img_url.allow 中允许的网段）".into()
        }
        Rule::BurstNeedsRate => "设置突发上限时须同时设置限流".into(),
        Rule::TooManyEmails(max) => format!("提醒邮件收件人最多 {max} 个"),
        Rule::PackageRetired(name) => format!("套餐 {name} 已下架，不能再发放"),
        Rule::PackageOrCalls => "请选择一个套餐，或填写发放次数（二者选一）".into(),
        Rule::NothingToChange => "没有要更改的内容：请填写次数或到期日".into(),
        Rule::ExpiryAndNever => "到期日与“永不过期”只能选一个".into(),
        Rule::NotADate(_) => "日期格式应为 YYYY-MM-DD".into(),
        Rule::SameName => "此人的姓名已经是这个名字".into(),
        other => other.to_string(),
    }
}

/// A use case's refusal in the operator's language (the failures of ours are worded by
/// the caller, which also logs them).
pub fn refusal(lang: Lang, e: &AppError) -> String {
    if lang == Lang::En {
        return match e {
            AppError::PortraitRefused { index, reason } => format!(
                "Photo {index} refused: {}; nothing was stored.",
                portrait_refusal(lang, reason)
            ),
            AppError::MissingField(f) => format!("missing required field: {}", field(lang, f)),
            AppError::NotFound(kind) => format!("{} not found", thing(lang, kind)),
            other => other.to_string(),
        };
    }
    match e {
        AppError::Unauthorized => "未授权".into(),
        AppError::UnknownAppKey => "AppKey 无效".into(),
        AppError::TimedOut => "请求超时".into(),
        AppError::MissingField(f) => format!("缺少必填项：{}", field(lang, f)),
        AppError::MissingPhoto => "缺少照片（image 或 imgUrl）".into(),
        AppError::InvalidName(e) => format!("姓名无效：{}", person_name(e)),
        AppError::InvalidIdNumber(e) => format!("身份证号无效：{}", id_number(e)),
        AppError::InvalidImage(e) => format!("照片无效：{}", photo(e)),
        AppError::ImgUrl(e) => format!("imgUrl 无法使用：{e}"),
        AppError::InvalidAppName(m) => format!("应用名称无效：{m}"),
        AppError::PortraitRefused { index, reason } => format!(
            "照片 {index} 不能录入：{}，未保存任何内容。",
            portrait_refusal(lang, reason)
        ),
        AppError::NotFound(kind) => format!("{}不存在", thing(lang, kind)),
        AppError::CodeNotViewable => {
            "此 AppCode 签发于旧版本，只保存了它的哈希，无法再次查看；重置后新的 AppCode 可以随时查看。"
                .into()
        }
        AppError::Throttled { .. } => "请求过于频繁，请稍后再试".into(),
        AppError::QuotaExhausted => "额度已用完".into(),
        AppError::QuotaExpired => "额度已过期".into(),
        AppError::TooManyAttempts { window, .. } => match window {
            AttemptWindow::Minute => "该身份证号本分钟内查验次数过多，请稍后再试".into(),
            AttemptWindow::Day => "该身份证号今日查验次数过多，请明天再试".into(),
        },
        AppError::SignInRefused => lang.t().wrong_credentials.into(),
        AppError::LastOwner => {
            "最后一位所有者不能被删除或改为其他角色：请先把另一位操作员设为所有者。".into()
        }
        AppError::OperatorExists => "已有同名的操作员".into(),
        AppError::TotpAlreadyOn => "两步验证已开启，如需更换请先关闭".into(),
        AppError::WrongTotpCode => {
            "动态码不正确（请输入身份验证器应用当前显示的 6 位数字；每个动态码只能使用一次）".into()
        }
        AppError::GrantRevoked => "这笔发放已撤销，不能再更改；如需额度请重新发放".into(),
        AppError::GrantBelowCommitted { floor } => {
            format!("次数不能少于已扣费和正在占用的次数（{floor} 次）")
        }
        AppError::InvalidEmail(text) => format!("“{text}”不是有效的电子邮件地址"),
        AppError::NoSmtpRelay => {
            "本服务未配置发信服务器（alerts.smtp_url 与 alerts.email_from），无法发送提醒邮件".into()
        }
        AppError::InvalidOperatorName => {
            "操作员名称为 1 到 64 个字符，不含控制字符，首尾不能有空格".into()
        }
        AppError::WeakPassword { min } => format!("控制台密码至少 {min} 个字符"),
        AppError::WrongPassword => "当前密码不正确".into(),
        AppError::NonceUsed => "Nonce 已被使用".into(),
        AppError::Invalid(m) => format!("请求无效：{m}"),
        AppError::Rule(rule) => self::rule(lang, rule),
        AppError::Busy { .. } => "服务繁忙，请稍后再试".into(),
        AppError::Import(m) => format!("导入失败：{m}"),
        AppError::Keys(m) => format!("密钥：{m}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use renzheng_vision::QualityIssue;

    use super::*;

    #[test]
    fn import_lines_are_words_in_chinese() {
        let item = ImportItem::CsvLine {
            line: 3,
            id: Some("110105********0022".into()),
        };
        assert_eq!(
            import_item(Lang::Zh, &item),
            "CSV 第 3 行（110105********0022）"
        );
        assert_eq!(
            import_item(Lang::En, &item),
            "CSV line 3 (110105********0022)"
        );
    }

    #[test]
    fn broken_rules_are_words_in_chinese() {
        let range = AppError::Rule(Rule::Range {
            field: "alert_percent",
            min: "0".into(),
            max: "100".into(),
        });
        assert_eq!(refusal(Lang::Zh, &range), "余额提醒阈值 %应为 0 到 100");
        assert_eq!(
            range.to_string(),
            "invalid request: alert_percent must be 0 to 100"
        );
        assert_eq!(
            refusal(Lang::Zh, &AppError::Rule(Rule::InPast("expires_at"))),
            "到期时间已经过去"
        );
        assert!(refusal(Lang::En, &range).contains("alert_percent must be 0 to 100"));
    }

    #[test]
    fn refusals_and_quality_codes_are_words_in_chinese() {
        let refused = AppError::PortraitRefused {
            index: 2,
            reason: PortraitRefusal::Quality(vec![
                QualityIssue::FaceTooSmall,
                QualityIssue::Blurry,
            ]),
        };
        let zh = refusal(Lang::Zh, &refused);
        assert_eq!(
            zh,
            "照片 2 不能录入：照片质量不合格：人脸过小、照片模糊，未保存任何内容。"
        );
        assert!(refusal(Lang::En, &refused).contains("face too small, blurry"));
        let id = renzheng_domain::IdNumber::parse("11010519491231002Y").unwrap_err();
        let zh = refusal(Lang::Zh, &AppError::InvalidIdNumber(id));
        assert!(zh.starts_with("身份证号无效："), "{zh}");
        assert!(!zh.is_ascii());
        assert_eq!(refusal(Lang::Zh, &AppError::NotFound("app")), "应用不存在");
        assert_eq!(quality(Lang::Zh, "face_too_small"), "人脸过小");
        assert_eq!(quality(Lang::En, "too_dark"), "too dark");
        assert_eq!(quality(Lang::Zh, "new_code"), "new_code");
        assert_eq!(event(Lang::Zh, "app.granted"), "发放套餐");
        assert_eq!(event(Lang::En, "x.y"), "x.y");
        assert_eq!(alert_kind(Lang::Zh, "exhausted"), "已用完");
    }
}
