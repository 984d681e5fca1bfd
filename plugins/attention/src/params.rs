//! Hyper-parameters of the two attention entries.

use mnnn_core::Result;
use mnnn_core::registry::{ParamRange, check_range};
use serde::{Deserialize, Serialize};

/// Largest key/value width accepted.
pub const MAX_DIM: usize = 1 << 14;
/// Largest window accepted.
pub const MAX_WINDOW: usize = 1 << 20;

/// [`Attention`](crate::Attention): the width of queries, keys and values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttentionParams {
    /// Query, key and value width `d` (in `[1, 2^14]`; default 32).
    pub dim: usize,
}

impl Default for AttentionParams {
    fn default() -> Self {
        AttentionParams { dim: 32 }
    }
}

impl AttentionParams {
    /// Refuses a width outside its range.
    pub fn validate(&self) -> Result<()> {
        check_range("dim", self.dim, 1, MAX_DIM)
    }
}

/// [`SlidingWindow`](crate::SlidingWindow): the width and how many recent steps are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlidingParams {
    /// Query, key and value width `d` (in `[1, 2^14]`; default 32).
    pub dim: usize,
    /// Steps attended to, the current one included (in `[1, 2^20]`; default 64).
    pub window: usize,
}

impl Default for SlidingParams {
    fn default() -> Self {
        SlidingParams {
            dim: 32,
            window: 64,
        }
    }
}

impl SlidingParams {
    /// Refuses a width or window outside its range.
    pub fn validate(&self) -> Result<()> {
        check_range("dim", self.dim, 1, MAX_DIM)?;
        check_range("window", self.window, 1, MAX_WINDOW)
    }
}

/// Ranges of [`AttentionParams`].
pub const ATTENTION_RANGES: &[ParamRange] = &[ParamRange::int("dim", 1, MAX_DIM as u64, 4)];

/// Ranges of [`SlidingParams`].
pub const SLIDING_RANGES: &[ParamRange] = &[
    ParamRange::int("dim", 1, MAX_DIM as u64, 4),
    ParamRange::int("window", 1, MAX_WINDOW as u64, 6),
];
