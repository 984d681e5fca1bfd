//! The backward pass: the exact gradient of the recorded window (full backpropagation
//! through time), the sparsity penalty included when [`mnnn_core::Cell::aux_loss`] asked
//! for it. The hard top-W selection carries no gradient (as a mixture-of-experts router's);
//! the winners' softmax weights, their scores and the competition weights do.

use crate::cell::{A, BF, COMP, K, QM, SgwAmnCell, Tape, V, WIP, WOUT, WWQ};
use crate::forward::{GELU_A, GELU_C};
use mnnn_core::buf::{mat, mat_mut};
use mnnn_core::kernels::gemm;
use mnnn_core::{Scalar, Tensors};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, ShapeBuilder};

/// `sign(v)`, with `sign(0) = 0`.
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

/// `w` (`rows × cols`, row-major) transposed.
fn transposed<S: Scalar>(w: &[S], rows: usize, cols: usize) -> Vec<S> {
    let mut out = vec![S::zero(); w.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w[r * cols + c];
        }
    }
    out
}

impl<S: Scalar> SgwAmnCell<S> {
    /// The body of [`mnnn_core::Cell::backward_window`].
    #[inline(always)]
    pub(crate) fn backward_impl(
        &self,
        params: &Tensors<S>,
        tape: &Tape<S>,
        dys: ArrayView3<S>,
        dstate: &mut Tensors<S>,
        grads: &mut Tensors<S>,
        dxs: Option<ArrayViewMut3<S>>,
    ) {
        let (t, b) = (tape.steps, tape.batch);
        let (i, np, nw, nq, mm, o) = (
            self.dims.input,
            self.pre,
            self.work,
            self.post,
            self.manifold,
            self.dims.output,
        );
        let rows = t * b;
        let (one, zero, half) = (S::one(), S::zero(), S::from_f64(0.5));
        let (co, rec) = (&tape.coef, &tape.rec);
        let (bww, bm) = (b * nw * nw, b * mm * nq);

        let dy: Vec<S> = dys.iter().copied().collect();
        let dym = mat(&dy, rows, o);
        gemm(
            one,
            mat(&rec.p, rows, nq).t(),
            dym,
            one,
            grads.mat_mut(WOUT),
        );
        let mut dp_all = vec![zero; rows * nq];
        gemm(
            one,
            dym,
            params.mat(WOUT).t(),
            zero,
            mat_mut(&mut dp_all, rows, nq),
        );

        let mut dz0_all = vec![zero; rows * nq];
        let mut dkq_all = vec![zero; rows * 2 * mm];
        let mut dzp_all = vec![zero; rows * np];
        let mut dp0 = vec![zero; nq];
        let mut drho = vec![zero; nq];
        let mut dws = vec![zero; nw];
        let mut dpre = vec![zero; np];
        let mut dg = vec![zero; nw];
        let mut dmr = vec![zero; nw];
        let mut ga = vec![zero; nw];
        let mut gbf = vec![zero; nw];
        let kt = transposed(params.slice(K), nq, mm);
        let qt = transposed(params.slice(QM), nq, mm);
        let wqt = transposed(params.slice(WWQ), nw, nq);
        let (pv, comp) = (params.slice(V), params.slice(COMP));
        let (mix, keepm) = (self.mix, one - self.mix);
        let (dec, wsc, dt, hd) = (self.dec, self.ws, self.dt, self.hd);
        let keeph = one - hd;
        let (gc, gca) = (S::from_f64(GELU_C), S::from_f64(GELU_A));
        let three = S::from_f64(3.0);
        let scale = S::from_f64(nw as f64);
        let lam = self.penalty;

        let data = dstate.data_mut();
        let (d_ws, rest) = data.split_at_mut(b * nw);
        let (d_wm, rest) = rest.split_at_mut(bww);
        let (d_m, d_sc) = rest.split_at_mut(bm);
        // The stored scores are never read by the next step.
        d_sc.fill(zero);
        if !self.design {
            // Reference mode zeroes the workspace at every step: the stored one is not read.
            d_ws.fill(zero);
        }
        let mut gcomp = vec![zero; np * nw];
        let gv = grads.slice_mut(V);
        for step in (0..t).rev() {
            for bb in 0..b {
                let row = step * b + bb;
                let q_rows = row * nq..(row + 1) * nq;
                let w_rows = row * nw..(row + 1) * nw;
                let (p0, r) = (&rec.p0[q_rows.clone()], &rec.r[q_rows.clone()]);
                let dp = &dp_all[q_rows.clone()];
                for j in 0..nq {
                    dp0[j] = mix * dp[j];
                    drho[j] = keepm * dp[j] * (one - r[j] * r[j]);
                }
                // The fused manifold write and read.
                let kq = &rec.kq[row * 2 * mm..(row + 1) * 2 * mm];
                let (key, qry) = kq.split_at(mm);
                let dkq = &mut dkq_all[row * 2 * mm..(row + 1) * 2 * mm];
                let moff = bb * mm * nq;
                let mnew = &tape.m[(step + 1) * bm + moff..][..mm * nq];
                let dmb = &mut d_m[moff..moff + mm * nq];
                for mi in 0..mm {
                    let (w, q) = (wsc * key[mi], qry[mi]);
                    let span = mi * nq..(mi + 1) * nq;
                    let (mn, vr) = (&mnew[span.clone()], &pv[span.clone()]);
                    let (gvr, dmr) = (&mut gv[span.clone()], &mut dmb[span]);
                    // Eight partial sums, lane `j mod 8` each; whole blocks of 8 columns as
                    // straight-line 8-wide code (vectorised), the leftover columns one by one
                    // into the same lanes, so the sums are the same whatever the width.
                    let mut ql = [zero; 8];
                    let mut wl = [zero; 8];
                    let full = nq - nq % 8;
                    for c in (0..full).step_by(8) {
                        let s = c..c + 8;
                        let (dr, mnc) = (&drho[s.clone()], &mn[s.clone()]);
                        let (vrc, p0c) = (&vr[s.clone()], &p0[s.clone()]);
                        let (dpc, gvc) = (&mut dp0[s.clone()], &mut gvr[s.clone()]);
                        let dmc = &mut dmr[s];
                        // Every load before any store, so that the compiler need not prove
                        // the output blocks apart to turn the lanes into vector operations.
                        let ld = |v: &[S]| -> [S; 8] { v.try_into().expect("8 columns") };
                        let (dmv, drv, mnv) = (ld(dmc), ld(dr), ld(mnc));
                        let (vrv, p0v, dpv, gvv) = (ld(vrc), ld(p0c), ld(dpc), ld(gvc));
                        let g: [S; 8] = std::array::from_fn(|e| dmv[e] + q * drv[e]);
                        for e in 0..8 {
                            ql[e] += drv[e] * mnv[e];
                            wl[e] += g[e] * (p0v[e] * vrv[e]);
                        }
                        let dpn: [S; 8] = std::array::from_fn(|e| dpv[e] + g[e] * (w * vrv[e]));
                        let gvn: [S; 8] = std::array::from_fn(|e| gvv[e] + g[e] * (w * p0v[e]));
                        let dmn: [S; 8] = std::array::from_fn(|e| dec * g[e]);
                        dpc.copy_from_slice(&dpn);
                        gvc.copy_from_slice(&gvn);
                        dmc.copy_from_slice(&dmn);
                    }
                    for j in full..nq {
                        let e = j % 8;
                        let g = dmr[j] + q * drho[j];
                        ql[e] += drho[j] * mn[j];
                        wl[e] += g * (p0[j] * vr[j]);
                        dp0[j] += g * (w * vr[j]);
                        gvr[j] += g * (w * p0[j]);
                        dmr[j] = dec * g;
                    }
                    let dq = ql.iter().fold(zero, |a, &v| a + v);
                    let dw = wl.iter().fold(zero, |a, &v| a + v);
                    dkq[mi] = wsc * dw * key[mi] * (one - key[mi]);
                    dkq[mm + mi] = dq * q * (one - q);
                }
                S::gemv_acc(&mut dp0, &dkq[..mm], &kt);
                S::gemv_acc(&mut dp0, &dkq[mm..], &qt);
                // p0 = tanh(ws W_wq).
                let dz0 = &mut dz0_all[q_rows];
                for j in 0..nq {
                    dz0[j] = dp0[j] * (one - p0[j] * p0[j]);
                }
                let ws = &rec.ws[w_rows.clone()];
                let (w0, f) = (&rec.w0[w_rows.clone()], &rec.f[w_rows.clone()]);
                dws.fill(zero);
                S::gemv_acc(&mut dws, dz0, &wqt);
                let carried = &mut d_ws[bb * nw..(bb + 1) * nw];
                let aux = tape.aux.get(row).copied().unwrap_or(zero);
                for k in 0..nw {
                    dws[k] += carried[k] + lam * aux * sign(ws[k]);
                }
                // Wm_new = hd·Wm_old + (1 − hd)·ws wsᵀ.
                let gwm = &mut d_wm[bb * nw * nw..(bb + 1) * nw * nw];
                for k in 0..nw {
                    let mut acc = zero;
                    for j in 0..nw {
                        acc += (gwm[k * nw + j] + gwm[j * nw + k]) * ws[j];
                    }
                    dws[k] += keeph * acc;
                }
                gwm.iter_mut().for_each(|v| *v *= hd);
                // ws = clip(w0 + dt·(Bf f − τ w0)), τ = A + Bf |f|, f = tanh(w0 + Wm_old w0).
                let wm_old = &tape.wm[step * bww + bb * nw * nw..][..nw * nw];
                let dw0 = carried;
                for k in 0..nw {
                    let dlc = if !self.design || ws[k].abs() < self.clip {
                        dws[k]
                    } else {
                        zero
                    };
                    let (wv, fv) = (w0[k], f[k]);
                    let tau = co.a[k] + co.bf[k] * fv.abs();
                    let dtau = -dt * wv * dlc;
                    ga[k] += dtau;
                    gbf[k] += dt * fv * dlc + dtau * fv.abs();
                    let df = dt * co.bf[k] * dlc + dtau * co.bf[k] * sign(fv);
                    let dc = df * (one - fv * fv);
                    dw0[k] = dlc * (one - dt * tau) + dc;
                    dmr[k] = dc;
                }
                for k in 0..nw {
                    for j in 0..nw {
                        gwm[k * nw + j] += dmr[k] * w0[j];
                        dw0[j] += wm_old[k * nw + j] * dmr[k];
                    }
                }
                // The route: w0 (+)= Σ_n g_n pre_{i_n} Cw[i_n, ·].
                let win = &rec.win[w_rows.clone()];
                let g = &rec.g[w_rows];
                let p_rows = row * np..(row + 1) * np;
                let pre = &rec.pre[p_rows.clone()];
                dpre.fill(zero);
                for (n, (&gn, &iw)) in g.iter().zip(win).enumerate() {
                    let ii = iw as usize;
                    let crow = &comp[ii * nw..(ii + 1) * nw];
                    let e = crow.iter().zip(&*dw0).fold(zero, |a, (&c, &d)| a + c * d);
                    dpre[ii] += gn * e;
                    dg[n] = pre[ii] * e;
                    let gcr = &mut gcomp[ii * nw..(ii + 1) * nw];
                    for (d, &dv) in gcr.iter_mut().zip(&*dw0) {
                        *d += gn * pre[ii] * dv;
                    }
                }
                if self.design {
                    // g = W·softmax(scores of the winners / temperature).
                    let mean = g.iter().zip(&dg).fold(zero, |a, (&gn, &d)| a + gn * d) / scale;
                    for (n, &iw) in win.iter().enumerate() {
                        let ii = iw as usize;
                        let dsc = g[n] * (dg[n] - mean) / self.temp;
                        // sc = |pre|·‖Cw_i‖₁.
                        let nrm = rec.nrm[ii];
                        dpre[ii] += dsc * sign(pre[ii]) * nrm;
                        let crow = &comp[ii * nw..(ii + 1) * nw];
                        let gcr = &mut gcomp[ii * nw..(ii + 1) * nw];
                        let ap = pre[ii].abs();
                        for (d, &c) in gcr.iter_mut().zip(crow) {
                            *d += dsc * ap * sign(c);
                        }
                    }
                }
                if !self.design {
                    dw0.fill(zero);
                }
                // pre = gelu(zp).
                let (zp, tt) = (&rec.zp[p_rows.clone()], &rec.gt[p_rows.clone()]);
                let dzp = &mut dzp_all[p_rows];
                for j in 0..np {
                    let (u, tv) = (zp[j], tt[j]);
                    let d = half * (one + tv)
                        + half * u * (one - tv * tv) * gc * (one + three * gca * u * u);
                    dzp[j] = dpre[j] * d;
                }
            }
        }
        for (d, &v) in grads.slice_mut(COMP).iter_mut().zip(&gcomp) {
            *d += v;
        }
        for (idx, gsum, chain) in [(A, &ga, &co.da), (BF, &gbf, &co.dbf)] {
            for ((d, &gvv), &c) in grads.slice_mut(idx).iter_mut().zip(gsum).zip(chain) {
                *d += gvv * c;
            }
        }
        let p0m = mat(&rec.p0, rows, nq);
        let view = |off: usize| {
            ArrayView2::from_shape((rows, mm).strides((2 * mm, 1)), &dkq_all[off..])
                .expect("inside the buffer")
        };
        gemm(one, p0m.t(), view(0), one, grads.mat_mut(K));
        gemm(one, p0m.t(), view(mm), one, grads.mat_mut(QM));
        let dz0m = mat(&dz0_all, rows, nq);
        gemm(
            one,
            mat(&rec.ws, rows, nw).t(),
            dz0m,
            one,
            grads.mat_mut(WWQ),
        );
        let dzpm = mat(&dzp_all, rows, np);
        gemm(
            one,
            mat(&tape.x, rows, i).t(),
            dzpm,
            one,
            grads.mat_mut(WIP),
        );
        if let Some(mut dx) = dxs {
            let mut buf = vec![zero; rows * i];
            gemm(
                one,
                dzpm,
                params.mat(WIP).t(),
                zero,
                mat_mut(&mut buf, rows, i),
            );
            dx.assign(&ArrayView3::from_shape((t, b, i), &buf).expect("sized"));
        }
    }
}
