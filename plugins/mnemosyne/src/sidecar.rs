//! The sparse sidecar: at most `K` (key, value, score) entries holding the most surprising
//! tokens seen so far, read by softmax attention over the cache and a learned null slot.
//!
//! After token `t` is read, it enters the cache if a slot is free or if its surprise is
//! strictly above the lowest score held (which is evicted). Token `t` reads the cache as it
//! was before `t` entered, so the read is causal. Which tokens are kept is piecewise
//! constant in the parameters and carries no gradient; the reads do (to queries, to the kept
//! keys and values, to the null slot and to the read gate).

use crate::tape::{Tape, Trans, Var};
use mnnn_core::Scalar;
use ndarray::Array2;

/// A cache as the tape sees it.
#[derive(Clone, Debug)]
pub struct Cache<S> {
    /// `K × d` keys.
    pub keys: Var,
    /// `K × d` values.
    pub values: Var,
    /// Retention score per slot, per group.
    pub scores: Vec<Vec<S>>,
    /// Whether each slot holds an entry, per group.
    pub used: Vec<Vec<bool>>,
}

/// What the sidecar adds to the head's read, and the cache after the window.
pub struct SidecarOut<S> {
    /// `gate ⊙ read`, `n × d`.
    pub o: Var,
    /// The cache after every token of the window.
    pub cache: Cache<S>,
}

/// Where a token of surprise `s` enters the cache: the `free` slot if there is one, else the
/// slot of the lowest score held (the first of equals), if `s` is strictly above it.
pub fn admission<S: Scalar>(free: Option<usize>, scores: &[S], s: S) -> Option<usize> {
    free.or_else(|| {
        let (at, low) = scores
            .iter()
            .enumerate()
            .fold(
                (0, S::infinity()),
                |acc, (i, &v)| if v < acc.1 { (i, v) } else { acc },
            );
        (s > low).then_some(at)
    })
}

/// Reads and updates the cache over `n` tokens, for every group (`surprise` holds each
/// group's token scores).
#[allow(clippy::too_many_arguments)]
pub fn run<S: Scalar>(
    t: &mut Tape<S>,
    cache: &Cache<S>,
    q: Var,
    k: Var,
    v: Var,
    surprise: &[Vec<S>],
    null: Var,
    gate: Var,
) -> SidecarOut<S> {
    let groups = cache.used.len();
    let slots = cache.used[0].len();
    let (n, d) = t.dim(q);
    // Candidates: the K slots as they were, then the window's tokens.
    let width = 1 + slots + n;
    let mut mask = vec![false; groups * n * width];
    let mut index = Vec::with_capacity(groups * slots);
    let (mut scores_out, mut used_out) = (Vec::new(), Vec::new());
    for (g, mask) in mask.chunks_exact_mut(n * width).enumerate() {
        let mut held: Vec<Option<usize>> = cache.used[g]
            .iter()
            .enumerate()
            .map(|(i, &u)| u.then_some(i))
            .collect();
        let mut scores = cache.scores[g].clone();
        for (tok, (row, &s)) in mask.chunks_exact_mut(width).zip(&surprise[g]).enumerate() {
            row[0] = true;
            for c in held.iter().flatten() {
                row[1 + c] = true;
            }
            if let Some(at) = admission(held.iter().position(Option::is_none), &scores, s) {
                held[at] = Some(slots + tok);
                scores[at] = s;
            }
        }
        index.extend(held.iter().enumerate().map(|(i, c)| c.unwrap_or(i)));
        used_out.push(held.iter().map(Option::is_some).collect());
        scores_out.push(scores);
    }
    let cand_k = t.concat_rows(vec![cache.keys, k]);
    let cand_v = t.concat_rows(vec![cache.values, v]);
    let logits = t.matmul(q, cand_k, Trans::NT);
    let logits = t.scale(logits, 1.0 / (d as f64).sqrt());
    let ones = t.leaf(Array2::ones((n, 1)));
    let null_col = t.matmul(ones, null, Trans::NN);
    let all = t.concat_cols(vec![null_col, logits]);
    let p = t.softmax(all, mask);
    let p = t.cols(p, 1, slots + n);
    let read = t.matmul(p, cand_v, Trans::NN);
    let o = t.mul_col(read, gate);
    let keys = t.gather_rows(cand_k, index.clone());
    let values = t.gather_rows(cand_v, index);
    SidecarOut {
        o,
        cache: Cache {
            keys,
            values,
            scores: scores_out,
            used: used_out,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn it_keeps_the_most_surprising_and_reads_only_the_past() {
        let mut t = Tape::<f64>::new();
        // Zero keys: every logit is 0, so a read is the plain mean over the null slot (value
        // 0) and whatever the cache held before the token.
        let cache = Cache {
            keys: t.leaf(Array2::zeros((2, 2))),
            values: t.leaf(array![[1.0, 0.0], [9.0, 9.0]]),
            scores: vec![vec![0.5, 0.0]],
            used: vec![vec![true, false]],
        };
        let q = t.leaf(array![[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]);
        let k = t.leaf(Array2::zeros((4, 2)));
        let v = t.leaf(array![[0.0, 1.0], [2.0, 2.0], [5.0, 5.0], [7.0, 7.0]]);
        let null = t.leaf(Array2::zeros((1, 1)));
        let gate = t.leaf(Array2::ones((4, 1)));
        // Token 0 fills the free slot; token 1 evicts token 0 (the lowest score); token 2 is
        // below every score held; token 3 only ties the lowest, which is not enough.
        let out = run(
            &mut t,
            &cache,
            q,
            k,
            v,
            &[vec![0.2, 0.9, 0.1, 0.5]],
            null,
            gate,
        );
        let want = array![
            [1.0 / 2.0, 0.0],
            [1.0 / 3.0, 1.0 / 3.0],
            [3.0 / 3.0, 2.0 / 3.0],
            [3.0 / 3.0, 2.0 / 3.0],
        ];
        assert!(
            (&t.value(out.o) - &want).iter().all(|e| e.abs() < 1e-12),
            "{}",
            t.value(out.o)
        );
        assert_eq!(out.cache.scores, vec![vec![0.5, 0.9]]);
        assert_eq!(out.cache.used, vec![vec![true, true]]);
        assert_eq!(t.value(out.cache.values), array![[1.0, 0.0], [2.0, 2.0]]);
    }
}
