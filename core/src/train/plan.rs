//! Which steps of which sequences go into training, validation and each batch.

use super::config::{StatePolicy, TrainConfig};
use crate::Scalar;
use crate::data::Dataset;

/// A run of steps `start..end` of sequence `seq`, started from a fresh state at `start`;
/// predictions count from `score_from` on (earlier steps only warm the memory up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Track {
    /// Sequence index in the data set.
    pub seq: usize,
    /// First step, run from a fresh state.
    pub start: usize,
    /// One past the last step.
    pub end: usize,
    /// First step whose prediction counts.
    pub score_from: usize,
}

impl Track {
    /// Number of steps run.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the track runs no step.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// A chronological train / validation split.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// What training sees.
    pub train: Vec<Track>,
    /// What validation scores (empty when the fraction is 0).
    pub validation: Vec<Track>,
}

/// Splits `data` chronologically: with several sequences the last `fraction` of them (at
/// least one, at most all but one) are held out; a single sequence is cut in time, and its
/// validation track first runs through the training part so the memory is warm.
pub fn split<S: Scalar>(data: &Dataset<S>, fraction: f64) -> Split {
    let n = data.sequences.len();
    if n == 0 {
        return Split {
            train: vec![],
            validation: vec![],
        };
    }
    let whole = |seq: usize| Track {
        seq,
        start: 0,
        end: data.sequences[seq].len(),
        score_from: 0,
    };
    if fraction <= 0.0 {
        return Split {
            train: (0..n).map(whole).collect(),
            validation: vec![],
        };
    }
    if n >= 2 {
        let n_val = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
        return Split {
            train: (0..n - n_val).map(whole).collect(),
            validation: (n - n_val..n).map(whole).collect(),
        };
    }
    let t = data.sequences[0].len();
    let cut = ((t as f64 * (1.0 - fraction)).round() as usize)
        .clamp(1, t.max(2) - 1)
        .min(t);
    if cut >= t {
        return Split {
            train: vec![whole(0)],
            validation: vec![],
        };
    }
    Split {
        train: vec![Track {
            seq: 0,
            start: 0,
            end: cut,
            score_from: 0,
        }],
        validation: vec![Track {
            seq: 0,
            start: 0,
            end: t,
            score_from: cut,
        }],
    }
}

/// The tracks one epoch trains on, before shuffling: independent windows for
/// [`StatePolicy::Reset`]; whole sequences, or `batch_size` lanes of a single stream, for
/// [`StatePolicy::Carry`].
pub fn training_tracks(train: &[Track], cfg: &TrainConfig) -> Vec<Track> {
    match cfg.state {
        StatePolicy::Reset => {
            let mut out = Vec::new();
            for tr in train {
                let w = if cfg.window == 0 {
                    tr.len()
                } else {
                    cfg.window
                };
                let mut s = tr.start;
                while s < tr.end {
                    let e = (s + w).min(tr.end);
                    out.push(Track {
                        seq: tr.seq,
                        start: s,
                        end: e,
                        score_from: s,
                    });
                    s = e;
                }
            }
            out
        }
        StatePolicy::Carry => {
            if train.len() == 1 && cfg.batch_size > 1 && !train[0].is_empty() {
                let tr = train[0];
                let lanes = cfg.batch_size.min(tr.len());
                let base = tr.len() / lanes;
                let extra = tr.len() % lanes;
                let mut s = tr.start;
                (0..lanes)
                    .map(|k| {
                        let e = s + base + usize::from(k < extra);
                        let t = Track {
                            seq: tr.seq,
                            start: s,
                            end: e,
                            score_from: s,
                        };
                        s = e;
                        t
                    })
                    .collect()
            } else {
                train.to_vec()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Inputs, IoSpec, Sequence, Targets};
    use ndarray::Array2;

    fn data(lens: &[usize]) -> Dataset<f64> {
        Dataset {
            io: IoSpec::regression(1, 1),
            sequences: lens
                .iter()
                .map(|&t| Sequence {
                    inputs: Inputs::Real(Array2::zeros((t, 1))),
                    targets: Targets::Real(Array2::zeros((t, 1))),
                    mask: None,
                })
                .collect(),
        }
    }

    #[test]
    fn single_stream_is_cut_in_time_with_a_warm_validation_track() {
        let s = split(&data(&[100]), 0.2);
        assert_eq!(
            s.train,
            vec![Track {
                seq: 0,
                start: 0,
                end: 80,
                score_from: 0
            }]
        );
        assert_eq!(
            s.validation,
            vec![Track {
                seq: 0,
                start: 0,
                end: 100,
                score_from: 80
            }]
        );
    }

    #[test]
    fn several_sequences_hold_out_the_last_ones() {
        let s = split(&data(&[5, 5, 5, 5, 5]), 0.2);
        assert_eq!(s.train.len(), 4);
        assert_eq!(s.validation[0].seq, 4);
        assert!(split(&data(&[5, 5]), 0.0).validation.is_empty());
        assert_eq!(
            split(&data(&[]), 0.2),
            Split {
                train: vec![],
                validation: vec![]
            }
        );
    }

    #[test]
    fn lanes_and_windows_cover_every_step_once() {
        let train = [Track {
            seq: 0,
            start: 0,
            end: 103,
            score_from: 0,
        }];
        let cfg = TrainConfig {
            batch_size: 4,
            window: 10,
            ..TrainConfig::default()
        };
        let lanes = training_tracks(&train, &cfg);
        assert_eq!(lanes.len(), 4);
        assert_eq!(lanes.iter().map(|t| t.len()).sum::<usize>(), 103);
        assert!(lanes.windows(2).all(|w| w[0].end == w[1].start));
        let cfg = TrainConfig {
            state: StatePolicy::Reset,
            ..cfg
        };
        let wins = training_tracks(&train, &cfg);
        assert_eq!(wins.len(), 11);
        assert_eq!(wins.last().unwrap().len(), 3);
    }
}
