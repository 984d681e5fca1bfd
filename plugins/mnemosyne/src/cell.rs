//! The [`Cell`] implementation: batches are independent sequences, each run through
//! [`program::run`] (in parallel for training windows).

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
use std::sync::Arc;

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

/// One tape per sequence of the last training window.
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
        if b == 1 {
            // A batch of one is laid out exactly as one sequence: no copies (this is the
            // streaming decode path).
            let y = ys.index_axis_mut(Axis(1), 0);
            return vec![program::run(
                &self.sh,
                params,
                state,
                xs.index_axis(Axis(1), 0),
                y,
                cut,
            )];
        }
        let mut states: Vec<Tensors<S>> =
            (0..b).map(|j| gather(state, &self.sh.state, j)).collect();
        let mut outs: Vec<_> = ys.axis_iter_mut(Axis(1)).collect();
        let work = |(j, (st, y)): (usize, (&mut Tensors<S>, &mut ArrayViewMut2<S>))| {
            program::run(
                &self.sh,
                params,
                st,
                xs.index_axis(Axis(1), j),
                y.view_mut(),
                cut,
            )
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
        for (j, st) in states.iter().enumerate() {
            scatter(st, state, j);
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

/// Sequence `j` of a batched tensor set, in the one-sequence `layout`.
fn gather<S: Scalar>(batched: &Tensors<S>, layout: &Layout, j: usize) -> Tensors<S> {
    let mut data = Vec::with_capacity(layout.total());
    for (i, e) in layout.entries().iter().enumerate() {
        let n = e.len();
        data.extend_from_slice(&batched.slice(i)[j * n..(j + 1) * n]);
    }
    Tensors::from_vec(layout.clone(), data).expect("one sequence's layout")
}

/// Writes one sequence's tensors into sequence `j` of a batched set.
fn scatter<S: Scalar>(one: &Tensors<S>, batched: &mut Tensors<S>, j: usize) {
    for i in 0..one.layout().len() {
        let src = one.slice(i);
        let n = src.len();
        batched.slice_mut(i)[j * n..(j + 1) * n].copy_from_slice(src);
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
        let si = &self.sh.si;
        let copy = |state: &mut Tensors<S>, dst: &[Idx], src: &[Idx]| {
            for (&d, &s) in dst.iter().zip(src) {
                let from = params.slice(s);
                let n = from.len();
                for chunk in state.slice_mut(d).chunks_exact_mut(n) {
                    chunk.copy_from_slice(from);
                }
            }
        };
        let pi = &self.sh.pi;
        let init_b: Vec<Idx> = pi.init.b.iter().flatten().copied().collect();
        for f in std::iter::once(&si.phi).chain(si.snapshot.as_ref()) {
            copy(state, &f.w, &pi.init.w);
            let b: Vec<Idx> = f.b.iter().flatten().copied().collect();
            copy(state, &b, &init_b);
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
        let results: Vec<_> = tape
            .seqs
            .par_iter()
            .enumerate()
            .map(|(j, seq)| {
                let mut ds = gather(dstate, layout, j);
                let mut g = Tensors::zeros_like(grads);
                let r = seq.backward(dys.index_axis(Axis(1), j), &mut ds, &mut g);
                (ds, g, r)
            })
            .collect();
        // Summed in sequence order, so the result does not depend on the thread count.
        for (j, (ds, g, dx)) in results.into_iter().enumerate() {
            scatter(&ds, dstate, j);
            grads
                .data_mut()
                .iter_mut()
                .zip(g.data())
                .for_each(|(a, b)| *a += *b);
            if let Some(d) = dxs.as_mut() {
                d.index_axis_mut(Axis(1), j).assign(&dx);
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
