//! `renzheng compliance status`.

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
            Ok(())
        }
    }
}
