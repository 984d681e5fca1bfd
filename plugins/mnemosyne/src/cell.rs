//! The [`Cell`] implementation: a batch's sequences are independent; each group of
//! [`GROUP`] of them runs through [`program::run`] on one tape (groups in parallel).

use crate::decode::{self, DecodeScratch};
use crate::params::MnemosyneParams;
use crate::program::{self, SeqTape};
use crate::schedule::Cut;
use crate::shapes::{Idx, Shapes};
use mnnn_core::cell::{Cell, Diagnostic, Dims};
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3, Axis, s};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

/// Sequences per tape in a batch window: a fixed count, never the thread count, so the order
/// in which gradients are summed (and so every result) is the same on any machine; large
/// enough that each primitive works on a stack, small enough that a training batch of 16
/// keeps two cores busy.
pub const GROUP: usize = 8;

/// Block size of the exact delta-rule chunks in training windows.
pub const EXACT_BLOCK: usize = 32;

/// Tokens per call of [`program::run`] in the chunked forward, rounded up to whole chunks: a
/// call's tape and sidecar attention grow with the square of its length, so a long stream
/// goes through in windows of about this many tokens.
const CHUNKED_WINDOW: usize = 1024;

/// The MNEMOSYNE stack as a cell.
#[derive(Clone, Debug)]
pub struct MnemosyneCell<S> {
    sh: Arc<Shapes>,
    _s: PhantomData<fn() -> S>,
}

/// One tape per [`GROUP`] sequences of the last training window.
#[derive(Debug, Default)]
pub struct Tape<S> {
    seqs: Vec<SeqTape<S>>,
}

impl<S: Scalar> MnemosyneCell<S> {
    /// The cell for validated params and widths.
    pub fn new(p: &MnemosyneParams, dims: Dims) -> Self {
        MnemosyneCell {
            sh: Arc::new(Shapes::new(p, dims)),
            _s: PhantomData,
        }
    }

    /// Runs a batch window through one tape per [`GROUP`] sequences (in parallel when asked
    /// and there is more than one).
    /// `(state tensor, parameter tensor)` for every state tensor a reset fills from a
    /// parameter: the memory's weights and biases, and their snapshot's, from `init.*`.
    fn initial_copies(&self) -> Vec<(Idx, Idx)> {
        let (si, pi) = (&self.sh.si, &self.sh.pi);
        let init_b = pi.init.b.iter().flatten().copied();
        std::iter::once(&si.phi)
            .chain(si.snapshot.as_ref())
            .flat_map(|f| {
                let w = f.w.iter().copied().zip(pi.init.w.iter().copied());
                let b = f.b.iter().flatten().copied().zip(init_b.clone());
                w.chain(b).collect::<Vec<_>>()
            })
            .collect()
    }

    fn runs(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        cut: Cut,
        parallel: bool,
    ) -> Vec<SeqTape<S>> {
        let b = xs.dim().1;
        if b <= GROUP {
            // One tape: the batch's state is already laid out as that tape reads it.
            return vec![program::run(&self.sh, params, state, xs, ys, cut)];
        }
        let layout = &self.sh.state;
        let mut states: Vec<Tensors<S>> = (0..b)
            .step_by(GROUP)
            .map(|j| gather(state, layout, j..(j + GROUP).min(b)))
            .collect();
        let mut outs: Vec<_> = ys.axis_chunks_iter_mut(Axis(1), GROUP).collect();
        let work = |(k, (st, y)): (usize, (&mut Tensors<S>, &mut ArrayViewMut3<S>))| {
            let j = k * GROUP;
            let x = xs.slice(s![.., j..(j + GROUP).min(b), ..]);
            program::run(&self.sh, params, st, x, y.view_mut(), cut)
        };
        let tapes: Vec<SeqTape<S>> = if parallel {
            states
                .par_iter_mut()
                .zip(outs.par_iter_mut())
                .enumerate()
                .map(work)
                .collect()
        } else {
            states
                .iter_mut()
                .zip(outs.iter_mut())
                .enumerate()
                .map(work)
                .collect()
        };
        for (k, st) in states.iter().enumerate() {
            scatter(st, layout, state, k * GROUP);
        }
        tapes
    }
}

impl<S: Scalar> MnemosyneCell<S> {
    /// One token through the tape (the step loop's function as training records it): what
    /// the decode step is tested against.
    #[cfg(test)]
    pub(crate) fn tape_step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
    ) {
        let xs = x.insert_axis(Axis(0));
        let ys = y.view_mut().insert_axis(Axis(0));
        self.runs(params, state, xs, ys, Cut::Tokens, false);
    }
}

/// Sequences `seqs` of a batched tensor set (`layout` is one sequence's), as a batch of
/// their own.
fn gather<S: Scalar>(batched: &Tensors<S>, layout: &Layout, seqs: Range<usize>) -> Tensors<S> {
    let mut data = Vec::with_capacity(layout.total() * seqs.len());
    for (i, e) in layout.entries().iter().enumerate() {
        let n = e.len();
        data.extend_from_slice(&batched.slice(i)[seqs.start * n..seqs.end * n]);
    }
    Tensors::from_vec(layout.batched(seqs.len()), data).expect("the batched layout")
}

/// Writes a batch gathered from sequence `j` on back into the whole batch's set.
fn scatter<S: Scalar>(part: &Tensors<S>, layout: &Layout, batched: &mut Tensors<S>, j: usize) {
    for (i, e) in layout.entries().iter().enumerate() {
        let src = part.slice(i);
        let at = j * e.len();
        batched.slice_mut(i)[at..at + src.len()].copy_from_slice(src);
    }
}

impl<S: Scalar> Cell<S> for MnemosyneCell<S> {
    type Tape = Tape<S>;
    type Scratch = DecodeScratch<S>;

    fn dims(&self) -> Dims {
        self.sh.dims
    }

    fn param_layout(&self) -> Layout {
        self.sh.params.clone()
    }

    fn state_layout(&self) -> Layout {
        self.sh.state.clone()
    }

    fn init_params(&self, rng: &mut Rng, p: &mut Tensors<S>) {
        let sh = &self.sh;
        let pi = &sh.pi;
        let (w, hd) = (sh.width as f64, (sh.p.heads * sh.d) as f64);
        init::normal(
            rng,
            p.slice_mut(pi.in_w),
            1.0 / (sh.dims.input as f64).sqrt(),
        );
        p.slice_mut(pi.norm1).fill(S::one());
        p.slice_mut(pi.out_norm).fill(S::one());
        for i in [pi.wq, pi.wk, pi.wv] {
            init::normal(rng, p.slice_mut(i), 1.0 / w.sqrt());
        }
        init::normal(rng, p.slice_mut(pi.wo), 0.5 / hd.sqrt());
        init::normal(rng, p.slice_mut(pi.lr_w), 0.02);
        if let Some((fw, fb, _)) = pi.forget {
            init::normal(rng, p.slice_mut(fw), 0.02);
            // softplus(−6.9) ≈ 1e-3: the memory starts out keeping almost everything.
            p.slice_mut(fb).fill(S::from_f64(-6.9));
        }
        if let Some((mw, _)) = pi.momentum {
            init::normal(rng, p.slice_mut(mw), 0.02);
        }
        if let Some((th, te)) = pi.surprise {
            p.slice_mut(th).fill(S::from_f64(0.5));
            // softplus(−2.25) ≈ 0.1.
            p.slice_mut(te).fill(S::from_f64(-2.25));
        }
        if let Some((sw, sb, _)) = pi.sidecar {
            init::normal(rng, p.slice_mut(sw), 0.02);
            // The memory path dominates until the sidecar earns its weight.
            p.slice_mut(sb).fill(S::from_f64(-2.0));
        }
        for &i in &pi.init.w {
            init::normal(rng, p.slice_mut(i), 0.02);
        }
        if let Some((w1, _)) = pi.static_w1 {
            init::normal(rng, p.slice_mut(w1), 1.0 / (sh.d as f64).sqrt());
        }
        if let Some((g, _)) = pi.ln {
            p.slice_mut(g).fill(S::one());
        }
        if let Some((n2, f1, _, f2, _)) = pi.ffn {
            p.slice_mut(n2).fill(S::one());
            init::normal(rng, p.slice_mut(f1), 1.0 / w.sqrt());
            init::normal(rng, p.slice_mut(f2), 0.5 / (sh.ffn as f64).sqrt());
        }
        init::normal(rng, p.slice_mut(pi.out_w), 1.0 / w.sqrt());
    }

    fn reset_state(&self, params: &Tensors<S>, state: &mut Tensors<S>) {
        state.fill(S::zero());
        for (d, p) in self.initial_copies() {
            let from = params.slice(p);
            for chunk in state.slice_mut(d).chunks_exact_mut(from.len()) {
                chunk.copy_from_slice(from);
            }
        }
    }

    fn reset_state_backward(
        &self,
        _params: &Tensors<S>,
        dstate: &Tensors<S>,
        grads: &mut Tensors<S>,
    ) {
        // Every sequence's copy of the initial memory (and its snapshot's) came from the same
        // parameters, so their gradients sum into them.
        for (d, p) in self.initial_copies() {
            let to = grads.slice_mut(p);
            for chunk in dstate.slice(d).chunks_exact(to.len()) {
                to.iter_mut().zip(chunk).for_each(|(g, v)| *g += *v);
            }
        }
    }

    fn step(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut DecodeScratch<S>,
    ) {
        decode::step(&self.sh, params, state, x, y, scratch);
    }

    fn forward_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: Option<&mut Tape<S>>,
    ) {
        let tapes = self.runs(params, state, xs, ys, Cut::Chunks(EXACT_BLOCK), true);
        if let Some(t) = tape {
            t.seqs = tapes;
        }
    }

    fn backward_window(
        &self,
        _params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        mut dxs: Option<ArrayViewMut3<S>>,
    ) {
        let layout = &self.sh.state;
        let b = dys.dim().1;
        let results: Vec<_> = tape
            .seqs
            .par_iter()
            .enumerate()
            .map(|(k, seq)| {
                let seqs = k * GROUP..((k + 1) * GROUP).min(b);
                let mut ds = gather(dstate, layout, seqs.clone());
                let mut g = Tensors::zeros_like(grads);
                let dx = seq.backward(dys.slice(s![.., seqs, ..]), &mut ds, &mut g);
                (ds, g, dx)
            })
            .collect();
        // Summed in batch order, so the result does not depend on the thread count.
        for (k, (ds, g, dx)) in results.into_iter().enumerate() {
            scatter(&ds, layout, dstate, k * GROUP);
            grads
                .data_mut()
                .iter_mut()
                .zip(g.data())
                .for_each(|(a, b)| *a += *b);
            if let Some(d) = dxs.as_mut() {
                let j = k * GROUP;
                d.slice_mut(s![.., j..j + dx.dim().1, ..]).assign(&dx);
            }
        }
    }

    fn forward_chunked(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        chunk: usize,
        _: &mut DecodeScratch<S>,
    ) {
        let p = &self.sh.p;
        // Windows end where segments end (a chunk of the exact form's blocks or of the inner
        // mini-batch, counted from where the state stands), so they cut the stream exactly
        // where one call over all of it would.
        let (unit, into) = if p.exact_chunks() {
            (chunk.max(1), 0)
        } else {
            (p.chunk, program::chunk_position(&self.sh, state))
        };
        let span = CHUNKED_WINDOW.div_ceil(unit) * unit;
        let len = xs.dim().0;
        let (mut t0, mut t1) = (0, span - into);
        while t0 < len {
            let rows = s![t0..t1.min(len), .., ..];
            let (x, y) = (xs.slice(rows), ys.slice_mut(rows));
            self.runs(params, state, x, y, Cut::Chunks(chunk), true);
            (t0, t1) = (t1, t1 + span);
        }
    }

    fn diagnostics(&self, _params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let si = &self.sh.si;
        let first = |i: Idx| {
            let v = state.slice(i);
            let n = self.sh.state.entries()[i].len();
            &v[..n.min(v.len())]
        };
        let phi: Vec<f64> = si
            .phi
            .w
            .iter()
            .flat_map(|&i| first(i).iter().map(|x| x.as_f64().abs()))
            .collect();
        let mut out = vec![Diagnostic {
            name: "mean_abs_memory",
            value: phi.iter().sum::<f64>() / phi.len().max(1) as f64,
        }];
        let (fill, score) = match si.sidecar {
            Some((_, _, sc, u)) => {
                let used = first(u);
                let n = used.iter().filter(|x| x.as_f64() > 0.5).count();
                let s: f64 = first(sc)
                    .iter()
                    .zip(used)
                    .filter(|(_, u)| u.as_f64() > 0.5)
                    .map(|(s, _)| s.as_f64())
                    .sum();
                (n as f64 / used.len().max(1) as f64, s / n.max(1) as f64)
            }
            None => (0.0, 0.0),
        };
        out.push(Diagnostic {
            name: "sidecar_fill",
            value: fill,
        });
        out.push(Diagnostic {
            name: "sidecar_mean_score",
            value: score,
        });
        out
    }
}
