//! DTPN hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// Largest `hidden` and `memory` accepted (the model wrapper separately caps the total
/// number of parameters and state scalars).
pub const MAX_SIZE: usize = 1 << 24;

/// DTPN hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DtpnParams {
    /// Hidden units H (in `[1, 2^24]`; default 32).
    pub hidden: usize,
    /// Rows M of the global memory matrix (in `[1, 2^24]`; default 16).
    pub memory: usize,
    /// Reservoir rate α in `[0, 1]`: how fast `n` follows `y` (default 0.1).
    pub alpha: f64,
    /// Echo gain β in `[0, 1]`: how much of the previous step's `y` is added back
    /// (default 0.3).
    pub beta: f64,
    /// Decay of the memory matrix per step, in `[0, 1]` (default 0.99).
    pub memory_decay: f64,
    /// `"design"` (learned key, value and query; default) or `"reference"` (the reference
    /// implementation's forward pass: static value rows, unaddressed column-mean read).
    pub compat: Compat,
}

impl Default for DtpnParams {
    fn default() -> Self {
        DtpnParams {
            hidden: 32,
            memory: 16,
            alpha: 0.1,
            beta: 0.3,
            memory_decay: 0.99,
            compat: Compat::Design,
        }
    }
}

impl DtpnParams {
    /// Refuses sizes outside `[1, 2^24]` and rates outside `[0, 1]` (NaN included).
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_SIZE)?;
        check_range("memory", self.memory, 1, MAX_SIZE)?;
        check_range("alpha", self.alpha, 0.0, 1.0)?;
        check_range("beta", self.beta, 0.0, 1.0)?;
        check_range("memory_decay", self.memory_decay, 0.0, 1.0)
    }
}
