//! Token tasks: selective copying and passkey retrieval (MQAR has its own module).

use super::{Metric, TaskData, TestSet};
use mnnn_core::{Dataset, InputKind, Inputs, IoSpec, OutputKind, Rng, Sequence, Targets};

pub(super) fn io(vocab: usize, embed: usize, classes: usize) -> IoSpec {
    IoSpec {
        input: InputKind::Tokens { vocab, embed },
        output: OutputKind::Classes(classes),
        input_names: vec![],
        target_names: vec![],
    }
}

pub(super) fn seq(tokens: Vec<u32>, targets: Vec<u32>, mask: Vec<bool>) -> Sequence<f64> {
    Sequence {
        inputs: Inputs::Tokens(tokens),
        targets: Targets::Classes(targets),
        mask: Some(mask),
    }
}

/// `k` distinct values below `n`, in random order.
pub(super) fn distinct(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(k);
    all
}

/// One selective-copying sequence (Mamba's definition): `data` tokens from
/// `1..vocab−2` at random positions of a `len`-long noise context (token 0), then a delimiter
/// (`vocab−2`), then `data` blanks (`vocab−1`) at which the data tokens are to be output in
/// order of appearance.
pub fn selective_copying_sequence(
    rng: &mut Rng,
    len: usize,
    data: usize,
    vocab: usize,
) -> Sequence<f64> {
    let mut pos = distinct(rng, len, data);
    pos.sort_unstable();
    let mut tokens = vec![0u32; len];
    let values: Vec<u32> = (0..data).map(|_| 1 + rng.below(vocab - 3) as u32).collect();
    for (p, v) in pos.iter().zip(&values) {
        tokens[*p] = *v;
    }
    tokens.push(vocab as u32 - 2);
    tokens.extend(std::iter::repeat_n(vocab as u32 - 1, data));
    let total = tokens.len();
    let mut targets = vec![0u32; total];
    targets[total - data..].copy_from_slice(&values);
    let mask = (0..total).map(|t| t >= total - data).collect();
    seq(tokens, targets, mask)
}

/// Selective copying: 2000 training and 200 test sequences.
pub fn selective_copying(len: usize, data: usize, vocab: usize, seed: u64) -> TaskData {
    let mut rng = Rng::derive(seed, "selective-copying");
    let (data, vocab) = (data.clamp(1, len.max(1)), vocab.max(4));
    let seqs = (0..2200)
        .map(|_| selective_copying_sequence(&mut rng, len, data, vocab))
        .collect();
    TaskData::split(io(vocab, 16, vocab), seqs, 200, Metric::Accuracy)
}

/// Passkey tokens: digits 0–9, a key marker, a query marker, and eight filler words.
pub const PASSKEY_VOCAB: usize = 20;
const KEY: u32 = 10;
const QUERY: u32 = 11;

/// One passkey sequence of `len` tokens: filler words, the key marker followed by a digit at
/// a random position, and the query marker last; the target at the query is the digit.
pub fn passkey_sequence(rng: &mut Rng, len: usize) -> Sequence<f64> {
    let len = len.max(3);
    let mut tokens: Vec<u32> = (0..len).map(|_| 12 + rng.below(8) as u32).collect();
    let p = rng.below(len - 2);
    let digit = rng.below(10) as u32;
    tokens[p] = KEY;
    tokens[p + 1] = digit;
    tokens[len - 1] = QUERY;
    let mut targets = vec![0u32; len];
    targets[len - 1] = digit;
    let mask = (0..len).map(|t| t == len - 1).collect();
    seq(tokens, targets, mask)
}

/// Passkey retrieval: 2000 training sequences of `train_len`, and a test set of 32 sequences
/// at each context length (one needle each, so an accuracy moves in steps of 1/32).
pub fn passkey(train_len: usize, lengths: &[usize], seed: u64) -> TaskData {
    let mut rng = Rng::derive(seed, "passkey");
    let io = io(PASSKEY_VOCAB, 16, 10);
    let train = Dataset {
        io: io.clone(),
        sequences: (0..2000)
            .map(|_| passkey_sequence(&mut rng, train_len))
            .collect(),
    };
    let tests = lengths
        .iter()
        .map(|&l| {
            let n = 32;
            TestSet {
                label: l.to_string(),
                x: Some(l as f64),
                data: Dataset {
                    io: io.clone(),
                    sequences: (0..n).map(|_| passkey_sequence(&mut rng, l)).collect(),
                },
            }
        })
        .collect();
    TaskData {
        train,
        tests,
        metric: Metric::Accuracy,
        sweep: Some("context length"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &Sequence<f64>) -> (&[u32], &[u32], &[bool]) {
        let (Inputs::Tokens(x), Targets::Classes(y)) = (&s.inputs, &s.targets) else {
            panic!()
        };
        (x, y, s.mask.as_ref().unwrap())
    }

    #[test]
    fn selective_copying_outputs_the_scattered_tokens_in_order() {
        let mut rng = Rng::new(2);
        for _ in 0..20 {
            let s = selective_copying_sequence(&mut rng, 24, 4, 12);
            let (x, y, m) = parts(&s);
            let data: Vec<u32> = x[..24].iter().copied().filter(|&t| t != 0).collect();
            assert_eq!(data.len(), 4);
            assert_eq!(&y[25..], &data[..], "the answer is the distant data tokens");
            assert_eq!(x[24], 10);
            assert_eq!(m.iter().filter(|b| **b).count(), 4);
        }
    }

    #[test]
    fn passkey_answer_is_the_digit_after_the_key() {
        let mut rng = Rng::new(7);
        for len in [3, 10, 1000] {
            let s = passkey_sequence(&mut rng, len);
            let (x, y, m) = parts(&s);
            let p = x.iter().position(|&t| t == KEY).unwrap();
            assert_eq!(y[len - 1], x[p + 1]);
            assert!(x[p + 1] < 10 && x[len - 1] == QUERY);
            assert_eq!(
                x.iter().filter(|&&t| t < 10).count(),
                1,
                "the digit appears once"
            );
            assert!(m[len - 1] && m.iter().filter(|b| **b).count() == 1);
        }
        let d = passkey(64, &[256, 1 << 16], 1);
        assert_eq!(d.tests[1].data.sequences.len(), 32);
        assert_eq!(d.tests[1].data.sequences[0].len(), 1 << 16);
    }
}
