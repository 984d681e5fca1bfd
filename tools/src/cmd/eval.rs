//! `mnnn eval`.

use super::{CmdResult, print_metrics};
use mnnn_core::Inputs;
use mnnn_core::csvdata::{load_csv, load_csv_inputs};
use serde::Serialize;
use std::path::Path;

/// Where scoring starts.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Every sequence from a fresh state.
    Cold,
    /// From the memory saved in the model file.
    Warm,
    /// From the saved memory after running the inputs of this CSV file.
    History(&'a Path),
}

impl<'a> Start<'a> {
    /// The start the `--warm` and `--history` flags ask for.
    pub fn from_flags(warm: bool, history: Option<&'a Path>) -> Self {
        match (warm, history) {
            (_, Some(h)) => Start::History(h),
            (true, None) => Start::Warm,
            (false, None) => Start::Cold,
        }
    }

    fn describe(self) -> String {
        match self {
            Start::Cold => "cold: each sequence from a fresh state".into(),
            Start::Warm => "warm: from the memory saved in the model file".into(),
            Start::History(p) => format!(
                "warm: from the saved memory after the history in {}",
                p.display()
            ),
        }
    }
}

#[derive(Serialize)]
struct Scored<'a> {
    scoring: &'static str,
    #[serde(flatten)]
    metrics: &'a mnnn_core::Metrics,
}

/// Scores a model file on a CSV file.
pub fn run(
    model: &Path,
    data: &Path,
    inputs: &[String],
    targets: &[String],
    sequence: Option<&str>,
    start: Start<'_>,
    json: bool,
) -> CmdResult {
    let mut m = mnnn_zoo::load::<f32>(model)?;
    super::check_columns("inputs", &m.meta().io.input_names, inputs)?;
    super::check_columns("targets", &m.meta().io.target_names, targets)?;
    let mut d = load_csv::<f32>(data, inputs, targets, sequence)?;
    d.io = m.meta().io.clone();
    if let Start::History(h) = start {
        for x in load_csv_inputs::<f32>(h, inputs, None)? {
            m.predict(&Inputs::Real(x))?;
        }
    }
    let metrics = match start {
        Start::Cold => m.evaluate(&d)?,
        Start::Warm | Start::History(_) => m.evaluate_warm(&d)?,
    };
    if json {
        let s = Scored {
            scoring: if matches!(start, Start::Cold) {
                "cold"
            } else {
                "warm"
            },
            metrics: &metrics,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&s).expect("metrics serialise")
        );
    } else {
        print_metrics("eval", &metrics);
        println!("            ({})", start.describe());
    }
    Ok(())
}
