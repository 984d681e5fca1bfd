//! SGW-AMN hyper-parameters.

use mnnn_core::Result;
use mnnn_core::reference::Compat;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Serialize};

/// Largest `pre`, `workspace`, `post` and `manifold` accepted (the model wrapper further caps
/// the total number of scalars at 2^28).
pub const MAX_SIZE: usize = 1 << 24;
/// Smallest `dt` accepted.
pub const MIN_DT: f64 = 1e-3;
/// Smallest competition temperature accepted.
pub const MIN_TEMPERATURE: f64 = 0.01;
/// Largest competition temperature accepted.
pub const MAX_TEMPERATURE: f64 = 100.0;
/// Largest sparsity penalty accepted.
pub const MAX_PENALTY: f64 = 10.0;
/// Smallest `state_clip` accepted.
pub const MIN_CLIP: f64 = 0.1;
/// Largest `state_clip` accepted.
pub const MAX_CLIP: f64 = 100.0;

/// SGW-AMN hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgwAmnParams {
    /// Units P of the pre-bottleneck GELU layer, which compete for the workspace, in
    /// `[1, 2^24]` (default 64; the reference's Python default is 256).
    pub pre: usize,
    /// Workspace units W (the number of competition winners), in `[1, 2^24]` (default 16).
    /// With more workspace units than pre units, the extra winners repeat unit 0, as in the
    /// reference.
    pub workspace: usize,
    /// Units Q of the post-bottleneck expansion, in `[1, 2^24]` (default 64; reference 256).
    pub post: usize,
    /// Rows M of the manifold (an `M × Q` matrix), in `[1, 2^24]` (default 16; reference 64).
    pub manifold: usize,
    /// Temperature of the competition's softmax, in `[0.01, 100]` (default 0.5).
    pub temperature: f64,
    /// Weight λ of the sparsity penalty `λ·mean_t Σ_i |w_t,i|` on the workspace state,
    /// added to the training loss when above 0, in `[0, 10]` (default 0; the reference
    /// reported `0.01·Σ|w|` beside its loss without training on it).
    pub sparsity_penalty: f64,
    /// Euler step of the workspace's liquid time-constant update, in `[0.001, 1]`
    /// (default 0.1).
    pub dt: f64,
    /// Decay of the manifold per step, in `[0, 1]` (default 0.995).
    pub memory_decay: f64,
    /// Decay of the Hebbian workspace memory per step, in `[0, 1]` (default 0.98); the
    /// write has weight `1 − workspace_decay`.
    pub workspace_decay: f64,
    /// Weight of the expansion in the post state `p = mix·p0 + (1 − mix)·tanh(read)`, in
    /// `[0, 1]` (default 0.7, the reference's constant).
    pub mix: f64,
    /// Design mode clips the workspace state to `±state_clip`, in `[0.1, 100]` (default
    /// 10); reference mode does not clip.
    pub state_clip: f64,
    /// `"design"` (default) or `"reference"`: which equations run (see the crate docs).
    pub compat: Compat,
}

impl Default for SgwAmnParams {
    fn default() -> Self {
        SgwAmnParams {
            pre: 64,
            workspace: 16,
            post: 64,
            manifold: 16,
            temperature: 0.5,
            sparsity_penalty: 0.0,
            dt: 0.1,
            memory_decay: 0.995,
            workspace_decay: 0.98,
            mix: 0.7,
            state_clip: 10.0,
            compat: Compat::Design,
        }
    }
}

impl SgwAmnParams {
    /// Refuses sizes and values outside their ranges, naming the field and the range.
    pub fn validate(&self) -> Result<()> {
        check_range("pre", self.pre, 1, MAX_SIZE)?;
        check_range("workspace", self.workspace, 1, MAX_SIZE)?;
        check_range("post", self.post, 1, MAX_SIZE)?;
        check_range("manifold", self.manifold, 1, MAX_SIZE)?;
        check_range(
            "temperature",
            self.temperature,
            MIN_TEMPERATURE,
            MAX_TEMPERATURE,
        )?;
        check_range("sparsity_penalty", self.sparsity_penalty, 0.0, MAX_PENALTY)?;
        check_range("dt", self.dt, MIN_DT, 1.0)?;
        check_range("memory_decay", self.memory_decay, 0.0, 1.0)?;
        check_range("workspace_decay", self.workspace_decay, 0.0, 1.0)?;
        check_range("mix", self.mix, 0.0, 1.0)?;
        check_range("state_clip", self.state_clip, MIN_CLIP, MAX_CLIP)
    }
}
