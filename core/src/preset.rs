//! Presets: named run configs shipped with the program (`zoo/presets/*.ron`), usable wherever
//! a model name is: `create`, a config's `model:`, `mnnn info`, `mnnn compare`.
//!
//! A preset is a run config without data: `(model: "mnemosyne", params: (...), train: (...))`.
//! It registers itself at link time like an entry, so the core resolves preset names without
//! depending on the crate that ships them.

use crate::config::{self, RunConfig};
use crate::registry::{self, Entry};
use crate::{Error, Result};

/// A named run config: the entry it builds, its params and (optionally) its training.
#[derive(Debug)]
pub struct Preset {
    /// The preset's name (its file stem, e.g. `mnemosyne-delta`).
    pub name: &'static str,
    /// Its RON text.
    pub text: &'static str,
}

impl Preset {
    /// The preset read as a run config. Its `model:` must be an entry, not another preset,
    /// so that resolving a name always ends.
    pub fn config(&self) -> Result<RunConfig> {
        config::parse_entry_only(self.text, &format!("preset {}", self.name))
    }

    /// What the preset is for: its leading `//` comment lines joined into one.
    pub fn summary(&self) -> String {
        self.text
            .lines()
            .map(str::trim)
            .take_while(|l| l.starts_with("//"))
            .map(|l| l.trim_start_matches('/').trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every preset linked into this program registers itself here.
#[linkme::distributed_slice]
pub static PRESETS: [Preset];

/// Registers a preset under `name` with its RON text.
///
/// ```ignore
/// mnnn_core::register_preset!("amrc-long-echo", include_str!("amrc-long-echo.ron"));
/// ```
#[macro_export]
macro_rules! register_preset {
    ($name:expr, $text:expr) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::preset::PRESETS)]
            #[linkme(crate = $crate::__private::linkme)]
            static PRESET: $crate::preset::Preset = $crate::preset::Preset {
                name: $name,
                text: $text,
            };
        };
    };
}

/// Every registered preset, sorted by name.
pub fn presets() -> Vec<&'static Preset> {
    let mut v: Vec<&Preset> = PRESETS.iter().collect();
    v.sort_by_key(|p| p.name);
    v
}

/// What a model name stands for: an entry with its defaults, or a preset of an entry.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// The name as the program spells it: the entry's or the preset's.
    pub name: &'static str,
    /// The entry it builds.
    pub entry: &'static Entry,
    /// The preset, if the name is one.
    pub preset: Option<&'static Preset>,
    /// Canonical RON params (`None`: the entry's defaults).
    pub params: Option<String>,
    /// The preset's training settings (the defaults where it gives none).
    pub train: Option<crate::TrainConfig>,
}

/// Resolves an entry or preset name (case-insensitive). An entry's name wins over a preset
/// of the same name; an unknown name gets the nearest entries and presets as suggestions.
pub fn resolve(name: &str) -> Result<Resolved> {
    let entry_err = match registry::find(name) {
        Ok(entry) => {
            return Ok(Resolved {
                name: entry.name,
                entry,
                preset: None,
                params: None,
                train: None,
            });
        }
        Err(e) => e,
    };
    let all = presets();
    let Some(preset) = all.iter().find(|p| p.name.eq_ignore_ascii_case(name)) else {
        let Error::UnknownModel { mut known, .. } = entry_err else {
            return Err(entry_err);
        };
        // A preset named after its entry is the entry's example config, already listed.
        let extra: Vec<String> = all
            .iter()
            .filter(|p| !known.iter().any(|k| k == p.name))
            .map(|p| p.name.to_string())
            .collect();
        known.extend(extra);
        let names: Vec<&str> = known.iter().map(String::as_str).collect();
        return Err(Error::UnknownModel {
            name: name.to_string(),
            suggestions: registry::suggestions(name, &names),
            known,
        });
    };
    let rc = preset.config()?;
    Ok(Resolved {
        name: preset.name,
        entry: registry::find(&rc.model)?,
        preset: Some(preset),
        params: Some(rc.params),
        train: Some(rc.train),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_leading_comment() {
        let p = Preset {
            name: "x",
            text: "// One.\n  // Two.\n(model: \"a\") // not this\n",
        };
        assert_eq!(p.summary(), "One. Two.");
    }
}
