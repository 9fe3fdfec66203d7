//! `renzheng compliance status` and `compliance records`.

use renzheng_app::Settings;

use super::{explain, with_app};
use crate::cli::ComplianceCommand;

/// Runs a `compliance` subcommand.
pub fn run(cmd: ComplianceCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ComplianceCommand::Status { json } => {
            let status = with_app(settings, |app| async move {
                let result = app.compliance_status().await.map_err(explain);
                (app, result)
            })?;
            if json {
                println!("{}", serde_json::to_string(&status).expect("serialises"));
                return Ok(());
            }
            println!(
                "persons with face data:  {} of the filing line {}",
                status.persons_with_face_data, status.filing_threshold
            );
            match &status.reached_at {
                Some(day) => println!(
                    "filing line reached:     {day}: a filing with the provincial CAC is due within 30 working days"
                ),
                None => println!("filing line reached:     no"),
            }
            println!(
                "without a legal basis:   {}{}",
                status.persons_without_basis,
                if status.persons_without_basis > 0 {
                    " (record one with `renzheng registry basis`)"
                } else {
                    ""
                }
            );
            println!(
                "oldest face data:        {}",
                status.oldest_face_data_on.as_deref().unwrap_or("none")
            );
            if status.retention_days == 0 && status.inactive_days == 0 {
                println!("registry retention:      off");
            } else {
                println!(
                    "registry retention:      {} day(s) after enrolment, {} day(s) without a check (0: off)",
                    status.retention_days, status.inactive_days
                );
                println!(
                    "past retention:          {}{}",
                    status.persons_past_retention,
                    status
                        .oldest_past_retention_on
                        .as_deref()
                        .map(|d| format!(", the oldest enrolled {d} (`renzheng registry purge`)"))
                        .unwrap_or_default()
                );
            }
            println!(
                "processing records kept: {}",
                match status.records_retention_days {
                    0 => "for ever".to_owned(),
                    days => format!("{days} days"),
                }
            );
            Ok(())
        }
        ComplianceCommand::Records { from, to, csv } => with_app(settings, |app| async move {
            let result = print_records(&app, &from, &to, csv).await;
            (app, result)
        }),
    }
}

/// Writes the records page by page (three years of checks do not fit in memory).
async fn print_records(
    app: &renzheng_app::App,
    from: &str,
    to: &str,
    csv: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let range = app.day_range(from, to).map_err(explain)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if csv {
        write!(
            out,
            "\u{feff}{}",
            renzheng_app::retention::RECORDS_CSV_HEADER
        )?;
    }
    let mut after = 0;
    loop {
        let page = app
            .processing_records(range, after, renzheng_app::retention::MAX_RECORDS_PAGE)
            .await
            .map_err(explain)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for line in &page {
            if csv {
                out.write_all(line.csv_row().as_bytes())?;
            } else {
                writeln!(out, "{}", serde_json::to_string(line).expect("serialises"))?;
            }
        }
    }
    Ok(out.flush()?)
}
