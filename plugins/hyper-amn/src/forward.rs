//! The forward pass: one step for a batch of rows ([`HyperAmnCell::step_rows`]), shared by
//! the per-token step, the chunked form and the recorded training window, so that all three
//! compute the same values bit for bit.

use crate::cell::Coef;
use crate::cell::{B, C, D, G, HyperAmnCell, K, Q, Scratch, Tape, V, X};
use mnnn_core::Scalar;
use mnnn_core::Tensors;
use mnnn_core::buf::zeroed;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

/// One step's (or, in a tape, every step's) intermediate values; per step the blocks are
/// `B × H` (`u`), `B × heads × H` (`p`, `f`, `l`, `r`, `z`), `B × heads × 2M` (`kq`: the
/// key then the query of each head) and `B × heads` (`a`, the gate).
#[derive(Default, Debug)]
pub struct Record<S> {
    pub(crate) u: Vec<S>,
    pub(crate) p: Vec<S>,
    pub(crate) f: Vec<S>,
    pub(crate) l: Vec<S>,
    pub(crate) kq: Vec<S>,
    pub(crate) r: Vec<S>,
    pub(crate) z: Vec<S>,
    pub(crate) a: Vec<S>,
}

/// Mutable views of one step's blocks of a [`Record`].
pub(crate) struct Rows<'a, S> {
    u: &'a mut [S],
    p: &'a mut [S],
    f: &'a mut [S],
    l: &'a mut [S],
    kq: &'a mut [S],
    r: &'a mut [S],
    z: &'a mut [S],
    a: &'a mut [S],
}

impl<S: Scalar> Record<S> {
    /// Sizes every block for `steps` steps of `b` rows (zeroed).
    fn size(&mut self, cell: &HyperAmnCell<S>, steps: usize, b: usize) {
        let (h, mm, nh) = (cell.hidden, cell.manifold, cell.heads);
        let n = steps * b;
        zeroed(&mut self.u, n * h);
        for v in [
            &mut self.p,
            &mut self.f,
            &mut self.l,
            &mut self.r,
            &mut self.z,
        ] {
            zeroed(v, n * nh * h);
        }
        zeroed(&mut self.kq, n * nh * 2 * mm);
        zeroed(&mut self.a, n * nh);
    }

    /// Step `t`'s blocks, for `b` rows.
    fn rows(&mut self, cell: &HyperAmnCell<S>, t: usize, b: usize) -> Rows<'_, S> {
        let (h, mm, nh) = (cell.hidden, cell.manifold, cell.heads);
        let blk = |n: usize| t * b * n..(t + 1) * b * n;
        Rows {
            u: &mut self.u[blk(h)],
            p: &mut self.p[blk(nh * h)],
            f: &mut self.f[blk(nh * h)],
            l: &mut self.l[blk(nh * h)],
            kq: &mut self.kq[blk(nh * 2 * mm)],
            r: &mut self.r[blk(nh * h)],
            z: &mut self.z[blk(nh * h)],
            a: &mut self.a[blk(nh)],
        }
    }
}

/// `v` clipped to `[−lim, lim]` by comparisons (which vectorise); a NaN passes through.
#[inline(always)]
pub(crate) fn clip<S: Scalar>(v: S, lim: S) -> S {
    let v = if v < -lim { -lim } else { v };
    if v > lim { lim } else { v }
}

/// `Σ aᵢ bᵢ` in eight independent partial sums (so it vectorises), folded pairwise: the
/// same order on every build.
#[inline(always)]
pub(crate) fn dot<S: Scalar>(a: &[S], b: &[S]) -> S {
    let mut lanes = [S::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            lanes[k] += x[k] * y[k];
        }
    }
    for (k, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        lanes[k] += x * y;
    }
    let [l0, l1, l2, l3, l4, l5, l6, l7] = lanes;
    ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))
}

/// `x ← σ(x) = ½ + ½·tanh(x/2)`, through the vectorised tanh kernel.
#[inline(always)]
pub(crate) fn sigmoid_inplace<S: Scalar>(x: &mut [S]) {
    let half = S::from_f64(0.5);
    x.iter_mut().for_each(|v| *v *= half);
    S::tanh_inplace(x);
    x.iter_mut().for_each(|v| *v = half + half * *v);
}

impl<S: Scalar> HyperAmnCell<S> {
    /// One step for `b` rows. Reads `x` (`b × I`), the head states `s` (`b × heads × H`,
    /// overwritten with the new ones), the manifolds `m` (`b × heads × M × H`, updated in
    /// place) and the previous merged state `mg_prev` (`b × H`, read by the reference's gate
    /// only); writes the merged state `mg` (`b × H`), the output `y` (`b × O`) and the
    /// intermediate values into `rec`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn step_rows(
        &self,
        co: &Coef<S>,
        params: &Tensors<S>,
        x: &[S],
        s: &mut [S],
        m: &mut [S],
        mg_prev: &[S],
        mg: &mut [S],
        rec: Rows<'_, S>,
        y: &mut [S],
    ) {
        let (h, mm, nh) = (self.hidden, self.manifold, self.heads);
        let b = mg.len() / h;
        let (one, dt) = (S::one(), self.dt);
        let Rows {
            u,
            p,
            f,
            l,
            kq,
            r,
            z,
            a,
        } = rec;
        // u = x B, shared by every head (computed once, not per head).
        u.fill(S::zero());
        S::gemm_rows_acc(u, x, params.slice(B), b);
        // p = Λ ⊙ s + u, f = tanh(p).
        for (n, (pr, sr)) in p.chunks_exact_mut(h).zip(s.chunks_exact(h)).enumerate() {
            let ur = &u[(n / nh) * h..(n / nh + 1) * h];
            for ((pv, &lam), (&sv, &uv)) in pr.iter_mut().zip(&co.lam).zip(sr.iter().zip(ur)) {
                *pv = lam * sv + uv;
            }
        }
        f.copy_from_slice(p);
        S::tanh_inplace(f);
        // The liquid step l = p + dt·(Bf ⊙ f − τ ⊙ p), τ = A + Bf ⊙ |f|.
        for (n, ((lr, pr), fr)) in l
            .chunks_exact_mut(h)
            .zip(p.chunks_exact(h))
            .zip(f.chunks_exact(h))
            .enumerate()
        {
            let k = n % nh;
            let (ak, bk) = (&co.a[k * h..(k + 1) * h], &co.bf[k * h..(k + 1) * h]);
            for (((lv, &pv), &fv), (&av, &bv)) in
                lr.iter_mut().zip(pr).zip(fr).zip(ak.iter().zip(bk))
            {
                let tau = av + bv * fv.abs();
                *lv = pv + dt * (bv * fv - tau * pv);
            }
        }
        // Key and query of every head from its liquid state.
        kq.fill(S::zero());
        let (pk, pq, pv) = (params.slice(K), params.slice(Q), params.slice(V));
        let hm = h * mm;
        for (n, (lr, kqr)) in l
            .chunks_exact(h)
            .zip(kq.chunks_exact_mut(2 * mm))
            .enumerate()
        {
            let k = n % nh;
            let (kr, qr) = kqr.split_at_mut(mm);
            S::gemv_acc(kr, lr, &pk[k * hm..(k + 1) * hm]);
            S::gemv_acc(qr, lr, &pq[k * hm..(k + 1) * hm]);
        }
        sigmoid_inplace(kq);
        // Write M ← decay·M + ws·(key ⊙ (l ⊙ V_row)), then read q M from the written rows,
        // in one pass over the manifold.
        for (n, ((mb, lr), rr)) in m
            .chunks_exact_mut(hm)
            .zip(l.chunks_exact(h))
            .zip(r.chunks_exact_mut(h))
            .enumerate()
        {
            let k = n % nh;
            let (dec, ws) = (co.dec[k], co.ws[k]);
            let (key, qry) = kq[n * 2 * mm..(n + 1) * 2 * mm].split_at(mm);
            let vk = &pv[k * hm..(k + 1) * hm];
            rr.fill(S::zero());
            for (mi, (row, vr)) in mb.chunks_exact_mut(h).zip(vk.chunks_exact(h)).enumerate() {
                let (w, q) = (ws * key[mi], qry[mi]);
                // Iterators rather than indices, so that no bounds check stops vectorisation.
                for ((d, &lv), (&vv, rv)) in
                    row.iter_mut().zip(lr).zip(vr.iter().zip(rr.iter_mut()))
                {
                    let nv = dec * *d + w * (lv * vv);
                    *d = nv;
                    *rv += q * nv;
                }
            }
        }
        S::tanh_inplace(r);
        // z = mix·l + (1 − mix)·tanh(read).
        let (mix, keep) = (self.mix, one - self.mix);
        for ((zv, &lv), &rv) in z.iter_mut().zip(&*l).zip(&*r) {
            *zv = mix * lv + keep * rv;
        }
        // Cross-head mixing s_k = Σ_j X[k, j] z_j (clipped in design mode), then the gate
        // and the merged state.
        let px = params.slice(X);
        let pg = params.slice(G);
        for bb in 0..b {
            let zb = &z[bb * nh * h..(bb + 1) * nh * h];
            let sb = &mut s[bb * nh * h..(bb + 1) * nh * h];
            for (k, sr) in sb.chunks_exact_mut(h).enumerate() {
                sr.fill(S::zero());
                for (j, zr) in zb.chunks_exact(h).enumerate() {
                    let w = px[k * nh + j];
                    for (sv, &zv) in sr.iter_mut().zip(zr) {
                        *sv += w * zv;
                    }
                }
                if self.design {
                    let lim = self.clip;
                    sr.iter_mut().for_each(|v| *v = clip(*v, lim));
                }
            }
            let ab = &mut a[bb * nh..(bb + 1) * nh];
            let mut max = S::neg_infinity();
            for (k, av) in ab.iter_mut().enumerate() {
                let src = if self.design {
                    &sb[k * h..(k + 1) * h]
                } else {
                    &mg_prev[bb * h..(bb + 1) * h]
                };
                *av = dot(src, &pg[k * h..(k + 1) * h]);
                max = max.max(*av);
            }
            let mut sum = S::zero();
            for av in ab.iter_mut() {
                *av = (*av - max).exp();
                sum += *av;
            }
            ab.iter_mut().for_each(|v| *v /= sum);
            let mgr = &mut mg[bb * h..(bb + 1) * h];
            mgr.fill(S::zero());
            for (k, sr) in sb.chunks_exact(h).enumerate() {
                let w = ab[k];
                for (g, &sv) in mgr.iter_mut().zip(sr) {
                    *g += w * sv;
                }
            }
        }
        // y = mg C + x D.
        y.fill(S::zero());
        S::gemm_rows_acc(y, mg, params.slice(C), b);
        S::gemm_rows_acc(y, x, params.slice(D), b);
    }

    /// The body of [`mnnn_core::Cell::step`].
    #[inline(always)]
    pub(crate) fn step_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        x: ArrayView2<S>,
        mut y: ArrayViewMut2<S>,
        sc: &mut Scratch<S>,
    ) {
        let b = x.nrows();
        let (h, mm, nh) = (self.hidden, self.manifold, self.heads);
        sc.coef.refresh(self, params);
        sc.x.clear();
        match x.as_slice() {
            Some(xs) => sc.x.extend_from_slice(xs),
            None => sc.x.extend(x.iter().copied()),
        }
        if sc.rec.a.len() != b * nh {
            sc.rec.size(self, 1, b);
        }
        zeroed(&mut sc.mg, b * h);
        let data = state.data_mut();
        let (s, rest) = data.split_at_mut(b * nh * h);
        let (m, mg_state) = rest.split_at_mut(b * nh * mm * h);
        if self.design {
            sc.mg_prev.clear();
        } else {
            sc.mg_prev.clear();
            sc.mg_prev.extend_from_slice(mg_state);
        }
        let rows = sc.rec.rows(self, 0, b);
        let o = self.dims.output;
        match y.as_slice_mut() {
            Some(ys) => self.step_rows(
                &sc.coef,
                params,
                &sc.x,
                s,
                m,
                &sc.mg_prev,
                &mut sc.mg,
                rows,
                ys,
            ),
            None => {
                let mut ys = vec![S::zero(); b * o];
                self.step_rows(
                    &sc.coef,
                    params,
                    &sc.x,
                    s,
                    m,
                    &sc.mg_prev,
                    &mut sc.mg,
                    rows,
                    &mut ys,
                );
                y.assign(&ArrayView2::from_shape((b, o), &ys).expect("sized"));
            }
        }
        if !self.design {
            mg_state.copy_from_slice(&sc.mg);
        }
    }

    /// The recorded forward window (the body of [`mnnn_core::Cell::forward_window`] with a
    /// tape): the step of [`HyperAmnCell::step_rows`] on every step, the states before and
    /// after each step kept for the backward pass.
    #[inline(always)]
    pub(crate) fn window_impl(
        &self,
        params: &Tensors<S>,
        state: &mut Tensors<S>,
        xs: ArrayView3<S>,
        mut ys: ArrayViewMut3<S>,
        tape: &mut Tape<S>,
    ) {
        let (t, b, i) = xs.dim();
        let (h, mm, nh, o) = (self.hidden, self.manifold, self.heads, self.dims.output);
        let (bs, bm, bh) = (b * nh * h, b * nh * mm * h, b * h);
        tape.coef.refresh(self, params);
        tape.steps = t;
        tape.batch = b;
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        tape.rec.size(self, t, b);
        zeroed(&mut tape.s, (t + 1) * bs);
        zeroed(&mut tape.m, (t + 1) * bm);
        zeroed(&mut tape.mg, (t + 1) * bh);
        let mut y = vec![S::zero(); t * b * o];
        let data = state.data_mut();
        let (s, rest) = data.split_at_mut(bs);
        let (m, mg_state) = rest.split_at_mut(bm);
        tape.s[..bs].copy_from_slice(s);
        tape.m[..bm].copy_from_slice(m);
        if !self.design {
            tape.mg[..bh].copy_from_slice(mg_state);
        }
        for step in 0..t {
            let (sp, sn) = tape.s.split_at_mut((step + 1) * bs);
            sn[..bs].copy_from_slice(&sp[step * bs..]);
            let (mp, mn) = tape.m.split_at_mut((step + 1) * bm);
            mn[..bm].copy_from_slice(&mp[step * bm..]);
            let (gp, gn) = tape.mg.split_at_mut((step + 1) * bh);
            let rows = tape.rec.rows(self, step, b);
            self.step_rows(
                &tape.coef,
                params,
                &tape.x[step * b * i..(step + 1) * b * i],
                &mut sn[..bs],
                &mut mn[..bm],
                &gp[step * bh..],
                &mut gn[..bh],
                rows,
                &mut y[step * b * o..(step + 1) * b * o],
            );
        }
        s.copy_from_slice(&tape.s[t * bs..]);
        m.copy_from_slice(&tape.m[t * bm..]);
        if !self.design {
            mg_state.copy_from_slice(&tape.mg[t * bh..]);
        }
        ys.assign(&ArrayView3::from_shape((t, b, o), &y).expect("sized above"));
    }
}
