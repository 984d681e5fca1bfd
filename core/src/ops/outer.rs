//! The outer-product write `M ← λ M + k vᵀ` of associative memories, and its VJP.

use crate::Scalar;

/// `m ← λ m + k vᵀ` for one memory: `m` is `k.len() × v.len()`, row-major.
pub fn write<S: Scalar>(lambda: S, m: &mut [S], k: &[S], v: &[S]) {
    let n = v.len();
    for (row, &ki) in m.chunks_exact_mut(n).zip(k) {
        for (mij, &vj) in row.iter_mut().zip(v) {
            *mij = lambda * *mij + ki * vj;
        }
    }
}

/// VJP of [`write`], given the memory before the write `m_prev` and the gradient `dm` with
/// respect to the memory after it. Adds `dk += dm · v`, `dv += dmᵀ · k`, returns `dλ =
/// ⟨m_prev, dm⟩`, and turns `dm` in place into the gradient with respect to `m_prev` (`λ dm`).
pub fn write_vjp<S: Scalar>(
    lambda: S,
    m_prev: &[S],
    k: &[S],
    v: &[S],
    dm: &mut [S],
    dk: &mut [S],
    dv: &mut [S],
) -> S {
    let n = v.len();
    let mut dlambda = S::zero();
    for ((row, prev), (&ki, dki)) in dm
        .chunks_exact_mut(n)
        .zip(m_prev.chunks_exact(n))
        .zip(k.iter().zip(dk.iter_mut()))
    {
        let mut acc = S::zero();
        for j in 0..n {
            acc += row[j] * v[j];
            dv[j] += row[j] * ki;
            dlambda += row[j] * prev[j];
            row[j] *= lambda;
        }
        *dki += acc;
    }
    dlambda
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{numeric_gradient, relative_error};

    #[test]
    fn write_vjp_matches_finite_differences() {
        let (kn, vn) = (3, 2);
        let m0 = [0.1, -0.2, 0.3, 0.5, -0.7, 0.2];
        let k = [0.4, -1.0, 0.6];
        let v = [1.5, -0.3];
        let c = [0.3, 1.1, -0.8, 0.2, 0.9, -1.4];
        let lambda = 0.9;
        let mut dm = c.to_vec();
        let (mut dk, mut dv) = (vec![0.0; kn], vec![0.0; vn]);
        let dl = write_vjp(lambda, &m0, &k, &v, &mut dm, &mut dk, &mut dv);
        let mut all: Vec<f64> = std::iter::once(lambda)
            .chain(m0.iter().copied())
            .chain(k.iter().copied())
            .chain(v.iter().copied())
            .collect();
        let num = numeric_gradient(&mut all, 1e-6, &mut |p| {
            let mut m = p[1..7].to_vec();
            write(p[0], &mut m, &p[7..10], &p[10..12]);
            m.iter().zip(&c).map(|(a, b)| a * b).sum()
        });
        let ana: Vec<f64> = std::iter::once(dl)
            .chain(dm.iter().copied())
            .chain(dk.iter().copied())
            .chain(dv.iter().copied())
            .collect();
        assert!(
            relative_error(&ana, &num, 1e-12) < 1e-8,
            "{ana:?} vs {num:?}"
        );
    }
}
