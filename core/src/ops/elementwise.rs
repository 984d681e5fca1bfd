//! Elementwise products and mixtures, with their VJPs.

use crate::Scalar;

/// `y = a ⊙ b`.
pub fn mul<S: Scalar>(a: &[S], b: &[S], y: &mut [S]) {
    for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
        *y = a * b;
    }
}

/// VJP of [`mul`]: `da += dy ⊙ b`, `db += dy ⊙ a`.
pub fn mul_vjp<S: Scalar>(a: &[S], b: &[S], dy: &[S], da: &mut [S], db: &mut [S]) {
    for i in 0..dy.len() {
        da[i] += dy[i] * b[i];
        db[i] += dy[i] * a[i];
    }
}

/// `y = (1 − g) ⊙ a + g ⊙ b`: a gated mixture, `g` typically a sigmoid gate.
pub fn mix<S: Scalar>(g: &[S], a: &[S], b: &[S], y: &mut [S]) {
    for i in 0..y.len() {
        y[i] = a[i] + g[i] * (b[i] - a[i]);
    }
}

/// VJP of [`mix`]: `dg += dy ⊙ (b − a)`, `da += dy ⊙ (1 − g)`, `db += dy ⊙ g`.
pub fn mix_vjp<S: Scalar>(
    g: &[S],
    a: &[S],
    b: &[S],
    dy: &[S],
    dg: &mut [S],
    da: &mut [S],
    db: &mut [S],
) {
    for i in 0..dy.len() {
        dg[i] += dy[i] * (b[i] - a[i]);
        da[i] += dy[i] * (S::one() - g[i]);
        db[i] += dy[i] * g[i];
    }
}

/// `y += s · x`.
pub fn axpy<S: Scalar>(s: S, x: &[S], y: &mut [S]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += s * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{numeric_gradient, relative_error};

    #[test]
    fn mix_and_mul_vjps_match_finite_differences() {
        let g = [0.2, 0.9, 0.5];
        let a = [1.0, -2.0, 0.3];
        let b = [0.5, 0.7, -1.5];
        let c = [1.3, -0.4, 2.2];
        let (mut dg, mut da, mut db) = ([0.0; 3], [0.0; 3], [0.0; 3]);
        mix_vjp(&g, &a, &b, &c, &mut dg, &mut da, &mut db);
        let mut all: Vec<f64> = g.iter().chain(&a).chain(&b).copied().collect();
        let num = numeric_gradient(&mut all, 1e-6, &mut |v| {
            let mut y = [0.0; 3];
            mix(&v[0..3], &v[3..6], &v[6..9], &mut y);
            y.iter().zip(&c).map(|(p, q)| p * q).sum()
        });
        let ana: Vec<f64> = dg.iter().chain(&da).chain(&db).copied().collect();
        assert!(relative_error(&ana, &num, 1e-12) < 1e-8);

        let (mut da, mut db) = ([0.0; 3], [0.0; 3]);
        mul_vjp(&a, &b, &c, &mut da, &mut db);
        let mut ab: Vec<f64> = a.iter().chain(&b).copied().collect();
        let num = numeric_gradient(&mut ab, 1e-6, &mut |v| {
            let mut y = [0.0; 3];
            mul(&v[0..3], &v[3..6], &mut y);
            y.iter().zip(&c).map(|(p, q)| p * q).sum()
        });
        let ana: Vec<f64> = da.iter().chain(&db).copied().collect();
        assert!(relative_error(&ana, &num, 1e-12) < 1e-8);
    }
}
