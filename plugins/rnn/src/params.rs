//! LSTM and GRU hyper-parameters (shared: both are a stack of `layers` cells of `hidden` units).

use mnnn_core::Result;
use mnnn_core::registry::{ParamRange, check_range};
use serde::{Deserialize, Serialize};

/// Largest hidden width accepted (the model wrapper further caps the total number of
/// parameters at 2^28 scalars, which the `hidden × 4·hidden` matrices reach much earlier).
pub const MAX_HIDDEN: usize = 1 << 16;
/// Largest number of stacked layers accepted.
pub const MAX_LAYERS: usize = 64;

/// Hyper-parameters of [`Lstm`](crate::Lstm) and [`Gru`](crate::Gru). Input and output widths
/// come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnParams {
    /// Hidden units per layer (in `[1, 2^16]`; default 64).
    pub hidden: usize,
    /// Stacked layers; layer `k > 0` reads layer `k − 1`'s hidden state (in `[1, 64]`;
    /// default 1).
    pub layers: usize,
}

impl Default for RnnParams {
    fn default() -> Self {
        RnnParams {
            hidden: 64,
            layers: 1,
        }
    }
}

impl RnnParams {
    /// Refuses widths and depths outside their ranges.
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_HIDDEN)?;
        check_range("layers", self.layers, 1, MAX_LAYERS)
    }
}

/// The ranges of both entries; the suite draws small stacks of small cells.
pub const RANGES: &[ParamRange] = &[
    ParamRange::int("hidden", 1, MAX_HIDDEN as u64, 4),
    ParamRange::int("layers", 1, MAX_LAYERS as u64, 2),
];
