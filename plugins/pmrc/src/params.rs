//! PMRC hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// Largest hidden width accepted (the model wrapper further caps the total number of
/// parameters at 2^28 scalars, which with the `hidden × hidden` matrices bites much earlier).
pub const MAX_HIDDEN: usize = 1 << 24;

/// PMRC hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PmrcParams {
    /// Hidden units (in `[1, 2^24]`; default 32).
    pub hidden: usize,
    /// Memory rate α in `[0, 1]` of the ungated memory `m ← (1 − α) m + α n` (default 0.1;
    /// unused when the learnable gates are on).
    pub alpha: f64,
    /// Hidden echo gain β in `[0, 1]` (default 0.3).
    pub beta: f64,
    /// Output echo gain β_o in `[0, 1]` (default 0.2; used only with `use_output_memory`).
    pub output_beta: f64,
    /// Whether the hidden layer reads its previous output through `U_r` (default true).
    pub use_recurrent: bool,
    /// Whether the memory is a learned sigmoid gate over a tanh candidate (default true);
    /// otherwise a fixed-rate leaky average of the hidden activity.
    pub use_learnable_gates: bool,
    /// Whether the output echoes its previous value with gain `output_beta` (default true).
    pub use_output_memory: bool,
    /// Which function the cell computes: `"design"` (default) or `"reference"` (the reference
    /// implementation's forward pass, for imported models).
    pub compat: Compat,
}

impl Default for PmrcParams {
    fn default() -> Self {
        PmrcParams {
            hidden: 32,
            alpha: 0.1,
            beta: 0.3,
            output_beta: 0.2,
            use_recurrent: true,
            use_learnable_gates: true,
            use_output_memory: true,
            compat: Compat::Design,
        }
    }
}

impl PmrcParams {
    /// Refuses a hidden width outside `[1, 2^24]` and rates outside `[0, 1]` (NaN included).
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_HIDDEN)?;
        check_range("alpha", self.alpha, 0.0, 1.0)?;
        check_range("beta", self.beta, 0.0, 1.0)?;
        check_range("output_beta", self.output_beta, 0.0, 1.0)
    }
}
