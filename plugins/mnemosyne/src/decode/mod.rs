//! The decode step: one token per sequence through the whole stack, with no tape and no
//! allocation once the scratch buffers are sized (on the first token).
//!
//! It computes the function the tape's step loop computes ([`crate::program::run`] cut token
//! by token), rearranged for a single token: where the tape reads each token through the
//! dual form (`q W₀ B + q S F − (q Xᵀ ⊙ Γ) G`), this step first writes the token into the
//! fast weights and then reads `q` through them. The two are equal in exact arithmetic; in
//! floating point they differ by rounding (the tests hold f64 to 1e-10 relative over long
//! streams, every memory × momentum × forget × gate × sidecar combination). In f32 the
//! GELU's tanh is the vectorised kernel of `mnnn_core` rather than libm's, a further
//! difference of a few ulps.

mod head;
mod vector;

use crate::shapes::{FastIdx, Idx, Shapes};
use head::{FastMut, HeadIn, MemScratch, SidecarMut};
use mnnn_core::kernels::Path;
use mnnn_core::{Scalar, Tensors};
use ndarray::{ArrayView2, ArrayViewMut2};
use std::ops::Range;
use vector::{affine, gelu_into, rms_norm};

/// Buffers of the decode step, sized on first use and reused for every later token.
#[derive(Debug, Default)]
pub struct DecodeScratch<S> {
    h: Vec<S>,
    a: Vec<S>,
    q: Vec<S>,
    k: Vec<S>,
    v: Vec<S>,
    lr: Vec<S>,
    keep: Vec<S>,
    eta: Vec<S>,
    side: Vec<S>,
    o: Vec<S>,
    f: Vec<S>,
    t: Vec<S>,
    mem: MemScratch<S>,
}

/// `v` as `n` values: zeroed (reusing its allocation) only when its length changes, so later
/// tokens keep the buffer as it is.
fn sized<S: Scalar>(v: &mut Vec<S>, n: usize) {
    if v.len() != n {
        mnnn_core::buf::zeroed(v, n);
    }
}

impl<S: Scalar> DecodeScratch<S> {
    fn ensure(&mut self, sh: &Shapes) {
        let (w, hd, h) = (sh.width, sh.p.heads * sh.d, sh.p.heads);
        for (v, n) in [
            (&mut self.h, w),
            (&mut self.a, w),
            (&mut self.q, hd),
            (&mut self.k, hd),
            (&mut self.v, hd),
            (&mut self.lr, h),
            (&mut self.keep, h),
            (&mut self.eta, h),
            (&mut self.side, h),
            (&mut self.o, hd),
            (&mut self.f, sh.ffn.max(w)),
            (&mut self.t, sh.ffn.max(w)),
        ] {
            sized(v, n);
        }
        self.mem.ensure(sh.d, 4 * sh.d, sh.p.sidecar);
    }
}

/// Block `i` (of `n` values) of a stacked tensor.
fn blk<S>(data: &[S], i: usize, n: usize) -> &[S] {
    &data[i * n..(i + 1) * n]
}

/// Mutable slices of `data` at pairwise disjoint `ranges` (empty ranges give empty slices),
/// in the order asked.
fn split_many<'a, S, const N: usize>(
    data: &'a mut [S],
    ranges: &[Range<usize>; N],
) -> [&'a mut [S]; N] {
    let mut order: [usize; N] = std::array::from_fn(|i| i);
    order.sort_by_key(|&i| ranges[i].start);
    let mut out: [Option<&'a mut [S]>; N] = std::array::from_fn(|_| None);
    let (mut rest, mut base) = (data, 0);
    for &i in &order {
        let r = &ranges[i];
        if r.is_empty() {
            out[i] = Some(Default::default());
            continue;
        }
        let (_, tail) = std::mem::take(&mut rest).split_at_mut(r.start - base);
        let (mid, tail) = tail.split_at_mut(r.len());
        out[i] = Some(mid);
        rest = tail;
        base = r.end;
    }
    out.map(|o| o.expect("every range placed"))
}

/// Where sequence `j`'s block of head `lh` of every state tensor a head touches lives.
struct HeadRanges {
    /// phi w0, b0, w1, b1; momentum the same; snapshot the same; sidecar keys, values,
    /// scores, used.
    r: [Range<usize>; 16],
}

impl HeadRanges {
    fn new(sh: &Shapes, st: &Tensors<impl Scalar>, batch: usize, j: usize, lh: usize) -> Self {
        let entries = st.layout().entries();
        // Sequence j's block of head lh of tensor idx, `len` values per head.
        let at = |idx: Idx, len: usize| {
            let e = &entries[idx];
            let per_seq = e.len() / batch;
            let start = e.range().start + j * per_seq + lh * len;
            start..start + len
        };
        let mut r: [Range<usize>; 16] = std::array::from_fn(|_| 0..0);
        let mut fast = |f: &FastIdx, base: usize| {
            for (i, m) in sh.fast.iter().enumerate() {
                r[base + 2 * i] = at(f.w[i], m.rows * m.cols);
                if let Some(b) = f.b[i] {
                    r[base + 2 * i + 1] = at(b, m.cols);
                }
            }
        };
        fast(&sh.si.phi, 0);
        if let Some(m) = &sh.si.momentum {
            fast(m, 4);
        }
        if let Some(s) = &sh.si.snapshot {
            fast(s, 8);
        }
        if let Some((ki, vi, sci, ui)) = sh.si.sidecar {
            let (k, d) = (sh.p.sidecar, sh.d);
            r[12] = at(ki, k * d);
            r[13] = at(vi, k * d);
            r[14] = at(sci, k);
            r[15] = at(ui, k);
        }
        HeadRanges { r }
    }
}

/// One token for each of the `B` sequences of `xs` (`B × input`), writing `ys` (`B × output`)
/// and advancing `state` (the batched state layout), on the kernels' selected path.
pub fn step<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    state: &mut Tensors<S>,
    xs: ArrayView2<S>,
    ys: ArrayViewMut2<S>,
    sc: &mut DecodeScratch<S>,
) {
    step_on(Path::selected(), sh, params, state, xs, ys, sc);
}

/// [`step`] with its loops built for `path`: the AVX2+FMA build where the path asks for it and
/// the CPU has it (AVX-512 machines take it too), the baseline build otherwise. Rust neither
/// reassociates nor fuses floating-point operations on its own, so both builds give the same
/// bits; the wider one runs the fast-weight updates and reads in 8 lanes instead of 4.
pub(crate) fn step_on<S: Scalar>(
    path: Path,
    sh: &Shapes,
    params: &Tensors<S>,
    state: &mut Tensors<S>,
    xs: ArrayView2<S>,
    ys: ArrayViewMut2<S>,
    sc: &mut DecodeScratch<S>,
) {
    #[cfg(target_arch = "x86_64")]
    if path != Path::Portable && Path::Avx2.is_available() {
        // SAFETY: the CPU has AVX2 and FMA (checked just above).
        unsafe { step_avx2(sh, params, state, xs, ys, sc) };
        return;
    }
    let _ = path;
    step_body(sh, params, state, xs, ys, sc);
}

/// [`step_body`] compiled with AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    state: &mut Tensors<S>,
    xs: ArrayView2<S>,
    ys: ArrayViewMut2<S>,
    sc: &mut DecodeScratch<S>,
) {
    step_body(sh, params, state, xs, ys, sc);
}

#[inline(always)]
fn step_body<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    state: &mut Tensors<S>,
    xs: ArrayView2<S>,
    mut ys: ArrayViewMut2<S>,
    sc: &mut DecodeScratch<S>,
) {
    sc.ensure(sh);
    let batch = xs.nrows();
    let position = crate::program::chunk_position(sh, state);
    for j in 0..batch {
        let x = xs.row(j);
        let x = x.as_slice().expect("a contiguous input row");
        let mut y = ys.row_mut(j);
        let y = y.as_slice_mut().expect("a contiguous output row");
        sequence(sh, params, state, batch, j, position, x, y, sc);
    }
    if let Some(i) = sh.si.position {
        let next = S::from_f64(((position + 1) % sh.p.chunk) as f64);
        state.slice_mut(i).fill(next);
    }
}

/// The stack for sequence `j` of a batch.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn sequence<S: Scalar>(
    sh: &Shapes,
    params: &Tensors<S>,
    state: &mut Tensors<S>,
    batch: usize,
    j: usize,
    position: usize,
    x: &[S],
    y: &mut [S],
    sc: &mut DecodeScratch<S>,
) {
    let (p, pi) = (&sh.p, &sh.pi);
    let (h_n, d, w) = (p.heads, sh.d, sh.width);
    let hd = h_n * d;
    let par = |i: Idx| params.slice(i);
    affine(x, par(pi.in_w), par(pi.in_b), &mut sc.h);
    let closes = position + 1 == p.chunk;
    for l in 0..p.layers {
        rms_norm(&sc.h, blk(par(pi.norm1), l, w), &mut sc.a);
        let a = &sc.a;
        for (out, wi) in [(&mut sc.q, pi.wq), (&mut sc.k, pi.wk), (&mut sc.v, pi.wv)] {
            out.fill(S::zero());
            S::gemv_acc(out, a, blk(par(wi), l, w * hd));
        }
        // Per-head rates and gates: one column per head.
        let drop_third = |(w, b, _): (Idx, Idx, Idx)| (w, b);
        for (wb, out) in [
            (Some((pi.lr_w, pi.lr_b)), &mut sc.lr),
            (pi.forget.map(drop_third), &mut sc.keep),
            (pi.momentum, &mut sc.eta),
            (pi.sidecar.map(drop_third), &mut sc.side),
        ] {
            if let Some((wi, bi)) = wb {
                affine(a, blk(par(wi), l, w * h_n), blk(par(bi), l, h_n), out);
            }
        }
        for hh in 0..h_n {
            let lh = l * h_n + hh;
            let cols = hh * d..(hh + 1) * d;
            vector::l2_normalize(&mut sc.q[cols.clone()]);
            vector::l2_normalize(&mut sc.k[cols.clone()]);
            let unary = |u: crate::tape::Unary, x: S| u.apply(x);
            use crate::tape::Unary;
            let theta = S::from_f64(p.lr) * unary(Unary::Sigmoid, sc.lr[hh]);
            let log_keep = pi.forget.map(|(_, _, fa)| {
                let ea = unary(Unary::Exp, blk(par(fa), l, h_n)[hh]);
                -(unary(Unary::Softplus, sc.keep[hh]) * ea)
            });
            let log_eta = pi.momentum.map(|_| unary(Unary::LogSigmoid, sc.eta[hh]));
            let hin = HeadIn {
                memory: p.memory,
                q: &sc.q[cols.clone()],
                k: &sc.k[cols.clone()],
                v: &sc.v[cols.clone()],
                theta,
                log_keep,
                log_eta,
                gate: pi
                    .surprise
                    .map(|(th, te)| (blk(par(th), l, h_n)[hh], blk(par(te), l, h_n)[hh])),
                ln: pi.ln.map(|(g, b)| (blk(par(g), lh, d), blk(par(b), lh, d))),
                static_w1: pi
                    .static_w1
                    .map(|(w1, b1)| (blk(par(w1), lh, d * 4 * d), blk(par(b1), lh, 4 * d))),
                hidden: 4 * d,
                at_snapshot: sh.si.snapshot.is_some() && position != 0,
                closes: sh.si.snapshot.is_some() && closes,
            };
            let ranges = HeadRanges::new(sh, state, batch, j, lh);
            let [
                p0w,
                p0b,
                p1w,
                p1b,
                m0w,
                m0b,
                m1w,
                m1b,
                s0w,
                s0b,
                s1w,
                s1b,
                ck,
                cv,
                cs,
                cu,
            ] = split_many(state.data_mut(), &ranges.r);
            let fast = |w0, b0, w1, b1| FastMut {
                w: [w0, w1],
                b: [b0, b1],
            };
            let phi = fast(p0w, p0b, p1w, p1b);
            let mom = fast(m0w, m0b, m1w, m1b);
            let snap = fast(s0w, s0b, s1w, s1b);
            let o = &mut sc.o[cols.clone()];
            let surprise = head::memory_step(
                &hin,
                phi,
                sh.si.momentum.is_some().then_some(mom),
                sh.si.snapshot.is_some().then_some(snap),
                o,
                &mut sc.mem,
            );
            if let Some((_, _, nulli)) = pi.sidecar {
                let side = SidecarMut {
                    keys: ck,
                    values: cv,
                    scores: cs,
                    used: cu,
                };
                let gate = unary(Unary::Sigmoid, sc.side[hh]);
                let null = blk(par(nulli), l, h_n)[hh];
                head::sidecar_step(&hin, side, surprise, null, gate, o, &mut sc.mem);
            }
        }
        // h += o · wo
        S::gemv_acc(&mut sc.h, &sc.o, blk(par(pi.wo), l, hd * w));
        if let Some((n2, f1, fb1, f2, fb2)) = pi.ffn {
            let f = sh.ffn;
            rms_norm(&sc.h, blk(par(n2), l, w), &mut sc.a);
            let z = &mut sc.f[..f];
            affine(&sc.a, blk(par(f1), l, w * f), blk(par(fb1), l, f), z);
            gelu_into(z, &mut sc.t[..f]);
            affine(
                &sc.t[..f],
                blk(par(f2), l, f * w),
                blk(par(fb2), l, w),
                &mut sc.a,
            );
            sc.h.iter_mut().zip(&sc.a).for_each(|(h, f)| *h += *f);
        }
    }
    rms_norm(&sc.h, par(pi.out_norm), &mut sc.a);
    affine(&sc.a, par(pi.out_w), par(pi.out_b), y);
}

#[cfg(test)]
mod tests;
