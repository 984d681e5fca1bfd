//! Embedding lookup and its gradient as batched row kernels: the lookup copies the named rows
//! of the table into a contiguous block, and the gradient adds rows back into the table. Both
//! compute what a one-hot row times the table (and its transpose) computes, without forming
//! the one-hot matrix: that matrix would be `rows × vocab`, almost all zeros.

use crate::Scalar;

/// Writes row `ids[k]` of `table` (`vocab × width`, row-major) into row `k` of `out`
/// (`ids.len() × width`); a `None` id writes a row of zeros (a step past a sequence's end).
///
/// # Panics
/// If `out` is not `ids.len() × width` or an id is outside the table.
pub fn gather_rows<S: Scalar>(
    table: &[S],
    width: usize,
    ids: impl ExactSizeIterator<Item = Option<usize>>,
    out: &mut [S],
) {
    assert_eq!(out.len(), ids.len() * width, "output sized for the ids");
    for (row, id) in out.chunks_exact_mut(width.max(1)).zip(ids) {
        match id {
            Some(i) => row.copy_from_slice(&table[i * width..(i + 1) * width]),
            None => row.fill(S::zero()),
        }
    }
}

/// Adds row `k` of `rows` (`n × width`) into row `id` of `table` for every `(k, id)` of
/// `pairs`, in the order given. The order is part of the result: when several rows land on one
/// id their sum is rounded in that order, so callers that must match an earlier summation
/// order pass the pairs in it.
///
/// # Panics
/// If a row or an id is out of range.
pub fn scatter_add_rows<S: Scalar>(
    table: &mut [S],
    width: usize,
    rows: &[S],
    pairs: impl Iterator<Item = (usize, usize)>,
) {
    for (k, id) in pairs {
        let src = &rows[k * width..(k + 1) * width];
        let dst = &mut table[id * width..(id + 1) * width];
        for (d, s) in dst.iter_mut().zip(src) {
            *d += *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;
    use ndarray::Array2;

    /// The one-hot matrix of `ids` over `vocab` (a zero row for `None`): the dense form the
    /// kernels must agree with.
    fn one_hot(ids: &[Option<usize>], vocab: usize) -> Array2<f64> {
        let mut m = Array2::zeros((ids.len(), vocab));
        for (k, id) in ids.iter().enumerate() {
            if let Some(i) = id {
                m[[k, *i]] = 1.0;
            }
        }
        m
    }

    #[test]
    fn gather_and_scatter_equal_one_hot_products() {
        let mut r = Rng::new(11);
        let (vocab, width) = (7, 5);
        let table = Array2::from_shape_fn((vocab, width), |_| r.normal());
        let ids: Vec<Option<usize>> = (0..12)
            .map(|k| (k % 5 != 3).then(|| r.below(vocab)))
            .collect();
        let hot = one_hot(&ids, vocab);

        let mut got = vec![f64::NAN; ids.len() * width];
        gather_rows(
            table.as_slice().unwrap(),
            width,
            ids.iter().copied(),
            &mut got,
        );
        let want = hot.dot(&table);
        assert_eq!(got, want.as_slice().unwrap(), "lookup = one-hot · table");

        let rows = Array2::from_shape_fn((ids.len(), width), |_| r.normal());
        let mut grad = Array2::from_shape_fn((vocab, width), |_| r.normal());
        let before = grad.clone();
        let pairs = ids
            .iter()
            .enumerate()
            .filter_map(|(k, id)| id.map(|i| (k, i)));
        scatter_add_rows(
            grad.as_slice_mut().unwrap(),
            width,
            rows.as_slice().unwrap(),
            pairs,
        );
        let want = &before + &hot.t().dot(&rows);
        for (a, b) in grad.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12, "gradient = table + one-hotᵀ · rows");
        }
    }
}
