//! The NDM cell: layouts, initialisation, reset, the batched step, the recorded window and
//! its backward pass, and the diagnostics.

// Index loops walk several same-length rows at once; iterator zips of five rows read worse.
#![allow(clippy::needless_range_loop)]

use crate::backward::{BackWork, ParamGrads, SeqTape, backward_seq, fast_sizes, split6};
use crate::consts::{Consts, LIM_HEBB, LIM_VEL, Write};
use crate::step::{self, ParamView, Rec, Scratch, SeqState, Shape};
use crate::{NdmParams, Variant};
use mnnn_core::buf::zeroed;
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

/// Positions of the parameters in the layout (`k`, `v` are `None` without a write).
#[derive(Clone, Debug)]
struct Idx {
    k: Option<usize>,
    w_out: usize,
}

// Parameters before the optional key and value.
const W_IN: usize = 0;
const W_H: usize = 1;
const B_H: usize = 2;
const ETA_IN: usize = 3;
const ETA_H: usize = 4;
const Q: usize = 5;

// State tensors, in layout order.
#[cfg(test)]
const ST_H: usize = 0;
const ST_PRE: usize = 1;
const ST_POST: usize = 2;
const ST_M: usize = 3;
#[cfg(test)]
const ST_A: usize = 4;
const ST_B: usize = 5;
const ST_PA: usize = 6;
const ST_PB: usize = 7;
const ST_VA: usize = 8;
const ST_VB: usize = 9;

/// The NDM cell for one scalar type, variant, fidelity mode and set of widths.
#[derive(Clone, Debug)]
pub struct NdmCell<S> {
    dims: Dims,
    shape: Shape,
    c: Consts<S>,
    idx: Idx,
}

/// What the forward window keeps for the backward pass, sequence-major (`b·T + t`).
#[derive(Default, Debug)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    seg: usize,
    x: Vec<S>,
    rec: Vec<S>,
    mem: Vec<S>,
    snaps: Vec<S>,
    work: std::sync::Mutex<BackWork<S>>,
}

impl<S: Scalar> NdmCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &NdmParams, dims: Dims) -> Self {
        let c = Consts::new(params);
        let k = (c.write != Write::Never).then_some(Q + 1);
        NdmCell {
            dims,
            shape: Shape {
                i: dims.input,
                h: params.hidden,
                m: params.manifold,
                o: dims.output,
            },
            idx: Idx {
                k,
                w_out: if k.is_some() { Q + 3 } else { Q + 1 },
            },
            c,
        }
    }

    /// Which function the cell computes.
    pub fn compat(&self) -> Compat {
        self.c.compat
    }

    /// Which reference program the cell follows.
    pub fn variant(&self) -> Variant {
        self.c.variant
    }

    fn view<'a>(&self, p: &'a Tensors<S>) -> ParamView<'a, S> {
        let (k, v): (&[S], &[S]) = match self.idx.k {
            Some(k) => (p.slice(k), p.slice(k + 1)),
            None => (&[], &[]),
        };
        ParamView {
            w_in: p.slice(W_IN),
            w_h: p.slice(W_H),
            b_h: p.slice(B_H),
            eta_in: p.slice(ETA_IN),
            eta_h: p.slice(ETA_H),
            q: p.slice(Q),
            k,
            v,
            w_out: p.slice(self.idx.w_out),
            b_out: p.slice(self.idx.w_out + 1),
        }
    }

    /// Per-sequence sizes of the state tensors, in layout order (velocities 0 unless
    /// momentum).
    fn state_sizes(&self) -> [usize; 10] {
        let s = self.shape;
        let f = fast_sizes(&self.c, s);
        [s.h, s.h, s.h, s.m * s.h, f[0], f[1], f[2], f[3], f[4], f[5]]
    }

    /// Sequence `r`'s slices of a batched state (or state gradient) of `b` sequences.
    fn seq<'a>(&self, data: &'a mut [S], b: usize, r: usize) -> SeqState<'a, S> {
        let mut rest = data;
        let parts = self.state_sizes().map(|n| {
            let (blk, tail) = std::mem::take(&mut rest).split_at_mut(n * b);
            rest = tail;
            &mut blk[r * n..(r + 1) * n]
        });
        let [h, pre, post, m, a, bb, pa, pb, va, vb] = parts;
        SeqState {
            h,
            pre,
            post,
            m,
            a,
            b: bb,
            pa,
            pb,
            va,
            vb,
        }
    }

    fn grads<'a>(&self, g: &'a mut Tensors<S>) -> ParamGrads<'a, S> {
        let ranges: Vec<_> = g.layout().entries().iter().map(|e| e.range()).collect();
        let mut rest = g.data_mut();
        let mut parts: Vec<&'a mut [S]> = Vec::with_capacity(ranges.len());
        for r in &ranges {
            let (a, b) = std::mem::take(&mut rest).split_at_mut(r.len());
            rest = b;
            parts.push(a);
        }
        let mut it = parts.into_iter();
        let mut next = || it.next().expect("layout");
        let (w_in, w_h, b_h, eta_in, eta_h, q) = (next(), next(), next(), next(), next(), next());
        let (k, v): (&mut [S], &mut [S]) = if self.idx.k.is_some() {
            (next(), next())
        } else {
            (&mut [], &mut [])
        };
        ParamGrads {
            w_in,
            w_h,
            b_h,
            eta_in,
            eta_h,
            q,
            k,
            v,
            w_out: next(),
            b_out: next(),
        }
    }

    fn run_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let (t, b, i) = xs.dim();
        let s = self.shape;
        let p = self.view(params);
        let mut sc = Scratch::default();
        let mut y = vec![S::zero(); s.o];
        let mut x = vec![S::zero(); i];
        let rec = Rec::new(&self.c, s);
        let sizes = fast_sizes(&self.c, s);
        let flen: usize = sizes.iter().sum();
        let mut tape = tape;
        let seg = (t as f64).sqrt().ceil().max(1.0) as usize;
        let nseg = t.div_ceil(seg);
        if let Some(tp) = tape.as_deref_mut() {
            tp.steps = t;
            tp.batch = b;
            tp.seg = seg;
            zeroed(&mut tp.x, b * t * i);
            zeroed(&mut tp.rec, b * t * rec.width);
            zeroed(&mut tp.mem, b * t * s.m * s.h);
            zeroed(&mut tp.snaps, b * nseg * flen);
        }
        for r in 0..b {
            for step in 0..t {
                x.iter_mut()
                    .zip(xs.slice(ndarray::s![step, r, ..]))
                    .for_each(|(d, v)| *d = *v);
                let st = self.seq(state.data_mut(), b, r);
                let rec_row = match tape.as_deref_mut() {
                    Some(tp) => {
                        let k = r * t + step;
                        tp.x[k * i..(k + 1) * i].copy_from_slice(&x);
                        let mh = s.m * s.h;
                        tp.mem[k * mh..(k + 1) * mh].copy_from_slice(st.m);
                        if step % seg == 0 {
                            let at = (r * nseg + step / seg) * flen;
                            let snap = &mut tp.snaps[at..at + flen];
                            let [a, bb, pa, pb, va, vb] = split6(snap, &sizes);
                            a.copy_from_slice(st.a);
                            bb.copy_from_slice(st.b);
                            pa.copy_from_slice(st.pa);
                            pb.copy_from_slice(st.pb);
                            va.copy_from_slice(st.va);
                            vb.copy_from_slice(st.vb);
                        }
                        Some(&mut tp.rec[k * rec.width..(k + 1) * rec.width])
                    }
                    None => None,
                };
                step::forward(&self.c, s, &p, &x, st, &mut sc, &mut y, rec_row);
                ys.slice_mut(ndarray::s![step, r, ..])
                    .iter_mut()
                    .zip(&y)
                    .for_each(|(d, v)| *d = *v);
            }
        }
    }
}

impl<S: Scalar> Cell<S> for NdmCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let Shape { i, h, m, o } = self.shape;
        let l = Layout::new()
            .with("w_in", &[i, h])
            .with("w_h", &[h, h])
            .with("b_h", &[h])
            .with("eta_in", &[h])
            .with("eta_h", &[h])
            .with("q", &[h, m]);
        let l = match self.c.write {
            Write::After => l.with("k", &[h, m]).with("v", &[h, h]),
            Write::Before => l.with("k", &[h, m]).with("v", &[h, m]),
            Write::Never => l,
        };
        l.with("w_out", &[h, o]).with("b_out", &[o])
    }

    fn state_layout(&self) -> Layout {
        let Shape { i, h, m, .. } = self.shape;
        let l = Layout::new()
            .with("h", &[h])
            .with("pre", &[h])
            .with("post", &[h])
            .with("manifold", &[m, h])
            .with("fast_in", &[i, h])
            .with("fast_h", &[h, h])
            .with("plasticity_in", &[i, h])
            .with("plasticity_h", &[h, h]);
        if self.c.momentum() {
            l.with("velocity_in", &[i, h]).with("velocity_h", &[h, h])
        } else {
            l
        }
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // The reference's scales: 2/(fan_in + fan_out) for W_in and W_out, 1/H for W_h and
        // (ndm.c) K, V, Q; ndm_.c and ndm_momentum.c draw K and Q wider or narrower.
        let Shape { i, h, m, o } = self.shape;
        let hf = 1.0 / h as f64;
        let kq = match (self.c.compat, self.c.variant) {
            (Compat::Reference, Variant::Clamped) => 1.0 / (h + m) as f64,
            (Compat::Reference, Variant::Momentum) => 2.0 / (h + m) as f64,
            _ => hf,
        };
        init::normal(rng, params.slice_mut(W_IN), (2.0 / (i + h) as f64).sqrt());
        init::normal(rng, params.slice_mut(W_H), hf.sqrt());
        init::normal(rng, params.slice_mut(Q), kq.sqrt());
        if let Some(k) = self.idx.k {
            init::normal(rng, params.slice_mut(k), kq.sqrt());
            init::normal(rng, params.slice_mut(k + 1), hf.sqrt());
        }
        let eta = S::from_f64(self.c.eta0);
        params.slice_mut(ETA_IN).fill(eta);
        params.slice_mut(ETA_H).fill(eta);
        let wo = (2.0 / (h + o) as f64).sqrt();
        init::normal(rng, params.slice_mut(self.idx.w_out), wo);
    }

    fn reset_state(&self, _params: &Tensors<S>, state: &mut Tensors<S>) {
        // Fast weights start at their learned initial values (deviation 0), plasticity at
        // its initial value, everything else at zero.
        state.fill(S::zero());
        let Shape { i, h, .. } = self.shape;
        let pl = self.c.plasticity;
        for (idx, n, salt) in [(ST_PA, i * h, 0usize), (ST_PB, h * h, 1 << 40)] {
            if n == 0 {
                continue;
            }
            for chunk in state.slice_mut(idx).chunks_exact_mut(n) {
                for (k, v) in chunk.iter_mut().enumerate() {
                    *v = S::from_f64(pl.at(salt + k));
                }
            }
        }
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        let b = x.nrows();
        let p = self.view(params);
        for r in 0..b {
            let st = self.seq(state.data_mut(), b, r);
            let xr = x.row(r);
            let mut yr = y.row_mut(r);
            match (xr.as_slice(), yr.as_slice_mut()) {
                (Some(xs), Some(ys)) => {
                    step::forward(&self.c, self.shape, &p, xs, st, scratch, ys, None)
                }
                (xs, _) => {
                    let xv: Vec<S> = match xs {
                        Some(v) => v.to_vec(),
                        None => xr.iter().copied().collect(),
                    };
                    let mut yv = vec![S::zero(); self.shape.o];
                    step::forward(&self.c, self.shape, &p, &xv, st, scratch, &mut yv, None);
                    yr.iter_mut().zip(&yv).for_each(|(d, v)| *d = *v);
                }
            }
        }
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        self.run_window(params, state, xs, ys, tape);
    }

    fn backward_window(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        mut dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let s = self.shape;
        let p = self.view(params);
        let rec = Rec::new(&self.c, s);
        let flen: usize = fast_sizes(&self.c, s).iter().sum();
        let nseg = t.div_ceil(tape.seg.max(1));
        let mut pg = self.grads(grads);
        let mut dy = vec![S::zero(); t * s.o];
        let mut dx = vec![S::zero(); t * s.i];
        let mut work = tape.work.lock().unwrap_or_else(|e| e.into_inner());
        let mh = s.m * s.h;
        for r in 0..b {
            for step in 0..t {
                dy[step * s.o..(step + 1) * s.o]
                    .iter_mut()
                    .zip(dys.slice(ndarray::s![step, r, ..]))
                    .for_each(|(d, v)| *d = *v);
            }
            let k = r * t;
            let st = SeqTape {
                x: &tape.x[k * s.i..(k + t) * s.i],
                rec: &tape.rec[k * rec.width..(k + t) * rec.width],
                mem: &tape.mem[k * mh..(k + t) * mh],
                snaps: &tape.snaps[r * nseg * flen..(r + 1) * nseg * flen],
                seg: tape.seg,
            };
            let g = self.seq(dstate.data_mut(), b, r);
            backward_seq(&self.c, s, &p, &st, &dy, g, &mut pg, &mut dx, &mut work);
            if let Some(d) = dxs.as_mut() {
                for step in 0..t {
                    d.slice_mut(ndarray::s![step, r, ..])
                        .iter_mut()
                        .zip(&dx[step * s.i..(step + 1) * s.i])
                        .for_each(|(o, v)| *o = *v);
                }
            }
        }
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let Shape { i, h, m, .. } = self.shape;
        let (ih, hh) = (i * h, h * h);
        let first = |idx: usize, n: usize| &state.slice(idx)[..n];
        let velocity = if self.c.momentum() {
            let (va, vb) = (first(ST_VA, ih), first(ST_VB, hh));
            let sum: f64 = va.iter().chain(vb).map(|v| v.as_f64().abs()).sum();
            sum / (ih + hh) as f64
        } else {
            self.recurrent_velocity(params, state)
        };
        let (pa, pb) = (first(ST_PA, ih), first(ST_PB, hh));
        let plasticity = pa.iter().chain(pb).map(|v| v.as_f64()).sum::<f64>() / (ih + hh) as f64;
        vec![
            Diagnostic {
                name: "mean_weight_velocity",
                value: velocity,
            },
            Diagnostic {
                name: "mean_plasticity",
                value: plasticity,
            },
            Diagnostic {
                name: "manifold_energy",
                value: mean_abs(first(ST_M, m * h)),
            },
        ]
    }
}

impl<S: Scalar> NdmCell<S> {
    /// Mean |dW_h/dt| of sequence 0 at its current traces and plasticity (the input half of
    /// the fast weights moves with the last input, which is not part of the state).
    fn recurrent_velocity(&self, params: &Tensors<S>, state: &Tensors<S>) -> f64 {
        let h = self.shape.h;
        let c = &self.c;
        let (pre, post) = (&state.slice(ST_PRE)[..h], &state.slice(ST_POST)[..h]);
        let (b, pb) = (&state.slice(ST_B)[..h * h], &state.slice(ST_PB)[..h * h]);
        let (w0, eta) = (params.slice(W_H), params.slice(ETA_H));
        let mut sum = 0.0;
        for i in 0..h {
            for j in 0..h {
                let k = i * h + j;
                let e = c.clip(pre[i] * (eta[j] * post[j]), LIM_HEBB);
                let target = if c.design() { b[k] } else { w0[k] + b[k] };
                let g = c.clip(pb[k] * (e - c.lam * target), LIM_VEL);
                sum += g.as_f64().abs();
            }
        }
        sum / (h * h) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_layouts() {
        for variant in [Variant::Original, Variant::Clamped, Variant::Momentum] {
            for compat in [Compat::Design, Compat::Reference] {
                let cell = NdmCell::<f64>::new(
                    &NdmParams {
                        variant,
                        compat,
                        ..Default::default()
                    },
                    Dims {
                        input: 2,
                        output: 1,
                    },
                );
                let p = cell.param_layout();
                for (i, n) in [(W_IN, "w_in"), (W_H, "w_h"), (B_H, "b_h"), (Q, "q")] {
                    assert_eq!(p.index_of(n), Some(i));
                }
                assert_eq!(p.index_of("eta_in"), Some(ETA_IN));
                assert_eq!(p.index_of("eta_h"), Some(ETA_H));
                assert_eq!(p.index_of("k"), cell.idx.k);
                assert_eq!(p.index_of("w_out"), Some(cell.idx.w_out));
                assert_eq!(p.index_of("b_out"), Some(cell.idx.w_out + 1));
                let l = cell.state_layout();
                for (i, n) in [
                    (ST_H, "h"),
                    (ST_PRE, "pre"),
                    (ST_POST, "post"),
                    (ST_M, "manifold"),
                    (ST_A, "fast_in"),
                    (ST_B, "fast_h"),
                    (ST_PA, "plasticity_in"),
                    (ST_PB, "plasticity_h"),
                ] {
                    assert_eq!(l.index_of(n), Some(i));
                }
                if variant == Variant::Momentum {
                    assert_eq!(l.index_of("velocity_in"), Some(ST_VA));
                    assert_eq!(l.index_of("velocity_h"), Some(ST_VB));
                }
                let sizes: usize = cell.state_sizes().iter().sum();
                assert_eq!(sizes, l.total());
            }
        }
    }
}
