//! Sequences and data sets, and what a model's input and output rows mean.

use crate::{Error, Result, Scalar};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// What a model reads at each step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputKind {
    /// A row of real numbers of this width.
    Real(usize),
    /// One token id below `vocab`, embedded into `embed` reals before the cell.
    Tokens {
        /// Number of distinct tokens.
        vocab: usize,
        /// Width of the learned embedding.
        embed: usize,
    },
}

/// What a model predicts at each step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputKind {
    /// A row of real numbers of this width (trained with MSE).
    Regression(usize),
    /// One class out of this many (trained with cross-entropy on logits).
    Classes(usize),
}

/// A model's input and output: kinds and column names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoSpec {
    /// What the model reads.
    pub input: InputKind,
    /// What it predicts.
    pub output: OutputKind,
    /// Names of the input columns (for CSV data; may be empty).
    #[serde(default)]
    pub input_names: Vec<String>,
    /// Names of the target columns (for CSV data; may be empty).
    #[serde(default)]
    pub target_names: Vec<String>,
}

impl IoSpec {
    /// Real inputs of width `i`, real targets of width `o`, unnamed.
    pub fn regression(i: usize, o: usize) -> Self {
        IoSpec {
            input: InputKind::Real(i),
            output: OutputKind::Regression(o),
            input_names: vec![],
            target_names: vec![],
        }
    }

    /// The width of the rows the cell reads.
    pub fn cell_input(&self) -> usize {
        match self.input {
            InputKind::Real(w) => w,
            InputKind::Tokens { embed, .. } => embed,
        }
    }

    /// The width of the rows the cell writes.
    pub fn cell_output(&self) -> usize {
        match self.output {
            OutputKind::Regression(w) | OutputKind::Classes(w) => w,
        }
    }

    /// Refuses zero widths and vocabularies, and widths beyond 2^24.
    pub fn validate(&self) -> Result<()> {
        const MAX: usize = 1 << 24;
        let widths = [
            (
                "input width",
                match self.input {
                    InputKind::Real(w) => w,
                    InputKind::Tokens { embed, .. } => embed,
                },
            ),
            (
                "vocab",
                match self.input {
                    InputKind::Tokens { vocab, .. } => vocab,
                    InputKind::Real(_) => 1,
                },
            ),
            ("output width", self.cell_output()),
        ];
        for (what, w) in widths {
            if w > MAX {
                return Err(Error::invalid_param(
                    what,
                    w,
                    format!("must be at most {MAX}"),
                ));
            }
        }
        let bad = |what: &str| Err(Error::invalid_param(what, 0, "must be at least 1"));
        match self.input {
            InputKind::Real(0) => return bad("input width"),
            InputKind::Tokens { vocab: 0, .. } => return bad("vocab"),
            InputKind::Tokens { embed: 0, .. } => return bad("embed"),
            _ => {}
        }
        match self.output {
            OutputKind::Regression(0) => bad("output width"),
            OutputKind::Classes(0) => bad("classes"),
            _ => Ok(()),
        }
    }
}

/// The inputs of one sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Inputs<S> {
    /// `T × width` reals.
    Real(Array2<S>),
    /// `T` token ids.
    Tokens(Vec<u32>),
}

impl<S: Scalar> Inputs<S> {
    /// Number of steps.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Real(a) => a.nrows(),
            Inputs::Tokens(t) => t.len(),
        }
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Steps `start..end` as a new value.
    pub fn slice(&self, start: usize, end: usize) -> Inputs<S> {
        match self {
            Inputs::Real(a) => Inputs::Real(a.slice(ndarray::s![start..end, ..]).to_owned()),
            Inputs::Tokens(t) => Inputs::Tokens(t[start..end].to_vec()),
        }
    }

    /// Checks the inputs against what a model reads: width, vocabulary, finiteness.
    pub fn check(&self, kind: &InputKind) -> Result<()> {
        match (self, kind) {
            (Inputs::Real(a), InputKind::Real(w)) => {
                if a.ncols() != *w {
                    return Err(Error::shape(
                        "input rows",
                        format!("width {w}"),
                        format!("width {}", a.ncols()),
                    ));
                }
                if let Some(pos) = a.iter().position(|v| !v.is_finite()) {
                    return Err(Error::Data(format!(
                        "input at step {}, column {} is {} (inputs must be finite)",
                        pos / w,
                        pos % w,
                        a.as_slice().map(|s| s[pos].as_f64()).unwrap_or(f64::NAN)
                    )));
                }
                Ok(())
            }
            (Inputs::Tokens(t), InputKind::Tokens { vocab, .. }) => {
                if let Some((i, tok)) = t.iter().enumerate().find(|(_, t)| **t as usize >= *vocab) {
                    return Err(Error::Data(format!(
                        "token {tok} at step {i} is outside the vocabulary of {vocab}"
                    )));
                }
                Ok(())
            }
            (Inputs::Real(_), InputKind::Tokens { .. }) => Err(Error::Data(
                "the model reads tokens but was given real-valued inputs".into(),
            )),
            (Inputs::Tokens(_), InputKind::Real(_)) => Err(Error::Data(
                "the model reads real-valued inputs but was given tokens".into(),
            )),
        }
    }
}

/// The targets of one sequence.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets<S> {
    /// `T × width` reals.
    Real(Array2<S>),
    /// `T` class ids.
    Classes(Vec<u32>),
}

impl<S: Scalar> Targets<S> {
    /// Number of steps.
    pub fn len(&self) -> usize {
        match self {
            Targets::Real(a) => a.nrows(),
            Targets::Classes(c) => c.len(),
        }
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self, kind: &OutputKind) -> Result<()> {
        match (self, kind) {
            (Targets::Real(a), OutputKind::Regression(w)) => {
                if a.ncols() != *w {
                    return Err(Error::shape(
                        "target rows",
                        format!("width {w}"),
                        format!("width {}", a.ncols()),
                    ));
                }
                if a.iter().any(|v| !v.is_finite()) {
                    return Err(Error::Data("targets must be finite".into()));
                }
                Ok(())
            }
            (Targets::Classes(c), OutputKind::Classes(n)) => {
                if let Some((i, k)) = c.iter().enumerate().find(|(_, k)| **k as usize >= *n) {
                    return Err(Error::Data(format!(
                        "class {k} at step {i} is outside 0..{n}"
                    )));
                }
                Ok(())
            }
            _ => Err(Error::Data(
                "targets do not match the model's output kind".into(),
            )),
        }
    }
}

/// One sequence: inputs, targets, and which steps count in the loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Sequence<S> {
    /// What the model reads.
    pub inputs: Inputs<S>,
    /// What it should predict.
    pub targets: Targets<S>,
    /// Steps whose prediction counts (`None`: all of them).
    pub mask: Option<Vec<bool>>,
}

impl<S: Scalar> Sequence<S> {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether step `t` counts in the loss.
    pub fn counts(&self, t: usize) -> bool {
        self.mask.as_ref().is_none_or(|m| m[t])
    }
}

/// Sequences with a shared [`IoSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<S> {
    /// What every sequence reads and predicts.
    pub io: IoSpec,
    /// The sequences, in chronological order.
    pub sequences: Vec<Sequence<S>>,
}

impl<S: Scalar> Dataset<S> {
    /// Checks every sequence against `io` (widths, lengths, vocabularies, finiteness).
    pub fn validate(&self) -> Result<()> {
        self.io.validate()?;
        if self.sequences.is_empty() {
            return Err(Error::Data("the data set has no sequences".into()));
        }
        for (k, s) in self.sequences.iter().enumerate() {
            let ctx = |e: Error| match e {
                Error::Data(m) => Error::Data(format!("sequence {k}: {m}")),
                other => other,
            };
            if s.is_empty() {
                return Err(Error::Data(format!("sequence {k} is empty")));
            }
            if s.targets.len() != s.len() {
                return Err(Error::Data(format!(
                    "sequence {k} has {} input steps but {} target steps",
                    s.len(),
                    s.targets.len()
                )));
            }
            if let Some(m) = &s.mask
                && m.len() != s.len()
            {
                return Err(Error::Data(format!(
                    "sequence {k}: mask length {} differs from length {}",
                    m.len(),
                    s.len()
                )));
            }
            s.inputs.check(&self.io.input).map_err(ctx)?;
            s.targets.check(&self.io.output).map_err(ctx)?;
        }
        Ok(())
    }

    /// The same data in another scalar type.
    pub fn cast<T: Scalar>(&self) -> Dataset<T> {
        let m = |a: &Array2<S>| a.mapv(|v| T::from_f64(v.as_f64()));
        Dataset {
            io: self.io.clone(),
            sequences: self
                .sequences
                .iter()
                .map(|s| Sequence {
                    inputs: match &s.inputs {
                        Inputs::Real(a) => Inputs::Real(m(a)),
                        Inputs::Tokens(t) => Inputs::Tokens(t.clone()),
                    },
                    targets: match &s.targets {
                        Targets::Real(a) => Targets::Real(m(a)),
                        Targets::Classes(c) => Targets::Classes(c.clone()),
                    },
                    mask: s.mask.clone(),
                })
                .collect(),
        }
    }

    /// Total number of steps.
    pub fn steps(&self) -> usize {
        self.sequences.iter().map(|s| s.len()).sum()
    }
}
