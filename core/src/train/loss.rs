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
    cross_entropy_impl(logits, classes, counts, width, Some((scale, grad)))
}

/// [`cross_entropy`]'s sums without the gradient (for scoring): the same numbers, bit for bit,
/// without the pass that normalises and writes the gradient.
pub fn cross_entropy_loss<S: Scalar>(
    logits: &[S],
    classes: &[u32],
    counts: &[bool],
    width: usize,
) -> (f64, usize, usize) {
    cross_entropy_impl(logits, classes, counts, width, None)
}

fn cross_entropy_impl<S: Scalar>(
    logits: &[S],
    classes: &[u32],
    counts: &[bool],
    width: usize,
    mut grad: Option<(S, &mut [S])>,
) -> (f64, usize, usize) {
    let mut sum = 0.0;
    let mut n = 0;
    let mut correct = 0;
    for (r, &c) in counts.iter().enumerate() {
        let z = &logits[r * width..(r + 1) * width];
        if !c {
            if let Some((_, g)) = grad.as_mut() {
                g[r * width..(r + 1) * width].fill(S::zero());
            }
            continue;
        }
        let max = row_max(z);
        // The first index holding the maximum: what a running `>` comparison keeps.
        let arg = z.iter().position(|&v| v == max).unwrap_or(0);
        let mut total = S::zero();
        match grad.as_mut() {
            Some((scale, g)) => {
                let g = &mut g[r * width..(r + 1) * width];
                for (gi, &zi) in g.iter_mut().zip(z) {
                    *gi = (zi - max).exp();
                    total += *gi;
                }
                for gi in g.iter_mut() {
                    *gi = *gi / total * *scale;
                }
                g[classes[r] as usize] -= *scale;
            }
            None => {
                for &zi in z {
                    total += (zi - max).exp();
                }
            }
        }
        let y = classes[r] as usize;
        sum += (total.ln() - (z[y] - max)).as_f64();
        n += 1;
        correct += usize::from(arg == y);
    }
    (sum, n, correct)
}

/// The largest entry of `z` (NaN entries ignored; −∞ when there is none), in eight
/// independent lanes so that the compiler vectorises it. The maximum does not depend on the
/// order of comparison, so this is the sequential scan's value.
fn row_max<S: Scalar>(z: &[S]) -> S {
    let mut lanes = [S::neg_infinity(); 8];
    let mut chunks = z.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            if v > *l {
                *l = v;
            }
        }
    }
    let mut max = S::neg_infinity();
    for &v in lanes.iter().chain(chunks.remainder()) {
        if v > max {
            max = v;
        }
    }
    max
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

    /// The per-row loop this file had before the lanes and the loss-only form, kept as the
    /// reference both must equal bit for bit.
    fn naive_cross_entropy(z: &[f32], classes: &[u32], width: usize) -> (f64, usize, Vec<f32>) {
        let (mut sum, mut correct, mut grad) = (0.0, 0, vec![0.0f32; z.len()]);
        for (r, &y) in classes.iter().enumerate() {
            let z = &z[r * width..(r + 1) * width];
            let g = &mut grad[r * width..(r + 1) * width];
            let (arg, max) =
                z.iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(ai, am), (i, &v)| {
                        if v > am { (i, v) } else { (ai, am) }
                    });
            let mut total = 0.0f32;
            for (gi, &zi) in g.iter_mut().zip(z) {
                *gi = (zi - max).exp();
                total += *gi;
            }
            sum += (total.ln() - (z[y as usize] - max)) as f64;
            for gi in g.iter_mut() {
                *gi = *gi / total * 0.5;
            }
            g[y as usize] -= 0.5;
            correct += usize::from(arg == y as usize);
        }
        (sum, correct, grad)
    }

    #[test]
    fn cross_entropy_equals_the_per_row_loop_bit_for_bit() {
        let mut r = crate::Rng::new(2);
        for width in [1, 7, 8, 19, 256] {
            let rows = 6;
            let mut z: Vec<f32> = (0..rows * width).map(|_| r.normal() as f32 * 4.0).collect();
            // Ties (the first index must win), ±0 and a NaN the maximum ignores.
            z[1 % width] = z[0];
            if width > 8 {
                z[width + 3] = f32::NAN;
                z[2 * width] = 0.0;
                z[2 * width + 9] = -0.0;
                z[3 * width..4 * width].fill(1.5);
            }
            let classes: Vec<u32> = (0..rows).map(|_| r.below(width) as u32).collect();
            let counts = vec![true; rows];
            let (want_sum, want_correct, want_grad) = naive_cross_entropy(&z, &classes, width);
            let mut g = vec![0.0f32; z.len()];
            let (sum, n, correct) = cross_entropy(&z, &classes, &counts, width, 0.5, &mut g);
            assert_eq!(
                (sum.to_bits(), n, correct),
                (want_sum.to_bits(), rows, want_correct)
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g), bits(&want_grad), "width {width}");
            let (sum, n, correct) = cross_entropy_loss(&z, &classes, &counts, width);
            assert_eq!(
                (sum.to_bits(), n, correct),
                (want_sum.to_bits(), rows, want_correct)
            );
        }
    }
}
