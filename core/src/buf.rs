//! Flat row-major buffers seen as matrices, and the small buffer chores every cell's step,
//! window and backward pass share (scratch and tape vectors, batched state blocks).

use crate::Scalar;
use ndarray::{ArrayView2, ArrayViewMut2};

/// `data` as a `rows × cols` row-major matrix.
///
/// # Panics
/// If `data` does not hold exactly `rows · cols` values (the caller sized it).
pub fn mat<S>(data: &[S], rows: usize, cols: usize) -> ArrayView2<'_, S> {
    ArrayView2::from_shape((rows, cols), data).expect("buffer sized by the caller")
}

/// [`mat`], mutable.
///
/// # Panics
/// If `data` does not hold exactly `rows · cols` values (the caller sized it).
pub fn mat_mut<S>(data: &mut [S], rows: usize, cols: usize) -> ArrayViewMut2<'_, S> {
    ArrayViewMut2::from_shape((rows, cols), data).expect("buffer sized by the caller")
}

/// Makes `v` hold `n` zeros, reusing its allocation.
pub fn zeroed<S: Scalar>(v: &mut Vec<S>, n: usize) {
    v.clear();
    v.resize(n, S::zero());
}

/// Splits `data` into `N − 1` consecutive blocks of `n` values and the rest: e.g. a batched
/// state whose leading tensors are all `B × hidden`, `let [m, s, rest] = split_blocks(data, b
/// * h)`.
///
/// # Panics
/// If `data` is shorter than `(N − 1) · n`.
pub fn split_blocks<S, const N: usize>(data: &mut [S], n: usize) -> [&mut [S]; N] {
    let mut rest = data;
    std::array::from_fn(|k| {
        let all = std::mem::take(&mut rest);
        if k + 1 == N {
            all
        } else {
            let (block, tail) = all.split_at_mut(n);
            rest = tail;
            block
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_blocks_gives_the_blocks_then_the_rest() {
        let mut v = [1, 2, 3, 4, 5, 6, 7];
        let [a, b, rest] = split_blocks(&mut v, 2);
        assert_eq!(
            (&a[..], &b[..], &rest[..]),
            (&[1, 2][..], &[3, 4][..], &[5, 6, 7][..])
        );
        let [all] = split_blocks(&mut v, 2);
        assert_eq!(all.len(), 7);
    }

    #[test]
    fn mat_is_row_major_and_zeroed_refills() {
        let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(mat(&d, 2, 3)[[1, 0]], 4.0);
        let mut v = vec![7.0f64; 3];
        zeroed(&mut v, 5);
        assert_eq!(v, vec![0.0; 5]);
    }
}
