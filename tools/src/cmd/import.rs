//! `mnnn import`.

use super::CmdResult;
use crate::Failure;
use mnnn_core::reference::{self, RefDims};
use std::path::Path;

/// Reads a reference implementation's save file into an mnnn model file.
pub fn run(model: &str, dims: RefDims, file: &Path, out: &Path) -> CmdResult {
    super::refuse_overwrite("--out", out, &[file])?;
    dims.validate()?;
    let entry = mnnn_zoo::find(model)?;
    let import = entry.import_reference.ok_or_else(|| {
        Failure::usage(format!(
            "'{}' has no counterpart in the reference implementation",
            entry.name
        ))
    })?;
    let bytes = std::fs::read(file).map_err(|e| mnnn_core::Error::io(file, e))?;
    let imported =
        import(&bytes, &dims).map_err(|e| Failure::failed(format!("{}: {e}", file.display())))?;
    let m = reference::build(entry, &imported, &dims)?;
    save(entry, m.as_ref(), file, out)
}

/// Reads a PyTorch `nn.LSTM` / `nn.GRU` file (with its `nn.Linear` head) into an mnnn model
/// file.
pub fn run_torch(model: &str, file: &Path, out: &Path) -> CmdResult {
    super::refuse_overwrite("--out", out, &[file])?;
    let entry = mnnn_zoo::find(model)?;
    let kind = match entry.name {
        "lstm" => mnnn_zoo::rnn::Kind::Lstm,
        "gru" => mnnn_zoo::rnn::Kind::Gru,
        other => {
            return Err(Failure::usage(format!(
                "'{other}' has no PyTorch counterpart (lstm and gru have)"
            )));
        }
    };
    let bytes = std::fs::read(file).map_err(|e| mnnn_core::Error::io(file, e))?;
    let (imported, dims) = mnnn_zoo::rnn::import_torch(kind, &bytes)
        .map_err(|e| Failure::failed(format!("{}: {e}", file.display())))?;
    let m = reference::build(entry, &imported, &dims)?;
    save(entry, m.as_ref(), file, out)
}

fn save(
    entry: &mnnn_core::Entry,
    m: &dyn mnnn_core::DynModel<f32>,
    file: &Path,
    out: &Path,
) -> CmdResult {
    m.save(out)?;
    println!(
        "imported {} ({} parameters, state {}) from {} into {}",
        entry.name,
        m.params().data().len(),
        m.state_size(),
        file.display(),
        out.display()
    );
    Ok(())
}
