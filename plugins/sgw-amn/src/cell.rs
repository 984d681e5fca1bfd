//! The SGW-AMN cell: layouts, initialisation, the workspace's coefficients, diagnostics, the
//! auxiliary sparsity loss and the [`Cell`] implementation, which dispatches to the forward
//! ([`crate::forward`]) and backward ([`crate::backward`]) passes built for the selected
//! kernel path.

use crate::SgwAmnParams;
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

// Parameter indices (`A` and `BF` first, one contiguous block).
pub(crate) const A: usize = 0;
pub(crate) const BF: usize = 1;
pub(crate) const WIP: usize = 2;
pub(crate) const COMP: usize = 3;
pub(crate) const WWQ: usize = 4;
pub(crate) const K: usize = 5;
pub(crate) const QM: usize = 6;
pub(crate) const V: usize = 7;
pub(crate) const WOUT: usize = 8;
// State indices.
pub(crate) const ST_WS: usize = 0;
pub(crate) const ST_WM: usize = 1;
pub(crate) const ST_M: usize = 2;
pub(crate) const ST_SC: usize = 3;

/// The SGW-AMN cell for one scalar type and set of widths.
#[derive(Clone, Debug)]
pub struct SgwAmnCell<S> {
    pub(crate) dims: Dims,
    pub(crate) pre: usize,
    pub(crate) work: usize,
    pub(crate) post: usize,
    pub(crate) manifold: usize,
    pub(crate) design: bool,
    pub(crate) temp: S,
    pub(crate) penalty: S,
    pub(crate) dt: S,
    pub(crate) dec: S,
    /// The manifold write's weight: `1 − memory_decay` (design), 1 (reference).
    pub(crate) ws: S,
    pub(crate) hd: S,
    pub(crate) mix: S,
    pub(crate) clip: S,
    /// Where each parameter tensor lives in the flat buffer (offset, length), kept so that
    /// the per-token step does not recompute the ranges from the layout's shapes.
    spans: [(usize, usize); 9],
}

impl<S: Scalar> SgwAmnCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &SgwAmnParams, dims: Dims) -> Self {
        let design = params.compat == Compat::Design;
        let mut cell = SgwAmnCell {
            dims,
            pre: params.pre,
            work: params.workspace,
            post: params.post,
            manifold: params.manifold,
            design,
            temp: S::from_f64(params.temperature),
            penalty: S::from_f64(params.sparsity_penalty),
            dt: S::from_f64(params.dt),
            dec: S::from_f64(params.memory_decay),
            ws: S::from_f64(if design {
                1.0 - params.memory_decay
            } else {
                1.0
            }),
            hd: S::from_f64(params.workspace_decay),
            mix: S::from_f64(params.mix),
            clip: S::from_f64(params.state_clip),
            spans: [(0, 0); 9],
        };
        let layout = cell.param_layout();
        for (span, t) in cell.spans.iter_mut().zip(layout.entries()) {
            *span = (t.offset, t.len());
        }
        cell
    }

    /// Parameter tensor `i` of `params` (which has this cell's layout).
    #[inline(always)]
    pub(crate) fn par<'a>(&self, params: &'a Tensors<S>, i: usize) -> &'a [S] {
        let (at, len) = self.spans[i];
        &params.data()[at..at + len]
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softplus_inv(y: f64) -> f64 {
    y + (-(-y).exp_m1()).ln()
}

/// The workspace's `A` and `Bf` (softplus of the raw values in design mode, the values in
/// reference mode) with the derivatives of that map, cached against the raw values.
#[derive(Default, Debug, Clone)]
pub(crate) struct Coef<S> {
    raw: Vec<S>,
    pub(crate) a: Vec<S>,
    pub(crate) bf: Vec<S>,
    pub(crate) da: Vec<S>,
    pub(crate) dbf: Vec<S>,
}

impl<S: Scalar> Coef<S> {
    /// Brings the coefficients up to date with `params` (a no-op when unchanged).
    #[inline(always)]
    pub(crate) fn refresh(&mut self, cell: &SgwAmnCell<S>, params: &Tensors<S>) {
        let raw = &params.data()[..2 * cell.work];
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
    fn recompute(&mut self, cell: &SgwAmnCell<S>, raw: &[S]) {
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        let (ra, rb) = raw.split_at(cell.work);
        for (src, v, d) in [
            (ra, &mut self.a, &mut self.da),
            (rb, &mut self.bf, &mut self.dbf),
        ] {
            v.clear();
            d.clear();
            for &x in src {
                let x = x.as_f64();
                let (y, dy) = if cell.design {
                    (softplus(x), sigmoid(x))
                } else {
                    (x, 1.0)
                };
                v.push(S::from_f64(y));
                d.push(S::from_f64(dy));
            }
        }
    }
}

/// Work space of [`Cell::step`]: one step's intermediate values.
#[derive(Default, Debug)]
pub struct Scratch<S> {
    pub(crate) coef: Coef<S>,
    pub(crate) x: Vec<S>,
    pub(crate) rec: crate::forward::Record<S>,
    pub(crate) y: Vec<S>,
    pub(crate) pick: crate::select::Pick<S>,
}

/// What the forward window keeps for the backward pass: every step's intermediate values
/// (rows `t·B + b`), the histories of the workspace memory and the manifold (one more block
/// in front: the state before the window), and the rows' weights in the sparsity penalty.
#[derive(Default, Debug)]
pub struct Tape<S> {
    pub(crate) steps: usize,
    pub(crate) batch: usize,
    pub(crate) coef: Coef<S>,
    pub(crate) x: Vec<S>,
    pub(crate) rec: crate::forward::Record<S>,
    pub(crate) wm: Vec<S>,
    pub(crate) m: Vec<S>,
    pub(crate) aux: Vec<S>,
}

impl<S: Scalar> SgwAmnCell<S> {
    mnnn_core::runtime_builds!(SgwAmnCell: fn step_wide => step_impl(
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>
    ));
    mnnn_core::runtime_builds!(SgwAmnCell: pub(crate) fn window_wide => window_impl(
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>
    ));
    mnnn_core::runtime_builds!(SgwAmnCell: fn backward_wide => backward_impl(
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>
    ));
}

impl<S: Scalar> Cell<S> for SgwAmnCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, p, w, q, m, o) = (
            self.dims.input,
            self.pre,
            self.work,
            self.post,
            self.manifold,
            self.dims.output,
        );
        let (a, bf) = if self.design {
            ("a_raw", "bf_raw")
        } else {
            ("a", "bf")
        };
        Layout::new()
            .with(a, &[w])
            .with(bf, &[w])
            .with("w_ip", &[i, p])
            .with("comp", &[p, w])
            .with("w_wq", &[w, q])
            .with("k", &[q, m])
            .with("q", &[q, m])
            .with("v", &[m, q])
            .with("w_out", &[q, o])
    }

    fn state_layout(&self) -> Layout {
        Layout::new()
            .with("ws", &[self.work])
            .with("wm", &[self.work, self.work])
            .with("m", &[self.manifold, self.post])
            .with("scores", &[self.pre])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // As the reference (`create_sgw_amn`): Glorot-normal maps, K, V, Q with variance
        // 1/Q, A ∈ U[0.5, 0.8], Bf ∈ U[0.2, 0.5]; design mode stores softplus preimages.
        let (i, p, w, q, o) = (
            self.dims.input,
            self.pre,
            self.work,
            self.post,
            self.dims.output,
        );
        let glorot = |a: usize, b: usize| (2.0 / (a + b) as f64).sqrt();
        let mut fill = |idx: usize, std: f64| init::normal(rng, params.slice_mut(idx), std);
        fill(WIP, glorot(i, p));
        fill(COMP, glorot(p, w));
        fill(WWQ, glorot(w, q));
        fill(WOUT, glorot(q, o));
        let mem = (1.0 / q as f64).sqrt();
        fill(K, mem);
        fill(V, mem);
        fill(QM, mem);
        for j in 0..w {
            let a = rng.uniform_in(0.5, 0.8);
            let bf = rng.uniform_in(0.2, 0.5);
            let (a, bf) = if self.design {
                (softplus_inv(a), softplus_inv(bf))
            } else {
                (a, bf)
            };
            params.slice_mut(A)[j] = S::from_f64(a);
            params.slice_mut(BF)[j] = S::from_f64(bf);
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
                let mut scratch = Scratch::default();
                self.forward_chunked(params, state, xs, ys, 1, &mut scratch);
            }
        }
    }

    fn aux_loss(&self, _params: &Tensors<S>, tape: &mut Tape<S>, row_weights: &[S]) -> f64 {
        // λ·Σ_r weight_r Σ_i |w_r,i| over the workspace states after each step.
        tape.aux.clear();
        if self.penalty == S::zero() {
            return 0.0;
        }
        tape.aux.extend_from_slice(row_weights);
        let w = self.work;
        let lam = self.penalty.as_f64();
        row_weights
            .iter()
            .zip(tape.rec.ws.chunks_exact(w))
            .map(|(rw, ws)| rw.as_f64() * lam * ws.iter().map(|v| v.as_f64().abs()).sum::<f64>())
            .sum()
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

    fn diagnostics(&self, _params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let (p, w) = (self.pre, self.work);
        let ws = &state.slice(ST_WS)[..w];
        let active = ws.iter().filter(|v| v.as_f64().abs() > 0.1).count() as f64 / w as f64;
        // The routing distribution of the last step, softmax(scores / temperature).
        let temp = self.temp.as_f64();
        let sc: Vec<f64> = state.slice(ST_SC)[..p]
            .iter()
            .map(|v| v.as_f64() / temp)
            .collect();
        let max = sc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = sc.iter().map(|v| (v - max).exp()).collect();
        let sum: f64 = e.iter().sum();
        let entropy: f64 = e
            .iter()
            .map(|v| v / sum)
            .filter(|&pi| pi > 0.0)
            .map(|pi| -pi * pi.ln())
            .sum();
        let q = self.post;
        vec![
            Diagnostic {
                name: "active_fraction",
                value: active,
            },
            Diagnostic {
                name: "routing_entropy",
                value: entropy,
            },
            Diagnostic {
                name: "routing_entropy_max",
                value: (p as f64).ln(),
            },
            Diagnostic {
                name: "bottleneck_rate",
                value: w as f64 / p as f64,
            },
            Diagnostic {
                name: "manifold_energy",
                value: mean_abs(&state.slice(ST_M)[..self.manifold * q]),
            },
            Diagnostic {
                name: "workspace_memory_energy",
                value: mean_abs(&state.slice(ST_WM)[..w * w]),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    /// The wide builds compute bit for bit what the portable bodies compute.
    #[test]
    fn wide_builds_equal_the_portable_bodies() {
        for compat in [Compat::Design, Compat::Reference] {
            let params = SgwAmnParams {
                pre: 11,
                workspace: 4,
                post: 9,
                manifold: 3,
                sparsity_penalty: 0.3,
                compat,
                ..Default::default()
            };
            let cell = SgwAmnCell::<f32>::new(
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
            let weights = vec![0.05f32; 7 * b];
            let a1 = cell.aux_loss(&p, &mut t1, &weights);
            let a2 = cell.aux_loss(&p, &mut t2, &weights);
            assert!(a1 > 0.0 && a1 == a2);
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
