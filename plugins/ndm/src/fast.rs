//! The Hebbian update of one fast-weight matrix and its vector–Jacobian product: one fused
//! pass over the matrix, its plasticity and (momentum) its velocity.
//!
//! For weight `(i, j)` of a `rows × cols` matrix with learned initial value `w0`, deviation
//! `a` (the state; the weight is `w0 + a`), plasticity `p` and velocity `v`:
//!
//! ```text
//! e   = clipₑ(rᵢ · cⱼ)                        Hebbian term (rᵢ: x or pre; cⱼ = ηⱼ·postⱼ)
//! g   = clip_g(p · (e − λ·target))            target: a (design) or w0 + a (reference)
//! original, clamped:  a ← clip_w(w0 + a + dt·g) − w0
//! momentum:           v ← β v + α g;  a ← a + v
//! p   ← ρ p
//! ```
//!
//! Clips act in the clamped variant only. Each combination of (mode, variant) is its own
//! monomorphised loop, so the inner loop carries no branch.

use crate::consts::{Consts, LIM_HEBB, LIM_VEL, LIM_W, clip, inside};
use mnnn_core::Scalar;

/// The scalars of the update.
#[derive(Clone, Copy)]
struct K<S> {
    lam: S,
    dt: S,
    rho: S,
    beta: S,
    alpha: S,
    lim_e: S,
    lim_g: S,
    lim_w: S,
}

impl<S: Scalar> K<S> {
    fn new(c: &Consts<S>) -> Self {
        K {
            lam: c.lam,
            dt: c.dt,
            rho: c.rho,
            beta: c.beta,
            alpha: c.alpha,
            lim_e: S::from_f64(LIM_HEBB),
            lim_g: S::from_f64(LIM_VEL),
            lim_w: S::from_f64(LIM_W),
        }
    }
}

/// One fast matrix's tensors before (and, in place, after) the update.
pub(crate) struct Fast<'a, S> {
    /// Learned initial weights (a parameter), `rows × cols`.
    pub w0: &'a [S],
    /// Deviation from `w0` (state).
    pub a: &'a mut [S],
    /// Plasticity (state).
    pub p: &'a mut [S],
    /// Velocity (state; empty unless momentum).
    pub v: &'a mut [S],
}

macro_rules! dispatch {
    ($c:expr, $f:ident, $($arg:expr),*) => {
        match ($c.design(), $c.clamped(), $c.momentum()) {
            (true, false, false) => $f::<S, false, false, false>($($arg),*),
            (true, true, _) => $f::<S, false, true, false>($($arg),*),
            (true, false, true) => $f::<S, false, false, true>($($arg),*),
            (false, false, false) => $f::<S, true, false, false>($($arg),*),
            (false, true, _) => $f::<S, true, true, false>($($arg),*),
            (false, false, true) => $f::<S, true, false, true>($($arg),*),
        }
    };
}

/// Whether the AVX2 build of the loops may run (core's kernel choice, `MNNN_KERNELS`
/// included). The loops are element-wise with no reassociated sums and Rust never fuses a
/// multiply and an add on its own, so every build gives the same bits.
fn wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        mnnn_core::kernels::Path::selected() >= mnnn_core::kernels::Path::Avx2
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the AVX-512 build of the update may run (core's kernel choice, as [`wide`]).
fn widest() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        mnnn_core::kernels::Path::selected() >= mnnn_core::kernels::Path::Avx512
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The update compiled with AVX-512F enabled: twice the lanes of the AVX2 build for the
/// per-token step, whose time is mostly this pass over the fast weights.
///
/// # Safety
/// The CPU must support AVX-512F ([`widest`] checks it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2")]
unsafe fn update_avx512<S: Scalar, const REF: bool, const CLAMP: bool, const MOM: bool>(
    k: &K<S>,
    rows: &[S],
    cols: &[S],
    m: Fast<'_, S>,
) {
    update_impl::<S, REF, CLAMP, MOM>(k, rows, cols, m)
}

/// The same body compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must support AVX2 ([`wide`] checks it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2<S: Scalar, const REF: bool, const CLAMP: bool, const MOM: bool>(
    k: &K<S>,
    rows: &[S],
    cols: &[S],
    m: Fast<'_, S>,
) {
    update_impl::<S, REF, CLAMP, MOM>(k, rows, cols, m)
}

/// The same body compiled with AVX2 enabled.
///
/// # Safety
/// The CPU must support AVX2 ([`wide`] checks it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_avx2<S: Scalar, const REF: bool, const CLAMP: bool, const MOM: bool>(
    k: &K<S>,
    rows: &[S],
    cols: &[S],
    before: (&[S], &[S], &[S]),
    g: FastGrad<'_, S>,
    grows: &mut [S],
    gcols: &mut [S],
) {
    backward_impl::<S, REF, CLAMP, MOM>(k, rows, cols, before, g, grows, gcols)
}

/// Applies the update to `m` for row factors `rows` and column factors `cols`.
pub(crate) fn update<S: Scalar>(c: &Consts<S>, rows: &[S], cols: &[S], m: Fast<'_, S>) {
    let k = K::new(c);
    #[cfg(target_arch = "x86_64")]
    if widest() {
        // SAFETY: `widest` checked that the CPU has AVX-512F.
        unsafe { dispatch!(c, update_avx512, &k, rows, cols, m) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: `wide` checked that the CPU has AVX2.
        unsafe { dispatch!(c, update_avx2, &k, rows, cols, m) };
        return;
    }
    dispatch!(c, update_impl, &k, rows, cols, m)
}

#[inline(always)]
fn update_impl<S: Scalar, const REF: bool, const CLAMP: bool, const MOM: bool>(
    k: &K<S>,
    rows: &[S],
    cols: &[S],
    m: Fast<'_, S>,
) {
    let n = cols.len();
    let Fast { w0, a, p, v } = m;
    for (i, &ri) in rows.iter().enumerate() {
        let span = i * n..(i + 1) * n;
        let (w0, a, p) = (
            &w0[span.clone()],
            &mut a[span.clone()],
            &mut p[span.clone()],
        );
        let v: &mut [S] = if MOM { &mut v[span] } else { &mut [] };
        for j in 0..n {
            let mut e = ri * cols[j];
            if CLAMP {
                e = clip(e, k.lim_e);
            }
            let target = if REF { w0[j] + a[j] } else { a[j] };
            let mut g = p[j] * (e - k.lam * target);
            if CLAMP {
                g = clip(g, k.lim_g);
            }
            if MOM {
                let vn = k.beta * v[j] + k.alpha * g;
                v[j] = vn;
                a[j] += vn;
            } else if CLAMP {
                a[j] = clip(w0[j] + (a[j] + k.dt * g), k.lim_w) - w0[j];
            } else {
                a[j] += k.dt * g;
            }
            p[j] *= k.rho;
        }
    }
}

/// Adjoints of one fast matrix, updated in place from "after the step" to "before it".
pub(crate) struct FastGrad<'a, S> {
    /// ∂L/∂a.
    pub a: &'a mut [S],
    /// ∂L/∂p.
    pub p: &'a mut [S],
    /// ∂L/∂v (empty unless momentum).
    pub v: &'a mut [S],
    /// ∂L/∂w0, added to (the reference's decay target and the clamp read `w0`).
    pub w0: &'a mut [S],
}

/// The vector–Jacobian product of [`update`]: `before` holds `(w0, a, p)` as they were
/// before the step, `g` the adjoints after it (turned into the
/// adjoints before it); the adjoints of the row and column factors are added to `grows` and
/// `gcols`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<S: Scalar>(
    c: &Consts<S>,
    rows: &[S],
    cols: &[S],
    before: (&[S], &[S], &[S]),
    g: FastGrad<'_, S>,
    grows: &mut [S],
    gcols: &mut [S],
) {
    let k = K::new(c);
    #[cfg(target_arch = "x86_64")]
    if wide() {
        // SAFETY: `wide` checked that the CPU has AVX2.
        unsafe { dispatch!(c, backward_avx2, &k, rows, cols, before, g, grows, gcols) };
        return;
    }
    dispatch!(c, backward_impl, &k, rows, cols, before, g, grows, gcols)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_impl<S: Scalar, const REF: bool, const CLAMP: bool, const MOM: bool>(
    k: &K<S>,
    rows: &[S],
    cols: &[S],
    before: (&[S], &[S], &[S]),
    g: FastGrad<'_, S>,
    grows: &mut [S],
    gcols: &mut [S],
) {
    let n = cols.len();
    let (w0, a0, p0) = before;
    let FastGrad {
        a: ga,
        p: gp,
        v: gv,
        w0: gw0,
    } = g;
    for (i, &ri) in rows.iter().enumerate() {
        let span = i * n..(i + 1) * n;
        let (w0, a0, p0) = (&w0[span.clone()], &a0[span.clone()], &p0[span.clone()]);
        let (ga, gp) = (&mut ga[span.clone()], &mut gp[span.clone()]);
        let gw0: &mut [S] = if REF || CLAMP {
            &mut gw0[span.clone()]
        } else {
            &mut []
        };
        let gv: &mut [S] = if MOM { &mut gv[span] } else { &mut [] };
        let mut grow = S::zero();
        for j in 0..n {
            let e_raw = ri * cols[j];
            let e = if CLAMP { clip(e_raw, k.lim_e) } else { e_raw };
            let target = if REF { w0[j] + a0[j] } else { a0[j] };
            let inner = e - k.lam * target;
            let g_raw = p0[j] * inner;
            let gout = ga[j];
            let (mut da, dg) = if MOM {
                let dvn = gv[j] + gout;
                gv[j] = k.beta * dvn;
                (gout, k.alpha * dvn)
            } else if CLAMP {
                let s = w0[j] + (a0[j] + k.dt * clip(g_raw, k.lim_g));
                let ds = gout * inside(s, k.lim_w);
                gw0[j] += ds - gout;
                (ds, k.dt * ds)
            } else {
                (gout, k.dt * gout)
            };
            let dgr = if CLAMP {
                dg * inside(g_raw, k.lim_g)
            } else {
                dg
            };
            gp[j] = k.rho * gp[j] + dgr * inner;
            let dt_ = -k.lam * p0[j] * dgr;
            da += dt_;
            if REF {
                gw0[j] += dt_;
            }
            ga[j] = da;
            let mut de = p0[j] * dgr;
            if CLAMP {
                de *= inside(e_raw, k.lim_e);
            }
            grow += de * cols[j];
            gcols[j] += de * ri;
        }
        grows[i] += grow;
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::{NdmParams, Variant};
    use mnnn_core::reference::Compat;

    /// The AVX2 and AVX-512 builds give the same bits as the portable one, forward and
    /// backward.
    #[test]
    fn the_avx2_build_equals_the_portable_one() {
        if !std::is_x86_feature_detected!("avx2") {
            return;
        }
        // The name the dispatch macro instantiates the loops at.
        type S = f32;
        let vals = |n: usize, salt: usize| -> Vec<f32> {
            (0..n)
                .map(|k| (((k * 37 + salt * 11) % 23) as f32 - 11.0) / 7.0)
                .collect()
        };
        let (r, n) = (5, 19);
        for variant in [Variant::Original, Variant::Clamped, Variant::Momentum] {
            for compat in [Compat::Design, Compat::Reference] {
                let c = Consts::<S>::new(&NdmParams {
                    variant,
                    compat,
                    ..Default::default()
                });
                let k = K::new(&c);
                let (rows, cols, w0) = (vals(r, 1), vals(n, 2), vals(r * n, 3));
                let run = |wide: u8| {
                    let (mut a, mut p, mut v) = (vals(r * n, 4), vals(r * n, 5), vals(r * n, 6));
                    let m = Fast {
                        w0: &w0,
                        a: &mut a,
                        p: &mut p,
                        v: &mut v,
                    };
                    if wide == 2 {
                        // SAFETY: AVX-512F checked by the caller.
                        unsafe { dispatch!(c, update_avx512, &k, &rows, &cols, m) }
                    } else if wide == 1 {
                        // SAFETY: AVX2 checked above.
                        unsafe { dispatch!(c, update_avx2, &k, &rows, &cols, m) }
                    } else {
                        dispatch!(c, update_impl, &k, &rows, &cols, m)
                    }
                    let (a0, p0) = (vals(r * n, 4), vals(r * n, 5));
                    let (mut ga, mut gp, mut gv, mut gw) = (
                        vals(r * n, 7),
                        vals(r * n, 8),
                        vals(r * n, 9),
                        vec![0.0; r * n],
                    );
                    let (mut gr, mut gc) = (vec![0.0; r], vec![0.0; n]);
                    let g = FastGrad {
                        a: &mut ga,
                        p: &mut gp,
                        v: &mut gv,
                        w0: &mut gw,
                    };
                    let before = (&w0[..], &a0[..], &p0[..]);
                    if wide >= 1 {
                        // SAFETY: AVX2 checked above.
                        unsafe {
                            dispatch!(
                                c,
                                backward_avx2,
                                &k,
                                &rows,
                                &cols,
                                before,
                                g,
                                &mut gr,
                                &mut gc
                            )
                        }
                    } else {
                        dispatch!(
                            c,
                            backward_impl,
                            &k,
                            &rows,
                            &cols,
                            before,
                            g,
                            &mut gr,
                            &mut gc
                        )
                    }
                    [a, p, v, ga, gp, gv, gw, gr, gc]
                };
                assert_eq!(run(1), run(0), "{variant:?}/{compat:?}");
                if std::is_x86_feature_detected!("avx512f") {
                    assert_eq!(run(2), run(0), "{variant:?}/{compat:?} (AVX-512)");
                }
            }
        }
    }
}
