//! A batch of sequences through the block stack over a window of tokens, recorded on one
//! tape whose values stack the sequences (parameters are shared across the stack).
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
use ndarray::{Array3, ArrayView2, ArrayView3, ArrayViewMut3};

/// RMSNorm's floor.
const NORM_EPS: f64 = 1e-6;
/// ℓ2-normalisation floor of queries and keys.
const L2_EPS: f64 = 1e-6;

/// A tape of a batch's window and where its inputs and outputs live.
#[derive(Debug, Default)]
pub struct SeqTape<S> {
    tape: Tape<S>,
    x: Option<Var>,
    y: Option<Var>,
    /// `(tensor, offset, var)` of every parameter block read.
    params: Vec<(Idx, usize, Var)>,
    /// `(tensor, offset in one sequence's block, var)` of every continuous state block read.
    state_in: Vec<(Idx, usize, Var)>,
    /// `(tensor, offset in one sequence's block, var)` of every continuous state block
    /// written.
    state_out: Vec<(Idx, usize, Var)>,
}

struct Run<'a, S: Scalar> {
    sh: &'a Shapes,
    groups: usize,
    params: &'a Tensors<S>,
    st: &'a Tensors<S>,
    t: SeqTape<S>,
}

/// The block at `off` (`rows × cols`) of each of `groups` sequences' copies of a tensor.
fn gather_blocks<S: Scalar>(
    data: &[S],
    groups: usize,
    off: usize,
    rows: usize,
    cols: usize,
) -> Array3<S> {
    let per = data.len() / groups;
    let n = rows * cols;
    let mut out = Vec::with_capacity(groups * n);
    for g in 0..groups {
        out.extend_from_slice(&data[g * per + off..g * per + off + n]);
    }
    Array3::from_shape_vec((groups, rows, cols), out).expect("sized")
}

/// Writes every group of `value` to its sequence's block at `off`.
fn scatter_blocks<S: Scalar>(data: &mut [S], off: usize, value: &Array3<S>) {
    let (groups, rows, cols) = value.dim();
    let per = data.len() / groups;
    let n = rows * cols;
    let src = value
        .as_slice()
        .expect("tape values are in standard layout");
    for (g, m) in src.chunks_exact(n).enumerate() {
        data[g * per + off..g * per + off + n].copy_from_slice(m);
    }
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
        let off = i * rows * cols;
        let v = self.t.tape.leaf_stack(gather_blocks(
            self.st.slice(idx),
            self.groups,
            off,
            rows,
            cols,
        ));
        self.t.state_in.push((idx, off, v));
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

/// Where the first sequence of `st` stands inside its inner chunk (0 without chunks; every
/// sequence of a batch stands at the same place, since they advance together).
pub fn chunk_position<S: Scalar>(sh: &Shapes, st: &Tensors<S>) -> usize {
    match sh.si.position {
        Some(i) => st.slice(i)[0]
            .as_f64()
            .round()
            .clamp(0.0, (sh.p.chunk - 1) as f64) as usize,
        None => 0,
    }
}

/// Runs a batch's window `xs` (`T × B × input`) from its state `st` (the batched layout of
/// those `B` sequences), writing the outputs to `ys` (`T × B × output`) and the new state to
/// `st`. Returns the tape.
pub fn run<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    st: &mut Tensors<S>,
    xs: ArrayView3<S>,
    mut ys: ArrayViewMut3<S>,
    cut: Cut,
) -> SeqTape<S> {
    let p = &sh.p;
    let (h_n, d, w) = (p.heads, sh.d, sh.width);
    let (len, groups, _) = xs.dim();
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
        groups,
        params,
        st: &*st,
        t: SeqTape::default(),
    };
    let (pi, si) = (&sh.pi, &sh.si);
    let x = r.t.tape.leaf_stack(
        xs.permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned(),
    );
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
                let per = sh.state.entries()[sci].len();
                let held = |g: usize| g * per + lh * kk..g * per + (lh + 1) * kk;
                let scores = (0..groups)
                    .map(|g| r.st.slice(sci)[held(g)].to_vec())
                    .collect();
                let used = (0..groups)
                    .map(|g| {
                        r.st.slice(ui)[held(g)]
                            .iter()
                            .map(|u| u.as_f64() > 0.5)
                            .collect()
                    })
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
    ys.assign(&r.t.tape.stack(y).view().permuted_axes([1, 0, 2]));
    // Write the new state back.
    let mut tape = r.t;
    for &(idx, off, v) in &tape.state_out {
        scatter_blocks(st.slice_mut(idx), off, tape.tape.stack(v));
    }
    if let Some((ki, vi, sci, ui)) = si.sidecar {
        let kk = p.sidecar;
        let per = sh.state.entries()[sci].len();
        for (lh, c) in &new_caches {
            for (idx, var) in [(ki, c.keys), (vi, c.values)] {
                scatter_blocks(st.slice_mut(idx), lh * kk * d, tape.tape.stack(var));
                tape.state_out.push((idx, lh * kk * d, var));
            }
            for (g, (scores, used)) in c.scores.iter().zip(&c.used).enumerate() {
                let held = g * per + lh * kk..g * per + (lh + 1) * kk;
                st.slice_mut(sci)[held.clone()].copy_from_slice(scores);
                for (dst, &u) in st.slice_mut(ui)[held].iter_mut().zip(used) {
                    *dst = if u { S::one() } else { S::zero() };
                }
            }
        }
    }
    if let Some(i) = si.position {
        st.slice_mut(i).fill(S::from_f64(end_pos as f64));
    }
    tape
}

impl<S: Scalar> SeqTape<S> {
    /// Backpropagates `dys` (`T × B × output`) and `dstate` (the batch's `∂L/∂state` after
    /// the window; replaced by the gradient before it), adding parameter gradients to
    /// `grads`; returns `∂L/∂x` (`T × B × input`).
    pub fn backward(
        &self,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
    ) -> Array3<S> {
        let y = self.y.expect("a recorded window");
        let dy = dys
            .permuted_axes([1, 0, 2])
            .as_standard_layout()
            .into_owned();
        let outs: Vec<(Var, Array3<S>)> = self
            .state_out
            .iter()
            .map(|&(idx, off, v)| {
                let (r, c) = self.tape.dim(v);
                let groups = self.tape.groups(v);
                (v, gather_blocks(dstate.slice(idx), groups, off, r, c))
            })
            .collect();
        let seeds: Vec<(Var, ArrayView3<S>)> = std::iter::once((y, dy.view()))
            .chain(outs.iter().map(|(v, a)| (*v, a.view())))
            .collect();
        let g: Grads<S> = self.tape.backward(&seeds);
        for &(idx, off, v) in &self.params {
            if let Some(gv) = g.stack(v) {
                let dst = &mut grads.slice_mut(idx)[off..off + gv.len()];
                dst.iter_mut().zip(gv.iter()).for_each(|(a, b)| *a += *b);
            }
        }
        dstate.fill(S::zero());
        for &(idx, off, v) in &self.state_in {
            if let Some(gv) = g.stack(v) {
                scatter_blocks(dstate.slice_mut(idx), off, gv);
            }
        }
        let x = self.x.expect("input");
        match g.stack(x) {
            Some(dx) => dx
                .view()
                .permuted_axes([1, 0, 2])
                .as_standard_layout()
                .into_owned(),
            None => {
                let (gs, t, n) = self.tape.stack(x).dim();
                Array3::zeros((t, gs, n))
            }
        }
    }
}
