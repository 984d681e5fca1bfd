//! `mnnn eval`.

use super::{CmdResult, print_metrics};
use mnnn_core::csvdata::load_csv;
use std::path::Path;

/// Scores a model file on a CSV file.
pub fn run(
    model: &Path,
    data: &Path,
    inputs: &[String],
    targets: &[String],
    sequence: Option<&str>,
    json: bool,
) -> CmdResult {
    let m = mnnn_zoo::load::<f32>(model)?;
    super::check_columns("inputs", &m.meta().io.input_names, inputs)?;
    super::check_columns("targets", &m.meta().io.target_names, targets)?;
    let mut d = load_csv::<f32>(data, inputs, targets, sequence)?;
    d.io = m.meta().io.clone();
    let metrics = m.evaluate(&d)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&metrics).expect("metrics serialise")
        );
    } else {
        print_metrics("eval", &metrics);
    }
    Ok(())
}
