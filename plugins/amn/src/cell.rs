//! The AMN cell: batched step, windowed forward with a tape, and full-BPTT backward, for
//! both the design equations and the reference implementation's.

use crate::AmnParams;
use mnnn_core::buf::{mat, mat_mut, split_blocks, zeroed};
use mnnn_core::cell::{Cell, Diagnostic, Dims, mean_abs};
use mnnn_core::ops::{Activation, linear};
use mnnn_core::reference::Compat;
use mnnn_core::{Layout, Rng, Scalar, Tensors, init};
use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

// Parameter indices. `A`, `BF` and `LAM` come first, so they are one contiguous block.
const A: usize = 0;
const BF: usize = 1;
const LAM: usize = 2;
const B: usize = 3;
const C: usize = 4;
const D: usize = 5;
const K: usize = 6;
const V: usize = 7;
const Q: usize = 8;
/// Design mode only.
const E: usize = 9;
// State indices (`h` is 0).
const ST_S: usize = 1;
const ST_M: usize = 2;

/// The AMN cell for one scalar type and set of widths.
#[derive(Clone, Debug)]
pub struct AmnCell<S> {
    dims: Dims,
    hidden: usize,
    manifold: usize,
    design: bool,
    dt: S,
    decay: S,
    mix: S,
    lc_clip: S,
    lru_clip: S,
    out_clip: S,
    m_clip: S,
    write_scale: S,
}

impl<S: Scalar> AmnCell<S> {
    /// Builds the cell; `params` must be valid.
    pub fn new(params: &AmnParams, dims: Dims) -> Self {
        AmnCell {
            dims,
            hidden: params.hidden,
            manifold: params.manifold,
            design: params.compat == Compat::Design,
            dt: S::from_f64(params.dt),
            decay: S::from_f64(params.memory_decay),
            mix: S::from_f64(params.mix),
            lc_clip: S::from_f64(params.lc_clip),
            lru_clip: S::from_f64(params.lru_clip),
            out_clip: S::from_f64(params.output_clip),
            m_clip: S::from_f64(params.manifold_clip),
            write_scale: S::from_f64(params.write_scale),
        }
    }
}

/// The per-neuron coefficients `A`, `Bf`, `Λ` derived from the parameters (design mode:
/// softplus, softplus, sigmoid of the raw values), with the derivatives of those maps, and
/// the raw values they were computed from (so a step recomputes them only when the
/// parameters changed).
#[derive(Default, Debug, Clone)]
struct Coef<S> {
    raw: Vec<S>,
    a: Vec<S>,
    bf: Vec<S>,
    lam: Vec<S>,
    /// `∂A/∂a_raw`, `∂Bf/∂bf_raw`, `∂Λ/∂lambda_raw` (design mode).
    da: Vec<S>,
    dbf: Vec<S>,
    dlam: Vec<S>,
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

impl<S: Scalar> Coef<S> {
    /// Brings the coefficients up to date with `params`; a no-op when the raw values are
    /// unchanged since the last call.
    #[inline(always)]
    fn refresh(&mut self, cell: &AmnCell<S>, params: &Tensors<S>) {
        let h = cell.hidden;
        let raw = &params.data()[..3 * h];
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
    fn recompute(&mut self, cell: &AmnCell<S>, raw: &[S]) {
        let h = cell.hidden;
        self.raw.clear();
        self.raw.extend_from_slice(raw);
        for v in [
            &mut self.a,
            &mut self.bf,
            &mut self.lam,
            &mut self.da,
            &mut self.dbf,
            &mut self.dlam,
        ] {
            v.clear();
            v.resize(h, S::one());
        }
        let (ra, rest) = raw.split_at(h);
        let (rb, rl) = rest.split_at(h);
        if cell.design {
            for j in 0..h {
                let (xa, xb, xl) = (ra[j].as_f64(), rb[j].as_f64(), rl[j].as_f64());
                self.a[j] = S::from_f64(softplus(xa));
                self.da[j] = S::from_f64(sigmoid(xa));
                self.bf[j] = S::from_f64(softplus(xb));
                self.dbf[j] = S::from_f64(sigmoid(xb));
                let l = sigmoid(xl);
                self.lam[j] = S::from_f64(l);
                self.dlam[j] = S::from_f64(l * (1.0 - l));
            }
        } else {
            self.a.copy_from_slice(ra);
            self.bf.copy_from_slice(rb);
            self.lam.copy_from_slice(rl);
        }
    }
}

/// Work space of [`AmnCell::step`] and of the chunked form.
#[derive(Default, Debug)]
pub struct Scratch<S> {
    coef: Coef<S>,
    x: Vec<S>,
    f: Vec<S>,
    xe: Vec<S>,
    q: Vec<S>,
    r: Vec<S>,
    y: Vec<S>,
    k: Vec<S>,
    v: Vec<S>,
    window: Tape<S>,
}

/// What the forward window keeps for the backward pass (rows are `t·B + b`; the `hs`, `ss`
/// and `ms` histories have one more block in front: the state before the window).
#[derive(Default, Debug)]
pub struct Tape<S> {
    steps: usize,
    batch: usize,
    coef: Coef<S>,
    x: Vec<S>,
    f: Vec<S>,
    xe: Vec<S>,
    c: Vec<S>,
    hs: Vec<S>,
    ss: Vec<S>,
    q: Vec<S>,
    r: Vec<S>,
    k: Vec<S>,
    v: Vec<S>,
    y: Vec<S>,
    ms: Vec<S>,
}

/// `v` clipped to `[−lim, lim]`, by comparisons (which vectorise to a min and a max); a NaN
/// passes through, as in the reference.
#[inline(always)]
fn clip<S: Scalar>(v: S, lim: S) -> S {
    let v = if v < -lim { -lim } else { v };
    if v > lim { lim } else { v }
}

/// 1 inside the clip range, 0 on or beyond it, from the clipped value.
#[inline(always)]
fn inside<S: Scalar>(clipped: S, lim: S) -> bool {
    clipped.abs() < lim
}

/// `sign(v)`, with `sign(0) = 0` (the derivative of `|v|` that central differences see).
#[inline(always)]
fn sign<S: Scalar>(v: S) -> S {
    if v > S::zero() {
        S::one()
    } else if v < S::zero() {
        -S::one()
    } else {
        S::zero()
    }
}

/// What a windowed forward pass is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Training: the manifold history is recorded for the backward pass.
    Train,
    /// Batched inference: per-step products through the matrix product, so that a
    /// sequence gives bit for bit the same alone or in a batch.
    Batch,
    /// Streaming inference (the chunked form): per-step products through the matrix–vector
    /// kernel at batch 1, like [`Cell::step`].
    Stream,
}

/// Whether this CPU runs the AVX2+FMA builds of the hot paths.
#[cfg(target_arch = "x86_64")]
#[inline]
fn wide() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// `y += x · w` for a per-token step, on flat row-major buffers (`x` is `rows × k`, `w` is
/// `k × n`): [`linear::accumulate`] without building views. Each row is bit for bit what the
/// matrix–vector kernel gives it alone, which at batch 1 is the kernel itself.
#[inline(always)]
fn step_mv<S: Scalar>(x: &[S], w: &[S], k: usize, y: &mut [S]) {
    S::gemm_rows_acc(y, x, w, x.len() / k.max(1));
}

/// `Σ aᵢ bᵢ` in eight independent partial sums (so it vectorises), folded pairwise.
#[inline(always)]
fn dot<S: Scalar>(a: &[S], b: &[S]) -> S {
    let mut lanes = [S::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (x, y): (&[S; 8], &[S; 8]) = (x.try_into().unwrap(), y.try_into().unwrap());
        lanes = std::array::from_fn(|k| lanes[k] + x[k] * y[k]);
    }
    for (k, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        lanes[k] += x * y;
    }
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lanes;
    ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
}

/// `y += x · wᵀ` for `x` (`rows × n`) and `w` (`k × n`), with `wt` = `wᵀ` (`n × k`, filled
/// once per backward pass) for the matrix–vector kernel when there are few rows.
#[inline(always)]
fn acc_t<S: Scalar>(x: &[S], w: ArrayView2<S>, wt: &[S], y: &mut [S]) {
    let (k, n) = w.dim();
    let rows = x.len() / n.max(1);
    if rows <= 4 {
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(k)) {
            S::gemv_acc(yr, xr, wt);
        }
    } else {
        general_mat_mul(
            S::one(),
            &mat(x, rows, n),
            &w.t(),
            S::one(),
            &mut mat_mut(y, rows, k),
        );
    }
}

/// `w` (`rows × cols`, row-major) transposed.
fn transposed<S: Scalar>(w: ArrayView2<S>) -> Vec<S> {
    w.t().iter().copied().collect()
}

/// `y = x · w` (assigned) through one matrix product.
fn gemm_set<S: Scalar>(x: ArrayView2<S>, w: ArrayView2<S>, y: &mut [S]) {
    let (rows, cols) = (x.nrows(), w.ncols());
    general_mat_mul(S::one(), &x, &w, S::zero(), &mut mat_mut(y, rows, cols));
}

impl<S: Scalar> AmnCell<S> {
    /// The liquid time-constant step and the LRU update for a block of rows: reads `f`, the
    /// LRU input term `xe` (design mode), the previous `h`, and updates `s` in place; writes
    /// the clipped liquid state into `c` when given.
    #[inline(always)]
    fn lc_lru(
        &self,
        coef: &Coef<S>,
        f: &[S],
        xe: Option<&[S]>,
        h_prev: &[S],
        s: &mut [S],
        c_out: Option<&mut [S]>,
    ) {
        match (xe, c_out) {
            (Some(xe), Some(c)) => self.lc_lru_rows::<true, true>(coef, f, xe, h_prev, s, c),
            (Some(xe), None) => self.lc_lru_rows::<true, false>(coef, f, xe, h_prev, s, &mut []),
            (None, Some(c)) => self.lc_lru_rows::<false, true>(coef, f, &[], h_prev, s, c),
            (None, None) => self.lc_lru_rows::<false, false>(coef, f, &[], h_prev, s, &mut []),
        }
    }

    #[inline(always)]
    fn lc_lru_rows<const XE: bool, const REC: bool>(
        &self,
        coef: &Coef<S>,
        f: &[S],
        xe: &[S],
        h_prev: &[S],
        s: &mut [S],
        c_out: &mut [S],
    ) {
        let h = self.hidden;
        let (a, bf, lam) = (&coef.a[..h], &coef.bf[..h], &coef.lam[..h]);
        let (dt, lc, lru) = (self.dt, self.lc_clip, self.lru_clip);
        for row in 0..f.len() / h {
            let o = row * h;
            let fr = &f[o..o + h];
            let hr = &h_prev[o..o + h];
            let sr = &mut s[o..o + h];
            for j in 0..h {
                let (fv, hv) = (fr[j], hr[j]);
                let tau = a[j] + bf[j] * fv.abs();
                // Design mode (the one with the LRU input term) feeds the LRU the liquid
                // neuron's Euler increment, so the recurrence's gain is Λ − dt·τ·mix < 1; the
                // reference adds the whole liquid state, a gain above 1 that saturates.
                let base = if XE { S::zero() } else { hv };
                let c = clip(base + dt * (bf[j] * fv - tau * hv), lc);
                if REC {
                    c_out[o + j] = c;
                }
                let mut pre = lam[j] * sr[j] + c;
                if XE {
                    pre += xe[o + j];
                }
                sr[j] = clip(pre, lru);
            }
        }
    }

    /// `h = mix·s + (1 − mix)·r` for a block of rows.
    #[inline(always)]
    fn combine(&self, s: &[S], r: &[S], h: &mut [S]) {
        let (a, b) = (self.mix, S::one() - self.mix);
        for ((hv, &sv), &rv) in h.iter_mut().zip(s).zip(r) {
            *hv = a * sv + b * rv;
        }
    }

    /// The read `r = q M` for every row (one sequence's manifold each).
    #[inline(always)]
    fn read(&self, q: &[S], m: &[S], r: &mut [S]) {
        let (h, mm) = (self.hidden, self.manifold);
        r.fill(S::zero());
        for ((rr, qr), mr) in r
            .chunks_exact_mut(h)
            .zip(q.chunks_exact(mm))
            .zip(m.chunks_exact(mm * h))
        {
            S::gemv_acc(rr, qr, mr);
        }
    }

    /// The write `M ← clip(decay·M + write_scale·(k ⊙ v) hᵀ)` in place, for every row; `k`
    /// already holds the sigmoid.
    #[inline(always)]
    fn write_inplace(&self, k: &[S], v: &[S], h: &[S], m: &mut [S]) {
        let (hh, mm) = (self.hidden, self.manifold);
        let (decay, lim) = (self.decay, self.m_clip);
        for b in 0..h.len() / hh {
            let hr = &h[b * hh..(b + 1) * hh];
            let mb = &mut m[b * mm * hh..(b + 1) * mm * hh];
            for (j, row) in mb.chunks_exact_mut(hh).enumerate() {
                let w = self.write_scale * k[b * mm + j] * v[b * mm + j];
                for (d, &hv) in row.iter_mut().zip(hr) {
                    *d = clip(decay * *d + w * hv, lim);
                }
            }
        }
    }

    /// [`Cell::step`] compiled with AVX2 and FMA enabled, so its elementwise loops use the
    /// wide vectors. It computes exactly what [`AmnCell::step_impl`] computes: the loops are
    /// elementwise (nothing is reassociated) and Rust never contracts `a·b + c` into an FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_avx2(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        self.step_impl(params, state, x, y, scratch);
    }

    /// One step for a batch of rows (the body of [`Cell::step`]).
    #[inline(always)]
    fn step_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        scratch: &mut Scratch<S>,
    ) {
        let b = x.nrows();
        let (i, h, mm, o) = (
            self.dims.input,
            self.hidden,
            self.manifold,
            self.dims.output,
        );
        let sc = scratch;
        sc.coef.refresh(self, params);
        // The input rows as one contiguous block.
        sc.x.clear();
        match x.as_slice() {
            Some(xs) => sc.x.extend_from_slice(xs),
            None => sc.x.extend(x.iter().copied()),
        }
        let xr = &sc.x[..];
        zeroed(&mut sc.f, b * h);
        step_mv(xr, params.slice(B), i, &mut sc.f);
        S::tanh_inplace(&mut sc.f);
        if self.design {
            zeroed(&mut sc.xe, b * h);
            step_mv(xr, params.slice(E), i, &mut sc.xe);
        }
        let [sh, ss, sm] = split_blocks(state.data_mut(), b * h);
        // `s` is updated in place: each element reads only its own previous value.
        let xe = self.design.then_some(&sc.xe[..]);
        self.lc_lru(&sc.coef, &sc.f, xe, sh, ss, None);
        zeroed(&mut sc.q, b * mm);
        step_mv(ss, params.slice(Q), h, &mut sc.q);
        S::tanh_inplace(&mut sc.q);
        zeroed(&mut sc.r, b * h);
        self.read(&sc.q, sm, &mut sc.r);
        self.combine(ss, &sc.r, sh);
        zeroed(&mut sc.y, b * o);
        step_mv(sh, params.slice(C), h, &mut sc.y);
        step_mv(xr, params.slice(D), i, &mut sc.y);
        let lim = self.out_clip;
        sc.y.iter_mut().for_each(|v| *v = clip(*v, lim));
        y.assign(&mat(&sc.y, b, o));
        zeroed(&mut sc.k, b * mm);
        step_mv(sh, params.slice(K), h, &mut sc.k);
        Activation::Sigmoid.apply_inplace(&mut sc.k);
        zeroed(&mut sc.v, b * mm);
        step_mv(sh, params.slice(V), h, &mut sc.v);
        self.write_inplace(&sc.k, &sc.v, sh, sm);
    }

    /// The forward pass over a window, recording into `tape`; the manifold history is kept
    /// only for [`Pass::Train`] (the backward pass needs it, inference does not).
    fn run_window(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
        pass: Pass,
    ) {
        #[cfg(target_arch = "x86_64")]
        if wide() {
            // SAFETY: the CPU has the features `run_window_avx2` is compiled with.
            unsafe { self.run_window_avx2(params, state, xs, ys, tape, pass) };
            return;
        }
        self.run_window_impl(params, state, xs, ys, tape, pass);
    }

    #[inline(always)]
    fn run_window_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
        pass: Pass,
    ) {
        let (t, b, i) = xs.dim();
        let (h, mm, o) = (self.hidden, self.manifold, self.dims.output);
        let rows = t * b;
        let (bh, bm, bmh) = (b * h, b * mm, b * mm * h);
        let record = pass == Pass::Train;
        tape.coef.refresh(self, params);
        // `y = x·w` for one step's rows.
        let per_step = |x: &[S], w: &[S], k: usize, y: &mut [S]| {
            if pass == Pass::Stream {
                y.fill(S::zero());
                step_mv(x, w, k, y);
            } else {
                gemm_set(mat(x, b, k), mat(w, k, y.len() / b), y);
            }
        };
        tape.steps = t;
        tape.batch = b;
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        let xm = mat(&tape.x, rows, i);
        zeroed(&mut tape.f, rows * h);
        gemm_set(xm, params.mat(B), &mut tape.f);
        S::tanh_inplace(&mut tape.f);
        if self.design {
            zeroed(&mut tape.xe, rows * h);
            gemm_set(xm, params.mat(E), &mut tape.xe);
        }
        zeroed(&mut tape.c, rows * h);
        zeroed(&mut tape.hs, (rows + b) * h);
        zeroed(&mut tape.ss, (rows + b) * h);
        zeroed(&mut tape.q, rows * mm);
        zeroed(&mut tape.r, bh);
        zeroed(&mut tape.k, rows * mm);
        zeroed(&mut tape.v, rows * mm);
        zeroed(&mut tape.y, rows * o);
        zeroed(&mut tape.ms, if record { (t + 1) * bmh } else { 0 });
        {
            let [sh, ss, sm] = split_blocks(state.data_mut(), bh);
            tape.hs[..bh].copy_from_slice(sh);
            tape.ss[..bh].copy_from_slice(ss);
            if record {
                tape.ms[..bmh].copy_from_slice(sm);
            }
            let (pq, pk, pv) = (params.slice(Q), params.slice(K), params.slice(V));
            for step in 0..t {
                let (cur, nxt) = (step * bh, (step + 1) * bh);
                let (sprev, snew) = tape.ss.split_at_mut(nxt);
                snew[..bh].copy_from_slice(&sprev[cur..]);
                let xe = self.design.then(|| &tape.xe[cur..nxt]);
                self.lc_lru(
                    &tape.coef,
                    &tape.f[cur..nxt],
                    xe,
                    &tape.hs[cur..nxt],
                    &mut snew[..bh],
                    Some(&mut tape.c[cur..nxt]),
                );
                let s_t = &snew[..bh];
                let q_t = &mut tape.q[step * bm..(step + 1) * bm];
                per_step(s_t, pq, h, q_t);
                S::tanh_inplace(q_t);
                self.read(q_t, sm, &mut tape.r);
                let (_, hnew) = tape.hs.split_at_mut(nxt);
                let h_t = &mut hnew[..bh];
                self.combine(s_t, &tape.r, h_t);
                let h_t = &*h_t;
                let k_t = &mut tape.k[step * bm..(step + 1) * bm];
                per_step(h_t, pk, h, k_t);
                Activation::Sigmoid.apply_inplace(k_t);
                let v_t = &mut tape.v[step * bm..(step + 1) * bm];
                per_step(h_t, pv, h, v_t);
                self.write_inplace(k_t, v_t, h_t, sm);
                if record {
                    tape.ms[(step + 1) * bmh..(step + 2) * bmh].copy_from_slice(sm);
                }
            }
            sh.copy_from_slice(&tape.hs[rows * h..]);
            ss.copy_from_slice(&tape.ss[rows * h..]);
        }
        // The output of every step at once.
        let hall = mat(&tape.hs[bh..], rows, h);
        gemm_set(hall, params.mat(C), &mut tape.y);
        linear::accumulate(xm, params.mat(D), mat_mut(&mut tape.y, rows, o));
        let lim = self.out_clip;
        tape.y.iter_mut().for_each(|v| *v = clip(*v, lim));
        ys.assign(&ArrayView3::from_shape((t, b, o), &tape.y).expect("sized above"));
    }

    /// [`AmnCell::run_window`] compiled with AVX2 and FMA (same results, see
    /// [`AmnCell::step_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_window_avx2(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
        pass: Pass,
    ) {
        self.run_window_impl(params, state, xs, ys, tape, pass);
    }

    /// The backward pass compiled with AVX2 and FMA (same results, see
    /// [`AmnCell::step_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn backward_avx2(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        self.backward_impl(params, tape, dys, dstate, grads, dxs);
    }

    /// The body of [`Cell::backward_window`].
    #[inline(always)]
    fn backward_impl(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let (i, h, mm, o) = (
            self.dims.input,
            self.hidden,
            self.manifold,
            self.dims.output,
        );
        let rows = t * b;
        let (bh, bm, bmh) = (b * h, b * mm, b * mm * h);
        let (one, zero) = (S::one(), S::zero());
        let coef = &tape.coef;
        // Output: y = clip(h C + x D).
        let mut dpy: Vec<S> = dys.iter().copied().collect();
        for (d, &y) in dpy.iter_mut().zip(&tape.y) {
            if !inside(y, self.out_clip) {
                *d = zero;
            }
        }
        let dpy_m = mat(&dpy, rows, o);
        let xm = mat(&tape.x, rows, i);
        let hall = mat(&tape.hs[bh..], rows, h);
        let sall = mat(&tape.ss[bh..], rows, h);
        general_mat_mul(one, &hall.t(), &dpy_m, one, &mut grads.mat_mut(C));
        general_mat_mul(one, &xm.t(), &dpy_m, one, &mut grads.mat_mut(D));
        let mut dh_out = vec![zero; rows * h];
        gemm_set(dpy_m, params.mat(C).t(), &mut dh_out);

        let mut dzk_all = vec![zero; rows * mm];
        let mut dv_all = vec![zero; rows * mm];
        let mut dzq_all = vec![zero; rows * mm];
        let mut dps_all = vec![zero; rows * h];
        let mut du_all = vec![zero; rows * h];
        let mut dh = vec![zero; bh];
        let mut ds = vec![zero; bh];
        let mut dw = vec![zero; bm];
        let mut ga = vec![zero; h];
        let mut gbf = vec![zero; h];
        let mut glam = vec![zero; h];
        let (pk, pv, pq) = (params.mat(K), params.mat(V), params.mat(Q));
        let (kt, vt, qt) = (transposed(pk), transposed(pv), transposed(pq));
        let (mix, keep_r) = (self.mix, one - self.mix);
        let (ws, decay, dt) = (self.write_scale, self.decay, self.dt);

        let [d_h, d_s, d_m] = split_blocks(dstate.data_mut(), bh);
        for step in (0..t).rev() {
            let (cur, nxt) = (step * bh, (step + 1) * bh);
            let mrow = step * bm..(step + 1) * bm;
            let h_t = &tape.hs[nxt..nxt + bh];
            let h_prev = &tape.hs[cur..nxt];
            let s_t = &tape.ss[nxt..nxt + bh];
            let s_prev = &tape.ss[cur..nxt];
            let m_t = &tape.ms[(step + 1) * bmh..(step + 2) * bmh];
            let m_prev = &tape.ms[step * bmh..(step + 1) * bmh];
            let (k_t, v_t, q_t) = (
                &tape.k[mrow.clone()],
                &tape.v[mrow.clone()],
                &tape.q[mrow.clone()],
            );
            // dh = ∂L/∂h_t from later steps and from this step's output.
            for ((d, &a), &c) in dh.iter_mut().zip(&*d_h).zip(&dh_out[cur..nxt]) {
                *d = a + c;
            }
            // The write M_t = clip(decay M_{t−1} + ws (k ⊙ v) h_tᵀ): mask the incoming
            // gradient, then dw = ws·gM·h and dh += ws·gMᵀ(k ⊙ v).
            for bb in 0..b {
                let hr = &h_t[bb * h..(bb + 1) * h];
                let dhr = &mut dh[bb * h..(bb + 1) * h];
                for j in 0..mm {
                    let w = ws * k_t[bb * mm + j] * v_t[bb * mm + j];
                    let off = (bb * mm + j) * h;
                    let g = &mut d_m[off..off + h];
                    let mt = &m_t[off..off + h];
                    for (gv, &mv) in g.iter_mut().zip(mt) {
                        if !inside(mv, self.m_clip) {
                            *gv = zero;
                        }
                    }
                    for (d, &gv) in dhr.iter_mut().zip(&*g) {
                        *d += w * gv;
                    }
                    dw[bb * mm + j] = ws * dot(g, hr);
                }
            }
            // k = σ(h K), v = h V, w = k ⊙ v.
            let dzk = &mut dzk_all[mrow.clone()];
            let dv = &mut dv_all[mrow.clone()];
            for n in 0..bm {
                let (kv, vv) = (k_t[n], v_t[n]);
                dzk[n] = dw[n] * vv * kv * (one - kv);
                dv[n] = dw[n] * kv;
            }
            acc_t(dzk, pk, &kt, &mut dh);
            acc_t(dv, pv, &vt, &mut dh);
            // h = mix s + (1 − mix) r; dh becomes dr.
            for ((sv, &a), dv) in ds.iter_mut().zip(&*d_s).zip(dh.iter_mut()) {
                *sv = a + mix * *dv;
                *dv *= keep_r;
            }
            // r = q M_{t−1}: dq = dr M_{t−1}ᵀ; dM_{t−1} = decay gM + q drᵀ.
            let dzq = &mut dzq_all[mrow.clone()];
            for bb in 0..b {
                let drr = &dh[bb * h..(bb + 1) * h];
                for j in 0..mm {
                    let off = (bb * mm + j) * h;
                    let g = &mut d_m[off..off + h];
                    let mp = &m_prev[off..off + h];
                    let qv = q_t[bb * mm + j];
                    for (gv, &d) in g.iter_mut().zip(drr) {
                        *gv = decay * *gv + qv * d;
                    }
                    dzq[bb * mm + j] = dot(mp, drr) * (one - qv * qv);
                }
            }
            acc_t(dzq, pq, &qt, &mut ds);
            // s = clip(Λ s_{t−1} + c + x E), c = clip([reference: h_{t−1}] + dt(−τ h_{t−1} + Bf f)).
            let dps = &mut dps_all[cur..nxt];
            let du = &mut du_all[cur..nxt];
            let cs = &tape.c[cur..nxt];
            let fs = &tape.f[cur..nxt];
            for bb in 0..b {
                for n in 0..h {
                    let idx = bb * h + n;
                    let g = if inside(s_t[idx], self.lru_clip) {
                        ds[idx]
                    } else {
                        zero
                    };
                    dps[idx] = g;
                    glam[n] += g * s_prev[idx];
                    d_s[idx] = coef.lam[n] * g;
                    let gc = if inside(cs[idx], self.lc_clip) {
                        g
                    } else {
                        zero
                    };
                    let (fv, hv) = (fs[idx], h_prev[idx]);
                    let (a, bf) = (coef.a[n], coef.bf[n]);
                    let tau = a + bf * fv.abs();
                    let keep = if self.design { zero } else { one };
                    d_h[idx] = gc * (keep - dt * tau);
                    let dtau = -dt * hv * gc;
                    ga[n] += dtau;
                    gbf[n] += dt * fv * gc + dtau * fv.abs();
                    let df = dt * bf * gc + dtau * bf * sign(fv);
                    du[idx] = df * (one - fv * fv);
                }
            }
        }
        // Per-neuron coefficients, through the design parametrisation.
        for (idx, g, chain) in [
            (A, &ga, &coef.da),
            (BF, &gbf, &coef.dbf),
            (LAM, &glam, &coef.dlam),
        ] {
            for ((d, &gv), &cv) in grads.slice_mut(idx).iter_mut().zip(g).zip(chain) {
                *d += if self.design { gv * cv } else { gv };
            }
        }
        let (dzk_m, dv_m, dzq_m) = (
            mat(&dzk_all, rows, mm),
            mat(&dv_all, rows, mm),
            mat(&dzq_all, rows, mm),
        );
        let (dps_m, du_m) = (mat(&dps_all, rows, h), mat(&du_all, rows, h));
        general_mat_mul(one, &hall.t(), &dzk_m, one, &mut grads.mat_mut(K));
        general_mat_mul(one, &hall.t(), &dv_m, one, &mut grads.mat_mut(V));
        general_mat_mul(one, &sall.t(), &dzq_m, one, &mut grads.mat_mut(Q));
        general_mat_mul(one, &xm.t(), &du_m, one, &mut grads.mat_mut(B));
        if self.design {
            general_mat_mul(one, &xm.t(), &dps_m, one, &mut grads.mat_mut(E));
        }
        if let Some(dx) = dxs {
            let mut terms = vec![(dpy_m, params.mat(D)), (du_m, params.mat(B))];
            if self.design {
                terms.push((dps_m, params.mat(E)));
            }
            linear::backward_inputs(&terms, dx);
        }
    }
}

impl<S: Scalar> Cell<S> for AmnCell<S> {
    type Tape = Tape<S>;
    type Scratch = Scratch<S>;

    fn dims(&self) -> Dims {
        self.dims
    }

    fn param_layout(&self) -> Layout {
        let (i, h, m, o) = (
            self.dims.input,
            self.hidden,
            self.manifold,
            self.dims.output,
        );
        let (a, bf, lam) = if self.design {
            ("a_raw", "bf_raw", "lambda_raw")
        } else {
            ("a", "bf", "lambda")
        };
        let l = Layout::new()
            .with(a, &[h])
            .with(bf, &[h])
            .with(lam, &[h])
            .with("b", &[i, h])
            .with("c", &[h, o])
            .with("d", &[i, o])
            .with("k", &[h, m])
            .with("v", &[h, m])
            .with("q", &[h, m]);
        if self.design { l.with("e", &[i, h]) } else { l }
    }

    fn state_layout(&self) -> Layout {
        Layout::new()
            .with("h", &[self.hidden])
            .with("s", &[self.hidden])
            .with("m", &[self.manifold, self.hidden])
    }

    fn init_params(&self, rng: &mut Rng, params: &mut Tensors<S>) {
        // As the reference (`create_amn`): A ∈ U[0.5, 1] and Bf ∈ U[0.1, 0.4] drawn per
        // neuron, Λ ∈ U[0.95, 0.99]; Gaussian matrices with the reference's scales. Design
        // mode stores the preimages under its parametrisations, and its LRU input term E
        // starts small (0.1 of B's scale).
        let (i, h, o) = (self.dims.input, self.hidden, self.dims.output);
        for j in 0..h {
            let a = rng.uniform_in(0.5, 1.0);
            let bf = rng.uniform_in(0.1, 0.4);
            let (a, bf) = if self.design {
                (softplus_inv(a), softplus_inv(bf))
            } else {
                (a, bf)
            };
            params.slice_mut(A)[j] = S::from_f64(a);
            params.slice_mut(BF)[j] = S::from_f64(bf);
        }
        for j in 0..h {
            let l = rng.uniform_in(0.95, 0.99);
            let l = if self.design { (l / (1.0 - l)).ln() } else { l };
            params.slice_mut(LAM)[j] = S::from_f64(l);
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
        if self.design {
            fill(E, 0.1 * std_in);
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
        #[cfg(target_arch = "x86_64")]
        if wide() {
            // SAFETY: the CPU has the features `step_avx2` is compiled with.
            unsafe { self.step_avx2(params, state, x, y, scratch) };
            return;
        }
        self.step_impl(params, state, x, y, scratch);
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
            Some(tape) => self.run_window(params, state, xs, ys, tape, Pass::Train),
            None => self.run_window(params, state, xs, ys, &mut Tape::default(), Pass::Batch),
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
        #[cfg(target_arch = "x86_64")]
        if wide() {
            // SAFETY: the CPU has the features `backward_avx2` is compiled with.
            unsafe { self.backward_avx2(params, tape, dys, dstate, grads, dxs) };
            return;
        }
        self.backward_impl(params, tape, dys, dstate, grads, dxs);
    }

    fn forward_chunked(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        chunk: usize,
        scratch: &mut Scratch<S>,
    ) {
        let t = xs.dim().0;
        let chunk = chunk.max(1);
        let mut start = 0;
        while start < t {
            let end = (start + chunk).min(t);
            self.run_window(
                params,
                state,
                xs.slice(ndarray::s![start..end, .., ..]),
                ys.slice_mut(ndarray::s![start..end, .., ..]),
                &mut scratch.window,
                Pass::Stream,
            );
            start = end;
        }
    }

    fn diagnostics(&self, params: &Tensors<S>, state: &Tensors<S>) -> Vec<Diagnostic> {
        let (h, mm) = (self.hidden, self.manifold);
        let mut coef = Coef::default();
        coef.refresh(self, params);
        let timescale = coef.a.iter().map(|a| 1.0 / a.as_f64()).sum::<f64>() / h as f64;
        vec![
            Diagnostic {
                name: "manifold_energy",
                value: mean_abs(&state.slice(ST_M)[..mm * h]),
            },
            Diagnostic {
                name: "mean_lc_timescale",
                value: timescale,
            },
            Diagnostic {
                name: "mean_abs_lru",
                value: mean_abs(&state.slice(ST_S)[..h]),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    fn setup<S: Scalar>(compat: Compat, b: usize) -> (AmnCell<S>, Tensors<S>, Tensors<S>) {
        let params = AmnParams {
            hidden: 13,
            manifold: 5,
            compat,
            ..Default::default()
        };
        let cell = AmnCell::<S>::new(
            &params,
            Dims {
                input: 3,
                output: 2,
            },
        );
        let mut p = Tensors::zeros(cell.param_layout());
        cell.init_params(&mut Rng::new(1), &mut p);
        let mut st = Tensors::zeros(cell.state_layout().batched(b));
        let mut rng = Rng::new(2);
        st.data_mut()
            .iter_mut()
            .for_each(|v| *v = S::from_f64(rng.normal()));
        (cell, p, st)
    }

    /// The AVX2 builds compute bit for bit what the portable bodies compute (they are the
    /// same loops; nothing is reassociated or fused).
    #[test]
    fn wide_builds_equal_the_portable_bodies() {
        for compat in [Compat::Design, Compat::Reference] {
            let b = 3;
            let (cell, p, st) = setup::<f32>(compat, b);
            let mut rng = Rng::new(3);
            let xs = Array3::from_shape_simple_fn((7, b, 3), || rng.normal() as f32);
            // step
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
            // window and backward
            let (mut s1, mut s2) = (st.clone(), st.clone());
            let (mut ys1, mut ys2) = (Array3::zeros((7, b, 2)), Array3::zeros((7, b, 2)));
            let (mut t1, mut t2) = (Tape::default(), Tape::default());
            cell.run_window(&p, &mut s1, xs.view(), ys1.view_mut(), &mut t1, Pass::Train);
            cell.run_window_impl(&p, &mut s2, xs.view(), ys2.view_mut(), &mut t2, Pass::Train);
            assert_eq!(ys1, ys2);
            assert_eq!(s1, s2);
            let dys = Array3::from_shape_simple_fn((7, b, 2), || rng.normal() as f32);
            let (mut d1, mut d2) = (st.clone(), st.clone());
            let (mut g1, mut g2) = (Tensors::zeros_like(&p), Tensors::zeros_like(&p));
            let (mut dx1, mut dx2) = (Array3::zeros((7, b, 3)), Array3::zeros((7, b, 3)));
            cell.backward_window(&p, &t1, dys.view(), &mut d1, &mut g1, Some(dx1.view_mut()));
            cell.backward_impl(&p, &t2, dys.view(), &mut d2, &mut g2, Some(dx2.view_mut()));
            assert_eq!(g1, g2);
            assert_eq!(d1, d2);
            assert_eq!(dx1, dx2);
            assert!(g1.data().iter().any(|&v| v != 0.0));
            for pass in [Pass::Batch, Pass::Stream] {
                let (mut s1, mut s2) = (st.clone(), st.clone());
                cell.run_window(&p, &mut s1, xs.view(), ys1.view_mut(), &mut t1, pass);
                cell.run_window_impl(&p, &mut s2, xs.view(), ys2.view_mut(), &mut t2, pass);
                assert_eq!(ys1, ys2);
                assert_eq!(s1, s2);
            }
        }
    }

    /// The coefficients follow parameter changes made in place (the step caches them).
    #[test]
    fn cached_coefficients_follow_the_parameters() {
        let (cell, mut p, st) = setup::<f64>(Compat::Design, 1);
        let x = Array2::from_elem((1, 3), 0.5);
        let mut sc = Scratch::default();
        let mut y = Array2::zeros((1, 2));
        cell.step(&p, &mut st.clone(), x.view(), y.view_mut(), &mut sc);
        p.slice_mut(A)[0] += 1.0;
        p.slice_mut(LAM)[4] -= 2.0;
        let mut fresh = Scratch::default();
        let (mut a, mut b) = (st.clone(), st.clone());
        let mut y2 = Array2::zeros((1, 2));
        cell.step(&p, &mut a, x.view(), y.view_mut(), &mut sc);
        cell.step(&p, &mut b, x.view(), y2.view_mut(), &mut fresh);
        assert_eq!(y, y2);
        assert_eq!(a, b);
    }
}
