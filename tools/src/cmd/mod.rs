//! One module per subcommand.

pub mod bench;
pub mod chunks;
pub mod compare;
pub mod conformance;
pub mod eval;
pub mod import;
pub mod info;
pub mod list;
pub mod predict;
pub mod train;

use crate::Failure;
use std::path::Path;

/// The result every subcommand returns.
pub type CmdResult = Result<(), Failure>;

/// Refuses columns that differ from the ones the model was trained on (when it recorded
/// them): a silent reorder would give wrong predictions.
pub fn check_columns(what: &str, trained: &[String], given: &[String]) -> CmdResult {
    if !trained.is_empty() && trained != given {
        return Err(Failure::usage(format!(
            "the model was trained on {what} [{}]; got [{}]",
            trained.join(", "),
            given.join(", ")
        )));
    }
    Ok(())
}

/// Refuses to write `out` (given as `flag`) when it is one of the files the command reads, by
/// any name (a link, `./`, a symlink): the write would destroy the input it came from.
pub fn refuse_overwrite(flag: &str, out: &Path, reads: &[&Path]) -> CmdResult {
    for r in reads {
        if same_file(out, r) {
            return Err(Failure::usage(format!(
                "{flag} {} is {}, which this command reads; write to another file",
                out.display(),
                r.display()
            )));
        }
    }
    Ok(())
}

/// Whether two paths name one existing file.
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether two paths name one existing file.
#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Formats an optional metric for a table.
pub fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.4}"))
}

/// Prints a [`mnnn_core::Metrics`] as aligned lines.
pub fn print_metrics(label: &str, m: &mnnn_core::Metrics) {
    let mut parts = vec![format!("n={}", m.count)];
    for (k, v) in [
        ("r2", m.r2),
        ("mse", m.mse),
        ("rmse", m.rmse),
        ("mae", m.mae),
        ("accuracy", m.accuracy),
        ("cross_entropy", m.cross_entropy),
    ] {
        if v.is_some() {
            parts.push(format!("{k}={}", fmt_opt(v)));
        }
    }
    println!("{label:<12}{}", parts.join("  "));
}
