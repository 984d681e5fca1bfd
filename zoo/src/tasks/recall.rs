//! Real-valued memory tasks: delayed recall and the adding problem.

use super::{Metric, TaskData};
use mnnn_core::{Inputs, IoSpec, Rng, Sequence, Targets};
use ndarray::Array2;

/// One sequence of delayed recall: standard-normal inputs, target `x_{t−delay}` counted from
/// step `delay` on.
pub fn delayed_sequence(rng: &mut Rng, len: usize, delay: usize) -> Sequence<f64> {
    let x = Array2::from_shape_fn((len, 1), |_| rng.normal());
    let y = Array2::from_shape_fn(
        (len, 1),
        |(t, _)| if t >= delay { x[[t - delay, 0]] } else { 0.0 },
    );
    Sequence {
        inputs: Inputs::Real(x),
        targets: Targets::Real(y),
        mask: Some((0..len).map(|t| t >= delay).collect()),
    }
}

/// Delayed recall at `delay`: 96 training and 32 test sequences of length `2·delay + 32`.
pub fn delayed(delay: usize, seed: u64) -> TaskData {
    let mut rng = Rng::derive(seed, "delayed-recall");
    let len = 2 * delay + 32;
    let seqs = (0..128)
        .map(|_| delayed_sequence(&mut rng, len, delay))
        .collect();
    TaskData::split(IoSpec::regression(1, 1), seqs, 32, Metric::R2)
}

/// One adding-problem sequence: channel 0 uniform values, channel 1 marks one position in
/// each half; the target at the last step is the sum of the two marked values.
pub fn adding_sequence(rng: &mut Rng, len: usize) -> Sequence<f64> {
    let half = len / 2;
    let (a, b) = (rng.below(half), half + rng.below(len - half));
    let mut x = Array2::zeros((len, 2));
    for t in 0..len {
        x[[t, 0]] = rng.uniform();
    }
    x[[a, 1]] = 1.0;
    x[[b, 1]] = 1.0;
    let mut y = Array2::zeros((len, 1));
    y[[len - 1, 0]] = x[[a, 0]] + x[[b, 0]];
    Sequence {
        inputs: Inputs::Real(x),
        targets: Targets::Real(y),
        mask: Some((0..len).map(|t| t == len - 1).collect()),
    }
}

/// The adding problem: 1000 training and 200 test sequences of length `len`.
pub fn adding(len: usize, seed: u64) -> TaskData {
    let mut rng = Rng::derive(seed, "adding");
    let seqs = (0..1200)
        .map(|_| adding_sequence(&mut rng, len.max(4)))
        .collect();
    TaskData::split(IoSpec::regression(2, 1), seqs, 200, Metric::R2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delayed_targets_are_the_inputs_delay_steps_back() {
        let s = delayed_sequence(&mut Rng::new(1), 20, 7);
        let (Inputs::Real(x), Targets::Real(y)) = (&s.inputs, &s.targets) else {
            panic!()
        };
        for t in 7..20 {
            assert_eq!(
                y[[t, 0]],
                x[[t - 7, 0]],
                "depends on the input 7 steps back"
            );
        }
        assert!(!s.counts(6) && s.counts(7));
    }

    #[test]
    fn adding_target_is_the_sum_of_the_two_marked_values() {
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let s = adding_sequence(&mut rng, 30);
            let (Inputs::Real(x), Targets::Real(y)) = (&s.inputs, &s.targets) else {
                panic!()
            };
            let marked: Vec<usize> = (0..30).filter(|&t| x[[t, 1]] == 1.0).collect();
            assert_eq!(marked.len(), 2);
            assert!(
                marked[0] < 15 && marked[1] >= 15,
                "one mark per half, far from the end"
            );
            assert!((y[[29, 0]] - (x[[marked[0], 0]] + x[[marked[1], 0]])).abs() < 1e-15);
            assert_eq!(s.mask.as_ref().unwrap().iter().filter(|m| **m).count(), 1);
        }
    }
}
