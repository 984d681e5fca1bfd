//! `mnnn predict`.

use super::CmdResult;
use mnnn_core::Inputs;
use mnnn_core::csvdata::load_csv_inputs;
use std::io::Write;
use std::path::Path;

/// Streams a CSV file through a model from its saved memory, printing predictions as CSV.
pub fn run(model: &Path, data: &Path, inputs: &[String], state_out: Option<&Path>) -> CmdResult {
    let mut m = mnnn_zoo::load::<f32>(model)?;
    super::check_columns("inputs", &m.meta().io.input_names, inputs)?;
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
    if let Some(p) = state_out {
        m.save(p)?;
    }
    Ok(())
}
