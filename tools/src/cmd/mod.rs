//! One module per subcommand.

pub mod bench;
pub mod compare;
pub mod conformance;
pub mod eval;
pub mod import;
pub mod info;
pub mod list;
pub mod predict;
pub mod train;

use crate::Failure;

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
