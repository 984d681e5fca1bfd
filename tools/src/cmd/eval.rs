//! `mnnn eval`.

use super::predict::{CHUNK, at_lines};
use super::{CmdResult, print_metrics};
use crate::Failure;
use mnnn_core::csvdata::CsvRows;
use mnnn_core::metrics::RegressionStream;
use mnnn_core::{DynModel, Inputs, OutputKind};
use ndarray::Array2;
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
    let mut rows = CsvRows::<f32>::open(data, &cols, sequence)?;
    let ni = inputs.len();
    let mut chunk = Array2::<f32>::zeros((CHUNK, cols.len()));
    let mut score = RegressionStream::new(o);
    let mut n = 0;
    let mut lines = (0, 0);
    let mut row = vec![0.0f32; cols.len()];
    while let Some(info) = rows.next_into(&mut row)? {
        if n == CHUNK || (info.new_sequence && n > 0) {
            flush(m.as_mut(), &chunk, n, ni, &mut score)
                .map_err(|e| at_lines(data, lines.0, lines.1, e))?;
            n = 0;
        }
        if info.new_sequence {
            match &warm {
                None => m.reset_state(),
                Some(s) => m.set_state(s)?,
            }
        }
        if n == 0 {
            lines.0 = info.line;
        }
        lines.1 = info.line;
        chunk
            .row_mut(n)
            .as_slice_mut()
            .expect("row-major")
            .copy_from_slice(&row);
        n += 1;
    }
    flush(m.as_mut(), &chunk, n, ni, &mut score)
        .map_err(|e| at_lines(data, lines.0, lines.1, e))?;
    let metrics = score.finish();
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

/// Runs the first `n` rows of `chunk` (inputs, then targets) from the model's memory and adds
/// their scores.
fn flush(
    m: &mut dyn DynModel<f32>,
    chunk: &Array2<f32>,
    n: usize,
    ni: usize,
    score: &mut RegressionStream,
) -> mnnn_core::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let x = chunk.slice(ndarray::s![..n, ..ni]).to_owned();
    let ys = m.predict(&Inputs::Real(x))?;
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for (y, row) in ys.rows().into_iter().zip(chunk.rows()) {
        p.clear();
        t.clear();
        p.extend(y.iter().map(|v| *v as f64));
        t.extend(row.iter().skip(ni).map(|v| *v as f64));
        score.push(&p, &t);
    }
    Ok(())
}

/// Runs the inputs of a history file through the model, in chunks, for its memory only.
fn run_history(m: &mut dyn DynModel<f32>, history: &Path, inputs: &[String]) -> CmdResult {
    let mut rows = CsvRows::<f32>::open(history, inputs, None)?;
    let mut chunk = Array2::<f32>::zeros((CHUNK, inputs.len()));
    let mut row = vec![0.0f32; inputs.len()];
    let (mut n, mut lines) = (0, (0, 0));
    loop {
        let next = rows.next_into(&mut row)?;
        if n == CHUNK || (next.is_none() && n > 0) {
            let x = chunk.slice(ndarray::s![..n, ..]).to_owned();
            m.predict(&Inputs::Real(x))
                .map_err(|e| at_lines(history, lines.0, lines.1, e))?;
            n = 0;
        }
        let Some(info) = next else { break };
        if n == 0 {
            lines.0 = info.line;
        }
        lines.1 = info.line;
        chunk
            .row_mut(n)
            .as_slice_mut()
            .expect("row-major")
            .copy_from_slice(&row);
        n += 1;
    }
    Ok(())
}
