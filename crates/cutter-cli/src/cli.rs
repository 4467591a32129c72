//! The command-line surface: every subcommand, its flags and its `--help`.
// The doc comments here are clap's help text, where `[database] url` names a config
// section, not an item: rustdoc must not read them as links.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes: 0 ok · 1 failure · 2 usage · 3 refused (gate, lock, claim, safety rule) · 4 held ·
130/143 a run stopped by SIGINT/SIGTERM (phase rolled back, run held: see `cutter status`).
Configuration: flags, then CUTTER_* variables, then cutter.toml (--config, CUTTER_CONFIG, or
the state directory's); `cutter config show` prints each setting and its source. The target:
--database-url, CUTTER_DATABASE_URL, [database] url, and only then DATABASE_URL or libpq's
service files and PG* variables, with passwords from ~/.pgpass — never on the command line.";

/// cutter — write cut legal documents into PostgreSQL through gated, backed-up,
/// verified and compensable runs.
#[derive(Debug, Parser)]
#[command(name = "cutter", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Configuration file [default: $CUTTER_CONFIG, else the state directory's
    /// cutter.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory [default: $CUTTER_STATE_DIR, else state_dir of the config file].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Target database as a libpq URL or keyword string, without a password
    /// [default: $CUTTER_DATABASE_URL, else [database] url, else $DATABASE_URL, else PG*
    /// variables].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Print machine-readable JSON on stdout instead of the human summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log detail on stderr: -v debug, -vv trace [default: information and
    /// warnings; RUST_LOG when set and neither -v nor -q is given].
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Log errors only (results and the error that ends a command still print).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log lines as text, or as one JSON object per line (timestamp, level, fields,
    /// target).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Also append the log to this file (created 0600), in --log-format.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats (plain comments on the variants keep `--help` short).
/// `cutter report`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    /// Check a signed report instead.
    #[command(subcommand)]
    pub command: Option<ReportCommand>,
    /// The run.
    #[arg(long, required = true)]
    pub run_id: Option<String>,
    /// markdown, json or html.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    /// Write the report to this file instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Sign the JSON report with the report key ([report] signing_key, pinned by
    /// signing_fingerprint): writes FILE (default: the run's report.json) and FILE.asc.
    #[arg(long)]
    pub sign: bool,
}

/// `cutter report verify`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Check a signed report: the signature against the pinned report key, then every
    /// field recomputed from the run record and the database (read access is enough).
    #[command(after_help = "Example:\n  cutter report verify r-1.json --sig r-1.json.asc")]
    Verify {
        /// The signed report.json.
        report: PathBuf,
        /// Its detached signature.
        #[arg(long, value_name = "FILE")]
        sig: PathBuf,
    },
}

/// The form of `cutter report`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown tables.
    Markdown,
    /// `report.json`'s content.
    Json,
    /// One self-contained HTML file: no script, no network.
    Html,
}

/// The form of log lines (`--log-format`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
#[allow(missing_docs)] // a doc comment on a variant would become clap's help text
pub enum LogFormat {
    // `2026-01-01T00:00:00Z  INFO message key=value`.
    Text,
    // One JSON object per line: `timestamp`, `level`, `fields`, `target`.
    Json,
}

/// Shells `cutter completions` writes a script for.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Shell {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a state directory and a commented cutter.toml.
    #[command(
        after_help = "Example:\n  cutter init /var/lib/cutter\n  export CUTTER_CONFIG=/var/lib/cutter/cutter.toml"
    )]
    Init {
        /// The state directory to create.
        dir: PathBuf,
    },
    /// Check everything a live run needs, one line per check.
    #[command(
        after_help = "Example:\n  cutter doctor\n  cutter doctor --json | jq '.checks[] | select(.ok == false)'"
    )]
    Doctor,
    /// The effective configuration and where each setting came from.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Cut a document (HTML as published, or text) into a cut plan.
    #[command(
        after_help = "Example:\n  cutter cut constitution-2013.html --document-id vn-constitution-2013 \\\n      --source-version 2013-11-28 -o plan.json"
    )]
    Cut(CutArgs),
    /// Check or show a cut plan.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Write the approval statement to sign, or verify signatures over it.
    #[command(
        after_help = "Example:\n  cutter approve --run-id r-1 --plan plan.json --gate SG_1 -o sg1.txt\n  gpg --detach-sign --armor sg1.txt            # by approver 1\n  cutter approve --run-id r-1 --plan plan.json --verify sg1.txt sg1.txt.asc"
    )]
    Approve(ApproveArgs),
    /// Run a plan: dry-run on a throwaway clone, or live on the target.
    #[command(
        after_help = "Example:\n  cutter run --plan plan.json --run-id r-1 --mode dry-run\n  cutter run --plan plan.json --run-id r-1 --mode live \\\n      --approval sg1.txt:sg1.txt.asc --approval sg2.txt:sg2.txt.asc"
    )]
    Run(RunArgs),
    /// What is pending, running, held and done.
    #[command(after_help = "Example:\n  cutter status")]
    Status,
    /// List runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Retire a run id and release its idempotency claim (disable level 2).
    #[command(after_help = "Example:\n  cutter void --run-id r-1 --reason \"superseded by r-2\"")]
    Void {
        /// The run to retire.
        #[arg(long)]
        run_id: String,
        /// Why, recorded in the ledger.
        #[arg(long)]
        reason: String,
    },
    /// Show or release the HOLD.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// The database's schema: what is installed, what an upgrade would do, and the
    /// upgrade itself (as the schema owner, never the writer).
    #[command(
        subcommand,
        after_help = "Example:\n  cutter db status\n  cutter db upgrade --owner-url postgres://cutter_owner@db/production --dry-run\n  cutter db upgrade --owner-url postgres://cutter_owner@db/production\n  cutter db validate"
    )]
    Db(DbCommand),
    /// The approver registry in the database: who may approve what. Changed only as the
    /// schema owner; after the first two approvers, every change needs an
    /// approver-change approval by two registered approvers.
    #[command(
        subcommand,
        after_help = "Example:
  cutter approvers list
  cutter approvers add alice.pub.asc --name alice --owner-url postgres://cutter_owner@db/production
  cutter approvers add carol.pub.asc --name carol --gate SG_1 -o add-carol-sg1.txt
  cutter approvers add carol.pub.asc --name carol --owner-url … \\
      --approval add-carol-sg1.txt:add-carol-sg1.txt.asc --approval add-carol-sg2.txt:add-carol-sg2.txt.asc"
    )]
    Approvers(ApproversCommand),
    /// Show, arm or disarm the kill-switch (disable level 0).
    #[command(subcommand, name = "kill-switch")]
    KillSwitch(KillSwitchCommand),
    /// After a crash: find what committed (journal cross-checked with the database),
    /// hold the run and prescribe its compensation.
    #[command(after_help = "Example:\n  cutter recover")]
    Recover,
    /// Execute the compensation the matrix prescribes for a held run.
    #[command(
        after_help = "Example:\n  cutter compensate --run-id r-1 --show     # the plan, nothing executed\n  cutter compensate --run-id r-1"
    )]
    Compensate(CompensateArgs),
    /// Encrypted backups: create, selftest, verify, restore proof.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// The run report a reviewer reads: Markdown, JSON, or one self-contained HTML file
    /// (timeline, counts, approvals, backup and restore proof, ledger heads); signed, and
    /// verified.
    #[command(
        after_help = "Example:\n  cutter report --run-id r-1 > r-1.md\n  cutter report --run-id r-1 --format html -o r-1.html\n  cutter report --run-id r-1 --sign -o r-1.json          # and r-1.json.asc\n  cutter report verify r-1.json --sig r-1.json.asc"
    )]
    Report(ReportArgs),
    /// A complete live run on an embedded default: throwaway cluster, keys and
    /// approvals, the 2013 Constitution, restore proof, report, compensation.
    #[command(
        after_help = "Example:\n  cargo run --release -p cutter-cli -- demo\n  cutter demo --keep        # leave the cluster running and print how to connect"
    )]
    Demo {
        /// Leave the throwaway cluster running at the end, detached, with the demo's
        /// state directory and keys, and print how to connect and how to tear it down.
        #[arg(long)]
        keep: bool,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  cutter completions bash > /etc/bash_completion.d/cutter\n  cutter completions zsh > \"${fpath[1]}/_cutter\"\n  cutter completions fish > ~/.config/fish/completions/cutter.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// How `cutter db` reaches the schema owner.
#[derive(Debug, Clone, Args)]
pub struct OwnerArgs {
    /// The schema owner as a libpq URL or keyword string, without a password
    /// [default: $CUTTER_OWNER_URL, else [database] owner_url]. Never the writer's role.
    #[arg(long, value_name = "URL")]
    pub owner_url: Option<String>,
    /// Give up a step that cannot get its lock within this many milliseconds, so
    /// production never queues behind the upgrade [default: [database] lock_timeout_ms].
    #[arg(long, value_name = "MS")]
    pub lock_timeout_ms: Option<u64>,
}

/// `cutter approvers …`.
#[derive(Debug, Subcommand)]
pub enum ApproversCommand {
    /// The registry: every approver, the purposes each may approve, who added or
    /// revoked each and when. Reads only.
    #[command(
        after_help = "Example:\n  cutter approvers list\n  cutter approvers list --json | jq '.approvers[] | select(.revoked == null) | .name'"
    )]
    List,
    /// Register an approver's public key. The first two are registered by the owner
    /// alone (bootstrap, recorded as such); every later one needs SG_1 and SG_2
    /// approver-change approvals. With -o, writes the statement to sign instead.
    #[command(
        after_help = "Example:\n  cutter approvers add alice.pub.asc --name alice --owner-url postgres://cutter_owner@db/production\n  cutter approvers add carol.pub.asc --name carol --purpose live-run --gate SG_1 -o add-carol-sg1.txt\n  cutter approvers add carol.pub.asc --name carol --purpose live-run --owner-url … \\\n      --approval add-carol-sg1.txt:add-carol-sg1.txt.asc --approval add-carol-sg2.txt:add-carol-sg2.txt.asc"
    )]
    Add {
        /// The approver's public key file (armored or binary).
        key: PathBuf,
        /// Who the approver is.
        #[arg(long)]
        name: String,
        /// What the approver may approve (repeatable) [default: all five].
        #[arg(long = "purpose", value_name = "PURPOSE")]
        purposes: Vec<String>,
        /// The change's approvals and the owner connection.
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Revoke an approver (never deleted: the entry and its history stay). Needs SG_1
    /// and SG_2 approver-change approvals. With -o, writes the statement to sign instead.
    #[command(
        after_help = "Example:\n  cutter approvers revoke 0123…CDEF --gate SG_1 -o revoke-sg1.txt --owner-url …\n  cutter approvers revoke 0123…CDEF --owner-url … --approval revoke-sg1.txt:revoke-sg1.txt.asc --approval revoke-sg2.txt:revoke-sg2.txt.asc"
    )]
    Revoke {
        /// The approver's fingerprint.
        fingerprint: String,
        /// The change's approvals and the owner connection.
        #[command(flatten)]
        change: ChangeArgs,
    },
}

/// How an approver change is approved and applied.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// An approver-change approval as STATEMENT:SIGNATURE (files); give SG_1 and SG_2.
    #[arg(long = "approval", value_name = "STATEMENT:SIGNATURE")]
    pub approvals: Vec<String>,
    /// Write the approver-change statement for this gate (SG_1 or SG_2) instead of
    /// applying the change.
    #[arg(long, requires = "output")]
    pub gate: Option<String>,
    /// Where to write the statement.
    #[arg(short, long, value_name = "FILE", requires = "gate")]
    pub output: Option<PathBuf>,
    /// The owner connection.
    #[command(flatten)]
    pub owner: OwnerArgs,
}

/// `cutter db …`.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Installed versions and their checksums, what differs from the reference schema
    /// (per object), the roles' grants (extra ones flagged), and what `upgrade` would
    /// apply. Reads only; as the owner if one is configured, else as the writer.
    #[command(
        after_help = "Example:\n  cutter db status\n  cutter db status --json | jq '.pending'"
    )]
    Status(OwnerArgs),
    /// Apply the pending migrations as the schema owner: each in one transaction with
    /// lock_timeout set, indexes on large tables CONCURRENTLY after it, under an
    /// advisory lock; adopts the earlier tool's database; refuses a changed checksum.
    #[command(
        after_help = "Example:\n  cutter db upgrade --dry-run          # print the SQL, apply nothing\n  cutter db upgrade\n  cutter db upgrade --lock-timeout-ms 2000"
    )]
    Upgrade {
        /// The owner connection and lock timeout.
        #[command(flatten)]
        owner: OwnerArgs,
        /// Print the SQL of every step without applying anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Checksums of the applied migrations and every drift from the reference: one line
    /// per finding; exit 0 when there is none, 1 otherwise.
    #[command(after_help = "Example:\n  cutter db validate || echo 'the schema drifted'")]
    Validate(OwnerArgs),
    /// Install the schema into an empty database (roles, schemas, vocabularies,
    /// functions, ledger), as the owner; `--baseline` adds the demo's 158/165/60 rows.
    #[command(
        after_help = "Example:\n  cutter db install --owner-url postgres://cutter_owner@db/staging"
    )]
    Install {
        /// The owner connection and lock timeout.
        #[command(flatten)]
        owner: OwnerArgs,
        /// Also install the seeds' baseline (158 units, 165 versions, 60 lifecycle
        /// rows): for demos and tests, never for production.
        #[arg(long)]
        baseline: bool,
    },
}

/// `cutter cut`.
#[derive(Debug, Args)]
pub struct CutArgs {
    /// The document file.
    pub file: PathBuf,
    /// The document's id (goes into every canonical address).
    #[arg(long)]
    pub document_id: String,
    /// The version of the source text.
    #[arg(long = "source-version")]
    pub source_version: String,
    /// Where to write the plan.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// vocab.publication_type code of the document.
    #[arg(long, default_value = "law")]
    pub publication_type: String,
    /// Also write the cut report (Markdown) here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Accept replacement characters (U+FFFD), control and bidirectional characters in
    /// unit bodies instead of refusing the cut; the plan's findings record every one.
    #[arg(long)]
    pub accept_forbidden_characters: bool,
}

/// Input formats of `cutter cut`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InputFormat {
    /// Decide from the content.
    Auto,
    /// HTML as published.
    Html,
    /// Plain text.
    Text,
}

/// `cutter plan`.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Validate a plan against the row contract (vocabularies from the target, or the
    /// reference schema's with --offline) and compare it with the live document (as
    /// `plan diff`), refusing addresses held by another document's units or by drafts
    /// of a run neither enacted nor compensated; --offline cannot compare.
    #[command(
        after_help = "Example:\n  cutter plan check plan.json\n  cutter plan check plan.json --offline"
    )]
    Check {
        /// The plan file.
        plan: PathBuf,
        /// Use the reference schema's vocabularies instead of the target's.
        #[arg(long)]
        offline: bool,
    },
    /// Compare a plan with what is live in the target for the same document: per unit
    /// unchanged, changed body (a new version), changed title, new, or repealed (no
    /// longer in the text), with each class's count and digest and the diff digest an
    /// amendment's approvals name.
    #[command(
        after_help = "Example:\n  cutter plan diff amended.json\n  cutter --json plan diff amended.json | jq .counts"
    )]
    Diff {
        /// The plan file.
        plan: PathBuf,
    },
    /// Summarize a plan: digest, rows per section type, first rows.
    #[command(after_help = "Example:\n  cutter plan show plan.json --rows 5")]
    Show {
        /// The plan file.
        plan: PathBuf,
        /// How many rows to list.
        #[arg(long, default_value_t = 10)]
        rows: usize,
    },
}

/// `cutter approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// What is approved: live-run, hold-release (the held run and its plan) or
    /// hard-delete (the revert run `<run>-revert` and the compensated run's plan).
    #[arg(long, default_value = "live-run", value_name = "PURPOSE")]
    pub purpose: String,
    /// The run to approve.
    #[arg(long)]
    pub run_id: String,
    /// The change set a hard delete removes (`cs-<run>`).
    #[arg(long, value_name = "CHANGE_SET")]
    pub change_set: Option<String>,
    /// The plan to approve.
    #[arg(long)]
    pub plan: PathBuf,
    /// SG_1 or SG_2.
    #[arg(long)]
    pub gate: Option<String>,
    /// Write the statement here.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Verify a statement and its detached signature instead: STATEMENT SIGNATURE.
    #[arg(long, num_args = 2, value_names = ["STATEMENT", "SIGNATURE"])]
    pub verify: Option<Vec<PathBuf>>,
}

/// Run modes.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RunMode {
    /// Rehearse on a throwaway clone restored from a fresh backup; the target is never
    /// written. Recorded as `<run-id>.dry-run-<n>`, so the live run keeps the run id.
    DryRun,
    /// Write to the target (needs the kill-switch disarmed for this run, SG_1 and SG_2).
    Live,
}

/// `cutter run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file.
    #[arg(long)]
    pub plan: PathBuf,
    /// The run id (letters, digits, `.`, `_`, `-`).
    #[arg(long)]
    pub run_id: String,
    /// dry-run or live.
    #[arg(long, value_enum, default_value_t = RunMode::DryRun)]
    pub mode: RunMode,
    /// An approval as STATEMENT:SIGNATURE (files); give SG_1 and SG_2.
    #[arg(long = "approval", value_name = "STATEMENT:SIGNATURE")]
    pub approvals: Vec<String>,
    /// Stop after write_verify: leave the units as verified drafts (not enacted).
    #[arg(long)]
    pub stage_only: bool,
}

/// `cutter runs`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every run in the state directory with its state.
    #[command(after_help = "Example:\n  cutter runs list --json")]
    List,
}

/// `cutter config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting, its value and its source (flag, environment
    /// variable, config file and key, or default), the resolved connection, and which
    /// secrets are set (never their values).
    #[command(
        after_help = "Example:\n  cutter config show\n  cutter config show --json | jq '.settings[] | select(.source.kind == \"env\")'"
    )]
    Show,
}

/// `cutter hold`.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Show the HOLD, if any.
    #[command(
        after_help = "Example:\n  cutter hold show\n  cutter hold show --json | jq '.hold.run_id'   # exit 4 while a HOLD is present"
    )]
    Show,
    /// Release the HOLD: needs the run compensated (or nothing to compensate) and SG_1 +
    /// SG_2 approvals for the held run.
    #[command(
        after_help = "Example:\n  cutter hold release --approval sg1.txt:sg1.txt.asc --approval sg2.txt:sg2.txt.asc"
    )]
    Release {
        /// An approval as STATEMENT:SIGNATURE.
        #[arg(long = "approval", value_name = "STATEMENT:SIGNATURE")]
        approvals: Vec<String>,
    },
}

/// `cutter kill-switch`.
#[derive(Debug, Subcommand)]
pub enum KillSwitchCommand {
    /// Show the kill-switch.
    #[command(
        after_help = "Example:\n  cutter kill-switch show\n  cutter kill-switch show --json | jq -r '.kill_switch.state'"
    )]
    Show,
    /// Engage the kill-switch (always allowed).
    #[command(after_help = "Example:\n  cutter kill-switch arm")]
    Arm,
    /// Disarm it for exactly one run; needs SG_1 and SG_2 for that run and plan.
    #[command(
        after_help = "Example:\n  cutter kill-switch disarm --run-id r-1 --plan plan.json \\\n      --approval sg1.txt:sg1.txt.asc --approval sg2.txt:sg2.txt.asc"
    )]
    Disarm {
        /// The one run that may write.
        #[arg(long)]
        run_id: String,
        /// Its plan.
        #[arg(long)]
        plan: PathBuf,
        /// An approval as STATEMENT:SIGNATURE.
        #[arg(long = "approval", value_name = "STATEMENT:SIGNATURE")]
        approvals: Vec<String>,
    },
}

/// `cutter compensate`.
#[derive(Debug, Args)]
pub struct CompensateArgs {
    /// The held run.
    #[arg(long)]
    pub run_id: String,
    /// Show the compensation plan and execute nothing.
    #[arg(long)]
    pub show: bool,
    /// Hard-delete the draft units instead of withdrawing them (needs approvals).
    #[arg(long)]
    pub hard_delete: bool,
    /// For --hard-delete: an approval as STATEMENT:SIGNATURE.
    #[arg(long = "approval", value_name = "STATEMENT:SIGNATURE")]
    pub approvals: Vec<String>,
}

/// `cutter backup`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Every artifact in the state directory: size, manifest, restore proof, and the run
    /// it was taken for.
    #[command(
        after_help = "Example:\n  cutter backup list\n  cutter backup list --json | jq '.backups[] | select(.restore_proof == null) | .artifact'"
    )]
    List,
    /// Take an encrypted backup of the mutation surface now: the next link of the backup
    /// chain (an increment when the chain allows it, else full).
    #[command(
        after_help = "Example:\n  cutter backup create --name before-maintenance\n  cutter backup create --full"
    )]
    Create {
        /// Artifact name (default: a timestamp).
        #[arg(long)]
        name: Option<String>,
        /// Take a full backup, starting a new chain.
        #[arg(long)]
        full: bool,
    },
    /// Check the backup set-up without touching the database.
    #[command(after_help = "Example:\n  cutter backup selftest")]
    Selftest,
    /// Check an artifact's sha256 against its manifest.
    #[command(after_help = "Example:\n  cutter backup verify backups/r-1.dump.pgp")]
    Verify {
        /// The artifact.
        artifact: PathBuf,
    },
    /// Restore an artifact into a throwaway cluster and compare with its manifest (an
    /// increment: alone, after its predecessor was proven; with --chain: the whole chain
    /// up to it).
    #[command(
        name = "restore-proof",
        after_help = "Example:\n  CUTTER_BACKUP_PASSPHRASE_FILE=~/.backup-pass cutter backup restore-proof backups/r-1.dump.pgp\n  cutter backup restore-proof --chain backups/r-7.dump.pgp"
    )]
    RestoreProof {
        /// The artifact.
        artifact: PathBuf,
        /// Restore the full backup and every increment up to ARTIFACT, and compare with
        /// its manifest (also proves references across links).
        #[arg(long)]
        chain: bool,
    },
    /// Remove old backup chains: keep the newest N chains whole, and of older chains
    /// every link a held or unresolved run's backup needs; remove the other links.
    #[command(
        after_help = "Example:\n  cutter backup prune --keep-chains 3 --dry-run\n  cutter backup prune --keep-chains 3 --json | jq '.removed_bytes'"
    )]
    Prune {
        /// How many chains to keep whole, newest first (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        keep_chains: u32,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `cutter ledger`.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every hash chain; report the first broken link per table.
    #[command(after_help = "Example:\n  cutter ledger verify")]
    Verify,
    /// The ledger's history, newest first: runs (change sets), approvals, verification
    /// results and review decisions, one entry each (like `sqitch log`).
    #[command(
        after_help = "Example:\n  cutter ledger log\n  cutter ledger log --run-id r-1\n  cutter ledger log --limit 20 --json | jq '.entries[].summary'"
    )]
    Log {
        /// Only the entries of this run.
        #[arg(long)]
        run_id: Option<String>,
        /// At most this many entries (the newest).
        #[arg(long, default_value_t = 50)]
        limit: u64,
        /// Oldest first.
        #[arg(long)]
        reverse: bool,
    },
}
