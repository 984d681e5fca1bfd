//! Losses over a window of predictions, with their gradients.

use crate::Scalar;

/// Mean squared error over the counted rows of `pred` and `target` (each `n × width`, flat),
/// and its gradient written into `grad` (zero on rows that do not count). Returns
/// `(sum of squared errors, number of counted values)` so windows can be averaged exactly.
pub fn mse<S: Scalar>(
    pred: &[S],
    target: &[S],
    counts: &[bool],
    width: usize,
    scale: S,
    grad: &mut [S],
) -> (f64, usize) {
    let mut sum = 0.0;
    let mut n = 0;
    for (r, &c) in counts.iter().enumerate() {
        let range = r * width..(r + 1) * width;
        if !c {
            grad[range].fill(S::zero());
            continue;
        }
        for i in range {
            let e = pred[i] - target[i];
            sum += e.as_f64() * e.as_f64();
            grad[i] = S::from_f64(2.0) * e * scale;
            n += 1;
        }
    }
    (sum, n)
}

/// Softmax cross-entropy of logits (`n × classes`, flat) against class ids, over counted rows;
/// the gradient (`(softmax − onehot) · scale`) is written into `grad`. Returns `(sum of
/// losses, number of counted rows, number of correct argmax predictions)`.
pub fn cross_entropy<S: Scalar>(
    logits: &[S],
    classes: &[u32],
    counts: &[bool],
    width: usize,
    scale: S,
    grad: &mut [S],
) -> (f64, usize, usize) {
    let mut sum = 0.0;
    let mut n = 0;
    let mut correct = 0;
    for (r, &c) in counts.iter().enumerate() {
        let z = &logits[r * width..(r + 1) * width];
        let g = &mut grad[r * width..(r + 1) * width];
        if !c {
            g.fill(S::zero());
            continue;
        }
        let (arg, max) = z
            .iter()
            .enumerate()
            .fold((0, S::neg_infinity()), |(ai, am), (i, &v)| {
                if v > am { (i, v) } else { (ai, am) }
            });
        let mut total = S::zero();
        for (gi, &zi) in g.iter_mut().zip(z) {
            *gi = (zi - max).exp();
            total += *gi;
        }
        let y = classes[r] as usize;
        sum += (total.ln() - (z[y] - max)).as_f64();
        for gi in g.iter_mut() {
            *gi = *gi / total * scale;
        }
        g[y] -= scale;
        n += 1;
        correct += usize::from(arg == y);
    }
    (sum, n, correct)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{numeric_gradient, relative_error};

    #[test]
    fn gradients_match_finite_differences() {
        let pred = [0.3, -1.2, 0.5, 2.0];
        let target = [0.1, 0.4, -0.5, 1.0];
        let counts = [true, false];
        let mut g = [0.0; 4];
        mse(&pred, &target, &counts, 2, 1.0, &mut g);
        let mut p = pred.to_vec();
        let num = numeric_gradient(&mut p, 1e-6, &mut |p| {
            mse(p, &target, &counts, 2, 1.0, &mut [0.0; 4]).0
        });
        assert!(relative_error(&g, &num, 1e-12) < 1e-8);

        let logits = [0.3, -1.2, 0.5, 2.0, 0.1, -0.7];
        let classes = [2, 0];
        let counts = [true, true];
        let mut g = [0.0; 6];
        let (_, n, correct) = cross_entropy(&logits, &classes, &counts, 3, 1.0, &mut g);
        assert_eq!((n, correct), (2, 2));
        let mut z = logits.to_vec();
        let num = numeric_gradient(&mut z, 1e-6, &mut |z| {
            cross_entropy(z, &classes, &counts, 3, 1.0, &mut [0.0; 6]).0
        });
        assert!(relative_error(&g, &num, 1e-12) < 1e-8);
    }
}
