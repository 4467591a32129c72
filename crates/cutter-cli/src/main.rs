use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match cutter_cli::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_tracing();
    let out = cutter_cli::output::Output::new(cli.json);
    match cutter_cli::commands::dispatch(cli, out) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            out.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new("warn,pgp=off,html5ever=off,markup5ever=off,selectors=off")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A command line clap rejects. `--help` and `--version` print as usual; anything else
/// is a usage error (exit 2), and with `--json` anywhere before `--` stdout still gets
/// the JSON envelope scripts parse, as for every other error.
fn usage_error(e: clap::Error) -> ExitCode {
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        // clap prints it (help and version to stdout, exit 0; errors to stderr, exit 2).
        e.exit();
    }
    let err = cutter_cli::CliError::Usage(e.render().to_string().trim_end().to_string());
    cutter_cli::output::Output::new(true).error(&err);
    ExitCode::from(err.exit_code())
}
