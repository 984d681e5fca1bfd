//! The backward pass: the exact gradient of the recorded window (full backpropagation
//! through time), for both modes. Per step and row it runs the forward's operations in
//! reverse; the products over every step (`K`, `Q`, `B`, `C`, `D` and the input gradient)
//! are taken once at the end.

use crate::cell::{A, B, BF, C, D, DECAY, G, HyperAmnCell, K, LAM, Q, Tape, V, X};
use crate::forward::dot;
use mnnn_core::buf::{mat, mat_mut};
use mnnn_core::kernels::gemm;
use mnnn_core::ops::linear;
use mnnn_core::{Scalar, Tensors};
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, ShapeBuilder};

/// `sign(v)`, with `sign(0) = 0` (the derivative of `|v|` central differences see).
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

/// Rows `k·w ..` of every `stride`-long record: the `n × w` block of one head in a
/// `n × heads × w` buffer, as a strided view.
fn head_view<S>(data: &[S], n: usize, w: usize, stride: usize, k: usize) -> ArrayView2<'_, S> {
    ArrayView2::from_shape((n, w).strides((stride, 1)), &data[k * w..]).expect("inside the buffer")
}

impl<S: Scalar> HyperAmnCell<S> {
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
        let (i, h, mm, nh, o) = (
            self.dims.input,
            self.hidden,
            self.manifold,
            self.heads,
            self.dims.output,
        );
        let rows = t * b;
        let (hm, nhh) = (h * mm, nh * h);
        let (bs, bm) = (b * nhh, b * nh * hm);
        let (one, zero) = (S::one(), S::zero());
        let co = &tape.coef;
        let rec = &tape.rec;
        let (dt, mix, keep) = (self.dt, self.mix, one - self.mix);

        let dy: Vec<S> = dys.iter().copied().collect();
        let dym = mat(&dy, rows, o);
        let xm = mat(&tape.x, rows, i);
        let mgm = mat(&tape.mg[b * h..], rows, h);
        gemm(one, mgm.t(), dym, one, grads.mat_mut(C));
        gemm(one, xm.t(), dym, one, grads.mat_mut(D));
        // ∂L/∂mg of every step from its output.
        let mut dmg_all = vec![zero; rows * h];
        gemm(
            one,
            dym,
            params.mat(C).t(),
            zero,
            mat_mut(&mut dmg_all, rows, h),
        );

        let mut du_all = vec![zero; rows * h];
        let mut dkq_all = vec![zero; rows * nh * 2 * mm];
        let mut dpre = vec![zero; nhh];
        let mut dz = vec![zero; nhh];
        let mut dl = vec![zero; h];
        let mut drho = vec![zero; h];
        let mut dlg = vec![zero; nh];
        let mut ga = vec![zero; nhh];
        let mut gbf = vec![zero; nhh];
        let mut gdec = vec![zero; nh];
        let mut glam = vec![zero; h];
        let mut gg = vec![zero; nhh];
        let mut gx = vec![zero; nh * nh];
        // Kᵀ and Qᵀ of every head (M × H), for the products with the key and query gradients.
        let transpose = |w: &[S]| -> Vec<S> {
            let mut out = vec![zero; w.len()];
            for k in 0..nh {
                for r in 0..h {
                    for c in 0..mm {
                        out[k * hm + c * h + r] = w[k * hm + r * mm + c];
                    }
                }
            }
            out
        };
        let (kt, qt) = (transpose(params.slice(K)), transpose(params.slice(Q)));
        let (px, pg, pv) = (params.slice(X), params.slice(G), params.slice(V));

        let data = dstate.data_mut();
        let (d_s, rest) = data.split_at_mut(bs);
        let (d_m, d_mg) = rest.split_at_mut(bm);
        let gv = grads.slice_mut(V);
        for step in (0..t).rev() {
            for bb in 0..b {
                let row = step * b + bb;
                let sn = &tape.s[(step + 1) * bs + bb * nhh..][..nhh];
                let sp = &tape.s[step * bs + bb * nhh..][..nhh];
                let mgp = &tape.mg[step * b * h + bb * h..][..h];
                let dmg = &mut dmg_all[row * h..(row + 1) * h];
                if !self.design {
                    for (d, &c) in dmg.iter_mut().zip(&d_mg[bb * h..(bb + 1) * h]) {
                        *d += c;
                    }
                }
                // mg = Σ a_k s_k, a = softmax(logits).
                let a = &rec.a[row * nh..(row + 1) * nh];
                let mut mean = zero;
                for k in 0..nh {
                    dlg[k] = dot(dmg, &sn[k * h..(k + 1) * h]);
                    mean += a[k] * dlg[k];
                }
                for k in 0..nh {
                    dlg[k] = a[k] * (dlg[k] - mean);
                }
                let ds_row = &mut d_s[bb * nhh..(bb + 1) * nhh];
                for k in 0..nh {
                    let (gk, dk) = (&pg[k * h..(k + 1) * h], &mut dpre[k * h..(k + 1) * h]);
                    let sk = &sn[k * h..(k + 1) * h];
                    let dsk = &ds_row[k * h..(k + 1) * h];
                    let src = if self.design { sk } else { mgp };
                    let ggk = &mut gg[k * h..(k + 1) * h];
                    for j in 0..h {
                        let mut d = dsk[j] + a[k] * dmg[j];
                        if self.design {
                            d += dlg[k] * gk[j];
                        }
                        dk[j] = d;
                        ggk[j] += dlg[k] * src[j];
                    }
                    if self.design {
                        // The clip passes the gradient only strictly inside its range.
                        for (d, &sv) in dk.iter_mut().zip(sk) {
                            if sv.abs() >= self.clip {
                                *d = zero;
                            }
                        }
                    }
                }
                if !self.design {
                    // The reference's gate read the previous merged state.
                    let dmgp = &mut d_mg[bb * h..(bb + 1) * h];
                    dmgp.fill(zero);
                    for k in 0..nh {
                        for (d, &gw) in dmgp.iter_mut().zip(&pg[k * h..(k + 1) * h]) {
                            *d += dlg[k] * gw;
                        }
                    }
                }
                // s_k = Σ_j X[k, j] z_j.
                let zr = &rec.z[row * nhh..(row + 1) * nhh];
                dz.fill(zero);
                for k in 0..nh {
                    let dk = &dpre[k * h..(k + 1) * h];
                    for j in 0..nh {
                        let w = px[k * nh + j];
                        for (d, &g) in dz[j * h..(j + 1) * h].iter_mut().zip(dk) {
                            *d += w * g;
                        }
                        gx[k * nh + j] += dot(dk, &zr[j * h..(j + 1) * h]);
                    }
                }
                let du = &mut du_all[row * h..(row + 1) * h];
                for k in 0..nh {
                    let n = row * nh + k;
                    let hs = n * h..(n + 1) * h;
                    let (lr, rr) = (&rec.l[hs.clone()], &rec.r[hs.clone()]);
                    let (pr, fr) = (&rec.p[hs.clone()], &rec.f[hs]);
                    let dzk = &dz[k * h..(k + 1) * h];
                    for j in 0..h {
                        dl[j] = mix * dzk[j];
                        drho[j] = keep * dzk[j] * (one - rr[j] * rr[j]);
                    }
                    // The fused write and read: M_new = dec·M_old + ws·key_m·l ⊙ V_m, then
                    // ρ = Σ_m qry_m M_new[m].
                    let (dec, ws) = (co.dec[k], co.ws[k]);
                    let kq = &rec.kq[n * 2 * mm..(n + 1) * 2 * mm];
                    let (key, qry) = kq.split_at(mm);
                    let dkq = &mut dkq_all[n * 2 * mm..(n + 1) * 2 * mm];
                    let moff = bb * nh * hm + k * hm;
                    let mnew = &tape.m[(step + 1) * bm + moff..][..hm];
                    let mold = &tape.m[step * bm + moff..][..hm];
                    let vk = &pv[k * hm..(k + 1) * hm];
                    let gvk = &mut gv[k * hm..(k + 1) * hm];
                    let dmk = &mut d_m[moff..moff + hm];
                    let mut dec_lanes = [zero; 8];
                    let mut dws = zero;
                    for mi in 0..mm {
                        let (w, q) = (ws * key[mi], qry[mi]);
                        let span = mi * h..(mi + 1) * h;
                        let (mn, mo, vr) =
                            (&mnew[span.clone()], &mold[span.clone()], &vk[span.clone()]);
                        let (gvr, dmr) = (&mut gvk[span.clone()], &mut dmk[span]);
                        let mut ql = [zero; 8];
                        let mut wl = [zero; 8];
                        let whole = h - h % 8;
                        for c in (0..whole).step_by(8) {
                            for e in 0..8 {
                                let j = c + e;
                                let g = dmr[j] + q * drho[j];
                                ql[e] += drho[j] * mn[j];
                                dec_lanes[e] += g * mo[j];
                                wl[e] += g * (lr[j] * vr[j]);
                                dl[j] += g * (w * vr[j]);
                                gvr[j] += g * (w * lr[j]);
                                dmr[j] = dec * g;
                            }
                        }
                        for j in whole..h {
                            let e = j - whole;
                            let g = dmr[j] + q * drho[j];
                            ql[e] += drho[j] * mn[j];
                            dec_lanes[e] += g * mo[j];
                            wl[e] += g * (lr[j] * vr[j]);
                            dl[j] += g * (w * vr[j]);
                            gvr[j] += g * (w * lr[j]);
                            dmr[j] = dec * g;
                        }
                        let dq = ql.iter().fold(zero, |acc, &v| acc + v);
                        let dw = wl.iter().fold(zero, |acc, &v| acc + v);
                        // key = σ(l K), qry = σ(l Q); ω = ws·key.
                        dkq[mi] = ws * dw * key[mi] * (one - key[mi]);
                        dkq[mm + mi] = dq * q * (one - q);
                        dws += dw * key[mi];
                    }
                    let dmo = dec_lanes.iter().fold(zero, |acc, &v| acc + v);
                    // Design mode writes with ws = 1 − decay.
                    gdec[k] += if self.design { dmo - dws } else { dmo };
                    S::gemv_acc(&mut dl, &dkq[..mm], &kt[k * hm..(k + 1) * hm]);
                    S::gemv_acc(&mut dl, &dkq[mm..], &qt[k * hm..(k + 1) * hm]);
                    // l = p + dt·(Bf ⊙ f − τ ⊙ p), τ = A + Bf ⊙ |f|; f = tanh(p); p = Λ s + u.
                    let (ak, bk) = (&co.a[k * h..(k + 1) * h], &co.bf[k * h..(k + 1) * h]);
                    let spk = &sp[k * h..(k + 1) * h];
                    let dsk = &mut ds_row[k * h..(k + 1) * h];
                    let (gak, gbk) = (&mut ga[k * h..(k + 1) * h], &mut gbf[k * h..(k + 1) * h]);
                    for j in 0..h {
                        let (pj, fv, g) = (pr[j], fr[j], dl[j]);
                        let tau = ak[j] + bk[j] * fv.abs();
                        let dtau = -dt * pj * g;
                        gak[j] += dtau;
                        gbk[j] += dt * fv * g + dtau * fv.abs();
                        let df = dt * bk[j] * g + dtau * bk[j] * sign(fv);
                        let dp = g * (one - dt * tau) + df * (one - fv * fv);
                        glam[j] += dp * spk[j];
                        dsk[j] = co.lam[j] * dp;
                        du[j] += dp;
                    }
                }
            }
        }
        // Per-neuron coefficients, through the design parametrisation (chain factors are 1
        // in reference mode).
        for (idx, g, chain) in [
            (A, &ga, &co.da),
            (BF, &gbf, &co.dbf),
            (DECAY, &gdec, &co.ddec),
            (LAM, &glam, &co.dlam),
        ] {
            for ((d, &gv), &cv) in grads.slice_mut(idx).iter_mut().zip(g).zip(chain) {
                *d += gv * cv;
            }
        }
        for (d, &v) in grads.slice_mut(G).iter_mut().zip(&gg) {
            *d += v;
        }
        for (d, &v) in grads.slice_mut(X).iter_mut().zip(&gx) {
            *d += v;
        }
        // K_k and Q_k: l_kᵀ · (key, query gradients) over every step and row.
        for k in 0..nh {
            let lk = head_view(&rec.l, rows, h, nhh, k);
            let dk = head_view(&dkq_all, rows, mm, nh * 2 * mm, 2 * k);
            let dq = head_view(&dkq_all, rows, mm, nh * 2 * mm, 2 * k + 1);
            let gk = &mut grads.slice_mut(K)[k * hm..(k + 1) * hm];
            gemm(one, lk.t(), dk, one, mat_mut(gk, h, mm));
            let gq = &mut grads.slice_mut(Q)[k * hm..(k + 1) * hm];
            gemm(one, lk.t(), dq, one, mat_mut(gq, h, mm));
        }
        let dum = mat(&du_all, rows, h);
        gemm(one, xm.t(), dum, one, grads.mat_mut(B));
        if let Some(dx) = dxs {
            linear::backward_inputs(&[(dym, params.mat(D)), (dum, params.mat(B))], dx);
        }
    }
}
