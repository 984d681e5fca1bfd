//! `mnnn predict`.

use super::CmdResult;
use crate::Failure;
use mnnn_core::csvdata::CsvRows;
use mnnn_core::metrics::RegressionStream;
use mnnn_core::{Error, Inputs, OutputKind};
use ndarray::Array2;
use std::io::Write;
use std::path::Path;

/// Rows read, run and printed at a time: the only data held in memory, whatever the file's
/// length. Prediction carries the memory from chunk to chunk, so the output is exactly that
/// of one pass over the whole file.
pub const CHUNK: usize = 4096;

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
        score = Some(RegressionStream::new(o));
    }
    // The target columns are read with the inputs (so a missing one fails before anything
    // is printed) and kept beside them in the chunk, to the right of the inputs.
    let cols: Vec<String> = inputs.iter().chain(targets).cloned().collect();
    let mut rows = CsvRows::<f32>::open(data, &cols, None)?;
    let (w, ni) = (rows.width(), inputs.len());
    let mut chunk = Array2::<f32>::zeros((CHUNK, w));
    let mut lines = Vec::with_capacity(CHUNK);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io_err = |e: std::io::Error| Failure::from(Error::io("stdout", e));
    let mut header_done = false;
    loop {
        lines.clear();
        while lines.len() < CHUNK {
            let row = chunk.row_mut(lines.len()).into_slice().expect("row-major");
            match rows.next_into(row)? {
                Some(info) => lines.push(info.line),
                None => break,
            }
        }
        let Some((&first, &last)) = lines.first().zip(lines.last()) else {
            break;
        };
        let x = chunk.slice(ndarray::s![..lines.len(), ..ni]).to_owned();
        let ys = m
            .predict(&Inputs::Real(x))
            .map_err(|e| at_lines(data, first, last, e))?;
        if !header_done {
            let names = &m.meta().io.target_names;
            let header: Vec<String> = (0..ys.ncols())
                .map(|j| names.get(j).cloned().unwrap_or_else(|| format!("y{j}")))
                .collect();
            writeln!(out, "{}", header.join(",")).map_err(io_err)?;
            header_done = true;
        }
        for (row, line) in ys.rows().into_iter().zip(&lines) {
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
            let (mut p, mut t) = (Vec::new(), Vec::new());
            for (y, row) in ys.rows().into_iter().zip(chunk.rows()) {
                p.clear();
                t.clear();
                p.extend(y.iter().map(|v| f64::from(*v)));
                t.extend(row.iter().skip(ni).map(|v| f64::from(*v)));
                score.push(&p, &t);
            }
        }
    }
    out.flush().map_err(io_err)?;
    if let Some(score) = score {
        let m = score.finish();
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

/// A model's error on a chunk of rows, with the file and the lines it came from.
pub fn at_lines(data: &Path, first: usize, last: usize, e: Error) -> Failure {
    let mut f = Failure::from(e);
    f.message = format!("{}: lines {first}–{last}: {}", data.display(), f.message);
    f
}
