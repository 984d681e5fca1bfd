//! MNEMOSYNE hyper-parameters.

use mnnn_core::Result;
use mnnn_core::registry::check_range;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Serde as one of the type's `NAMES` (RON strings), with an error listing them.
macro_rules! string_enum {
    ($t:ident, $field:literal, [$($v:ident),+]) => {
        impl $t {
            const ALL: &'static [$t] = &[$($t::$v),+];

            /// The name RON uses.
            pub fn as_str(self) -> &'static str {
                $t::NAMES[$t::ALL.iter().position(|&v| v == self).expect("listed")]
            }
        }

        impl Serialize for $t {
            fn serialize<Ser: Serializer>(&self, s: Ser) -> std::result::Result<Ser::Ok, Ser::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                match $t::NAMES.iter().position(|&n| n == s) {
                    Some(i) => Ok($t::ALL[i]),
                    None => Err(serde::de::Error::custom(format!(
                        "{} must be one of {:?}, not \"{s}\"",
                        $field,
                        $t::NAMES
                    ))),
                }
            }
        }
    };
}

/// The inner network whose weights are the memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Memory {
    /// `f(k) = k W`: the delta rule's memory; its loss is `½‖kW − v‖²`.
    Linear,
    /// `f(k) = k + LN(k W + b)`, regressing `v − k` (TTT-Linear).
    TttLinear,
    /// `f(k) = k + LN(gelu(k W₁ + b₁) W₂ + b₂)`, hidden `4d` (TTT-MLP, Titans' deep memory).
    #[default]
    Mlp,
}

string_enum!(Memory, "memory", [Linear, TttLinear, Mlp]);

impl Memory {
    /// The names RON accepts, in variant order.
    pub const NAMES: &'static [&'static str] = &["linear", "ttt_linear", "mlp"];
}

/// Which of the memory's layers change at test time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Update {
    /// Every layer is fast state.
    #[default]
    All,
    /// Only the last layer is fast state; the MLP's first layer is an ordinary (slow)
    /// parameter. The one-layer memories are the same either way.
    LastLayer,
}

string_enum!(Update, "update", [All, LastLayer]);

impl Update {
    /// The names RON accepts, in variant order.
    pub const NAMES: &'static [&'static str] = &["all", "last_layer"];
}

/// How much each token writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gate {
    /// A soft gate on the normalised prediction error: writes (and forgetting) scale by
    /// `σ((s − threshold) / temperature)`.
    #[default]
    Surprise,
    /// Every token writes at its full learning rate (the ablation).
    None,
}

string_enum!(Gate, "gate", [Surprise, None]);

impl Gate {
    /// The names RON accepts, in variant order.
    pub const NAMES: &'static [&'static str] = &["surprise", "none"];
}

/// MNEMOSYNE hyper-parameters. Input and output widths come from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MnemosyneParams {
    /// Blocks in the stack (default 2).
    pub layers: usize,
    /// Memory heads per block (default 2).
    pub heads: usize,
    /// Width of each head's keys, values and queries (default 32); the model width is
    /// `heads · head_dim`.
    pub head_dim: usize,
    /// The inner network (default `"mlp"`).
    pub memory: Memory,
    /// Which memory layers are fast state (default `"all"`).
    pub update: Update,
    /// Mini-batch size `b` of the inner learner: every gradient inside a chunk of `b`
    /// tokens is taken at the chunk's starting weights. `1` is the sequential recursion
    /// (each token's gradient at the previous token's weights). Part of the operator: a
    /// model decodes with the `b` it was trained with. Default 16.
    pub chunk: usize,
    /// Largest inner learning rate θ (per token θ = lr·σ(·)); default 1.0.
    pub lr: f64,
    /// Momentum on the inner updates (Titans' past surprise), default `true`.
    pub momentum: bool,
    /// A data-dependent forget gate α (weight decay of the memory), default `true`.
    pub forget: bool,
    /// The surprise gate (default `"surprise"`).
    pub gate: Gate,
    /// Entries `K` of the sparse sidecar of most surprising tokens; 0 turns it off
    /// (default 8).
    pub sidecar: usize,
    /// Hidden width of each block's feed-forward layer as a multiple of the model width;
    /// 0 leaves the FFN out (default 2).
    pub ffn: usize,
}

impl Default for MnemosyneParams {
    fn default() -> Self {
        MnemosyneParams {
            layers: 2,
            heads: 2,
            head_dim: 32,
            memory: Memory::Mlp,
            update: Update::All,
            chunk: 16,
            lr: 1.0,
            momentum: true,
            forget: true,
            gate: Gate::Surprise,
            sidecar: 8,
            ffn: 2,
        }
    }
}

/// Largest `lr` accepted.
pub const MAX_LR: f64 = 2.0;

impl MnemosyneParams {
    /// Refuses sizes outside their ranges and an `lr` outside `[0, 2]`.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("layers", self.layers, 1, 64),
            ("heads", self.heads, 1, 64),
            ("head_dim", self.head_dim, 1, 1024),
            ("chunk", self.chunk, 1, 4096),
            ("sidecar", self.sidecar, 0, 4096),
            ("ffn", self.ffn, 0, 16),
        ];
        for (name, v, lo, hi) in sizes {
            check_range(name, v, lo, hi)?;
        }
        check_range("lr", self.lr, 0.0, MAX_LR)
    }

    /// The model width `heads · head_dim`.
    pub fn width(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Whether the chunked form is the exact delta-rule algorithm: the sequential operator
    /// (`chunk: 1`) on a linear memory without momentum or surprise gate.
    pub fn exact_chunks(&self) -> bool {
        self.chunk == 1
            && self.memory == Memory::Linear
            && !self.momentum
            && self.gate == Gate::None
    }
}
