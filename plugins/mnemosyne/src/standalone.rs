//! One head's linear memory over a whole stream, outside the block stack: the operator the
//! speed benchmark compares with other implementations.

use crate::memory::{self, Fast, HeadParams, Tokens};
use crate::params::Memory;
use crate::tape::Tape;
use mnnn_core::Scalar;
use ndarray::{Array2, ArrayView2, s};

/// Which chunked algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The mini-batch dual form: every gradient in a chunk at the chunk's starting weights.
    Dual,
    /// The delta rule's exact chunked algorithm (the sequential recursion).
    Delta,
}

/// Reads of a linear memory `W` (`d × d`, starting at `w0`) over the stream `q, k, v`
/// (`T × d`, rows of `q` and `k` of unit norm) with inner learning rates `theta`, in chunks of
/// `chunk` tokens; returns the reads and the final `W`.
///
/// ```
/// use mnnn_mnemosyne::standalone::{Form, linear_memory};
/// let (t, d) = (10, 4);
/// let unit = ndarray::Array2::from_shape_fn((t, d), |(i, j)| if i % d == j { 1.0 } else { 0.0 });
/// let v = ndarray::Array2::<f64>::ones((t, d));
/// let w0 = ndarray::Array2::zeros((d, d));
/// let (exact, _) = linear_memory(unit.view(), unit.view(), v.view(), &vec![0.5; t], w0.view(), 4, Form::Delta);
/// let (online, _) = linear_memory(unit.view(), unit.view(), v.view(), &vec![0.5; t], w0.view(), 1, Form::Dual);
/// assert!((&exact - &online).iter().all(|e| e.abs() < 1e-12));
/// ```
pub fn linear_memory<S: Scalar>(
    q: ArrayView2<S>,
    k: ArrayView2<S>,
    v: ArrayView2<S>,
    theta: &[S],
    w0: ArrayView2<S>,
    chunk: usize,
    form: Form,
) -> (Array2<S>, Array2<S>) {
    let (t_len, d) = q.dim();
    let hp = HeadParams {
        ln: None,
        static_w1: None,
        gate: None,
    };
    let mut out = Array2::zeros((t_len, d));
    let mut w = w0.to_owned();
    let mut tape = Tape::new();
    let chunk = chunk.max(1);
    for t0 in (0..t_len).step_by(chunk) {
        let n = chunk.min(t_len - t0);
        tape.clear();
        let rows = s![t0..t0 + n, ..];
        let th = Array2::from_shape_fn((n, 1), |(i, _)| theta[t0 + i]);
        let tok = Tokens {
            q: tape.leaf_view(q.slice(rows)),
            k: tape.leaf_view(k.slice(rows)),
            v: tape.leaf_view(v.slice(rows)),
            theta: tape.leaf(th),
            log_keep: None,
            log_eta: None,
        };
        let phi = Fast {
            w: vec![tape.leaf(w)],
            b: vec![None],
        };
        let o = match form {
            Form::Dual => memory::segment(&mut tape, Memory::Linear, &hp, &phi, None, &phi, &tok),
            Form::Delta => memory::exact_segment(&mut tape, &phi, &tok),
        };
        out.slice_mut(rows).assign(tape.value(o.o));
        w = tape.value(o.phi.w[0]).clone();
    }
    (out, w)
}
