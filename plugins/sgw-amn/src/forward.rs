//! The forward pass: one step for a batch of rows ([`SgwAmnCell::step_rows`]), shared by the
//! per-token step, the chunked form and the recorded training window, so that all three
//! compute the same values bit for bit.

use crate::cell::{COMP, Coef, K, QM, Scratch, SgwAmnCell, Tape, V, WIP, WOUT, WWQ};
use crate::manifold::manifold_rows;
use crate::select::{Pick, select};
use mnnn_core::buf::zeroed;
use mnnn_core::{Scalar, Tensors};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut2, ArrayViewMut3};

pub(crate) const GELU_C: f64 = 0.797_884_560_802_865_4; // √(2/π)
pub(crate) const GELU_A: f64 = 0.044_715;

/// One step's (or, in a tape, every step's) intermediate values. Per step and row: `zp`,
/// `gt`, `pre`, `sc` (P: the pre-activation, the tanh inside the GELU, the GELU, the
/// scores), `win` and `g` (W: the winners and their routing weights), `w0`, `f`, `ws` (W:
/// the workspace before the liquid step, the tanh of its drive, the workspace after it),
/// `p0`, `r`, `p` (Q: the expansion, the tanh of the read, the post state) and `kq` (2M: key
/// then query).
#[derive(Default, Debug)]
pub struct Record<S> {
    pub(crate) zp: Vec<S>,
    pub(crate) gt: Vec<S>,
    pub(crate) pre: Vec<S>,
    pub(crate) sc: Vec<S>,
    pub(crate) win: Vec<u32>,
    pub(crate) g: Vec<S>,
    pub(crate) w0: Vec<S>,
    pub(crate) f: Vec<S>,
    pub(crate) ws: Vec<S>,
    pub(crate) p0: Vec<S>,
    pub(crate) kq: Vec<S>,
    pub(crate) r: Vec<S>,
    pub(crate) p: Vec<S>,
    /// The L1 norms of the competition weights' rows (P), shared by every step.
    pub(crate) nrm: Vec<S>,
    /// The competition weights `nrm` was computed from (empty: none yet).
    seen: Vec<S>,
}

/// Mutable views of one step's blocks of a [`Record`].
pub(crate) struct Rows<'a, S> {
    zp: &'a mut [S],
    gt: &'a mut [S],
    pre: &'a mut [S],
    sc: &'a mut [S],
    win: &'a mut [u32],
    g: &'a mut [S],
    w0: &'a mut [S],
    f: &'a mut [S],
    ws: &'a mut [S],
    p0: &'a mut [S],
    kq: &'a mut [S],
    r: &'a mut [S],
    p: &'a mut [S],
}

impl<S: Scalar> Record<S> {
    /// Sizes every block for `steps` steps of `b` rows.
    pub(crate) fn size(&mut self, cell: &SgwAmnCell<S>, steps: usize, b: usize) {
        let n = steps * b;
        let (p, w, q, m) = (cell.pre, cell.work, cell.post, cell.manifold);
        for v in [&mut self.zp, &mut self.gt, &mut self.pre, &mut self.sc] {
            zeroed(v, n * p);
        }
        self.win.clear();
        self.win.resize(n * w, 0);
        for v in [&mut self.g, &mut self.w0, &mut self.f, &mut self.ws] {
            zeroed(v, n * w);
        }
        for v in [&mut self.p0, &mut self.r, &mut self.p] {
            zeroed(v, n * q);
        }
        zeroed(&mut self.kq, n * 2 * m);
        zeroed(&mut self.nrm, p);
        self.seen.clear();
    }

    /// The L1 norms of the rows of the competition weights, recomputed only when those
    /// changed: the per-token step would otherwise spend a serial sum per row on every token.
    /// A NaN weight never compares equal, so it is never taken for unchanged. Inlined, so
    /// that the comparison is built for the caller's (wide) instruction set.
    #[inline(always)]
    pub(crate) fn norms(&mut self, cell: &SgwAmnCell<S>, params: &Tensors<S>) {
        let (w, comp) = (cell.work, cell.par(params, COMP));
        let same = self.seen.len() == comp.len()
            && self
                .seen
                .iter()
                .zip(comp)
                .fold(true, |same, (a, b)| same & (a == b));
        if same {
            return;
        }
        for (n, row) in self.nrm.iter_mut().zip(comp.chunks_exact(w)) {
            *n = row.iter().fold(S::zero(), |a, v| a + v.abs());
        }
        self.seen.clear();
        self.seen.extend_from_slice(comp);
    }

    /// Step `t`'s blocks for `b` rows, and the row norms.
    #[inline(always)]
    pub(crate) fn rows(&mut self, cell: &SgwAmnCell<S>, t: usize, b: usize) -> (Rows<'_, S>, &[S]) {
        let (p, w, q, m) = (cell.pre, cell.work, cell.post, cell.manifold);
        let blk = |n: usize| t * b * n..(t + 1) * b * n;
        (
            Rows {
                zp: &mut self.zp[blk(p)],
                gt: &mut self.gt[blk(p)],
                pre: &mut self.pre[blk(p)],
                sc: &mut self.sc[blk(p)],
                win: &mut self.win[blk(w)],
                g: &mut self.g[blk(w)],
                w0: &mut self.w0[blk(w)],
                f: &mut self.f[blk(w)],
                ws: &mut self.ws[blk(w)],
                p0: &mut self.p0[blk(q)],
                kq: &mut self.kq[blk(2 * m)],
                r: &mut self.r[blk(q)],
                p: &mut self.p[blk(q)],
            },
            &self.nrm,
        )
    }
}

/// `v` clipped to `[−lim, lim]` by comparisons; a NaN passes through.
#[inline(always)]
pub(crate) fn clip<S: Scalar>(v: S, lim: S) -> S {
    let v = if v < -lim { -lim } else { v };
    if v > lim { lim } else { v }
}

/// `x ← σ(x) = ½ + ½·tanh(x/2)`, through the vectorised tanh kernel.
#[inline(always)]
fn sigmoid_inplace<S: Scalar>(x: &mut [S]) {
    let half = S::from_f64(0.5);
    x.iter_mut().for_each(|v| *v *= half);
    S::tanh_inplace(x);
    x.iter_mut().for_each(|v| *v = half + half * *v);
}

impl<S: Scalar> SgwAmnCell<S> {
    /// One step for `b` rows. Reads `x` (`b × I`); updates the workspace state `ws`
    /// (`b × W`; read only in design mode), the workspace memory `wm` (`b × W × W`), the
    /// manifold `m` (`b × M × Q`) and the last scores `scores` (`b × P`); writes `y`
    /// (`b × O`) and the intermediate values into `rec`. `pick` is the selection's work space.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn step_rows(
        &self,
        co: &Coef<S>,
        params: &Tensors<S>,
        nrm: &[S],
        x: &[S],
        state: (&mut [S], &mut [S], &mut [S], &mut [S]),
        rec: Rows<'_, S>,
        pick: &mut Pick<S>,
        y: &mut [S],
    ) {
        let (np, nw, nq, mm) = (self.pre, self.work, self.post, self.manifold);
        let b = rec.ws.len() / nw;
        let (ws_st, wm, m, scores) = state;
        let (one, half) = (S::one(), S::from_f64(0.5));
        let Rows {
            zp,
            gt,
            pre,
            sc,
            win,
            g,
            w0,
            f,
            ws,
            p0,
            kq,
            r,
            p,
        } = rec;
        // pre = gelu(x W_ip), tanh approximation: 0.5·u·(1 + tanh(c·(u + a·u³))).
        zp.fill(S::zero());
        S::gemm_rows_acc(zp, x, self.par(params, WIP), b);
        let (gc, ga) = (S::from_f64(GELU_C), S::from_f64(GELU_A));
        for (t, &u) in gt.iter_mut().zip(&*zp) {
            *t = gc * (u + ga * u * u * u);
        }
        S::tanh_inplace(gt);
        for ((pv, &u), &t) in pre.iter_mut().zip(&*zp).zip(&*gt) {
            *pv = half * u * (one + t);
        }
        // Scores |pre_i|·‖Cw_i‖₁, the winners, their weights and the routed workspace input.
        for (scr, prr) in sc.chunks_exact_mut(np).zip(pre.chunks_exact(np)) {
            for ((sv, &pv), &n) in scr.iter_mut().zip(prr).zip(&nrm[..np]) {
                *sv = pv.abs() * n;
            }
        }
        scores.copy_from_slice(sc);
        let comp = self.par(params, COMP);
        let scale = S::from_f64(nw as f64);
        for bb in 0..b {
            let rows = bb * nw..(bb + 1) * nw;
            let scb = &sc[bb * np..(bb + 1) * np];
            let prb = &pre[bb * np..(bb + 1) * np];
            let wb = &mut win[rows.clone()];
            select(scb, pick, wb);
            let gb = &mut g[rows.clone()];
            if self.design {
                // Softmax over the winners of score/temperature, times W: uniform scores
                // route exactly the reference's hard sum.
                let max = wb
                    .iter()
                    .fold(S::neg_infinity(), |a, &i| a.max(scb[i as usize]));
                let mut sum = S::zero();
                for (gv, &i) in gb.iter_mut().zip(&*wb) {
                    *gv = ((scb[i as usize] - max) / self.temp).exp();
                    sum += *gv;
                }
                gb.iter_mut().for_each(|v| *v = scale * *v / sum);
            } else {
                gb.fill(one);
            }
            let w0b = &mut w0[rows.clone()];
            let wsp = &ws_st[rows.clone()];
            if self.design {
                w0b.copy_from_slice(wsp);
            } else {
                w0b.fill(S::zero());
            }
            for (&gv, &i) in gb.iter().zip(&*wb) {
                let c = gv * prb[i as usize];
                let crow = &comp[i as usize * nw..(i as usize + 1) * nw];
                for (d, &cw) in w0b.iter_mut().zip(crow) {
                    *d += c * cw;
                }
            }
            // The drive w0 + Wm w0 (memory read before the Hebbian write).
            let fb = &mut f[rows.clone()];
            let wmb = &wm[bb * nw * nw..(bb + 1) * nw * nw];
            for (k, fv) in fb.iter_mut().enumerate() {
                let row = &wmb[k * nw..(k + 1) * nw];
                let mr = row
                    .iter()
                    .zip(&*w0b)
                    .fold(S::zero(), |a, (&m, &w)| a + m * w);
                *fv = w0b[k] + mr;
            }
        }
        S::tanh_inplace(f);
        // The liquid step of the workspace, its Hebbian memory.
        let (dt, hd) = (self.dt, self.hd);
        let keep = one - hd;
        for bb in 0..b {
            let rows = bb * nw..(bb + 1) * nw;
            let (w0b, fb) = (&w0[rows.clone()], &f[rows.clone()]);
            let wsb = &mut ws[rows.clone()];
            for k in 0..nw {
                let tau = co.a[k] + co.bf[k] * fb[k].abs();
                let v = w0b[k] + dt * (co.bf[k] * fb[k] - tau * w0b[k]);
                wsb[k] = if self.design { clip(v, self.clip) } else { v };
            }
            ws_st[rows].copy_from_slice(wsb);
            let wmb = &mut wm[bb * nw * nw..(bb + 1) * nw * nw];
            for (k, row) in wmb.chunks_exact_mut(nw).enumerate() {
                let c = keep * wsb[k];
                for (d, &wv) in row.iter_mut().zip(&*wsb) {
                    *d = hd * *d + c * wv;
                }
            }
        }
        // Expansion, manifold write then read, post state, output.
        p0.fill(S::zero());
        S::gemm_rows_acc(p0, ws, self.par(params, WWQ), b);
        S::tanh_inplace(p0);
        kq.fill(S::zero());
        let (pk, pq, pv) = (
            self.par(params, K),
            self.par(params, QM),
            self.par(params, V),
        );
        for (pr, kqr) in p0.chunks_exact(nq).zip(kq.chunks_exact_mut(2 * mm)) {
            let (kr, qr) = kqr.split_at_mut(mm);
            S::gemv_acc(kr, pr, pk);
            S::gemv_acc(qr, pr, pq);
        }
        sigmoid_inplace(kq);
        let (dec, wsc) = (self.dec, self.ws);
        for (n, ((mb, pr), rr)) in m
            .chunks_exact_mut(mm * nq)
            .zip(p0.chunks_exact(nq))
            .zip(r.chunks_exact_mut(nq))
            .enumerate()
        {
            let (key, qry) = kq[n * 2 * mm..(n + 1) * 2 * mm].split_at(mm);
            manifold_rows(mb, pr, pv, (key, qry), (dec, wsc), rr);
        }
        S::tanh_inplace(r);
        let (mix, keep) = (self.mix, one - self.mix);
        for ((pv, &a), &c) in p.iter_mut().zip(&*p0).zip(&*r) {
            *pv = mix * a + keep * c;
        }
        y.fill(S::zero());
        S::gemm_rows_acc(y, p, self.par(params, WOUT), b);
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
        let o = self.dims.output;
        sc.coef.refresh(self, params);
        // The caller's buffers when contiguous (the usual case); copies otherwise.
        let xs = match x.as_slice() {
            Some(xs) => xs,
            None => {
                sc.x.clear();
                sc.x.extend(x.iter().copied());
                &sc.x
            }
        };
        if sc.rec.ws.len() != b * self.work {
            sc.rec.size(self, 1, b);
        }
        sc.pick.size(self.pre, self.work);
        sc.rec.norms(self, params);
        let direct = y.is_standard_layout();
        if !direct {
            zeroed(&mut sc.y, b * o);
        }
        let ys = match y.as_slice_mut() {
            Some(ys) => ys,
            None => &mut sc.y,
        };
        let st = split_state(self, state.data_mut(), b);
        let (rows, nrm) = sc.rec.rows(self, 0, b);
        self.step_rows(&sc.coef, params, nrm, xs, st, rows, &mut sc.pick, ys);
        if !direct {
            y.assign(&ArrayView2::from_shape((b, o), &sc.y).expect("sized"));
        }
    }

    /// The recorded forward window: [`SgwAmnCell::step_rows`] on every step, with the
    /// workspace memory and manifold before and after each step kept for the backward pass.
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
        let (nw, nq, mm, o) = (self.work, self.post, self.manifold, self.dims.output);
        let (bww, bm) = (b * nw * nw, b * mm * nq);
        tape.coef.refresh(self, params);
        tape.steps = t;
        tape.batch = b;
        tape.aux.clear();
        tape.x.clear();
        tape.x.extend(xs.iter().copied());
        tape.rec.size(self, t, b);
        tape.rec.norms(self, params);
        zeroed(&mut tape.wm, (t + 1) * bww);
        zeroed(&mut tape.m, (t + 1) * bm);
        let mut pick = Pick::new(self.pre, self.work);
        let mut y = vec![S::zero(); t * b * o];
        let (ws_st, wm_st, m_st, sc_st) = split_state(self, state.data_mut(), b);
        tape.wm[..bww].copy_from_slice(wm_st);
        tape.m[..bm].copy_from_slice(m_st);
        for step in 0..t {
            let (wp, wn) = tape.wm.split_at_mut((step + 1) * bww);
            wn[..bww].copy_from_slice(&wp[step * bww..]);
            let (mp, mn) = tape.m.split_at_mut((step + 1) * bm);
            mn[..bm].copy_from_slice(&mp[step * bm..]);
            let (rows, nrm) = tape.rec.rows(self, step, b);
            self.step_rows(
                &tape.coef,
                params,
                nrm,
                &tape.x[step * b * i..(step + 1) * b * i],
                (&mut *ws_st, &mut wn[..bww], &mut mn[..bm], &mut *sc_st),
                rows,
                &mut pick,
                &mut y[step * b * o..(step + 1) * b * o],
            );
        }
        wm_st.copy_from_slice(&tape.wm[t * bww..]);
        m_st.copy_from_slice(&tape.m[t * bm..]);
        ys.assign(&ArrayView3::from_shape((t, b, o), &y).expect("sized above"));
    }
}

/// The batched state's blocks: `ws` (`b × W`), `wm` (`b × W × W`), `m` (`b × M × Q`),
/// `scores` (`b × P`).
pub(crate) fn split_state<'a, S: Scalar>(
    cell: &SgwAmnCell<S>,
    data: &'a mut [S],
    b: usize,
) -> (&'a mut [S], &'a mut [S], &'a mut [S], &'a mut [S]) {
    let (ws, rest) = data.split_at_mut(b * cell.work);
    let (wm, rest) = rest.split_at_mut(b * cell.work * cell.work);
    let (m, sc) = rest.split_at_mut(b * cell.manifold * cell.post);
    (ws, wm, m, sc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached row norms follow a change of the competition weights between steps: a
    /// scratch that has seen the old weights steps as a fresh one does.
    #[test]
    fn the_norm_cache_follows_the_weights() {
        use crate::SgwAmnParams;
        use mnnn_core::Rng;
        use mnnn_core::cell::{Cell, Dims};
        use ndarray::Array2;
        let cell = SgwAmnCell::<f64>::new(
            &SgwAmnParams {
                pre: 7,
                workspace: 3,
                post: 5,
                manifold: 2,
                ..Default::default()
            },
            Dims {
                input: 2,
                output: 2,
            },
        );
        let mut p = Tensors::zeros(cell.param_layout());
        cell.init_params(&mut Rng::new(3), &mut p);
        let x = Array2::from_shape_fn((1, 2), |(_, j)| 0.7 - j as f64);
        let st = Tensors::zeros(cell.state_layout().batched(1));
        let (mut used, mut y) = (Scratch::default(), Array2::zeros((1, 2)));
        cell.step(&p, &mut st.clone(), x.view(), y.view_mut(), &mut used);
        p.slice_mut(COMP)
            .iter_mut()
            .for_each(|v| *v = 3.0 * *v - 0.2);
        let (mut s1, mut s2) = (st.clone(), st.clone());
        let (mut y1, mut y2) = (Array2::zeros((1, 2)), Array2::zeros((1, 2)));
        cell.step(&p, &mut s1, x.view(), y1.view_mut(), &mut used);
        cell.step(
            &p,
            &mut s2,
            x.view(),
            y2.view_mut(),
            &mut Scratch::default(),
        );
        assert_eq!((y1, s1), (y2, s2));
    }

    /// Inputs and outputs that are not contiguous (column views of wider arrays) step as
    /// contiguous ones do: the step copies them rather than reading the caller's buffers.
    #[test]
    fn strided_inputs_and_outputs_step_as_contiguous_ones() {
        use crate::SgwAmnParams;
        use mnnn_core::Rng;
        use mnnn_core::cell::{Cell, Dims};
        use ndarray::{Array2, s};
        let cell = SgwAmnCell::<f32>::new(
            &SgwAmnParams {
                pre: 9,
                workspace: 3,
                post: 5,
                manifold: 6,
                ..Default::default()
            },
            Dims {
                input: 3,
                output: 2,
            },
        );
        let mut p = Tensors::zeros(cell.param_layout());
        cell.init_params(&mut Rng::new(5), &mut p);
        let b = 2;
        let wide = Array2::from_shape_fn((b, 6), |(i, j)| 0.3 * i as f32 - 0.2 * j as f32);
        let x = wide.slice(s![.., ..;2]);
        assert!(x.as_slice().is_none());
        let mut st1 = Tensors::zeros(cell.state_layout().batched(b));
        let mut st2 = st1.clone();
        let (mut sc1, mut sc2) = (Scratch::default(), Scratch::default());
        for _ in 0..3 {
            let mut y1 = Array2::zeros((b, 2));
            cell.step(&p, &mut st1, x.to_owned().view(), y1.view_mut(), &mut sc1);
            let mut out = Array2::from_elem((b, 4), 9.0f32);
            cell.step(&p, &mut st2, x, out.slice_mut(s![.., 1..;2]), &mut sc2);
            assert_eq!(out.slice(s![.., 1..;2]), y1);
            assert_eq!(out.slice(s![.., ..;2]), Array2::from_elem((b, 2), 9.0));
        }
        assert_eq!(st1, st2);
    }
}
