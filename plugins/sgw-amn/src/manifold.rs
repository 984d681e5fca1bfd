//! The manifold's write and read for one row of a batch, in one pass over the manifold.

use mnnn_core::Scalar;

/// One row's manifold write then read, `M ← dec·M + ws·k (p ⊙ V)`, `r = q·M`, four manifold
/// rows per pass over the columns ([`quad`]), so that `r` is loaded and stored once per four
/// rows rather than once per row. Each `r[j]` still adds the rows in order, so the values are
/// those of the plain row-by-row loop.
#[inline(always)]
pub(crate) fn manifold_rows<S: Scalar>(
    mb: &mut [S],
    pr: &[S],
    pv: &[S],
    (key, qry): (&[S], &[S]),
    (dec, wsc): (S, S),
    rr: &mut [S],
) {
    let nq = pr.len();
    let rr = &mut rr[..nq];
    rr.fill(S::zero());
    let mut rows = mb.chunks_exact_mut(4 * nq);
    let mut vrows = pv.chunks_exact(4 * nq);
    let mut done = 0;
    for (blk, vb) in (&mut rows).zip(&mut vrows) {
        let (k, q) = (&key[done..done + 4], &qry[done..done + 4]);
        let w = [wsc * k[0], wsc * k[1], wsc * k[2], wsc * k[3]];
        let (m0, rest) = blk.split_at_mut(nq);
        let (m1, rest) = rest.split_at_mut(nq);
        let (m2, m3) = rest.split_at_mut(nq);
        let (v0, rest) = vb.split_at(nq);
        let (v1, rest) = rest.split_at(nq);
        let (v2, v3) = rest.split_at(nq);
        quad(
            [m0, m1, m2, m3],
            [v0, v1, v2, v3],
            pr,
            (w, [q[0], q[1], q[2], q[3]]),
            dec,
            rr,
        );
        done += 4;
    }
    for (mi, (row, vr)) in rows
        .into_remainder()
        .chunks_exact_mut(nq)
        .zip(vrows.remainder().chunks_exact(nq))
        .enumerate()
    {
        let (w, q) = (wsc * key[done + mi], qry[done + mi]);
        for ((d, &pv0), (&vv, rv)) in row.iter_mut().zip(pr).zip(vr.iter().zip(rr.iter_mut())) {
            let nv = dec * *d + w * (pv0 * vv);
            *d = nv;
            *rv += q * nv;
        }
    }
}

/// Four manifold rows `m` (with their rows `v` of V, write weights `w` and read weights `q`)
/// written and read in one pass over the columns.
///
/// A function of its own, whose body takes every row as a separate reference: inlined, the
/// references keep their no-overlap guarantee, and the loop vectorises without the run-time
/// overlap checks between every pair of rows that the compiler otherwise emits before each
/// block of four rows (they cost more than the arithmetic at M = 64, Q = 128).
#[inline(always)]
fn quad<S: Scalar>(
    [m0, m1, m2, m3]: [&mut [S]; 4],
    [v0, v1, v2, v3]: [&[S]; 4],
    pr: &[S],
    (w, q): ([S; 4], [S; 4]),
    dec: S,
    rr: &mut [S],
) {
    quad_rows(m0, m1, m2, m3, (v0, v1, v2, v3), pr, (w, q, dec), rr);
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[inline(always)]
fn quad_rows<S: Scalar>(
    m0: &mut [S],
    m1: &mut [S],
    m2: &mut [S],
    m3: &mut [S],
    (v0, v1, v2, v3): (&[S], &[S], &[S], &[S]),
    pr: &[S],
    (w, q, dec): ([S; 4], [S; 4], S),
    rr: &mut [S],
) {
    let nq = pr.len();
    let (m0, m1, m2, m3) = (&mut m0[..nq], &mut m1[..nq], &mut m2[..nq], &mut m3[..nq]);
    let (v0, v1, v2, v3) = (&v0[..nq], &v1[..nq], &v2[..nq], &v3[..nq]);
    let rr = &mut rr[..nq];
    for j in 0..nq {
        let pj = pr[j];
        let n0 = dec * m0[j] + w[0] * (pj * v0[j]);
        let n1 = dec * m1[j] + w[1] * (pj * v1[j]);
        let n2 = dec * m2[j] + w[2] * (pj * v2[j]);
        let n3 = dec * m3[j] + w[3] * (pj * v3[j]);
        m0[j] = n0;
        m1[j] = n1;
        m2[j] = n2;
        m3[j] = n3;
        rr[j] = rr[j] + q[0] * n0 + q[1] * n1 + q[2] * n2 + q[3] * n3;
    }
}
