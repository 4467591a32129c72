use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match cutter_cli::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let out = cutter_cli::output::Output::new(cli.json).with_notes(|n| eprintln!("cutter: {n}"));
    let logs = cutter_cli::logging::LogSettings {
        verbose: cli.verbose,
        quiet: cli.quiet,
        format: cli.log_format,
        file: cli.log_file.as_deref(),
        rust_log: std::env::var("RUST_LOG").ok(),
    };
    if let Err(e) = cutter_cli::logging::init(&logs) {
        out.error(&e);
        return ExitCode::from(e.exit_code());
    }
    match cutter_cli::commands::dispatch(cli, out) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command line clap rejects. `--help` prints as usual and `--version` prints
/// [`cutter_cli::version::long`] (exit 0); anything else is a usage error (exit 2), and
/// with `--json` anywhere before `--` stdout still gets the JSON envelope scripts parse,
/// as for every other error.
fn usage_error(e: clap::Error) -> ExitCode {
    if e.kind() == ErrorKind::DisplayVersion {
        print!("{}", cutter_cli::version::long());
        return ExitCode::SUCCESS;
    }
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !json || e.kind() == ErrorKind::DisplayHelp {
        // clap prints it (help to stdout, exit 0; errors to stderr, exit 2).
        e.exit();
    }
    let err = cutter_cli::CliError::Usage(e.render().to_string().trim_end().to_string());
    cutter_cli::output::Output::new(true).error(&err);
    ExitCode::from(err.exit_code())
}
