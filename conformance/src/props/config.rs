//! Parameters survive RON round trips; presets parse and validate.

use super::Check;
use crate::case::Case;
use mnnn_core::config;
use mnnn_core::registry::Entry;

/// The property on one case, plus the entry's defaults and every preset that names it.
pub fn check(entry: &Entry, case: &Case, presets: &[(String, String)]) -> Check {
    let default = (entry.default_params)();
    let back =
        (entry.parse_params)(&default).map_err(|e| format!("default params do not parse: {e}"))?;
    if back != default {
        return Err(format!(
            "default params change in a round trip: {default} → {back}"
        ));
    }
    let canon =
        (entry.parse_params)(&case.params).map_err(|e| format!("valid params refused: {e}"))?;
    let again =
        (entry.parse_params)(&canon).map_err(|e| format!("canonical params refused: {e}"))?;
    if again != canon {
        return Err(format!("params change in a round trip: {canon} → {again}"));
    }
    for (name, text) in presets {
        match config::parse(text, name) {
            Ok(cfg) if cfg.model != entry.name => {}
            Ok(_) => {}
            Err(e) if text.contains(&format!("\"{}\"", entry.name)) => {
                return Err(format!("preset {name} does not parse: {e}"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}
