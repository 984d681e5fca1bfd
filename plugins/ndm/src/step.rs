//! One step of one sequence: the forward equations, shared by the per-token step and the
//! training window (which also records what the backward pass reads).

// Index loops walk several same-length rows at once; iterator zips of five rows read worse.
#![allow(clippy::needless_range_loop)]

use crate::consts::{
    Consts, LIM_ARG, LIM_D, LIM_H, LIM_OUT, LIM_TRACE, LIM_TRACE_IN, Write, clip, sigmoid,
};
use crate::fast::{self, Fast};
use mnnn_core::Scalar;
use mnnn_core::kernels::Path;

/// Widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    pub i: usize,
    pub h: usize,
    pub m: usize,
    pub o: usize,
}

/// The parameters of the cell as slices (`k`, `v` empty where the variant has no write).
pub(crate) struct ParamView<'a, S> {
    pub w_in: &'a [S],
    pub w_h: &'a [S],
    pub b_h: &'a [S],
    pub eta_in: &'a [S],
    pub eta_h: &'a [S],
    pub q: &'a [S],
    pub k: &'a [S],
    pub v: &'a [S],
    pub w_out: &'a [S],
    pub b_out: &'a [S],
}

/// One sequence's state as slices (`va`, `vb` empty unless momentum).
pub(crate) struct SeqState<'a, S> {
    pub h: &'a mut [S],
    pub pre: &'a mut [S],
    pub post: &'a mut [S],
    pub m: &'a mut [S],
    pub a: &'a mut [S],
    pub b: &'a mut [S],
    pub pa: &'a mut [S],
    pub pb: &'a mut [S],
    pub va: &'a mut [S],
    pub vb: &'a mut [S],
}

/// Offsets of the per-step record: eleven `H`-vectors, then the query (and key) logits
/// (`M` each) and, in design, the value logits (`H`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    pub width: usize,
    h: usize,
    m: usize,
    has_key: bool,
}

/// The record's `H`-wide fields, in order.
#[derive(Clone, Copy)]
pub(crate) enum F {
    H0,
    Pre0,
    Post0,
    U,
    R,
    Mr,
    C,
    D,
    Hr,
    PreR,
    PostR,
}

impl Rec {
    pub(crate) fn new<S: Scalar>(c: &Consts<S>, s: Shape) -> Self {
        let has_key = c.write != Write::Never;
        let value = if c.write == Write::After { s.h } else { 0 };
        Rec {
            width: 11 * s.h + s.m * (1 + usize::from(has_key)) + value,
            h: s.h,
            m: s.m,
            has_key,
        }
    }

    pub(crate) fn f(&self, f: F) -> std::ops::Range<usize> {
        let k = f as usize * self.h;
        k..k + self.h
    }

    pub(crate) fn q(&self) -> std::ops::Range<usize> {
        11 * self.h..11 * self.h + self.m
    }

    pub(crate) fn k(&self) -> std::ops::Range<usize> {
        let s = 11 * self.h + self.m;
        s..s + if self.has_key { self.m } else { 0 }
    }

    pub(crate) fn v(&self) -> std::ops::Range<usize> {
        let s = self.k().end;
        s..self.width
    }
}

/// Work space of one step (one sequence at a time).
#[derive(Default, Debug)]
pub struct Scratch<S> {
    u: Vec<S>,
    r: Vec<S>,
    mr: Vec<S>,
    q: Vec<S>,
    k: Vec<S>,
    v: Vec<S>,
    cols: Vec<S>,
    row: Vec<S>,
}

impl<S: Scalar> Scratch<S> {
    fn size(&mut self, s: Shape, value: usize) {
        for (b, n) in [
            (&mut self.u, s.h),
            (&mut self.r, s.h),
            (&mut self.mr, s.h),
            (&mut self.q, s.m),
            (&mut self.k, s.m),
            (&mut self.v, value),
            (&mut self.cols, s.h),
            (&mut self.row, 11 * s.h + 2 * s.m + value),
        ] {
            if b.len() != n {
                b.clear();
                b.resize(n, S::zero());
            }
        }
    }
}

/// `y = b + x·W` for a row vector `x` and a row-major `W`.
fn affine<S: Scalar>(y: &mut [S], b: &[S], x: &[S], w: &[S]) {
    y.copy_from_slice(b);
    S::gemv_acc(y, x, w);
}

/// Column tile of [`gemv_pair`]: 64 accumulators (four AVX-512 or eight AVX2 registers in
/// f32) stay in registers over every row of the matrices.
const TILE: usize = 64;

/// `y[j] += Σ_i x[i]·(w[i,j] + d[i,j])` for row-major `w`, `d` (`x.len() × y.len()`): the
/// read through a fast weight `w0 + a` as one pass over both matrices. Each column sums its
/// rows in order with separate multiplies and adds, so every build gives the same bits.
#[inline(always)]
pub(crate) fn gemv_pair<S: Scalar>(y: &mut [S], x: &[S], w: &[S], d: &[S]) {
    let n = y.len();
    assert!(
        w.len() == x.len() * n && d.len() == w.len(),
        "gemv_pair: matrix size"
    );
    let mut tiles = y.chunks_exact_mut(TILE);
    for (t, yt) in (&mut tiles).enumerate() {
        let s = t * TILE;
        let mut acc: [S; TILE] = (&*yt).try_into().expect("tile");
        for (i, &xi) in x.iter().enumerate() {
            let wr: &[S; TILE] = w[i * n + s..][..TILE].try_into().expect("tile");
            let dr: &[S; TILE] = d[i * n + s..][..TILE].try_into().expect("tile");
            for k in 0..TILE {
                acc[k] += xi * (wr[k] + dr[k]);
            }
        }
        yt.copy_from_slice(&acc);
    }
    let rest = tiles.into_remainder();
    let s = n - rest.len();
    for (i, &xi) in x.iter().enumerate() {
        let (wr, dr) = (&w[i * n + s..(i + 1) * n], &d[i * n + s..(i + 1) * n]);
        for ((yj, &wv), &dv) in rest.iter_mut().zip(wr).zip(dr) {
            *yj += xi * (wv + dv);
        }
    }
}

/// One step: reads `x` (`I`), advances `st`, writes `y` (`O`); fills `rec` (one record row)
/// when given. Runs the widest build of the step the selected kernel path allows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward<S: Scalar>(
    c: &Consts<S>,
    s: Shape,
    p: &ParamView<'_, S>,
    x: &[S],
    st: SeqState<'_, S>,
    sc: &mut Scratch<S>,
    y: &mut [S],
    rec: Option<&mut [S]>,
) {
    forward_on(Path::selected(), c, s, p, x, st, sc, y, rec)
}

/// [`forward`] on the build for `path` (one the CPU has): the same body compiled with
/// AVX-512F, with AVX2+FMA or for the baseline. Its loops are elementwise or sum in a fixed
/// order without fused multiply-adds, so the builds agree bit for bit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_on<S: Scalar>(
    path: Path,
    c: &Consts<S>,
    s: Shape,
    p: &ParamView<'_, S>,
    x: &[S],
    st: SeqState<'_, S>,
    sc: &mut Scratch<S>,
    y: &mut [S],
    rec: Option<&mut [S]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn w512<S: Scalar>(
            c: &Consts<S>,
            s: Shape,
            p: &ParamView<'_, S>,
            x: &[S],
            st: SeqState<'_, S>,
            sc: &mut Scratch<S>,
            y: &mut [S],
            rec: Option<&mut [S]>,
        ) {
            forward_impl(c, s, p, x, st, sc, y, rec)
        }
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn w256<S: Scalar>(
            c: &Consts<S>,
            s: Shape,
            p: &ParamView<'_, S>,
            x: &[S],
            st: SeqState<'_, S>,
            sc: &mut Scratch<S>,
            y: &mut [S],
            rec: Option<&mut [S]>,
        ) {
            forward_impl(c, s, p, x, st, sc, y, rec)
        }
        assert!(
            path.is_available(),
            "kernel path {path:?} missing on this CPU"
        );
        match path {
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked just above).
            Path::Avx512 => return unsafe { w512(c, s, p, x, st, sc, y, rec) },
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            Path::Avx2 => return unsafe { w256(c, s, p, x, st, sc, y, rec) },
            Path::Portable => {}
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = path;
    forward_impl(c, s, p, x, st, sc, y, rec)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_impl<S: Scalar>(
    c: &Consts<S>,
    s: Shape,
    p: &ParamView<'_, S>,
    x: &[S],
    st: SeqState<'_, S>,
    sc: &mut Scratch<S>,
    y: &mut [S],
    rec: Option<&mut [S]>,
) {
    let (h, m) = (s.h, s.m);
    let value = if c.write == Write::After { h } else { 0 };
    sc.size(s, value);
    let layout = Rec::new(c, s);
    let row = &mut sc.row[..layout.width];
    row[layout.f(F::H0)].copy_from_slice(st.h);
    row[layout.f(F::Pre0)].copy_from_slice(st.pre);
    row[layout.f(F::Post0)].copy_from_slice(st.post);

    // Input and recurrent drives through the fast weights w0 + a.
    sc.u.copy_from_slice(p.b_h);
    gemv_pair(&mut sc.u, x, p.w_in, st.a);
    sc.r.fill(S::zero());
    gemv_pair(&mut sc.r, st.h, p.w_h, st.b);

    if c.write == Write::Before {
        // ndm.c: Mf[m,i] ← γ Mf[m,i] + k_m h_i V[i,m], from the previous state.
        let kr = &mut row[layout.k()];
        kr.fill(S::zero());
        S::gemv_acc(kr, st.h, p.k);
        for (mi, mrow) in st.m.chunks_exact_mut(h).enumerate() {
            let km = sigmoid(kr[mi]) * c.write_gain;
            for (j, mv) in mrow.iter_mut().enumerate() {
                *mv = c.gamma * *mv + km * st.h[j] * p.v[j * m + mi];
            }
        }
    }
    // Read: q = σ(h Q), mr = q M.
    let qr = &mut row[layout.q()];
    qr.fill(S::zero());
    S::gemv_acc(qr, st.h, p.q);
    for (q, &l) in sc.q.iter_mut().zip(qr.iter()) {
        *q = sigmoid(c.clip(l, LIM_ARG));
    }
    sc.mr.fill(S::zero());
    S::gemv_acc(&mut sc.mr, &sc.q, st.m);

    // The hidden ODE's Euler step and the Hebbian traces.
    let ch = &mut sc.cols;
    for j in 0..h {
        let z = c.clip(sc.u[j], LIM_ARG) + c.clip(sc.r[j], LIM_ARG) + c.clip(sc.mr[j], LIM_ARG);
        ch[j] = c.clip(z, LIM_ARG);
    }
    S::tanh_inplace(ch);
    for j in 0..h {
        let h0 = st.h[j];
        let d_raw = ch[j] - h0;
        let d = c.clip(d_raw, LIM_D);
        let h_raw = h0 + c.dt * d;
        let hn = c.clip(h_raw, LIM_H);
        let pre_raw = c.tau * st.pre[j] + c.tau_in * c.clip(hn.abs(), LIM_TRACE_IN);
        let post_raw = c.tau * st.post[j] + c.tau_in * c.clip(d.abs(), LIM_TRACE_IN);
        row[F::U as usize * h + j] = sc.u[j];
        row[F::R as usize * h + j] = sc.r[j];
        row[F::Mr as usize * h + j] = sc.mr[j];
        row[F::C as usize * h + j] = ch[j];
        row[F::D as usize * h + j] = d_raw;
        row[F::Hr as usize * h + j] = h_raw;
        row[F::PreR as usize * h + j] = pre_raw;
        row[F::PostR as usize * h + j] = post_raw;
        st.h[j] = hn;
        st.pre[j] = trace(c, pre_raw);
        st.post[j] = trace(c, post_raw);
    }

    // The fast weights: rows x (input) or pre (recurrent), columns η ⊙ post.
    for j in 0..h {
        ch[j] = p.eta_in[j] * st.post[j];
    }
    let fa = Fast {
        w0: p.w_in,
        a: st.a,
        p: st.pa,
        v: st.va,
    };
    fast::update(c, x, ch, fa);
    for j in 0..h {
        ch[j] = p.eta_h[j] * st.post[j];
    }
    let fb = Fast {
        w0: p.w_h,
        a: st.b,
        p: st.pb,
        v: st.vb,
    };
    fast::update(c, st.pre, ch, fb);

    if c.write == Write::After {
        // Design: k = σ(h K), v = tanh(h V), M ← γ M + (1 − γ) k vᵀ (stays in [−1, 1]).
        let (head, vr) = row.split_at_mut(layout.v().start);
        let kr = &mut head[layout.k()];
        kr.fill(S::zero());
        S::gemv_acc(kr, st.h, p.k);
        vr.fill(S::zero());
        S::gemv_acc(vr, st.h, p.v);
        sc.v.copy_from_slice(vr);
        S::tanh_inplace(&mut sc.v);
        for (mi, mrow) in st.m.chunks_exact_mut(h).enumerate() {
            let km = sigmoid(c.clip(kr[mi], LIM_ARG)) * c.write_gain;
            for (mv, &vj) in mrow.iter_mut().zip(&sc.v) {
                *mv = c.gamma * *mv + km * vj;
            }
        }
    }

    affine(y, p.b_out, st.h, p.w_out);
    if c.clamped() {
        for v in y.iter_mut() {
            *v = clip(*v, S::from_f64(LIM_OUT));
        }
    }
    if let Some(r) = rec {
        r.copy_from_slice(row);
    }
}

/// A trace after its update: clipped to `[0, 2]` in the clamped variant.
#[inline(always)]
pub(crate) fn trace<S: Scalar>(c: &Consts<S>, raw: S) -> S {
    if c.clamped() {
        raw.max(S::zero()).min(S::from_f64(LIM_TRACE))
    } else {
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NdmParams, Variant};
    use mnnn_core::reference::Compat;

    fn vals(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|k| (((k * 37 + salt * 11) % 23) as f32 - 11.0) / 17.0)
            .collect()
    }

    /// The tiled pass is the plain row-ordered sum of `x·(w + d)`, tiles and remainder alike.
    #[test]
    fn gemv_pair_is_the_row_ordered_sum() {
        for (rows, n) in [(5, 70), (3, 64), (2, 7), (9, 128)] {
            let (x, w, d, y0) = (
                vals(rows, 1),
                vals(rows * n, 2),
                vals(rows * n, 3),
                vals(n, 4),
            );
            let mut y = y0.clone();
            gemv_pair(&mut y, &x, &w, &d);
            let mut want = y0;
            for i in 0..rows {
                for j in 0..n {
                    want[j] += x[i] * (w[i * n + j] + d[i * n + j]);
                }
            }
            assert_eq!(y, want, "{rows} x {n}");
        }
    }

    /// Every build of the step the CPU has gives the portable build's bits, for every variant
    /// and mode, over a few steps with a record.
    #[test]
    fn every_build_of_the_step_gives_the_same_bits() {
        let sh = Shape {
            i: 3,
            h: 70,
            m: 5,
            o: 2,
        };
        for variant in [Variant::Original, Variant::Clamped, Variant::Momentum] {
            for compat in [Compat::Design, Compat::Reference] {
                let c = Consts::<f32>::new(&NdmParams {
                    variant,
                    compat,
                    ..Default::default()
                });
                let (ih, hh, mh) = (sh.i * sh.h, sh.h * sh.h, sh.m * sh.h);
                let (w_in, w_h, b_h, eta) =
                    (vals(ih, 1), vals(hh, 2), vals(sh.h, 3), vals(sh.h, 4));
                let (q, k, v) = (vals(sh.h * sh.m, 5), vals(sh.h * sh.m, 6), vals(hh, 7));
                let (w_out, b_out) = (vals(sh.h * sh.o, 8), vals(sh.o, 9));
                let v = if c.write == Write::Before {
                    &v[..sh.h * sh.m]
                } else {
                    &v[..]
                };
                let (k, v): (&[f32], &[f32]) = if c.write == Write::Never {
                    (&[], &[])
                } else {
                    (&k, v)
                };
                let pv = ParamView {
                    w_in: &w_in,
                    w_h: &w_h,
                    b_h: &b_h,
                    eta_in: &eta,
                    eta_h: &eta,
                    q: &q,
                    k,
                    v,
                    w_out: &w_out,
                    b_out: &b_out,
                };
                let run = |path: Path| {
                    let sizes = [sh.h, sh.h, sh.h, mh, ih, hh, ih, hh, ih, hh];
                    let mut st: Vec<Vec<f32>> = sizes
                        .iter()
                        .enumerate()
                        .map(|(n, &len)| vals(len, 10 + n))
                        .collect();
                    let (mut sc, mut y) = (Scratch::default(), vec![0.0; sh.o]);
                    let mut rec = vec![0.0; Rec::new(&c, sh).width];
                    let mut out = Vec::new();
                    for t in 0..3 {
                        let [h, pre, post, m, a, b, pa, pb, va, vb] = &mut st[..] else {
                            unreachable!()
                        };
                        let seq = SeqState {
                            h,
                            pre,
                            post,
                            m,
                            a,
                            b,
                            pa,
                            pb,
                            va,
                            vb,
                        };
                        let x = vals(sh.i, 20 + t);
                        forward_on(path, &c, sh, &pv, &x, seq, &mut sc, &mut y, Some(&mut rec));
                        out.extend_from_slice(&y);
                        out.extend_from_slice(&rec);
                    }
                    (out, st)
                };
                let want = run(Path::Portable);
                for path in [Path::Avx2, Path::Avx512] {
                    if path.is_available() {
                        assert!(run(path) == want, "{variant:?}/{compat:?} on {path:?}");
                    }
                }
            }
        }
    }
}
