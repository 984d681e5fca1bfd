//! `mnnn predict`.

use super::CmdResult;
use super::chunks::{AheadScores, Chunks};
use crate::Failure;
use mnnn_core::{Error, Inputs, OutputKind};
use ndarray::s;
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
    if let Some(out) = state_out {
        super::refuse_overwrite("--state-out", out, &[model, data])?;
    }
    let mut m = mnnn_zoo::load::<f32>(model)?;
    super::check_columns("inputs", &m.meta().io.input_names, inputs)?;
    let mut score = None;
    if !targets.is_empty() {
        super::check_columns("targets", &m.meta().io.target_names, targets)?;
        let OutputKind::Regression(o) = m.meta().io.output else {
            return Err(Failure::usage(
                "predict --targets scores regression outputs; for classes use eval --warm",
            ));
        };
        score = Some(AheadScores::new(o, m.meta().horizon));
    }
    // The target columns are read with the inputs (so a missing one fails before anything
    // is printed) and kept beside them in the chunk, to the right of the inputs.
    let cols: Vec<String> = inputs.iter().chain(targets).cloned().collect();
    let mut chunks = Chunks::open(data, &cols, None)?;
    let ni = inputs.len();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io_err = |e: std::io::Error| Failure::from(Error::io("stdout", e));
    let mut header_done = false;
    while let Some(chunk) = chunks.next_chunk()? {
        let x = chunk.rows.slice(s![.., ..ni]).to_owned();
        let ys = m.predict(&Inputs::Real(x)).map_err(|e| chunk.error(e))?;
        if !header_done {
            let names = &m.meta().io.target_names;
            let header: Vec<String> = (0..ys.ncols())
                .map(|j| names.get(j).cloned().unwrap_or_else(|| format!("y{j}")))
                .collect();
            writeln!(out, "{}", header.join(",")).map_err(io_err)?;
            header_done = true;
        }
        for (row, line) in ys.rows().into_iter().zip(chunk.lines) {
            if let Some(v) = row.iter().find(|v| !v.is_finite()) {
                out.flush().map_err(io_err)?;
                return Err(Failure::failed(format!(
                    "{}: line {line}: the model's output is {v}: its weights or memory overflow f32 \
                     on this input",
                    data.display()
                )));
            }
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            writeln!(out, "{}", cells.join(",")).map_err(io_err)?;
        }
        if let Some(score) = &mut score {
            score.add(ys.view(), chunk.rows.slice(s![.., ni..]));
        }
    }
    out.flush().map_err(io_err)?;
    if let Some(score) = score {
        let m = score.score.finish();
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
