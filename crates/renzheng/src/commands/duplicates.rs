//! `renzheng registry duplicates [--json] [--reveal --reason TEXT]`: faces enrolled under
//! two ID numbers, and persons whose own portraits disagree.

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use renzheng_app::{Actor, AppError, Reason, Settings};

use super::{explain, with_app};

/// Runs the scan with a progress bar (on stderr) and prints the report.
pub fn run(
    settings: &Settings,
    json: bool,
    reveal: bool,
    reason: Option<String>,
    restart: bool,
) -> anyhow::Result<()> {
    let reveal = match (reveal, reason) {
        (true, Some(reason)) => Some(Reason::parse(&reason).map_err(explain)?),
        (true, None) => return Err(explain(AppError::ReasonRequired)),
        (false, _) => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let report = with_app(settings, |app| {
        let bar = bar.clone();
        async move {
            if restart {
                if let Err(e) = app.restart_duplicate_scan().await {
                    return (app, Err(explain(e)));
                }
            }
            let result = app
                .duplicate_report(&Actor::Cli, reveal, |p| {
                    bar.set_message(if p.pass == 1 {
                        "faces under two ID numbers"
                    } else {
                        "persons' own portraits"
                    });
                    bar.set_length(p.total as u64);
                    bar.set_position(p.done as u64);
                })
                .await
                .map_err(explain);
            (app, result)
        }
    })?;
    bar.finish_and_clear();
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| anyhow!("{e}"))?
        );
        return Ok(());
    }
    println!(
        "{} template(s) of {} compared at the duplicate line (distance <= {:.3}); {} person(s) checked",
        report.templates, report.model_id, report.line_distance, report.persons
    );
    if report.pairs.is_empty() {
        println!("no face is enrolled under two ID numbers");
    } else {
        println!("faces enrolled under two ID numbers:");
        for p in &report.pairs {
            println!(
                "  {} ({})  {} ({})  score {:.3}",
                p.a.id_number, p.a.handle, p.b.id_number, p.b.handle, p.score
            );
        }
    }
    if report.disagreeing.is_empty() {
        println!("every person's portraits agree");
    } else {
        println!("persons whose own portraits disagree:");
        for d in &report.disagreeing {
            println!(
                "  {} ({})  portraits #{} and #{}  score {:.3}",
                d.person.id_number, d.person.handle, d.portraits.0, d.portraits.1, d.score
            );
        }
    }
    Ok(())
}
