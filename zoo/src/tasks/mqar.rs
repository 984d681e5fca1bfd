//! Multi-query associative recall as Zoology generates it (`multiquery_ar`), and its basic
//! protocol: train at one (length, pairs) point, test there and at longer slices.
//!
//! A sequence of length `L` with `N` pairs starts with `k₁ v₁ … k_N v_N`: keys distinct from
//! the lower half of the vocabulary `[1, V/2)`, values distinct from the upper half
//! `[V/2, V)`. The `L − 2N` positions after it are `(L − 2N)/2` slots two tokens apart; each
//! key is queried once, in a slot drawn without replacement with probability ∝ `g^(a−1)` for
//! the slot's gap `g = 1, 2, …` (`a = 0.01`: strongly skewed to short gaps, as repeated
//! bigrams are in text). The target at a query is its key's value; every other position is a
//! uniformly random token of the whole vocabulary (which may repeat a key: a distractor) and
//! is not scored.

use super::tokens::{distinct, io, seq};
use super::{Metric, TaskData, TestSet};
use mnnn_core::{Dataset, Rng, Sequence};

/// Zoology's power-law exponent for the query gaps.
const POWER_A: f64 = 0.01;

/// `k` of the indices `0..weights.len()`, drawn one after another without replacement, each
/// with probability proportional to its weight among those left.
fn weighted_distinct(rng: &mut Rng, weights: &[f64], k: usize) -> Vec<usize> {
    let mut left: Vec<(usize, f64)> = weights.iter().copied().enumerate().collect();
    let mut chosen = Vec::with_capacity(k);
    for _ in 0..k.min(left.len()) {
        let total: f64 = left.iter().map(|(_, w)| w).sum();
        let mut u = rng.uniform() * total;
        let mut pick = left.len() - 1;
        for (i, (_, w)) in left.iter().enumerate() {
            if u < *w {
                pick = i;
                break;
            }
            u -= w;
        }
        chosen.push(left.swap_remove(pick).0);
    }
    chosen
}

/// One MQAR sequence of `len` tokens (rounded down to even) with `pairs` key–value pairs
/// over a vocabulary of `vocab`. Needs `4·pairs ≤ len` and `pairs < vocab/2`.
pub fn mqar_sequence(rng: &mut Rng, vocab: usize, pairs: usize, len: usize) -> Sequence<f64> {
    let half = vocab / 2;
    let len = len & !1;
    let keys: Vec<u32> = distinct(rng, half - 1, pairs)
        .into_iter()
        .map(|k| 1 + k as u32)
        .collect();
    let values: Vec<u32> = distinct(rng, vocab - half, pairs)
        .into_iter()
        .map(|v| (half + v) as u32)
        .collect();
    let mut tokens: Vec<u32> = (0..len).map(|_| rng.below(vocab) as u32).collect();
    let mut targets = vec![0u32; len];
    let mut mask = vec![false; len];
    for i in 0..pairs {
        tokens[2 * i] = keys[i];
        tokens[2 * i + 1] = values[i];
    }
    let slots = (len - 2 * pairs) / 2;
    let weights: Vec<f64> = (1..=slots)
        .map(|g| POWER_A * (g as f64).powf(POWER_A - 1.0))
        .collect();
    for (i, slot) in weighted_distinct(rng, &weights, pairs)
        .into_iter()
        .enumerate()
    {
        let p = 2 * pairs + 2 * slot;
        tokens[p] = keys[i];
        targets[p] = values[i];
        mask[p] = true;
    }
    seq(tokens, targets, mask)
}

/// MQAR at `(len, pairs)` over `vocab` tokens: `train` training sequences there, and
/// `test` test sequences at `(len, pairs)`, `(2·len, 2·pairs)` and `(4·len, 4·pairs)` — the
/// longer slices test whether recall holds with more pairs over a longer context (those that
/// the vocabulary cannot hold, `4·pairs ≥ vocab/2`, are left out).
pub fn mqar(
    vocab: usize,
    pairs: usize,
    len: usize,
    train: usize,
    test: usize,
    seed: u64,
) -> TaskData {
    let mut rng = Rng::derive(seed, "mqar");
    let vocab = vocab.max(6);
    let pairs = pairs.clamp(1, vocab / 2 - 1);
    let len = len.max(4 * pairs);
    let io = io(vocab, 32, vocab);
    let set = |rng: &mut Rng, n: usize, len: usize, pairs: usize| Dataset {
        io: io.clone(),
        sequences: (0..n)
            .map(|_| mqar_sequence(rng, vocab, pairs, len))
            .collect(),
    };
    let train_set = set(&mut rng, train.max(1), len, pairs);
    let tests = [1, 2, 4]
        .into_iter()
        .filter(|m| m * pairs < vocab / 2)
        .map(|m| TestSet {
            label: format!("{}×{}", m * len, m * pairs),
            x: Some((m * len) as f64),
            data: set(&mut rng, test.max(1), m * len, m * pairs),
        })
        .collect();
    TaskData {
        train: train_set,
        tests,
        metric: Metric::Accuracy,
        sweep: Some("length×pairs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnnn_core::{Inputs, Targets};

    /// Tokens, targets and mask of a sequence.
    fn unpack(s: &Sequence<f64>) -> (&[u32], &[u32], &[bool]) {
        match (&s.inputs, &s.targets, &s.mask) {
            (Inputs::Tokens(x), Targets::Classes(y), Some(m)) => (x, y, m),
            _ => panic!("a token sequence with a mask"),
        }
    }

    #[test]
    fn each_key_is_queried_once_for_its_value_at_an_even_slot() {
        let mut rng = Rng::new(5);
        for _ in 0..50 {
            let s = mqar_sequence(&mut rng, 256, 4, 64);
            let (x, y, m) = unpack(&s);
            assert_eq!(x.len(), 64);
            let keys: Vec<u32> = (0..4).map(|i| x[2 * i]).collect();
            let values: Vec<u32> = (0..4).map(|i| x[2 * i + 1]).collect();
            assert!(keys.iter().all(|&k| (1..128).contains(&k)));
            assert!(values.iter().all(|&v| (128..256).contains(&v)));
            for set in [&keys, &values] {
                let mut d = set.clone();
                d.sort_unstable();
                d.dedup();
                assert_eq!(d.len(), 4, "distinct within a sequence: {set:?}");
            }
            let queries: Vec<usize> = (0..64).filter(|&t| m[t]).collect();
            assert_eq!(queries.len(), 4);
            let mut asked = vec![];
            for &t in &queries {
                assert!(t >= 8 && (t - 8) % 2 == 0, "query at {t}");
                let k = keys.iter().position(|&k| k == x[t]).expect("a key");
                assert_eq!(y[t], values[k]);
                asked.push(k);
            }
            asked.sort_unstable();
            assert_eq!(asked, vec![0, 1, 2, 3], "every key once");
        }
    }

    #[test]
    fn query_gaps_follow_the_power_law() {
        // With a = 0.01, p(g) ∝ g^(−0.99) over 28 slots: a single draw takes the first slot
        // about a quarter of the time, the last about 1%. Over 4000 sequences of 4 draws
        // (seed 9: 2918 for the nearest slot, 175 for the farthest), where a uniform choice
        // would give each slot about 571.
        let mut rng = Rng::new(9);
        let mut counts = [0usize; 28];
        for _ in 0..4000 {
            let s = mqar_sequence(&mut rng, 256, 4, 64);
            let (_, _, m) = unpack(&s);
            for t in (8..64).filter(|&t| m[t]) {
                counts[(t - 8) / 2] += 1;
            }
        }
        assert_eq!(counts.iter().sum::<usize>(), 16000);
        assert!(counts[0] > 2000, "{counts:?}");
        assert!(counts[27] < 300, "{counts:?}");
        assert!(counts[0] > counts[1] && counts[1] > counts[5], "{counts:?}");
    }

    #[test]
    fn the_basic_protocol_has_its_three_test_slices() {
        let d = mqar(256, 4, 64, 30, 10, 1);
        assert_eq!(d.train.sequences.len(), 30);
        let slices: Vec<(&str, usize, usize)> = d
            .tests
            .iter()
            .map(|t| {
                let s = &t.data.sequences[0];
                let (_, _, m) = unpack(s);
                (t.label.as_str(), s.len(), m.iter().filter(|b| **b).count())
            })
            .collect();
        assert_eq!(
            slices,
            vec![("64×4", 64, 4), ("128×8", 128, 8), ("256×16", 256, 16)]
        );
        assert!(d.tests.iter().all(|t| t.data.sequences.len() == 10));
    }
}
