//! One sequence through the block stack over a window of tokens, recorded on a tape.
//!
//! Block: pre-RMSNorm → per-head memory read (+ gated sidecar read) → output projection →
//! residual → pre-RMSNorm → GELU FFN → residual. Every path (step, chunked, training window)
//! runs this function; they differ only in how the window is cut into segments.

use crate::memory::{self, Fast, HeadParams, HeadState, Tokens};
use crate::schedule::{Cut, segments};
use crate::shapes::{FastIdx, Idx, Shapes};
use crate::sidecar::{self, Cache};
use crate::tape::{Grads, Tape, Trans, Unary, Var};
use mnnn_core::buf::mat;
use mnnn_core::{Scalar, Tensors};
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

/// RMSNorm's floor.
const NORM_EPS: f64 = 1e-6;
/// ℓ2-normalisation floor of queries and keys.
const L2_EPS: f64 = 1e-6;

/// A tape of one sequence's window and where its inputs and outputs live.
#[derive(Debug, Default)]
pub struct SeqTape<S> {
    tape: Tape<S>,
    x: Option<Var>,
    y: Option<Var>,
    /// `(tensor, offset, var)` of every parameter block read.
    params: Vec<(Idx, usize, Var)>,
    /// `(tensor, offset, var)` of every continuous state block read.
    state_in: Vec<(Idx, usize, Var)>,
    /// `(tensor, offset, var)` of every continuous state block written.
    state_out: Vec<(Idx, usize, Var)>,
}

struct Run<'a, S: Scalar> {
    sh: &'a Shapes,
    params: &'a Tensors<S>,
    st: &'a Tensors<S>,
    t: SeqTape<S>,
}

/// Block `i` of a tensor stacked over layers (or layers × heads).
fn block<S: Scalar>(data: &[S], i: usize, rows: usize, cols: usize) -> ArrayView2<'_, S> {
    let n = rows * cols;
    mat(&data[i * n..(i + 1) * n], rows, cols)
}

impl<S: Scalar> Run<'_, S> {
    fn param(&mut self, idx: Idx, i: usize, rows: usize, cols: usize) -> Var {
        let v = self
            .t
            .tape
            .leaf_view(block(self.params.slice(idx), i, rows, cols));
        self.t.params.push((idx, i * rows * cols, v));
        v
    }

    fn state(&mut self, idx: Idx, i: usize, rows: usize, cols: usize) -> Var {
        let v = self
            .t
            .tape
            .leaf_view(block(self.st.slice(idx), i, rows, cols));
        self.t.state_in.push((idx, i * rows * cols, v));
        v
    }

    /// A head's fast-weight tensors from the state.
    fn fast(&mut self, f: &FastIdx, lh: usize) -> Fast {
        let mut out = Fast {
            w: Vec::new(),
            b: Vec::new(),
        };
        for (i, m) in self.sh.fast.iter().enumerate() {
            out.w.push(self.state(f.w[i], lh, m.rows, m.cols));
            out.b.push(f.b[i].map(|bi| self.state(bi, lh, 1, m.cols)));
        }
        out
    }

    fn emit_fast(&mut self, f: &FastIdx, lh: usize, vals: &Fast) {
        for (i, m) in self.sh.fast.iter().enumerate() {
            self.t
                .state_out
                .push((f.w[i], lh * m.rows * m.cols, vals.w[i]));
            if let (Some(bi), Some(bv)) = (f.b[i], vals.b[i]) {
                self.t.state_out.push((bi, lh * m.cols, bv));
            }
        }
    }

    /// `x W + b` with a per-layer weight and bias.
    fn affine(&mut self, x: Var, (w, b): (Idx, Idx), l: usize, rows: usize, cols: usize) -> Var {
        let wv = self.param(w, l, rows, cols);
        let bv = self.param(b, l, 1, cols);
        let y = self.t.tape.matmul(x, wv, Trans::NN);
        self.t.tape.add_row(y, bv)
    }
}

/// Where the first sequence of `st` stands inside its inner chunk (0 without chunks).
pub fn chunk_position<S: Scalar>(sh: &Shapes, st: &Tensors<S>) -> usize {
    match sh.si.position {
        Some(i) => st.slice(i)[0]
            .as_f64()
            .round()
            .clamp(0.0, (sh.p.chunk - 1) as f64) as usize,
        None => 0,
    }
}

/// Runs one sequence's window `xs` (`T × input`) from its state `st` (one sequence's
/// layout), writing the outputs to `ys` and the new state to `st`. Returns the tape.
pub fn run<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    st: &mut Tensors<S>,
    xs: ArrayView2<S>,
    mut ys: ArrayViewMut2<S>,
    cut: Cut,
) -> SeqTape<S> {
    let p = &sh.p;
    let (h_n, d, w) = (p.heads, sh.d, sh.width);
    let len = xs.nrows();
    let chunk = p.chunk;
    let position = chunk_position(sh, st);
    // Only the exact delta rule cuts by the caller's block; the mini-batch form cuts at the
    // inner chunk's boundaries and the sequential form token by token.
    let cut = match cut {
        _ if p.exact_chunks() => cut,
        Cut::Chunks(_) if chunk > 1 => Cut::Chunks(chunk),
        _ => Cut::Tokens,
    };
    let (segs, end_pos) = segments(len, chunk, position, cut);
    let mut r = Run {
        sh,
        params,
        st: &*st,
        t: SeqTape::default(),
    };
    let (pi, si) = (&sh.pi, &sh.si);
    let x = r.t.tape.leaf_view(xs);
    r.t.x = Some(x);
    let mut h = r.affine(x, (pi.in_w, pi.in_b), 0, sh.dims.input, w);
    let mut new_caches: Vec<(usize, Cache<S>)> = Vec::new();
    for l in 0..p.layers {
        let g1 = r.param(pi.norm1, l, 1, w);
        let a = r.t.tape.rms_norm(h, g1, NORM_EPS);
        let wq = r.param(pi.wq, l, w, h_n * d);
        let wk = r.param(pi.wk, l, w, h_n * d);
        let wv = r.param(pi.wv, l, w, h_n * d);
        let q_all = r.t.tape.matmul(a, wq, Trans::NN);
        let k_all = r.t.tape.matmul(a, wk, Trans::NN);
        let v_all = r.t.tape.matmul(a, wv, Trans::NN);
        let lr = r.affine(a, (pi.lr_w, pi.lr_b), l, w, h_n);
        let lr = r.t.tape.map(lr, Unary::Sigmoid);
        let theta_all = r.t.tape.scale(lr, p.lr);
        let keep_all = pi.forget.map(|(fw, fb, fa)| {
            let z = r.affine(a, (fw, fb), l, w, h_n);
            let sp = r.t.tape.map(z, Unary::Softplus);
            let av = r.param(fa, l, 1, h_n);
            let ea = r.t.tape.map(av, Unary::Exp);
            let m = r.t.tape.mul_row(sp, ea);
            r.t.tape.scale(m, -1.0)
        });
        let eta_all = pi.momentum.map(|(mw, mb)| {
            let z = r.affine(a, (mw, mb), l, w, h_n);
            r.t.tape.map(z, Unary::LogSigmoid)
        });
        let side = pi.sidecar.map(|(sw, sb, nulli)| {
            let z = r.affine(a, (sw, sb), l, w, h_n);
            let gate = r.t.tape.map(z, Unary::Sigmoid);
            (gate, r.param(nulli, l, 1, h_n))
        });
        let mut heads = Vec::with_capacity(h_n);
        for hd in 0..h_n {
            let lh = l * h_n + hd;
            let tp = &mut r.t.tape;
            let q = tp.cols(q_all, hd * d, d);
            let q = tp.l2_normalize(q, L2_EPS);
            let k = tp.cols(k_all, hd * d, d);
            let k = tp.l2_normalize(k, L2_EPS);
            let v = tp.cols(v_all, hd * d, d);
            let theta = tp.cols(theta_all, hd, 1);
            let keep = keep_all.map(|x| tp.cols(x, hd, 1));
            let eta = eta_all.map(|x| tp.cols(x, hd, 1));
            let hp = HeadParams {
                ln: pi
                    .ln
                    .map(|(g, b)| (r.param(g, lh, 1, d), r.param(b, lh, 1, d))),
                static_w1: pi
                    .static_w1
                    .map(|(w1, b1)| (r.param(w1, lh, d, 4 * d), r.param(b1, lh, 1, 4 * d))),
                gate: pi
                    .surprise
                    .map(|(th, te)| (r.param(th, lh, 1, 1), r.param(te, lh, 1, 1))),
            };
            let start = HeadState {
                phi: r.fast(&si.phi, lh),
                momentum: si.momentum.as_ref().map(|m| r.fast(m, lh)),
                snapshot: si.snapshot.as_ref().map(|s| r.fast(s, lh)),
            };
            let window = Tokens {
                q,
                k,
                v,
                theta,
                log_keep: keep,
                log_eta: eta,
            };
            let run = memory::run_window(
                &mut r.t.tape,
                p.memory,
                &hp,
                start,
                &window,
                &segs,
                p.exact_chunks(),
            );
            let (surprise, end) = (run.surprise, run.state);
            let mut o = run.o;
            if let (Some((ki, vi, sci, ui)), Some((gate_all, null_all))) = (si.sidecar, side) {
                let kk = p.sidecar;
                let keys = r.state(ki, lh, kk, d);
                let values = r.state(vi, lh, kk, d);
                let held = lh * kk..(lh + 1) * kk;
                let scores = r.st.slice(sci)[held.clone()].to_vec();
                let used = r.st.slice(ui)[held]
                    .iter()
                    .map(|u| u.as_f64() > 0.5)
                    .collect();
                let tp = &mut r.t.tape;
                let null = tp.cols(null_all, hd, 1);
                let gate = tp.cols(gate_all, hd, 1);
                let cache = Cache {
                    keys,
                    values,
                    scores,
                    used,
                };
                let sc = sidecar::run(tp, &cache, q, k, v, &surprise, null, gate);
                o = tp.add(o, sc.o);
                new_caches.push((lh, sc.cache));
            }
            heads.push(o);
            r.emit_fast(&si.phi, lh, &end.phi);
            if let (Some(mi), Some(m)) = (&si.momentum, &end.momentum) {
                r.emit_fast(mi, lh, m);
            }
            if let (Some(si_), Some(s)) = (&si.snapshot, &end.snapshot) {
                r.emit_fast(si_, lh, s);
            }
        }
        let o = r.t.tape.concat_cols(heads);
        let wo = r.param(pi.wo, l, h_n * d, w);
        let o = r.t.tape.matmul(o, wo, Trans::NN);
        h = r.t.tape.add(h, o);
        if let Some((n2, f1, fb1, f2, fb2)) = pi.ffn {
            let g2 = r.param(n2, l, 1, w);
            let a2 = r.t.tape.rms_norm(h, g2, NORM_EPS);
            let z = r.affine(a2, (f1, fb1), l, w, sh.ffn);
            let z = r.t.tape.map(z, Unary::Gelu);
            let f = r.affine(z, (f2, fb2), l, sh.ffn, w);
            h = r.t.tape.add(h, f);
        }
    }
    let g = r.param(pi.out_norm, 0, 1, w);
    let a = r.t.tape.rms_norm(h, g, NORM_EPS);
    let y = r.affine(a, (pi.out_w, pi.out_b), 0, w, sh.dims.output);
    r.t.y = Some(y);
    ys.assign(r.t.tape.value(y));
    // Write the new state back.
    let mut tape = r.t;
    for &(idx, off, v) in &tape.state_out {
        let val = tape.tape.value(v);
        let dst = &mut st.slice_mut(idx)[off..off + val.len()];
        dst.iter_mut().zip(val.iter()).for_each(|(a, b)| *a = *b);
    }
    if let Some((ki, vi, sci, ui)) = si.sidecar {
        let kk = p.sidecar;
        for (lh, c) in &new_caches {
            for (idx, var) in [(ki, c.keys), (vi, c.values)] {
                let val = tape.tape.value(var);
                st.slice_mut(idx)[lh * kk * d..(lh + 1) * kk * d]
                    .iter_mut()
                    .zip(val.iter())
                    .for_each(|(a, b)| *a = *b);
                tape.state_out.push((idx, lh * kk * d, var));
            }
            st.slice_mut(sci)[lh * kk..(lh + 1) * kk].copy_from_slice(&c.scores);
            for (dst, &u) in st.slice_mut(ui)[lh * kk..(lh + 1) * kk]
                .iter_mut()
                .zip(&c.used)
            {
                *dst = if u { S::one() } else { S::zero() };
            }
        }
    }
    if let Some(i) = si.position {
        st.slice_mut(i)[0] = S::from_f64(end_pos as f64);
    }
    tape
}

impl<S: Scalar> SeqTape<S> {
    /// Backpropagates `dys` (`T × output`) and `dstate` (one sequence's `∂L/∂state` after the
    /// window; replaced by the gradient before it), adding parameter gradients to `grads`;
    /// returns `∂L/∂x`.
    pub fn backward(
        &self,
        dys: ArrayView2<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
    ) -> Array2<S> {
        let y = self.y.expect("a recorded window");
        let seeds: Vec<(Var, ArrayView2<S>)> = std::iter::once((y, dys))
            .chain(self.state_out.iter().map(|&(idx, off, v)| {
                let (r, c) = self.tape.dim(v);
                (v, mat(&dstate.slice(idx)[off..off + r * c], r, c))
            }))
            .collect();
        let g: Grads<S> = self.tape.backward(&seeds);
        for &(idx, off, v) in &self.params {
            if let Some(gv) = g.get(v) {
                let dst = &mut grads.slice_mut(idx)[off..off + gv.len()];
                dst.iter_mut().zip(gv.iter()).for_each(|(a, b)| *a += *b);
            }
        }
        dstate.fill(S::zero());
        for &(idx, off, v) in &self.state_in {
            if let Some(gv) = g.get(v) {
                let dst = &mut dstate.slice_mut(idx)[off..off + gv.len()];
                dst.iter_mut().zip(gv.iter()).for_each(|(a, b)| *a += *b);
            }
        }
        let x = self.x.expect("input");
        g.get(x)
            .cloned()
            .unwrap_or_else(|| Array2::zeros(self.tape.dim(x)))
    }
}
