//! `mnnn eval`.

use super::chunks::{AheadScores, Chunks};
use super::{CmdResult, print_metrics};
use crate::Failure;
use mnnn_core::{DynModel, Inputs, OutputKind};
use ndarray::s;
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

/// Scores a model file on a CSV file, streaming it: each sequence runs from the start `start` names,
/// in chunks of rows with the memory carried between them, so memory does not grow with the
/// file's length.
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
    let OutputKind::Regression(o) = m.meta().io.output else {
        return Err(Failure::usage(format!(
            "{}: the model predicts classes; eval scores real-valued target columns",
            model.display()
        )));
    };
    if o != targets.len() {
        return Err(Failure::usage(format!(
            "the model predicts {o} value(s) per row; {} target column(s) given",
            targets.len()
        )));
    }
    let cols: Vec<String> = inputs.iter().chain(targets).cloned().collect();
    if let Start::History(h) = start {
        run_history(m.as_mut(), h, inputs)?;
    }
    // Each sequence starts from this memory when warm (a copy: the sequences do not chain).
    let warm = (!matches!(start, Start::Cold)).then(|| m.state().clone());
    let mut chunks = Chunks::open(data, &cols, sequence)?;
    let ni = inputs.len();
    // A model trained to forecast h steps ahead is scored against the target h rows on.
    let mut score = AheadScores::new(o, m.meta().horizon);
    while let Some(chunk) = chunks.next_chunk()? {
        if chunk.new_sequence {
            score.new_sequence();
            match &warm {
                None => m.reset_state(),
                Some(s) => m.set_state(s)?,
            }
        }
        let x = chunk.rows.slice(s![.., ..ni]).to_owned();
        let ys = m.predict(&Inputs::Real(x)).map_err(|e| chunk.error(e))?;
        score.add(ys.view(), chunk.rows.slice(s![.., ni..]));
    }
    let metrics = score.score.finish();
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

/// Runs the inputs of a history file through the model, in chunks, for its memory only.
fn run_history(m: &mut dyn DynModel<f32>, history: &Path, inputs: &[String]) -> CmdResult {
    let mut chunks = Chunks::open(history, inputs, None)?;
    while let Some(chunk) = chunks.next_chunk()? {
        m.predict(&Inputs::Real(chunk.rows.to_owned()))
            .map_err(|e| chunk.error(e))?;
    }
    Ok(())
}
