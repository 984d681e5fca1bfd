//! AMN hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// Largest `hidden` and `manifold` accepted (the model wrapper further caps the total number
/// of scalars at 2^28).
pub const MAX_SIZE: usize = 1 << 24;
/// Smallest `dt` accepted.
pub const MIN_DT: f64 = 1e-3;
/// Smallest `memory_decay` accepted (the reference's own setter clips it to `[0.9, 0.9999]`).
pub const MIN_DECAY: f64 = 0.9;
/// Smallest clip accepted.
pub const MIN_CLIP: f64 = 0.1;
/// Largest clip of the liquid state, the LRU state and the manifold.
pub const MAX_STATE_CLIP: f64 = 20.0;
/// Largest output clip.
pub const MAX_OUTPUT_CLIP: f64 = 1000.0;
/// Largest `write_scale` accepted.
pub const MAX_WRITE_SCALE: f64 = 0.1;

/// AMN hyper-parameters. Input and output widths come from the data.
///
/// The defaults are the reference implementation's values (its fixed constants became
/// parameters: `mix`, the four clips and `write_scale`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmnParams {
    /// Hidden units H, in `[1, 2^24]` (default 32).
    pub hidden: usize,
    /// Rows M of the associative memory manifold (an `M × H` matrix), in `[1, 2^24]`
    /// (default 16).
    pub manifold: usize,
    /// Euler step of the liquid time-constant update, in `[0.001, 1]` (default 0.1).
    pub dt: f64,
    /// Decay of the manifold per step, in `[0.9, 1]` (default 0.995; the reference's setter
    /// clips it to `[0.9, 0.9999]`).
    pub memory_decay: f64,
    /// Weight of the LRU state in the combined hidden state `h = mix·s + (1 − mix)·r`, in
    /// `[0, 1]` (default 0.7).
    pub mix: f64,
    /// The liquid state is clipped to `±lc_clip`, in `[0.1, 20]` (default 10).
    pub lc_clip: f64,
    /// The LRU state is clipped to `±lru_clip`, in `[0.1, 20]` (default 10).
    pub lru_clip: f64,
    /// The output is clipped to `±output_clip`, in `[0.1, 1000]` (default 100).
    pub output_clip: f64,
    /// The manifold is clipped to `±manifold_clip`, in `[0.1, 20]` (default 5).
    pub manifold_clip: f64,
    /// Scale of the rank-1 manifold write, in `[0, 0.1]` (default 0.01).
    pub write_scale: f64,
    /// `"design"` (default) or `"reference"`: which equations run (see the crate docs).
    pub compat: Compat,
}

impl Default for AmnParams {
    fn default() -> Self {
        AmnParams {
            hidden: 32,
            manifold: 16,
            dt: 0.1,
            memory_decay: 0.995,
            mix: 0.7,
            lc_clip: 10.0,
            lru_clip: 10.0,
            output_clip: 100.0,
            manifold_clip: 5.0,
            write_scale: 0.01,
            compat: Compat::Design,
        }
    }
}

impl AmnParams {
    /// Refuses sizes and values outside their ranges, naming the field and the range.
    pub fn validate(&self) -> Result<()> {
        check_range("hidden", self.hidden, 1, MAX_SIZE)?;
        check_range("manifold", self.manifold, 1, MAX_SIZE)?;
        check_range("dt", self.dt, MIN_DT, 1.0)?;
        check_range("memory_decay", self.memory_decay, MIN_DECAY, 1.0)?;
        check_range("mix", self.mix, 0.0, 1.0)?;
        check_range("lc_clip", self.lc_clip, MIN_CLIP, MAX_STATE_CLIP)?;
        check_range("lru_clip", self.lru_clip, MIN_CLIP, MAX_STATE_CLIP)?;
        check_range("output_clip", self.output_clip, MIN_CLIP, MAX_OUTPUT_CLIP)?;
        check_range(
            "manifold_clip",
            self.manifold_clip,
            MIN_CLIP,
            MAX_STATE_CLIP,
        )?;
        check_range("write_scale", self.write_scale, 0.0, MAX_WRITE_SCALE)
    }
}
