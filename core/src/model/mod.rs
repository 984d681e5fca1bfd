//! A model: optional token embedding → memory cell → affine head, with the normalisation of
//! real-valued data, the streaming state of one sequence, and freeze masks.

mod dynamic;
mod io_map;

pub use dynamic::DynModel;

use crate::cell::{Cell, Dims};
use crate::data::{InputKind, IoSpec, OutputKind};
use crate::freeze::{self, FreezeSpec};
use crate::{Error, Layout, Result, Rng, Scalar, Tensors};
use serde::{Deserialize, Serialize};

/// What identifies a model apart from its tensors: its registry entry, its parameters as
/// RON, what it reads and predicts, and the seed of its initial weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Registry name of the architecture.
    pub entry: String,
    /// The architecture's hyper-parameters, as canonical RON.
    pub params: String,
    /// Input and output kinds and names.
    pub io: IoSpec,
    /// Seed of the initial weights.
    pub seed: u64,
    /// Whether a learned linear map from the (normalised) input row is added to the head's
    /// output, beside the cell: a bounded cell can then follow a trend. Absent in files
    /// written before it existed, which load without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip: bool,
    /// When not empty, output `c` is a change from the current value of input column
    /// `difference[c]`: the model learns the change and predicts, and is scored, in levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub difference: Vec<usize>,
    /// Steps ahead the outputs forecast the targets (0: the same step), as trained; scoring
    /// a file pairs each prediction with the target this many rows later.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub horizon: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// The wrapper's options, chosen when a model is built (see [`ModelMeta::skip`] and
/// [`ModelMeta::difference`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wrapper {
    /// A linear skip from the input to the head.
    pub skip: bool,
    /// For each output, the input column it is a change from (empty: outputs are levels).
    pub difference: Vec<usize>,
    /// Steps ahead the outputs forecast (recorded in the model file for scoring; it changes
    /// no computation).
    pub horizon: usize,
}

/// Indices of the wrapper's own tensors in the parameter set (after the cell's).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WrapperIdx {
    pub head_w: usize,
    pub head_b: usize,
    pub embed: Option<usize>,
    pub skip: Option<usize>,
}

/// Indices of the normaliser's tensors.
pub(crate) const X_MEAN: usize = 0;
pub(crate) const X_STD: usize = 1;
pub(crate) const Y_MEAN: usize = 2;
pub(crate) const Y_STD: usize = 3;

/// The most scalars one model's parameters (or its state) may hold: 2^28, 1 GiB in f32.
/// Larger sizes are refused with an error rather than attempted.
pub const MAX_TENSOR_SCALARS: usize = 1 << 28;

fn check_size(what: &str, n: usize) -> Result<()> {
    if n > MAX_TENSOR_SCALARS {
        return Err(Error::invalid_param(
            what,
            format!("{n} scalars"),
            format!("at most {MAX_TENSOR_SCALARS} (2^28): lower the widths"),
        ));
    }
    Ok(())
}

/// Refuses wrapper options the data kinds cannot carry.
fn check_wrapper(meta: &ModelMeta) -> Result<()> {
    let real_in = match meta.io.input {
        InputKind::Real(w) => Some(w),
        InputKind::Tokens { .. } => None,
    };
    if meta.skip && real_in.is_none() {
        return Err(Error::invalid_param(
            "skip",
            true,
            "a skip adds the input row to the output; token inputs have no such row",
        ));
    }
    if meta.difference.is_empty() {
        return Ok(());
    }
    let (Some(w), OutputKind::Regression(o)) = (real_in, &meta.io.output) else {
        return Err(Error::invalid_param(
            "difference",
            format!("{:?}", meta.difference),
            "a change from the current value needs real inputs and real outputs",
        ));
    };
    if meta.difference.len() != *o || meta.difference.iter().any(|&j| j >= w) {
        return Err(Error::invalid_param(
            "difference",
            format!("{:?}", meta.difference),
            format!("one input column (below {w}) per output ({o})"),
        ));
    }
    Ok(())
}

/// Steps per window when running `b` sequences forward without training: about 4096 rows
/// (steps × sequences), so a window's buffers stay in cache, between 16 and 512 steps.
pub(crate) fn eval_window(b: usize) -> usize {
    (4096 / b.max(1)).clamp(16, 512)
}

/// A cell wrapped for data: the concrete, monomorphised form behind [`DynModel`].
pub struct Model<S: Scalar, C: Cell<S>> {
    pub(crate) meta: ModelMeta,
    pub(crate) cell: C,
    pub(crate) params: Tensors<S>,
    pub(crate) frozen: Option<Vec<bool>>,
    pub(crate) norm: Tensors<S>,
    pub(crate) state: Tensors<S>,
    pub(crate) scratch: C::Scratch,
    pub(crate) idx: WrapperIdx,
}

impl<S: Scalar, C: Cell<S>> Clone for Model<S, C> {
    fn clone(&self) -> Self {
        Model {
            meta: self.meta.clone(),
            cell: self.cell.clone(),
            params: self.params.clone(),
            frozen: self.frozen.clone(),
            norm: self.norm.clone(),
            state: self.state.clone(),
            scratch: C::Scratch::default(),
            idx: self.idx,
        }
    }
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    /// Wraps `cell` (built for `meta.io`'s widths) and initialises every weight from
    /// `meta.seed`.
    pub fn new(meta: ModelMeta, cell: C) -> Result<Self> {
        meta.io.validate()?;
        check_size("parameters", cell.param_layout().total())?;
        check_size("state", cell.state_layout().total())?;
        let dims = cell.dims();
        let want = Dims {
            input: meta.io.cell_input(),
            output: meta.io.cell_output(),
        };
        if dims != want {
            return Err(Error::shape(
                "cell widths",
                format!("{want:?}"),
                format!("{dims:?}"),
            ));
        }
        check_wrapper(&meta)?;
        let mut layout = cell.param_layout();
        let o = dims.output;
        let idx = WrapperIdx {
            head_w: layout.push("head.w", &[o, o]),
            head_b: layout.push("head.b", &[o]),
            embed: match meta.io.input {
                InputKind::Tokens { vocab, embed } => {
                    Some(layout.push("embed.table", &[vocab, embed]))
                }
                InputKind::Real(_) => None,
            },
            // Starts at zero, so a model with the skip begins as the same function as one
            // without it.
            skip: meta.skip.then(|| layout.push("skip.w", &[dims.input, o])),
        };
        check_size("parameters", layout.total())?;
        crate::budget::check(
            "the parameters and state",
            crate::budget::bytes(&[layout.total() + cell.state_layout().total()], S::BYTES),
        )?;
        let mut params = Tensors::zeros(layout);
        cell.init_params(&mut Rng::derive(meta.seed, "cell"), &mut params);
        for i in 0..o {
            params.mat_mut(idx.head_w)[[i, i]] = S::one();
        }
        if let Some(e) = idx.embed {
            let mut rng = Rng::derive(meta.seed, "embed");
            params
                .slice_mut(e)
                .iter_mut()
                .for_each(|v| *v = S::from_f64(rng.normal()));
        }
        let (xi, yo) = (
            match meta.io.input {
                InputKind::Real(w) => w,
                InputKind::Tokens { .. } => 0,
            },
            match meta.io.output {
                OutputKind::Regression(w) => w,
                OutputKind::Classes(_) => 0,
            },
        );
        let norm_layout = Layout::new()
            .with("x_mean", &[xi])
            .with("x_std", &[xi])
            .with("y_mean", &[yo])
            .with("y_std", &[yo]);
        let mut norm = Tensors::zeros(norm_layout);
        norm.slice_mut(X_STD).fill(S::one());
        norm.slice_mut(Y_STD).fill(S::one());
        let mut state = Tensors::zeros(cell.state_layout().batched(1));
        cell.reset_state(&params, &mut state);
        Ok(Model {
            meta,
            cell,
            params,
            frozen: None,
            norm,
            state,
            scratch: C::Scratch::default(),
            idx,
        })
    }

    /// The wrapped cell.
    pub fn cell(&self) -> &C {
        &self.cell
    }

    /// A fresh batched state for `b` sequences.
    pub(crate) fn fresh_state(&self, b: usize) -> Tensors<S> {
        let mut st = Tensors::zeros(self.cell.state_layout().batched(b));
        self.cell.reset_state(&self.params, &mut st);
        st
    }

    pub(crate) fn set_frozen(&mut self, spec: &FreezeSpec, value: bool) -> Result<usize> {
        let idx = freeze::select(&self.params, spec)?;
        let n = self.params.data().len();
        let mask = self.frozen.get_or_insert_with(|| vec![false; n]);
        let mut changed = 0;
        for i in idx {
            if mask[i] != value {
                mask[i] = value;
                changed += 1;
            }
        }
        if mask.iter().all(|f| !f) {
            self.frozen = None;
        }
        Ok(changed)
    }
}
