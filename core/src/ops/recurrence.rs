//! The diagonal linear recurrence `h_t = a ⊙ h_{t−1} + u_t`, and its VJP.
//!
//! Sequences are time-major: `u` holds `T` consecutive blocks of `n` values (one block per
//! step, a block being a whole batch of rows laid end to end).

use crate::Scalar;

/// Runs the recurrence from `h0` over every block of `u`, writing each `h_t` into `hs`.
/// `a` has one decay per channel and is repeated across the rows of a block.
pub fn scan<S: Scalar>(a: &[S], h0: &[S], u: &[S], hs: &mut [S]) {
    let n = h0.len();
    let width = a.len();
    let mut prev: &[S] = h0;
    for (ut, ht) in u.chunks_exact(n).zip(hs.chunks_exact_mut(n)) {
        for i in 0..n {
            ht[i] = a[i % width] * prev[i] + ut[i];
        }
        prev = ht;
    }
}

/// VJP of [`scan`]. `dh` holds `∂L/∂h_t` for every step (from outside the recurrence) and is
/// consumed: on return it holds `∂L/∂u_t` (which equals the total gradient reaching `h_t`).
/// Adds `da += Σ_t dh_t ⊙ h_{t−1}` (folded over rows) and writes `dh0 = a ⊙ dh_1`.
pub fn scan_vjp<S: Scalar>(a: &[S], h0: &[S], hs: &[S], dh: &mut [S], da: &mut [S], dh0: &mut [S]) {
    let n = h0.len();
    let steps = dh.len() / n;
    let width = a.len();
    for t in (0..steps).rev() {
        if t + 1 < steps {
            let (cur, next) = dh.split_at_mut((t + 1) * n);
            let cur = &mut cur[t * n..];
            for i in 0..n {
                cur[i] += a[i % width] * next[i];
            }
        }
        let prev = if t == 0 { h0 } else { &hs[(t - 1) * n..t * n] };
        let cur = &dh[t * n..(t + 1) * n];
        for i in 0..n {
            da[i % width] += cur[i] * prev[i];
        }
    }
    for i in 0..n {
        dh0[i] = if steps > 0 {
            a[i % width] * dh[i]
        } else {
            S::zero()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{numeric_gradient, relative_error};

    #[test]
    fn scan_vjp_matches_finite_differences() {
        // two rows of width 2, three steps
        let a = [0.9, -0.5];
        let h0 = [0.3, -0.2, 0.1, 0.4];
        let u: Vec<f64> = (0..12).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.3).collect();
        let c: Vec<f64> = (0..12).map(|i| ((i * 3 % 7) as f64 - 3.0) * 0.2).collect();
        let loss = |a: &[f64], h0: &[f64], u: &[f64]| {
            let mut hs = vec![0.0; 12];
            scan(a, h0, u, &mut hs);
            hs.iter().zip(&c).map(|(x, y)| x * y).sum::<f64>()
        };
        let mut hs = vec![0.0; 12];
        scan(&a, &h0, &u, &mut hs);
        let mut dh = c.clone();
        let (mut da, mut dh0) = (vec![0.0; 2], vec![0.0; 4]);
        scan_vjp(&a, &h0, &hs, &mut dh, &mut da, &mut dh0);
        let mut all: Vec<f64> = a.iter().chain(&h0).chain(&u).copied().collect();
        let num = numeric_gradient(&mut all, 1e-6, &mut |p| loss(&p[0..2], &p[2..6], &p[6..]));
        let ana: Vec<f64> = da.iter().chain(&dh0).chain(&dh).copied().collect();
        assert!(relative_error(&ana, &num, 1e-12) < 1e-8, "{ana:?}\n{num:?}");
    }
}
