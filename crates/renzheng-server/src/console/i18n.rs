//! The console's words in Chinese (the default) and English. One struct, two values:
//! a text missing in either language is a compile error, not a blank on a page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::cookie::cookie;

/// The console's languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 简体中文 (default).
    Zh,
    /// English.
    En,
}

/// The cookie remembering the chosen language (not a secret, not personal).
pub const LANG_COOKIE: &str = "renzheng_lang";

impl Lang {
    /// The `lang` attribute of the page.
    pub fn html_lang(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The texts of this language.
    pub fn t(self) -> &'static Texts {
        match self {
            Lang::Zh => &ZH,
            Lang::En => &EN,
        }
    }

    /// `zh` / `en` as in URLs and the cookie.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// Parses `zh` / `en`.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(cookie(&parts.headers, LANG_COOKIE)
            .and_then(|v| Lang::parse(&v))
            .unwrap_or(Lang::Zh))
    }
}

macro_rules! texts {
    ($($key:ident: $zh:expr, $en:expr;)*) => {
        /// Every text of the console.
        #[allow(missing_docs)]
        pub struct Texts { $(pub $key: &'static str,)* }
        /// 简体中文.
        pub static ZH: Texts = Texts { $($key: $zh,)* };
        /// English.
        pub static EN: Texts = Texts { $($key: $en,)* };
    };
}

texts! {
    product: "人证 控制台", "Renzheng console";
    overview: "概览", "Overview";
    apps: "应用", "Apps";
    packages: "套餐", "Packages";
    calls: "调用记录", "Call history";
    registry: "人员库", "Registry";
    try_it: "试一试", "Try it";
    about: "关于", "About";
    sign_in: "登录", "Sign in";
    sign_out: "退出", "Sign out";
    operator: "操作员", "Operator";
    password: "密码", "Password";
    signed_in_as: "已登录", "Signed in as";
    wrong_credentials: "操作员或密码错误", "Wrong operator name or password";
    session_expired: "会话已过期，请重新登录", "Your session has expired: sign in again";
    too_many_attempts: "尝试次数过多，请稍后再试", "Too many attempts: try again later";
    csrf_refused: "请求无效（表单已过期或来自其他站点）。请刷新页面后重试。", "Refused: the form is stale or came from another site. Reload the page and retry.";
    already_sent_title: "表单已提交过", "Form already sent";
    already_sent: "这张表单已经提交过一次（刷新或重复点击），本次未再执行任何操作。请回到页面查看第一次提交的结果。", "This form was already sent once (a reload or a second click); nothing was done again. Go back to the page to see what the first submission did.";
    back_to_page: "返回页面", "Back to the page";
    app_created: "应用已创建", "App created";
    confirm_disable: "停用后该应用的所有调用都将被拒绝。确定停用应用", "A disabled app's every call is refused. Disable the app";
    confirm_grant: "确定为所选应用发放所选套餐？", "Grant the chosen package to the chosen app?";
    code_reset: "AppCode 已重置", "AppCode reset";
    secret_reset: "AppKey / AppSecret 已重置", "AppKey / AppSecret reset";
    package_saved: "套餐已保存", "Package saved";
    skip_to_content: "跳到主要内容", "Skip to the content";
    rate_not_number: "限流必须是数字", "the rate limit must be a number";
    alert_percent_range: "提醒阈值必须是 0 到 100", "the alert threshold must be 0 to 100";
    calls_whole: "次数必须是整数", "calls must be a whole number";
    price_format: "价格以元为单位，最多两位小数", "the price must be in 元, at most 2 decimals";
    valid_days_whole: "有效天数必须是整数", "valid days must be a whole number";
    reveal_code: "查看 AppCode", "Show AppCode";
    code_revealed: "AppCode（本次查看已记录）", "AppCode (this view is recorded)";
    confirm_reset_code: "重置 AppCode：旧 AppCode 在所选宽限期结束后失效，使用它的客户端需要换用新 AppCode。确定重置应用", "Reset the AppCode: the old one stops working when the chosen grace period ends, and clients using it must switch to the new one. Reset the AppCode of";
    code_grace: "旧 AppCode 宽限期", "Old AppCode keeps working";
    grace_none: "立即失效", "stops now";
    grace_hour: "1 小时", "1 hour";
    grace_day: "1 天", "1 day";
    grace_week: "7 天", "7 days";
    grace_month: "30 天", "30 days";
    grace_invalid: "宽限期必须是 0 到 720 小时", "the grace period must be 0 to 720 hours";
    old_code_until: "旧 AppCode 可用至", "old AppCode works until";
    chart_data: "数据表", "Data table";
    total: "合计", "Total";
    alerts: "提醒", "Alerts";
    alerts_note: "余量不足（低于应用的提醒阈值）、用完和即将过期时各记录一次提醒（每天至多一次），并推送到应用的 webhook；短信、邮件网关可通过 webhook 接入。", "An alert is recorded when an app runs low (below its threshold), runs out, or has calls about to expire (once a day at most), and posted to the app's webhook; SMS and e-mail gateways connect through the webhook.";
    alert_kind: "类型", "Kind";
    not_delivered: "未送达", "not delivered";
    attempts: "次尝试", "attempts";
    events: "操作记录", "Events";
    event_kind: "类别", "Kind";
    bad_date: "日期格式应为 YYYY-MM-DD，该条件未生效", "A date is YYYY-MM-DD; that filter was not applied";
    attention: "需要关注的应用", "Apps that need attention";
    see_alerts: "查看提醒记录", "See the alert history";
    result_1: "同一人", "same person";
    result_2: "无法确定", "can't tell";
    result_3: "不同人", "different person";
    result_4: "姓名与号码不符", "name and ID don't match";
    result_5: "库中无照片", "no portrait on record";
    result_6: "人脸检测失败", "no face found";
    result_7: "库中无此号", "no such ID";
    result_8: "照片质量不合格", "photo quality unqualified";
    search_by_id: "按身份证号查找调用", "Find calls by ID number";
    search_by_id_note: "身份证号以表单提交，不会出现在网址中。", "The number is posted, never put in the URL.";
    searched_by_id: "该身份证号的最近调用", "The newest calls about this ID number";
    times_in: "时间均为", "Times are in";
    console_try: "控制台试一试", "console try-it";
    grants: "发放记录", "Grants";
    used: "已用", "Used";
    expired: "已过期", "expired";
    settings: "设置", "Settings";
    recent_calls: "最近调用", "Latest calls";
    all_calls: "全部调用记录", "All calls";
    custom_grant: "自定义", "custom";
    expires_on: "有效期至（含当天，留空为永久）", "Expires after (that day included; blank: never)";
    grant_calls: "发放次数", "Grant calls";
    confirm_grant_to: "确定发放给应用", "Grant to the app";
    adjust: "调整", "Adjust";
    revoke_grant: "撤销", "Revoke";
    revoked: "已撤销", "revoked";
    confirm_revoke_grant: "撤销后这笔发放未使用的次数将被收回（正在进行的查验仍会扣费），且不能恢复。确定撤销应用的这笔发放", "A revoked grant's unused calls are taken back (checks already under way are still charged), for good. Revoke this grant of the app";
    grant_adjusted: "发放已调整", "Grant adjusted";
    grant_revoked: "发放已撤销，收回次数", "Grant revoked, calls taken back";
    grant_unchanged: "未作任何更改", "Nothing changed";
    account: "我的账户", "My account";
    sessions: "登录会话", "Sessions";
    sessions_note: "本操作员当前有效的登录会话。在别处（其他浏览器、丢失的电脑）登录的会话可在此结束。", "This operator's live sessions. A session signed in elsewhere (another browser, a lost laptop) can be ended here.";
    signed_in_at: "登录时间", "Signed in";
    idle_until: "空闲失效于", "Lapses if idle at";
    ends_at: "最迟结束于", "Ends at the latest";
    this_session: "当前会话", "this session";
    revoke: "结束会话", "End session";
    revoke_confirm: "结束该会话？在那里需要重新登录。", "End that session? It will have to sign in again.";
    session_revoked: "会话已结束", "Session ended";
    alert_emails: "提醒邮件收件人（逗号分隔）", "Alert e-mail recipients (comma-separated)";
    not_allowed_title: "无权操作", "Not allowed";
    operators: "操作员", "Operators";
    role: "角色", "Role";
    role_owner: "所有者", "owner";
    role_admin: "管理员", "admin";
    role_auditor: "审计员", "auditor";
    roles_note: "所有者：全部操作，包括操作员和密钥；管理员：应用、套餐、发放、人员库和重复人脸；审计员：只读（调用记录、操作记录、用量、告警、合规报告）。始终至少有一位所有者。", "Owner: everything, operators and keys included; admin: apps, packages, grants, the registry and duplicate faces; auditor: read only (calls, events, usage, alerts, compliance reports). There is always at least one owner.";
    add_operator: "添加操作员", "Add an operator";
    operator_added: "操作员已添加", "Operator added";
    operator_removed: "操作员已删除", "Operator removed";
    role_set: "角色已更改", "Role changed";
    password_reset: "密码已重设，该操作员的所有会话已结束", "Password reset; every session of that operator has ended";
    set_role: "更改角色", "Change role";
    new_password: "新密码（至少 12 个字符）", "New password (12 characters at least)";
    repeat_password: "再次输入新密码", "New password again";
    current_password: "当前密码", "Current password";
    change_password: "修改密码", "Change password";
    reset_password: "重设密码", "Reset password";
    password_changed: "密码已修改，其他会话已结束", "Password changed; your other sessions have ended";
    two_step: "两步验证", "Two-step sign-in";
    own_password_on_account: "自己的密码请在“我的账户”中凭当前密码修改", "Change your own password on My account, with the current one";
    two_step_code: "两步验证码（已开启时填写）", "Two-step code (if turned on)";
    two_step_off_note: "登录时除密码外，还需输入手机身份验证器应用（如 Google Authenticator、Microsoft Authenticator、FreeOTP）中的 6 位动态码。", "Signing in then takes, beside the password, the 6-digit code of an authenticator app on your phone (Google Authenticator, Microsoft Authenticator, FreeOTP…).";
    two_step_on_since: "已开启，开启时间", "On since";
    two_step_start: "开启两步验证", "Turn on two-step sign-in";
    two_step_scan: "用身份验证器应用扫描二维码（或手动输入下面的密钥），再输入应用显示的 6 位动态码以确认。此密钥只显示这一次。", "Scan the QR code with your authenticator app (or type the key below into it), then enter the 6-digit code it shows to confirm. The key is shown this once.";
    two_step_secret: "密钥", "Key";
    two_step_confirm: "确认开启", "Confirm";
    two_step_started: "已生成新的密钥：扫描后在下方输入动态码确认", "A new key was made: scan it, then confirm with a code below";
    two_step_turned_on: "两步验证已开启，其他会话已结束", "Two-step sign-in is on; your other sessions have ended";
    two_step_turn_off: "关闭两步验证", "Turn off two-step sign-in";
    two_step_turned_off: "两步验证已关闭", "Two-step sign-in is off";
    two_step_code_label: "动态码", "Code";
    two_step_reset: "关闭其两步验证", "Turn their two-step off";
    two_step_reset_confirm: "该操作员将只凭密码登录（例如手机丢失后），确定关闭其两步验证", "They will sign in with their password alone (a lost phone, say). Turn off two-step sign-in of";
    two_step_was_reset: "已关闭该操作员的两步验证", "Two-step sign-in turned off for";
    passwords_differ: "两次输入的新密码不一致", "The two new passwords differ";
    remove_operator: "删除", "Remove";
    remove_operator_confirm: "删除该操作员？其所有会话将立即结束。", "Remove that operator? Their sessions end at once.";
    you: "（你）", "(you)";
    updated_at: "最近更改", "Last changed";
    created: "创建时间", "Created";
    not_found: "页面不存在", "Page not found";
    failed: "操作失败", "Failed";
    saved: "已保存", "Saved";
    copy: "复制", "Copy";
    // Overview
    last_days: "最近 14 天", "Last 14 days";
    checks_by_result: "每日调用（按结果码）", "Checks per day by result code";
    checks_by_status: "每日调用（按状态）", "Checks per day by status";
    latency: "耗时", "Latency";
    latency_note: "取样最近调用数", "calls sampled (newest)";
    total_checks: "调用总数", "Checks";
    ok_2xx: "成功 (2xx)", "Answered (2xx)";
    refused_4xx: "拒绝 (4xx)", "Refused (4xx)";
    failed_5xx: "错误 (5xx)", "Errors (5xx)";
    remaining_quota: "各应用剩余次数", "Remaining calls per app";
    remaining: "剩余", "Remaining";
    purchased: "已购", "Purchased";
    no_data: "暂无数据", "No data yet";
    recent_events: "最近的操作记录", "Recent operator events";
    who: "操作者", "Who";
    what: "操作", "What";
    target: "对象", "Target";
    // Apps
    create_app: "创建应用", "Create an app";
    app_name: "应用名称", "App name";
    create: "创建", "Create";
    secret_once: "请立即保存：页面刷新后不再显示。AppSecret 无法再次查看；AppCode 可由管理员再次查看（每次查看都会记录）。", "Save these now: they are not shown again on this page. An AppSecret cannot be shown again; an AppCode can be, by an admin (each view is recorded).";
    app_id: "应用 ID", "App id";
    status: "状态", "Status";
    enabled: "启用", "Enabled";
    disabled: "已停用", "Disabled";
    disable: "停用", "Disable";
    enable: "启用", "Enable";
    reset_code: "重置 AppCode", "Rotate AppCode";
    rate_limit: "限流（次/秒）", "Rate limit (per second)";
    alert_percent: "余额提醒阈值 %", "Alert threshold %";
    webhook: "提醒 Webhook", "Alert webhook";
    save_policy: "保存策略", "Save policy";
    test_alert: "发送测试提醒", "Send a test alert";
    test_alert_sent: "测试提醒已送达", "Test alert delivered";
    test_alert_failed: "测试提醒未送达", "Test alert not delivered";
    no_test_target: "此应用既没有提醒 Webhook，也没有可发送的提醒邮件收件人", "The app has neither an alert webhook nor alert e-mail recipients mail can go to";
    test_email_sent: "测试提醒邮件已交给发信服务器", "Test alert e-mail handed to the SMTP relay";
    test_email_failed: "测试提醒邮件未发出（原因见服务日志）", "Test alert e-mail not sent (the server log says why)";
    new_code_once: "新的 AppCode（只显示这一次）", "New AppCode (shown only this once)";
    created_at: "创建时间", "Created";
    actions: "操作", "Actions";
    // Packages
    catalogue: "套餐目录", "Catalogue";
    package: "套餐", "Package";
    title: "名称", "Title";
    calls_count: "次数", "Calls";
    calls_unit: " 次", " calls";
    price_yuan: "价格（元）", "Price (元)";
    valid_days: "有效天数", "Valid days";
    active: "在售", "On sale";
    save_package: "保存套餐", "Save package";
    grant: "发放套餐", "Grant a package";
    grant_button: "发放", "Grant";
    granted: "已发放", "Granted";
    balances: "余额与有效期", "Balances and expiries";
    expires: "到期", "Expires";
    never: "永不", "never";
    app: "应用", "App";
    // Calls
    filter: "筛选", "Filter";
    from: "从", "From";
    to: "到", "To";
    result: "结果", "Result";
    any: "全部", "Any";
    time: "时间", "Time";
    name: "姓名", "Name";
    id_card: "身份证号", "ID number";
    score: "分数", "Score";
    http_status: "HTTP 状态", "HTTP status";
    charged: "计费", "Charged";
    latency_ms: "耗时 ms", "Latency ms";
    export_csv: "导出 CSV", "Export CSV";
    next_page: "下一页", "Next page";
    usage_per_day: "每日用量", "Usage per day";
    date: "日期", "Date";
    succeeded: "成功", "Succeeded";
    errors: "错误", "Errors";
    // Registry
    lookup: "查询人员", "Look up a person";
    id_number: "身份证号", "ID number";
    find: "查询", "Find";
    not_in_registry: "库中无此号", "No such ID number in the registry";
    portraits: "照片数", "Portraits";
    enrol: "录入人员", "Enrol a person";
    photos: "照片", "Photos";
    enrolled: "已录入", "Enrolled";
    remove: "删除人员", "Remove a person";
    remove_confirm: "我确认删除此人的全部数据（不可恢复）", "I confirm: remove everything about this person (cannot be undone)";
    remove_button: "删除", "Remove";
    removed: "已删除", "Removed";
    confirm_required: "请勾选确认", "Tick the confirmation first";
    import: "导入文件夹", "Import a folder";
    folder: "服务器上的文件夹路径", "Folder path on the server";
    import_button: "开始导入", "Start import";
    import_running: "导入中", "Importing";
    import_done: "导入完成", "Import finished";
    import_failed: "导入失败", "Import failed";
    refused_items: "被拒绝的项目", "Refused items";
    persons: "人员", "Persons";
    reembed: "切换模型包后重新提取特征", "Re-embed after a model-pack switch";
    reembed_intro: "为缺少当前模型包特征的人员，用保存的照片（keep_photos）计算特征。", "Computes the active pack's embeddings from kept photos (keep_photos) for everyone who lacks them.";
    reembed_button: "重新提取", "Re-embed";
    without_embeddings: "缺少当前模型包特征的人员", "Persons without an embedding of the active pack";
    person_count: "库中人员", "Persons enrolled";
    persons_list: "人员列表", "Enrolled persons";
    handle: "编号", "Handle";
    enrolled_at: "录入时间", "Enrolled";
    page: "页码", "Page";
    prev_page: "上一页", "Previous page";
    search: "搜索人员", "Search the registry";
    search_query: "完整身份证号、编号（p-…）或完整姓名", "Full ID number, handle (p-…) or exact name";
    search_button: "搜索", "Search";
    search_results: "搜索结果", "Search results";
    no_match: "没有匹配的人员", "No matching person";
    allow_duplicate_face: "允许一人多证", "Allow a duplicate face";
    compliance: "合规", "Compliance";
    persons_with_face_data: "存储人脸信息的人数 / 备案线", "Persons with face data / filing line";
    filing_line: "备案线（10 万人）", "Filing line (100,000 persons)";
    reached_on: "达到日期", "reached on";
    filing_due: "应在 30 个工作日内向省级网信部门备案", "a filing with the provincial CAC is due within 30 working days";
    not_reached: "未达到", "not reached";
    without_basis: "未记录合法性基础的人员", "Persons without a recorded legal basis";
    oldest_face_data: "最早的人脸信息录入于", "Oldest face data enrolled on";
    registry_retention: "人员保存期限（录入后 / 无核验）", "Registry retention (after enrolment / without a check)";
    retention_off: "未设置（保存至删除）", "off (kept until removed)";
    retention_days_unit: "天", "days";
    past_retention: "已超期待清除", "past retention, to purge";
    oldest_past_retention: "最早录入于", "the oldest enrolled on";
    records_kept: "处理记录保存", "Processing records kept";
    records_forever: "永久", "for ever";
    days: "天", "days";
    basis_legend: "处理人脸信息的合法性基础", "Legal basis for the face";
    basis_kind: "依据", "Basis";
    basis_none: "（沿用已记录的依据）", "(keep the basis on record)";
    basis_consent: "个人单独同意", "Separate consent";
    basis_contract: "合同", "Contract";
    basis_law: "法律、行政法规", "Statute or regulation";
    consent_ref: "同意书或合同编号", "Consent or contract reference";
    law_ref: "法律法规名称及条款", "Statute and article";
    guardian_consent_ref: "监护人同意编号（不满十四周岁）", "Guardian's consent reference (under 14)";
    purpose: "处理目的（留空用默认）", "Purpose (blank: the default)";
    basis_hint: "录入人脸前必须记录合法性基础；不满十四周岁者以同意或合同为依据时，还须有父母或其他监护人的同意。", "A legal basis must be recorded before a face is stored; for a holder under 14 on consent or contract, a parent's or guardian's consent too.";
    basis_on_record: "合法性基础", "Legal basis";
    basis_missing: "未记录", "none recorded";
    record_basis: "补录合法性基础", "Record a legal basis";
    request_ref: "个人请求编号（撤回同意、删除请求；可选）", "Data subject's request reference (withdrawn consent, deletion request; optional)";
    record_basis_intro: "为此前录入、尚无记录的人员补录依据，或更新依据（如新的同意书）。", "For persons enrolled before bases were recorded, or to renew one (a new consent).";
    basis_recorded: "已记录合法性基础", "Legal basis recorded";
    reason: "原因", "Reason";
    reason_hint: "勾选“允许一人多证”时必须填写原因；原因会记入操作记录。", "A reason is required when \"allow a duplicate face\" is ticked; it is kept in the operator events.";
    person_ref: "身份证号或编号（p-…）", "ID number or handle (p-…)";
    rename: "更名", "Rename";
    rename_intro: "更改已录入人员的姓名。必须填写原因，原因会记入操作记录。", "Changes an enrolled person's name. A reason is required and kept in the operator events.";
    new_name: "新姓名", "New name";
    renamed: "已更名", "Renamed";
    replace: "更换照片", "Replace portraits";
    replace_intro: "用新照片整体替换此人的全部照片（新照片必须都是同一人）。必须填写原因。", "Replaces all of a person's portraits with the new photos (which must all show one person). A reason is required.";
    replace_button: "更换", "Replace";
    replaced: "照片已更换", "Portraits replaced";
    duplicates: "重复人脸检查", "Duplicate faces";
    duplicates_intro: "扫描全库：同一张脸出现在两个身份证号下的人员，以及本人照片彼此不一致的人员。在后台运行，大型人员库可能需要数分钟。只显示脱敏后的身份证号。", "Scans the whole registry for faces enrolled under two ID numbers and for persons whose own portraits disagree. Runs in the background; a large registry can take minutes. ID numbers are shown masked only.";
    duplicates_button: "开始扫描", "Start the scan";
    duplicates_open: "打开重复人脸检查", "Open the duplicate-face scan";
    last_scan: "最近一次扫描", "Latest scan";
    scan_running: "扫描中", "Scanning";
    scan_done: "扫描完成", "Scan finished";
    scan_failed: "扫描失败", "Scan failed";
    scan_pass: "阶段", "Pass";
    pass_faces: "跨身份证号比对人脸", "faces under two ID numbers";
    pass_portraits: "核对本人照片", "persons' own portraits";
    duplicate_pairs: "疑似一人多证", "Faces under two ID numbers";
    disagreeing: "本人照片不一致的人员", "Persons whose own portraits disagree";
    person_a: "人员 A", "Person A";
    person_b: "人员 B", "Person B";
    templates: "比对的特征数", "Templates compared";
    line_distance: "判定线（距离）", "Line (distance)";
    none_found: "未发现", "None found";
    rows_shown: "仅显示前", "Showing the first";
    registry_events: "人员库操作记录", "Registry events";
    detail: "详情", "Detail";
    // Try it
    try_intro: "与调用方相同的检测流程：结果不计费，但记入调用记录。", "The same check a caller gets: not charged, but recorded in the call history.";
    photo: "照片", "Photo";
    run_check: "检测", "Check";
    compare_two: "比较两张照片", "Compare two photos";
    photo_a: "照片 A", "Photo A";
    photo_b: "照片 B", "Photo B";
    compare: "比较", "Compare";
    answer: "返回结果", "Answer";
    bands: "判定区间", "Bands";
    same_at: "同一人 ≥", "same ≥";
    size_bands: "小人脸阈值(按两眼间距)", "bands for small faces (by eye distance)";
    eyes_below: "两眼间距 <", "eyes closer than";
    different_at: "不同人 ≤", "different ≤";
    quality: "照片质量", "Photo quality";
    faces_found: "检测到人脸数", "Faces found";
    no_face: "未检测到人脸", "No face found";
    // About
    model_pack: "模型包", "Model pack";
    licence: "许可", "Licence";
    configuration: "配置摘要", "Configuration";
    health: "健康状态", "Health";
    database: "数据库", "Database";
    engine: "引擎", "Engine";
    ok: "正常", "OK";
    unavailable: "不可用", "Unavailable";
}
