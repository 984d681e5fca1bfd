//! `y += x · W` for a row vector `x` and a row-major matrix `W` stored input-major.

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f32(y: &mut [f32], x: &[f32], w: &[f32]) {
    let n = y.len();
    assert_eq!(w.len(), x.len() * n, "gemv: matrix size");
    for (xi, row) in x.iter().zip(w.chunks_exact(n)) {
        for (yj, wij) in y.iter_mut().zip(row) {
            *yj += xi * wij;
        }
    }
}

/// `y[j] += Σ_i x[i] · w[i·n + j]` where `n = y.len()` and `w.len() == x.len() · n`.
pub fn gemv_acc_f64(y: &mut [f64], x: &[f64], w: &[f64]) {
    let n = y.len();
    assert_eq!(w.len(), x.len() * n, "gemv: matrix size");
    for (xi, row) in x.iter().zip(w.chunks_exact(n)) {
        for (yj, wij) in y.iter_mut().zip(row) {
            *yj += xi * wij;
        }
    }
}
