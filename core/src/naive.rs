//! Small helpers for the naive f64 token loops entries write from their equations
//! ([`Architecture::naive`](crate::registry::Architecture::naive)): values by name and the
//! row-vector product, one term at a time. Only those loops use them, so a fast path's bug
//! cannot hide in code it shares with its own check.

use crate::Tensors;

/// The values of tensor `name` of `t`, row-major (`None` if there is no such tensor).
pub fn values(t: &Tensors<f64>, name: &str) -> Option<Vec<f64>> {
    t.get(name).map(|v| v.iter().copied().collect())
}

/// The logistic function, `1 / (1 + e^−v)`.
pub fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

/// `ln(1 + e^v)`.
pub fn softplus(v: f64) -> f64 {
    v.exp().ln_1p()
}

/// `x · W` for a row `x` and a row-major `W` of `x.len()` rows and `cols` columns, each
/// output summed term by term in order.
pub fn vec_mat(x: &[f64], w: &[f64], cols: usize) -> Vec<f64> {
    (0..cols)
        .map(|j| {
            x.iter()
                .enumerate()
                .map(|(i, xi)| xi * w[i * cols + j])
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

    #[test]
    fn a_row_times_a_matrix_by_hand() {
        // [1 2] · [[1 2 3] [4 5 6]] = [9 12 15]
        assert_eq!(
            vec_mat(&[1.0, 2.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3),
            vec![9.0, 12.0, 15.0]
        );
        let t = Tensors::from_vec(
            Layout::new().with("a", &[2]).with("b", &[1]),
            vec![1.0, 2.0, 3.0],
        )
        .unwrap();
        assert_eq!(values(&t, "a"), Some(vec![1.0, 2.0]));
        assert_eq!(values(&t, "c"), None);
    }
}
