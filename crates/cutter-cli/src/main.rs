use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cutter_cli::cli::Cli::parse();
    init_tracing();
    let out = cutter_cli::output::Output { json: cli.json };
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
