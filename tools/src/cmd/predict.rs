//! `mnnn predict`.

use super::CmdResult;
use mnnn_core::csvdata::{load_csv, load_csv_inputs};
use mnnn_core::{Inputs, OutputKind, Targets, metrics};
use std::io::Write;
use std::path::Path;

/// Streams a CSV file through a model from its saved memory, printing predictions as CSV;
/// with `targets`, their scores go to stderr.
pub fn run(
    model: &Path,
    data: &Path,
    inputs: &[String],
    state_out: Option<&Path>,
    targets: &[String],
) -> CmdResult {
    let mut m = mnnn_zoo::load::<f32>(model)?;
    super::check_columns("inputs", &m.meta().io.input_names, inputs)?;
    if !targets.is_empty() {
        super::check_columns("targets", &m.meta().io.target_names, targets)?;
        if !matches!(m.meta().io.output, OutputKind::Regression(_)) {
            return Err(crate::Failure::usage(
                "predict --targets scores regression outputs; for classes use eval --warm",
            ));
        }
    }
    // Read before anything is printed, so a missing target column fails cleanly.
    let truth = if targets.is_empty() {
        None
    } else {
        let mut d = load_csv::<f64>(data, inputs, targets, None)?;
        match d.sequences.pop().map(|s| s.targets) {
            Some(Targets::Real(y)) => Some(y),
            _ => unreachable!("regression targets of one sequence"),
        }
    };
    let mut xs = load_csv_inputs::<f32>(data, inputs, None)?;
    let x = xs.pop().expect("one sequence without a sequence column");
    let ys = m.predict(&Inputs::Real(x))?;
    let names = &m.meta().io.target_names;
    let header: Vec<String> = (0..ys.ncols())
        .map(|j| names.get(j).cloned().unwrap_or_else(|| format!("y{j}")))
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io_err = |e: std::io::Error| crate::Failure::from(mnnn_core::Error::io("stdout", e));
    writeln!(out, "{}", header.join(",")).map_err(io_err)?;
    for row in ys.rows() {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        writeln!(out, "{}", cells.join(",")).map_err(io_err)?;
    }
    out.flush().map_err(io_err)?;
    if let Some(y) = truth {
        let pred: Vec<f64> = ys.iter().map(|v| f64::from(*v)).collect();
        let m = metrics::regression(&pred, &y.iter().copied().collect::<Vec<_>>(), y.ncols());
        eprintln!(
            "predict     n={}  r2={}  rmse={}  mae={}  (warm: streamed from the saved memory)",
            m.count,
            super::fmt_opt(m.r2),
            super::fmt_opt(m.rmse),
            super::fmt_opt(m.mae)
        );
    }
    if let Some(p) = state_out {
        m.save(p)?;
    }
    Ok(())
}
