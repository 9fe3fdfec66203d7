//! E-mail alerts through a real SMTP server on loopback: `aiosmtpd` (pinned in
//! `tests/compat/requirements.txt`, run by the compatibility suite's Python) writing each
//! message it accepts to a Maildir, read back with Python's own e-mail parser. Without
//! that Python the test says it is skipped, unless `RENZHENG_COMPAT_REQUIRED=1` (as in
//! `scripts/test.sh`): then it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use renzheng_app::settings::Secret;
use reqwest::Method;
use serde_json::{json, Value};

use crate::compliance::{compliance, small_line};
use crate::helpers::*;
use crate::metering::{check_body, check_with, new_app};

/// The Python with aiosmtpd, or `None` (skip) when it is not set up and not required.
fn smtp_python() -> Option<PathBuf> {
    let required = std::env::var("RENZHENG_COMPAT_REQUIRED").as_deref() == Ok("1");
    let python = std::env::var_os("RENZHENG_COMPAT_PYTHON").filter(|p| !p.is_empty());
    let has_it = python.as_ref().is_some_and(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    match python {
        Some(p) if has_it => Some(PathBuf::from(p)),
        _ if required => panic!(
            "aiosmtpd is not installed for RENZHENG_COMPAT_PYTHON and RENZHENG_COMPAT_REQUIRED=1: \
             run scripts/compat-setup.sh (it installs tests/compat/requirements.txt)"
        ),
        _ => {
            println!("e-mail alerts: skipped: run scripts/compat-setup.sh");
            None
        }
    }
}

/// An SMTP server on a free loopback port, delivering into `maildir`; killed on drop.
struct SmtpSink {
    child: Child,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink(python: &Path, maildir: &Path) -> SmtpSink {
    // A Maildir is its three folders: the handler writes into them, never makes them.
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting aiosmtpd");
    let sink = SmtpSink { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    sink
}

/// Every message in the Maildir as `{to, subject, body}`, read by Python's e-mail parser
/// (RFC 2047 subjects and transfer encodings decoded), waiting up to 15 s for `n`.
async fn messages(python: &Path, maildir: &Path, n: usize) -> Vec<Value> {
    const READ: &str = "import email, email.header, json, mailbox, sys\n\
        out = []\n\
        for m in mailbox.Maildir(sys.argv[1], create=False):\n\
        \x20   subject = str(email.header.make_header(email.header.decode_header(m['Subject'])))\n\
        \x20   body = m.get_payload(decode=True).decode(m.get_content_charset() or 'utf-8')\n\
        \x20   out.append({'to': m['To'], 'from': m['From'], 'subject': subject, 'body': body})\n\
        print(json.dumps(out))\n";
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new(python)
            .args(["-c", READ])
            .arg(maildir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn balance_and_filing_alerts_are_emailed_through_a_real_smtp_server() {
    let Some(python) = smtp_python() else { return };
    let maildir = tempfile::tempdir().unwrap();
    let sink = smtp_sink(&python, maildir.path());
    let port = sink.port;
    let app = spawn_app_with(move |s| {
        crate::console::with_console(s);
        small_line(s);
        s.compliance.warning_percent = 50;
        s.alerts.smtp_url = Some(Secret::new(format!("smtp://127.0.0.1:{port}")));
        s.alerts.email_from = Some("人证 <alerts@example.cn>".into());
        s.alerts.operator_emails = vec!["dpo@example.cn".into()];
        s.alerts.webhook_backoff_ms = 50;
    })
    .await;

    // An app's recipients, set through the admin API; a bad address is refused.
    let (id, code, _, _) = new_app(&app, Some(4)).await;
    let set = |emails: Value| {
        app.admin(Method::PUT, &format!("/admin/apps/{id}/policy"))
            .json(&json!({"rate_per_sec": null, "alert_percent": 50, "webhook_url": null, "alert_emails": emails}))
            .send()
    };
    let (status, error, _) = error_of(set(json!(["not an address"])).await.unwrap()).await;
    assert_eq!((status, error.as_str()), (400, "InvalidParameter"));
    let r = set(json!(["ops@example.cn", "finance@example.cn"]))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let shown: Value = r.json().await.unwrap();
    assert_eq!(
        shown["data"]["policy"]["alert_emails"],
        json!(["ops@example.cn", "finance@example.cn"])
    );
    // 4 → 1 call left: at or below 50 %, one "low" alert, e-mailed to both.
    for _ in 0..3 {
        assert_eq!(
            check_with(&app, &code, &check_body(&app)).await.status(),
            200
        );
    }
    let mail = messages(&python, maildir.path(), 1).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let low = &mail[0];
    let to = low["to"].as_str().unwrap();
    assert!(
        to.contains("ops@example.cn") && to.contains("finance@example.cn"),
        "{low}"
    );
    assert!(
        low["from"].as_str().unwrap().contains("alerts@example.cn"),
        "{low}"
    );
    let subject = low["subject"].as_str().unwrap();
    assert!(
        subject.contains("余额不足") && subject.contains("running low"),
        "{low}"
    );
    let body = low["body"].as_str().unwrap();
    assert!(body.contains(&id) && body.contains("共购买 4 次"), "{low}");

    // The operator's own recipients get the filing line's warning (the two persons every
    // app enrols are 2 of the line's 3: past 50 %).
    let _ = compliance(&app).await;
    let mail = messages(&python, maildir.path(), 2).await;
    let filing = mail
        .iter()
        .find(|m| {
            m["to"]
                .as_str()
                .is_some_and(|t| t.contains("dpo@example.cn"))
        })
        .unwrap_or_else(|| panic!("no filing-line e-mail: {mail:?}"));
    assert!(
        filing["subject"].as_str().unwrap().contains("接近备案线"),
        "{filing}"
    );
    assert!(!filing["to"].as_str().unwrap().contains("ops@"), "{filing}");

    // The console's "send a test alert" e-mails the app's recipients too, and says so.
    let owner = crate::console::signed_in(&app).await;
    let (status, page) = owner
        .post_form(
            &format!("/console/apps/{id}/test-alert"),
            &[("back", "app"), ("csrf", crate::console::FRESH)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("测试提醒邮件已交给发信服务器"), "{page}");
    let mail = messages(&python, maildir.path(), 3).await;
    let test = mail
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.contains("test alert"))
        })
        .unwrap_or_else(|| panic!("no test e-mail: {mail:?}"));
    assert!(
        test["to"].as_str().unwrap().contains("finance@example.cn"),
        "{test}"
    );
    assert!(test["body"].as_str().unwrap().contains(&id), "{test}");
    drop(sink);
}

/// Recipients without a relay are refused (they would never be told).
#[tokio::test]
async fn alert_emails_need_an_smtp_relay() {
    let app = spawn_test_app().await;
    let r = app
        .admin(Method::PUT, &format!("/admin/apps/{}/policy", app.app_id))
        .json(&json!({"rate_per_sec": null, "alert_percent": 20, "webhook_url": null, "alert_emails": ["ops@example.cn"]}))
        .send()
        .await
        .unwrap();
    let (status, error, message) = error_of(r).await;
    assert_eq!((status, error.as_str()), (400, "InvalidParameter"));
    assert!(message.contains("alerts.smtp_url"), "{message}");
}
