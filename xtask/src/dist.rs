//! `cargo xtask dist`: the release `cutter` with its man pages, shell completions and
//! the documents an operator needs, laid out as an install tree under
//! `target/dist/cutter-<version>/` (`bin/`, `share/man/man1/`, `share/bash-completion/`,
//! `share/zsh/`, `share/fish/`, `share/doc/cutter/`). The pages and scripts come from
//! the same clap definition as `--help` (`cutter_cli::manual`).

use std::path::{Path, PathBuf};

use cutter_cli::cli::Shell;

/// Builds the release binary and assembles the tree; prints where it is.
pub fn main() -> Result<(), String> {
    let bin = crate::faults::build_cutter(true)?;
    // target/release/cutter → target/dist/cutter-<version>
    let target = bin
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{}: not inside a target directory", bin.display()))?;
    let out = target
        .join("dist")
        .join(format!("cutter-{}", env!("CARGO_PKG_VERSION")));
    let files = assemble(&bin, &out)?;
    println!("xtask: {} ({} files)", out.display(), files.len());
    Ok(())
}

/// Where each generated file goes, relative to the tree's root.
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "share/bash-completion/completions/cutter"),
    (Shell::Zsh, "share/zsh/site-functions/_cutter"),
    (Shell::Fish, "share/fish/vendor_completions.d/cutter.fish"),
];

/// The documents copied into `share/doc/cutter/`, from the repository root.
const DOCS: [&str; 5] = [
    "README.md",
    "ARCHITECTURE.md",
    "docs/cli-json.md",
    "docs/cli-json.schema.json",
    "docs/logs.md",
];

/// Lays out the tree at `out` (replacing an earlier one) around the binary `bin`;
/// returns every file written.
pub fn assemble(bin: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let err = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| err("removing the earlier", out, e))?;
    }
    let mut files = Vec::new();
    let mut put = |rel: &str, bytes: &[u8], mode: u32| -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let p = out.join(rel);
        let dir = p.parent().expect("a relative path with a file name");
        std::fs::create_dir_all(dir).map_err(|e| err("creating", dir, e))?;
        std::fs::write(&p, bytes).map_err(|e| err("writing", &p, e))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err("setting the mode of", &p, e))?;
        files.push(p);
        Ok(())
    };
    let binary = std::fs::read(bin).map_err(|e| err("reading", bin, e))?;
    put("bin/cutter", &binary, 0o755)?;
    for (shell, rel) in COMPLETIONS {
        put(rel, &cutter_cli::manual::completions(shell), 0o644)?;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for doc in DOCS {
        let src = root.join(doc);
        let bytes = std::fs::read(&src).map_err(|e| err("reading", &src, e))?;
        let name = Path::new(doc).file_name().expect("a file name");
        put(
            &format!("share/doc/cutter/{}", name.to_string_lossy()),
            &bytes,
            0o644,
        )?;
    }
    let man = out.join("share/man/man1");
    std::fs::create_dir_all(&man).map_err(|e| err("creating", &man, e))?;
    files.extend(
        cutter_cli::manual::man_pages(&man).map_err(|e| err("writing man pages into", &man, e))?,
    );
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_has_the_binary_pages_completions_and_docs() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cutter");
        std::fs::write(&bin, b"#!/bin/sh\n").unwrap();
        let out = dir.path().join("dist/cutter-0");
        // An earlier tree is replaced, not merged.
        std::fs::create_dir_all(out.join("stale")).unwrap();
        let files = assemble(&bin, &out).unwrap();
        assert!(!out.join("stale").exists());
        for rel in [
            "bin/cutter",
            "share/man/man1/cutter.1",
            "share/man/man1/cutter-run.1",
            "share/man/man1/cutter-backup-list.1",
            "share/bash-completion/completions/cutter",
            "share/zsh/site-functions/_cutter",
            "share/fish/vendor_completions.d/cutter.fish",
            "share/doc/cutter/cli-json.schema.json",
            "share/doc/cutter/logs.md",
        ] {
            assert!(out.join(rel).is_file(), "{rel} missing: {files:?}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("bin/cutter"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let pages = files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "1"))
            .count();
        assert!(pages >= 30, "{pages} man pages");
        let zsh = std::fs::read_to_string(out.join("share/zsh/site-functions/_cutter")).unwrap();
        assert!(zsh.starts_with("#compdef cutter"), "{zsh}");
    }
}
