//! `mnnn info NAME`.

use super::CmdResult;
use mnnn_core::IoSpec;

/// Prints the model card of one entry or preset.
pub fn run(name: &str, inputs: usize, outputs: usize) -> CmdResult {
    let r = mnnn_zoo::resolve(name)?;
    let e = r.entry;
    let io = IoSpec::regression(inputs.max(1), outputs.max(1));
    let model = e.create::<f32>(r.params.as_deref(), &io, 0)?;
    let params = r.params.clone().unwrap_or_else(|| (e.default_params)());
    let pretty = readable(&params);
    match r.preset {
        Some(p) => {
            println!("{} (preset of {}, {})", p.name, e.name, e.family);
            println!("  {}", p.summary());
            println!("  {}: {}", e.name, e.summary);
        }
        None => {
            println!("{} ({})", e.name, e.family);
            println!("  {}", e.summary);
        }
    }
    println!("\ncitation:\n  {}", e.citation);
    let which = if r.preset.is_some() {
        "preset"
    } else {
        "default"
    };
    println!("\n{which} params:\n  {pretty}");
    println!(
        "\nstate: {} floats per sequence = {}",
        model.state_size(),
        e.state_formula
    );
    for t in model.state().layout().entries() {
        println!("  state.{:<14} {:?}", t.name, &t.shape[1..]);
    }
    println!(
        "\nparameters ({} inputs, {} outputs): {} in all",
        io.cell_input(),
        io.cell_output(),
        model.params().data().len()
    );
    for t in model.params().layout().entries() {
        println!("  {:<20} {:?} = {}", t.name, t.shape, t.len());
    }
    println!("\ndiagnostics: {}", e.diagnostics.join(", "));
    let caps: Vec<String> = e.capabilities.iter().map(|c| format!("{c:?}")).collect();
    println!("capabilities: {}", caps.join(", "));
    Ok(())
}

/// Canonical RON (`(a:1,b:2)`) with a space after each separator outside strings.
fn readable(ron: &str) -> String {
    let mut out = String::with_capacity(ron.len() + 16);
    let mut in_str = false;
    for c in ron.chars() {
        out.push(c);
        if c == '"' {
            in_str = !in_str;
        } else if !in_str && (c == ':' || c == ',') {
            out.push(' ');
        }
    }
    out
}
