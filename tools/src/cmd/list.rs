//! `mnnn list`.

use super::CmdResult;
use mnnn_core::{Dims, IoSpec};
use serde::Serialize;

#[derive(Serialize)]
struct Row {
    name: &'static str,
    family: String,
    /// The entry a preset builds (`None` for an entry).
    preset_of: Option<&'static str>,
    summary: String,
    state_size: usize,
    state_formula: &'static str,
    parameters: usize,
    cell_parameters: usize,
}

/// Entries first, then each preset with its entry's family, at 1 input and 1 output.
fn rows() -> Result<Vec<Row>, crate::Failure> {
    let io = IoSpec::regression(1, 1);
    let dims = Dims {
        input: 1,
        output: 1,
    };
    let names: Vec<&str> = mnnn_zoo::entries()
        .iter()
        .map(|e| e.name)
        .chain(mnnn_core::preset::presets().iter().map(|p| p.name))
        .collect();
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        // A preset file named after its entry (`amrc.ron`) is that entry's example config:
        // the name means the entry, so it is listed once.
        .filter(|n| seen.insert(*n))
        .map(|name| {
            let r = mnnn_zoo::resolve(name)?;
            let e = r.entry;
            let params = r.params.clone().unwrap_or_else(|| (e.default_params)());
            let model = e.create::<f32>(Some(&params), &io, 0)?;
            Ok(Row {
                name: r.name,
                family: e.family.to_string(),
                preset_of: r.preset.map(|_| e.name),
                summary: r
                    .preset
                    .map_or(e.summary.to_string(), |p| first_sentence(&p.summary())),
                state_size: (e.state_size)(&params, dims)?,
                state_formula: e.state_formula,
                parameters: model.params().data().len(),
                cell_parameters: (e.param_count)(&params, dims)?,
            })
        })
        .collect()
}

/// Prints every entry and preset.
pub fn run(json: bool) -> CmdResult {
    let rows = rows()?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
        return Ok(());
    }
    let mut t = crate::table::new(
        &["name", "family", "preset of", "summary", "state", "params"],
        &["state", "params"],
    );
    for r in rows {
        t.add_row(vec![
            r.name.to_string(),
            r.family,
            r.preset_of.unwrap_or("").to_string(),
            r.summary,
            r.state_size.to_string(),
            r.parameters.to_string(),
        ]);
    }
    println!("{t}");
    println!(
        "\n(state and params at each entry's or preset's hyper-parameters, 1 input, 1 output; a \
         preset's name works wherever an entry's does: info, configs, compare)"
    );
    Ok(())
}

/// Up to the first full stop that ends a sentence: the rest is for `mnnn info`.
fn first_sentence(text: &str) -> String {
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text.to_string(),
    }
}
