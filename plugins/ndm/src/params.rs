//! NDM hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest `hidden` accepted: the recurrent fast weights are `hidden²` per sequence (the
/// model wrapper separately caps the total number of scalars).
pub const MAX_HIDDEN: usize = 1 << 14;
/// Largest `manifold` accepted.
pub const MAX_MANIFOLD: usize = 1 << 24;
/// Smallest `dt` accepted.
pub const MIN_DT: f64 = 0.01;
/// Smallest `plasticity_decay` accepted: below it the fast weights freeze within a few
/// dozen steps.
pub const MIN_PLASTICITY_DECAY: f64 = 0.9;
/// Largest `trace_decay`, `memory_decay` and `momentum` accepted.
pub const MAX_RETENTION: f64 = 0.99;

/// Which of the reference's three NDM programs the cell follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `ndm.c`: Euler steps on the fast weights.
    #[default]
    Original,
    /// `ndm_.c`: the same with clips on every intermediate value and on the weights.
    Clamped,
    /// `ndm_momentum.c`: the fast weights move with a velocity (heavy-ball integration).
    Momentum,
}

impl Variant {
    /// The RON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Clamped => "clamped",
            Variant::Momentum => "momentum",
        }
    }

    /// Every spelling, for parameter ranges.
    pub const NAMES: &'static [&'static str] = &["original", "clamped", "momentum"];
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "original" => Ok(Variant::Original),
            "clamped" => Ok(Variant::Clamped),
            "momentum" => Ok(Variant::Momentum),
            other => Err(serde::de::Error::custom(format!(
                "variant must be \"original\", \"clamped\" or \"momentum\", not \"{other}\""
            ))),
        }
    }
}

/// NDM hyper-parameters. Input and output widths come from the data.
///
/// In `compat: "reference"` the step constants (`dt`, `weight_decay`, `hebbian`,
/// `plasticity`, `plasticity_decay`, `trace_decay`, `memory_decay`) are the reference
/// program's fixed values for the chosen variant and these fields are not read; `momentum`
/// is read in both modes (the reference has a setter for it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NdmParams {
    /// Hidden units H, in `[1, 2^14]` (default 32).
    pub hidden: usize,
    /// Rows M of the memory manifold (an `M × H` matrix), in `[1, 2^24]` (default 16).
    pub manifold: usize,
    /// `"original"` (default), `"clamped"` or `"momentum"`.
    pub variant: Variant,
    /// Euler step of the hidden ODE and of the fast weights, in `[0.01, 1]` (default 0.1).
    pub dt: f64,
    /// Rate λ at which a fast weight returns to its learned initial value, in `[0, 1]`
    /// (default 0.1).
    pub weight_decay: f64,
    /// Initial value of the learned Hebbian rates η, in `[-1, 1]` (default 0.1).
    pub hebbian: f64,
    /// Plasticity of every fast weight after a reset, in `[0, 1]` (default 1).
    pub plasticity: f64,
    /// Factor the plasticity is multiplied by at every token, in `[0.9, 1]` (default 0.999).
    pub plasticity_decay: f64,
    /// Decay of the Hebbian traces per step, in `[0, 0.99]` (default 0.95).
    pub trace_decay: f64,
    /// Decay of the manifold per step, in `[0, 0.99]` (default 0.95); a write adds
    /// `(1 − memory_decay)·k vᵀ`, so the manifold stays inside `[−1, 1]`.
    pub memory_decay: f64,
    /// Velocity retention β of the `momentum` variant, in `[0, 0.99]` (default 0.9).
    pub momentum: f64,
    /// `"design"` (default) or `"reference"`: which equations run (see the crate docs).
    pub compat: Compat,
}

impl Default for NdmParams {
    fn default() -> Self {
        NdmParams {
            hidden: 32,
            manifold: 16,
            variant: Variant::Original,
            dt: 0.1,
            weight_decay: 0.1,
            hebbian: 0.1,
            plasticity: 1.0,
            plasticity_decay: 0.999,
            trace_decay: 0.95,
            memory_decay: 0.95,
            momentum: 0.9,
            compat: Compat::Design,
        }
    }
}

impl NdmParams {
    /// Refuses sizes and values outside their ranges, naming the field and the range.
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_HIDDEN)?;
        check_range("manifold", self.manifold, 1, MAX_MANIFOLD)?;
        check_range("dt", self.dt, MIN_DT, 1.0)?;
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)?;
        check_range("hebbian", self.hebbian, -1.0, 1.0)?;
        check_range("plasticity", self.plasticity, 0.0, 1.0)?;
        check_range(
            "plasticity_decay",
            self.plasticity_decay,
            MIN_PLASTICITY_DECAY,
            1.0,
        )?;
        check_range("trace_decay", self.trace_decay, 0.0, MAX_RETENTION)?;
        check_range("memory_decay", self.memory_decay, 0.0, MAX_RETENTION)?;
        check_range("momentum", self.momentum, 0.0, MAX_RETENTION)
    }
}
