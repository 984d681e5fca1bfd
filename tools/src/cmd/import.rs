//! `mnnn import`.

use super::CmdResult;
use crate::Failure;
use mnnn_core::reference::{self, RefDims};
use std::path::Path;

/// Reads a reference implementation's save file into an mnnn model file.
pub fn run(model: &str, dims: RefDims, file: &Path, out: &Path) -> CmdResult {
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
