//! Hyper-AMN hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// Largest `hidden` and `manifold` accepted (the model wrapper further caps the total number
/// of scalars at 2^28).
pub const MAX_SIZE: usize = 1 << 24;
/// Largest number of heads (each head reports two diagnostics, named by a fixed table).
pub const MAX_HEADS: usize = 8;
/// Smallest `dt` accepted.
pub const MIN_DT: f64 = 1e-3;
/// Smallest `state_clip` accepted.
pub const MIN_CLIP: f64 = 0.1;
/// Largest `state_clip` accepted.
pub const MAX_CLIP: f64 = 100.0;

/// Hyper-AMN hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HyperAmnParams {
    /// Hidden units H per head, in `[1, 2^24]` (default 32).
    pub hidden: usize,
    /// Rows M of each head's manifold (an `M × H` matrix), in `[1, 2^24]` (default 16; the
    /// reference's Python default is 64).
    pub manifold: usize,
    /// Manifold heads, in `[1, 8]` (default 3, the reference's fixed count).
    pub heads: usize,
    /// Euler step of the liquid time-constant update, in `[0.001, 1]` (default 0.1).
    pub dt: f64,
    /// Weight of the liquid state in a head's output `z = mix·l + (1 − mix)·tanh(read)`, in
    /// `[0, 1]` (default 0.7, the reference's constant).
    pub mix: f64,
    /// Design mode clips the head states to `±state_clip` after the cross-head mixing, in
    /// `[0.1, 100]` (default 10); reference mode does not clip.
    pub state_clip: f64,
    /// `"design"` (default) or `"reference"`: which equations run (see the crate docs).
    pub compat: Compat,
}

impl Default for HyperAmnParams {
    fn default() -> Self {
        HyperAmnParams {
            hidden: 32,
            manifold: 16,
            heads: 3,
            dt: 0.1,
            mix: 0.7,
            state_clip: 10.0,
            compat: Compat::Design,
        }
    }
}

impl HyperAmnParams {
    /// Refuses sizes and values outside their ranges, naming the field and the range.
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_SIZE)?;
        check_range("manifold", self.manifold, 1, MAX_SIZE)?;
        check_range("heads", self.heads, 1, MAX_HEADS)?;
        check_range("dt", self.dt, MIN_DT, 1.0)?;
        check_range("mix", self.mix, 0.0, 1.0)?;
        check_range("state_clip", self.state_clip, MIN_CLIP, MAX_CLIP)
    }
}
