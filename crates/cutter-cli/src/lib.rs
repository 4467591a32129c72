//! The `cutter` command: argument parsing, configuration, the state directory,
//! progress and output. Thin: decisions live in `cutter-core`.
