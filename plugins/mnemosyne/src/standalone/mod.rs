//! One head's linear memory over a whole stream, outside the block stack: the forward-only
//! operator the speed benchmark compares with other implementations.
//!
//! It is the arithmetic of the layer's dual and exact forms (for a linear memory without
//! gate, forgetting or momentum) without the tape: buffers are allocated once per call, and each window of chunks runs on
//! two threads. Only the weights `W` pass from chunk to chunk, so one thread walks that chain
//! (two products per chunk) while the other makes the reads of the chunks it has finished
//! (two more); the delta rule's weight-independent triangular solves run first, in
//! parallel. The tests hold it to the tape forms and to the token loop within 1e-10 in f64.

mod chunk;
mod product;

use mnnn_core::Scalar;
use mnnn_core::buf::{mat, mat_mut};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis, s};
use rayon::prelude::*;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

/// Which chunked algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// The mini-batch dual form: every gradient in a chunk at the chunk's starting weights.
    Dual,
    /// The delta rule's exact chunked algorithm (the sequential recursion).
    Delta,
}

/// Chunks per window: bounds the per-call buffers (`WINDOW · (d² + 3·b·d + 2·b²)` values)
/// while keeping the two threads' hand-offs rare.
const WINDOW: usize = 32;

/// Reads of a linear memory `W` (`d × d`, starting at `w0`) over the stream `q, k, v`
/// (`T × d`, rows of `q` and `k` of unit norm) with inner learning rates `theta`, in chunks of
/// `chunk` tokens; returns the reads and the final `W`. Each read comes after its token's
/// write. `chunk: 0` is taken as 1.
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
///
/// # Panics
///
/// If `q`, `k`, `v` are not all `T × d`, `theta` does not have `T` entries or `w0` is not
/// `d × d`.
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
    assert!(
        k.dim() == (t_len, d) && v.dim() == (t_len, d),
        "q, k and v must have the same shape"
    );
    assert_eq!(theta.len(), t_len, "one learning rate per token");
    assert_eq!(w0.dim(), (d, d), "w0 must be d × d");
    let b = chunk.max(1);
    let mut out = Array2::zeros((t_len, d));
    let mut w = w0.to_owned();
    let mut work = Work::new(d, b);
    let span = WINDOW * b;
    for t0 in (0..t_len).step_by(span) {
        let rows = s![t0..(t0 + span).min(t_len), ..];
        let win = Window {
            q: q.slice(rows),
            k: k.slice(rows),
            v: v.slice(rows),
            theta: &theta[t0..(t0 + span).min(t_len)],
            b,
        };
        match form {
            Form::Dual => dual_window(&win, &mut w, out.slice_mut(rows), &mut work),
            Form::Delta => delta_window(&win, &mut w, out.slice_mut(rows), &mut work),
        }
    }
    (out, w)
}

/// A window's inputs, cut into chunks of `b` rows (the last may be shorter).
struct Window<'a, S> {
    q: ArrayView2<'a, S>,
    k: ArrayView2<'a, S>,
    v: ArrayView2<'a, S>,
    theta: &'a [S],
    b: usize,
}

impl<S: Scalar> Window<'_, S> {
    fn chunks(&self) -> usize {
        self.q.nrows().div_ceil(self.b)
    }

    fn rows(&self, c: usize) -> std::ops::Range<usize> {
        c * self.b..((c + 1) * self.b).min(self.q.nrows())
    }

    fn q(&self, c: usize) -> ArrayView2<'_, S> {
        self.q.slice(s![self.rows(c), ..])
    }

    fn k(&self, c: usize) -> ArrayView2<'_, S> {
        self.k.slice(s![self.rows(c), ..])
    }

    fn v(&self, c: usize) -> ArrayView2<'_, S> {
        self.v.slice(s![self.rows(c), ..])
    }

    fn theta(&self, c: usize) -> &[S] {
        &self.theta[self.rows(c)]
    }
}

/// Buffers for one window, reused across windows.
struct Work<S> {
    d: usize,
    b: usize,
    /// `W` at the start of each chunk.
    snapshots: Vec<S>,
    /// Each chunk's residuals (`e` or `r`), `b × d`.
    residuals: Vec<S>,
    /// Each chunk's masked scores, `b × b`.
    scores: Vec<S>,
    /// The delta rule's `strict_tril(k kᵀ) diag(θ)` and its `(I + ·)⁻¹` per chunk, `b × b`
    /// each.
    gram: Vec<S>,
    inverse: Vec<S>,
    /// The delta rule's `wt` and `ut` per chunk, `b × d` each.
    wt: Vec<S>,
    ut: Vec<S>,
    /// Scratch for the weight chain: `diag(θ)` times the residuals.
    scaled: Array2<S>,
}

impl<S: Scalar> Work<S> {
    fn new(d: usize, b: usize) -> Self {
        Work {
            d,
            b,
            snapshots: vec![S::zero(); WINDOW * d * d],
            residuals: vec![S::zero(); WINDOW * b * d],
            scores: vec![S::zero(); WINDOW * b * b],
            gram: Vec::new(),
            inverse: Vec::new(),
            wt: Vec::new(),
            ut: Vec::new(),
            scaled: Array2::zeros((b, d)),
        }
    }
}

/// The leading `rows × cols` of `buf`: slots are sized for a whole chunk, and a window's last
/// chunk may be shorter.
fn view_mut<S>(buf: &mut [S], rows: usize, cols: usize) -> ArrayViewMut2<'_, S> {
    mat_mut(&mut buf[..rows * cols], rows, cols)
}

/// [`view_mut`], shared.
fn view<S>(buf: &[S], rows: usize, cols: usize) -> ArrayView2<'_, S> {
    mat(&buf[..rows * cols], rows, cols)
}

/// Waits for the next message: spins briefly (a chunk's products take microseconds, a
/// sleeping thread takes longer to wake), then blocks.
fn receive<T>(rx: &Receiver<T>) -> Option<T> {
    for _ in 0..1 << 14 {
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
    rx.recv().ok()
}

/// Arguments of a chunk's write: the chunk, its starting weights, where the next weights go,
/// its residuals and scratch of their shape.
type WriteArgs<'a, S> = (
    usize,
    ArrayView2<'a, S>,
    ArrayViewMut2<'a, S>,
    ArrayViewMut2<'a, S>,
    ArrayViewMut2<'a, S>,
);

/// The two threads of a window: `chain` walks the weights (each chunk's starting weights in
/// their own slot, the last chunk's result into `w`), handing each chunk's starting weights
/// and residuals to `reads` in order. The chain never waits for the reads, so if both run on
/// one thread (a pool of one) they run one after the other.
fn pipeline<S: Scalar>(
    win: &Window<'_, S>,
    w: &mut Array2<S>,
    mut out: ArrayViewMut2<'_, S>,
    work: &mut Work<S>,
    write: impl for<'a> Fn(WriteArgs<'a, S>) + Sync,
    read: impl Fn(usize, ArrayView2<S>, ArrayView2<S>, ArrayViewMut2<S>) + Sync,
) {
    let (d, b) = (work.d, work.b);
    let n_chunks = win.chunks();
    let (tx, rx) = channel::<(usize, &[S], &[S])>();
    let (read, write) = (&read, &write);
    let Work {
        snapshots,
        residuals,
        scaled,
        ..
    } = work;
    rayon::join(
        move || {
            let mut rest = &mut snapshots[..n_chunks * d * d];
            view_mut(rest, d, d).assign(w);
            let mut slots = residuals.chunks_mut(b * d);
            for c in 0..n_chunks {
                let (cur, tail) = std::mem::take(&mut rest).split_at_mut(d * d);
                let cur: &[S] = cur;
                let n = win.rows(c).len();
                let res = slots.next().expect("a residual slot per chunk");
                let next = if c + 1 < n_chunks {
                    view_mut(tail, d, d)
                } else {
                    w.view_mut()
                };
                let scratch = scaled.slice_mut(s![..n, ..]);
                write((c, view(cur, d, d), next, view_mut(res, n, d), scratch));
                rest = tail;
                let res: &[S] = res;
                if tx.send((c, cur, res)).is_err() {
                    return;
                }
            }
        },
        move || {
            let mut outs = out.axis_chunks_iter_mut(Axis(0), b);
            while let Some((c, snap, res)) = receive(&rx) {
                let n = win.rows(c).len();
                let o = outs.next().expect("one output block per chunk");
                read(c, view(snap, d, d), view(res, n, d), o);
            }
        },
    );
}

fn dual_window<S: Scalar>(
    win: &Window<'_, S>,
    w: &mut Array2<S>,
    out: ArrayViewMut2<'_, S>,
    work: &mut Work<S>,
) {
    let b = work.b;
    fill_scores(win, &mut work.scores);
    let scores = std::mem::take(&mut work.scores);
    pipeline(
        win,
        w,
        out,
        work,
        |(c, w, next, e, te)| chunk::dual_write(win.k(c), win.v(c), win.theta(c), w, next, e, te),
        |c, w0, e, o| {
            let n = e.nrows();
            let l = view(&scores[c * b * b..], n, n);
            chunk::read(win.q(c), w0, l, e, -S::one(), o)
        },
    );
    work.scores = scores;
}

fn delta_window<S: Scalar>(
    win: &Window<'_, S>,
    w: &mut Array2<S>,
    out: ArrayViewMut2<'_, S>,
    work: &mut Work<S>,
) {
    let (d, b) = (work.d, work.b);
    let per = b * d;
    work.wt.resize(WINDOW * per, S::zero());
    work.ut.resize(WINDOW * per, S::zero());
    work.gram.resize(WINDOW * b * b, S::zero());
    work.inverse.resize(WINDOW * b * b, S::zero());
    // The weight-independent half of every chunk, in parallel.
    work.scores
        .par_chunks_mut(b * b)
        .zip(
            work.gram
                .par_chunks_mut(b * b)
                .zip(work.inverse.par_chunks_mut(b * b)),
        )
        .zip(work.wt.par_chunks_mut(per).zip(work.ut.par_chunks_mut(per)))
        .take(win.chunks())
        .enumerate()
        .for_each(|(c, ((p, (a, inv)), (wt, ut)))| {
            let n = win.rows(c).len();
            let (k, th) = (win.k(c), win.theta(c));
            chunk::scores(win.q(c), k, th, false, view_mut(p, n, n));
            let (a, inv) = (view_mut(a, n, n), view_mut(inv, n, n));
            let (wt, ut) = (view_mut(wt, n, d), view_mut(ut, n, d));
            chunk::delta_prepare(k, win.v(c), th, a, inv, wt, ut);
        });
    let (scores, wt, ut) = (
        std::mem::take(&mut work.scores),
        std::mem::take(&mut work.wt),
        std::mem::take(&mut work.ut),
    );
    pipeline(
        win,
        w,
        out,
        work,
        |(c, w, next, r, tr)| {
            let n = r.nrows();
            let (wt, ut) = (view(&wt[c * per..], n, d), view(&ut[c * per..], n, d));
            chunk::delta_write(win.k(c), win.theta(c), wt, ut, w, next, r, tr)
        },
        |c, w0, r, o| {
            let n = r.nrows();
            chunk::read(
                win.q(c),
                w0,
                view(&scores[c * b * b..], n, n),
                r,
                S::one(),
                o,
            )
        },
    );
    (work.scores, work.wt, work.ut) = (scores, wt, ut);
}

/// Every chunk's `tril(q kᵀ) diag(θ)`, in parallel.
fn fill_scores<S: Scalar>(win: &Window<'_, S>, scores: &mut [S]) {
    let b = win.b;
    scores
        .par_chunks_mut(b * b)
        .take(win.chunks())
        .enumerate()
        .for_each(|(c, l)| {
            let n = win.rows(c).len();
            chunk::scores(win.q(c), win.k(c), win.theta(c), false, view_mut(l, n, n));
        });
}

#[cfg(test)]
mod tests;
