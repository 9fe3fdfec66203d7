//! The command-line surface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::vision_cli;

/// Renzheng: self-hosted face ↔ ID-card verification (人脸身份证比对).
#[derive(Debug, Parser)]
#[command(name = "renzheng", version, about)]
pub struct Cli {
    /// Configuration file (TOML or JSON); `RENZHENG_*` environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The model pack (`dlib` or `sface`); overrides `engine.pack` / `RENZHENG_ENGINE__PACK`.
    #[arg(long, global = true, value_name = "PACK")]
    pub pack: Option<renzheng_vision::PackKind>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve,
    /// Create or upgrade the database schema (SQLite in data_dir, or PostgreSQL at
    /// database_url) and check this node's keys against it; `serve` does the same at
    /// start-up.
    Migrate,
    /// Print the service's OpenAPI document (what `GET /openapi.json` serves), e.g. to
    /// generate a client without starting the service.
    Openapi,
    /// Manage the identity registry (the 库).
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Manage the apps that may call the API.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// The package catalogue.
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// The operator console (`/console`).
    #[command(subcommand)]
    Console(ConsoleCommand),
    /// The configuration (docs/configuration.md).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The keys: make, rotate, retire, and their state (docs/operations.md, key rotation).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// What the rules on face information ask of the operator (docs/compliance.md).
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// Install, verify, export or import the model pack.
    Models(vision_cli::models::Args),
    /// Compare the faces in two photos.
    Compare(vision_cli::compare::Args),
    /// Evaluate the engine on labelled pairs.
    Eval(vision_cli::eval::Args),
    /// Suggest verdict bands, per face size, from one's own portrait-vs-photo pairs.
    Calibrate(vision_cli::calibrate::Args),
    /// Benchmark the engine.
    Bench(vision_cli::bench::Args),
}

/// `renzheng keys …`. KEY is `template`, `secrets` or `photo`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (64 hex digits) on stdout and its fingerprint on stderr:
    /// with several nodes, give it to every node as the next key (RENZHENG_NEXT_<KEY>_KEY)
    /// before `keys rotate`.
    New {
        /// template, secrets or photo.
        key: String,
    },
    /// Re-seal everything under KEY's next key, in batches, while the service answers;
    /// both keys are accepted until it finishes. Re-running it resumes an interrupted
    /// rotation. With one node and key_dir it makes the new key itself.
    Rotate {
        /// template, secrets or photo.
        key: String,
        /// How long serving nodes get to learn the new key before rows move (they look
        /// every 2 s).
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        grace: f64,
    },
    /// Forget KEY's previous key once nothing is sealed under it (refused while rows
    /// remain); a node holding only it then refuses to start.
    Retire {
        /// template, secrets or photo.
        key: String,
    },
    /// Each key's fingerprint, the previous and retired ones, the rows still under
    /// another key, and the keys this node holds.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `renzheng compliance …`.
#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// The persons with face data stored against the filing line (100,000: a filing with
    /// the provincial CAC is due within 30 working days of reaching it), the day it was
    /// reached, the persons without a recorded legal basis, the oldest face data.
    Status {
        /// Print JSON (`persons_with_face_data`, `filing_threshold`, `reached_at`,
        /// `persons_without_basis`, …).
        #[arg(long)]
        json: bool,
    },
    /// The processing records of the days FROM to TO: who enrolled, changed, checked or
    /// deleted which person's face (masked and keyed), when, under which basis. Kept
    /// `compliance.records_retention_days` (three years), whatever the audit keeps.
    Records {
        /// The first day, `YYYY-MM-DD` (the operator's calendar: metering.utc_offset_minutes).
        #[arg(long, value_name = "DATE")]
        from: String,
        /// The last day, inclusive.
        #[arg(long, value_name = "DATE")]
        to: String,
        /// Print CSV (UTF-8 with a byte-order mark, for spreadsheets) instead of JSON lines.
        #[arg(long)]
        csv: bool,
    },
}

/// The legal basis for storing a person's face (docs/compliance.md). Required to store a
/// face while `compliance.require_basis` is on, unless the person has one on record.
#[derive(Debug, Clone, Default, Args)]
pub struct BasisArgs {
    /// consent, law or contract.
    #[arg(long, value_name = "consent|law|contract")]
    pub basis: Option<String>,
    /// With consent or contract: where the person's separate consent (or the contract) is
    /// kept, e.g. its number.
    #[arg(long = "consent-ref", value_name = "TEXT")]
    pub consent_ref: Option<String>,
    /// With law: the statute or regulation that requires the processing.
    #[arg(long, value_name = "TEXT")]
    pub law: Option<String>,
    /// For a holder under 14 on consent or contract: where the parent's or guardian's
    /// consent is kept.
    #[arg(long = "guardian-consent-ref", value_name = "TEXT")]
    pub guardian_consent_ref: Option<String>,
    /// The purpose, when not `compliance.purpose`.
    #[arg(long, value_name = "TEXT")]
    pub purpose: Option<String>,
}

/// `renzheng config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration every command would run with — defaults, then --config
    /// FILE, then RENZHENG_* variables, then --pack, loaded and validated as `serve` loads
    /// them — as TOML. Secrets print as "<redacted>" ("<unset>" when not set), the
    /// database URL without its password.
    Show {
        /// Print JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
}

/// `renzheng console …`.
#[derive(Debug, Subcommand)]
pub enum ConsoleCommand {
    /// Read a password (at least 12 characters) from the first line of stdin and print
    /// its Argon2id hash, for `console.password_hash` (RENZHENG_CONSOLE__PASSWORD_HASH).
    /// The password is never taken as an argument (it would show in `ps` and shell
    /// history): `renzheng console hash-password < file`, or type it and press Enter.
    HashPassword,
    /// The console's operator accounts (owner, admin, auditor). The CLI may do
    /// everything: it is also the way back in when the last owner is locked out.
    #[command(subcommand)]
    Operators(OperatorsCommand),
}

/// `renzheng console operators …`. Passwords are read from the first line of standard
/// input, never taken as arguments.
#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// List the operators and their roles (the configured first owner is added first if
    /// there is none yet).
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add an operator with a role; the password (12 characters at least) from stdin.
    Add {
        /// The sign-in name (1 to 64 characters).
        name: String,
        /// owner (everything, operators and keys), admin (apps, packages, registry,
        /// duplicate overrides) or auditor (read only: calls, events, usage, compliance).
        #[arg(long, value_parser = ["owner", "admin", "auditor"])]
        role: String,
    },
    /// Remove an operator and end their sessions (never the last owner).
    Remove {
        /// The operator's name.
        name: String,
    },
    /// Give an operator another role (the last owner keeps theirs); it applies to their
    /// open sessions at once.
    SetRole {
        /// The operator's name.
        name: String,
        /// owner, admin or auditor.
        #[arg(value_parser = ["owner", "admin", "auditor"])]
        role: String,
    },
    /// Set an operator's password from stdin and end their sessions.
    SetPassword {
        /// The operator's name.
        name: String,
    },
    /// Turn off an operator's two-step sign-in (a lost authenticator): they sign in with
    /// their password alone until they turn it on again from their account page.
    ResetTwoStep {
        /// The operator's name.
        name: String,
    },
}

/// `renzheng registry …`.
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Enrol a person, or add portraits to an enrolled one, with zero or more photos.
    ///
    /// Every photo must match the person's portraits on record and the other photos given,
    /// and its face must not be enrolled under another ID number; otherwise nothing is
    /// stored and the command fails. A photo already on record is skipped. An enrolled
    /// person is never renamed here (see `registry rename`).
    ///
    /// Leave out --name and --id-number to read them from standard input (the name on the
    /// first line, the ID number on the next): arguments are visible to every user in `ps`
    /// and stay in the shell's history.
    Add {
        /// The person's name as on the ID card (default: read from standard input).
        #[arg(long)]
        name: Option<String>,
        /// The ID number, 18 characters or a legacy 15-digit number (default: read from
        /// standard input).
        #[arg(long = "id-number")]
        id_number: Option<String>,
        /// A portrait photo; repeat for several. Without any, checks answer 5 (no portrait).
        #[arg(long = "photo", value_name = "FILE")]
        photos: Vec<PathBuf>,
        /// Enrol even if a photo's face is already enrolled under another ID number (one
        /// person legitimately holding two numbers); needs --reason.
        #[arg(long, requires = "reason")]
        allow_duplicate_face: bool,
        /// Why (recorded with the event).
        #[arg(long)]
        reason: Option<String>,
        /// The legal basis (renews the person's; kept when left out).
        #[command(flatten)]
        basis: BasisArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record the legal basis of an enrolled person's face after the fact (persons enrolled
    /// before bases were recorded; `compliance status` counts those without), or renew it.
    Basis {
        /// The ID number or person handle (`p-…`) (default: read from standard input).
        #[arg(long = "id-number")]
        id_number: Option<String>,
        /// The legal basis.
        #[command(flatten)]
        basis: BasisArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give an enrolled person another name (a correction, a legal name change).
    Rename {
        /// The ID number or person handle (`p-…`) (default: read from standard input).
        #[arg(long = "id-number")]
        id_number: Option<String>,
        /// The new name (default: read from standard input, after the ID number).
        #[arg(long)]
        name: Option<String>,
        /// Why (recorded with the event).
        #[arg(long)]
        reason: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace all of a person's portraits with new photos (which must agree with each
    /// other); the old portraits and their kept photos are deleted.
    Replace {
        /// The ID number or person handle (`p-…`) (default: read from standard input).
        #[arg(long = "id-number")]
        id_number: Option<String>,
        /// A new portrait photo; repeat for several (at least one).
        #[arg(long = "photo", value_name = "FILE", required = true)]
        photos: Vec<PathBuf>,
        /// Why (recorded with the event).
        #[arg(long)]
        reason: String,
        /// Replace even if a photo's face is enrolled under another ID number.
        #[arg(long)]
        allow_duplicate_face: bool,
        /// The legal basis (renews the person's; kept when left out).
        #[command(flatten)]
        basis: BasisArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Report the faces enrolled under two ID numbers, and the persons whose own
    /// portraits disagree. The scan saves its progress as it goes: interrupted, it resumes
    /// where it stopped the next time (unless --restart).
    Duplicates {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Print full ID numbers instead of masked ones (recorded as an event).
        #[arg(long)]
        reveal: bool,
        /// Why the numbers are revealed (required with --reveal).
        #[arg(long, required_if_eq("reveal", "true"))]
        reason: Option<String>,
        /// Start over instead of resuming an interrupted scan.
        #[arg(long)]
        restart: bool,
    },
    /// Enrol everyone in a folder: photos named by ID number (`<id>.jpg`, `<id>_2.jpg`…)
    /// plus a CSV of `id,name`.
    Import {
        /// The folder, or a file written by `registry export` (its persons are added;
        /// those already present are left as they are).
        dir: PathBuf,
        /// The CSV (default: the only `.csv` file in the folder).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// The legal basis of the rows that give none of their own (CSV columns 3–6:
        /// basis, reference, guardian_consent_ref, purpose).
        #[command(flatten)]
        basis: BasisArgs,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the whole registry (names, ID numbers, templates, kept photos) to a file,
    /// sealed under a key derived from the template key, to move it to another database
    /// with `registry import FILE` (docs/deployment.md).
    Export {
        /// The file to create (refused if it exists; created 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compute the active pack's embeddings for everyone who lacks them (after switching
    /// packs): from the kept photos (`keep_photos`), or with `--from`, by re-importing the
    /// operator's photo folder (same layout as `import`).
    Reembed {
        /// Re-import this folder instead of using kept photos.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// With `--from`: the CSV (default: the only `.csv` file in the folder).
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a person and everything stored about them.
    Remove {
        /// The ID number or person handle (`p-…`) (default: read from standard input, which keeps it out of `ps`
        /// and the shell's history).
        id_number: Option<String>,
        /// The reference of the data subject's request this removal answers (a withdrawn
        /// consent, a deletion request), kept in the removal's event.
        #[arg(long, value_name = "TEXT")]
        request_ref: Option<String>,
    },
    /// Everything held about one person, masked (for an access request): portraits and
    /// their dates, the legal basis, the checks of their ID number still in the audit,
    /// the operator events about them.
    Report {
        /// The ID number or person handle (`p-…`) (default: read from standard input).
        #[arg(long = "id-number", value_name = "ID")]
        id_number: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the persons the registry's retention has come to (`registry.retention_days`:
    /// enrolled, or their basis last renewed, longer ago; `registry.inactive_days`: not
    /// checked for that long), each with everything stored about them, each an event. The
    /// server does it hourly; this does it now.
    Purge {
        /// Only list who would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a person (masked).
    Show {
        /// The ID number or person handle (`p-…`) (default: read from standard input, which keeps it out of `ps`
        /// and the shell's history).
        id_number: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `renzheng apps …`.
#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app and print its AppCode (shown this once only).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Print `{"app_id": …, "app_code": …}`.
        #[arg(long)]
        json: bool,
    },
    /// List apps.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Disable an app (its calls get 403).
    Disable {
        /// The app id (`app_…`).
        app_id: String,
    },
    /// Enable an app again.
    Enable {
        /// The app id (`app_…`).
        app_id: String,
    },
    /// Add calls to an app's balance: a package of the catalogue, or a number of calls.
    Grant {
        /// The app id (`app_…`).
        app_id: String,
        /// A package name (see `renzheng packages list`).
        #[arg(long, conflicts_with = "calls", required_unless_present = "calls")]
        package: Option<String>,
        /// A number of calls.
        #[arg(long)]
        calls: Option<i64>,
        /// Last day the calls may be used (YYYY-MM-DD, through its end in
        /// `metering.utc_offset_minutes`); default: the package's validity, or never.
        #[arg(long = "expires-at", value_name = "YYYY-MM-DD")]
        expires_at: Option<String>,
        /// Print the grant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take back the unused calls of one of an app's grants (its id: `grant_id` in
    /// `apps usage --json`). A check holding one of them still settles; the ledger records
    /// the calls taken back. A revoked grant does not change again.
    RevokeGrant {
        /// The app id (`app_…`).
        app_id: String,
        /// The grant id.
        grant_id: i64,
        /// Print the grant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the calls or the expiry of one of an app's grants (never below the calls
    /// charged and held); the ledger records a change of calls.
    AdjustGrant {
        /// The app id (`app_…`).
        app_id: String,
        /// The grant id.
        grant_id: i64,
        /// Its new number of calls.
        #[arg(long)]
        calls: Option<i64>,
        /// Its new last day (YYYY-MM-DD, through its end in `metering.utc_offset_minutes`).
        #[arg(
            long = "expires-at",
            value_name = "YYYY-MM-DD",
            conflicts_with = "never_expires"
        )]
        expires_at: Option<String>,
        /// Its calls never expire.
        #[arg(long)]
        never_expires: bool,
        /// Print the grant as JSON.
        #[arg(long)]
        json: bool,
    },
    /// An app's balance and its checks per day.
    Usage {
        /// The app id (`app_…`).
        app_id: String,
        /// From this day (YYYY-MM-DD; default 30 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// To this day (YYYY-MM-DD; default today).
        #[arg(long)]
        to: Option<String>,
        /// Print as JSON (`remaining`, `charged`, `days`, `grants`…).
        #[arg(long)]
        json: bool,
    },
    /// Show an app's current AppCode again (recorded as an operator event). Codes issued
    /// before this release are kept as hashes only: reset one to make it viewable.
    ShowCode {
        /// The app id (`app_…`).
        app_id: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give an app a new AppCode; buying a package never changes it.
    ResetCode {
        /// The app id (`app_…`).
        app_id: String,
        /// Seconds the old code keeps working (0 to 30 days).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give an app a new AppKey and AppSecret (shown once).
    ResetSecret {
        /// The app id (`app_…`).
        app_id: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set an app's rate limit, balance-alert threshold, webhook and e-mail recipients.
    Policy {
        /// The app id (`app_…`).
        app_id: String,
        /// Sustained checks per second (omit: no rate limit).
        #[arg(long)]
        rate: Option<f64>,
        /// Checks allowed at once above the rate.
        #[arg(long)]
        burst: Option<u32>,
        /// Alert when the remaining calls fall to this percentage of those bought.
        #[arg(long = "alert-percent", default_value_t = 20)]
        alert_percent: u8,
        /// Where alerts are posted (http or https).
        #[arg(long)]
        webhook: Option<String>,
        /// Who is e-mailed the alerts (repeat for several; needs alerts.smtp_url).
        #[arg(long = "alert-email", value_name = "ADDRESS")]
        alert_emails: Vec<String>,
    },
}

/// `renzheng packages …`.
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// The catalogue, by price.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add or replace a package.
    Set {
        /// Short stable id (letters, digits, '-', '_').
        name: String,
        /// What buyers see, e.g. "165元/1000次".
        #[arg(long)]
        title: String,
        /// Calls it adds.
        #[arg(long)]
        calls: i64,
        /// Price in 分 (0.01 元).
        #[arg(long = "price-fen", default_value_t = 0)]
        price_fen: i64,
        /// Days its calls stay usable (omit: forever).
        #[arg(long = "valid-days")]
        valid_days: Option<i64>,
        /// Retire it (no new grants).
        #[arg(long)]
        retired: bool,
    },
}
