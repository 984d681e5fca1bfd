//! AMRC hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// AMRC hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmrcParams {
    /// Hidden units (≥ 1; default 32).
    pub hidden: usize,
    /// Memory rate α in `[0, 1]`: how fast `m` follows the hidden activity (default 0.1).
    pub alpha: f64,
    /// Echo gain β in `[0, 1]`: how much of the previous hidden output is added back
    /// (default 0.3).
    pub beta: f64,
    /// `"design"` (default): the echo reads the previous step. `"reference"`: the reference
    /// implementation's forward pass, whose echo reads two steps back (state gains `p`).
    pub compat: Compat,
}

impl Default for AmrcParams {
    fn default() -> Self {
        AmrcParams {
            hidden: 32,
            alpha: 0.1,
            beta: 0.3,
            compat: Compat::Design,
        }
    }
}

impl AmrcParams {
    /// Refuses sizes below 1 and rates outside `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, 1 << 24)?;
        check_range("alpha", self.alpha, 0.0, 1.0)?;
        check_range("beta", self.beta, 0.0, 1.0)
    }
}
