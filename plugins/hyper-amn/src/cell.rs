//! The Hyper-AMN cell: layouts, initialisation, the per-neuron coefficients, diagnostics and
//! the [`Cell`] implementation, which dispatches to the forward ([`crate::forward`]) and
//! backward ([`crate::backward`]) passes built for the selected kernel path.

use crate::HyperAmnParams;
use crate::params::MAX_HEADS;
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

// Parameter indices. The per-neuron coefficients come first, so they are one contiguous block.
pub(crate) const A: usize = 0;
pub(crate) const BF: usize = 1;
pub(crate) const DECAY: usize = 2;
pub(crate) const LAM: usize = 3;
pub(crate) const B: usize = 4;
pub(crate) const K: usize = 5;
pub(crate) const Q: usize = 6;
pub(crate) const V: usize = 7;
pub(crate) const G: usize = 8;
pub(crate) const X: usize = 9;
pub(crate) const C: usize = 10;
pub(crate) const D: usize = 11;

/// The names of the per-head diagnostics (the registry wants `&'static str` names).
const HEAD_ACTIVATION: [&str; MAX_HEADS] = [
    "head_activation_0",
    "head_activation_1",
    "head_activation_2",
    "head_activation_3",
    "head_activation_4",
    "head_activation_5",
    "head_activation_6",
    "head_activation_7",
];
const MANIFOLD_ENERGY: [&str; MAX_HEADS] = [
    "manifold_energy_0",
    "manifold_energy_1",
    "manifold_energy_2",
    "manifold_energy_3",
    "manifold_energy_4",
    "manifold_energy_5",
    "manifold_energy_6",
    "manifold_energy_7",
];

/// The reference's per-head initial ranges of `A` and `Bf` and its per-head decays
/// (`hyper-amn.c`, "spatial", "emotional", "logical"); head `k` takes entry `k mod 3`.
const A_RANGE: [(f64, f64); 3] = [(0.3, 0.6), (0.5, 0.8), (0.7, 1.0)];
const BF_RANGE: [(f64, f64); 3] = [(0.3, 0.7), (0.2, 0.5), (0.1, 0.3)];
const DECAYS: [f64; 3] = [0.990, 0.995, 0.999];

/// The Hyper-AMN cell for one scalar type and set of widths.
#[derive(Clone, Debug)]
pub struct HyperAmnCell<S> {
    pub(crate) dims: Dims,
    pub(crate) hidden: usize,
    pub(crate) manifold: usize,
    pub(crate) heads: usize,
    pub(crate) design: bool,
    pub(crate) dt: S,
    pub(crate) mix: S,
    pub(crate) clip: S,
}

impl<S: Scalar> HyperAmnCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &HyperAmnParams, dims: Dims) -> Self {
        HyperAmnCell {
            dims,
            hidden: params.hidden,
            manifold: params.manifold,
            heads: params.heads,
            design: params.compat == Compat::Design,
            dt: S::from_f64(params.dt),
            mix: S::from_f64(params.mix),
            clip: S::from_f64(params.state_clip),
        }
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The inverse of [`softplus`] for `y > 0`.
fn softplus_inv(y: f64) -> f64 {
    y + (-(-y).exp_m1()).ln()
}

fn logit(y: f64) -> f64 {
    (y / (1.0 - y)).ln()
}

/// The per-neuron coefficients derived from the parameters — design mode: `A`, `Bf` =
/// softplus, decay and `Λ` = sigmoid of the raw values; reference mode: the values as they
/// are — with the derivatives of those maps, the write scale of each head, and the raw
/// values they were computed from (so a step recomputes them only when the parameters
/// changed: the transcendental functions would otherwise cost as much as the step).
#[derive(Default, Debug, Clone)]
pub(crate) struct Coef<S> {
    raw: Vec<S>,
    /// `A`, `Bf` (heads × H).
    pub(crate) a: Vec<S>,
    pub(crate) bf: Vec<S>,
    /// The manifold decay of each head.
    pub(crate) dec: Vec<S>,
    /// The scale of each head's write: `1 − decay` (design), 1 (reference).
    pub(crate) ws: Vec<S>,
    /// `Λ` (H).
    pub(crate) lam: Vec<S>,
    /// The derivatives of the maps from raw values (1 in reference mode).
    pub(crate) da: Vec<S>,
    pub(crate) dbf: Vec<S>,
    pub(crate) ddec: Vec<S>,
    pub(crate) dlam: Vec<S>,
}

impl<S: Scalar> Coef<S> {
    /// Brings the coefficients up to date with `params`; a no-op when the raw values are
    /// unchanged since the last call.
    #[inline(always)]
    pub(crate) fn refresh(&mut self, cell: &HyperAmnCell<S>, params: &Tensors<S>) {
        let (h, nh) = (cell.hidden, cell.heads);
        let raw = &params.data()[..2 * nh * h + nh + h];
        // Without short-circuiting, so that the comparison vectorises.
        if self.raw.len() == raw.len()
            && raw
                .iter()
                .zip(&self.raw)
                .fold(true, |same, (a, b)| same & (a == b))
        {
            return;
        }
        self.recompute(cell, raw);
    }

    #[inline(never)]
    fn recompute(&mut self, cell: &HyperAmnCell<S>, raw: &[S]) {
        let (h, nh) = (cell.hidden, cell.heads);
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        let (ra, rest) = raw.split_at(nh * h);
        let (rb, rest) = rest.split_at(nh * h);
        let (rd, rl) = rest.split_at(nh);
        let map =
            |src: &[S], f: fn(f64) -> f64, df: fn(f64) -> f64, v: &mut Vec<S>, d: &mut Vec<S>| {
                v.clear();
                d.clear();
                for &x in src {
                    let x = x.as_f64();
                    if cell.design {
                        v.push(S::from_f64(f(x)));
                        d.push(S::from_f64(df(x)));
                    } else {
                        v.push(S::from_f64(x));
                        d.push(S::one());
                    }
                }
            };
        let dsig = |x: f64| sigmoid(x) * (1.0 - sigmoid(x));
        map(ra, softplus, sigmoid, &mut self.a, &mut self.da);
        map(rb, softplus, sigmoid, &mut self.bf, &mut self.dbf);
        map(rd, sigmoid, dsig, &mut self.dec, &mut self.ddec);
        map(rl, sigmoid, dsig, &mut self.lam, &mut self.dlam);
        self.ws.clear();
        self.ws.extend(
            self.dec
                .iter()
                .map(|&d| if cell.design { S::one() - d } else { S::one() }),
        );
    }
}

/// Work space of [`Cell::step`]: one step's intermediate values (see [`crate::forward`]).
#[derive(Default, Debug)]
pub struct Scratch<S> {
    pub(crate) coef: Coef<S>,
    pub(crate) x: Vec<S>,
    pub(crate) rec: crate::forward::Record<S>,
    pub(crate) mg_prev: Vec<S>,
    pub(crate) mg: Vec<S>,
}

/// What the forward window keeps for the backward pass: every step's intermediate values
/// (rows `t·B + b`), and the histories of the head states, manifolds and merged state, with
/// one more block in front (the state before the window).
#[derive(Default, Debug)]
pub struct Tape<S> {
    pub(crate) steps: usize,
    pub(crate) batch: usize,
    pub(crate) coef: Coef<S>,
    pub(crate) x: Vec<S>,
    pub(crate) rec: crate::forward::Record<S>,
    pub(crate) s: Vec<S>,
    pub(crate) m: Vec<S>,
    pub(crate) mg: Vec<S>,
}

impl<S: Scalar> HyperAmnCell<S> {
    mnnn_core::runtime_builds!(HyperAmnCell: fn step_wide => step_impl(
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>
    ));
    mnnn_core::runtime_builds!(HyperAmnCell: pub(crate) fn window_wide => window_impl(
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>
    ));
    mnnn_core::runtime_builds!(HyperAmnCell: fn backward_wide => backward_impl(
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>
    ));
}

impl<S: Scalar> Cell<S> for HyperAmnCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, h, m, nh, o) = (
            self.dims.input,
            self.hidden,
            self.manifold,
            self.heads,
            self.dims.output,
        );
        let names = if self.design {
            ["a_raw", "bf_raw", "decay_raw", "lambda_raw"]
        } else {
            ["a", "bf", "decay", "lambda"]
        };
        Layout::new()
            .with(names[0], &[nh, h])
            .with(names[1], &[nh, h])
            .with(names[2], &[nh])
            .with(names[3], &[h])
            .with("b", &[i, h])
            .with("k", &[nh, h, m])
            .with("q", &[nh, h, m])
            .with("v", &[nh, m, h])
            .with("g", &[nh, h])
            .with("cross", &[nh, nh])
            .with("c", &[h, o])
            .with("d", &[i, o])
    }

    fn state_layout(&self) -> Layout {
        let (h, m, nh) = (self.hidden, self.manifold, self.heads);
        let l = Layout::new().with("s", &[nh, h]).with("m", &[nh, m, h]);
        // Only the reference's gate reads the previous merged state.
        if self.design { l } else { l.with("mg", &[h]) }
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // As the reference (`create_hyper_amn`), with head k taking the ranges of reference
        // head k mod 3; design mode stores the preimages under its parametrisations.
        let (i, h, nh, o) = (self.dims.input, self.hidden, self.heads, self.dims.output);
        let design = self.design;
        for k in 0..nh {
            let ((a0, a1), (b0, b1)) = (A_RANGE[k % 3], BF_RANGE[k % 3]);
            for j in 0..h {
                let a = rng.uniform_in(a0, a1);
                let bf = rng.uniform_in(b0, b1);
                let (a, bf) = if design {
                    (softplus_inv(a), softplus_inv(bf))
                } else {
                    (a, bf)
                };
                params.slice_mut(A)[k * h + j] = S::from_f64(a);
                params.slice_mut(BF)[k * h + j] = S::from_f64(bf);
            }
            let d = DECAYS[k % 3];
            params.slice_mut(DECAY)[k] = S::from_f64(if design { logit(d) } else { d });
        }
        for j in 0..h {
            let l = rng.uniform_in(0.95, 0.99);
            params.slice_mut(LAM)[j] = S::from_f64(if design { logit(l) } else { l });
        }
        let std_in = (2.0 / (i + h) as f64).sqrt();
        let std_out = (2.0 / (h + o) as f64).sqrt();
        let std_mem = (1.0 / h as f64).sqrt();
        let mut fill = |idx: usize, std: f64| init::normal(rng, params.slice_mut(idx), std);
        fill(B, std_in);
        fill(C, std_out);
        fill(D, 0.1 * std_out);
        fill(K, std_mem);
        fill(V, std_mem);
        fill(Q, std_mem);
        fill(G, 0.1);
        fill(X, 0.1);
        for k in 0..nh {
            params.slice_mut(X)[k * nh + k] = S::one();
        }
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        self.step_wide(params, state, x, y, scratch);
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        match tape {
            Some(tape) => self.window_wide(params, state, xs, ys, tape),
            None => {
                // Inference: the step loop (the same values, bit for bit).
                let mut scratch = Scratch::default();
                self.forward_chunked(params, state, xs, ys, 1, &mut scratch);
            }
        }
    }

    fn backward_window(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        self.backward_wide(params, tape, dys, dstate, grads, dxs);
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let (h, mm, nh) = (self.hidden, self.manifold, self.heads);
        let s = &state.slice(0)[..nh * h];
        let m = &state.slice(1)[..nh * mm * h];
        // The gate the next step would apply: design mode reads the stored head states (the
        // gate of the last step), reference mode the stored merged state.
        let g = params.slice(G);
        let logits: Vec<f64> = (0..nh)
            .map(|k| {
                let src = if self.design {
                    &s[k * h..(k + 1) * h]
                } else {
                    &state.slice(2)[..h]
                };
                src.iter()
                    .zip(&g[k * h..(k + 1) * h])
                    .map(|(a, b)| a.as_f64() * b.as_f64())
                    .sum()
            })
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        let mut out = Vec::with_capacity(2 * nh + 1);
        for (k, ek) in e.iter().enumerate() {
            out.push(Diagnostic {
                name: HEAD_ACTIVATION[k],
                value: ek / sum,
            });
        }
        for k in 0..nh {
            out.push(Diagnostic {
                name: MANIFOLD_ENERGY[k],
                value: mean_abs(&m[k * mm * h..(k + 1) * mm * h]),
            });
        }
        let x = params.slice(X);
        let off: f64 = (0..nh * nh)
            .filter(|n| n / nh != n % nh)
            .map(|n| x[n].as_f64().abs())
            .sum();
        out.push(Diagnostic {
            name: "cross_head_flow",
            value: if nh > 1 {
                off / (nh * (nh - 1)) as f64
            } else {
                0.0
            },
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    /// The wide builds compute bit for bit what the portable bodies compute (the loops are
    /// elementwise or sum in a fixed order; nothing is fused).
    #[test]
    fn wide_builds_equal_the_portable_bodies() {
        for compat in [Compat::Design, Compat::Reference] {
            let params = HyperAmnParams {
                hidden: 13,
                manifold: 5,
                compat,
                ..Default::default()
            };
            let cell = HyperAmnCell::<f32>::new(
                &params,
                Dims {
                    input: 3,
                    output: 2,
                },
            );
            let mut p = Tensors::zeros(cell.param_layout());
            cell.init_params(&mut Rng::new(1), &mut p);
            let b = 3;
            let mut st = Tensors::zeros(cell.state_layout().batched(b));
            let mut rng = Rng::new(2);
            st.data_mut()
                .iter_mut()
                .for_each(|v| *v = rng.normal() as f32);
            let xs = Array3::from_shape_simple_fn((7, b, 3), || rng.normal() as f32);
            let (mut s1, mut s2) = (st.clone(), st.clone());
            let (mut y1, mut y2) = (Array2::zeros((b, 2)), Array2::zeros((b, 2)));
            let (mut sc1, mut sc2) = (Scratch::default(), Scratch::default());
            for t in 0..7 {
                let x = xs.index_axis(ndarray::Axis(0), t);
                cell.step(&p, &mut s1, x, y1.view_mut(), &mut sc1);
                cell.step_impl(&p, &mut s2, x, y2.view_mut(), &mut sc2);
                assert_eq!(y1, y2);
            }
            assert_eq!(s1, s2);
            let (mut s1, mut s2) = (st.clone(), st.clone());
            let (mut ys1, mut ys2) = (Array3::zeros((7, b, 2)), Array3::zeros((7, b, 2)));
            let (mut t1, mut t2) = (Tape::default(), Tape::default());
            cell.window_wide(&p, &mut s1, xs.view(), ys1.view_mut(), &mut t1);
            cell.window_impl(&p, &mut s2, xs.view(), ys2.view_mut(), &mut t2);
            assert_eq!((ys1, s1), (ys2, s2));
            let dys = Array3::from_shape_simple_fn((7, b, 2), || rng.normal() as f32);
            let (mut d1, mut d2) = (st.clone(), st.clone());
            let (mut g1, mut g2) = (Tensors::zeros_like(&p), Tensors::zeros_like(&p));
            let (mut dx1, mut dx2) = (Array3::zeros((7, b, 3)), Array3::zeros((7, b, 3)));
            cell.backward_window(&p, &t1, dys.view(), &mut d1, &mut g1, Some(dx1.view_mut()));
            cell.backward_impl(&p, &t2, dys.view(), &mut d2, &mut g2, Some(dx2.view_mut()));
            assert_eq!((&g1, &d1, &dx1), (&g2, &d2, &dx2));
            assert!(g1.data().iter().any(|&v| v != 0.0));
        }
    }
}
