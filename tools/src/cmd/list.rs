//! `mnnn list`.

use super::CmdResult;
use mnnn_core::{Dims, IoSpec};
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    name: &'static str,
    family: String,
    summary: &'static str,
    state_size: usize,
    state_formula: &'static str,
    parameters: usize,
    cell_parameters: usize,
}

fn rows() -> Result<Vec<Row>, crate::Failure> {
    let io = IoSpec::regression(1, 1);
    mnnn_zoo::entries()
        .into_iter()
        .map(|e| {
            let defaults = (e.default_params)();
            let dims = Dims {
                input: 1,
                output: 1,
            };
            let model = e.create::<f32>(None, &io, 0)?;
            Ok(Row {
                name: e.name,
                family: e.family.to_string(),
                summary: e.summary,
                state_size: (e.state_size)(
                    &defaults,
                    Dims {
                        input: 1,
                        output: 1,
                    },
                )?,
                state_formula: e.state_formula,
                parameters: model.params().data().len(),
                cell_parameters: (e.param_count)(&defaults, dims)?,
            })
        })
        .collect()
}

/// Prints every entry.
pub fn run(json: bool) -> CmdResult {
    let rows = rows()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
        return Ok(());
    }
    let width = rows
        .iter()
        .map(|r| r.summary.len())
        .max()
        .unwrap_or(7)
        .max(7);
    println!(
        "{:<12} {:<9} {:<width$} {:>6} {:>7}",
        "name", "family", "summary", "state", "params"
    );
    for r in rows {
        println!(
            "{:<12} {:<9} {:<width$} {:>6} {:>7}",
            r.name, r.family, r.summary, r.state_size, r.parameters
        );
    }
    println!("\n(state and params at default hyper-parameters, 1 input, 1 output)");
    Ok(())
}
