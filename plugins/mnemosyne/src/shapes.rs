//! Where every parameter and state tensor lives, from the hyper-parameters and widths.

use crate::params::{Gate, Memory, MnemosyneParams, Update};
use mnnn_core::{Dims, Layout};

/// One fast (test-time trained) or static layer of the memory network: `rows × cols`
/// weights, with a `1 × cols` bias when `bias`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemLayer {
    /// Input width.
    pub rows: usize,
    /// Output width.
    pub cols: usize,
    /// Whether it has a bias.
    pub bias: bool,
}

/// Index of one tensor in a layout (a stack over layers, or layers × heads).
pub type Idx = usize;

/// The slots of the fast memory in a state layout: per fast layer, its weight and bias.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FastIdx {
    /// Weight tensor per fast layer.
    pub w: Vec<Idx>,
    /// Bias tensor per fast layer (absent for the plain linear memory).
    pub b: Vec<Option<Idx>>,
}

/// Parameter indices.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ParamIdx {
    pub in_w: Idx,
    pub in_b: Idx,
    pub norm1: Idx,
    pub wq: Idx,
    pub wk: Idx,
    pub wv: Idx,
    pub wo: Idx,
    pub lr_w: Idx,
    pub lr_b: Idx,
    pub forget: Option<(Idx, Idx, Idx)>,
    pub momentum: Option<(Idx, Idx)>,
    pub surprise: Option<(Idx, Idx)>,
    pub sidecar: Option<(Idx, Idx, Idx)>,
    /// The learned initial memory φ₀.
    pub init: FastIdx,
    /// The MLP's first layer when only the last layer is fast.
    pub static_w1: Option<(Idx, Idx)>,
    /// LayerNorm of the TTT variants.
    pub ln: Option<(Idx, Idx)>,
    pub ffn: Option<(Idx, Idx, Idx, Idx, Idx)>,
    pub out_norm: Idx,
    pub out_w: Idx,
    pub out_b: Idx,
}

/// State indices.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StateIdx {
    pub phi: FastIdx,
    pub momentum: Option<FastIdx>,
    pub snapshot: Option<FastIdx>,
    pub position: Option<Idx>,
    /// keys, values, scores, used.
    pub sidecar: Option<(Idx, Idx, Idx, Idx)>,
}

/// Everything sized.
#[derive(Clone, Debug, PartialEq)]
pub struct Shapes {
    /// The hyper-parameters.
    pub p: MnemosyneParams,
    /// Cell widths.
    pub dims: Dims,
    /// Model width.
    pub width: usize,
    /// Head width.
    pub d: usize,
    /// Fast layers of the memory, in order.
    pub fast: Vec<MemLayer>,
    /// Hidden width of the FFN (0: none).
    pub ffn: usize,
    /// Parameter layout.
    pub params: Layout,
    /// Parameter indices.
    pub pi: ParamIdx,
    /// One sequence's state layout.
    pub state: Layout,
    /// State indices.
    pub si: StateIdx,
}

/// The fast layers of `memory` at head width `d`.
pub fn fast_layers(memory: Memory, update: Update, d: usize) -> Vec<MemLayer> {
    match (memory, update) {
        (Memory::Linear, _) => vec![MemLayer {
            rows: d,
            cols: d,
            bias: false,
        }],
        (Memory::TttLinear, _) => vec![MemLayer {
            rows: d,
            cols: d,
            bias: true,
        }],
        (Memory::Mlp, Update::All) => vec![
            MemLayer {
                rows: d,
                cols: 4 * d,
                bias: true,
            },
            MemLayer {
                rows: 4 * d,
                cols: d,
                bias: true,
            },
        ],
        (Memory::Mlp, Update::LastLayer) => vec![MemLayer {
            rows: 4 * d,
            cols: d,
            bias: true,
        }],
    }
}

fn push_fast(layout: &mut Layout, prefix: &str, lh: [usize; 2], fast: &[MemLayer]) -> FastIdx {
    let mut idx = FastIdx::default();
    for (i, m) in fast.iter().enumerate() {
        idx.w
            .push(layout.push(format!("{prefix}.w{i}"), &[lh[0], lh[1], m.rows, m.cols]));
        idx.b.push(
            m.bias
                .then(|| layout.push(format!("{prefix}.b{i}"), &[lh[0], lh[1], 1, m.cols])),
        );
    }
    idx
}

impl Shapes {
    /// Sizes for validated params and widths.
    pub fn new(p: &MnemosyneParams, dims: Dims) -> Shapes {
        let (l, h, d) = (p.layers, p.heads, p.head_dim);
        let width = p.width();
        let hd = h * d;
        let fast = fast_layers(p.memory, p.update, d);
        let ffn = p.ffn * width;
        let lh = [l, h];
        let mut pl = Layout::new();
        let pi = ParamIdx {
            in_w: pl.push("in.w", &[dims.input, width]),
            in_b: pl.push("in.b", &[width]),
            norm1: pl.push("norm1", &[l, width]),
            wq: pl.push("wq", &[l, width, hd]),
            wk: pl.push("wk", &[l, width, hd]),
            wv: pl.push("wv", &[l, width, hd]),
            wo: pl.push("wo", &[l, hd, width]),
            lr_w: pl.push("lr.w", &[l, width, h]),
            lr_b: pl.push("lr.b", &[l, h]),
            forget: p.forget.then(|| {
                (
                    pl.push("forget.w", &[l, width, h]),
                    pl.push("forget.b", &[l, h]),
                    pl.push("forget.a", &[l, h]),
                )
            }),
            momentum: p.momentum.then(|| {
                (
                    pl.push("momentum.w", &[l, width, h]),
                    pl.push("momentum.b", &[l, h]),
                )
            }),
            surprise: (p.gate == Gate::Surprise).then(|| {
                (
                    pl.push("surprise.threshold", &[l, h]),
                    pl.push("surprise.temperature", &[l, h]),
                )
            }),
            sidecar: (p.sidecar > 0).then(|| {
                (
                    pl.push("sidecar.w", &[l, width, h]),
                    pl.push("sidecar.b", &[l, h]),
                    pl.push("sidecar.null", &[l, h]),
                )
            }),
            init: push_fast(&mut pl, "init", lh, &fast),
            static_w1: (p.memory == Memory::Mlp && p.update == Update::LastLayer).then(|| {
                (
                    pl.push("static.w0", &[l, h, d, 4 * d]),
                    pl.push("static.b0", &[l, h, 1, 4 * d]),
                )
            }),
            ln: (p.memory != Memory::Linear).then(|| {
                (
                    pl.push("ln.gamma", &[l, h, 1, d]),
                    pl.push("ln.beta", &[l, h, 1, d]),
                )
            }),
            ffn: (ffn > 0).then(|| {
                (
                    pl.push("norm2", &[l, width]),
                    pl.push("ffn.w1", &[l, width, ffn]),
                    pl.push("ffn.b1", &[l, ffn]),
                    pl.push("ffn.w2", &[l, ffn, width]),
                    pl.push("ffn.b2", &[l, width]),
                )
            }),
            out_norm: pl.push("out.norm", &[width]),
            out_w: pl.push("out.w", &[width, dims.output]),
            out_b: pl.push("out.b", &[dims.output]),
        };
        let mut sl = Layout::new();
        let si = StateIdx {
            phi: push_fast(&mut sl, "phi", lh, &fast),
            momentum: p
                .momentum
                .then(|| push_fast(&mut sl, "momentum", lh, &fast)),
            snapshot: (p.chunk > 1).then(|| push_fast(&mut sl, "snapshot", lh, &fast)),
            position: (p.chunk > 1).then(|| sl.push("position", &[1])),
            sidecar: (p.sidecar > 0).then(|| {
                let k = p.sidecar;
                (
                    sl.push("sidecar.keys", &[l, h, k, d]),
                    sl.push("sidecar.values", &[l, h, k, d]),
                    sl.push("sidecar.scores", &[l, h, k]),
                    sl.push("sidecar.used", &[l, h, k]),
                )
            }),
        };
        Shapes {
            p: p.clone(),
            dims,
            width,
            d,
            fast,
            ffn,
            params: pl,
            pi,
            state: sl,
            si,
        }
    }
}

/// The declared state size: `L·H·(|φ|·(1 + momentum + [chunk > 1]) + K·(2d + 2)) + [chunk > 1]`.
pub fn state_size(p: &MnemosyneParams) -> usize {
    let d = p.head_dim;
    let phi = match (p.memory, p.update) {
        (Memory::Linear, _) => d * d,
        (Memory::TttLinear, _) => d * d + d,
        (Memory::Mlp, Update::All) => 8 * d * d + 5 * d,
        (Memory::Mlp, Update::LastLayer) => 4 * d * d + d,
    };
    let copies = 1 + usize::from(p.momentum) + usize::from(p.chunk > 1);
    p.layers * p.heads * (phi * copies + p.sidecar * (2 * d + 2)) + usize::from(p.chunk > 1)
}
