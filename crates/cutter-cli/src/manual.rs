//! Shell completions (`cutter completions bash|zsh|fish`) and man pages (one per command,
//! `cargo xtask dist`), both generated from the same clap definition as `--help`, so
//! they never drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, Shell};

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    // Into memory: clap_complete panics on a write error (a closed pipe).
    clap_complete::generate(shell, &mut Cli::command(), "cutter", &mut script);
    script
}

/// Prints the completion script for `shell` on stdout; a reader that stops early (a
/// closed pipe) is not an error.
pub fn print_completions(shell: Shell) -> crate::Result<()> {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(&completions(shell))
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::CliError::io(Path::new("standard output"), e))
        }
        _ => Ok(()),
    }
}

/// Writes `cutter.1` and one page per subcommand (`cutter-run.1`, `cutter-db-upgrade.1`,
/// …) into `dir`; returns their paths, sorted.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}
